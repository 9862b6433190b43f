"""terraform/check-git-source.sh with real git against local bare
repositories: the repository, branch and Flux path that flux_bootstrap_git
will use must exist before apply, each failure with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_tools  # noqa: E402

SCRIPT = stack_tools.TERRAFORM_DIR / "check-git-source.sh"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True, capture_output=True)


@pytest.fixture(scope="module")
def remote(tmp_path_factory) -> str:
    """A bare repository with branch main holding kube/clusters/platform."""
    root = tmp_path_factory.mktemp("git")
    src = root / "src"
    (src / "kube" / "clusters" / "platform").mkdir(parents=True)
    (src / "kube" / "clusters" / "platform" / "apps.yaml").write_text("kind: Kustomization\n")
    git("init", "-q", "-b", "main", str(src))
    git("add", "-A", cwd=src)
    git("commit", "-q", "-m", "tree", cwd=src)
    bare = root / "repo.git"
    git("clone", "-q", "--bare", str(src), str(bare))
    return f"file://{bare}"


def check(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(["bash", str(SCRIPT), *args], env={**base, **env}, capture_output=True, text=True,
                          timeout=60, check=False)


def test_existing_repo_branch_and_path_pass(remote):
    proc = check(remote, "main", "kube/clusters/platform")
    assert proc.returncode == 0, proc.stderr
    assert "Flux can bootstrap" in proc.stdout


def test_defaults_come_from_the_terraform_variables(remote):
    proc = check(TF_VAR_git_url=remote, TF_VAR_git_token="never-printed-token")
    assert proc.returncode == 0, proc.stderr
    assert "'main'" in proc.stdout and "'kube/clusters/platform'" in proc.stdout
    assert "never-printed-token" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["{remote}-missing"], "cannot read file://"),
        (["{remote}", "platform-tuning"], "branch 'platform-tuning' does not exist"),
        (["{remote}", "main", "kube/clusters/staging"], "path 'kube/clusters/staging' does not exist on branch 'main'"),
        ([], "no repository: set TF_VAR_git_url"),
    ],
    ids=["no-repo", "no-branch", "no-path", "no-url"],
)
def test_missing_pieces_fail_with_one_clear_line(remote, args, message):
    proc = check(*[a.format(remote=remote) for a in args], TF_VAR_git_token="never-printed-token")
    assert proc.returncode != 0
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "never-printed-token" not in proc.stderr


def test_token_reaches_git_only_through_askpass():
    text = SCRIPT.read_text()
    assert "GIT_ASKPASS" in text and "GIT_TERMINAL_PROMPT=0" in text
    # Never interpolated into a URL or an argument.
    assert "@${" not in text and "git_token}@" not in text


def test_readme_runs_the_check_before_apply():
    text = (stack_tools.TERRAFORM_DIR / "README.md").read_text()
    bring_up = text[text.index("## Bring-up"):]
    assert bring_up.index("./check-git-source.sh") < bring_up.index("terraform apply")
