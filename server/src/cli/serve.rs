//! `airlock serve`: loads the configuration and runs the registry.

use std::sync::Arc;

use airlock_config::{Config, EnvVars, Overrides};
use anyhow::Context as _;

/// Arguments of `airlock serve`. Each flag overrides its environment variable, which
/// overrides the configuration file.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = EnvVars::CONFIG)]
    pub config: Option<std::path::PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:4873.
    #[arg(long)]
    pub listen: Option<String>,
    /// URL clients reach Airlock at.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Data directory.
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Upstream registry URL.
    #[arg(long)]
    pub upstream: Option<String>,
    /// Cooling period, e.g. 72h, 30m, 0s.
    #[arg(long)]
    pub cooling_period: Option<String>,
}

/// Reads the file (if any), the environment and the flags into a validated config.
pub fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let environment = Overrides::from_env(|key| std::env::var(key).ok());
    let flags = Overrides {
        listen: args.listen.clone(),
        public_url: args.public_url.clone(),
        data_dir: args.data_dir.clone(),
        upstream: args.upstream.clone(),
        cooling_period: args.cooling_period.clone(),
        ..Overrides::default()
    };
    let overrides = environment.then(flags);
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let overrides = overrides.resolve_scope_tokens(&text, |key| std::env::var(key).ok());
            Config::from_toml(&path.display().to_string(), &text, overrides)?
        }
        None => Config::from_raw(Default::default(), overrides)?,
    };
    Ok(config)
}

/// Runs the server until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    tracing::info!(
        listen = %config.server.listen,
        public_url = %config.server.public_url,
        upstream = %config.upstream.url,
        data_dir = %config.server.data_dir.display(),
        metadata = %metadata_description(&config.storage.metadata),
        cooling_period = %airlock_config::format_duration(config.quarantine.cooling_period),
        "airlock is serving"
    );
    let grace = config.server.shutdown_grace;
    let state = crate::open_state(config, Arc::new(crate::SystemClock)).await?;
    // An object store that does not answer at start is a configuration or network
    // problem the operator must see now, not in the first client's 503.
    if let Some(reason) = state.mirror.blob_store_problem().await {
        state.pipeline.shutdown(grace).await;
        anyhow::bail!("cannot start: {reason}");
    }
    crate::serve(listener, state, crate::shutdown_signal()).await
}

/// The metadata backend for the start-up line: the PostgreSQL URL without its password.
fn metadata_description(metadata: &airlock_config::MetadataStorage) -> String {
    match metadata {
        airlock_config::MetadataStorage::Sled => "sled".to_owned(),
        airlock_config::MetadataStorage::Postgres { url, pool_size } => {
            format!("postgres {} (pool of {pool_size})", url.redacted())
        }
    }
}
