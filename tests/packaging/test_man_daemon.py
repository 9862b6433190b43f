"""`man pctl-daemon` on the installed .deb opens the daemon's page, pctl-daemon(8), as the
README promises (issue 21, walk from the package): no section-1 page of the `pctl daemon`
subcommand may shadow it (man searches section 1 before 8)."""

import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# packaging/build.sh rebuilds target/package/debug: never beside the other packaging tests
pytestmark = [
    pytest.mark.xdist_group("packaging-build"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None or shutil.which("man") is None,
                       reason="needs dpkg-deb and man (man-db)"),
]


def run(*argv, timeout=120, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def test_man_pctl_daemon_is_the_daemons_page(deb, tmp_path):
    assert run("dpkg-deb", "-x", deb, str(tmp_path)).returncode == 0
    mandir = tmp_path / "usr" / "share" / "man"
    env = dict(os.environ, MANPATH=str(mandir), MANWIDTH="80", LC_ALL="C.UTF-8")
    where = run("man", "-w", "pctl-daemon", env=env)
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().endswith("man8/pctl-daemon.8.gz"), where.stdout
    assert not (mandir / "man1" / "pctl-daemon.1.gz").exists()
    page = run("man", "-P", "cat", "pctl-daemon", env=env).stdout
    assert "pctl-daemon(8)" in page.splitlines()[0], page[:200]
    listed = run("man", "-P", "cat", "pctl", env=env).stdout
    assert "pctl-daemon(1)" not in listed, listed
