"""Every `op` failure becomes a clear pctl message, never the raw `[ERROR]` line (issue 2)."""

import json
import os
import time

import pytest

import rig


def item_for(env, **kw):
    ident = env.ident
    return rig.aws_item(ident["access_key_id"], ident["secret_access_key"], **kw)


def cred(penv, **kw):
    return penv.run("credential-process", "--role", "admin", **kw)


def test_not_signed_in(auth_env):
    auth_env.op_state(signed_in=False)
    r = cred(auth_env)
    rig.assert_pctl_error(r, "op signin", any_of=("not signed in", "signed out", "sign in"))
    # once signed in, the next request works: failures are not cached
    auth_env.op_state(signed_in=True)
    auth_env.ok("credential-process", "--role", "admin")


def test_item_not_found(auth_env):
    auth_env.write_config({"item": "Nope Item"})
    r = cred(auth_env)
    rig.assert_pctl_error(r, "Nope Item", rig.VAULT)


def test_vault_not_found(auth_env):
    auth_env.write_config({"vault": "Work"})
    r = cred(auth_env)
    rig.assert_pctl_error(r, "Work", any_of=("vault",))


@pytest.mark.parametrize("label", ["Secret Access Key", "Access Key ID", "Account ID"])
def test_missing_field(auth_env, label):
    auth_env.op_store([item_for(auth_env, omit=(label,))])
    r = cred(auth_env)
    rig.assert_pctl_error(r, label)


def test_ambiguous_item(auth_env):
    a = item_for(auth_env, item_id="aaaaaaaaaaaaaaaaaaaaaaaaaa")
    b = item_for(auth_env, item_id="bbbbbbbbbbbbbbbbbbbbbbbbbb")
    auth_env.op_store([a, b])
    r = cred(auth_env)
    rig.assert_pctl_error(r, rig.ITEM_TITLE, any_of=("more than one", "ambiguous"))


@pytest.mark.parametrize("mode,any_of", [
    ("dismissed", ("dismissed", "denied", "declined")),
    ("auth-timeout", ("timed out", "timeout")),
    ("desktop-unreachable", ("desktop app", "1password app")),
    ("rate-limited", ("rate", "429", "too many")),
    ("malformed", ("json", "parse", "malformed", "invalid", "unexpected", "not an item")),
    ("ambiguous", ("more than one", "ambiguous")),
])
def test_op_failure_modes(auth_env, mode, any_of):
    auth_env.op_state(mode=mode)
    r = cred(auth_env)
    rig.assert_pctl_error(r, any_of=any_of)
    if mode in ("dismissed", "auth-timeout"):
        # the user said no (or did not answer): never retried
        assert len(auth_env.op_calls("item get")) == 1, auth_env.op_calls()
    # the daemon is still healthy and recovers when op does
    auth_env.op_state(mode=None)
    auth_env.ok("credential-process", "--role", "admin")


@pytest.mark.timeout(90)
def test_op_hang_times_out(auth_env):
    # 1 s is the least the config allows; the timeout's kill of op's whole process
    # group is proven in Rust (source::onepassword tests) on a 200 ms timeout
    auth_env.write_config(op_timeout="1s")
    auth_env.op_state(mode="hang")
    t0 = time.monotonic()
    r = cred(auth_env, timeout=60)
    elapsed = time.monotonic() - t0
    rig.assert_pctl_error(r, any_of=("timed out", "timeout", "did not answer"))
    assert elapsed < 30, f"took {elapsed:.1f}s with op_timeout=1s"
    # the hung op was killed, not left behind
    op_path = os.path.join(rig.FIXTURES, "op").encode()

    def op_gone():
        for p in auth_env.our_processes():
            try:
                argv = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if op_path in argv[:2]:
                return False
        return True

    rig.wait_until(op_gone, timeout=10, what="hung op to be killed")


def test_op_not_installed(auth_env):
    empty = os.path.join(auth_env.root, "emptybin")
    os.makedirs(empty)
    r = cred(auth_env, env={"PATH": empty})
    rig.assert_pctl_error(r, any_of=("not found", "install", "no such file"))
    assert "op" in r.stderr


def test_locked_daemon(auth_env):
    auth_env.ok("unlock")
    assert len(auth_env.op_calls("item get")) == 1
    assert auth_env.status()["locked"] is False
    auth_env.ok("credential-process", "--role", "admin")
    auth_env.ok("lock")
    st = auth_env.status()
    assert st["locked"] is True
    assert st["roles"] == [] and st["tokens"] == []
    r = cred(auth_env)
    rig.assert_pctl_error(r, "pctl unlock", any_of=("locked",))
    assert len(auth_env.op_calls("item get")) == 1, "a locked daemon must not call op on its own"
    for args in (["env", "--role", "admin"], ["eks", "token", "--cluster", rig.CLUSTER]):
        rig.assert_pctl_error(auth_env.run(*args), "pctl unlock")
    auth_env.ok("unlock")
    auth_env.ok("credential-process", "--role", "admin")
    assert len(auth_env.op_calls("item get")) == 2
    assert auth_env.status()["counters"]["assume_role"] == 2


def test_unknown_role_is_a_config_error(auth_env):
    r = auth_env.run("credential-process", "--role", "nope")
    rig.assert_pctl_error(r, "nope")


def test_bad_usage_exit_2(auth_env):
    r = auth_env.run("credential-process")
    assert r.returncode == 2


def test_error_reaches_the_user_through_aws_cli(auth_env, aws_cli):
    """credential_process failures surface in the AWS CLI with pctl's message."""
    cfg = os.path.join(auth_env.home, ".aws", "config")
    os.makedirs(os.path.dirname(cfg), exist_ok=True)
    auth_env.ok("aws-config", "--write", cfg)
    auth_env.op_state(signed_in=False)
    r = auth_env.run_tool([aws_cli, "sts", "get-caller-identity", "--profile", "pctl-admin"],
                          env={"AWS_CONFIG_FILE": cfg})
    assert r.returncode != 0
    assert "op signin" in r.stderr and "[ERROR]" not in r.stderr, r.stderr


def test_service_account_token_is_forwarded_and_never_stored(auth_env):
    auth_env.op_state(signed_in=False)
    sa = "ops_eyJzaWduSW5BZGRyZXNzIjoibXkuMXBhc3N3b3JkLmNvbSJ9.fake-service-account-token"
    auth_env.ok("credential-process", "--role", "admin", env={"OP_SERVICE_ACCOUNT_TOKEN": sa})
    assert "OP_SERVICE_ACCOUNT_TOKEN" in auth_env.op_calls("item get")[0]["env"]
    hits = rig.scan_tree_for([auth_env.root], {"service account token": sa},
                             exclude=[os.path.join(auth_env.home, ".op-fake")])
    assert not hits, hits


def test_unknown_cluster(auth_env):
    r = auth_env.run("eks", "token", "--cluster", "nope-cluster")
    rig.assert_pctl_error(r, "nope-cluster")
