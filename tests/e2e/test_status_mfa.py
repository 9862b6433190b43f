"""`pctl status` and `pctl init` name an identity whose 1Password item has no MFA serial
the same way ("no MFA"), issue 16 §2: status used to say "mfa item" for it."""

import json
import os

import rig


def identity_line(env):
    lines = [l for l in env.ok("status").stdout.splitlines()
             if l.startswith("identity default:")]
    assert len(lines) == 1, lines
    return lines[0]


def test_status_says_no_mfa_as_init_did(auth_env):
    env = auth_env  # its item has the keys and the account ID, no MFA serial
    os.remove(env.config_path)
    r = env.ok("init", "--item", rig.ITEM_TITLE, "--role", rig.ROLE_NAME)
    assert "(no MFA)" in r.stderr, r.stderr

    env.ok("credential-process", "--role", rig.ROLE_NAME)
    line = identity_line(env)
    assert ", no MFA," in line and "mfa item" not in line, line
    st = json.loads(env.ok("status", "--json").stdout)
    assert st["identities"][0]["mfa"] == "none", st["identities"][0]

    # what the unlock learnt stays after a lock
    env.ok("lock")
    line = identity_line(env)
    assert "locked" in line and ", no MFA," in line, line


def test_status_names_the_code_source_of_an_item_with_mfa(mfa_open_env):
    env = mfa_open_env
    env.ok("credential-process", "--role", "admin")
    line = identity_line(env)
    assert ", mfa item," in line and "no MFA" not in line, line
