"""The first hour of a new user (issue 21): every step drives the real binary, and the
shell steps run in real shells through tmux."""

import json
import os
import re
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
