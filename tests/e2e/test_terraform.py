"""Real terraform init + apply, S3 backend on moto (auth on), authenticated only via pctl's
credential_process (issue 2)."""

import json
import os

import pytest

import rig

# slow tier (tests/run --slow): real Terraform / real shells
pytestmark = pytest.mark.slow

MAIN_TF = """\
terraform {{
  backend "s3" {{
    bucket                      = "pctl-tfstate"
    key                         = "{key}"
    region                      = "us-east-1"
    profile                     = "pctl-admin"
    endpoints                   = {{ s3 = "{url}", sts = "{url}", iam = "{url}" }}
    use_path_style              = true
    skip_credentials_validation = true
    skip_requesting_account_id  = true
    skip_metadata_api_check     = true
    skip_region_validation      = true
    use_lockfile                = true
  }}
}}

resource "terraform_data" "marker" {{
  input = "applied-through-pctl"
}}

output "marker" {{
  value = terraform_data.marker.output
}}
"""


@pytest.mark.timeout(240)
def test_terraform_s3_backend_via_credential_process(auth_env, terraform_bin, tmp_path):
    env = auth_env
    aws_config = os.path.join(env.home, ".aws", "config")
    os.makedirs(os.path.dirname(aws_config), exist_ok=True)
    env.ok("aws-config", "--write", aws_config)
    work = os.path.join(env.home, "stack")
    os.makedirs(work)
    key = f"e2e/{os.path.basename(env.root)}/terraform.tfstate"
    with open(os.path.join(work, "main.tf"), "w") as f:
        f.write(MAIN_TF.format(key=key, url=env.moto.url))
    tf_env = {"AWS_CONFIG_FILE": aws_config,
              "AWS_SHARED_CREDENTIALS_FILE": os.path.join(env.home, ".aws", "credentials")}
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        assert var not in env.env

    init = env.run_tool([terraform_bin, "init", "-input=false", "-no-color"], env=tf_env,
                        cwd=work, timeout=180)
    assert init.returncode == 0, init.stdout + init.stderr + env.daemon_log_tail()
    apply = env.run_tool([terraform_bin, "apply", "-auto-approve", "-input=false", "-no-color"],
                         env=tf_env, cwd=work, timeout=180)
    assert apply.returncode == 0, apply.stdout + apply.stderr + env.daemon_log_tail()
    assert "applied-through-pctl" in apply.stdout

    # The state landed in moto's bucket, readable with the role's credentials.
    creds = json.loads(env.ok("credential-process", "--role", "admin").stdout)
    s3 = env.moto.client("s3", creds["AccessKeyId"], creds["SecretAccessKey"],
                         creds["SessionToken"])
    state = json.loads(s3.get_object(Bucket="pctl-tfstate", Key=key)["Body"].read())
    assert any(r["type"] == "terraform_data" for r in state["resources"])
    # the lock file was released
    listing = s3.list_objects_v2(Bucket="pctl-tfstate", Prefix=key)
    assert [o["Key"] for o in listing.get("Contents", [])] == [key]

    st = env.status()
    assert st["counters"]["op_calls"] == 1
    assert st["counters"]["assume_role"] == 1
    # A second terraform run (plan) reuses the session
    plan = env.run_tool([terraform_bin, "plan", "-input=false", "-no-color",
                         "-detailed-exitcode"], env=tf_env, cwd=work, timeout=180)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert env.status()["counters"]["assume_role"] == 1
    assert len(env.op_calls("item get")) == 1
