"""terraform/bootstrap-state.sh (step 0 in an empty account) run with the
real aws CLI against a moto server: every property of the state bucket is
read back afterwards, a second run changes nothing and succeeds, and the
backend.hcl it writes lets `terraform init` use the bucket with a lock file.
The EC2 Spot service-linked role (issue 20 item 3) is checked on the same
runs: created in an empty account, kept by a second run or when it was made
elsewhere.

Each run of the script starts about fourteen aws CLI processes, so each test
checks every property one run can show (one run for a bucket and a role made
by hand, one for another region and a backend.hcl kept) instead of one run
per property.

The profile is a plain static-key `pctl-admin` profile pointing at moto (the
script only ever passes --profile to aws; what that profile runs is the
operator's pctl credential_process in real use)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

import rig  # noqa: E402
import stack_tools  # noqa: E402

SCRIPT = stack_tools.TERRAFORM_DIR / "bootstrap-state.sh"
BUCKET = f"platform-tfstate-{rig.ACCOUNT_ID}"


SPOT_ROLE = "AWSServiceRoleForEC2Spot"


@pytest.fixture()
def moto(fresh_moto):
    """An empty account for each test: the worker's scratch moto, reset."""
    return fresh_moto


def spot_roles(moto) -> list[dict]:
    # By its service path: moto names the role after the service principal
    # (AWSServiceRoleForspot), AWS calls it AWSServiceRoleForEC2Spot.
    return moto.client("iam").list_roles(PathPrefix="/aws-service-role/spot.amazonaws.com/")["Roles"]


@pytest.fixture()
def workspace(tmp_path, moto):
    """A copy of terraform/'s script in a scratch directory (the script writes
    backend.hcl next to itself), and an AWS config with profile pctl-admin."""
    tfdir = tmp_path / "terraform"
    tfdir.mkdir()
    shutil.copy(SCRIPT, tfdir / SCRIPT.name)
    config = tmp_path / "aws-config"
    config.write_text(
        "[profile pctl-admin]\naws_access_key_id = testing\naws_secret_access_key = testing\nregion = us-east-1\n")
    aws_bin = stack_tools.aws_cli()
    env = {
        "PATH": f"{Path(aws_bin).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return tfdir, env


# A guard against a hang, not a time limit: one run starts about fourteen aws
# CLI processes, which on a busy two-core machine took over 120 s.
HANG = 600


def bootstrap(workspace, *args: str) -> subprocess.CompletedProcess:
    tfdir, env = workspace
    return subprocess.run(["bash", str(tfdir / SCRIPT.name), *args], env=env, capture_output=True,
                          text=True, timeout=HANG, check=False)


def bucket_properties(moto, bucket: str) -> dict:
    s3 = moto.client("s3")
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    return {
        "versioning": s3.get_bucket_versioning(Bucket=bucket).get("Status"),
        "encryption": [r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
                       for r in s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]],
        "public_access_block": s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"],
        "ownership": [r["ObjectOwnership"] for r in
                      s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]],
        "policy": policy,
        "lifecycle": s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"],
    }


def assert_bucket_is_hardened(props: dict, bucket: str) -> None:
    assert props["versioning"] == "Enabled"
    assert props["encryption"] == ["AES256"]
    assert props["public_access_block"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    assert props["ownership"] == ["BucketOwnerEnforced"]
    statements = props["policy"]["Statement"]
    tls = [s for s in statements if s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
    assert len(tls) == 1, statements
    deny = tls[0]
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3:*" and deny["Principal"] == "*"
    assert sorted(deny["Resource"]) == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    rule = props["lifecycle"][0]
    assert rule["Status"] == "Enabled"
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1


def test_bootstrap_creates_a_hardened_bucket_and_the_spot_role_and_is_idempotent(workspace, moto):
    tfdir, _ = workspace
    assert spot_roles(moto) == []
    first = bootstrap(workspace)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"creating bucket {BUCKET}" in first.stdout
    assert f"created {SPOT_ROLE}" in first.stdout
    roles = spot_roles(moto)
    assert len(roles) == 1 and roles[0]["Path"] == "/aws-service-role/spot.amazonaws.com/"
    props = bucket_properties(moto, BUCKET)
    assert_bucket_is_hardened(props, BUCKET)

    backend = (tfdir / "backend.hcl").read_text()
    assert f'bucket  = "{BUCKET}"' in backend and 'profile = "pctl-admin"' in backend
    assert 'key     = "platform/terraform.tfstate"' in backend and 'region  = "us-east-1"' in backend

    s3 = moto.client("s3")

    second = bootstrap(workspace)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "exists in this account" in second.stdout and "creating bucket" not in second.stdout
    assert "already names this bucket; kept" in second.stdout
    assert f"{SPOT_ROLE} exists; kept" in second.stdout
    assert len(spot_roles(moto)) == 1
    assert bucket_properties(moto, BUCKET) == props
    assert (tfdir / "backend.hcl").read_text() == backend
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]].count(BUCKET) == 1


def test_existing_bucket_is_brought_into_line_and_a_spot_role_made_elsewhere_kept(workspace, moto):
    # A bucket someone created by hand, without any of the settings, and the
    # spot role made by an earlier spot launch.
    s3 = moto.client("s3")
    s3.create_bucket(Bucket="hand-made-state")
    moto.client("iam").create_service_linked_role(AWSServiceName="spot.amazonaws.com")
    proc = bootstrap(workspace, "--bucket", "hand-made-state")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exists in this account" in proc.stdout and "creating bucket" not in proc.stdout
    assert_bucket_is_hardened(bucket_properties(moto, "hand-made-state"), "hand-made-state")
    assert f"{SPOT_ROLE} exists; kept" in proc.stdout
    assert len(spot_roles(moto)) == 1


def test_other_region_uses_a_location_constraint_and_a_backend_file_naming_another_bucket_is_kept(
        workspace, moto):
    tfdir, _ = workspace
    (tfdir / "backend.hcl").write_text('bucket = "somebody-elses"\n')
    proc = bootstrap(workspace, "--bucket", "state-eu-example", "--region", "eu-west-1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s3 = moto.client("s3")
    assert s3.get_bucket_location(Bucket="state-eu-example")["LocationConstraint"] == "eu-west-1"
    assert "names bucket 'somebody-elses'" in proc.stderr
    assert (tfdir / "backend.hcl").read_text() == 'bucket = "somebody-elses"\n'


@pytest.mark.parametrize(
    "args, message",
    [
        (["--profile", "default"], "is not a pctl profile"),
        (["--bucket", "Bad_Name"], "is not a valid S3 bucket name"),
        (["--bucket"], "--bucket needs a value"),
        (["--colour"], "unknown argument --colour"),
    ],
    ids=["non-pctl-profile", "bad-bucket-name", "missing-value", "unknown-arg"],
)
def test_bad_input_is_one_clear_line(workspace, args, message):
    proc = bootstrap(workspace, *args)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_unreachable_credentials_say_what_to_do(workspace):
    tfdir, env = workspace
    # Nothing listens there; one attempt, no retries.
    env = dict(env, AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_MAX_ATTEMPTS="1", AWS_RETRY_MODE="standard")
    proc = subprocess.run(["bash", str(tfdir / SCRIPT.name)], env=env, capture_output=True, text=True,
                          timeout=HANG, check=False)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) >= 1
    assert "cannot get an identity through profile pctl-admin" in proc.stderr


def test_terraform_init_uses_the_bucket_with_a_lock_file(workspace, moto, tmp_path):
    """The written backend.hcl, plus moto endpoints, initialises the S3
    backend with use_lockfile (as versions.tf does) and stores state there."""
    terraform = stack_tools.require_tool("terraform")
    tfdir, env = workspace
    proc = bootstrap(workspace, "--bucket", "state-init-example")
    assert proc.returncode == 0, proc.stderr
    # moto enforces bucket policies without their conditions, so its TLS-only
    # Deny would refuse this plain-HTTP test server's writes even though AWS
    # (over TLS) allows them; the policy itself is checked above.
    moto.client("s3").delete_bucket_policy(Bucket="state-init-example")
    (tfdir / "main.tf").write_text(
        'terraform {\n  backend "s3" {\n    use_lockfile = true\n    encrypt      = true\n  }\n}\n\n'
        'resource "terraform_data" "marker" {\n  input = "bootstrapped"\n}\n')
    extra = [
        f"-backend-config=endpoints={{s3=\"{moto.url}\",sts=\"{moto.url}\",iam=\"{moto.url}\"}}",
        "-backend-config=use_path_style=true",
        "-backend-config=skip_credentials_validation=true",
        "-backend-config=skip_requesting_account_id=true",
        "-backend-config=skip_metadata_api_check=true",
    ]
    tf_env = dict(os.environ, **env, CHECKPOINT_DISABLE="1", TF_IN_AUTOMATION="1")
    tf_env.pop("AWS_ENDPOINT_URL")
    for argv in ([terraform, "init", "-input=false", "-no-color", "-backend-config=backend.hcl", *extra],
                 [terraform, "apply", "-auto-approve", "-input=false", "-no-color"]):
        run = subprocess.run(argv, cwd=tfdir, env=tf_env, capture_output=True, text=True, timeout=HANG, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
    s3 = moto.client("s3")
    state = json.loads(s3.get_object(Bucket="state-init-example", Key="platform/terraform.tfstate")["Body"].read())
    assert state["resources"][0]["type"] == "terraform_data"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="state-init-example").get("Contents", [])]
    assert keys == ["platform/terraform.tfstate"], "the lock file must be released after apply"

