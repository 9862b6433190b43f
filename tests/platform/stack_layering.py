"""Layering check for the Flux tree: catch "no matches for kind" before a
cluster does.

Flux applies each Kustomization on its own schedule. A custom resource can be
applied only once its CustomResourceDefinition exists, and the only ordering
Flux guarantees between Kustomizations is `dependsOn` (with `wait: true` or a
health check, so the dependency is Ready only when its HelmReleases, and the
CRDs their charts ship, are installed). The seed broke exactly here:

    EC2NodeClass/default dry-run failed: no matches for kind "EC2NodeClass"
    in version "karpenter.k8s.aws/v1"

because its NodePool and EC2NodeClass sat in the same Kustomization as the
Karpenter HelmRelease that installs their CRDs.

The rule checked: every custom resource applied by a Kustomization must have
its CRD
- among plain CustomResourceDefinition manifests of the same Kustomization
  (kustomize-controller applies CRDs first and waits for them), or
- installed by a Kustomization it depends on, directly or transitively, where
  CRDs that come from a HelmRelease count only if that Kustomization waits
  for its resources (`wait: true` or a health check on the HelmRelease).
Built-in kinds and the Flux toolkit kinds (installed by the bootstrap) are
always available. A HelmRelease whose chart is not in CHART_CRDS is an error:
the checker must be told which CRDs it brings.

Usage: python stack_layering.py REPO_ROOT CLUSTER_DIR   (exit 1 on problems)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import stack_tools

FLUX_KUSTOMIZATION = "kustomize.toolkit.fluxcd.io"

# API groups the API server serves without any CRD.
BUILTIN_GROUPS = {
    "",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
}

# Installed by the Flux bootstrap itself, before anything in the tree.
FLUX_GROUP_SUFFIXES = (".toolkit.fluxcd.io", ".extensions.fluxcd.io")

# CRDs shipped by the charts the tree installs, as (group, kind). Karpenter
# 1.14.1 ships five (charts/karpenter/crds, recorded in crd_schemas/).
KARPENTER_CRDS = frozenset(
    {
        ("karpenter.sh", "NodePool"),
        ("karpenter.sh", "NodeClaim"),
        ("karpenter.sh", "NodeOverlay"),
        ("karpenter.k8s.aws", "EC2NodeClass"),
        ("autoscaling.x-k8s.io", "CapacityBuffer"),
    }
)
CHART_CRDS: dict[str, frozenset] = {
    "karpenter": KARPENTER_CRDS,
    "karpenter-crd": KARPENTER_CRDS,
    "nvidia-device-plugin": frozenset(),
}


def group_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def is_always_available(group: str) -> bool:
    return group in BUILTIN_GROUPS or group.endswith(FLUX_GROUP_SUFFIXES)


@dataclass
class FluxKustomization:
    name: str
    namespace: str
    path: str
    depends_on: list[str]
    waits: bool
    health_checked: set[tuple[str, str]]  # (kind, name) of health checks
    source_file: Path
    objects: list[dict] = field(default_factory=list)
    # (group, kind) -> True if ready-guaranteed for dependants
    crds_from_manifests: set[tuple[str, str]] = field(default_factory=set)
    crds_from_charts: dict[tuple[str, str], str] = field(default_factory=dict)  # crd -> HelmRelease name
    unguarded_charts: set[str] = field(default_factory=set)


def _load_kustomizations(cluster_dir: Path) -> tuple[list[FluxKustomization], list[dict], list[str]]:
    """Flux Kustomizations of the cluster entry point, and the other objects
    there (which the bootstrap's own flux-system Kustomization applies)."""
    ks, others, problems = [], [], []
    for path, doc in stack_tools.load_yaml_files(cluster_dir):
        if "flux-system" in path.relative_to(cluster_dir).parts:
            continue  # written by the bootstrap: Flux's own components
        if doc.get("kind") == "Kustomization" and group_of(doc.get("apiVersion", "")) == FLUX_KUSTOMIZATION:
            meta, spec = doc.get("metadata", {}), doc.get("spec", {})
            checks = {(c.get("kind"), c.get("name")) for c in spec.get("healthChecks", []) or []}
            ks.append(
                FluxKustomization(
                    name=meta["name"],
                    namespace=meta.get("namespace", "flux-system"),
                    path=spec.get("path", "./"),
                    depends_on=[d["name"] for d in spec.get("dependsOn", []) or []],
                    waits=bool(spec.get("wait", False)),
                    health_checked=checks,
                    source_file=path,
                )
            )
        else:
            others.append(doc)
    names = [k.name for k in ks]
    for dup in {n for n in names if names.count(n) > 1}:
        problems.append(f"Kustomization {dup} is defined more than once")
    return ks, others, problems


def _build(repo_root: Path, k: FluxKustomization) -> list[dict]:
    directory = (repo_root / k.path).resolve()
    if not directory.is_dir():
        raise FileNotFoundError(f"Kustomization {k.name}: path {k.path} does not exist")
    if (directory / "kustomization.yaml").exists():
        return stack_tools.kustomize_build(directory)
    # Flux generates a kustomization of every manifest under the path.
    return [doc for _, doc in stack_tools.load_yaml_files(directory)]


def _chart_name(release: dict, objects: list[dict]) -> str | None:
    spec = release.get("spec", {})
    chart = spec.get("chart", {}).get("spec", {}).get("chart")
    if chart:
        return chart.rsplit("/", 1)[-1]
    ref = spec.get("chartRef")
    if ref:
        ns = ref.get("namespace", release.get("metadata", {}).get("namespace"))
        for obj in objects:
            meta = obj.get("metadata", {})
            if obj.get("kind") == ref.get("kind") and meta.get("name") == ref.get("name") and meta.get("namespace", ns) == ns:
                url = obj.get("spec", {}).get("url", "")
                return url.rstrip("/").rsplit("/", 1)[-1] or None
    return None


def _index_crds(k: FluxKustomization, problems: list[str]) -> None:
    for obj in k.objects:
        kind = obj.get("kind")
        if kind == "CustomResourceDefinition":
            spec = obj.get("spec", {})
            k.crds_from_manifests.add((spec.get("group"), spec.get("names", {}).get("kind")))
        elif kind == "HelmRelease":
            rel_name = obj.get("metadata", {}).get("name")
            chart = _chart_name(obj, k.objects)
            if chart is None or chart not in CHART_CRDS:
                problems.append(
                    f"Kustomization {k.name}: HelmRelease {rel_name} installs chart {chart!r}, "
                    f"whose CRDs are unknown to the layering check (add it to CHART_CRDS)"
                )
                continue
            crd_policy = obj.get("spec", {}).get("install", {}).get("crds", "Create")
            if crd_policy == "Skip":
                continue
            for crd in CHART_CRDS[chart]:
                k.crds_from_charts[crd] = rel_name
            if CHART_CRDS[chart] and not (k.waits or ("HelmRelease", rel_name) in k.health_checked):
                k.unguarded_charts.add(rel_name)


def _ancestors(name: str, by_name: dict[str, FluxKustomization], problems: list[str]) -> set[str]:
    seen: set[str] = set()
    stack = [name]
    while stack:
        current = stack.pop()
        for dep in by_name[current].depends_on:
            if dep not in by_name:
                problems.append(f"Kustomization {current} depends on unknown Kustomization {dep}")
                continue
            if dep == name:
                problems.append(f"Kustomization {name} is in a dependsOn cycle")
                continue
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return seen


def _custom_kinds(objects: list[dict]) -> list[tuple[str, str, str]]:
    """(group, kind, name) of every object that needs a CRD."""
    found = []
    for obj in objects:
        group = group_of(obj.get("apiVersion", ""))
        if not is_always_available(group):
            found.append((group, obj.get("kind"), obj.get("metadata", {}).get("name", "?")))
    return found


def check(repo_root: Path, cluster_dir: Path) -> list[str]:
    """All layering problems of the tree whose entry point is cluster_dir."""
    repo_root, cluster_dir = Path(repo_root), Path(cluster_dir)
    ks, root_objects, problems = _load_kustomizations(cluster_dir)
    by_name = {k.name: k for k in ks}
    for k in ks:
        try:
            k.objects = _build(repo_root, k)
        except (FileNotFoundError, RuntimeError) as err:
            problems.append(str(err))
            continue
        _index_crds(k, problems)

    where: dict[tuple[str, str], list[str]] = {}
    for k in ks:
        for crd in k.crds_from_manifests | set(k.crds_from_charts):
            where.setdefault(crd, []).append(k.name)

    # Objects next to the Kustomizations are applied by flux-system, which
    # depends on nothing.
    for group, kind, name in _custom_kinds(root_objects):
        problems.append(
            f"{kind}/{name} ({group}) is applied by the bootstrap's flux-system Kustomization, "
            f"which depends on nothing; its CRD comes from {', '.join(where.get((group, kind), [])) or 'nowhere'}"
        )

    for k in ks:
        ancestors = _ancestors(k.name, by_name, problems)
        available = set(k.crds_from_manifests)
        for anc in ancestors:
            dep = by_name[anc]
            available |= dep.crds_from_manifests
            for crd, release in dep.crds_from_charts.items():
                if release in dep.unguarded_charts:
                    continue
                available.add(crd)
        for group, kind, name in _custom_kinds(k.objects):
            if (group, kind) in available:
                continue
            providers = where.get((group, kind), [])
            if k.name in providers:
                reason = (
                    f"its CRD is installed by a HelmRelease in the same Kustomization "
                    f"(no matches for kind \"{kind}\" on a fresh cluster); move it to a "
                    f"Kustomization that dependsOn {k.name}"
                )
            elif any(p in ancestors for p in providers):
                unguarded = [p for p in providers if p in ancestors]
                reason = (
                    f"its CRD comes from a HelmRelease in {', '.join(unguarded)}, which neither "
                    f"waits (wait: true) nor health-checks it, so dependsOn does not order them"
                )
            elif providers:
                reason = (
                    f"its CRD is installed by {', '.join(providers)}, which {k.name} does not "
                    f"depend on (add dependsOn)"
                )
            else:
                reason = "no Kustomization installs its CRD"
            problems.append(f"Kustomization {k.name} applies {kind}/{name} ({group}): {reason}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    problems = check(Path(argv[1]), Path(argv[2]))
    for problem in problems:
        print(problem)
    if not problems:
        print("layering OK")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
