"""The release tarball (packaging/tarball.sh --debug) and the Homebrew formula
rendered from it (packaging/homebrew/render.sh): the tarball holds both
binaries, the man pages and the completions, is owned by root and
reproducible; the formula gets every checksum, installs only files the
tarball has, parses as Ruby, and runs the daemon as a service.
"""

import hashlib
import os
import re
import shutil
import subprocess
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGETS = ("aarch64-apple-darwin", "x86_64-apple-darwin", "aarch64-unknown-linux-gnu", "x86_64-unknown-linux-gnu")


def run(*argv, timeout=120, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def build_tarball():
    r = run(os.path.join(REPO, "packaging", "tarball.sh"), "--debug", timeout=1800)
    assert r.returncode == 0, f"packaging/tarball.sh --debug failed:\n{r.stdout}\n{r.stderr}"
    path = r.stdout.strip().splitlines()[-1]
    with open(path, "rb") as f:
        return path, hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def members(tarball):
    with tarfile.open(tarball[0]) as tar:
        return {m.name: m for m in tar.getmembers()}


def host_triple():
    return re.search(r"^host: (\S+)$", run("rustc", "-vV").stdout, re.M).group(1)


def version():
    out = run(os.path.join(REPO, "target", "package", "debug", "bin", "pctl"), "--version").stdout
    return out.split()[1]


def test_tarball_contents(tarball, members):
    name = f"pctl-{version()}-{host_triple()}"
    assert os.path.basename(tarball[0]) == name + ".tar.gz"
    for path in (
        "bin/pctl", "bin/pctl-daemon", "share/man/man1/pctl.1", "share/man/man1/pctl-eks-token.1",
        "share/bash-completion/completions/pctl", "share/zsh/site-functions/_pctl",
        "share/fish/vendor_completions.d/pctl.fish", "share/pctl/pctl.service",
        "share/pctl/com.pctl.daemon.plist", "LICENSE", "README.md",
    ):
        assert f"{name}/{path}" in members, f"{path} missing from {name}.tar.gz"
    for m in members.values():
        assert m.name == name or m.name.startswith(name + "/"), m.name
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", ""), m.name
    assert members[f"{name}/bin/pctl"].mode == 0o755


def test_tarball_is_reproducible(tarball):
    # Same sources, same bytes (sorted entries, fixed owner and dates).
    assert build_tarball()[1] == tarball[1]


def render(sums_file):
    return run(
        os.path.join(REPO, "packaging", "homebrew", "render.sh"),
        version(), "https://example.invalid/releases/download/v0", "https://example.invalid/pctl", str(sums_file),
    )


@pytest.fixture(scope="module")
def formula(tarball, tmp_path_factory):
    sums = tmp_path_factory.mktemp("sums") / "SHA256SUMS"
    lines = [f"{hashlib.sha256(t.encode()).hexdigest()}  pctl-{version()}-{t}.tar.gz" for t in TARGETS if t != host_triple()]
    lines.append(f"{tarball[1]}  {os.path.basename(tarball[0])}")
    sums.write_text("\n".join(lines) + "\n")
    r = render(sums)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_formula_has_every_target_and_checksum(formula, tarball):
    assert "@" not in re.sub(r"#\{[^}]*\}", "", formula).replace("@example", ""), "placeholder left"
    for t in TARGETS:
        assert f'url "https://example.invalid/releases/download/v0/pctl-{version()}-{t}.tar.gz"' in formula
    assert len(re.findall(r'sha256 "[0-9a-f]{64}"', formula)) == 4
    assert f'sha256 "{tarball[1]}"' in formula


def test_formula_installs_only_what_the_tarball_has(formula, members):
    top = next(iter(members)).split("/")[0]
    files = {n.removeprefix(top + "/") for n in members}
    install_lines = re.findall(r"^\s*\w+\.install (.+)$", formula, re.M)
    assert len(install_lines) >= 5, install_lines
    for line in install_lines:
        for arg in re.findall(r'"([^"]+)"', line):
            if "*" in arg:
                pattern = re.compile(re.escape(arg).replace(r"\*", "[^/]*") + "$")
                assert any(pattern.match(f) for f in files), arg
            else:
                assert arg in files, f"the formula installs {arg}, which the tarball lacks"
    for want in ("bin.install", "man1.install", "bash_completion.install", "zsh_completion.install", "fish_completion.install"):
        assert want in formula, want


def test_formula_service_runs_the_daemon(formula):
    service = re.search(r"^  service do\n(.*?)^  end$", formula, re.M | re.S)
    assert service, "no service block"
    assert 'run [opt_bin/"pctl", "daemon"]' in service.group(1)
    assert "std_service_path_env" in service.group(1)  # the daemon must find `op`


@pytest.mark.skipif(shutil.which("ruby") is None, reason="ruby not installed")
def test_formula_is_valid_ruby(formula, tmp_path):
    path = tmp_path / "pctl.rb"
    path.write_text(formula)
    r = run("ruby", "-c", str(path))
    assert r.returncode == 0 and "Syntax OK" in r.stdout, r.stdout + r.stderr


def test_render_refuses_a_missing_checksum(tmp_path, tarball):
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{tarball[1]}  {os.path.basename(tarball[0])}\n")
    r = render(sums)
    assert r.returncode == 1
    assert re.fullmatch(r"packaging/homebrew/render\.sh: no SHA-256 for pctl-\S+\.tar\.gz in \S+\n", r.stderr), r.stderr
