"""The IAM Identity Center stand-in (tests/fixtures/sso_server.py) proven against real clients:
botocore's sso-oidc and sso clients, and botocore's own SSO token provider and SSO credential
provider (sso-session config, token cache as botocore keeps it), refresh included. Role
sessions it mints are accepted by moto (auth on) with an assumed-role ARN."""

import datetime
import hashlib
import json
import os
import subprocess
import sys

import pytest

import rig
import sso_rig
from sso_rig import sso, sso_moto  # noqa: F401 (fixtures)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


SSO_ACCOUNTS = [{"accountId": rig.ACCOUNT_ID, "accountName": "platform",
                 "emailAddress": "platform@example.com", "roles": ["Dev", "ReadOnly"]},
                {"accountId": "999999999999", "accountName": "sandbox",
                 "emailAddress": "sandbox@example.com", "roles": ["Dev"]},
                {"accountId": "111122223333", "accountName": "audit",
                 "emailAddress": "audit@example.com", "roles": ["ReadOnly"]}]


def client(service, url):
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    return boto3.session.Session().client(service, region_name=rig.REGION, endpoint_url=url,
                                          config=Config(signature_version=UNSIGNED))


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def register_and_start(oidc, scopes=("sso:account:access",)):
    reg = oidc.register_client(clientName="test", clientType="public", scopes=list(scopes))
    dev = oidc.start_device_authorization(clientId=reg["clientId"],
                                          clientSecret=reg["clientSecret"],
                                          startUrl=sso_rig.START_URL)
    return reg, dev


def poll(oidc, reg, dev):
    return oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                             grantType=DEVICE_GRANT, deviceCode=dev["deviceCode"])


def test_device_flow_through_botocore_clients(sso, sso_moto):
    from botocore.exceptions import ClientError

    oidc = client("sso-oidc", sso.url)
    reg, dev = register_and_start(oidc)
    assert dev["verificationUriComplete"].endswith("user_code=" + dev["userCode"])
    assert dev["interval"] == 1 and dev["expiresIn"] > 0
    with pytest.raises(ClientError) as e:
        poll(oidc, reg, dev)
    assert code(e) == "AuthorizationPendingException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    sso.device("approve", dev["userCode"])
    # too soon after the last poll: RFC 8628 slow_down, interval + 5
    with pytest.raises(ClientError) as e:
        poll(oidc, reg, dev)
    assert code(e) == "SlowDownException"
    assert sso.state()["devices"][-1]["interval"] == 6

    sso.settings(interval=0)  # the next authorizations: no pacing, so the test stays short
    reg, dev = register_and_start(oidc)
    sso.device("approve")
    tok = poll(oidc, reg, dev)
    assert tok["tokenType"] == "Bearer" and tok["refreshToken"] and tok["expiresIn"] == 3600
    with pytest.raises(ClientError) as e:  # a device code serves once
        poll(oidc, reg, dev)
    assert code(e) == "InvalidGrantException"

    # refresh grant: a new access token, the refresh token rotates
    new = oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                            grantType="refresh_token", refreshToken=tok["refreshToken"])
    assert new["accessToken"] != tok["accessToken"] and new["refreshToken"] != tok["refreshToken"]
    with pytest.raises(ClientError) as e:
        oidc.create_token(clientId=reg["clientId"], clientSecret=reg["clientSecret"],
                          grantType="refresh_token", refreshToken=tok["refreshToken"])
    assert code(e) == "InvalidGrantException"
    with pytest.raises(ClientError) as e:
        oidc.create_token(clientId=reg["clientId"], clientSecret="wrong",
                          grantType="refresh_token", refreshToken=new["refreshToken"])
    assert code(e) == "InvalidClientException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401

    # no scopes registered: no refresh token
    reg2, dev2 = register_and_start(oidc, scopes=())
    sso.device("approve")
    assert "refreshToken" not in poll(oidc, reg2, dev2)

    # denied and expired
    for action, want in (("deny", "AccessDeniedException"), ("expire", "ExpiredTokenException")):
        reg3, dev3 = register_and_start(oidc)
        sso.device(action)
        with pytest.raises(ClientError) as e:
            poll(oidc, reg3, dev3)
        assert code(e) == want, action

    # the portal, with the access token in x-amz-sso_bearer_token
    portal = client("sso", sso.url)
    accounts = [a for p in portal.get_paginator("list_accounts").paginate(
        accessToken=new["accessToken"]) for a in p["accountList"]]
    assert [a["accountId"] for a in accounts] == [rig.ACCOUNT_ID, "999999999999", "111122223333"]
    assert len(sso.records("ListAccounts")) == 2  # page size 2: two pages
    roles = [r["roleName"] for p in portal.get_paginator("list_account_roles").paginate(
        accessToken=new["accessToken"], accountId=rig.ACCOUNT_ID) for r in p["roleList"]]
    assert roles == ["Dev", "ReadOnly"]
    rc = portal.get_role_credentials(accessToken=new["accessToken"], accountId=rig.ACCOUNT_ID,
                                     roleName="Dev")["roleCredentials"]
    assert rc["expiration"] > 1e12  # epoch milliseconds
    sts = sso_moto.client("sts", rc["accessKeyId"], rc["secretAccessKey"], rc["sessionToken"])
    arn = sts.get_caller_identity()["Arn"]
    assert arn == f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/Dev/sso-user"
    with pytest.raises(ClientError) as e:  # not assigned
        portal.get_role_credentials(accessToken=new["accessToken"], accountId="111122223333",
                                    roleName="Dev")
    assert code(e) == "UnauthorizedException"
    sso.expire_tokens()
    with pytest.raises(ClientError) as e:  # an expired access token is refused
        portal.list_accounts(accessToken=new["accessToken"])
    assert code(e) == "UnauthorizedException"
    # the log never holds a token or secret
    log = open(sso.log).read()
    for s in (tok["accessToken"], tok["refreshToken"], new["accessToken"], reg["clientSecret"],
              dev["deviceCode"]):
        assert s not in log


BOTOCORE_SCRIPT = r"""
import json, botocore.session
s = botocore.session.Session(profile="dev")
c = s.get_credentials().get_frozen_credentials()
sts = s.create_client("sts", region_name="us-east-1")
print(json.dumps({"arn": sts.get_caller_identity()["Arn"], "akid": c.access_key}))
"""


def test_botocore_sso_providers_with_refresh(sso, sso_moto, tmp_path):
    """botocore's SSO token provider refreshes an expired cached token with the refresh grant,
    then its SSO credential provider gets role credentials that moto accepts."""
    oidc = client("sso-oidc", sso.url)
    sso.settings(interval=0)
    reg, dev = register_and_start(oidc)
    sso.device("approve")
    tok = poll(oidc, reg, dev)

    home = tmp_path / "home"
    (home / ".aws" / "sso" / "cache").mkdir(parents=True)
    (home / ".aws" / "config").write_text(
        "[profile dev]\nsso_session = corp\nsso_account_id = %s\nsso_role_name = Dev\n"
        "region = us-east-1\n\n[sso-session corp]\nsso_start_url = %s\nsso_region = us-east-1\n"
        "sso_registration_scopes = sso:account:access\n" % (rig.ACCOUNT_ID, sso_rig.START_URL))
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    cache = home / ".aws" / "sso" / "cache" / (hashlib.sha1(b"corp").hexdigest() + ".json")
    cache.write_text(json.dumps({
        "startUrl": sso_rig.START_URL, "region": rig.REGION, "accessToken": tok["accessToken"],
        "expiresAt": past.strftime("%Y-%m-%dT%H:%M:%SZ"), "refreshToken": tok["refreshToken"],
        "clientId": reg["clientId"], "clientSecret": reg["clientSecret"],
        "registrationExpiresAt": future.strftime("%Y-%m-%dT%H:%M:%SZ")}))
    sso.expire_tokens()  # the cached access token is really dead at the portal

    env = rig.clean_base_env()
    env.update(HOME=str(home), AWS_CONFIG_FILE=str(home / ".aws" / "config"),
               AWS_SHARED_CREDENTIALS_FILE=str(home / ".aws" / "credentials"),
               AWS_ENDPOINT_URL_SSO_OIDC=sso.url, AWS_ENDPOINT_URL_SSO=sso.url,
               AWS_ENDPOINT_URL_STS=sso_moto.url, AWS_EC2_METADATA_DISABLED="true")
    r = subprocess.run([sys.executable, "-c", BOTOCORE_SCRIPT], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["arn"] == f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/Dev/sso-user"
    refreshes = [x for x in sso.records("CreateToken") if x["grant_type"] == "refresh_token"]
    assert [x["status"] for x in refreshes] == [200]
    assert sso.records("GetRoleCredentials")[-1]["access_key_id"] == out["akid"]
    # botocore wrote the refreshed token back to its cache: the new one the stand-in issued
    saved = json.loads(cache.read_text())
    assert saved["accessToken"] == sso.secrets()["access_tokens"][-1] != tok["accessToken"]
