//! The provenance and signature options of `airlock scan` (`--packument`, `--keys`,
//! `--attestations`, `--trust-root`, `--source`, `--previous-provenance`): reads those
//! files and adds the offline checks' findings to the report, in the same shape as the
//! static findings.

use std::path::{Path, PathBuf};

use airlock_scanner::provenance::{
    ArchiveLimits, FileTree, PreviousProvenance, ProvenancePins, RegistryKeys, SignedVersion, SigstoreTrustRoot,
    SourceMatchOutcome, check_identity_policy, compare_with_source, package_json_repository, sha512_from_integrity,
    sha512_of, undelivered_provenance, verify_attestations, verify_registry_signatures,
};
use airlock_scanner::{Finding, ScanReport, Severity, Verdict};
use anyhow::Context as _;

/// Offline provenance inputs for `airlock scan`. Every check runs only when its input is
/// given; all of them need the package as a .tgz, since they are about its exact bytes.
#[derive(Debug, clap::Args)]
pub struct ProvenanceArgs {
    /// Full packument JSON (as served at `/{name}`): checks `dist.integrity` against the
    /// tarball and the registry signatures of this version.
    #[arg(long, value_name = "FILE")]
    pub packument: Option<PathBuf>,
    /// Registry keys (`/-/npm/v1/keys` JSON). Default: the npm public registry's keys.
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
    /// Attestations response (`/-/npm/v1/attestations/{name}@{version}` JSON): verifies
    /// the Sigstore provenance and publish attestations.
    #[arg(long, value_name = "FILE")]
    pub attestations: Option<PathBuf>,
    /// Sigstore `trusted_root.json`. Default: the built-in public-good trust root.
    #[arg(long, value_name = "FILE")]
    pub trust_root: Option<PathBuf>,
    /// The last released version's provenance, as JSON `{"version": …, "identity": …}`
    /// (identity as in a previous report, or null): checks provenance continuity.
    #[arg(long, value_name = "FILE")]
    pub previous_provenance: Option<PathBuf>,
    /// The source to compare the tarball with, file by file: a directory (a checkout) or
    /// a .tar.gz (a GitHub tarball or `git archive` output).
    #[arg(long, value_name = "DIR_OR_ARCHIVE")]
    pub source: Option<PathBuf>,
    /// The package's directory inside `--source` (monorepos). Default: package.json's
    /// `repository.directory`, else the directory whose package.json has the name.
    #[arg(long, value_name = "DIR")]
    pub source_directory: Option<String>,
    /// Severity of a `source-unverifiable` finding.
    #[arg(long, value_name = "SEVERITY", default_value = "medium", value_parser = parse_severity)]
    pub source_unverifiable_severity: Severity,
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    Severity::parse(text).ok_or_else(|| format!("`{text}` is not one of info, low, medium, high, critical"))
}

impl Default for ProvenanceArgs {
    fn default() -> Self {
        ProvenanceArgs {
            packument: None,
            keys: None,
            attestations: None,
            trust_root: None,
            previous_provenance: None,
            source: None,
            source_directory: None,
            source_unverifiable_severity: Severity::Medium,
        }
    }
}

impl ProvenanceArgs {
    /// True when any provenance input was given.
    pub fn is_requested(&self) -> bool {
        self.packument.is_some()
            || self.attestations.is_some()
            || self.previous_provenance.is_some()
            || self.source.is_some()
    }
}

/// Runs the requested offline checks on `tarball` (the package's .tgz bytes) and adds
/// their findings to `report`, most severe first. Errors only for unreadable input
/// files or a tarball that is not a package; failed checks are findings.
pub fn extend_report(args: &ProvenanceArgs, tarball: &[u8], report: &mut ScanReport) -> anyhow::Result<()> {
    // An unscannable package already holds at every threshold; its bytes are not a
    // package these checks could say more about.
    if !args.is_requested() || matches!(report.verdict, Verdict::Unscannable { .. }) {
        return Ok(());
    }
    let package = FileTree::from_tar_gz(tarball, ArchiveLimits::default())
        .context("reading the package tarball for the provenance checks")?;
    let package_json: serde_json::Value = package
        .get("package.json")
        .and_then(|file| serde_json::from_slice(&file.bytes).ok())
        .context("the package tarball has no readable package.json")?;
    let text = |key: &str| {
        package_json
            .get(key)
            .and_then(|value| value.as_str())
            .map(str::to_owned)
            .with_context(|| format!("package.json has no `{key}`"))
    };
    let (name, version) = (text("name")?, text("version")?);
    let tarball_sha512 = sha512_of(tarball);
    let mut findings = Vec::new();

    if let Some(path) = &args.packument {
        let packument = read(path, "packument")?;
        let signed = SignedVersion::from_packument(&packument, &version)
            .with_context(|| format!("reading {name}@{version} from {}", path.display()))?;
        if sha512_from_integrity(&signed.integrity) != Some(tarball_sha512) {
            findings.push(Finding {
                rule: "integrity-mismatch".to_owned(),
                severity: Severity::Critical,
                message: format!(
                    "The tarball's sha512 is not the packument's `dist.integrity` `{}`.",
                    signed.integrity
                ),
                location: None,
                excerpt: None,
            });
        }
        let keys = match &args.keys {
            Some(path) => RegistryKeys::from_json(&read(path, "registry keys")?)
                .with_context(|| format!("reading {}", path.display()))?,
            None => RegistryKeys::npm_public_registry(),
        };
        let signs_everything = !keys.is_empty();
        findings.extend(verify_registry_signatures(&signed, &keys, signs_everything).findings());
    }

    let mut identity = None;
    if let Some(path) = &args.attestations {
        let response = read(path, "attestations")?;
        let keys = match &args.keys {
            Some(path) => RegistryKeys::from_json(&read(path, "registry keys")?)
                .with_context(|| format!("reading {}", path.display()))?,
            None => RegistryKeys::npm_public_registry(),
        };
        let trust_root = match &args.trust_root {
            Some(path) => SigstoreTrustRoot::from_json(&read(path, "trust root")?)
                .with_context(|| format!("reading {}", path.display()))?,
            None => SigstoreTrustRoot::public_good(),
        };
        let result = verify_attestations(&response, &name, &version, &tarball_sha512, &keys, &trust_root);
        findings.extend(result.findings());
        if let Some(path) = &args.packument {
            let packument: serde_json::Value = serde_json::from_slice(&read(path, "packument")?)
                .with_context(|| format!("reading {}", path.display()))?;
            if let Some(manifest) = packument.get("versions").and_then(|versions| versions.get(&version)) {
                findings.extend(undelivered_provenance(manifest, &result));
            }
        }
        identity = result.identity;
    }

    if args.attestations.is_some() || args.previous_provenance.is_some() {
        let previous: Option<PreviousProvenance> = match &args.previous_provenance {
            Some(path) => Some(
                serde_json::from_slice(&read(path, "previous provenance")?)
                    .with_context(|| format!("reading {}", path.display()))?,
            ),
            None => None,
        };
        let policy =
            check_identity_policy(identity.as_ref(), &package_json, previous.as_ref(), &ProvenancePins::default());
        findings.extend(policy.findings());
    }

    if let Some(path) = &args.source {
        let source = read_source(path)?;
        let hint = args
            .source_directory
            .clone()
            .or_else(|| package_json_repository(&package_json).and_then(|(_, directory)| directory));
        let label = path.display().to_string();
        match compare_with_source(&package, &source, hint.as_deref()) {
            Ok(result) => findings.extend(result.findings(&label)),
            Err(reason) => findings.extend(
                SourceMatchOutcome::Unverifiable { reason, severity: args.source_unverifiable_severity }.findings(),
            ),
        }
    }

    report.extend_findings(findings);
    Ok(())
}

fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading the {what} file {}", path.display()))
}

/// Most files and bytes read from a `--source` directory; beyond that the input is
/// refused rather than compared in part.
const MAX_SOURCE_FILES: usize = 100_000;
const MAX_SOURCE_BYTES: u64 = 512 * 1024 * 1024;

fn read_source(path: &Path) -> anyhow::Result<FileTree> {
    if path.is_dir() {
        let mut files = Vec::new();
        let mut total = 0u64;
        collect_directory(path, path, &mut files, &mut total)?;
        return FileTree::from_files(files).context("reading the --source directory");
    }
    let bytes = read(path, "source archive")?;
    FileTree::from_tar_gz(&bytes, ArchiveLimits::default())
        .with_context(|| format!("reading the source archive {}", path.display()))
}

fn collect_directory(
    root: &Path,
    directory: &Path,
    files: &mut Vec<(String, Vec<u8>)>,
    total: &mut u64,
) -> anyhow::Result<()> {
    let mut entries = std::fs::read_dir(directory)
        .with_context(|| format!("listing {}", directory.display()))?
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name == ".git" || name == "node_modules" {
            continue;
        }
        // `file_type` does not follow symlinks: a link is neither compared nor followed
        // out of the checkout.
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            collect_directory(root, &path, files, total)?;
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            *total += bytes.len() as u64;
            anyhow::ensure!(
                files.len() < MAX_SOURCE_FILES && *total <= MAX_SOURCE_BYTES,
                "the --source directory has more than {MAX_SOURCE_FILES} files or {MAX_SOURCE_BYTES} bytes"
            );
            let relative = path
                .strip_prefix(root)
                .context("a listed file is under the root")?
                .to_str()
                .with_context(|| format!("{} is not UTF-8", path.display()))?
                .replace(std::path::MAIN_SEPARATOR, "/");
            files.push((relative, bytes));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
