"""Every shell script in the repository parses (`bash -n`), runs under
`set -euo pipefail`, and never pipes a producer into a consumer that may exit
before reading everything (`head`, `tail`, `grep -q`/`-m`, `sed ...q`,
`awk ... exit`): under pipefail the producer then dies of SIGPIPE and the
script fails with exit 141 on some runs only, as tests/platform/install-tools.sh
did with `kubectl version | head -n 1`. Capture the output first, then cut it.
"""

import os
import re
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def shell_scripts():
    """Tracked files that bash runs or sources (hidden directories left out)."""
    out = subprocess.run(
        ["git", "-C", REPO, "ls-files", "-z"], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    found = []
    for path in filter(None, out.split("\0")):
        if path.startswith("."):
            continue
        full = os.path.join(REPO, path)
        if not os.path.isfile(full):
            continue
        with open(full, "rb") as f:
            head = f.read(200).decode("utf-8", "replace")
        first = head.split("\n", 1)[0]
        if path.endswith(".sh") or re.match(r"#!.*\b(bash|sh)\b", first) or "shellcheck shell=bash" in head:
            found.append(path)
    return sorted(found)


SCRIPTS = shell_scripts()

# A pipe (not `||`) into a consumer that can stop reading early.
EARLY_EXIT = re.compile(
    r"(?<!\|)\|(?!\|)\s*("
    r"head\b|tail\b"
    r"|grep\b[^|;&]*\s-(\w*[qm]\w*|-quiet|-max-count)\b"
    r"|sed\b[^|&]*(\dq|[;{]\s*q)\b"
    r"|awk\b[^|&]*\bexit\b"
    r")"
)


def code_lines(path):
    """(number, line) of the lines that are not comments or heredoc bodies."""
    lines = open(os.path.join(REPO, path)).read().splitlines()
    heredoc_end = None
    for n, line in enumerate(lines, 1):
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        m = re.search(r"<<-?\s*(['\"]?)(\w+)\1", line)
        if m:
            heredoc_end = m.group(2)
        if not line.lstrip().startswith("#"):
            yield n, line


def test_the_scripts_are_found():
    for want in ("tests/run", "tests/setup.sh", "tests/platform/install-tools.sh", "packaging/deb.sh"):
        assert want in SCRIPTS, SCRIPTS


@pytest.mark.parametrize("path", SCRIPTS)
def test_script_parses(path):
    r = subprocess.run(["bash", "-n", os.path.join(REPO, path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("path", [p for p in SCRIPTS if open(os.path.join(REPO, p)).read(2) == "#!"])
def test_executable_script_uses_strict_mode(path):
    text = open(os.path.join(REPO, path)).read()
    assert re.search(r"^set -euo pipefail$", text, re.M), f"{path}: add `set -euo pipefail`"


@pytest.mark.parametrize("path", SCRIPTS)
def test_no_pipe_into_an_early_exit_consumer(path):
    bad = [f"{path}:{n}: {line.strip()}" for n, line in code_lines(path) if EARLY_EXIT.search(line)]
    assert not bad, "capture the producer's output in a variable first:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    "line",
    [
        'kubectl version --client 2>/dev/null | head -n 1',
        'terraform apply -no-color | tail -4',
        'ps ax | grep -q pctl-daemon',
        'ps ax |grep -m1 pctl',
        'cat f | sed -n 1p\\;1q',
        'cat f | sed -n "1{p;q}"',
        'cat f | awk \'{print; exit}\'',
    ],
)
def test_the_check_catches(line):
    assert EARLY_EXIT.search(line), line


@pytest.mark.parametrize(
    "line",
    [
        'a || head -n 1 file',
        'out="$(cmd)"; head -n 1 <<<"$out"',
        'cat a b | sha256sum',
        'find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum',
        "printf 'x' | gzip -9n >f",
    ],
)
def test_the_check_lets_through(line):
    assert not EARLY_EXIT.search(line), line
