"""Daemon lifecycle per docs/interface.md: idle/lifetime locks, unlock on demand, paths."""

import json
import os
import time

import pytest

import rig

# The idle and lifetime timers are proven on paused time in
# crates/pctl-broker/tests/broker.rs (idle_lock_by_the_timer_then_unlock_on_demand,
# requests_keep_the_daemon_unlocked, max_unlock_locks_while_in_use); the two
# tests here are the end-to-end smoke tests of the real daemon's timer, with
# one-second limits and bounded polling instead of fixed sleeps.


def test_idle_lock_then_unlock_on_demand(auth_env):
    auth_env.write_config(text=rig.config_text(idle_lock="1s"))
    k1 = json.loads(auth_env.ok("credential-process", "--role", "admin").stdout)["AccessKeyId"]
    # `status` is not a use: polling it does not keep the daemon unlocked
    st = rig.wait_until(lambda: (lambda s: s if s["locked"] else None)(auth_env.status()),
                        timeout=10, interval=0.2, what="idle lock (idle_lock=1s)")
    assert st["roles"] == []
    # a lock by the idle timer unlocks on demand (unlike `pctl lock`)
    k2 = json.loads(auth_env.ok("credential-process", "--role", "admin").stdout)["AccessKeyId"]
    assert len(auth_env.op_calls("item get")) == 2
    assert k2 != k1, "sessions are dropped with the secrets"


def test_max_unlock_applies_whatever_happens(auth_env):
    auth_env.write_config(text=rig.config_text(max_unlock="1s"))
    start = time.monotonic()
    auth_env.ok("credential-process", "--role", "admin")
    n = 0
    while len(auth_env.op_calls("item get")) < 2 and n < 40:
        time.sleep(0.2)
        auth_env.ok("credential-process", "--role", "admin")
        n += 1
    assert len(auth_env.op_calls("item get")) >= 2, (
        "max_unlock=1s: secrets must be dropped 1 s after unlock even while in use")
    assert time.monotonic() - start >= 1.0, "dropped before max_unlock"


def test_pctl_config_and_state_dir_overrides(auth_env):
    cfg = os.path.join(auth_env.root, "elsewhere.toml")
    os.rename(auth_env.config_path, cfg)
    state = os.path.join(auth_env.root, "state-elsewhere")
    e = {"PCTL_CONFIG": cfg, "PCTL_STATE_DIR": state}
    auth_env.env.update(e)  # for teardown's `pctl stop` too
    auth_env.ok("credential-process", "--role", "admin")
    assert os.path.exists(os.path.join(state, "daemon.log"))
    out = auth_env.ok("shell").stdout
    assert "PCTL_CONFIG" in out and cfg in out


def test_default_socket_path(auth_env):
    """Without PCTL_SOCK the socket is $XDG_RUNTIME_DIR/pctl/pctl.sock, dir 0700, socket 0600."""
    del auth_env.env["PCTL_SOCK"]
    auth_env.ok("status", "--json")
    path = os.path.join(auth_env.runtime, "pctl", "pctl.sock")
    assert path == auth_env.sock
    assert os.path.exists(path)
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_missing_config_is_a_clear_error(auth_env):
    os.remove(auth_env.config_path)
    r = auth_env.run("credential-process", "--role", "admin")
    rig.assert_pctl_error(r, any_of=("config",))
