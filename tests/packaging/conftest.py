"""The packages, built once per session for every packaging test: the files
that use them share one xdist group, so one worker builds each package once
(`packaging/deb.sh --debug` writes target/debian, `packaging/tarball.sh
--debug` target/dist; both rebuild target/package/debug, so they never run
beside each other)."""
import hashlib
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build(script):
    """Runs packaging/SCRIPT --debug; the path of what it built."""
    # After tests/build.sh this links the static client and packs (seconds);
    # the generous limit is for a tree whose build is not done yet.
    r = subprocess.run([os.path.join(REPO, "packaging", script), "--debug"],
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, f"packaging/{script} --debug failed:\n{r.stdout}\n{r.stderr}"
    path = r.stdout.strip().splitlines()[-1]
    assert os.path.isfile(path), path
    return path


@pytest.fixture(scope="session")
def deb():
    """The .deb's path."""
    return build("deb.sh")


@pytest.fixture(scope="session")
def root(deb, tmp_path_factory):
    """The .deb unpacked (`dpkg-deb -x`) once per session: the installed tree.
    Read only: tests write into their own tmp_path."""
    root = tmp_path_factory.mktemp("deb-root")
    r = subprocess.run(["dpkg-deb", "-x", deb, str(root)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return str(root)


@pytest.fixture(scope="session")
def tarball():
    """The release tarball's path and its sha256."""
    path = build("tarball.sh")
    with open(path, "rb") as f:
        return path, hashlib.sha256(f.read()).hexdigest()
