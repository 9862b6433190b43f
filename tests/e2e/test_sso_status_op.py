"""`pctl status` for an IAM Identity Center identity shows no `op:` line: no `op` ran, and
the start URL is on the identity's own line already (found walking the README from the
installed package: status printed "op: IAM Identity Center https://..."). Real binary, moto
(auth on) and the Identity Center stand-in."""

import pytest

import sso_rig


@pytest.fixture(scope="module")
def sso_moto(tmp_path_factory):
    m = sso_rig.start_moto(str(tmp_path_factory.mktemp("moto-sso-status")))
    yield m
    m.stop()


@pytest.fixture
def env(pctl_env, sso_moto, tmp_path):
    s = sso_rig.SsoServer(str(tmp_path / "sso"), sso_moto.url, sso_moto.sso_keys).start()
    s.assign(sso_rig.ACCOUNTS)
    e = sso_rig.pctl_env_for(pctl_env, sso_moto, s, tmp_path)
    yield e
    s.stop()


def test_status_of_an_sso_identity_names_no_op(env):
    rc, out, err = sso_rig.approve(env, "unlock", "--identity", "corp")
    assert rc == 0, err + env.daemon_log_tail()
    text = env.ok("status").stdout
    assert "signed in" in text and sso_rig.START_URL in text, text
    assert not [l for l in text.splitlines() if l.startswith("op:")], text
    st = env.status()
    assert st.get("op_path") is None, st
    assert [i.get("op_path") for i in st["identities"]] == [None], st["identities"]
