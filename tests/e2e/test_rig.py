"""Self-tests of the rig's fixtures (no pctl binary needed): moto auth mode, the recording
proxy, and the EKS test API server, which must be able to fail."""

import datetime
import json
import os
import subprocess
import urllib.parse

import botocore.exceptions
import pytest

import rig
from eks_api_server import TokenError, check_token


def test_moto_auth_mode_through_proxy(moto_auth, recording_proxy):
    ident = moto_auth.identity
    proxy = recording_proxy(moto_auth.url)
    sts = rig.Moto.client(proxy, "sts", ident["access_key_id"], ident["secret_access_key"])
    assert sts.get_caller_identity()["Arn"] == ident["user_arn"]
    creds = sts.assume_role(RoleArn=ident["role_arn"], RoleSessionName="rig")["Credentials"]
    bad = rig.Moto.client(proxy, "sts", ident["access_key_id"], "wrong-secret")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.get_caller_identity()
    assert "SignatureDoesNotMatch" in str(e.value)
    role_sts = rig.Moto.client(proxy, "sts", creds["AccessKeyId"], creds["SecretAccessKey"],
                               creds["SessionToken"])
    assert ":assumed-role/platform-admin/rig" in role_sts.get_caller_identity()["Arn"]
    recs = proxy.actions()
    assert [r["action"] for r in recs] == ["GetCallerIdentity", "AssumeRole",
                                           "GetCallerIdentity", "GetCallerIdentity"]
    assert recs[1]["params"]["RoleArn"] == ident["role_arn"]
    assert recs[1]["access_key"] == ident["access_key_id"]
    assert [r["status"] for r in recs] == [200, 200, 403, 200]
    # the session is visible to the EKS server's secret lookup
    assert rig.Moto.secrets(moto_auth)[f"session token {creds['AccessKeyId']}"] == creds["SessionToken"]


def test_moto_open_has_cluster(moto_open):
    eks = moto_open.client("eks")
    assert eks.describe_cluster(name=rig.CLUSTER)["cluster"]["name"] == rig.CLUSTER


@pytest.fixture
def open_session(moto_open):
    ident = moto_open.identity
    sts = moto_open.client("sts", ident["access_key_id"], ident["secret_access_key"])
    creds = sts.assume_role(RoleArn=ident["role_arn"], RoleSessionName="rig-eks")["Credentials"]
    return creds


def test_eks_server_accepts_botocore_tokens(moto_open, eks_server, open_session):
    srv = eks_server(moto_open.url, moto_open.url)
    c = open_session
    tok = rig.botocore_eks_token(moto_open.url, rig.CLUSTER, c["AccessKeyId"],
                                 c["SecretAccessKey"], c["SessionToken"])
    r = srv.get("/version", tok)
    assert r.status_code == 200, srv.records()
    assert r.json()["major"] == "1"
    rec = srv.records()[-1]
    assert rec["ok"] and rec["arn"].endswith(":assumed-role/platform-admin/rig-eks")
    # IAM user keys (no session token) verify too
    ident = moto_open.identity
    tok2 = rig.botocore_eks_token(moto_open.url, rig.CLUSTER, ident["access_key_id"],
                                  ident["secret_access_key"])
    assert srv.get("/api/v1/namespaces", tok2).json()["kind"] == "NamespaceList"
    assert srv.records()[-1]["arn"] == ident["user_arn"]


def _reject(srv, token, reason):
    r = srv.get("/version", token)
    assert r.status_code == 401
    rec = srv.records()[-1]
    assert not rec["ok"] and reason in rec["reason"], rec
    return rec


def test_eks_server_rejects_bad_tokens(moto_open, eks_server, open_session):
    srv = eks_server(moto_open.url, moto_open.url)
    c = open_session
    args = (c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    now = datetime.datetime.now(datetime.timezone.utc)
    good = rig.botocore_eks_token(moto_open.url, rig.CLUSTER, *args)
    url = rig.token_url(good)

    r = srv.get("/version", "")
    assert r.status_code == 401
    # expired: signed 16 minutes ago
    _reject(srv, rig.botocore_eks_token(moto_open.url, rig.CLUSTER, *args,
                                        at=now - datetime.timedelta(minutes=16)), "expired")
    # signed 14 minutes ago is still fine
    ok = srv.get("/version", rig.botocore_eks_token(
        moto_open.url, rig.CLUSTER, *args, at=now - datetime.timedelta(minutes=14)))
    assert ok.status_code == 200
    # wrong STS host
    _reject(srv, rig.botocore_eks_token("http://127.0.0.2:1", rig.CLUSTER, *args), "host")
    _reject(srv, rig.botocore_eks_token("https://sts.us-east-1.amazonaws.com", rig.CLUSTER,
                                        *args), "scheme")
    # wrong cluster
    _reject(srv, rig.botocore_eks_token(moto_open.url, "other-cluster", *args), "signature")
    # tampered: signature, action, extra parameter, padding, prefix
    sig = rig.token_params(good)["X-Amz-Signature"]
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    _reject(srv, rig.url_token(url.replace(sig, flipped)), "signature")
    _reject(srv, rig.url_token(url.replace("Action=GetCallerIdentity", "Action=GetSessionToken")),
            "Action")
    _reject(srv, rig.url_token(url + "&Foo=bar"), "unexpected")
    _reject(srv, good + "==", "padding")
    _reject(srv, "k8s-aws-v2." + good[len("k8s-aws-v1."):], "prefix")
    # session token dropped
    q = urllib.parse.urlsplit(url)
    no_tok = "&".join(p for p in q.query.split("&") if not p.startswith("X-Amz-Security-Token="))
    _reject(srv, rig.url_token(q._replace(query=no_tok).geturl()), "session token")
    # still serves a good one
    assert srv.get("/version", good).status_code == 200


def test_check_token_offline_vectors():
    """The verifier alone, against botocore presigning with a known key."""
    url = "http://127.0.0.1:9"
    now = datetime.datetime.now(datetime.timezone.utc)
    tok = rig.botocore_eks_token(url, "c1", "AKIAOFFLINE", "sek/ret+1")
    lookup = {"AKIAOFFLINE": ("sek/ret+1", None)}.get
    assert check_token(tok, url, "c1", lookup, now)[0] == "AKIAOFFLINE"
    with pytest.raises(TokenError, match="signature"):
        check_token(tok, url, "c2", lookup, now)
    with pytest.raises(TokenError, match="unknown access key"):
        check_token(tok, url, "c1", {}.get, now)
    with pytest.raises(TokenError, match="expired"):
        check_token(tok, url, "c1", lookup, now + datetime.timedelta(minutes=16))


def test_kubectl_talks_to_eks_server(moto_open, eks_server, open_session, kubectl_bin,
                                     server_cert, tmp_path):
    """kubectl with a static bearer token: discovery and namespaces work against the server."""
    srv = eks_server(moto_open.url, moto_open.url)
    c = open_session
    tok = rig.botocore_eks_token(moto_open.url, rig.CLUSTER, c["AccessKeyId"],
                                 c["SecretAccessKey"], c["SessionToken"])
    kc = tmp_path / "kubeconfig"
    kc.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": srv.url,
                                               "certificate-authority": server_cert[0]}}],
        "users": [{"name": "t", "user": {"token": tok}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}]}))
    env = rig.clean_base_env()
    env.update(KUBECONFIG=str(kc), HOME=str(tmp_path))
    r = subprocess.run([kubectl_bin, "get", "--raw", "/version"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["gitVersion"].startswith("v1.32")
    r = subprocess.run([kubectl_bin, "get", "namespaces"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "kube-system" in r.stdout and "flux-system" in r.stdout
    assert all(rec["ok"] for rec in srv.records())
    # and with a token for another cluster, kubectl is refused
    bad = rig.botocore_eks_token(moto_open.url, "other", c["AccessKeyId"],
                                 c["SecretAccessKey"], c["SessionToken"])
    kc.write_text(kc.read_text().replace(tok, bad))
    r = subprocess.run([kubectl_bin, "get", "--raw", "/version"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "Unauthorized" in r.stderr


def test_proxy_survives_s3_bodies(moto_open, recording_proxy):
    proxy = recording_proxy(moto_open.url)
    s3 = rig.Moto.client(proxy, "s3")
    s3.create_bucket(Bucket="rig-proxy")
    s3.put_object(Bucket="rig-proxy", Key="k", Body=b"x" * 100000)
    assert s3.get_object(Bucket="rig-proxy", Key="k")["Body"].read() == b"x" * 100000
    assert os.path.getsize(proxy.log) > 0


def test_secret_scanner_finds_planted_values(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "log").write_bytes(b"prefix wJalrXUtnFEMI/K7MDENG suffix 1234567 at 123456\n")
    (tmp_path / "skip").mkdir()
    (tmp_path / "skip" / "x").write_text("wJalrXUtnFEMI/K7MDENG")
    hits = rig.scan_tree_for([str(tmp_path)], {"s": "wJalrXUtnFEMI/K7MDENG"},
                             exclude=[str(tmp_path / "skip")], numeric_codes=["123456", "234567"])
    assert sorted(l for _, l in hits) == ["s", "totp code 123456"]
