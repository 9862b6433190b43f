//! The loopback credential endpoint behind `pctl exec --server` and
//! `pctl serve`: an HTTP server on 127.0.0.1 answering the AWS SDKs'
//! container credential provider (`AWS_CONTAINER_CREDENTIALS_FULL_URI` +
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN`) with the role's current session,
//! asked of the broker at every request, so a job outliving one session
//! gets the refreshed one.
//!
//! Each request must come from this daemon's UID (or root) where the OS
//! tells ([`platform::tcp_peer`]; otherwise 403) and carry the
//! endpoint's random token in `Authorization` (otherwise 401). The
//! [`Endpoint`] stops serving when dropped: the server drops it when the
//! client connection that asked for it closes.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use pctl_protocol::{ClientEnv, CredentialServer, ErrorKind};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use zeroize::Zeroizing;

use crate::broker::{Broker, Failure, Peer};
use crate::platform;

/// The path the endpoint answers on.
pub const PATH: &str = "/credentials";

/// Random bytes in a token (base64url: 43 characters).
const TOKEN_BYTES: usize = 32;

/// Connections served at once by one endpoint; more wait in the backlog.
const MAX_CONNECTIONS: usize = 64;

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// A running endpoint; dropping it stops the listener and every connection.
pub struct Endpoint {
    tasks: JoinSet<()>,
    pub addr: SocketAddr,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.tasks.abort_all();
        tracing::info!(addr = %self.addr, "credential endpoint closed");
    }
}

/// What one endpoint serves and to whom.
struct Shared {
    broker: Arc<Broker>,
    role: String,
    env: Option<ClientEnv>,
    token: Zeroizing<String>,
    my_uid: u32,
}

/// A fresh token from the OS random number generator.
fn new_token() -> Result<Zeroizing<String>, Failure> {
    let mut raw = Zeroizing::new([0u8; TOKEN_BYTES]);
    getrandom::fill(&mut raw[..]).map_err(|e| {
        Failure(
            ErrorKind::Unavailable,
            format!("cannot read the OS random number generator ({e}): retry"),
        )
    })?;
    Ok(Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw[..]),
    ))
}

/// Checks that `role` can be served now (unlocking with `env` if needed),
/// binds 127.0.0.1:`port` (0: any free port) and starts serving.
pub async fn start(
    broker: Arc<Broker>,
    role: String,
    port: Option<u16>,
    env: Option<ClientEnv>,
    owner: &Peer,
) -> Result<(CredentialServer, Endpoint), Failure> {
    // Fail before the client starts its command: unknown role, locked, op or STS trouble.
    let region = broker
        .credentials(&role, env.as_ref(), owner)
        .await?
        .region
        .clone();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port.unwrap_or(0)))
        .await
        .map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                ": choose another --port, or leave it out for a free one"
            } else {
                ""
            };
            Failure(
                ErrorKind::BadRequest,
                format!(
                    "cannot listen on 127.0.0.1:{} ({e}){hint}",
                    port.unwrap_or(0)
                ),
            )
        })?;
    let addr = listener.local_addr().map_err(|e| {
        Failure(
            ErrorKind::Unavailable,
            format!("cannot read the endpoint's address: {e}"),
        )
    })?;
    let token = new_token()?;
    let reply = CredentialServer {
        url: format!("http://{addr}{PATH}"),
        token: token.to_string(),
        region,
    };
    let shared = Arc::new(Shared {
        broker,
        role,
        env,
        token,
        my_uid: pctl_protocol::peer::euid(),
    });
    let mut tasks = JoinSet::new();
    tasks.spawn(accept_loop(listener, shared));
    tracing::info!(%addr, "credential endpoint listening");
    Ok((reply, Endpoint { tasks, addr }))
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Connections die with this task (and so with the endpoint).
    let mut conns = JoinSet::new();
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("credential endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while conns.try_join_next().is_some() {}
        let local = stream.local_addr().ok();
        let who = local.and_then(|l| platform::tcp_peer(l, peer));
        let shared = shared.clone();
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&shared, who, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
            drop(permit);
        });
    }
}

/// Whether a peer UID may use the endpoint: this daemon's user, or root
/// (who can read the token from the command's environment anyway).
/// Unknown is refused where the OS can tell.
fn uid_allowed(uid: Option<u32>, my_uid: u32, checkable: bool) -> bool {
    match uid {
        Some(u) => u == my_uid || u == 0,
        None => !checkable,
    }
}

/// Whether the `Authorization` value is the endpoint's token (constant time).
fn authorized(header: Option<&http::HeaderValue>, token: &str) -> bool {
    header.is_some_and(|h| bool::from(h.as_bytes().ct_eq(token.as_bytes())))
}

fn json_response(status: StatusCode, body: String) -> Response<String> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<String> {
    json_response(
        status,
        serde_json::json!({"code": code, "message": message}).to_string(),
    )
}

/// The requesting process, for the audit: its PID and executable found
/// from the socket's inode, on the blocking pool (a scan of `/proc`).
async fn requester(who: Option<(u32, u64)>) -> Peer {
    let Some((uid, inode)) = who else {
        return Peer::default();
    };
    let found = tokio::task::spawn_blocking(move || {
        let pid = platform::pid_of_socket(inode, uid)?;
        Some((pid, platform::exe_of(pid).map(|p| p.display().to_string())))
    })
    .await
    .ok()
    .flatten();
    Peer {
        pid: found.as_ref().map(|(pid, _)| *pid),
        uid: Some(uid),
        exe: found.and_then(|(_, exe)| exe),
    }
}

async fn answer(
    shared: &Shared,
    who: Option<(u32, u64)>,
    req: Request<Incoming>,
) -> Response<String> {
    let uid = who.map(|(uid, _)| uid);
    if !uid_allowed(uid, shared.my_uid, platform::TCP_PEER_UID_CHECKABLE) {
        tracing::warn!(
            "credential endpoint refused a request from uid {uid:?}: only uid {} may use it",
            shared.my_uid
        );
        return error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "this endpoint serves its owner's user only",
        );
    }
    if req.method() != Method::GET {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "use GET",
        );
    }
    if req.uri().path() != PATH {
        return error(StatusCode::NOT_FOUND, "NotFound", "no such path");
    }
    if !authorized(
        req.headers().get(http::header::AUTHORIZATION),
        &shared.token,
    ) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "missing or wrong Authorization: set AWS_CONTAINER_AUTHORIZATION_TOKEN to the token pctl printed",
        );
    }
    drop(req);
    let requester = requester(who).await;
    let limit = shared.broker.request_timeout();
    let got = tokio::time::timeout(
        limit,
        shared
            .broker
            .credentials(&shared.role, shared.env.as_ref(), &requester),
    )
    .await;
    match got {
        Ok(Ok(c)) => json_response(
            StatusCode::OK,
            serde_json::json!({
                "AccessKeyId": c.access_key_id,
                "SecretAccessKey": c.secret_access_key,
                "Token": c.session_token,
                "Expiration": c.expiration,
            })
            .to_string(),
        ),
        Ok(Err(Failure(kind, message))) => {
            let status = match kind {
                ErrorKind::Aws => StatusCode::BAD_GATEWAY,
                ErrorKind::Config | ErrorKind::BadRequest => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let code = serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            error(status, &code, &message)
        }
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the daemon did not get the session in time: retry",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_header_safe() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a.as_str(), b.as_str());
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn authorization_must_match_exactly() {
        let h = |s: &str| http::HeaderValue::from_str(s).unwrap();
        assert!(authorized(Some(&h("abc")), "abc"));
        assert!(!authorized(Some(&h("abd")), "abc"));
        assert!(!authorized(Some(&h("abc ")), "abc"));
        assert!(!authorized(Some(&h("Bearer abc")), "abc"));
        assert!(!authorized(Some(&h("")), "abc"));
        assert!(!authorized(None, "abc"));
    }

    #[test]
    fn only_the_owner_or_root_where_checkable() {
        assert!(uid_allowed(Some(1000), 1000, true));
        assert!(uid_allowed(Some(0), 1000, true));
        assert!(!uid_allowed(Some(1001), 1000, true));
        assert!(!uid_allowed(None, 1000, true));
        assert!(uid_allowed(None, 1000, false));
    }
}
