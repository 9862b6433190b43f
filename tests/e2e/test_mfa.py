"""MFA path: GetSessionToken (serial + current TOTP from 1Password) -> AssumeRole (issue 2).

moto accepts any MFA code and rejects GetSessionToken credentials in auth mode, so this runs
against moto without auth and checks what was *sent*, at a recording proxy.
"""

import json

import pytest

import mfa_rig
import rig



@pytest.fixture
def mfa_env(pctl_env, moto_open, recording_proxy):
    proxy = recording_proxy(moto_open.url)
    env = pctl_env(proxy.url)
    ident = moto_open.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"],
                               mfa_serial=rig.MFA_SERIAL, totp_seed=rig.TOTP_SEED)])
    env.proxy, env.ident, env.moto = proxy, ident, moto_open
    return env


def test_mfa_session_then_assume_role(mfa_env):
    env, proxy, ident = mfa_env, mfa_env.proxy, mfa_env.ident
    out = json.loads(env.ok("credential-process", "--role", "admin").stdout)
    assert out["AccessKeyId"]

    acts = proxy.actions()
    names = [r["action"] for r in acts]
    assert names.count("GetSessionToken") == 1, names
    assert names.count("AssumeRole") == 1, names
    assert names.index("GetSessionToken") < names.index("AssumeRole")
    gst = acts[names.index("GetSessionToken")]
    ar = acts[names.index("AssumeRole")]

    # GetSessionToken: signed with the IAM user's key, carrying the serial and current code
    assert gst["access_key"] == ident["access_key_id"]
    assert gst["params"].get("SerialNumber") == rig.MFA_SERIAL
    code = gst["params"].get("TokenCode")
    assert code and len(code) == 6 and code.isdigit()
    op_calls = env.op_calls("item get")
    assert len(op_calls) == 1
    # the stand-in logs its start time; it computes the code a few ms later
    shown = {rig.totp(rig.TOTP_SEED, at=op_calls[0]["ts"] + d) for d in (0, 1.0)}
    assert code in shown, "TokenCode must be the code 1Password showed at that time"
    valid_now = {rig.totp(rig.TOTP_SEED, at=gst["ts"] + d) for d in (-30, 0)}
    assert code in valid_now, "the code was stale when it reached STS"

    # AssumeRole: signed with the MFA session's key, for the role in the item's account
    assert ar["access_key"] and ar["access_key"] != ident["access_key_id"]
    assert ar["params"]["RoleArn"] == f"arn:aws:iam::{rig.ACCOUNT_ID}:role/{rig.ROLE_NAME}"
    assert int(ar["params"].get("DurationSeconds", 3600)) == 3600
    assert ar["params"].get("RoleSessionName")

    st = env.status()
    assert st["counters"]["get_session_token"] == 1
    assert st["counters"]["assume_role"] == 1
    assert st["counters"]["op_calls"] == 1

    # more requests reuse both sessions
    for _ in range(5):
        env.ok("credential-process", "--role", "admin")
    assert [r["action"] for r in proxy.actions()].count("GetSessionToken") == 1
    assert [r["action"] for r in proxy.actions()].count("AssumeRole") == 1


def test_mfa_code_is_fresh_after_relock(mfa_env):
    """After `pctl lock` + unlock, no code is sent twice: in the same 30 s TOTP step the
    daemon says it waits for the next one-time password and reads none meanwhile; once the
    step has changed, a new op call supplies a new current code (mfa_rig.relock checks
    whichever of the two the clock gives, without waiting for the step)."""
    env, proxy = mfa_env, mfa_env.proxy
    env.ok("credential-process", "--role", "admin")
    if mfa_rig.relock(env, proxy) == "done":
        env.ok("credential-process", "--role", "admin")
        assert len(proxy.actions("GetSessionToken")) == 2


# "An unlock in the same 30 s TOTP step waits for the next code" and "then reads a new
# code" are proven on paused time in crates/pctl-broker/tests/broker.rs
# (mfa_unlock_in_the_same_totp_step_waits_for_the_next_code,
# status_says_an_unlock_waits_for_the_next_code); the test above checks the real daemon
# against the real STS path without waiting up to 30 s for the next step.
