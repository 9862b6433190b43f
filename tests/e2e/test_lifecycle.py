"""Daemon lifecycle per docs/interface.md: idle/lifetime locks, unlock on demand, paths."""

import json
import os
import time

import pytest

import rig

CFG = """\
region = "us-east-1"

[daemon]
idle_lock = "{idle}"
max_unlock = "{maxu}"
op_timeout = "20s"

[onepassword]
item = "{item}"
vault = "Private"

[roles.admin]
name = "platform-admin"
duration = "1h"

[clusters.platform]
role = "admin"
"""


def test_idle_lock_then_unlock_on_demand(auth_env):
    auth_env.write_config(text=CFG.format(idle="2s", maxu="12h", item=rig.ITEM_TITLE))
    k1 = json.loads(auth_env.ok("credential-process", "--role", "admin").stdout)["AccessKeyId"]
    time.sleep(3.5)
    st = auth_env.status()
    assert st["locked"] is True, "idle_lock=2s: secrets should be dropped after 2 s idle"
    assert st["roles"] == []
    # a lock by the idle timer unlocks on demand (unlike `pctl lock`)
    k2 = json.loads(auth_env.ok("credential-process", "--role", "admin").stdout)["AccessKeyId"]
    assert len(auth_env.op_calls("item get")) == 2
    assert k2 != k1, "sessions are dropped with the secrets"


def test_requests_keep_daemon_unlocked(auth_env):
    auth_env.write_config(text=CFG.format(idle="3s", maxu="12h", item=rig.ITEM_TITLE))
    for _ in range(6):
        auth_env.ok("credential-process", "--role", "admin")
        time.sleep(1)
    assert len(auth_env.op_calls("item get")) == 1


def test_max_unlock_applies_whatever_happens(auth_env):
    auth_env.write_config(text=CFG.format(idle="15m", maxu="3s", item=rig.ITEM_TITLE))
    deadline = time.monotonic() + 5
    n = 0
    while time.monotonic() < deadline and n < 100:
        auth_env.ok("credential-process", "--role", "admin")
        n += 1
        time.sleep(0.25)
    assert len(auth_env.op_calls("item get")) >= 2, (
        "max_unlock=3s: secrets must be dropped 3 s after unlock even while in use")


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
