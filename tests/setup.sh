#!/usr/bin/env bash
# Installs what the tests and the sandbox need, idempotently:
# the Python venv (moto, awscli, pytest, ...), checkov's own venv, on Debian
# and Ubuntu the real shells, pinentry, gnupg and the packaging tools
# (dpkg-dev, lintian, man-db, ruby), and the debug build of pctl. Needs only
# the Rust toolchain (with clippy), Python 3.11 with pip, terraform and
# kubectl on the machine.
#
#   tests/setup.sh              every step, one after the other
#   tests/setup.sh STEP...      only these steps: venv, checkov, apt, build
#                               (tests/run runs venv, checkov and apt in the
#                               background while it builds)
#   tests/setup.sh apt-missing  prints the Debian packages `apt` would install
#   tests/setup.sh new-venv DIR             a venv at DIR (for install-tools.sh)
#   tests/setup.sh pip-install DIR ARGS...  installs ARGS into the venv at DIR
#
# Python packages go in with uv (from PyPI, into the test venv on the first
# run): it resolves and installs the test requirements and checkov in a few
# CPU seconds where pip took about 60. Where uv cannot be had, pip does it,
# saying so.
#
# Each install is stamped (the venv by its requirements, checkov by its
# version) or done only when a program is missing: a second run installs
# nothing. PCTL_SKIP_PLATFORM_TOOLS=1 skips checkov, PCTL_SKIP_PACKAGING_TOOLS=1
# the packaging tools.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
python="${PYTHON:-python3}"

# uv_bin: prints the path of uv, installed into the test venv (with pip, the
# one pip install here) when it is not there yet; prints nothing when uv
# cannot be installed.
uv_bin() {
  local uv="$repo/.venv/bin/uv"
  if [[ ! -x "$uv" && -x "$repo/.venv/bin/pip" ]]; then
    "$repo/.venv/bin/pip" install --quiet uv >&2 ||
      echo "tests/setup.sh: could not install uv from PyPI; installing with pip instead (slower)" >&2
  fi
  [[ -x "$uv" ]] && echo "$uv"
  return 0
}

# pip_install VENV ARGS...: `pip install ARGS` into the venv at VENV, by uv
# when there is one. uv does not read pip's configuration: the index, extra
# index, find-links, certificate and timeout pip is given in the environment
# are handed to uv under its own names.
pip_install() {
  local venv="$1" uv
  shift
  uv="$(uv_bin)"
  if [[ -n "$uv" ]]; then
    local env=()
    [[ -z "${PIP_INDEX_URL:-}" ]] || env+=("UV_INDEX_URL=$PIP_INDEX_URL")
    [[ -z "${PIP_EXTRA_INDEX_URL:-}" ]] || env+=("UV_EXTRA_INDEX_URL=$PIP_EXTRA_INDEX_URL")
    [[ -z "${PIP_FIND_LINKS:-}" ]] || env+=("UV_FIND_LINKS=$PIP_FIND_LINKS")
    [[ -z "${PIP_CERT:-}" ]] || env+=("SSL_CERT_FILE=$PIP_CERT")
    [[ -z "${PIP_DEFAULT_TIMEOUT:-}" ]] || env+=("UV_HTTP_TIMEOUT=$PIP_DEFAULT_TIMEOUT")
    if env ${env[@]+"${env[@]}"} "$uv" pip install --quiet --python "$venv/bin/python" "$@"; then
      return 0
    fi
    echo "tests/setup.sh: uv could not install $* into $venv (above); trying pip" >&2
  fi
  if [[ ! -x "$venv/bin/pip" ]]; then
    "$venv/bin/python" -m ensurepip --upgrade >/dev/null
  fi
  "$venv/bin/pip" install --quiet "$@"
}

# new_venv DIR: a venv at DIR, by uv when there is one (no pip in it: a
# fraction of a second instead of seconds), else by Python's venv module.
new_venv() {
  local dir="$1" uv
  [[ ! -x "$dir/bin/python" ]] || return 0
  uv="$(uv_bin)"
  if [[ -n "$uv" ]] && "$uv" venv --quiet --python "$python" "$dir"; then
    return 0
  fi
  "$python" -m venv "$dir"
}

venv() {
  if [[ ! -x .venv/bin/python ]]; then
    # With pip: uv is installed into it with pip.
    "$python" -m venv .venv
  fi
  local stamp=.venv/.pctl-requirements requirements_sum want
  requirements_sum="$(cat tests/requirements.txt tests/platform/requirements.txt | sha256sum)"
  want="${requirements_sum:0:16}"
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    pip_install .venv -r tests/requirements.txt -r tests/platform/requirements.txt
    echo "$want" >"$stamp"
  else
    echo "test venv (installed)"
  fi
}

checkov() {
  [[ "${PCTL_SKIP_PLATFORM_TOOLS:-}" == 1 ]] || tests/platform/install-tools.sh
}

# The Debian packages that are missing, one per line.
apt_missing() {
  local prog
  # Real shells for tests/e2e/test_shells.py, a real pinentry for
  # tests/e2e/test_pinentry.py and test_breakglass.py (driven through tmux).
  for prog in zsh fish tmux; do
    command -v "$prog" >/dev/null 2>&1 || echo "$prog"
  done
  command -v pinentry-curses >/dev/null 2>&1 || echo pinentry-curses
  # Real gpg (with its agent, which signs) and git for
  # tests/platform/test_platform_signed_*.py.
  for prog in gpg gpg-agent gpgconf; do
    command -v "$prog" >/dev/null 2>&1 || { echo gnupg && break; }
  done
  command -v git >/dev/null 2>&1 || echo git
  # Debian's chromium (and xdg-utils; 124 MB fetched, 395 MiB installed, ~45 s)
  # for the slow tier's tests/e2e/test_chromium_profiles.py, unless a
  # Chromium-family browser is there: not for tests/run --quick
  # (PCTL_SKIP_PLATFORM_TOOLS=1), not on Ubuntu (its chromium is a snap).
  if [[ "${PCTL_SKIP_PLATFORM_TOOLS:-}" != 1 ]] && grep -qx 'ID=debian' /etc/os-release 2>/dev/null; then
    command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1 || echo chromium
  fi
  # tests/packaging builds the .deb (packaging/deb.sh) and checks it with
  # lintian and man, and the Homebrew formula with ruby (`ruby -c`): only on
  # a Debian-based machine.
  if command -v dpkg-deb >/dev/null 2>&1 && [[ "${PCTL_SKIP_PACKAGING_TOOLS:-}" != 1 ]]; then
    command -v dpkg-shlibdeps >/dev/null 2>&1 || echo dpkg-dev
    command -v lintian >/dev/null 2>&1 || echo lintian
    command -v man >/dev/null 2>&1 || echo man-db
    command -v ruby >/dev/null 2>&1 || echo ruby
  fi
}

apt() {
  local missing=()
  mapfile -t missing < <(apt_missing)
  ((${#missing[@]})) || return 0
  local as_root=()
  if [[ "$(id -u)" != 0 ]]; then
    as_root=(sudo)
    # In the background (tests/run) sudo cannot ask for a password.
    [[ -t 0 ]] || as_root=(sudo -n)
  fi
  echo "installing ${missing[*]} with apt-get"
  if ! { "${as_root[@]}" apt-get update -qq &&
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    echo "tests/setup.sh: could not install ${missing[*]} with apt-get; install them by hand (sudo apt-get install ${missing[*]}) and run again" >&2
    return 1
  fi
}

build() {
  tests/build.sh build --quiet --workspace --all-targets
}

(($#)) || set -- venv apt checkov build
case "${1:-}" in
  new-venv) new_venv "${2:?tests/setup.sh new-venv DIR}"; exit ;;
  pip-install) shift; pip_install "${1:?tests/setup.sh pip-install DIR ARGS...}" "${@:2}"; exit ;;
esac
for step in "$@"; do
  case "$step" in
    venv) venv ;;
    checkov) checkov ;;
    apt) apt ;;
    apt-missing) apt_missing ;;
    build) build ;;
    *) echo "tests/setup.sh: unknown step '$step' (steps: venv, checkov, apt, apt-missing, build; or new-venv DIR, pip-install DIR ARGS...)" >&2; exit 2 ;;
  esac
done
