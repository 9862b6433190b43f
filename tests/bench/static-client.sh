#!/usr/bin/env bash
# Benchmark: the client as packaged (static-pie on Linux, packaging/build.sh)
# against the ordinary dynamically linked release build and the dev (debug)
# build, for the two warm hot paths: `pctl eks token` (what kubectl runs per
# command) and `pctl credential-process` (what the AWS CLI and SDKs run for
# keys), all next to /bin/true in one hyperfine run on the same machine and
# the same (release) daemon. With BEFORE=<dir holding a previous build's
# static `pctl`>, that client runs beside them too. Writes the results to
# BENCHMARKS.md (section "Static client") with --record. With NO_BUILD=1 it
# builds nothing and takes the binaries as they are (tests/bench/quiet-window.sh:
# built beforehand, measured later on a quiet machine).
#
#   [BEFORE=dir] [NO_BUILD=1] tests/bench/static-client.sh [--record]
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
record="${1:-}"

needs hyperfine
PCTL="$repo/target/release/pctl"
if [[ "${NO_BUILD:-}" == 1 ]]; then
  static="$repo/target/package/release/bin/pctl"
  for b in "$PCTL" "$repo/target/release/pctl-daemon" "$static" "$repo/target/debug/pctl"; do
    [[ -x "$b" ]] || { echo "NO_BUILD=1 but $b is missing: build it first" >&2; exit 1; }
  done
else
  say "building (release: dynamic client, static client, daemon) and setting up"
  PCTL_SKIP_PLATFORM_TOOLS=1 PCTL_SKIP_PACKAGING_TOOLS=1 tests/setup.sh
  cargo build --quiet --release -p pctl --bin pctl -p pctl-broker --bin pctl-daemon
  static="$(packaging/build.sh)/bin/pctl"
fi
dev="$repo/target/debug/pctl"   # built by tests/setup.sh
before="${BEFORE:+$BEFORE/pctl}"
file_info="$(file -L "$static")"
if [[ "$file_info" != *static-pie* ]]; then
  echo "$static is not static-pie: $file_info" >&2
  exit 1
fi
sandbox_up

eval "$("$PCTL" shell)"
"$PCTL" eks token --cluster platform >/dev/null   # unlock, assume the role, mint: the warm path follows
clients=(static "$static" dynamic "$PCTL" dev "$dev")
[[ -n "$before" ]] && clients+=(before "$before")
cmds=(/bin/true)
for ((i = 0; i < ${#clients[@]}; i += 2)); do
  exe="${clients[i + 1]}"
  "$exe" eks token --cluster platform >/dev/null
  "$exe" credential-process --role admin >/dev/null
  cmds+=(--command-name "eks token (${clients[i]})" "$exe eks token --cluster platform"
    --command-name "credential-process (${clients[i]})" "$exe credential-process --role admin")
done

out="$sandbox/hyperfine.json"
say "hyperfine"
hyperfine --warmup 10 --min-runs 200 --export-json "$out" -N --command-name '/bin/true' "${cmds[@]}"

report="$("$repo/.venv/bin/python" - "$out" <<'PY'
import json, os, platform, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
t = res["/bin/true"]
ms = lambda r, k="median": r[k] * 1000
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"Machine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}\n")
label = {"static": "static-pie (packaged)", "dynamic": "dynamic (release)", "dev": "dev build (debug)",
         "before": "static-pie, previous build"}
print("| command | client | median | mean ± σ | min | median / true | min / true |")
print("|---|---|---|---|---|---|---|")
print(f"| /bin/true | | {ms(t):.3f} ms | {ms(t,'mean'):.3f} ± {t['stddev']*1000:.3f} ms | {ms(t,'min'):.3f} ms | 1.00x | 1.00x |")
for cmd in ("eks token", "credential-process"):
    for c in ("static", "before", "dynamic", "dev"):
        r = res.get(f"{cmd} ({c})")
        if r is None:
            continue
        print(f"| pctl {cmd} | {label[c]} | {ms(r):.3f} ms | {ms(r,'mean'):.3f} ± {r['stddev']*1000:.3f} ms "
              f"| {ms(r,'min'):.3f} ms | **{r['median']/t['median']:.2f}x** | {r['min']/t['min']:.2f}x |")
print()
print("- target: the packaged (static-pie) client's warm eks token and credential-process at most 1.25x /bin/true (median)")
print("- /bin/true is itself dynamically linked, so a static client can start faster than it")
PY
)"
say "results"
echo "$report"

record_section "$report" <<'EOF'
## Static client: the packaged static-pie `pctl` vs the dynamic build vs `/bin/true`

Command: `BEFORE=<dir with a previous static pctl> tests/bench/static-client.sh --record` (hyperfine, one run, same machine and release daemon), @DAY@.
The .deb and the Linux release tarballs ship the static-pie client (packaging/build.sh).

@REPORT@
EOF
