#!/usr/bin/env bash
# Builds the Debian package target/debian/pctl_<version>_<arch>.deb with
# Debian's own tools (dpkg-shlibdeps for the dependencies, dpkg-deb for the
# archive; both in dpkg-dev):
#
#   /usr/bin/pctl, /usr/bin/pctl-daemon
#   /usr/share/man/man1/pctl.1.gz, pctl-<subcommand>.1.gz, ...
#   /usr/share/man/man5/pctl.toml.5.gz, /usr/share/man/man8/pctl-daemon.8.gz
#   /usr/share/pctl/prompt.{bash,zsh,fish}, starship.toml, pctl.{bash,zsh,fish}
#                     (shell/: prompt segments, starship module, shell set-up)
#   /usr/share/bash-completion/completions/pctl
#   /usr/share/zsh/vendor-completions/_pctl
#   /usr/share/fish/vendor_completions.d/pctl.fish
#   /usr/lib/systemd/user/pctl.service
#   /usr/share/doc/pctl/{copyright,changelog.gz,README.md,interface.md}
#   /usr/share/lintian/overrides/pctl (why the static client is not a library)
#
#   packaging/deb.sh            from a release build (what we publish)
#   packaging/deb.sh --debug    from the debug build (tests/packaging)
#
# Prints the path of the .deb. Check it with `lintian target/debian/*.deb`.
set -euo pipefail
umask 022
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

for tool in dpkg-deb dpkg-shlibdeps dpkg; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "packaging/deb.sh: '$tool' not found; install Debian's dpkg-dev (apt-get install dpkg-dev)" >&2
    exit 1
  fi
done

built="$(packaging/build.sh "$@")"

version_line="$("$built/bin/pctl" --version)"
version="${version_line#pctl }"
if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([.+~-][0-9A-Za-z.+~-]*)?$ ]]; then
  echo "packaging/deb.sh: unexpected version '$version_line' from the built pctl" >&2
  exit 1
fi
arch="$(dpkg --print-architecture)"
# Reproducible: every date in the package is the last commit's.
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
  SOURCE_DATE_EPOCH="$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)"
fi
export SOURCE_DATE_EPOCH
maintainer="${PCTL_DEB_MAINTAINER:-pctl maintainers <pctl-maintainers@users.noreply.github.com>}"

name="pctl_${version}_${arch}"
root="$repo/target/debian/$name"
rm -rf "$root" "$repo/target/debian/$name.deb"
install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/man/man1" "$root/usr/share/man/man5" \
  "$root/usr/share/man/man8" "$root/usr/share/pctl" \
  "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d" "$root/usr/lib/systemd/user" "$root/usr/share/doc/pctl" \
  "$root/usr/share/lintian/overrides"

# Binaries, stripped as dh_strip would (a release build already is).
for bin in pctl pctl-daemon; do
  install -m 0755 "$built/bin/$bin" "$root/usr/bin/$bin"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/$bin"
done

for page in "$built"/man/*.[158]; do
  gzip -9n <"$page" >"$root/usr/share/man/man${page##*.}/${page##*/}.gz"
done
chmod 0644 "$root"/usr/share/man/man[158]/*.gz
# What the README and the man pages point to: prompt segments, the starship
# module, the shell set-up scripts, the interface reference.
install -m 0644 shell/prompt.bash shell/prompt.zsh shell/prompt.fish shell/starship.toml \
  shell/pctl.bash shell/pctl.zsh shell/pctl.fish "$root/usr/share/pctl/"
install -m 0644 "$built/completions/pctl.bash" "$root/usr/share/bash-completion/completions/pctl"
install -m 0644 "$built/completions/_pctl" "$root/usr/share/zsh/vendor-completions/_pctl"
install -m 0644 "$built/completions/pctl.fish" "$root/usr/share/fish/vendor_completions.d/pctl.fish"

# The systemd user unit, pointing at the packaged client.
unit="$root/usr/lib/systemd/user/pctl.service"
# (the leading comment, about installing by hand, does not apply here)
sed -e '1,/^\[Unit\]/{/^#/d;}' -e 's|^ExecStart=.*|ExecStart=/usr/bin/pctl daemon|' shell/systemd/pctl.service >"$unit"
if ! grep -qx 'ExecStart=/usr/bin/pctl daemon' "$unit"; then
  echo "packaging/deb.sh: shell/systemd/pctl.service has no ExecStart= line to point at /usr/bin/pctl" >&2
  exit 1
fi
chmod 0644 "$unit"

doc="$root/usr/share/doc/pctl"
sed -e "s/@YEAR@/$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)/" packaging/debian/copyright >"$doc/copyright"
install -m 0644 README.md "$doc/README.md"
install -m 0644 docs/interface.md "$doc/interface.md"
{
  printf 'pctl (%s) unstable; urgency=medium\n\n' "$version"
  printf '  * Release %s; see the project history for the changes.\n\n' "$version"
  printf ' -- %s  %s\n' "$maintainer" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/copyright" "$doc/changelog.gz"
install -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/pctl"

# Dependencies of the dynamically linked daemon, as Debian computes them.
shlibs_dir="$(mktemp -d)"
trap 'rm -rf "$shlibs_dir"' EXIT
mkdir "$shlibs_dir/debian"
printf 'Source: pctl\n\nPackage: pctl\nArchitecture: any\n' >"$shlibs_dir/debian/control"
shlibs="$(cd "$shlibs_dir" && dpkg-shlibdeps -O "-e$root/usr/bin/pctl-daemon" 2>/dev/null)"
depends="${shlibs#shlibs:Depends=}"
if [[ -z "$depends" || "$depends" == "$shlibs" ]]; then
  echo "packaging/deb.sh: dpkg-shlibdeps gave no dependencies for pctl-daemon ('$shlibs')" >&2
  exit 1
fi

installed_kib="$(du -sk --exclude=DEBIAN "$root")"
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$depends/" \
  -e "s/@INSTALLED_SIZE@/${installed_kib%%[[:space:]]*}/" -e "s/@MAINTAINER@/$maintainer/" \
  packaging/debian/control >"$root/DEBIAN/control"
if [[ -n "${PCTL_HOMEPAGE:-}" ]]; then   # e.g. the GitHub repository, set by the release workflow
  printf 'Homepage: %s\n' "$PCTL_HOMEPAGE" >>"$root/DEBIAN/control"
fi
(cd "$root" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
find "$root" -depth -newermt "@$SOURCE_DATE_EPOCH" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +

# xz like Debian's own packages. The debug package (tests/packaging) uses xz's
# fastest preset: the same format and contents, but xz -6 over the debug
# binaries took most of the packaging tests' build time.
xz_level=6
[[ "${1:-}" == --debug ]] && xz_level=0
dpkg-deb --root-owner-group -Zxz "-z$xz_level" --build "$root" "$repo/target/debian/$name.deb" >/dev/null
echo "$repo/target/debian/$name.deb"
