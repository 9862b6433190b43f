//! The thin client: one typed method per request. It connects to the
//! daemon's socket only after checking that the daemon is its own user's
//! ([`Connection::connect`]), starts a detached daemon when none answers and
//! replaces one of another version.
//!
//! Deliberately synchronous and small: no async runtime, no AWS SDK, no
//! config parsing, so `pctl eks token` costs little more than a process spawn.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use pctl_protocol::connection::ConnectError;
use pctl_protocol::{
    dirs, Check, ClientEnv, ClusterInfo, ClusterNames, Connection, ConsoleLogin, CredentialServer,
    Credentials, EksToken, Envelope, ErrorKind, FrameError, GetTokenFlags, MfaCode, Profiles,
    Reply, Request, RequestKind, Response, RoleArns, Rotation, Setup, SignInPrompt, Status,
    UnexpectedReply, VERSION,
};

/// How long a reply may take. The daemon bounds every request by its
/// config's `op_timeout` (at most 10 minutes: an `op` prompt waits for a
/// person) plus a margin; this only guards against a hung daemon.
const REPLY_TIMEOUT: Duration = Duration::from_secs(12 * 60);
/// How long a freshly started daemon may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The daemon at one socket path.
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

    /// Reads 1Password now.
    pub fn unlock(&self, identity: Option<String>) -> Result<()> {
        let env = ClientEnv::from_current();
        self.call(Request::Unlock {
            env,
            identity,
            mfa_code: None,
        })
    }

    /// Rotates an identity's access key.
    pub fn rotate(&self, identity: Option<String>) -> Result<Rotation> {
        let env = ClientEnv::from_current();
        self.call(Request::Rotate { env, identity })
    }

    /// Locks a running daemon (one identity, or all); `false` when none runs.
    pub fn lock(&self, identity: Option<String>) -> Result<bool> {
        Ok(self
            .call_if_running::<()>(Request::Lock { identity })?
            .is_some())
    }

    /// Stops a running daemon and waits until its socket is gone (it wipes
    /// its secrets first); `false` when none runs.
    pub fn stop(&self) -> Result<bool> {
        let stopped = self.call_if_running::<()>(Request::Stop)?.is_some();
        if stopped {
            self.wait_until_gone();
        }
        Ok(stopped)
    }

    pub fn status(&self) -> Result<Status> {
        self.call(Request::Status)
    }

    /// The daemon's side of `pctl doctor` (with this shell's 1Password environment).
    pub fn doctor(&self) -> Result<Vec<Check>> {
        let env = ClientEnv::from_current();
        self.call(Request::Doctor { env })
    }

    /// The status of a running daemon of this version, without starting or
    /// replacing one (for prompts): `None` when none answers here.
    pub fn status_if_running(&self) -> Result<Option<Status>> {
        let mut conn = match Connection::connect(&self.socket) {
            Ok(c) => c,
            Err(ConnectError::Absent(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let env = Envelope {
            version: VERSION.into(),
            request: Request::Status,
            setup: None,
            caller: None,
        };
        match exchange(&mut conn, &env)? {
            Response::Ok(r) => Ok(Some(typed(RequestKind::Status, r)?)),
            Response::Error(e) if e.kind == ErrorKind::Version => Ok(None),
            Response::Error(e) => Err(anyhow!(e.message)),
        }
    }

    /// A role's session credentials.
    pub fn credentials(&self, role: String) -> Result<Credentials> {
        self.credentials_for(role, None, None)
    }

    /// Role session credentials for `--duration` (seconds) / `--region`.
    pub fn credentials_for(
        &self,
        role: String,
        duration: Option<u64>,
        region: Option<String>,
    ) -> Result<Credentials> {
        let req = Request::Credentials {
            role,
            env: None,
            duration,
            region,
        };
        self.call(req)
    }

    /// An EKS token for a configured cluster, or for the one `aws eks
    /// get-token`'s flags name (`get_token`, resolved by the daemon; then
    /// `cluster` may be empty).
    pub fn eks_token(
        &self,
        cluster: String,
        role: Option<String>,
        get_token: Option<GetTokenFlags>,
    ) -> Result<EksToken> {
        let req = Request::EksToken {
            cluster,
            role,
            env: None,
            get_token,
        };
        self.call(req)
    }

    /// Endpoint and CA of a configured cluster.
    pub fn describe_cluster(&self, cluster: String, role: Option<String>) -> Result<ClusterInfo> {
        let req = Request::DescribeCluster {
            cluster,
            role,
            env: None,
        };
        self.call(req)
    }

    /// The EKS clusters `role` may list in `region` (`pctl init`).
    pub fn list_clusters(&self, role: String, region: String) -> Result<Vec<String>> {
        let req = Request::ListClusters {
            role,
            region,
            env: None,
        };
        self.call(req).map(|c: ClusterNames| c.names)
    }

    /// The roles the identity's IAM user may assume in its account (`pctl init`).
    pub fn assumable_roles(&self) -> Result<Vec<String>> {
        let req = Request::AssumableRoles {
            identity: None,
            env: None,
        };
        self.call(req).map(|r: RoleArns| r.arns)
    }

    /// The configured roles and clusters.
    pub fn profiles(&self) -> Result<Profiles> {
        self.call(Request::Profiles)
    }

    /// Sends `request` and takes the one reply type it expects.
    fn call<T: TryFrom<Reply, Error = UnexpectedReply>>(&self, request: Request) -> Result<T> {
        let kind = request.kind();
        typed(kind, self.request(request)?)
    }

    /// [`call`](Self::call) when a daemon runs; `None` when none does.
    fn call_if_running<T: TryFrom<Reply, Error = UnexpectedReply>>(
        &self,
        request: Request,
    ) -> Result<Option<T>> {
        match Connection::connect(&self.socket) {
            Ok(_) => self.call(request).map(Some),
            Err(ConnectError::Absent(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Sends one request, starting (or replacing) the daemon as needed, and
    /// resending it with the 1Password environment when the daemon asks.
    fn request(&self, request: Request) -> Result<Reply> {
        self.answered(request).map(|(_, reply)| reply)
    }

    /// [`Self::request`], keeping the connection the answer came on. Whatever
    /// the daemon needs from the user first (an IAM Identity Center sign-in,
    /// a typed MFA code, a break-glass confirmation, the 1Password
    /// environment, replacing a daemon of another version) is done here, then
    /// the request is sent again.
    fn answered(&self, request: Request) -> Result<(Connection<UnixStream>, Reply)> {
        let mut env = Envelope {
            version: VERSION.into(),
            request,
            setup: Some(setup()),
            caller: Some(crate::caller::current()),
        };
        let mut sign_ins = 0;
        for attempt in 0..8 {
            let mut conn = self.connect_or_start()?;
            let waiting = Waiting::start(&env.request);
            let answer = exchange(&mut conn, &env);
            drop(waiting);
            match answer? {
                Response::Ok(r) => return Ok((conn, r)),
                Response::Error(e) if e.kind == ErrorKind::NeedsSignIn && sign_ins < 3 => {
                    drop(conn);
                    sign_ins += 1;
                    let identity = e.identity.clone().unwrap_or_default();
                    self.sign_in(&identity, &e.message)?;
                }
                Response::Error(e) if e.kind == ErrorKind::NeedsMfaCode => {
                    drop(conn);
                    let identity = e.identity.clone().unwrap_or_default();
                    self.unlock_with_typed_code(&identity, &e.message)?;
                    if matches!(&env.request, Request::Unlock { identity: Some(i), .. } if *i == identity)
                    {
                        // the code went in its own `Unlock`: that was this request
                        return Ok((self.connect_or_start()?, Reply::Done));
                    }
                }
                Response::Error(e) if e.kind == ErrorKind::Version && attempt == 0 => {
                    eprintln!(
                        "pctl: replacing a daemon of another version ({})",
                        e.message
                    );
                    drop(conn);
                    self.stop_other_version();
                }
                Response::Error(e) if e.kind == ErrorKind::NeedsConfirmation => {
                    drop(conn);
                    let role = crate::caller::confirm(&e.message)?;
                    if let Some(c) = env.caller.as_mut() {
                        c.confirmed = Some(role);
                    }
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

    /// An `sso` identity must sign in: start (or join) its device
    /// authorization, open the verification URL with the same opener as
    /// `pctl login` and print it with the code on stderr, then wait for the
    /// outcome. Without a controlling terminal ([`crate::caller`]) the
    /// daemon shows the sign-in on the desktop (a notification, a pinentry
    /// window when no browser opens): this client only says whether it can
    /// open a browser. A client with a terminal that can show nothing (its
    /// stderr is no terminal, no opener) fails with the daemon's line (run
    /// `pctl unlock --identity`).
    fn sign_in(&self, identity: &str, message: &str) -> Result<()> {
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal();
        let opener = crate::browser::opener_available();
        let desktop = !crate::caller::current().terminal;
        if !terminal && !opener && !desktop {
            bail!("{message}");
        }
        let prompt: SignInPrompt = self.call(Request::SignIn {
            identity: identity.to_string(),
            env: desktop.then(ClientEnv::from_current),
            opener,
        })?;
        if prompt.started || terminal {
            eprintln!(
                "pctl: sign in to IAM Identity Center for identity {} ({}): open {} and confirm the code {} (valid for {} min)",
                prompt.identity,
                prompt.start_url,
                prompt.verification_uri,
                prompt.user_code,
                prompt.expires_in.div_ceil(60)
            );
        }
        if prompt.started && (terminal || opener) {
            if let Err(e) = crate::browser::open_url(&prompt.verification_uri_complete) {
                eprintln!("pctl: {e}");
            }
        }
        self.call(Request::SignInWait {
            identity: prompt.identity.clone(),
            serial: prompt.serial,
        })
    }

    /// `pctl sso roles`: every account x role of an `sso` identity.
    pub fn sso_roles(&self, identity: Option<String>) -> Result<Vec<pctl_protocol::SsoRole>> {
        self.call(Request::SsoRoles { identity })
    }

    /// An identity with `mfa = "prompt"` must unlock: ask on this process's
    /// terminal (`/dev/tty`, not echoed) and send the code once in an
    /// `Unlock`. Without a terminal (kubectl, terraform, an IDE) the
    /// daemon's one line is the error. At most three codes are asked for.
    fn unlock_with_typed_code(&self, identity: &str, message: &str) -> Result<()> {
        const TRIES: usize = 3;
        let mut why = message.to_string();
        for attempt in 1..=TRIES {
            let left = TRIES - attempt;
            let prompt = format!("pctl: MFA code for identity {identity}: ");
            let typed = match rpassword::prompt_password(prompt) {
                Ok(t) => zeroize::Zeroizing::new(t),
                Err(_) => bail!("{why}"),
            };
            // Authenticator apps show codes grouped (`123 456`).
            let code: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
            if !(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())) {
                why = format!("identity {identity}: the code must be 6 digits");
                if left > 0 {
                    eprintln!("pctl: the code must be 6 digits, try again ({left} left)");
                }
                continue;
            }
            let env = Envelope {
                version: VERSION.into(),
                request: Request::Unlock {
                    env: ClientEnv::from_current(),
                    identity: Some(identity.to_string()),
                    mfa_code: Some(MfaCode(code)),
                },
                setup: Some(setup()),
                caller: Some(crate::caller::current()),
            };
            let mut conn = self.connect_or_start()?;
            match exchange(&mut conn, &env)? {
                Response::Ok(_) => return Ok(()),
                Response::Error(e) if e.kind == ErrorKind::NeedsMfaCode => {
                    // an already used code: say why (not the advice for
                    // callers without a terminal) and ask again
                    if left > 0 {
                        eprintln!("pctl: {}, try again ({left} left)", refusal(&e.message));
                    }
                    why = e.message;
                }
                Response::Error(e) => bail!("{}", e.message),
            }
        }
        bail!("{why}")
    }

    fn connect_or_start(&self) -> Result<Connection<UnixStream>> {
        match Connection::connect(&self.socket) {
            Err(ConnectError::Absent(_)) => {}
            other => return Ok(other?),
        }
        // A daemon without a config could only answer that it has none.
        require_config()?;
        self.start_daemon()?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match Connection::connect(&self.socket) {
                Err(ConnectError::Absent(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(ConnectError::Absent(_)) => bail!(
                    "the pctl daemon did not start listening on {} (see {})",
                    self.socket.display(),
                    dirs::daemon_log_path().display()
                ),
                other => return Ok(other?),
            }
        }
    }

    fn start_daemon(&self) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let exe = daemon_exe()?;
        let log = dirs::daemon_log_path();
        if let Some(dir) = log.parent() {
            dirs::create_private_dir(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
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
        // SAFETY: setsid and pthread_sigmask are async-signal-safe; the
        // daemon is detached from the caller's terminal and process group,
        // and starts with no signal blocked whatever its caller blocked.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                nix::sys::signal::SigSet::empty()
                    .thread_set_mask()
                    .map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        cmd.spawn().context("cannot start the pctl daemon")?;
        Ok(())
    }

    /// Asks a daemon of another version to stop (on a new, again verified
    /// connection: an old daemon may close after its answer) and waits until
    /// it is gone.
    fn stop_other_version(&self) {
        if let Ok(mut conn) = Connection::connect(&self.socket) {
            let stop = Envelope {
                version: VERSION.into(),
                request: Request::Stop,
                setup: None,
                caller: None,
            };
            let _ = exchange(&mut conn, &stop);
        }
        self.wait_until_gone();
    }

    fn wait_until_gone(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.socket.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A console sign-in URL for a role (a bearer credential: print it
    /// only where the user asked for it).
    /// With `redirect`, the answer is a one-shot loopback link to it.
    pub fn console_login(&self, req: ConsoleLoginArgs, redirect: bool) -> Result<ConsoleLogin> {
        let req = Request::ConsoleLogin {
            role: req.role,
            region: req.region,
            path: req.path,
            destination: req.destination,
            redirect,
            env: None,
            duration: req.duration.map(|d| d.as_secs()),
        };
        self.call(req)
    }

    /// Starts a loopback credential endpoint for `role`. It lives exactly
    /// as long as the returned connection stays open: keep it, send nothing
    /// on it, drop it (or exit) to stop the endpoint.
    ///
    /// The 1Password environment goes along every time: the daemon keeps
    /// it to unlock again while the endpoint lives.
    pub fn credential_server(
        &self,
        role: String,
        port: Option<u16>,
        duration: Option<u64>,
        region: Option<String>,
    ) -> Result<(Connection<UnixStream>, CredentialServer)> {
        let (conn, reply) = self.answered(Request::CredentialServer {
            role,
            port,
            env: Some(ClientEnv::from_current()),
            duration,
            region,
        })?;
        let s = typed(RequestKind::CredentialServer, reply)?;
        // Held open for the endpoint's life: no reply timeout from here on.
        conn.get_ref().set_read_timeout(None)?;
        Ok((conn, s))
    }
}

/// A line on the terminal while a request that may read 1Password takes
/// long (`op` may be waiting for the user to approve in the app); erased
/// when the answer comes. Nothing when stderr is not a terminal.
struct Waiting {
    done: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Waiting {
    /// How long an answer may take before the line appears.
    const AFTER: Duration = Duration::from_millis(1500);

    fn start(request: &Request) -> Waiting {
        use std::io::IsTerminal;
        if !request.kind().may_unlock() || !std::io::stderr().is_terminal() {
            return Waiting {
                done: None,
                thread: None,
            };
        }
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            use std::io::Write;
            // an answer (the sender dropped) before the time: nothing shown
            if rx.recv_timeout(Self::AFTER) != Err(std::sync::mpsc::RecvTimeoutError::Timeout) {
                return;
            }
            let mut err = std::io::stderr();
            let _ = write!(
                err,
                "pctl: waiting for the daemon (1Password may be asking you to approve)..."
            );
            let _ = err.flush();
            let _ = rx.recv();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        });
        Waiting {
            done: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Why the daemon refused a typed code, without its advice for callers
/// that have no terminal (`identity X needs an MFA code (mfa = "prompt"):
/// WHY: run `pctl unlock ...` ...`).
fn refusal(message: &str) -> &str {
    message
        .split_once("(mfa = \"prompt\"): ")
        .and_then(|(_, rest)| rest.split_once(": run `pctl unlock"))
        .map(|(why, _)| why)
        .unwrap_or(message)
}

/// The config file a daemon started by this client reads: its absence is
/// the one-line "run pctl init" (the client only looks whether it exists;
/// the daemon reads it).
pub fn require_config() -> Result<()> {
    let path = dirs::config_path();
    if path.exists() {
        Ok(())
    } else {
        Err(no_config(&path))
    }
}

/// This shell's setup, which a running daemon must share to answer.
fn setup() -> Setup {
    Setup::current(&dirs::config_path())
}

/// `no config at PATH: run pctl init`.
pub fn no_config(path: &Path) -> anyhow::Error {
    anyhow!("no config at {}: run pctl init", path.display())
}

/// What `pctl login` asks for.
pub struct ConsoleLoginArgs {
    pub role: String,
    pub region: Option<String>,
    pub path: Option<String>,
    pub destination: Option<String>,
    /// `--duration`: the console session's length.
    pub duration: Option<std::time::Duration>,
}

/// The reply a request of `kind` expects, or one line saying what came instead.
fn typed<T: TryFrom<Reply, Error = UnexpectedReply>>(kind: RequestKind, reply: Reply) -> Result<T> {
    T::try_from(reply).map_err(|e| anyhow!("unexpected answer to {kind}: {e}"))
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

/// Adds the 1Password environment to a request that may unlock; false when
/// it has no place for one or already carries it.
fn attach_env(request: &mut Request) -> bool {
    match request {
        Request::Credentials { env, .. }
        | Request::EksToken { env, .. }
        | Request::DescribeCluster { env, .. }
        | Request::ListClusters { env, .. }
        | Request::AssumableRoles { env, .. }
        | Request::ConsoleLogin { env, .. }
            if env.is_none() =>
        {
            *env = Some(ClientEnv::from_current());
            true
        }
        _ => false,
    }
}

fn exchange(conn: &mut Connection<UnixStream>, env: &Envelope) -> Result<Response> {
    conn.get_ref().set_read_timeout(Some(REPLY_TIMEOUT))?;
    if let Err(e) = conn.send(env) {
        // A daemon that refuses us says why before closing: read that first.
        return conn
            .recv()
            .map_err(|_| anyhow!("cannot talk to the pctl daemon: {e}"));
    }
    if !env.request.kind().holds_connection() {
        // Nothing more goes this way: the daemon closes right after its
        // answer. A failure here costs nothing (the answer still comes).
        let _ = conn.get_ref().shutdown(std::net::Shutdown::Write);
    }
    conn.recv().map_err(|e| match e {
        FrameError::Closed => anyhow!(
            "the pctl daemon closed the connection (see {})",
            dirs::daemon_log_path().display()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// What the daemon's end sees after the client's request: `true` when
    /// the client shut its sending side (a read finds its end), `false`
    /// when it is still open (the read times out). It answers either way.
    fn daemon_sees_end(request: Request) -> bool {
        let (client, daemon) = UnixStream::pair().unwrap();
        let daemon = std::thread::spawn(move || {
            let mut d = Connection::new(daemon);
            let _: Envelope = d.recv().unwrap();
            d.get_ref()
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let ended = matches!(d.get_mut().read(&mut [0u8; 16]), Ok(0));
            d.send(&Response::Ok(Reply::Done)).unwrap();
            ended
        });
        let env = Envelope {
            version: VERSION.into(),
            request,
            setup: None,
            caller: None,
        };
        let answer = exchange(&mut Connection::new(client), &env).unwrap();
        assert!(matches!(answer, Response::Ok(Reply::Done)), "{answer:?}");
        daemon.join().unwrap()
    }

    #[test]
    fn the_client_shuts_its_side_after_a_request_unless_it_holds_the_connection() {
        assert!(daemon_sees_end(Request::Status));
        assert!(daemon_sees_end(Request::Ping));
        assert!(!daemon_sees_end(Request::CredentialServer {
            role: "admin".into(),
            port: None,
            env: None,
            duration: None,
            region: None,
        }));
    }
}
