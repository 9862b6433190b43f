""".github/workflows/platform.yml, the seed's per-PR create/destroy. It
cannot run here, so: zizmor (pinned in requirements.txt, offline audits,
pedantic persona) finds nothing in it and does find problems in broken
copies; the job structure keeps its promises (checks on every PR; apply,
smoke test, destroy always, leftover report on a labelled PR, through OIDC
with no stored key); the CI stand-in for `pctl eks token` answers only that."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_tools  # noqa: E402

WORKFLOW = stack_tools.REPO / ".github" / "workflows" / "platform.yml"
SHIM = stack_tools.REPO / ".github" / "ci" / "pctl"


def zizmor(path: Path) -> subprocess.CompletedProcess:
    tool = stack_tools.require_tool("zizmor")
    return stack_tools.run([tool, "--offline", "--persona=pedantic", "--no-progress", str(path)], timeout=60)


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_zizmor_finds_nothing():
    proc = zizmor(WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "old, new, audit",
    [
        ("actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1", "actions/checkout@v7", "unpinned-uses"),
        ("\npermissions: {}\n", "\npermissions: write-all\n", "excessive-permissions"),
        ('run: terraform/check-git-source.sh', 'run: terraform/check-git-source.sh "${{ github.head_ref }}"',
         "template-injection"),
    ],
    ids=["unpinned-action", "write-all", "template-injection"],
)
def test_zizmor_catches_a_broken_copy(tmp_path, old, new, audit):
    text = WORKFLOW.read_text()
    assert old in text
    broken = tmp_path / ".github" / "workflows" / "platform.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(text.replace(old, new))
    proc = zizmor(broken)
    assert proc.returncode != 0
    assert audit in proc.stdout + proc.stderr


def test_triggers_and_permissions(workflow):
    on = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert "labeled" in on["pull_request"]["types"]
    assert {"terraform/**", "kube/**"} <= set(on["pull_request"]["paths"])
    assert workflow["permissions"] == {}
    checks = workflow["jobs"]["checks"]
    assert checks["permissions"] == {"contents": "read"}
    text = yaml.safe_dump(checks["steps"])
    for needle in ("terraform fmt -check", "terraform validate", "kubectl kustomize", "pytest tests/platform",
                   "install-tools.sh"):
        assert needle in text, needle


def test_e2e_job_creates_smoke_tests_and_always_destroys(workflow):
    job = workflow["jobs"]["e2e"]
    assert "platform-e2e" in job["if"] and "head.repo.full_name == github.repository" in job["if"]
    assert job["permissions"]["id-token"] == "write"
    assert job["env"]["TF_VAR_name"] == job["env"]["CLUSTER"] == "pr-${{ github.event.pull_request.number }}"
    assert job["concurrency"]["cancel-in-progress"] is False
    steps = {s.get("name", s.get("uses", "")): s for s in job["steps"]}
    names = [s.get("name", s.get("uses", "")) for s in job["steps"]]

    oidc = steps["AWS role through GitHub OIDC (profile pctl-ci)"]["with"]
    assert oidc["role-to-assume"] == "${{ vars.PLATFORM_CI_ROLE_ARN }}"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(oidc), "no stored keys"

    init = steps["terraform init (state key per PR)"]["run"]
    assert 'key=ci/$CLUSTER/terraform.tfstate' in init

    smoke = steps["smoke test"]["run"]
    for needle in ("kubectl wait --for=condition=Ready nodes --all",
                   "kustomizations.kustomize.toolkit.fluxcd.io --all",
                   "karpenter.sh/nodepool=default"):
        assert needle in smoke
    order = [names.index(n) for n in ("Git source exists", "terraform apply", "smoke test")]
    assert order == sorted(order)

    # Destroy runs in its own job (test_platform_ci_environments.py).
    teardown = workflow["jobs"]["teardown"]
    tsteps = {s.get("name", s.get("uses", "")): s for s in teardown["steps"]}
    destroy, leftovers = tsteps["destroy"], tsteps["leftovers (always)"]
    assert teardown["if"].startswith("always()") and leftovers["if"] == "always()"
    assert "terraform/teardown.sh --yes" in destroy["run"]
    assert "describe-instances" in leftovers["run"] and "exit 1" in leftovers["run"]


def test_workflow_uses_the_stack_profile_convention(workflow):
    env = workflow["jobs"]["e2e"]["env"]
    assert env["TF_VAR_aws_profile"] == env["AWS_PROFILE"] == "pctl-ci"


def test_no_secret_is_written_to_a_file():
    text = WORKFLOW.read_text()
    assert "GITHUB_ENV" not in text.split("TF_VAR_operator_cidrs")[0]
    for line in text.splitlines():
        if ">> \"$GITHUB_ENV\"" in line:
            assert "token" not in line.lower(), line


# --------------------------------------------------------------------------
# the CI stand-in for `pctl eks token`


@pytest.fixture()
def fake_aws(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    aws = bindir / "aws"
    aws.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\n")
    aws.chmod(0o755)
    return {"PATH": f"{bindir}:/usr/bin:/bin", "AWS_PROFILE": "pctl-ci"}


def test_shim_answers_eks_token_through_the_profile(fake_aws):
    proc = subprocess.run([str(SHIM), "eks", "token", "--cluster", "pr-7", "--role", "ci"], env=fake_aws,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["eks", "get-token", "--cluster-name", "pr-7", "--profile", "pctl-ci",
                                   "--output", "json"]


@pytest.mark.parametrize("args, message", [
    (["credential-process", "--role", "admin"], "only 'eks token' is available in CI"),
    (["eks", "token", "--role", "ci"], "--cluster is required"),
    (["eks", "token", "--cluster"], "--cluster needs a value"),
])
def test_shim_refuses_everything_else(fake_aws, args, message):
    proc = subprocess.run([str(SHIM), *args], env=fake_aws, capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_zizmor_is_pinned_for_the_test_venv():
    reqs = (Path(__file__).resolve().parent / "requirements.txt").read_text()
    assert "zizmor==" in reqs
    assert os.access(SHIM, os.X_OK)
