"""checkov (pinned in install-tools.sh) over terraform/ and kube/: no failed
check, and every skipped check carries a written reason next to the skip.

kube/ is scanned with checkov's kustomize framework, i.e. on what
`kubectl kustomize` renders: the raw-file kubernetes framework would judge
patch fragments and namespace-less bases as if they were whole objects.
Terraform skips are `#checkov:skip=CKV_ID:reason` comments in the resource;
Kubernetes skips are `checkov.io/skipN: CKV_ID=reason` annotations."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_tools  # noqa: E402

MIN_REASON = 20


def run_checkov(directory: Path, frameworks: list[str]) -> list[dict]:
    checkov = stack_tools.require_tool("checkov", env_var="CHECKOV")
    proc = stack_tools.run(
        [checkov, "-d", str(directory), "--framework", *frameworks,
         "--skip-download", "--compact", "--quiet", "-o", "json"],
        cwd=stack_tools.REPO,
        timeout=170,
    )
    # checkov exits 1 when a check fails; anything else with no JSON is an error.
    assert proc.returncode in (0, 1), f"checkov crashed:\n{proc.stderr[-3000:]}"
    decoder, text, reports, pos = json.JSONDecoder(), proc.stdout.strip(), [], 0
    while pos < len(text):
        doc, end = decoder.raw_decode(text, pos)
        reports.extend(doc if isinstance(doc, list) else [doc])
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    assert reports, f"checkov printed no report:\n{proc.stdout[:2000]}\n{proc.stderr[-2000:]}"
    return reports


def failures(reports: list[dict]) -> list[str]:
    out = []
    for report in reports:
        for f in report.get("results", {}).get("failed_checks", []):
            out.append(f"{f['check_id']} {f['resource']} ({f['file_path']}): {f['check_name']}")
    return out


def assert_clean(reports: list[dict], expected_type: str) -> None:
    types = {r.get("check_type") for r in reports}
    assert expected_type in types, f"no {expected_type} report (got {types}): nothing was scanned"
    for report in reports:
        summary = report.get("summary", {})
        assert summary.get("parsing_errors", 0) == 0, f"{report.get('check_type')}: parsing errors"
        if report.get("check_type") == expected_type:
            assert summary.get("resource_count", 0) > 0, f"{expected_type}: no resources scanned"
    failed = failures(reports)
    assert not failed, "checkov failed checks (fix, or skip with a reason):\n" + "\n".join(failed)
    for report in reports:
        for s in report.get("results", {}).get("skipped_checks", []):
            reason = (s.get("check_result", {}) or {}).get("suppress_comment") or ""
            assert len(reason.strip()) >= MIN_REASON, f"{s['check_id']} on {s['resource']} skipped without a reason"


@pytest.mark.timeout(180)
def test_checkov_terraform():
    assert_clean(run_checkov(stack_tools.TERRAFORM_DIR, ["terraform", "secrets"]), "terraform")


@pytest.mark.timeout(180)
def test_checkov_kube():
    assert_clean(run_checkov(stack_tools.KUBE_DIR, ["kustomize", "secrets"]), "kustomize")


@pytest.mark.timeout(180)
def test_checkov_harness_reports_failures():
    reports = run_checkov(stack_tools.FIXTURES / "checkov-bad", ["terraform"])
    failed = failures(reports)
    assert any(f.startswith("CKV_AWS_338 ") or f.startswith("CKV_AWS_66 ") for f in failed), failed
    assert any("aws_s3_bucket_public_access_block" in f for f in failed), failed


TF_SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")
K8S_SKIP = re.compile(r"checkov\.io/skip\d+:\s*([A-Z0-9_]+)(?:=(.*))?")


def test_every_inline_skip_has_a_reason():
    seen = 0
    for path in list(stack_tools.TERRAFORM_DIR.rglob("*.tf")) + list(stack_tools.KUBE_DIR.rglob("*.yaml")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            for match in list(TF_SKIP.finditer(line)) + list(K8S_SKIP.finditer(line)):
                seen += 1
                reason = (match.group(2) or "").strip()
                assert len(reason) >= MIN_REASON, f"{path}:{lineno}: {match.group(1)} skipped without a reason"
    assert seen > 0
