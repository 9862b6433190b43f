"""terraform/update-allowed-cidr.sh: after the operator's IP changed, the
new CIDRs reach the cluster through a targeted apply of the EKS cluster
alone (no refresh through the endpoint that drops the operator), then a full
plan. Terraform and curl are stand-ins on PATH that record their argv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack_tools  # noqa: E402

SCRIPT = stack_tools.TERRAFORM_DIR / "update-allowed-cidr.sh"
TARGET = "-target=module.eks.aws_eks_cluster.this"

RECORDER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["RECORD_FILE"], "a") as fh:
    fh.write(json.dumps({"tool": os.path.basename(sys.argv[0]), "argv": sys.argv[1:], "cwd": os.getcwd()}) + "\\n")
sub = sys.argv[1] if len(sys.argv) > 1 else ""
if os.path.basename(sys.argv[0]) == "curl":
    sys.stdout.write(os.environ.get("FAKE_IP", "") + "\\n")
    sys.exit(int(os.environ.get("CURL_EXIT", "0")))
sys.exit(int(os.environ.get("TF_EXIT_" + sub.upper(), "0")))
"""


@pytest.fixture()
def rig(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("terraform", "curl"):
        path = bindir / tool
        path.write_text(RECORDER.replace("/usr/bin/env python3", sys.executable, 1))
        path.chmod(0o755)
    record = tmp_path / "calls.jsonl"

    def run(*args: str, **env_extra: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
        env = {"PATH": f"{bindir}:/usr/bin:/bin", "RECORD_FILE": str(record), "HOME": str(tmp_path)}
        env.update(env_extra)
        if record.exists():
            record.unlink()
        proc = subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True,
                              timeout=30, check=False)
        calls = [json.loads(l) for l in record.read_text().splitlines()] if record.exists() else []
        return proc, calls

    return run


def tf_calls(calls: list[dict]) -> list[list[str]]:
    return [c["argv"] for c in calls if c["tool"] == "terraform"]


def test_script_is_executable_and_parses():
    assert SCRIPT.stat().st_mode & 0o111
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0


def test_targeted_apply_then_full_plan(rig):
    proc, calls = rig("198.51.100.7/32")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    var = 'operator_cidrs=["198.51.100.7/32"]'
    assert tf_calls(calls) == [
        ["apply", "-input=false", TARGET, "-var", var],
        ["plan", "-input=false", "-detailed-exitcode", "-var", var],
    ]
    # Run from terraform/, whatever the caller's directory.
    assert {c["cwd"] for c in calls} == {str(stack_tools.TERRAFORM_DIR)}
    assert "export TF_VAR_operator_cidrs='[\"198.51.100.7/32\"]'" in proc.stdout


def test_no_untargeted_terraform_run_precedes_the_endpoint_change(rig):
    # The bug this script exists for: any plan/apply/refresh without -target
    # before the CIDR change refreshes through the endpoint and fails.
    _, calls = rig("198.51.100.7/32", "203.0.113.0/24")
    argvs = tf_calls(calls)
    assert TARGET in argvs[0]
    assert argvs[0][0] == "apply"
    assert '-var' in argvs[0] and argvs[0][argvs[0].index("-var") + 1] == (
        'operator_cidrs=["198.51.100.7/32","203.0.113.0/24"]')


def test_yes_skips_confirmation(rig):
    _, calls = rig("--yes", "198.51.100.7/32")
    assert "-auto-approve" in tf_calls(calls)[0]
    _, calls = rig("198.51.100.7/32")
    assert "-auto-approve" not in tf_calls(calls)[0]


def test_detects_the_public_ip_when_no_cidr_is_given(rig):
    proc, calls = rig(FAKE_IP="198.51.100.42")
    assert proc.returncode == 0, proc.stderr
    assert [c["argv"] for c in calls if c["tool"] == "curl"][0][-1] == "https://checkip.amazonaws.com"
    assert tf_calls(calls)[0][-1] == 'operator_cidrs=["198.51.100.42/32"]'


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["not-a-cidr"], {}, "'not-a-cidr' is not an IPv4 CIDR"),
        (["10.0.0.0/8"], {}, "wider than /16"),
        (["300.1.1.1/32"], {}, "is not an IPv4 CIDR"),
        ([], {"FAKE_IP": "<html>error</html>"}, "is not an IPv4 CIDR"),
        ([], {"CURL_EXIT": "6"}, "could not read your public IP"),
        (["--force"], {}, "unknown option --force"),
    ],
    ids=["garbage", "too-wide", "bad-octet", "garbage-from-checkip", "checkip-down", "bad-option"],
)
def test_bad_input_stops_before_terraform(rig, args, env, message):
    proc, calls = rig(*args, **env)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, "one clear line"
    assert tf_calls(calls) == []


def test_failed_targeted_apply_stops_there(rig):
    proc, calls = rig("198.51.100.7/32", TF_EXIT_APPLY="1")
    assert proc.returncode != 0
    assert "targeted apply failed" in proc.stderr
    assert [a[0] for a in tf_calls(calls)] == ["apply"]


@pytest.mark.parametrize("plan_exit, ok, message", [
    ("2", True, "other pending changes"), ("1", False, "full plan still fails")])
def test_plan_outcome_is_reported(rig, plan_exit, ok, message):
    proc, _ = rig("198.51.100.7/32", TF_EXIT_PLAN=plan_exit)
    assert (proc.returncode == 0) is ok
    assert message in proc.stdout + proc.stderr


def test_readme_points_at_the_script():
    text = (stack_tools.TERRAFORM_DIR / "README.md").read_text()
    assert "update-allowed-cidr.sh" in text
    # The old advice (apply again with the new TF_VAR) cannot work.
    assert "update `TF_VAR_operator_cidrs` and apply again" not in text


def test_target_is_a_resource_of_the_pinned_eks_module():
    # -target on an address the module does not declare applies nothing and
    # leaves the operator locked out.
    text = SCRIPT.read_text()
    target = next(line.split('"')[1] for line in text.splitlines() if line.startswith("target="))
    module, address = target.split(".", 2)[1], target.split(".", 2)[2]
    assert module == "eks"
    listed = (Path(__file__).resolve().parent / "module_resources" / "eks-v21.txt").read_text().split()
    assert address in listed
    assert stack_tools.REPO.joinpath("terraform", "eks.tf").read_text().count('version = "21.19.0"') == 1
