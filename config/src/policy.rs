//! The value types of the quarantine policy: severities, package rules and admin tokens.

use sha2::{Digest as _, Sha256};

use crate::ConfigError;

/// A severity as written in the policy. Mirrors the scanner's severities; the server
/// maps one onto the other (this crate depends on no other workspace crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeverityLevel {
    /// `info`.
    Info,
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
    /// `critical`.
    Critical,
}

impl SeverityLevel {
    /// Parses `info`, `low`, `medium`, `high` or `critical`.
    pub fn parse(text: &str) -> Option<SeverityLevel> {
        Some(match text {
            "info" => SeverityLevel::Info,
            "low" => SeverityLevel::Low,
            "medium" => SeverityLevel::Medium,
            "high" => SeverityLevel::High,
            "critical" => SeverityLevel::Critical,
            _ => return None,
        })
    }

    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            SeverityLevel::Info => "info",
            SeverityLevel::Low => "low",
            SeverityLevel::Medium => "medium",
            SeverityLevel::High => "high",
            SeverityLevel::Critical => "critical",
        }
    }
}

/// A rule matching packages (`name`, `@scope/*`, `prefix*`, `*`) and optionally a
/// version range in npm's syntax.
#[derive(Debug, Clone)]
pub struct PackageRule {
    /// The package pattern as written.
    pub package: String,
    /// The range as written, if any.
    pub versions: Option<String>,
    range: Option<nodejs_semver::Range>,
    /// Why the rule exists.
    pub reason: Option<String>,
}

impl PackageRule {
    pub(crate) fn parse_all(
        key: &'static str,
        raw: Vec<crate::raw::RawPackageRule>,
    ) -> Result<Vec<PackageRule>, ConfigError> {
        raw.into_iter().map(|rule| PackageRule::parse(key, rule)).collect()
    }

    /// A rule made at run time (the admin UI's policy page), validated like a
    /// configured one; errors name `key`.
    pub fn new(
        key: &'static str,
        package: &str,
        versions: Option<&str>,
        reason: Option<&str>,
    ) -> Result<PackageRule, ConfigError> {
        PackageRule::parse(
            key,
            crate::raw::RawPackageRule {
                package: package.to_owned(),
                versions: versions.map(str::to_owned),
                reason: reason.map(str::to_owned),
            },
        )
    }

    fn parse(key: &'static str, raw: crate::raw::RawPackageRule) -> Result<PackageRule, ConfigError> {
        let pattern_ok = !raw.package.is_empty()
            && raw.package.len() <= 214
            && raw.package.chars().all(|c| c.is_ascii_alphanumeric() || "@/-._*~".contains(c))
            && !raw.package.trim_end_matches('*').contains('*');
        if !pattern_ok {
            return Err(ConfigError::Invalid {
                key,
                value: raw.package,
                reason: "expected a package name, `@scope/*`, a `prefix*` or `*`".into(),
            });
        }
        let range = match &raw.versions {
            None => None,
            Some(text) => Some(nodejs_semver::Range::parse(text).map_err(|error| ConfigError::Invalid {
                key,
                value: text.clone(),
                reason: format!("not an npm version range: {error}"),
            })?),
        };
        Ok(PackageRule { package: raw.package, versions: raw.versions, range, reason: raw.reason })
    }

    /// True when the rule covers this package (any version).
    pub fn matches_package(&self, name: &str) -> bool {
        match self.package.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == self.package,
        }
    }

    /// True when the rule covers this package and version. A version that is not
    /// valid semver only matches rules without a range.
    pub fn matches(&self, name: &str, version: &str) -> bool {
        if !self.matches_package(name) {
            return false;
        }
        match &self.range {
            None => true,
            Some(range) => nodejs_semver::Version::parse(version).is_ok_and(|parsed| range.satisfies(&parsed)),
        }
    }
}

/// An accepted token (admin or client): who holds it and the SHA-256 of its text. The token itself
/// is never kept.
#[derive(Clone)]
pub struct AdminToken {
    /// The actor recorded in the audit log.
    pub name: String,
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("AdminToken").field("name", &self.name).finish_non_exhaustive()
    }
}

impl AdminToken {
    pub(crate) fn from_hash(key: &'static str, name: &str, hex_text: &str) -> Result<AdminToken, ConfigError> {
        let invalid =
            |reason: &str| ConfigError::Invalid { key, value: format!("{name}: {hex_text}"), reason: reason.into() };
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            return Err(invalid("the name must be 1-64 letters, digits or -_.@"));
        }
        let bytes = hex_decode(hex_text.trim()).ok_or_else(|| invalid("sha256 must be 64 hex digits"))?;
        let sha256: [u8; 32] = bytes.try_into().map_err(|_| invalid("sha256 must be 64 hex digits"))?;
        Ok(AdminToken { name: name.to_owned(), sha256 })
    }

    pub(crate) fn from_plain(name: &str, token: &str) -> AdminToken {
        AdminToken { name: name.to_owned(), sha256: Sha256::digest(token.as_bytes()).into() }
    }
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|index| u8::from_str_radix(text.get(index..index + 2)?, 16).ok()).collect()
}
