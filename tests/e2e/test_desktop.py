"""The console, one browser identity per role, a subshell and several roles on one
`serve` (issue 18 §3, §4), end to end against moto and the local federation stand-in
(tests/fixtures/federation_server.py):

- `pctl login --duration`: the console session's length, within what AWS allows for the
  session kind (15m-12h; after MFA, role chaining: at most the role session's end);
- `[console] browser`: "firefox-container" (an `ext+container:` URL naming the role),
  "chromium-profile" (a per-role `--user-data-dir` under the XDG data directory),
  a command. The browser is a recording stand-in (tests/fixtures/desktop/browser-standin)
  that opens the link it got once, as a browser's first request would: the real-Chromium
  test is not done here.
"""

import json
import os
import re
import shutil
import signal
import stat
import urllib.error
import urllib.parse
import urllib.request

import pytest

import desktop_rig as d
import rig
from test_login import federation, login_env  # noqa: F401 (fixture)

BROWSER = os.path.join(d.DESKTOP, "browser-standin")


def with_console(env, console, roles=""):
    env.write_config(text=d.config() + roles + "\n[console]\n" + console + "\n")


def browser_log(env):
    return rig.read_jsonl(env.env["PCTL_TEST_BROWSER_LOG"])


@pytest.fixture
def console_env(auth_env, federation, tmp_path):  # noqa: F811
    fed = federation(auth_env.moto.url)
    login_env(auth_env, fed, tmp_path)
    auth_env.env["PCTL_TEST_BROWSER_LOG"] = str(tmp_path / "browser.jsonl")
    auth_env.env["XDG_DATA_HOME"] = os.path.join(auth_env.home, ".local", "share")
    auth_env.fed = fed
    return auth_env


def last_token_request(fed):
    return [r for r in fed.records() if r.get("action") == "getSigninToken"][-1]


def test_login_duration(console_env):
    env = console_env
    env.ok("login", "--role", "admin", "--stdout", "--duration", "2h")
    rec = last_token_request(env.fed)
    assert rec["status"] == 200 and rec["session_duration"] == "7200", rec
    # beyond what AWS allows: clamped, saying so in one line
    r = env.ok("login", "--role", "admin", "--stdout", "--duration", "13h")
    assert "--duration 13h" in r.stderr and "using 12h" in r.stderr, r.stderr
    rec = last_token_request(env.fed)
    assert rec["status"] == 200 and rec["session_duration"] == "43200", rec
    r = env.run("login", "--role", "admin", "--stdout", "--duration", "soon")
    assert r.returncode == 2 and "--duration" in r.stderr and "not a duration" in r.stderr, r


def test_login_duration_after_mfa_is_capped_by_role_chaining(mfa_open_env, moto_open,
                                                             federation, tmp_path):  # noqa: F811
    env = mfa_open_env
    fed = federation(moto_open.url, refuse_duration=True)
    login_env(env, fed, tmp_path)
    # the role session is made 2h long and the console session ends with it:
    # no SessionDuration is sent (AWS refuses it for a chained session)
    env.ok("login", "--role", "admin", "--stdout", "--duration", "2h")
    rec = last_token_request(fed)
    assert rec["status"] == 200 and rec["session_duration"] is None, rec
    import datetime
    [sess] = [r for r in env.status()["roles"] if r["role"] == "admin"]
    left = (datetime.datetime.fromisoformat(sess["expiration"].replace("Z", "+00:00"))
            - datetime.datetime.now(datetime.timezone.utc))
    assert datetime.timedelta(minutes=110) < left <= datetime.timedelta(hours=2), sess



def test_firefox_container_named_after_the_role(console_env):
    env = console_env
    with_console(env, f'browser = "firefox-container"\nbrowser_command = "{BROWSER}"')
    r = env.ok("login", "--role", "admin")
    assert "browser-standin" in r.stderr, r.stderr
    [rec] = browser_log(env)
    [arg] = rec["args"]
    assert arg.startswith("ext+container:name=admin&url=http%3A%2F%2F127.0.0.1%3A"), arg
    # the link in it is the daemon's one-shot link to the sign-in URL
    assert rec["status"] in (302, 303, 307), rec
    assert rec["location"].startswith(env.fed.url + "/federation?Action=login"), rec


def test_chromium_profile_per_role(console_env):
    env = console_env
    second = f'\n[roles.ops]\nname = "{rig.ROLE_NAME}"\nduration = "1h"\n'
    with_console(env, f'browser = "chromium-profile"\nbrowser_command = "{BROWSER}"', second)
    env.ok("login", "--role", "admin")
    env.ok("login", "--role", "ops")
    recs = browser_log(env)
    assert len(recs) == 2
    base = os.path.join(env.env["XDG_DATA_HOME"], "pctl", "browser")
    dirs = []
    for rec, role in zip(recs, ["admin", "ops"]):
        args = rec["args"]
        want = f"--user-data-dir={os.path.join(base, role)}"
        assert args[0] == want, args
        assert "--no-first-run" in args and args[-1].startswith("http://127.0.0.1:"), args
        assert rec["location"].startswith(env.fed.url + "/federation?Action=login"), rec
        dirs.append(want.split("=", 1)[1])
    for p in dirs:
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o700
    assert dirs[0] != dirs[1]


def test_browser_command_and_bad_settings(console_env):
    env = console_env
    with_console(env, f'browser = ["{BROWSER}", "--new-window", "%s"]')
    env.ok("login", "--role", "admin")
    [rec] = browser_log(env)
    assert rec["args"][0] == "--new-window" and rec["args"][1].startswith("http://127.0.0.1:")
    with_console(env, 'browser = "netscape"')
    r = env.run("login", "--role", "admin")
    rig.assert_pctl_error(r, "console.browser", "netscape", "chromium-profile")
    with_console(env, 'browser_command = "chromium"')
    r = env.run("login", "--role", "admin")
    rig.assert_pctl_error(r, "console.browser_command")


# -- §4: a subshell, nested exec, several roles on one `serve`

@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_exec_without_a_command_starts_the_shell(auth_env, shell):
    """`pctl exec --role admin` runs $SHELL with the role: a real bash, zsh and fish read
    their commands from stdin here and see the session and PCTL_EXEC."""
    path = shutil.which(shell)
    if not path:
        pytest.fail(f"{shell} not found: run tests/setup.sh (installs it)", pytrace=False)
    script = "echo key=$AWS_ACCESS_KEY_ID exec=$PCTL_EXEC; exit 3\n"
    r = auth_env.run("exec", "--role", "admin", env={"SHELL": path}, input=script)
    assert r.returncode == 3, r.stderr
    line = r.stdout.strip()
    assert line.startswith("key=ASIA") and line.endswith("exec=admin"), r.stdout


def test_nested_exec_is_refused_unless_forced(auth_env):
    env = auth_env
    r = env.run("exec", "--role", "admin", "--", env.bin, "exec", "--role", "admin", "--", "true")
    err = rig.assert_pctl_error(r, "already inside `pctl exec` of role admin", "--force")
    assert "PCTL_EXEC" in err
    r = env.run("exec", "--role", "admin", "--", env.bin, "exec", "--force", "--role", "admin",
                "--", "sh", "-c", "echo $PCTL_EXEC")
    assert r.returncode == 0 and r.stdout.strip() == "admin", r.stderr


def test_serve_several_roles_one_endpoint_each(auth_env, aws_cli):
    env = auth_env
    env.write_config(text=d.config() + f'\n[roles.ops]\nname = "{rig.ROLE_NAME}"\n'
                                       'duration = "1h"\n')
    p = env.popen("serve", "--role", "admin", "--role", "ops", "--shell", "bash")
    try:
        blocks = {}
        for _ in range(2):
            head = p.stdout.readline().strip()
            m = re.fullmatch(r"# role (\w+)", head)
            assert m, head
            blocks[m.group(1)] = rig.serve_exports(p, env)
        assert set(blocks) == {"admin", "ops"}
        urls = {b["AWS_CONTAINER_CREDENTIALS_FULL_URI"] for b in blocks.values()}
        tokens = {b["AWS_CONTAINER_AUTHORIZATION_TOKEN"] for b in blocks.values()}
        assert len(urls) == 2 and len(tokens) == 2
        for exports in blocks.values():
            r = env.run_tool([aws_cli, "sts", "get-caller-identity", "--output", "json",
                              "--region", rig.REGION], env=exports)
            assert r.returncode == 0, r.stderr
            assert ":assumed-role/" in json.loads(r.stdout)["Arn"]
        # the token of one endpoint does not open the other
        a, o = blocks["admin"], blocks["ops"]
        req = urllib.request.Request(a["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
                                     headers={"Authorization": o["AWS_CONTAINER_AUTHORIZATION_TOKEN"]})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 401
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0
        # all end together
        for u in urls:
            def gone(u=u):
                try:
                    urllib.request.urlopen(u, timeout=2)
                except urllib.error.HTTPError:
                    return False
                except OSError:
                    return True
                return False
            rig.wait_until(gone, timeout=10, what="endpoint gone")
    finally:
        if p.poll() is None:
            p.kill()
    r = env.run("serve", "--role", "admin", "--role", "ops", "--port", "1")
    rig.assert_pctl_error(r, "--port goes with one --role")
