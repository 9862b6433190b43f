#!/usr/bin/env bash
# The one debug build of the workspace, linted while it compiles.
#
#   tests/build.sh                  cargo build --workspace --all-targets, with
#                                   clippy (-D warnings) on the workspace crates
#   tests/build.sh ARGS...          cargo ARGS in the same environment, e.g.
#                                   `tests/build.sh nextest run --workspace`
#
# Clippy is rustc with extra lints (`clippy-driver`). `cargo clippy` runs it
# through `cargo check`, which compiles the whole dependency tree a second time
# in check mode. Here it is Cargo's workspace wrapper instead
# (RUSTC_WORKSPACE_WRAPPER: only the workspace's own crates go through it, the
# dependencies are compiled by plain rustc), with its arguments in CLIPPY_ARGS
# (`-D warnings`, separated the way `cargo clippy` passes them), so one `cargo
# build` both lints and compiles: fmt, clippy, the Rust tests, pytest
# (target/debug/pctl, pctl-daemon) and the packaging tests share one compile.
# `--all-targets` lints what `cargo clippy --all-targets` lints (libraries,
# binaries, tests, benches, examples) and gives the binaries the same feature
# set as the tests (a `--bins` build leaves proptest's features out and
# compiles nix, getrandom and everything above them a second time).
#
# Everything that reuses this build must run with the same two variables (the
# wrapper and CLIPPY_ARGS are part of Cargo's fingerprint of the workspace
# crates): run it through this script. The difference to plain rustc: clippy
# compiles our own crates at MIR opt level 0 and without rustc's debug-build
# null and alignment checks on raw-pointer dereferences (it lints unoptimised
# MIR); the dependencies, and every release build, are plain rustc.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# clippy-driver from the toolchain that runs `cargo` here (rust-toolchain
# files and `rustup override` included), else the one beside cargo or on PATH.
driver=""
if command -v rustup >/dev/null 2>&1; then
  driver="$(rustup which clippy-driver 2>/dev/null || true)"
fi
if [[ -z "$driver" ]]; then
  cargo_bin="$(command -v cargo || true)"
  if [[ -n "$cargo_bin" && -x "$(dirname "$cargo_bin")/clippy-driver" ]]; then
    driver="$(dirname "$cargo_bin")/clippy-driver"
  else
    driver="$(command -v clippy-driver || true)"
  fi
fi
if [[ -z "$driver" ]] || ! "$driver" --version >/dev/null 2>&1; then
  echo "tests/build.sh: clippy is not installed (no clippy-driver for this toolchain); install it with 'rustup component add clippy'" >&2
  exit 1
fi
export RUSTC_WORKSPACE_WRAPPER="$driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"

if (($# == 0)); then
  set -- build --workspace --all-targets
fi
exec cargo "$@"
