"""IAM Identity Center tokens (issue 17) live only in the daemon's locked memory: before
`pctl lock` the scan finds the access token, refresh token and client secret in locked,
dontdump pages (so the scan sees them); after lock it finds 0 copies. No file under
HOME, the XDG directories or TMPDIR ever holds them (no ~/.aws/sso/cache)."""

import json
import os
import time

import pytest

import rig
import secutil
import sso_rig
from sso_rig import sso, sso_env, sso_moto  # noqa: F401 (fixtures)

SSO_CONFIG = sso_rig.IDENTITY + sso_rig.role("dev", "Dev")
SSO_ACCOUNTS = [{"accountId": rig.ACCOUNT_ID, "accountName": "platform",
                 "emailAddress": "p@example.com", "roles": ["Dev"]}]


@pytest.fixture
def env(sso_env):
    return sso_env


def _sign_in(env, *args):
    rc, out, err = sso_rig.approve(env, *args)
    assert rc == 0, err + env.daemon_log_tail()
    return out


def _needles(env):
    s = env.sso.secrets()
    out = {}
    for kind, label in (("access_tokens", "access token"), ("refresh_tokens", "refresh token"),
                        ("client_secrets", "client secret")):
        for i, v in enumerate(s[kind]):
            out[f"{label} #{i}"] = v
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="reading the non-dumpable daemon's memory "
                                              "needs root (CAP_SYS_PTRACE)")
@pytest.mark.timeout(120)
def test_no_sso_token_in_daemon_memory_after_lock(env):
    cp = json.loads(_sign_in(env, "credential-process", "--role", "dev"))
    env.sso.expire_tokens()  # one refresh: two access and two refresh tokens issued
    env.ok("sso", "roles")
    assert env.sso.state()["counts"]["CreateToken:refresh_token"] == 1
    pid = env.status()["pid"]
    needles = _needles(env)
    needles["role session secret"] = cp["SecretAccessKey"]
    before = secutil.by_label(secutil.scan(pid, needles))
    for label in ("access token #1", "refresh token #1", "client secret #0"):
        assert before.get(label), (f"the scan did not find the live {label}: it is blind, "
                                   "so a clean result after lock would prove nothing")
        assert any({"lo", "dd"} <= h.flags for h in before[label]), (
            f"no copy of the {label} is in a locked + dontdump page:\n"
            + secutil.report(before[label]))
    env.ok("lock")
    time.sleep(0.3)
    after = secutil.scan(pid, needles)
    assert not after, (f"{len(after)} SSO secret copies remain in daemon pid {pid} after "
                       "lock:\n" + secutil.report(after))
    assert secutil.vmlck_kb(pid) == 0, "locked pages still held after lock"


def test_no_sso_token_in_any_file(env):
    _sign_in(env, "credential-process", "--role", "dev")
    env.sso.expire_tokens()
    env.ok("sso", "roles")
    env.ok("lock")
    needles = _needles(env)
    assert len(needles) >= 5
    hits = rig.scan_tree_for([env.root], needles)
    assert not hits, hits
    assert not os.path.exists(os.path.join(env.home, ".aws", "sso"))
