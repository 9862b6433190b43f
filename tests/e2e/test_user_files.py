"""pctl inside the user's own files (issue 9, section 3): the managed block in ~/.aws/config
read by the real `aws` CLI, the YAML merge into ~/.kube/config read by the real `kubectl`
(also from an environment that never ran `pctl shell`), `aws eks get-token` flags on
`pctl eks token`, and `pctl init --from-aws-config`. Bad input leaves files byte-identical."""

import json
import os
import stat
import subprocess

import pytest
import yaml

import rig

ASSUMED = f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/{rig.ROLE_NAME}/"

USER_AWS_CONFIG = """\
# my AWS config: comments, odd spacing and order must survive
[default]
region = eu-west-1
output = json

[profile work]
role_arn = arn:aws:iam::111122223333:role/Work
source_profile = default
s3 =
  max_concurrent_requests = 20
; a semicolon comment
[sso-session corp]
sso_region = us-east-1"""  # no trailing newline on purpose

USER_KUBECONFIG = """\
# kind cluster from work
apiVersion: v1
kind: Config
clusters:
- name: kind-dev
  cluster:
    server: https://127.0.0.1:1
    insecure-skip-tls-verify: true
contexts:
- name: kind-dev
  context: {cluster: kind-dev, user: kind-dev, namespace: web}
current-context: kind-dev
users:
- name: kind-dev
  user:
    token: not-a-real-token
preferences: {}
"""


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def write(path, text, perm=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, perm)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def no_shell_env(env, **extra):
    """The environment of a desktop app or a fresh terminal: never ran `pctl shell`, so no
    PCTL_SOCK and no KUBECONFIG; HOME and XDG_RUNTIME_DIR as a login session has them."""
    e = {k: v for k, v in env.env.items() if k not in ("PCTL_SOCK", "KUBECONFIG", "PCTL_CONFIG")}
    e.update(extra)
    return e


# --------------------------------------------------------------------------
# ~/.aws/config


def test_managed_block_in_aws_config_read_by_aws_cli(auth_env, aws_cli):
    env = auth_env
    cfg = os.path.join(env.home, ".aws", "config")
    write(cfg, USER_AWS_CONFIG, 0o640)
    original = read(cfg)

    r = env.ok("aws-config", "--write")  # no path: ~/.aws/config (AWS_CONFIG_FILE unset)
    after = read(cfg)
    assert after.startswith(original), "bytes before the block must be kept exactly"
    assert after.count(b"# BEGIN pctl") == 1 and after.count(b"# END pctl") == 1
    assert b"[profile pctl-admin]" in after
    assert mode(cfg) == 0o640, oct(mode(cfg))
    backup = cfg + ".pctl-backup"
    assert read(backup) == original
    assert "pctl-backup" in r.stderr

    # idempotent: the second run writes nothing
    r = env.ok("aws-config", "--write")
    assert read(cfg) == after and "up to date" in r.stderr

    # the real aws CLI reads the block from the default location: no AWS_CONFIG_FILE
    aws_env = {"AWS_SHARED_CREDENTIALS_FILE": os.path.join(env.home, "none")}
    r = env.run_tool([aws_cli, "sts", "get-caller-identity", "--profile", "pctl-admin",
                      "--output", "json"], env=aws_env)
    assert r.returncode == 0, r.stderr + env.daemon_log_tail()
    assert json.loads(r.stdout)["Arn"].startswith(ASSUMED)
    # ...and still sees the user's own profiles and settings
    r = env.run_tool([aws_cli, "configure", "get", "region"], env=aws_env)
    assert r.stdout.strip() == "eu-west-1", r.stderr
    r = env.run_tool([aws_cli, "configure", "get", "role_arn", "--profile", "work"], env=aws_env)
    assert r.stdout.strip() == "arn:aws:iam::111122223333:role/Work"

    # a change (a new role) replaces the block in place; the user's text after it stays
    with open(cfg, "ab") as f:
        f.write(b"\n[profile later]\nregion = ap-south-1\n")
    before_change = read(cfg)
    env.write_config(text=open(env.config_path).read()
                     + '\n[roles.ops]\nname = "platform-admin"\nduration = "1h"\n')
    env.ok("aws-config", "--write")
    changed = read(cfg)
    assert changed.startswith(original)
    assert changed.endswith(b"# END pctl\n\n[profile later]\nregion = ap-south-1\n"), changed
    assert b"[profile pctl-ops]" in changed
    assert read(backup) == before_change


def test_aws_config_diff_shows_and_changes_nothing(auth_env):
    env = auth_env
    cfg = os.path.join(env.home, "elsewhere", "aws.cfg")
    write(cfg, USER_AWS_CONFIG)
    original = read(cfg)
    r = env.run("aws-config", "--diff", env={"AWS_CONFIG_FILE": cfg})
    assert r.returncode == 1, r  # as diff(1): 1 when there are changes
    assert r.stdout.startswith(f"--- {cfg}\tnow\n+++ {cfg}\tafter pctl\n"), r.stdout
    added = [line for line in r.stdout.splitlines() if line.startswith("+")]
    assert any(line.startswith("+# BEGIN pctl") for line in added), r.stdout
    assert "+[profile pctl-admin]" in added and "+# END pctl" in added
    assert not [line for line in r.stdout.splitlines()
                if line.startswith("-") and not line.startswith("---")
                and line != "-sso_region = us-east-1"], r.stdout  # only the no-newline line
    assert read(cfg) == original
    assert not os.path.exists(cfg + ".pctl-backup")
    # --diff after a write: empty
    env.ok("aws-config", "--write", cfg)
    r = env.ok("aws-config", "--diff", "--write", cfg)
    assert r.stdout == "" and "up to date" in r.stderr


@pytest.mark.parametrize("text,needles", [
    (USER_AWS_CONFIG + "\n# BEGIN pctl\n[profile pctl-admin]\nregion = x\n",
     ("damaged", "line 14", "no `# end pctl`")),
    ("[default]\n# END pctl\n", ("damaged", "line 2", "no `# begin pctl`")),
    ("# BEGIN pctl\n# END pctl\n# BEGIN pctl\n# END pctl\n", ("damaged", "several")),
    ("[default]\nregion = x\n\n[profile pctl-admin]\nregion = y\n",
     ("line 4", "[profile pctl-admin]", "outside pctl's block", "delete")),
])
def test_damaged_aws_config_is_left_byte_identical(auth_env, text, needles):
    env = auth_env
    cfg = os.path.join(env.home, ".aws", "config")
    write(cfg, text, 0o600)
    original = read(cfg)
    for args in (("aws-config", "--write"), ("aws-config", "--diff")):
        r = env.run(*args)
        rig.assert_pctl_error(r, *needles, "nothing changed")
        assert cfg in r.stderr
        assert read(cfg) == original
        assert mode(cfg) == 0o600
    assert not os.path.exists(cfg + ".pctl-backup")
    assert sorted(os.listdir(os.path.dirname(cfg))) == ["config"], "no temporary files left"


def test_old_pctl_owned_file_is_migrated(auth_env):
    """An AWS_CONFIG_FILE pointing at the file earlier versions owned whole is rewritten as
    one block (it has no markers; all of it was pctl's)."""
    env = auth_env
    old = os.path.join(env.xdg_config, "pctl", "aws-config")
    printed = env.ok("aws-config", "--print").stdout
    write(old, printed)
    env.ok("aws-config", "--write", env={"AWS_CONFIG_FILE": old})
    text = read(old).decode()
    assert text.startswith("# BEGIN pctl") and text.count("[profile pctl-admin]") == 1, text


# --------------------------------------------------------------------------
# ~/.kube/config


@pytest.fixture
def eks_env(pctl_env, moto_open, eks_server):
    env = pctl_env(moto_open.url)
    ident = moto_open.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"])])
    env.moto, env.ident = moto_open, ident
    env.server = eks_server(moto_open.url, moto_open.url)
    env.eks_server_factory = eks_server
    return env


def test_kubeconfig_merge_into_user_yaml_used_by_kubectl_without_pctl_shell(
        eks_env, kubectl_bin, server_cert, pctl_bin):
    env = eks_env
    kc = os.path.join(env.home, ".kube", "config")
    write(kc, USER_KUBECONFIG, 0o600)
    original = read(kc)

    # the rig's PCTL_SOCK is the default location: nothing socket-specific is written
    assert env.sock == os.path.join(env.runtime, "pctl", "pctl.sock")
    r = env.ok("kubeconfig", "--cluster", rig.CLUSTER, "--endpoint", env.server.url,
               "--ca-file", server_cert[0], "--write")  # no path: ~/.kube/config
    assert read(kc + ".pctl-backup") == original
    assert mode(kc) == 0o600
    doc = yaml.safe_load(read(kc))
    assert [c["name"] for c in doc["clusters"]] == ["kind-dev", f"pctl-{rig.CLUSTER}"]
    assert [c["name"] for c in doc["contexts"]] == ["kind-dev", f"pctl-{rig.CLUSTER}"]
    assert [u["name"] for u in doc["users"]] == ["kind-dev", f"pctl-{rig.CLUSTER}"]
    assert doc["current-context"] == "kind-dev", "the user's current context is kept"
    assert doc["contexts"][0]["context"]["namespace"] == "web"
    assert doc["users"][0]["user"]["token"] == "not-a-real-token"
    ex = doc["users"][1]["user"]["exec"]
    assert ex["command"] == pctl_bin and "env" not in ex, ex
    assert "pctl-backup" in r.stderr
    merged = read(kc)

    # idempotent
    r = env.ok("kubeconfig", "--cluster", rig.CLUSTER, "--endpoint", env.server.url,
               "--ca-file", server_cert[0], "--write", kc)
    assert read(kc) == merged and "up to date" in r.stderr

    # kubectl as a desktop app runs it: no PCTL_SOCK, no KUBECONFIG, default socket path
    daemon_pid = env.status()["pid"]
    e = no_shell_env(env)
    view = subprocess.run([kubectl_bin, "config", "get-contexts", "-o", "name"], env=e,
                          capture_output=True, text=True, timeout=60, cwd=env.home)
    assert view.returncode == 0, view.stderr
    assert view.stdout.split() == ["kind-dev", f"pctl-{rig.CLUSTER}"]
    r = subprocess.run([kubectl_bin, "--context", f"pctl-{rig.CLUSTER}", "get", "namespaces"],
                       env=e, capture_output=True, text=True, timeout=60, cwd=env.home)
    assert r.returncode == 0, r.stderr + json.dumps(env.server.records()) + env.daemon_log_tail()
    assert "kube-system" in r.stdout
    recs = env.server.records()
    assert recs and all(x["ok"] and x["arn"].startswith(ASSUMED) for x in recs), recs
    st = env.status()
    assert st["pid"] == daemon_pid, "kubectl's pctl must have found the running daemon"
    assert st["counters"]["eks_tokens_minted"] == 1


@pytest.mark.parametrize("text,needle", [
    ("clusters: [unclosed\n  - a: b\n", "cannot parse it as YAML"),
    ("apiVersion: v1\n\tkind: Config\n", "cannot parse it as YAML"),
    ("- a\n- list\n", "not a mapping"),
    ("apiVersion: v1\nclusters: {a: 1}\n", "`clusters` is not a list"),
])
def test_unparsable_kubeconfig_is_left_byte_identical(eks_env, server_cert, text, needle):
    env = eks_env
    kc = os.path.join(env.home, ".kube", "config")
    write(kc, text, 0o640)
    original = read(kc)
    r = env.run("kubeconfig", "--cluster", rig.CLUSTER, "--endpoint", env.server.url,
                "--ca-file", server_cert[0], "--write", kc)
    rig.assert_pctl_error(r, needle, "nothing changed", kc)
    assert read(kc) == original and mode(kc) == 0o640
    assert sorted(os.listdir(os.path.dirname(kc))) == ["config"]


def test_kubeconfig_diff_changes_nothing(eks_env, server_cert):
    env = eks_env
    kc = os.path.join(env.home, ".kube", "config")
    write(kc, USER_KUBECONFIG)
    r = env.run("kubeconfig", "--cluster", rig.CLUSTER, "--endpoint", env.server.url,
                "--ca-file", server_cert[0], "--write", "--diff")
    assert r.returncode == 1, r  # as diff(1): 1 when there are changes
    assert f"+- name: pctl-{rig.CLUSTER}" in r.stdout, r.stdout
    assert read(kc) == USER_KUBECONFIG.encode()


# --------------------------------------------------------------------------
# aws eks get-token compatibility


def test_update_kubeconfig_switches_by_changing_only_command(eks_env, aws_cli, kubectl_bin,
                                                             server_cert, pctl_bin):
    """`aws eks update-kubeconfig` (the real CLI, against moto) writes the kubeconfig; only
    `command: aws` becomes pctl, and real kubectl works through the daemon."""
    env = eks_env
    kc = os.path.join(env.home, ".kube", "config")
    aws_env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": rig.REGION, "KUBECONFIG": kc}
    r = env.run_tool([aws_cli, "eks", "update-kubeconfig", "--name", rig.CLUSTER,
                      "--role-arn", env.ident["role_arn"], "--kubeconfig", kc], env=aws_env)
    assert r.returncode == 0, r.stderr
    r = env.run_tool([kubectl_bin, "config", "set-cluster", f"arn:aws:eks:{rig.REGION}:"
                      f"{rig.ACCOUNT_ID}:cluster/{rig.CLUSTER}", "--server", env.server.url,
                      "--certificate-authority", server_cert[0], "--embed-certs"],
                     env={"KUBECONFIG": kc})
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(read(kc))
    ex = doc["users"][0]["user"]["exec"]
    assert ex["command"] == "aws" and "get-token" in ex["args"], ex
    # the CLI writes `--role ARN` (argparse's abbreviation of get-token's --role-arn)
    assert ex["args"][ex["args"].index("--role") + 1] == env.ident["role_arn"], ex
    ex["command"] = pctl_bin  # the only edit
    with open(kc, "w") as f:
        yaml.safe_dump(doc, f)

    r = subprocess.run([kubectl_bin, "get", "namespaces"], env=no_shell_env(env),
                       capture_output=True, text=True, timeout=60, cwd=env.home)
    assert r.returncode == 0, r.stderr + json.dumps(env.server.records()) + env.daemon_log_tail()
    assert "kube-system" in r.stdout
    recs = env.server.records()
    assert recs and all(x["ok"] and x["arn"].startswith(ASSUMED) for x in recs), recs
    assert env.status()["counters"]["eks_tokens_minted"] == 1


def test_get_token_flags_resolve_and_refuse_clearly(eks_env):
    env = eks_env
    out = json.loads(env.ok("--region", rig.REGION, "eks", "get-token", "--cluster-name",
                            rig.CLUSTER, "--output", "json").stdout)
    assert out["kind"] == "ExecCredential" and out["status"]["token"].startswith("k8s-aws-v1.")
    plain = json.loads(env.ok("eks", "token", "--cluster", rig.CLUSTER).stdout)
    assert plain["status"]["token"] == out["status"]["token"], "same cached token"

    r = env.run("eks", "token", "--cluster-name", "nope", "--region", rig.REGION)
    rig.assert_pctl_error(r, '"nope" is not in', "[clusters.nope]", env.config_path)
    r = env.run("eks", "token", "--cluster-name", rig.CLUSTER, "--region", "eu-west-1")
    rig.assert_pctl_error(r, "only in another region")
    r = env.run("eks", "token", "--cluster-name", rig.CLUSTER, "--role-arn",
                f"arn:aws:iam::{rig.ACCOUNT_ID}:role/somebody-else")
    rig.assert_pctl_error(r, "no role in", "somebody-else", "add [roles.")
    r = env.run("eks", "token", "--cluster", rig.CLUSTER, "--output", "yaml")
    assert r.returncode == 2 and "yaml" in r.stderr


def test_role_arn_for_a_cluster_not_in_the_config_with_real_kubectl(eks_env, kubectl_bin,
                                                                     server_cert, pctl_bin):
    """`aws eks get-token`'s three flags name a cluster pctl's config does not list: the
    daemon assumes that role ARN and mints for that cluster name and region; the API server
    (checking the token's x-k8s-aws-id) accepts it, and the token is cached like any other."""
    env = eks_env
    iam = env.moto.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": env.ident["user_arn"]},
        "Action": "sts:AssumeRole"}]}
    try:
        arn = iam.create_role(RoleName="adhoc-reader",
                              AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName="adhoc-reader")["Role"]["Arn"]
    server = env.server = eks_server_for(env, "elsewhere")
    kc = os.path.join(env.home, ".kube", "config")
    write(kc, yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "elsewhere",
        "clusters": [{"name": "elsewhere", "cluster": {
            "server": server.url, "certificate-authority": server_cert[0]}}],
        "contexts": [{"name": "elsewhere",
                      "context": {"cluster": "elsewhere", "user": "elsewhere"}}],
        "users": [{"name": "elsewhere", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1", "command": pctl_bin,
            "args": ["--region", rig.REGION, "eks", "get-token", "--cluster-name", "elsewhere",
                     "--output", "json", "--role-arn", arn],
            "interactiveMode": "Never"}}}]}), 0o600)
    for _ in range(2):
        r = subprocess.run([kubectl_bin, "get", "namespaces"], env=no_shell_env(env),
                           capture_output=True, text=True, timeout=60, cwd=env.home)
        assert r.returncode == 0, r.stderr + json.dumps(server.records()) + env.daemon_log_tail()
        assert "kube-system" in r.stdout
    recs = server.records()
    want = f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/adhoc-reader/"
    assert recs and all(x["ok"] and x["arn"].startswith(want) for x in recs), recs
    st = env.status()
    assert st["counters"]["eks_tokens_minted"] == 1, "the second kubectl reuses the token"
    assert any(x.get("cluster") == "elsewhere" and x.get("role") == arn for x in st["recent"]), \
        st["recent"]

    # what the daemon refuses, one clear line each
    r = env.run("eks", "token", "--cluster-name", "elsewhere", "--region", rig.REGION,
                "--role-arn", "reader")
    rig.assert_pctl_error(r, "--role-arn", "is not a role ARN")
    r = env.run("eks", "token", "--cluster-name", "else/where", "--region", rig.REGION,
                "--role-arn", arn)
    rig.assert_pctl_error(r, "is not an EKS cluster name")
    r = env.run("eks", "token", "--cluster-name", "elsewhere", "--region", "Mars",
                "--role-arn", arn)
    rig.assert_pctl_error(r, "--region", "is not an AWS region name")


def eks_server_for(env, cluster):
    """A second test API server that accepts tokens for `cluster` only."""
    return env.eks_server_factory(env.moto.url, env.moto.url, cluster)


# --------------------------------------------------------------------------
# pctl init --from-aws-config


def test_init_imports_assume_role_profiles(auth_env):
    env = auth_env
    # a first config with the 1Password item and no roles yet
    env.write_config(text=f'region = "{rig.REGION}"\n\n[onepassword]\nitem = "{rig.ITEM_TITLE}"\n'
                          f'vault = "{rig.VAULT}"\n')
    aws_cfg = os.path.join(env.home, ".aws", "config")
    write(aws_cfg, USER_AWS_CONFIG + f"""

[profile ops]
role_arn = {env.ident['role_arn']}
source_profile = default
mfa_serial = arn:aws:iam::{rig.ACCOUNT_ID}:mfa/me
duration_seconds = 1800
""")
    before = read(env.config_path)
    r = env.ok("init", "--from-aws-config")  # no path: ~/.aws/config
    assert read(env.config_path) == before, "without --write nothing is written"
    assert "[roles.work]" in r.stdout and "[roles.ops]" in r.stdout
    assert 'duration = "30m"' in r.stdout
    assert "mfa" in r.stderr.lower()
    r = env.run("credential-process", "--role", "ops")
    assert r.returncode == 1 and "ops" in r.stderr, "not a role before the import"

    env.ok("init", "--from-aws-config", aws_cfg, "--write")
    after = read(env.config_path)
    assert after.startswith(before), "existing config kept byte for byte"
    assert read(env.config_path + ".pctl-backup") == before
    # a second import adds nothing
    r = env.ok("init", "--from-aws-config", aws_cfg, "--write")
    assert read(env.config_path) == after
    assert "already configured" in r.stderr and "nothing to import" in r.stderr

    # the daemon uses the imported role (moto in auth mode: a real AssumeRole)
    cp = json.loads(env.ok("credential-process", "--role", "ops").stdout)
    sts = env.moto.client("sts", cp["AccessKeyId"], cp["SecretAccessKey"], cp["SessionToken"])
    assert sts.get_caller_identity()["Arn"].startswith(ASSUMED)


def test_init_refuses_unparsable_pctl_config(auth_env):
    env = auth_env
    aws_cfg = os.path.join(env.home, ".aws", "config")
    write(aws_cfg, USER_AWS_CONFIG)
    write(env.config_path, "region = \n[roles\n", 0o600)
    before = read(env.config_path)
    r = env.run("init", "--from-aws-config", aws_cfg, "--write")
    rig.assert_pctl_error(r, "cannot read pctl's config", env.config_path)
    assert read(env.config_path) == before
