"""`pctl doctor` against real peers (moto, the `op` stand-in) and each FAIL it can report;
`pctl prompt` exit codes; what `pctl env` exports for prompts; `-o json`."""

import json
import os
import shutil
import stat
import threading
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import rig


def doctor(pctl, *args, **kw):
    r = pctl.run("doctor", *args, **kw)
    lines = {}
    for line in r.stdout.splitlines():
        level, name = line[:4].strip(), line[6:19].strip()
        lines[name] = (level, line)
    return r, lines


def test_healthy_setup_is_all_ok(auth_env):
    auth_env.ok("unlock")
    auth_env.ok("aws-config", "--write")  # the managed block of ~/.aws/config
    r = auth_env.run("doctor", "-o", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    levels = {c["name"]: c["level"] for c in report["checks"]}
    assert report["ok"] is True
    for name in ("pctl", "socket dir", "daemon", "op", "op signed in", "config", "item",
                 "sts", "clock", "aws profiles"):
        assert levels.get(name) == "ok", (name, report)
    by = {c["name"]: c for c in report["checks"]}
    assert "2.30.0" in by["op"]["detail"] and "operator@example.com" in by["op signed in"]["detail"]
    assert "entries run this pctl" in by["aws profiles"]["detail"]
    assert "within" in by["clock"]["detail"]
    # --json is the same report; text has one line per check
    assert json.loads(auth_env.ok("doctor", "--json").stdout)["ok"] is True
    text = auth_env.ok("doctor").stdout.splitlines()
    assert len(text) == len(report["checks"]) and all(l[:4] in ("OK  ", "WARN") for l in text)
    # doctor never reads 1Password: the one read is the unlock's
    assert len(auth_env.op_calls("item get")) == 1


def test_locked_daemon_says_item_not_checked(auth_env):
    r, lines = doctor(auth_env)
    assert lines["item"][0] == "WARN" and "pctl unlock" in lines["item"][1]
    assert auth_env.op_calls("item get") == []
    assert r.returncode == 0, r.stdout


def test_op_missing_fails(auth_env):
    path = os.pathsep.join([rig.VENV_BIN, "/usr/bin", "/bin"])
    assert not any(os.path.exists(os.path.join(d, "op")) for d in path.split(os.pathsep))
    r, lines = doctor(auth_env, env={"PATH": path})
    assert r.returncode == 1
    assert lines["op"][0] == "FAIL" and "not found" in lines["op"][1] and "fix:" in lines["op"][1]


def test_group_writable_op_fails(auth_env):
    bindir = os.path.join(auth_env.root, "opbin")
    os.makedirs(bindir, mode=0o755)
    op = os.path.join(bindir, "op")
    shutil.copy(os.path.join(rig.FIXTURES, "op"), op)
    os.chmod(op, 0o775)
    r, lines = doctor(auth_env, env={"PATH": bindir + os.pathsep + auth_env.env["PATH"]})
    assert r.returncode == 1
    assert lines["op"][0] == "FAIL" and "writable by its group" in lines["op"][1], lines["op"]
    assert "chmod go-w" in lines["op"][1]


def test_op_not_signed_in_warns(auth_env):
    auth_env.op_state(signed_in=False)
    r, lines = doctor(auth_env)
    assert lines["op signed in"][0] == "WARN", lines
    assert auth_env.op_calls("whoami"), "doctor asks `op whoami`"


def test_bad_config_fails(auth_env):
    auth_env.write_config(text='region = "us-east-1"\n[roles.admin]\nduration = "1h"\n')
    r, lines = doctor(auth_env)
    assert r.returncode == 1
    assert lines["config"][0] == "FAIL" and auth_env.config_path in lines["config"][1]


def test_open_socket_dir_fails_without_starting_a_daemon(auth_env):
    d = os.path.dirname(auth_env.sock)
    os.makedirs(d)
    os.chmod(d, 0o777)
    r, lines = doctor(auth_env)
    assert r.returncode == 1
    assert lines["socket dir"][0] == "FAIL" and "chmod 700" in lines["socket dir"][1]
    assert "daemon" not in lines and not os.path.exists(auth_env.sock)


class _OldDate(BaseHTTPRequestHandler):
    """An endpoint whose clock is an hour behind: answers like STS refusing a bad key."""

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = (b'<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>'
                b'<Message>The security token included in the request is invalid.</Message>'
                b'</Error><RequestId>0</RequestId></ErrorResponse>')
        self.send_response_only(403)
        self.send_header("Date", formatdate(self.server.date_at(), usegmt=True))
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *a):
        pass


@pytest.fixture
def old_clock_sts():
    import time

    srv = ThreadingHTTPServer(("127.0.0.1", 0), _OldDate)
    srv.date_at = lambda: time.time() - 3600
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_skewed_clock_fails(pctl_env, old_clock_sts):
    env = pctl_env(old_clock_sts, extra_env={"HTTPS_PROXY": "http://127.0.0.1:1",
                                              "NO_PROXY": "127.0.0.1"})
    r, lines = doctor(env)
    assert r.returncode == 1, r.stdout
    assert lines["sts"][0] == "OK" and "HTTPS_PROXY=http://127.0.0.1:1" in lines["sts"][1]
    level, line = lines["clock"]
    assert level == "FAIL" and "ahead of STS" in line, line
    skew = int(line.split("machine is ")[1].split("s ")[0])
    assert 3590 <= skew <= 3610, line


def test_unreachable_sts_fails(pctl_env):
    env = pctl_env(f"http://127.0.0.1:{rig.free_port()}")
    r, lines = doctor(env)
    assert r.returncode == 1
    assert lines["sts"][0] == "FAIL" and "cannot reach" in lines["sts"][1]


def test_entries_pointing_at_another_pctl_fail(auth_env):
    aws_dir = os.path.join(auth_env.home, ".aws")
    os.makedirs(aws_dir)
    with open(os.path.join(aws_dir, "config"), "w") as f:
        f.write("[profile old]\ncredential_process = /opt/gone/pctl credential-process --role admin\n")
    kube = os.path.join(auth_env.home, ".kube")
    os.makedirs(kube)
    with open(os.path.join(kube, "config"), "w") as f:
        f.write("users:\n- name: u\n  user:\n    exec:\n      command: /opt/gone/pctl\n")
    r, lines = doctor(auth_env)
    assert r.returncode == 1
    assert lines["aws profiles"][0] == "FAIL" and "/opt/gone/pctl" in lines["aws profiles"][1]
    assert lines["kubeconfig"][0] == "FAIL" and "does not exist" in lines["kubeconfig"][1]


def test_prompt_exit_codes_and_short_form(auth_env):
    r = auth_env.run("prompt")
    assert (r.returncode, r.stdout.strip()) == (4, "stopped")
    assert not os.path.exists(auth_env.sock), "prompt must not start a daemon"
    auth_env.ok("status")  # starts it, locked
    r = auth_env.run("prompt")
    assert (r.returncode, r.stdout.strip()) == (3, "locked")
    exports = auth_env.ok("env", "--role", "admin", "--shell", "bash").stdout
    assert "export PCTL_ROLE='admin';" in exports
    assert "export AWS_CREDENTIAL_EXPIRATION=" in exports
    r = auth_env.run("prompt", env={"PCTL_ROLE": "admin"})
    assert r.returncode == 0, r.stderr
    role, minutes = r.stdout.split()
    assert role == "admin" and minutes.endswith("m") and 55 <= int(minutes[:-1]) <= 60
    j = json.loads(auth_env.ok("prompt", "-o", "json", env={"PCTL_ROLE": "admin"}).stdout)
    assert j["state"] == "unlocked" and j["role"] == "admin"
    assert auth_env.run("prompt", "--quiet").stdout == ""
    auth_env.ok("lock")
    assert auth_env.run("prompt", "-q").returncode == 3


def test_exec_exports_role_marker(auth_env):
    r = auth_env.ok("exec", "--role", "admin", "--", "sh", "-c",
                    'echo "$PCTL_ROLE $AWS_CREDENTIAL_EXPIRATION"')
    role, exp = r.stdout.split()
    assert role == "admin" and exp.endswith("Z")


def test_status_accepts_output_json(auth_env):
    a = json.loads(auth_env.ok("status", "--output", "json").stdout)
    b = json.loads(auth_env.ok("status", "-o", "json").stdout)
    assert a["version"] == b["version"] and a["pid"] == b["pid"]
    r = auth_env.run("status", "-o", "yaml")
    assert r.returncode == 2 and "yaml" in r.stderr
