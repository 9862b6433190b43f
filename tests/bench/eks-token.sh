#!/usr/bin/env bash
# Benchmark: what kubectl pays per command for an EKS token, side by side in
# one run on the same machine:
#   /bin/true                          the process-spawn floor
#   pctl eks token (warm)              answered from the daemon's memory
#   aws eks get-token                  the peer (awscli v1, static env keys, STS on moto)
# Wall time by hyperfine, peak RSS by /usr/bin/time or /proc, and the
# ratios. Writes the results to BENCHMARKS.md (section "EKS token") when
# run with --record.
#
#   tests/bench/eks-token.sh [--record]
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
record="${1:-}"

needs hyperfine
[[ -x /usr/bin/time ]] || { echo "needs GNU time (apt-get install time)" >&2; exit 2; }
PCTL="$repo/target/release/pctl"
say "building (release) and setting up"
PCTL_SKIP_PLATFORM_TOOLS=1 PCTL_SKIP_PACKAGING_TOOLS=1 tests/setup.sh
cargo build --quiet --release --workspace --bins
sandbox_up

eval "$("$PCTL" shell)"
"$PCTL" eks token --cluster platform >/dev/null   # unlock, assume the role, mint: the warm path follows
# The peer gets the best case: the role session's keys straight in its
# environment (no credential_process hop), STS on moto.
eval "$("$PCTL" env --role admin --shell bash)"
export AWS_ENDPOINT_URL_STS="$AWS_ENDPOINT_URL"
"$AWS" eks get-token --cluster-name platform >/dev/null

out="$sandbox/hyperfine.json"
say "hyperfine"
hyperfine --warmup 5 --min-runs 30 --export-json "$out" -N \
  --command-name '/bin/true' '/bin/true' \
  --command-name 'pctl eks token (warm)' "$PCTL eks token --cluster platform" \
  --command-name 'aws eks get-token' "$AWS eks get-token --cluster-name platform"

peak_rss_kib() { # peak RSS of one run, KiB (GNU time: measured after exec, not the fork)
  local measured   # captured whole, then the last line: no pipe that can SIGPIPE
  measured="$(/usr/bin/time -f %M "$@" 2>&1 >/dev/null)"
  tail -n 1 <<<"$measured"
}
rss_true="$(peak_rss_kib /bin/true)"
rss_pctl="$(peak_rss_kib "$PCTL" eks token --cluster platform)"
rss_aws="$(peak_rss_kib "$AWS" eks get-token --cluster-name platform)"
status_json="$("$PCTL" status --json)"
daemon_pid="$("$repo/.venv/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])["pid"])' "$status_json")"
daemon_rss="$(awk '/VmRSS/ {print $2}' "/proc/$daemon_pid/status")"
minted="$("$repo/.venv/bin/python" -c 'import json,sys; print(json.loads(sys.argv[1])["counters"]["eks_tokens_minted"])' "$status_json")"

report="$("$repo/.venv/bin/python" - "$out" "$rss_true" "$rss_pctl" "$rss_aws" "$daemon_rss" "$minted" <<'PY'
import json, sys, platform, os
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
t, p, a = (res[k] for k in ("/bin/true", "pctl eks token (warm)", "aws eks get-token"))
ms = lambda r, k="median": r[k] * 1000
rss_true, rss_pctl, rss_aws, daemon_rss, minted = map(int, sys.argv[2:7])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"Machine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}\n")
print("| command | median | mean ± σ | min | peak RSS |")
print("|---|---|---|---|---|")
for name, r, rss in (("/bin/true", t, rss_true), ("pctl eks token (warm)", p, rss_pctl), ("aws eks get-token", a, rss_aws)):
    print(f"| {name} | {ms(r):.2f} ms | {ms(r,'mean'):.2f} ± {r['stddev']*1000:.2f} ms | {ms(r,'min'):.2f} ms | {rss/1024:.1f} MiB |")
print()
print(f"- pctl / true (median): **{p['median']/t['median']:.2f}x** (target: within 2x)")
print(f"- aws eks get-token / pctl (median): **{a['median']/p['median']:.0f}x faster** (target: at least 50x)")
print(f"- peak RSS: pctl client {rss_pctl/1024:.1f} MiB vs aws {rss_aws/1024:.1f} MiB ({rss_aws/max(rss_pctl,1):.0f}x less); daemon resident {daemon_rss/1024:.1f} MiB, shared by every client")
print(f"- tokens minted by the daemon during the whole run: {minted}")
PY
)"
say "results"
echo "$report"

record_section "$report" <<'EOF'
## EKS token: warm `pctl eks token` vs `aws eks get-token` vs `/bin/true`

Command: `tests/bench/eks-token.sh --record` (hyperfine, one run, same machine), @DAY@.

@REPORT@
EOF
