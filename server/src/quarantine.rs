//! Whether a version may be listed and served, and the proof type the tarball route
//! requires.
//!
//! Today the decision is the cooling period and the integrity pin; the check pipeline
//! and admin decisions extend [`Visibility`] without changing its callers.
//!
//! Architecture invariant: only this module constructs a [`Released`], and the tarball
//! route serves nothing else. So no byte reaches a client unless [`authorize`] said yes
//! for that exact version and integrity.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::AppError;
use crate::npm::{Integrity, PackageName};
use crate::store::VersionRecord;

/// Whether a version is visible to clients, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Listed and served.
    Installable,
    /// Younger than the cooling period.
    Cooling {
        /// When it becomes installable.
        until: DateTime<Utc>,
    },
    /// The upstream now declares other bytes than when Airlock first saw the version.
    /// Fails closed: neither the old nor the new bytes are offered.
    IntegrityChanged {
        /// The integrity Airlock recorded at first sight.
        recorded: String,
        /// What the upstream declares now.
        declared: String,
    },
    /// The packument entry cannot be served safely (no usable integrity).
    Unusable {
        /// Why.
        reason: String,
    },
}

/// Decides a version's visibility at `now`.
pub fn decide(
    record: &VersionRecord,
    declared_integrity: &Integrity,
    cooling_period: Duration,
    now: DateTime<Utc>,
) -> Visibility {
    let declared = declared_integrity.to_string();
    if declared != record.integrity {
        return Visibility::IntegrityChanged { recorded: record.integrity.clone(), declared };
    }
    let until = record.effective_published + chrono::Duration::from_std(cooling_period).unwrap_or(chrono::Duration::MAX);
    if now < until {
        return Visibility::Cooling { until };
    }
    Visibility::Installable
}

impl Visibility {
    /// True when clients may see and fetch the version.
    pub fn is_installable(&self) -> bool {
        matches!(self, Visibility::Installable)
    }

    /// The one-sentence explanation npm prints, naming the package and version.
    pub fn explain(&self, name: &PackageName, version: &str) -> String {
        match self {
            Visibility::Installable => format!("{name}@{version} is installable"),
            Visibility::Cooling { until } => format!(
                "{name}@{version} is in quarantine: it is younger than the cooling period and can be installed from {} unless an Airlock admin approves it sooner",
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            Visibility::IntegrityChanged { recorded, declared } => format!(
                "{name}@{version} is in quarantine: the upstream registry changed its integrity from {recorded} to {declared}, so neither is served"
            ),
            Visibility::Unusable { reason } => {
                format!("{name}@{version} cannot be served: {reason}")
            }
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
/// quarantine error the client sees.
pub fn authorize(
    name: &PackageName,
    version: &str,
    record: &VersionRecord,
    declared_integrity: &Integrity,
    cooling_period: Duration,
    now: DateTime<Utc>,
) -> Result<Released, AppError> {
    match decide(record, declared_integrity, cooling_period, now) {
        Visibility::Installable => Ok(Released {
            name: name.clone(),
            version: version.to_owned(),
            integrity: declared_integrity.clone(),
        }),
        hidden => Err(AppError::Quarantined(hidden.explain(name, version))),
    }
}
