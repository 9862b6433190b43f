"""Faults (issue 4): a hanging or failing `op`, an unreachable/throttling/refusing STS,
killed and racing daemons, SIGTERM. The daemon stays up, answers other clients, gives
clear errors in bounded time, and recovers without a new unlock."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import rig
import secutil

ROLES = ("a", "b", "c", "d", "e")


def config_text(op_timeout="20s", command=None, roles=ROLES, extra=""):
    lines = [f'region = "{rig.REGION}"', "", "[daemon]", f'op_timeout = "{op_timeout}"', "",
             "[onepassword]", f'item = "{rig.ITEM_TITLE}"', f'vault = "{rig.VAULT}"']
    if command:
        lines.append(f'command = "{command}"')
    for r in roles:
        lines += ["", f"[roles.{r}]", f'name = "{rig.ROLE_NAME}"', 'duration = "1h"',
                  f'session_name = "pctl-{r}"']
    return "\n".join(lines) + "\n" + extra


def op_item_gets(env):
    return len(env.op_calls("item get"))


def assert_clear_error(r, *words, any_of=()):
    err = r.stderr.strip()
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    assert err.startswith("pctl: ") and len(err.splitlines()) == 1, r.stderr
    low = err.lower()
    for w in words:
        assert w.lower() in low, err
    if any_of:
        assert any(w.lower() in low for w in any_of), err
    return err


def responsive(env, pid, limit=3.0):
    r, took = secutil.timed(env.run, "status", "--json", timeout=30)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["pid"] == pid, "daemon was replaced"
    assert took < limit, f"status took {took:.2f}s"
    return st


# --------------------------------------------------------------------------
# op


@pytest.mark.timeout(90)
def test_op_hang_times_out_without_blocking_others(auth_env):
    env = auth_env
    env.write_config(text=config_text(op_timeout="3s"))
    pid = env.status()["pid"]
    env.op_state(mode="hang")
    t0 = time.monotonic()
    p = env.popen("credential-process", "--role", "a")
    try:
        rig.wait_until(lambda: secutil.op_processes(env.home), timeout=10, what="op running")
        # while op hangs: status, lock-state queries and pings are served promptly
        for _ in range(3):
            st = responsive(env, pid, limit=2.0)
            assert st["locked"]
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    took = time.monotonic() - t0
    r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    assert_clear_error(r, "did not answer within 3s")
    assert took < 10, f"op timeout of 3s took {took:.1f}s to surface"
    # the hung op was killed, not left behind
    rig.wait_until(lambda: not secutil.op_processes(env.home), timeout=5,
                   what="hung op to be killed")
    assert op_item_gets(env) == 1, "a timeout must not be retried"
    responsive(env, pid)
    env.op_state(mode=None)
    env.ok("credential-process", "--role", "a")


EVIL_OPS = {
    # prints a real-looking start (with the secret) then garbage: Malformed, never echoed
    "half-item-with-secret": "printf '{\"fields\":[{\"label\":\"Secret Access Key\",\"value\":\"%s' \"$SECRET\"; printf '\\377\\376 garbage'\n",
    "huge-output": "head -c 50000000 /dev/zero | tr '\\0' A\n",
    "binary-stderr-exit-3": "head -c 4096 /dev/urandom >&2; exit 3\n",
    "killed-by-signal": "kill -9 $$\n",
    "not-json": "echo 'Hello, I am not op'\n",
    "empty-success": "exit 0\n",
    "stdout-closed-lingers": "exec >&-; sleep 600\n",
}


@pytest.mark.timeout(180)
def test_op_failures_leave_daemon_up(auth_env):
    """Every op failure of the reference table, malformed output and hostile `op`
    programs: a one-line error, the daemon keeps its PID and answers, no secret leaks."""
    env = auth_env
    secret = env.ident["secret_access_key"]
    env.write_config(text=config_text(op_timeout="4s"))
    pid = env.status()["pid"]
    rss0 = secutil.rss_kb(pid)
    checks = []

    for mode in ("dismissed", "auth-timeout", "desktop-unreachable", "rate-limited",
                 "malformed", "ambiguous"):
        env.op_state(mode=mode)
        checks.append((mode, env.run("credential-process", "--role", "a", timeout=60)))
    env.op_state(mode=None)

    env.op_state(signed_in=False)
    checks.append(("not signed in", env.run("credential-process", "--role", "a")))
    env.op_state(signed_in=True)

    for key, value in (("item", "No Such Item"), ("vault", "NoVault")):
        txt = config_text(op_timeout="4s").replace(
            f'{key} = "{rig.ITEM_TITLE if key == "item" else rig.VAULT}"', f'{key} = "{value}"')
        env.write_config(text=txt)
        checks.append((f"{key} not found", env.run("credential-process", "--role", "a")))

    evil_dir = os.path.join(env.root, "evil")
    os.makedirs(evil_dir)
    for name, body in EVIL_OPS.items():
        path = os.path.join(evil_dir, name)
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\nSECRET='{secret}'\n{body}")
        os.chmod(path, 0o755)
        env.write_config(text=config_text(op_timeout="4s", command=path))
        r, took = secutil.timed(env.run, "credential-process", "--role", "a", timeout=60)
        assert took < 15, f"{name}: took {took:.1f}s"
        checks.append((name, r))

    for name, r in checks:
        err = assert_clear_error(r)
        assert "[ERROR]" not in err, (name, err)
        assert secret not in err and secret[:12] not in err, f"{name}: secret echoed: {err}"
        responsive(env, pid)

    grown = secutil.rss_kb(pid) - rss0
    assert grown < 50 * 1024, f"RSS grew by {grown} KiB after hostile op output"
    log = open(env.daemon_log, errors="replace").read()
    assert secret not in log and secret[:12] not in log, "secret in daemon.log"
    rig.wait_until(lambda: not secutil.op_processes(env.home), timeout=10,
                   what="no op left running")

    env.write_config(text=config_text())
    env.ok("credential-process", "--role", "a")
    assert env.status()["pid"] == pid


# --------------------------------------------------------------------------
# STS


@pytest.fixture
def own_moto(tmp_path):
    """A moto of this test's own (auth on), so stopping it affects nobody else."""
    m = rig.Moto(str(tmp_path / "moto"), "sec").start()
    try:
        m.identity = rig.setup_identity(m)
        m.set_auth(True)
        yield m
    finally:
        m.stop()


@pytest.fixture
def sts_env(pctl_env, own_moto):
    front = secutil.FaultFront(own_moto.url)
    env = pctl_env(front.url)
    env.write_config(text=config_text())
    ident = own_moto.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"])])
    env.front, env.moto, env.ident = front, own_moto, ident
    yield env
    front.stop()


def cp(env, role, **kw):
    return secutil.timed(env.run, "credential-process", "--role", role, timeout=90, **kw)


@pytest.mark.timeout(150)
def test_sts_unreachable_then_recovers_without_unlock(pctl_env, own_moto):
    m = own_moto
    env = pctl_env(m.url)  # straight at moto: stopping it closes the port
    env.write_config(text=config_text())
    env.op_store([rig.aws_item(m.identity["access_key_id"], m.identity["secret_access_key"])])
    env.ok("unlock")
    first = json.loads(env.ok("credential-process", "--role", "a").stdout)
    pid = env.status()["pid"]

    m.stop()
    r, took = cp(env, "b")
    assert_clear_error(r, "cannot reach aws")
    assert took < 40, f"STS outage surfaced after {took:.1f}s"
    st = responsive(env, pid)
    assert not st["locked"], "an STS outage must not drop the unlock"
    # a cached session keeps being served during the outage
    again = json.loads(env.ok("credential-process", "--role", "a").stdout)
    assert again["AccessKeyId"] == first["AccessKeyId"]

    # STS is back at the same address (a fresh moto without auth accepts the held keys)
    logf = open(os.path.join(m.workdir, "moto-back.log"), "ab")
    back = subprocess.Popen([os.path.join(rig.VENV_BIN, "moto_server"), "-H", "127.0.0.1",
                             "-p", str(m.port)], stdout=logf, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=rig.clean_base_env(),
                            start_new_session=True)
    try:
        def up():
            if back.poll() is not None:
                raise RuntimeError(f"moto did not come back (exit {back.returncode})")
            try:
                rig.http_json("GET", m.url + "/moto-api/data.json", timeout=2)
                return True
            except OSError:
                return False
        rig.wait_until(up, timeout=30, interval=0.2, what="moto back")
        env.ok("credential-process", "--role", "b")
        assert op_item_gets(env) == 1, "recovery needed a new 1Password read"
        st = responsive(env, pid)
        assert st["counters"]["op_calls"] == 1 and not st["locked"]
    finally:
        rig.stop_process(back)
        logf.close()


@pytest.mark.timeout(150)
def test_sts_throttling_bounded_retries(sts_env):
    env, front = sts_env, sts_env.front
    env.ok("unlock")
    pid = env.status()["pid"]

    front.set("throttle", 2)
    r, took = cp(env, "a")
    assert r.returncode == 0, r.stderr
    assert front.answered("AssumeRole") == ["throttle", "throttle", "forward"]

    front.set("throttle", None)
    r, took = cp(env, "b")
    assert_clear_error(r, "throttl")
    attempts = front.answered("AssumeRole")
    assert 2 <= len(attempts) <= 5 and set(attempts) == {"throttle"}, attempts
    assert took < 30, f"always-throttled took {took:.1f}s"
    responsive(env, pid)

    front.set("forward")
    env.ok("credential-process", "--role", "b")
    assert op_item_gets(env) == 1


@pytest.mark.timeout(150)
def test_sts_denied_and_expired_are_clear_and_not_cached(sts_env):
    env, front, m = sts_env, sts_env.front, sts_env.moto
    env.ok("unlock")
    pid = env.status()["pid"]

    front.set("denied")
    r, _ = cp(env, "a")
    assert_clear_error(r, "denied", "trust policy")
    assert front.answered("AssumeRole") == ["denied"], "AccessDenied must not be retried"

    front.set("expired")
    r, _ = cp(env, "a")
    assert_clear_error(r, "expired", "pctl unlock")

    # a real refusal by moto: a role whose trust policy does not name this user. moto
    # wraps this error as <ErrorResponse><Errors><Error> (real STS: no <Errors>), which
    # the Rust SDK cannot parse; pctl reads the code from the raw body.
    m.set_auth(False)
    iam = m.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{rig.ACCOUNT_ID}:user/someone"},
        "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName="untrusted", AssumeRolePolicyDocument=json.dumps(trust))
    m.set_auth(True)
    env.write_config(text=config_text(extra='\n[roles.untrusted]\nname = "untrusted"\n'))
    front.set("forward")
    r, _ = cp(env, "untrusted")
    assert_clear_error(r, "AssumeRole", "denied")

    responsive(env, pid)
    env.ok("credential-process", "--role", "a")  # failures were not cached
    assert op_item_gets(env) == 1


# --------------------------------------------------------------------------
# daemon lifecycle


@pytest.mark.timeout(90)
def test_sigkill_stale_socket_is_replaced(auth_env):
    env = auth_env
    env.ok("unlock")
    old = env.status()["pid"]
    os.kill(old, signal.SIGKILL)
    rig.wait_until(lambda: not secutil.alive(old), timeout=10, what="daemon death")
    assert os.path.exists(env.sock), "expected a stale socket after SIGKILL"
    st = env.status()
    assert st["pid"] != old
    assert st["locked"] and st["lock_reason"] == "never unlocked", st
    assert secutil.daemons_for(env.sock) == [st["pid"]]
    env.ok("credential-process", "--role", "admin")


@pytest.mark.timeout(120)
def test_parallel_autostart_runs_one_daemon(auth_env):
    env = auth_env
    for round_ in range(3):
        procs = [env.popen("status", "--json") for _ in range(10)]
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, f"round {round_}: {err}"
            outs.append(json.loads(out)["pid"])
        assert len(set(outs)) == 1, f"round {round_}: clients saw daemons {set(outs)}"
        pid = outs[0]
        # losers exit; exactly one daemon serves this socket
        rig.wait_until(lambda: secutil.daemons_for(env.sock) == [pid], timeout=10,
                       what=f"one daemon (have {secutil.daemons_for(env.sock)})")
        time.sleep(0.5)
        assert secutil.daemons_for(env.sock) == [pid]
        env.ok("stop")
        rig.wait_until(lambda: not secutil.daemons_for(env.sock), timeout=10,
                       what="daemon stop")
        assert not os.path.exists(env.sock)


def _foreground_daemon(env):
    e = dict(env.env)
    e["PCTL_STATE_DIR"] = env.state_dir
    p = subprocess.Popen([env.bin, "daemon"], env=e, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=env.home)
    rig.wait_until(lambda: os.path.exists(env.sock) or p.poll() is not None, timeout=10,
                   what="daemon socket")
    assert p.poll() is None, p.stderr.read().decode()
    return p


@pytest.mark.timeout(60)
def test_sigterm_clean_shutdown(auth_env):
    env = auth_env
    p = _foreground_daemon(env)
    try:
        env.ok("unlock")
        env.ok("credential-process", "--role", "admin")
        assert env.status()["pid"] == p.pid
        idle = secutil.connect(env.sock)  # an open, silent connection must not delay exit
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=10)
        idle.close()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=5)
    err = p.stderr.read().decode(errors="replace")
    assert rc == 0, f"exit status {rc}: {err}"
    assert "SIGTERM" in err
    assert not os.path.exists(env.sock), "socket left behind"
    assert env.ident["secret_access_key"] not in err


@pytest.mark.timeout(60)
def test_sigterm_while_op_hangs(auth_env):
    env = auth_env
    env.write_config(text=config_text(op_timeout="60s"))
    p = _foreground_daemon(env)
    client = None
    try:
        env.op_state(mode="hang")
        client = env.popen("credential-process", "--role", "a")
        rig.wait_until(lambda: secutil.op_processes(env.home), timeout=10, what="op running")
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=10)
        took = time.monotonic() - t0
        client.communicate(timeout=20)
    finally:
        for q in (p, client):
            if q is not None and q.poll() is None:
                q.kill()
                q.wait(timeout=5)
    assert rc == 0, p.stderr.read().decode(errors="replace")
    assert took < 5, f"shutdown took {took:.1f}s with op pending"
    assert client.returncode == 1
    assert not os.path.exists(env.sock)
    rig.wait_until(lambda: not secutil.op_processes(env.home), timeout=5,
                   what="op killed with the daemon")
