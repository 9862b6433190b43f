"""The first hour of a new user (issue 21), the rest: role sessions named after the person
(item 14) and `pctl init` going the whole way (item 8). Every step drives the real binary
against moto and the `op` stand-in."""

import json
import os
import re
import shlex
import tomllib

import pytest

import rig
from test_init import init_on_a_terminal

# -- 14. the default role session name names the person, so CloudTrail shows who did what


def caller(env, aws_cli, role="admin"):
    r = env.run("exec", "--role", role, "--", aws_cli, "sts", "get-caller-identity",
                "--output", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["Arn"]


def test_default_session_name_is_the_iam_user(auth_env, aws_cli):
    # the user's keys in 1Password belong to IAM user "operator" (GetCallerIdentity at unlock)
    arn = caller(auth_env, aws_cli)
    assert arn == f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/{rig.ROLE_NAME}/{auth_env.ident['user']}", arn


def test_default_session_name_with_mfa_is_the_iam_user(mfa_open_env, aws_cli):
    # with MFA the role is assumed from the GetSessionToken session: still the user's name
    arn = caller(mfa_open_env, aws_cli)
    assert arn.endswith(f":assumed-role/{rig.ROLE_NAME}/{mfa_open_env.ident['user']}"), arn


def test_explicit_session_name_wins(auth_env, aws_cli):
    auth_env.write_config(text=rig.config_text(add={"roles.admin": 'session_name = "ci-job.42"'}))
    arn = caller(auth_env, aws_cli)
    assert arn.endswith(f":assumed-role/{rig.ROLE_NAME}/ci-job.42"), arn


# -- 8. `pctl init` goes the whole way: typed MFA, several roles, the clusters


@pytest.fixture
def fresh(auth_env):
    """No pctl config yet; the item has an MFA serial but no one-time password field."""
    os.remove(auth_env.config_path)
    ident = auth_env.ident
    auth_env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"],
                                    mfa_serial=rig.MFA_SERIAL)])
    return auth_env


def read(path):
    with open(path) as f:
        return f.read()


def config(env):
    with open(env.config_path, "rb") as f:
        return tomllib.load(f)


def test_init_mfa_serial_without_otp_needs_mfa_prompt(fresh):
    env = fresh
    r = env.run("init", "--item", rig.ITEM_TITLE, "--role", rig.ROLE_NAME)  # no terminal
    rig.assert_pctl_error(r, "MFA Serial", "no one-time password", "--mfa prompt")
    assert not os.path.exists(env.config_path)
    r = env.run("init", "--item", rig.ITEM_TITLE, "--role", rig.ROLE_NAME, "--mfa", "item")
    rig.assert_pctl_error(r, "--mfa item", "no one-time password", "--mfa prompt")
    assert not os.path.exists(env.config_path)

    r = env.ok("init", "--item", rig.ITEM_TITLE, "--role", rig.ROLE_NAME, "--mfa", "prompt")
    assert config(env)["onepassword"]["mfa"] == "prompt"
    assert 'mfa = "prompt"' in r.stderr
    # the daemon takes the file: without a terminal the role asks for `pctl unlock`
    r = env.run("credential-process", "--role", rig.ROLE_NAME)
    rig.assert_pctl_error(r, 'mfa = "prompt"', "pctl unlock")


def test_init_mfa_flag_on_an_item_without_mfa_is_refused(auth_env):
    os.remove(auth_env.config_path)
    r = auth_env.run("init", "--item", rig.ITEM_TITLE, "--role", rig.ROLE_NAME, "--mfa", "prompt")
    rig.assert_pctl_error(r, "--mfa", "no \"MFA Serial\" field")
    assert not os.path.exists(auth_env.config_path)


def test_init_several_roles_and_clusters_from_flags(auth_env):
    env = auth_env
    os.remove(env.config_path)
    other = f"arn:aws:iam::{rig.ACCOUNT_ID}:role/other"
    r = env.run("init", "--item", rig.ITEM_TITLE, "--cluster", "platform")
    rig.assert_pctl_error(r, "--cluster needs a role", "--role")
    env.ok("init", "--item", rig.ITEM_TITLE, "--role", f"admin={rig.ROLE_NAME}",
           "--role", f"ro={other}", "--cluster", rig.CLUSTER, "--cluster", "prod=prod-eks")
    c = config(env)
    assert c["roles"] == {"admin": {"name": rig.ROLE_NAME}, "ro": {"arn": other}}, c
    assert c["clusters"] == {rig.CLUSTER: {"role": "admin"},
                             "prod": {"role": "admin", "name": "prod-eks"}}, c
    block = read(os.path.join(env.home, ".aws", "config"))
    assert "[profile pctl-admin]" in block and "[profile pctl-ro]" in block
    # the daemon reads it as written
    roles = json.loads(env.ok("roles", "-o", "json").stdout)
    assert sorted(r["role"] for r in roles) == ["admin", "ro"], roles


def test_init_on_a_terminal_offers_mfa_prompt_roles_and_clusters(fresh):
    env = fresh
    # Enter takes mfa = "prompt"; two roles on one line; one cluster
    rc, out, err = init_on_a_terminal(
        env, f"\nadmin={rig.ROLE_NAME} ro=readonly\n{rig.CLUSTER}\n", "--item", rig.ITEM_TITLE)
    assert rc == 0, err
    assert "no one-time password field" in err and '(mfa = "prompt")? [Y/n]' in err, err
    assert f"EKS clusters in {rig.REGION} to use as admin" in err, err
    c = config(env)
    assert c["onepassword"]["mfa"] == "prompt"
    assert c["roles"] == {"admin": {"name": rig.ROLE_NAME}, "ro": {"name": "readonly"}}, c
    assert c["clusters"] == {rig.CLUSTER: {"role": "admin"}}, c
    assert f"pctl kubeconfig --cluster {rig.CLUSTER} --write" in err


def test_init_on_a_terminal_offers_the_clusters_the_daemon_lists(pctl_env, moto_open):
    """EKS ListClusters runs in the daemon with the role's session (moto has cluster
    `platform` and a decoy); the pick becomes [clusters.platform], which kubeconfig uses."""
    env = pctl_env(moto_open.url)
    os.remove(env.config_path)
    ident = moto_open.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"],
                               mfa_serial=rig.MFA_SERIAL, totp_seed=rig.TOTP_SEED)])
    eks = moto_open.client("eks")
    if "decoy" not in eks.list_clusters()["clusters"]:
        eks.create_cluster(name="decoy", roleArn=f"arn:aws:iam::{rig.ACCOUNT_ID}:role/eks-cluster",
                           resourcesVpcConfig={"subnetIds": ["subnet-0a1b2c3d"]})
    # the role; then a wrong pick is asked again, then the cluster by number
    rc, out, err = init_on_a_terminal(env, f"admin={rig.ROLE_NAME}\n9\n2\n", "--item",
                                      rig.ITEM_TITLE, timeout=90)
    assert rc == 0, err + env.daemon_log_tail()
    assert f"EKS clusters in {rig.REGION} that admin sees:\n  1) decoy\n  2) {rig.CLUSTER}\n" in err, err
    assert "answer with numbers from 1 to 2" in err
    c = config(env)
    assert c["clusters"] == {rig.CLUSTER: {"role": "admin"}}, c
    assert not os.path.exists(env.config_path + ".pctl-backup")
    assert os.stat(env.config_path).st_mode & 0o777 == 0o600
    for secret in (ident["secret_access_key"], ident["access_key_id"]):
        assert secret not in out + err
    # the daemon that listed them serves the written config
    env.ok("kubeconfig", "--cluster", rig.CLUSTER)
    log = env.daemon_log_tail()
    assert ident["secret_access_key"] not in log


# -- the README's real-world section, walked against the binary


def readme_commands():
    """Every `pctl ...` line of the sh blocks of README's "Real-world setup" section."""
    with open(os.path.join(rig.REPO, "README.md")) as f:
        text = f.read()
    section = text.split("## Real-world setup", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.splitlines():
            line = re.sub(r"\s{2,}#.*$", "", line).strip()   # trailing comments
            m = re.search(r"(?:^|\$\()pctl (.*?)(?:\)\"|\s\|.*)?$", line)
            if m and "<" not in m.group(1):
                commands.append(shlex.split(m.group(1)))
    return commands


def test_every_readme_command_parses(pctl_env):
    """No clap usage error (exit 2, "unexpected argument") for any command the README shows;
    without a config each stops at `no config ...: run pctl init` (init: at the empty
    1Password, or at a missing ~/.aws/config)."""
    env = pctl_env("http://127.0.0.1:9")  # nothing reaches AWS
    os.remove(env.config_path)
    commands = readme_commands()
    assert len(commands) >= 15, commands
    assert ["init", "--item", "AWS user key", "--role", "platform-admin", "--role", "ro=ReadOnly",
            "--cluster", "platform", "--mfa", "prompt"] in commands, commands
    env.op_store([])  # init finds no item: it stops before writing anything
    for argv in commands:
        r = env.run(*argv, timeout=30)
        assert r.returncode != 2 and "error: unexpected argument" not in r.stderr \
            and "error: invalid value" not in r.stderr, f"pctl {shlex.join(argv)}: {r.stderr}"


def test_init_on_a_terminal_offers_the_roles_the_user_may_assume(pctl_env, moto_open):
    """IAM ListRoles in the daemon, filtered by trust policy: the role trusting the user and
    the one trusting the account are offered, the one trusting somebody else is not."""
    env = pctl_env(moto_open.url)
    os.remove(env.config_path)
    ident = moto_open.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"],
                               mfa_serial=rig.MFA_SERIAL, totp_seed=rig.TOTP_SEED)])
    iam = moto_open.client("iam")
    have = {r["RoleName"] for r in iam.list_roles()["Roles"]}
    for name, principal in (("fh3-account-trust", f"arn:aws:iam::{rig.ACCOUNT_ID}:root"),
                            ("fh3-other-user", f"arn:aws:iam::{rig.ACCOUNT_ID}:user/somebody-else")):
        if name not in have:
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": principal}}]}))
    # every role offered; no cluster
    rc, out, err = init_on_a_terminal(env, "all\n\n", "--item", rig.ITEM_TITLE, timeout=90)
    assert rc == 0, err + env.daemon_log_tail()
    assert "Roles your IAM user may assume (by their trust policies):" in err, err
    offered = re.findall(r"^  \d+\) (\S+)$", err.split("may assume (by")[1].split("Roles to add")[0], re.M)
    assert f"arn:aws:iam::{rig.ACCOUNT_ID}:role/{rig.ROLE_NAME}" in offered, err
    assert f"arn:aws:iam::{rig.ACCOUNT_ID}:role/fh3-account-trust" in offered, err
    assert not any("fh3-other-user" in a for a in offered), err
    c = config(env)
    assert c["roles"][rig.ROLE_NAME] == {"arn": f"arn:aws:iam::{rig.ACCOUNT_ID}:role/{rig.ROLE_NAME}"}, c
    assert "fh3-account-trust" in c["roles"] and "fh3-other-user" not in c["roles"], c
    assert "[profile pctl-fh3-account-trust]" in read(os.path.join(env.home, ".aws", "config"))
    for secret in (ident["secret_access_key"], ident["access_key_id"]):
        assert secret not in out + err
