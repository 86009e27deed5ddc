//! `airlock verify LOCKFILE`: proves, for CI, that every package a lockfile installs
//! was released by Airlock. For each locked package it fetches Airlock's signed release
//! record, verifies it offline against the pinned Ed25519 key, and checks that the
//! integrity in the lockfile is the one Airlock signed.
//!
//! Reads `package-lock.json` / `npm-shrinkwrap.json` (lockfile v1, v2 and v3) and
//! `yarn.lock` (v1). Exit 0 only when every package passes.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use futures_util::StreamExt as _;

use crate::signing;

/// Arguments of `airlock verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The lockfile: package-lock.json, npm-shrinkwrap.json or yarn.lock.
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

/// One package a lockfile installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The lockfile's integrity (SRI), if it has one.
    pub integrity: Option<String>,
    /// Where it was resolved from.
    pub resolved: Option<String>,
}

/// Runs the command.
pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(&args.lockfile).with_context(|| format!("reading {}", args.lockfile.display()))?;
    let packages = parse_lockfile(&args.lockfile, &text)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(verify_all(&args, packages))
}

/// Parses a lockfile by its name.
pub fn parse_lockfile(path: &Path, text: &str) -> anyhow::Result<Vec<LockedPackage>> {
    let file_name = path.file_name().and_then(|name| name.to_str()).unwrap_or("");
    match file_name {
        "yarn.lock" => parse_yarn_lock(text),
        "pnpm-lock.yaml" => anyhow::bail!("pnpm-lock.yaml is not supported yet; use package-lock.json or yarn.lock"),
        _ => parse_package_lock(text),
    }
}

fn parse_package_lock(text: &str) -> anyhow::Result<Vec<LockedPackage>> {
    let lock: serde_json::Value = serde_json::from_str(text).context("the lockfile is not JSON")?;
    let mut packages = Vec::new();
    if let Some(entries) = lock.get("packages").and_then(serde_json::Value::as_object) {
        for (path, entry) in entries {
            // "" is the project itself; links point at workspace folders.
            if path.is_empty() || entry.get("link").and_then(serde_json::Value::as_bool) == Some(true) {
                continue;
            }
            let name = match entry.get("name").and_then(serde_json::Value::as_str) {
                Some(name) => name.to_owned(),
                None => match path.rfind("node_modules/") {
                    Some(position) => path[position + "node_modules/".len()..].to_owned(),
                    None => continue,
                },
            };
            packages.push(locked(name, entry));
        }
    } else if let Some(dependencies) = lock.get("dependencies").and_then(serde_json::Value::as_object) {
        fn walk(dependencies: &serde_json::Map<String, serde_json::Value>, packages: &mut Vec<LockedPackage>) {
            for (name, entry) in dependencies {
                packages.push(locked(name.clone(), entry));
                if let Some(nested) = entry.get("dependencies").and_then(serde_json::Value::as_object) {
                    walk(nested, packages);
                }
            }
        }
        walk(dependencies, &mut packages);
    }
    packages.sort_by(|left, right| (&left.name, &left.version).cmp(&(&right.name, &right.version)));
    packages.dedup_by(|left, right| left.name == right.name && left.version == right.version);
    Ok(packages)
}

fn locked(name: String, entry: &serde_json::Value) -> LockedPackage {
    let text = |key: &str| entry.get(key).and_then(serde_json::Value::as_str).map(str::to_owned);
    LockedPackage {
        name,
        version: text("version").unwrap_or_default(),
        integrity: text("integrity"),
        resolved: text("resolved"),
    }
}

/// yarn.lock v1: blocks of `"name@range", name@range:` followed by indented fields.
fn parse_yarn_lock(text: &str) -> anyhow::Result<Vec<LockedPackage>> {
    if text.contains("__metadata:") {
        anyhow::bail!("this is a yarn berry lockfile; only yarn.lock v1 (yarn classic) is supported yet");
    }
    let mut packages = Vec::new();
    let mut current: Option<LockedPackage> = None;
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            packages.extend(current.take());
            let first = line.trim_end_matches(':').split(',').next().unwrap_or("").trim().trim_matches('"');
            // The name is everything before the last `@` that is not the scope's.
            let split = first[1..].find('@').map(|position| position + 1);
            let name = split.map(|position| &first[..position]).unwrap_or(first);
            current =
                Some(LockedPackage { name: name.to_owned(), version: String::new(), integrity: None, resolved: None });
            continue;
        }
        let Some(package) = current.as_mut() else { continue };
        let trimmed = line.trim();
        let (key, value) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
        let value = value.trim().trim_matches('"').to_owned();
        match key {
            "version" => package.version = value,
            "integrity" => package.integrity = Some(value),
            "resolved" => package.resolved = Some(value),
            _ => {}
        }
    }
    packages.extend(current);
    packages.sort_by(|left, right| (&left.name, &left.version).cmp(&(&right.name, &right.version)));
    packages.dedup_by(|left, right| left.name == right.name && left.version == right.version);
    Ok(packages)
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
    let outcome = verify_packages(&args.registry, pinned_key, token, packages, args.concurrency).await?;
    let mut stdout = std::io::stdout().lock();
    let (total, key_id) = (outcome.total, &outcome.key_id);
    if outcome.failures.is_empty() {
        writeln!(
            stdout,
            "{total} packages verified: every one has a release record signed by Airlock ({key_id}) for the locked integrity"
        )?;
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
    if let Some(resolved) = &package.resolved
        && !(resolved.starts_with("http://") || resolved.starts_with("https://"))
    {
        return Err(format!("installed from {resolved}, not from a registry; Airlock cannot vouch for it"));
    }
    let url = format!("{registry}/-/airlock/attestations/{}@{}", package.name.replacen('/', "%2f", 1), package.version);
    let response =
        client.get(&url).send().await.map_err(|error| format!("cannot fetch the release record: {error}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Err("no release record: Airlock did not release this version".into());
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
    let Some(integrity) = &package.integrity else {
        return Err("the lockfile has no integrity to compare with".into());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_lock_v3_entries_are_read() {
        let text = r#"{"lockfileVersion": 3, "packages": {
            "": {"name": "app"},
            "node_modules/a": {"version": "1.0.0", "resolved": "http://r/a/-/a-1.0.0.tgz", "integrity": "sha512-AA=="},
            "node_modules/a/node_modules/@s/b": {"version": "2.0.0", "integrity": "sha512-BB=="},
            "packages/local": {"version": "0.0.0"},
            "node_modules/local": {"resolved": "packages/local", "link": true}
        }}"#;
        let packages = parse_lockfile(Path::new("package-lock.json"), text).unwrap();
        let names: Vec<(&str, &str)> =
            packages.iter().map(|package| (package.name.as_str(), package.version.as_str())).collect();
        // The workspace folder and the link to it are not registry packages.
        assert_eq!(names, [("@s/b", "2.0.0"), ("a", "1.0.0")]);
    }

    #[test]
    fn yarn_v1_entries_are_read() {
        let text = "# yarn lockfile v1\n\n\"@s/b@^2.0.0\", \"@s/b@^2.0.1\":\n  version \"2.0.1\"\n  resolved \"http://r/@s/b/-/b-2.0.1.tgz#abc\"\n  integrity sha512-BB==\n\na@^1.0.0:\n  version \"1.0.0\"\n  integrity sha512-AA==\n  dependencies:\n    \"@s/b\" \"^2.0.0\"\n";
        let packages = parse_lockfile(Path::new("yarn.lock"), text).unwrap();
        assert_eq!(
            packages,
            [
                LockedPackage {
                    name: "@s/b".into(),
                    version: "2.0.1".into(),
                    integrity: Some("sha512-BB==".into()),
                    resolved: Some("http://r/@s/b/-/b-2.0.1.tgz#abc".into())
                },
                LockedPackage {
                    name: "a".into(),
                    version: "1.0.0".into(),
                    integrity: Some("sha512-AA==".into()),
                    resolved: None
                },
            ]
        );
        assert!(parse_lockfile(Path::new("yarn.lock"), "__metadata:\n  version: 6\n").is_err());
    }
}
