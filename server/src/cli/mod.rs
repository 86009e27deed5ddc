//! The subcommands of the `airlock` binary. Each reads its own input and hands bytes to
//! the pure crates or runs the server.

pub mod admin;
pub mod lockfile;
pub mod migrate;
pub mod prefetch;
pub mod scan;
pub mod scan_provenance;
pub mod serve;
pub mod users;
pub mod verify;

use std::process::ExitCode;

use clap::Parser as _;

/// An HTTP client for talking to a running Airlock, sending `token` (a client or admin
/// token) as a bearer token on every request, marked sensitive so it is never logged.
pub(crate) fn airlock_client(token: Option<&str>, timeout: std::time::Duration) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(reqwest::Client::builder().timeout(timeout).default_headers(headers).build()?)
}

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
    Serve(serve::ServeArgs),
    /// Check a package tarball or directory offline.
    Scan(scan::ScanArgs),
    /// Review and decide quarantined versions (token from AIRLOCK_TOKEN).
    Admin(admin::AdminArgs),
    /// Verify a lockfile against Airlock's signed release records (for CI).
    Verify(verify::VerifyArgs),
    /// Send every package of a lockfile through Airlock ahead of time.
    Prefetch(prefetch::PrefetchArgs),
    /// Copy an embedded (sled) installation's metadata into an empty PostgreSQL database.
    Migrate(migrate::MigrateArgs),
    /// Internal modes the server starts itself.
    #[command(hide = true, subcommand)]
    Internal(InternalCommand),
}

#[derive(clap::Subcommand)]
enum InternalCommand {
    /// Check one version: limits set by the server, tarballs on stdin, report on stdout.
    CheckWorker,
}

/// Parses the arguments and runs the subcommand.
pub fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => {
            let config = match serve::load_config(&args) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("airlock: {error:#}");
                    return ExitCode::from(2);
                }
            };
            crate::init_logging(&config.log);
            // Blocking work is file reads, parsing and checks: a few dozen threads keep the
            // disk busy; hundreds would only multiply per-thread memory.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .max_blocking_threads(32)
                .build()
                .expect("tokio runtime");
            match runtime.block_on(serve::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!("{error:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Scan(args) => report("scan", scan::run(args)),
        Command::Admin(args) => report("admin", admin::run(args)),
        Command::Verify(args) => report("verify", verify::run(args)),
        Command::Prefetch(args) => report("prefetch", prefetch::run(args)),
        Command::Migrate(args) => report("migrate", migrate::run(args)),
        Command::Internal(InternalCommand::CheckWorker) => crate::quarantine::worker::run_check_worker(),
    }
}

/// Maps a subcommand's error to exit code 2 with its message.
fn report(command: &str, result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|error| {
        eprintln!("airlock {command}: {error:#}");
        ExitCode::from(2)
    })
}
