"""The OPTIONs gpg-agent gives a pinentry (issue 18 §1), from the environment the client
forwarded: `ttyname` (GPG_TTY), so pinentry-curses and pinentry-tty can ask on that
terminal when there is no display, `ttytype` (TERM), `lc-ctype` and `lc-messages` (as the C
library resolves them: LC_ALL, then the category, then LANG). The scripted stand-in records
them; a typed MFA code (mfa = "prompt") asked for by a client without a terminal."""

import desktop_rig as d
from test_pinentry import prompt_env, sent_codes, use_standin  # noqa: F401 (fixture)


def test_ttyname_ttytype_and_locale_reach_the_pinentry_before_its_texts(prompt_env):  # noqa: F811
    env = prompt_env
    use_standin(env)
    d.plan(env, pin="246802")
    r = d.notty(env, "credential-process", "--role", "admin", extra={
        "GPG_TTY": "/dev/pts/41", "TERM": "screen-256color", "LANG": "C.UTF-8", "LC_ALL": "",
        "LC_CTYPE": "de_DE.UTF-8", "LC_MESSAGES": ""})
    assert r.returncode == 0, r.stderr + env.daemon_log_tail()
    assert sent_codes(env) == ["246802"]
    cmds = [f'{c["cmd"]} {c["arg"]}' for c in d.standin_log(env)]
    options = [c for c in cmds if c.startswith("OPTION ")]
    assert options == ["OPTION ttyname=/dev/pts/41", "OPTION ttytype=screen-256color",
                       "OPTION lc-ctype=de_DE.UTF-8", "OPTION lc-messages=C.UTF-8"], cmds
    first_text = min(i for i, c in enumerate(cmds) if c.startswith("SET"))
    assert all(cmds.index(o) < first_text for o in options), cmds


def test_a_tty_name_that_could_break_the_line_is_not_sent(prompt_env):  # noqa: F811
    env = prompt_env
    use_standin(env)
    d.plan(env, pin="135799")
    r = d.notty(env, "credential-process", "--role", "admin",
                extra={"GPG_TTY": "/dev/pts/1\nGETPIN", "TERM": "xterm"})
    assert r.returncode == 0, r.stderr + env.daemon_log_tail()
    cmds = [f'{c["cmd"]} {c["arg"]}' for c in d.standin_log(env)]
    assert "OPTION ttytype=xterm" in cmds and not any("ttyname" in c for c in cmds), cmds
    assert [c for c in cmds if c.startswith("GETPIN")] == ["GETPIN "], cmds
