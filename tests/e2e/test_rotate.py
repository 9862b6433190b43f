"""`pctl rotate` (issue 10 §3) against moto with IAM authentication ON (a deleted or unknown
key is refused, so "works" means GetCallerIdentity succeeds) and the `op` stand-in's
`item edit`. A fault is injected at each step; afterwards the key in 1Password works
against moto and at most the expected keys exist.
"""

import json
import os
import signal

import pytest

import rig

ROT_POLICY = ["sts:GetCallerIdentity", "sts:AssumeRole", "iam:ListAccessKeys",
              "iam:CreateAccessKey", "iam:DeleteAccessKey"]


@pytest.fixture(scope="module")
def moto_rot(moto_scratch, request):
    """moto with auth on and an admin user whose keys create one rotating user per test."""
    m = rig.claim_moto(moto_scratch, request)
    iam = m.client("iam")
    iam.create_user(UserName="admin")
    iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    k = iam.create_access_key(UserName="admin")["AccessKey"]
    m.admin = (k["AccessKeyId"], k["SecretAccessKey"])
    m.n = 0
    m.set_auth(True)
    return m


def admin(m, service):
    return m.client(service, akid=m.admin[0], secret=m.admin[1])


def works(m, akid, secret):
    try:
        m.client("sts", akid=akid, secret=secret).get_caller_identity()
        return True
    except Exception:  # noqa: BLE001 - any refusal means the key does not work
        return False


@pytest.fixture
def rot(pctl_env, moto_rot):
    moto_rot.n += 1
    user = f"rotator{moto_rot.n}"
    iam = admin(moto_rot, "iam")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    env = pctl_env(moto_rot.url)
    env.user, env.moto, env.iam = user, moto_rot, iam
    env.set_policy = lambda actions: iam.put_user_policy(
        UserName=user, PolicyName="rotate", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
    env.set_policy(ROT_POLICY)
    env.op_store([rig.aws_item(key["AccessKeyId"], key["SecretAccessKey"])])
    env.old = key["AccessKeyId"]
    return env


def item_keys(env):
    with open(os.path.join(env.home, ".op-fake", "items.json")) as f:
        item = json.load(f)["vaults"][0]["items"][0]
    vals = {f["label"]: f.get("value") for f in item["fields"]}
    return vals["Access Key ID"], vals["Secret Access Key"]


def iam_keys(env):
    return sorted(k["AccessKeyId"] for k in
                  env.iam.list_access_keys(UserName=env.user)["AccessKeyMetadata"])


def assert_safe(env, expect_keys):
    """The key in 1Password works; IAM holds exactly the expected keys."""
    akid, secret = item_keys(env)
    assert works(env.moto, akid, secret), f"the key in 1Password ({akid}) does not work"
    assert iam_keys(env) == sorted(expect_keys)
    return akid


def test_rotate_replaces_the_key_and_keeps_serving(rot):
    env = rot
    env.ok("credential-process", "--role", "admin")  # unlocked with the old key
    r = env.ok("rotate", timeout=120)
    new, secret = item_keys(env)
    assert new != env.old
    assert f"{env.old} replaced by {new}" in r.stdout and "deleted" in r.stdout, r.stdout
    assert_safe(env, [new])
    # the new secret was never in any op argv; the edit read the template from stdin
    for c in env.op_calls():
        assert not any(secret in a for a in c["argv"]), c["argv"]
    edits = env.op_calls("item edit")
    assert len(edits) == 1 and "--template=/dev/stdin" in edits[0]["argv"]
    # the daemon unlocked again with the new key, and serves
    st = env.status()
    assert not st["locked"] and st["identities"][0]["op_reads"] == 2
    # unlock, the item for the template, the read-back, the unlock with the new key
    assert len(env.op_calls("item get")) == 4
    env.ok("credential-process", "--role", "admin")
    # audited with key IDs, never the secret
    audit = open(os.path.join(env.state_dir, "audit.log")).read()
    assert env.old in audit and new in audit and secret not in audit
    assert secret not in open(env.daemon_log).read()


def test_two_keys_stop_and_name_the_one_to_delete(rot):
    env = rot
    other = env.iam.create_access_key(UserName=env.user)["AccessKey"]["AccessKeyId"]
    r = env.run("rotate", timeout=120)
    assert r.returncode != 0
    assert f"delete {other}" in r.stderr and env.old in r.stderr, r.stderr
    assert assert_safe(env, [env.old, other]) == env.old
    assert env.op_calls("item edit") == []


def test_iam_error_changes_nothing(rot):
    env = rot
    env.set_policy([a for a in ROT_POLICY if a != "iam:CreateAccessKey"])
    r = env.run("rotate", timeout=120)
    assert r.returncode != 0
    assert "CreateAccessKey" in r.stderr and "nothing was changed" in r.stderr, r.stderr
    assert assert_safe(env, [env.old]) == env.old


def test_op_edit_failure_deletes_the_new_key(rot):
    """`op` refused the edit (prompt dismissed): nothing was written, the new key goes."""
    env = rot
    env.op_state()
    with open(os.path.join(env.home, ".op-fake", "edit-mode"), "w") as f:
        f.write("dismissed")
    r = env.run("rotate", timeout=120)
    assert r.returncode != 0
    assert "was deleted" in r.stderr and f"{env.old} stays in 1Password" in r.stderr, r.stderr
    assert assert_safe(env, [env.old]) == env.old
    env.ok("credential-process", "--role", "admin")


def assert_unconfirmed(env, r, what):
    """Both keys kept, the answer names the one 1Password holds and what to run."""
    assert r.returncode != 0
    err = " ".join(r.stderr.split())
    keys = iam_keys(env)
    assert len(keys) == 2 and env.old in keys, keys
    new = next(k for k in keys if k != env.old)
    assert what in err, err
    assert f"still holds the old key {env.old}" in err, err
    assert f"if it shows {env.old}, run `aws iam delete-access-key --access-key-id {new}`" \
        in err, err
    assert f"if it shows {new}, run `pctl lock`, `pctl unlock` (reads the new key), then " \
        f"`aws iam delete-access-key --access-key-id {env.old}`" in err, err
    assert "was deleted" not in err
    audit = rig.read_jsonl(os.path.join(env.state_dir, "audit.log"))
    assert not any(a.get("issued") == "rotate_undone" for a in audit), audit
    return new


def test_edit_reported_done_but_old_key_read_back_keeps_both(rot):
    """`op item edit` answers success and changes nothing: pctl cannot tell a lost edit from
    a slow one, so the new key stays; following the printed advice recovers."""
    env = rot
    with open(os.path.join(env.home, ".op-fake", "edit-mode"), "w") as f:
        f.write("ignore")
    r = env.run("rotate", timeout=120)
    new = assert_unconfirmed(env, r, "`op item edit` reported success")
    assert assert_safe(env, [env.old, new]) == env.old
    env.ok("credential-process", "--role", "admin")
    # the advice for "it shows the old key": delete the new one, rotate again
    os.remove(os.path.join(env.home, ".op-fake", "edit-mode"))
    env.iam.delete_access_key(UserName=env.user, AccessKeyId=new)
    env.ok("rotate", timeout=120)
    final = assert_safe(env, [item_keys(env)[0]])
    assert final not in (env.old, new)


def test_edit_that_lands_after_the_read_back_leaves_a_working_key(rot):
    """A slow sync: the edit answers success, the read-back still shows the old key, then the
    edit lands. Deleting the new key at that point (what rotate did before) would leave
    1Password holding a dead key; kept, the key 1Password now holds works."""
    env = rot
    with open(os.path.join(env.home, ".op-fake", "edit-mode"), "w") as f:
        f.write("lag")
    r = env.run("rotate", timeout=120)
    new = assert_unconfirmed(env, r, "`op item edit` reported success")
    # the edit has landed now: 1Password holds the new key, and it works
    assert item_keys(env)[0] == new
    assert_safe(env, [env.old, new])
    # the advice for "it shows the new key": lock, unlock, delete the old one
    os.remove(os.path.join(env.home, ".op-fake", "edit-mode"))
    env.ok("lock")
    env.ok("unlock")
    env.iam.delete_access_key(UserName=env.user, AccessKeyId=env.old)
    env.ok("credential-process", "--role", "admin")
    assert_safe(env, [new])


def test_op_hang_on_edit_times_out_and_keeps_both_keys(rot):
    """`op item edit` killed at the timeout: the write may have reached 1Password, so the new
    key is kept and named."""
    env = rot
    env.write_config(op_timeout="3s")
    with open(os.path.join(env.home, ".op-fake", "edit-mode"), "w") as f:
        f.write("hang")
    r = env.run("rotate", timeout=120)
    new = assert_unconfirmed(env, r, "`op item edit` did not finish")
    assert "did not answer within 3s" in " ".join(r.stderr.split()), r.stderr
    assert assert_safe(env, [env.old, new]) == env.old


def test_delete_old_denied_keeps_the_new_key_in_use_and_says_so(rot):
    env = rot
    env.set_policy([a for a in ROT_POLICY if a != "iam:DeleteAccessKey"])
    r = env.ok("rotate", timeout=120)
    new = assert_safe(env, sorted([env.old, item_keys(env)[0]]))
    assert new != env.old
    assert f"delete-access-key --access-key-id {env.old}" in r.stderr, r.stderr


def test_daemon_crash_between_steps_leaves_a_working_key_and_the_next_run_says_what_to_do(rot):
    env = rot
    pid = env.status()["pid"]
    with open(os.path.join(env.home, ".op-fake", "edit-mode"), "w") as f:
        f.write("hang")
    proc = env.popen("rotate")
    try:
        # the new key exists and the edit is under way: the daemon dies here
        rig.wait_until(lambda: env.op_calls("item edit"), timeout=60, what="op item edit")
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    keys = iam_keys(env)
    assert len(keys) == 2 and env.old in keys
    assert assert_safe(env, keys) == env.old
    new = next(k for k in keys if k != env.old)
    os.remove(os.path.join(env.home, ".op-fake", "edit-mode"))
    r = env.run("rotate", timeout=120)
    assert r.returncode != 0 and f"delete {new}" in r.stderr, r.stderr
    env.iam.delete_access_key(UserName=env.user, AccessKeyId=new)
    env.ok("rotate", timeout=120)
    final = assert_safe(env, [item_keys(env)[0]])
    assert final not in (env.old, new)


def test_daemon_crash_after_the_write_leaves_the_new_key_working(rot):
    """The edit landed, the daemon dies while reading it back (before DeleteAccessKey): the new
    key is in 1Password and works, both keys exist, and the next run names the OLD one."""
    env = rot
    pid = env.status()["pid"]
    state = os.path.join(env.home, ".op-fake")
    with open(os.path.join(state, "edit-mode"), "w") as f:
        f.write("hang-reads-after")
    proc = env.popen("rotate")
    try:
        rig.wait_until(lambda: os.path.exists(os.path.join(state, "get-hang"))
                       and len(env.op_calls("item get")) >= 3, timeout=60,
                       what="the read-back after the edit")
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    os.remove(os.path.join(state, "get-hang"))
    os.remove(os.path.join(state, "edit-mode"))
    keys = iam_keys(env)
    new = assert_safe(env, keys)
    assert new != env.old and sorted(keys) == sorted([env.old, new])
    r = env.run("rotate", timeout=120)
    assert r.returncode != 0 and f"delete {env.old}" in r.stderr, r.stderr
