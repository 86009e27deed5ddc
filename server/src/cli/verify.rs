//! `airlock verify LOCKFILE`: proves, for CI, that every package a lockfile installs
//! was released by Airlock. For each locked package it fetches Airlock's signed release
//! record, verifies it offline against the pinned Ed25519 key, and checks that the
//! integrity in the lockfile is the one Airlock signed.
//!
//! Reads every lockfile [`super::lockfile`] knows: npm's, yarn classic's and berry's,
//! pnpm's and bun's text lockfile. Yarn berry pins yarn's own cache archive rather than
//! the npm tarball, so for it the check is that Airlock released each `name@version`
//! (the bytes are Airlock's to serve only once released). Exit 0 only when every
//! package passes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use futures_util::StreamExt as _;

pub use super::lockfile::{LockedIntegrity, LockedPackage, parse_lockfile, read_lockfile};
use crate::signing;

/// Arguments of `airlock verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The lockfile: package-lock.json, npm-shrinkwrap.json, yarn.lock (classic or
    /// berry), pnpm-lock.yaml or bun.lock.
    pub lockfile: PathBuf,
    /// Airlock's URL.
    #[arg(long, env = "AIRLOCK_REGISTRY", default_value = "http://127.0.0.1:4873")]
    pub registry: String,
    /// The pinned release-record key: a file holding `GET /-/airlock/keys`'s JSON, or
    /// the base64 Ed25519 public key. Without it the key is fetched from the registry
    /// (trust on first use; pin it in CI).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Downloads at once. A client token, when the registry requires one, comes from
    /// AIRLOCK_TOKEN.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

/// Runs the command.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let packages = read_lockfile(&args.lockfile)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(verify_all(&args, packages))
}

/// The result of verifying a lockfile.
#[derive(Debug)]
pub struct VerifyOutcome {
    /// How many packages were checked.
    pub total: usize,
    /// The ones that failed, with the reason, sorted by name.
    pub failures: Vec<(LockedPackage, String)>,
    /// The id of the key the records were verified with.
    pub key_id: String,
}

async fn verify_all(args: &VerifyArgs, packages: Vec<LockedPackage>) -> anyhow::Result<ExitCode> {
    let pinned_key = args.key.as_deref().map(read_key_file).transpose()?;
    if pinned_key.is_none() {
        writeln!(std::io::stderr(), "warning: trusting the release key the registry serves; pin it with --key in CI")?;
    }
    let token = std::env::var(airlock_config::EnvVars::TOKEN).ok().filter(|token| !token.is_empty());
    // What the lockfile cannot pin is said, not passed over: yarn berry's checksum.
    let not_comparable = packages.iter().find_map(|package| match package.integrity {
        LockedIntegrity::NotComparable(why) => Some(why),
        _ => None,
    });
    let outcome = verify_packages(&args.registry, pinned_key, token, packages, args.concurrency).await?;
    let mut stdout = std::io::stdout().lock();
    let (total, key_id) = (outcome.total, &outcome.key_id);
    if outcome.failures.is_empty() {
        match not_comparable {
            None => writeln!(
                stdout,
                "{total} packages verified: every one has a release record signed by Airlock ({key_id}) for the locked integrity"
            )?,
            Some(why) => writeln!(
                stdout,
                "{total} packages verified: every one has a release record signed by Airlock ({key_id}); the lockfile's bytes were not compared ({why})"
            )?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(stdout, "{} of {total} packages failed verification against Airlock ({key_id}):", outcome.failures.len())?;
    writeln!(stdout, "{:<50} {:<20} REASON", "PACKAGE", "VERSION")?;
    for (package, reason) in &outcome.failures {
        writeln!(stdout, "{:<50} {:<20} {reason}", package.name, package.version)?;
    }
    Ok(ExitCode::FAILURE)
}

/// Verifies every package against the registry's release records, with `public_key`
/// (or, when `None`, the key the registry serves), sending `token` when given.
pub async fn verify_packages(
    registry: &str,
    public_key: Option<[u8; 32]>,
    token: Option<String>,
    packages: Vec<LockedPackage>,
    concurrency: usize,
) -> anyhow::Result<VerifyOutcome> {
    let registry = registry.trim_end_matches('/').to_owned();
    let client = super::airlock_client(token.as_deref(), std::time::Duration::from_secs(30))?;
    let public_key = match public_key {
        Some(key) => key,
        None => fetch_key(&client, &registry).await?,
    };
    let total = packages.len();
    let results: Vec<(LockedPackage, Result<(), String>)> = futures_util::stream::iter(packages)
        .map(|package| {
            let client = client.clone();
            let registry = registry.clone();
            async move {
                let outcome = verify_one(&client, &registry, &public_key, &package).await;
                (package, outcome)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut failures: Vec<(LockedPackage, String)> =
        results.into_iter().filter_map(|(package, outcome)| outcome.err().map(|reason| (package, reason))).collect();
    failures.sort_by(|left, right| (&left.0.name, &left.0.version).cmp(&(&right.0.name, &right.0.version)));
    Ok(VerifyOutcome { total, failures, key_id: signing::ed25519_key_id(&public_key) })
}

async fn verify_one(
    client: &reqwest::Client,
    registry: &str,
    public_key: &[u8; 32],
    package: &LockedPackage,
) -> Result<(), String> {
    if package.version.is_empty() {
        return Err("the lockfile has no version for it".into());
    }
    if !package.is_from_registry() {
        let resolved = package.resolved.as_deref().unwrap_or_default();
        return Err(format!("installed from {resolved}, not from a registry; Airlock cannot vouch for it"));
    }
    let url = format!("{registry}/-/airlock/attestations/{}@{}", package.name.replacen('/', "%2f", 1), package.version);
    let response =
        client.get(&url).send().await.map_err(|error| format!("cannot fetch the release record: {error}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(match why_not_released(client, registry, package).await {
            Some(reason) => format!("no release record: {reason}"),
            None => "no release record: Airlock did not release this version".into(),
        });
    }
    if !response.status().is_success() {
        return Err(format!("fetching the release record answered HTTP {}", response.status()));
    }
    let body = response.bytes().await.map_err(|error| format!("reading the release record: {error}"))?;
    let statement = signing::verify_release_record(&body, public_key)?;
    let subject = &statement["subject"][0];
    let expected_name = format!("pkg:npm/{}@{}", package.name.replacen('@', "%40", 1), package.version);
    if subject["name"] != expected_name.as_str() {
        return Err(format!("the record is for {}, not {expected_name}", subject["name"]));
    }
    let integrity = match &package.integrity {
        LockedIntegrity::Sri(integrity) => integrity,
        // Released is all that can be checked; Airlock serves only released bytes.
        LockedIntegrity::NotComparable(_) => return Ok(()),
        LockedIntegrity::Missing => return Err("the lockfile has no integrity to compare with".into()),
    };
    let signed_integrity = statement["predicate"]["integrity"].as_str().unwrap_or("");
    match sha512_hex(integrity) {
        Some(hex) if subject["digest"]["sha512"].as_str() == Some(hex.as_str()) => Ok(()),
        Some(_) => Err(format!("the lockfile's integrity differs from the one Airlock released ({signed_integrity})")),
        None if integrity.split_whitespace().any(|entry| entry == signed_integrity) => Ok(()),
        None => Err(format!(
            "the lockfile's integrity {integrity} differs from the one Airlock released ({signed_integrity})"
        )),
    }
}

/// Where the version stands, from its public status page (`rejected by admin:ana …`,
/// `held in quarantine …`); `None` when Airlock has not seen it or cannot say.
async fn why_not_released(client: &reqwest::Client, registry: &str, package: &LockedPackage) -> Option<String> {
    let url = format!("{registry}/-/airlock/status/{}/{}", package.name, package.version);
    let response = client.get(&url).header(reqwest::header::ACCEPT, "application/json").send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body = response.bytes().await.ok()?;
    let status: serde_json::Value = serde_json::from_slice(&body).ok()?;
    status["reason"].as_str().filter(|reason| !reason.is_empty()).map(str::to_owned)
}

fn sha512_hex(integrity: &str) -> Option<String> {
    integrity.split_whitespace().find_map(|entry| {
        let digest = base64::engine::general_purpose::STANDARD.decode(entry.strip_prefix("sha512-")?).ok()?;
        Some(hex::encode(digest))
    })
}

fn read_key_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let encoded = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) => json["release_records"]["public_key"]
            .as_str()
            .map(str::to_owned)
            .context("the key file is JSON but has no release_records.public_key")?,
        Err(_) => text.trim().to_owned(),
    };
    decode_key(&encoded)
}

async fn fetch_key(client: &reqwest::Client, registry: &str) -> anyhow::Result<[u8; 32]> {
    let url = format!("{registry}/-/airlock/keys");
    let body =
        client.get(&url).send().await.with_context(|| format!("fetching {url}"))?.error_for_status()?.bytes().await?;
    let json: serde_json::Value =
        serde_json::from_slice(&body).with_context(|| format!("{url} did not answer JSON"))?;
    decode_key(json["release_records"]["public_key"].as_str().context("no release_records.public_key")?)
}

fn decode_key(encoded: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).context("the key is not base64")?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("an Ed25519 public key has 32 bytes"))
}
