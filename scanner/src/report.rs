//! The report every check produces: findings with a rule id, a severity, a message a
//! person understands and, where it applies, a file, line and excerpt.
//!
//! The JSON shape of these types is part of Airlock's public interface (`airlock scan
//! --json`, the admin API): change it only compatibly.

use serde::{Deserialize, Serialize};

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Context for a reviewer; never holds a version.
    Info,
    /// Unusual but common in benign code.
    Low,
    /// Worth a look; holds only under a strict policy.
    Medium,
    /// Likely malicious or a broken trust chain; holds by default.
    High,
    /// Known-malicious behaviour or tampering.
    Critical,
}

impl Severity {
    /// Every severity, least severe first.
    pub const ALL: [Severity; 5] =
        [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    /// The lowercase name used in configuration, JSON and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses a name as written by [`Severity::as_str`].
    pub fn parse(text: &str) -> Option<Severity> {
        Some(match text {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Where in the package a finding applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// Path inside the package, relative to the package root (no `package/` prefix).
    pub file: String,
    /// 1-based line, when the finding is about a line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

/// One thing a check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule identifier, such as `install-script` or `provenance-regression`.
    pub rule: String,
    /// How bad it is, after any built-in calibration (policy overrides come later).
    pub severity: Severity,
    /// One or two sentences a person understands, quoting the offending value.
    pub message: String,
    /// The file and line, when the finding is about a place in the package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// A short excerpt of the offending code or text (at most a few lines).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
}

/// Whether the checks could look at the whole package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Verdict {
    /// Every file was read; the findings are complete.
    Scanned,
    /// The input exceeded a limit or could not be parsed. This fails closed: a version
    /// whose report is unscannable is never released without an admin.
    Unscannable {
        /// Why, quoting the limit or the parse error.
        reason: String,
    },
}

/// The result of checking one package version.
///
/// As JSON (`airlock scan --json`), one object:
///
/// ```json
/// {
///   "verdict": { "status": "scanned" },
///   "findings": [
///     { "rule": "mail-hidden-recipient", "severity": "high", "message": "…",
///       "location": { "file": "index.js", "line": 12, "column": 5 }, "excerpt": "Bcc: '…'" }
///   ],
///   "package": { "name": "postmark-mcp", "version": "1.0.16" },
///   "summary": { "files": 3, "bytes": 5120, "javascript_files": 2, … },
///   "diff": { "previous_version": "1.0.15", "files_added": [], … }
/// }
/// ```
///
/// `verdict.status` is `scanned` or `unscannable` (then with a `reason`). `package`,
/// `summary` and `diff` are absent when unknown (no readable package.json, an
/// unscannable tarball, no previous version). Fields are only ever added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReport {
    /// Whether the findings are complete.
    pub verdict: Verdict,
    /// Everything found, most severe first.
    pub findings: Vec<Finding>,
    /// Name and version from the package's own package.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<PackageIdentity>,
    /// What was looked at: counts, sizes, install scripts, contacted hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<ScanSummary>,
    /// What changed since the previous version, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<DiffSummary>,
}

/// A package's name and version as its package.json states them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageIdentity {
    /// The `name` field, or an empty string when missing.
    pub name: String,
    /// The `version` field, or an empty string when missing.
    pub version: String,
}

/// Counts and facts a reviewer wants next to the findings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSummary {
    /// Regular files in the package.
    pub files: u64,
    /// Their total uncompressed size in bytes.
    pub bytes: u64,
    /// JavaScript and TypeScript files parsed (declaration files are not).
    pub javascript_files: u64,
    /// JavaScript and TypeScript bytes parsed.
    pub javascript_bytes: u64,
    /// Files that did not parse cleanly; they were still searched as text.
    pub parse_errors: u64,
    /// Lifecycle scripts that run when the package is installed, by name
    /// (`preinstall`, `install`, `postinstall`), as written in package.json.
    pub install_scripts: std::collections::BTreeMap<String, String>,
    /// Hosts named in URLs in the code, sorted, at most 100.
    pub hosts: Vec<String>,
}

/// How this version differs from the previous one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffSummary {
    /// The previous version's `version` field.
    pub previous_version: String,
    /// Paths present now and not before, sorted.
    pub files_added: Vec<String>,
    /// Paths present before and not now, sorted.
    pub files_removed: Vec<String>,
    /// Paths present in both with different contents, sorted.
    pub files_changed: Vec<String>,
    /// Dependencies (of any kind) added, as `name@spec`.
    pub dependencies_added: Vec<String>,
    /// Dependencies removed, as `name@spec`.
    pub dependencies_removed: Vec<String>,
    /// Dependencies whose spec changed, as `name: old -> new`.
    pub dependencies_changed: Vec<String>,
}

impl ScanReport {
    /// A complete report with these findings, sorted most severe first.
    pub fn scanned(mut findings: Vec<Finding>) -> ScanReport {
        sort_findings(&mut findings);
        ScanReport { verdict: Verdict::Scanned, findings, package: None, summary: None, diff: None }
    }

    /// A report for input that could not be read; it holds at every threshold.
    pub fn unscannable(reason: impl Into<String>) -> ScanReport {
        ScanReport {
            verdict: Verdict::Unscannable { reason: reason.into() },
            findings: Vec::new(),
            package: None,
            summary: None,
            diff: None,
        }
    }

    /// Adds findings (for example the provenance checks') and restores the order.
    pub fn extend_findings(&mut self, findings: impl IntoIterator<Item = Finding>) {
        self.findings.extend(findings);
        sort_findings(&mut self.findings);
    }

    /// The highest severity among the findings, if any.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|finding| finding.severity).max()
    }

    /// True when the report must hold the version at `threshold`: unscannable, or a
    /// finding at or above the threshold.
    pub fn holds_at(&self, threshold: Severity) -> bool {
        matches!(self.verdict, Verdict::Unscannable { .. })
            || self.findings.iter().any(|finding| finding.severity >= threshold)
    }
}

/// Most severe first; then by file, line and rule so reports are stable.
fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|left, right| {
        let location_key = |finding: &Finding| {
            finding.location.as_ref().map(|location| (location.file.clone(), location.line.unwrap_or(0)))
        };
        right
            .severity
            .cmp(&left.severity)
            .then_with(|| location_key(left).cmp(&location_key(right)))
            .then_with(|| left.rule.cmp(&right.rule))
            .then_with(|| left.message.cmp(&right.message))
    });
}
