"""Issue 20 items 6, 7, 10 and 11, on kube/ as Flux applies it: HelmReleases
keep retrying instead of giving up, failing syncs raise an Alert, node AMIs
are pinned, and the GPU pool costs and blocks nothing without a GPU quota.
Field names are checked against the recorded CRD schemas (crd_schemas/)."""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_schemas  # noqa: E402
import stack_tools  # noqa: E402

KUBE = stack_tools.KUBE_DIR
README = KUBE / "README.md"


def objects(kind: str) -> list[tuple[Path, dict]]:
    return [(p, d) for p, d in stack_tools.load_yaml_files(KUBE) if d.get("kind") == kind]


# --------------------------------------------------------------------------
# 6. HelmReleases retry on failure, for install and upgrade


def helmreleases() -> list[tuple[Path, dict]]:
    found = objects("HelmRelease")
    assert {d["metadata"]["name"] for _, d in found} >= {"karpenter", "nvidia-device-plugin"}
    return found


@pytest.mark.parametrize("action", ["install", "upgrade"])
def test_every_helmrelease_retries_on_failure(action):
    for path, release in helmreleases():
        spec = release["spec"].get(action, {})
        strategy = spec.get("strategy", {})
        assert strategy.get("name") == "RetryOnFailure", f"{path}: {action}.strategy"
        assert re.fullmatch(r"([0-9]+(\.[0-9]+)?(ms|s|m|h))+", strategy.get("retryInterval", "")), path
        assert "retries" not in spec.get("remediation", {}), f"{path}: {action} gives up after remediation.retries"


def test_retry_strategy_fields_are_in_the_recorded_schema():
    schema = stack_schemas.crd_schemas()[("helm.toolkit.fluxcd.io", "v2", "HelmRelease")]
    for action in ("install", "upgrade"):
        strategy = schema["properties"]["spec"]["properties"][action]["properties"]["strategy"]
        assert "RetryOnFailure" in strategy["properties"]["name"]["enum"]
        assert "retryInterval" in strategy["properties"]
    for _, release in helmreleases():
        assert stack_schemas.validate_object(release) == []


def test_misspelt_strategy_field_is_caught():
    _, release = helmreleases()[0]
    broken = copy.deepcopy(release)
    broken["spec"]["install"]["strategy"] = {"name": "RetryOnFailure", "retryIntervall": "2m"}
    assert stack_schemas.validate_object(broken)
    wrong = copy.deepcopy(release)
    wrong["spec"]["upgrade"]["strategy"] = {"name": "RetryForever"}
    assert stack_schemas.validate_object(wrong)


# --------------------------------------------------------------------------
# 7. failing sources and kustomizations raise an alert


def test_sync_failures_raise_an_alert():
    providers = {d["metadata"]["name"]: d for _, d in objects("Provider")}
    alerts = [d for _, d in objects("Alert")]
    assert alerts, "no Flux Alert in kube/"
    alert = alerts[0]
    assert alert["metadata"]["namespace"] == "flux-system"
    assert alert["spec"]["eventSeverity"] == "error"
    sources = {(s["kind"], s["name"]) for s in alert["spec"]["eventSources"]}
    assert {("GitRepository", "*"), ("Kustomization", "*"), ("HelmRelease", "*")} <= sources
    provider = providers[alert["spec"]["providerRef"]["name"]]
    assert provider["spec"]["secretRef"]["name"], "the webhook URL is a credential: a Secret, not the manifest"
    assert "address" not in provider["spec"]
    for doc in (alert, provider):
        assert stack_schemas.validate_object(doc) == [], doc["kind"]


def test_alerts_are_applied_by_the_cluster_entry_point():
    # kube/clusters/platform is what flux_bootstrap_git syncs (no kustomization.yaml:
    # Flux applies every manifest there), before any layer that could fail.
    paths = {p.parent for p, _ in objects("Alert")}
    assert paths == {KUBE / "clusters" / "platform"}


def test_token_rotation_and_alerts_are_documented():
    text = (stack_tools.TERRAFORM_DIR / "README.md").read_text()
    section = text[text.index("### Flux's Git token: rotation and alerts"):text.index("### Protected branches")]
    for needle in ("does **not** update it", "flux reconcile source git flux-system", "fine-grained",
                   "--from-file=password=/dev/stdin", "flux-alerts", "Revoke the old token"):
        assert needle in section, needle
    assert "fine-grained token limited to\nthis one repository" in text


# --------------------------------------------------------------------------
# 8. protected branches are documented (teardown behaviour: test_platform_teardown_protected.py)


def test_protected_branch_options_are_documented():
    text = (stack_tools.TERRAFORM_DIR / "README.md").read_text()
    section = text[text.index("### Protected branches"):]
    for needle in ("bypass", "git_branch = \"flux/platform\"", "teardown.sh` does not stop"):
        assert needle in section, needle


# --------------------------------------------------------------------------
# 10. pinned AMIs, documented disruption controls


ALIAS = re.compile(r"^al2023@v(\d{8})$")


def test_node_class_amis_are_pinned_to_one_release():
    aliases = set()
    for path, nodeclass in objects("EC2NodeClass"):
        for term in nodeclass["spec"]["amiSelectorTerms"]:
            assert ALIAS.match(term.get("alias", "")), f"{path}: {term} is not al2023@vYYYYMMDD"
            aliases.add(term["alias"])
    assert len(aliases) == 1, f"node classes on different AMI releases: {aliases}"
    (alias,) = aliases
    assert alias in README.read_text(), "kube/README.md names the pinned release"


def test_disruption_controls_are_documented():
    text = README.read_text()
    for needle in ("### AMI version", "karpenter.sh/do-not-disrupt", "**not expiry**", "expireAfter",
                   "amazon-eks-ami/releases"):
        assert needle in text, needle
    gpu = next(d for _, d in objects("NodePool") if d["metadata"]["name"] == "gpu")
    assert gpu["spec"]["template"]["spec"]["expireAfter"] in text


# --------------------------------------------------------------------------
# 11. GPU quota: documented, and the pool's absence blocks nothing


def test_gpu_quota_is_documented():
    text = README.read_text()
    section = text[text.index("### GPU quota"):]
    for needle in ("L-DB2E81BA", "L-3819A6DF", "request-service-quota-increase", "harmless"):
        assert needle in section, needle


def test_nothing_waits_for_gpu_capacity():
    job = next(d for _, d in objects("Job") if d["metadata"]["name"] == "gpu-check")
    assert job["spec"]["suspend"] is True
    for _, ks in objects("Kustomization"):
        if ks.get("apiVersion", "").startswith("kustomize.toolkit.fluxcd.io"):
            assert not any("gpu" in d["name"] for d in ks["spec"].get("dependsOn", [])), ks["metadata"]["name"]
    workflow = yaml.safe_load((stack_tools.REPO / ".github/workflows/platform.yml").read_text())
    assert "gpu" not in yaml.safe_dump(workflow["jobs"]["e2e"]["steps"]).lower().replace("gpu-check", "")
