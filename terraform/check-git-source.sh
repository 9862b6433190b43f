#!/usr/bin/env bash
# Before `terraform apply`: does the Git repository Flux bootstraps into and
# syncs from exist, with the branch and the cluster path? flux_bootstrap_git
# otherwise fails late (after the cluster is built), or bootstraps an empty
# path and syncs nothing.
#
# Usage: terraform/check-git-source.sh [URL [BRANCH [PATH]]]
# Defaults: $TF_VAR_git_url, $TF_VAR_git_branch (main), $TF_VAR_flux_path
# (kube/clusters/platform), i.e. the values the apply will use. The token in
# $TF_VAR_git_token (and $TF_VAR_git_username) reaches git through
# GIT_ASKPASS, never the command line or the URL.
set -euo pipefail

url="${1:-${TF_VAR_git_url:-}}"
branch="${2:-${TF_VAR_git_branch:-main}}"
path="${3:-${TF_VAR_flux_path:-kube/clusters/platform}}"

die() {
  echo "check-git-source: $*" >&2
  exit 1
}

[[ -n "$url" ]] || die "no repository: set TF_VAR_git_url (https://github.com/<owner>/<repo>.git) or pass it as the first argument"
command -v git >/dev/null || die "git not found on PATH"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Credentials for https URLs, answered from the environment.
cat >"$work/askpass" <<'ASKPASS'
#!/bin/sh
case "$1" in
  Username*) printf '%s\n' "${TF_VAR_git_username:-git}" ;;
  *) printf '%s\n' "${TF_VAR_git_token:-}" ;;
esac
ASKPASS
chmod 700 "$work/askpass"
export GIT_ASKPASS="$work/askpass" GIT_TERMINAL_PROMPT=0

last_line() {
  local text="$1" line last=""
  while IFS= read -r line; do
    [[ -n "$line" ]] && last="$line"
  done <<<"$text"
  printf '%s' "$last"
}

if ! refs="$(git ls-remote --heads -- "$url" 2>"$work/err")"; then
  die "cannot read $url ($(last_line "$(cat "$work/err")")): check the URL and that TF_VAR_git_token may read it"
fi

found=""
while IFS=$'\t' read -r _ ref; do
  [[ "$ref" == "refs/heads/$branch" ]] && found=1
done <<<"$refs"
[[ -n "$found" ]] ||
  die "branch '$branch' does not exist in $url: push it first, or set TF_VAR_git_branch to the branch Flux should sync"

git init -q "$work/repo"
if ! git -C "$work/repo" fetch -q --depth=1 --filter=blob:none -- "$url" "refs/heads/$branch" 2>"$work/err"; then
  die "cannot fetch branch '$branch' of $url ($(last_line "$(cat "$work/err")"))"
fi
tree="$(git -C "$work/repo" ls-tree -d FETCH_HEAD -- "${path%/}")"
[[ -n "$tree" ]] ||
  die "path '$path' does not exist on branch '$branch' of $url: push kube/ to that branch first (Flux syncs TF_VAR_flux_path)"

echo "check-git-source: $url has branch '$branch' with '$path'; Flux can bootstrap"
