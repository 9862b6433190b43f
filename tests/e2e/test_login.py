"""`pctl login`: console sign-in URL through the federation endpoint (issue 9 §1).

Real peers: moto issues the role session; a local federation stand-in
(tests/fixtures/federation_server.py) checks the Session JSON against what moto
issued and answers a SigninToken; a browser-opener stand-in on PATH
(tests/fixtures/bin-opener/xdg-open) records what it is given: the daemon's
one-shot loopback link (issue 15 §7, tests/e2e/test_login_oneshot.py), which
redirects to the sign-in URL.
"""

import json
import os
import sys
import urllib.parse

import pytest

import rig

OPENER_DIR = os.path.join(rig.FIXTURES, "bin-opener")


class Federation:
    def __init__(self, workdir, moto_url, refuse_duration=False):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.log = os.path.join(workdir, "federation.jsonl")
        port_file = os.path.join(workdir, "federation.port")
        args = [sys.executable, os.path.join(rig.FIXTURES, "federation_server.py"),
                "--moto", moto_url, "--log", self.log, "--port-file", port_file]
        if refuse_duration:
            args.append("--refuse-session-duration")
        self.proc, self.port = rig.start_server(
            args, port_file, os.path.join(workdir, "federation.out"), env=rig.clean_base_env(),
            what="federation stand-in")
        self.url = f"http://127.0.0.1:{self.port}"

    def records(self):
        return rig.read_jsonl(self.log)

    def stop(self):
        rig.stop_process(self.proc)


@pytest.fixture
def federation(tmp_path):
    started = []

    def make(moto_url, **kw):
        f = Federation(str(tmp_path / f"fed{len(started)}"), moto_url, **kw)
        started.append(f)
        return f

    yield make
    for f in started:
        f.stop()


def login_env(env, fed, tmp_path):
    """Points the daemon at the stand-in and the client at the opener stand-in."""
    opener_log = str(tmp_path / "opener.jsonl")
    env.env.update({
        "PCTL_FEDERATION_ENDPOINT": fed.url,
        "PATH": OPENER_DIR + os.pathsep + env.env["PATH"],
        "PCTL_TEST_OPENER_LOG": opener_log,
        "BROWSER": "",
    })
    return opener_log


def query(url):
    parts = urllib.parse.urlsplit(url)
    return parts, urllib.parse.parse_qsl(parts.query, keep_blank_values=True)


def assert_login_url(url, fed, destination):
    parts, q = query(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == fed.url + "/federation", url
    token = [r for r in fed.records() if r.get("action") == "getSigninToken"][-1]["signin_token"]
    assert q == [("Action", "login"), ("Issuer", "pctl"), ("Destination", destination),
                 ("SigninToken", token)], q
    return token


def follow_link(link):
    """What the browser does with the one-shot link the opener got: the redirect's target."""
    import http.client
    parts = urllib.parse.urlsplit(link)
    assert parts.scheme == "http" and parts.hostname == "127.0.0.1", link
    assert "SigninToken" not in link and "federation" not in link, link
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", parts.path)
        r = conn.getresponse()
        r.read()
        assert r.status == 303, r.status
        return r.getheader("Location")
    finally:
        conn.close()


def assert_no_token_leak(env, token, exclude):
    hits = rig.scan_tree_for([env.root], {"signin token": token}, exclude=exclude)
    assert not hits, f"the sign-in token was written to {hits}"


def test_login_opens_the_console_with_a_checked_session(auth_env, federation, tmp_path):
    fed = federation(auth_env.moto.url)
    opener_log = login_env(auth_env, fed, tmp_path)
    r = auth_env.ok("login", "--role", "admin")
    assert r.stdout == "", "the URL must not be printed without --stdout"
    assert "console" in r.stderr and "http" not in r.stderr, r.stderr
    calls = rig.read_jsonl(opener_log)
    assert len(calls) == 1 and len(calls[0]["args"]) == 1, calls
    rec = fed.records()[-1]
    # the stand-in checked the Session JSON against moto: keys, values, not expired
    assert rec["status"] == 200 and rec["session_keys"] == ["sessionId", "sessionKey",
                                                              "sessionToken"], rec
    assert rec["role_arn"] == auth_env.ident["role_arn"], rec
    assert rec["session_id"].startswith("ASIA")
    # the role session came from the IAM user's long-term keys: SessionDuration allowed,
    # the role's configured duration (1h)
    assert rec["session_duration"] == "3600", rec
    token = assert_login_url(
        follow_link(calls[0]["args"][0]), fed,
        "https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1")
    assert token not in open(opener_log).read()
    # the same cached role session serves credentials (no second AssumeRole)
    cp = json.loads(auth_env.ok("credential-process", "--role", "admin").stdout)
    assert cp["AccessKeyId"] == rec["session_id"]
    assert auth_env.status()["counters"]["assume_role"] == 1
    # audited as console_login with the role only; the token and URL nowhere on disk
    audit = rig.read_jsonl(os.path.join(auth_env.state_dir, "audit.log"))
    logins = [a for a in audit if a["issued"] == "console_login"]
    assert len(logins) == 1 and logins[0]["role"] == "admin", audit
    assert_no_token_leak(auth_env, token, exclude=[])
    for path in (auth_env.daemon_log, os.path.join(auth_env.state_dir, "audit.log")):
        text = open(path).read()
        assert token not in text and "SigninToken" not in text and "federation?" not in text


def test_login_stdout_region_and_path(auth_env, federation, tmp_path):
    fed = federation(auth_env.moto.url)
    opener_log = login_env(auth_env, fed, tmp_path)
    r = auth_env.ok("login", "--role", "admin", "--stdout", "--region", "eu-west-1",
                    "--path", "ec2/home#Instances")
    url = r.stdout.strip()
    assert len(r.stdout.splitlines()) == 1
    assert_login_url(url, fed,
                     "https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#Instances")
    assert not os.path.exists(opener_log), "--stdout must not open a browser"
    dest = "https://s3.console.aws.amazon.com/s3/buckets?region=us-east-1"
    url = auth_env.ok("login", "--role", "admin", "--stdout", "--destination", dest).stdout.strip()
    assert_login_url(url, fed, dest)


def test_login_honours_browser(auth_env, federation, tmp_path):
    fed = federation(auth_env.moto.url)
    opener_log = login_env(auth_env, fed, tmp_path)
    recorder = os.path.join(OPENER_DIR, "open")
    auth_env.ok("login", "--role", "admin", env={"BROWSER": f"{recorder} --new-tab %s"})
    calls = rig.read_jsonl(opener_log)
    assert len(calls) == 1 and calls[0]["argv0"] == "open", calls
    assert calls[0]["args"][0] == "--new-tab"
    assert_login_url(follow_link(calls[0]["args"][1]), fed,
                     "https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1")
    # an opener that fails: one clear line, the URL not repeated
    r = auth_env.run("login", "--role", "admin", env={"PCTL_TEST_OPENER_EXIT": "3"})
    err = rig.assert_pctl_error(r, "cannot open a browser", "--stdout")
    assert "SigninToken" not in err and "federation" not in err


def test_login_after_mfa_omits_session_duration(mfa_open_env, moto_open, federation, tmp_path):
    """A role assumed with the MFA session is role chaining for AWS: the federation
    endpoint refuses SessionDuration for it (the stand-in does too)."""
    fed = federation(moto_open.url, refuse_duration=True)
    login_env(mfa_open_env, fed, tmp_path)
    url = mfa_open_env.ok("login", "--role", "admin", "--stdout").stdout.strip()
    rec = fed.records()[-1]
    assert rec["status"] == 200 and rec["session_duration"] is None, rec
    assert_login_url(url, fed,
                     "https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1")


def test_login_bad_input(auth_env, federation, tmp_path):
    fed = federation(auth_env.moto.url)
    login_env(auth_env, fed, tmp_path)
    cases = [
        (["--destination", "https://evil.example/"], ["--destination", "console.aws.amazon.com"]),
        (["--region", "us-gov-west-1"], ["partition"]),
        (["--region", "us east"], ["region"]),
    ]
    for extra, needles in cases:
        r = auth_env.run("login", "--role", "admin", "--stdout", *extra)
        rig.assert_pctl_error(r, *needles)
    rig.assert_pctl_error(auth_env.run("login", "--role", "nope", "--stdout"), "unknown role")
    assert all(rec["status"] == 200 for rec in fed.records())  # nothing refused was sent
    # clap refuses --path with --destination
    r = auth_env.run("login", "--role", "admin", "--path", "a", "--destination", "b")
    assert r.returncode == 2 and "cannot be used with" in r.stderr


def test_login_refused_and_unsafe_endpoints(auth_env, federation, tmp_path, fresh_moto):
    # a stand-in that refuses this session (it knows another, empty moto): a clear line
    fed = federation(fresh_moto.url)
    login_env(auth_env, fed, tmp_path)
    r = auth_env.run("login", "--role", "admin", "--stdout")
    rig.assert_pctl_error(r, "federation endpoint refused")
    assert fed.records()[-1]["status"] == 400
    # plain http to a non-loopback host would carry the secret key in clear: refused
    auth_env.ok("stop")
    auth_env.env["PCTL_FEDERATION_ENDPOINT"] = "http://signin.example"
    r = auth_env.run("login", "--role", "admin", "--stdout")
    rig.assert_pctl_error(r, "PCTL_FEDERATION_ENDPOINT", "https")
