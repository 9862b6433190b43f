"""The first real apply and the first year (issue 20): what the stack costs and
whether it can be applied to an empty account, checked offline against the
parsed HCL, the variable validations (terraform plans variables.tf alone)
and upstream facts recorded next to the tests."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_hcl  # noqa: E402
import stack_tools  # noqa: E402
from stack_hcl import block  # noqa: E402

HERE = Path(__file__).resolve().parent
TF = stack_tools.TERRAFORM_DIR
VERSIONS = json.loads((HERE / "eks_versions.json").read_text())
# Warn a quarter ahead: enough to test and roll an upgrade before the
# control plane leaves standard support.
MIN_DAYS_OF_STANDARD_SUPPORT = 90


@pytest.fixture(scope="module")
def stack() -> stack_hcl.Stack:
    return stack_hcl.Stack(TF)


def module_inputs(name: str) -> set[str]:
    return {l.strip() for l in (HERE / "module_inputs" / name).read_text().splitlines() if l.strip()}


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


# --------------------------------------------------------------------------
# 1. the default Kubernetes version is in standard support, with margin


def days_of_standard_support_left(version: str, today: dt.date) -> int:
    entry = VERSIONS["eks"].get(version)
    assert entry is not None, (
        f"Kubernetes {version} has no recorded EKS support dates: add them with their source to "
        "tests/platform/eks_versions.json")
    return (dt.date.fromisoformat(entry["end_of_standard_support"]) - today).days


def test_default_kubernetes_version_has_90_days_of_standard_support(stack):
    version = stack.variables["kubernetes_version"]["default"]
    left = days_of_standard_support_left(version, dt.date.today())
    assert left >= MIN_DAYS_OF_STANDARD_SUPPORT, (
        f"EKS standard support of Kubernetes {version} ends in {left} days "
        f"({VERSIONS['eks'][version]['end_of_standard_support']}): raise the default of "
        "var.kubernetes_version (and record the new version's dates in eks_versions.json)")


def test_support_window_check_rejects_the_old_default():
    # 1.34, the previous default, left standard support on 2 December 2026.
    assert days_of_standard_support_left("1.34", dt.date(2026, 12, 3)) < 0
    assert days_of_standard_support_left("1.35", dt.date(2026, 12, 3)) >= MIN_DAYS_OF_STANDARD_SUPPORT
    assert days_of_standard_support_left("1.35", dt.date(2027, 1, 1)) < MIN_DAYS_OF_STANDARD_SUPPORT


def test_support_dates_carry_their_source():
    assert VERSIONS["sources"]["eks_calendar"].startswith("https://docs.aws.amazon.com/eks/")
    for version, entry in VERSIONS["eks"].items():
        released = dt.date.fromisoformat(entry["released"])
        end = dt.date.fromisoformat(entry["end_of_standard_support"])
        # 14 months of standard support (EKS version lifecycle), give or take the day of the month.
        assert 420 <= (end - released).days <= 430, version


def test_karpenter_supports_the_default_kubernetes_version(stack):
    version = stack.variables["kubernetes_version"]["default"]
    minimum = VERSIONS["karpenter_min_version_for_kubernetes"].get(version)
    assert minimum, f"no recorded Karpenter compatibility for Kubernetes {version}"
    oci = (stack_tools.KUBE_DIR / "infra/controllers/karpenter/ocirepository.yaml").read_text()
    import yaml

    tag = yaml.safe_load(oci)["spec"]["ref"]["tag"]
    assert version_tuple(tag)[:2] >= version_tuple(minimum), (tag, minimum)


def test_extended_support_is_off(stack):
    eks = stack.modules["eks"]
    assert "upgrade_policy" in module_inputs("eks-v21.txt")
    assert eks.get("upgrade_policy") == {"support_type": "STANDARD"}, eks.get("upgrade_policy")


# --------------------------------------------------------------------------
# 4. zones by ID: never one where EKS cannot place the control plane

# "Amazon EKS cluster subnets" / VPC requirements in the EKS user guide: the
# zones where cluster creation fails with UnsupportedAvailabilityZoneException.
EKS_UNSUPPORTED_ZONE_IDS = {"use1-az3", "usw1-az2", "cac1-az3"}


def test_zones_exclude_the_ids_eks_does_not_support(stack):
    zones = stack.data["aws_availability_zones"]["available"]
    assert "exclude_zone_ids" in {l.split(".")[-1] for l in
                                  (HERE / "provider_schemas" / "aws-6.25.0.txt").read_text().split()
                                  if l.startswith("data.aws_availability_zones.")}
    assert zones["exclude_zone_ids"] == "${local.eks_unsupported_zone_ids}"
    assert set(stack.locals["eks_unsupported_zone_ids"]) == EKS_UNSUPPORTED_ZONE_IDS
    filters = [block(f) for f in (zones.get("filter") or [])]
    assert not any(f["name"] in {"zone-name", "zone-id"} for f in filters), "zones are not picked by name"
    assert stack.locals["azs"] == "${slice(sort(data.aws_availability_zones.available.names), 0, 3)}"
    assert "availability_zone_suffixes" not in stack.variables


# --------------------------------------------------------------------------
# 9. the trail is optional (organization accounts, CI)


def test_trail_is_optional_and_on_by_default(stack):
    var = stack.variables["create_trail"]
    assert var["type"] in {"bool", "${bool}"} and var["default"] is True
    trail_file = stack_hcl.parse_file(TF / "cloudtrail.tf")
    counted = []
    for kind in ("resource", "data"):
        for group in trail_file.get(kind, []):
            for rtype, by_name in group.items():
                for name, body in by_name.items():
                    assert body.get("count") == "${var.create_trail ? 1 : 0}", f"{kind} {rtype}.{name}"
                    counted.append(f"{rtype}.{name}")
    assert "aws_cloudtrail.this" in counted and len(counted) >= 10
    out = stack.outputs["cloudtrail_log_group_name"]["value"]
    assert out == "${one(aws_cloudwatch_log_group.cloudtrail[*].name)}"
    readme = (TF / "README.md").read_text()
    assert "create_trail" in readme and "organization trail" in readme


# --------------------------------------------------------------------------
# 12. the name fits IAM's 38-character name prefix


IAM_NAME_PREFIX_MAX = 38  # hashicorp/aws: name_prefix of aws_iam_role (64 minus the 26-character suffix)
CLUSTER_ROLE_PREFIX = "{name}-cluster-"  # terraform-aws-modules/eks v21: "${var.name}-cluster" + prefix_separator


@pytest.fixture(scope="module")
def variables_only(tmp_path_factory):
    terraform = stack_tools.require_tool("terraform")
    work = tmp_path_factory.mktemp("tfvars-name")
    shutil.copy(TF / "variables.tf", work / "variables.tf")
    proc = stack_tools.run([terraform, "init", "-input=false", "-backend=false"], cwd=work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return terraform, work


def plan_name(variables_only, name: str):
    terraform, work = variables_only
    return stack_tools.run([terraform, "plan", "-input=false", "-lock=false", "-refresh=false",
                            "-var", 'operator_cidrs=["203.0.113.10/32"]', "-var", "git_url=https://example.com/r.git",
                            "-var", "git_token=x", "-var", f"name={name}"], cwd=work)


def test_longest_accepted_name_fits_the_iam_prefix(variables_only):
    longest = "p" + "r" * 28
    assert len(CLUSTER_ROLE_PREFIX.format(name=longest)) <= IAM_NAME_PREFIX_MAX
    ok = plan_name(variables_only, longest)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    too_long = longest + "x"
    assert len(CLUSTER_ROLE_PREFIX.format(name=too_long)) > IAM_NAME_PREFIX_MAX
    refused = plan_name(variables_only, too_long)
    assert refused.returncode != 0 and "38 characters" in " ".join((refused.stdout + refused.stderr).split())
    for name in ("pr-42", "platform"):
        assert plan_name(variables_only, name).returncode == 0, name
