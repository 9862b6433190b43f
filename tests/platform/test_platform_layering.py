"""The Flux tree converges on a fresh cluster: no Kustomization applies a
custom resource before the Kustomization installing its CRD is Ready.

The checker (stack_layering.py) is proven on broken fixtures, including the
seed's own layout that produced
`no matches for kind "EC2NodeClass" in version "karpenter.k8s.aws/v1"`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_layering  # noqa: E402
import stack_tools  # noqa: E402

FIXTURE = stack_tools.FIXTURES / "layering"
CLUSTER = stack_tools.KUBE_DIR / "clusters" / "platform"


def test_platform_tree_is_layered():
    assert stack_layering.check(stack_tools.REPO, CLUSTER) == []


def test_platform_tree_has_the_three_layers():
    ks = {
        doc["metadata"]["name"]: doc["spec"]
        for _, doc in stack_tools.load_yaml_files(CLUSTER)
        if doc.get("kind") == "Kustomization"
    }
    assert set(ks) == {"infra-controllers", "infra-configs", "apps"}
    assert [d["name"] for d in ks["infra-configs"]["dependsOn"]] == ["infra-controllers"]
    assert [d["name"] for d in ks["apps"]["dependsOn"]] == ["infra-configs"]
    for name, spec in ks.items():
        assert spec.get("wait") is True, f"{name} must wait for its resources"
        assert spec.get("timeout"), f"{name} needs a timeout"
        assert spec.get("retryInterval"), f"{name} needs a retryInterval"
        assert spec["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
        assert spec["prune"] is True
        assert (stack_tools.REPO / spec["path"]).is_dir(), f"{name}: {spec['path']} missing"


@pytest.mark.parametrize(
    "case, expected",
    [
        ("broken-seed-layout", 'in the same Kustomization (no matches for kind "EC2NodeClass"'),
        ("broken-missing-dependson", "which infra-configs does not depend on"),
        ("broken-no-wait", "neither waits (wait: true) nor health-checks it"),
        ("broken-cr-at-entry-point", "bootstrap's flux-system Kustomization"),
    ],
)
def test_broken_fixture_is_caught(case, expected):
    problems = stack_layering.check(FIXTURE, FIXTURE / "clusters" / case)
    assert problems, f"{case} should fail the layering check"
    assert any(expected in p for p in problems), problems


def test_seed_layout_names_both_karpenter_kinds():
    problems = stack_layering.check(FIXTURE, FIXTURE / "clusters" / "broken-seed-layout")
    text = "\n".join(problems)
    assert "EC2NodeClass/default (karpenter.k8s.aws)" in text
    assert "NodePool/default (karpenter.sh)" in text


def test_transitive_dependencies_and_crd_manifests_are_accepted():
    assert stack_layering.check(FIXTURE, FIXTURE / "clusters" / "good-transitive") == []


def test_cli_exit_codes():
    ok = stack_tools.run([sys.executable, str(Path(stack_layering.__file__)), str(stack_tools.REPO), str(CLUSTER)])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = stack_tools.run(
        [sys.executable, str(Path(stack_layering.__file__)), str(FIXTURE), str(FIXTURE / "clusters" / "broken-seed-layout")]
    )
    assert bad.returncode == 1
    assert "no matches for kind" in bad.stdout


def _copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(stack_tools.KUBE_DIR, root / "kube")
    return root


def test_real_tree_fails_when_configs_lose_their_dependency(tmp_path):
    root = _copy_tree(tmp_path)
    infra = root / "kube" / "clusters" / "platform" / "infrastructure.yaml"
    docs = list(yaml.safe_load_all(infra.read_text()))
    for doc in docs:
        if doc and doc["metadata"]["name"] == "infra-configs":
            del doc["spec"]["dependsOn"]
    infra.write_text(yaml.safe_dump_all(docs))
    problems = stack_layering.check(root, root / "kube" / "clusters" / "platform")
    assert any("EC2NodeClass/default" in p and "does not depend on" in p for p in problems), problems


def test_real_tree_fails_when_a_nodepool_moves_into_controllers(tmp_path):
    root = _copy_tree(tmp_path)
    controllers = root / "kube" / "infra" / "controllers"
    shutil.copy(root / "kube" / "infra" / "configs" / "nodepool-default.yaml", controllers / "nodepool.yaml")
    kust = controllers / "kustomization.yaml"
    data = yaml.safe_load(kust.read_text())
    data["resources"].append("nodepool.yaml")
    kust.write_text(yaml.safe_dump(data))
    problems = stack_layering.check(root, root / "kube" / "clusters" / "platform")
    assert any("infra-controllers applies NodePool/default" in p and "same Kustomization" in p for p in problems), problems


def test_unknown_chart_is_reported(tmp_path):
    root = tmp_path / "repo"
    (root / "kube" / "ctl").mkdir(parents=True)
    (root / "kube" / "ctl" / "release.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "helm.toolkit.fluxcd.io/v2",
                "kind": "HelmRelease",
                "metadata": {"name": "mystery", "namespace": "default"},
                "spec": {"chart": {"spec": {"chart": "mystery-operator", "sourceRef": {"kind": "HelmRepository", "name": "x"}}}},
            }
        )
    )
    cluster = root / "clusters"
    cluster.mkdir()
    (cluster / "ks.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": {"name": "ctl", "namespace": "flux-system"},
                "spec": {"path": "./kube/ctl", "wait": True, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
            }
        )
    )
    problems = stack_layering.check(root, cluster)
    assert any("mystery-operator" in p and "CHART_CRDS" in p for p in problems), problems


def test_node_overlay_and_capacity_buffer_are_known_karpenter_crds(tmp_path):
    # Karpenter 1.14 ships NodeOverlay and CapacityBuffer too; a NodeOverlay in
    # infra-configs must not be flagged as a kind nobody installs.
    root = _copy_tree(tmp_path)
    configs = root / "kube" / "infra" / "configs"
    (configs / "nodeoverlay.yaml").write_text(yaml.safe_dump({
        "apiVersion": "karpenter.sh/v1alpha1", "kind": "NodeOverlay", "metadata": {"name": "spot-discount"},
        "spec": {"requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}],
                 "priceAdjustment": "-10%"}}))
    (configs / "capacitybuffer.yaml").write_text(yaml.safe_dump({
        "apiVersion": "autoscaling.x-k8s.io/v1beta1", "kind": "CapacityBuffer", "metadata": {"name": "warm"},
        "spec": {"replicas": 1}}))
    kust = configs / "kustomization.yaml"
    data = yaml.safe_load(kust.read_text())
    data["resources"] += ["nodeoverlay.yaml", "capacitybuffer.yaml"]
    kust.write_text(yaml.safe_dump(data))
    assert stack_layering.check(root, root / "kube" / "clusters" / "platform") == []
