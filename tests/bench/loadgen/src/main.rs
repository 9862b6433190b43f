//! `pctl-loadgen`: drives a running pctl daemon the way many kubectl
//! processes do — each request on a fresh connection (verified like the
//! real client: socket directory, socket file, peer UID), `eks_token` for a
//! configured cluster — and reports throughput and latency percentiles per
//! concurrency level, one JSON object per line. Like `pctl`, each client
//! shuts its sending side once the request is sent, so the daemon closes
//! right after its answer (`--keep-open`: the client's end stays open until
//! it has read the answer, as clients before that did).
//!
//! ```text
//! pctl-loadgen --cluster platform --concurrency 1,16,128,1024 --requests 50000
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use pctl_protocol::{dirs, Connection, Envelope, Reply, Request, Response, VERSION};

#[derive(Parser, Debug)]
#[command(name = "pctl-loadgen")]
struct Args {
    /// Daemon socket (default: where `pctl` looks).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Cluster key to ask tokens for (warm it first with `pctl eks token`).
    #[arg(long)]
    cluster: String,
    /// Concurrent clients, one level after another.
    #[arg(long, value_delimiter = ',', default_value = "1,16,128,1024")]
    concurrency: Vec<usize>,
    /// Requests per level.
    #[arg(long, default_value_t = 50_000)]
    requests: u64,
    /// Send this process's PATH, HOME and OP_* variables with every request
    /// (the 1Password environment): a cold daemon unlocks with them, and a
    /// daemon older than the optional `env` (such as the one at 34233f7, for
    /// the side-by-side run of tests/bench/load-vs-base.sh) requires it.
    #[arg(long)]
    with_env: bool,
    /// Keep the sending side open until the answer is read (the daemon then
    /// reads again after its answer and closes on the client's close).
    #[arg(long)]
    keep_open: bool,
}

/// PATH, HOME and OP_* of this process, as the client forwards them.
fn client_env() -> pctl_protocol::ClientEnv {
    pctl_protocol::ClientEnv(
        std::env::vars()
            .filter(|(k, _)| k == "PATH" || k == "HOME" || k.starts_with("OP_"))
            .collect(),
    )
}

/// What one level measured.
struct Level {
    concurrency: usize,
    elapsed: Duration,
    latencies_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

fn one_request(socket: &std::path::Path, req: &Envelope, keep_open: bool) -> Result<(), String> {
    let mut conn = Connection::connect(socket).map_err(|e| e.to_string())?;
    conn.send(req).map_err(|e| format!("send: {e}"))?;
    if !keep_open {
        conn.get_ref()
            .shutdown(std::net::Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))?;
    }
    match conn.recv::<Response>().map_err(|e| format!("recv: {e}"))? {
        Response::Ok(Reply::EksToken(_)) => Ok(()),
        Response::Ok(other) => Err(format!("unexpected answer {other:?}")),
        Response::Error(e) => Err(format!("{:?}: {}", e.kind, e.message)),
    }
}

fn run_level(
    socket: &std::path::Path,
    cluster: &str,
    env: Option<&pctl_protocol::ClientEnv>,
    keep_open: bool,
    concurrency: usize,
    requests: u64,
) -> Level {
    let req = Arc::new(Envelope {
        version: VERSION.into(),
        request: Request::EksToken {
            cluster: cluster.into(),
            role: None,
            env: env.cloned(),
            get_token: None,
        },
        setup: None,
        caller: None,
    });
    let tickets = Arc::new(AtomicU64::new(requests));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let start = Arc::new(Barrier::new(concurrency + 1));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (req, tickets, errors, first_error, start) = (
                req.clone(),
                tickets.clone(),
                errors.clone(),
                first_error.clone(),
                start.clone(),
            );
            let socket = socket.to_path_buf();
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut lat = Vec::with_capacity((requests / concurrency as u64 + 1) as usize);
                    start.wait();
                    while tickets
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        let t0 = Instant::now();
                        match one_request(&socket, &req, keep_open) {
                            Ok(()) => lat.push(t0.elapsed().as_nanos() as u64),
                            Err(e) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                first_error.lock().unwrap().get_or_insert(e);
                            }
                        }
                    }
                    lat
                })
                .expect("cannot start a client thread")
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    let mut latencies_ns: Vec<u64> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("client thread panicked"))
        .collect();
    let elapsed = t0.elapsed();
    latencies_ns.sort_unstable();
    let first_error = first_error.lock().unwrap().take();
    Level {
        concurrency,
        elapsed,
        latencies_ns,
        errors: errors.load(Ordering::Relaxed),
        first_error,
    }
}

fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Each client holds one socket; 1024 of them need more than the usual
/// soft limit of 1024 open files.
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

fn main() {
    let args = Args::parse();
    raise_nofile();
    let socket = args.socket.unwrap_or_else(dirs::socket_path);
    let env = args.with_env.then(client_env);
    let mut failed = false;
    for &c in &args.concurrency {
        let l = run_level(
            &socket,
            &args.cluster,
            env.as_ref(),
            args.keep_open,
            c.max(1),
            args.requests,
        );
        let ok = l.latencies_ns.len() as f64;
        let line = serde_json::json!({
            "concurrency": l.concurrency,
            "requests": args.requests,
            "errors": l.errors,
            "first_error": l.first_error,
            "seconds": l.elapsed.as_secs_f64(),
            "rps": ok / l.elapsed.as_secs_f64(),
            "keep_open": args.keep_open,
            "p50_us": percentile_us(&l.latencies_ns, 50.0),
            "p99_us": percentile_us(&l.latencies_ns, 99.0),
            "p999_us": percentile_us(&l.latencies_ns, 99.9),
            "max_us": percentile_us(&l.latencies_ns, 100.0),
        });
        println!("{line}");
        failed |= l.errors > 0;
    }
    if failed {
        std::process::exit(1);
    }
}
