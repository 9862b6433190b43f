"""Who is on the other end of the credential endpoint (issue 15, items 3, 5 and 7).

- Item 3: the daemon asks the kernel for the owner of exactly the connection it accepted
  (sock_diag), instead of reading the whole TCP table for every connection on its only
  async thread: under a table of thousands of TIME_WAIT rows made by another user, the
  daemon's reads do not grow with the table (its /proc/PID/io `rchar`, a count, not a
  time; the time under a flood is in BENCHMARKS.md, tests/bench/endpoint-flood.sh).
- Item 5: an IPv6 socket connected to `::ffff:127.0.0.1` (Java's and .NET's default) is
  the owner's, found in the kernel's table through its mapped address: served, not 403.
- Item 7: a connection closed before the daemon looks it up (its row: TIME_WAIT or an
  orphaned FIN_WAIT2 mini-socket, uid 0, inode 0) is unknown and refused, never root.
"""

import os
import shutil
import socket
import subprocess
import time

import pytest

import rig
from endpointutil import (Served, as_stranger, audit_credentials, classify_closes, http_get,
                          log_lines, proc_io)

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to run clients as another uid")


@pytest.fixture
def served(auth_env):
    s = Served(auth_env)
    try:
        yield s
    finally:
        s.close()


def _time_wait_rows(n):
    """As the stranger: n loopback connections to its own listener, each closed by the
    client first, which leaves n TIME_WAIT rows in the kernel's table."""
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(256)
    port = l.getsockname()[1]
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", port))
        s, _ = l.accept()
        c.close()
        s.close()
    l.close()
    return port


def _knock(port, request, n):
    """As the stranger: n connections to the endpoint, each sending `request` and reading
    what comes back until the server closes it."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(request)
        socks.append(s)
    out = classify_closes(socks, 10.0)
    for s in socks:
        s.close()
    return out


def _table_bytes():
    total = 0
    for p in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(p, "rb") as f:
            total += len(f.read())
    return total


@pytest.mark.timeout(120)
def test_the_daemon_does_not_read_the_tcp_table_per_connection(auth_env, served):
    """Item 3. Fails on the code before the fix: each of the stranger's 20 connections
    made the daemon read all of /proc/net/tcp (rchar grew by 20 tables)."""
    env = auth_env
    as_stranger(_time_wait_rows, 4000)
    table = _table_bytes()
    assert table > 300_000, f"the TIME_WAIT rows did not show up ({table} bytes of table)"
    pid = env.status()["pid"]
    before = proc_io(pid)["rchar"]
    results = as_stranger(_knock, served.port, served.request(token=False), 20)
    assert "open" not in results, results
    status, _ = http_get(served)  # the owner, after them: every stranger was handled
    assert status == 200
    read = proc_io(pid)["rchar"] - before
    assert read < table, (
        f"the daemon read {read} bytes for 20 connections; the socket table is {table} bytes")


def test_an_ipv4_mapped_ipv6_client_is_served(auth_env, served):
    """Item 5: a Python AF_INET6 socket to ::ffff:127.0.0.1. Fails before the fix: 403."""
    status, body = http_get(served, socket.AF_INET6, "::ffff:127.0.0.1")
    assert status == 200, (status, body, auth_env.daemon_log_tail())
    assert b'"AccessKeyId":"ASIA' in body
    # and the audit names this very process: its socket was found from the mapped row
    mine = [a for a in audit_credentials(auth_env) if a["pid"] == os.getpid()]
    assert mine and all(a["uid"] == os.geteuid() for a in mine), audit_credentials(auth_env)


JAVA = """\
import java.net.HttpURLConnection;
import java.net.URL;

public class Fetch {
    public static void main(String[] args) throws Exception {
        HttpURLConnection c = (HttpURLConnection) new URL(args[0]).openConnection();
        c.setRequestProperty("Authorization", args[1]);
        c.setConnectTimeout(10000);
        c.setReadTimeout(10000);
        int status = c.getResponseCode();
        String body = new String((status < 400 ? c.getInputStream() : c.getErrorStream()).readAllBytes());
        System.out.println(status);
        System.out.println(body.contains("\\"AccessKeyId\\"") ? "keys" : body);
    }
}
"""


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("java") is None, reason="no JDK on this machine")
def test_a_real_jvm_client_is_served(auth_env, served, tmp_path):
    """Item 5 with the real JDK (IPv4-mapped IPv6 sockets by default). Fails before the
    fix: 403."""
    src = tmp_path / "Fetch.java"
    src.write_text(JAVA)
    r = subprocess.run(["java", str(src), served.url,
                        served.token], capture_output=True, text=True, timeout=90,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["200", "keys"], r.stdout + auth_env.daemon_log_tail()


def _send_and_close(port, request, n):
    """As the stranger, with the right token: n connections that send a full request and
    close at once; returns when the kernel shows each of them as a closed row."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    ports = set()
    for s in socks:
        s.sendall(request)
        ports.add(s.getsockname()[1])
    for s in socks:
        s.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        live = [r for r in _rows() if r[0] in ports and r[1] == port and r[2] == "01"]
        if not live:
            return n
        time.sleep(0.02)
    raise AssertionError(f"still established: {live}")


def _rows():
    """(local port, remote port, state) of every row of /proc/net/tcp."""
    out = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            out.append((int(p[1].split(":")[1], 16), int(p[2].split(":")[1], 16), p[3]))
    return out


def _accept_queue(port):
    """How many connections wait in the listener's accept queue (a listening row's
    rx_queue column)."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            if int(p[1].split(":")[1], 16) == port and p[3] == "0A":
                return int(p[4].split(":")[1], 16)
    raise AssertionError("no listener")


@pytest.mark.timeout(90)
def test_a_closed_connection_is_unknown_not_root(auth_env, served):
    """Item 7. The owner holds every slot (65 idle connections: 64 served, one waiting), so
    the stranger's connections wait in the backlog until they are closed rows; then the
    owner lets go and the daemon looks them up. Fails before the fix: the closed rows read
    as uid 0 (allowed: the daemon runs as root here) and nothing was refused."""
    env = auth_env
    assert http_get(served)[0] == 200
    before = len(audit_credentials(env))
    held = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(65)]
    try:
        rig.wait_until(lambda: _accept_queue(served.port) <= 1, timeout=10,
                       what="the owner's connections accepted")
        as_stranger(_send_and_close, served.port, served.request(), 3)
    finally:
        for s in held:
            s.close()
    # the owner, after them: the daemon accepted and judged every stranger connection
    assert http_get(served)[0] == 200
    refusals = log_lines(env, "credential endpoint refused")
    assert refusals, "the closed connections were let past the UID check" + env.daemon_log_tail()
    assert "an unknown peer" in refusals[0], refusals
    assert len(refusals) == 1, refusals  # the other two are counted for the summary
    # nothing was served to them: the only new issuance is the owner's last request
    served_now = audit_credentials(env)[before:]
    assert [a["pid"] for a in served_now] == [os.getpid()], served_now
