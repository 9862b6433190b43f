#!/usr/bin/env bash
# Builds the release tarball target/dist/pctl-<version>-<target>.tar.gz for
# this machine's Rust host target (what the release workflow publishes for
# Linux x86_64/aarch64 and macOS arm64/x86_64, and what the Homebrew formula
# installs from):
#
#   pctl-<version>-<target>/
#     bin/pctl, bin/pctl-daemon
#     share/man/man1/pctl.1, pctl-<subcommand>.1, ...
#     share/man/man5/pctl.toml.5, share/man/man8/pctl-daemon.8
#     share/bash-completion/completions/pctl
#     share/zsh/site-functions/_pctl
#     share/fish/vendor_completions.d/pctl.fish
#     share/pctl/pctl.service, com.pctl.daemon.plist   (systemd / launchd)
#     share/pctl/prompt.{bash,zsh,fish}, starship.toml, pctl.{bash,zsh,fish}
#     share/doc/pctl/interface.md                     (the interface reference)
#     LICENSE, README.md
#
#   packaging/tarball.sh [--debug]
#
# Prints the path of the tarball. The archive is reproducible (sorted,
# owner 0, every date the last commit's); written with Python's tarfile so
# GNU tar (Linux) and bsdtar (macOS) make the same thing.
set -euo pipefail
umask 022
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

built="$(packaging/build.sh "$@")"
version_line="$("$built/bin/pctl" --version)"
version="${version_line#pctl }"
rustc_info="$(rustc -vV)"
triple="$(sed -n 's/^host: //p' <<<"$rustc_info")"
if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
  SOURCE_DATE_EPOCH="$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)"
fi

name="pctl-$version-$triple"
stage="$repo/target/dist/$name"
rm -rf "$stage" "$stage.tar.gz"
mkdir -p "$stage/bin" "$stage/share/man/man1" "$stage/share/man/man5" "$stage/share/man/man8" \
  "$stage/share/bash-completion/completions" "$stage/share/zsh/site-functions" \
  "$stage/share/fish/vendor_completions.d" "$stage/share/pctl" "$stage/share/doc/pctl"
install -m 0755 "$built/bin/pctl" "$built/bin/pctl-daemon" "$stage/bin/"
install -m 0644 "$built"/man/*.1 "$stage/share/man/man1/"
install -m 0644 "$built"/man/*.5 "$stage/share/man/man5/"
install -m 0644 "$built"/man/*.8 "$stage/share/man/man8/"
install -m 0644 "$built/completions/pctl.bash" "$stage/share/bash-completion/completions/pctl"
install -m 0644 "$built/completions/_pctl" "$stage/share/zsh/site-functions/_pctl"
install -m 0644 "$built/completions/pctl.fish" "$stage/share/fish/vendor_completions.d/pctl.fish"
install -m 0644 shell/systemd/pctl.service shell/launchd/com.pctl.daemon.plist "$stage/share/pctl/"
install -m 0644 shell/prompt.bash shell/prompt.zsh shell/prompt.fish shell/starship.toml \
  shell/pctl.bash shell/pctl.zsh shell/pctl.fish "$stage/share/pctl/"
install -m 0644 docs/interface.md "$stage/share/doc/pctl/"
install -m 0644 LICENSE README.md "$stage/"

# gzip's best compression for a release; the debug tarball (tests/packaging)
# its fastest, which changes no byte of the tar inside.
level=9
[[ "${1:-}" == --debug ]] && level=1
python3 - "$repo/target/dist" "$name" "$SOURCE_DATE_EPOCH" "$level" <<'PY'
import gzip, os, sys, tarfile
dist, name, mtime, level = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def clean(info):
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = mtime
    return info
paths = []
for top, dirs, files in os.walk(os.path.join(dist, name)):
    dirs.sort()
    paths += [os.path.join(top, d) for d in dirs] + [os.path.join(top, f) for f in sorted(files)]
with open(os.path.join(dist, name + ".tar.gz"), "wb") as raw:
    with gzip.GzipFile(fileobj=raw, mode="wb", mtime=mtime, filename="", compresslevel=level) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(os.path.join(dist, name), arcname=name, recursive=False, filter=clean)
            for p in sorted(paths):
                tar.add(p, arcname=os.path.relpath(p, dist), recursive=False, filter=clean)
PY
echo "$stage.tar.gz"
