"""Several identities in one daemon (issue 10 §1): two 1Password items, two IAM users in
moto, roles assumed from each; one `op item get` per identity; locking one identity or a
missing item for one leaves the other serving. Roles may come from an included file.

moto runs without auth here, so which user assumed a role is checked at the recording
proxy (the access key that signed each AssumeRole), not by moto refusing a wrong key.
"""

import json
import os
import tomllib

import pytest

import rig

# the standard two-identity config, shared with the Rust tests
with open(os.path.join(rig.FIXTURES, "pctl-identities.toml"), encoding="utf-8") as _f:
    TWO = _f.read()
_two = tomllib.loads(TWO)
WORK_ITEM = _two["identities"]["work"]["item"]
SANDBOX_ITEM = _two["identities"]["sandbox"]["item"]
SANDBOX_ROLE = _two["roles"]["play"]["name"]

CONFIG = 'include = ["team.toml"]\n' + TWO + '\n[daemon]\nop_timeout = "20s"\n'

TEAM = f"""\
# shared by the platform team: roles and clusters, never secrets
[roles.viewer]
identity = "work"
name = "{rig.ROLE_NAME}"
"""


@pytest.fixture(scope="module")
def sandbox_user(moto_open):
    """A second IAM user in moto with its own keys and a role that trusts it."""
    return rig.setup_identity(moto_open, user="sandbox-user", role=SANDBOX_ROLE)


@pytest.fixture
def two(pctl_env, moto_open, sandbox_user, recording_proxy):
    proxy = recording_proxy(moto_open.url)
    env = pctl_env(proxy.url)
    work = moto_open.identity
    env.items = {
        WORK_ITEM: rig.aws_item(work["access_key_id"], work["secret_access_key"],
                                title=WORK_ITEM, item_id="wrk7qnq3fbsw5ipw6qcuyjlqeu"),
        SANDBOX_ITEM: rig.aws_item(sandbox_user["access_key_id"],
                                   sandbox_user["secret_access_key"], title=SANDBOX_ITEM,
                                   item_id="sbx7qnq3fbsw5ipw6qcuyjlqeu"),
    }
    env.op_store(list(env.items.values()))
    env.write_config(text=CONFIG)
    with open(os.path.join(os.path.dirname(env.config_path), "team.toml"), "w") as f:
        f.write(TEAM)
    env.proxy, env.work, env.sandbox = proxy, work, sandbox_user
    return env


def item_gets(env, item):
    return [c for c in env.op_calls("item get") if item in c["argv"]]


def assumed(env, role_name):
    """Access keys that signed AssumeRole for role_name, in order."""
    return [a["access_key"] for a in env.proxy.actions("AssumeRole")
            if a["params"]["RoleArn"].endswith(f":role/{role_name}")]


def creds(env, role):
    return json.loads(env.ok("credential-process", "--role", role).stdout)


def test_two_identities_one_daemon_one_read_each(two):
    for _ in range(2):
        assert creds(two, "admin")["AccessKeyId"]
        assert creds(two, "play")["AccessKeyId"]
    assert creds(two, "viewer")["AccessKeyId"]
    assert len(item_gets(two, WORK_ITEM)) == 1, two.op_calls()
    assert len(item_gets(two, SANDBOX_ITEM)) == 1, two.op_calls()
    # each role was assumed with its own identity's key
    assert assumed(two, SANDBOX_ROLE) == [two.sandbox["access_key_id"]]
    assert set(assumed(two, rig.ROLE_NAME)) == {two.work["access_key_id"]}

    st = two.status()
    ids = {i["name"]: i for i in st["identities"]}
    assert set(ids) == {"work", "sandbox"}
    assert all(not i["locked"] and i["op_reads"] == 1 for i in ids.values()), ids
    assert ids["sandbox"]["item"] == SANDBOX_ITEM
    origins = {o["role"]: (o["identity"], os.path.basename(o["file"]))
               for o in st["role_origins"]}
    assert origins == {"admin": ("work", "config.toml"), "play": ("sandbox", "config.toml"),
                       "viewer": ("work", "team.toml")}
    text = two.ok("status").stdout
    assert "identity sandbox" in text and "identity work" in text, text
    assert "team.toml" in text, text


def test_locking_one_identity_leaves_the_other_serving(two):
    creds(two, "admin")
    creds(two, "play")
    two.ok("lock", "--identity", "work")
    r = two.run("credential-process", "--role", "admin")
    assert r.returncode != 0 and "locked" in r.stderr, r.stderr
    assert creds(two, "play")["AccessKeyId"]
    assert len(item_gets(two, SANDBOX_ITEM)) == 1
    st = {i["name"]: i["locked"] for i in two.status()["identities"]}
    assert st == {"work": True, "sandbox": False}
    two.ok("unlock", "--identity", "work")
    assert creds(two, "admin")["AccessKeyId"]
    assert len(item_gets(two, WORK_ITEM)) == 2
    assert len(item_gets(two, SANDBOX_ITEM)) == 1
    r = two.run("lock", "--identity", "nope")
    assert r.returncode != 0 and "nope" in r.stderr and "sandbox, work" in r.stderr, r.stderr
    # without --identity: all
    two.ok("lock")
    assert all(i["locked"] for i in two.status()["identities"])


def test_a_missing_item_for_one_identity_does_not_block_the_other(two):
    two.op_store([two.items[WORK_ITEM]])
    r = two.run("credential-process", "--role", "play")
    assert r.returncode != 0
    assert "identity sandbox" in r.stderr and SANDBOX_ITEM in r.stderr, r.stderr
    assert creds(two, "admin")["AccessKeyId"]
    assert len(item_gets(two, WORK_ITEM)) == 1
    # `pctl unlock` of all: work unlocks, the error names sandbox only
    two.ok("lock")
    r = two.run("unlock")
    assert r.returncode != 0, r.stderr
    errors = [line for line in r.stderr.splitlines() if "error" in line]
    assert any("identity sandbox" in line and SANDBOX_ITEM in line for line in errors), r.stderr
    assert not any("identity work" in line for line in errors), r.stderr
    assert "unlocked (identity work)" in r.stderr, r.stderr
    st = {i["name"]: i["locked"] for i in two.status()["identities"]}
    assert st == {"work": False, "sandbox": True}


def test_a_role_defined_twice_names_both_files(two):
    with open(os.path.join(os.path.dirname(two.config_path), "team.toml"), "a") as f:
        f.write(f'[roles.admin]\nidentity = "work"\nname = "{rig.ROLE_NAME}"\n')
    r = two.run("credential-process", "--role", "admin")
    assert r.returncode != 0
    assert "roles.admin" in r.stderr and "team.toml" in r.stderr and "config.toml" in r.stderr, \
        r.stderr
