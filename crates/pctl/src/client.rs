//! The thin client: connects to the daemon's socket, starting a detached
//! daemon when none answers and replacing one of another version.
//!
//! Deliberately synchronous and small: no async runtime, no AWS SDK, no
//! config parsing, so `pctl eks token` costs little more than a process spawn.

use std::io::ErrorKind as IoKind;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use pctl_protocol::{ClientEnv, Envelope, ErrorKind, Reply, Request, Response, VERSION};

/// How long a reply may take (an `op` prompt waits for a person).
const REPLY_TIMEOUT: Duration = Duration::from_secs(200);
/// How long a freshly started daemon may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection target.
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: PathBuf) -> Self {
        Client { socket }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends one request, starting (or replacing) the daemon as needed.
    pub fn request(&self, request: Request) -> Result<Reply> {
        let mut env = Envelope {
            version: VERSION.into(),
            request,
        };
        for attempt in 0..3 {
            let mut stream = self.connect_or_start()?;
            let resp = exchange(&mut stream, &env)?;
            match resp {
                Response::Ok(r) => return Ok(r),
                Response::Error(e) if e.kind == ErrorKind::Version && attempt == 0 => {
                    eprintln!(
                        "pctl: replacing a daemon of another version ({})",
                        e.message
                    );
                    self.stop_and_wait()?;
                }
                Response::Error(e) if e.kind == ErrorKind::NeedsEnv => {
                    if !attach_env(&mut env.request) {
                        bail!("the daemon asked twice for the 1Password environment");
                    }
                }
                Response::Error(e) => return Err(anyhow!(e.message)),
            }
        }
        bail!(
            "the daemon at {} kept answering with another version",
            self.socket.display()
        )
    }

    /// Sends one request only if a daemon is already running.
    pub fn request_if_running(&self, request: Request) -> Result<Option<Reply>> {
        match UnixStream::connect(&self.socket) {
            Ok(_) => self.request(request).map(Some),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => {
                Err(e).with_context(|| format!("cannot connect to {}", self.socket.display()))
            }
        }
    }

    fn connect_or_start(&self) -> Result<UnixStream> {
        match UnixStream::connect(&self.socket) {
            Ok(s) => return Ok(s),
            Err(e) if is_absent(&e) => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot connect to the pctl daemon at {}",
                        self.socket.display()
                    )
                })
            }
        }
        self.start_daemon()?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match UnixStream::connect(&self.socket) {
                Ok(s) => return Ok(s),
                Err(e) if is_absent(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "the pctl daemon did not start listening on {} (see {})",
                            self.socket.display(),
                            log_path().display()
                        )
                    })
                }
            }
        }
    }

    fn start_daemon(&self) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let exe = daemon_exe()?;
        let log = log_path();
        if let Some(dir) = log.parent() {
            create_private_dir(dir)?;
        }
        let mut cmd = Command::new(exe);
        // The daemon outlives this client: give it only what it needs, never
        // a credential that happens to be in the caller's environment.
        cmd.env_clear()
            .envs(std::env::vars_os().filter(|(k, _)| k.to_str().is_some_and(daemon_env)));
        cmd.arg("--log-file")
            .arg(&log)
            .env("PCTL_SOCK", &self.socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/");
        // SAFETY: setsid is async-signal-safe; it detaches the daemon from
        // the caller's terminal and process group.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        cmd.spawn().context("cannot start the pctl daemon")?;
        Ok(())
    }

    fn stop_and_wait(&self) -> Result<()> {
        if let Ok(mut s) = UnixStream::connect(&self.socket) {
            let _ = exchange(
                &mut s,
                &Envelope {
                    version: VERSION.into(),
                    request: Request::Stop,
                },
            );
        }
        self.wait_until_gone();
        Ok(())
    }

    /// Stops a running daemon and waits until its socket is gone (it wipes
    /// its secrets first). `false` when no daemon was running.
    pub fn stop(&self) -> Result<bool> {
        match self.request_if_running(Request::Stop)? {
            Some(_) => {
                self.wait_until_gone();
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn wait_until_gone(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.socket.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Variables an auto-started daemon inherits: paths, locale, proxies and
/// TLS settings, AWS endpoint overrides, pctl's own settings.
fn daemon_env(name: &str) -> bool {
    matches!(
        name,
        "PATH"
            | "HOME"
            | "USER"
            | "LOGNAME"
            | "LANG"
            | "TZ"
            | "TMPDIR"
            | "SSL_CERT_FILE"
            | "SSL_CERT_DIR"
            | "HTTPS_PROXY"
            | "https_proxy"
            | "HTTP_PROXY"
            | "http_proxy"
            | "NO_PROXY"
            | "no_proxy"
            | "AWS_CA_BUNDLE"
            | "AWS_USE_FIPS_ENDPOINT"
            | "AWS_USE_DUALSTACK_ENDPOINT"
    ) || name.starts_with("LC_")
        || name.starts_with("XDG_")
        || name.starts_with("PCTL_")
        || name.starts_with("AWS_ENDPOINT_URL")
}

fn is_absent(e: &std::io::Error) -> bool {
    matches!(e.kind(), IoKind::NotFound | IoKind::ConnectionRefused)
}

/// Adds the 1Password environment to a request that may unlock; false when
/// it has no place for one or already carries it.
fn attach_env(request: &mut Request) -> bool {
    match request {
        Request::Credentials { env, .. }
        | Request::EksToken { env, .. }
        | Request::DescribeCluster { env, .. }
            if env.is_none() =>
        {
            *env = Some(ClientEnv::from_current());
            true
        }
        _ => false,
    }
}

fn exchange(stream: &mut UnixStream, env: &Envelope) -> Result<Response> {
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    if let Err(e) = pctl_protocol::write_frame(stream, env) {
        // A daemon that refuses us says why before closing: read that first.
        return pctl_protocol::read_frame(stream)
            .map_err(|_| anyhow!("cannot talk to the pctl daemon: {e}"));
    }
    pctl_protocol::read_frame(stream).map_err(|e| match e {
        pctl_protocol::FrameError::Closed => anyhow!(
            "the pctl daemon closed the connection (see {})",
            log_path().display()
        ),
        e => anyhow!("bad answer from the pctl daemon: {e}"),
    })
}

/// The `pctl-daemon` executable: next to this one, else on PATH.
pub fn daemon_exe() -> Result<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
        .and_then(|p| p.parent().map(|d| d.join("pctl-daemon")));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("pctl-daemon"));
    beside
        .into_iter()
        .chain(on_path)
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("pctl-daemon not found next to pctl or on PATH: install it (cargo install --path crates/pctl-broker)"))
}

/// Where an auto-started daemon logs.
pub fn log_path() -> PathBuf {
    pctl_protocol::dirs::state_dir().join("daemon.log")
}

/// Creates a directory readable only by its owner.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(())
}
