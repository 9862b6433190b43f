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
