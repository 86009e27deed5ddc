//! Airlock's server: the npm registry mirror, the quarantine, and the commands of the
//! `airlock` binary. This crate owns all I/O (network, disk, clock); the checks live in
//! `airlock-scanner`, the configuration rules in `airlock-config`.

pub mod admin_users;
pub mod cli;
pub mod client_auth;
pub mod clock;
pub mod connections;
pub mod error;
pub mod feeds;
pub mod forge;
pub mod metrics;
pub mod mirror;
pub mod notifications;
pub mod npm;
pub mod packument;
pub mod publication;
pub mod quarantine;
pub mod registry_keys;
pub mod routes;
pub mod sessions;
pub mod signing;
pub mod singleflight;
pub mod store;
pub mod throttle;
pub mod upstream;

use std::future::Future;
use std::sync::Arc;

use airlock_config::Config;
use anyhow::Context as _;
use tokio::net::TcpListener;

pub use clock::{Clock, ManualClock, SystemClock};
pub use routes::{AppState, app};

/// Opens everything the server needs (the store, the blobs, the keys, the upstream
/// client) and starts the check pipeline, which resumes unfinished checks. Must run
/// inside a tokio runtime.
pub async fn open_state(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    let signer =
        Arc::new(signing::Signer::load_or_create(&config.signing.key_dir).context("loading the signing keys")?);
    let mirror = mirror::Mirror::open(config, clock, signer.registry_key_id().to_owned())
        .await
        .context("opening the data directory")?;
    let pipeline = quarantine::pipeline::Pipeline::start(mirror.clone(), signer)?;
    let client_rate_limiter = Arc::new(client_auth::RateLimiter::new(&mirror.config().clients));
    let state = AppState { mirror, pipeline, client_rate_limiter, credential_throttle: Arc::default() };
    // Deny rules added in the UI apply from the first request; a store that cannot
    // list them stops the start instead.
    routes::load_policy_rules(&state).await?;
    Ok(state)
}

/// Serves on an already-bound listener until `shutdown` completes, then lets in-flight
/// requests finish for at most the configured grace period.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let grace = state.mirror.config().server.shutdown_grace;
    let pipeline = state.pipeline.clone();
    let (stopping_sender, stopping) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down; finishing in-flight requests");
        // Receiver: the grace timer below. Dropped if the server ended first.
        let _ = stopping_sender.send(());
    };
    let server_config = &state.mirror.config().server;
    let limits = connections::ConnectionLimits {
        header_read_timeout: server_config.header_read_timeout,
        max_connections: server_config.max_connections,
    };
    let open_files = connections::raise_open_file_limit(limits.max_connections);
    tracing::debug!(open_files, "open-file limit");
    let server = connections::serve_connections(listener, app(state), limits, shutdown);
    let server = std::pin::pin!(async move {
        server.await;
        anyhow::Ok(())
    });
    let result = tokio::select! {
        result = server => result,
        () = async {
            if stopping.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!(grace_ms = grace.as_millis() as u64, "in-flight requests did not finish in time; exiting");
            Ok(())
        }
    };
    pipeline.shutdown(grace).await;
    result
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Sets up the global tracing subscriber: text or JSON lines on stderr.
pub fn init_logging(config: &airlock_config::LogConfig) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // No colour codes when stderr is a file or a pipe (journald, `2> log`).
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if config.json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
