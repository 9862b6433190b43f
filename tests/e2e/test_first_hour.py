"""The first hour of a new user (issue 21): every step drives the real binary, and the
shell steps run in real shells through tmux."""

import json
import os
import re
import shlex
import shutil
import subprocess

import pytest

import rig

# Every command that needs a config, with arguments that would otherwise be valid.
NEEDS_CONFIG = [
    ["status"],
    ["shell", "--shell", "bash"],
    ["shell", "--shell", "bash", "--profile", "admin"],
    ["unlock"],
    ["rotate"],
    ["env", "--role", "admin"],
    ["exec", "--role", "admin", "--", "true"],
    ["credential-process", "--role", "admin"],
    ["aws-config"],
    ["kubeconfig", "--cluster", "platform"],
    ["eks", "token", "--cluster", "platform"],
    ["login", "--role", "admin", "--stdout"],
    ["serve", "--role", "admin"],
]


@pytest.fixture
def no_config_env(pctl_env):
    env = pctl_env("http://127.0.0.1:9")
    os.remove(env.config_path)
    return env


# -- 1. nothing pointed to `pctl init`


@pytest.mark.parametrize("args", NEEDS_CONFIG, ids=lambda a: " ".join(a))
def test_no_config_says_run_init(no_config_env, args):
    r = no_config_env.run(*args, timeout=20)
    err = rig.assert_pctl_error(r, f"no config at {no_config_env.config_path}: run pctl init")
    assert err == f"pctl: no config at {no_config_env.config_path}: run pctl init", err
    # and no daemon was started for it
    assert not os.path.exists(no_config_env.sock), "a daemon was started without a config"


def test_no_config_doctor_fails_pointing_to_init(no_config_env):
    r = no_config_env.run("doctor", timeout=20)
    assert r.returncode == 1, r
    line = [l for l in r.stdout.splitlines() if l.startswith("FAIL") and "config" in l]
    assert line, r.stdout
    assert f"no config at {no_config_env.config_path}" in line[0], line
    assert "fix: run pctl init" in line[0], line
    assert "fix the file" not in r.stdout


def test_config_removed_under_a_running_daemon(auth_env):
    auth_env.ok("status")  # starts the daemon
    os.remove(auth_env.config_path)
    r = auth_env.run("status")
    rig.assert_pctl_error(r, f"no config at {auth_env.config_path}: run pctl init")
    r = auth_env.run("shell", "--shell", "bash")
    rig.assert_pctl_error(r, f"no config at {auth_env.config_path}: run pctl init")
    r = auth_env.run("env", "--role", "admin")
    rig.assert_pctl_error(r, f"no config at {auth_env.config_path}: run pctl init")


def test_bare_pctl_suggests_init(no_config_env):
    r = no_config_env.run()
    assert r.returncode == 2, r
    assert "Usage: pctl" in r.stdout, r.stdout
    assert f"no config at {no_config_env.config_path}: run pctl init" in r.stderr, r.stderr


def test_init_comes_first_in_help(no_config_env):
    r = no_config_env.ok("--help")
    cmds = r.stdout.split("Commands:")[1].strip().splitlines()
    assert cmds[0].split()[0] == "init", r.stdout


# -- shells (tmux): the fixture and helpers of test_shells.py

from test_shells import SHELL_DIR, need, shell_env  # noqa: E402,F401  (shell_env: a fixture)

BOGUS = {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7BOGUS00",
         "AWS_SECRET_ACCESS_KEY": "bogus-secret-left-from-yesterday",
         "AWS_SESSION_TOKEN": "bogus-token"}
UNSET_LINE = ("pctl: unset AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN "
              "(exported keys would take precedence over pctl's profiles)")


def zsh_with_installed_completion(env):
    """zsh with the completion file installed as packaging does (`_pctl` in an fpath
    directory) and a standard compinit: nothing is sourced."""
    zdot = os.path.join(env.root, "zdot")
    comp = os.path.join(zdot, "completions")
    os.makedirs(comp)
    with open(os.path.join(comp, "_pctl"), "w") as f:
        f.write(env.ok("completions", "zsh").stdout)
    with open(os.path.join(zdot, ".zshrc"), "w") as f:
        f.write(f"PROMPT='%% '\nfpath=({comp} $fpath)\n"
                "autoload -Uz compinit && compinit -u -d $ZDOTDIR/.zcompdump\n")
    env.env["ZDOTDIR"] = zdot
    t = env.tmux([need("zsh"), "-i"])
    # compinit builds its dump on first start: slow on a loaded machine
    t.wait_for("%", timeout=90)
    return t


def test_zsh_completion_installed_in_fpath_works_with_compinit(shell_env):
    t = zsh_with_installed_completion(shell_env)
    t.run('eval "$(pctl shell --shell zsh)"')
    t.keys("pctl env --role aud", enter=False)
    t.tab()
    t.wait_for("pctl env --role audit ")
    # Ctrl-U empties the line; Ctrl-C would also make zsh drop the keys typed
    # right after it when the machine is busy (it flushes typeahead).
    t.keys("\x15", enter=False)
    rig.wait_until(lambda: "--role audit" not in t.screen(), timeout=30, interval=0.1,
                   what="the emptied command line")
    t.keys("pctl rol", enter=False)
    t.tab()
    t.wait_for("pctl roles ")
    t.keys("\x03", enter=False)


def test_bash_completion_does_not_offer_hidden_complete(shell_env):
    t = shell_env.tmux(["bash", "--norc", "--noprofile", "-i"])
    t.run("PS1='$ '")
    t.run('eval "$(pctl completions bash)"')
    t.keys("pctl __", enter=False)
    t.tab()
    t.tab()
    t.keys("X", enter=False)  # a marker right after whatever completion inserted
    screen = t.wait_for("pctl __X")
    assert "__complete" not in screen.split("eval")[-1], screen
    t.keys("\x03", enter=False)


def shell_keys_then_aws(t, shell_env, export_cmds, shell_cmd):
    for c in export_cmds:
        t.run(c)
    screen = t.run(shell_cmd)
    assert UNSET_LINE in screen, screen
    screen = t.run("aws sts get-caller-identity --output text --query Arn")
    assert f":assumed-role/{rig.ROLE_NAME}/" in screen, screen
    assert "InvalidClientTokenId" not in screen, screen


def test_shell_unsets_exported_keys_bash(shell_env):
    t = shell_env.tmux(["bash", "--norc", "--noprofile", "-i"])
    t.run("PS1='$ '")
    shell_keys_then_aws(t, shell_env, [f"export {k}='{v}'" for k, v in BOGUS.items()],
                        'eval "$(pctl shell --shell bash --profile admin)"')
    screen = t.run('echo "left:${AWS_ACCESS_KEY_ID-none}"')
    assert "left:none" in screen, screen


def test_shell_unsets_exported_keys_zsh(shell_env):
    t = zsh_with_installed_completion(shell_env)
    shell_keys_then_aws(t, shell_env, [f"export {k}='{v}'" for k, v in BOGUS.items()],
                        'eval "$(pctl shell --shell zsh --profile admin)"')


def test_shell_unsets_exported_keys_fish(shell_env):
    t = shell_env.tmux([need("fish"), "--no-config", "-i"])
    t.run("function fish_prompt; printf '> '; end")
    shell_keys_then_aws(t, shell_env, [f"set -gx {k} '{v}'" for k, v in BOGUS.items()],
                        "pctl shell --shell fish --profile admin | source")


def test_doctor_warns_about_exported_keys(auth_env):
    r = auth_env.run("doctor", env=BOGUS)
    line = [l for l in r.stdout.splitlines() if l.startswith("WARN") and "environment" in l]
    assert line, r.stdout
    assert "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN exported" in line[0]
    for v in BOGUS.values():
        assert v not in r.stdout + r.stderr
    r = auth_env.run("doctor")
    assert "WARN  environment" not in r.stdout, r.stdout


# -- 4. names checked against the daemon's config; roles vs profiles

TWO_ROLES = rig.config_text() + f"""
[roles.audit]
name = "{rig.ROLE_NAME}"
duration = "1h"
"""


def two_roles(env):
    env.write_config(text=TWO_ROLES)


def test_shell_profile_names_are_checked(auth_env):
    two_roles(auth_env)
    r = auth_env.run("shell", "--shell", "bash", "--profile", "nope")
    rig.assert_pctl_error(r, "--profile nope: no such role", "admin, audit", "pctl roles")
    out = auth_env.ok("shell", "--shell", "bash", "--profile", "pctl-admin").stdout
    assert "export AWS_PROFILE='pctl-admin';" in out, out
    assert "pctl-pctl-" not in out, out


def test_pctl_prefix_is_accepted_wherever_a_role_is(auth_env):
    out = auth_env.ok("credential-process", "--role", "pctl-admin").stdout
    assert json.loads(out)["AccessKeyId"].startswith("ASIA"), out
    r = auth_env.ok("exec", "--role", "pctl-admin", "--", "sh", "-c", 'echo "$AWS_ACCESS_KEY_ID"')
    assert r.stdout.strip().startswith("ASIA"), r.stdout


def test_exec_default_role_and_role_first(auth_env, aws_cli):
    two_roles(auth_env)
    r = auth_env.run("exec", "--", "true")
    rig.assert_pctl_error(r, "several roles are configured (admin, audit)", "AWS_PROFILE=pctl-ROLE")
    r = auth_env.ok("exec", "--", aws_cli, "sts", "get-caller-identity", "--output", "text",
                    "--query", "Arn", env={"AWS_PROFILE": "pctl-audit"})
    assert f":assumed-role/{rig.ROLE_NAME}/" in r.stdout, r.stdout
    r = auth_env.ok("exec", "--", "sh", "-c", 'echo "role=$PCTL_ROLE profile=${AWS_PROFILE-}"',
                    env={"AWS_PROFILE": "pctl-audit"})
    assert r.stdout.strip() == "role=audit profile=", r.stdout
    # aws-vault's form
    r = auth_env.ok("exec", "admin", "--", "sh", "-c", 'echo "role=$PCTL_ROLE"')
    assert r.stdout.strip() == "role=admin", r.stdout
    r = auth_env.run("exec", "nope", "--", "true")
    rig.assert_pctl_error(r, 'unknown role "nope"')


def test_exec_defaults_to_the_only_role(auth_env):
    r = auth_env.ok("exec", "--", "sh", "-c", 'echo "role=$PCTL_ROLE"')
    assert r.stdout.strip() == "role=admin", r.stdout


def test_roles_lists_identity_arn_and_session(auth_env):
    two_roles(auth_env)
    r = auth_env.ok("roles")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ROLE", "IDENTITY", "ARN", "SESSION"], r.stdout
    admin = next(l for l in lines if l.startswith("admin "))
    assert "default" in admin and "(ARN known after unlock)" in admin, r.stdout
    assert "no session (identity default locked)" in admin, r.stdout
    # columns line up
    assert len({l.index("default") for l in lines[1:]}) == 1, r.stdout
    auth_env.ok("credential-process", "--role", "admin")
    r = auth_env.ok("roles")
    admin = next(l for l in r.stdout.splitlines() if l.startswith("admin "))
    assert f"arn:aws:iam::{rig.ACCOUNT_ID}:role/{rig.ROLE_NAME}" in admin, r.stdout
    assert re.search(r"session until \S+ \(in (59|60)m\)", admin), r.stdout
    audit = next(l for l in r.stdout.splitlines() if l.startswith("audit "))
    assert "no session yet" in audit, r.stdout
    rows = json.loads(auth_env.ok("roles", "-o", "json").stdout)
    by = {x["role"]: x for x in rows}
    assert set(by) == {"admin", "audit"}
    assert by["admin"]["identity"] == "default"
    assert by["admin"]["profile"] == "pctl-admin"
    assert by["admin"]["arn"] == f"arn:aws:iam::{rig.ACCOUNT_ID}:role/{rig.ROLE_NAME}"
    assert rig.parse_rfc3339(by["admin"]["session_expires"])
    assert by["audit"]["session_expires"] is None
    assert by["audit"]["identity_locked"] is False


# -- 14. exec exits like a shell when the command cannot run


def test_exec_command_not_found_and_not_executable(auth_env):
    r = auth_env.run("exec", "--role", "admin", "--", "no-such-command-xyz")
    assert r.returncode == 127, r
    assert r.stderr.strip() == "pctl: no-such-command-xyz: command not found", r.stderr
    script = os.path.join(auth_env.home, "not-executable.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    os.chmod(script, 0o644)
    r = auth_env.run("exec", "--role", "admin", "--", script)
    assert r.returncode == 126, r
    assert r.stderr.startswith(f"pctl: {script}: not executable"), r.stderr
    r = auth_env.run("exec", "--server", "--role", "admin", "--", "no-such-command-xyz")
    assert r.returncode == 127, r


# -- 7. typed MFA codes

from test_mfa_modes import config_text, mfa_env, sent_codes  # noqa: E402,F401  (mfa_env: a fixture)


def test_typed_mfa_code_with_a_space_and_terminal_retry_wording(mfa_env):
    env = mfa_env
    env.write_config(text=config_text(env, 'mfa = "prompt"'))
    sock = os.path.join(env.root, "tmux.sock")
    err, rc = (os.path.join(env.root, n) for n in ("err.txt", "rc"))
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.env.items())
    cmd = (f"env -i {exports} {shlex.quote(env.bin)} unlock --identity default "
           f"2> {err}; echo $? > {rc}")
    base = [need("tmux"), "-S", sock]
    subprocess.run(base + ["new-session", "-d", "-s", "pctl", "-x", "200", "-y", "20", cmd],
                   check=True, timeout=30, env={"PATH": os.environ["PATH"], "TERM": "xterm"})
    try:
        def screen():
            return subprocess.run(base + ["capture-pane", "-p", "-t", "pctl"],
                                  capture_output=True, text=True, timeout=10).stdout

        def prompts():
            return screen().count("MFA code for identity default")

        rig.wait_until(lambda: prompts() == 1, timeout=30, what="the first prompt")
        subprocess.run(base + ["send-keys", "-t", "pctl", "12ab", "Enter"], check=True, timeout=10)
        rig.wait_until(lambda: prompts() == 2, timeout=30, what="the second prompt")
        # as the authenticator app shows it
        subprocess.run(base + ["send-keys", "-t", "pctl", "975 310", "Enter"], check=True,
                       timeout=10)
        rig.wait_until(lambda: os.path.exists(rc) and open(rc).read().strip(), timeout=60,
                       what="pctl unlock to finish")
        assert open(rc).read().strip() == "0", open(err).read() + env.daemon_log_tail()
    finally:
        subprocess.run(base + ["kill-server"], capture_output=True, timeout=10)
    text = open(err).read()
    assert "pctl: the code must be 6 digits, try again (2 left)" in text, text
    assert "in a terminal" not in text, text  # no advice meant for callers without one
    assert sent_codes(env) == ["975310"]


# -- 12. --diff exits as diff does, with distinct headers, coloured on a terminal

from test_user_files import eks_env  # noqa: E402,F401  (a fixture)


def test_aws_config_diff_exit_status_and_headers(auth_env):
    cfg = os.path.join(auth_env.home, ".aws", "config")
    r = auth_env.run("aws-config", "--diff")
    assert r.returncode == 1, r
    head = r.stdout.splitlines()[:2]
    assert head == [f"--- {cfg}\tno such file yet", f"+++ {cfg}\tafter pctl"], head
    assert "\x1b[" not in r.stdout  # no colour into a pipe
    assert not os.path.exists(cfg)
    auth_env.ok("aws-config", "--write")
    r = auth_env.run("aws-config", "--diff")
    assert (r.returncode, r.stdout) == (0, ""), r
    assert "up to date" in r.stderr


def test_kubeconfig_diff_exit_status(eks_env, server_cert):
    env = eks_env
    args = ["kubeconfig", "--cluster", rig.CLUSTER, "--endpoint", env.server.url,
            "--ca-file", server_cert[0]]
    r = env.run(*args, "--diff")
    assert r.returncode == 1, r
    kc = os.path.join(env.xdg_config, "pctl", "kubeconfig")
    assert r.stdout.startswith(f"--- {kc}\tno such file yet\n+++ {kc}\tafter pctl\n"), r.stdout
    env.ok(*args)
    r = env.run(*args, "--diff")
    assert (r.returncode, r.stdout) == (0, ""), r


def test_diff_is_coloured_on_a_terminal(shell_env):
    t = shell_env.tmux(["bash", "--norc", "--noprofile", "-i"])
    t.run("PS1='$ '")
    t.run(f"pctl aws-config --diff --write {shell_env.home}/new-aws-config; echo rc=$?")
    out = t._run("capture-pane", "-p", "-e", "-t", "t").stdout
    assert "\x1b[32m+[profile pctl-admin]" in out or "\x1b[32m+" in out, out
    assert "rc=1" in out, out


# -- 11. status is easy to scan


def test_status_text_one_line_per_role_relative_times(auth_env):
    two_roles(auth_env)
    auth_env.ok("credential-process", "--role", "admin")
    r = auth_env.ok("status")
    text = r.stdout
    lines = text.splitlines()
    assert text.count(auth_env.config_path) == 1, text
    # the identity's state is in its header line, with relative times
    ident = [l for l in lines if l.startswith("identity default: unlocked since ")]
    assert len(ident) == 1, text
    assert re.search(r"unlocked since \S+ \((\d+s|0m|1m) ago\), locks at \S+ \(in 1[45]m\)",
                     ident[0]), ident
    # one line per role, in aligned columns
    head = [l for l in lines if l.split()[:4] == ["ROLE", "IDENTITY", "ARN", "SESSION"]]
    assert len(head) == 1, text
    admin = [l for l in lines if l.split()[:1] == ["admin"]]
    audit = [l for l in lines if l.split()[:1] == ["audit"]]
    assert len(admin) == 1 and len(audit) == 1, text
    assert head[0].index("IDENTITY") == admin[0].index("default") == audit[0].index("default")
    assert re.search(r"until \S+ \(in (59|60)m\)", admin[0]), admin
    assert f"arn:aws:iam::{rig.ACCOUNT_ID}:role/{rig.ROLE_NAME}" in admin[0], admin
    # the recent issuances the README promises
    recent = [l for l in lines if l.startswith("RECENT")]
    assert recent, text
    assert any("credentials" in l and "admin" in l for l in lines[lines.index(recent[0]):]), text


def test_kubeconfig_with_endpoint_and_ca_asks_eks_nothing(eks_env, server_cert):
    env = eks_env
    mine = os.path.join(env.xdg_config, "pctl", "kubeconfig")
    args = ["kubeconfig", "--cluster", rig.CLUSTER, "--endpoint", env.server.url,
            "--ca-file", server_cert[0]]
    # as after `pctl shell`: pctl's file is on KUBECONFIG, so no --kubeconfig hint
    r = env.ok(*args, env={"KUBECONFIG": mine})
    assert "--kubeconfig" not in r.stderr, r.stderr
    st = env.status()
    assert st["counters"]["describe_cluster"] == 0, st["counters"]
    assert env.op_calls("item get") == [], "nothing to unlock for"
    import yaml
    doc = yaml.safe_load(open(mine))
    assert doc["users"][0]["user"]["exec"]["args"] == [
        "eks", "token", "--cluster", rig.CLUSTER, "--role", "admin"]
    # a file kubectl would not read gets the hint
    r = env.ok(*args, "--write", os.path.join(env.home, "elsewhere.yaml"), env={"KUBECONFIG": mine})
    assert "kubectl --kubeconfig" in r.stderr, r.stderr
    r = env.run("kubeconfig", "--cluster", "nope", *args[3:])
    rig.assert_pctl_error(r, "--cluster nope: no such cluster", rig.CLUSTER)


# -- 14. --identity completes identity names


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_identity_names_complete(shell_env, shell):
    if shell == "bash":
        t = shell_env.tmux(["bash", "--norc", "--noprofile", "-i"])
        t.run("PS1='$ '")
        t.run('eval "$(pctl completions bash)"')
    elif shell == "zsh":
        t = zsh_with_installed_completion(shell_env)
    else:
        t = shell_env.tmux([need("fish"), "--no-config", "-i"])
        t.run("function fish_prompt; printf '> '; end")
        t.run("pctl completions fish | source")
    t.keys("pctl lock --identity def", enter=False)
    t.tab()
    t.wait_for("pctl lock --identity default ")
    t.keys("\x03", enter=False)


# -- 12. aws-config and kubeconfig: the same default (write), --print for both


def test_aws_config_writes_by_default_and_prints_on_request(auth_env):
    cfg = os.path.join(auth_env.home, ".aws", "config")
    r = auth_env.ok("aws-config", "--print")
    assert "[profile pctl-admin]" in r.stdout and not os.path.exists(cfg), r
    r = auth_env.ok("aws-config")
    assert r.stdout == "" and f"wrote 1 profile(s)" in r.stderr, r
    assert "[profile pctl-admin]" in open(cfg).read()


def test_kubeconfig_prints_on_request(eks_env, server_cert):
    env = eks_env
    mine = os.path.join(env.xdg_config, "pctl", "kubeconfig")
    args = ["kubeconfig", "--cluster", rig.CLUSTER, "--endpoint", env.server.url,
            "--ca-file", server_cert[0]]
    r = env.ok(*args, "--print")
    import yaml
    doc = yaml.safe_load(r.stdout)
    assert doc["current-context"] == f"pctl-{rig.CLUSTER}", r.stdout
    assert not os.path.exists(mine)
    env.ok(*args)
    assert os.path.exists(mine)


# -- 14. a waiting line while 1Password takes long, erased when the answer comes


def test_waiting_line_while_op_is_slow(shell_env):
    shell_env.op_state(latency=3)
    t = shell_env.tmux(["bash", "--norc", "--noprofile", "-i"])
    t.run("PS1='$ '")
    t.keys("pctl env --role admin >/dev/null; echo rc=$?")
    t.wait_for("waiting for the daemon (1Password may be asking you to approve)", timeout=15)
    screen = t.wait_for("rc=0", timeout=60)
    assert "waiting for the daemon" not in screen, screen  # erased when the answer came
    # quick answers show nothing
    shell_env.op_state(latency=None)
    screen = t.run("pctl env --role admin >/dev/null")
    assert "waiting" not in screen, screen
    # and nothing reaches a stderr that is not a terminal
    shell_env.ok("stop")
    shell_env.op_state(latency=2)
    r = shell_env.ok("env", "--role", "admin")
    assert r.stderr == "", r.stderr
