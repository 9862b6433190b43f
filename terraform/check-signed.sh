#!/usr/bin/env bash
# Are the commits that change kube/ signed by a platform engineer? Flux applies
# a commit of kube/clusters/platform only when it carries a good OpenPGP
# signature by a key in the Secret that Terraform makes from kube/signing/*.asc
# (terraform/flux.tf); this check refuses such commits before they are merged.
#
# Usage: terraform/check-signed.sh BASE_REF HEAD_REF     (e.g. origin/main HEAD)
#
# Every commit in BASE_REF..HEAD_REF that changes something under kube/ (a
# merge: against its first parent) must carry an OpenPGP signature, good, by a
# key that is neither expired nor revoked now (as Flux judges it when the
# commit is the head it applies) and that kube/signing lists both at BASE_REF
# (a change cannot bring the key that approves it) and at HEAD_REF (a key the
# change removes no longer counts). When BASE_REF lists no key yet (the change
# that adds the first ones) HEAD_REF's list is used. The key files at HEAD_REF
# must each hold a public key gpg can read, and no private key.
#
# Prints one line per refused commit or key file and exits 1 if there is any,
# 0 when everything passes, 2 when it cannot check (bad arguments, no gpg).
# GnuPG runs in a throw-away home with no agent and no key server: the
# user's keyring, agent and configuration are never read.
set -euo pipefail

prog="check-signed"
keydir="kube/signing"

die() {
  echo "$prog: $*" >&2
  exit 2
}

[[ $# -eq 2 ]] || die "usage: terraform/check-signed.sh BASE_REF HEAD_REF (e.g. origin/main HEAD)"
command -v git >/dev/null || die "git not found on PATH"
gpg_bin="$(command -v gpg)" || die "gpg not found on PATH: install GnuPG (Debian/Ubuntu: apt-get install gnupg; macOS: brew install gnupg)"
git rev-parse --git-dir >/dev/null 2>&1 || die "not in a git repository: run it from the repository's work tree"
base="$(git rev-parse --verify --quiet "$1^{commit}")" ||
  die "BASE_REF '$1' is not a commit in this repository (fetch it first, e.g. git fetch origin main)"
head="$(git rev-parse --verify --quiet "$2^{commit}")" ||
  die "HEAD_REF '$2' is not a commit in this repository"

work="$(mktemp -d)"
cleanup() {
  gpgconf --homedir "$work/gnupg" --kill all >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -m 700 "$work/gnupg"
export GNUPGHOME="$work/gnupg"
unset GPG_AGENT_INFO
# Verification only: no agent, no key server. (Trust is decided here, by
# fingerprint, not by gpg's web of trust.)
cat >"$GNUPGHOME/gpg.conf" <<'CONF'
no-autostart
no-auto-key-retrieve
CONF

gpg() { "$gpg_bin" --batch --no-tty --quiet "$@"; }

# One line of outside text (a commit subject), without control characters.
one_line() {
  local text="${1//[[:cntrl:]]/ }"
  ((${#text} > 60)) && text="${text:0:57}..."
  printf '%s' "$text"
}

# The key files (kube/signing/*.asc) at a commit, NUL-separated.
key_files() {
  local path
  while IFS= read -r -d '' path; do
    [[ "$path" == *.asc ]] && printf '%s\0' "$path"
  done < <(git ls-tree -z --name-only "$1" -- "$keydir/")
}

# Primary-key fingerprints in an armored file at a commit, one per line
# (gpg --with-colons: the first fpr record after each pub record).
# A file gpg cannot read gives none.
fingerprints() {
  { git cat-file blob "$1:$2" | gpg --with-colons --import-options show-only --import 2>/dev/null || true; } |
    awk -F: '$1 == "pub" { want = 1 } $1 == "fpr" && want { print $10; want = 0 }'
}

# Sets of fingerprints as newline-framed strings (bash 3.2 has no
# associative arrays): "$set" contains "\n<fpr>\n".
in_set() {
  case "$2" in *$'\n'"$1"$'\n'*) return 0 ;; *) return 1 ;; esac
}

refused=0
refuse() {
  echo "$prog: $*" >&2
  refused=$((refused + 1))
}

# The key files HEAD_REF would put into the Secret: each must be a readable
# public key (Flux reads every value of the Secret as a key ring and fails all
# verifications when one cannot be read) and a valid Secret key name.
head_fprs=$'\n'
armor_begin="-----BEGIN PGP PUBLIC KEY BLOCK-----"
while IFS= read -r -d '' path; do
  name="${path#"$keydir/"}"
  shown="$(one_line "$path")"
  blob="$(git cat-file blob "$head:$path")"
  rest="${blob#*"$armor_begin"}"
  if [[ ! "$name" =~ ^[-._A-Za-z0-9]+$ ]]; then
    refuse "$shown at HEAD_REF: the name is not a valid Secret key; use letters, digits, '-', '_' and '.'"
  elif [[ "$blob" == *"PRIVATE KEY BLOCK"* ]]; then
    refuse "$shown at HEAD_REF: holds a PRIVATE key; remove it from the history and revoke that key"
  elif [[ "$rest" == *"$armor_begin"* ]]; then
    # Flux decodes the first armored block only; export several keys as one
    # block (gpg --armor --export FPR1 FPR2) or, better, one file per signer.
    refuse "$shown at HEAD_REF: holds more than one armored block, and Flux reads only the first; one key per file"
  else
    fprs="$(fingerprints "$head" "$path")"
    [[ -n "$fprs" ]] || refuse "$shown at HEAD_REF: no OpenPGP public key gpg can read (export with gpg --armor --export <fingerprint>)"
    head_fprs+="$fprs"$'\n'
  fi
done < <(key_files "$head")

# Trusted: listed at BASE_REF and still at HEAD_REF. The keyring holds the
# keys of both lists (and so any revocation either carries), so that a
# signature by a key only one of them lists is named, not just unknown.
list_ref="$base"
if [[ -z "$(key_files "$base" | tr -d '\0')" ]]; then
  echo "$prog: BASE_REF lists no key in $keydir; using HEAD_REF's list (the change that adds the first signers)" >&2
  list_ref="$head"
fi
trusted=$'\n'
while IFS= read -r -d '' path; do
  for fpr in $(fingerprints "$list_ref" "$path"); do
    if in_set "$fpr" "$head_fprs"; then trusted+="$fpr"$'\n'; fi
  done
done < <(key_files "$list_ref")
for ref in "$base" "$head"; do
  while IFS= read -r -d '' path; do
    git cat-file blob "$ref:$path" | gpg --import >/dev/null 2>&1 || true
  done < <(key_files "$ref")
done

# Does the commit change anything under kube/ (a merge: against its first parent)?
changes_kube() {
  local changed
  if git rev-parse --verify --quiet "$1^1" >/dev/null; then
    changed="$(git diff-tree --no-commit-id --name-only -r "$1^1" "$1" -- kube/)"
  else
    changed="$(git diff-tree --root --no-commit-id --name-only -r "$1" -- kube/)"
  fi
  [[ -n "$changed" ]]
}

# Why a commit is refused, or nothing when it passes.
reason() {
  local commit="$1" header status word primary="" keyid=""
  header="$(git cat-file commit "$commit")"
  header="${header%%$'\n\n'*}"
  case "$header" in
    *$'\ngpgsig '*-----BEGIN\ PGP\ SIGNATURE-----* | *$'\ngpgsig-sha256 '*-----BEGIN\ PGP\ SIGNATURE-----*) ;;
    *$'\ngpgsig '* | *$'\ngpgsig-sha256 '*)
      echo "signed, but not with OpenPGP (SSH or X.509); Flux verifies OpenPGP signatures only"
      return
      ;;
    *)
      echo "not signed"
      return
      ;;
  esac
  # git verify-commit --raw: gpg's status lines on stderr. gpg.program is
  # pinned so that no user configuration chooses another verifier.
  status="$(git -c gpg.program="$gpg_bin" -c gpg.openpgp.program="$gpg_bin" verify-commit --raw "$commit" 2>&1 >/dev/null)" || true
  while read -r _ word rest; do
    case "$word" in
      REVKEYSIG) echo "signed by key ${rest%% *}, which is revoked" && return ;;
      EXPKEYSIG) echo "signed by key ${rest%% *}, which has expired" && return ;;
      EXPSIG) echo "the signature has expired" && return ;;
      BADSIG) echo "bad signature by key ${rest%% *} (the commit was changed after signing)" && return ;;
      ERRSIG) keyid="${rest%% *}" ;;
      VALIDSIG) read -r -a f <<<"$rest" && primary="${f[9]:-${f[0]}}" ;;
    esac
  done < <(grep '^\[GNUPG:\] ' <<<"$status" || true)
  if [[ -z "$primary" ]]; then
    if [[ -n "$keyid" ]]; then
      echo "signed by key $keyid, which $keydir does not list"
    else
      echo "the signature cannot be verified"
    fi
  elif ! in_set "$primary" "$trusted"; then
    if ! in_set "$primary" "$head_fprs"; then
      echo "signed by key $primary, which HEAD_REF removes from $keydir"
    else
      echo "signed by key $primary, which $keydir lists only from HEAD_REF on (a new signer's key is added by a commit an existing signer signs)"
    fi
  fi
}

checked=0
while IFS= read -r commit; do
  changes_kube "$commit" || continue
  checked=$((checked + 1))
  why="$(reason "$commit")"
  if [[ -n "$why" ]]; then
    refuse "$(git rev-parse --short=12 "$commit") \"$(one_line "$(git log -1 --format=%s "$commit")")\": $why"
  fi
done < <(git rev-list --reverse "$base..$head")

range="$1..$2"
if ((refused > 0)); then
  echo "$prog: refused ($refused problem(s) above); $checked commit(s) in $range change kube/. Sign them with a key listed in $keydir (git rebase --exec 'git commit --amend --no-edit -S' $1), see kube/README.md \"Signed GitOps\"" >&2
  exit 1
fi
echo "$prog: $checked commit(s) in $range change kube/, all signed by keys listed in $keydir"
