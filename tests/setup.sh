#!/usr/bin/env bash
# Installs what the tests and the sandbox need, idempotently:
# the Python venv (moto, awscli, pytest, ...), checkov's own venv, on Debian
# and Ubuntu the packaging tools (dpkg-dev, lintian, man-db, ruby), and the
# debug build of pctl. Needs only the Rust toolchain, Python 3.11 with pip,
# terraform and kubectl on the machine.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
python="${PYTHON:-python3}"

if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
stamp=.venv/.pctl-requirements
requirements_sum="$(cat tests/requirements.txt tests/platform/requirements.txt | sha256sum)"
want="${requirements_sum:0:16}"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -r tests/requirements.txt -r tests/platform/requirements.txt
  echo "$want" > "$stamp"
fi
# Real shells for tests/e2e/test_shells.py and a pinentry (Debian packages), only when missing.
missing=()
for prog in zsh fish tmux; do
  command -v "$prog" >/dev/null 2>&1 || missing+=("$prog")
done
# A real pinentry for tests/e2e/test_pinentry.py and test_breakglass.py (driven through tmux).
command -v pinentry-curses >/dev/null 2>&1 || missing+=(pinentry-curses)
if (( ${#missing[@]} )); then
  sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
fi
# Real gpg (with its agent, which signs) and git for
# tests/platform/test_platform_signed_*.py (Debian packages), only when missing.
missing=()
for prog in gpg gpg-agent gpgconf; do
  command -v "$prog" >/dev/null 2>&1 || { missing+=(gnupg) && break; }
done
command -v git >/dev/null 2>&1 || missing+=(git)
# Debian's chromium (and xdg-utils; 124 MB fetched, 395 MiB installed, ~45 s) for the slow tier's
# tests/e2e/test_chromium_profiles.py, unless a Chromium-family browser is there: not for
# tests/run --quick (PCTL_SKIP_PLATFORM_TOOLS=1), not on Ubuntu (its chromium is a snap).
if [[ "${PCTL_SKIP_PLATFORM_TOOLS:-}" != 1 ]] && grep -qx 'ID=debian' /etc/os-release 2>/dev/null; then
  command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1 || missing+=(chromium)
fi
if (( ${#missing[@]} )); then
  sudo=()
  [[ "$(id -u)" == 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [[ "${PCTL_SKIP_PLATFORM_TOOLS:-}" != 1 ]]; then
  tests/platform/install-tools.sh
fi
# tests/packaging builds the .deb (packaging/deb.sh) and checks it with
# lintian and man, and the Homebrew formula with ruby: on a Debian-based
# machine, install what is missing.
if command -v dpkg-deb >/dev/null 2>&1 && [[ "${PCTL_SKIP_PACKAGING_TOOLS:-}" != 1 ]]; then
  missing=()
  command -v dpkg-shlibdeps >/dev/null 2>&1 || missing+=(dpkg-dev)
  command -v lintian >/dev/null 2>&1 || missing+=(lintian)
  command -v man >/dev/null 2>&1 || missing+=(man-db)
  command -v ruby >/dev/null 2>&1 || missing+=(ruby)   # `ruby -c` of the Homebrew formula
  if ((${#missing[@]})); then
    as_root=()
    [[ "$(id -u)" -eq 0 ]] || as_root=(sudo -n)
    echo "installing ${missing[*]} with apt-get (for tests/packaging)"
    if ! { "${as_root[@]}" apt-get update -qq &&
      "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
      echo "tests/setup.sh: could not install ${missing[*]} with apt-get; install them by hand (or set PCTL_SKIP_PACKAGING_TOOLS=1 and skip tests/packaging)" >&2
      exit 1
    fi
  fi
fi
cargo build --quiet --workspace --bins
