"""The standard test configs are written once, in tests/fixtures/pctl.toml (one identity)
and tests/fixtures/pctl-identities.toml (two) (issue 16 §2): the pytest rig, the Rust tests
and the sandbox read them, and a test that needs another config derives it. This fails when
a copy of one appears in a source file elsewhere: six or more of its lines in a row (tables
by name, keys by name whatever their value, so a copy with placeholders or other values
counts too), in a Python or shell file or in a Rust string (one line with \\n escapes
included)."""

import glob

import os
import re
import subprocess

import rig

RUN = 6  # lines of the fixture in a row that make a copy
SOURCES = (".py", ".rs", ".sh", ".toml", ".bash", ".zsh", ".fish")


def shapes(text):
    """Each meaningful TOML-looking line as a shape: `[table]`, or `key =` for a key."""
    text = text.replace("\\n", "\n").replace('\\"', '"')
    out = []
    for line in text.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"(\[[^\]]+\])", line) or re.match(r"([A-Za-z0-9_.]+) = ", line)
        out.append(m.group(1) if m else None)
    return out


FIXTURE_FILES = sorted(glob.glob(os.path.join(rig.FIXTURES, "pctl*.toml")))
WINDOWS = set()
for _path in FIXTURE_FILES:
    _s = shapes(open(_path).read())
    WINDOWS |= {tuple(_s[i:i + RUN]) for i in range(len(_s) - RUN + 1)}


def copies_in(text):
    """Line numbers (among the meaningful ones) where a run of the fixture starts."""
    s = shapes(text)
    return [i for i in range(len(s) - RUN + 1) if tuple(s[i:i + RUN]) in WINDOWS]


def source_files():
    r = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       cwd=rig.REPO, capture_output=True, text=True, timeout=60)
    if r.returncode == 0:
        names = [n for n in r.stdout.split("\0") if n]
    else:  # not a git checkout (an unpacked tarball): every file but the build trees
        names = []
        for d, dirs, files in os.walk(rig.REPO):
            dirs[:] = [x for x in dirs if x not in (".git", "target", ".venv", ".venv-checkov")]
            names += [os.path.relpath(os.path.join(d, f), rig.REPO) for f in files]
    fixtures = {os.path.relpath(p, rig.REPO) for p in FIXTURE_FILES}
    return [n for n in names if n.endswith(SOURCES) and n not in fixtures
            and os.path.isfile(os.path.join(rig.REPO, n))]


def test_the_detector_finds_copies_in_every_form():
    assert [os.path.basename(p) for p in FIXTURE_FILES] == ["pctl-identities.toml",
                                                           "pctl.toml"], FIXTURE_FILES
    for path in FIXTURE_FILES:
        text = open(path).read()
        assert len(shapes(text)) >= RUN + 4 and None not in shapes(text), path
        # a Python template with placeholders, a shell heredoc, a Rust one-line string
        template = re.sub(r'= "[^"]*"', '= "{x}"', text)
        assert copies_in(f'CFG = """\\\n{template}"""\n'), path
        assert copies_in(f"cat >config.toml <<'TOML'\n{text}TOML\n"), path
        one_line = text.replace("\n", "\\n").replace('"', '\\"')
        assert copies_in(f'let c = parse("{one_line}");\n'), path
    # a variant derived from it is not a copy
    assert not copies_in("text = rig.config_text(idle_lock=\"1s\")\n"
                         '[roles.audit]\nname = "x"\nduration = "1h"\n')


def test_the_standard_config_is_written_once():
    files = source_files()
    assert len(files) > 50 and "tests/fixtures/rig.py" in files, files[:20]
    found = []
    for name in files:
        try:
            with open(os.path.join(rig.REPO, name), encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        if copies_in(text):
            found.append(name)
    assert found == [], (
        f"a copy of a standard test config ({FIXTURE_FILES}) in {found}: derive the "
        "config from the fixture instead (rig.config_text(...) in Python, include_str! and a "
        "replace in Rust, the file itself in shell)")


def test_the_rig_writes_the_fixture():
    body = "".join(l for l in open(rig.STANDARD_CONFIG) if not l.startswith("#"))
    assert rig.config_text() == body
    assert rig.config_text(role="other", op_timeout="3s") == body.replace(
        f'name = "{rig.ROLE_NAME}"', 'name = "other"').replace(
        'op_timeout = "20s"', 'op_timeout = "3s"')
