//! Runs the broker: hardening, socket, timers, signals, shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::broker::{Broker, LockReason};
use crate::server::{self, ServeError};
use crate::{dirs, platform};

/// Where the daemon listens and what it reads.
pub struct DaemonOptions {
    pub socket: PathBuf,
    pub config: PathBuf,
    pub audit_log: Option<PathBuf>,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            socket: dirs::socket_path(),
            config: dirs::config_path(),
            audit_log: Some(dirs::audit_log_path()),
        }
    }
}

/// Takes the socket lock, waiting briefly for a daemon that is shutting
/// down (a client replacing a stale daemon starts the new one right away).
fn lock_with_patience(socket: &std::path::Path) -> Result<server::SocketLock, ServeError> {
    let mut tries = 0;
    loop {
        match server::lock_socket(socket) {
            Err(ServeError::AlreadyRunning(_)) if tries < 60 && !answers(socket) => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

fn answers(socket: &std::path::Path) -> bool {
    std::os::unix::net::UnixStream::connect(socket).is_ok()
}

/// Runs the daemon in the foreground until SIGTERM, SIGINT or `pctl stop`.
pub fn run(opts: DaemonOptions) -> Result<(), ServeError> {
    platform::harden_process()
        .map_err(|e| ServeError::Io("cannot disable core dumps".into(), e))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    dirs::prepare_socket_dir(&opts.socket)?;
    let _lock = lock_with_patience(&opts.socket)?;
    if let Some(d) = opts.audit_log.as_deref().and_then(std::path::Path::parent) {
        if let Err(e) = dirs::create_private_dir(d) {
            tracing::warn!("cannot create {}: {e}", d.display());
        }
    }
    // One thread: every request is a short state lookup or waits on I/O
    // (op, STS), and a single thread answers a cached token with no
    // cross-thread wake-up.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::Io("cannot start the async runtime".into(), e))?;
    rt.block_on(async {
        let listener = server::bind(&opts.socket)?;
        tracing::info!(socket = %opts.socket.display(), pid = std::process::id(), version = pctl_protocol::VERSION, "pctl daemon listening");
        let broker = Arc::new(Broker::new(opts.config.clone(), opts.audit_log.clone()));
        if let Err(e) = broker.config() {
            tracing::warn!("starting with a config problem (requests will report it): {e}");
        }
        let shutdown = Arc::new(Notify::new());
        let timer = {
            let broker = broker.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    broker.enforce_limits();
                }
            })
        };
        {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                    return;
                };
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = int.recv() => tracing::info!("SIGINT: shutting down"),
                }
                shutdown.notify_one();
            });
        }
        server::serve(broker.clone(), listener, shutdown).await;
        timer.abort();
        broker.lock(LockReason::Manual);
        let _ = std::fs::remove_file(&opts.socket);
        tracing::info!("pctl daemon stopped");
        Ok(())
    })
}
