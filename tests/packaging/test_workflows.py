"""The GitHub workflows (.github/workflows): zizmor, offline, finds nothing at
high severity; every action is pinned by a full commit hash; permissions are
least-privilege (read by default, write only where the release is published);
no secret other than the workflow's own GITHUB_TOKEN; and they run what the
issue asks: tests/run on Linux, build/clippy/test on both macOS runners, and a
tag-triggered release for four targets with tarballs, .deb and checksums.
"""

import os
import re
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKFLOWS = os.path.join(REPO, ".github", "workflows")
# The only write scopes a job may hold, each for one reason: publishing the
# release; the platform e2e job's Flux bootstrap commit to the PR branch and
# its OIDC token for the AWS role (no stored keys).
WRITE_ALLOWED = {
    ("release.yml", "publish", "contents"),
    ("platform.yml", "e2e", "contents"),
    ("platform.yml", "e2e", "id-token"),
    # teardown is its own job with fresh OIDC credentials; it pushes Flux's
    # uninstall commit to the throw-away ci/pr-<n> branch and deletes it
    ("platform.yml", "teardown", "contents"),
    ("platform.yml", "teardown", "id-token"),
    # the janitor finds stale ci/pr-* environments (AWS only), then tears
    # each down as the per-PR teardown does
    ("platform-janitor.yml", "find", "id-token"),
    ("platform-janitor.yml", "teardown", "contents"),
    ("platform-janitor.yml", "teardown", "id-token"),
}
FILES = sorted(f for f in os.listdir(WORKFLOWS) if f.endswith((".yml", ".yaml")))


def load(name):
    with open(os.path.join(WORKFLOWS, name)) as f:
        text = f.read()
    # YAML 1.1 reads the key `on` as True.
    doc = yaml.safe_load(text)
    doc["on"] = doc.pop(True, doc.get("on"))
    return text, doc


def zizmor():
    exe = os.path.join(os.path.dirname(sys.executable), "zizmor")
    if not os.path.exists(exe):
        pytest.fail("zizmor is not installed in the test venv: run tests/setup.sh (tests/requirements.txt)")
    return exe


def test_both_workflows_exist():
    assert {"ci.yml", "release.yml"} <= set(FILES), FILES


def test_zizmor_offline_clean_at_high_severity():
    r = subprocess.run(
        [zizmor(), "--offline", "--no-progress", "--min-severity", "high", WORKFLOWS],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_zizmor_catches_an_unpinned_action(tmp_path):
    # The linter really runs on our input: an unpinned third-party action and
    # a template injection are high-severity findings.
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request_target\n"
        "permissions: {}\n"
        "jobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: someone/action@main\n"
        "      - run: echo ${{ github.event.pull_request.title }}\n"
    )
    r = subprocess.run(
        [zizmor(), "--offline", "--no-progress", "--min-severity", "high", str(bad)],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode != 0, r.stdout + r.stderr


def steps(doc):
    for job in doc["jobs"].values():
        yield from job.get("steps", [])


@pytest.mark.parametrize("name", FILES)
def test_actions_pinned_by_commit_hash(name):
    text, doc = load(name)
    uses = [s["uses"] for s in steps(doc) if "uses" in s]
    for u in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", u), f"{name}: {u} is not pinned by a full commit hash"
    # Every pin says which release it is, for the humans who update it.
    for line in text.splitlines():
        if re.search(r"uses: \S+@[0-9a-f]{40}", line):
            assert re.search(r"# v\d+(\.\d+)*$", line), line


@pytest.mark.parametrize("name", FILES)
def test_least_privilege_and_no_stored_secrets(name):
    text, doc = load(name)
    assert "permissions" in doc, f"{name}: no top-level permissions"
    top = doc["permissions"]
    assert top == {} or top == {"contents": "read"}, top
    assert "write-all" not in text and "read-all" not in text
    for job_name, job in doc["jobs"].items():
        for scope, level in (job.get("permissions") or {}).items():
            if level == "write":
                assert (name, job_name, scope) in WRITE_ALLOWED, (name, job_name, scope)
    assert "secrets." not in text, f"{name} uses a stored secret"
    for step in steps(doc):
        if "uses" in step and step["uses"].startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, f"{name}: checkout keeps the token"


def test_ci_covers_linux_and_both_macos_runners():
    _, doc = load("ci.yml")
    assert "pull_request" in doc["on"] and "push" in doc["on"]
    # the two tiers of tests/run side by side: together, the whole suite
    for job, run in (("linux", "tests/run --quick"), ("linux-slow", "tests/run --slow")):
        linux = doc["jobs"][job]
        assert linux["runs-on"].startswith("ubuntu")
        assert any(s.get("run", "").strip() == run for s in linux["steps"]), (job, run)
        assert linux["timeout-minutes"] <= 90
    mac = doc["jobs"]["macos"]
    assert {i["os"] for i in mac["strategy"]["matrix"]["include"]} == {"macos-15", "macos-15-intel"}
    runs = "\n".join(s.get("run", "") for s in mac["steps"])
    for want in ("cargo build", "cargo clippy --locked --workspace --all-targets -- -D warnings", "cargo test"):
        assert want in runs, want


def test_release_builds_four_targets_and_publishes_everything():
    _, doc = load("release.yml")
    assert doc["on"] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+*"]}}
    include = doc["jobs"]["build"]["strategy"]["matrix"]["include"]
    assert {i["target"] for i in include} == {
        "x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", "aarch64-apple-darwin", "x86_64-apple-darwin",
    }
    assert {i["target"] for i in include if i["deb"]} == {"x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"}
    build_runs = "\n".join(s.get("run", "") for s in doc["jobs"]["build"]["steps"])
    assert "packaging/tarball.sh" in build_runs and "packaging/deb.sh" in build_runs
    publish = doc["jobs"]["publish"]
    assert publish["needs"] == "build"
    runs = "\n".join(s.get("run", "") for s in publish["steps"])
    assert "sha256sum" in runs and "SHA256SUMS" in runs and "packaging/homebrew/render.sh" in runs
    assert re.search(r"gh release create .*dist/\*\.tar\.gz dist/\*\.deb dist/SHA256SUMS dist/pctl\.rb", runs, re.S)


@pytest.mark.parametrize("name", FILES)
def test_scripts_the_workflows_call_exist(name):
    text, _ = load(name)
    for script in set(re.findall(r"(?:\.\./)?((?:packaging|tests)/[\w./-]+?)(?=[\s\")]|$)", text, re.M)):
        script = script.rstrip(".,:;")  # a path that ends a sentence in a comment
        path = os.path.join(REPO, script)
        assert os.path.exists(path), f"{name} names {script}, which does not exist"
        if os.path.isfile(path) and (script.endswith(".sh") or "." not in os.path.basename(script)):
            assert os.access(path, os.X_OK), f"{name} runs {script}, which is not executable"
