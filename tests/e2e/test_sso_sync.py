"""`pctl sso sync` (issue 17 §3): every account x role of an IAM Identity Center identity
becomes a pctl role in a managed include file and a `pctl-ROLE` profile in the AWS config's
managed block -- never a token. Real binary against moto (auth on) and the Identity Center
stand-in; the synced profiles are used by the real aws CLI."""

import json
import os
import stat

import pytest

import rig
import sso_rig
from sso_rig import sso, sso_env, sso_moto  # noqa: F401 (fixtures)

HAND = sso_rig.IDENTITY + sso_rig.role("dev", "Dev")
SSO_CONFIG = HAND


@pytest.fixture
def env(sso_env):
    e = sso_env
    e.include = os.path.join(os.path.dirname(e.config_path), "sso-corp.toml")
    e.aws_config = os.path.join(e.home, ".aws", "config")
    os.makedirs(os.path.dirname(e.aws_config), exist_ok=True)
    with open(e.aws_config, "w") as f:
        f.write("# mine\n[profile work]\nregion = eu-west-1\n")
    return e


def read(p):
    with open(p) as f:
        return f.read()


def files(env):
    return {p: read(p) for p in (env.include, env.config_path, env.aws_config)}


def synced_roles(env):
    import tomllib
    with open(env.include, "rb") as f:
        doc = tomllib.load(f)
    assert list(doc) == ["roles"], doc  # an include of roles only
    return doc["roles"]


def test_sync_writes_roles_profiles_and_is_idempotent(env, aws_cli, pctl_bin):
    rc, out, err = sso_rig.approve(env, "sso", "sync")
    assert rc == 0, err + env.daemon_log_tail()
    roles = synced_roles(env)
    # account name + role name; the Dev role configured by hand is not added again
    assert set(roles) == {"platform-ReadOnly", "sandbox-Dev", "audit-ReadOnly", "audit-Auditor",
                          "audit-Billing"}, roles
    assert roles["platform-ReadOnly"] == {"identity": "corp", "account_id": rig.ACCOUNT_ID,
                                          "role_name": "ReadOnly"}
    assert "[roles.dev]" in err or "roles.dev" in err, err
    # the include passes the daemon's trust checks: the user's, 0600
    st = os.stat(env.include)
    assert st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    cfg = read(env.config_path)
    assert cfg.startswith(HAND.split("\n\n")[0]), cfg  # the user's text is kept
    assert 'include = ["sso-corp.toml"]' in cfg, cfg
    aws = read(env.aws_config)
    assert aws.startswith("# mine\n[profile work]\nregion = eu-west-1\n"), aws
    for key in ["dev", *roles]:
        assert f"[profile pctl-{key}]" in aws, aws
    # what `pctl aws-config` writes is exactly what sync wrote (one writer, same block)
    r = env.run("aws-config", "--diff")
    assert r.returncode == 0, r.stdout + r.stderr
    # nothing a token: no secret of the stand-in in any file pctl wrote
    secrets = {f"{k}{i}": v for k, vs in env.sso.secrets().items() for i, v in enumerate(vs)}
    assert secrets
    assert not rig.scan_tree_for([env.home], secrets), "a token reached a file"
    # a second sync changes nothing, and --diff says so (exit 0)
    before = files(env)
    r = env.ok("sso", "sync")
    assert files(env) == before
    assert "up to date" in r.stderr, r.stderr
    r = env.run("sso", "sync", "--diff")
    assert r.returncode == 0 and r.stdout == "", r.stdout + r.stderr
    # a synced role serves the real aws CLI through its profile
    r = env.run_tool([aws_cli, "sts", "get-caller-identity", "--profile", "pctl-platform-ReadOnly",
                      "--output", "json"], timeout=90)
    assert r.returncode == 0, r.stderr + env.daemon_log_tail()
    assert json.loads(r.stdout)["Arn"] == (
        f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/ReadOnly/sso-user")
    assert env.sso.state()["counts"]["StartDeviceAuthorization"] == 1


def test_sync_diff_print_and_removed_assignments(env):
    rc, _, err = sso_rig.approve(env, "sso", "sync", "--print")
    assert rc == 0, err
    assert not os.path.exists(env.include)
    assert "include" not in read(env.config_path)
    r = env.run("sso", "sync", "--diff")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "+[roles.sandbox-Dev]" in r.stdout and "+include = " in r.stdout, r.stdout
    assert "+[profile pctl-sandbox-Dev]" in r.stdout, r.stdout
    assert not os.path.exists(env.include), "--diff writes nothing"
    env.ok("sso", "sync")
    # the audit account is no longer assigned: its roles go, from both files
    env.sso.assign([a for a in sso_rig.ACCOUNTS if a["accountName"] != "audit"])
    r = env.run("sso", "sync", "--diff")
    assert r.returncode == 1 and "-[roles.audit-Billing]" in r.stdout, r.stdout
    assert "-[profile pctl-audit-Billing]" in r.stdout, r.stdout
    env.ok("sso", "sync")
    assert set(synced_roles(env)) == {"platform-ReadOnly", "sandbox-Dev"}
    aws = read(env.aws_config)
    assert "pctl-audit" not in aws and "[profile pctl-sandbox-Dev]" in aws, aws
    assert read(env.config_path).count("sso-corp.toml") == 1


def test_sync_names_are_safe_and_collisions_get_the_account_id(env):
    env.sso.assign([
        {"accountId": rig.ACCOUNT_ID, "accountName": "Team [prod]\n x", "emailAddress": "a@x",
         "roles": ["ReadOnly"]},
        {"accountId": "999999999999", "accountName": "team-prod-x", "emailAddress": "b@x",
         "roles": ["ReadOnly"]},
        {"accountId": "111122223333", "accountName": "", "emailAddress": "c@x",
         "roles": ["Dev"]},
        {"accountId": "444455556666", "accountName": "dev", "emailAddress": "d@x",
         "roles": ["Dev"]},
    ])
    # a role elsewhere already has the key the last account would get
    env.write_config(text=HAND + '\n[roles.dev-Dev]\nidentity = "corp"\n'
                     'account_id = "555555555555"\nrole_name = "Dev"\n')
    rc, _, err = sso_rig.approve(env, "sso", "sync")
    assert rc == 0, err + env.daemon_log_tail()
    assert set(synced_roles(env)) == {
        f"Team-prod-x-{rig.ACCOUNT_ID}-ReadOnly", "team-prod-x-999999999999-ReadOnly",
        "111122223333-Dev", "dev-444455556666-Dev"}, synced_roles(env)
    # the daemon takes the whole config (names follow the rule, no key twice)
    listed = env.ok("roles", "-o", "json").stdout
    for key in synced_roles(env):
        assert f'"{key}"' in listed, listed


def test_sync_refuses_a_file_it_did_not_write_and_a_non_sso_identity(env):
    with open(env.include, "w") as f:
        f.write("[roles.mine]\nname = \"x\"\n")
    before = files(env)
    r = env.run("sso", "sync")
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("pctl: ") and "not written by `pctl sso sync`" in last, r.stderr
    assert files(env) == before
    os.remove(env.include)
    env.write_config(text=HAND + '\n[identities.keys]\nitem = "i"\nvault = "v"\n')
    r = env.run("sso", "sync", "--identity", "keys")
    assert r.returncode != 0 and "reads 1Password" in r.stderr, r.stderr
    r = env.run("sso", "sync", "--identity", "nope")
    assert r.returncode != 0 and "unknown identity" in r.stderr, r.stderr
