//! The identity policy over verified provenance: repository URL normalisation, the
//! provenance repository against package.json's `repository`, continuity with the last
//! released version ("provenance regression"), and optional configured pins.
//!
//! Valid provenance only proves *some* workflow built the tarball; this decides whether
//! it is the workflow of the project the package claims to be.

use serde::{Deserialize, Serialize};

use super::attestations::ProvenanceIdentity;
use crate::{Finding, Severity};

/// A repository, normalised so different spellings of one repository compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RepositoryId {
    /// Lowercase host, such as `github.com`.
    pub host: String,
    /// Lowercase path without `.git`, such as `sigstore/sigstore-js`.
    pub path: String,
}

impl RepositoryId {
    /// `https://{host}/{path}`.
    pub fn https_url(&self) -> String {
        format!("https://{}/{}", self.host, self.path)
    }

    /// The owner and name for forges with two-level paths (GitHub), if the path has
    /// exactly that shape.
    pub fn owner_and_name(&self) -> Option<(&str, &str)> {
        let (owner, name) = self.path.split_once('/')?;
        (!owner.is_empty() && !name.is_empty() && !name.contains('/')).then_some((owner, name))
    }
}

impl std::fmt::Display for RepositoryId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}/{}", self.host, self.path)
    }
}

/// Normalises the ways npm lets a repository be written: `git+https://…`, `git://…`,
/// `git+ssh://git@…`, `ssh://…`, scp-like `git@host:owner/repo`, `github:owner/repo`,
/// `gitlab:` and `bitbucket:` shorthands, bare `owner/repo` (GitHub), a `.git` suffix,
/// a `#ref` fragment, trailing slashes and case. GitHub URLs that point into a tree
/// (`/tree/main/packages/x`) keep only `owner/repo`. `None` when it is not a
/// repository URL.
pub fn normalize_repository_url(url: &str) -> Option<RepositoryId> {
    let url = url.trim();
    let url = url.split('#').next().unwrap_or(url);
    let (host, path) = if let Some((scheme, rest)) = url.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        let known = ["https", "http", "git", "ssh", "git+https", "git+http", "git+ssh", "git+git"];
        if !known.contains(&scheme.as_str()) {
            return None;
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        // Drop `user@`; then `host:port`, or an scp path inside a URL
        // (`git+ssh://git@github.com:owner/repo`), which also occurs in package.json.
        let host_and_more = authority.rsplit('@').next().unwrap_or(authority);
        let (host, path) = match host_and_more.split_once(':') {
            Some((host, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => (host, path.to_owned()),
            Some((host, owner)) => (host, format!("{owner}/{path}")),
            None => (host_and_more, path.to_owned()),
        };
        (host.to_owned(), path)
    } else if let Some((prefix, rest)) = url.split_once(':') {
        match prefix.to_ascii_lowercase().as_str() {
            "github" => ("github.com".to_owned(), rest.to_owned()),
            "gitlab" => ("gitlab.com".to_owned(), rest.to_owned()),
            "bitbucket" => ("bitbucket.org".to_owned(), rest.to_owned()),
            "gist" => return None,
            // scp-like syntax: `git@github.com:owner/repo.git`.
            user_host if user_host.contains('@') => {
                (user_host.rsplit('@').next().unwrap_or(user_host).to_owned(), rest.to_owned())
            }
            _ => return None,
        }
    } else {
        // npm's bare shorthand `owner/repo` means GitHub.
        let mut parts = url.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(owner), Some(name), None) if !owner.is_empty() && !name.is_empty() => {
                ("github.com".to_owned(), url.to_owned())
            }
            _ => return None,
        }
    };
    let host = host.trim().to_ascii_lowercase();
    let mut segments: Vec<&str> = path.split('/').filter(|segment| !segment.is_empty()).collect();
    if host == "github.com" || host.starts_with("github.") || host == "bitbucket.org" {
        segments.truncate(2);
    }
    if let Some(last) = segments.last_mut() {
        *last = last.strip_suffix(".git").unwrap_or(last);
    }
    if host.is_empty()
        || segments.len() < 2
        || segments.iter().any(|segment| segment.is_empty() || *segment == "." || *segment == "..")
    {
        return None;
    }
    Some(RepositoryId { host, path: segments.join("/").to_ascii_lowercase() })
}

/// package.json's `repository` (a string, or `{ type, url, directory }`), normalised,
/// with the monorepo `directory` when given.
pub fn package_json_repository(package_json: &serde_json::Value) -> Option<(RepositoryId, Option<String>)> {
    let repository = package_json.get("repository")?;
    let (url, directory) = match repository {
        serde_json::Value::String(url) => (url.as_str(), None),
        serde_json::Value::Object(fields) => (
            fields.get("url")?.as_str()?,
            fields
                .get("directory")
                .and_then(|directory| directory.as_str())
                .map(|directory| directory.trim_matches('/').to_owned())
                .filter(|directory| !directory.is_empty()),
        ),
        _ => return None,
    };
    Some((normalize_repository_url(url)?, directory))
}

/// Optional expectations for a package or scope, from configuration. Empty pins check
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenancePins {
    /// The repository provenance must name, in any spelling `normalize_repository_url`
    /// reads.
    pub repository: Option<String>,
    /// The workflow file, such as `.github/workflows/release.yml`.
    pub workflow: Option<String>,
    /// A glob over the git ref (`*` matches any run of characters), such as
    /// `refs/tags/v*`.
    pub ref_pattern: Option<String>,
    /// When true, a version without verified provenance violates the pins.
    pub require_provenance: bool,
}

/// What was recorded about the last released version, to compare against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousProvenance {
    /// The last released version.
    pub version: String,
    /// Its verified provenance identity, or `None` when it had none.
    pub identity: Option<ProvenanceIdentity>,
}

/// How the provenance repository relates to package.json's `repository`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum RepositoryMatch {
    /// They name the same repository.
    Matches {
        /// The repository.
        repository: RepositoryId,
    },
    /// They name different repositories.
    Mismatch {
        /// From the provenance certificate.
        provenance: String,
        /// From package.json.
        package_json: String,
    },
    /// The provenance names a repository; package.json names none (or an unreadable one).
    PackageJsonHasNoRepository {
        /// From the provenance certificate.
        provenance: String,
    },
    /// There is no verified provenance to compare.
    NoProvenance,
}

/// A change in provenance since the last released version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ProvenanceRegression {
    /// The previous version had provenance; this one has none.
    Disappeared {
        /// The previous version.
        previous_version: String,
        /// Its repository.
        previous_repository: String,
    },
    /// Built from another repository.
    RepositoryChanged {
        /// The previous version.
        previous_version: String,
        /// Its repository.
        previous: String,
        /// This version's repository.
        current: String,
    },
    /// Built by another workflow file.
    WorkflowChanged {
        /// The previous version.
        previous_version: String,
        /// Its workflow.
        previous: String,
        /// This version's workflow.
        current: String,
    },
}

/// A configured pin the provenance does not satisfy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "pin", rename_all = "kebab-case")]
pub enum PinViolation {
    /// Pins exist (or require provenance) but the version has no verified provenance.
    NoProvenance,
    /// Another repository.
    Repository {
        /// The pinned value.
        expected: String,
        /// The provenance's value.
        actual: String,
    },
    /// Another workflow.
    Workflow {
        /// The pinned value.
        expected: String,
        /// The provenance's value, if any.
        actual: Option<String>,
    },
    /// A ref outside the pattern.
    Ref {
        /// The pinned pattern.
        pattern: String,
        /// The provenance's ref, if any.
        actual: Option<String>,
    },
}

/// The identity policy's verdict for one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityPolicyResult {
    /// The provenance repository against package.json's.
    pub repository: RepositoryMatch,
    /// Changes since the last released version.
    pub regressions: Vec<ProvenanceRegression>,
    /// Configured pins that do not hold.
    pub pin_violations: Vec<PinViolation>,
}

impl IdentityPolicyResult {
    /// The findings: `provenance-repository-mismatch` (high; medium when package.json
    /// names no repository), `provenance-regression` (high), `provenance-pin-violation`
    /// (high).
    pub fn findings(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        match &self.repository {
            RepositoryMatch::Mismatch { provenance, package_json } => findings.push(finding(
                "provenance-repository-mismatch",
                Severity::High,
                format!(
                    "The provenance says it was built from `{provenance}` but package.json names `{package_json}`."
                ),
            )),
            RepositoryMatch::PackageJsonHasNoRepository { provenance } => findings.push(finding(
                "provenance-repository-mismatch",
                Severity::Medium,
                format!("The provenance says it was built from `{provenance}` but package.json names no repository."),
            )),
            RepositoryMatch::Matches { .. } | RepositoryMatch::NoProvenance => {}
        }
        for regression in &self.regressions {
            let message = match regression {
                ProvenanceRegression::Disappeared { previous_version, previous_repository } => format!(
                    "Version {previous_version} had provenance from `{previous_repository}`; this version has none."
                ),
                ProvenanceRegression::RepositoryChanged { previous_version, previous, current } => {
                    format!("Version {previous_version} was built from `{previous}`; this version from `{current}`.")
                }
                ProvenanceRegression::WorkflowChanged { previous_version, previous, current } => format!(
                    "Version {previous_version} was built by workflow `{previous}`; this version by `{current}`."
                ),
            };
            findings.push(finding("provenance-regression", Severity::High, message));
        }
        for violation in &self.pin_violations {
            let message = match violation {
                PinViolation::NoProvenance => {
                    "Provenance is pinned for this package but the version has no verified provenance.".to_owned()
                }
                PinViolation::Repository { expected, actual } => {
                    format!("Provenance repository `{actual}` is not the pinned `{expected}`.")
                }
                PinViolation::Workflow { expected, actual } => format!(
                    "Provenance workflow `{}` is not the pinned `{expected}`.",
                    actual.as_deref().unwrap_or("(none)")
                ),
                PinViolation::Ref { pattern, actual } => format!(
                    "Provenance ref `{}` does not match the pinned pattern `{pattern}`.",
                    actual.as_deref().unwrap_or("(none)")
                ),
            };
            findings.push(finding("provenance-pin-violation", Severity::High, message));
        }
        findings
    }
}

fn finding(rule: &str, severity: Severity, message: String) -> Finding {
    Finding { rule: rule.to_owned(), severity, message, location: None, excerpt: None }
}

/// Applies the identity policy. `identity` is the verified provenance of this version
/// (`None` without one), `package_json` the tarball's package.json, `previous` what was
/// recorded for the last released version.
pub fn check_identity_policy(
    identity: Option<&ProvenanceIdentity>,
    package_json: &serde_json::Value,
    previous: Option<&PreviousProvenance>,
    pins: &ProvenancePins,
) -> IdentityPolicyResult {
    let repository = match identity {
        None => RepositoryMatch::NoProvenance,
        Some(identity) => {
            let provenance = normalize_repository_url(&identity.source_repository_uri);
            match (provenance, package_json_repository(package_json)) {
                (Some(provenance), Some((declared, _))) if provenance == declared => {
                    RepositoryMatch::Matches { repository: provenance }
                }
                (_, Some((declared, _))) => RepositoryMatch::Mismatch {
                    provenance: identity.source_repository_uri.clone(),
                    package_json: declared.to_string(),
                },
                (_, None) => {
                    RepositoryMatch::PackageJsonHasNoRepository { provenance: identity.source_repository_uri.clone() }
                }
            }
        }
    };
    IdentityPolicyResult {
        repository,
        regressions: regressions(identity, previous),
        pin_violations: pin_violations(identity, pins),
    }
}

fn regressions(
    identity: Option<&ProvenanceIdentity>,
    previous: Option<&PreviousProvenance>,
) -> Vec<ProvenanceRegression> {
    let Some(previous) = previous else {
        return Vec::new();
    };
    let Some(previous_identity) = &previous.identity else {
        return Vec::new();
    };
    let Some(identity) = identity else {
        return vec![ProvenanceRegression::Disappeared {
            previous_version: previous.version.clone(),
            previous_repository: previous_identity.source_repository_uri.clone(),
        }];
    };
    let mut regressions = Vec::new();
    let same_repository = match (
        normalize_repository_url(&previous_identity.source_repository_uri),
        normalize_repository_url(&identity.source_repository_uri),
    ) {
        (Some(before), Some(now)) => before == now,
        _ => previous_identity.source_repository_uri == identity.source_repository_uri,
    };
    if !same_repository {
        regressions.push(ProvenanceRegression::RepositoryChanged {
            previous_version: previous.version.clone(),
            previous: previous_identity.source_repository_uri.clone(),
            current: identity.source_repository_uri.clone(),
        });
    }
    if let Some(before) = &previous_identity.workflow_path
        && identity.workflow_path.as_ref() != Some(before)
    {
        regressions.push(ProvenanceRegression::WorkflowChanged {
            previous_version: previous.version.clone(),
            previous: before.clone(),
            current: identity.workflow_path.clone().unwrap_or_else(|| "(none)".to_owned()),
        });
    }
    regressions
}

fn pin_violations(identity: Option<&ProvenanceIdentity>, pins: &ProvenancePins) -> Vec<PinViolation> {
    let pinned = pins.repository.is_some() || pins.workflow.is_some() || pins.ref_pattern.is_some();
    let Some(identity) = identity else {
        return if pinned || pins.require_provenance { vec![PinViolation::NoProvenance] } else { Vec::new() };
    };
    let mut violations = Vec::new();
    if let Some(expected) = &pins.repository {
        let matches =
            match (normalize_repository_url(expected), normalize_repository_url(&identity.source_repository_uri)) {
                (Some(expected), Some(actual)) => expected == actual,
                _ => false,
            };
        if !matches {
            violations.push(PinViolation::Repository {
                expected: expected.clone(),
                actual: identity.source_repository_uri.clone(),
            });
        }
    }
    if let Some(expected) = &pins.workflow {
        let expected_path = expected.trim_start_matches("./");
        if identity.workflow_path.as_deref() != Some(expected_path) {
            violations
                .push(PinViolation::Workflow { expected: expected.clone(), actual: identity.workflow_path.clone() });
        }
    }
    if let Some(pattern) = &pins.ref_pattern {
        let matches = identity.source_ref.as_deref().is_some_and(|actual| glob_matches(pattern, actual));
        if !matches {
            violations.push(PinViolation::Ref { pattern: pattern.clone(), actual: identity.source_ref.clone() });
        }
    }
    violations
}

/// `*` matches any run of characters (including `/`); everything else is literal.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(index) => rest = &rest[index + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests;
