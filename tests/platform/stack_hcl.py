"""Terraform files parsed with python-hcl2, reshaped into plain dicts.

python-hcl2 (v8) keeps string quotes ('"API"') and marks blocks with
`__is_block__`; `normalize` strips both so tests compare against plain values.
Expressions stay strings such as '${var.operator_cidrs}'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2

_MARKERS = {"__is_block__", "__comments__", "__start_line__", "__end_line__"}


def unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def normalize(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            unquote(k): normalize(v)
            for k, v in node.items()
            if k not in _MARKERS and not (k.startswith("__") and k.endswith("__"))
        }
    if isinstance(node, list):
        return [normalize(v) for v in node]
    return unquote(node)


def parse_file(path: Path) -> dict:
    with path.open() as fh:
        return normalize(hcl2.load(fh))


class Stack:
    """All .tf files of one directory, merged by block type."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.files = sorted(directory.glob("*.tf"))
        self.resources: dict[str, dict[str, dict]] = {}
        self.data: dict[str, dict[str, dict]] = {}
        self.modules: dict[str, dict] = {}
        self.variables: dict[str, dict] = {}
        self.outputs: dict[str, dict] = {}
        self.locals: dict[str, Any] = {}
        self.providers: dict[str, list[dict]] = {}
        self.terraform: list[dict] = []
        for path in self.files:
            self._merge(parse_file(path))

    def _merge(self, doc: dict) -> None:
        for block in doc.get("resource", []):
            for rtype, by_name in block.items():
                self.resources.setdefault(rtype, {}).update(by_name)
        for block in doc.get("data", []):
            for dtype, by_name in block.items():
                self.data.setdefault(dtype, {}).update(by_name)
        for block in doc.get("module", []):
            self.modules.update(block)
        for block in doc.get("variable", []):
            self.variables.update(block)
        for block in doc.get("output", []):
            self.outputs.update(block)
        for block in doc.get("locals", []):
            self.locals.update(block)
        for block in doc.get("provider", []):
            for name, body in block.items():
                self.providers.setdefault(name, []).append(body)
        self.terraform.extend(doc.get("terraform", []))

    def resource(self, rtype: str, name: str) -> dict:
        return self.resources[rtype][name]

    def provider(self, name: str) -> dict:
        bodies = self.providers[name]
        assert len(bodies) == 1, f"expected one provider {name!r} block, got {len(bodies)}"
        return bodies[0]


def block(value: Any) -> dict:
    """A nested block parses as a one-element list; attributes as a dict."""
    if isinstance(value, list):
        assert len(value) == 1, f"expected a single block, got {value!r}"
        return value[0]
    return value


def blocks(value: Any) -> list[dict]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
