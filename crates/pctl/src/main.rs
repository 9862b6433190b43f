//! `pctl`: the thin client of the pctl daemon (`pctl-daemon`).
//!
//! kubectl runs `pctl eks token` for every command, so start-up is kept to a
//! minimum: no AWS SDK and no async runtime in this binary, a hand parser for
//! that one hot command line (clap for everything else), and a C `main`
//! that skips std's runtime set-up (which reads /proc/self/maps to place a
//! stack guard this short-lived process does not need). SIGPIPE keeps its
//! default action, as in any C command-line tool.
#![cfg_attr(not(test), no_main)]
// Unit tests run under the test harness's own main, so the entry point and
// what only it reaches are unused there.
#![cfg_attr(test, allow(dead_code, unused_imports))]

mod cli;
mod client;
mod files;
mod output;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{CommandFactory, Parser};
use pctl_protocol::dirs;
use pctl_protocol::{ClientEnv, Reply, Request};
use zeroize::Zeroize;

use cli::{Cli, Cmd, EksCmd};
use client::Client;

/// The process entry point (see the module comment for why not `fn main`).
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    let args = cli::aws_style(std::env::args_os().collect());
    let cli = cli::parse_fast(&args).unwrap_or_else(|| Cli::parse_from(&args));
    match run(cli) {
        Ok(_) => 0,
        Err(e) => {
            let mut msg = e.to_string();
            // Show the cause chain on one line (context: cause).
            for cause in e.chain().skip(1) {
                msg.push_str(": ");
                msg.push_str(&cause.to_string());
            }
            eprintln!("pctl: {msg}");
            1
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let client = || Client::new(dirs::socket_path());
    match cli.command {
        Cmd::Daemon { log_file } => daemon(log_file),
        Cmd::Shell { shell, profile } => {
            let c = client();
            let pong = c.request(Request::Ping)?;
            let Reply::Pong { .. } = pong else {
                bail!("unexpected answer to ping")
            };
            let sock = absolute(c.socket());
            let mut out = output::export(shell, "PCTL_SOCK", &sock.display().to_string());
            if let Ok(cfg) = std::env::var("PCTL_CONFIG") {
                out.push_str(&output::export(
                    shell,
                    "PCTL_CONFIG",
                    &absolute(&PathBuf::from(cfg)).display().to_string(),
                ));
            }
            out.push_str(&output::export(shell, "KUBECONFIG", &kubeconfig_var()));
            if let Some(role) = profile {
                if !role
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_".contains(ch))
                {
                    bail!("--profile {role:?}: role names are letters, digits, - and _");
                }
                out.push_str(&output::export(
                    shell,
                    "AWS_PROFILE",
                    &format!("pctl-{role}"),
                ));
            }
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Unlock => {
            client().request(Request::Unlock {
                env: ClientEnv::from_current(),
            })?;
            eprintln!("pctl: unlocked");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Lock => {
            match client().request_if_running(Request::Lock)? {
                Some(_) => eprintln!("pctl: locked: secrets and sessions dropped"),
                None => eprintln!("pctl: no daemon running: nothing to lock"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Stop => {
            if client().stop()? {
                eprintln!("pctl: daemon stopped");
            } else {
                eprintln!("pctl: no daemon running");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Status { json } => {
            let Reply::Status(s) = client().request(Request::Status)? else {
                bail!("unexpected answer to status")
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print_status(&s);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::CredentialProcess { role } => {
            let c = credentials(&client(), role)?;
            let mut out = output::credential_process(&c);
            out.push('\n');
            write_secret(out)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Env { role, shell } => {
            let c = credentials(&client(), role)?;
            let mut out = String::new();
            for (k, v) in output::credential_vars(&c) {
                out.push_str(&output::export(shell, k, v));
            }
            write_secret(out)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Exec { role, command } => exec(&client(), role, command),
        Cmd::AwsConfig { write, diff } => {
            let Reply::Profiles(p) = client().request(Request::Profiles)? else {
                bail!("unexpected answer")
            };
            let exe = std::env::current_exe().context("cannot find the pctl executable")?;
            let text = output::aws_config(&exe, &p.region, &p.roles);
            match (write, diff) {
                (None, false) => print!("{text}"),
                (path, diff) => files::aws_config::run(path, &text, p.roles.len(), diff)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Init {
            from_aws_config,
            write,
        } => {
            files::import::run(from_aws_config, write)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Eks {
            command:
                EksCmd::Token {
                    cluster,
                    role,
                    cluster_name,
                    region,
                    role_arn,
                    output: _,
                },
        } => {
            let (cluster, role) =
                files::eks_get_token::resolve(cluster, role, cluster_name, region, role_arn)?;
            let api =
                output::exec_api_version(std::env::var("KUBERNETES_EXEC_INFO").ok().as_deref())
                    .map_err(|e| anyhow!(e))?;
            let Reply::EksToken(t) = client().request(Request::EksToken {
                cluster,
                role,
                env: None,
            })?
            else {
                bail!("unexpected answer")
            };
            let mut out = output::exec_credential(&api, &t);
            out.push('\n');
            write_secret(out)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Kubeconfig {
            cluster,
            role,
            endpoint,
            ca_file,
            write,
            diff,
        } => kubeconfig(&client(), cluster, role, endpoint, ca_file, write, diff),
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "pctl", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `pctl daemon`: runs `pctl-daemon` in the foreground, in place of this process.
fn daemon(log_file: Option<PathBuf>) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let exe = client::daemon_exe()?;
    let mut cmd = std::process::Command::new(&exe);
    if let Some(f) = log_file {
        cmd.arg("--log-file").arg(f);
    }
    let err = cmd.exec();
    Err(anyhow!("cannot run {}: {err}", exe.display()))
}

fn credentials(client: &Client, role: String) -> Result<pctl_protocol::Credentials> {
    match client.request(Request::Credentials { role, env: None })? {
        Reply::Credentials(c) => Ok(c),
        _ => bail!("unexpected answer"),
    }
}

/// Writes secret output to stdout and wipes the buffer.
fn write_secret(mut out: String) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let r = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush());
    out.zeroize();
    r.context("cannot write to stdout")
}

fn exec(client: &Client, role: String, command: Vec<String>) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let c = credentials(client, role)?;
    let mut cmd = std::process::Command::new(&command[0]);
    cmd.args(&command[1..])
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_PROFILE");
    for (k, v) in output::credential_vars(&c) {
        cmd.env(k, v);
    }
    drop(c);
    let err = cmd.exec();
    Err(anyhow!("cannot run {}: {err}", command[0]))
}

fn kubeconfig(
    client: &Client,
    cluster: String,
    role: Option<String>,
    endpoint: Option<String>,
    ca_file: Option<PathBuf>,
    write: Option<PathBuf>,
    diff: bool,
) -> Result<ExitCode> {
    use base64::Engine;
    let ca_override = match &ca_file {
        Some(p) => {
            let pem = std::fs::read(p)
                .with_context(|| format!("cannot read --ca-file {}", p.display()))?;
            if !pem.starts_with(b"-----BEGIN") {
                bail!(
                    "--ca-file {}: not a PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                    p.display()
                );
            }
            Some(base64::engine::general_purpose::STANDARD.encode(pem))
        }
        None => None,
    };
    let Reply::Cluster(info) = client.request(Request::DescribeCluster {
        cluster,
        role,
        env: None,
    })?
    else {
        bail!("unexpected answer")
    };
    let server = endpoint.unwrap_or_else(|| info.endpoint.clone());
    if !server.starts_with("https://") {
        bail!("cluster endpoint {server:?} is not an https:// URL: pass --endpoint");
    }
    let ca = ca_override.unwrap_or_else(|| info.certificate_authority_data.clone());
    let path = match write {
        None => dirs::kubeconfig_path(),
        Some(p) if p.as_os_str().is_empty() => files::kubeconfig_yaml::default_path()?,
        Some(p) => p,
    };
    let exe = std::env::current_exe().context("cannot find the pctl executable")?;
    let sock = std::env::var("PCTL_SOCK")
        .ok()
        .filter(|s| !s.is_empty() && !files::kubeconfig_yaml::is_default_socket(s));
    let fresh = output::merge_kubeconfig(None, &info, &server, &ca, &exe, sock.as_deref());
    let name = format!("pctl-{}", info.key);
    files::kubeconfig_yaml::run(path, &fresh, &name, diff)?;
    Ok(ExitCode::SUCCESS)
}

fn absolute(p: &std::path::Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// KUBECONFIG with pctl's file appended once.
fn kubeconfig_var() -> String {
    let mine = dirs::kubeconfig_path().display().to_string();
    let current = std::env::var("KUBECONFIG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| {
            std::env::var("HOME")
                .map(|h| format!("{h}/.kube/config"))
                .unwrap_or_default()
        });
    if current.split(':').any(|p| p == mine) {
        current
    } else if current.is_empty() {
        mine
    } else {
        format!("{current}:{mine}")
    }
}

fn print_status(s: &pctl_protocol::Status) {
    println!("pctl {} (pid {}), config {}", s.version, s.pid, s.config);
    if s.locked {
        println!("locked ({})", s.lock_reason.as_deref().unwrap_or("?"));
    } else {
        println!(
            "unlocked since {}; locks at {}",
            s.unlocked_at.as_deref().unwrap_or("?"),
            s.locks_at.as_deref().unwrap_or("?")
        );
    }
    if let Some(exp) = &s.mfa_session_expires {
        println!("MFA session expires {exp}");
    }
    if let Some(op) = &s.op_path {
        println!("op: {op}");
    }
    if let Some(m) = &s.mlock {
        println!("warning: {m}");
    }
    for r in &s.roles {
        println!("role {:<12} {}  expires {}", r.role, r.arn, r.expiration);
    }
    for t in &s.tokens {
        println!(
            "token {:<11} role {}  expires {}",
            t.cluster, t.role, t.expiration
        );
    }
    let c = &s.counters;
    println!(
        "calls: op {}, GetSessionToken {}, AssumeRole {}, EKS tokens minted {}, DescribeCluster {}, requests {}, refused peers {}",
        c.op_calls, c.get_session_token, c.assume_role, c.eks_tokens_minted, c.describe_cluster, c.requests, c.refused_peers
    );
}
