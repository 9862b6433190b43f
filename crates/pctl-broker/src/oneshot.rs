//! The one-shot loopback link `pctl login` hands the browser instead of the
//! console sign-in URL.
//!
//! The sign-in URL carries `SigninToken`, a bearer credential for the
//! console. An opener's argv (`xdg-open URL`, `firefox URL`) is readable by
//! every local user in `/proc/PID/cmdline`, for as long as the process
//! runs, and a browser started that way runs for hours. So the URL never
//! leaves the daemon except to the browser: the daemon listens on a fresh
//! 127.0.0.1 port and answers `GET /login/<random>` once with `303 See
//! Other` to the sign-in URL; the client only ever sees (and the opener's
//! argv only ever holds) the loopback link, which is worthless to anyone
//! else:
//!
//! - the path is 32 random bytes (base64url) from the OS generator;
//! - each connection's peer must be this daemon's user (or root), asked of
//!   the kernel for exactly this connection ([`platform::tcp_peer_diag`];
//!   [`platform::tcp_peer_scan`] on the blocking pool where sock_diag cannot
//!   be asked) before anything is read; another user's connection is closed
//!   unanswered and uses nothing up. Where the OS cannot tell (macOS) the random path and
//!   the one use are the protection (SECURITY.md);
//! - the first redirect stops the listener (a second fetch: connection
//!   refused), and so does [`LIFE`] without one; the URL is wiped then.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use pctl_protocol::ErrorKind;
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use zeroize::Zeroizing;

use crate::failure::Failure;
use crate::platform;

/// How long a link waits for its one use.
pub const LIFE: Duration = Duration::from_secs(60);

/// Random bytes in the path (base64url: 43 characters).
const PATH_BYTES: usize = 32;

/// How long a browser may take to send its request headers, and how long
/// an answer already under way may take once the link is used or expired.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections looked at once; more are closed (the owner's browser makes one).
const MAX_CONNECTIONS: usize = 16;

struct Shared {
    path: Zeroizing<String>,
    /// The sign-in URL until its one use.
    target: Mutex<Option<Zeroizing<String>>>,
    used: Notify,
    my_uid: u32,
    refused: AtomicU64,
}

/// Serves `target` once, for at most `life`; the loopback URL to hand the
/// browser.
pub async fn start(target: Zeroizing<String>, life: Duration) -> Result<String, Failure> {
    let unavailable = |what: &str, e: std::io::Error| {
        Failure(
            ErrorKind::Unavailable,
            format!(
                "cannot {what} for the sign-in link ({e}): retry, or use `pctl login --stdout`"
            ),
        )
    };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| unavailable("listen on 127.0.0.1", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| unavailable("read the address", e))?;
    let mut raw = Zeroizing::new([0u8; PATH_BYTES]);
    getrandom::fill(&mut raw[..]).map_err(|e| {
        Failure(
            ErrorKind::Unavailable,
            format!("cannot read the OS random number generator ({e}): retry"),
        )
    })?;
    let path = Zeroizing::new(format!(
        "/login/{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw[..])
    ));
    let url = format!("http://{addr}{}", path.as_str());
    let shared = Arc::new(Shared {
        path,
        target: Mutex::new(Some(target)),
        used: Notify::new(),
        my_uid: pctl_protocol::peer::euid(),
        refused: AtomicU64::new(0),
    });
    tokio::spawn(serve(listener, addr, shared, life));
    Ok(url)
}

async fn serve(listener: TcpListener, addr: SocketAddr, shared: Arc<Shared>, life: Duration) {
    let expiry = tokio::time::sleep(life);
    tokio::pin!(expiry);
    let mut conns = JoinSet::new();
    let used = loop {
        tokio::select! {
            _ = &mut expiry => break false,
            _ = shared.used.notified() => break true,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                while conns.try_join_next().is_some() {}
                if conns.len() >= MAX_CONNECTIONS {
                    continue;
                }
                conns.spawn(connection(stream, peer, shared.clone()));
            }
        }
    };
    // No new connection from here; one already answering may finish.
    drop(listener);
    let _ = tokio::time::timeout(HEADER_TIMEOUT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
    shared
        .target
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let refused = shared.refused.load(Ordering::Relaxed);
    if refused > 0 {
        tracing::warn!(%addr, "sign-in link: refused {refused} connection(s) from other users");
    }
    if used {
        tracing::info!(%addr, "sign-in link used, closed");
    } else {
        tracing::info!(%addr, "sign-in link expired unused, closed");
    }
}

/// Whether the peer may use the link: this daemon's user or root. Unknown
/// (no live socket: the platform module never reads a closed socket's row
/// as root; inode 0 is refused here too) is refused where the OS can tell.
fn peer_allowed(who: Option<platform::TcpOwner>, my_uid: u32, checkable: bool) -> bool {
    match who {
        Some(o) if o.inode != 0 => o.uid == my_uid || o.uid == 0,
        _ => !checkable,
    }
}

/// Who holds the other end of `stream` (`None`: unknown): the kernel's
/// answer for exactly this connection, else a scan of the socket table off
/// the async threads.
async fn peer_owner(stream: &TcpStream, peer: SocketAddr) -> Option<platform::TcpOwner> {
    let local = stream.local_addr().ok()?;
    match platform::tcp_peer_diag(local, peer) {
        Ok(found) => found,
        Err(_) => tokio::task::spawn_blocking(move || platform::tcp_peer_scan(local, peer))
            .await
            .ok()
            .flatten(),
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let who = peer_owner(&stream, peer).await;
    if !peer_allowed(who, shared.my_uid, platform::TCP_PEER_UID_CHECKABLE) {
        shared.refused.fetch_add(1, Ordering::Relaxed);
        return; // closed unanswered, nothing read
    }
    let svc = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, std::convert::Infallible>(answer(&shared, &req)) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), svc)
        .await;
}

fn text(status: StatusCode, body: &str) -> Response<String> {
    let mut r = Response::new(format!("{body}\n"));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

fn answer(shared: &Shared, req: &Request<Incoming>) -> Response<String> {
    let path_ok = bool::from(req.uri().path().as_bytes().ct_eq(shared.path.as_bytes()));
    if !path_ok {
        return text(StatusCode::NOT_FOUND, "not found");
    }
    // Only a GET uses the link (a HEAD or a probe does not).
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only");
    }
    let Some(target) = shared
        .target
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    else {
        return text(
            StatusCode::GONE,
            "this sign-in link was used already: run `pctl login` again",
        );
    };
    shared.used.notify_one();
    let Ok(location) = http::HeaderValue::from_str(target.as_str()) else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the sign-in URL is not a valid header value: run `pctl login --stdout`",
        );
    };
    let mut r = text(StatusCode::SEE_OTHER, "");
    r.headers_mut().insert(http::header::LOCATION, location);
    r.headers_mut().insert(
        http::header::REFERRER_POLICY,
        http::HeaderValue::from_static("no-referrer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(url: &str, method: &str) -> Option<String> {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut s = TcpStream::connect(host).await.ok()?;
        s.write_all(format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        Some(out)
    }

    fn location(answer: &str) -> Option<&str> {
        answer
            .lines()
            .find_map(|l| l.strip_prefix("location: "))
            .map(str::trim)
    }

    #[tokio::test]
    async fn redirects_once_then_refuses_connections() {
        let target = "https://signin.example/federation?Action=login&SigninToken=t0k";
        let url = start(Zeroizing::new(target.into()), LIFE).await.unwrap();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        assert!(!url.contains("t0k"));
        // a wrong path and a HEAD use nothing up
        let wrong = format!("{}x", url);
        assert!(get(&wrong, "GET")
            .await
            .unwrap()
            .starts_with("HTTP/1.1 404"));
        assert!(get(&url, "HEAD").await.unwrap().starts_with("HTTP/1.1 405"));
        let first = get(&url, "GET").await.unwrap();
        assert!(first.starts_with("HTTP/1.1 303"), "{first}");
        assert_eq!(location(&first), Some(target));
        // used: the listener is gone
        let mut second = None;
        for _ in 0..100 {
            second = get(&url, "GET").await;
            if second.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(second, None, "a second fetch must find nothing listening");
    }

    #[tokio::test(start_paused = true)]
    async fn expires_unused() {
        let url = start(Zeroizing::new("https://x/".into()), LIFE)
            .await
            .unwrap();
        tokio::time::sleep(LIFE + HEADER_TIMEOUT + Duration::from_secs(1)).await;
        // let the serving task see its timers before connecting for real
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        tokio::time::resume();
        let mut answer = Some(String::new());
        for _ in 0..100 {
            answer = get(&url, "GET").await;
            if answer.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(answer, None, "an expired link must find nothing listening");
    }

    #[test]
    fn peers_allowed() {
        let o = |uid, inode| Some(platform::TcpOwner { uid, inode });
        assert!(peer_allowed(o(1000, 7), 1000, true));
        assert!(peer_allowed(o(0, 7), 1000, true));
        assert!(!peer_allowed(o(1001, 7), 1000, true));
        // a closed socket's row reads as root with inode 0: unknown
        assert!(!peer_allowed(o(0, 0), 1000, true));
        assert!(!peer_allowed(None, 1000, true));
        assert!(peer_allowed(None, 1000, false));
    }
}
