"""An IAM Identity Center sign-in for a client without a terminal (issue 18 §1): kubectl,
terraform or an SDK run by an IDE triggers it, so the daemon shows it on the desktop. A
notification (recording notify-send stand-in) names the identity, the requesting program
and the user code; when the client cannot open a browser, a pinentry window (the scripted
Assuan stand-in, or a real pinentry-curses on a tmux terminal named by GPG_TTY) shows the
verification URL and the code. Cancel abandons the sign-in (one line, nothing kept); the
approval in the Identity Center stand-in serves the request and closes the window.

The requesting program is a shell started as `kubectl` (a symlink to bash), so the daemon
finds a program of that name behind the client. No client here has a controlling terminal
(new session) and, unless a test names the opener stand-in, none can open a browser:
$BROWSER is empty and PATH holds only python3 and bash (for the stand-ins) and the desktop
stand-ins, no xdg-open.
"""

import json
import os
import subprocess

import pytest

import desktop_rig as d
import rig
import sso_rig
from sso_rig import sso, sso_moto  # noqa: F401 (fixtures)

CONFIG = sso_rig.IDENTITY + sso_rig.role("dev", "Dev") + """
[daemon]
pinentry = "{pinentry}"
"""


@pytest.fixture
def env(pctl_env, sso_moto, sso, tmp_path):
    e = sso_rig.pctl_env_for(pctl_env, sso_moto, sso, tmp_path,
                             config=CONFIG.format(pinentry=d.PINENTRY_STANDIN))
    # no opener; the program behind the client: bash started as `kubectl`
    return d.no_browser(e, tmp_path, programs=("kubectl",))


def from_kubectl(env, *args, extra=None):
    """`pctl ARGS` run by a program named kubectl, with no controlling terminal."""
    return d.run_by(env, "kubectl", *args, extra=extra)


finish = d.finish


def standin(env, cmd):
    return [c["arg"] for c in d.standin_log(env) if c["cmd"] == cmd]


def corp_sso(env):
    return next(i for i in env.status()["identities"] if i["name"] == "corp")["sso"]


def no_secret_in(env, texts):
    for values in env.sso.secrets().values():
        for v in values:
            assert all(v not in t for t in texts), "a token or client secret was shown"


def test_notification_and_pinentry_show_the_code_and_the_approval_serves(env):
    d.plan(env, hold=True)  # the window stays up until the sign-in ends
    p = from_kubectl(env, "credential-process", "--role", "dev")
    try:
        dev = env.sso.wait_device()
        rig.wait_until(lambda: standin(env, "CONFIRM") != [], timeout=30,
                       what="the pinentry window")
        desc = standin(env, "SETDESC")[0]
        for want in ("identity corp", "kubectl", sso_rig.START_URL, dev["user_code"],
                     "/device", "Cancel"):
            assert want in desc, (want, desc)
        # notify-send runs beside the window, not before it: wait for its record
        rig.wait_until(lambda: d.notifications(env) != [], timeout=15, what="the notification")
        notes = d.notifications(env)
        assert len(notes) == 1, notes
        body = " ".join(notes[0]["argv"])
        for want in ("IAM Identity Center", "identity corp", "kubectl", dev["user_code"]):
            assert want in body, (want, body)
        # `pctl prompt` and status say what the identity waits for
        rig.wait_until(lambda: env.run("prompt").stdout.startswith("waiting(corp)"), timeout=15,
                       what="pctl prompt to show the wait")
        ids = env.status()["identities"]
        assert [i.get("waiting") for i in ids if i["name"] == "corp"] == [
            "IAM Identity Center sign-in"], ids
        env.sso.device("approve", dev["user_code"])
        rc, out, err = finish(p)
    finally:
        open(os.path.join(env.home, ".pinentry-release"), "w").close()
        d.kill(p)
    assert rc == 0, err + env.daemon_log_tail()
    assert json.loads(out)["AccessKeyId"].startswith("ASIA")
    assert env.run("prompt").stdout.strip() == "unlocked"
    # the window was taken down by the daemon when the sign-in ended, not answered
    assert "BYE" not in [c["cmd"] for c in d.standin_log(env)]
    no_secret_in(env, [json.dumps(d.standin_log(env)), json.dumps(d.notifications(env))])
    # signed in: the next request asks nothing and shows nothing
    rc, out, err = finish(from_kubectl(env, "credential-process", "--role", "dev"))
    assert rc == 0, err
    assert len(d.notifications(env)) == 1 and len(standin(env, "CONFIRM")) == 1
    assert env.sso.state()["counts"]["StartDeviceAuthorization"] == 1


def test_cancel_in_pinentry_abandons_the_sign_in_and_keeps_nothing(env):
    d.plan(env, confirm="cancel")
    rc, out, err = finish(from_kubectl(env, "credential-process", "--role", "dev"))
    assert rc == 1 and out == "", err
    lines = err.strip().splitlines()
    last = lines[-1]
    assert last.startswith("pctl: identity corp: ") and "cancelled in pinentry" in last, err
    assert "nothing was kept" in last, last
    # the only error line (before it: the URL and code the client prints)
    assert [l for l in lines if "cancelled" in l] == [last], err
    s = corp_sso(env)
    assert not s["signed_in"] and not s["sign_in_pending"], s
    # nothing cached: the next request starts a new device authorization
    d.plan(env, hold=True)
    p = from_kubectl(env, "credential-process", "--role", "dev")
    try:
        dev = env.sso.wait_device(n=2)
        env.sso.device("approve", dev["user_code"])
        rc, out, err = finish(p)
    finally:
        open(os.path.join(env.home, ".pinentry-release"), "w").close()
    assert rc == 0, err + env.daemon_log_tail()
    assert env.sso.state()["counts"]["StartDeviceAuthorization"] == 2


def test_options_from_the_client_environment_reach_the_pinentry(env):
    d.plan(env, confirm="cancel")
    rc, _, err = finish(from_kubectl(env, "credential-process", "--role", "dev", extra={
        "GPG_TTY": "/dev/pts/77", "TERM": "xterm-256color", "LANG": "C.UTF-8", "LC_ALL": "",
        "LC_CTYPE": "", "LC_MESSAGES": "C"}))
    assert rc == 1 and "cancelled in pinentry" in err, err
    cmds = [c["cmd"] + " " + c["arg"] for c in d.standin_log(env)]
    options = [c for c in cmds if c.startswith("OPTION ")]
    assert options == ["OPTION ttyname=/dev/pts/77", "OPTION ttytype=xterm-256color",
                       "OPTION lc-ctype=C.UTF-8", "OPTION lc-messages=C"], cmds
    # as gpg-agent does: right after the greeting, before the dialog's texts
    assert cmds.index(options[-1]) < min(i for i, c in enumerate(cmds) if c.startswith("SET")), cmds
    assert "GPG_TTY" in d.standin_log(env)[0]["env"]


def alternate_screen(tmux, name="pin"):
    return subprocess.run(tmux.base + ["display-message", "-p", "-t", f"t:{name}",
                                       "#{alternate_on}"],
                          capture_output=True, text=True, timeout=10).stdout.strip()


def test_real_pinentry_curses_on_the_terminal_named_by_gpg_tty(env):
    """No DISPLAY: pinentry-curses draws on the terminal OPTION ttyname names (GPG_TTY)."""
    real = d.pinentry_curses()
    tmux = d.Tmux(env)
    try:
        env.write_config(text=CONFIG.format(pinentry=real))
        tty = d.pinentry_terminal(tmux)
        p = from_kubectl(env, "credential-process", "--role", "dev",
                         extra={"GPG_TTY": tty, "TERM": "xterm"})
        try:
            dev = env.sso.wait_device()
            tmux.wait_screen("pin", dev["user_code"], "pinentry-curses showing the code")
            screen = tmux.screen("pin")
            assert "identity corp" in screen and "kubectl" in screen, screen
            assert alternate_screen(tmux) == "1"
            env.sso.device("approve", dev["user_code"])
            rc, out, err = finish(p)
        finally:
            d.kill(p)
        assert rc == 0, err + env.daemon_log_tail()
        assert json.loads(out)["AccessKeyId"].startswith("ASIA")
        # the window went with the sign-in, and the terminal was given back as it was (a
        # pinentry killed outright would leave it in curses' alternate screen)
        rig.wait_until(lambda: alternate_screen(tmux) == "0", timeout=15,
                       what="pinentry-curses to leave the terminal")
        assert dev["user_code"] not in tmux.screen("pin")
    finally:
        tmux.kill()


def test_a_pinentry_that_cannot_show_the_sign_in_abandons_it(env):
    """pinentry-curses with neither a display nor a terminal fails at once: one line."""
    env.write_config(text=CONFIG.format(pinentry=d.pinentry_curses()))
    rc, out, err = finish(from_kubectl(env, "credential-process", "--role", "dev"))
    assert rc == 1 and out == "", err
    last = err.strip().splitlines()[-1]
    assert last.startswith("pctl: identity corp must sign in") and "pinentry" in last, err
    assert "pctl unlock --identity corp" in last and "nothing was kept" in last, last
    s = corp_sso(env)
    assert not s["signed_in"] and not s["sign_in_pending"], s


def test_always_shows_the_window_even_when_the_browser_opens(env):
    """[daemon] sso_pinentry = "always": the window says which code to confirm next to the
    browser the client opened."""
    env.write_config(text=CONFIG.format(pinentry=d.PINENTRY_STANDIN)
                     + 'sso_pinentry = "always"\n')
    d.plan(env, hold=True)
    p = from_kubectl(env, "credential-process", "--role", "dev",
                     extra={"BROWSER": sso_rig.OPENER})
    try:
        dev = env.sso.wait_device()
        rig.wait_until(lambda: standin(env, "CONFIRM") != [], timeout=30,
                       what="the pinentry window")
        assert dev["user_code"] in standin(env, "SETDESC")[0]
        rig.wait_until(lambda: d.notifications(env) != [], timeout=15, what="the notification")
        body = " ".join(d.notifications(env)[0]["argv"])
        assert dev["user_code"] in body and "in the browser" in body, body
        env.sso.device("approve", dev["user_code"])
        rc, out, err = finish(p)
    finally:
        open(os.path.join(env.home, ".pinentry-release"), "w").close()
    assert rc == 0, err + env.daemon_log_tail()
    opened = rig.read_jsonl(env.opener_log)
    assert len(opened) == 1 and opened[0]["args"][-1].endswith(dev["user_code"]), opened
    # a value it does not know: one line naming the key
    env.write_config(text=CONFIG.format(pinentry=d.PINENTRY_STANDIN)
                     + 'sso_pinentry = "sometimes"\n')
    r = d.notty(env, "credential-process", "--role", "dev")
    rig.assert_pctl_error(r, "daemon.sso_pinentry", "always")
