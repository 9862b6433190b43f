"""Config files cannot run code (issue 15 §1 and §7): the config and every include must be
the user's (or root's) and writable by the owner only, and so must the directory holding
each (links resolved); an include defines roles and clusters only; `pctl doctor` shows
each include's owner and mode. An `mfa_command` gets a minimal environment (no OP_*) and is
found like `op`; an identity dropped from the config while unlocked is locked and audited;
1Password item titles reach the terminal through the sanitiser.

The daemon runs as root here, so "another user" is `nobody` (uid 65534) via chown."""

import json
import os

import pytest

import rig

NOBODY = 65534
PLANTED_OP = "ops_plantedServiceAccountToken000000000"

# The reproduction from the issue: an include adds an identity whose MFA code comes from a
# shell command that records who it ran as and with what environment.
EVIL_INCLUDE = """\
[identities.team]
item = "{item}"
vault = "{vault}"
mfa = "process"
mfa_command = ["/bin/sh", "-c", "id > {marker}; env >> {marker}; echo 123456"]

[roles.team]
identity = "team"
name = "{role}"
"""

ROLES_ONLY = f"""\
[roles.viewer]
name = "{rig.ROLE_NAME}"

[clusters.prod]
name = "{rig.CLUSTER}"
role = "viewer"
"""


def main_config(include=("team.toml",), extra_identity=""):
    inc = json.dumps(list(include))
    return f"""\
region = "{rig.REGION}"
include = {inc}

[daemon]
op_timeout = "20s"

[onepassword]
item = "{rig.ITEM_TITLE}"
vault = "{rig.VAULT}"
{extra_identity}
[roles.admin]
name = "{rig.ROLE_NAME}"
"""


@pytest.fixture
def mfa_item_env(pctl_env, moto_open):
    """moto without auth; the item has an MFA serial (so an mfa_command would run) and a
    one-time password (for identities with mfa = "item")."""
    env = pctl_env(moto_open.url)
    ident = moto_open.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"],
                               mfa_serial=rig.MFA_SERIAL, totp_seed=rig.TOTP_SEED)])
    return env


def team_path(env):
    return os.path.join(os.path.dirname(env.config_path), "team.toml")


def write(path, text, mode=0o644, uid=None):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    if uid is not None:
        os.chown(path, uid, -1)


def doctor_checks(env, name):
    r = env.run("doctor", "--json")
    return [c for c in json.loads(r.stdout)["checks"] if c["name"] == name]


def test_the_reproduction_an_include_of_another_user_runs_nothing(mfa_item_env, tmp_path):
    env = mfa_item_env
    marker = tmp_path / "ran"
    write(team_path(env), EVIL_INCLUDE.format(item=rig.ITEM_TITLE, vault=rig.VAULT,
                                              marker=marker, role=rig.ROLE_NAME), uid=NOBODY)
    env.write_config(text=main_config())
    for args in (("unlock",), ("credential-process", "--role", "admin"),
                 ("credential-process", "--role", "team")):
        r = env.run(*args, env={"OP_SERVICE_ACCOUNT_TOKEN": PLANTED_OP})
        err = rig.assert_pctl_error(r, team_path(env), "nobody", "uid 65534", "mode 0644",
                                    f"chown root {team_path(env)}")
    assert not marker.exists(), "the include's mfa_command ran"
    assert env.op_calls("item get") == [], "1Password was read under a refused config"
    checks = doctor_checks(env, "include")
    assert len(checks) == 1 and checks[0]["level"] == "fail", checks
    assert "uid 65534" in checks[0]["detail"] and "mode 0644" in checks[0]["detail"], checks
    assert "[ERROR]" not in err


def test_an_own_include_still_cannot_define_identities_or_programs(mfa_item_env, tmp_path):
    env = mfa_item_env
    marker = tmp_path / "ran"
    write(team_path(env), EVIL_INCLUDE.format(item=rig.ITEM_TITLE, vault=rig.VAULT,
                                              marker=marker, role=rig.ROLE_NAME))
    env.write_config(text=main_config())
    for key, text in [
        ("identities", EVIL_INCLUDE.format(item=rig.ITEM_TITLE, vault=rig.VAULT,
                                           marker=marker, role=rig.ROLE_NAME)),
        ("onepassword", f'[onepassword]\nitem = "x"\nvault = "v"\nop_path = "{marker}"\n'),
        ("daemon", '[daemon]\nidle_lock = "36h"\n'),
        ("include", 'include = ["other.toml"]\n'),
        ("mfa_command", 'mfa_command = ["/bin/sh", "-c", "id"]\n'),
    ]:
        write(team_path(env), text + ROLES_ONLY)
        r = env.run("unlock", env={"OP_SERVICE_ACCOUNT_TOKEN": PLANTED_OP})
        rig.assert_pctl_error(r, team_path(env), f'"{key}"', "not allowed in an included file",
                              "[roles] and [clusters] only")
    assert not marker.exists()
    # roles and clusters only: accepted, and doctor shows the include's owner and mode
    write(team_path(env), ROLES_ONLY, mode=0o640)
    env.ok("unlock")
    env.ok("credential-process", "--role", "viewer")
    checks = doctor_checks(env, "include")
    assert [c["level"] for c in checks] == ["ok"], checks
    assert team_path(env) in checks[0]["detail"] and "mode 0640" in checks[0]["detail"]
    assert "uid 0" in checks[0]["detail"], checks
    main = doctor_checks(env, "config")
    assert main[0]["level"] == "ok" and "owner root (uid 0), mode 0" in main[0]["detail"], main


@pytest.mark.parametrize("case", ["group-writable file", "world-writable directory",
                                  "main config group-writable", "link into an open directory"])
def test_files_and_directories_others_can_write_are_refused(auth_env, tmp_path, case):
    env = auth_env
    team = team_path(env)
    conf_dir = os.path.dirname(env.config_path)
    write(team, ROLES_ONLY)
    env.write_config(text=main_config())
    env.ok("credential-process", "--role", "viewer")
    if case == "group-writable file":
        os.chmod(team, 0o664)
        named, mode = team, "mode 0664"
    elif case == "world-writable directory":
        os.chmod(conf_dir, 0o777)
        named, mode = conf_dir, "mode 0777"
    elif case == "main config group-writable":
        os.chmod(env.config_path, 0o620)
        named, mode = env.config_path, "mode 0620"
    else:
        open_dir = tmp_path / "shared"
        open_dir.mkdir()
        target = open_dir / "team.toml"
        write(str(target), ROLES_ONLY)
        os.chmod(open_dir, 0o1777)
        os.remove(team)
        os.symlink(target, team)
        named, mode = str(open_dir), "mode 1777"
    # the change is noticed at the next request: no restart, no edit of the config
    r = env.run("credential-process", "--role", "viewer")
    # a shared sticky directory (like /tmp) is not to be chmod-ed: the fix is to move the file
    fix = "move the file into a directory of yours" if mode == "mode 1777" else "chmod go-w"
    rig.assert_pctl_error(r, named, mode, fix)
    # and the fix the message names is enough
    os.chmod(conf_dir, 0o700)
    os.chmod(env.config_path, 0o600)
    if case == "link into an open directory":
        os.chmod(tmp_path / "shared", 0o755)
    else:
        os.chmod(team, 0o644)
    env.ok("credential-process", "--role", "viewer")


def test_mfa_command_gets_a_minimal_environment_and_a_trusted_program(mfa_item_env, tmp_path):
    env = mfa_item_env
    bindir = tmp_path / "bin"
    bindir.mkdir()
    out = tmp_path / "env.json"
    script = bindir / "pctl-test-mfa"
    script.write_text("#!/bin/sh\n"
                      f"{rig.VENV_BIN}/python3 -c 'import json, os; "
                      f"json.dump(dict(os.environ), open(\"{out}\", \"w\"))'\n"
                      "echo 135791\n")
    script.chmod(0o755)
    text = main_config(include=()).replace(
        f'vault = "{rig.VAULT}"\n', f'vault = "{rig.VAULT}"\nmfa = "process"\n'
        'mfa_command = ["pctl-test-mfa"]\n', 1)
    env.write_config(text=text)
    client_env = {"PATH": f"{bindir}:{env.env['PATH']}", "OP_SERVICE_ACCOUNT_TOKEN": PLANTED_OP,
                  "OP_SESSION_my": "plantedSession", "GITHUB_TOKEN": "ghp_planted",
                  "DISPLAY": ":7", "TERM": "xterm", "LC_ALL": "C.UTF-8",
                  "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent"}
    env.ok("unlock", env=client_env)
    seen = json.loads(out.read_text())
    allowed = {"PATH", "HOME", "LANG", "TERM", "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR",
               "DBUS_SESSION_BUS_ADDRESS", "GPG_TTY",
               "PWD", "SHLVL", "_"}  # the last three: sh's own
    extra = {k for k in seen if k not in allowed and not k.startswith("LC_")}
    assert not extra, f"mfa_command received {extra}"
    assert seen["DISPLAY"] == ":7" and seen["TERM"] == "xterm" and "PATH" in seen, seen
    assert PLANTED_OP not in json.dumps(seen) and "ghp_planted" not in json.dumps(seen)
    # a bare name in a directory others can write is refused, and not run
    env.ok("lock")
    out.unlink()
    os.chmod(bindir, 0o777)
    r = env.run("unlock", env=client_env)
    rig.assert_pctl_error(r, "mfa_command", "refusing to run", str(bindir))
    assert not out.exists(), "an mfa_command others can replace ran"


def test_an_identity_dropped_while_unlocked_is_locked_and_audited(auth_env):
    env = auth_env
    spare = f"""
[identities.spare]
item = "{rig.ITEM_TITLE}"
vault = "{rig.VAULT}"

[roles.spare]
identity = "spare"
name = "{rig.ROLE_NAME}"
"""
    env.write_config(text=main_config(include=(), extra_identity=spare))
    env.ok("unlock")
    env.ok("credential-process", "--role", "spare")
    before = {i["name"]: i["locked"] for i in env.status()["identities"]}
    assert before == {"default": False, "spare": False}, before
    env.write_config(text=main_config(include=()))
    st = env.status()
    ids = {i["name"]: i for i in st["identities"]}
    assert ids["spare"]["locked"], ids
    assert ids["spare"]["lock_reason"] == "removed from the config", ids
    assert not ids["default"]["locked"], "the other identity was locked too"
    audit = rig.read_jsonl(os.path.join(env.state_dir, "audit.log"))
    locks = [a for a in audit if a["issued"] == "lock"]
    assert [a.get("role") for a in locks] == ["identity spare: removed from the config"], audit
    log = open(env.daemon_log).read()
    assert "identity spare is no longer in the config" in log, log[-2000:]
    env.ok("lock", "--identity", "spare")  # still lockable by name
    env.ok("credential-process", "--role", "admin")


def test_item_titles_reach_the_terminal_sanitised(auth_env):
    env = auth_env
    os.remove(env.config_path)
    ident = env.ident
    title = "AWS\x1b]0;owned\x07 key\u202e\x9b2J"
    env.op_store([
        rig.aws_item(ident["access_key_id"], ident["secret_access_key"], title=title),
        rig.aws_item(ident["access_key_id"], ident["secret_access_key"], omit=("Account ID",),
                     title=title + " 2", item_id="t2q7qnq3fbsw5ipw6qcuyjlqeu"),
    ])
    r = env.ok("init", "--item", title, "--region", rig.REGION)
    assert "1Password item 'AWS ]0;owned  key" in r.stderr, r.stderr
    r2 = env.run("init", "--force", "--item", title + " 2", "--region", rig.REGION)
    assert r2.returncode == 1 and "has no filled field Account ID" in r2.stderr, r2.stderr
    for out in (r.stderr, r.stdout, r2.stderr, r2.stdout):
        bad = [c for c in out if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f
               or c == "\u202e"]
        assert not bad, repr(out)
