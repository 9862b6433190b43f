"""Socket claims (issue 4): SO_PEERCRED refuses other users even through a 0666 socket;
unsafe socket directories are refused; socket 0600, logs 0600, daemon umask 077."""

import json
import os
import shutil
import stat
import subprocess

import pytest

import rig
import secutil

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to run a client as another uid (setpriv)")


def _secrets(env, cp):
    return {"IAM secret": env.ident["secret_access_key"],
            "session secret": cp["SecretAccessKey"], "session token": cp["SessionToken"]}


@pytest.fixture
def open_sock_env(auth_env):
    """auth_env whose socket sits in a 0711 directory (traversable, not listable or
    writable by others) and is chmod 0666 after start: only the peer check stands
    between another user and the daemon."""
    d = secutil.short_tmpdir(prefix="pctl-peer-", mode=0o711)
    sock = os.path.join(d, "s")
    auth_env.env["PCTL_SOCK"] = sock
    auth_env.sock = sock
    # pctl for the other user: the repo's target dir may not be reachable for it
    exe_dir = secutil.short_tmpdir(prefix="pctl-bin-", mode=0o755)
    exe = os.path.join(exe_dir, "pctl")
    shutil.copy2(auth_env.bin, exe)
    os.chmod(exe, 0o755)
    auth_env.other_exe = exe
    yield auth_env
    shutil.rmtree(exe_dir, ignore_errors=True)
    auth_env.cleanup(remove=False)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.timeout(90)
def test_other_uid_is_refused_by_peer_check(open_sock_env, pctl_bin):
    env = open_sock_env
    env.ok("unlock")
    cp = json.loads(env.ok("credential-process", "--role", "admin").stdout)
    before = env.status()
    os.chmod(env.sock, 0o666)
    assert stat.S_IMODE(os.stat(os.path.dirname(env.sock)).st_mode) == 0o711

    version = secutil.pctl_version(pctl_bin)
    req = {"version": version, "request": {"kind": "credentials", "role": "admin", "env": {}}}
    probe = (
        "import socket, struct, json, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.settimeout(10)\n"
        "try:\n"
        "    s.connect(sys.argv[1])\n"
        "except OSError as e:\n"
        "    print('CONNECT-FAILED', e.errno); sys.exit(0)\n"
        "print('CONNECTED')\n"
        "body = sys.argv[2].encode()\n"
        "try:\n"
        "    s.sendall(struct.pack('>I', len(body)) + body)\n"
        "except OSError as e:\n"
        "    print('SEND-FAILED', e.errno)\n"
        "data = b''\n"
        "try:\n"
        "    while True:\n"
        "        c = s.recv(65536)\n"
        "        if not c: break\n"
        "        data += c\n"
        "except OSError as e:\n"
        "    print('RECV-ERROR', e.errno)\n"
        "print('RECEIVED', len(data))\n"
        "sys.stdout.write(data.decode('latin-1'))\n")
    r = subprocess.run(secutil.as_nobody([rig.sys.executable, "-c", probe, env.sock,
                                          json.dumps(req)]),
                       capture_output=True, text=True, timeout=30, env=rig.clean_base_env())
    lines = r.stdout.splitlines()
    assert lines and lines[0] == "CONNECTED", (
        f"uid 65534 could not even connect (file modes refused it, not the peer check): "
        f"{r.stdout!r} {r.stderr!r}")
    # the only answer is the refusal itself: an error frame naming the rule, nothing served
    received = [l for l in lines if l.startswith("RECEIVED ")]
    assert received, r.stdout
    assert '"error"' in r.stdout and "serves uid" in r.stdout, (
        f"the daemon answered another uid with something other than a refusal: {r.stdout!r}")
    assert '"ok"' not in r.stdout, r.stdout
    for v in _secrets(env, cp).values():
        assert v not in r.stdout

    # the real client as the other user refuses before it connects: the socket's directory
    # is not its own (the client-side half, tests/security/test_client_trust.py)
    cenv = rig.clean_base_env()
    cenv.update(PCTL_SOCK=env.sock, HOME="/nonexistent", PATH=env.env["PATH"])
    r2 = subprocess.run(secutil.as_nobody([env.other_exe, "credential-process", "--role",
                                           "admin"]),
                        capture_output=True, text=True, timeout=30, env=cenv, cwd="/")
    assert r2.returncode == 1, (r2.returncode, r2.stdout, r2.stderr)
    assert r2.stdout == ""
    assert r2.stderr.startswith("pctl: ") and len(r2.stderr.strip().splitlines()) == 1, r2.stderr
    assert "owned by uid 0, not you (uid 65534)" in r2.stderr, r2.stderr

    after = env.status()
    assert after["pid"] == before["pid"], "the daemon was replaced"
    assert after["counters"]["refused_peers"] == before["counters"]["refused_peers"] + 1
    # the refused requests were never counted or served
    assert after["counters"]["assume_role"] == before["counters"]["assume_role"]
    assert all(rec.get("uid") == 0 for rec in after["recent"]), after["recent"]

    log = open(env.daemon_log, errors="replace").read()
    assert "refused a connection from uid 65534" in log, env.daemon_log_tail()
    for label, v in _secrets(env, cp).items():
        assert v not in log, f"{label} in daemon.log"

    # same uid through the very same path still works
    env.ok("credential-process", "--role", "admin")


def _daemon_refuses(pctl_bin, sock, needles, env_extra=None):
    env = rig.clean_base_env()
    home = secutil.short_tmpdir(prefix="pctl-h-")
    env.update(HOME=home, PCTL_SOCK=sock, PCTL_STATE_DIR=os.path.join(home, "state"),
               PCTL_CONFIG=os.path.join(home, "none.toml"), **(env_extra or {}))
    try:
        r = subprocess.run([pctl_bin, "daemon"], env=env, capture_output=True, text=True,
                           timeout=20, stdin=subprocess.DEVNULL)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert r.returncode != 0, f"daemon accepted {sock}: {r.stderr}"
    assert not os.path.exists(sock), "daemon bound a socket in an unsafe directory"
    low = r.stderr.lower()
    for n in needles:
        assert n.lower() in low, f"{n!r} not in {r.stderr!r}"
    return r


@pytest.mark.timeout(60)
def test_socket_dir_owned_by_another_user_is_refused(pctl_bin):
    d = secutil.short_tmpdir(prefix="pctl-own-")
    try:
        os.chown(d, secutil.NOBODY, secutil.NOBODY)
        _daemon_refuses(pctl_bin, os.path.join(d, "s"), ["refusing socket directory",
                                                         "owned by uid 65534"])
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", [0o770, 0o730, 0o703, 0o777, 0o1777], ids=oct)
def test_socket_dir_writable_by_others_is_refused(pctl_bin, mode):
    d = secutil.short_tmpdir(prefix="pctl-mode-")
    try:
        os.chmod(d, mode)
        _daemon_refuses(pctl_bin, os.path.join(d, "s"), ["refusing socket directory",
                                                         "chmod 700"])
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.timeout(60)
def test_socket_dir_symlink_is_refused(pctl_bin):
    """A symlink in place of the socket directory (pre-planted by someone) is refused."""
    d = secutil.short_tmpdir(prefix="pctl-ln-")
    try:
        target = os.path.join(d, "real")
        os.mkdir(target, 0o700)
        link = os.path.join(d, "link")
        os.symlink(target, link)
        _daemon_refuses(pctl_bin, os.path.join(link, "s"), ["not a directory"])
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.timeout(60)
def test_socket_dir_writable_through_client_autostart_fails_clearly(auth_env):
    """The client refuses a world-writable socket directory itself, in one line, and starts
    no daemon there (nothing binds, nothing is logged)."""
    sockdir = os.path.dirname(auth_env.sock)
    os.makedirs(sockdir, exist_ok=True)
    os.chmod(sockdir, 0o777)
    r = auth_env.run("status", timeout=30)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.startswith("pctl: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "lets others write" in r.stderr and "chmod 700" in r.stderr, r.stderr
    assert not os.path.exists(auth_env.sock)
    assert not secutil.daemons_for(auth_env.sock)


@pytest.mark.timeout(90)
def test_socket_log_and_umask_modes(auth_env):
    env = auth_env
    env.ok("unlock")
    env.ok("credential-process", "--role", "admin")
    pid = env.status()["pid"]
    sst = os.lstat(env.sock)
    assert stat.S_ISSOCK(sst.st_mode)
    assert stat.S_IMODE(sst.st_mode) == 0o600, oct(sst.st_mode)
    assert sst.st_uid == os.geteuid()
    # created by pctl: the socket directory is private
    assert stat.S_IMODE(os.stat(os.path.dirname(env.sock)).st_mode) == 0o700
    audit = os.path.join(env.state_dir, "audit.log")
    for p in (env.daemon_log, audit):
        assert os.path.exists(p), p
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, (p, oct(os.stat(p).st_mode))
    assert stat.S_IMODE(os.stat(env.state_dir).st_mode) & 0o077 == 0
    lock = env.sock + ".lock"
    if os.path.exists(lock):
        assert stat.S_IMODE(os.stat(lock).st_mode) & 0o077 == 0
    assert secutil.proc_status(pid)["Umask"] == "0077"
