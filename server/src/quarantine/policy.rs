//! The quarantine policy applied to one version: deny and allow rules, the cooling
//! period, severities and what holds.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use airlock_config::{PackageRule, QuarantineConfig, SeverityLevel};
use airlock_scanner::{Finding, ScanReport, Severity, Verdict};
use chrono::{DateTime, Utc};

use super::waivers::Waiver;
use crate::npm::PackageName;

/// The effective policy.
#[derive(Debug, Clone)]
pub struct Policy {
    config: QuarantineConfig,
    // Allow and deny rules added at run time by admins (the admin UI's policy page),
    // stored in the store and loaded here at start and after each change. Shared by
    // every clone, so the mirror and the pipeline see a change at once.
    runtime: Arc<RwLock<RuntimeRules>>,
    // Waivers, loaded from the store at start and after each change, shared the same way.
    waivers: Arc<RwLock<Vec<Waiver>>>,
}

/// Allow and deny rules added at run time, in addition to the configured ones.
#[derive(Debug, Clone, Default)]
pub struct RuntimeRules {
    /// Rules that skip the cooling period.
    pub allow: Vec<PackageRule>,
    /// Rules that reject versions.
    pub deny: Vec<PackageRule>,
}

impl Policy {
    /// The policy of a configuration.
    pub fn new(config: QuarantineConfig) -> Policy {
        Policy { config, runtime: Arc::default(), waivers: Arc::default() }
    }

    /// Replaces the rules added at run time.
    pub fn set_runtime_rules(&self, rules: RuntimeRules) {
        *self.runtime.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = rules;
    }

    /// Replaces the waivers (revoked and expired ones may be included; they do not apply).
    pub fn set_waivers(&self, waivers: Vec<Waiver>) {
        *self.waivers.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = waivers;
    }

    /// Lowers the findings an active waiver accepts for this version to `info`, noting
    /// the waiver (see [`super::waivers::apply`]).
    pub fn apply_waivers(&self, name: &PackageName, version: &str, report: &mut ScanReport, now: DateTime<Utc>) {
        let waivers = self.waivers.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        super::waivers::apply(&waivers, name, version, report, now);
    }

    /// The loaded waivers (revoked and expired ones included).
    pub fn waivers(&self) -> Vec<Waiver> {
        self.waivers.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn runtime(&self) -> std::sync::RwLockReadGuard<'_, RuntimeRules> {
        self.runtime.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The configuration it came from.
    pub fn config(&self) -> &QuarantineConfig {
        &self.config
    }

    /// The deny rule covering this version, if any (configured rules first).
    pub fn denied(&self, name: &PackageName, version: &str) -> Option<PackageRule> {
        let configured = self.config.deny.iter().find(|rule| rule.matches(name.as_str(), version));
        configured
            .cloned()
            .or_else(|| self.runtime().deny.iter().find(|rule| rule.matches(name.as_str(), version)).cloned())
    }

    /// The cooling period for this version: zero when an allow rule covers it.
    pub fn cooling_period(&self, name: &PackageName, version: &str) -> Duration {
        let allowed = |rules: &[PackageRule]| rules.iter().any(|rule| rule.matches(name.as_str(), version));
        if allowed(&self.config.allow) || allowed(&self.runtime().allow) {
            Duration::ZERO
        } else {
            self.config.cooling_period
        }
    }

    /// When a version published (effectively) at `published` leaves the cooling period.
    pub fn cooling_until(&self, name: &PackageName, version: &str, published: DateTime<Utc>) -> DateTime<Utc> {
        published + chrono::Duration::from_std(self.cooling_period(name, version)).unwrap_or(chrono::Duration::MAX)
    }

    /// True when the package must carry valid provenance.
    pub fn requires_provenance(&self, name: &PackageName, version: &str) -> bool {
        self.config.require_provenance.iter().any(|rule| rule.matches(name.as_str(), version))
    }

    /// The provenance pins for a version: the first matching configured pin, with
    /// `require_provenance` set when a pin or a require rule covers it.
    pub fn provenance_pins(&self, name: &PackageName, version: &str) -> airlock_scanner::provenance::ProvenancePins {
        let pin = self.config.provenance_pins.iter().find(|pin| pin.rule.matches_package(name.as_str()));
        airlock_scanner::provenance::ProvenancePins {
            repository: pin.and_then(|pin| pin.repository.clone()),
            workflow: pin.and_then(|pin| pin.workflow.clone()),
            ref_pattern: pin.and_then(|pin| pin.ref_pattern.clone()),
            require_provenance: pin.is_some() || self.requires_provenance(name, version),
        }
    }

    /// The severity threshold at which findings hold a version.
    pub fn hold_severity(&self) -> Severity {
        to_scanner(self.config.hold_severity)
    }

    /// The severity of "source unverifiable" findings.
    pub fn unverifiable_source_severity(&self) -> Severity {
        to_scanner(self.config.unverifiable_source_severity)
    }

    /// Applies per-rule severity overrides to a report.
    pub fn apply_overrides(&self, report: &mut ScanReport) {
        for finding in &mut report.findings {
            if let Some(level) = self.config.rule_severity.get(&finding.rule) {
                finding.severity = to_scanner(*level);
            }
        }
        report.findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
    }

    /// Why a report holds the version, in one sentence, or `None` when it does not.
    pub fn hold_reason(&self, report: &ScanReport) -> Option<String> {
        if let Verdict::Unscannable { reason } = &report.verdict {
            return Some(format!("the package could not be checked: {reason}"));
        }
        let threshold = self.hold_severity();
        let holding: Vec<&Finding> = report.findings.iter().filter(|finding| finding.severity >= threshold).collect();
        let top = holding.first()?;
        let place = top
            .location
            .as_ref()
            .map(|location| match location.line {
                Some(line) => format!(" ({}:{line})", location.file),
                None => format!(" ({})", location.file),
            })
            .unwrap_or_default();
        let more = match holding.len() {
            1 => String::new(),
            count => format!(" and {} more finding{}", count - 1, if count == 2 { "" } else { "s" }),
        };
        Some(format!("{} finding {}: {}{place}{more}", top.severity, top.rule, top.message))
    }
}

fn to_scanner(level: SeverityLevel) -> Severity {
    match level {
        SeverityLevel::Info => Severity::Info,
        SeverityLevel::Low => Severity::Low,
        SeverityLevel::Medium => Severity::Medium,
        SeverityLevel::High => Severity::High,
        SeverityLevel::Critical => Severity::Critical,
    }
}
