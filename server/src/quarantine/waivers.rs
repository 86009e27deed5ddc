//! Waivers: "accept rule X for package P (all versions or an npm range), for this
//! reason, until this date", decided by an admin and audited.
//!
//! A waiver does not remove findings: when a version is decided after its checks,
//! the findings of a waived rule are lowered to `info` and their message names the
//! waiver and its reason, so the admin page still shows them. Waivers of the
//! known-malware rules are refused: a feed's verdict is not a false positive to accept.
//! Ranges use npm's syntax through the `nodejs-semver` crate, as the policy's allow and
//! deny rules do (`airlock_config::PackageRule`).

use std::time::Duration;

use airlock_scanner::{Rule, ScanReport, Severity};
use chrono::{DateTime, Utc};

use crate::error::AppError;
use crate::npm::{PackageName, quote};
use crate::store::StoredWaiver;

/// Longest reason accepted.
pub const MAX_REASON: usize = 1000;
/// Longest life of a waiver: it must be looked at again at least once a year.
pub const MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 3600);
/// Rules no waiver may accept: the known-malware feed's findings.
pub const UNWAIVABLE_RULES: [Rule; 2] = [Rule::KnownMalwareIndicator, Rule::KnownMaliciousVersion];

/// What an admin asks for, as typed.
#[derive(Debug, Clone)]
pub struct WaiverRequest<'request> {
    /// The scanner rule id.
    pub rule: &'request str,
    /// The package name.
    pub package: &'request str,
    /// An npm range, or `None` (or `*`) for every version.
    pub versions: Option<&'request str>,
    /// Why.
    pub reason: &'request str,
    /// A duration from now (`90d`, `2w`) or an RFC 3339 time, at most [`MAX_LIFETIME`] ahead.
    pub expires: &'request str,
}

impl WaiverRequest<'_> {
    /// Validates the request into a record to store (id 0 until the store assigns one).
    pub fn validate(&self, admin: &str, now: DateTime<Utc>) -> Result<StoredWaiver, AppError> {
        let rule = parse_rule(self.rule)?;
        let package = PackageName::parse(self.package.trim())?;
        let versions = match self.versions.map(str::trim) {
            None | Some("") | Some("*") => None,
            Some(text) => {
                VersionRange::parse(text)?;
                Some(text.to_owned())
            }
        };
        let reason = self.reason.trim();
        if reason.is_empty() {
            return Err(AppError::BadRequest("a waiver needs a reason".into()));
        }
        if reason.len() > MAX_REASON {
            return Err(AppError::BadRequest(format!("the reason is longer than {MAX_REASON} bytes")));
        }
        let expires_at = parse_expiry(self.expires, now)?;
        Ok(StoredWaiver {
            id: 0,
            rule: rule.id().to_owned(),
            package: package.as_str().to_owned(),
            versions,
            reason: reason.to_owned(),
            expires_at,
            created_by: format!("admin:{admin}"),
            created_at: now,
            revoked: None,
        })
    }
}

/// A rule id from the scanner's catalogue that a waiver may accept.
fn parse_rule(text: &str) -> Result<Rule, AppError> {
    let text = text.trim();
    let rule = Rule::ALL.iter().copied().find(|rule| rule.id() == text).ok_or_else(|| {
        AppError::BadRequest(format!(
            "unknown rule {}; a waiver names a rule id of the scanner's catalogue (see `airlock scan --rules` or the findings on the version page)",
            quote(text)
        ))
    })?;
    if UNWAIVABLE_RULES.contains(&rule) {
        return Err(AppError::BadRequest(format!(
            "rule {} reports the known-malware feed and cannot be waived; reject the version, or correct the feed",
            quote(text)
        )));
    }
    Ok(rule)
}

/// `90d`, `12w`, `1h` from now, or an RFC 3339 time; in the future and at most
/// [`MAX_LIFETIME`] ahead.
fn parse_expiry(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, AppError> {
    let text = text.trim();
    let expires_at = match DateTime::parse_from_rfc3339(text) {
        Ok(time) => time.with_timezone(&Utc),
        Err(_) => {
            let duration = airlock_config::parse_duration(text).map_err(|error| {
                AppError::BadRequest(format!(
                    "the expiry {} is neither a duration such as \"90d\" nor an RFC 3339 time: {error}",
                    quote(text)
                ))
            })?;
            if duration > MAX_LIFETIME {
                return Err(AppError::BadRequest(format!(
                    "the expiry {} is more than {} ahead; renew the waiver instead",
                    quote(text),
                    airlock_config::format_duration(MAX_LIFETIME)
                )));
            }
            now + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
        }
    };
    if expires_at <= now {
        return Err(AppError::BadRequest(format!("the expiry {} is not in the future", quote(text))));
    }
    if expires_at - now > chrono::Duration::from_std(MAX_LIFETIME).unwrap_or(chrono::Duration::MAX) {
        return Err(AppError::BadRequest(format!(
            "the expiry {} is more than {} ahead; renew the waiver instead",
            quote(text),
            airlock_config::format_duration(MAX_LIFETIME)
        )));
    }
    Ok(expires_at)
}

/// An npm version range.
#[derive(Debug, Clone)]
struct VersionRange(nodejs_semver::Range);

impl VersionRange {
    fn parse(text: &str) -> Result<VersionRange, AppError> {
        nodejs_semver::Range::parse(text)
            .map(VersionRange)
            .map_err(|error| AppError::BadRequest(format!("{} is not an npm version range: {error}", quote(text))))
    }

    /// A version that is not valid semver is in no range.
    fn contains(&self, version: &str) -> bool {
        nodejs_semver::Version::parse(version).is_ok_and(|parsed| self.0.satisfies(&parsed))
    }
}

/// A stored waiver, ready to match findings.
#[derive(Debug, Clone)]
pub struct Waiver {
    record: StoredWaiver,
    range: Option<VersionRange>,
}

impl Waiver {
    /// Prepares a stored waiver. A record that no longer validates (a rule removed from
    /// the catalogue, a range a stricter parser refuses) is an error: it is skipped.
    pub fn from_record(record: StoredWaiver) -> Result<Waiver, AppError> {
        parse_rule(&record.rule)?;
        let range = record.versions.as_deref().map(VersionRange::parse).transpose()?;
        Ok(Waiver { record, range })
    }

    /// The stored record.
    pub fn record(&self) -> &StoredWaiver {
        &self.record
    }

    /// Whether it applies at `now`: neither revoked nor expired.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.record.revoked.is_none() && now < self.record.expires_at
    }

    /// Whether it covers this package and version (active or not).
    pub fn covers(&self, name: &PackageName, version: &str) -> bool {
        self.record.package == name.as_str() && self.range.as_ref().is_none_or(|range| range.contains(version))
    }

    /// Whether it accepts findings of `rule` for this version at `now`.
    pub fn accepts(&self, rule: &str, name: &PackageName, version: &str, now: DateTime<Utc>) -> bool {
        self.record.rule == rule && self.is_active(now) && self.covers(name, version)
    }
}

/// Lowers the findings the waivers accept to `info`, noting the waiver in the message,
/// and sorts the report again (most severe first). Findings of the known-malware rules
/// are never lowered, whatever a record says.
pub fn apply(waivers: &[Waiver], name: &PackageName, version: &str, report: &mut ScanReport, now: DateTime<Utc>) {
    let unwaivable = |rule: &str| UNWAIVABLE_RULES.iter().any(|unwaivable| unwaivable.id() == rule);
    for finding in &mut report.findings {
        if finding.severity == Severity::Info || unwaivable(&finding.rule) {
            continue;
        }
        let Some(waiver) = waivers.iter().find(|waiver| waiver.accepts(&finding.rule, name, version, now)) else {
            continue;
        };
        let record = waiver.record();
        finding.message = format!(
            "[waived: {} finding accepted by waiver {} ({}, until {}): {}] {}",
            finding.severity,
            record.id,
            record.created_by,
            record.expires_at.format("%Y-%m-%d"),
            record.reason,
            finding.message
        );
        finding.severity = Severity::Info;
    }
    report.findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
}

/// Loads the stored waivers into the policy (at start, after each change here, and on
/// every dispatcher sweep, so a waiver added on another replica applies here too). A
/// record that no longer validates is skipped and logged: it accepts nothing, so the
/// version holds as without it. When the store cannot be read, the loaded waivers stay
/// as they were (none at start: fail closed).
pub async fn reload(store: &crate::store::Store, policy: &super::Policy) -> Result<(), AppError> {
    let waivers = store
        .waivers()
        .await?
        .into_iter()
        .filter_map(|record| {
            let id = record.id;
            Waiver::from_record(record)
                .inspect_err(|error| tracing::error!(%error, waiver.id = id, "skipping a stored waiver"))
                .ok()
        })
        .collect();
    policy.set_waivers(waivers);
    Ok(())
}

/// [`reload`] after a change that is already stored: a failure to read back is logged,
/// not reported as a failure of the change (the next sweep loads it).
async fn reload_after_change(store: &crate::store::Store, policy: &super::Policy) {
    if let Err(error) = reload(store, policy).await {
        tracing::error!(%error, "reloading the waivers after a change; the next sweep retries");
    }
}

/// Validates and stores a waiver (audited as `waiver-add`) and applies it at once.
pub async fn create(
    store: &crate::store::Store,
    policy: &super::Policy,
    request: &WaiverRequest<'_>,
    admin: &str,
    now: DateTime<Utc>,
) -> Result<StoredWaiver, AppError> {
    let record = request.validate(admin, now)?;
    let stored = store.add_waiver(record).await?;
    reload_after_change(store, policy).await;
    Ok(stored)
}

/// Revokes a waiver (audited as `waiver-revoke`); it stops applying at once.
pub async fn revoke(
    store: &crate::store::Store,
    policy: &super::Policy,
    id: u64,
    admin: &str,
    now: DateTime<Utc>,
) -> Result<StoredWaiver, AppError> {
    let revoked = store
        .revoke_waiver(id, &format!("admin:{admin}"), now)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("there is no waiver {id}")))?;
    reload_after_change(store, policy).await;
    Ok(revoked)
}

/// The held versions of a package that the active waivers would release: held by the
/// checks (not by an admin or the known-malware feed), scanned, and every holding
/// finding accepted by an active waiver. Oldest version record first.
pub async fn held_versions_waived(
    store: &crate::store::Store,
    policy: &super::Policy,
    name: &PackageName,
    now: DateTime<Utc>,
) -> Result<Vec<String>, AppError> {
    let threshold = policy.hold_severity();
    let waivers = policy.waivers();
    let mut versions = Vec::new();
    for (version, record) in store.versions(name).await? {
        if record.state != crate::store::VersionState::Held || record.decided_by.as_deref() != Some("pipeline") {
            continue;
        }
        let Some(checks) = store.checks::<super::checks::CheckRecord>(name, &version).await? else { continue };
        if !matches!(checks.report.verdict, airlock_scanner::Verdict::Scanned) {
            continue;
        }
        let mut holding = checks.report.findings.iter().filter(|finding| finding.severity >= threshold).peekable();
        if holding.peek().is_none() {
            continue;
        }
        let all_waived = holding.all(|finding| {
            !UNWAIVABLE_RULES.iter().any(|rule| rule.id() == finding.rule)
                && waivers.iter().any(|waiver| waiver.accepts(&finding.rule, name, &version, now))
        });
        if all_waived {
            versions.push(version);
        }
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use airlock_scanner::{Finding, Verdict};

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn request<'a>(rule: &'a str, versions: Option<&'a str>, expires: &'a str) -> WaiverRequest<'a> {
        WaiverRequest { rule, package: "left-pad", versions, reason: "reviewed: builds a native add-on", expires }
    }

    fn waiver(rule: &str, versions: Option<&str>) -> Waiver {
        let mut record = request(rule, versions, "90d").validate("alice", now()).unwrap();
        record.id = 7;
        Waiver::from_record(record).unwrap()
    }

    fn finding(rule: &str, severity: Severity) -> Finding {
        Finding { rule: rule.into(), severity, message: "found it".into(), location: None, excerpt: None }
    }

    fn report(findings: Vec<Finding>) -> ScanReport {
        ScanReport { verdict: Verdict::Scanned, findings, package: None, summary: None, diff: None }
    }

    fn name(text: &str) -> PackageName {
        PackageName::parse(text).unwrap()
    }

    #[test]
    fn requests_are_validated_with_messages_quoting_the_input() {
        let record = request("install-script", Some("^1.2.0"), "90d").validate("alice", now()).unwrap();
        assert_eq!(record.expires_at, now() + chrono::Duration::days(90));
        assert_eq!(record.created_by, "admin:alice");
        assert_eq!(record.versions.as_deref(), Some("^1.2.0"));
        assert_eq!(request("install-script", Some("*"), "90d").validate("a", now()).unwrap().versions, None);

        let error = |request: WaiverRequest<'_>| request.validate("alice", now()).unwrap_err().to_string();
        assert!(error(request("no-such-rule", None, "90d")).contains("unknown rule \"no-such-rule\""));
        assert!(error(request("install-script", Some("not a range!"), "90d")).contains("\"not a range!\""));
        assert!(error(request("install-script", None, "400d")).contains("more than"));
        assert!(error(request("install-script", None, "2030-01-01T00:00:00Z")).contains("more than"));
        assert!(error(request("install-script", None, "2026-05-01T00:00:00Z")).contains("not in the future"));
        assert!(error(request("install-script", None, "soon")).contains("\"soon\""));
        assert!(error(WaiverRequest { reason: "  ", ..request("install-script", None, "90d") }).contains("reason"));
        let long = "x".repeat(MAX_REASON + 1);
        assert!(error(WaiverRequest { reason: &long, ..request("install-script", None, "90d") }).contains("longer"));
        assert!(error(WaiverRequest { package: "../etc", ..request("install-script", None, "90d") }).contains("etc"));
        let in_a_year = request("install-script", None, "2027-05-31T00:00:00Z").validate("a", now()).unwrap();
        assert_eq!(in_a_year.expires_at.to_rfc3339(), "2027-05-31T00:00:00+00:00");
    }

    #[test]
    fn known_malware_rules_cannot_be_waived() {
        for rule in UNWAIVABLE_RULES {
            let error = request(rule.id(), None, "30d").validate("alice", now()).unwrap_err().to_string();
            assert!(error.contains("known-malware feed and cannot be waived"), "{error}");
        }
        // Even a record that got into the store some other way lowers nothing.
        let mut record = request("install-script", None, "30d").validate("alice", now()).unwrap();
        record.rule = Rule::KnownMaliciousVersion.id().into();
        assert!(Waiver::from_record(record).is_err());
    }

    #[test]
    fn a_waiver_matches_its_rule_package_and_range_only() {
        let ranged = waiver("install-script", Some(">=1.2.0 <2"));
        let package = name("left-pad");
        assert!(ranged.accepts("install-script", &package, "1.2.0", now()));
        assert!(ranged.accepts("install-script", &package, "1.9.3", now()));
        assert!(!ranged.accepts("install-script", &package, "2.0.0", now()));
        assert!(!ranged.accepts("install-script", &package, "1.1.9", now()));
        assert!(!ranged.accepts("install-script", &package, "not-semver", now()));
        assert!(!ranged.accepts("native-build", &package, "1.2.0", now()));
        assert!(!ranged.accepts("install-script", &name("left-pad-2"), "1.2.0", now()));
        let every = waiver("install-script", None);
        assert!(every.accepts("install-script", &package, "not-semver", now()));
        assert!(every.accepts("install-script", &package, "0.0.1", now()));
    }

    #[test]
    fn expired_and_revoked_waivers_stop_applying() {
        let active = waiver("install-script", None);
        let package = name("left-pad");
        let expiry = active.record().expires_at;
        assert!(active.accepts("install-script", &package, "1.0.0", expiry - chrono::Duration::seconds(1)));
        assert!(!active.accepts("install-script", &package, "1.0.0", expiry));
        let mut record = active.record().clone();
        record.revoked = Some(crate::store::WaiverRevocation { by: "admin:bob".into(), at: now() });
        let revoked = Waiver::from_record(record).unwrap();
        assert!(!revoked.accepts("install-script", &package, "1.0.0", now()));
    }

    #[test]
    fn waived_findings_are_lowered_and_noted_never_removed() {
        let waivers = [waiver("install-script", None)];
        let mut report = report(vec![
            finding("install-script", Severity::High),
            finding("native-build", Severity::Medium),
            finding("known-malicious-version", Severity::Critical),
        ]);
        apply(&waivers, &name("left-pad"), "1.0.0", &mut report, now());
        let summary: Vec<(&str, Severity)> =
            report.findings.iter().map(|finding| (finding.rule.as_str(), finding.severity)).collect();
        assert_eq!(
            summary,
            vec![
                ("known-malicious-version", Severity::Critical),
                ("native-build", Severity::Medium),
                ("install-script", Severity::Info),
            ]
        );
        let waived = &report.findings[2].message;
        assert!(waived.starts_with("[waived: high finding accepted by waiver 7 (admin:alice, until 2026-08-30): reviewed: builds a native add-on] found it"), "{waived}");

        // Another package's findings stay as they are.
        let mut other = report_with_install_script();
        apply(&waivers, &name("right-pad"), "1.0.0", &mut other, now());
        assert_eq!(other.findings[0].severity, Severity::High);
    }

    fn report_with_install_script() -> ScanReport {
        report(vec![finding("install-script", Severity::High)])
    }
}
