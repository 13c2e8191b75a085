"""Which process left a temporary file or folder, so that the next run can remove what a killed
run left behind (SIGKILL and power cuts run no clean-up) without touching a live run's.

A name carries ``<tag>-`` = ``<host>-<pid>-``: a folder shared between machines (a cluster's
output folder) holds files of runs on other hosts, whose processes cannot be seen from here, so
only this host's are judged.
"""
import os
import re
import shutil
import socket

__all__ = ["owner_tag", "left_by_dead_run", "remove_left_by_dead_runs"]


def _host():
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname() or "host")


def owner_tag():
    """``<host>-<pid>`` of this process."""
    return f"{_host()}-{os.getpid()}"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's live process
        return True
    return True


def left_by_dead_run(name):
    """Whether ``name`` carries the tag (``.<host>-<pid>-`` or ``-<host>-<pid>-``) of a
    process of this host that is no longer running."""
    match = re.search(rf"[.-]{re.escape(_host())}-(\d+)-", name)
    return bool(match) and not _alive(int(match.group(1)))


def remove_left_by_dead_runs(folder, is_temporary, log=None):
    """Remove the entries of ``folder`` for which ``is_temporary(name)`` holds and whose
    process is gone; returns their paths."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not is_temporary(name) or not left_by_dead_run(name):
            continue
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass
        if not os.path.lexists(path):
            removed.append(path)
            if log is not None:
                log.info("removed what a run that did not finish left behind: %s", path)
    return removed
