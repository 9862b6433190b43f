"""Memory claims (issue 4): secrets live only in locked, non-dumpable memory and are
gone from the daemon's address space after `pctl lock`.

The scan reads every readable mapping of the daemon through /proc/PID/mem as root
(the daemon is non-dumpable, so only CAP_SYS_PTRACE gets in); before `lock` it must
find the secrets, which proves the scan sees the memory that holds them.
"""

import json
import os
import re
import subprocess
import threading
import time

import pytest

import rig
import secutil

# moto's GetSessionToken always returns these example credentials (the MFA base session)
MOTO_GST_TOKEN = ("AQoEXAMPLEH4aoAH0gNCAPyJxz4BlCFFxWNE1OPTgk5TthT+FvwqnKwRcOIfrRh3c/LTo6UDdyJwOOvEVPv"
                  "LXCrrrUtdnniCEXAMPLE/IvU1dYUg2RVAJBanLiHb4IgRmpRV3zrkuWJOgQs8IZZaIv2BXIa2R4Olg"
                  "kBN9bkUDNCJiBeb/AXlzBBko7b15fjrBs2+cTQtpZ3CYWFXG8C5zqx37wnOE49mRl/+OtkIKGO7fAE")

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="reading another process's memory needs root "
                                       "(CAP_SYS_PTRACE): the daemon is non-dumpable")


def _exercise(env, describe=False, unlock=True):
    """unlock, sessions, tokens; returns the secrets a client was handed."""
    if unlock:
        env.ok("unlock")
    cp = json.loads(env.ok("credential-process", "--role", "admin").stdout)
    env.ok("credential-process", "--role", "admin")  # cached path too
    env.ok("env", "--role", "admin")
    env.ok("exec", "--role", "admin", "--", "true")
    tok = json.loads(env.ok("eks", "token", "--cluster", rig.CLUSTER).stdout)["status"]["token"]
    env.ok("eks", "token", "--cluster", rig.CLUSTER)  # cached token
    if describe:
        # EKS DescribeCluster: the role session goes through an SDK client
        env.ok("kubeconfig", "--cluster", rig.CLUSTER, "--write",
               os.path.join(env.home, "kubeconfig"))
    return {
        "session secret (credential-process)": cp["SecretAccessKey"],
        "session token (credential-process)": cp["SessionToken"],
        "EKS token": tok,
    }


def _code_patterns(env):
    """The TOTP codes op handed out (a window around each call), as whole numbers."""
    codes = set()
    for c in env.op_calls("item get"):
        for dt in (-30, 0, 30):
            codes.add(rig.totp(rig.TOTP_SEED, at=c["ts"] + dt))
    return [(f"TOTP code {c}", re.compile(rb"(?<![0-9])" + c.encode() + rb"(?![0-9])"))
            for c in sorted(codes)]


_report = secutil.report
_scan = secutil.scan


def _role_sessions(env):
    """{label: secret access key} of every role session moto handed out (the daemon signs
    EKS tokens and DescribeCluster with them)."""
    moto_url = getattr(env, "moto_url", env.endpoint_url)  # moto itself, not a TLS front
    data = rig.http_json("GET", moto_url + "/moto-api/data.json")
    return {f"role session {r['access_key_id']}": r["secret_access_key"]
            for r in data.get("sts", {}).get("AssumedRole", [])}


def _derived_keys(env, ident_secret, mfa, describe):
    """SigV4 keys the daemon derived while signing: STS calls (AssumeRole, GetSessionToken)
    and the EKS token presign use service `sts`; DescribeCluster uses `eks`."""
    signers = {"IAM user secret": ident_secret, **_role_sessions(env)}
    if mfa:
        signers["MFA base session secret"] = rig.MOTO_GST_SECRET
    services = ["sts", "eks"] if describe else ["sts"]
    return secutil.sigv4_needles(signers, [rig.REGION], services)


def _manual_lock(env):
    env.ok("lock")
    st = env.status()
    assert st["locked"] and st["lock_reason"] == "pctl lock", st


class _InUse(threading.Thread):
    """A cached `credential-process` (a request that counts as use) every 0.2 s, so a
    short idle limit cannot lock the daemon before the test lets it."""

    def __init__(self, env):
        super().__init__(daemon=True)
        self.env, self.done, self.errors = env, threading.Event(), []

    def run(self):
        while not self.done.wait(0.2):
            r = self.env.run("credential-process", "--role", "admin")
            if r.returncode != 0:
                self.errors.append(r.stderr)

    def stop(self):
        self.done.set()
        self.join(timeout=60)
        assert not self.errors, self.errors


def _memory_flow(env, ident_secret, extra_before=(), totp=False, lock=_manual_lock,
                 in_use=False):
    """in_use: requests keep the daemon in use from the unlock until the scan before the
    lock is done (for a 1 s idle limit)."""
    keeper = None
    if in_use:
        env.ok("unlock")
        keeper = _InUse(env)
        keeper.start()
    captured = _exercise(env, describe=totp, unlock=not in_use)
    st = env.status()
    pid = st["pid"]
    assert not st["locked"]

    needles = {"IAM secret access key": ident_secret, **captured}
    if totp:
        needles.update(secutil.totp_needles(rig.TOTP_SEED))
        needles["MFA base session secret"] = rig.MOTO_GST_SECRET
        needles["MFA base session token"] = MOTO_GST_TOKEN
    patterns = _code_patterns(env) if totp else []

    before = secutil.by_label(_scan(pid, needles))
    must_find = ["session secret (credential-process)", "session token (credential-process)",
                 "EKS token", *extra_before]
    for label in must_find:
        assert before.get(label), (
            f"scan did not find the {label} in the unlocked daemon: the scan is blind, "
            "so a clean result after lock would prove nothing")
        # the long-lived copy sits in an mlocked, MADV_DONTDUMP page
        assert any({"lo", "dd"} <= h.flags for h in before[label]), (
            f"no copy of the {label} is in a locked (lo) + dontdump (dd) mapping:\n"
            + _report(before[label]))
    assert secutil.vmlck_kb(pid) > 0, "unlocked daemon has no locked memory (VmLck 0)"
    assert st["mlock"] is None, st["mlock"]

    if keeper:
        keeper.stop()
    lock(env)
    time.sleep(0.3)
    # derived keys are computed now: moto has handed out every role session by this point
    needles.update(_derived_keys(env, ident_secret, mfa=totp, describe=totp))
    after = _scan(pid, needles, patterns)
    assert not after, (
        f"{len(after)} secret copies remain in daemon pid {pid} after lock:\n"
        + _report(after))
    assert secutil.vmlck_kb(pid) == 0, "locked pages still held after lock (VmLck > 0)"


@pytest.mark.timeout(120)
def test_no_secret_in_daemon_memory_after_lock_keys(auth_env):
    """IAM user keys (no MFA): the keys are the AssumeRole identity until lock."""
    _memory_flow(auth_env, auth_env.ident["secret_access_key"],
                 extra_before=["IAM secret access key"])


@pytest.mark.timeout(120)
def test_no_secret_in_daemon_memory_after_idle_lock(auth_env):
    """The idle limit drops secrets just as thoroughly as `pctl lock`. idle_lock is at its
    floor (1 s) and requests keep the daemon in use until the scan before the lock is done;
    then the lock comes about a second later (each status poll checks the limits, as the
    daemon's one-second timer does; the timer itself is proven on paused time in
    crates/pctl-broker/tests/broker.rs and end to end in tests/e2e/test_lifecycle.py)."""
    auth_env.write_config(text=rig.config_text(idle_lock="1s"))

    def idle(env):
        def locked_idle():
            st = env.status()  # status does not count as use
            return st["locked"] and st["lock_reason"] == "idle"
        rig.wait_until(locked_idle, timeout=15, interval=0.05, what="idle lock")

    _memory_flow(auth_env, auth_env.ident["secret_access_key"],
                 extra_before=["IAM secret access key"], lock=idle, in_use=True)



@pytest.mark.timeout(120)
def test_no_secret_in_daemon_memory_after_lock_mfa(mfa_open_env):
    """MFA path: the IAM keys, TOTP seed and code are used once for GetSessionToken; the
    MFA session is the base identity until lock. None of them survive lock."""
    _memory_flow(mfa_open_env, mfa_open_env.ident["secret_access_key"],
                 extra_before=["MFA base session secret", "MFA base session token"], totp=True)


@pytest.fixture
def tls_front(moto_open, tmp_path):
    t = secutil.TlsTerminator(moto_open.url, str(tmp_path / "tls")).start()
    yield t
    t.stop()


@pytest.mark.timeout(180)
def test_no_secret_in_daemon_memory_after_lock_over_tls(pctl_env, moto_open, tls_front):
    """The MFA flow once more with every AWS call over TLS (moto behind a local TLS
    terminator, the daemon trusting its test CA through SSL_CERT_FILE): rustls's record
    buffers and hyper's connection buffers hold the STS answers in plaintext, and none of
    it, nor any key or derived key, may survive lock."""
    ident = moto_open.identity
    item = rig.aws_item(ident["access_key_id"], ident["secret_access_key"],
                        mfa_serial=rig.MFA_SERIAL, totp_seed=rig.TOTP_SEED)

    # the daemon verifies the server: without the CA, nothing is unlocked
    untrusting = pctl_env(tls_front.url)
    untrusting.op_store([item])
    r = untrusting.run("unlock")
    assert r.returncode != 0, "the daemon accepted a certificate it does not trust"
    assert untrusting.status()["locked"]

    env = pctl_env(tls_front.url, extra_env={"SSL_CERT_FILE": tls_front.ca})
    env.op_store([item])
    env.ident = ident
    env.moto_url = moto_open.url
    _memory_flow(env, ident["secret_access_key"],
                 extra_before=["MFA base session secret", "MFA base session token"], totp=True)

    # the calls really went over TLS (lock closed the pooled connections)
    def closed():
        return [c for c in tls_front.connections() if c["down_bytes"] > 0]
    conns = rig.wait_until(closed, timeout=10, what="TLS connections closed by lock")
    assert all(c["tls_version"] in ("TLSv1.2", "TLSv1.3") for c in conns), conns


@pytest.mark.timeout(120)
def test_totp_seed_not_in_daemon_memory_while_unlocked(mfa_open_env):
    """The TOTP seed arrives in op's JSON (the OTP field's otpauth:// URI) next to the code
    op computed from it. The daemon needs only the code: the seed must be gone as soon as
    the item is parsed, not merely at lock. Scanned while unlocked, right after the unlock
    and again after sessions, tokens and DescribeCluster."""
    env = mfa_open_env
    env.ok("unlock")
    # pid from /proc, not `pctl status`: no other request runs between unlock and scan
    (pid,) = secutil.daemons_for(env.sock)
    seed = secutil.totp_needles(rig.TOTP_SEED)
    needles = {**seed, "MFA base session secret": rig.MOTO_GST_SECRET}

    hits = secutil.by_label(_scan(pid, needles))
    assert hits.get("MFA base session secret"), (
        "scan did not find the MFA session in the unlocked daemon: the scan is blind")
    held = [h for label in seed for h in hits.get(label, [])]
    assert not held, f"TOTP seed held by the unlocked daemon after unlock:\n{_report(held)}"

    _exercise(env, describe=True, unlock=False)  # a second unlock would wait for a new code
    st = env.status()
    assert not st["locked"] and st["pid"] == pid, st
    held = _scan(pid, seed)
    assert not held, f"TOTP seed held by the unlocked daemon after use:\n{_report(held)}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("limit", [0, 8192], ids=["memlock-0", "memlock-8KiB"])
def test_mlock_failure_is_reported_and_the_daemon_keeps_serving(auth_env, limit):
    """Decision (SECURITY.md, memory): when secret pages cannot be locked in RAM the daemon
    warns and keeps serving, and says so in `pctl status` (a `warning:` line) and in
    `status --json` (`mlock`). RLIMIT_MEMLOCK 0 (EPERM) and 8 KiB (two pages: ENOMEM once
    more secrets arrive) are what a tight laptop or container limit looks like."""
    env = auth_env
    r = subprocess.run(secutil.without_ipc_lock([env.bin, "status", "--json"]), env=env.env,
                       capture_output=True, text=True, timeout=60, cwd=env.home,
                       stdin=subprocess.DEVNULL, preexec_fn=secutil.memlock_limit(limit))
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    pid = st["pid"]
    # the auto-started daemon inherited the limit and cannot lift it
    assert secutil.proc_limit(pid, "Max locked memory") == (str(limit), str(limit))
    assert not secutil.has_cap(pid, secutil.CAP_IPC_LOCK)
    # status probes one page as doctor does: both say the same from the start
    doc = json.loads(env.run("doctor", "--json").stdout)
    mlock = next(c for c in doc["checks"] if c["name"] == "mlock")
    if limit == 0:
        assert st["mlock"] and mlock["level"] == "warn" and mlock["detail"] == st["mlock"], (
            st["mlock"], mlock)
    else:  # two pages: one page locks; secrets arriving later will not
        assert st["mlock"] is None and mlock["level"] == "ok", (st["mlock"], mlock)

    # warn, not fail closed: everything still works
    cp = json.loads(env.ok("credential-process", "--role", "admin").stdout)
    assert cp["SecretAccessKey"]
    env.ok("eks", "token", "--cluster", rig.CLUSTER)

    st = env.status()
    assert not st["locked"], st
    assert st["mlock"] and "mlock failed" in st["mlock"] and "RLIMIT_MEMLOCK" in st["mlock"], st
    assert secutil.vmlck_kb(pid) * 1024 <= limit
    text = env.ok("status").stdout
    warn = [line for line in text.splitlines() if line.startswith("warning: ")]
    assert warn == [f"warning: {st['mlock']}"], text
    # the reason names no secret
    assert cp["SecretAccessKey"] not in st["mlock"]
    assert st["mlock"] in open(env.daemon_log, errors="replace").read()

    # the failure is sticky: lock and unlock do not hide it
    env.ok("lock")
    assert env.status()["mlock"] == st["mlock"]


@pytest.mark.timeout(120)
def test_lock_wipes_the_daemons_dead_stack_and_does_not_grow_it(mfa_open_env):
    """Keys that only ever live on the stack (the SigV4 key chain, HMAC pads) sit in dead
    frames once signing returns. Lock scrubs the daemon's stack down to the deepest page it
    ever touched: afterwards the deepest 64 KiB (where the SDK's signing frames were) are
    almost all zero — a fixed 256 KiB scrub left a debug daemon's deepest ~140 KiB as they
    were. And the scrub never goes past that page: otherwise every lock would push it
    deeper (the stack, and the time each lock spends wiping it, growing without end)."""
    env = mfa_open_env
    _exercise(env, describe=True)
    pid = env.status()["pid"]
    _low, before = secutil.stack_bytes(pid)
    deep = 64 * 1024
    assert sum(1 for b in before[:deep] if b) > deep // 8, (
        "the daemon's deepest stack is already empty before lock: nothing to prove")

    env.ok("lock")
    _low, after = secutil.stack_bytes(pid)
    left = sum(1 for b in after[:deep] if b)
    # what stays: return addresses and saved registers of the scrubber's own frames and
    # the ~1 KiB it leaves above the floor for its calls
    assert left <= 4096, (
        f"{left} of the deepest {deep} stack bytes still hold data after lock")

    size = len(after)
    for _ in range(30):
        env.ok("lock")
    assert len(secutil.stack_bytes(pid)[1]) == size, "the stack grew with every lock"


@pytest.mark.timeout(60)
def test_core_dumps_disabled(auth_env):
    auth_env.ok("status")
    pid = auth_env.status()["pid"]
    assert secutil.core_limit(pid) == ("0", "0"), open(f"/proc/{pid}/limits").read()


def _nobody_daemon(pctl_bin):
    """A daemon running as uid 65534 in its own tree; returns (proc, root, sock)."""
    root = secutil.short_tmpdir(mode=0o755)
    home = os.path.join(root, "h")
    os.makedirs(os.path.join(home, "run"), mode=0o700)
    sock = os.path.join(home, "run", "s")
    secutil.chown_tree(root, secutil.NOBODY, secutil.NOBODY)
    env = rig.clean_base_env()
    env.update(HOME=home, PCTL_SOCK=sock, PCTL_STATE_DIR=os.path.join(home, "state"),
               PCTL_CONFIG=os.path.join(home, "none.toml"))
    proc = subprocess.Popen(secutil.as_nobody([pctl_bin, "daemon"]), env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd="/")
    rig.wait_until(lambda: os.path.exists(sock) or proc.poll() is not None, timeout=10,
                   what="nobody daemon socket")
    assert proc.poll() is None, proc.stderr.read().decode()
    return proc, root, env


@pytest.mark.timeout(60)
def test_daemon_not_dumpable_by_its_own_user(pctl_bin):
    """PR_SET_DUMPABLE=0: another process of the daemon's own user cannot read its memory
    or environment (as it could for an ordinary process of that user)."""
    proc, root, env = _nobody_daemon(pctl_bin)
    control = subprocess.Popen(secutil.as_nobody(["sleep", "30"]), env=env)
    try:
        pid = proc.pid
        # setpriv execs pctl, which execs pctl-daemon in place: proc.pid is the daemon
        assert secutil.is_daemon(pid), secutil.cmdline(pid)
        assert secutil.proc_status(pid)["Uid"].split()[0] == str(secutil.NOBODY)
        rig.wait_until(lambda: secutil.cmdline(control.pid)[:1] == ["sleep"], timeout=5)

        # non-dumpable: the kernel makes /proc/PID/* root-owned although the process is not
        st = os.stat(f"/proc/{pid}/environ")
        assert (st.st_uid, st.st_gid) == (0, 0), (st.st_uid, st.st_gid)
        st_ctl = os.stat(f"/proc/{control.pid}/environ")
        assert st_ctl.st_uid == secutil.NOBODY, "control process should be user-owned"

        probe = ("import sys\n"
                 "for t in sys.argv[1:]:\n"
                 "    try:\n"
                 "        f = open(f'/proc/{t}/mem', 'rb'); f.close()\n"
                 "        g = open(f'/proc/{t}/environ', 'rb'); g.read(); g.close()\n"
                 "        print(t, 'readable')\n"
                 "    except OSError as e:\n"
                 "        print(t, 'denied', e.errno)\n")
        r = subprocess.run(secutil.as_nobody([rig.sys.executable, "-c", probe, str(pid),
                                              str(control.pid)]),
                           capture_output=True, text=True, timeout=20, env=env)
        res = dict(line.split(" ", 1) for line in r.stdout.splitlines())
        assert res.get(str(control.pid)) == "readable", (
            f"control: same-user /proc access should work, got {r.stdout!r} {r.stderr!r}")
        assert res.get(str(pid), "").startswith("denied"), (
            f"same-user process could open the daemon's /proc/PID/mem: {r.stdout!r}")
        assert secutil.core_limit(pid) == ("0", "0")
    finally:
        control.kill()
        control.wait(timeout=5)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        secutil.shutil.rmtree(root, ignore_errors=True)
