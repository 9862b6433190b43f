"""What the docs point to is in the packages (issue 21, item 9): the shell prompt segments,
the starship module and the interface reference; man pages with FILES, ENVIRONMENT, EXIT
STATUS and EXAMPLES, the config reference pctl.toml(5) and the daemon's page pctl-daemon(8).

Checked on the installed contents: the .deb unpacked with dpkg-deb and read with `man`, and
the release tarball with Python's tarfile."""

import os
import re
import shutil
import subprocess
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED_SHELL = ("prompt.bash", "prompt.zsh", "prompt.fish", "starship.toml",
                 "pctl.bash", "pctl.zsh", "pctl.fish")

# packaging/build.sh rebuilds target/package/debug: never beside test_deb.py or
# test_tarball_and_formula.py (the same xdist group as theirs)
pytestmark = pytest.mark.xdist_group("packaging-build")
needs_deb = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="not a Debian system: no dpkg-deb")
needs_man = pytest.mark.skipif(shutil.which("man") is None, reason="man (man-db) not installed")


def run(*argv, timeout=120, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def installed(root, path):
    """Where the package's absolute `path` is in the unpacked `root` (the conftest's fixture)."""
    return os.path.join(root, path.lstrip("/"))


def man(root, *args):
    """`man` over the package's own man tree only, as a user would read it once installed."""
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MANPATH=installed(root, "/usr/share/man"))
    r = run("man", "--warnings", "-P", "cat", *args, env=env)
    assert r.returncode == 0 and not r.stderr.strip(), f"man {' '.join(args)}: {r.stderr}"
    return r.stdout


def headings(page):
    """The section headings: the lines man does not indent."""
    return re.findall(r"^(\S.*?)\s*$", page, re.M)


@needs_deb
def test_deb_ships_prompt_scripts_starship_and_interface_reference(root):
    for name in SHIPPED_SHELL:
        path = installed(root, f"/usr/share/pctl/{name}")
        assert os.path.isfile(path), f"/usr/share/pctl/{name} missing from the package"
        with open(path) as got, open(os.path.join(REPO, "shell", name)) as want:
            assert got.read() == want.read(), name
        assert os.stat(path).st_mode & 0o777 == 0o644
    with open(installed(root, "/usr/share/doc/pctl/interface.md")) as got, \
            open(os.path.join(REPO, "docs", "interface.md")) as want:
        assert got.read() == want.read()
    # the installed prompt segments parse in their shells
    for shell, name, check in (("bash", "prompt.bash", ["-n"]), ("zsh", "prompt.zsh", ["-n"]),
                               ("fish", "prompt.fish", ["--no-execute"])):
        if shutil.which(shell):
            r = run(shell, *check, installed(root, f"/usr/share/pctl/{name}"))
            assert r.returncode == 0, f"{shell}: {r.stderr}"


@needs_deb
@needs_man
def test_pctl_1_has_files_environment_exit_status_examples(root):
    page = man(root, "1", "pctl")
    found = headings(page)
    for want in ("FILES", "ENVIRONMENT", "EXIT STATUS", "EXAMPLES", "SEE ALSO"):
        assert want in found, f"{want} missing from pctl(1): {found}"
    flat = " ".join(page.split())
    for want in ("PCTL_CONFIG", "PCTL_SOCK", "~/.config/pctl/config.toml", "pctl.sock",
                 "/usr/share/pctl/", "pctl prompt: the daemon is locked", "pctl init",
                 "pctl.toml(5)", "pctl-daemon(8)"):
        assert want in flat, f"{want} missing from pctl(1)"
    # every subcommand's page points back to pctl(1) and the config reference
    token = " ".join(man(root, "pctl-eks-token").split())
    assert "SEE ALSO pctl(1), pctl.toml(5), pctl-daemon(8)" in token, token[-400:]


def raw_config_keys():
    """Every key the daemon's config parser accepts (the fields of its Raw* structs and of
    FieldLabels), as (table, key)."""
    with open(os.path.join(REPO, "crates", "pctl-broker", "src", "config", "parse.rs")) as f:
        parse = f.read()
    with open(os.path.join(REPO, "crates", "pctl-broker", "src", "config", "model.rs")) as f:
        model = f.read()

    def fields(src, struct):
        body = re.search(rf"struct {struct} \{{(.*?)\n\}}", src, re.S).group(1)
        return re.findall(r"^\s+(?:pub )?(\w+):", body, re.M)

    keys = {("", k) for k in fields(parse, "RawConfig")
            if k not in ("daemon", "onepassword", "identities", "roles", "clusters")}
    keys |= {("daemon", k) for k in fields(parse, "RawDaemon")}
    keys |= {("onepassword", k) for k in fields(parse, "RawOnePassword") if k != "fields"}
    keys |= {("onepassword.fields", k) for k in fields(model, "FieldLabels")}
    keys |= {("roles", k) for k in fields(parse, "RawRole")}
    keys |= {("clusters", k) for k in fields(parse, "RawCluster")}
    assert len(keys) > 30, keys  # the structs were found
    return keys


@needs_deb
@needs_man
def test_config_reference_describes_every_key(root):
    page = man(root, "5", "pctl.toml")
    assert re.search(r"^NAME\n\s+pctl\.toml - ", page, re.M), page[:300]
    found = headings(page)
    for want in ("[daemon]", "[onepassword] and [identities.NAME]", "[onepassword.fields]",
                 "[roles.NAME]", "[clusters.NAME]", "EXAMPLES", "SEE ALSO"):
        assert want in found, f"{want} missing from pctl.toml(5): {found}"
    # split the page at its headings: each key is described under its own table
    parts = re.split(r"^(\S.*)$", page, flags=re.M)
    under = {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    table_heading = {"": "TOP-LEVEL KEYS", "daemon": "[daemon]",
                     "onepassword": "[onepassword] and [identities.NAME]",
                     "onepassword.fields": "[onepassword.fields]", "roles": "[roles.NAME]",
                     "clusters": "[clusters.NAME]"}
    missing = [f"{t}.{k}" for t, k in sorted(raw_config_keys())
               if not re.search(rf"^       {k} \(", under[table_heading[t]], re.M)]
    assert not missing, f"pctl.toml(5) does not describe {missing}"
    # the example in the page is a config the daemon accepts
    assert 'mfa = "prompt"' in page and "session_name" in page


@needs_deb
@needs_man
def test_daemon_page_describes_the_daemon_binary(root):
    page = man(root, "8", "pctl-daemon")
    assert re.search(r"^NAME\n\s+pctl-daemon - ", page, re.M), page[:300]
    for want in ("SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT", "FILES", "EXIT STATUS",
                 "EXAMPLES", "SEE ALSO"):
        assert want in headings(page), f"{want} missing from pctl-daemon(8)"
    # every option of the installed daemon is described
    help_text = run(installed(root, "/usr/bin/pctl-daemon"), "--help").stdout
    options = set(re.findall(r"--[a-z][a-z-]+", help_text))
    assert "--log-file" in options, help_text
    for opt in options:
        assert re.search(rf"^       (-\w, )?{opt}\b", page, re.M), f"{opt} not in pctl-daemon(8)"
    assert "PCTL_LOG" in page


def test_tarball_and_formula_ship_the_same(tarball):
    tarball = tarball[0]
    top = os.path.basename(tarball).removesuffix(".tar.gz")
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        want = [f"share/pctl/{n}" for n in SHIPPED_SHELL] + [
            "share/doc/pctl/interface.md", "share/man/man5/pctl.toml.5", "share/man/man8/pctl-daemon.8"]
        for path in want:
            assert f"{top}/{path}" in names, f"{path} missing from the tarball"
        page = tar.extractfile(f"{top}/share/man/man1/pctl.1").read().decode()
    assert '.SH "EXIT STATUS"' in page and ".SH FILES" in page
    with open(os.path.join(REPO, "packaging", "homebrew", "pctl.rb")) as f:
        formula = f.read()
    for want in ('man5.install "share/man/man5/pctl.toml.5"', 'man8.install "share/man/man8/pctl-daemon.8"',
                 'pkgshare.install Dir["share/pctl/*"]', '"share/doc/pctl/interface.md"'):
        assert want in formula, want
