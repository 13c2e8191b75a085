"""Every code block of the README runs as written.

``bash`` blocks run as scripts (``set -e``) and ``python`` blocks as programs, in an empty
folder, with this environment's ``ramp2slope`` first on the PATH. What a block cannot do inside
the test suite is said here and nowhere else:

* ``pip install ...`` is the environment the suite already runs in (CI makes it from scratch
  with exactly the README's line), so ``pip install X && cmd`` runs ``cmd``;
* ``python -m pytest`` is this suite itself and is not started again;
* ``console`` blocks (``$ `` prompts) are sessions that need what no test machine has, a MAST
  download and the CRDS server; their commands are run on a simulated exposure with a CRDS
  cache made here by ``tests/test_crds.py`` instead. The test below checks that they are the
  only blocks left out, and that each names only commands the tests run.

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


def test_only_console_blocks_are_left_out_and_name_tested_commands():
    text = open(README, encoding="utf-8").read()
    fences = re.findall(r"^```(\w*)$", text, re.M)
    languages = fences[0::2]            # opening fences; the closing ones are bare
    assert set(languages) <= {"bash", "python", "console", ""}, languages
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for line in block.splitlines():
            command = line.split("$ ", 1)[1] if "$ " in line else line
            words = command.split()
            while words and "=" in words[0]:
                words.pop(0)              # VAR=value prefixes
            assert words[0] in ("export", "ramp2slope"), line
            if words[0] == "ramp2slope":
                assert words[1] in ("run", "refs"), line   # both run against CRDS in test_crds
