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
if [[ "${PCTL_SKIP_PLATFORM_TOOLS:-}" != 1 ]]; then
  tests/platform/install-tools.sh
fi
# tmux: the MFA prompt test types into a real terminal
if ! command -v tmux >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=()
    [[ "$(id -u)" == 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get install -y -q tmux
  elif command -v brew >/dev/null 2>&1; then
    brew install tmux
  else
    echo "tests/setup.sh: install tmux (needed by tests/e2e/test_mfa_modes.py)" >&2
    exit 1
  fi
fi
cargo build --quiet --workspace --bins
