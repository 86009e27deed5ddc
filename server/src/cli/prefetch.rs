//! `airlock prefetch LOCKFILE`: sends every locked package through a running Airlock
//! ahead of time (downloaded, verified, checked, decided), with a progress bar, and
//! ends with what was released and what is held and why. A team adopting Airlock runs
//! it once so its first CI run is not slow.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use futures_util::StreamExt as _;

use super::lockfile::{LockedPackage, read_lockfile};

/// Arguments of `airlock prefetch`.
#[derive(Debug, clap::Args)]
pub struct PrefetchArgs {
    /// The lockfile: package-lock.json, npm-shrinkwrap.json or yarn.lock.
    pub lockfile: PathBuf,
    /// Airlock's URL. A client token, when required, comes from AIRLOCK_TOKEN.
    #[arg(long, env = "AIRLOCK_REGISTRY", default_value = "http://127.0.0.1:4873")]
    pub registry: String,
    /// Downloads at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

/// What happened to one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Installable now.
    Released,
    /// Refused, with Airlock's reason.
    Refused(String),
    /// Could not be fetched.
    Failed(String),
}

/// Runs the command.
pub fn run(args: PrefetchArgs) -> anyhow::Result<ExitCode> {
    let packages: Vec<LockedPackage> = read_lockfile(&args.lockfile)?
        .into_iter()
        .filter(|package| !package.version.is_empty() && package.is_from_registry())
        .collect();
    let token = std::env::var(airlock_config::EnvVars::TOKEN).ok().filter(|token| !token.is_empty());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let progress = indicatif::ProgressBar::new(packages.len() as u64);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let results = runtime.block_on(prefetch(&args.registry, token, packages, args.concurrency, |name| {
        progress.set_message(name.to_owned());
        progress.inc(1);
    }))?;
    progress.finish_and_clear();

    let mut stdout = std::io::stdout().lock();
    let released = results.iter().filter(|(_, outcome)| *outcome == Outcome::Released).count();
    writeln!(stdout, "{released} of {} packages released and cached", results.len())?;
    let mut problems: Vec<&(LockedPackage, Outcome)> =
        results.iter().filter(|(_, outcome)| *outcome != Outcome::Released).collect();
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    problems.sort_by(|left, right| (&left.0.name, &left.0.version).cmp(&(&right.0.name, &right.0.version)));
    writeln!(stdout, "{:<40} {:<16} {:<8} WHY", "PACKAGE", "VERSION", "STATE")?;
    for (package, outcome) in problems {
        let (state, why) = match outcome {
            Outcome::Refused(why) => ("held", why.as_str()),
            Outcome::Failed(why) => ("error", why.as_str()),
            Outcome::Released => continue,
        };
        writeln!(stdout, "{:<40} {:<16} {:<8} {why}", package.name, package.version, state)?;
    }
    Ok(ExitCode::FAILURE)
}

/// Fetches every package's tarball through Airlock; `on_done` is called with each name.
pub async fn prefetch(
    registry: &str,
    token: Option<String>,
    packages: Vec<LockedPackage>,
    concurrency: usize,
    on_done: impl Fn(&str),
) -> anyhow::Result<Vec<(LockedPackage, Outcome)>> {
    let registry = registry.trim_end_matches('/').to_owned();
    // Checks of large packages can take a while inside the request.
    let client = super::airlock_client(token.as_deref(), std::time::Duration::from_secs(600))?;
    let mut results = Vec::new();
    let mut stream = futures_util::stream::iter(packages)
        .map(|package| {
            let client = client.clone();
            let registry = registry.clone();
            async move {
                let outcome = fetch_one(&client, &registry, &package).await;
                (package, outcome)
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some((package, outcome)) = stream.next().await {
        on_done(&package.name);
        results.push((package, outcome));
    }
    Ok(results)
}

async fn fetch_one(client: &reqwest::Client, registry: &str, package: &LockedPackage) -> Outcome {
    let bare = package.name.rsplit('/').next().unwrap_or(&package.name);
    // The lockfile's own file name when it has one (it may differ from the convention).
    let file_name = package
        .resolved
        .as_deref()
        .and_then(|resolved| resolved.split(['#', '?']).next())
        .and_then(|resolved| resolved.rsplit('/').next())
        .filter(|file| file.ends_with(".tgz"))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{bare}-{}.tgz", package.version));
    let url = format!("{registry}/{}/-/{file_name}", package.name);
    let response = match client.get(&url).send().await {
        Ok(response) => response,
        Err(error) => return Outcome::Failed(error.without_url().to_string()),
    };
    let status = response.status();
    if status.is_success() {
        // Drain the body so the connection is reused; the bytes are not needed here.
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            if let Err(error) = chunk {
                return Outcome::Failed(error.without_url().to_string());
            }
        }
        return Outcome::Released;
    }
    let body = response.bytes().await.unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|json| json["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("HTTP {status}"));
    if status == reqwest::StatusCode::FORBIDDEN { Outcome::Refused(message) } else { Outcome::Failed(message) }
}
