"""Checks against upstream facts recorded as data (see record_upstream.py):
module output references, the custom resources of kube/ against the CRD
schemas of the pinned Karpenter chart and Flux release, and HelmRelease
values against the value keys of the pinned charts. Each check is shown to
fail on a broken copy, so it is not restating the files it reads."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_layering  # noqa: E402
import stack_schemas  # noqa: E402
import stack_tools  # noqa: E402

TF = stack_tools.TERRAFORM_DIR
KUBE = stack_tools.KUBE_DIR
CLUSTER = KUBE / "clusters" / "platform"

MODULE_OUTPUT_LISTS = {"eks": "eks-v21", "karpenter": "eks-karpenter-v21", "vpc": "vpc-v6"}

# Plausible stand-ins for the cluster-settings ConfigMap, so schema patterns
# see real-looking values rather than "${...}".
SETTINGS = {
    "cluster_name": "platform",
    "cluster_endpoint": "https://EXAMPLE.gr7.us-east-1.eks.amazonaws.com",
    "aws_region": "us-east-1",
    "karpenter_queue_name": "platform-karpenter",
    "karpenter_node_role_name": "platform-karpenter-node",
}


# --------------------------------------------------------------------------
# module outputs


def tf_text() -> str:
    return "\n".join(p.read_text() for p in sorted(TF.glob("*.tf")))


def unknown_module_outputs(text: str) -> list[str]:
    bad = []
    for module, output in stack_schemas.module_references(text):
        listing = MODULE_OUTPUT_LISTS.get(module)
        if listing is None:
            bad.append(f"module.{module}: no recorded output list")
        elif output not in stack_schemas.module_outputs(listing):
            bad.append(f"module.{module}.{output} is not an output of the pinned module")
    return bad


def test_every_module_output_reference_exists():
    refs = stack_schemas.module_references(tf_text())
    assert len(refs) >= 10, f"too few module references found ({refs}): the scan is broken"
    assert unknown_module_outputs(tf_text()) == []


def test_misspelt_module_output_is_caught():
    broken = tf_text().replace("module.karpenter.queue_name", "module.karpenter.queue_names", 1)
    assert "module.karpenter.queue_names" in broken
    assert unknown_module_outputs(broken) == ["module.karpenter.queue_names is not an output of the pinned module"]
    # A plausible name the VPC module does not have (it is private_subnets).
    assert unknown_module_outputs("x = module.vpc.private_subnet_ids") == [
        "module.vpc.private_subnet_ids is not an output of the pinned module"]


def test_module_lists_cover_every_module_block():
    modules = set()
    for path in TF.glob("*.tf"):
        for line in path.read_text().splitlines():
            if line.startswith("module \""):
                modules.add(line.split('"')[1])
    assert modules == set(MODULE_OUTPUT_LISTS), "record the outputs of every module (module_outputs/)"


# --------------------------------------------------------------------------
# custom resources against CRD schemas


def rendered_custom_resources() -> list[dict]:
    """Every object Flux applies from kube/ whose kind needs a CRD: the
    cluster entry point as written, each Kustomization's path as
    `kubectl kustomize` renders it, with post-build substitution applied."""
    objects = [doc for _, doc in stack_tools.load_yaml_files(CLUSTER)]
    for doc in list(objects):
        if doc.get("kind") == "Kustomization":
            objects += stack_tools.kustomize_build(stack_tools.REPO / doc["spec"]["path"])
    out = []
    for obj in objects:
        group, _ = stack_schemas.split_api_version(obj.get("apiVersion", ""))
        if group not in stack_layering.BUILTIN_GROUPS:
            out.append(stack_schemas.substitute(obj, SETTINGS))
    return out


@pytest.fixture(scope="module")
def custom_resources():
    return rendered_custom_resources()


def test_custom_resources_found(custom_resources):
    kinds = {o["kind"] for o in custom_resources}
    assert {"EC2NodeClass", "NodePool", "HelmRelease", "OCIRepository", "HelmRepository", "Kustomization"} <= kinds


def test_every_custom_resource_matches_its_crd_schema(custom_resources):
    errors = [e for obj in custom_resources for e in stack_schemas.validate_object(obj)]
    assert not errors, "custom resources that the pinned CRDs reject:\n" + "\n".join(errors)


def test_layering_check_knows_every_recorded_karpenter_crd():
    recorded = {(g, k) for g, k in stack_schemas.crd_kinds() if not g.endswith(".fluxcd.io")}
    assert recorded == set(stack_layering.CHART_CRDS["karpenter"])


def _find(objs, kind, name):
    return next(copy.deepcopy(o) for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


@pytest.mark.parametrize(
    "kind, name, breakage, expected",
    [
        ("NodePool", "default", lambda o: o["spec"]["disruption"].update(consolidationPolicy="WhenIdle"),
         "spec.disruption.consolidationPolicy"),
        ("NodePool", "default", lambda o: o["spec"]["template"]["spec"]["nodeClassRef"].update(kindd="EC2NodeClass"),
         "Additional properties are not allowed ('kindd'"),
        ("EC2NodeClass", "default", lambda o: o["spec"].pop("amiSelectorTerms"), "'amiSelectorTerms' is a required property"),
        ("EC2NodeClass", "default", lambda o: o["spec"].update(subnetSelector={"a": "b"}), "('subnetSelector' was unexpected)"),
        ("HelmRelease", "karpenter", lambda o: o["spec"]["install"].update(crds="Always"), "spec.install.crds"),
        ("OCIRepository", "karpenter", lambda o: o["spec"]["ref"].update(tags="1.14.1"), "('tags' was unexpected)"),
        ("Kustomization", "infra-configs", lambda o: o["spec"].update(dependOn=[{"name": "x"}]), "('dependOn' was unexpected)"),
        ("Kustomization", "apps", lambda o: o.update(apiVersion="kustomize.toolkit.fluxcd.io/v1beta2"),
         "not served by the pinned CRD"),
    ],
    ids=["enum", "nodeclassref-typo", "required", "v1beta-field", "helm-crds-enum", "oci-typo",
         "dependson-typo", "removed-api-version"],
)
def test_schema_violations_are_caught(custom_resources, kind, name, breakage, expected):
    obj = _find(custom_resources, kind, name)
    assert stack_schemas.validate_object(obj) == []
    breakage(obj)
    errors = stack_schemas.validate_object(obj)
    assert any(expected in e for e in errors), errors


def test_unknown_kind_is_an_error():
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert "no recorded CRD schema" in stack_schemas.validate_object(obj)[0]


def test_node_overlay_validates():
    # A kind the chart ships but the tree does not use yet: recorded, valid.
    overlay = {
        "apiVersion": "karpenter.sh/v1alpha1",
        "kind": "NodeOverlay",
        "metadata": {"name": "price"},
        "spec": {"requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}],
                 "priceAdjustment": "-10%"},
    }
    assert stack_schemas.validate_object(overlay) == []


# --------------------------------------------------------------------------
# Helm values against the chart's value keys


CHART_VALUES = {
    "karpenter": ("infra/controllers/karpenter/helmrelease.yaml", "karpenter-1.14.1"),
    "nvidia-device-plugin": ("infra/controllers/nvidia-device-plugin/helmrelease.yaml", "nvidia-device-plugin-0.20.0"),
}


def test_every_helmrelease_has_recorded_values():
    releases = [o for o in rendered_custom_resources() if o["kind"] == "HelmRelease"]
    assert {r["metadata"]["name"] for r in releases} == set(CHART_VALUES)


@pytest.mark.parametrize("release", sorted(CHART_VALUES))
def test_helm_values_are_chart_keys(release):
    path, listing = CHART_VALUES[release]
    values = yaml.safe_load((KUBE / path).read_text())["spec"]["values"]
    assert values
    assert stack_schemas.unknown_values(values, stack_schemas.chart_value_paths(listing)) == []


def test_chart_versions_match_the_recorded_values():
    oci = yaml.safe_load((KUBE / "infra/controllers/karpenter/ocirepository.yaml").read_text())
    assert f"karpenter-{oci['spec']['ref']['tag']}" == CHART_VALUES["karpenter"][1]
    nvidia = yaml.safe_load((KUBE / CHART_VALUES["nvidia-device-plugin"][0]).read_text())
    assert f"nvidia-device-plugin-{nvidia['spec']['chart']['spec']['version']}" == CHART_VALUES["nvidia-device-plugin"][1]


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda v: v["settings"].update(interruptionQueueName="q"), "settings.interruptionQueueName"),
        (lambda v: v.update(replica=2), "replica"),
        (lambda v: v["serviceAccount"].update(nam="karpenter"), "serviceAccount.nam"),
        (lambda v: v["controller"].update(resource={"requests": {"cpu": "1"}}), "controller.resource.requests.cpu"),
    ],
    ids=["settings-typo", "top-level-typo", "nested-typo", "controller-typo"],
)
def test_wrong_karpenter_values_key_is_caught(mutate, expected):
    values = yaml.safe_load((KUBE / CHART_VALUES["karpenter"][0]).read_text())["spec"]["values"]
    mutate(values)
    assert expected in stack_schemas.unknown_values(values, stack_schemas.chart_value_paths("karpenter-1.14.1"))


def test_free_form_maps_accept_any_key():
    known = stack_schemas.chart_value_paths("karpenter-1.14.1")
    values = {"nodeSelector": {"platform/node-group": "system"}, "podAnnotations": {"a.b/c": "d"},
              "controller": {"resources": {"requests": {"cpu": "1"}}}}
    assert stack_schemas.unknown_values(values, known) == []
