"""The include `pctl sso sync` writes names the command that manages it, quoted whole:
"# Managed by `pctl sso sync --identity corp`: ..." (found walking the README from the
installed package: the backquote stood after `sync`, leaving the flag outside). Real binary,
moto (auth on) and the Identity Center stand-in."""

import os

import pytest

import sso_rig
from sso_rig import sso, sso_env, sso_moto  # noqa: F401 (fixtures)


@pytest.fixture
def env(sso_env):
    return sso_env


def test_include_header_quotes_the_whole_command(env):
    rc, out, err = sso_rig.approve(env, "sso", "sync")
    assert rc == 0, err + env.daemon_log_tail()
    include = os.path.join(os.path.dirname(env.config_path), "sso-corp.toml")
    with open(include) as f:
        first = f.readline().rstrip("\n")
    assert first == "# Managed by `pctl sso sync --identity corp`: each sync rewrites this file.", first
    # a second sync recognises its own file and changes nothing
    before = open(include).read()
    r = env.run("sso", "sync")
    assert r.returncode == 0, r.stderr
    assert open(include).read() == before
