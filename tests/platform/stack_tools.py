"""Shared helpers of the platform-stack tests: where the repository and the
external tools (terraform, kubectl, checkov) are, and how to read YAML trees."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TERRAFORM_DIR = REPO / "terraform"
KUBE_DIR = REPO / "kube"
FIXTURES = HERE / "fixtures"


def _candidates(name: str) -> list[Path]:
    """PATH first, then the venv running the tests, then the tools venv that
    install-tools.sh creates (checkov and, on machines without one, kubectl)."""
    found = []
    on_path = shutil.which(name)
    if on_path:
        found.append(Path(on_path))
    for bindir in (
        Path(sys.executable).parent,
        REPO / ".venv" / "bin",
        REPO / ".venv-checkov" / "bin",
    ):
        found.append(bindir / name)
    return found


def find_tool(name: str, env_var: str | None = None) -> str | None:
    """Absolute path of an executable, or None."""
    if env_var and os.environ.get(env_var):
        return os.environ[env_var]
    for path in _candidates(name):
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def require_tool(name: str, env_var: str | None = None) -> str:
    """Like find_tool, but a missing tool is a test failure with a hint."""
    import pytest

    path = find_tool(name, env_var)
    if path is None:
        pytest.fail(
            f"{name} not found on PATH, in {Path(sys.executable).parent} or in "
            f".venv-checkov/bin; run tests/platform/install-tools.sh"
        )
    return path


def aws_cli() -> str:
    """The aws CLI of the test venv (tests/requirements.txt pins it) when there is one, else
    the first on PATH. Straight to the venv's script: a version manager's shim on PATH
    (pyenv) costs a shell and a lookup on every one of the hundreds of calls the bootstrap
    tests make."""
    venv_aws = Path(sys.executable).parent / "aws"
    if venv_aws.is_file() and os.access(venv_aws, os.X_OK):
        return str(venv_aws)
    return require_tool("aws")


def run(cmd: list[str], cwd: Path | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """Run a command, capturing text output; never raises on a non-zero exit."""
    env = dict(os.environ)
    # Keep terraform and checkov from reaching for the network or a user's config.
    env.setdefault("CHECKPOINT_DISABLE", "1")
    env.setdefault("TF_IN_AUTOMATION", "1")
    env.setdefault("BC_SKIP_MAPPING", "TRUE")
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def kustomize_build(directory: Path) -> list[dict]:
    """`kubectl kustomize DIR`, parsed into a list of objects."""
    kubectl = require_tool("kubectl")
    proc = run([kubectl, "kustomize", str(directory)])
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed:\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def load_yaml_files(directory: Path) -> list[tuple[Path, dict]]:
    """Every YAML mapping under a directory (recursively), with its file.
    Lists (JSON6902 patch files) are not objects and are left out."""
    docs = []
    for path in sorted(directory.rglob("*.y*ml")):
        with path.open() as fh:
            for doc in yaml.safe_load_all(fh):
                if isinstance(doc, dict) and doc:
                    docs.append((path, doc))
    return docs


def kustomization_dirs(root: Path) -> list[Path]:
    """Directories holding a kustomization.yaml (what `kubectl kustomize` builds)."""
    return sorted(p.parent for p in root.rglob("kustomization.yaml"))
