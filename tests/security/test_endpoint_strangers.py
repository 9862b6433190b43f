"""Another local user cannot starve the credential endpoint or fill the disk (issue 15,
item 4).

- A stranger's connection is judged at accept (the kernel's owner of that very socket):
  it is closed at once, takes none of the endpoint's 64 slots and none of its request is
  read. Hundreds of idle ones do not delay the owner.
- Refusals are logged once, then summarised in one line per interval with a count: a
  flood of pipelined requests does not grow daemon.log.
- daemon.log is capped (10 MiB) with one old file, daemon.log.1.
"""

import os
import socket

import pytest

from endpointutil import (Served, as_stranger, classify_closes, http_get, log_lines)

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to run clients as another uid")

MIB = 1024 * 1024


@pytest.fixture
def served(auth_env):
    s = Served(auth_env)
    try:
        yield s
    finally:
        s.close()


def _hold_idle(ready, port, n):
    """As the stranger: n connections that send nothing; after ready(), what the server
    did with each within 3 s (the header timeout of the code before the fix was 5 s)."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    ready()
    out = classify_closes(socks, 3.0)
    for s in socks:
        s.close()
    return out


@pytest.mark.timeout(120)
def test_idle_strangers_take_no_slot_and_are_closed_at_once(auth_env, served):
    """Fails before the fix: 64 of the stranger's connections took every slot until the
    header timeout and the other 136 were still open (unjudged, in the backlog) after 3 s."""
    def owner():
        return http_get(served, timeout=4.0)

    theirs, (status, body) = as_stranger(_hold_idle, served.port, 200, parent=owner)
    assert status == 200 and b'"AccessKeyId"' in body, (status, body)
    assert "open" not in theirs, {k: theirs.count(k) for k in set(theirs)}
    # what a refused client reads, when it reads anything: a 403, never credentials
    assert set(theirs) <= {"403", "eof", "reset"}, set(theirs)
    assert "403" in theirs
    refusals = log_lines(auth_env, "credential endpoint refused")
    assert len(refusals) == 1 and "uid 65534" in refusals[0], refusals


def _pipeline(port, request, conns, per_conn):
    """As the stranger: `conns` connections, each sending `per_conn` pipelined requests."""
    socks = []
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", port))
        try:
            s.sendall(request * per_conn)
        except OSError:
            pass  # already closed by the server: fine
        socks.append(s)
    out = classify_closes(socks, 10.0)
    for s in socks:
        s.close()
    return out


@pytest.mark.timeout(120)
def test_a_flood_of_refused_requests_does_not_grow_the_log(auth_env, served):
    """Fails before the fix: one warning per request (2,000 lines here)."""
    env = auth_env
    size = os.path.getsize(env.daemon_log)
    request = served.request(token=False).replace(b"Connection: close\r\n", b"")
    out = as_stranger(_pipeline, served.port, request, 100, 20)
    assert http_get(served)[0] == 200
    grew = os.path.getsize(env.daemon_log) - size
    refusals = log_lines(env, "refused")
    assert len(refusals) == 1, f"{len(refusals)} refusal lines, daemon.log grew {grew} bytes"
    assert grew < 4096, grew
    assert "open" not in out, {k: out.count(k) for k in set(out)}


def test_daemon_log_is_capped_and_rotated(auth_env):
    """A daemon.log at its cap (10 MiB) is moved to daemon.log.1 and a new one started.
    Fails before the fix: the daemon appended to it without limit."""
    env = auth_env
    os.makedirs(env.state_dir, mode=0o700, exist_ok=True)
    filler = b"x" * 1023 + b"\n"
    with open(os.open(env.daemon_log, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
        for _ in range(10 * 1024):
            f.write(filler)
    env.ok("status")  # starts the daemon, which opens its log
    assert os.path.getsize(env.daemon_log) < MIB, os.path.getsize(env.daemon_log)
    assert "pctl daemon listening" in open(env.daemon_log, errors="replace").read()
    old = env.daemon_log + ".1"
    assert os.path.getsize(old) == 10 * MIB
    for p in (env.daemon_log, old):
        assert os.stat(p).st_mode & 0o777 == 0o600, p
    assert not os.path.exists(env.daemon_log + ".2")
