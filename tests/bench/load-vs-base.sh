#!/usr/bin/env bash
# Benchmark: requests per second of this tree's daemon side by side with the
# daemon built at a base commit (issue 16 §3: at least the figures of the
# daemon at 34233f7), in one run. One sandbox (moto with IAM auth as AWS, the
# `op` stand-in as 1Password), one config, one load generator
# (tests/bench/loadgen: `eks_token` for a warm cluster, a fresh connection per
# request with the client's trust checks; `--with-env`, which both daemons
# accept). Each daemon is unlocked and warmed first; then ROUNDS rounds, each
# measuring base then new at 1 and 8 clients; then 1024 clients once each,
# for the errors. Prints a Markdown table (figures per round, the mean, and
# new/base).
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

out="$sandbox/results.jsonl"
: >"$out"
for r in $(seq "$rounds"); do
  for name in base new; do
    say "round $r: $name at 1 and 8 clients, $requests requests each"
    "$loadgen" --socket "$sandbox/run-$name/pctl.sock" --cluster platform --with-env \
      --concurrency 1,8 --requests "$requests" | sed "s/^{/{\"daemon\":\"$name\",\"round\":$r,/" | tee -a "$out"
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
print("| clients | base req/s (per round) | new req/s (per round) | base mean | new mean | new/base |")
print("|---|---|---|---|---|---|")
for c in (1, 8):
    b = [r["rps"] for r in rows if r["daemon"] == "base" and r["concurrency"] == c and r["round"]]
    n = [r["rps"] for r in rows if r["daemon"] == "new" and r["concurrency"] == c and r["round"]]
    fmt = lambda v: ", ".join(f"{x:,.0f}" for x in v)
    bm, nm = statistics.mean(b), statistics.mean(n)
    print(f"| {c} | {fmt(b)} | {fmt(n)} | {bm:,.0f} | {nm:,.0f} | {nm / bm:.2f}x |")
for r in rows:
    if r["concurrency"] == 1024:
        print(f"\n- {r['daemon']} at 1024 clients: {r['requests']:,} requests, {r['errors']} errors, "
              f"{r['rps']:,.0f} req/s, p99 {r['p99_us'] / 1000:.1f} ms"
              + (f" (first error: {r['first_error']})" if r["errors"] else ""), end="")
print()
errs = sum(r["errors"] for r in rows)
print(f"- errors in all levels: {errs}")
PY
