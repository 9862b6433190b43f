"""Helpers for pctl's security tests: /proc inspection, a raw socket client,
a fault-injecting STS front, and running commands as another user.

Everything binds to 127.0.0.1; every wait loop is bounded.
"""

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http.client

import rig

NOBODY = 65534
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
PROTO_VERSION = None  # filled lazily from `pctl --version`


# --------------------------------------------------------------------------
# /proc


def proc_status(pid):
    """/proc/PID/status as {key: value}."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k.strip()] = v.strip()
    return out


def rss_kb(pid):
    return int(proc_status(pid)["VmRSS"].split()[0])


def vmlck_kb(pid):
    return int(proc_status(pid)["VmLck"].split()[0])


def core_limit(pid):
    """(soft, hard) of 'Max core file size' from /proc/PID/limits."""
    return proc_limit(pid, "Max core file size")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return False


cmdline = rig.cmdline


def environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def is_daemon(pid):
    """`pctl-daemon` (auto-started or exec'd by `pctl daemon`), or an older `pctl daemon`."""
    argv = cmdline(pid)
    if not argv:
        return False
    name = os.path.basename(argv[0])
    return name == "pctl-daemon" or (name == "pctl" and argv[1:2] == ["daemon"])


def daemons_for(sock):
    """PIDs of live `pctl daemon` processes whose environment carries PCTL_SOCK=sock."""
    mark = f"PCTL_SOCK={sock}".encode()
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        pid = int(p)
        if is_daemon(pid):
            if mark in environ(pid) and alive(pid):
                out.append(pid)
    return sorted(out)


def processes_with_env(mark):
    """Live PIDs whose environment contains the exact entry `mark` (bytes)."""
    me = os.getpid()
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == me:
            continue
        if mark in environ(int(p)) and alive(int(p)):
            out.append(int(p))
    return out


def op_processes(home):
    """Live `op` stand-in processes run for this HOME."""
    out = []
    for pid in processes_with_env(f"HOME={home}".encode()):
        argv = cmdline(pid)
        if any(os.path.basename(a) == "op" for a in argv[:2]):
            out.append(pid)
    return out


def maps(pid):
    """[(start, end, perms, offset, path)] from /proc/PID/maps."""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            start, end = (int(x, 16) for x in parts[0].split("-"))
            path = parts[5].strip() if len(parts) > 5 else ""
            out.append((start, end, parts[1], int(parts[2], 16), path))
    return out


def smaps_flags(pid):
    """{(start, end): set(VmFlags)} from /proc/PID/smaps."""
    out = {}
    cur = None
    rx = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) ")
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = rx.match(line)
            if m:
                cur = (int(m.group(1), 16), int(m.group(2), 16))
            elif line.startswith("VmFlags:") and cur:
                out[cur] = set(line.split(":", 1)[1].split())
    return out


def _kind(idx, regions):
    start, end, perms, off, path = regions[idx]
    if path:
        return path
    prev = regions[idx - 1] if idx > 0 else None
    # glibc thread stacks: an anonymous rw region right above a PROT_NONE guard page
    if prev and prev[1] == start and prev[2].startswith("---") and not prev[4]:
        return "[anon: thread stack?]"
    return "[anon]"


class Hit:
    def __init__(self, label, addr, region, kind, flags, context):
        self.label, self.addr, self.region, self.kind = label, addr, region, kind
        self.flags, self.context = flags, context

    def __repr__(self):
        s, e = self.region
        return (f"{self.label} @0x{self.addr:x} in {self.kind} 0x{s:x}-0x{e:x} "
                f"({(e - s) // 1024} KiB, VmFlags {' '.join(sorted(self.flags))}) "
                f"context={self.context!r}")


def scan_memory(pid, needles, patterns=()):
    """Search every readable mapping of pid (via /proc/PID/mem) for needles.

    needles: {label: bytes}; patterns: [(label, compiled bytes regex)].
    Returns (hits, bytes_scanned, unreadable_regions).
    """
    regions = maps(pid)
    flags = smaps_flags(pid)
    hits, scanned, unreadable = [], 0, []
    needles = [(lab, n) for lab, n in needles.items() if n]
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for i, (start, end, perms, _off, path) in enumerate(regions):
            if perms[0] != "r" or path in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                continue
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except OSError as e:
                unreadable.append((start, end, path, str(e)))
                continue
            if not data:
                unreadable.append((start, end, path, "empty read"))
                continue
            scanned += len(data)
            kind = _kind(i, regions)
            vf = flags.get((start, end), set())

            def add(label, pos, ln):
                ctx = data[max(0, pos - 24):pos + ln + 24]
                hits.append(Hit(label, start + pos, (start, end), kind, vf, ctx))

            for label, n in needles:
                pos = data.find(n)
                count = 0
                while pos != -1 and count < 64:
                    add(label, pos, len(n))
                    count += 1
                    pos = data.find(n, pos + 1)
            for label, rx in patterns:
                for count, m in enumerate(rx.finditer(data)):
                    if count >= 64:
                        break
                    add(label, m.start(), m.end() - m.start())
    return hits, scanned, unreadable


def stack_bytes(pid):
    """The main thread's [stack] mapping as (low address, bytes); its low end is the
    deepest page the thread has ever touched."""
    for start, end, _perms, _off, path in maps(pid):
        if path == "[stack]":
            with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
                mem.seek(start)
                return start, mem.read(end - start)
    raise AssertionError(f"no [stack] mapping in /proc/{pid}/maps")


def by_label(hits):
    out = {}
    for h in hits:
        out.setdefault(h.label, []).append(h)
    return out


def scan(pid, needles, patterns=(), min_bytes=1024 * 1024):
    """scan_memory with str or bytes needles, asserting the scan really read the process
    (heap and anonymous memory included). Returns the hits."""
    hits, scanned, unreadable = scan_memory(
        pid, {k: v.encode() if isinstance(v, str) else v for k, v in needles.items()}, patterns)
    assert scanned > min_bytes, f"only {scanned} bytes readable; unreadable={unreadable}"
    return hits


def report(hits):
    return "\n".join(repr(h) for h in hits)


# --------------------------------------------------------------------------
# key material derived from secrets (what a scan must also look for)


def hmac_pads(key, block=64):
    """The two key blocks an HMAC implementation builds from `key` (key XOR ipad / opad,
    zero-padded to the hash's block): they sit on the stack while the MAC runs and are
    as good as the key itself."""
    import hashlib

    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def sigv4_chain(secret, date, region, service):
    """SigV4 derived keys for one day/region/service: {name: 32 bytes}.

    kDate = HMAC("AWS4" + secret, yyyymmdd), kRegion = HMAC(kDate, region),
    kService = HMAC(kRegion, service), kSigning = HMAC(kService, "aws4_request").
    Every one of them signs requests (kDate: any region and service that day).
    """
    import hashlib
    import hmac

    def h(k, m):
        return hmac.new(k, m.encode(), hashlib.sha256).digest()

    k_date = h(("AWS4" + secret).encode(), date)
    k_region = h(k_date, region)
    k_service = h(k_region, service)
    return {"kDate": k_date, "kRegion": k_region, "kService": k_service,
            "kSigning": h(k_service, "aws4_request")}


def sigv4_dates(now=None):
    """Today's and yesterday's UTC dates (yyyymmdd): a test may straddle midnight."""
    import datetime

    now = now or datetime.datetime.now(datetime.timezone.utc)
    return sorted({(now - datetime.timedelta(days=d)).strftime("%Y%m%d") for d in (0, 1)})


def sigv4_needles(secrets, regions, services, dates=None):
    """Needles for every SigV4 key derived from `secrets` ({label: secret access key}):
    the four chain keys, the HMAC pad blocks of kSigning and of "AWS4"+secret.
    Returns {label: bytes}; labels name the secret's label, never the secret."""
    out = {}
    for label, secret in secrets.items():
        ipad, opad = hmac_pads(("AWS4" + secret).encode())
        out[f"HMAC ipad block of AWS4+{label}"] = ipad[:len(secret) + 4]
        out[f"HMAC opad block of AWS4+{label}"] = opad[:len(secret) + 4]
        for date in dates or sigv4_dates():
            for region in regions:
                for service in services:
                    chain = sigv4_chain(secret, date, region, service)
                    where = f"{date}/{region}/{service} of {label}"
                    for name, key in chain.items():
                        out[f"{name} {where}"] = key
                    ipad, opad = hmac_pads(chain["kSigning"])
                    out[f"kSigning XOR ipad {where}"] = ipad[:32]
                    out[f"kSigning XOR opad {where}"] = opad[:32]
    return out


def totp_needles(seed):
    """The TOTP seed as 1Password stores it (base32), decoded (the HMAC-SHA1 key) and as
    the HMAC's ipad/opad blocks."""
    import base64

    s = seed.replace(" ", "").upper()
    raw = base64.b32decode(s + "=" * (-len(s) % 8))
    ipad, opad = hmac_pads(raw)
    return {"TOTP seed (base32)": s.encode(), "TOTP seed (raw key)": raw,
            "TOTP seed (HMAC ipad)": ipad[:len(raw)], "TOTP seed (HMAC opad)": opad[:len(raw)]}


# --------------------------------------------------------------------------
# raw protocol client


def frame(obj_or_bytes):
    body = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
    return struct.pack(">I", len(body)) + body


def pctl_version(pctl_bin):
    global PROTO_VERSION
    if PROTO_VERSION is None:
        out = subprocess.run([pctl_bin, "--version"], capture_output=True, text=True,
                             timeout=10).stdout.split()
        PROTO_VERSION = out[-1]
    return PROTO_VERSION


def connect(sock_path, timeout=10.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    return s


def recv_exact(s, n):
    buf = b""
    for _ in range(100000):
        if len(buf) >= n:
            break
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def read_response(s):
    """One response frame as a dict, or None when the daemon closed without answering."""
    hdr = recv_exact(s, 4)
    if len(hdr) < 4:
        return None
    (n,) = struct.unpack(">I", hdr)
    assert n <= 64 * 1024, f"daemon sent an oversize frame ({n} bytes)"
    body = recv_exact(s, n)
    assert len(body) == n, "truncated response"
    return json.loads(body)


def exchange_raw(sock_path, payload, timeout=10.0, shut_wr=False):
    """Send raw bytes; return (response dict or None, closed_after: bool)."""
    s = connect(sock_path, timeout)
    try:
        if payload:
            s.sendall(payload)
        if shut_wr:
            s.shutdown(socket.SHUT_WR)
        try:
            resp = read_response(s)
        except ConnectionResetError:
            # the daemon closed with our unread bytes in its queue (Linux: ECONNRESET)
            return None, True
        try:
            rest = s.recv(1)
            closed = rest == b""
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            closed = False
        return resp, closed
    finally:
        s.close()


def request(sock_path, req, version, timeout=10.0):
    s = connect(sock_path, timeout)
    try:
        s.sendall(frame({"version": version, "request": req}))
        return read_response(s)
    finally:
        s.close()


# --------------------------------------------------------------------------
# another user


def as_nobody(argv):
    return [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


def chown_tree(path, uid, gid):
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, uid, gid)
        for n in dirnames + filenames:
            os.lchown(os.path.join(dirpath, n), uid, gid)


def without_ipc_lock(argv):
    """argv run as root but without CAP_IPC_LOCK (dropped from the bounding and inheritable
    sets, so neither it nor a daemon it starts gets it back): RLIMIT_MEMLOCK then binds
    as it does for an ordinary user."""
    return [SETPRIV, "--bounding-set=-ipc_lock", "--inh-caps=-ipc_lock", *argv]


def memlock_limit(nbytes):
    """A preexec_fn that sets RLIMIT_MEMLOCK (soft and hard) to nbytes, as `ulimit -l`."""
    import resource

    def apply():
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (nbytes, nbytes))
    return apply


def proc_limit(pid, name):
    """(soft, hard) of one line of /proc/PID/limits, e.g. 'Max locked memory'."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith(name):
                parts = line[len(name):].split()
                return parts[0], parts[1]
    raise AssertionError(f"no {name!r} line in /proc/{pid}/limits")


def has_cap(pid, bit):
    """Whether capability number `bit` is in the process's effective set."""
    return bool(int(proc_status(pid)["CapEff"], 16) >> bit & 1)


CAP_IPC_LOCK = 14


def short_tmpdir(prefix="pctl-sec-", mode=0o700):
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, mode)
    return d


# --------------------------------------------------------------------------
# a fault-injecting HTTP front for moto


STS_ERROR = """<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>
"""

FAULTS = {
    "throttle": (400, "Throttling", "Rate exceeded"),
    "denied": (403, "AccessDenied",
               "User: arn:aws:iam::123456789012:user/operator is not authorized to perform: "
               "sts:AssumeRole on resource: arn:aws:iam::123456789012:role/x"),
    "expired": (400, "ExpiredToken", "The security token included in the request is expired"),
}


class FaultFront:
    """HTTP server in this process on 127.0.0.1 that forwards to `upstream` (moto) and,
    for requests whose Action is in `actions`, answers an STS error instead:

    mode = ("forward",) | (fault, count) where count is how many matching requests get
    the fault before forwarding again (None = always).
    """

    def __init__(self, upstream, actions=("AssumeRole", "GetSessionToken")):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.actions = set(actions)
        self.lock = threading.Lock()
        self.mode = ("forward", 0)
        self.log = []  # (action, answered_with)
        front = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _do(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                if "x-www-form-urlencoded" in self.headers.get("Content-Type", ""):
                    params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
                action = params.get("Action")
                fault = None
                with front.lock:
                    kind, left = front.mode
                    if kind != "forward" and action in front.actions:
                        if left is None or left > 0:
                            fault = kind
                            if left is not None:
                                front.mode = (kind, left - 1)
                    front.log.append((action, fault or "forward"))
                if fault:
                    status, code, msg = FAULTS[fault]
                    data = STS_ERROR.format(code=code, message=msg).encode()
                    self.send_response_only(status)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                conn = http.client.HTTPConnection(front.upstream.hostname, front.upstream.port,
                                                  timeout=30)
                try:
                    conn.putrequest(self.command, self.path, skip_host=True,
                                    skip_accept_encoding=True)
                    for k, v in self.headers.items():
                        if k.lower() not in ("connection", "keep-alive", "content-length",
                                             "transfer-encoding"):
                            conn.putheader(k, v)
                    conn.putheader("Content-Length", str(len(body)))
                    conn.endheaders(body)
                    r = conn.getresponse()
                    data, status, headers = r.read(), r.status, r.getheaders()
                except OSError as e:
                    data, status, headers = str(e).encode(), 502, [("Content-Type", "text/plain")]
                finally:
                    conn.close()
                self.send_response_only(status)
                for k, v in headers:
                    if k.lower() not in ("connection", "keep-alive", "content-length",
                                         "transfer-encoding", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _do

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, kind, count=None):
        with self.lock:
            self.mode = (kind, count)
            self.log.clear()

    def answered(self, action):
        with self.lock:
            return [a for act, a in self.log if act == action]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------
# TLS in front of moto


class TlsTerminator:
    """tests/fixtures/tls_proxy.py as a subprocess: https://127.0.0.1:PORT relayed to a
    plain-HTTP upstream (moto), with a server certificate signed by a test CA. Point the
    daemon at `url` and let it trust `ca` (SSL_CERT_FILE)."""

    def __init__(self, upstream, workdir):
        from certs import make_ca_and_leaf

        os.makedirs(workdir, exist_ok=True)
        self.upstream, self.workdir = upstream, workdir
        self.ca, self.cert, self.key = make_ca_and_leaf(os.path.join(workdir, "pki"))
        self.log = os.path.join(workdir, "tls.jsonl")
        self.proc = None

    def start(self):
        port_file = os.path.join(self.workdir, "tls.port")
        self.proc, self.port = rig.start_server(
            [sys.executable, os.path.join(rig.FIXTURES, "tls_proxy.py"), "--upstream",
             self.upstream, "--cert", self.cert, "--key", self.key, "--log", self.log,
             "--port-file", port_file],
            port_file, os.path.join(self.workdir, "tls.out"), env=rig.clean_base_env(),
            what="TLS terminator")
        self.url = f"https://127.0.0.1:{self.port}"
        return self

    def connections(self):
        """One record per finished connection: tls_version, cipher, byte counts."""
        return rig.read_jsonl(self.log)

    def stop(self):
        rig.stop_process(self.proc)


def timed(fn, *a, **kw):
    t0 = time.monotonic()
    r = fn(*a, **kw)
    return r, time.monotonic() - t0
