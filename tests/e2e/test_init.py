"""`pctl init` (issue 9, section 4): the first run without a config. pctl lists the
1Password items that can hold AWS keys (`op item list`, the stand-in speaking like op 2.x),
takes a pick on a terminal or --item/--vault in scripts, reads the item once, writes pctl's
config and the managed block of ~/.aws/config, and the real `aws` CLI then works through it."""

import json
import os
import pty
import shutil
import stat
import subprocess

import pytest

import rig

ASSUMED = f"arn:aws:sts::{rig.ACCOUNT_ID}:assumed-role/{rig.ROLE_NAME}/"

LOGIN = {"id": "n3wlogin7q2lq4rnyj4cx6ay5e", "title": "Some website", "version": 1,
         "category": "LOGIN", "created_at": "2025-01-01T00:00:00Z",
         "updated_at": "2025-01-01T00:00:00Z",
         "fields": [{"id": "password", "type": "CONCEALED", "purpose": "PASSWORD",
                     "label": "password", "value": "hunter2"}]}
NOTE = {"id": "s3curen0te3xd2yrgdm3kwbdyu", "title": "A secure note", "version": 1,
        "category": "SECURE_NOTE", "fields": []}


@pytest.fixture
def fresh(auth_env):
    """A user with 1Password set up and no pctl config yet."""
    env = auth_env
    os.remove(env.config_path)
    ident = env.ident
    env.op_store([LOGIN, rig.aws_item(ident["access_key_id"], ident["secret_access_key"]), NOTE])
    return env


def aws_config(env):
    return os.path.join(env.home, ".aws", "config")


def read(path):
    with open(path) as f:
        return f.read()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_init_with_flags_then_the_real_aws_cli_works(fresh, aws_cli):
    env = fresh
    r = env.ok("init", "--item", rig.ITEM_TITLE, "--role", rig.ROLE_NAME)  # no terminal
    cfg = read(env.config_path)
    assert f'item = "{rig.ITEM_TITLE}"' in cfg and f'vault = "{rig.VAULT}"' in cfg, cfg
    assert f'region = "{rig.REGION}"' in cfg  # from the item's Default Region
    assert f'[roles.{rig.ROLE_NAME}]\nname = "{rig.ROLE_NAME}"' in cfg
    assert mode(env.config_path) == 0o600
    block = read(aws_config(env))
    assert block.startswith("# BEGIN pctl") and f"[profile pctl-{rig.ROLE_NAME}]" in block
    assert "pctl shell" in r.stderr and f"--profile pctl-{rig.ROLE_NAME}" in r.stderr
    assert "(no MFA)" in r.stderr
    # one read of the item, no listing; the item name after `--`
    assert env.op_calls("item list") == []
    gets = env.op_calls("item get")
    assert len(gets) == 1 and gets[0]["argv"][-2:] == ["--", rig.ITEM_TITLE], gets
    for secret in (env.ident["secret_access_key"], env.ident["access_key_id"]):
        assert secret not in r.stderr + r.stdout + cfg + block

    r = env.run_tool([aws_cli, "sts", "get-caller-identity", "--profile",
                      f"pctl-{rig.ROLE_NAME}", "--output", "json"],
                     env={"AWS_SHARED_CREDENTIALS_FILE": os.path.join(env.home, "none")})
    assert r.returncode == 0, r.stderr + env.daemon_log_tail()
    assert json.loads(r.stdout)["Arn"].startswith(ASSUMED)

    # an existing config is never replaced silently
    before = read(env.config_path)
    r = env.run("init", "--item", rig.ITEM_TITLE, "--role", "other=arn:aws:iam::"
                f"{rig.ACCOUNT_ID}:role/other")
    rig.assert_pctl_error(r, "already exists", "--force")
    assert read(env.config_path) == before
    r = env.ok("init", "--item", rig.ITEM_TITLE, "--vault", rig.VAULT, "--region", "eu-west-1",
               "--role", f"other=arn:aws:iam::{rig.ACCOUNT_ID}:role/other", "--force")
    assert read(env.config_path + ".pctl-backup") == before
    assert 'region = "eu-west-1"' in read(env.config_path)
    assert "[profile pctl-other]" in read(aws_config(env))


def test_init_without_a_terminal_asks_for_item(fresh):
    env = fresh
    r = env.run("init", "--role", rig.ROLE_NAME)
    rig.assert_pctl_error(r, "no terminal", "--item ITEM", "--vault VAULT")
    assert not os.path.exists(env.config_path) and not os.path.exists(aws_config(env))
    assert env.op_calls() == [], "nothing to ask: op is not even run"


def init_on_a_terminal(env, answers, *args, timeout=60):
    """`pctl init ARGS` with a terminal (a pty) as its stdin, `answers` typed ahead;
    returns (exit code, stdout, stderr)."""
    master, slave = pty.openpty()
    p = None
    try:
        p = subprocess.Popen([env.bin, "init", *args], env=env.env, cwd=env.home, stdin=slave,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.close(slave)
        slave = None
        os.write(master, answers.encode())
        out, err = p.communicate(timeout=timeout)
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, out, err


def test_init_numbered_prompt_on_a_terminal(fresh):
    env = fresh
    # a wrong answer is asked again; then item 2, a role and no cluster
    rc, out, err = init_on_a_terminal(env, "7\n2\nplatform-admin\n\n")
    assert rc == 0, err
    assert f"1) Some website  (Login, vault {rig.VAULT})" in err, err
    assert f"2) {rig.ITEM_TITLE}  (API Credential, vault {rig.VAULT})" in err, err
    assert "A secure note" not in err, "only API Credential and Login items are offered"
    assert "answer with a number from 1 to 2" in err
    cfg = read(env.config_path)
    assert f'item = "{rig.ITEM_TITLE}"' in cfg and f'vault = "{rig.VAULT}"' in cfg
    assert f"[roles.{rig.ROLE_NAME}]" in cfg
    lists = env.op_calls("item list")
    assert len(lists) == 1 and "--categories=API Credential,Login" in lists[0]["argv"], lists
    # init's check, then the unlock of the daemon that lists the EKS clusters (issue 21 §8)
    assert len(env.op_calls("item get")) == 2
    assert "hunter2" not in out + err


@pytest.mark.parametrize("omit,needle", [
    (("Account ID",), "no filled field Account ID"),
    (("Access Key ID", "Secret Access Key"), "Access Key ID, Secret Access Key"),
])
def test_init_refuses_an_item_without_the_required_fields(fresh, omit, needle):
    env = fresh
    ident = env.ident
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"], omit=omit)])
    r = env.run("init", "--item", rig.ITEM_TITLE, "--vault", rig.VAULT, "--role", rig.ROLE_NAME)
    rig.assert_pctl_error(r, needle, rig.ITEM_TITLE)
    assert not os.path.exists(env.config_path) and not os.path.exists(aws_config(env))


def test_init_reports_op_errors_in_one_line(fresh):
    env = fresh
    r = env.run("init", "--item", rig.ITEM_TITLE, "--vault", "Nope", "--role", rig.ROLE_NAME)
    rig.assert_pctl_error(r, "op item get failed", '"Nope" isn\'t a vault')
    env.op_state(signed_in=False)
    r = env.run("init", "--item", rig.ITEM_TITLE, "--role", rig.ROLE_NAME)
    rig.assert_pctl_error(r, "not signed in", "op signin")
    assert not os.path.exists(env.config_path)


def test_init_refuses_an_op_others_could_replace(fresh, tmp_path):
    env = fresh
    d = tmp_path / "shared-bin"
    d.mkdir()
    shutil.copy(os.path.join(rig.FIXTURES, "op"), d / "op")
    os.chmod(d, 0o775)  # group-writable directory
    r = env.run("init", "--item", rig.ITEM_TITLE, "--role", rig.ROLE_NAME,
                env={"PATH": f"{d}:{env.env['PATH']}"})
    rig.assert_pctl_error(r, "refusing to run `op`", "writable by its group")
    assert env.op_calls() == [] and not os.path.exists(env.config_path)


def test_init_item_name_starting_with_a_dash_is_not_a_flag(fresh):
    env = fresh
    ident = env.ident
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"],
                               title="--vault=Other")])
    env.ok("init", "--item=--vault=Other", "--role", rig.ROLE_NAME)
    gets = env.op_calls("item get")
    assert gets[0]["argv"][-2:] == ["--", "--vault=Other"], gets
    assert 'item = "--vault=Other"' in read(env.config_path)


def test_init_writes_nothing_when_the_aws_config_block_is_damaged(fresh):
    env = fresh
    path = aws_config(env)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    damaged = "[default]\nregion = eu-west-1\n# BEGIN pctl\n[profile pctl-x]\n"
    with open(path, "w") as f:
        f.write(damaged)
    r = env.run("init", "--item", rig.ITEM_TITLE, "--role", rig.ROLE_NAME)
    rig.assert_pctl_error(r, path, "nothing changed")
    assert read(path) == damaged
    assert not os.path.exists(env.config_path), "both files are planned before either is written"
