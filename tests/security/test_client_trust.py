"""The client trusts no one (issue 8, section 1): before it writes a single byte, `pctl`
checks that the socket's directory is its user's and not writable by others (lstat: no
symlink), that the socket file is a socket of its user, and that the process that accepted
the connection runs as its user (SO_PEERCRED). Anything else: exit 1, one line saying what
is wrong and what to do, and the impostor receives nothing.

Each impostor here is a real listening socket run by a small recorder process: it counts
the connections it accepted and the bytes it received. The client runs with 1Password
session variables in its environment, as a user's shell would have them.
"""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

import rig
import secutil

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to plant sockets and directories of another uid")

OTHER = secutil.NOBODY

# Binds `sock`, optionally drops to another uid before listen() (the kernel records the
# listener's credentials at listen time: that is what SO_PEERCRED tells a client), then
# accepts and reads until `stop` exists, and writes {"connections", "bytes"} to `out`.
RECORDER = r"""
import json, os, socket, sys, time
sock, out, stop, uid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
result = open(out, "w")
s = socket.socket(socket.AF_UNIX)
s.bind(sock)
os.chmod(sock, 0o666)
if uid >= 0:
    os.setgroups([]); os.setgid(uid); os.setuid(uid)
s.listen(64)
s.settimeout(0.1)
print("ready", flush=True)
conns, nbytes = 0, 0
deadline = time.monotonic() + 60
# After `stop` appears, connections still waiting in the listen queue are
# accepted and read too (a busy machine may not have reached them yet); the
# first accept that times out after that ends the run.
while time.monotonic() < deadline:
    stopping = os.path.exists(stop)
    try:
        c, _ = s.accept()
    except socket.timeout:
        if stopping:
            break
        continue
    conns += 1
    c.settimeout(1.0)
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            nbytes += len(d)
    except OSError:
        pass
    c.close()
json.dump({"connections": conns, "bytes": nbytes}, result)
result.close()
"""


class Recorder:
    def __init__(self, sock, as_uid=-1):
        self.work = secutil.short_tmpdir(prefix="pctl-rec-", mode=0o777)
        self.out = os.path.join(self.work, "out.json")
        self.stop = os.path.join(self.work, "stop")
        self.proc = subprocess.Popen([sys.executable, "-c", RECORDER, sock, self.out, self.stop,
                                      str(as_uid)], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", "recorder did not start"

    def result(self):
        open(self.stop, "w").close()
        self.proc.wait(timeout=20)
        with open(self.out) as f:
            return json.load(f)

    def close(self):
        if self.proc.poll() is None:
            open(self.stop, "w").close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.work, ignore_errors=True)


def _client_env(sock=None, home=None, drop_runtime=False):
    env = rig.clean_base_env()
    home = home or secutil.short_tmpdir(prefix="pctl-h-")
    env.update(HOME=home, PCTL_STATE_DIR=os.path.join(home, "state"),
               PCTL_CONFIG=os.path.join(home, "none.toml"),
               OP_SERVICE_ACCOUNT_TOKEN="ops_trust_test_token_must_not_leave",
               OP_SESSION_my="session_trust_test_must_not_leave")
    if sock is not None:
        env["PCTL_SOCK"] = sock
    if not drop_runtime:
        env["XDG_RUNTIME_DIR"] = os.path.join(home, "run-unused")
    return env, home


def _refused(r, *needles):
    """exit 1, nothing on stdout, one line on stderr naming the problem and a fix."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pctl: "), r.stderr
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    assert "PCTL_SOCK" in lines[0] or "chmod 700" in lines[0] or "remove" in lines[0], lines[0]
    return lines[0]


def _run(argv, env, timeout=30):
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd="/")


def _no_daemon_started(home):
    assert not os.path.exists(os.path.join(home, "state", "daemon.log")), \
        "the client started a daemon instead of refusing"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777], ids=oct)
def test_socket_dir_writable_by_others_is_refused_before_connecting(pctl_bin, mode):
    """A planted directory others can write (someone could swap the socket in it)."""
    d = secutil.short_tmpdir(prefix="pctl-plant-", mode=0o700)
    sock = os.path.join(d, "pctl.sock")
    rec = Recorder(sock)
    os.chmod(d, mode)
    env, home = _client_env(sock)
    try:
        r = _run([pctl_bin, "credential-process", "--role", "admin"], env)
        line = _refused(r, "refusing socket directory", d, "lets others write", "chmod 700")
        assert oct(mode)[2:] in line, line
        got = rec.result()
        assert got == {"connections": 0, "bytes": 0}, got
        _no_daemon_started(home)
    finally:
        rec.close()
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(60)
def test_symlinked_socket_dir_is_refused(pctl_bin):
    """PCTL_SOCK through a symbolic link to a directory (lstat, never followed)."""
    base = secutil.short_tmpdir(prefix="pctl-ln-", mode=0o700)
    real = os.path.join(base, "real")
    os.mkdir(real, 0o700)
    link = os.path.join(base, "link")
    os.symlink(real, link)
    rec = Recorder(os.path.join(real, "s"))
    env, home = _client_env(os.path.join(link, "s"))
    try:
        r = _run([pctl_bin, "status"], env)
        _refused(r, "refusing socket directory", link, "symbolic link")
        assert rec.result() == {"connections": 0, "bytes": 0}
        _no_daemon_started(home)
    finally:
        rec.close()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(60)
def test_symlinked_socket_is_refused(pctl_bin):
    """The socket itself is a symbolic link to someone's listener."""
    base = secutil.short_tmpdir(prefix="pctl-sl-", mode=0o700)
    elsewhere = secutil.short_tmpdir(prefix="pctl-else-", mode=0o700)
    rec = Recorder(os.path.join(elsewhere, "s"))
    sock = os.path.join(base, "pctl.sock")
    os.symlink(os.path.join(elsewhere, "s"), sock)
    env, home = _client_env(sock)
    try:
        r = _run([pctl_bin, "eks", "token", "--cluster", "platform"], env)
        _refused(r, "refusing socket", sock, "symbolic link")
        assert rec.result() == {"connections": 0, "bytes": 0}
        _no_daemon_started(home)
    finally:
        rec.close()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(elsewhere, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(60)
def test_socket_served_by_another_uid_gets_not_one_byte(pctl_bin):
    """Directory and socket file look right (ours, 0700, a socket of ours), but the process
    listening is another user's: only the peer-credential check can tell. The client
    connects, reads the peer's uid, and hangs up without writing."""
    d = secutil.short_tmpdir(prefix="pctl-peer-", mode=0o700)
    sock = os.path.join(d, "pctl.sock")
    rec = Recorder(sock, as_uid=OTHER)
    assert os.lstat(sock).st_uid == os.geteuid()  # the file checks pass
    env, home = _client_env(sock)
    try:
        for argv in (["credential-process", "--role", "admin"], ["unlock"],
                     ["kubeconfig", "--cluster", "platform"]):
            r = _run([pctl_bin, *argv], env)
            _refused(r, f"runs as uid {OTHER}, not you (uid {os.geteuid()})", sock)
        got = rec.result()
        assert got["bytes"] == 0, f"the client wrote {got['bytes']} bytes to another uid: {got}"
        assert got["connections"] >= 3, got  # it did connect: the peer check is what refused
        _no_daemon_started(home)
    finally:
        rec.close()
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(60)
def test_socket_file_of_another_uid_is_refused(pctl_bin):
    d = secutil.short_tmpdir(prefix="pctl-sown-", mode=0o700)
    sock = os.path.join(d, "pctl.sock")
    rec = Recorder(sock)
    os.lchown(sock, OTHER, OTHER)
    env, home = _client_env(sock)
    try:
        r = _run([pctl_bin, "status"], env)
        _refused(r, "refusing socket", f"owned by uid {OTHER}")
        assert rec.result() == {"connections": 0, "bytes": 0}
    finally:
        rec.close()
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(60)
def test_pctl_sock_in_an_attackers_directory_is_refused(pctl_bin):
    """PCTL_SOCK pointing anywhere gets the same checks: here a directory owned by another
    user (mode 0755, so nobody else can write it) with that user's listener in it."""
    d = secutil.short_tmpdir(prefix="pctl-evil-", mode=0o755)
    os.chown(d, OTHER, OTHER)
    sock = os.path.join(d, "pctl.sock")
    rec = Recorder(sock, as_uid=OTHER)
    env, home = _client_env(sock)
    try:
        r = _run([pctl_bin, "credential-process", "--role", "admin"], env)
        _refused(r, "refusing socket directory", f"owned by uid {OTHER}, not you")
        assert rec.result() == {"connections": 0, "bytes": 0}
        _no_daemon_started(home)
    finally:
        rec.close()
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(60)
def test_fallback_dir_precreated_by_another_user_is_refused(pctl_bin):
    """Without XDG_RUNTIME_DIR and PCTL_SOCK, Linux falls back to /tmp/pctl-$UID. A stranger
    who creates it first (world-writable, with a listener) gets nothing: the client, run as
    a user of its own, refuses the directory in one line. (Run as uid 4242 so the test does
    not touch root's real fallback directory.)"""
    uid = 4242
    fallback = f"/tmp/pctl-{uid}"
    if os.path.lexists(fallback):
        pytest.skip(f"{fallback} exists on this machine")
    os.mkdir(fallback, 0o777)
    os.chmod(fallback, 0o777)
    sock = os.path.join(fallback, "pctl.sock")
    rec = Recorder(sock, as_uid=OTHER)
    exe_dir = secutil.short_tmpdir(prefix="pctl-bin-", mode=0o755)
    exe = os.path.join(exe_dir, "pctl")
    shutil.copy2(pctl_bin, exe)
    os.chmod(exe, 0o755)
    home = secutil.short_tmpdir(prefix="pctl-h-", mode=0o755)
    os.chown(home, uid, uid)
    env = rig.clean_base_env()
    env.update(HOME=home, OP_SERVICE_ACCOUNT_TOKEN="ops_trust_test_token_must_not_leave")
    try:
        r = _run([secutil.SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                  exe, "credential-process", "--role", "admin"], env)
        _refused(r, "refusing socket directory", fallback, "owned by uid 0")
        assert rec.result() == {"connections": 0, "bytes": 0}
    finally:
        rec.close()
        shutil.rmtree(fallback, ignore_errors=True)
        shutil.rmtree(exe_dir, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(60)
def test_fallback_dir_is_created_private_and_trusted(pctl_bin):
    """Control for the test above: with no XDG_RUNTIME_DIR and no PCTL_SOCK, a user's own
    daemon creates /tmp/pctl-$UID with mode 0700 and the client talks to it."""
    uid = 4243
    fallback = f"/tmp/pctl-{uid}"
    if os.path.lexists(fallback):
        pytest.skip(f"{fallback} exists on this machine")
    exe_dir = secutil.short_tmpdir(prefix="pctl-bin-", mode=0o755)
    for name in ("pctl", "pctl-daemon"):
        shutil.copy2(os.path.join(os.path.dirname(pctl_bin), name), os.path.join(exe_dir, name))
        os.chmod(os.path.join(exe_dir, name), 0o755)
    home = secutil.short_tmpdir(prefix="pctl-h-", mode=0o700)
    # a config of that user's (without one no command starts a daemon)
    cfg_dir = os.path.join(home, ".config", "pctl")
    os.makedirs(cfg_dir, mode=0o700)
    with open(os.path.join(cfg_dir, "config.toml"), "w") as f:
        f.write(rig.config_text())
    for d in (home, os.path.dirname(cfg_dir), cfg_dir, os.path.join(cfg_dir, "config.toml")):
        os.chown(d, uid, uid)
    env = rig.clean_base_env()
    env.update(HOME=home)
    as_user = [secutil.SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    try:
        r = _run([*as_user, os.path.join(exe_dir, "pctl"), "status", "--json"], env)
        assert r.returncode == 0, r.stderr
        st = os.lstat(fallback)
        assert st.st_uid == uid and (st.st_mode & 0o777) == 0o700, (st.st_uid, oct(st.st_mode))
        assert json.loads(r.stdout)["locked"] is True
        r = _run([*as_user, os.path.join(exe_dir, "pctl"), "stop"], env)
        assert r.returncode == 0, r.stderr
    finally:
        shutil.rmtree(fallback, ignore_errors=True)
        shutil.rmtree(exe_dir, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(90)
def test_own_daemon_is_still_trusted(auth_env):
    """The checks pass for the real thing: the daemon pctl starts in its private
    directory answers, and the 1Password variables travel only when it asks for them."""
    auth_env.ok("unlock")
    cp = json.loads(auth_env.ok("credential-process", "--role", "admin").stdout)
    assert cp["AccessKeyId"].startswith("ASIA")
    st = os.lstat(os.path.dirname(auth_env.sock))
    assert st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0
