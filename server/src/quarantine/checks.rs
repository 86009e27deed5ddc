//! Running the checks on bytes the pipeline gathered, and the stored result.
//!
//! Everything here is synchronous and CPU-bound; the pipeline calls it from a blocking
//! thread. The inputs are bytes already fetched and verified by the server.

use airlock_scanner::{Finding, ScanOptions, ScanReport, Severity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Policy;

/// The stored result of checking one version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckRecord {
    /// When the checks finished.
    pub completed_at: DateTime<Utc>,
    /// How long they took.
    pub duration_ms: u64,
    /// The previous released version the diff was computed against.
    pub previous_version: Option<String>,
    /// All findings (static, diff, signatures, provenance, source match), with the
    /// policy's severity overrides applied, most severe first.
    pub report: ScanReport,
    /// Structured signature and provenance results, when those checks ran.
    #[serde(default)]
    pub provenance: Option<serde_json::Value>,
    /// Structured source-repository match, when it ran.
    #[serde(default)]
    pub source_match: Option<serde_json::Value>,
    /// Checks that could not run, with the reason.
    #[serde(default)]
    pub incomplete: Vec<String>,
}

impl CheckRecord {
    /// A one-line summary for release records and listings.
    pub fn summary(&self) -> serde_json::Value {
        let count =
            |severity: Severity| self.report.findings.iter().filter(|finding| finding.severity == severity).count();
        serde_json::json!({
            "verdict": match &self.report.verdict {
                airlock_scanner::Verdict::Scanned => "scanned",
                airlock_scanner::Verdict::Unscannable { .. } => "unscannable",
            },
            "completed_at": self.completed_at,
            "previous_version": self.previous_version,
            "findings": {
                "critical": count(Severity::Critical),
                "high": count(Severity::High),
                "medium": count(Severity::Medium),
                "low": count(Severity::Low),
                "info": count(Severity::Info),
            },
            "incomplete": self.incomplete,
        })
    }
}

/// What the pipeline hands to the checks.
pub struct CheckInputs {
    /// The tarball, already verified against its integrity.
    pub tarball: Vec<u8>,
    /// The previous released version and its tarball, for the diff.
    pub previous: Option<(String, Vec<u8>)>,
    /// Findings the pipeline itself produced (for example an integrity change upstream).
    pub extra_findings: Vec<Finding>,
    /// Checks that could not run.
    pub incomplete: Vec<String>,
    /// The known-malware feed in force (`crate::feeds`).
    pub indicators: std::sync::Arc<airlock_scanner::Indicators>,
    /// Who published the version and when (`crate::publication`).
    pub publication: airlock_scanner::PublicationContext,
}

/// Runs the static checks and applies the policy's overrides.
pub fn run(
    inputs: CheckInputs,
    policy: &Policy,
    started: DateTime<Utc>,
    now: impl Fn() -> DateTime<Utc>,
) -> CheckRecord {
    let options = ScanOptions {
        indicators: inputs.indicators.clone(),
        publication: inputs.publication.clone(),
        ..ScanOptions::default()
    };
    let previous_bytes = inputs.previous.as_ref().map(|(_, bytes)| bytes.as_slice());
    let mut report = airlock_scanner::scan_tarball(&inputs.tarball, previous_bytes, &options);
    report.findings.extend(inputs.extra_findings);
    policy.apply_overrides(&mut report);
    let completed_at = now();
    CheckRecord {
        completed_at,
        duration_ms: (completed_at - started).num_milliseconds().max(0) as u64,
        previous_version: inputs.previous.map(|(version, _)| version),
        report,
        provenance: None,
        source_match: None,
        incomplete: inputs.incomplete,
    }
}
