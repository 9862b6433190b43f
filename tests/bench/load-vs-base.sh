#!/usr/bin/env bash
# Benchmark: requests per second of this tree's daemon side by side with the
# daemon built at a base commit (issue 16 §3: at least the figures of the
# daemon at 34233f7), in one run. One sandbox (moto with IAM auth as AWS, the
# `op` stand-in as 1Password), one config, one load generator
# (tests/bench/loadgen: `eks_token` for a warm cluster, a fresh connection per
# request with the client's trust checks; `--with-env`, which both daemons
# accept). Each daemon is unlocked and warmed first; then ROUNDS rounds, each
# measuring both at 1 and 8 clients (base first in odd rounds, new first in
# even ones); then 1024 clients once each, for the errors. Prints a Markdown
# table (figures per round, the mean, new/base, the median of the rounds' p50
# latencies, and each daemon's CPU time per request at that level, from
# /proc/PID/stat).
#
#   BASE_DAEMON=/path/to/pctl-daemon NEW_DAEMON=target/release/pctl-daemon \
#   LOADGEN=target/release/pctl-loadgen tests/bench/load-vs-base.sh
#
# Building the base (its own worktree and target dir, release):
#   git worktree add /tmp/base-34233f7 34233f7
#   (cd /tmp/base-34233f7 && cargo build --release -p pctl-broker --bin pctl-daemon \
#      --target-dir /tmp/base-34233f7/target)
# REQUESTS (per level and round, default 20000), ROUNDS (default 3).
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
base="${BASE_DAEMON:?set BASE_DAEMON to the release pctl-daemon built at the base commit}"
new="${NEW_DAEMON:-$repo/target/release/pctl-daemon}"
loadgen="${LOADGEN:-$repo/target/release/pctl-loadgen}"
requests="${REQUESTS:-20000}"
rounds="${ROUNDS:-3}"
py="$repo/.venv/bin/python"
built "$base" "$new" "$loadgen"

sandbox_up
trap stop_daemons EXIT

# start NAME BINARY: a daemon on its own socket, unlocked and warm.
start() {
  start_daemon "$1" "$2" "$sandbox/run-$1"
  "$loadgen" --socket "$sock" --cluster platform --with-env --concurrency 1 --requests 1 >/dev/null
  "$loadgen" --socket "$sock" --cluster platform --with-env --concurrency 8 --requests 5000 >/dev/null
}
say "starting both daemons (base: $base, new: $new)"
start base "$base"
start new "$new"

declare -A pid_of=([base]="${daemon_pids[0]}" [new]="${daemon_pids[1]}")
# The daemon's CPU time so far, user and system (clock ticks): what one
# level cost it, which other load on the machine moves far less than req/s.
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

out="$sandbox/results.jsonl"
: >"$out"
for r in $(seq "$rounds"); do
  # which daemon goes first alternates, so neither always meets the load first
  order=(base new)
  ((r % 2 == 0)) && order=(new base)
  for name in "${order[@]}"; do
    say "round $r: $name at 1 and 8 clients, $requests requests each"
    for c in 1 8; do
      read -r u0 s0 < <(cpu_ticks "${pid_of[$name]}")
      line="$("$loadgen" --socket "$sandbox/run-$name/pctl.sock" --cluster platform --with-env \
        --concurrency "$c" --requests "$requests")"
      read -r u1 s1 < <(cpu_ticks "${pid_of[$name]}")
      sed "s/^{/{\"daemon\":\"$name\",\"round\":$r,\"user_ticks\":$((u1 - u0)),\"sys_ticks\":$((s1 - s0)),/" <<<"$line" |
        tee -a "$out"
    done
  done
done
for name in base new; do
  say "$name at 1024 clients, $requests requests"
  "$loadgen" --socket "$sandbox/run-$name/pctl.sock" --cluster platform --with-env \
    --concurrency 1024 --requests "$requests" | sed "s/^{/{\"daemon\":\"$name\",\"round\":0,/" | tee -a "$out" || true
done

"$py" - "$out" <<'PY'
import json, os, platform, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"\nMachine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}\n")
print("| clients | base req/s (per round) | new req/s (per round) | base mean | new mean | new/base "
      "| p50 µs, median of the rounds, base / new | daemon CPU µs per request (user + system), base / new |")
print("|---|---|---|---|---|---|---|---|")
tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
for c in (1, 8):
    level = lambda d: [r for r in rows if r["daemon"] == d and r["concurrency"] == c and r["round"]]
    b, n = [r["rps"] for r in level("base")], [r["rps"] for r in level("new")]
    per = lambda d, k: sum(r[k] for r in level(d)) * tick_us / sum(r["requests"] for r in level(d))
    cpu = lambda d: f"{per(d, 'user_ticks'):.1f} + {per(d, 'sys_ticks'):.1f}"
    fmt = lambda v: ", ".join(f"{x:,.0f}" for x in v)
    bm, nm = statistics.mean(b), statistics.mean(n)
    # a round the machine stalled moves the mean; the median p50 hardly
    p50 = lambda d: statistics.median(r["p50_us"] for r in level(d))
    print(f"| {c} | {fmt(b)} | {fmt(n)} | {bm:,.0f} | {nm:,.0f} | {nm / bm:.2f}x "
          f"| {p50('base'):.0f} / {p50('new'):.0f} | {cpu('base')} / {cpu('new')} |")
for r in rows:
    if r["concurrency"] == 1024:
        print(f"\n- {r['daemon']} at 1024 clients: {r['requests']:,} requests, {r['errors']} errors, "
              f"{r['rps']:,.0f} req/s, p99 {r['p99_us'] / 1000:.1f} ms"
              + (f" (first error: {r['first_error']})" if r["errors"] else ""), end="")
print()
errs = sum(r["errors"] for r in rows)
print(f"- errors in all levels: {errs}")
PY
