"""Helpers for the credential endpoint's peer tests (issue 15, items 3-5 and 7): an
endpoint held open by `pctl serve`, raw HTTP to it over any socket family, and work done
by another user (a forked child that drops to `nobody` without exec, as
tests/e2e/test_credserver.py does, so no interpreter path needs to be readable by it).
"""

import json
import os
import re
import selectors
import socket
import time
import traceback

import rig
import secutil

STRANGER = secutil.NOBODY


class Served:
    """`pctl serve --role admin` in `env`: its URL, token, host and port; stops on close()."""

    def __init__(self, env):
        self.env = env
        self.proc = env.popen("serve", "--role", "admin", "--shell", "bash")
        exports = rig.serve_exports(self.proc, env)
        self.url = exports["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
        self.token = exports["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
        m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)(/.*)", self.url)
        self.port, self.path = int(m.group(1)), m.group(2)

    def request(self, token=True):
        auth = f"Authorization: {self.token}\r\n" if token else ""
        return (f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{auth}"
                "Connection: close\r\n\r\n").encode()

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()


def http_get(served, family=socket.AF_INET, host="127.0.0.1", timeout=10.0):
    """(status, body bytes) of one GET with the right token, over a socket of `family`."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, served.port))
        s.sendall(served.request())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None
    return status, body


def as_stranger(fn, *args, parent=None, timeout=60):
    """fn(*args) run in a forked child as uid/gid `nobody`; returns its JSON-able result
    (an exception in the child is raised here as an AssertionError with its traceback).

    With `parent`, fn gets a `ready()` callable as its first argument: once the child
    calls it, parent() runs here while the child goes on, and the result is
    (child's result, parent's result)."""
    r, w = os.pipe()
    rr, rw = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            os.close(rr)
            os.setgroups([])
            os.setgid(STRANGER)
            os.setuid(STRANGER)

            def ready():
                try:
                    os.write(rw, b"r")
                except OSError:  # the parent is not waiting (any more)
                    pass
            try:
                out = {"ok": fn(ready, *args) if parent else fn(*args)}
            except BaseException:
                out = {"error": traceback.format_exc()}
            if parent:
                ready()  # never leave the parent waiting
            os.write(w, json.dumps(out).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    os.close(rw)
    theirs = None
    try:
        if parent:
            with os.fdopen(rr, "rb") as f:
                f.read(1)
            theirs = parent()
        else:
            os.close(rr)
    finally:
        deadline = time.monotonic() + timeout
        chunks = []
        with os.fdopen(r, "rb") as f:
            while time.monotonic() < deadline:
                c = f.read(65536)
                if not c:
                    break
                chunks.append(c)
        os.waitpid(pid, 0)
    out = json.loads(b"".join(chunks) or b'{"error": "no answer from the child"}')
    assert "error" not in out, out["error"]
    return (out["ok"], theirs) if parent else out["ok"]


def classify_closes(socks, deadline_s):
    """For each socket, what the server did within `deadline_s`: "403" (it read a 403 and
    then the end), "eof", "reset", or "open" (still open, nothing received)."""
    sel = selectors.DefaultSelector()
    got = {}
    for i, s in enumerate(socks):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        got[i] = b""
    result = {}
    end = time.monotonic() + deadline_s
    while len(result) < len(socks):
        left = end - time.monotonic()
        if left <= 0:
            break
        for key, _ in sel.select(timeout=min(left, 0.5)):
            i, s = key.data, key.fileobj
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                result[i] = "403" if got[i].startswith(b"HTTP/1.1 403") else "reset"
                sel.unregister(s)
                continue
            except BlockingIOError:
                continue
            if chunk:
                got[i] += chunk
                continue
            result[i] = "403" if got[i].startswith(b"HTTP/1.1 403") else (
                "eof" if not got[i] else "other:" + got[i][:40].decode("latin-1"))
            sel.unregister(s)
    for i in range(len(socks)):
        result.setdefault(i, "open")
    sel.close()
    return [result[i] for i in range(len(socks))]


def proc_io(pid):
    """/proc/PID/io as {key: int} (root may read it for a non-dumpable daemon)."""
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k.strip()] = int(v)
    return out


def log_lines(env, needle):
    try:
        with open(env.daemon_log, errors="replace") as f:
            return [l for l in f if needle in l]
    except OSError:
        return []


def audit_credentials(env):
    return [a for a in rig.read_jsonl(os.path.join(env.state_dir, "audit.log"))
            if a.get("issued") == "credentials"]
