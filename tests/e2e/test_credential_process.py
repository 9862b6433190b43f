"""IAM user -> AssumeRole through pctl, against moto with authentication on (issue 2)."""

import concurrent.futures
import datetime
import json
import os
import re
import subprocess

import pytest

import rig

ROLE_ARN_PREFIX = f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/{rig.ROLE_NAME}/"


def write_aws_config(env):
    path = os.path.join(env.home, ".aws", "pctl-config")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    env.ok("aws-config", "--write", path)
    return path


def test_aws_config_profile(auth_env, pctl_bin):
    path = write_aws_config(auth_env)
    text = open(path).read()
    assert "[profile pctl-admin]" in text
    m = re.search(r"^credential_process\s*=\s*(.+)$", text, re.M)
    assert m, text
    assert m.group(1).split() == [pctl_bin, "credential-process", "--role", "admin"]
    assert re.search(r"^region\s*=\s*us-east-1\s*$", text, re.M)
    # stdout form prints the same profile
    out = auth_env.ok("aws-config", "--print").stdout
    assert "[profile pctl-admin]" in out


def test_aws_cli_uses_credential_process(auth_env, aws_cli):
    path = write_aws_config(auth_env)
    r = auth_env.run_tool([aws_cli, "sts", "get-caller-identity", "--profile", "pctl-admin",
                           "--output", "json"],
                          env={"AWS_CONFIG_FILE": path,
                               "AWS_SHARED_CREDENTIALS_FILE": os.path.join(auth_env.home, "none")})
    assert r.returncode == 0, r.stderr + auth_env.daemon_log_tail()
    arn = json.loads(r.stdout)["Arn"]
    assert arn.startswith(ROLE_ARN_PREFIX), arn
    # with auth on, a wrong key would have failed: prove moto really checks
    bad = auth_env.run_tool([aws_cli, "sts", "get-caller-identity", "--region", "us-east-1"],
                            env={"AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE0000",
                                 "AWS_SECRET_ACCESS_KEY": "nope"})
    assert bad.returncode != 0 and "InvalidClientTokenId" in bad.stderr


def test_credential_process_output(auth_env):
    r = auth_env.ok("credential-process", "--role", "admin")
    out = json.loads(r.stdout)
    assert set(out) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
    assert out["Version"] == 1
    assert out["AccessKeyId"].startswith("ASIA")
    exp = rig.parse_rfc3339(out["Expiration"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert now + datetime.timedelta(minutes=30) < exp <= now + datetime.timedelta(hours=1, minutes=1)
    sts = auth_env.moto.client("sts", out["AccessKeyId"], out["SecretAccessKey"], out["SessionToken"])
    assert sts.get_caller_identity()["Arn"].startswith(ROLE_ARN_PREFIX)
    # env and exec hand out the same session
    env_out = auth_env.ok("env", "--role", "admin").stdout
    assert f"AWS_ACCESS_KEY_ID={out['AccessKeyId']}" in env_out.replace("'", "").replace('"', "")
    for var in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CREDENTIAL_EXPIRATION",
                "AWS_REGION"):
        assert re.search(rf"^export {var}=", env_out, re.M), env_out
    ex = auth_env.ok("exec", "--role", "admin", "--", "sh", "-c", 'echo "$AWS_ACCESS_KEY_ID"')
    assert ex.stdout.strip() == out["AccessKeyId"]


def test_fifty_calls_one_op_call(auth_env, aws_cli):
    path = write_aws_config(auth_env)
    keys = set()
    for i in range(50):
        if i % 10 == 9:  # a real client now and then
            r = auth_env.run_tool([aws_cli, "sts", "get-caller-identity", "--profile",
                                   "pctl-admin", "--output", "json"],
                                  env={"AWS_CONFIG_FILE": path})
            assert r.returncode == 0, r.stderr
            assert json.loads(r.stdout)["Arn"].startswith(ROLE_ARN_PREFIX)
        else:
            r = auth_env.ok("credential-process", "--role", "admin")
            keys.add(json.loads(r.stdout)["AccessKeyId"])
    assert len(keys) == 1, "a cached session must be reused"
    assert len(auth_env.op_calls("item get")) == 1, auth_env.op_calls()
    assert len(auth_env.op_calls()) == 1, "no other op invocations (whoami, read...) expected"
    st = auth_env.status()
    assert st["counters"]["op_calls"] == 1
    assert st["counters"]["assume_role"] == 1
    assert st["counters"]["requests"] >= 50
    assert st["locked"] is False


def test_op_gets_only_client_env(auth_env):
    auth_env.ok("credential-process", "--role", "admin",
                env={"OP_ACCOUNT": "my.1password.com", "OP_SESSION_abc": "x", "SECRET_THING": "y",
                     "AWS_SECRET_ACCESS_KEY": "should-not-pass"})
    names = set(auth_env.op_calls("item get")[0]["env"])
    allowed = re.compile(r"^(PATH|HOME|XDG_.*|OP_ACCOUNT|OP_SESSION_.*|OP_SERVICE_ACCOUNT_TOKEN|"
                         r"OP_CONNECT_.*|OP_CACHE)$")
    extra = {n for n in names if not allowed.match(n)}
    # the interpreter of the stand-in may add a couple of its own variables
    extra -= {"LC_CTYPE", "PWD", "SHLVL", "_"}
    assert not extra, f"op received unexpected environment variables: {sorted(extra)}"
    assert {"PATH", "HOME", "OP_ACCOUNT", "OP_SESSION_abc"} <= names
    argv = auth_env.op_calls("item get")[0]["argv"]
    # values ride as --flag=value and the item comes after `--` (issue 8 §6)
    assert argv == ["item", "get", f"--vault={rig.VAULT}", "--format=json", "--", rig.ITEM_TITLE]


def _run_parallel(env, n, args):
    procs = [env.popen(*args) for _ in range(n)]
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate(timeout=10)
        results.append((p.returncode, out, err))
    return results


def _concurrent(env, proxy, start_daemon_first):
    env.op_state(latency=1.0)  # op is slow, like the real one: widens the race window
    if start_daemon_first:
        st = env.status()
        assert st["counters"]["assume_role"] == 0 and st["counters"]["op_calls"] == 0
    results = _run_parallel(env, 100, ["credential-process", "--role", "admin"])
    failures = [r for r in results if r[0] != 0]
    assert not failures, f"{len(failures)} failed, e.g. {failures[0]}" + env.daemon_log_tail()
    keys = {json.loads(out)["AccessKeyId"] for _, out, _ in results}
    assert len(keys) == 1, f"clients got {len(keys)} different sessions"
    assume = proxy.actions("AssumeRole")
    assert len(assume) == 1, f"{len(assume)} AssumeRole calls reached STS"
    assert len(env.op_calls("item get")) == 1
    st = env.status()
    assert st["counters"]["assume_role"] == 1
    assert st["counters"]["op_calls"] == 1
    assert st["counters"]["requests"] >= 100
    return st


def test_hundred_concurrent_requests_one_assume_role(pctl_env, moto_auth, recording_proxy):
    proxy = recording_proxy(moto_auth.url)
    env = pctl_env(proxy.url)
    ident = moto_auth.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"])])
    _concurrent(env, proxy, start_daemon_first=True)


def test_hundred_concurrent_cold_start(pctl_env, moto_auth, recording_proxy):
    """No daemon yet: 100 clients race to start it; one daemon, one op call, one AssumeRole."""
    proxy = recording_proxy(moto_auth.url)
    env = pctl_env(proxy.url)
    ident = moto_auth.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"])])
    _concurrent(env, proxy, start_daemon_first=False)
    # `pctl daemon ...` or a `pctl-daemon` helper binary: either way "daemon" is in argv
    daemons = [p for p in env.our_processes() if any("daemon" in a for a in rig.cmdline(p))]
    assert len(daemons) == 1, f"expected one daemon, found pids {daemons}"


def test_status_and_stop(auth_env):
    st = auth_env.status()
    assert {"version", "locked", "unlocked_at", "roles", "tokens", "counters"} <= set(st)
    assert {"op_calls", "get_session_token", "assume_role", "eks_tokens_minted",
            "requests"} <= set(st["counters"])
    auth_env.ok("credential-process", "--role", "admin")
    st = auth_env.status()
    assert st["locked"] is False
    roles = {r["role"]: r for r in st["roles"]}
    assert "admin" in roles
    assert roles["admin"]["arn"] == f"arn:aws:iam::{rig.ACCOUNT_ID}:role/{rig.ROLE_NAME}"
    rig.parse_rfc3339(roles["admin"]["expiration"])
    assert os.path.exists(auth_env.sock)
    mode = os.stat(auth_env.sock).st_mode & 0o777
    assert mode & 0o077 == 0, f"socket mode {oct(mode)}"
    assert os.stat(os.path.dirname(auth_env.sock)).st_mode & 0o077 == 0
    auth_env.ok("stop")
    rig.wait_until(lambda: not os.path.exists(auth_env.sock), timeout=10, what="socket removal")
    rig.wait_until(lambda: not auth_env.our_processes(), timeout=10, what="daemon exit")


def test_audit_log_one_line_per_issuance(auth_env):
    for _ in range(3):
        auth_env.ok("credential-process", "--role", "admin")
    path = os.path.join(auth_env.state_dir, "audit.log")
    recs = rig.read_jsonl(path)
    assert len(recs) >= 1, "audit.log should record issuances"
    assert all(isinstance(r, dict) for r in recs)
