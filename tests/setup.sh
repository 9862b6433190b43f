#!/usr/bin/env bash
# Installs what the tests and the sandbox need, idempotently:
# the Python venv (moto, awscli, pytest, ...), checkov's own venv, and the
# debug build of pctl. Needs only the Rust toolchain, Python 3.11 with pip,
# terraform and kubectl on the machine.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
python="${PYTHON:-python3}"

if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
stamp=.venv/.pctl-requirements
want="$(cat tests/requirements.txt tests/platform/requirements.txt | sha256sum | cut -c1-16)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -r tests/requirements.txt -r tests/platform/requirements.txt
  echo "$want" > "$stamp"
fi
# Real shells for tests/e2e/test_shells.py (Debian packages), only when missing.
missing=()
for prog in zsh fish tmux; do
  command -v "$prog" >/dev/null 2>&1 || missing+=("$prog")
done
if (( ${#missing[@]} )); then
  sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
fi
if [[ "${PCTL_SKIP_PLATFORM_TOOLS:-}" != 1 ]]; then
  tests/platform/install-tools.sh
fi
cargo build --quiet --workspace --bins
