//! The Unix-socket server: socket directory checks, one daemon per socket,
//! peer UID checks, framing with limits, dispatch, graceful shutdown.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pctl_protocol::{Envelope, ErrorKind, ErrorReply, FrameError, Reply, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;
use zeroize::Zeroize;

use crate::broker::{Broker, LockReason, Peer};
use crate::platform;

/// Most connections served at once; more are closed at accept.
pub const MAX_CONNECTIONS: usize = 512;

/// How long a client may take to send a whole request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a client may take to read an answer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a request may run (an `op` prompt is the slow case).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);

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

/// Creates (0700) or checks the socket directory: it must be ours and not
/// writable by group or others.
pub fn prepare_dir(dir: &Path) -> Result<(), ServeError> {
    if !dir.exists() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ServeError::Io(format!("cannot create {}", dir.display()), e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| ServeError::Io(format!("cannot chmod {}", dir.display()), e))?;
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| ServeError::Io(format!("cannot stat {}", dir.display()), e))?;
    if !meta.is_dir() {
        return Err(ServeError::Unsafe(format!(
            "refusing socket directory {}: not a directory",
            dir.display()
        )));
    }
    if meta.uid() != platform::euid() {
        return Err(ServeError::Unsafe(format!(
            "refusing socket directory {}: owned by uid {}, not you (uid {}); remove it or set PCTL_SOCK",
            dir.display(),
            meta.uid(),
            platform::euid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(ServeError::Unsafe(format!(
            "refusing socket directory {}: mode {:o} lets others write to it; run `chmod 700 {}`",
            dir.display(),
            meta.mode() & 0o777,
            dir.display()
        )));
    }
    Ok(())
}

/// Holds the per-socket lock file for the daemon's lifetime.
pub struct SocketLock {
    _lock: nix::fcntl::Flock<std::fs::File>,
}

/// Takes the exclusive lock that makes this the only daemon on `socket`.
pub fn lock_socket(socket: &Path) -> Result<SocketLock, ServeError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = lock_path(socket);
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

fn lock_path(socket: &Path) -> PathBuf {
    let mut p = socket.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Binds the socket (0600), replacing a stale one. Call with the lock held.
pub fn bind(socket: &Path) -> Result<UnixListener, ServeError> {
    if socket.exists() {
        // We hold the lock, so no live daemon owns this file.
        std::fs::remove_file(socket).map_err(|e| {
            ServeError::Io(
                format!("cannot remove stale socket {}", socket.display()),
                e,
            )
        })?;
    }
    let l = UnixListener::bind(socket)
        .map_err(|e| ServeError::Io(format!("cannot bind {}", socket.display()), e))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| ServeError::Io(format!("cannot chmod {}", socket.display()), e))?;
    Ok(l)
}

/// Serves until `shutdown` is notified.
pub async fn serve(broker: Arc<Broker>, listener: UnixListener, shutdown: Arc<Notify>) {
    let active = Arc::new(AtomicUsize::new(0));
    let my_uid = platform::euid();
    loop {
        let stream = tokio::select! {
            _ = shutdown.notified() => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let peer = match stream.peer_cred() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("refused a connection: cannot read peer credentials: {e}");
                continue;
            }
        };
        if peer.uid() != my_uid {
            broker.count_refused_peer();
            tracing::warn!("refused a connection from uid {} (pid {:?}): only uid {my_uid} may use this daemon", peer.uid(), peer.pid());
            refuse(&stream, format!("this pctl daemon serves uid {my_uid} only; you are uid {}: start your own (unset PCTL_SOCK)", peer.uid()));
            continue;
        }
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("refused a connection: {MAX_CONNECTIONS} connections already open");
            refuse(
                &stream,
                format!("the pctl daemon is busy ({MAX_CONNECTIONS} connections open): retry"),
            );
            continue;
        }
        let peer = Peer {
            pid: peer.pid(),
            uid: Some(peer.uid()),
            exe: peer
                .pid()
                .and_then(platform::exe_of)
                .map(|p| p.display().to_string()),
        };
        let broker = broker.clone();
        let active = active.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            handle(broker, stream, peer, shutdown).await;
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Tells a refused client why, without waiting for it: one non-blocking
/// write of an error frame, then the connection is dropped.
fn refuse(stream: &UnixStream, message: String) {
    let resp = Response::Error(ErrorReply {
        kind: ErrorKind::Unavailable,
        message,
    });
    if let Ok(buf) = pctl_protocol::encode(&resp) {
        let _ = stream.try_write(&buf);
    }
}

async fn read_request(stream: &mut UnixStream) -> Result<Envelope, FrameError> {
    let mut header = [0u8; 4];
    match stream.read_exact(&mut header).await {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        r => r?,
    };
    let len = pctl_protocol::frame_len(header)?;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    let res = pctl_protocol::decode_request(&body);
    body.zeroize();
    res
}

/// Writes one answer; a client that does not read it within [`WRITE_TIMEOUT`]
/// loses the connection instead of pinning a slot forever.
async fn write_response(stream: &mut UnixStream, resp: &Response) -> std::io::Result<()> {
    let mut buf = pctl_protocol::encode(resp).unwrap_or_else(|e| {
        pctl_protocol::encode(&Response::Error(ErrorReply {
            kind: ErrorKind::BadRequest,
            message: e.to_string(),
        }))
        .unwrap_or_default()
    });
    let r = match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&buf)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "client did not read its answer",
        )),
    };
    buf.zeroize();
    r
}

async fn handle(broker: Arc<Broker>, mut stream: UnixStream, peer: Peer, shutdown: Arc<Notify>) {
    loop {
        let env = match tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await {
            Err(_) => return,
            Ok(Err(FrameError::Closed)) => return,
            Ok(Err(e)) => {
                let msg = match e {
                    FrameError::Json(e) => format!("malformed request: {e}"),
                    e => e.to_string(),
                };
                let _ = write_response(
                    &mut stream,
                    &Response::Error(ErrorReply {
                        kind: ErrorKind::BadRequest,
                        message: msg,
                    }),
                )
                .await;
                return;
            }
            Ok(Ok(env)) => env,
        };
        broker.count_request();
        let stop = matches!(env.request, Request::Stop);
        let resp = if env.version != pctl_protocol::VERSION
            && !matches!(env.request, Request::Ping | Request::Stop)
        {
            Response::Error(ErrorReply {
                kind: ErrorKind::Version,
                message: format!(
                    "daemon runs pctl {}, client is {}",
                    pctl_protocol::VERSION,
                    env.version
                ),
            })
        } else {
            match tokio::time::timeout(REQUEST_TIMEOUT, dispatch(&broker, env.request, &peer)).await
            {
                Ok(Ok(reply)) => Response::Ok(reply),
                Ok(Err(f)) => Response::Error(f.into()),
                Err(_) => Response::Error(ErrorReply {
                    kind: ErrorKind::Unavailable,
                    message: "request timed out in the daemon".into(),
                }),
            }
        };
        let ok = write_response(&mut stream, &resp).await.is_ok();
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
        Request::Lock => {
            broker.lock(LockReason::Manual);
            Reply::Done
        }
        Request::Unlock { env } => {
            broker.unlock(&env, peer).await?;
            Reply::Done
        }
        Request::Credentials { role, env } => {
            Reply::Credentials(broker.credentials(&role, env.as_ref(), peer).await?)
        }
        Request::EksToken { cluster, role, env } => Reply::EksToken(
            broker
                .eks_token(&cluster, role.as_deref(), env.as_ref(), peer)
                .await?,
        ),
        Request::DescribeCluster { cluster, role, env } => Reply::Cluster(
            broker
                .describe_cluster(&cluster, role.as_deref(), env.as_ref(), peer)
                .await?,
        ),
        Request::Profiles => Reply::Profiles(broker.profiles()?),
    })
}
