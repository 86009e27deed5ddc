//! `airlock scan`: runs the scanner over a tarball or an unpacked package directory.
//!
//! Exit codes: 0 when no finding reaches `--min-severity`, 1 when one does or the
//! package is unscannable, 2 when the input could not be read (the binary maps an
//! `Err` from [`run`] to 2).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airlock_scanner::{PackageFiles, ScanOptions, ScanReport, Severity, Verdict};
use anyhow::Context as _;

/// Arguments of `airlock scan`.
#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// Package tarball (.tgz) or unpacked package directory.
    pub package: PathBuf,
    /// The previous version (.tgz or directory): adds what changed since it.
    #[arg(long, value_name = "PREVIOUS")]
    pub previous: Option<PathBuf>,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when a finding reaches this severity: info, low, medium, high, critical.
    #[arg(long, value_name = "SEVERITY", default_value = "high", value_parser = parse_severity)]
    pub min_severity: Severity,
    /// Provenance and signature inputs.
    #[command(flatten)]
    pub provenance: super::scan_provenance::ProvenanceArgs,
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    Severity::parse(text).ok_or_else(|| format!("`{text}` is not one of info, low, medium, high, critical"))
}

/// A package read from the command line: tarball bytes, or files from a directory.
enum PackageInput {
    Tarball(Vec<u8>),
    Directory(PackageFiles),
}

/// Runs the command; the exit code says whether a finding reached the threshold.
pub fn run(args: ScanArgs) -> anyhow::Result<ExitCode> {
    let options = ScanOptions::default();
    let current = read_package_input(&args.package, &options)?;
    let previous = args.previous.as_deref().map(|path| read_package_input(path, &options)).transpose()?;
    let mut report = match (&current, &previous) {
        (PackageInput::Tarball(current), None) => airlock_scanner::scan_tarball(current, None, &options),
        (PackageInput::Tarball(current), Some(PackageInput::Tarball(previous))) => {
            airlock_scanner::scan_tarball(current, Some(previous), &options)
        }
        _ => {
            // A directory on either side: read both into memory and scan those.
            let current_files = match package_files(&current, &options) {
                Ok(files) => files,
                Err(reason) => return finish(&args, &ScanReport::unscannable(reason)),
            };
            // An unreadable previous version only loses the diff, as in `scan_tarball`.
            let previous_files = previous.as_ref().and_then(|previous| package_files(previous, &options).ok());
            airlock_scanner::scan_files(&current_files, previous_files.as_ref(), &options)
        }
    };

    // Provenance and signature checks (scan_provenance.rs) need the exact tarball bytes.
    match &current {
        PackageInput::Tarball(tarball_bytes) => {
            super::scan_provenance::extend_report(&args.provenance, tarball_bytes, &mut report)?;
        }
        PackageInput::Directory(_) if args.provenance.is_requested() => {
            anyhow::bail!("the provenance checks need the package as a .tgz, not a directory");
        }
        PackageInput::Directory(_) => {}
    }
    finish(&args, &report)
}

fn finish(args: &ScanArgs, report: &ScanReport) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut stdout, report).context("writing the report")?;
        writeln!(stdout).context("writing the report")?;
    } else {
        write_human_report(&mut stdout, report, args.min_severity).context("writing the report")?;
    }
    stdout.flush().context("writing the report")?;
    Ok(if report.holds_at(args.min_severity) { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The files of a package input; `Err` is the reason it is unscannable.
fn package_files(input: &PackageInput, options: &ScanOptions) -> Result<PackageFiles, String> {
    match input {
        PackageInput::Directory(files) => Ok(files.clone()),
        PackageInput::Tarball(bytes) => {
            airlock_scanner::read_tarball(bytes, options).map_err(|error| error.to_string())
        }
    }
}

/// Reads a .tgz or a directory. Errors here are "could not read the input" (exit 2);
/// a directory that breaks a scan limit is reported as such too, since nothing was
/// scanned.
fn read_package_input(path: &Path, options: &ScanOptions) -> anyhow::Result<PackageInput> {
    let metadata = std::fs::metadata(path).with_context(|| format!("reading `{}`", path.display()))?;
    if metadata.is_dir() {
        let mut files = PackageFiles::new();
        read_directory(path, path, &mut files, options)?;
        Ok(PackageInput::Directory(files))
    } else {
        if metadata.len() > options.max_compressed_bytes {
            anyhow::bail!(
                "`{}` is {} bytes, more than the {} byte limit for a tarball",
                path.display(),
                metadata.len(),
                options.max_compressed_bytes
            );
        }
        let bytes = std::fs::read(path).with_context(|| format!("reading `{}`", path.display()))?;
        Ok(PackageInput::Tarball(bytes))
    }
}

/// Walks a package directory without following symbolic links (a link could point
/// anywhere on this machine) and skips `node_modules` and `.git`, which `npm pack`
/// never includes.
fn read_directory(
    root: &Path,
    directory: &Path,
    files: &mut PackageFiles,
    options: &ScanOptions,
) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(directory)
        .with_context(|| format!("reading directory `{}`", directory.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading directory `{}`", directory.display()))?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let file_type = entry.file_type().with_context(|| format!("reading `{}`", entry.path().display()))?;
        let name = entry.file_name();
        if file_type.is_dir() {
            if name != "node_modules" && name != ".git" {
                read_directory(root, &entry.path(), files, options)?;
            }
            continue;
        }
        if !file_type.is_file() {
            continue;
        }
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .context("a directory entry outside the package root")?
            .components()
            .map(|component| component.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let bytes = std::fs::read(&path).with_context(|| format!("reading `{}`", path.display()))?;
        files
            .add_file(&relative, bytes, false, options)
            .with_context(|| format!("reading package directory `{}`", root.display()))?;
    }
    Ok(())
}

/// Findings grouped by severity, most severe first, each with rule, message, place
/// and excerpt.
fn write_human_report(
    output: &mut impl std::io::Write,
    report: &ScanReport,
    threshold: Severity,
) -> std::io::Result<()> {
    let package = report
        .package
        .as_ref()
        .map(|package| format!("{}@{}", package.name, package.version))
        .unwrap_or_else(|| "package".to_owned());
    let decision = if report.holds_at(threshold) { "HELD" } else { "passes" };
    match &report.verdict {
        Verdict::Scanned => writeln!(output, "{package}: {decision} at threshold {threshold}")?,
        Verdict::Unscannable { reason } => {
            writeln!(output, "{package}: UNSCANNABLE ({reason}); held at any threshold")?
        }
    }
    if let Some(summary) = &report.summary {
        writeln!(
            output,
            "  {} files, {} bytes; {} JavaScript/TypeScript files parsed{}",
            summary.files,
            summary.bytes,
            summary.javascript_files,
            if summary.parse_errors > 0 {
                format!(" ({} with parse errors)", summary.parse_errors)
            } else {
                String::new()
            }
        )?;
        for (script, command) in &summary.install_scripts {
            writeln!(output, "  install script {script}: {command}")?;
        }
    }
    if let Some(diff) = &report.diff {
        writeln!(
            output,
            "  since {}: {} added, {} removed, {} changed files; {} dependencies added, {} removed, {} changed",
            if diff.previous_version.is_empty() { "the previous version" } else { &diff.previous_version },
            diff.files_added.len(),
            diff.files_removed.len(),
            diff.files_changed.len(),
            diff.dependencies_added.len(),
            diff.dependencies_removed.len(),
            diff.dependencies_changed.len()
        )?;
    }
    for severity in [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Info] {
        let findings: Vec<_> = report.findings.iter().filter(|finding| finding.severity == severity).collect();
        if findings.is_empty() {
            continue;
        }
        writeln!(output)?;
        writeln!(output, "{} ({})", severity.as_str().to_uppercase(), findings.len())?;
        for finding in findings {
            let place = finding
                .location
                .as_ref()
                .map(|location| match location.line {
                    Some(line) => format!("  {}:{line}", location.file),
                    None => format!("  {}", location.file),
                })
                .unwrap_or_default();
            writeln!(output, "  [{}]{place}", finding.rule)?;
            writeln!(output, "    {}", finding.message)?;
            if let Some(excerpt) = &finding.excerpt {
                for line in excerpt.lines().take(3) {
                    writeln!(output, "    > {line}")?;
                }
            }
        }
    }
    Ok(())
}
