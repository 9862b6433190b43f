#!/usr/bin/env bash
# Fills in packaging/homebrew/pctl.rb for one release and prints the formula:
#
#   packaging/homebrew/render.sh VERSION URL_BASE HOMEPAGE SHA256SUMS
#
# URL_BASE is where the release tarballs are downloaded from (e.g. the
# GitHub release's download URL), SHA256SUMS the release's checksum file
# (`sha256sum` format) naming pctl-VERSION-<target>.tar.gz for the four
# targets of the formula.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ $# -ne 4 ]]; then
  echo "usage: packaging/homebrew/render.sh VERSION URL_BASE HOMEPAGE SHA256SUMS" >&2
  exit 2
fi
version="$1" url_base="${2%/}" homepage="$3" sums="$4"

formula="$(<"$here/pctl.rb")"
formula="${formula//@VERSION@/$version}"
formula="${formula//@URL_BASE@/$url_base}"
formula="${formula//@HOMEPAGE@/$homepage}"
for triple in aarch64-apple-darwin x86_64-apple-darwin aarch64-unknown-linux-gnu x86_64-unknown-linux-gnu; do
  want="pctl-$version-$triple.tar.gz"
  sum=""
  while read -r hash file; do
    if [[ "${file#\*}" == "$want" ]]; then sum="$hash"; fi
  done <"$sums"
  if [[ ! "$sum" =~ ^[0-9a-f]{64}$ ]]; then
    echo "packaging/homebrew/render.sh: no SHA-256 for $want in $sums" >&2
    exit 1
  fi
  formula="${formula//@SHA256_$triple@/$sum}"
done
if [[ "$formula" == *@[A-Z]*@* ]]; then
  echo "packaging/homebrew/render.sh: placeholders left in the formula" >&2
  exit 1
fi
printf '%s\n' "$formula"
