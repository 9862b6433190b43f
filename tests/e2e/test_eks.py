"""EKS tokens from pctl, verified by a test API server the way EKS does it, used by real
kubectl (issue 3).  moto runs without auth here (its EKS API rejects SigV4 in auth mode)."""

import datetime
import json
import os
import re
import urllib.parse

import pytest

import rig

ASSUMED = f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/{rig.ROLE_NAME}/"
V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


def exec_info(api_version, interactive=False):
    return json.dumps({"kind": "ExecCredential", "apiVersion": api_version,
                       "spec": {"interactive": interactive}})


@pytest.fixture
def eks_env(pctl_env, moto_open, eks_server):
    env = pctl_env(moto_open.url)
    ident = moto_open.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"])])
    env.moto, env.ident = moto_open, ident
    env.server = eks_server(moto_open.url, moto_open.url)
    return env


def eks_token(env, api_version=None, cluster=rig.CLUSTER, extra=()):
    e = {"KUBERNETES_EXEC_INFO": exec_info(api_version)} if api_version else {}
    r = env.ok("eks", "token", "--cluster", cluster, *extra, env=e)
    return json.loads(r.stdout)


def write_kubeconfig(env, server_cert):
    path = os.path.join(env.home, ".kube", "pctl-e2e")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    env.ok("kubeconfig", "--cluster", rig.CLUSTER, "--endpoint", env.server.url,
           "--ca-file", server_cert[0], "--write", path)
    return path


def test_kubectl_with_pctl_kubeconfig(eks_env, kubectl_bin, server_cert, pctl_bin):
    env = eks_env
    kc = write_kubeconfig(env, server_cert)
    view = env.run_tool([kubectl_bin, "config", "view", "--kubeconfig", kc, "--raw", "-o", "json"])
    assert view.returncode == 0, view.stderr
    cfg = json.loads(view.stdout)
    # "named after C": the contract allows a prefix such as pctl-<C>
    names = [c["name"] for c in cfg["clusters"]]
    assert len(names) == 1 and names[0] in (rig.CLUSTER, f"pctl-{rig.CLUSTER}"), names
    assert cfg["clusters"][0]["cluster"]["server"] == env.server.url
    assert cfg["clusters"][0]["cluster"].get("certificate-authority-data")
    ctxs = [c["name"] for c in cfg["contexts"]]
    assert len(ctxs) == 1 and ctxs[0] in (rig.CLUSTER, f"pctl-{rig.CLUSTER}"), ctxs
    assert cfg["current-context"] == ctxs[0]
    user = cfg["users"][0]
    assert user["name"] in (rig.CLUSTER, f"pctl-{rig.CLUSTER}")
    ex = user["user"]["exec"]
    assert ex["command"] == pctl_bin
    assert ex["args"][:2] == ["eks", "token"]
    assert ex["args"][ex["args"].index("--cluster") + 1] == rig.CLUSTER
    assert ex["args"][ex["args"].index("--role") + 1] == "admin"
    assert ex["apiVersion"] in (V1, V1BETA1)

    env_k = {"KUBECONFIG": kc}
    r = env.run_tool([kubectl_bin, "get", "--raw", "/version"], env=env_k, timeout=60)
    assert r.returncode == 0, r.stderr + "\n" + json.dumps(env.server.records()) + env.daemon_log_tail()
    assert json.loads(r.stdout)["gitVersion"].startswith("v1.32")
    r = env.run_tool([kubectl_bin, "get", "namespaces"], env=env_k, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "kube-system" in r.stdout and "flux-system" in r.stdout
    r = env.run_tool([kubectl_bin, "get", "namespaces", "-o", "name"], env=env_k, timeout=60)
    assert "namespace/default" in r.stdout

    recs = env.server.records()
    assert recs and all(x["ok"] for x in recs), recs
    assert all(x["arn"].startswith(ASSUMED) for x in recs), recs
    assert env.status()["counters"]["eks_tokens_minted"] == 1


def test_kubeconfig_default_path_and_describe_cluster(eks_env, server_cert):
    env = eks_env
    env.ok("kubeconfig", "--cluster", rig.CLUSTER, "--endpoint", env.server.url,
           "--ca-file", server_cert[0])
    path = os.path.join(env.xdg_config, "pctl", "kubeconfig")
    assert os.path.exists(path)
    assert env.server.url in open(path).read()


def test_token_shape_and_server_verification(eks_env):
    env = eks_env
    cred = eks_token(env)
    assert cred["kind"] == "ExecCredential" and cred["apiVersion"] == V1BETA1
    tok = cred["status"]["token"]
    assert tok.startswith("k8s-aws-v1.") and "=" not in tok and len(tok) <= 4096
    url = urllib.parse.urlsplit(rig.token_url(tok))
    assert f"{url.scheme}://{url.netloc}" == env.moto.url
    assert url.path == "/"
    p = rig.token_params(tok)
    assert p["Action"] == "GetCallerIdentity" and p["Version"] == "2011-06-15"
    assert p["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    assert p["X-Amz-Expires"] == "60"
    assert p["X-Amz-Credential"].split("/")[2:] == [rig.REGION, "sts", "aws4_request"]
    assert p["X-Amz-Credential"].startswith("ASIA")
    r = env.server.get("/version", tok)
    assert r.status_code == 200, env.server.records()
    assert env.server.records()[-1]["arn"].startswith(ASSUMED)


def test_tampered_expired_wrong_cluster_and_host_tokens_rejected(eks_env, eks_server):
    env = eks_env
    tok = eks_token(env)["status"]["token"]
    url = rig.token_url(tok)
    p = rig.token_params(tok)

    def rejected(token, why):
        r = env.server.get("/version", token)
        assert r.status_code == 401, why
        rec = env.server.records()[-1]
        assert not rec["ok"], why
        return rec["reason"]

    # tampered pctl tokens
    sig = p["X-Amz-Signature"]
    rejected(rig.url_token(url.replace(sig, sig[::-1])), "reversed signature")
    old_date = p["X-Amz-Date"]
    earlier = (datetime.datetime.strptime(old_date, "%Y%m%dT%H%M%SZ")
               - datetime.timedelta(seconds=1)).strftime("%Y%m%dT%H%M%SZ")
    assert "signature" in rejected(rig.url_token(url.replace(old_date, earlier)), "date moved")
    rejected(rig.url_token(url.replace("X-Amz-Expires=60", "X-Amz-Expires=900")), "expires")
    rejected(tok[:-3], "truncated")
    rejected(tok + "==", "padded")
    # the same token presented to another cluster's API server
    other = eks_server(env.moto.url, env.moto.url, cluster="other")
    r = other.get("/version", tok)
    assert r.status_code == 401 and "signature" in other.records()[-1]["reason"]

    # expired and wrong-host tokens presigned with botocore from the same session
    creds = json.loads(env.ok("credential-process", "--role", "admin").stdout)
    args = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert creds["AccessKeyId"] == p["X-Amz-Credential"].split("/")[0]
    now = datetime.datetime.now(datetime.timezone.utc)
    assert "expired" in rejected(rig.botocore_eks_token(
        env.moto.url, rig.CLUSTER, *args, at=now - datetime.timedelta(minutes=16)), "expired")
    assert "host" in rejected(rig.botocore_eks_token(
        env.moto.url.replace("127.0.0.1", "localhost"), rig.CLUSTER, *args), "wrong host")
    # control: the untampered token still works
    assert env.server.get("/version", tok).status_code == 200


def test_same_shape_as_aws_eks_get_token(eks_env, aws_cli):
    env = eks_env
    cfg = os.path.join(env.home, ".aws", "config")
    os.makedirs(os.path.dirname(cfg), exist_ok=True)
    env.ok("aws-config", "--write", cfg)
    r = env.run_tool([aws_cli, "eks", "get-token", "--cluster-name", rig.CLUSTER,
                      "--profile", "pctl-admin", "--output", "json"],
                     env={"AWS_CONFIG_FILE": cfg, "AWS_ENDPOINT_URL_STS": env.moto.url,
                          "KUBERNETES_EXEC_INFO": exec_info(V1BETA1)})
    assert r.returncode == 0, r.stderr + env.daemon_log_tail()
    theirs = json.loads(r.stdout)["status"]["token"]
    ours = eks_token(env, V1BETA1)["status"]["token"]
    tp, op_ = rig.token_params(theirs), rig.token_params(ours)
    assert set(tp) == set(op_), (sorted(tp), sorted(op_))
    assert tp["X-Amz-SignedHeaders"] == op_["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    assert tp["X-Amz-Expires"] == op_["X-Amz-Expires"]
    assert urllib.parse.urlsplit(rig.token_url(theirs)).netloc == \
        urllib.parse.urlsplit(rig.token_url(ours)).netloc
    for t in (theirs, ours):
        resp = env.server.get("/version", t)
        assert resp.status_code == 200, env.server.records()[-1]
        assert env.server.records()[-1]["arn"].startswith(ASSUMED)


@pytest.mark.timeout(180)
def test_two_hundred_calls_one_token(eks_env):
    env = eks_env
    tokens = set()
    for i in range(200):
        version = V1 if i % 2 else V1BETA1
        cred = eks_token(env, version)
        assert cred["apiVersion"] == version
        tokens.add(cred["status"]["token"])
    assert len(tokens) == 1, f"{len(tokens)} distinct tokens for one cluster within a token's life"
    st = env.status()
    assert st["counters"]["eks_tokens_minted"] == 1
    assert st["counters"]["assume_role"] == 1
    assert st["counters"]["op_calls"] == 1
    toks = [t for t in st["tokens"] if t["cluster"] == rig.CLUSTER]
    assert len(toks) == 1 and toks[0]["role"] == "admin"
    rig.parse_rfc3339(toks[0]["expiration"])
    assert env.server.get("/version", tokens.pop()).status_code == 200


@pytest.mark.parametrize("api_version", [V1, V1BETA1, None])
def test_exec_credential_api_version_and_expiry(eks_env, api_version):
    env = eks_env
    cred = eks_token(env, api_version)
    assert cred["kind"] == "ExecCredential"
    assert cred["apiVersion"] == (api_version or V1BETA1)
    exp_s = cred["status"]["expirationTimestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", exp_s), exp_s
    exp = rig.parse_rfc3339(exp_s)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert now + datetime.timedelta(minutes=1) < exp <= now + datetime.timedelta(minutes=15), exp_s
    # the token is valid at least until expirationTimestamp: X-Amz-Date + 15 min >= expiry
    signed = datetime.datetime.strptime(rig.token_params(cred["status"]["token"])["X-Amz-Date"],
                                        "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    assert exp <= signed + datetime.timedelta(minutes=15)


def test_cluster_info_from_exec_info(eks_env):
    """kubectl with provideClusterInfo passes spec.cluster; pctl must still answer."""
    env = eks_env
    info = {"kind": "ExecCredential", "apiVersion": V1,
            "spec": {"interactive": False,
                     "cluster": {"server": env.server.url, "config": None}}}
    r = env.ok("eks", "token", "--cluster", rig.CLUSTER, "--role", "admin",
               env={"KUBERNETES_EXEC_INFO": json.dumps(info)})
    assert json.loads(r.stdout)["apiVersion"] == V1


def test_kubeconfig_from_describe_cluster(eks_env, kubectl_bin):
    """Without --endpoint/--ca-file the kubeconfig carries what DescribeCluster returned."""
    env = eks_env
    cluster = env.moto.client("eks").describe_cluster(name=rig.CLUSTER)["cluster"]
    path = os.path.join(env.home, "kc-describe")
    env.ok("kubeconfig", "--cluster", rig.CLUSTER, "--write", path)
    view = env.run_tool([kubectl_bin, "config", "view", "--kubeconfig", path, "--raw", "-o",
                         "json"])
    assert view.returncode == 0, view.stderr
    c = json.loads(view.stdout)["clusters"][0]["cluster"]
    assert c["server"] == cluster["endpoint"]
    assert c["certificate-authority-data"] == cluster["certificateAuthority"]["data"]


def test_concurrent_cold_eks_tokens_mint_once(eks_env):
    env = eks_env
    env.op_state(latency=0.5)
    env.status()  # daemon up, still locked/empty
    procs = [env.popen("eks", "token", "--cluster", rig.CLUSTER) for _ in range(50)]
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=90)
        except Exception:  # noqa: BLE001
            p.kill()
            out, err = p.communicate(timeout=10)
        assert p.returncode == 0, err
        outs.append(json.loads(out)["status"]["token"])
    assert len(set(outs)) == 1
    st = env.status()
    assert st["counters"]["eks_tokens_minted"] == 1
    assert st["counters"]["assume_role"] == 1
    assert st["counters"]["op_calls"] == 1
