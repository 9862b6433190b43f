"""The first hour of a new user (issue 21), the rest: role sessions named after the person
(item 14) and `pctl init` going the whole way (item 8). Every step drives the real binary
against moto and the `op` stand-in."""

import json

import rig

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
    auth_env.write_config(text=rig.CONFIG_TEMPLATE.format(
        region=rig.REGION, op_timeout="20s", item=rig.ITEM_TITLE, vault=rig.VAULT,
        role=rig.ROLE_NAME, cluster=rig.CLUSTER).replace(
            'duration = "1h"', 'duration = "1h"\nsession_name = "ci-job.42"', 1))
    arn = caller(auth_env, aws_cli)
    assert arn.endswith(f":assumed-role/{rig.ROLE_NAME}/ci-job.42"), arn
