"""Offline checks of kube/: every kustomization builds, the values Flux
substitutes exist in Terraform's cluster-settings, Karpenter is wired to the
Terraform stack, and each common patch has a worked example."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_hcl  # noqa: E402
import stack_tools  # noqa: E402

KUBE = stack_tools.KUBE_DIR
KUSTOMIZATION_DIRS = stack_tools.kustomization_dirs(KUBE)
CLUSTER = KUBE / "clusters" / "platform"


def by_kind(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objects if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict], kind: str, name: str) -> dict:
    found = by_kind(objects, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def stack():
    return stack_hcl.Stack(stack_tools.TERRAFORM_DIR)


@pytest.fixture(scope="module")
def flux_kustomizations():
    return {
        doc["metadata"]["name"]: doc
        for _, doc in stack_tools.load_yaml_files(CLUSTER)
        if doc.get("kind") == "Kustomization"
    }


@pytest.fixture(scope="module")
def controllers():
    return stack_tools.kustomize_build(KUBE / "infra" / "controllers")


@pytest.fixture(scope="module")
def configs():
    return stack_tools.kustomize_build(KUBE / "infra" / "configs")


@pytest.fixture(scope="module")
def apps_base():
    return stack_tools.kustomize_build(KUBE / "apps" / "base" / "ubuntu") + stack_tools.kustomize_build(
        KUBE / "apps" / "base" / "gpu-check"
    )


@pytest.fixture(scope="module")
def apps_platform():
    return stack_tools.kustomize_build(KUBE / "apps" / "platform")


def test_the_layout_exists():
    for sub in ("clusters/platform", "infra/controllers", "infra/configs", "apps/base", "apps/platform"):
        assert (KUBE / sub).is_dir(), sub
    assert (KUBE / "README.md").is_file()


@pytest.mark.parametrize("directory", KUSTOMIZATION_DIRS, ids=lambda p: str(p.relative_to(KUBE)))
def test_kustomize_builds(directory):
    objects = stack_tools.kustomize_build(directory)
    assert objects, f"{directory} builds to nothing"


def test_every_kustomization_dir_is_found():
    # The parametrized build test above must not silently cover nothing.
    rel = {str(p.relative_to(KUBE)) for p in KUSTOMIZATION_DIRS}
    assert {"infra/controllers", "infra/configs", "apps/platform", "apps/base/ubuntu"} <= rel


def test_flux_paths_point_at_kustomizations(flux_kustomizations):
    for name, doc in flux_kustomizations.items():
        assert doc["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1", name
        path = stack_tools.REPO / doc["spec"]["path"]
        assert (path / "kustomization.yaml").is_file(), f"{name}: {path} has no kustomization.yaml"


# Alert and Provider have no v1 yet: v1beta3 is the newest version the
# recorded notification-controller CRDs serve (crd_schemas/), not a deprecated one.
CURRENT_BETA_APIS = {("notification.toolkit.fluxcd.io/v1beta3", "Alert"),
                     ("notification.toolkit.fluxcd.io/v1beta3", "Provider")}


def test_no_deprecated_flux_apis():
    for path, doc in stack_tools.load_yaml_files(KUBE):
        api = doc.get("apiVersion", "")
        if "fluxcd.io" in api and (api, doc.get("kind")) not in CURRENT_BETA_APIS:
            assert not re.search(r"/v\d+beta\d+$", api), f"{path}: deprecated {api}"


def test_current_beta_apis_are_the_newest_recorded():
    import json

    for api, kind in CURRENT_BETA_APIS:
        group, version = api.split("/")
        crd = json.loads((Path(__file__).resolve().parent / "crd_schemas" / f"{group}_{kind.lower()}s.json").read_text())
        assert version in crd["versions"] and not any(v.startswith("v1") and "beta" not in v for v in crd["versions"])


# --------------------------------------------------------------------------
# Terraform -> Flux substitution


SUBST = re.compile(r"\$\{([a-zA-Z_][a-zA-Z0-9_]*)\}")


def test_substituted_variables_exist_in_cluster_settings(stack, flux_kustomizations):
    provided = set(stack.resource("kubernetes_config_map_v1", "cluster_settings")["data"])
    for name, doc in flux_kustomizations.items():
        text = "\n".join(p.read_text() for p in (stack_tools.REPO / doc["spec"]["path"]).rglob("*.yaml"))
        used = set(SUBST.findall(text))
        sources = doc["spec"].get("postBuild", {}).get("substituteFrom", [])
        if used:
            assert {"kind": "ConfigMap", "name": "cluster-settings"} in sources, (
                f"{name} uses {used} without substituteFrom cluster-settings"
            )
            assert used <= provided, f"{name} uses {used - provided}, not in Terraform's cluster-settings"


def test_cluster_settings_configmap_matches_terraform(stack):
    cm = stack.resource("kubernetes_config_map_v1", "cluster_settings")
    meta = stack_hcl.block(cm["metadata"])
    assert meta["name"] == "cluster-settings"
    assert "flux_system" in meta["namespace"]


# --------------------------------------------------------------------------
# Karpenter controller


def test_karpenter_chart_from_oci_with_crds(controllers):
    repo = one(controllers, "OCIRepository", "karpenter")
    assert repo["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert repo["spec"]["url"] == "oci://public.ecr.aws/karpenter/karpenter"
    assert repo["spec"]["ref"]["tag"].startswith("1.14.")
    release = one(controllers, "HelmRelease", "karpenter")
    assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
    assert release["spec"]["chartRef"] == {"kind": "OCIRepository", "name": "karpenter"}
    assert release["spec"]["install"]["crds"] in {"Create", "CreateReplace"}
    assert release["spec"]["upgrade"]["crds"] == "CreateReplace"


def test_karpenter_values_match_terraform(stack, controllers):
    release = one(controllers, "HelmRelease", "karpenter")
    values = release["spec"]["values"]
    module = stack.modules["karpenter"]
    # Pod Identity association: same namespace and service account.
    assert release["metadata"]["namespace"] == module["namespace"]
    assert values["serviceAccount"]["name"] == module["service_account"]
    assert values["settings"]["clusterName"] == "${cluster_name}"
    assert values["settings"]["interruptionQueue"] == "${karpenter_queue_name}"
    # On the tainted system node group.
    assert {"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]
    assert values["nodeSelector"] == stack.locals["system_node_label"]
    assert values["replicas"] >= 2


# --------------------------------------------------------------------------
# node classes and pools


def test_ec2nodeclasses(configs, stack):
    classes = by_kind(configs, "EC2NodeClass")
    assert {c["metadata"]["name"] for c in classes} == {"default", "gpu"}
    for nc in classes:
        spec = nc["spec"]
        assert nc["apiVersion"] == "karpenter.k8s.aws/v1"
        assert spec["amiSelectorTerms"][0]["alias"].startswith("al2023@")
        assert spec["role"] == "${karpenter_node_role_name}"
        discovery = {"karpenter.sh/discovery": "${cluster_name}"}
        assert spec["subnetSelectorTerms"] == [{"tags": discovery}]
        assert spec["securityGroupSelectorTerms"] == [{"tags": discovery}]
    # The tag key Karpenter selects on is the one Terraform puts on subnets and the node SG.
    assert "karpenter.sh/discovery" in stack.locals["discovery_tags"]


def _requirements(pool: dict) -> dict:
    return {r["key"]: (r["operator"], r["values"]) for r in pool["spec"]["template"]["spec"]["requirements"]}


def test_default_nodepool_is_spot_arm64(configs):
    pool = one(configs, "NodePool", "default")
    assert pool["apiVersion"] == "karpenter.sh/v1"
    req = _requirements(pool)
    assert req["kubernetes.io/arch"] == ("In", ["arm64"])
    assert req["karpenter.sh/capacity-type"] == ("In", ["spot"])
    assert pool["spec"]["template"]["spec"]["nodeClassRef"] == {
        "group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}
    assert not pool["spec"]["template"]["spec"].get("taints")
    assert pool["spec"]["limits"]["cpu"]
    assert pool["spec"]["disruption"]["consolidationPolicy"] in {"WhenEmpty", "WhenEmptyOrUnderutilized"}


def test_gpu_nodepool_is_tainted_and_limited(configs):
    pool = one(configs, "NodePool", "gpu")
    spec = pool["spec"]["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"} in spec["taints"]
    assert spec["nodeClassRef"]["name"] == "gpu"
    families = _requirements(pool)["karpenter.k8s.aws/instance-family"][1]
    assert families and all(f.startswith(("g", "p")) for f in families)
    assert pool["spec"]["limits"]["nvidia.com/gpu"]


def test_nvidia_device_plugin_targets_gpu_nodes(controllers, configs):
    release = one(controllers, "HelmRelease", "nvidia-device-plugin")
    values = release["spec"]["values"]
    pool_labels = one(configs, "NodePool", "gpu")["spec"]["template"]["metadata"]["labels"]
    assert set(values["nodeSelector"].items()) <= set(pool_labels.items())
    assert any(t["key"] == "nvidia.com/gpu" for t in values["tolerations"])


# --------------------------------------------------------------------------
# apps: the seed's workloads and the worked patch examples


def test_base_workloads_sleep(apps_base):
    pod = one(apps_base, "Pod", "ubuntu")
    deploy = one(apps_base, "Deployment", "ubuntu")
    assert pod["spec"]["containers"][0]["command"] == ["sleep", "infinity"]
    assert deploy["spec"]["template"]["spec"]["containers"][0]["command"] == ["sleep", "infinity"]
    assert pod["spec"]["containers"][0]["image"].startswith("ubuntu:")


def _container(obj: dict) -> dict:
    spec = obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]
    return spec["containers"][0]


def _podspec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"] if "template" in obj["spec"] else obj["spec"]


def test_worked_example_image(apps_base, apps_platform):
    before = _container(one(apps_base, "Deployment", "ubuntu"))["image"]
    after = _container(one(apps_platform, "Deployment", "ubuntu"))["image"]
    assert before != after and after.startswith("public.ecr.aws/")
    assert _container(one(apps_platform, "Pod", "ubuntu"))["image"] == after


def test_worked_example_replicas(apps_base, apps_platform):
    assert one(apps_base, "Deployment", "ubuntu")["spec"]["replicas"] == 1
    assert one(apps_platform, "Deployment", "ubuntu")["spec"]["replicas"] == 2


def test_worked_example_resources(apps_base, apps_platform):
    before = _container(one(apps_base, "Deployment", "ubuntu"))["resources"]
    after = _container(one(apps_platform, "Deployment", "ubuntu"))["resources"]
    assert before != after and after["requests"] and after["limits"]


def test_worked_example_node_selection(apps_base, apps_platform):
    for kind in ("Deployment", "Pod"):
        assert "nodeSelector" not in _podspec(one(apps_base, kind, "ubuntu"))
        assert _podspec(one(apps_platform, kind, "ubuntu"))["nodeSelector"]["karpenter.sh/nodepool"] == "default"


def test_worked_example_tolerations(apps_base, apps_platform, configs):
    assert "tolerations" not in _podspec(one(apps_base, "Job", "gpu-check"))
    job = one(apps_platform, "Job", "gpu-check")
    spec = _podspec(job)
    gpu_taint = one(configs, "NodePool", "gpu")["spec"]["template"]["spec"]["taints"][0]
    assert any(t["key"] == gpu_taint["key"] and t["effect"] == gpu_taint["effect"] for t in spec["tolerations"])
    assert spec["nodeSelector"]["karpenter.sh/nodepool"] == "gpu"
    assert job["spec"]["suspend"] is True, "the GPU smoke test must not start a GPU node by itself"


def test_readme_documents_each_worked_example():
    text = (KUBE / "README.md").read_text()
    for topic in ("image", "replicas", "resources", "node selection", "tolerations", "develop"):
        assert topic.lower() in text.lower(), f"kube/README.md does not cover {topic}"
    for path in ("apps/platform/kustomization.yaml", "patches/ubuntu-resources.yaml",
                 "patches/ubuntu-node-selection.yaml", "patches/gpu-check-tolerations.yaml"):
        assert path in text, f"kube/README.md does not point at {path}"


# --------------------------------------------------------------------------
# the in-cluster dev shell can write files


@pytest.mark.parametrize("kind", ["Deployment", "Pod"])
def test_dev_shell_has_a_writable_work_volume(apps_platform, kind):
    obj = one(apps_platform, kind, "ubuntu")
    spec = _podspec(obj)
    container = _container(obj)
    # Root stays read-only; the writable places are emptyDir volumes.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    home = env.get("HOME")
    assert home and home in mounts, "HOME must be on a writable volume"
    for path in (home, "/tmp"):
        mount = mounts.get(path)
        assert mount and not mount.get("readOnly"), f"{path} is not writable"
        volume = volumes[mount["name"]]
        assert "emptyDir" in volume and volume["emptyDir"].get("sizeLimit"), f"{path}: bounded emptyDir expected"
    assert container.get("workingDir") == home


def test_nvidia_device_plugin_chart_is_current(controllers):
    # 0.20.0 is the current release (NVIDIA/k8s-device-plugin tag v0.20.0).
    release = one(controllers, "HelmRelease", "nvidia-device-plugin")
    assert release["spec"]["chart"]["spec"]["version"] == "0.20.0"
