"""pctl in real interactive shells (bash, zsh, fish) driven through tmux: `pctl shell`
then the aws CLI, the prompt segment from shell/, and completion of role names."""

import os
import shutil
import subprocess
import time

import pytest

import rig

# slow tier (tests/run --slow): real Terraform / real shells
pytestmark = pytest.mark.slow

SHELL_DIR = os.path.join(rig.REPO, "shell")

CONFIG = rig.config_text() + f"""
[roles.audit]
name = "{rig.ROLE_NAME}"
duration = "1h"
"""


def need(prog):
    path = shutil.which(prog)
    if not path:
        pytest.fail(f"{prog} not found: run tests/setup.sh (installs zsh, fish, tmux)",
                    pytrace=False)
    return path


class Tmux:
    """One tmux server on a private socket running one interactive shell."""

    def __init__(self, env, argv):
        self.sock = os.path.join(env.root, "tmux.sock")
        self.env = dict(env.env)
        self.tmux = need("tmux")
        self._run("-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50", "-s", "t",
                  "-c", env.home,
                  *argv)

    def _run(self, *args):
        return subprocess.run([self.tmux, "-S", self.sock, *args], env=self.env,
                              capture_output=True, text=True, timeout=20, check=True)

    def keys(self, text, enter=True):
        self._run("send-keys", "-t", "t", "-l", text)
        if enter:
            self._run("send-keys", "-t", "t", "Enter")

    def tab(self):
        self._run("send-keys", "-t", "t", "Tab")

    def screen(self):
        return self._run("capture-pane", "-p", "-J", "-t", "t").stdout

    def wait_for(self, text, timeout=30):
        return rig.wait_until(lambda: text in self.screen() and self.screen(), timeout=timeout,
                              interval=0.1, what=f"{text!r} on the tmux screen")

    def run(self, cmd, timeout=60):
        """Runs a command and waits for a marker it prints when done."""
        marker = f"done-{time.monotonic_ns()}"
        self.keys(f"{cmd}; echo {marker[:5]}''{marker[5:]}")
        return self.wait_for(marker, timeout=timeout)

    def close(self):
        subprocess.run([self.tmux, "-S", self.sock, "kill-server"], env=self.env,
                       capture_output=True, timeout=20)


@pytest.fixture
def shell_env(auth_env, pctl_bin, aws_cli):
    auth_env.write_config(text=CONFIG)
    aws_config = os.path.join(auth_env.root, "aws-config")
    auth_env.ok("aws-config", "--write", aws_config)
    auth_env.env.update({
        "PATH": os.pathsep.join([os.path.dirname(pctl_bin), auth_env.env["PATH"]]),
        "AWS_CONFIG_FILE": aws_config,
        "TERM": "xterm-256color",
    })
    # no daemon yet: the shell's `pctl shell` starts it
    auth_env.ok("stop")
    made = []

    def start(argv):
        t = Tmux(auth_env, argv)
        made.append(t)
        return t

    auth_env.tmux = start
    yield auth_env
    for t in made:
        t.close()


def check_session(t, env, source_prompt):
    """`pctl shell --profile admin`, aws sts get-caller-identity, prompt shows the role."""
    t.run(source_prompt)
    screen = t.run("aws sts get-caller-identity --output text --query Arn")
    assert f":assumed-role/{rig.ROLE_NAME}/" in screen, screen
    # the prompt segment: the role and its minutes left
    t.keys("")
    screen = t.wait_for("[admin ")
    minutes = screen.split("[admin ")[1].split("m]")[0]
    assert 55 <= int(minutes) <= 60, screen
    assert len(env.op_calls("item get")) == 1


def test_bash(shell_env):
    t = shell_env.tmux(["bash", "--norc", "--noprofile", "-i"])
    t.run("PS1='$ '")
    t.run('eval "$(pctl shell --shell bash --profile admin)"')
    check_session(t, shell_env, f"source {SHELL_DIR}/prompt.bash")
    t.run('eval "$(pctl completions bash)"')
    t.keys("pctl env --role aud", enter=False)
    t.tab()
    t.wait_for("pctl env --role audit ")
    t.keys("\x03", enter=False)  # C-c


def test_zsh(shell_env):
    zdot = os.path.join(shell_env.root, "zdot")
    os.makedirs(zdot)
    with open(os.path.join(zdot, ".zshrc"), "w") as f:
        f.write("PROMPT='%% '\nautoload -Uz compinit && compinit -u -d $ZDOTDIR/.zcompdump\n")
    shell_env.env["ZDOTDIR"] = zdot
    t = shell_env.tmux([need("zsh"), "-i"])
    t.wait_for("%")
    t.run('eval "$(pctl shell --shell zsh --profile admin)"')
    check_session(t, shell_env, f"source {SHELL_DIR}/prompt.zsh")
    t.run('eval "$(pctl completions zsh)"')
    t.keys("pctl env --role aud", enter=False)
    t.tab()
    t.wait_for("pctl env --role audit ")
    t.keys("\x03", enter=False)


def test_fish(shell_env):
    t = shell_env.tmux([need("fish"), "--no-config", "-i"])
    t.run("function fish_prompt; printf '> '; end")
    t.run("pctl shell --shell fish --profile admin | source")
    check_session(t, shell_env, f"source {SHELL_DIR}/prompt.fish")
    t.run("pctl completions fish | source")
    t.keys("pctl env --role aud", enter=False)
    t.tab()
    t.wait_for("pctl env --role audit ")
    t.keys("\x03", enter=False)


def test_prompt_shows_locked(shell_env):
    t = shell_env.tmux(["bash", "--norc", "--noprofile", "-i"])
    t.run("PS1='$ '")
    t.run('eval "$(pctl shell --shell bash)"')
    t.run(f"source {SHELL_DIR}/prompt.bash")
    t.run("pctl lock")
    t.keys("")
    t.wait_for("[pctl locked] $")
