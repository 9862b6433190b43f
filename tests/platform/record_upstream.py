"""Records the upstream facts the offline checks need, from upstream files.

Nothing here is downloaded: give it the files of the pinned releases (from a
clone or a release asset) and it rewrites the data under tests/platform/.

  record_upstream.py crd FILE...            -> crd_schemas/<group>_<plural>.json
  record_upstream.py values NAME FILE       -> chart_values/NAME.txt
  record_upstream.py outputs NAME FILE      -> module_outputs/NAME.txt
  record_upstream.py attrs NAME FILE...     -> provider_schemas/NAME.txt
  record_upstream.py resources NAME FILE... -> module_resources/NAME.txt

crd: the openAPIV3Schema of every served version, descriptions dropped (they
are most of the bytes and no check reads them).
values: every key path of the chart's default values.yaml, one per line. A
path ending in `.*` is a free-form map (an empty map by default, or one whose
keys are label-like, such as nodeSelector), under which any key is valid.
outputs: every `output "NAME"` of a module's outputs.tf.
resources: every `resource "TYPE" "NAME"` of a module's root .tf files, as
TYPE.NAME (addresses a script may -target inside the module).
attrs: argument and block names of provider resources and data sources, as
`resource.TYPE.NAME` / `data.TYPE.NAME` lines, read from the registry-docs
links in the index.d.ts files of the prebuilt CDK for Terraform bindings
(npm @cdktf/provider-aws, @cdktf/provider-kubernetes), which are generated
from the provider's schema. Nested block attributes are listed under their
resource without the block path.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def strip_descriptions(node):
    if isinstance(node, dict):
        return {k: strip_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def record_crd(path: Path) -> Path:
    crd = yaml.safe_load(path.read_text())
    spec = crd["spec"]
    out = {
        "group": spec["group"],
        "kind": spec["names"]["kind"],
        "plural": spec["names"]["plural"],
        "scope": spec.get("scope", "Namespaced"),
        "source": path.name,
        "versions": {
            v["name"]: strip_descriptions(v["schema"]["openAPIV3Schema"])
            for v in spec["versions"]
            if v.get("served", True)
        },
    }
    target = HERE / "crd_schemas" / f"{spec['group']}_{spec['names']['plural']}.json"
    target.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return target


def value_paths(node, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node and not any(("." in str(k) or "/" in str(k)) for k in node):
        paths = []
        for key, value in node.items():
            paths += value_paths(value, f"{prefix}.{key}" if prefix else str(key))
        return paths
    if isinstance(node, dict):
        return [prefix + ".*"]
    return [prefix]


def record_values(name: str, path: Path) -> Path:
    target = HERE / "chart_values" / f"{name}.txt"
    target.write_text("\n".join(value_paths(yaml.safe_load(path.read_text()))) + "\n")
    return target


def record_outputs(name: str, path: Path) -> Path:
    names = re.findall(r'^output\s+"([^"]+)"', path.read_text(), flags=re.M)
    target = HERE / "module_outputs" / f"{name}.txt"
    target.write_text("\n".join(names) + "\n")
    return target


_DOC_LINK = re.compile(
    r"registry\.terraform\.io/providers/hashicorp/([a-z]+)/[0-9.]+/docs/(resources|data-sources)/([a-z0-9_]+)#([a-z0-9_]+)"
)


def record_attrs(name: str, paths: list[Path]) -> Path:
    found = set()
    for path in paths:
        for provider, kind, rtype, attr in _DOC_LINK.findall(path.read_text()):
            prefix = "resource" if kind == "resources" else "data"
            found.add(f"{prefix}.{provider}_{rtype}.{attr}")
    target = HERE / "provider_schemas" / f"{name}.txt"
    target.write_text("\n".join(sorted(found)) + "\n")
    return target


def record_resources(name: str, paths: list[Path]) -> Path:
    found = set()
    for path in paths:
        found |= {f"{t}.{n}" for t, n in re.findall(r'^resource\s+"([^"]+)"\s+"([^"]+)"', path.read_text(), flags=re.M)}
    target = HERE / "module_resources" / f"{name}.txt"
    target.parent.mkdir(exist_ok=True)
    target.write_text("\n".join(sorted(found)) + "\n")
    return target


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    what = argv[1]
    if what == "crd":
        written = [record_crd(Path(p)) for p in argv[2:]]
    elif what == "resources" and len(argv) >= 4:
        written = [record_resources(argv[2], [Path(p) for p in argv[3:]])]
    elif what == "attrs" and len(argv) >= 4:
        written = [record_attrs(argv[2], [Path(p) for p in argv[3:]])]
    elif what in ("values", "outputs") and len(argv) == 4:
        fn = record_values if what == "values" else record_outputs
        written = [fn(argv[2], Path(argv[3]))]
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for path in written:
        print(path.relative_to(HERE))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
