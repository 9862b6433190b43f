"""Upstream facts recorded as data (record_upstream.py), and the checks that
use them: custom resources against their CRD schemas, Helm values against a
chart's value keys, module output references against a module's outputs."""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from pathlib import Path

import jsonschema

HERE = Path(__file__).resolve().parent
CRD_DIR = HERE / "crd_schemas"
VALUES_DIR = HERE / "chart_values"
OUTPUTS_DIR = HERE / "module_outputs"

_COMBINATORS = ("anyOf", "allOf", "oneOf", "not")


def _strict(node, in_combinator: bool = False):
    """Reject unknown fields, as the API server does under strict field
    validation: an object schema that lists its properties and allows no
    other (no additionalProperties, no x-kubernetes-preserve-unknown-fields)
    gets additionalProperties: false. Branches of anyOf/allOf/oneOf only
    restrict fields declared outside them, so they are left alone."""
    if isinstance(node, list):
        return [_strict(v, in_combinator) for v in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in _COMBINATORS:
            out[key] = _strict(value, True)
        elif key == "properties":
            out[key] = {name: _strict(sub, False) for name, sub in value.items()}
        else:
            out[key] = _strict(value, in_combinator)
    if (
        not in_combinator
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@lru_cache(maxsize=None)
def crd_schemas() -> dict[tuple[str, str, str], dict]:
    """(group, version, kind) -> strict JSON schema of the object."""
    schemas = {}
    for path in sorted(CRD_DIR.glob("*.json")):
        crd = json.loads(path.read_text())
        for version, schema in crd["versions"].items():
            schemas[(crd["group"], version, crd["kind"])] = _strict(schema)
    return schemas


def crd_kinds() -> set[tuple[str, str]]:
    """(group, kind) of every recorded CRD."""
    return {(g, k) for g, _, k in crd_schemas()}


def split_api_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        group, version = api_version.rsplit("/", 1)
        return group, version
    return "", api_version


def validate_object(obj: dict) -> list[str]:
    """Schema errors of one custom resource; an unknown group/version/kind is
    an error too (its schema has to be recorded before it can be applied)."""
    group, version = split_api_version(obj.get("apiVersion", ""))
    kind = obj.get("kind", "")
    name = f"{kind}/{obj.get('metadata', {}).get('name', '?')}"
    schema = crd_schemas().get((group, version, kind))
    if schema is None:
        served = sorted(v for g, v, k in crd_schemas() if (g, k) == (group, kind))
        if served:
            return [f"{name}: {group}/{version} is not served by the pinned CRD (served: {', '.join(served)})"]
        return [f"{name}: no recorded CRD schema for {kind} ({group or 'core'}); add it to crd_schemas/"]
    validator = jsonschema.Draft7Validator(schema)
    errors = []
    for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in err.absolute_path) or "(root)"
        errors.append(f"{name}: {where}: {err.message}")
    return errors


def substitute(obj, values: dict[str, str]):
    """Flux post-build substitution (${name}) on a copy of obj."""
    pattern = re.compile(r"\$\{([a-zA-Z_][a-zA-Z0-9_]*)\}")

    def sub(node):
        if isinstance(node, dict):
            return {k: sub(v) for k, v in node.items()}
        if isinstance(node, list):
            return [sub(v) for v in node]
        if isinstance(node, str):
            return pattern.sub(lambda m: values.get(m.group(1), m.group(0)), node)
        return node

    return sub(copy.deepcopy(obj))


# --------------------------------------------------------------------------
# Helm values


def chart_value_paths(name: str) -> list[str]:
    path = VALUES_DIR / f"{name}.txt"
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _leaf_paths(node, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        out = []
        for key, value in node.items():
            out += _leaf_paths(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    return [prefix]


def unknown_values(values: dict, known: list[str]) -> list[str]:
    """Paths set in `values` that the chart does not read."""
    exact = {p for p in known if not p.endswith(".*")}
    free = [p[:-2] for p in known if p.endswith(".*")]
    bad = []
    for path in _leaf_paths(values):
        if path in exact:
            continue
        if any(path == f or path.startswith(f + ".") for f in free):
            continue
        bad.append(path)
    return bad


# --------------------------------------------------------------------------
# Terraform module outputs


def module_outputs(name: str) -> set[str]:
    path = OUTPUTS_DIR / f"{name}.txt"
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


MODULE_REF = re.compile(r"\bmodule\.([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_-]*)")


def module_references(text: str) -> list[tuple[str, str]]:
    """(module, output) of every `module.NAME.OUTPUT` in HCL text."""
    return MODULE_REF.findall(text)
