"""Role sessions are cached by everything that built them (issue 17 §2): after the config
gives a role an external ID or another source role, the next request assumes the role
again instead of answering the session built without them. Real binary against moto (auth
on) and the Identity Center stand-in; a recording proxy shows each AssumeRole."""

import json
import time

import pytest

import rig
import sso_rig
from sso_rig import sso, sso_env, sso_moto  # noqa: F401 (fixtures)

CHAINED_ARN = f"arn:aws:iam::{rig.ACCOUNT_ID}:role/Chained"

ROLES = sso_rig.IDENTITY + sso_rig.role("dev", "Dev") + sso_rig.role("ro", "ReadOnly")


def chained(source, extra=""):
    return ROLES + f'\n[roles.chained]\nsource_role = "{source}"\narn = "{CHAINED_ARN}"\n{extra}'


SSO_CONFIG = chained("dev")
SSO_CHAINED = ["Chained"]


@pytest.fixture
def env(sso_env, recording_proxy):
    sso_env.proxy = recording_proxy(sso_env.moto.url)
    sso_env.env["AWS_ENDPOINT_URL_STS"] = sso_env.proxy.url
    return sso_env


def caller(env, cp):
    sts = env.moto.client("sts", cp["AccessKeyId"], cp["SecretAccessKey"], cp["SessionToken"])
    return sts.get_caller_identity()["Arn"]


def test_external_id_and_source_role_changes_build_a_new_session(env):
    rc, out, err = sso_rig.approve(env, "credential-process", "--role", "chained")
    assert rc == 0, err + env.daemon_log_tail()
    first = json.loads(out)
    assert json.loads(env.ok("credential-process", "--role", "chained").stdout) == first
    assert len(env.proxy.actions("AssumeRole")) == 1
    # the role now needs an external ID: a new AssumeRole sends it
    env.write_config(text=chained("dev", 'external_id = "team-ext-2"\n'))
    second = json.loads(env.ok("credential-process", "--role", "chained").stdout)
    calls = [c["params"] for c in env.proxy.actions("AssumeRole")]
    assert len(calls) == 2 and calls[1].get("ExternalId") == "team-ext-2", calls
    assert second["AccessKeyId"] != first["AccessKeyId"]
    # assumed from another source role: a new session, through that role's session
    env.write_config(text=chained("ro", 'external_id = "team-ext-2"\n'))
    third = json.loads(env.ok("credential-process", "--role", "chained").stdout)
    assert len(env.proxy.actions("AssumeRole")) == 3
    assert third["AccessKeyId"] not in (first["AccessKeyId"], second["AccessKeyId"])
    assert caller(env, third) == f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/Chained/pctl"
    # one sign-in served all of it
    assert env.sso.state()["counts"]["StartDeviceAuthorization"] == 1


# --------------------------------------------------------------------------
# --duration and --region (as aws-vault has them) on credential-process, exec and login


def last_line(err):
    return err.strip().splitlines()[-1]


def test_duration_is_clamped_per_session_kind_and_keys_the_cache(env):
    rc, out, err = sso_rig.approve(env, "credential-process", "--role", "chained",
                                   "--duration", "2h")
    assert rc == 0, err + env.daemon_log_tail()
    # a chain gets at most the hour AWS allows, said in one line
    note = [l for l in err.splitlines() if "--duration" in l]
    assert len(note) == 1 and note[0].startswith("pctl: ") and "1h" in note[0], err
    calls = [c["params"] for c in env.proxy.actions("AssumeRole")]
    assert [c["DurationSeconds"] for c in calls] == ["3600"], calls
    # another duration is another session; the same one is served from the cache
    r = env.ok("credential-process", "--role", "chained", "--duration", "30m")
    assert "--duration" not in r.stderr, r.stderr
    env.ok("credential-process", "--role", "chained", "--duration", "30m")
    calls = [c["params"] for c in env.proxy.actions("AssumeRole")]
    assert [c["DurationSeconds"] for c in calls] == ["3600", "1800"], calls
    a = json.loads(env.ok("credential-process", "--role", "chained", "--duration", "30m").stdout)
    assert caller(env, a).endswith("assumed-role/Chained/pctl")
    # an Identity Center role's length is its permission set's: said, not asked for
    r = env.ok("credential-process", "--role", "dev", "--duration", "4h")
    assert "permission set" in last_line(r.stderr), r.stderr
    assert json.loads(r.stdout)["AccessKeyId"].startswith("ASIA")


def test_region_reaches_exec_and_the_assume_role_call(env, aws_cli):
    sso_rig.approve(env, "unlock")
    r = env.ok("exec", "--role", "chained", "--region", "eu-west-1", "--duration", "20m",
               "--", "env", env={"AWS_DEFAULT_REGION": "us-west-2"})
    lines = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
    assert lines["AWS_REGION"] == "eu-west-1" and lines["AWS_DEFAULT_REGION"] == "eu-west-1"
    # aws-vault's order: the role first, then the flags
    r = env.ok("exec", "--duration", "20m", "chained", "--region", "eu-west-1", "--", "env")
    assert "AWS_REGION=eu-west-1" in r.stdout
    calls = [c["params"] for c in env.proxy.actions("AssumeRole")]
    assert [c["DurationSeconds"] for c in calls] == ["1200"], calls
    # exec --server: the endpoint serves the session of that duration and region
    r = env.ok("exec", "--server", "--role", "chained", "--duration", "2h", "--region",
               "eu-west-1", "--", aws_cli, "sts", "get-caller-identity", "--output", "json")
    assert json.loads(r.stdout)["Arn"].endswith("assumed-role/Chained/pctl"), r.stdout
    assert "1h" in r.stderr and "--duration 2h" in r.stderr, r.stderr
    # a bad region: one line, nothing issued
    r = env.run("credential-process", "--role", "chained", "--region", "Mars")
    assert r.returncode != 0 and r.stdout == ""
    assert last_line(r.stderr).startswith("pctl: --region") and "Mars" in r.stderr, r.stderr
    r = env.run("credential-process", "--role", "chained", "--duration", "soon")
    assert r.returncode != 0 and "15m, 1h, 12h" in r.stderr, r.stderr


# --------------------------------------------------------------------------
# pctl status: the sign-in's state, never a token


def test_status_shows_the_sign_in_state(env):
    def corp(st):
        return next(i for i in st["identities"] if i["name"] == "corp")
    s = corp(env.status())["sso"]
    assert s["start_url"] == sso_rig.START_URL and not s["signed_in"], s
    assert "not signed in" in env.ok("status").stdout
    # while the device authorization waits for the user
    p = env.popen("unlock")
    try:
        dev = env.sso.wait_device()
        # the stand-in answered StartDeviceAuthorization; the daemon marks the
        # sign-in pending once it has read that answer
        s = rig.wait_until(lambda: (lambda s: s["sign_in_pending"] and s)(corp(env.status())["sso"]),
                           timeout=15, what="the sign-in pending in status")
        assert not s["signed_in"], s
        assert "waiting for approval" in env.ok("status").stdout
        env.sso.device("approve", dev["user_code"])
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    st = env.status()
    s = corp(st)["sso"]
    assert s["signed_in"] and s["refresh_available"] and not s["sign_in_pending"], s
    left = rig.parse_rfc3339(s["token_expires"]).timestamp() - time.time()
    assert 0 < left <= 8 * 3600, s
    text = env.ok("status").stdout
    line = next(l for l in text.splitlines() if "IAM Identity Center" in l)
    assert "signed in" in line and "token expires" in line and "(in " in line, text
    assert "refresh available" in line, text
    dump = json.dumps(st) + text
    for values in env.sso.secrets().values():
        assert not any(v in dump for v in values)
    # after lock: not signed in
    env.ok("lock")
    assert not corp(env.status())["sso"]["signed_in"]
