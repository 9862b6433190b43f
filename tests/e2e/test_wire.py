"""The daemon's socket protocol per docs/interface.md: 4-byte big-endian length + UTF-8 JSON,
max 64 KiB; `{"ok":...}` or `{"error":{"kind","message"}}`."""

import json
import os
import socket
import struct
import subprocess
import sys
import time

import pytest

import rig



def recv_exact(s, n):
    buf = b""
    for _ in range(10000):
        if len(buf) >= n:
            break
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def roundtrip(sock_path, payload, timeout=30):
    """Send one frame (bytes or JSON-able) and read one frame back."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(sock_path)
        s.sendall(struct.pack(">I", len(body)) + body)
        n = struct.unpack(">I", recv_exact(s, 4))[0]
        assert n <= 64 * 1024, f"response frame of {n} bytes"
        return json.loads(recv_exact(s, n).decode("utf-8"))


@pytest.fixture
def running(auth_env):
    st = auth_env.status()  # starts the daemon
    auth_env.version = st["version"]
    return auth_env


def test_status_frame(running):
    resp = roundtrip(running.sock, {"version": running.version, "request": {"kind": "status"}})
    assert set(resp) == {"ok"}, resp
    body = resp["ok"]
    assert body["counters"]["requests"] >= 1
    assert body["locked"] in (True, False)


def test_other_version_is_refused(running):
    resp = roundtrip(running.sock, {"version": "0.0.0-other", "request": {"kind": "status"}})
    assert resp.get("error", {}).get("kind") == "version", resp


def test_garbage_is_bad_request_and_daemon_survives(running):
    resp = roundtrip(running.sock, b"{this is not json")
    assert resp.get("error", {}).get("kind") == "bad_request", resp
    resp = roundtrip(running.sock, {"version": running.version, "request": {"kind": "format_disk"}})
    assert resp.get("error", {}).get("kind") == "bad_request", resp
    assert running.status()["locked"] in (True, False)


def test_oversize_frame_refused_without_harm(running):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(running.sock)
        s.sendall(struct.pack(">I", 64 * 1024 + 1) + b"x" * 1024)
        try:
            n = struct.unpack(">I", recv_exact(s, 4))[0]
            resp = json.loads(recv_exact(s, n))
            assert resp.get("error", {}).get("kind") == "bad_request", resp
        except (ConnectionResetError, EOFError, socket.timeout, BrokenPipeError):
            pass  # closing the connection is an acceptable refusal
    assert running.status()["counters"]["requests"] >= 1


def test_locked_error_over_the_wire(running):
    """A locked daemon answers kind "locked" with one human line naming `pctl unlock`."""
    running.ok("lock")
    r = running.run("credential-process", "--role", "admin")
    rig.assert_pctl_error(r, "pctl unlock")
    resp = roundtrip(running.sock, {"version": running.version,
                                    "request": {"kind": "credentials", "role": "admin",
                                                "env": {}}})
    err = resp.get("error")
    assert err and err["kind"] == "locked", resp
    assert "\n" not in err["message"] and "pctl unlock" in err["message"]


def _untrusting(auth_env):
    auth_env.write_config(text=rig.config_text(role="untrusting"))


def test_sts_refusal_message(auth_env):
    """AssumeRole refused by STS (the role does not trust the user): a clear message naming
    the AWS error, not the SDK's bare "service error"."""
    _untrusting(auth_env)
    r = auth_env.run("credential-process", "--role", "admin")
    rig.assert_pctl_error(r, any_of=("accessdenied", "access denied", "not authorized"))


def test_sts_refusal_error_kind(auth_env):
    _untrusting(auth_env)
    version = auth_env.status()["version"]
    resp = roundtrip(auth_env.sock, {"version": version,
                                     "request": {"kind": "credentials", "role": "admin",
                                                 "env": {k: v for k, v in auth_env.env.items()
                                                         if k in ("PATH", "HOME")}}})
    assert resp.get("error", {}).get("kind") == "aws", (
        f"docs/interface.md lists error kinds locked|op|aws|config|bad_request|version|unavailable; "
        f"got {resp}")


FAKE_DAEMON = r'''
import json, os, socket, struct, sys, time
path, log = sys.argv[1], sys.argv[2]
os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path); os.chmod(path, 0o600); s.listen(16); s.settimeout(60)
open(log + ".ready", "w").close()
deadline = time.time() + 60
while time.time() < deadline:
    try:
        c, _ = s.accept()
    except socket.timeout:
        break
    with c:
        c.settimeout(10)
        try:
            head = c.recv(4)
            n = struct.unpack(">I", head)[0]
            body = b""
            while len(body) < n:
                chunk = c.recv(n - len(body))
                if not chunk:
                    break
                body += chunk
            req = json.loads(body)
        except Exception as e:
            req = {"unparsed": str(e)}
        with open(log, "a") as f:
            f.write(json.dumps(req) + "\n")
        kind = (req.get("request") or {}).get("kind")
        if kind == "ping":
            resp = {"ok": {"kind": "pong", "version": "0.0.0-old", "pid": os.getpid()}}
        elif kind == "stop":
            resp = {"ok": {"kind": "done"}}
        else:
            resp = {"error": {"kind": "version", "message": "daemon is version 0.0.0-old"}}
        out = json.dumps(resp).encode()
        c.sendall(struct.pack(">I", len(out)) + out)
        if kind == "stop":
            os.unlink(path)
            sys.exit(0)
os.unlink(path)
'''


def test_daemon_of_another_version_is_replaced(auth_env, tmp_path):
    """Contract: a client that finds a daemon of another version stops it and starts its own."""
    log = str(tmp_path / "fake.jsonl")
    os.makedirs(os.path.dirname(auth_env.sock), mode=0o700, exist_ok=True)
    fake = subprocess.Popen([sys.executable, "-c", FAKE_DAEMON, auth_env.sock, log],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        rig.wait_until(lambda: os.path.exists(log + ".ready"), timeout=10, what="fake daemon")
        r = auth_env.run("credential-process", "--role", "admin", timeout=60)
        seen = [rec.get("request", {}).get("kind") for rec in rig.read_jsonl(log)]
        assert r.returncode == 0, f"{r.stderr}\nfake daemon saw: {seen}"
        assert "stop" in seen, f"the old daemon was not asked to stop; it saw {seen}"
        fake.wait(timeout=10)
        st = auth_env.status()
        assert st["version"] != "0.0.0-old"
        assert st["counters"]["assume_role"] == 1
    finally:
        rig.stop_process(fake)
