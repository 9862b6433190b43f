//! The loopback credential endpoint behind `pctl exec --server` and
//! `pctl serve`: an HTTP server on 127.0.0.1 answering the AWS SDKs'
//! container credential provider (`AWS_CONTAINER_CREDENTIALS_FULL_URI` +
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN`) with the role's current session,
//! asked of the broker at every request, so a job outliving one session
//! gets the refreshed one.
//!
//! Each connection must come from this daemon's UID (or root) where the OS
//! tells: the peer is looked up at accept, before a connection slot is
//! taken or a byte is read ([`platform::tcp_peer_diag`], one sock_diag
//! query for the exact 4-tuple; [`platform::tcp_peer_scan`] on the
//! blocking pool only where sock_diag is missing). A stranger's connection
//! gets a fixed 403 if its socket buffer takes it and is closed at once;
//! refusals are logged one summary line per interval. Each request must
//! then carry the endpoint's random token in `Authorization` (otherwise
//! 401). The [`Endpoint`] stops serving when dropped: the server drops it
//! when the client connection that asked for it closes.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use pctl_protocol::{ClientEnv, CredentialServer, ErrorKind};
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use zeroize::Zeroizing;

use crate::broker::{Broker, Failure};
use crate::peer::Peer;
use crate::platform;

/// The path the endpoint answers on.
pub const PATH: &str = "/credentials";

/// Random bytes in a token (base64url: 43 characters).
const TOKEN_BYTES: usize = 32;

/// Connections of the owner served at once by one endpoint; more wait in
/// the backlog. A stranger's connection never takes one.
const MAX_CONNECTIONS: usize = 64;

/// How often refused connections are summarised in the log.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// What a refused peer reads (if its receive buffer takes it) before the
/// connection closes; its request is never read.
const REFUSAL: &[u8] = b"HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\n\
cache-control: no-store\r\nconnection: close\r\ncontent-length: 75\r\n\r\n\
{\"code\":\"Forbidden\",\"message\":\"this endpoint serves its owner's user only\"}";

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
    /// The client's `--duration` / `--region`, for every answer.
    overrides: crate::issue::Overrides,
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
    overrides: crate::issue::Overrides,
    owner: &Peer,
) -> Result<(CredentialServer, Endpoint), Failure> {
    // Fail before the client starts its command: unknown role, locked, op or STS trouble.
    // allowed_programs is checked at each request to the endpoint (its requester)
    let owner = Peer {
        serving: true,
        ..owner.clone()
    };
    let first = broker
        .credentials_with(&role, &overrides, env.as_ref(), &owner)
        .await?;
    let (region, note) = (first.region.clone(), first.note.clone());
    drop(first);
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
        note,
    };
    let shared = Arc::new(Shared {
        broker,
        role,
        overrides,
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
    let mut refusals = Refusals::new(shared.my_uid);
    // The first tick one interval from now (`interval` ticks at once).
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + REFUSAL_LOG_INTERVAL,
        REFUSAL_LOG_INTERVAL,
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = tick.tick() => {
                if let Some(line) = refusals.summary(Instant::now()) {
                    tracing::warn!("{line}");
                }
                continue;
            }
        };
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("credential endpoint: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while conns.try_join_next().is_some() {}
        let who = peer_owner(&stream, peer).await;
        let uid = who.map(|o| o.uid);
        if !uid_allowed(uid, shared.my_uid, platform::TCP_PEER_UID_CHECKABLE) {
            refuse(stream);
            if let Some(line) = refusals.refused(uid, Instant::now()) {
                tracing::warn!("{line}");
            }
            continue;
        }
        // Only the owner's connections wait for (and hold) a slot.
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
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

/// Who holds the other end of `stream`: the kernel's answer for exactly
/// this connection (a constant-time sock_diag lookup, done here: it never
/// waits), or, where that cannot be asked, a scan of the socket table on
/// the blocking pool so that the async thread (and the Unix-socket clients
/// it serves) never waits on it. `None`: unknown.
async fn peer_owner(stream: &TcpStream, peer: SocketAddr) -> Option<platform::TcpOwner> {
    let local = stream.local_addr().ok()?;
    match platform::tcp_peer_diag(local, peer) {
        Ok(found) => found,
        Err(e) => {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                tracing::warn!(
                    "credential endpoint: sock_diag is unavailable ({e}); finding peers in /proc/net/tcp instead (slower)"
                )
            });
            tokio::task::spawn_blocking(move || platform::tcp_peer_scan(local, peer))
                .await
                .ok()
                .flatten()
        }
    }
}

/// Closes a refused connection at once: a fixed 403 if the socket's send
/// buffer takes it without waiting, and nothing of the request read.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(REFUSAL);
    drop(stream);
}

/// The refusal log: the first refusal after a quiet interval is logged at
/// once, the rest are counted and summarised in one line per interval, so
/// a stranger's flood costs the log two lines a minute.
struct Refusals {
    my_uid: u32,
    /// Refusals since the last line, and the UIDs they came from (a few).
    count: u64,
    uids: BTreeSet<Option<u32>>,
    others: bool,
    /// When the current interval began; `None` while quiet.
    since: Option<Instant>,
}

/// UIDs named in one summary line at most.
const REFUSAL_UIDS_SHOWN: usize = 8;

impl Refusals {
    fn new(my_uid: u32) -> Self {
        Refusals {
            my_uid,
            count: 0,
            uids: BTreeSet::new(),
            others: false,
            since: None,
        }
    }

    /// Notes one refusal; the line to log now, if any.
    fn refused(&mut self, uid: Option<u32>, now: Instant) -> Option<String> {
        if self.since.is_none() {
            self.since = Some(now);
            return Some(format!(
                "credential endpoint refused a connection from {}: only uid {} may use it \
                 (further refusals are summarised every {}s)",
                uid_text(uid),
                self.my_uid,
                REFUSAL_LOG_INTERVAL.as_secs()
            ));
        }
        self.count += 1;
        if self.uids.len() < REFUSAL_UIDS_SHOWN || self.uids.contains(&uid) {
            self.uids.insert(uid);
        } else {
            self.others = true;
        }
        None
    }

    /// At the end of an interval: the summary line, if there was anything
    /// since the last line. An interval with nothing ends the period, so
    /// the next refusal is logged at once again.
    fn summary(&mut self, now: Instant) -> Option<String> {
        let since = self.since?;
        if self.count == 0 {
            self.since = None;
            return None;
        }
        let who: Vec<String> = self.uids.iter().map(|u| uid_text(*u)).collect();
        let mut who = who.join(", ");
        if self.others {
            who.push_str(" and others");
        }
        let line = format!(
            "credential endpoint refused {} more connection{} in the last {}s (from {})",
            self.count,
            if self.count == 1 { "" } else { "s" },
            now.saturating_duration_since(since).as_secs(),
            who
        );
        self.count = 0;
        self.uids.clear();
        self.others = false;
        self.since = Some(now);
        Some(line)
    }
}

fn uid_text(uid: Option<u32>) -> String {
    match uid {
        Some(u) => format!("uid {u}"),
        None => "an unknown peer (closed, or not found in the socket table)".into(),
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
async fn requester(who: Option<platform::TcpOwner>) -> Peer {
    // the requester is the program itself, with no terminal to ask on
    let direct = Peer {
        direct: true,
        caller: Some(pctl_protocol::Caller::default()),
        ..Peer::default()
    };
    let Some(platform::TcpOwner { uid, inode }) = who else {
        return direct;
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
        ..direct
    }
}

async fn answer(
    shared: &Shared,
    who: Option<platform::TcpOwner>,
    req: Request<Incoming>,
) -> Response<String> {
    // The peer's UID was checked at accept (accept_loop).
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
        shared.broker.credentials_signing_in(
            &shared.role,
            &shared.overrides,
            shared.env.as_ref(),
            &requester,
        ),
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
                // denied or cancelled by the user, a program not allowed
                ErrorKind::Refused => StatusCode::FORBIDDEN,
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
    fn the_refusal_is_a_complete_http_response() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"));
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.len());
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["code"], "Forbidden");
    }

    /// Issue 15 item 4: a flood of refusals costs the log one line at once
    /// and one summary line per interval, with the count.
    #[test]
    fn refusals_are_logged_once_then_summarised_per_interval() {
        let t0 = Instant::now();
        let mut r = Refusals::new(1000);
        let first = r.refused(Some(1001), t0).unwrap();
        assert!(
            first.contains("uid 1001") && first.contains("only uid 1000"),
            "{first}"
        );
        let mut lines = r.refused(None, t0).is_some() as u32;
        for i in 0..10_000u32 {
            lines += r.refused(Some(2000 + i % 20), t0).is_some() as u32;
        }
        assert_eq!(lines, 0);
        let sum = r.summary(t0 + REFUSAL_LOG_INTERVAL).unwrap();
        assert!(
            sum.contains("refused 10001 more connections in the last 60s"),
            "{sum}"
        );
        assert!(
            sum.contains("an unknown peer") && sum.contains("uid 2000"),
            "{sum}"
        );
        assert!(sum.matches("uid ").count() < REFUSAL_UIDS_SHOWN, "{sum}");
        assert!(sum.ends_with("and others)"), "{sum}");
        // a quiet interval: no line, and the period ends
        assert_eq!(r.summary(t0 + 2 * REFUSAL_LOG_INTERVAL), None);
        assert_eq!(r.summary(t0 + 3 * REFUSAL_LOG_INTERVAL), None);
        // so the next refusal is logged at once again
        assert!(r
            .refused(Some(1001), t0 + 4 * REFUSAL_LOG_INTERVAL)
            .is_some());
        assert!(r
            .refused(Some(1001), t0 + 4 * REFUSAL_LOG_INTERVAL)
            .is_none());
        let one = r.summary(t0 + 5 * REFUSAL_LOG_INTERVAL).unwrap();
        assert!(one.contains("refused 1 more connection in"), "{one}");
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
