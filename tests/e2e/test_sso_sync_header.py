"""The include `pctl sso sync` writes names the command that manages it, quoted whole:
"# Managed by `pctl sso sync --identity corp`: ..." (found walking the README from the
installed package: the backquote stood after `sync`, leaving the flag outside). Real binary,
moto (auth on) and the Identity Center stand-in."""

import os

import pytest

import sso_rig


@pytest.fixture(scope="module")
def sso_moto(tmp_path_factory):
    m = sso_rig.start_moto(str(tmp_path_factory.mktemp("moto-sso-header")))
    yield m
    m.stop()


@pytest.fixture
def env(pctl_env, sso_moto, tmp_path):
    s = sso_rig.SsoServer(str(tmp_path / "sso"), sso_moto.url, sso_moto.sso_keys).start()
    s.assign(sso_rig.ACCOUNTS)
    e = sso_rig.pctl_env_for(pctl_env, sso_moto, s, tmp_path)
    yield e
    s.stop()


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
