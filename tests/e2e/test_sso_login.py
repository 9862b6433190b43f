"""`pctl login` with IAM Identity Center roles (issue 17 §2): console federation with the
session GetRoleCredentials gave (and with a role chained from it), end to end: the real
binary, moto (auth on), the Identity Center stand-in and the federation stand-in
(tests/fixtures/federation_server.py), which checks the Session JSON against the sessions
moto issued and, like AWS for a chained session, refuses SessionDuration."""

import json
import os

import pytest

import rig
import sso_rig
from sso_rig import sso, sso_env, sso_moto  # noqa: F401 (fixtures)
from test_login import Federation, assert_login_url, follow_link

SSO_CONFIG = sso_rig.IDENTITY + sso_rig.role("dev", "Dev") + f"""
[roles.chained]
source_role = "dev"
arn = "arn:aws:iam::{rig.ACCOUNT_ID}:role/Chained"
"""
SSO_CHAINED = ["Chained"]


@pytest.fixture
def fed(tmp_path, sso_moto):
    f = Federation(str(tmp_path / "fed"), sso_moto.url, refuse_duration=True)
    yield f
    f.stop()


@pytest.fixture
def env(sso_env, fed):
    sso_env.env["PCTL_FEDERATION_ENDPOINT"] = fed.url
    return sso_env


def test_login_with_an_sso_role_and_a_role_chained_from_it(env, fed):
    rc, out, err = sso_rig.approve(env, "unlock")
    assert rc == 0, err + env.daemon_log_tail()
    dev = json.loads(env.ok("credential-process", "--role", "dev").stdout)
    r = env.ok("login", "--role", "dev", "--stdout", "--region", "eu-west-1")
    assert_login_url(r.stdout.strip(), fed,
                     "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1")
    rec = fed.records()[-1]
    # the session the portal gave (moto knows it), the cached one, without SessionDuration
    assert rec["status"] == 200 and rec["session_id"] == dev["AccessKeyId"], rec
    assert rec["role_arn"].endswith(":role/Dev"), rec
    assert rec["session_duration"] is None, rec
    # a role chained from it: role chaining for AWS, no SessionDuration either
    r = env.ok("login", "--role", "chained", "--stdout", "--duration", "3h")
    assert "1h" in r.stderr.strip().splitlines()[-1], r.stderr
    url = r.stdout.strip()
    assert_login_url(url, fed,
                     "https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1")
    rec = fed.records()[-1]
    assert rec["status"] == 200 and rec["role_arn"].endswith(":role/Chained"), rec
    # through the browser: the opener gets the one-shot link, which leads to the same sign-in
    env.env["BROWSER"] = ""
    env.env["PATH"] = os.path.join(rig.FIXTURES, "bin-opener") + os.pathsep + env.env["PATH"]
    env.ok("login", "--role", "dev")
    opened = rig.read_jsonl(env.opener_log)[-1]
    assert_login_url(follow_link(opened["args"][0]), fed,
                     "https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1")
    # one sign-in, one portal call for dev; audited as console_login, never a token
    assert env.sso.state()["counts"]["StartDeviceAuthorization"] == 1
    assert env.sso.state()["counts"]["GetRoleCredentials"] == 1
    audit = rig.read_jsonl(os.path.join(env.state_dir, "audit.log"))
    assert [a["role"] for a in audit if a["issued"] == "console_login"] == [
        "dev", "chained", "dev"], audit
    text = open(os.path.join(env.state_dir, "audit.log")).read()
    for values in env.sso.secrets().values():
        assert not any(v in text for v in values)
