#!/usr/bin/env bash
# What one warm request costs the daemon, in counts that other load on the
# machine does not change: user-space instructions per request (valgrind
# callgrind, switched on only after the warm-up, for REQUESTS requests of
# pctl-loadgen at 1 client) and system calls per request (strace -c on the
# daemon over the same run), for this tree's daemon and, with BASE_DAEMON,
# the daemon at a base commit (tests/bench/load-vs-base.sh), side by side.
#
#   [BASE_DAEMON=...] [NEW_DAEMON=target/release/pctl-daemon] \
#   [LOADGEN=target/release/pctl-loadgen] [REQUESTS=2000] tests/bench/daemon-counts.sh
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
new="${NEW_DAEMON:-$repo/target/release/pctl-daemon}"
loadgen="${LOADGEN:-$repo/target/release/pctl-loadgen}"
requests="${REQUESTS:-2000}"
daemons=()
[[ -n "${BASE_DAEMON:-}" ]] && daemons+=(base "$BASE_DAEMON")
daemons+=(new "$new")
built "$loadgen" "${daemons[@]:1:1}" "$new"
needs valgrind callgrind_control strace
sandbox_up >/dev/null
trap stop_daemons EXIT

# start NAME BINARY TAG [WRAPPER...]: the daemon NAME (under WRAPPER) on a
# socket of its own, warmed (unlocked, role assumed, token minted).
start() {
  local name="$1" bin="$2" tag="$3"
  shift 3
  start_daemon "$name" "$bin" "$sandbox/run-$name-$tag" "$@"
  "$loadgen" --socket "$sock" --cluster platform --with-env --concurrency 1 --requests 200 >/dev/null
}
load() { "$loadgen" --socket "$sock" --cluster platform --with-env --concurrency 1 --requests "$requests" >/dev/null; }

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $requests warm eks_token requests at 1 client, --with-env"
echo
echo "| daemon | instructions per request | system calls per request | the calls (per request) |"
echo "|---|---|---|---|"
for ((i = 0; i < ${#daemons[@]}; i += 2)); do
  name="${daemons[i]}" bin="${daemons[i + 1]}"
  cg="$sandbox/callgrind.$name"
  start "$name" "$bin" cg valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$cg"
  callgrind_control -i on "$pid" >/dev/null 2>&1
  load
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  ir="$(cat "$cg"* | sed -n 's/^summary: *//p; s/^totals: *//p' | awk '{s += $1} END {print s}')"
  start "$name" "$bin" st
  strace -c -f -q -o "$sandbox/strace.$name" -p "$pid" &
  tracer=$!
  sleep 1
  load
  kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  calls="$(awk '$NF == "total" {print $4}' "$sandbox/strace.$name")"
  detail="$(awk -v n="$requests" 'NF >= 5 && $1 ~ /^[0-9.]+$/ && $NF != "total" {printf "%s %.1f, ", $NF, $4 / n}' "$sandbox/strace.$name")"
  awk -v name="$name" -v ir="$ir" -v c="$calls" -v n="$requests" -v d="${detail%, }" \
    'BEGIN {printf "| %s | %d | %.1f | %s |\n", name, ir / n, c / n, d}'
done
