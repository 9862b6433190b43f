"""`pctl init --from-aws-config` carries role chains and role options over (issue 17 §4,
issue 21 item 8): `source_profile` chains become `source_role`, `external_id`,
`role_session_name`, `duration_seconds` and `region` are kept, and a role of another account
is imported although a role of the same name is configured. The imported chain then serves
credentials through the real binary against moto (auth on); a recording proxy shows what
AssumeRole was sent."""

import json
import os
import time

import pytest

import rig

CHAINED = "chained-target"


@pytest.fixture(scope="module")
def moto_chain(tmp_path_factory):
    m = rig.Moto(str(tmp_path_factory.mktemp("moto-chain")), "chain").start()
    try:
        m.identity = rig.setup_identity(m)
        m.client("iam").create_role(RoleName=CHAINED, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"AWS": [
                    m.identity["role_arn"],
                    f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/{rig.ROLE_NAME}/alice"]}}]}))
        m.set_auth(True)
        yield m
    finally:
        m.stop()


@pytest.fixture
def env(pctl_env, moto_chain):
    ident = moto_chain.identity
    e = pctl_env(moto_chain.url)
    e.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"])])
    e.moto, e.ident = moto_chain, ident
    return e


def test_import_carries_chains_and_options_and_the_chain_serves(env, recording_proxy):
    admin = env.ident["role_arn"]
    chained = f"arn:aws:iam::{rig.ACCOUNT_ID}:role/{CHAINED}"
    other = f"arn:aws:iam::444455556666:role/{rig.ROLE_NAME}"
    aws = os.path.join(env.home, "aws-config")
    with open(aws, "w") as f:
        f.write(f"""[profile base]
aws_access_key_id = AKIAEXAMPLE

[profile ops]
role_arn = {admin}
source_profile = base
external_id = ops-ext-7
role_session_name = alice
duration_seconds = 1800
region = eu-west-1

[profile deep]
role_arn = {chained}
source_profile = ops
external_id = deep-ext-9
duration_seconds = 7200

[profile prod-admin]
role_arn = {other}
source_profile = base
""")
    # pctl's config already has the role `platform-admin` by name (the 1Password account)
    r = env.ok("init", "--from-aws-config", aws, "--write")
    text = open(env.config_path).read()
    assert '[roles.ops]\narn = "%s"\nduration = "30m"\nexternal_id = "ops-ext-7"\n' \
           'session_name = "alice"\nregion = "eu-west-1"\n' % admin in text, text
    # the chain: source_role, and the hour AWS allows a chained role (said on stderr)
    assert '[roles.deep]\nsource_role = "ops"\narn = "%s"\nduration = "1h"\n' \
           'external_id = "deep-ext-9"\n' % chained in text, text
    assert "duration_seconds 7200" in r.stderr and "1 hour" in r.stderr, r.stderr
    # another account's role of the same name is not skipped (issue 21 item 8)
    assert '[roles.prod-admin]\narn = "%s"\n' % other in text, text

    proxy = recording_proxy(env.moto.url)
    env.env["AWS_ENDPOINT_URL_STS"] = proxy.url
    cp = json.loads(env.ok("credential-process", "--role", "deep").stdout)
    sts = env.moto.client("sts", cp["AccessKeyId"], cp["SecretAccessKey"], cp["SessionToken"])
    assert sts.get_caller_identity()["Arn"] == (
        f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/{CHAINED}/operator")  # the IAM user (rig.setup_identity)
    calls = [c["params"] for c in proxy.actions("AssumeRole")]
    assert [c["RoleArn"] for c in calls] == [admin, chained], calls
    assert calls[0]["ExternalId"] == "ops-ext-7" and calls[0]["RoleSessionName"] == "alice"
    assert calls[1]["ExternalId"] == "deep-ext-9" and int(calls[1]["DurationSeconds"]) <= 3600
    # a second import adds nothing
    before = open(env.config_path).read()
    r = env.ok("init", "--from-aws-config", aws, "--write")
    assert open(env.config_path).read() == before and "nothing to import" in r.stderr


def test_a_chain_cycle_is_skipped_naming_it(env):
    aws = os.path.join(env.home, "aws-config")
    with open(aws, "w") as f:
        f.write(f"[profile a]\nrole_arn = arn:aws:iam::{rig.ACCOUNT_ID}:role/a\nsource_profile = b\n\n"
                f"[profile b]\nrole_arn = arn:aws:iam::{rig.ACCOUNT_ID}:role/b\nsource_profile = a\n")
    before = open(env.config_path).read()
    r = env.ok("init", "--from-aws-config", aws, "--write")
    assert open(env.config_path).read() == before
    assert "a -> b -> a" in r.stderr and "cycle" in r.stderr, r.stderr


def test_assume_role_duration_flag_is_clamped_to_what_aws_allows(env, recording_proxy):
    """--duration on a role assumed with the identity's key: 15m..12h (issue 17 §2)."""
    proxy = recording_proxy(env.moto.url)
    env.env["AWS_ENDPOINT_URL_STS"] = proxy.url
    r = env.ok("credential-process", "--role", "admin", "--duration", "13h")
    note = r.stderr.strip().splitlines()
    assert len(note) == 1 and note[0].startswith("pctl: --duration 13h") and "12h" in note[0], note
    r = env.ok("credential-process", "--role", "admin", "--duration", "2h")
    assert r.stderr == "", r.stderr
    calls = [c["params"] for c in proxy.actions("AssumeRole")]
    assert [c["DurationSeconds"] for c in calls] == ["43200", "7200"], calls
    cp = json.loads(r.stdout)
    left = rig.parse_rfc3339(cp["Expiration"]).timestamp() - time.time()
    assert 7000 < left <= 7201, left
