"""Issue 20 item 5, with the real aws CLI against a moto server: the CI
fallback's terminate-karpenter-instances.sh terminates only the Karpenter
instances of the named cluster.

Item 3 (bootstrap-state.sh creates the EC2 Spot service-linked role an empty
account lacks; a second run, or a role made elsewhere, is success) is checked
on the bucket runs of test_platform_bootstrap_state.py, which run the same
script: one run of it starts about fourteen aws CLI processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_tools  # noqa: E402

TERMINATE = stack_tools.TERRAFORM_DIR / "terminate-karpenter-instances.sh"


@pytest.fixture()
def moto(fresh_moto):
    """An empty account for each test: the worker's scratch moto, reset."""
    return fresh_moto


@pytest.fixture()
def env(tmp_path, moto):
    config = tmp_path / "aws-config"
    config.write_text(
        "[profile pctl-admin]\naws_access_key_id = testing\naws_secret_access_key = testing\nregion = us-east-1\n")
    aws_bin = stack_tools.aws_cli()
    return {
        "PATH": f"{Path(aws_bin).parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def run(script: Path, env: dict, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=600,
                          check=False, cwd=cwd)


# --------------------------------------------------------------------------
# the CI fallback: Karpenter instances of one cluster, nothing else


def launch(ec2, tags: dict[str, str]) -> str:
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    reservation = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="t4g.medium",
        TagSpecifications=[{"ResourceType": "instance",
                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
    return reservation["Instances"][0]["InstanceId"]


def state(ec2, instance: str) -> str:
    return ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["State"]["Name"]


def test_fallback_terminates_only_the_clusters_karpenter_instances(env, moto):
    ec2 = moto.client("ec2")
    karpenter = launch(ec2, {"eks:eks-cluster-name": "pr-7", "karpenter.sh/nodepool": "default"})
    karpenter_owned = launch(ec2, {"kubernetes.io/cluster/pr-7": "owned", "karpenter.sh/nodepool": "gpu"})
    node_group = launch(ec2, {"eks:eks-cluster-name": "pr-7", "eks:nodegroup-name": "system"})
    other_cluster = launch(ec2, {"eks:eks-cluster-name": "pr-8", "karpenter.sh/nodepool": "default"})

    proc = run(TERMINATE, env, "--cluster", "pr-7")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert state(ec2, karpenter) == state(ec2, karpenter_owned) == "terminated"
    assert state(ec2, node_group) == state(ec2, other_cluster) == "running"

    again = run(TERMINATE, env, "--cluster", "pr-7")
    assert again.returncode == 0 and "no Karpenter instance of pr-7" in again.stdout


@pytest.mark.parametrize("args, message", [
    ([], "--cluster is required"),
    (["--cluster", "pr-7", "--profile", "default"], "is not a pctl profile"),
    (["--cluster", "Bad Name"], "is not a cluster name"),
], ids=["no-cluster", "non-pctl-profile", "bad-name"])
def test_fallback_bad_input_is_one_clear_line(env, args, message):
    proc = run(TERMINATE, env, *args)
    assert proc.returncode != 0
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
