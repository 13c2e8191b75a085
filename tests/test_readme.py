"""Every code block of the README runs as written.

``bash`` blocks run as scripts (``set -e``) and ``python`` blocks as programs, in an empty
folder, with this environment's ``ramp2slope`` first on the PATH. What a block cannot do inside
the test suite is said here and nowhere else:

* ``pip install ...`` is the environment the suite already runs in (CI makes it from scratch
  with exactly the README's line), so ``pip install X && cmd`` runs ``cmd``;
* ``python -m pytest`` is this suite itself and is not started again.

A prose sentence before a block may name the folder it runs in: ``In a folder holding an
exposure and its references`` is prepared with the command quoted in that sentence.
"""
import os
import re
import shlex
import subprocess
import sys

import pytest

README = os.path.join(os.path.dirname(__file__), os.pardir, "README.md")
_BLOCK = re.compile(r"(?P<before>(?:[^\n]*\n){0,4})```(?P<lang>bash|python)\n(?P<code>.*?)```", re.S)


def _blocks():
    text = open(README, encoding="utf-8").read()
    return [(m.group("lang"), m.group("code"), m.group("before")) for m in _BLOCK.finditer(text)]


def _runnable(line):
    """The line as the suite runs it (see the module docstring), or None to leave it out."""
    line = re.sub(r"^pip install \S+( \S+)* && ", "", line.strip()) if line.strip().startswith(
        "pip install") else line
    if line.strip() == "python -m pytest":
        return None
    return line


def _env():
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def _prepare(folder, before):
    """Run the set-up command a sentence before the block names (``... after `CMD```)."""
    match = re.search(r"after\s+`(ramp2slope [^`]+)`", before.replace("\n", " "))
    if match:
        subprocess.run(shlex.split(match.group(1)), cwd=folder, env=_env(), check=True,
                       capture_output=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(_blocks())))
def test_readme_block_runs_as_written(index, tmp_path):
    lang, code, before = _blocks()[index]
    _prepare(tmp_path, before)
    if lang == "bash":
        lines = [_runnable(line) for line in code.splitlines()]
        script = "set -e\n" + "\n".join(line for line in lines if line)
        proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=_env(),
                              capture_output=True, text=True, timeout=600)
    else:
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(),
                              capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"README {lang} block {index} failed:\n{code}\n{proc.stderr[-3000:]}"
