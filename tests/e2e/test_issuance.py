"""Issue 8 §2, §4, §6 against real peers: caches keyed by what built them (config edits
under an unlocked daemon), one `op` prompt for many waiters, and which `op` runs and how."""

import datetime
import json
import os
import shutil
import subprocess

import rig

VIEWER_ROLE = "platform-viewer"


def _open_env(pctl_env, moto_open):
    env = pctl_env(moto_open.url)
    ident = moto_open.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"])])
    return env


def _caller_arn(env, aws_cli):
    """`aws sts get-caller-identity` with pctl as the profile's credential_process."""
    cfg = os.path.join(env.home, "aws-config")
    with open(cfg, "w") as f:
        f.write(f"[profile admin]\nregion = {rig.REGION}\n"
                f"credential_process = {env.bin} credential-process --role admin\n")
    r = env.run_tool([aws_cli, "sts", "get-caller-identity", "--profile", "admin",
                      "--output", "json"], env={"AWS_CONFIG_FILE": cfg})
    assert r.returncode == 0, r.stderr + env.daemon_log_tail()
    return json.loads(r.stdout)["Arn"]


def test_role_rename_takes_effect_at_the_next_request(pctl_env, moto_open, aws_cli):
    """Edit [roles.admin] name under a running, unlocked daemon: the very next
    credential-process answers for the new role (before: the old role's cached session
    was handed out until it expired)."""
    iam = moto_open.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": moto_open.identity["user_arn"]},
        "Action": "sts:AssumeRole"}]}
    try:
        iam.create_role(RoleName=VIEWER_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    env = _open_env(pctl_env, moto_open)
    assert f":assumed-role/{rig.ROLE_NAME}/" in _caller_arn(env, aws_cli)
    assert env.status()["locked"] is False

    env.write_config({"role": VIEWER_ROLE})
    assert f":assumed-role/{VIEWER_ROLE}/" in _caller_arn(env, aws_cli)
    st = env.status()
    assert any(r["arn"].endswith(f":role/{VIEWER_ROLE}") for r in st["roles"]), st["roles"]
    assert st["counters"]["op_calls"] == 1, "the edit needed no new unlock"


def test_dismissed_prompt_is_one_prompt_for_ten_cold_requests(auth_env):
    """Ten concurrent cold requests queue behind one unlock; the person dismisses the
    1Password prompt once and all ten get that answer: exactly one `op` call."""
    auth_env.ok("status", "--json")  # daemon up, locked
    auth_env.op_state(mode="dismissed", latency=2.0)
    procs = [auth_env.popen("credential-process", "--role", "admin") for _ in range(10)]
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate(timeout=10)
        results.append((p.returncode, out, err))
    for code, out, err in results:
        assert code != 0 and out == "", (code, out, err)
        assert "dismissed" in err, err
    calls = auth_env.op_calls("item get")
    assert len(calls) == 1, f"{len(calls)} op prompts for one dismissal" + auth_env.daemon_log_tail()
    # the next request asks again: the user may approve now
    auth_env.op_state(mode=None, latency=None)
    auth_env.ok("credential-process", "--role", "admin")
    assert len(auth_env.op_calls("item get")) == 2


def test_op_path_is_resolved_shown_and_audited(auth_env):
    auth_env.ok("credential-process", "--role", "admin")
    want = os.path.realpath(os.path.join(rig.FIXTURES, "op"))
    st = auth_env.status()
    assert st["op_path"] == want
    audit = rig.read_jsonl(os.path.join(auth_env.state_dir, "audit.log"))
    unlocks = [a for a in audit if a["issued"] == "unlock"]
    assert unlocks and unlocks[-1]["op_path"] == want, audit


def test_group_writable_op_is_refused(auth_env):
    """An `op` others could replace is never run: clear error, no call."""
    shady = os.path.join(auth_env.root, "shady-bin")
    os.makedirs(shady)
    shutil.copy(os.path.join(rig.FIXTURES, "op"), os.path.join(shady, "op"))
    os.chmod(os.path.join(shady, "op"), 0o755)
    os.chmod(shady, 0o775)  # group-writable directory
    path = shady + os.pathsep + auth_env.env["PATH"]
    r = auth_env.run("credential-process", "--role", "admin", env={"PATH": path})
    rig.assert_pctl_error(r, "shady-bin", any_of=("writable",))
    assert "op_path" in r.stderr
    assert auth_env.op_calls() == []
    # a safe `op` later on PATH is not silently used instead: the first one is refused
    st = auth_env.status()
    assert st["locked"] is True


def test_config_op_path_is_used(auth_env):
    want = os.path.realpath(os.path.join(rig.FIXTURES, "op"))
    text = open(auth_env.config_path).read().replace(
        "[onepassword]\n", f'[onepassword]\nop_path = "{want}"\n')
    auth_env.write_config(text=text)
    # no op on the client's PATH at all
    r = auth_env.run("credential-process", "--role", "admin",
                     env={"PATH": rig.VENV_BIN + os.pathsep + "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr + auth_env.daemon_log_tail()
    assert auth_env.status()["op_path"] == want


def test_item_name_starting_with_a_dash_is_not_a_flag(auth_env):
    """An item called `--format=text` stays the item's name (argv: --vault=V ... -- ITEM)."""
    ident = auth_env.ident
    title = "--format=text"
    auth_env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"],
                                    title=title)])
    auth_env.write_config({"item": title})
    auth_env.ok("credential-process", "--role", "admin")
    argv = auth_env.op_calls("item get")[0]["argv"]
    assert argv[-2:] == ["--", title], argv


def test_mfa_session_end_is_shown(mfa_open_env):
    """`status` shows when the MFA session STS granted ends (issue 8 §3), and the
    lock time never lies past it."""
    env = mfa_open_env
    env.ok("credential-process", "--role", "admin")
    st = env.status()
    assert st["mfa_session_expires"], st
    ends = rig.parse_rfc3339(st["mfa_session_expires"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert now < ends <= now + datetime.timedelta(hours=12, minutes=1), st
    assert rig.parse_rfc3339(st["locks_at"]) <= ends, st
