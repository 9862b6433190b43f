# Shared by the benchmarks in tests/bench/: source it first thing, after
# `set -euo pipefail`:
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# It sets `repo` (the checkout) and works from there, and brings in
# tests/sandbox/lib.sh (say, sandbox_up: moto as AWS, the `op` stand-in as
# 1Password). PCTL, when set before, is the client sandbox_up uses.
# shellcheck shell=bash

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
# shellcheck source=tests/sandbox/lib.sh
source "$repo/tests/sandbox/lib.sh"

# needs TOOL...: stops (status 2) naming the first tool that is not installed.
needs() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "needs $t, which is not on PATH: install it (apt-get)" >&2; exit 2; }
  done
}

# built FILE...: stops (status 1) naming the first program that is not built.
built() {
  local b
  for b in "$@"; do
    [[ -x "$b" ]] || { echo "missing $b: build it first" >&2; exit 1; }
  done
}

# The daemons start_daemon started; stop_daemons (the EXIT trap of a
# script that uses start_daemon) stops them and then the sandbox.
daemon_pids=()
stop_daemons() {
  local p
  for p in "${daemon_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  cleanup   # sandbox_up's: stops moto, removes the sandbox
}

# start_daemon NAME BINARY RUNDIR [WRAPPER...]: the daemon BINARY (under
# WRAPPER, e.g. valgrind) on a socket of its own in RUNDIR, logging to
# $sandbox/NAME.log; waits (at most a minute) for the socket. Sets `pid`
# and `sock`.
start_daemon() {
  local name="$1" bin="$2" run="$3"
  shift 3
  mkdir -m 700 -p "$run"
  XDG_RUNTIME_DIR="$run" PCTL_SOCK="$run/pctl.sock" "$@" "$bin" --log-file "$sandbox/$name.log" \
    2>>"$sandbox/$name.err" &
  pid=$!
  daemon_pids+=("$pid")
  sock="$run/pctl.sock"
  local _
  for _ in $(seq 600); do [[ -S "$sock" ]] && break; sleep 0.1; done
  [[ -S "$sock" ]] || { echo "daemon $name did not start: $sandbox/$name.err" >&2; exit 1; }
}

# record_section REPORT [NAME=VALUE...] <<'EOF' ... EOF: with --record as
# the script's `record`, the section of BENCHMARKS.md written on standard
# input (its first line the heading, "## Title: ...") takes the place of the
# section whose heading starts the same up to its first ':', or is added at
# the end. In the text, @REPORT@ stands for REPORT, @DAY@ for today's date
# (UTC) and @NAME@ for VALUE.
record_section() {
  [[ "${record:-}" == --record ]] || return 0
  local text
  text="$(cat)"
  "$repo/.venv/bin/python" - "$repo/BENCHMARKS.md" "$text" "REPORT=$1" "DAY=$(date -u +%Y-%m-%d)" \
    "${@:2}" <<'PY'
import re, sys
path, section = sys.argv[1:3]
for arg in sys.argv[3:]:
    name, value = arg.split("=", 1)
    section = section.replace(f"@{name}@", value)
section = section.rstrip() + "\n"
heading = section.split("\n", 1)[0]
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Benchmarks\n\nEvery number here comes from a script in `tests/bench/`, run on the machine named with it.\n"
pat = re.compile(re.escape(heading.split(":", 1)[0]) + r"[:\n].*?(?=\n## |\Z)", re.S)
if pat.search(text):
    text = pat.sub(lambda _: section, text, count=1)
else:
    text = text.rstrip() + "\n\n" + section
open(path, "w").write(text)
PY
  echo "recorded in BENCHMARKS.md"
}
