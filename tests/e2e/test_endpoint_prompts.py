"""Prompts for an SDK behind the credential endpoint (issue 18 §1): a request to `pctl serve`
that needs a typed MFA code (mfa = "prompt"), a break-glass confirmation (confirm = true) or
an IAM Identity Center sign-in reaches the user as a client without a terminal does: the
code and the confirmation through pinentry (the scripted Assuan stand-in), the sign-in as a
desktop notification (recording notify-send stand-in) and a pinentry window with the URL and
the code. The requesting program named in them is the process behind the TCP connection (a
real boto3). The request waits for the answer, then gets its credentials, or an error body
naming what to do, and nothing is kept.

Each test starts `pctl serve` (no controlling terminal) with a short idle lock, waits for it
to lock, then sets a long one again, so that the endpoint's own request is the one that must
unlock, confirm or sign in (`pctl lock` would keep it locked until `pctl unlock`).
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

import desktop_rig as d
import rig
import sso_rig
from sso_rig import sso, sso_moto  # noqa: F401 (fixtures)

# A real SDK: boto3's container credential provider reads the two variables `pctl serve`
# prints; nothing else could give it credentials.
BOTO3 = """
import json, sys
import boto3
try:
    who = boto3.client("sts").get_caller_identity()
    print(json.dumps({"arn": who["Arn"]}))
except Exception as e:
    print(json.dumps({"error": type(e).__name__, "message": str(e)}))
    sys.exit(3)
"""


def serve(env, role):
    """`pctl serve --role ROLE` with no controlling terminal (the desktop stand-ins first on
    PATH): the process and the variables it printed."""
    p = d.notty_popen(env, "serve", "--role", role, "--shell", "bash",
                      extra=d.desktop_env(env))
    try:
        return p, rig.serve_exports(p, env)
    except BaseException:
        stop(p)
        raise


def stop(p):
    rig.stop_process(p, timeout=10)


def boto3_call(env, endpoint, aws_url):
    """get_caller_identity by boto3 with only the endpoint's variables: (rc, result)."""
    e = rig.clean_base_env()
    e.update(endpoint)
    e.update({"HOME": env.home, "AWS_ENDPOINT_URL": aws_url, "AWS_DEFAULT_REGION": rig.REGION,
              "AWS_CONFIG_FILE": os.path.join(env.home, "none"),
              "AWS_SHARED_CREDENTIALS_FILE": os.path.join(env.home, "none"),
              "AWS_EC2_METADATA_DISABLED": "true"})
    r = subprocess.run([sys.executable, "-c", BOTO3], env=e, capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL, cwd=env.home,
                       start_new_session=True)
    assert r.stdout.strip(), r.stderr
    return r.returncode, json.loads(r.stdout.strip().splitlines()[-1])


def idle_locked(env):
    """Waits for the short idle lock of env.config_for, then sets a long one (each unlock
    takes the idle lock of the config it was made under)."""
    # idle_lock's floor (1 s): the status polls lock the daemon (every request checks
    # the limits first) about a second after its last use
    rig.wait_until(lambda: env.status()["locked"], timeout=30, interval=0.02,
                   what="the idle lock")
    env.write_config(text=env.config_for("1h"))


endpoint_get = d.endpoint_get


# -- a typed MFA code and a break-glass confirmation, through pinentry


def rig_config(idle, role_lines="", identity_lines=""):
    return rig.config_text(op_timeout="20s", idle_lock=idle, add={
        "roles.admin": role_lines, "onepassword": identity_lines,
        "daemon": f'pinentry = "{d.PINENTRY_STANDIN}"'})


@pytest.fixture
def prompt_env(pctl_env, moto_open, recording_proxy):
    """`pctl serve` starts with an item that has no MFA serial (no code: AWS takes one code
    per 30-second step, and the endpoint's must be typed in the same step); once idle-locked
    the item gets its serial and the identity mfa = "prompt"."""
    env = d.proxied_env(pctl_env, moto_open, recording_proxy)
    ident = env.ident
    env.config_for = lambda idle: rig_config(
        idle, identity_lines='mfa = "prompt"' if idle == "1h" else "")
    env.with_serial = lambda: env.op_store([rig.aws_item(
        ident["access_key_id"], ident["secret_access_key"], mfa_serial=rig.MFA_SERIAL)])
    env.write_config(text=env.config_for("1s"))
    return env


def typed_codes(env):
    return [c for c in d.sent_codes(env) if c]


@pytest.fixture
def confirm_env(pctl_env, moto_open, recording_proxy):
    env = d.proxied_env(pctl_env, moto_open, recording_proxy)
    env.config_for = lambda idle: rig_config(idle, role_lines="confirm = true")
    env.write_config(text=env.config_for("1s"))
    return env


def getpins(env):
    return [c["arg"] for c in d.standin_log(env) if c["cmd"] == "SETDESC"]


def test_mfa_code_typed_in_pinentry_serves_boto3(prompt_env):
    env = prompt_env
    p, endpoint = serve(env, "admin")
    try:
        idle_locked(env)
        env.with_serial()
        assert typed_codes(env) == [] and d.standin_log(env) == []
        d.plan(env, pin="222 222")
        rc, out = boto3_call(env, endpoint, env.proxy.url)
        assert rc == 0, str(out) + env.daemon_log_tail()
        assert ":assumed-role/" in out["arn"], out
        # the code typed for the endpoint's request reached STS, once
        assert typed_codes(env) == ["222222"]
        descs = getpins(env)
        assert len(descs) == 1, descs
        # the program named is the requesting process (python running boto3), not pctl
        assert "role admin" in descs[0] and "python" in descs[0], descs
        # unlocked: the next request asks nothing
        rc, out = boto3_call(env, endpoint, env.proxy.url)
        assert rc == 0, out
        assert typed_codes(env) == ["222222"] and len(getpins(env)) == 1
    finally:
        stop(p)
    hits = rig.scan_tree_for([env.root], {}, numeric_codes=["222222"])
    assert hits == [], hits


def test_mfa_code_cancelled_is_an_error_naming_what_to_do(prompt_env):
    env = prompt_env
    p, endpoint = serve(env, "admin")
    try:
        idle_locked(env)
        env.with_serial()
        d.plan(env, getpin="cancel")
        status, body = endpoint_get(endpoint)
        assert status == 503 and "cancelled in pinentry" in body["message"], body
        assert "pctl unlock --identity default" in body["message"], body
        assert typed_codes(env) == []
        assert env.status()["locked"] is True
    finally:
        stop(p)


def test_confirmation_cancelled_refuses_boto3_and_keeps_nothing(confirm_env):
    env = confirm_env
    d.plan(env, confirm="ok")
    p, endpoint = serve(env, "admin")
    try:
        assumed = len(env.proxy.actions("AssumeRole"))
        assert assumed == 1
        idle_locked(env)
        d.plan(env, confirm="cancel")
        rc, out = boto3_call(env, endpoint, env.proxy.url)
        assert rc == 3, out
        assert len(env.proxy.actions("AssumeRole")) == assumed, "a session was made"
        status, body = endpoint_get(endpoint)
        assert status == 403, (status, body)
        msg = body["message"]
        assert "role admin" in msg and "nothing was issued" in msg, msg
        assert "python" in msg, msg
        assert len(env.proxy.actions("AssumeRole")) == assumed
        confirms = [c for c in d.standin_log(env) if c["cmd"] == "CONFIRM"]
        assert len(confirms) >= 3, confirms  # the start, boto3, the raw request: each asked
        # nothing cached: a yes now makes the session
        d.plan(env, confirm="ok")
        rc, out = boto3_call(env, endpoint, env.proxy.url)
        assert rc == 0, str(out) + env.daemon_log_tail()
        assert len(env.proxy.actions("AssumeRole")) == assumed + 1
        denied = d.audit_lines(env, "denied")
        assert denied and "pinentry" in denied[-1]["role"], denied
    finally:
        stop(p)


def test_a_confirmation_outlives_an_sdk_that_gave_up(confirm_env):
    """boto3 gives up on its request after 2 s and retries: the window it opened stays up, and
    a yes given after the request went away serves the retry (no second window)."""
    env = confirm_env
    d.plan(env, confirm="ok")
    p, endpoint = serve(env, "admin")
    try:
        assumed = len(env.proxy.actions("AssumeRole"))
        idle_locked(env)
        d.plan(env, hold=True, confirm="ok")
        url = urllib.parse.urlsplit(endpoint["AWS_CONTAINER_CREDENTIALS_FULL_URI"])
        s = socket.create_connection((url.hostname, url.port), timeout=10)
        s.sendall((f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: "
                   f"{endpoint['AWS_CONTAINER_AUTHORIZATION_TOKEN']}\r\n\r\n").encode())
        confirms = lambda: [c for c in d.standin_log(env) if c["cmd"] == "CONFIRM"]  # noqa: E731
        rig.wait_until(lambda: len(confirms()) == 2, timeout=30, what="the window")
        s.close()  # the SDK gave up
        time.sleep(0.5)  # time for the daemon to see the close
        open(os.path.join(env.home, ".pinentry-release"), "w").close()
        rig.wait_until(lambda: all("waiting" not in i for i in env.status()["identities"]),
                       timeout=30, what="the window to be answered")
        rc, out = boto3_call(env, endpoint, env.proxy.url)
        assert rc == 0, str(out) + env.daemon_log_tail()
        assert len(confirms()) == 2, confirms()
        assert len(env.proxy.actions("AssumeRole")) == assumed + 1
        assert [r for r in d.audit_lines(env, "confirm") if "python" in r["role"]], \
            d.audit_lines(env, "confirm")
    finally:
        stop(p)


# -- an IAM Identity Center sign-in started by the endpoint's request

SSO_CONFIG = sso_rig.IDENTITY + sso_rig.role("dev", "Dev") + f"""
[daemon]
pinentry = "{d.PINENTRY_STANDIN}"
idle_lock = "{{idle}}"
"""


@pytest.fixture
def sso_env(pctl_env, sso_moto, sso, tmp_path):  # noqa: F811 (this module's own)
    e = sso_rig.pctl_env_for(pctl_env, sso_moto, sso, tmp_path, config=SSO_CONFIG.format(
        idle="1h"))
    e.config_for = lambda idle: SSO_CONFIG.format(idle=idle)
    # the desktop client cannot open a browser: the window shows the URL
    e.env["BROWSER"] = ""
    return e


def signed_in_serve(env):
    """`pctl serve` (no terminal) signs in itself (shown on the desktop, approved), serves,
    then the identity idle-locks."""
    env.write_config(text=env.config_for("1s"))
    d.plan(env, hold=True)
    p = d.notty_popen(env, "serve", "--role", "dev", "--shell", "bash",
                      extra=d.desktop_env(env))
    try:
        dev = env.sso.wait_device()
        env.sso.device("approve", dev["user_code"])
        e = rig.serve_exports(p, env)
        idle_locked(env)
    except BaseException:
        stop(p)
        raise
    finally:
        open(os.path.join(env.home, ".pinentry-release"), "w").close()
    rig.wait_until(lambda: env.run("prompt").stdout.strip() != "waiting(corp)", timeout=15,
                   what="the serve's sign-in window to go")
    os.remove(os.path.join(env.home, ".pinentry-release"))
    for log in (".pinentry-standin.log", ".notify-send.log"):
        path = os.path.join(env.home, log)
        if os.path.exists(path):
            os.remove(path)
    return p, e


def test_sso_sign_in_from_the_endpoint_notifies_and_serves_after_approval(sso_env):
    env = sso_env
    p, endpoint = signed_in_serve(env)
    try:
        d.plan(env, hold=True)  # the window stays up until the sign-in ends
        starts = env.sso.state()["counts"]["StartDeviceAuthorization"]
        result = {}

        def call():
            result["r"] = boto3_call(env, endpoint, env.moto.url)

        t = threading.Thread(target=call)
        t.start()
        try:
            dev = env.sso.wait_device(n=starts + 1)
            rig.wait_until(lambda: d.notifications(env) != [], timeout=30,
                           what="the notification")
            notes = d.notifications(env)
            assert len(notes) == 1, notes
            body = " ".join(notes[0]["argv"])
            for want in ("IAM Identity Center", "identity corp", "python", dev["user_code"]):
                assert want in body, (want, body)
            rig.wait_until(lambda: any(c["cmd"] == "CONFIRM" for c in d.standin_log(env)),
                           timeout=30, what="the pinentry window")
            desc = next(c["arg"] for c in d.standin_log(env) if c["cmd"] == "SETDESC")
            assert dev["user_code"] in desc and "/device" in desc, desc
            env.sso.device("approve", dev["user_code"])
        finally:
            t.join(timeout=120)
            open(os.path.join(env.home, ".pinentry-release"), "w").close()
        rc, out = result["r"]
        assert rc == 0, str(out) + env.daemon_log_tail()
        assert ":assumed-role/Dev/" in out["arn"], out
        assert env.sso.state()["counts"]["StartDeviceAuthorization"] == starts + 1
        # one notification for the sign-in, whatever boto3's retries did
        assert len(d.notifications(env)) == 1
    finally:
        stop(p)


# -- a client without a terminal joining a sign-in another started


@pytest.fixture
def desk_env(pctl_env, sso_moto, sso, tmp_path):  # noqa: F811
    """No opener (empty $BROWSER, no xdg-open), the desktop stand-ins on PATH, and two
    programs (bash started as `kubectl` and as `terraform`) to run pctl."""
    e = sso_rig.pctl_env_for(pctl_env, sso_moto, sso, tmp_path, config=SSO_CONFIG.format(
        idle="1h"))
    return d.no_browser(e, tmp_path, programs=("kubectl", "terraform"))


run_by = d.run_by


def test_a_joiner_without_a_terminal_is_told_once_per_program(desk_env):
    env = desk_env
    d.plan(env, hold=True)
    procs = [run_by(env, "kubectl", "credential-process", "--role", "dev")]
    try:
        dev = env.sso.wait_device()
        rig.wait_until(lambda: any(c["cmd"] == "CONFIRM" for c in d.standin_log(env)),
                       timeout=30, what="the starter's window")
        # notify-send runs in the background: its log may come after the window
        rig.wait_until(lambda: len(d.notifications(env)) == 1, timeout=30,
                       what="the starter's notification")
        # terraform joins: told, with the URL and the code (the window is the starter's)
        procs.append(run_by(env, "terraform", "credential-process", "--role", "dev"))
        rig.wait_until(lambda: len(d.notifications(env)) == 2, timeout=30,
                       what="the joiner's notification")
        body = " ".join(d.notifications(env)[1]["argv"])
        for want in ("terraform", "identity corp", dev["user_code"], "/device"):
            assert want in body, (want, body)
        # terraform again, and kubectl (the starter's program): not told again
        procs.append(run_by(env, "terraform", "credential-process", "--role", "dev"))
        procs.append(run_by(env, "kubectl", "credential-process", "--role", "dev"))
        rig.wait_until(lambda: env.daemon_log_tail(10**6).count("joins the IAM Identity") == 3,
                       timeout=30, what="the joiners to join")
        assert env.daemon_log_tail(10**6).count("(told of it already)") == 2
        env.sso.device("approve", dev["user_code"])
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err + env.daemon_log_tail()
            assert json.loads(out)["AccessKeyId"].startswith("ASIA")
    finally:
        open(os.path.join(env.home, ".pinentry-release"), "w").close()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert len(d.notifications(env)) == 2, d.notifications(env)
    assert len([c for c in d.standin_log(env) if c["cmd"] == "CONFIRM"]) == 1
    assert env.sso.state()["counts"]["StartDeviceAuthorization"] == 1
