"""No secret reaches an environment it was not meant for (issue 2 and 4): an auto-started
daemon inherits only paths, locale, proxy/TLS settings, AWS endpoint overrides and PCTL_*
from the client that started it, never a credential that happened to be in that client's
environment; and `op` gets only the requesting client's PATH/HOME/XDG_*/OP_* variables."""

import os

import pytest

import rig
import secutil

PLANTED = {
    "AWS_SECRET_ACCESS_KEY": "plantedSecretKey0000000000000000000000000",
    "AWS_SESSION_TOKEN": "plantedSessionToken000000000000",
    "GITHUB_TOKEN": "ghp_planted0000000000000000000000000000",
}


@pytest.mark.timeout(90)
def test_auto_started_daemon_inherits_no_client_secrets(auth_env):
    env = auth_env
    extra = dict(PLANTED, AWS_ACCESS_KEY_ID="AKIAPLANTED000000000", LC_ALL="C.UTF-8")
    env.ok("status", env=extra)  # starts the daemon from a client carrying those variables
    pid = env.status()["pid"]
    assert secutil.is_daemon(pid)
    names = {kv.split(b"=", 1)[0].decode() for kv in secutil.environ(pid) if b"=" in kv}
    values = b"\0".join(secutil.environ(pid))
    assert names, "could not read the daemon's environment (the test must be able to see it)"
    # control: what the daemon needs did arrive
    assert {"PCTL_SOCK", "HOME", "PATH", "AWS_ENDPOINT_URL", "LC_ALL"} <= names, names
    for name, value in PLANTED.items():
        assert name not in names, f"{name} leaked into the daemon's environment"
        assert value.encode() not in values
    assert "AWS_ACCESS_KEY_ID" not in names


@pytest.mark.timeout(90)
def test_op_sees_only_the_forwarded_variables(auth_env):
    env = auth_env
    env.ok("unlock", env=dict(PLANTED, OP_ACCOUNT="my.1password.com"))
    calls = env.op_calls("item get")
    assert len(calls) == 1
    seen = set(calls[0]["env"])
    assert "OP_ACCOUNT" in seen and "HOME" in seen and "PATH" in seen, seen
    allowed = {"PATH", "HOME", "USER", "LOGNAME", "OP_ACCOUNT", "OP_SERVICE_ACCOUNT_TOKEN",
               "OP_CACHE",
               # set by the stand-in's own Python interpreter at start-up (PEP 538 locale
               # coercion), not passed by pctl
               "LC_CTYPE"}
    for name in seen:
        assert (name in allowed or name.startswith(("XDG_", "OP_SESSION_", "OP_CONNECT_"))), (
            f"op received {name}")
    for name in PLANTED:
        assert name not in seen
