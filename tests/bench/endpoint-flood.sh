#!/usr/bin/env bash
# Benchmark (issue 15, item 3): can another local user stall the daemon's
# Unix-socket clients through the credential endpoint? The p95 of
# `pctl credential-process` quiet vs under a flood, for a build before the
# fix and the current one, side by side in one run.
#
# The flood, run by a throwaway local user (created with useradd, removed at
# the end; `nobody` where useradd is missing): ~80k TIME_WAIT rows in the
# kernel's TCP table (loopback connections to its own listeners, refreshed
# as they expire), and ~20 connections a second to the endpoint of
# `pctl serve --role admin` (each sends a request and reads the refusal).
# Peers as in the other benchmarks: moto (IAM auth on) as AWS, the `op`
# stand-in as 1Password (tests/sandbox/lib.sh).
#
#   tests/bench/endpoint-flood.sh [--record]
#   BEFORE=/dir/with/old/pctl+pctl-daemon PROFILE=debug N=200 TW_ROWS=80000 tests/bench/endpoint-flood.sh
#
# Without BEFORE only the current build is measured. Must run as root.
# With --record the table replaces the "Credential endpoint under a flood"
# section of BENCHMARKS.md.
set -euo pipefail
# shellcheck source=tests/bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
record="${1:-}"
profile="${PROFILE:-debug}"
n="${N:-200}"
tw_rows="${TW_ROWS:-80000}"
knock_rate="${KNOCK_RATE:-20}"
before="${BEFORE:-}"
flood_limit="${FLOOD_LIMIT:-60}"   # seconds at most per flood measurement

[[ "$(id -u)" == 0 ]] || { echo "run as root (it adds a throwaway user)" >&2; exit 1; }
PCTL="$repo/target/$profile/pctl"
say "building ($profile) and setting up"
[[ -x .venv/bin/python ]] || { echo "run tests/setup.sh first (the Python venv: moto, awscli)" >&2; exit 1; }
if [[ "$profile" == release ]]; then cargo build --quiet --release --workspace --bins; else cargo build --quiet --workspace --bins; fi
sandbox_up
py="$repo/.venv/bin/python"
sys_py=/usr/bin/python3

flood_user=pctl-bench-flood
made_user=""
if ! id "$flood_user" >/dev/null 2>&1; then
  if useradd --system --no-create-home --shell /usr/sbin/nologin "$flood_user" 2>/dev/null; then
    made_user=1
  else
    flood_user=nobody
  fi
fi
flood_pid=""
finish() {
  [[ -n "$flood_pid" ]] && kill "$flood_pid" 2>/dev/null || true
  pkill_serve || true
  [[ -n "$made_user" ]] && userdel "$flood_user" 2>/dev/null || true
  cleanup   # sandbox_up's: stops the daemon and moto, removes the sandbox
}
trap finish EXIT

port="$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
serve_pid=""
pkill_serve() { [[ -n "$serve_pid" ]] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null; serve_pid=""; }

# start_with BIN_DIR: a daemon of that build, and its endpoint on $port.
start_with() {
  pkill_serve || true
  "$PCTL" stop >/dev/null 2>&1 || true
  "$1/pctl" stop >/dev/null 2>&1 || true
  "$1/pctl" serve --role admin --port "$port" --shell bash >/dev/null 2>"$sandbox/serve.err" &
  serve_pid=$!
  for _ in $(seq 200); do
    "$py" -c "import socket,sys; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
    sleep 0.05
  done
  "$1/pctl" credential-process --role admin >/dev/null   # warm: unlocked, session cached
}

# measure BIN_DIR LABEL: N runs of credential-process (at most $flood_limit s), one JSON line.
measure() {
  "$py" - "$1/pctl" "$2" "$n" "$flood_limit" <<'PY'
import json, subprocess, sys, time
pctl, label, n, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
lat, errors, t0 = [], 0, time.monotonic()
for _ in range(n):
    if time.monotonic() - t0 > limit:
        break
    s = time.perf_counter()
    r = subprocess.run([pctl, "credential-process", "--role", "admin"], capture_output=True)
    lat.append((time.perf_counter() - s) * 1000)
    errors += r.returncode != 0
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(json.dumps({"label": label, "runs": len(lat), "errors": errors, "p50": q(0.50),
                  "p95": q(0.95), "max": lat[-1]}))
PY
}

FLOOD='
import os, socket, sys, threading, time
endpoint, rows, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
# TIME_WAIT rows: the client closes first, so its side waits 60 s. Spread over
# several destination addresses so the ephemeral ports do not run out.
dests = []
for i in range(2, 2 + max(1, rows // 20000 + 1)):
    l = socket.socket(); l.bind((f"127.0.0.{i}", 0)); l.listen(512); dests.append(l)
def churn(count):
    for k in range(count):
        l = dests[k % len(dests)]
        try:
            c = socket.create_connection(l.getsockname())
            s, _ = l.accept(); c.close(); s.close()
        except OSError:
            time.sleep(0.01)
t = time.monotonic(); churn(rows)
print(f"ready {rows} rows in {time.monotonic() - t:.1f}s", flush=True)
req = b"GET /credentials HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
def knock():
    while True:
        t = time.monotonic()
        try:
            s = socket.create_connection(("127.0.0.1", endpoint), 2); s.settimeout(10)
            s.sendall(req)
            while s.recv(4096): pass
            s.close()
        except OSError:
            pass
        time.sleep(max(0.0, 1 / rate - (time.monotonic() - t)))
threading.Thread(target=knock, daemon=True).start()
while True:  # keep the table full as rows expire (60 s)
    t = time.monotonic(); churn(int(rows / 60)); time.sleep(max(0.0, 1 - (time.monotonic() - t)))
'

builds=()
[[ -n "$before" ]] && builds+=("$before:before")
builds+=("$repo/target/$profile:after")

say "quiet: $n runs of pctl credential-process per build, endpoint open, no traffic to it"
results=()
for b in "${builds[@]}"; do
  start_with "${b%%:*}"
  results+=("$(measure "${b%%:*}" "${b##*:} quiet")")
  echo "${results[-1]}"
done

say "flood: $tw_rows TIME_WAIT rows + $knock_rate connections/s to the endpoint from user $flood_user"
setpriv --reuid="$flood_user" --regid="$(id -g "$flood_user")" --clear-groups \
  "$sys_py" -c "$FLOOD" "$port" "$tw_rows" "$knock_rate" >"$sandbox/flood.out" 2>&1 &
flood_pid=$!
for _ in $(seq 1200); do grep -qs ready "$sandbox/flood.out" && break; sleep 0.1; done
cat "$sandbox/flood.out"
rows_now="$(($(wc -l </proc/net/tcp) + $(wc -l </proc/net/tcp6)))"
echo "rows in the kernel's TCP tables now: $rows_now"
for b in "${builds[@]}"; do
  start_with "${b%%:*}"
  results+=("$(measure "${b%%:*}" "${b##*:} flood")")
  echo "${results[-1]}"
done
kill "$flood_pid" 2>/dev/null || true
flood_pid=""

report="$("$py" - "$rows_now" "$knock_rate" "$profile" "${results[@]}" <<'PY'
import json, os, platform, sys
rows, rate, profile = sys.argv[1], sys.argv[2], sys.argv[3]
res = {r["label"]: r for r in map(json.loads, sys.argv[4:])}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"Machine: {os.cpu_count()} cores, {cpu}, Linux {platform.release()}; {profile} builds\n")
print(f"Flood: {rows} rows in /proc/net/tcp{{,6}}, {rate} connections/s to the endpoint from another user.\n")
print("| build | quiet p50 | quiet p95 | flood p50 | flood p95 | flood runs (errors) | p95 flood / quiet |")
print("|---|---|---|---|---|---|---|")
for b in ("before", "after"):
    q, f = res.get(f"{b} quiet"), res.get(f"{b} flood")
    if not q or not f:
        continue
    print(f"| {b} | {q['p50']:.1f} ms | {q['p95']:.1f} ms | {f['p50']:.1f} ms | {f['p95']:.1f} ms "
          f"| {f['runs']} ({f['errors']}) | **{f['p95'] / q['p95']:.2f}x** |")
PY
)"
say "results"
echo "$report"

record_section "$report" <<'EOF'
## Credential endpoint under a flood: `pctl credential-process` p95, quiet vs flooded

Command: `BEFORE=<dir with the previous build's pctl and pctl-daemon> tests/bench/endpoint-flood.sh --record`
(one run, both builds side by side on the same machine), @DAY@. Target: p95 under the flood
within 2x of the quiet p95.

@REPORT@

Before: the endpoint read all of `/proc/net/tcp` for every accepted connection, on
the daemon's only async thread, before authenticating, so each stranger's connection
stalled every Unix-socket client for the length of a table read. After: the kernel is
asked for the owner of exactly that connection (one sock_diag query, constant time), at
accept, and a stranger's connection is closed there (`platform::tcp_peer_diag`,
`credserver::accept_loop`). A flood measurement stops after 60 s (`FLOOD_LIMIT`), so a
build that stalls shows fewer runs. Debug builds of both (the ratio is what counts; the
machine's two cores are shared with the flooder and with other jobs). The flooder asks
for 80k rows; the kernel recycles some loopback TIME_WAIT ports (`tcp_tw_reuse`), so the
table holds the count shown.
EOF
