"""A request that goes away does not cancel the unlock it started (issue 15 §6), and the
daemon, not the client, resolves `aws eks get-token`'s flags (issue 15 §7).

Real peers: botocore's container credential provider (its own 2 s timeout and retries)
against `pctl exec --server`, the `op` stand-in with a 2.5 s latency, moto with IAM
authentication on; for EKS, the TLS test API server that verifies tokens the way EKS does,
used by real kubectl.
"""

import json
import os
import signal
import sys
import textwrap

import rig

ROLE_ARN_PREFIX = f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/{rig.ROLE_NAME}/"
OP_LATENCY = 2.5  # longer than botocore's 2 s container-metadata timeout


def config(idle_lock="15m"):
    return rig.config_text(idle_lock=idle_lock)


def audited_unlocks(env):
    audit = rig.read_jsonl(os.path.join(env.state_dir, "audit.log"))
    return len([a for a in audit if a["issued"] == "unlock"])


# A job under `pctl exec --server` that waits for the test's go-ahead (the daemon has
# idle-locked meanwhile), then makes one boto3 call. It reports the ARN and how many
# times botocore's container provider gave up on a fetch and retried.
BOTO3_JOB = """
    import json, logging, os, sys, time, boto3
    retries = []
    class Count(logging.Handler):
        def emit(self, record):
            if "retrieve container metadata" in record.getMessage():
                retries.append(record.getMessage())
    log = logging.getLogger("botocore.utils")
    log.setLevel(logging.DEBUG)
    log.addHandler(Count())
    go = sys.argv[1]
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.05)
    arn = boto3.client("sts").get_caller_identity()["Arn"]
    print(json.dumps({"arn": arn, "retries": len(retries)}), flush=True)
"""


def test_botocore_retry_joins_the_unlock_its_first_try_started(auth_env):
    """The endpoint must unlock first (idle lock during a long job) and `op` takes longer
    than botocore's timeout: the first fetch is dropped, the unlock goes on, botocore's
    retry joins it, and boto3 gets credentials from ONE `op item get`."""
    env = auth_env
    # idle_lock's floor: the status polls below lock the daemon (every request checks
    # the limits first) about a second after exec's unlock; the idle timer itself is
    # proven on paused time (crates/pctl-broker/tests/broker.rs) and end to end in
    # tests/e2e/test_lifecycle.py
    env.write_config(text=config(idle_lock="1s"))
    go = os.path.join(env.root, "go")
    p = env.popen("exec", "--server", "--role", "admin", "--", sys.executable, "-c",
                  textwrap.dedent(BOTO3_JOB), go)
    try:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
        reads_before = len(env.op_calls("item get"))
        assert reads_before == 1, env.op_calls()  # the unlock `exec --server` started with
        env.op_state(latency=OP_LATENCY)
        rig.wait_until(lambda: env.status()["locked"], timeout=15, interval=0.02,
                       what="idle lock")
        # the unlock the endpoint starts takes this config's idle lock (15m): botocore's
        # retry comes a second after its 2 s timeout, and must find it unlocked
        env.write_config(text=config())
        open(go, "w").close()
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err + env.daemon_log_tail()
    res = json.loads(out.strip().splitlines()[-1])
    assert res["arn"].startswith(ROLE_ARN_PREFIX), res
    assert res["retries"] >= 1, "botocore's first fetch should have timed out: " + err
    assert len(env.op_calls("item get")) == reads_before + 1, env.op_calls("item get")
    assert audited_unlocks(env) == 2, "one unlock at the start, one for the retry"


def test_a_client_killed_mid_unlock_leaves_the_unlock_to_the_next_one(auth_env):
    """A Unix-socket client killed while the daemon reads 1Password for it: the read goes
    on, the next client gets its credentials from it, one `op item get` in total."""
    env = auth_env
    env.op_state(latency=OP_LATENCY)
    p = env.popen("credential-process", "--role", "admin", start_new_session=True)
    try:
        rig.wait_until(lambda: env.op_calls("item get"), timeout=15, what="op item get started")
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    cp = json.loads(env.ok("credential-process", "--role", "admin").stdout)
    assert cp["AccessKeyId"].startswith("ASIA")
    assert len(env.op_calls("item get")) == 1, env.op_calls("item get")
    assert audited_unlocks(env) == 1


# ---------------------------------------------------------------------------------------
# `pctl eks token --cluster-name` for a cluster defined only in an included file

TEAM = f"""\
[clusters.team]
name = "{rig.CLUSTER}"
role = "admin"
"""


def included_cluster_env(pctl_env, moto_open, eks_server):
    env = pctl_env(moto_open.url)
    ident = moto_open.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"])])
    main = config().split(f"[clusters.{rig.CLUSTER}]")[0]
    env.write_config(text='include = ["team.toml"]\n' + main)
    with open(os.path.join(os.path.dirname(env.config_path), "team.toml"), "w") as f:
        f.write(TEAM)
    env.server = eks_server(moto_open.url, moto_open.url)
    return env


def test_cluster_name_from_an_included_file(pctl_env, moto_open, eks_server, kubectl_bin,
                                            server_cert, pctl_bin):
    env = included_cluster_env(pctl_env, moto_open, eks_server)
    r = env.ok("eks", "token", "--cluster-name", rig.CLUSTER, "--region", rig.REGION)
    tok = json.loads(r.stdout)["status"]["token"]
    assert env.server.get("/version", tok).status_code == 200, env.server.records()
    # the way a kubeconfig from `aws eks update-kubeconfig` calls it, with `command: pctl`
    kc = os.path.join(env.home, ".kube", "from-aws")
    os.makedirs(os.path.dirname(kc), exist_ok=True)
    with open(kc, "w") as f:
        f.write(textwrap.dedent(f"""\
            apiVersion: v1
            kind: Config
            clusters:
            - name: eks
              cluster:
                server: {env.server.url}
                certificate-authority: {server_cert[0]}
            users:
            - name: eks
              user:
                exec:
                  apiVersion: client.authentication.k8s.io/v1beta1
                  command: {pctl_bin}
                  args: ["--region", "{rig.REGION}", "eks", "get-token",
                         "--cluster-name", "{rig.CLUSTER}", "--output", "json"]
                  interactiveMode: Never
            contexts:
            - name: eks
              context: {{cluster: eks, user: eks}}
            current-context: eks
            """))
    r = env.run_tool([kubectl_bin, "get", "--raw", "/version"], env={"KUBECONFIG": kc},
                     timeout=60)
    assert r.returncode == 0, r.stderr + json.dumps(env.server.records()) + env.daemon_log_tail()
    assert json.loads(r.stdout)["gitVersion"]
    audit = rig.read_jsonl(os.path.join(env.state_dir, "audit.log"))
    assert any(a["issued"] == "eks_token" and a["cluster"] == "team" for a in audit), audit


def test_unknown_cluster_name_is_refused_by_the_daemon_naming_the_includes(
        pctl_env, moto_open, eks_server):
    env = included_cluster_env(pctl_env, moto_open, eks_server)
    r = env.run("eks", "token", "--cluster-name", "nowhere")
    rig.assert_pctl_error(r, "nowhere", "or its includes", "--role-arn")
