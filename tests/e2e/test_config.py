"""Config options from docs/interface.md exercised end to end (moto with auth on)."""

import json
import re

import rig

TWO_ROLES = """\
region = "us-east-1"

[daemon]
op_timeout = "20s"

[onepassword]
item = "{item}"
vault = "Private"
account = "my.1password.com"

[onepassword.fields]
access_key_id = "access key id"
secret_access_key = "SECRET ACCESS KEY"

[roles.admin]
name = "platform-admin"
duration = "1h"

[roles.ro]
arn = "arn:aws:iam::{acct}:role/platform-admin"
duration = "15m"
session_name = "pctl-readonly"

[clusters.platform]
role = "admin"
"""


def test_two_roles_arn_form_session_name_and_account(pctl_env, moto_auth, recording_proxy):
    proxy = recording_proxy(moto_auth.url)
    env = pctl_env(proxy.url)
    ident = moto_auth.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"])])
    store_path = env.home + "/.op-fake/items.json"
    store = json.load(open(store_path))
    store["accounts"] = ["my.1password.com"]
    json.dump(store, open(store_path, "w"))
    env.write_config(text=TWO_ROLES.format(item=rig.ITEM_TITLE, acct=rig.ACCOUNT_ID))

    a = json.loads(env.ok("credential-process", "--role", "admin").stdout)
    b = json.loads(env.ok("credential-process", "--role", "ro").stdout)
    assert a["AccessKeyId"] != b["AccessKeyId"]
    ro_arn = moto_auth.client("sts", b["AccessKeyId"], b["SecretAccessKey"],
                             b["SessionToken"]).get_caller_identity()["Arn"]
    assert ro_arn == f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/platform-admin/pctl-readonly"

    ars = proxy.actions("AssumeRole")
    assert len(ars) == 2
    by_session = {r["params"]["RoleSessionName"]: r["params"] for r in ars}
    assert int(by_session["pctl-readonly"].get("DurationSeconds")) == 900
    others = [p for s, p in by_session.items() if s != "pctl-readonly"]
    assert int(others[0].get("DurationSeconds")) == 3600

    call = env.op_calls("item get")
    assert len(call) == 1
    argv = call[0]["argv"]
    assert "--account=my.1password.com" in argv[:argv.index("--")]

    st = env.status()
    assert sorted(r["role"] for r in st["roles"]) == ["admin", "ro"]

    profiles = env.ok("aws-config", "--print").stdout
    assert "[profile pctl-admin]" in profiles and "[profile pctl-ro]" in profiles
    assert re.search(r"credential_process\s*=\s*\S+ credential-process --role ro\b", profiles)


def test_env_fish_syntax(auth_env):
    out = auth_env.ok("env", "--role", "admin", "--shell", "fish").stdout
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                "AWS_CREDENTIAL_EXPIRATION", "AWS_REGION"):
        assert re.search(rf"^set -gx {var} ", out, re.M), out.replace(
            auth_env.ident["secret_access_key"], "<redacted>")


def test_service_specific_endpoints(pctl_env, moto_open, recording_proxy):
    """AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL_EKS are honoured without AWS_ENDPOINT_URL."""
    proxy = recording_proxy(moto_open.url)
    env = pctl_env(proxy.url)
    del env.env["AWS_ENDPOINT_URL"]
    env.env["AWS_ENDPOINT_URL_STS"] = proxy.url
    env.env["AWS_ENDPOINT_URL_EKS"] = moto_open.url
    ident = moto_open.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"])])
    env.ok("credential-process", "--role", "admin")
    assert len(proxy.actions("AssumeRole")) == 1
    tok = json.loads(env.ok("eks", "token", "--cluster", rig.CLUSTER).stdout)["status"]["token"]
    assert rig.token_url(tok).startswith(proxy.url + "/")
    env.ok("kubeconfig", "--cluster", rig.CLUSTER, "--write", env.home + "/kc")
    assert not [r for r in proxy.records() if "/clusters" in r["path"]], \
        "DescribeCluster should go to AWS_ENDPOINT_URL_EKS, not the STS endpoint"
