"""No secret ever lands on disk; `pctl shell` prints pointers only (issue 2)."""

import json
import os
import subprocess

import pytest

import mfa_rig
import rig



@pytest.fixture
def flow_env(pctl_env, moto_open, eks_server, recording_proxy):
    proxy = recording_proxy(moto_open.url)
    env = pctl_env(proxy.url)
    ident = moto_open.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"],
                               mfa_serial=rig.MFA_SERIAL, totp_seed=rig.TOTP_SEED)])
    env.moto, env.ident, env.proxy = moto_open, ident, proxy
    env.server = eks_server(moto_open.url, proxy.url)
    return env


def secrets_for(env, captured):
    s = {"IAM secret key": env.ident["secret_access_key"], "TOTP seed": rig.TOTP_SEED,
         "moto GetSessionToken secret": rig.MOTO_GST_SECRET}
    s.update(env.moto.secrets())  # every session secret/token moto ever issued
    s.update(captured)
    return s


def totp_codes(env):
    return sorted({rig.totp(rig.TOTP_SEED, at=c["ts"] + d) for c in env.op_calls()
                   for d in (0, 1.0)})


@pytest.mark.timeout(180)
def test_no_secret_on_disk_after_full_flow(flow_env, aws_cli, kubectl_bin, server_cert):
    env = flow_env
    captured = {}
    env.ok("unlock")
    cp = json.loads(env.ok("credential-process", "--role", "admin").stdout)
    captured["session secret (credential-process)"] = cp["SecretAccessKey"]
    captured["session token (credential-process)"] = cp["SessionToken"]
    env.ok("env", "--role", "admin")
    env.ok("exec", "--role", "admin", "--", "true")
    cfg = os.path.join(env.home, ".aws", "config")
    os.makedirs(os.path.dirname(cfg), exist_ok=True)
    env.ok("aws-config", "--write", cfg)
    r = env.run_tool([aws_cli, "sts", "get-caller-identity", "--profile", "pctl-admin"],
                     env={"AWS_CONFIG_FILE": cfg})
    assert r.returncode == 0, r.stderr
    tok = json.loads(env.ok("eks", "token", "--cluster", rig.CLUSTER).stdout)["status"]["token"]
    captured["EKS token"] = tok
    env.ok("kubeconfig", "--cluster", rig.CLUSTER, "--endpoint", env.server.url,
           "--ca-file", server_cert[0])
    kc = os.path.join(env.xdg_config, "pctl", "kubeconfig")
    r = env.run_tool([kubectl_bin, "get", "namespaces"], env={"KUBECONFIG": kc}, timeout=60)
    assert r.returncode == 0, r.stderr + json.dumps(env.server.records())
    shell_out = env.ok("shell").stdout
    env.ok("status", "--json")
    # lock, then unlock: in the same TOTP step the daemon waits for the next code (the
    # wait and what it logs are scanned below; the unlock is not waited for)
    if mfa_rig.relock(env, env.proxy) == "done":
        env.ok("credential-process", "--role", "admin")

    secrets = secrets_for(env, captured)
    codes = totp_codes(env)
    assert codes, "op was never called?"
    gst = env.proxy.actions("GetSessionToken")
    assert gst, "MFA path not exercised"

    for text, where in ((shell_out, "pctl shell output"),):
        for label, val in secrets.items():
            assert val not in text, f"{label} in {where}"

    assert os.path.exists(env.daemon_log), "daemon.log should exist for an auto-started daemon"
    hits = rig.scan_tree_for(
        [env.root], secrets, exclude=[os.path.join(env.home, ".op-fake")], numeric_codes=codes)
    assert not hits, "secrets found on disk:\n" + "\n".join(f"{p}: {l}" for p, l in hits)
    # the daemon's log specifically (also covered above)
    log = open(env.daemon_log, errors="replace").read()
    for label, val in secrets.items():
        assert val not in log, f"{label} in daemon.log"


def test_shell_exports_pointers_only(auth_env):
    env = auth_env
    cp = json.loads(env.ok("credential-process", "--role", "admin").stdout)
    out = env.ok("shell").stdout
    assert "PCTL_SOCK" in out and env.sock in out
    for val in (cp["SecretAccessKey"], cp["SessionToken"], cp["AccessKeyId"],
                env.ident["secret_access_key"], env.ident["access_key_id"]):
        assert val not in out
    assert "AWS_SECRET_ACCESS_KEY" not in out and "AWS_SESSION_TOKEN" not in out
    kc = os.path.join(env.xdg_config, "pctl", "kubeconfig")
    assert kc in out, "KUBECONFIG should include pctl's kubeconfig"

    script = 'eval "$("$PCTL_BIN_UNDER_TEST" shell --profile admin)" && ' \
             'printf "%s\\n%s\\n%s\\n" "$PCTL_SOCK" "$AWS_PROFILE" "$KUBECONFIG" && ' \
             '"$PCTL_BIN_UNDER_TEST" status --json'
    e = dict(env.env)
    # No PCTL_SOCK: `pctl shell` finds the daemon at the default path (same as env.sock
    # here, under XDG_RUNTIME_DIR) and tells the shell where it is.
    e.pop("PCTL_SOCK")
    e["PCTL_BIN_UNDER_TEST"] = env.bin
    r = subprocess.run(["bash", "-c", script], env=e, capture_output=True, text=True, timeout=60,
                       cwd=env.home)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == env.sock
    assert lines[1] == "pctl-admin"
    assert kc in lines[2].split(":")
    assert os.path.join(env.home, ".kube", "config") in lines[2].split(":")
    st = json.loads("\n".join(lines[3:]))
    assert st["locked"] is False


def test_shell_fish_and_zsh_syntax(auth_env):
    env = auth_env
    fish = env.ok("shell", "--shell", "fish").stdout
    assert "PCTL_SOCK" in fish and ("set -gx" in fish or "set -x" in fish)
    zsh = env.ok("shell", "--shell", "zsh").stdout
    assert "export PCTL_SOCK=" in zsh


def test_shell_keeps_existing_kubeconfig(auth_env):
    env = auth_env
    mine = os.path.join(env.home, "work-kubeconfig")
    out = env.ok("shell", env={"KUBECONFIG": mine}).stdout
    r = subprocess.run(["bash", "-c", 'eval "$1" && printf "%s" "$KUBECONFIG"', "_", out],
                       env={"PATH": env.env["PATH"], "KUBECONFIG": mine}, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    parts = r.stdout.split(":")
    assert mine in parts
    assert os.path.join(env.xdg_config, "pctl", "kubeconfig") in parts
