//! `pctl-daemon`: the broker process. Clients (`pctl ...`) start it on
//! demand; run it yourself only to watch its log (`pctl daemon` does that).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Every heap block is wiped before it is freed (see `pctl_broker::secret`).
#[global_allocator]
static ALLOC: pctl_broker::secret::ZeroizingAllocator = pctl_broker::secret::ZeroizingAllocator;

/// The pctl credential broker daemon (normally started by `pctl`).
#[derive(Parser, Debug)]
#[command(name = "pctl-daemon", version)]
struct Args {
    /// Log to this file (0600, rotated at 10 MiB to FILE.1) instead of stderr.
    #[arg(long)]
    log_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = init_logging(args.log_file.as_deref()) {
        eprintln!("pctl-daemon: {e}");
        return ExitCode::FAILURE;
    }
    match pctl_broker::daemon::run(pctl_broker::daemon::DaemonOptions::default()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("pctl-daemon: {e}");
            ExitCode::FAILURE
        }
    }
}

/// PCTL_LOG sets the level of pctl's own messages only; dependencies stay at
/// `warn` so no HTTP wire trace (which could carry a session token) is ever
/// written.
fn init_logging(file: Option<&std::path::Path>) -> std::io::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = pctl_broker::logfile::filter(&std::env::var("PCTL_LOG").unwrap_or_default());
    let fmt = tracing_subscriber::fmt::layer();
    match file {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                pctl_broker::dirs::create_private_dir(dir)?;
            }
            // Size-capped, one old file (logfile.rs): no peer can fill the disk.
            let f = pctl_broker::logfile::RotatingFile::open(path, pctl_broker::logfile::MAX_BYTES)
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot open the log file {}: {e}", path.display()),
                    )
                })?;
            tracing_subscriber::registry()
                .with(filter)
                .with(fmt.with_ansi(false).with_writer(std::sync::Mutex::new(f)))
                .init();
        }
        None => tracing_subscriber::registry()
            .with(filter)
            .with(fmt.with_writer(std::io::stderr))
            .init(),
    }
    Ok(())
}
