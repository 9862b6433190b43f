#!/usr/bin/env bash
# Benchmark: the client as packaged (static-pie on Linux, packaging/build.sh)
# against the ordinary dynamically linked build, for a warm
# `pctl eks token` (what kubectl runs per command), both next to /bin/true
# in one hyperfine run on the same machine and the same daemon. Writes the
# results to BENCHMARKS.md (section "Static client") with --record.
#
#   tests/bench/static-client.sh [--record]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
record="${1:-}"

command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
PCTL="$repo/target/release/pctl"
# shellcheck source=tests/sandbox/lib.sh
source "$repo/tests/sandbox/lib.sh"
say "building (release: dynamic client, static client, daemon) and setting up"
PCTL_SKIP_PLATFORM_TOOLS=1 PCTL_SKIP_PACKAGING_TOOLS=1 tests/setup.sh
cargo build --quiet --release -p pctl --bin pctl
static="$(packaging/build.sh)/bin/pctl"
file_info="$(file -L "$static")"
if [[ "$file_info" != *static-pie* ]]; then
  echo "$static is not static-pie: $file_info" >&2
  exit 1
fi
sandbox_up

eval "$("$PCTL" shell)"
"$PCTL" eks token --cluster platform >/dev/null   # unlock, assume the role, mint: the warm path follows
"$static" eks token --cluster platform >/dev/null

out="$sandbox/hyperfine.json"
say "hyperfine"
hyperfine --warmup 10 --min-runs 200 --export-json "$out" -N \
  --command-name '/bin/true' '/bin/true' \
  --command-name 'pctl eks token (dynamic)' "$PCTL eks token --cluster platform" \
  --command-name 'pctl eks token (static-pie)' "$static eks token --cluster platform"

report="$("$repo/.venv/bin/python" - "$out" <<'PY'
import json, os, platform, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
t, d, s = (res[k] for k in ("/bin/true", "pctl eks token (dynamic)", "pctl eks token (static-pie)"))
ms = lambda r, k="median": r[k] * 1000
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"Machine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}\n")
print("| command | median | mean ± σ | min |")
print("|---|---|---|---|")
for name, r in (("/bin/true", t), ("pctl eks token, dynamic", d), ("pctl eks token, static-pie (packaged)", s)):
    print(f"| {name} | {ms(r):.3f} ms | {ms(r,'mean'):.3f} ± {r['stddev']*1000:.3f} ms | {ms(r,'min'):.3f} ms |")
print()
print(f"- dynamic / true (median): **{d['median']/t['median']:.2f}x**")
print(f"- static-pie / true (median): **{s['median']/t['median']:.2f}x** (target: at most 1.25x)")
print(f"- static-pie / dynamic (median): **{s['median']/d['median']:.2f}x**")
print(f"- by the fastest run (least disturbed by other load): dynamic / true {d['min']/t['min']:.2f}x, "
      f"static-pie / true {s['min']/t['min']:.2f}x")
print("- /bin/true is itself dynamically linked, so a static client can start faster than it")
PY
)"
say "results"
echo "$report"

if [[ "$record" == --record ]]; then
  "$repo/.venv/bin/python" - "$repo/BENCHMARKS.md" "$(date -u +%Y-%m-%d)" "$report" <<'PY'
import re, sys
path, day, report = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
section = (f"## Static client: the packaged static-pie `pctl` vs the dynamic build vs `/bin/true`\n\n"
           f"Command: `tests/bench/static-client.sh --record` (hyperfine, one run, same machine and daemon), {day}.\n"
           f"The .deb and the Linux release tarballs ship the static-pie client (packaging/build.sh).\n\n{report}\n")
pat = re.compile(r"## Static client:.*?(?=\n## |\Z)", re.S)
text = pat.sub(section.rstrip() + "\n", text) if pat.search(text) else text.rstrip() + "\n\n" + section
open(path, "w").write(text)
PY
  echo "recorded in BENCHMARKS.md"
fi
