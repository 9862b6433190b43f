"""`pctl status`: one line per role (issue 16 §2), through the real client and daemon.

The client renders one row per configured role (tests/e2e/test_first_hour.py covers
the plain case). The daemon's reply listed a cached session under the key of the
request that built it: a session built by `eks token --cluster-name ... --role-arn`
(a cluster not in the config) and then used by the configured role `admin` (same ARN,
session name and duration) showed `admin` without a session plus a second line for
the same role, "(no longer configured)".
"""

import json

import rig

ARN = f"arn:aws:iam::{rig.ACCOUNT_ID}:role/{rig.ROLE_NAME}"


def role_lines(text, role):
    return [l for l in text.splitlines() if l.split()[:1] == [role]]


def test_a_session_built_for_an_adhoc_cluster_is_shown_once_under_its_role(auth_env):
    auth_env.ok("eks", "token", "--cluster-name", "other", "--region", rig.REGION,
                "--role-arn", ARN)
    out = json.loads(auth_env.ok("credential-process", "--role", "admin").stdout)
    st = auth_env.status()
    assert st["counters"]["assume_role"] == 1, st["counters"]  # one session serves both
    text = auth_env.ok("status").stdout
    admin = role_lines(text, "admin")
    assert len(admin) == 1, text
    assert ARN in admin[0] and "until " in admin[0], admin
    assert out["Expiration"][11:16] in admin[0], (out["Expiration"], admin)
    assert role_lines(text, ARN) == [] and "no longer configured" not in text, text
    assert [r["role"] for r in st["roles"]] == ["admin"], st["roles"]


def test_each_role_once_after_tokens_and_credentials(auth_env):
    auth_env.ok("eks", "token", "--cluster", rig.CLUSTER)
    auth_env.ok("credential-process", "--role", "admin")
    text = auth_env.ok("status").stdout
    admin = role_lines(text, "admin")
    assert len(admin) == 1 and "until " in admin[0], text
    assert [r["role"] for r in auth_env.status()["roles"]] == ["admin"]
