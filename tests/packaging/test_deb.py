"""The Debian package, built by `packaging/deb.sh --debug` and unpacked into a
throw-away root with `dpkg-deb -x`: its control data, its layout, the installed
binaries running, the man pages rendering with `man`, the completions being
the client's own, the systemd unit passing `systemd-analyze verify`, the
static client not linking user or host name lookups, and lintian finding no
error.

The debug build keeps this cheap in tests/run (the daemon's debug build is
already there; the static client is linked from the same build); the
release .deb is built by the same script without --debug.
"""

import gzip
import json
import os
import re
import shutil
import subprocess
import tomllib

import pytest

import rig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(
    shutil.which("dpkg-deb") is None, reason="not a Debian system: no dpkg-deb"
)


def run(*argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=kw.pop("timeout", 120), **kw)


def installed(root, path):
    """Where the package's absolute `path` is in the unpacked `root` (the conftest's fixture)."""
    return os.path.join(root, path.lstrip("/"))


def workspace_version():
    with open(os.path.join(REPO, "Cargo.toml"), "rb") as f:
        return tomllib.load(f)["workspace"]["package"]["version"]


def test_file_name_and_control_fields(deb):
    version = workspace_version()
    arch = run("dpkg", "--print-architecture").stdout.strip()
    assert os.path.basename(deb) == f"pctl_{version}_{arch}.deb"
    assert os.path.dirname(deb) == os.path.join(REPO, "target", "debian")
    fields = {}
    for name in ("Package", "Version", "Architecture", "Depends", "Maintainer", "Description"):
        fields[name] = run("dpkg-deb", "-f", deb, name).stdout.strip()
    assert fields["Package"] == "pctl"
    assert fields["Version"] == version
    assert fields["Architecture"] == arch
    # Computed by dpkg-shlibdeps from the dynamically linked daemon.
    assert re.search(r"\blibc6 \(>= [0-9.]+\)", fields["Depends"]), fields["Depends"]
    assert "@" in fields["Maintainer"] and fields["Description"]


def test_every_file_is_root_owned_with_sane_modes(deb):
    listing = run("dpkg-deb", "-c", deb).stdout.splitlines()
    assert listing
    for line in listing:
        mode, owner, *_rest, path = line.split()
        assert owner == "root/root", line
        if mode.startswith("d"):
            assert mode == "drwxr-xr-x", line
        elif path.startswith("./usr/bin/"):
            assert mode == "-rwxr-xr-x", line
        else:
            assert mode == "-rw-r--r--", line


def subcommands(pctl, *parents):
    """The client's subcommands (of `pctl PARENTS...`) as its own --help lists them."""
    out = run(pctl, *parents, "--help").stdout
    if "Commands:" not in out:
        return []
    commands = out.split("Commands:", 1)[1].split("Options:", 1)[0]
    names = [line.split()[0] for line in commands.splitlines() if line.startswith("  ")]
    return [n for n in names if n != "help"]


def test_layout(root):
    for path in (
        "/usr/bin/pctl",
        "/usr/bin/pctl-daemon",
        "/usr/share/bash-completion/completions/pctl",
        "/usr/share/zsh/vendor-completions/_pctl",
        "/usr/share/fish/vendor_completions.d/pctl.fish",
        "/usr/lib/systemd/user/pctl.service",
        "/usr/share/doc/pctl/copyright",
        "/usr/share/doc/pctl/README.md",
        "/usr/share/doc/pctl/changelog.gz",
    ):
        assert os.path.isfile(installed(root, path)), f"{path} missing from the package"
    names = subcommands(installed(root, "/usr/bin/pctl"))
    assert "eks" in names and "credential-process" in names, names
    # one page per subcommand and per nested one (`eks token`, `sso roles`)
    want = {"pctl.1.gz"} | {f"pctl-{n}.1.gz" for n in names} | {
        f"pctl-{n}-{m}.1.gz" for n in names
        for m in subcommands(installed(root, "/usr/bin/pctl"), n)}
    assert "pctl-eks-token.1.gz" in want, want
    # except `pctl daemon`'s: `man pctl-daemon` is the daemon binary's page, pctl-daemon(8)
    want.discard("pctl-daemon.1.gz")
    assert os.path.isfile(installed(root, "/usr/share/man/man8/pctl-daemon.8.gz"))
    assert set(os.listdir(installed(root, "/usr/share/man/man1"))) == want


def test_installed_binaries_run(root):
    version = workspace_version()
    for name in ("pctl", "pctl-daemon"):
        r = run(installed(root, f"/usr/bin/{name}"), "--version")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"{name} {version}"


def test_installed_client_starts_the_installed_daemon(root, tmp_path):
    # The static client finds pctl-daemon next to itself and talks to it.
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(run_dir)}
    # without a config no command starts a daemon ("no config at PATH: run pctl init")
    cfg = tmp_path / ".config" / "pctl" / "config.toml"
    cfg.parent.mkdir(parents=True, mode=0o700)
    cfg.write_text(rig.config_text())
    cfg.chmod(0o600)
    pctl = installed(root, "/usr/bin/pctl")
    try:
        r = run(pctl, "status", "--json", env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        status = json.loads(r.stdout)
        assert status["version"] == workspace_version() and status["locked"] is True
        exe = os.readlink(f"/proc/{status['pid']}/exe")
        assert exe == installed(root, "/usr/bin/pctl-daemon"), exe
    finally:
        stop = run(pctl, "stop", env=env, timeout=60)
    assert stop.returncode == 0, stop.stderr


def test_client_is_static_and_daemon_dynamic(root):
    client = run("readelf", "-d", installed(root, "/usr/bin/pctl"))
    daemon = run("readelf", "-d", installed(root, "/usr/bin/pctl-daemon"))
    assert client.returncode == 0 and daemon.returncode == 0
    assert "(NEEDED)" not in client.stdout, client.stdout
    assert "(NEEDED)" in daemon.stdout
    header = run("readelf", "-h", installed(root, "/usr/bin/pctl")).stdout
    assert re.search(r"Type:\s+DYN", header), "the static client should be position independent (static-pie)"


def test_static_client_packs_its_relocations(root):
    # packaging/build.sh links the static client with packed relative
    # relocations (DT_RELR) where glibc's static start applies them (2.36 on):
    # fewer instructions at every run. test_installed_client_starts_the_installed_daemon
    # runs it, so they are applied.
    glibc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    m = re.match(r"glibc (\d+)\.(\d+)", glibc)
    if not m or (int(m.group(1)), int(m.group(2))) < (2, 36):
        pytest.skip(f"{glibc or 'no glibc'}: the static client keeps RELA relocations")
    dynamic = run("readelf", "-d", installed(root, "/usr/bin/pctl")).stdout
    assert "(RELR)" in dynamic, dynamic
    relocs = run("readelf", "-r", installed(root, "/usr/bin/pctl")).stdout
    # what is left unpacked (RELA): the ifunc (IRELATIVE) entries and a few
    # unaligned pointers, not the thousands of RELATIVE ones
    unpacked = len(re.findall(r"_RELATIVE\b", relocs))
    assert unpacked < 100, relocs[:2000]


# Static glibc cannot load NSS modules: any of these in the client would
# silently behave differently (or fail) on a machine with LDAP/sssd users.
NSS_ENTRY_POINTS = {
    "getpwuid", "getpwuid_r", "getpwnam", "getpwnam_r", "getpwent",
    "getgrgid", "getgrgid_r", "getgrnam", "getgrnam_r", "getgrouplist", "initgroups",
    "getaddrinfo", "getnameinfo", "gethostbyname", "gethostbyname_r",
    "gethostbyname2", "gethostbyname2_r", "gethostbyaddr", "gethostbyaddr_r",
    "getservbyname", "getservbyname_r", "getlogin", "getlogin_r",
}


def test_static_client_never_looks_up_users_or_hosts(deb):
    host = run("rustc", "-vV").stdout
    triple = re.search(r"^host: (\S+)$", host, re.M).group(1)
    unstripped = os.path.join(REPO, "target", "static", triple, "debug", "pctl")
    r = run("nm", "--defined-only", unstripped)
    assert r.returncode == 0, r.stderr
    defined = {line.split()[-1] for line in r.stdout.splitlines() if line.split()[1:2] in (["T"], ["t"], ["W"], ["i"])}
    assert "main" in defined  # the symbol table is really there
    assert not (defined & NSS_ENTRY_POINTS), sorted(defined & NSS_ENTRY_POINTS)


@pytest.mark.skipif(shutil.which("man") is None, reason="man (man-db) not installed")
def test_man_pages_render_without_warnings(root):
    man1 = installed(root, "/usr/share/man/man1")
    pages = sorted(os.listdir(man1))
    assert pages
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    for page in pages:
        r = run("man", "--warnings", "-P", "cat", "-l", os.path.join(man1, page), env=env)
        assert r.returncode == 0 and not r.stderr.strip(), f"{page}: {r.stderr}"
        name = page.removesuffix(".1.gz")
        assert re.search(rf"^NAME\n\s+{re.escape(name)}\s+-\s+\S", r.stdout, re.M), r.stdout
        assert "SYNOPSIS" in r.stdout and "OPTIONS" in r.stdout
    token = run("man", "-P", "cat", "-l", os.path.join(man1, "pctl-eks-token.1.gz"), env=env).stdout
    token = " ".join(token.split())  # man justifies lines with extra spaces
    assert "--cluster" in token and "pctl eks token" in token


def test_completions_are_the_clients_own(root):
    pctl = installed(root, "/usr/bin/pctl")
    for shell, path in (
        ("bash", "/usr/share/bash-completion/completions/pctl"),
        ("zsh", "/usr/share/zsh/vendor-completions/_pctl"),
        ("fish", "/usr/share/fish/vendor_completions.d/pctl.fish"),
    ):
        r = run(pctl, "completions", shell)
        assert r.returncode == 0, r.stderr
        with open(installed(root, path)) as f:
            assert f.read() == r.stdout, f"{path} differs from `pctl completions {shell}`"


def test_systemd_unit(root, tmp_path):
    with open(installed(root, "/usr/lib/systemd/user/pctl.service")) as f:
        unit = f.read()
    assert re.search(r"^ExecStart=/usr/bin/pctl daemon$", unit, re.M), unit
    assert "%h/.cargo" not in unit
    # Every writable path exists before systemd sets up the sandbox (else the
    # unit fails with 226/NAMESPACE): made by systemd, by a privileged
    # ExecStartPre, or marked optional with "-".
    settings = re.findall(r"^(\w+)=(.*)$", unit, re.M)
    made = {f"%t/{v}" for k, v in settings if k == "RuntimeDirectory"}
    made |= {p for k, v in settings if k == "ExecStartPre" and v.startswith("+") and "mkdir" in v for p in v.split()}
    writable = [p for k, v in settings if k == "ReadWritePaths" for p in v.split()]
    assert writable or made
    for path in writable:
        assert path.startswith("-") or path in made, f"ReadWritePaths={path} may not exist when the unit starts"
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    # verify checks that ExecStart is executable: point it into the throw-away root.
    copy = tmp_path / "pctl.service"
    copy.write_text(unit.replace("ExecStart=/usr/bin/pctl", "ExecStart=" + installed(root, "/usr/bin/pctl")))
    r = run("systemd-analyze", "verify", str(copy))
    # verify exits 0 on unknown keys and bad values too; it only prints them.
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr


def test_copyright_and_changelog(root):
    with open(installed(root, "/usr/share/doc/pctl/copyright")) as f:
        copyright = f.read()
    assert copyright.startswith("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/")
    assert "License: Apache-2.0" in copyright and "@YEAR@" not in copyright
    with gzip.open(installed(root, "/usr/share/doc/pctl/changelog.gz"), "rt") as f:
        first = f.readline()
    assert first.startswith(f"pctl ({workspace_version()}) ")


def test_lintian_finds_no_error(deb):
    if shutil.which("lintian") is None:
        pytest.fail("lintian is not installed: run tests/setup.sh (it installs lintian with apt-get)")
    r = run("lintian", "--fail-on", "error", deb, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not re.search(r"^E: ", r.stdout, re.M), r.stdout
