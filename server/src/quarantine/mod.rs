//! The quarantine: whether a version may be listed and served, the policy that decides,
//! and the pipeline that checks versions and records decisions.
//!
//! Architecture invariant: only this module constructs a [`Released`], and the tarball
//! route serves nothing else. So no byte reaches a client unless [`authorize`] said yes
//! for that exact version and integrity, at that moment.

pub mod checks;
pub mod dependencies;
pub mod pipeline;
pub mod policy;
pub mod provenance;
pub mod review;
pub mod waivers;
pub mod worker;

use chrono::{DateTime, Utc};

use crate::error::AppError;
use crate::npm::{Integrity, PackageName};
use crate::store::{VersionRecord, VersionState};
pub use policy::Policy;

/// Whether a version is visible to clients, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Released: listed and served.
    Installable,
    /// Listed, but one step must run before its bytes are served: the checks of an
    /// established version (first download), or the release of a version whose
    /// cooling period just ended. The tarball route runs it inline.
    Provisional,
    /// Younger than its cooling period (checked or still being checked).
    Cooling {
        /// When it leaves the cooling period.
        until: DateTime<Utc>,
        /// Whether its checks have passed already.
        checked: bool,
    },
    /// New, past its cooling period, and its checks have not finished yet.
    Checking,
    /// A person must decide.
    Held {
        /// Why.
        reason: String,
    },
    /// Never installable.
    Rejected {
        /// Who decided.
        by: String,
        /// Why.
        reason: String,
    },
    /// The upstream now declares other bytes than when Airlock first saw the version.
    /// Fails closed: neither the old nor the new bytes are offered.
    IntegrityChanged {
        /// The integrity Airlock recorded at first sight.
        recorded: String,
        /// What the upstream declares now.
        declared: String,
    },
    /// The packument entry cannot be served safely (no usable integrity, no record).
    Unusable {
        /// Why.
        reason: String,
    },
}

/// Decides a version's visibility at `now`.
pub fn decide(
    name: &PackageName,
    version: &str,
    record: &VersionRecord,
    declared_integrity: &Integrity,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Visibility {
    let declared = declared_integrity.to_string();
    if declared != record.integrity {
        return Visibility::IntegrityChanged { recorded: record.integrity.clone(), declared };
    }
    if let Some(rule) = policy.denied(name, version) {
        return Visibility::Rejected {
            by: "policy".into(),
            reason: rule.reason.clone().unwrap_or_else(|| format!("a deny rule covers {}", rule.package)),
        };
    }
    let until = policy.cooling_until(name, version, record.effective_published);
    let cooled = now >= until;
    // Old enough when Airlock first saw it: such a version may be listed before its
    // checks ran (they run at its first download). A new version is listed only once
    // its checks passed.
    let established = until < record.first_seen;
    let reason = || record.reason.clone().unwrap_or_default();
    match record.state {
        VersionState::Released => Visibility::Installable,
        VersionState::Rejected => Visibility::Rejected {
            by: record.decided_by.clone().unwrap_or_else(|| "an admin".into()),
            reason: reason(),
        },
        VersionState::Held => Visibility::Held { reason: reason() },
        VersionState::Cooling if cooled => Visibility::Provisional,
        VersionState::Checking if established => Visibility::Provisional,
        VersionState::Checking if cooled => Visibility::Checking,
        VersionState::Cooling => Visibility::Cooling { until, checked: true },
        VersionState::Checking => Visibility::Cooling { until, checked: false },
    }
}

impl Visibility {
    /// True when clients may see the version in packuments.
    pub fn is_listed(&self) -> bool {
        matches!(self, Visibility::Installable | Visibility::Provisional)
    }

    /// True when the bytes may be served without a further step.
    pub fn is_installable(&self) -> bool {
        matches!(self, Visibility::Installable)
    }

    /// The one-sentence explanation npm prints, naming the package and version.
    pub fn explain(&self, name: &PackageName, version: &str) -> String {
        let time = |until: &DateTime<Utc>| until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match self {
            Visibility::Installable | Visibility::Provisional => format!("{name}@{version} is installable"),
            Visibility::Cooling { until, checked: true } => format!(
                "{name}@{version} is in quarantine: its checks passed but it is younger than the cooling period; it can be installed from {} unless an Airlock admin approves it sooner",
                time(until)
            ),
            Visibility::Cooling { until, checked: false } => format!(
                "{name}@{version} is in quarantine: it is younger than the cooling period and can be installed from {} if its checks pass, unless an Airlock admin approves it sooner",
                time(until)
            ),
            Visibility::Checking => {
                format!("{name}@{version} is in quarantine: Airlock is still checking it; try again in a minute")
            }
            Visibility::Held { reason } => {
                format!("{name}@{version} is held in quarantine until an Airlock admin decides: {reason}")
            }
            Visibility::Rejected { by, reason } => {
                format!("{name}@{version} was rejected by {by} and cannot be installed: {reason}")
            }
            Visibility::IntegrityChanged { recorded, declared } => format!(
                "{name}@{version} is in quarantine: the upstream registry changed its integrity from {recorded} to {declared}, so neither is served"
            ),
            Visibility::Unusable { reason } => format!("{name}@{version} cannot be served: {reason}"),
        }
    }
}

/// Proof that one version, with one integrity, was authorised to be served.
///
/// Invariant: constructed only by [`authorize`]; fields are private.
#[derive(Debug, Clone)]
pub struct Released {
    name: PackageName,
    version: String,
    integrity: Integrity,
}

impl Released {
    /// The package.
    pub fn name(&self) -> &PackageName {
        &self.name
    }

    /// The version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The only bytes that may be served for it.
    pub fn integrity(&self) -> &Integrity {
        &self.integrity
    }
}

/// Checks a version at `now` and returns the proof the tarball route needs, or the
/// quarantine error the client sees (with the status page that explains it).
pub fn authorize(
    name: &PackageName,
    version: &str,
    record: &VersionRecord,
    declared_integrity: &Integrity,
    policy: &Policy,
    now: DateTime<Utc>,
    status_url: &str,
) -> Result<Released, AppError> {
    match decide(name, version, record, declared_integrity, policy, now) {
        Visibility::Installable => {
            Ok(Released { name: name.clone(), version: version.to_owned(), integrity: declared_integrity.clone() })
        }
        hidden => Err(AppError::Quarantined(format!("{} (details: {status_url})", hidden.explain(name, version)))),
    }
}
