#!/usr/bin/env bash
# Builds everything a package ships, for this machine's Rust host target,
# into target/package/<profile>/:
#
#   bin/pctl          the client; on Linux (gnu) a static-pie executable
#   bin/pctl-daemon   the daemon (dynamically linked)
#   man/*.1           pctl.1 and one page per subcommand (pctl-docgen)
#   man/pctl.toml.5   the config reference, man/pctl-daemon.8 the daemon
#   completions/      pctl.bash, _pctl (zsh), pctl.fish (`pctl completions`:
#                     the shipped scripts are what the client prints)
#
#   packaging/build.sh            release build (what deb.sh, tarball.sh ship)
#   packaging/build.sh --debug    debug build (the packaging tests; much faster)
#   packaging/build.sh --debug --client-only
#                                 only the client (tests/run builds it ahead)
#
# Why the client is static on Linux: kubectl runs `pctl eks token` for every
# command, and most of a dynamically linked client's run time is the dynamic
# loader (BENCHMARKS.md, "Static client"). Static glibc cannot load NSS
# modules, so a static client must never look up a user (getpwuid, getpwnam:
# `std::env::home_dir` falls back to them) nor resolve a host name
# (getaddrinfo): the client takes $HOME and $XDG_* from the environment and
# talks only to a Unix socket by path. tests/packaging checks the unstripped
# build for those symbols.
set -euo pipefail
umask 022
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

profile=release
client_only=0
for arg in "$@"; do
  case "$arg" in
    --debug) profile=debug ;;
    --client-only) client_only=1 ;;
    *) echo "usage: packaging/build.sh [--debug] [--client-only]" >&2; exit 2 ;;
  esac
done
profile_flag=()
[[ "$profile" == release ]] && profile_flag=(--release)

rustc_info="$(rustc -vV)"
triple="$(sed -n 's/^host: //p' <<<"$rustc_info")"
if [[ -z "$triple" ]]; then
  echo "packaging/build.sh: cannot read the host target from 'rustc -vV'; is the Rust toolchain installed?" >&2
  exit 1
fi

out="$repo/target/package/$profile"
if ((client_only == 0)); then
  rm -rf "$out"
  mkdir -p "$out/bin"
fi

if [[ "$triple" == *-linux-gnu ]]; then
  libc_a="$(${CC:-cc} -print-file-name=libc.a 2>/dev/null || true)"
  if [[ "$libc_a" != /* ]]; then
    echo "packaging/build.sh: the static client needs glibc's static library (libc.a), not found by '${CC:-cc}'; install libc6-dev (Debian, Ubuntu) or glibc-static (Fedora)" >&2
    exit 1
  fi
  # Packed relative relocations (DT_RELR): a static-pie start applies every
  # pointer relocation of the binary itself, at every run (about 5,000 for
  # the client); packed, that costs a few instructions each instead of a
  # dozen (BENCHMARKS.md, "Client warm path"). glibc's static start applies
  # them from 2.36 on; with an older libc.a they would be left unapplied, so
  # older systems link as before. `cargo rustc` puts the flag on the
  # executable's link alone (no dependency is rebuilt for it).
  link=()
  glibc="$(getconf GNU_LIBC_VERSION 2>/dev/null || true)"   # "glibc 2.36"
  if [[ "$glibc" =~ ^glibc\ ([0-9]+)\.([0-9]+) ]] &&
    (( BASH_REMATCH[1] > 2 || (BASH_REMATCH[1] == 2 && BASH_REMATCH[2] >= 36) )); then
    link=(-C link-arg=-Wl,-z,pack-relative-relocs)
  fi
  client="$repo/target/static/$triple/$profile/pctl"
  if [[ "$profile" == release ]]; then
    # A target of its own (target/static) so the static flags never mix with
    # the workspace's ordinary build; --target keeps them off build scripts.
    CARGO_TARGET_DIR="$repo/target/static" \
      RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static" \
      cargo rustc --locked --quiet --release -p pctl --bin pctl --target "$triple" \
      -- ${link[@]+"${link[@]}"}
  else
    # The debug client reuses the test build's compiled dependencies
    # (tests/build.sh, target/debug): `crt-static` only matters where the
    # executable is linked, and `cargo rustc` gives it to that link alone, so
    # only pctl-protocol and the client itself are compiled again (for the
    # client's own features). The executable is written to its own path
    # (--emit=link=...), never over target/debug/pctl, which running tests
    # use; Cargo then finds no output of its own for this unit, so every call
    # links the client afresh (under a second, incremental) and never leaves
    # a stale one. A name of this call's own, then a rename: a packaging test
    # reading the client never sees half of it.
    mkdir -p "${client%/*}"
    tmp="$client.$$"
    trap 'rm -f "$tmp"' EXIT
    tests/build.sh rustc --locked --quiet -p pctl --bin pctl \
      -- -C target-feature=+crt-static ${link[@]+"${link[@]}"} --emit=link="$tmp"
    mv -f "$tmp" "$client"
  fi
else
  # (the debug client comes from the workspace build below)
  [[ "$profile" == debug ]] || cargo build --locked --quiet --release -p pctl --bin pctl
  client="$repo/target/$profile/pctl"
fi
# --client-only: the client alone (tests/run links it ahead of the tests; the
# packaging tests' own call links it again, in under a second).
if ((client_only)); then
  echo "$client"
  exit 0
fi
if [[ "$profile" == debug ]]; then
  # Exactly the build tests/run and tests/setup.sh make (tests/build.sh: all
  # targets, clippy as the workspace crates' compiler): after them it has
  # nothing to do. With `-p`, or `--bins` alone, Cargo resolves other
  # features and compiles part of the dependency tree a second time.
  tests/build.sh build --locked --quiet --workspace --all-targets
else
  cargo build --locked --quiet --release -p pctl-broker --bin pctl-daemon
  # The generator is a build tool: its debug build is enough.
  cargo build --locked --quiet -p pctl-docgen
fi

install -m 0755 "$client" "$out/bin/pctl"
install -m 0755 "$repo/target/$profile/pctl-daemon" "$out/bin/pctl-daemon"
if [[ "$profile" == debug ]]; then
  # The release profile strips already; a debug build's symbols would only
  # make the test packages ten times larger.
  strip "$out/bin/pctl" "$out/bin/pctl-daemon"
fi
"$repo/target/debug/pctl-docgen" "$out" >/dev/null
mkdir -p "$out/completions"
"$out/bin/pctl" completions bash >"$out/completions/pctl.bash"
"$out/bin/pctl" completions zsh >"$out/completions/_pctl"
"$out/bin/pctl" completions fish >"$out/completions/pctl.fish"

echo "$out"
