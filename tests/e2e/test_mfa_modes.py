"""Where the MFA code comes from, per identity (issue 10 §2), end to end against moto and
the `op` stand-in: the item's one-time password ("item"), a code typed on the terminal of
the client that triggered the unlock ("prompt", through a real terminal in tmux), and a
command's output ("process", run without a shell). A client without a terminal (kubectl's
exec plugin) gets one line telling the user to run `pctl unlock`.

moto accepts any MFA code without auth, so the code that reached STS is read at the
recording proxy.
"""

import base64
import json
import os
import shlex
import shutil
import subprocess
import time

import pytest

import desktop_rig
import rig

PROCESS_CODE = "246810"


def config_text(env, mfa_lines, op_timeout="20s"):
    return rig.config_text(op_timeout=op_timeout, add={"onepassword": mfa_lines})


@pytest.fixture
def mfa_env(pctl_env, moto_open, recording_proxy):
    """An item with the MFA serial but NO one-time password field (the device is elsewhere)."""
    return desktop_rig.proxied_env(pctl_env, moto_open, recording_proxy,
                                   mfa_serial=rig.MFA_SERIAL)


sent_codes = desktop_rig.sent_codes


def test_item_mode_sends_the_items_code(pctl_env, moto_open, recording_proxy):
    env = desktop_rig.proxied_env(pctl_env, moto_open, recording_proxy,
                                  mfa_serial=rig.MFA_SERIAL, totp_seed=rig.TOTP_SEED)
    proxy = env.proxy
    env.write_config(text=config_text(env, 'mfa = "item"'))
    env.ok("credential-process", "--role", "admin")
    codes = [a["params"].get("TokenCode") for a in proxy.actions("GetSessionToken")]
    ts = proxy.actions("GetSessionToken")[0]["ts"]
    assert len(codes) == 1 and codes[0] in {rig.totp(rig.TOTP_SEED, at=ts + d) for d in (-30, 0)}


def test_process_mode_runs_the_command_without_a_shell(mfa_env, tmp_path):
    env = mfa_env
    marker = tmp_path / "shell-ran"
    script = tmp_path / "fake-ykman"
    # prints like `ykman oath accounts code`: NAME, spaces, code; logs its argv
    script.write_text("#!/usr/bin/env python3\nimport sys, json\n"
                      f"open({str(tmp_path / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
                      f"print('AWS:operator  {PROCESS_CODE}')\n")
    script.chmod(0o700)
    argv = [str(script), "oath", "accounts", "code", "-s", f"; touch {marker}"]
    env.write_config(text=config_text(env, f'mfa = "process"\nmfa_command = {json.dumps(argv)}'))
    out = json.loads(env.ok("credential-process", "--role", "admin").stdout)
    assert out["AccessKeyId"]
    assert sent_codes(env) == [PROCESS_CODE]
    assert json.loads((tmp_path / "argv.json").read_text()) == argv[1:]
    assert not marker.exists(), "mfa_command went through a shell"
    st = env.status()
    assert st["identities"][0]["mfa"] == "process"
    assert st["mfa_session_expires"]
    assert PROCESS_CODE not in open(env.daemon_log).read()


def test_process_mode_timeout_is_one_clear_line(mfa_env, tmp_path):
    env = mfa_env
    env.write_config(text=config_text(
        env, 'mfa = "process"\nmfa_command = ["sleep", "30"]', op_timeout="2s"))
    t0 = time.monotonic()
    r = env.run("credential-process", "--role", "admin", timeout=60)
    assert r.returncode != 0
    assert "mfa_command" in r.stderr and "within 2s" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 25, "the command was not stopped at op_timeout"
    assert sent_codes(env) == []


def test_prompt_without_a_terminal_kubectl_gets_one_line(mfa_env, kubectl_bin, eks_server,
                                                         server_cert, moto_open):
    env = mfa_env
    env.write_config(text=config_text(env, 'mfa = "prompt"'))
    server = eks_server(moto_open.url, moto_open.url)
    kc = os.path.join(env.home, ".kube", "pctl-e2e")
    os.makedirs(os.path.dirname(kc), exist_ok=True)
    # what `pctl kubeconfig` writes (written by hand here: that command needs the unlock)
    with open(server_cert[0], "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    with open(kc, "w") as f:
        json.dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "p",
            "clusters": [{"name": "p", "cluster": {"server": server.url,
                                                   "certificate-authority-data": ca}}],
            "contexts": [{"name": "p", "context": {"cluster": "p", "user": "p"}}],
            "users": [{"name": "p", "user": {"exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1", "command": env.bin,
                "args": ["eks", "token", "--cluster", rig.CLUSTER, "--role", "admin"],
                "interactiveMode": "IfAvailable"}}}],
        }, f)
    e = dict(env.env, KUBECONFIG=kc)
    # a new session: no controlling terminal, like kubectl run by an IDE or CI
    r = subprocess.run([kubectl_bin, "get", "--raw", "/version"], env=e, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=env.home,
                       start_new_session=True)
    assert r.returncode != 0
    assert "pctl unlock --identity default" in r.stderr, r.stderr
    assert sent_codes(env) == []
    assert env.op_calls("item get") == [], "no 1Password read before a code is typed"


def tmux_or_skip():
    path = shutil.which("tmux")
    if not path:
        pytest.fail("tmux not found: run tests/setup.sh (installs it)", pytrace=False)
    return path


def test_prompt_through_a_real_terminal(mfa_env, tmp_path):
    tmux = tmux_or_skip()
    env = mfa_env
    env.write_config(text=config_text(env, 'mfa = "prompt"'))
    sock = os.path.join(env.root, "tmux.sock")
    out, err, rc = (os.path.join(env.root, n) for n in ("out.json", "err.txt", "rc"))
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.env.items())
    cmd = (f"env -i {exports} {shlex.quote(env.bin)} credential-process --role admin "
           f"> {out} 2> {err}; echo $? > {rc}")
    base = [tmux, "-S", sock]
    subprocess.run(base + ["new-session", "-d", "-s", "pctl", "-x", "160", "-y", "20", cmd],
                   check=True, timeout=30, env={"PATH": os.environ["PATH"], "TERM": "xterm"})
    try:
        def screen():
            return subprocess.run(base + ["capture-pane", "-p", "-t", "pctl"],
                                  capture_output=True, text=True, timeout=10).stdout

        rig.wait_until(lambda: "MFA code for identity default" in screen(), timeout=30,
                       what="the MFA prompt on the terminal")
        code = "135790"
        subprocess.run(base + ["send-keys", "-t", "pctl", code, "Enter"], check=True, timeout=10)
        rig.wait_until(lambda: os.path.exists(rc) and open(rc).read().strip(), timeout=60,
                       what="credential-process to finish")
        assert open(rc).read().strip() == "0", open(err).read() + env.daemon_log_tail()
        assert json.load(open(out))["AccessKeyId"]
        assert code not in screen(), "the code was echoed"
    finally:
        subprocess.run(base + ["kill-server"], capture_output=True, timeout=10)
    assert sent_codes(env) == [code]
    assert len(env.op_calls("item get")) == 1
    # the code was used once and is in no file pctl wrote
    hits = rig.scan_tree_for([env.root], {}, exclude=[out, err], numeric_codes=[code])
    assert hits == [], hits
    # a second request is served from the unlocked identity: no new prompt
    env.ok("credential-process", "--role", "admin")
    assert sent_codes(env) == [code]


def test_prompt_unlock_asks_again_after_a_mistyped_code(mfa_env):
    """`pctl unlock --identity default` in a terminal: a code that is not 6 digits is refused
    by the daemon (nothing sent to STS) and the client asks again; the second code is used."""
    tmux = tmux_or_skip()
    env = mfa_env
    env.write_config(text=config_text(env, 'mfa = "prompt"'))
    # without a terminal: the one line, nothing read or sent
    r = env.run("unlock", "--identity", "default", env={}, timeout=60)
    assert r.returncode != 0 and "pctl unlock --identity default" in r.stderr, r.stderr
    sock = os.path.join(env.root, "tmux.sock")
    err, rc = (os.path.join(env.root, n) for n in ("err.txt", "rc"))
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.env.items())
    cmd = (f"env -i {exports} {shlex.quote(env.bin)} unlock --identity default "
           f"2> {err}; echo $? > {rc}")
    base = [tmux, "-S", sock]
    subprocess.run(base + ["new-session", "-d", "-s", "pctl", "-x", "200", "-y", "20", cmd],
                   check=True, timeout=30, env={"PATH": os.environ["PATH"], "TERM": "xterm"})
    try:
        def screen():
            return subprocess.run(base + ["capture-pane", "-p", "-t", "pctl"],
                                  capture_output=True, text=True, timeout=10).stdout

        def prompts():
            return screen().count("MFA code for identity default")

        rig.wait_until(lambda: prompts() == 1, timeout=30, what="the first prompt")
        subprocess.run(base + ["send-keys", "-t", "pctl", "12ab", "Enter"], check=True, timeout=10)
        rig.wait_until(lambda: prompts() == 2, timeout=30, what="the second prompt")
        subprocess.run(base + ["send-keys", "-t", "pctl", "975310", "Enter"], check=True,
                       timeout=10)
        rig.wait_until(lambda: os.path.exists(rc) and open(rc).read().strip(), timeout=60,
                       what="pctl unlock to finish")
        assert open(rc).read().strip() == "0", open(err).read() + env.daemon_log_tail()
    finally:
        subprocess.run(base + ["kill-server"], capture_output=True, timeout=10)
    assert "the code must be 6 digits" in open(err).read()
    assert sent_codes(env) == ["975310"]
    assert len(env.op_calls("item get")) == 1
    st = env.status()
    assert not st["locked"] and st["identities"][0]["mfa"] == "prompt"
