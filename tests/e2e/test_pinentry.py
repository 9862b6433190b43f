"""Prompts that reach the user without a terminal (issue 18 §1): an identity with
mfa = "prompt" asked for by a client with no controlling terminal (kubectl run by an IDE,
an SDK) gets its code through pinentry (Assuan), started by the daemon with the client's
display variables only. A real pinentry-curses, driven through tmux, and the scripted
stand-in (tests/fixtures/desktop/pinentry-standin) for cancel, timeout, a hang and escaped
data. An unlock started for such a client shows a desktop notification (recording
notify-send stand-in), and `pctl prompt` / `status` say what the identity waits for.

moto accepts any MFA code without auth: the code that reached STS is read at the
recording proxy.
"""

import os

import pytest

import desktop_rig as d
import rig


@pytest.fixture
def prompt_env(pctl_env, moto_open, recording_proxy):
    """An item with the MFA serial and no one-time password: the user types the code."""
    return d.proxied_env(pctl_env, moto_open, recording_proxy, mfa_serial=rig.MFA_SERIAL)


sent_codes = d.sent_codes


def use_standin(env, **kw):
    env.write_config(text=d.config(identity_lines='mfa = "prompt"',
                                   daemon_lines=f'pinentry = "{d.PINENTRY_STANDIN}"', **kw))


def test_code_through_a_real_pinentry_curses(prompt_env):
    env = prompt_env
    code = "135790"
    out, asked, after = d.answer_in_curses_pinentry(env, "MFA code", [code, "Enter"],
                                                    identity_lines='mfa = "prompt"')
    assert "role admin" in asked and "identity default" in asked, asked
    assert '"AccessKeyId"' in out
    assert code not in after, "the code was echoed"
    assert sent_codes(env) == [code]
    assert len(env.op_calls("item get")) == 1
    hits = rig.scan_tree_for([env.root], {}, numeric_codes=[code])
    assert hits == [], hits
    # unlocked: the next request asks nothing
    d.notty(env, "credential-process", "--role", "admin").check_returncode()
    assert sent_codes(env) == [code]


def test_standin_gets_escaped_texts_and_the_decoded_code_goes_to_sts_once(prompt_env):
    env = prompt_env
    use_standin(env)
    # the code arrives percent-escaped (%33 is "3"): decoded before use
    d.plan(env, pin="12%33456")
    r = d.notty(env, "credential-process", "--role", "admin", extra={"DISPLAY": ":7"})
    assert r.returncode == 0, r.stderr + env.daemon_log_tail()
    assert sent_codes(env) == ["123456"]
    # after the OPTIONs from the client's environment (LANG: lc-ctype, lc-messages)
    cmds = [c["cmd"] for c in d.standin_log(env) if c["cmd"] != "OPTION"]
    assert cmds[:3] == ["SETTITLE", "SETDESC", "SETTIMEOUT"] and "GETPIN" in cmds, cmds
    assert cmds[-1] == "BYE", cmds
    desc = next(c["arg"] for c in d.standin_log(env) if c["cmd"] == "SETDESC")
    assert "role admin" in desc and "identity default" in desc, desc
    # the pinentry runs with the display and locale, nothing of 1Password's or AWS's
    names = d.standin_log(env)[0]["env"]
    assert "DISPLAY" in names
    assert not [n for n in names if n.startswith(("OP_", "AWS_", "PCTL_"))], names


def test_cancelled_pinentry_is_one_line_and_nothing_is_kept(prompt_env):
    env = prompt_env
    use_standin(env)
    d.plan(env, getpin="cancel")
    r = d.notty(env, "credential-process", "--role", "admin")
    err = rig.assert_pctl_error(r, "cancelled in pinentry", "pctl unlock --identity default")
    assert "123456" not in err
    assert sent_codes(env) == [] and env.op_calls("item get") == []
    assert env.status()["locked"] is True
    # nothing cached: the next request asks again
    d.plan(env, pin="654321")
    d.notty(env, "credential-process", "--role", "admin").check_returncode()
    assert [c["cmd"] for c in d.standin_log(env)].count("GETPIN") == 2
    assert sent_codes(env) == ["654321"]


def test_timed_out_and_hung_pinentry(prompt_env):
    env = prompt_env
    use_standin(env, op_timeout="1s")
    d.plan(env, getpin="timeout")
    r = d.notty(env, "credential-process", "--role", "admin")
    rig.assert_pctl_error(r, "no answer within 1s", "pctl unlock --identity default")
    # a pinentry that never answers is given up on by the daemon itself
    d.plan(env, hang=True)
    r = d.notty(env, "credential-process", "--role", "admin", timeout=30)
    rig.assert_pctl_error(r, "no answer within 1s")
    assert sent_codes(env) == [] and env.op_calls("item get") == []


def test_a_code_that_is_not_six_digits_is_refused(prompt_env):
    env = prompt_env
    use_standin(env)
    d.plan(env, pin="12ab")
    r = d.notty(env, "credential-process", "--role", "admin")
    rig.assert_pctl_error(r, "not 6 digits")
    assert sent_codes(env) == []


def test_missing_pinentry_is_one_line(prompt_env):
    env = prompt_env
    env.write_config(text=d.config(identity_lines='mfa = "prompt"',
                                   daemon_lines='pinentry = "/nonexistent/pinentry-gnome3"'))
    r = d.notty(env, "credential-process", "--role", "admin")
    rig.assert_pctl_error(r, "/nonexistent/pinentry-gnome3", "pctl unlock --identity default")


def test_prompt_and_status_show_the_wait(prompt_env):
    env = prompt_env
    use_standin(env)
    d.plan(env, hold=True, pin="112233")
    p = d.notty_popen(env, "credential-process", "--role", "admin")
    try:
        def waiting():
            ids = env.status()["identities"]
            return [i.get("waiting") for i in ids if i["name"] == "default"] == [
                "an MFA code in pinentry"]

        rig.wait_until(waiting, timeout=30, what="status to show the wait")
        r = env.run("prompt")
        assert r.stdout.strip().startswith("waiting(default)"), r.stdout
        assert '"state":"waiting"' in env.run("prompt", "--json").stdout.replace(" ", "")
    finally:
        open(os.path.join(env.home, ".pinentry-release"), "w").close()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    ids = env.status()["identities"]
    assert all("waiting" not in i for i in ids), ids
    assert env.run("prompt").stdout.strip() == "unlocked"


def test_notification_when_an_unlock_starts_without_a_terminal(pctl_env, mfa_open_env):
    env = mfa_open_env
    r = d.notty(env, "credential-process", "--role", "admin",
                extra=dict(d.desktop_env(env), DISPLAY=":7"))
    assert r.returncode == 0, r.stderr + env.daemon_log_tail()
    # notify-send is not waited for by the daemon: wait for its record
    rig.wait_until(lambda: d.notifications(env) != [], timeout=15, what="the notification")
    notes = d.notifications(env)
    assert len(notes) == 1, notes
    argv = notes[0]["argv"]
    assert "pctl: unlocking identity default" in argv, argv
    assert any("role admin" in a and "1Password" in a for a in argv), argv
    assert "DISPLAY" in notes[0]["env"]
    assert not [n for n in notes[0]["env"] if n.startswith(("OP_", "AWS_"))]
    # unlocked: no new unlock, no new notification
    d.notty(env, "credential-process", "--role", "admin",
            extra=d.desktop_env(env)).check_returncode()
    assert len(d.notifications(env)) == 1
