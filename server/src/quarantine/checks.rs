//! The stored result of checking one version, and how the pipeline turns a check
//! worker's outcome (a report, or the way it failed) into it.

use airlock_scanner::{Finding, ScanReport, Severity, Verdict};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Policy;
use super::review::ReviewMaterial;
use super::worker::{WorkerFailure, WorkerResponse};

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
    /// What the admin page shows from the files; `None` for checks stored before it
    /// was kept, whose page reads the tarball (bounded) instead.
    #[serde(default)]
    pub review: Option<ReviewMaterial>,
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
    /// The previous released version the diff was computed against.
    pub previous_version: Option<String>,
    /// Findings the pipeline itself produced (for example an integrity change upstream).
    pub extra_findings: Vec<Finding>,
    /// Checks that could not run.
    pub incomplete: Vec<String>,
}

/// Builds the stored record from the worker's outcome and applies the policy's
/// overrides. A worker that failed leaves a report with one finding saying how, which
/// holds the version unless the policy lowers that rule's severity.
pub fn record(
    outcome: Result<WorkerResponse, WorkerFailure>,
    inputs: CheckInputs,
    policy: &Policy,
    started: DateTime<Utc>,
    completed_at: DateTime<Utc>,
) -> CheckRecord {
    let (mut report, review) = match outcome {
        Ok(response) => (response.report, Some(response.review)),
        Err(failure) => (failed_report(&failure), None),
    };
    report.findings.extend(inputs.extra_findings);
    policy.apply_overrides(&mut report);
    CheckRecord {
        completed_at,
        duration_ms: (completed_at - started).num_milliseconds().max(0) as u64,
        previous_version: inputs.previous_version,
        report,
        provenance: None,
        source_match: None,
        incomplete: inputs.incomplete,
        review,
    }
}

/// The report of a check whose worker died or overran: the static checks did not run,
/// so nothing about the package is known except that checking it broke a limit.
fn failed_report(failure: &WorkerFailure) -> ScanReport {
    ScanReport {
        verdict: Verdict::Scanned,
        findings: vec![Finding {
            rule: failure.rule().into(),
            // Critical by default so it holds at any `hold_severity`; the policy may
            // lower it per rule (`quarantine.rule_severity`).
            severity: Severity::Critical,
            message: failure.message().to_owned(),
            location: None,
            excerpt: None,
        }],
        package: None,
        summary: None,
        diff: None,
    }
}
