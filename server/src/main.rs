//! The `airlock` binary: parses arguments, sets up logging, runs a subcommand.

use std::process::ExitCode;

use airlock_server::cli;
use clap::Parser as _;

/// Airlock: an npm registry mirror that keeps new versions in quarantine until vetted.
#[derive(clap::Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Run the registry mirror.
    Serve(cli::serve::ServeArgs),
    /// Check a package tarball or directory offline.
    Scan(cli::scan::ScanArgs),
    /// Review and decide quarantined versions (token from AIRLOCK_TOKEN).
    Admin(cli::admin::AdminArgs),
    /// Verify a lockfile against Airlock's signed release records (for CI).
    Verify(cli::verify::VerifyArgs),
    /// Send every package of a lockfile through Airlock ahead of time.
    Prefetch(cli::prefetch::PrefetchArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => {
            let config = match cli::serve::load_config(&args) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("airlock: {error:#}");
                    return ExitCode::from(2);
                }
            };
            airlock_server::init_logging(&config.log);
            // Blocking work is file reads, parsing and checks: a few dozen threads keep the
            // disk busy; hundreds would only multiply per-thread memory.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .max_blocking_threads(32)
                .build()
                .expect("tokio runtime");
            match runtime.block_on(cli::serve::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!("{error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Scan(args) => report("scan", cli::scan::run(args)),
        Command::Admin(args) => report("admin", cli::admin::run(args)),
        Command::Verify(args) => report("verify", cli::verify::run(args)),
        Command::Prefetch(args) => report("prefetch", cli::prefetch::run(args)),
    }
}

/// Maps a subcommand's error to exit code 2 with its message.
fn report(command: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|error| {
        eprintln!("airlock {command}: {error:#}");
        ExitCode::from(2)
    })
}
