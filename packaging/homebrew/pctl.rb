# Homebrew formula template for pctl, for a tap (a repository named
# homebrew-<tap> with this file as Formula/pctl.rb). The release workflow
# fills it in with packaging/homebrew/render.sh from the release's
# SHA256SUMS and attaches the result (pctl.rb) to the release; copy that
# into the tap. It installs the release tarballs of packaging/tarball.sh.
class Pctl < Formula
  desc "AWS and EKS credential broker with secrets from 1Password, kept in memory"
  homepage "@HOMEPAGE@"
  version "@VERSION@"
  license "Apache-2.0"

  on_macos do
    on_arm do
      url "@URL_BASE@/pctl-@VERSION@-aarch64-apple-darwin.tar.gz"
      sha256 "@SHA256_aarch64-apple-darwin@"
    end
    on_intel do
      url "@URL_BASE@/pctl-@VERSION@-x86_64-apple-darwin.tar.gz"
      sha256 "@SHA256_x86_64-apple-darwin@"
    end
  end

  on_linux do
    on_arm do
      url "@URL_BASE@/pctl-@VERSION@-aarch64-unknown-linux-gnu.tar.gz"
      sha256 "@SHA256_aarch64-unknown-linux-gnu@"
    end
    on_intel do
      url "@URL_BASE@/pctl-@VERSION@-x86_64-unknown-linux-gnu.tar.gz"
      sha256 "@SHA256_x86_64-unknown-linux-gnu@"
    end
  end

  def install
    bin.install "bin/pctl", "bin/pctl-daemon"
    man1.install Dir["share/man/man1/*.1"]
    man5.install "share/man/man5/pctl.toml.5"
    man8.install "share/man/man8/pctl-daemon.8"
    bash_completion.install "share/bash-completion/completions/pctl"
    zsh_completion.install "share/zsh/site-functions/_pctl"
    fish_completion.install "share/fish/vendor_completions.d/pctl.fish"
    # prompt segments, the starship module, shell set-up scripts, service units
    pkgshare.install Dir["share/pctl/*"]
    doc.install "README.md", "LICENSE", "share/doc/pctl/interface.md"
  end

  def caveats
    <<~EOS
      pctl reads your AWS keys with the 1Password CLI (`op` 2.x):
        brew install --cask 1password-cli
      Clients start the daemon on demand; `brew services start pctl` keeps
      one running instead.
    EOS
  end

  # The daemon as a launchd agent (systemd user unit on Linux). No log file:
  # the daemon keeps its own, 0600, under its state directory. PATH must
  # reach Homebrew's bin, where the 1Password CLI `op` lives.
  service do
    run [opt_bin/"pctl", "daemon"]
    environment_variables PATH: std_service_path_env
    keep_alive successful_exit: false
  end

  test do
    assert_match "pctl #{version}", shell_output("#{bin}/pctl --version")
    assert_match "pctl-daemon #{version}", shell_output("#{bin}/pctl-daemon --version")
    assert_match "credential-process", shell_output("#{bin}/pctl --help")
  end
end
