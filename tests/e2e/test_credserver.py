"""`pctl exec --server` and `pctl serve`: a loopback credential endpoint for the AWS
SDKs' container credential provider (issue 9 §2).

Real peers: moto with IAM authentication on (a wrong key fails), the real `aws` CLI
and boto3 reading AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN.
"""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import pytest

import rig

ROLE_ARN_PREFIX = f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/{rig.ROLE_NAME}/"
KEY_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
            "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")
# A caller's environment full of things that must not reach CMD (or would win over
# the endpoint in the SDK's credential chain).
POLLUTED = {"AWS_ACCESS_KEY_ID": "AKIAPOLLUTEDPOLLUTED", "AWS_SECRET_ACCESS_KEY": "polluted",
            "AWS_SESSION_TOKEN": "polluted", "AWS_PROFILE": "polluted",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/polluted"}


def get(url, token=None, timeout=10):
    """(status, parsed JSON body) of a GET; (None, error) when nothing listens."""
    req = urllib.request.Request(url, headers={"Authorization": token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
    except (urllib.error.URLError, ConnectionError) as e:
        return None, str(e)


def wait_gone(url, what):
    rig.wait_until(lambda: get(url, timeout=2)[0] is None, timeout=10, what=what)


def python_in_exec(env, script, *args, extra_env=None, timeout=120):
    return env.run("exec", "--server", "--role", "admin", "--", sys.executable, "-c",
                   textwrap.dedent(script), *args, env=extra_env, timeout=timeout)


def test_aws_cli_through_the_endpoint(auth_env, aws_cli):
    r = auth_env.run("exec", "--server", "--role", "admin", "--", aws_cli, "sts",
                     "get-caller-identity", "--output", "json", env=POLLUTED)
    assert r.returncode == 0, r.stderr + auth_env.daemon_log_tail()
    assert json.loads(r.stdout)["Arn"].startswith(ROLE_ARN_PREFIX), r.stdout
    # the key the CLI used is the daemon's role session (moto's auth checked it)
    cp = json.loads(auth_env.ok("credential-process", "--role", "admin").stdout)
    assert auth_env.status()["counters"]["assume_role"] == 1
    assert cp["AccessKeyId"].startswith("ASIA")


def test_cmd_environment_has_the_endpoint_and_no_keys(auth_env):
    r = auth_env.run("exec", "--server", "--role", "admin", "--", "env", env=POLLUTED)
    assert r.returncode == 0, r.stderr
    env = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    for k in KEY_VARS + ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                         "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"):
        assert k not in env, f"{k} reached CMD"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/credentials",
                        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]), env
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", env["AWS_CONTAINER_AUTHORIZATION_TOKEN"])
    assert env["AWS_REGION"] == rig.REGION
    # and the endpoint is gone once CMD has exited
    wait_gone(env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], "endpoint gone after CMD exit")


def test_boto3_and_the_token_rules(auth_env):
    script = """
        import json, os, urllib.request, urllib.error, boto3
        uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        tok = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        def get(url, headers):
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())
        out = {
            "arn": boto3.client("sts").get_caller_identity()["Arn"],
            "none": get(uri, {})[0],
            "wrong": get(uri, {"Authorization": tok[:-1] + ("A" if tok[-1] != "A" else "B")})[0],
            "bearer": get(uri, {"Authorization": "Bearer " + tok})[0],
            "path": get(uri.replace("/credentials", "/other"), {"Authorization": tok})[0],
            "right": get(uri, {"Authorization": tok}),
            "pid": os.getpid(),
        }
        print(json.dumps(out))
    """
    r = python_in_exec(auth_env, script, extra_env=POLLUTED)
    assert r.returncode == 0, r.stderr + auth_env.daemon_log_tail()
    out = json.loads(r.stdout)
    assert out["arn"].startswith(ROLE_ARN_PREFIX)
    assert (out["none"], out["wrong"], out["bearer"], out["path"]) == (401, 401, 401, 404), out
    status, body = out["right"]
    assert status == 200 and set(body) == {"AccessKeyId", "SecretAccessKey", "Token",
                                           "Expiration"}, out
    assert rig.parse_rfc3339(body["Expiration"])
    # every answer was audited as an issuance to the process that asked (found from the
    # kernel's socket table: uid, socket inode -> pid -> executable)
    audit = rig.read_jsonl(os.path.join(auth_env.state_dir, "audit.log"))
    served = [a for a in audit if a["issued"] == "credentials" and a["pid"] == out["pid"]]
    assert len(served) >= 2, audit  # boto3's fetch and the raw GET with the right token
    assert all(a["uid"] == os.geteuid() and "python" in os.path.basename(a["exe"] or "")
               for a in served), served


def test_endpoint_dies_with_pctl_even_under_kill_9(auth_env):
    p = subprocess.Popen(
        [auth_env.bin, "exec", "--server", "--role", "admin", "--", "sh", "-c",
         'echo "$AWS_CONTAINER_CREDENTIALS_FULL_URI $AWS_CONTAINER_AUTHORIZATION_TOKEN"; '
         'exec sleep 60'],
        env=auth_env.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        url, token = p.stdout.readline().split()
        assert get(url, token)[0] == 200
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        wait_gone(url, "endpoint gone after kill -9 of pctl")
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # the orphaned sleep
        except ProcessLookupError:
            pass
    # the daemon is fine and serves the next one
    auth_env.ok("exec", "--server", "--role", "admin", "--", "true")


def test_exit_status_and_signals_pass_through(auth_env):
    r = auth_env.run("exec", "--server", "--role", "admin", "--", "sh", "-c", "exit 7")
    assert r.returncode == 7, r.stderr
    p = auth_env.popen("exec", "--server", "--role", "admin", "--", "sh", "-c",
                       'trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done')
    try:
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGTERM)  # to pctl: passed on to CMD
        assert p.wait(timeout=10) == 42
    finally:
        if p.poll() is None:
            p.kill()


def test_serve_exports_for_other_processes_and_stops(auth_env, aws_cli):
    port = rig.free_port()
    p = auth_env.popen("serve", "--role", "admin", "--port", str(port), "--shell", "bash")
    try:
        exports = rig.serve_exports(p, auth_env)
        assert set(exports) == {"AWS_CONTAINER_CREDENTIALS_FULL_URI",
                                "AWS_CONTAINER_AUTHORIZATION_TOKEN"}
        url = exports["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        assert url == f"http://127.0.0.1:{port}/credentials"
        # an unrelated process (not a child of pctl) uses it, like a container would
        r = auth_env.run_tool([aws_cli, "sts", "get-caller-identity", "--output", "json",
                               "--region", rig.REGION], env=exports)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["Arn"].startswith(ROLE_ARN_PREFIX)
        # the port is taken now: a second serve on it says so
        r2 = auth_env.run("serve", "--role", "admin", "--port", str(port))
        rig.assert_pctl_error(r2, f"127.0.0.1:{port}", "--port")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
        wait_gone(url, "endpoint gone after serve stopped")
    finally:
        if p.poll() is None:
            p.kill()


def test_bad_role_fails_before_cmd_runs(auth_env, tmp_path):
    marker = tmp_path / "ran"
    r = auth_env.run("exec", "--server", "--role", "nope", "--", "touch", str(marker))
    rig.assert_pctl_error(r, "unknown role")
    assert not marker.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as another UID")
def test_another_uid_is_refused_with_the_right_token(auth_env):
    p = auth_env.popen("serve", "--role", "admin", "--shell", "bash")
    try:
        exports = rig.serve_exports(p, auth_env)
        url = exports["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        token = exports["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        def as_uid(uid):
            """GET with the right token from a forked child running as `uid`."""
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # child: no exec, so no interpreter path to be readable
                code = 1
                try:
                    os.close(r)
                    os.setgid(uid)
                    os.setuid(uid)
                    status, _ = get(url, token)
                    os.write(w, str(status).encode())
                    code = 0
                finally:
                    os._exit(code)
            os.close(w)
            with os.fdopen(r) as f:
                out = f.read()
            os.waitpid(pid, 0)
            return out

        assert as_uid(65534) == "403"
        assert as_uid(os.geteuid()) == "200"
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_session_change_during_one_sdk_run(auth_env):
    """One long-running boto3 client; the daemon's session changes between two of its calls.

    What this proves: the SDK re-reads the endpoint during a run (botocore's own refresh
    logic, triggered by a real Expiration less than 15 minutes ahead: the role's duration
    is 15m), and every answer is the daemon's *current* session -- after a config change
    (new session name: new AssumeRole) the same client signs with the new session, and after
    `pctl lock` the endpoint refuses until `pctl unlock`, then serves a new session. It does
    not wait for a natural expiry (that would take 11 minutes): the daemon's refresh ahead of
    expiry is proven in the broker's unit tests with a fake clock.
    """
    text = open(auth_env.config_path).read()
    text = text[:text.index("[clusters.")]  # EKS tokens need 30m sessions: no cluster here
    auth_env.write_config(text=text.replace('duration = "1h"', 'duration = "15m"'))
    script = """
        import json, os, sys, urllib.request, urllib.error, boto3
        uri = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        tok = os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        sts = boto3.client("sts")
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "call":
                ident = sts.get_caller_identity()
                key = sts._request_signer._credentials.get_frozen_credentials().access_key
                print(json.dumps({"arn": ident["Arn"], "key": key}), flush=True)
            elif cmd == "raw":
                try:
                    with urllib.request.urlopen(urllib.request.Request(
                            uri, headers={"Authorization": tok})) as r:
                        print(json.dumps({"status": r.status, "key": json.loads(r.read())["AccessKeyId"]}), flush=True)
                except urllib.error.HTTPError as e:
                    print(json.dumps({"status": e.code, "body": json.loads(e.read())}), flush=True)
            else:
                break
    """
    p = subprocess.Popen(
        [auth_env.bin, "exec", "--server", "--role", "admin", "--", sys.executable, "-c",
         textwrap.dedent(script)],
        env=auth_env.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)

    def ask(cmd):
        p.stdin.write(cmd + "\n")
        p.stdin.flush()
        line = p.stdout.readline()
        assert line, p.stderr.read() if p.poll() is not None else "no answer"
        return json.loads(line)

    try:
        ready = p.stdout.readline()
        assert ready, p.stderr.read() + auth_env.daemon_log_tail()
        assert json.loads(ready)["ready"]
        first = ask("call")
        assert first["arn"] == ROLE_ARN_PREFIX + "operator", first
        # the role's session changes in the daemon: a new session name means a new AssumeRole
        text = open(auth_env.config_path).read()
        auth_env.write_config(text=text.replace(
            'duration = "15m"', 'duration = "15m"\nsession_name = "after-change"'))
        second = ask("call")
        assert second["arn"] == ROLE_ARN_PREFIX + "after-change", second
        assert second["key"] != first["key"], "the SDK kept signing with the old session"
        # lock: the endpoint refuses; unlock: it serves a fresh session
        auth_env.ok("lock")
        locked = ask("raw")
        assert locked["status"] == 503 and locked["body"]["code"] == "locked", locked
        auth_env.ok("unlock")
        third = ask("call")
        assert third["arn"] == ROLE_ARN_PREFIX + "after-change"
        assert third["key"] not in (first["key"], second["key"]), third
        assert auth_env.status()["counters"]["assume_role"] == 3
        p.stdin.write("quit\n")
        p.stdin.flush()
        assert p.wait(timeout=30) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()


TF_BACKEND = """\
terraform {{
  backend "s3" {{
    bucket                      = "pctl-tfstate"
    key                         = "{key}"
    region                      = "us-east-1"
    endpoints                   = {{ s3 = "{url}", sts = "{url}", iam = "{url}" }}
    use_path_style              = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
    use_lockfile                = true
  }}
}}

resource "terraform_data" "marker" {{
  input = "applied-through-the-endpoint"
}}
"""


@pytest.mark.timeout(240)
def test_terraform_s3_backend_through_the_endpoint(auth_env, terraform_bin):
    """Terraform's AWS SDK (Go) reads the container credential provider too: its S3 backend
    (moto with auth on) works under `pctl exec --server` with no profile and no keys."""
    env = auth_env
    work = os.path.join(env.home, "stack")
    os.makedirs(work)
    key = f"e2e-server/{os.path.basename(env.root)}/terraform.tfstate"
    with open(os.path.join(work, "main.tf"), "w") as f:
        f.write(TF_BACKEND.format(key=key, url=env.moto.url))
    no_files = {"AWS_CONFIG_FILE": os.path.join(env.home, "none"),
                "AWS_SHARED_CREDENTIALS_FILE": os.path.join(env.home, "none")}
    for step in (["init", "-input=false", "-no-color"],
                 ["apply", "-auto-approve", "-input=false", "-no-color"]):
        r = subprocess.run([env.bin, "exec", "--server", "--role", "admin", "--", terraform_bin,
                            *step], env={**env.env, **no_files, **POLLUTED}, cwd=work,
                           capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr + env.daemon_log_tail()
    creds = json.loads(env.ok("credential-process", "--role", "admin").stdout)
    s3 = env.moto.client("s3", creds["AccessKeyId"], creds["SecretAccessKey"],
                         creds["SessionToken"])
    state = json.loads(s3.get_object(Bucket="pctl-tfstate", Key=key)["Body"].read())
    assert any(r["type"] == "terraform_data" for r in state["resources"])
    served = [a for a in rig.read_jsonl(os.path.join(env.state_dir, "audit.log"))
              if a["issued"] == "credentials" and "terraform" in (a["exe"] or "")]
    assert served, "terraform did not fetch from the endpoint"


def test_serve_ends_when_the_daemon_stops(auth_env):
    # serve starts the daemon itself here: the daemon must not inherit serve's blocked signals
    p = auth_env.popen("serve", "--role", "admin", "--shell", "bash")
    try:
        url = re.search(r"'(http://[^']+)'", p.stdout.readline()).group(1)
        p.stdout.readline()
        pid = auth_env.status()["pid"]
        with open(f"/proc/{pid}/status") as f:
            blocked = re.search(r"^SigBlk:\s*([0-9a-f]+)$", f.read(), re.M).group(1)
        assert int(blocked, 16) == 0, f"daemon started with blocked signals {blocked}"
        auth_env.ok("stop")
        assert p.wait(timeout=10) == 1
        assert "daemon closed the credential endpoint" in p.stderr.read()
        assert get(url, timeout=2)[0] is None
    finally:
        if p.poll() is None:
            p.kill()
