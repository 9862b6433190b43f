"""`pctl login` hands the browser a one-shot loopback link, never the sign-in URL (issue 15 §7).

The sign-in URL carries SigninToken, a bearer credential for the console; an opener's argv is
readable by every local user in /proc/PID/cmdline for as long as it runs (a browser: hours).
The daemon keeps the URL and answers GET /login/<random> on 127.0.0.1 once, for its own user,
with a 303 to it. Real peers: moto, the federation stand-in (which also answers the browser's
landing, Action=login, and logs it), an opener stand-in that stays running like a browser.
"""

import http.client
import json
import os
import stat
import sys
import urllib.parse

import pytest

import rig
from test_login import assert_login_url, federation, login_env  # noqa: F401 (fixture)

DEST = "https://us-east-1.console.aws.amazon.com/console/home?region=us-east-1"


def fetch(url, method="GET"):
    """One request, no redirect followed: (status, Location) or None when nothing answers."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""))
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Location")
    except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
        return None
    finally:
        conn.close()


def fetch_as(uid, url):
    """`fetch` from a forked child running as `uid` (no exec: nothing to be readable)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            os.setgid(uid)
            os.setuid(uid)
            os.write(w, json.dumps(fetch(url)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    os.waitpid(pid, 0)
    return json.loads(out)


def sign_in_records(fed):
    return [r for r in fed.records() if r.get("action") == "getSigninToken"]


def landings(fed):
    return [r for r in fed.records() if r.get("action") == "login"]


def staying_opener(tmp_path):
    """A browser stand-in: records its pid and argv, then keeps running (as a browser does)."""
    path = tmp_path / "browser"
    path.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys, time\n"
        "with open(os.environ['PCTL_TEST_OPENER_LOG'], 'a') as f:\n"
        "    f.write(json.dumps({'pid': os.getpid(), 'args': sys.argv[1:]}) + '\\n')\n"
        "time.sleep(120)\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_browser_that_stays_running_never_holds_the_token(auth_env, federation, tmp_path):
    fed = federation(auth_env.moto.url)
    opener_log = login_env(auth_env, fed, tmp_path)
    browser = staying_opener(tmp_path)
    r = auth_env.ok("login", "--role", "admin", env={"BROWSER": browser}, timeout=60)
    calls = rig.read_jsonl(opener_log)
    assert len(calls) == 1, calls
    pid = calls[0]["pid"]
    try:
        # login returned while the browser still runs: it did not wait for it
        os.kill(pid, 0)
        token = sign_in_records(fed)[-1]["signin_token"]
        link = calls[0]["args"][0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().decode()
        # what another user reads in /proc: the loopback link, no sign-in token
        assert link in cmdline and token not in cmdline and "SigninToken" not in cmdline, cmdline
        assert link.startswith("http://127.0.0.1:") and "/login/" in link, link
        assert "SigninToken" not in r.stderr and token not in r.stderr
        # the browser (this user) follows it: one redirect to the federation endpoint
        status, location = fetch(link)
        assert status == 303, status
        assert_login_url(location, fed, DEST)
        assert token in location
        status, _ = fetch(location)
        assert status == 200 and len(landings(fed)) == 1 and landings(fed)[0]["token_known"]
        # used once: a second fetch finds nothing
        assert rig.wait_until(lambda: fetch(link) is None, timeout=15, what="the link to close")
        assert len(landings(fed)) == 1
    finally:
        os.kill(pid, 9)
    # the token in no log or file of pctl's
    for path in (auth_env.daemon_log, os.path.join(auth_env.state_dir, "audit.log")):
        text = open(path).read()
        assert token not in text and "SigninToken" not in text


def test_default_opener_gets_the_link_and_the_link_works_once(auth_env, federation, tmp_path):
    """The opener stand-in (tests/fixtures/bin-opener) sees no SigninToken in its argv."""
    fed = federation(auth_env.moto.url)
    opener_log = login_env(auth_env, fed, tmp_path)
    auth_env.ok("login", "--role", "admin", "--path", "ec2/home")
    calls = rig.read_jsonl(opener_log)
    assert len(calls) == 1 and calls[0]["argv0"] == "xdg-open", calls
    (link,) = calls[0]["args"]
    token = sign_in_records(fed)[-1]["signin_token"]
    assert "SigninToken" not in link and token not in link and "federation" not in link, link
    # a wrong path or a HEAD uses nothing up
    assert fetch(link + "x")[0] == 404
    assert fetch(link, "HEAD")[0] == 405
    status, location = fetch(link)
    assert status == 303
    assert_login_url(location, fed,
                     "https://us-east-1.console.aws.amazon.com/ec2/home?region=us-east-1")
    assert rig.wait_until(lambda: fetch(link) is None, timeout=15, what="the link to close")
    # --stdout still prints the sign-in URL itself (the user asked for it), and opens nothing
    url = auth_env.ok("login", "--role", "admin", "--stdout").stdout.strip()
    assert_login_url(url, fed, DEST)
    assert len(rig.read_jsonl(opener_log)) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to fetch as another UID")
def test_another_uid_is_refused_and_uses_nothing_up(auth_env, federation, tmp_path):
    fed = federation(auth_env.moto.url)
    opener_log = login_env(auth_env, fed, tmp_path)
    auth_env.ok("login", "--role", "admin")
    (link,) = rig.read_jsonl(opener_log)[0]["args"]
    # another user who knows the link (it read the argv) gets no answer at all
    assert fetch_as(65534, link) is None
    assert fetch_as(65534, link) is None
    # the owner's browser still gets its one redirect
    status, location = fetch(link)
    assert status == 303
    assert_login_url(location, fed, DEST)
    assert rig.wait_until(lambda: fetch(link) is None, timeout=15, what="the link to close")
    assert fetch_as(65534, link) is None
    rig.wait_until(lambda: "refused 2 connection(s) from other users" in
                   open(auth_env.daemon_log).read(), timeout=15, what="the refusal summary")
