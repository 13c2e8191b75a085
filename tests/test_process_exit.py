"""The command line's fast exit: what a normal exit does that matters still happens (exit
handlers, temporary folders left to their finalisers, log files and the standard streams
flushed), with the exit status given."""
import subprocess
import sys
import textwrap


def _run(body, tmp_path):
    script = textwrap.dedent(f"""
        import atexit, logging, os, sys, tempfile, threading, time
        from ramp2slope.runtime.process_exit import exit_process
        folder = r"{tmp_path}"
        {textwrap.indent(textwrap.dedent(body), "        ").strip()}
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)


def test_exit_runs_handlers_and_flushes(tmp_path):
    done = _run("""
        atexit.register(lambda: open(os.path.join(folder, "handler-ran"), "w").close())
        scratch = tempfile.TemporaryDirectory(dir=folder)   # removed by its finaliser at exit
        handler = logging.FileHandler(os.path.join(folder, "run.log"))
        logging.getLogger("probe").addHandler(handler)
        logging.getLogger("probe").warning("last line")
        sys.stdout.write("no newline")
        sys.stderr.write("to stderr")
        exit_process(3)
        print("never printed")
    """, tmp_path)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "no newline" and done.stderr == "to stderr"
    assert (tmp_path / "handler-ran").exists()
    assert (tmp_path / "run.log").read_text() == "last line\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["handler-ran", "run.log"]


def test_exit_with_a_message_or_none(tmp_path):
    done = _run('exit_process("bad thing")', tmp_path)
    assert (done.returncode, done.stderr.strip()) == (1, "bad thing")
    assert _run("exit_process(None)", tmp_path).returncode == 0


def test_exit_waits_for_other_threads(tmp_path):
    done = _run("""
        def work():
            time.sleep(0.5)
            open(os.path.join(folder, "thread-finished"), "w").close()
        threading.Thread(target=work).start()
        exit_process(0)
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "thread-finished").exists()


def test_a_profiler_still_gets_its_results(tmp_path):
    """``python -m cProfile -o FILE`` writes FILE after the program returns: the exit is the
    ordinary one under a profiler."""
    script = tmp_path / "prog.py"
    script.write_text("from ramp2slope.runtime.process_exit import exit_process\nexit_process(0)\n")
    out = tmp_path / "run.prof"
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), str(script)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.exists() and out.stat().st_size > 0


def test_the_kept_file_transfer_threads_do_not_stop_the_fast_exit(tmp_path):
    """map_in_threads keeps its pool's threads between calls; they are idle at the end and
    must not turn the exit into the ordinary one (the interpreter's teardown: a module-level
    object's finaliser runs only there)."""
    done = _run("""
        from ramp2slope.runtime.threads import map_in_threads
        class Probe:
            def __del__(self, open=open, join=os.path.join, folder=folder):
                open(join(folder, "teardown-ran"), "w").close()
        probe = Probe()
        map_in_threads(lambda item: None, range(8), threads=2)
        exit_process(0)
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "teardown-ran").exists()
