"""IAM Identity Center sign-in (issue 17) end to end: pctl against moto (auth on) and the
Identity Center stand-in (tests/fixtures/sso_server.py), through the real aws CLI for
credential_process. The "browser" is the opener stand-in (tests/fixtures/bin-opener) via
$BROWSER; the test plays the user through the stand-in's control API."""

import concurrent.futures
import json
import os
import subprocess

import pytest

import desktop_rig as d
import rig
import sso_rig
from sso_rig import sso, sso_env, sso_moto  # noqa: F401 (fixtures)

DEV_ARN = f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/Dev/sso-user"
RO_ARN = f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/ReadOnly/sso-user"

CONFIG = sso_rig.IDENTITY + sso_rig.role("dev", "Dev") + sso_rig.role("ro", "ReadOnly")
SSO_CONFIG = CONFIG
SSO_CHAINED = ["Chained"]  # a role assumed from the Dev session (role chaining)


@pytest.fixture
def env(sso_env):
    return sso_env


def aws_config(env, pctl_bin):
    path = os.path.join(env.home, ".aws", "config")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for role in ("dev", "ro"):
            f.write(f"[profile {role}]\ncredential_process = {pctl_bin} credential-process "
                    f"--role {role}\nregion = us-east-1\n\n")
    return {"AWS_CONFIG_FILE": path,
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(env.home, "none")}


def caller(env, aws_cli, profile, pctl_bin):
    r = env.run_tool([aws_cli, "sts", "get-caller-identity", "--profile", profile,
                      "--output", "json"], env=aws_config(env, pctl_bin), timeout=90)
    assert r.returncode == 0, r.stderr + env.daemon_log_tail()
    return json.loads(r.stdout)["Arn"]


def approve(env, *args):
    rc, out, err, dev = sso_rig.sign_in_with(env, "approve", *args)
    assert rc == 0, err + env.daemon_log_tail()
    return out, err, dev


def test_sign_in_serves_the_aws_cli_and_opens_the_complete_url(env, aws_cli, pctl_bin):
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(caller, env, aws_cli, "dev", pctl_bin)
        dev = env.sso.wait_device()
        env.sso.device("approve", dev["user_code"])
        assert fut.result(timeout=90) == DEV_ARN
    opened = rig.read_jsonl(env.opener_log)
    assert len(opened) == 1, opened
    assert opened[0]["args"][-1].endswith("/device?user_code=" + dev["user_code"]), opened
    # served from then on without a new sign-in, for every role of the identity
    assert caller(env, aws_cli, "ro", pctl_bin) == RO_ARN
    assert caller(env, aws_cli, "dev", pctl_bin) == DEV_ARN
    st = env.sso.state()["counts"]
    assert st["StartDeviceAuthorization"] == 1 and st["RegisterClient"] == 1, st
    # polled no sooner than the interval (RFC 8628; slow_down: src/source/sso/mod.rs)
    assert env.sso.state()["too_early"] == 0, env.sso.state()
    # the sign-in asked for sso:account:access (a refresh token)
    assert env.sso.records("RegisterClient")[0]["scopes"] == ["sso:account:access"]
    # audit: the sign-in (start URL) and each role session, never a token
    audit = rig.read_jsonl(os.path.join(env.state_dir, "audit.log"))
    kinds = [a["issued"] for a in audit]
    assert "sso sign-in" in kinds, audit
    signin = next(a for a in audit if a["issued"] == "sso sign-in")
    assert signin["role"] == "identity corp" and sso_rig.START_URL in signin["op_path"], signin
    assert {a.get("role") for a in audit if a["issued"] == "credentials"} >= {"dev", "ro"}
    text = open(os.path.join(env.state_dir, "audit.log")).read()
    secrets = env.sso.secrets()
    for values in secrets.values():
        for v in values:
            assert v not in text


def test_terminal_less_client_prints_url_and_code(env):
    out, err, dev = approve(env, "credential-process", "--role", "dev")
    assert json.loads(out)["AccessKeyId"].startswith("ASIA")
    assert dev["user_code"] in err and "/device" in err, err
    assert "corp" in err and sso_rig.START_URL in err, err


def test_denied_sign_in_fails_naming_identity_and_is_not_cached(env):
    rc, out, err, _ = sso_rig.sign_in_with(env, "deny", "credential-process", "--role", "dev")
    assert rc != 0 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("pctl: ") and "corp" in last and "denied" in last, err
    # the next request asks again
    out, _, _ = approve(env, "credential-process", "--role", "dev")
    assert json.loads(out)["AccessKeyId"]
    assert env.sso.state()["counts"]["StartDeviceAuthorization"] == 2


def test_expired_sign_in_fails_naming_identity(env):
    rc, out, err, _ = sso_rig.sign_in_with(env, "expire", "credential-process", "--role", "dev")
    assert rc != 0 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("pctl: ") and "corp" in last and "expired" in last, err


# RFC 8628's slow_down (each one adds 5 s to the polling interval, and no poll comes
# sooner than the interval in force) is proven on paused time in
# crates/pctl-broker/src/source/sso/mod.rs (slow_down_adds_five_seconds_to_the_interval,
# polls_at_least_a_second_apart_until_expiry_or_refusal), and the SDK's reading of
# IAM Identity Center's SlowDownException answer in crates/pctl-broker/src/aws/sso.rs
# (create_token_errors_are_read_from_the_wire). End to end it cannot be shown in under
# 6 s (the interval is whole seconds, at least 1, plus 5): the sign-in tests here poll
# the stand-in, which answers slow_down to any poll sooner than the interval.


def test_expired_access_token_is_refreshed_before_any_new_sign_in(env):
    approve(env, "credential-process", "--role", "dev")
    env.sso.expire_tokens()  # the portal now refuses the access token
    out = env.ok("credential-process", "--role", "ro").stdout  # not cached: needs the portal
    assert json.loads(out)["AccessKeyId"].startswith("ASIA")
    counts = env.sso.state()["counts"]
    assert counts["StartDeviceAuthorization"] == 1, counts
    assert counts.get("CreateToken:refresh_token") == 1, counts
    audit = rig.read_jsonl(os.path.join(env.state_dir, "audit.log"))
    assert [a["role"] for a in audit if a["issued"] == "sso refresh"] == ["identity corp"]
    # a refused refresh falls back to a new sign-in, only when a client asks
    env.sso.expire_tokens()
    env.sso.revoke_refresh()
    assert env.sso.state()["counts"]["StartDeviceAuthorization"] == 1
    out, _, _ = approve(env, "sso", "roles")  # needs the portal: refresh refused, sign in
    assert rig.ACCOUNT_ID in out
    counts = env.sso.state()["counts"]
    assert counts["StartDeviceAuthorization"] == 2 and counts["CreateToken:refresh_token"] == 2


def test_ten_concurrent_cold_requests_one_device_authorization(env):
    procs = [env.popen("credential-process", "--role", "dev" if i % 2 else "ro")
             for i in range(10)]
    try:
        dev = env.sso.wait_device()
        rig.wait_until(lambda: env.sso.state()["devices"][-1]["polls"] >= 1, timeout=20,
                       what="the first poll")
        env.sso.device("approve", dev["user_code"])
        results = [(p.communicate(timeout=90), p.returncode) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for (out, err), rc in results:
        assert rc == 0, err + env.daemon_log_tail()
        assert json.loads(out)["AccessKeyId"].startswith("ASIA")
    counts = env.sso.state()["counts"]
    assert counts["StartDeviceAuthorization"] == 1 and counts["RegisterClient"] == 1, counts
    assert len(rig.read_jsonl(env.opener_log)) == 1


def test_no_terminal_no_opener_says_run_unlock(env, tmp_path):
    # without a terminal the daemon would show the URL in pinentry: here there is none, and
    # no opener ($BROWSER empty, no xdg-open on PATH), so nothing starts
    env.write_config(text=CONFIG + '\n[daemon]\npinentry = "/nonexistent/pinentry-gnome3"\n')
    r = d.notty(env, "credential-process", "--role", "dev",
                extra={"BROWSER": "", "PATH": str(tmp_path)})
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("pctl: ") and "pctl unlock --identity corp" in last, r.stderr
    assert env.sso.state()["counts"].get("StartDeviceAuthorization") is None


def test_unlock_signs_in_and_lock_refuses_until_unlock(env):
    approve(env, "unlock")
    assert env.ok("credential-process", "--role", "dev").stdout
    env.ok("lock")
    r = env.run("credential-process", "--role", "dev")
    assert r.returncode != 0 and "locked" in r.stderr, r.stderr
    approve(env, "unlock", "--identity", "corp")
    assert env.ok("credential-process", "--role", "dev").stdout
    assert env.sso.state()["counts"]["StartDeviceAuthorization"] == 2


def test_sso_roles_lists_every_page(env):
    out, _, _ = approve(env, "sso", "roles")
    lines = out.strip().splitlines()
    assert len(lines) == 6, out
    assert lines[0].split()[:2] == [rig.ACCOUNT_ID, "Dev"] and "platform" in lines[0]
    assert lines[-1].split()[:2] == ["111122223333", "Billing"]
    js = json.loads(env.ok("sso", "roles", "--identity", "corp", "-o", "json").stdout)
    assert {(r["account_id"], r["role_name"]) for r in js} == {
        (a["accountId"], r) for a in sso_rig.ACCOUNTS for r in a["roles"]}
    assert len(env.sso.records("ListAccounts")) == 4  # 3 accounts, 2 a page, twice


def test_sso_roles_serve_exec_the_credential_endpoint_and_eks_tokens(env, aws_cli):
    env.write_config(text=CONFIG + '\n[clusters.platform]\nrole = "dev"\n')
    approve(env, "unlock")
    r = env.ok("exec", "--role", "dev", "--", aws_cli, "sts", "get-caller-identity",
               "--output", "json", "--region", "us-east-1")
    assert json.loads(r.stdout)["Arn"] == DEV_ARN
    r = env.ok("exec", "--server", "--role", "ro", "--", aws_cli, "sts", "get-caller-identity",
               "--output", "json", "--region", "us-east-1")
    assert json.loads(r.stdout)["Arn"] == RO_ARN
    tok = json.loads(env.ok("eks", "token", "--cluster", "platform").stdout)["status"]["token"]
    # the token is presigned with the Dev role session GetRoleCredentials gave
    dev = json.loads(env.ok("credential-process", "--role", "dev").stdout)
    cred = rig.token_params(tok)["X-Amz-Credential"]
    assert cred.startswith(dev["AccessKeyId"] + "/"), cred
    st = env.status()  # status shows the signed-in identity, never a token
    assert not st["locked"], st
    text = json.dumps(st)
    for values in env.sso.secrets().values():
        assert not any(v in text for v in values)
    assert rig.token_params(tok)["X-Amz-Security-Token"] == dev["SessionToken"]
    assert env.sso.state()["counts"]["StartDeviceAuthorization"] == 1


def test_init_from_aws_config_carries_sso_sessions_and_profiles(env):
    aws = os.path.join(env.home, "aws-config")
    with open(aws, "w") as f:
        f.write(f"[sso-session corp]\nsso_start_url = {sso_rig.START_URL}\nsso_region = us-east-1\n"
                f"sso_registration_scopes = sso:account:access\n\n[profile dev]\nsso_session = corp\n"
                f"sso_account_id = {rig.ACCOUNT_ID}\nsso_role_name = Dev\nregion = us-east-1\n")
    os.remove(env.config_path)
    env.ok("init", "--from-aws-config", aws, "--write")
    text = open(env.config_path).read()
    assert 'source = "sso"' in text and "[roles.dev]" in text, text
    out, _, _ = approve(env, "credential-process", "--role", "dev")
    assert json.loads(out)["AccessKeyId"].startswith("ASIA")


def test_chained_role_from_an_sso_role_sends_external_id(env, recording_proxy):
    proxy = recording_proxy(env.moto.url)
    env.env["AWS_ENDPOINT_URL_STS"] = proxy.url
    env.write_config(text=CONFIG + f"""
[roles.chained]
source_role = "dev"
arn = "arn:aws:iam::{rig.ACCOUNT_ID}:role/Chained"
external_id = "team-ext-42"
""")
    out, _, _ = approve(env, "credential-process", "--role", "chained")
    cp = json.loads(out)
    sts = env.moto.client("sts", cp["AccessKeyId"], cp["SecretAccessKey"], cp["SessionToken"])
    assert sts.get_caller_identity()["Arn"] == (
        f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/Chained/pctl")
    calls = proxy.actions("AssumeRole")
    assert len(calls) == 1, calls
    p = calls[0]["params"]
    assert p["RoleArn"].endswith(":role/Chained") and p["ExternalId"] == "team-ext-42", p
    assert int(p["DurationSeconds"]) <= 3600
    # the source session came from Identity Center, signed in once
    assert env.sso.state()["counts"]["GetRoleCredentials"] == 1


@pytest.mark.parametrize("extra, want", [
    ('[roles.a]\nsource_role = "b"\narn = "arn:aws:iam::123456789012:role/A"\n'
     '[roles.b]\nsource_role = "a"\narn = "arn:aws:iam::123456789012:role/B"\n', "a -> b -> a"),
    ('[roles.a]\nsource_role = "dev"\narn = "arn:aws:iam::123456789012:role/A"\n'
     'duration = "2h"\n', "one hour"),
    ('[roles.a]\nsource_role = "nope"\narn = "arn:aws:iam::123456789012:role/A"\n',
     'no role "nope"'),
])
def test_bad_chains_are_refused_naming_the_chain(env, extra, want):
    env.write_config(text=CONFIG + extra)
    r = env.run("credential-process", "--role", "dev")
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("pctl: ") and want in last, r.stderr


def test_role_options_source_identity_tags_and_region(env, recording_proxy):
    proxy = recording_proxy(env.moto.url)
    env.env["AWS_ENDPOINT_URL_STS"] = proxy.url
    env.write_config(text=CONFIG + f"""
[roles.tagged]
source_role = "dev"
arn = "arn:aws:iam::{rig.ACCOUNT_ID}:role/Chained"
region = "eu-west-1"
source_identity = "alice@example.com"
tags = {{ team = "platform", cost = "42" }}
transitive_tags = ["team"]
""")
    out, _, _ = approve(env, "env", "--role", "tagged")
    assert "eu-west-1" in out, out
    p = proxy.actions("AssumeRole")[0]["params"]
    assert p["SourceIdentity"] == "alice@example.com", p
    tags = {p[f"Tags.member.{i}.Key"]: p[f"Tags.member.{i}.Value"] for i in (1, 2)}
    assert tags == {"team": "platform", "cost": "42"}, p
    assert p["TransitiveTagKeys.member.1"] == "team", p
    # options that only AssumeRole takes are refused on an Identity Center role
    env.write_config(text=CONFIG.replace('role_name = "Dev"', 'role_name = "Dev"\nexternal_id = "xx"'))
    r = env.run("credential-process", "--role", "dev")
    assert r.returncode != 0 and "GetRoleCredentials" in r.stderr.strip().splitlines()[-1]
