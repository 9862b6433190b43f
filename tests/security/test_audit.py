"""Audit (issue 4): every issuance is recorded in $PCTL_STATE_DIR/audit.log (JSON lines)
and in `pctl status --json` .recent with time, peer PID/UID/executable, what was issued
and its expiry, and never a secret."""

import datetime
import json
import os
import stat
import subprocess
import time

import pytest

import rig



def _run_recorded(env, *args):
    """Run a pctl client and return (pid, stdout); the pid is the audited peer."""
    p = env.popen(*args)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err + env.daemon_log_tail()
    return p.pid, out


def _close(a, b, slack=2):
    return abs((rig.parse_rfc3339(a) - rig.parse_rfc3339(b)).total_seconds()) <= slack



@pytest.mark.timeout(120)
def test_every_issuance_is_audited_without_secrets(mfa_open_env, pctl_bin):
    env = mfa_open_env
    t0 = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    steps = []  # (issued, client pid, role, cluster, expiration or None, cached)

    pid, _ = _run_recorded(env, "unlock")
    steps.append(("unlock", pid, None, None, None, False))
    pid, out = _run_recorded(env, "credential-process", "--role", "admin")
    cp1 = json.loads(out)
    steps.append(("credentials", pid, "admin", None, cp1["Expiration"], False))
    pid, out = _run_recorded(env, "credential-process", "--role", "admin")
    cp2 = json.loads(out)
    steps.append(("credentials", pid, "admin", None, cp2["Expiration"], True))
    pid, out = _run_recorded(env, "eks", "token", "--cluster", rig.CLUSTER)
    tok1 = json.loads(out)["status"]
    steps.append(("eks_token", pid, "admin", rig.CLUSTER, tok1["expirationTimestamp"], False))
    pid, out = _run_recorded(env, "eks", "token", "--cluster", rig.CLUSTER)
    tok2 = json.loads(out)["status"]
    steps.append(("eks_token", pid, "admin", rig.CLUSTER, tok2["expirationTimestamp"], True))
    # started through a shell: the audited peer is the client process (exec keeps its pid)
    r = subprocess.run(["/bin/sh", "-c", f'exec "{pctl_bin}" env --role admin'],
                       env=env.env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    t1 = datetime.datetime.now(datetime.timezone.utc)

    audit_path = os.path.join(env.state_dir, "audit.log")
    assert stat.S_IMODE(os.stat(audit_path).st_mode) == 0o600
    raw = open(audit_path).read()
    lines = rig.read_jsonl(audit_path)
    assert len(lines) == len(steps) + 1, lines

    exe = os.path.realpath(pctl_bin)
    for rec, (issued, pid, role, cluster, exp, cached) in zip(lines, steps):
        assert rec["issued"] == issued, (rec, issued)
        assert rec["pid"] == pid, (rec, pid)
        assert rec["uid"] == os.geteuid()
        assert rec["exe"] and os.path.realpath(rec["exe"]) == exe, rec
        assert rec["role"] == role and rec["cluster"] == cluster, rec
        assert rec["cached"] == cached, rec
        when = rig.parse_rfc3339(rec["time"])
        assert t0 - datetime.timedelta(seconds=2) <= when <= t1 + datetime.timedelta(seconds=2)
        assert rec["expiration"], rec
        if exp is not None:
            assert _close(rec["expiration"], exp), (rec["expiration"], exp)
    unlock = lines[0]
    assert rig.parse_rfc3339(unlock["expiration"]) > t0  # when the unlock lifetime ends
    last = lines[-1]
    assert last["issued"] == "credentials" and last["role"] == "admin"
    assert last["expiration"] and _close(last["expiration"], cp1["Expiration"])

    st = json.loads(env.ok("status", "--json").stdout)
    # the file's unlock record also names the `op` that ran; status shows it as .op_path
    assert unlock["op_path"] == st["op_path"] == os.path.realpath(os.path.join(rig.FIXTURES, "op"))
    lines = [{k: v for k, v in rec.items() if k != "op_path"} for rec in lines]
    assert st["recent"] == lines[-len(st["recent"]):], (st["recent"], lines)
    assert len(st["recent"]) == len(lines)

    secrets = {
        "IAM secret": env.ident["secret_access_key"],
        "IAM access key id": env.ident["access_key_id"],
        "TOTP seed": rig.TOTP_SEED,
        "MFA session secret": rig.MOTO_GST_SECRET,
        "session secret": cp1["SecretAccessKey"],
        "session token": cp1["SessionToken"],
        "session token (tail)": cp1["SessionToken"][-40:],
        "EKS token": tok1["token"],
        "EKS token body": tok1["token"][len("k8s-aws-v1."):][:60],
    }
    status_text = json.dumps(st)
    for label, v in secrets.items():
        assert v not in raw, f"{label} in audit.log"
        assert v not in status_text, f"{label} in status --json"
    codes = {rig.totp(rig.TOTP_SEED, at=c["ts"] + dt)
             for c in env.op_calls("item get") for dt in (-30, 0, 30)}
    for c in codes:
        for rec in lines:
            assert c not in json.dumps({k: v for k, v in rec.items() if k != "time"
                                        and k != "expiration"}), f"TOTP code in {rec}"


@pytest.mark.timeout(60)
def test_failed_requests_are_not_audited_as_issuance(auth_env):
    """A refused request (locked daemon) issues nothing, so it records nothing."""
    env = auth_env
    env.ok("unlock")
    env.ok("credential-process", "--role", "admin")
    env.ok("lock")
    r = env.run("credential-process", "--role", "admin")
    assert r.returncode == 1 and "locked" in r.stderr
    lines = rig.read_jsonl(os.path.join(env.state_dir, "audit.log"))
    assert [x["issued"] for x in lines] == ["unlock", "credentials"], lines


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["rotated", "deleted"])
def test_audit_survives_log_rotation(auth_env, how):
    """Records after logrotate (rename) or deletion of audit.log land in a new audit.log,
    not in a file nobody can find any more."""
    env = auth_env
    env.ok("unlock")
    env.ok("credential-process", "--role", "admin")
    path = os.path.join(env.state_dir, "audit.log")
    assert len(rig.read_jsonl(path)) == 2
    if how == "rotated":
        os.rename(path, path + ".1")
    else:
        os.remove(path)
    # The daemon looks at the path again at most once a second (audit.rs
    # RECHECK): the last record was written less than that ago.
    time.sleep(1.0)
    pid, _ = _run_recorded(env, "credential-process", "--role", "admin")
    lines = rig.read_jsonl(path)
    assert [(x["issued"], x["pid"]) for x in lines] == [("credentials", pid)], (
        f"issuance after the log was {how} is missing from {path}: {lines}")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
