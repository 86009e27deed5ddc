//! Airlock's checks: pure functions from package bytes to a [`ScanReport`].
//!
//! Architecture invariant: nothing here does I/O, reads the clock or spawns work. The
//! server fetches tarballs, keys, attestations and source archives and hands over bytes.
//!
//! The static checks: [`scan_tarball`] reads the tarball (`tarball`, bounded by
//! [`ScanOptions`]) into [`PackageFiles`], `analysis` runs every rule (`rules::*`: the
//! package.json, file, JavaScript/TypeScript AST and typosquat checks) and `diff`
//! compares with the previous version. Provenance checks live in [`provenance`].
#![warn(missing_docs)]

mod analysis;
mod diff;
mod indicators;
mod manifest;
mod options;
mod package;
pub mod provenance;
mod report;
mod risk;
mod rules;
mod tarball;

pub use indicators::{FeedError, Indicators, MaliciousPackage, MaliciousVersions};
pub use manifest::{DEPENDENCY_FIELDS, INSTALL_LIFECYCLE_SCRIPTS, ManifestError, PackageManifest};
pub use options::{PublicationContext, ScanOptions};
pub use package::{PackageFile, PackageFiles, PackageLimitError};
pub use report::{DiffSummary, Finding, Location, PackageIdentity, ScanReport, ScanSummary, Severity, Verdict};
pub use rules::Rule;
pub use tarball::{TarballError, read_tarball};

/// Scans a package tarball (`.tgz` bytes), and what changed since `previous` when given.
///
/// Never panics and never fails: a tarball that cannot be read or breaks a limit in
/// `options` yields [`Verdict::Unscannable`], which holds the version. An unreadable
/// `previous` only drops the diff (with an info finding saying so): the previous version
/// is context, not the thing being judged.
pub fn scan_tarball(tarball: &[u8], previous: Option<&[u8]>, options: &ScanOptions) -> ScanReport {
    guard_against_panics(|| {
        let current = match read_tarball(tarball, options) {
            Ok(current) => current,
            Err(error) => return ScanReport::unscannable(error.to_string()),
        };
        match previous.map(|previous_bytes| read_tarball(previous_bytes, options)) {
            None => scan_files(&current, None, options),
            Some(Ok(previous)) => scan_files(&current, Some(&previous), options),
            Some(Err(error)) => {
                let mut report = scan_files(&current, None, options);
                report.extend_findings([Finding {
                    rule: Rule::DiffFiles.id().to_owned(),
                    severity: Severity::Info,
                    message: format!("The previous version could not be read, so there is no diff: {error}."),
                    location: None,
                    excerpt: None,
                }]);
                report
            }
        }
    })
}

/// Scans a package already in memory (an unpacked directory read by the CLI, or a
/// tarball read with [`read_tarball`]). Never panics.
pub fn scan_files(current: &PackageFiles, previous: Option<&PackageFiles>, options: &ScanOptions) -> ScanReport {
    guard_against_panics(|| {
        let current_analysis = analysis::analyse_package(current, options);
        let mut findings = current_analysis.findings.clone();
        let diff = previous.map(|previous| {
            let previous_analysis = analysis::analyse_package(previous, options);
            let (diff, diff_findings) = diff::diff_packages(current, &current_analysis, previous, &previous_analysis);
            findings.extend(diff_findings);
            diff
        });
        let mut report = ScanReport::scanned(findings);
        report.package = current_analysis
            .manifest
            .as_ref()
            .map(|manifest| PackageIdentity { name: manifest.name.clone(), version: manifest.version.clone() });
        report.summary = Some(current_analysis.summary);
        report.diff = diff;
        report
    })
}

/// Defence in depth for "never panics": a bug in a check must fail closed (the version
/// is held as unscannable), not take down the server's scan worker.
fn guard_against_panics(scan: impl FnOnce() -> ScanReport) -> ScanReport {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(scan)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        ScanReport::unscannable(format!("internal scanner error: {message}"))
    })
}
