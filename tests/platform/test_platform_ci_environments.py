"""Issue 20 items 2, 3, 9 (CI side) and 13: the per-PR environment of
.github/workflows/platform.yml never writes the PR branch, is destroyed by a
job of its own whatever happened to the apply, abandoned environments are
found and destroyed by platform-janitor.yml, and the admin role is reached
only through a GitHub Environment whose subject the documented trust policy
names (with a permissions boundary). Workflow structure and policy content,
offline."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_tools  # noqa: E402

WORKFLOWS = stack_tools.REPO / ".github" / "workflows"
CI_IAM = stack_tools.TERRAFORM_DIR / "ci-iam"


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


@pytest.fixture(scope="module")
def platform() -> dict:
    return load("platform.yml")


@pytest.fixture(scope="module")
def janitor() -> dict:
    return load("platform-janitor.yml")


def steps_by_name(job: dict) -> dict[str, dict]:
    return {s.get("name", s.get("uses", "")): s for s in job["steps"]}


def all_text(job: dict) -> str:
    return yaml.safe_dump(job)


# --------------------------------------------------------------------------
# 2. Flux bootstraps from ci/pr-<n>, the PR branch is never written


def test_flux_branch_is_a_throw_away_branch(platform):
    for name in ("e2e", "teardown"):
        job = platform["jobs"][name]
        assert job["env"]["TF_VAR_git_branch"] == "ci/pr-${{ github.event.pull_request.number }}", name
        assert job["env"]["FLUX_BRANCH"] == job["env"]["TF_VAR_git_branch"]
        assert "head_ref" not in all_text(job), f"{name} names the PR branch"
        checkout = job["steps"][0]
        assert checkout["with"]["ref"] == "${{ github.event.pull_request.head.sha }}"


def test_flux_branch_is_created_at_the_pr_head_before_use_and_deleted_at_the_end(platform):
    e2e = platform["jobs"]["e2e"]
    names = [s.get("name", s.get("uses", "")) for s in e2e["steps"]]
    create = steps_by_name(e2e)["throw-away Flux branch at the PR head"]
    assert "refs/heads/$FLUX_BRANCH" in create["run"] and 'sha="$HEAD_SHA"' in create["run"]
    assert create["env"]["HEAD_SHA"] == "${{ github.event.pull_request.head.sha }}"
    assert '[[ "$FLUX_BRANCH" == ci/pr-* ]]' in create["run"]
    assert names.index("throw-away Flux branch at the PR head") < names.index("Git source exists")

    teardown = platform["jobs"]["teardown"]
    tnames = [s.get("name", s.get("uses", "")) for s in teardown["steps"]]
    delete = steps_by_name(teardown)["delete the throw-away Flux branch (always)"]
    assert delete["if"] == "always()" and tnames[-1] == "delete the throw-away Flux branch (always)"
    assert '--method DELETE "repos/$REPO/git/refs/heads/$FLUX_BRANCH"' in delete["run"]
    assert '[[ "$FLUX_BRANCH" == ci/pr-* ]]' in delete["run"]


def test_bootstrap_commit_is_signed_by_a_throw_away_key(platform):
    # kube/ is verified (issue 19): the run's own key, listed in its checkout only.
    e2e = platform["jobs"]["e2e"]
    names = [s.get("name", s.get("uses", "")) for s in e2e["steps"]]
    step = steps_by_name(e2e)["throw-away key that signs Flux's bootstrap commit"]
    run = step["run"]
    assert 'GNUPGHOME="$RUNNER_TEMP/gnupg"' in run and "--quick-gen-key" in run
    assert "> kube/signing/ci-throw-away.asc" in run
    assert 'TF_VAR_git_gpg_key_ring=$RUNNER_TEMP/flux-gpg.asc' in run and "umask 077" in run
    assert "git commit" not in all_text(e2e) and "git push" not in all_text(e2e)
    assert names.index("throw-away key that signs Flux's bootstrap commit") < names.index("terraform apply")


# --------------------------------------------------------------------------
# 3. destroy in its own job, fresh credentials, a fallback that terminates
#    Karpenter's instances, and a janitor


def test_teardown_is_its_own_job_with_fresh_credentials(platform):
    e2e, teardown = platform["jobs"]["e2e"], platform["jobs"]["teardown"]
    assert teardown["needs"] == "e2e"
    assert teardown["if"].split()[0] == "always()"
    assert "needs.e2e.result != 'skipped'" in teardown["if"] and "platform-e2e" in teardown["if"]
    assert teardown["permissions"]["id-token"] == "write"
    oidc = steps_by_name(teardown)["AWS role through GitHub OIDC (profile pctl-ci)"]
    assert oidc["with"]["role-to-assume"] == "${{ vars.PLATFORM_CI_ROLE_ARN }}"
    assert "destroy" not in " ".join(s.get("name", "") for s in e2e["steps"]), "the apply job destroys nothing"
    assert "teardown.sh" not in all_text(e2e)
    # Apply + smoke test fit the apply job, destroy gets its own time budget.
    assert e2e["timeout-minutes"] <= 90 and teardown["timeout-minutes"] >= 60


def test_fallback_terminates_karpenter_instances_before_destroying(platform):
    run = steps_by_name(platform["jobs"]["teardown"])["destroy"]["run"]
    lines = [l.strip() for l in run.splitlines()]
    teardown = next(i for i, l in enumerate(lines) if "terraform/teardown.sh --yes" in l)
    terminate = next(i for i, l in enumerate(lines) if "terminate-karpenter-instances.sh --cluster \"$CLUSTER\"" in l)
    destroy = next(i for i, l in enumerate(lines) if "destroy -auto-approve" in l and "teardown" not in l)
    assert teardown < terminate < destroy
    # The new runner's address must reach the endpoint before teardown.sh does.
    assert "update-allowed-cidr.sh --yes \"$RUNNER_CIDR\"" in run
    assert run.index("update-allowed-cidr.sh") < run.index("teardown.sh")


def test_janitor_finds_stale_environments_and_destroys_them(janitor):
    on = janitor[True] if True in janitor else janitor["on"]
    assert "schedule" in on and "workflow_dispatch" in on
    assert janitor["permissions"] == {}
    assert int(janitor["env"]["MAX_AGE_HOURS"]) >= 4, "a platform.yml run may take 3 hours"
    find = janitor["jobs"]["find"]
    listing = steps_by_name(find)["state objects older than the bound"]["run"]
    assert "--prefix ci/pr-" in listing and "LastModified<=" in listing and ".resources | length" in listing
    teardown = janitor["jobs"]["teardown"]
    assert teardown["strategy"]["matrix"]["cluster"] == "${{ fromJSON(needs.find.outputs.stale) }}"
    steps = steps_by_name(teardown)
    names = list(steps)
    lock = steps["release a stale state lock"]["run"]
    assert "terraform.tfstate.tflock" in lock and "delete-object" in lock and "<= cutoff" in lock
    destroy = steps["destroy"]["run"]
    assert "terminate-karpenter-instances.sh" in destroy and "teardown.sh --yes" in destroy
    assert names.index("release a stale state lock") < names.index("terraform init (state key per PR)") < names.index("destroy")
    assert steps["delete the throw-away Flux branch (always)"]["if"] == "always()"


def test_janitor_passes_zizmor():
    tool = stack_tools.require_tool("zizmor")
    proc = stack_tools.run([tool, "--offline", "--persona=pedantic", "--no-progress",
                            str(WORKFLOWS / "platform-janitor.yml")], timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------
# 9. no CloudTrail trail per PR environment


def test_ci_environments_create_no_trail(platform, janitor):
    for job in (platform["jobs"]["e2e"], platform["jobs"]["teardown"], janitor["jobs"]["teardown"]):
        assert job["env"]["TF_VAR_create_trail"] == "false"


# --------------------------------------------------------------------------
# 13. the admin role is reached through a GitHub Environment


def test_jobs_with_the_role_run_in_an_environment(platform, janitor):
    assert platform["jobs"]["e2e"]["environment"] == platform["jobs"]["teardown"]["environment"] == "platform-e2e"
    assert janitor["jobs"]["find"]["environment"] == janitor["jobs"]["teardown"]["environment"] == "platform-janitor"
    for wf in (platform, janitor):
        for name, job in wf["jobs"].items():
            if job.get("permissions", {}).get("id-token") == "write":
                assert "environment" in job, f"{name} gets an OIDC token outside an environment"


def test_trust_policy_names_only_environment_subjects():
    trust = json.loads((CI_IAM / "trust-policy.json").read_text())
    (statement,) = trust["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    cond = statement["Condition"]
    assert cond["StringEquals"]["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    subjects = cond["StringEquals"]["token.actions.githubusercontent.com:sub"]
    assert sorted(subjects) == ["repo:OWNER/REPO:environment:platform-e2e",
                                "repo:OWNER/REPO:environment:platform-janitor"]
    assert "StringLike" not in cond, "no wildcard subject"
    assert not any(s.endswith(":pull_request") for s in subjects)


def test_permissions_boundary_denies_escalation():
    boundary = json.loads((CI_IAM / "permissions-boundary.json").read_text())
    statements = {s["Sid"]: s for s in boundary["Statement"]}
    allow = [s for s in boundary["Statement"] if s["Effect"] == "Allow"]
    assert allow and all(a != "*" for s in allow for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])), \
        "the boundary allows named services, not *"
    allowed = {a.split(":")[0] for s in allow for a in s["Action"]}
    # What the stack creates (vpc/eks/karpenter/cloudtrail/flux) and its state bucket.
    assert {"ec2", "eks", "iam", "sqs", "events", "logs", "kms", "s3", "cloudtrail"} <= allowed
    deny_users = statements["NoUsersOrKeys"]
    assert deny_users["Effect"] == "Deny"
    assert {"iam:CreateUser", "iam:CreateAccessKey", "iam:CreateLoginProfile"} <= set(deny_users["Action"])
    keep = statements["KeepTheBoundaryAndTrust"]
    assert keep["Effect"] == "Deny"
    assert {"iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary",
            "iam:UpdateAssumeRolePolicy", "iam:DeletePolicy", "iam:CreatePolicyVersion"} <= set(keep["Action"])
    org = statements["NoAccountOrOrganization"]
    assert org["Effect"] == "Deny" and {"organizations:*", "account:*"} <= set(org["Action"])


def test_readme_documents_the_environment_setup():
    text = (stack_tools.TERRAFORM_DIR / "README.md").read_text()
    for needle in ("environment:platform-e2e", "required reviewers", "permissions-boundary.json",
                   "platform-janitor", "ci/pr-<number>"):
        assert needle in text, needle
    assert not re.search(r"`sub` = `repo:<owner>/<repo>:pull_request`", text)
