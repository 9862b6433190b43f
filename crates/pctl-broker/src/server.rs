//! The Unix-socket server: one daemon per socket, peer UID checks, framing
//! with limits, dispatch, graceful shutdown.
//!
//! Backpressure, not refusal: the server takes a connection permit before it
//! calls `accept`, so at most [`MAX_CONNECTIONS`] connections are served at
//! once and any more wait in the kernel's listen queue (sized to the
//! system's maximum) until a slot frees; none is refused for load.
//!
//! A connection is accepted non-blocking and registered with the runtime's
//! reactor only when a read or write on it would block ([`Stream`]): a
//! client whose request is there when it is accepted, and which then shuts
//! its sending side (as `pctl` does), is served and closed without a
//! registration.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pctl_protocol::{
    dirs, peer, Check, Connection, ErrorKind, ErrorReply, FrameError, Level, Reply, Request,
    RequestError, Response, Setup,
};
use pctl_protocol::{ClusterNames, RoleArns};
use pctl_protocol::{RequestKind, TimeLimit};
use tokio::io::unix::AsyncFd;
use tokio::sync::{Notify, Semaphore};

use crate::broker::{Broker, LockReason};
use crate::peer::Peer;
use crate::platform;
use crate::stream::Stream;

/// The daemon's listening socket, registered with the reactor.
pub type Listener = AsyncFd<std::os::unix::net::UnixListener>;

/// Most connections served at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 512;

/// How long a client may take to send a whole request (counted from the
/// moment its connection is accepted, not while it waits in the queue).
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a client may take to read an answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a request may take beyond `op_timeout` (STS, EKS and the MFA wait
/// for the next one-time code).
/// The request limit when the config cannot be read (no `op` will run).
const REQUEST_TIMEOUT_NO_CONFIG: Duration = Duration::from_secs(180);

/// How long one request may run once it has been read: the broker's
/// [`Broker::request_timeout`] (covers `op_timeout`, up to 10 minutes, so
/// the daemon never cuts `op` short). Time spent in the listen queue or
/// reading the request is not counted.
pub fn request_timeout(broker: &Broker) -> Duration {
    broker.request_limit().unwrap_or(REQUEST_TIMEOUT_NO_CONFIG)
}

/// A startup problem, phrased for the user.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Unsafe(String),
    #[error("another pctl daemon is already serving {0}")]
    AlreadyRunning(PathBuf),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

impl From<dirs::Untrusted> for ServeError {
    fn from(e: dirs::Untrusted) -> Self {
        ServeError::Unsafe(e.0)
    }
}

/// Holds the per-socket lock file for the daemon's lifetime.
pub struct SocketLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// Takes the exclusive lock that makes this the only daemon on `socket`.
pub fn lock_socket(socket: &Path) -> Result<SocketLock, ServeError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dirs::lock_path(socket);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| ServeError::Io(format!("cannot open {}", path.display()), e))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(SocketLock { _lock: lock }),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            Err(ServeError::AlreadyRunning(socket.to_path_buf()))
        }
        Err((_, e)) => Err(ServeError::Io(
            format!("cannot lock {}", path.display()),
            e.into(),
        )),
    }
}

/// Binds the socket (0600) with the largest listen queue the system allows,
/// replacing a stale one. Call with the lock held.
pub fn bind(socket: &Path) -> Result<Listener, ServeError> {
    use nix::sys::socket::{self as sock, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    use std::os::unix::fs::PermissionsExt;
    let err = |what: &str, e: nix::errno::Errno| {
        ServeError::Io(format!("cannot {what} {}", socket.display()), e.into())
    };
    if socket.exists() {
        // We hold the lock, so no live daemon owns this file.
        std::fs::remove_file(socket).map_err(|e| {
            ServeError::Io(
                format!("cannot remove stale socket {}", socket.display()),
                e,
            )
        })?;
    }
    let fd: OwnedFd = sock::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| err("create a socket for", e))?;
    let addr = UnixAddr::new(socket).map_err(|e| err("use", e))?;
    sock::bind(fd.as_raw_fd(), &addr).map_err(|e| err("bind", e))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| ServeError::Io(format!("cannot chmod {}", socket.display()), e))?;
    sock::listen(&fd, Backlog::MAXCONN).map_err(|e| err("listen on", e))?;
    // SAFETY: the listener owns its descriptor, which stays open and the
    // same for as long as the AsyncFd holds the listener.
    unsafe { AsyncFd::register(std::os::unix::net::UnixListener::from(fd)) }.map_err(|e| {
        ServeError::Io(
            format!("cannot listen on {}", socket.display()),
            std::io::Error::from(e),
        )
    })
}

/// Accepts one connection: a bare non-blocking socket, not registered with
/// the reactor.
async fn accept(listener: &Listener) -> std::io::Result<std::os::unix::net::UnixStream> {
    loop {
        let mut ready = listener.readable().await?;
        if let Ok(r) = ready.try_io(|l| platform::accept_nonblocking(l.get_ref())) {
            return r;
        }
    }
}

/// Serves until `shutdown` is notified.
pub async fn serve(broker: Arc<Broker>, listener: Listener, shutdown: Arc<Notify>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let my_uid = peer::euid();
    loop {
        // A slot first: without one, clients wait in the listen queue.
        let permit = tokio::select! {
            _ = shutdown.notified() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.notified() => break,
            r = accept(&listener) => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let cred = match peer::peer_cred(&stream) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("refused a connection: cannot read peer credentials: {e}");
                continue;
            }
        };
        if cred.uid != my_uid {
            broker.count_refused_peer();
            tracing::warn!("refused a connection from uid {} (pid {:?}): only uid {my_uid} may use this daemon", cred.uid, cred.pid);
            refuse(&stream, format!("this pctl daemon serves uid {my_uid} only; you are uid {}: start your own (unset PCTL_SOCK)", cred.uid));
            continue;
        }
        let peer = Peer {
            pid: cred.pid,
            uid: Some(cred.uid),
            exe: cred
                .pid
                .and_then(platform::exe_of)
                .map(|p| p.display().to_string()),
            ..Peer::default()
        };
        let broker = broker.clone();
        let shutdown = shutdown.clone();
        // Boxed, so that spawning and finishing the task moves a pointer
        // rather than the connection's whole state (counted per request in
        // tests/bench/daemon-counts.sh).
        tokio::spawn(Box::pin(async move {
            handle(
                broker,
                Connection::new(Stream::bare(stream)),
                peer,
                shutdown,
            )
            .await;
            drop(permit);
        }));
        // The new connection's request first, then the next accept.
        tokio::task::yield_now().await;
    }
}

/// Tells a refused client why, without waiting for it: one non-blocking
/// write of an error frame, then the connection is dropped.
fn refuse(stream: &std::os::unix::net::UnixStream, message: String) {
    let resp = Response::Error(ErrorReply {
        kind: ErrorKind::Unavailable,
        message,
        identity: None,
    });
    if let Ok(buf) = pctl_protocol::encode(&resp) {
        let _ = std::io::Write::write(&mut &*stream, &buf);
    }
}

/// Writes one answer; a client that does not read it within [`WRITE_TIMEOUT`]
/// loses the connection instead of pinning a slot forever.
async fn write_response(conn: &mut Connection<Stream>, resp: &Response) -> Result<(), FrameError> {
    let r = match tokio::time::timeout(WRITE_TIMEOUT, conn.send_async(resp)).await {
        Ok(r) => r,
        Err(_) => Err(FrameError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "client did not read its answer",
        ))),
    };
    match r {
        // The answer itself could not be encoded: say so instead.
        Err(e @ (FrameError::TooLarge(_) | FrameError::Json(_))) => {
            conn.send_async(&error(ErrorKind::BadRequest, e.to_string()))
                .await
        }
        r => r,
    }
}

fn error(kind: ErrorKind, message: String) -> Response {
    Response::Error(ErrorReply {
        kind,
        message,
        identity: None,
    })
}

async fn handle(
    broker: Arc<Broker>,
    mut conn: Connection<Stream>,
    peer: Peer,
    shutdown: Arc<Notify>,
) {
    let client = peer;
    loop {
        let body = match tokio::time::timeout(READ_TIMEOUT, conn.read_body_async()).await {
            Err(_) | Ok(Err(FrameError::Closed)) => return,
            Ok(Err(e)) => {
                let _ =
                    write_response(&mut conn, &error(ErrorKind::BadRequest, e.to_string())).await;
                return;
            }
            Ok(Ok(body)) => body,
        };
        broker.count_request();
        let env = match pctl_protocol::decode_request(&body) {
            Ok(env) => env,
            Err(e @ RequestError::Version(_)) => {
                // Answered, and the connection stays usable for a `stop`.
                if write_response(&mut conn, &error(ErrorKind::Version, e.to_string()))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
            Err(e @ RequestError::Malformed(_)) => {
                let _ =
                    write_response(&mut conn, &error(ErrorKind::BadRequest, e.to_string())).await;
                return;
            }
        };
        drop(body);
        // A client whose config or endpoints differ from the daemon's would
        // get answers from the wrong file or account: refuse what depends
        // on them; status and doctor say so, lock and stop still work.
        let differs = env
            .setup
            .as_ref()
            .and_then(|s| daemon_setup(&broker).differences(s));
        let kind = env.request.kind();
        if let Some(why) = differs.as_ref().filter(|_| kind.depends_on_setup()) {
            if write_response(&mut conn, &error(ErrorKind::Config, why.clone()))
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        // what this request's client can do for its user
        let peer = Peer {
            caller: env.caller.clone(),
            ..client.clone()
        };
        if let Request::CredentialServer {
            role,
            port,
            env,
            duration,
            region,
        } = env.request
        {
            let o = crate::issue::Overrides {
                duration: duration.map(Duration::from_secs),
                region,
            };
            Box::pin(hold_credential_server(
                broker, conn, peer, role, port, env, o,
            ))
            .await;
            return;
        }
        let stop = kind == RequestKind::Stop;
        let limit = match kind.time_limit() {
            TimeLimit::Unlock => request_timeout(&broker),
            // bounded by the device authorization's own expiry
            TimeLimit::SignIn => Duration::from_secs(3600),
            // three `op` runs, IAM propagation and a fresh unlock
            TimeLimit::Rotate => request_timeout(&broker) * 3,
            TimeLimit::Short => REQUEST_TIMEOUT_NO_CONFIG,
        };
        // Boxed: the request's future is moved only once (into the box), and
        // the connection's task, which tokio moves several times while
        // spawning and finishing it, stays small.
        let request = Box::pin(dispatch(&broker, env.request, &peer));
        let resp = match tokio::time::timeout(limit, request).await {
            Ok(Ok(reply)) => Response::Ok(with_setup_differences(reply, differs)),
            Ok(Err(f)) => Response::Error(f.into()),
            Err(_) => error(
                ErrorKind::Unavailable,
                format!("request timed out in the daemon after {}s", limit.as_secs()),
            ),
        };
        let ok = write_response(&mut conn, &resp).await.is_ok();
        drop(resp);
        if stop {
            shutdown.notify_one();
            return;
        }
        if !ok {
            return;
        }
    }
}

/// The daemon's own [`Setup`]: its config path and the endpoint and proxy
/// variables it started with (its environment does not change).
fn daemon_setup(broker: &Broker) -> &'static Setup {
    static SETUP: std::sync::OnceLock<Setup> = std::sync::OnceLock::new();
    SETUP.get_or_init(|| Setup::current(&broker.config_path))
}

/// Status and doctor answers to a client of another setup say so.
fn with_setup_differences(reply: Reply, differs: Option<String>) -> Reply {
    let Some(why) = differs else {
        return reply;
    };
    match reply {
        Reply::Status(mut s) => {
            s.setup_differs = Some(why);
            Reply::Status(s)
        }
        Reply::Doctor { mut checks } => {
            let (problem, fix) = why
                .split_once(": run `pctl stop`")
                .map(|(p, f)| (p.to_string(), format!("run `pctl stop`{f}")))
                .unwrap_or((why, "run `pctl stop`, then retry".into()));
            checks.insert(
                0,
                Check {
                    name: "daemon setup".into(),
                    level: Level::Fail,
                    detail: problem,
                    fix: Some(fix),
                },
            );
            Reply::Doctor { checks }
        }
        other => other,
    }
}

async fn dispatch(
    broker: &Broker,
    req: Request,
    peer: &Peer,
) -> Result<Reply, crate::broker::Failure> {
    Ok(match req {
        Request::Ping => Reply::Pong {
            version: pctl_protocol::VERSION.into(),
            pid: std::process::id(),
        },
        Request::Stop => Reply::Done,
        Request::Status => Reply::Status(Box::new(broker.status())),
        Request::Doctor { env } => Reply::Doctor {
            checks: Box::pin(broker.doctor(&env)).await,
        },
        Request::Rotate { env, identity } => {
            Reply::Rotated(Box::pin(broker.rotate(identity.as_deref(), &env, peer)).await?)
        }
        Request::Lock { identity } => {
            broker.lock_identity(identity.as_deref(), LockReason::Manual)?;
            Reply::Done
        }
        Request::Unlock {
            env,
            identity,
            mfa_code,
        } => {
            let code = mfa_code.as_ref().map(|c| c.0.as_str());
            Box::pin(broker.unlock(identity.as_deref(), &env, code, peer)).await?;
            Reply::Done
        }
        Request::Credentials {
            role,
            env,
            duration,
            region,
        } => Reply::Credentials(
            broker
                .credentials_with(
                    &role,
                    &crate::issue::Overrides {
                        duration: duration.map(Duration::from_secs),
                        region,
                    },
                    env.as_ref(),
                    peer,
                )
                .await?,
        ),
        Request::EksToken {
            cluster,
            role,
            env,
            get_token: Some(flags),
        } => Reply::EksToken(
            broker
                .eks_token_flags(
                    Some(cluster.as_str()).filter(|c| !c.is_empty()),
                    role.as_deref(),
                    &flags,
                    env.as_ref(),
                    peer,
                )
                .await?,
        ),
        Request::EksToken {
            cluster, role, env, ..
        } => Reply::EksToken(
            broker
                .eks_token(&cluster, role.as_deref(), env.as_ref(), peer)
                .await?,
        ),
        Request::DescribeCluster { cluster, role, env } => Reply::Cluster(
            Box::pin(broker.describe_cluster(&cluster, role.as_deref(), env.as_ref(), peer))
                .await?,
        ),
        Request::ListClusters { role, region, env } => Reply::ClusterNames(ClusterNames {
            names: Box::pin(broker.list_clusters(&role, &region, env.as_ref(), peer)).await?,
        }),
        Request::AssumableRoles { identity, env } => Reply::RoleArns(RoleArns {
            arns: Box::pin(broker.assumable_roles(identity.as_deref(), env.as_ref(), peer)).await?,
        }),
        Request::Profiles => Reply::Profiles(broker.profiles()?),
        Request::SignIn {
            identity,
            env,
            opener,
        } => Reply::SignIn(Box::pin(broker.sign_in(&identity, env.as_ref(), opener, peer)).await?),
        Request::SignInWait { identity, serial } => {
            Box::pin(broker.sign_in_wait(&identity, serial, peer)).await?;
            Reply::Done
        }
        Request::SsoRoles { identity } => Reply::SsoRoles {
            roles: Box::pin(broker.sso_roles(identity.as_deref(), peer)).await?,
        },
        Request::ConsoleLogin {
            role,
            region,
            path,
            destination,
            redirect,
            env,
            duration,
        } => Reply::ConsoleLogin(
            Box::pin(broker.console_login(
                crate::broker::ConsoleRequest {
                    role: &role,
                    region: region.as_deref(),
                    path: path.as_deref(),
                    destination: destination.as_deref(),
                    redirect,
                    duration: duration.map(Duration::from_secs),
                },
                env.as_ref(),
                peer,
            ))
            .await?,
        ),
        Request::CredentialServer { .. } => {
            return Err(crate::broker::Failure(
                ErrorKind::BadRequest,
                "credential_server is served on its own connection".into(),
            ))
        }
    })
}

/// Serves a credential endpoint for as long as this client connection
/// stays open: answers with its address and token, then waits for the
/// client to close (or send anything), and drops the endpoint.
async fn hold_credential_server(
    broker: Arc<Broker>,
    mut conn: Connection<Stream>,
    peer: Peer,
    role: String,
    port: Option<u16>,
    env: Option<pctl_protocol::ClientEnv>,
    o: crate::issue::Overrides,
) {
    let limit = request_timeout(&broker);
    let started = tokio::time::timeout(
        limit,
        crate::credserver::start(broker, role, port, env, o, &peer),
    )
    .await;
    let (reply, endpoint) = match started {
        Ok(Ok((reply, endpoint))) => (Reply::CredentialServer(reply), endpoint),
        Ok(Err(f)) => {
            let _ = write_response(&mut conn, &Response::Error(f.into())).await;
            return;
        }
        Err(_) => {
            let msg = format!("request timed out in the daemon after {}s", limit.as_secs());
            let _ = write_response(&mut conn, &error(ErrorKind::Unavailable, msg)).await;
            return;
        }
    };
    let resp = Response::Ok(reply);
    let sent = write_response(&mut conn, &resp).await;
    drop(resp);
    if sent.is_ok() {
        // No timeout: the endpoint lives while the client does.
        let _ = conn.read_body_async().await;
    }
    drop(endpoint);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker_with(op_timeout: &str) -> (Broker, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("pctl-server-{}-{op_timeout}", std::process::id()));
        dirs::create_private_dir(&dir).unwrap();
        let cfg = dir.join("config.toml");
        std::fs::write(
            &cfg,
            // the standard test config, shared with the pytest rig and the sandbox
            include_str!("../../../tests/fixtures/pctl.toml").replace(
                "op_timeout = \"20s\"",
                &format!("op_timeout = \"{op_timeout}\""),
            ),
        )
        .unwrap();
        (Broker::new(cfg, None), dir)
    }

    #[test]
    fn request_limit_never_cuts_op_short() {
        for t in ["1s", "2m", "10m"] {
            let (broker, dir) = broker_with(t);
            let op = broker.config().unwrap().daemon.op_timeout;
            let limit = request_timeout(&broker);
            assert!(limit > op * 2, "{t}: {limit:?} < op_timeout {op:?}");
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    /// Raises this process's open-file limit to its hard limit.
    fn raise_nofile() {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: lim is a valid rlimit for both calls.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
    }

    #[test]
    fn clients_beyond_the_limit_wait_instead_of_being_refused() {
        raise_nofile();
        let dir = std::env::temp_dir().join(format!("pctl-srv-q-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dirs::create_private_dir(&dir).unwrap();
        let sock = dir.join("s");
        let shutdown = Arc::new(Notify::new());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let server = {
            let (sock, dir, shutdown) = (sock.clone(), dir.clone(), shutdown.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let listener = bind(&sock).unwrap();
                    ready_tx.send(()).unwrap();
                    let broker = Arc::new(Broker::new(dir.join("none.toml"), None));
                    serve(broker, listener, shutdown).await;
                })
            })
        };
        ready_rx.recv().unwrap();
        // Twice the limit connected at the same time, then each sends a ping:
        // the first MAX_CONNECTIONS are accepted, the rest wait in the queue.
        let n = 2 * MAX_CONNECTIONS;
        let all_connected = Arc::new(std::sync::Barrier::new(n));
        let clients: Vec<_> = (0..n)
            .map(|_| {
                let (sock, all_connected) = (sock.clone(), all_connected.clone());
                std::thread::Builder::new()
                    .stack_size(128 * 1024)
                    .spawn(move || -> Result<(), String> {
                        let c = Connection::connect(&sock);
                        all_connected.wait();
                        let mut c = c.map_err(|e| e.to_string())?;
                        c.send(&pctl_protocol::Envelope {
                            version: pctl_protocol::VERSION.into(),
                            request: Request::Ping,
                            setup: None,
                            caller: None,
                        })
                        .map_err(|e| e.to_string())?;
                        match c.recv::<Response>().map_err(|e| e.to_string())? {
                            Response::Ok(Reply::Pong { .. }) => Ok(()),
                            other => Err(format!("{other:?}")),
                        }
                    })
                    .unwrap()
            })
            .collect();
        let errors: Vec<String> = clients
            .into_iter()
            .filter_map(|c| c.join().unwrap().err())
            .collect();
        shutdown.notify_one();
        server.join().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            errors.is_empty(),
            "{} of {n} clients failed: {:?}",
            errors.len(),
            &errors[..errors.len().min(3)]
        );
    }

    /// A client that shuts its sending side after its requests (as `pctl`
    /// does) has its connection closed right after the last answer, still
    /// on the bare socket; one that does not keeps it open for its next
    /// request. Two pipelined requests in one write are both answered.
    #[tokio::test]
    async fn a_client_done_sending_is_closed_right_after_its_answer() {
        use tokio::io::AsyncWriteExt;
        use tokio::net::UnixStream;
        // its own directory: broker_with's is named after the op_timeout
        let (broker, dir) = broker_with("21s");
        let broker = Arc::new(broker);
        let ping = pctl_protocol::encode(&pctl_protocol::Envelope {
            version: pctl_protocol::VERSION.into(),
            request: Request::Ping,
            setup: None,
            caller: None,
        })
        .unwrap();
        let pong = |body: &[u8]| {
            matches!(
                serde_json::from_slice::<Response>(body).unwrap(),
                Response::Ok(Reply::Pong { .. })
            )
        };
        for done_sending in [false, true] {
            // as accepted: the daemon's end bare and non-blocking
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            b.set_nonblocking(true).unwrap();
            let b = UnixStream::from_std(b).unwrap();
            let task = tokio::spawn(handle(
                broker.clone(),
                Connection::new(Stream::bare(a)),
                Peer::default(),
                Arc::new(Notify::new()),
            ));
            let mut client = Connection::new(b);
            client
                .get_mut()
                .write_all(&[&ping[..], &ping[..]].concat())
                .await
                .unwrap();
            if done_sending {
                client.get_mut().shutdown().await.unwrap();
            }
            for _ in 0..2 {
                assert!(pong(&client.read_body_async().await.unwrap()));
            }
            let next =
                tokio::time::timeout(Duration::from_millis(300), client.read_body_async()).await;
            if done_sending {
                assert!(
                    matches!(next, Ok(Err(FrameError::Closed))),
                    "not closed after the last answer: {next:?}"
                );
                // done while the client still holds its end
                task.await.unwrap();
                drop(client);
            } else {
                assert!(
                    next.is_err(),
                    "closed while the client may send more: {next:?}"
                );
                drop(client);
                task.await.unwrap();
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A connection's task is moved several times as tokio spawns and
    /// finishes it, and a request's future once into its box: the rare
    /// requests' big futures (rotate, doctor: ~13 KB each) are boxed on
    /// their own, so neither is as big as the largest of them. Before,
    /// every warm request copied ~14 KB about fourteen times (75% of its
    /// instructions in `memcpy`, tests/bench/daemon-counts.sh).
    #[tokio::test]
    async fn a_connections_task_and_a_requests_future_stay_small() {
        let (broker, dir) = broker_with("20s");
        let broker = Arc::new(broker);
        let (a, _b) = tokio::net::UnixStream::pair().unwrap();
        let peer = Peer::default();
        let task = handle(
            broker.clone(),
            Connection::new(Stream::from(a)),
            peer.clone(),
            Arc::new(Notify::new()),
        );
        let request = dispatch(&broker, Request::Ping, &peer);
        let (task, request) = (
            std::mem::size_of_val(&task),
            std::mem::size_of_val(&request),
        );
        std::fs::remove_dir_all(dir).unwrap();
        assert!(task <= 4096, "a connection's task is {task} bytes");
        assert!(request <= 4096, "a request's future is {request} bytes");
    }
}
