"""One name rule for roles, clusters and identities (issue 15 §2): a name outside
^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ is refused by the daemon's parser (main config and
includes), by `pctl init` and its import, and again by the writers of user files; the
command exits non-zero and every user file stays byte for byte as it was. Real botocore
(the .venv's) and real kubectl read the files pctl writes with valid names and see exactly
pctl's profiles and entries."""

import json
import os
import random
import subprocess
import sys

import pytest

import rig

RULE = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

# The role name from the issue, as a quoted TOML key: in `[profile pctl-NAME]` it would
# close the header, open [default] with a credential_process, and reopen a profile.
INJECTION = "a]\n [default]\n credential_process = sh -c 'id > {marker}'\n [profile pctl-zz"

USER_AWS_CONFIG = """\
# my own settings
[default]
region = eu-west-1

[profile work]
region = eu-central-1
"""


def toml_key(s):
    return json.dumps(s)  # a TOML basic string: a quoted key


def config_with_roles(keys, extra=""):
    roles = "".join(f'\n[roles.{toml_key(k)}]\nname = "{rig.ROLE_NAME}"\n' for k in keys)
    return f"""\
region = "{rig.REGION}"
{extra}
[daemon]
op_timeout = "20s"

[onepassword]
item = "{rig.ITEM_TITLE}"
vault = "{rig.VAULT}"
{roles}"""


def botocore_profiles(path):
    """What real botocore reads from the AWS config file at `path`: {profile: {key: value}}."""
    code = ("import json, sys, botocore.session\n"
            "s = botocore.session.Session()\n"
            "print(json.dumps(s.full_config['profiles']))\n")
    env = rig.clean_base_env()
    env.update(AWS_CONFIG_FILE=path, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def env(pctl_env):
    # no AWS call is made: listing roles and writing files only
    return pctl_env("http://127.0.0.1:9")


def snapshot(paths):
    out = {}
    for p in paths:
        try:
            with open(p, "rb") as f:
                out[p] = f.read()
        except FileNotFoundError:
            out[p] = None
    return out


def test_the_injection_from_the_issue_is_refused_and_botocore_sees_only_the_users_profiles(
        env, tmp_path):
    marker = tmp_path / "ran"
    aws_cfg = os.path.join(env.home, ".aws", "config")
    os.makedirs(os.path.dirname(aws_cfg), mode=0o700)
    with open(aws_cfg, "w") as f:
        f.write(USER_AWS_CONFIG)
    kube = os.path.join(env.home, ".kube", "config")
    files = [aws_cfg, aws_cfg + ".pctl-backup", kube, env.config_path]
    env.write_config(text=config_with_roles(["admin", INJECTION.format(marker=marker)]))
    before = snapshot(files)
    for args in (("aws-config", "--write"), ("aws-config", "--write", aws_cfg),
                 ("aws-config",), ("aws-config", "--diff")):
        r = env.run(*args)
        err = rig.assert_pctl_error(r, env.config_path, "roles", RULE)
        assert "[default]" in err and "\\n" in err, err  # the name, escaped, on one line
    assert env.run("__complete", "roles").stdout == ""
    assert snapshot(files) == before, "a user file changed"
    profiles = botocore_profiles(aws_cfg)
    assert set(profiles) == {"default", "work"}, profiles
    assert "credential_process" not in profiles["default"], profiles
    # a plain botocore call with the default profile runs nothing
    r = subprocess.run([sys.executable, "-c",
                        "import botocore.session; "
                        "print(botocore.session.Session().get_credentials())"],
                       env=dict(rig.clean_base_env(), AWS_CONFIG_FILE=aws_cfg,
                                AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                                AWS_EC2_METADATA_DISABLED="true"),
                       capture_output=True, text=True, timeout=60)
    assert not marker.exists(), "the injected credential_process ran"


def test_a_bad_name_in_an_include_is_refused_naming_the_include(env):
    team = os.path.join(os.path.dirname(env.config_path), "team.toml")
    with open(team, "w") as f:
        f.write(f'[clusters.{toml_key("prod: x")}]\nrole = "admin"\n')
    env.write_config(text=config_with_roles(["admin"], extra='include = ["team.toml"]'))
    r = env.run("aws-config")
    rig.assert_pctl_error(r, team, "clusters", "cluster name", RULE)


def random_names(n, seed):
    """Valid names of every shape the rule allows: 1 to 64 characters, '.', '_', '-'."""
    rnd = random.Random(seed)
    first = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    rest = first + "._-"
    names = {"a", "Z" * 64, "0.-_", "prod.eu-west-1", "a..b", "x-", "9_"}
    while len(names) < n:
        k = rnd.choice([1, 2, 5, 20, 63, 64])
        names.add(rnd.choice(first) + "".join(rnd.choice(rest) for _ in range(k - 1)))
    return sorted(names)


def test_valid_names_reach_botocore_as_exactly_pctls_profiles(env):
    names = random_names(60, seed=15)
    env.write_config(text=config_with_roles(names))
    aws_cfg = os.path.join(env.home, ".aws", "config")
    os.makedirs(os.path.dirname(aws_cfg), mode=0o700)
    with open(aws_cfg, "w") as f:
        f.write(USER_AWS_CONFIG)
    env.ok("aws-config", "--write")
    profiles = botocore_profiles(aws_cfg)
    assert set(profiles) == {"default", "work"} | {f"pctl-{n}" for n in names}
    assert profiles["default"] == {"region": "eu-west-1"}
    for n in names:
        p = profiles[f"pctl-{n}"]
        assert set(p) == {"credential_process", "region"}, (n, p)
        assert p["credential_process"].endswith(f" credential-process --role {n}"), (n, p)
        assert p["region"] == rig.REGION
    completed = env.ok("__complete", "roles").stdout.split("\n")
    assert completed[:-1] == names


def test_valid_cluster_names_reach_kubectl_as_exactly_pctls_entries(pctl_env, moto_open,
                                                                     kubectl_bin):
    env = pctl_env(moto_open.url)
    ident = moto_open.identity
    env.op_store([rig.aws_item(ident["access_key_id"], ident["secret_access_key"])])
    keys = ["a", "prod.eu-west-1", "9_x-", "Z" * 64]
    clusters = "".join(f'\n[clusters.{toml_key(k)}]\nname = "{rig.CLUSTER}"\nrole = "admin"\n'
                       for k in keys)
    env.write_config(text=config_with_roles(["admin"]) + clusters)
    kube = os.path.join(env.home, ".kube", "config")
    for k in keys:
        env.ok("kubeconfig", "--cluster", k, "--write", kube, "--endpoint", "https://127.0.0.1:1")
    r = env.run_tool([kubectl_bin, "config", "get-contexts", "-o", "name", "--kubeconfig", kube])
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == sorted(f"pctl-{k}" for k in keys)
    r = env.run_tool([kubectl_bin, "config", "view", "-o", "json", "--kubeconfig", kube])
    doc = json.loads(r.stdout)
    for k in keys:
        user = next(u for u in doc["users"] if u["name"] == f"pctl-{k}")
        assert user["user"]["exec"]["args"] == ["eks", "token", "--cluster", k, "--role", "admin"]


def test_init_refuses_a_role_key_outside_the_rule_and_writes_nothing(auth_env):
    env = auth_env
    os.remove(env.config_path)
    aws_cfg = os.path.join(env.home, ".aws", "config")
    files = [env.config_path, aws_cfg]
    before = snapshot(files)
    for role in ("a]=platform-admin", "-x=platform-admin", "x y=platform-admin",
                 "arn:aws:iam::123456789012:role/team/a+b"):
        r = env.run("init", "--item", rig.ITEM_TITLE, f"--role={role}")
        rig.assert_pctl_error(r, "--role", RULE)
    assert snapshot(files) == before


def test_import_refuses_a_profile_whose_key_breaks_the_rule(env):
    aws_cfg = os.path.join(env.home, "aws-config")
    with open(aws_cfg, "w") as f:
        f.write("[profile ok]\nrole_arn = arn:aws:iam::123456789012:role/ok\n\n"
                "[profile -evil]\nrole_arn = arn:aws:iam::123456789012:role/evil\n")
    files = [env.config_path, aws_cfg]
    before = snapshot(files)
    r = env.run("init", "--from-aws-config", aws_cfg, "--write")
    rig.assert_pctl_error(r, aws_cfg, "[profile -evil]", RULE, "unchanged")
    assert snapshot(files) == before
