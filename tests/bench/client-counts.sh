#!/usr/bin/env bash
# Counts that other load on the machine does not change, for one warm run
# of each client (`eks token` and `credential-process`) against this tree's
# release daemon, next to /bin/true: user-space instructions (valgrind
# callgrind's "I refs"; `perf stat -e instructions:u` needs a PMU, which
# virtual machines often lack) and page faults (`perf stat -e page-faults`,
# when perf is installed). Nothing is built: the clients are given (default:
# the packaged static client, the dynamic release build and the dev build).
#
#   [DAEMON_CLIENT=pctl beside the pctl-daemon to use] tests/bench/client-counts.sh [NAME=CLIENT ...]
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
needs valgrind
clients=("$@")
if ((${#clients[@]} == 0)); then
  clients=(static="$repo/target/package/release/bin/pctl" dynamic="$repo/target/release/pctl"
    dev="$repo/target/debug/pctl")
fi
PCTL="${DAEMON_CLIENT:-$repo/target/release/pctl}"
built "$PCTL" "$(dirname "$PCTL")/pctl-daemon" "${clients[@]#*=}"
sandbox_up >/dev/null
eval "$("$PCTL" shell)"
"$PCTL" eks token --cluster platform >/dev/null   # unlock, assume the role, mint

instructions() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
    sed -n 's/.*I *refs: *//p' | tr -d ,
}
faults() {
  command -v perf >/dev/null || { echo "-"; return; }
  perf stat -x, -e page-faults "$@" 2>&1 >/dev/null | awk -F, '/page-faults/ {print $1}'
}
commas() { sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/;ta' <<<"$1"; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| client | command | instructions (user) | / true | page faults |"
echo "|---|---|---|---|---|"
true_i="$(instructions /bin/true)"
echo "| /bin/true | | $(commas "$true_i") | 1.00x | $(faults /bin/true) |"
for spec in "${clients[@]}"; do
  name="${spec%%=*}" exe="${spec#*=}"
  for cmd in "eks token --cluster platform" "credential-process --role admin"; do
    read -ra argv <<<"$cmd"
    "$exe" "${argv[@]}" >/dev/null   # warm (and checks it answers)
    i="$(instructions "$exe" "${argv[@]}")"
    ratio="$(awk -v a="$i" -v b="$true_i" 'BEGIN {printf "%.2f", a / b}')"
    echo "| $name | ${cmd%% --*} | $(commas "$i") | ${ratio}x | $(faults "$exe" "${argv[@]}") |"
  done
done
