//! Every path pctl uses, in one place (shared by the daemon and its clients,
//! which must agree on them).

use std::path::PathBuf;

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn home() -> PathBuf {
    env_path("HOME").unwrap_or_else(|| PathBuf::from("/"))
}

/// The daemon's socket: `$PCTL_SOCK`, else `$XDG_RUNTIME_DIR/pctl/pctl.sock`,
/// else `/tmp/pctl-$UID/pctl.sock`.
pub fn socket_path() -> PathBuf {
    if let Some(p) = env_path("PCTL_SOCK") {
        return p;
    }
    match env_path("XDG_RUNTIME_DIR") {
        Some(dir) => dir.join("pctl").join("pctl.sock"),
        None => PathBuf::from(format!("/tmp/pctl-{}", euid())).join("pctl.sock"),
    }
}

/// The config file: `$PCTL_CONFIG`, else `$XDG_CONFIG_HOME/pctl/config.toml`,
/// else `~/.config/pctl/config.toml`.
pub fn config_path() -> PathBuf {
    if let Some(p) = env_path("PCTL_CONFIG") {
        return p;
    }
    config_dir().join("config.toml")
}

/// pctl's own config directory (for files pctl writes and owns).
pub fn config_dir() -> PathBuf {
    env_path("XDG_CONFIG_HOME")
        .unwrap_or_else(|| home().join(".config"))
        .join("pctl")
}

/// Logs: `$PCTL_STATE_DIR`, else `$XDG_STATE_HOME/pctl`, else `~/.local/state/pctl`.
pub fn state_dir() -> PathBuf {
    if let Some(p) = env_path("PCTL_STATE_DIR") {
        return p;
    }
    env_path("XDG_STATE_HOME")
        .unwrap_or_else(|| home().join(".local").join("state"))
        .join("pctl")
}

/// The kubeconfig file pctl owns.
pub fn kubeconfig_path() -> PathBuf {
    config_dir().join("kubeconfig")
}

/// The AWS shared-config file pctl owns.
pub fn aws_config_path() -> PathBuf {
    config_dir().join("aws-config")
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
