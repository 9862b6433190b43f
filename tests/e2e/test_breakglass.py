"""Break-glass roles (issue 18 §2), end to end against moto with the real aws CLI and
real terminals (tmux):

- `allowed_programs`: the program behind the request (the client's parent for
  credential_process, the command `pctl exec` runs) must be named, else one line naming
  the program and the role, and nothing issued;
- `confirm = true`: each NEW session needs a yes, on the requesting client's terminal,
  or through pinentry (real pinentry-curses, scripted stand-in) when it has none; a no is
  one line and nothing is issued; cached requests ask nothing; the audit says who
  confirmed how.
"""

import json
import os

import pytest

import desktop_rig as d
import rig


@pytest.fixture
def bg_env(pctl_env, moto_open, recording_proxy):
    return d.proxied_env(pctl_env, moto_open, recording_proxy)


def assumed(env):
    return len(env.proxy.actions("AssumeRole"))


def aws_profile(env, path):
    with open(path, "w") as f:
        f.write(f"[profile bg]\ncredential_process = {env.bin} credential-process --role admin\n"
                f"region = {rig.REGION}\n")
    return {"AWS_CONFIG_FILE": path,
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(env.home, "none")}


def test_allowed_programs(bg_env, aws_cli):
    env = bg_env
    env.write_config(text=d.config(role_lines='allowed_programs = ["aws", "kubectl"]'))
    # python (this test) runs the client: refused, one line naming it and the role
    r = env.run("credential-process", "--role", "admin")
    err = rig.assert_pctl_error(r, "role admin may be used only by aws, kubectl", "python")
    assert "allowed_programs" in err
    assert assumed(env) == 0
    # the aws CLI (a Python script: its name is the script's) runs credential_process
    prof = aws_profile(env, os.path.join(env.home, "aws-config"))
    r = env.run_tool([aws_cli, "sts", "get-caller-identity", "--profile", "bg",
                      "--output", "json"], env=prof)
    assert r.returncode == 0, r.stderr + env.daemon_log_tail()
    assert ":assumed-role/" in json.loads(r.stdout)["Arn"]
    # `pctl exec`: the command it runs is the program
    r = env.run("exec", "--role", "admin", "--", aws_cli, "sts", "get-caller-identity",
                "--output", "json")
    assert r.returncode == 0, r.stderr
    r = env.run("exec", "--role", "admin", "--", "env")
    rig.assert_pctl_error(r, "role admin may be used only by", '"env"')


def test_allowed_programs_is_checked_at_the_credential_endpoint(bg_env, aws_cli):
    """`pctl serve`: each request's own process is the program (not pctl's parent)."""
    env = bg_env
    env.write_config(text=d.config(role_lines='allowed_programs = ["aws"]'))
    p = env.popen("serve", "--role", "admin", "--shell", "bash")
    try:
        e = rig.serve_exports(p, env)
        e["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(env.home, "none")
        e["AWS_CONFIG_FILE"] = os.path.join(env.home, "none")
        r = env.run_tool([aws_cli, "sts", "get-caller-identity", "--output", "json",
                          "--region", rig.REGION], env=e)
        assert r.returncode == 0, r.stderr + env.daemon_log_tail()
        # python is not aws: refused with the role and the program named
        status, body = d.endpoint_get(e)
        assert status != 200, "python was served"
        msg = body["message"]
        assert "role admin may be used only by aws" in msg and "python" in msg, body
    finally:
        rig.stop_process(p, timeout=10)


def answer_on_the_terminal(env, *keys):
    """A request for the confirm = true role from a real terminal (tmux window "c"), answered
    there with `keys` once asked: (stdout path, stderr path, exit status)."""
    env.write_config(text=d.config(role_lines="confirm = true"))
    tmux = d.Tmux(env)
    try:
        out, err, rc = tmux.pctl("c", "credential-process", "--role", "admin")
        tmux.wait_screen("c", "[y/N]", "the question on the terminal")
        screen = tmux.screen("c")
        assert "role admin is a break-glass role" in screen, screen
        assert assumed(env) == 0, "nothing assumed before the answer"
        tmux.keys("c", *keys)
        return out, err, d.wait_rc(rc)
    finally:
        tmux.kill()


def test_confirm_yes_on_the_terminal_then_cached(bg_env):
    env = bg_env
    out, err, rc = answer_on_the_terminal(env, "y", "Enter")
    assert rc == 0, open(err).read() + env.daemon_log_tail()
    assert json.load(open(out))["AccessKeyId"]
    assert assumed(env) == 1
    # a cached session: no question, even for a client without a terminal
    r = d.notty(env, "credential-process", "--role", "admin")
    assert r.returncode == 0, r.stderr
    assert assumed(env) == 1
    confirms = d.audit_lines(env, "confirm")
    assert len(confirms) == 1, confirms
    assert confirms[0]["role"].startswith("admin: confirmed on the terminal of pid"), confirms


def test_confirm_no_on_the_terminal_issues_nothing(bg_env):
    env = bg_env
    out, err, rc = answer_on_the_terminal(env, "n", "Enter")
    assert rc == 1
    text = open(err).read().strip()
    assert text == "pctl: role admin: not confirmed, nothing was issued", text
    assert open(out).read() == ""
    assert assumed(env) == 0
    assert env.status()["roles"] == []


def test_confirm_without_a_terminal_goes_through_pinentry(bg_env):
    env = bg_env
    env.write_config(text=d.config(role_lines="confirm = true",
                                   daemon_lines=f'pinentry = "{d.PINENTRY_STANDIN}"'))
    d.plan(env, confirm="deny")
    r = d.notty(env, "credential-process", "--role", "admin")
    rig.assert_pctl_error(r, "role admin", "denied in pinentry", "nothing was issued")
    assert assumed(env) == 0
    denied = d.audit_lines(env, "denied")
    assert len(denied) == 1 and "denied in pinentry" in denied[0]["role"], denied
    desc = next(c["arg"] for c in d.standin_log(env) if c["cmd"] == "SETDESC")
    # the description's blank line arrives percent-escaped
    assert "break-glass" in desc and "%0A%0A(identity default)" in desc, desc
    d.plan(env, confirm="ok")
    r = d.notty(env, "credential-process", "--role", "admin")
    assert r.returncode == 0, r.stderr + env.daemon_log_tail()
    assert assumed(env) == 1
    confirms = d.audit_lines(env, "confirm")
    assert len(confirms) == 1 and "confirmed in pinentry" in confirms[0]["role"], confirms
    # cached: pinentry is not asked again
    n = len([c for c in d.standin_log(env) if c["cmd"] == "CONFIRM"])
    d.notty(env, "credential-process", "--role", "admin").check_returncode()
    assert len([c for c in d.standin_log(env) if c["cmd"] == "CONFIRM"]) == n


def test_confirm_through_a_real_pinentry_curses(bg_env):
    env = bg_env
    # Enter: the focused button, Allow
    d.answer_in_curses_pinentry(env, "break-glass", ["Enter"], role_lines="confirm = true")
    assert assumed(env) == 1
