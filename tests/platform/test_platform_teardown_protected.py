"""Issue 20 item 8: a protected Flux branch must not stop teardown.sh at its
first step. teardown.sh runs with stand-ins for terraform, kubectl, aws and
pctl that record their arguments; the stand-in terraform refuses the
targeted destroy of the Flux bootstrap the way a protected branch does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_tools  # noqa: E402

TEARDOWN = stack_tools.TERRAFORM_DIR / "teardown.sh"

TERRAFORM = r'''#!/bin/sh
echo "terraform $*" >> "$CALLS"
case "$*" in
  "output -raw cluster_name") printf pr-7 ;;
  "output -raw region") printf us-east-1 ;;
  "output -raw cluster_endpoint") printf https://example.invalid ;;
  "output -raw cluster_certificate_authority_data") printf Q0EK ;;
  *-target=flux_bootstrap_git.this*)
    if [ -n "$PROTECTED" ]; then
      echo "Error: failed to push to remote: protected branch hook declined" >&2
      exit 1
    fi ;;
esac
exit 0
'''

RECORDER = '''#!/bin/sh
echo "{name} $*" >> "$CALLS"
case "$*" in
  "get crd "*) exit 1 ;;
esac
exit 0
'''


@pytest.fixture()
def standins(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "terraform").write_text(TERRAFORM)
    for name in ("kubectl", "aws", "pctl"):
        (bindir / name).write_text(RECORDER.replace("{name}", name))
    for tool in bindir.iterdir():
        tool.chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path), "CALLS": str(calls),
           "AWS_PROFILE": "pctl-ci", "TMPDIR": str(tmp_path)}
    return env, calls


def teardown(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(TEARDOWN), "--yes"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_protected_branch_does_not_stop_the_teardown(standins):
    env, calls = standins
    proc = teardown(dict(env, PROTECTED="1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = calls.read_text().splitlines()
    flux = lines.index("terraform destroy -auto-approve -input=false -target=flux_bootstrap_git.this")
    stop = lines.index("kubectl -n flux-system scale deployment --all --replicas=0")
    forget = lines.index("terraform state rm flux_bootstrap_git.this")
    nodepools = next(i for i, l in enumerate(lines) if l.startswith("kubectl get crd nodepools"))
    everything = lines.index("terraform destroy -auto-approve -input=false")
    assert flux < stop < forget < nodepools < everything
    assert "protected branch" in proc.stderr and "Protected branches" in proc.stderr


def test_unprotected_branch_keeps_the_orderly_path(standins):
    env, calls = standins
    proc = teardown(env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = calls.read_text()
    assert "state rm" not in text and "scale deployment" not in text
    assert text.splitlines()[-1] == "terraform destroy -auto-approve -input=false"
