#!/usr/bin/env bash
# Issue 16 §3's two benchmarks, one after the other, on builds made
# beforehand, for a quiet window on the machine (nothing is compiled here;
# about 2-3 minutes, at most 6):
#
#   1. tests/bench/static-client.sh: warm `pctl eks token` and `pctl
#      credential-process` of the static (packaged), dynamic (release) and dev
#      (debug) clients, and of BEFORE's static client when given, next to
#      /bin/true in one hyperfine run, against this tree's release daemon.
#   2. tests/bench/load-vs-base.sh with ROUNDS=3: requests/s at 1 and 8
#      clients of this tree's release daemon and of the daemon at 34233f7,
#      side by side, then 1024 clients for the errors.
#
# The builds it needs (made with, for this tree:
#   packaging/build.sh
#   cargo build --release -p pctl --bin pctl -p pctl-broker --bin pctl-daemon
#   cargo build --release -p pctl-loadgen
#   cargo build --workspace --bins            # the dev client
# and for the base, the header of tests/bench/load-vs-base.sh):
#   target/package/release/bin/pctl  target/release/{pctl,pctl-daemon,pctl-loadgen}
#   target/debug/pctl                $BASE_DAEMON (default below)
#
#   [BASE_DAEMON=...] [BEFORE=dir with a previous static pctl] tests/bench/quiet-window.sh
#
# Prints the load average before and after each benchmark: figures taken
# while it is above ~1 on this 2-core machine are not a quiet window's.
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
base="${BASE_DAEMON:-/tmp/base-34233f7/target/release/pctl-daemon}"
for b in target/package/release/bin/pctl target/release/pctl target/release/pctl-daemon \
  target/release/pctl-loadgen target/debug/pctl "$base"; do
  [[ -x "$b" ]] || { echo "quiet-window: $b is missing: build it first (see this script's header)" >&2; exit 1; }
done
if [[ -n "${BEFORE:-}" && ! -x "$BEFORE/pctl" ]]; then
  echo "quiet-window: BEFORE=$BEFORE holds no pctl" >&2
  exit 1
fi

start=$SECONDS
log="$(mktemp /tmp/pctl-quiet-window.XXXXXX)"
# run PATTERN CMD...: the command's output from the line matching PATTERN on;
# all of it (kept in $log) when it fails.
run() {
  local from="$1"
  shift
  if ! "$@" >"$log" 2>&1; then
    tail -40 "$log"
    echo "quiet-window: failed: $* (whole output: $log)" >&2
    exit 1
  fi
  sed -n "/$from/,\$p" "$log"
}
load() { echo "load average ($1): $(cut -d' ' -f1-3 /proc/loadavg)"; }
load "before the static client benchmark"
run '==> results' env NO_BUILD=1 tests/bench/static-client.sh
load "after the static client benchmark"
run '^Machine:' env ROUNDS=3 BASE_DAEMON="$base" NEW_DAEMON="$repo/target/release/pctl-daemon" \
  LOADGEN="$repo/target/release/pctl-loadgen" tests/bench/load-vs-base.sh
load "after the load benchmark"
rm -f "$log"
echo "quiet-window: $((SECONDS - start)) s in all; commit $(git rev-parse --short HEAD)"
