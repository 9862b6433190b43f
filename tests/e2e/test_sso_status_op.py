"""`pctl status` for an IAM Identity Center identity shows no `op:` line: no `op` ran, and
the start URL is on the identity's own line already (found walking the README from the
installed package: status printed "op: IAM Identity Center https://..."). Real binary, moto
(auth on) and the Identity Center stand-in."""

import pytest

import sso_rig
from sso_rig import sso, sso_env, sso_moto  # noqa: F401 (fixtures)


@pytest.fixture
def env(sso_env):
    return sso_env


def test_status_of_an_sso_identity_names_no_op(env):
    rc, out, err = sso_rig.approve(env, "unlock", "--identity", "corp")
    assert rc == 0, err + env.daemon_log_tail()
    text = env.ok("status").stdout
    assert "signed in" in text and sso_rig.START_URL in text, text
    assert not [l for l in text.splitlines() if l.startswith("op:")], text
    st = env.status()
    assert st.get("op_path") is None, st
    assert [i.get("op_path") for i in st["identities"]] == [None], st["identities"]
