//! Known-malware indicators as data: what a feed of OSV advisories (the OpenSSF
//! malicious-packages `MAL-*` format) says is malicious, handed to the scanner through
//! [`ScanOptions::indicators`](crate::ScanOptions::indicators).
//!
//! Nothing here is compiled in: the server reads the feed files and calls
//! [`Indicators::from_osv_documents`]; a feed can only add holds (an indicator found
//! is a critical finding), never release anything.
//!
//! An advisory names malicious versions in `affected[]` (`package.ecosystem` must be
//! `npm`; `versions` lists exact versions, and a `ranges` entry with `introduced: "0"`
//! and no `fixed` means every version). Indicators of compromise, when the advisory
//! has them, sit in `database_specific.iocs`:
//!
//! ```json
//! {"id": "MAL-2025-0001", "summary": "…",
//!  "affected": [{"package": {"ecosystem": "npm", "name": "x"}, "versions": ["1.0.16"]}],
//!  "database_specific": {"iocs": {"domains": ["evil.example"], "wallets": ["0x…"],
//!                                 "strings": ["s1ngularity-repository"]}}}
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A feed file or entry that does not parse; names the file, the entry and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("feed file `{file}`, entry `{entry}`: {reason}")]
pub struct FeedError {
    /// The file as the caller named it.
    pub file: String,
    /// The advisory id, or `(document)` when the file itself is not an advisory.
    pub entry: String,
    /// What is wrong, quoting the bad value.
    pub reason: String,
}

/// Which versions of a package a feed lists as malicious.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaliciousVersions {
    /// Every version (the whole package is malicious).
    All,
    /// These exact versions.
    Exact(BTreeSet<String>),
}

/// A known-malicious listing: which versions, and the advisories that say so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaliciousPackage {
    /// Which versions.
    pub versions: MaliciousVersions,
    /// The advisory ids (`MAL-2025-1234`).
    pub advisories: BTreeSet<String>,
}

/// Everything the feeds know, merged: indicators of compromise and malicious versions.
/// Each indicator maps to the advisory that names it, for the finding's message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicators {
    /// Attacker domains, lowercase (a subdomain of one matches too).
    pub domains: BTreeMap<String, String>,
    /// Attacker wallet addresses, as written.
    pub wallets: BTreeMap<String, String>,
    /// Other strings known from an attack (repository names, webhook ids), lowercase.
    pub strings: BTreeMap<String, String>,
    /// Malicious versions by package name.
    pub packages: BTreeMap<String, MaliciousPackage>,
}

/// The shape of an OSV advisory, only the fields used.
#[derive(Deserialize)]
struct OsvAdvisory {
    id: String,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    affected: Vec<OsvAffected>,
    #[serde(default)]
    database_specific: Option<OsvDatabaseSpecific>,
}

#[derive(Deserialize)]
struct OsvAffected {
    package: OsvPackage,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    ranges: Vec<OsvRange>,
}

#[derive(Deserialize)]
struct OsvPackage {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct OsvRange {
    #[serde(default)]
    events: Vec<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct OsvDatabaseSpecific {
    #[serde(default)]
    iocs: Option<OsvIndicators>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OsvIndicators {
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    wallets: Vec<String>,
    #[serde(default)]
    strings: Vec<String>,
}

/// Shortest string indicator: shorter ones would match ordinary text.
const MIN_STRING_INDICATOR_CHARS: usize = 6;

impl Indicators {
    /// Parses OSV documents, each `(file name, bytes)`; a file holds one advisory or a
    /// JSON array of them. Fails on the first bad file or entry, naming both, so that
    /// the caller keeps its previous feed.
    pub fn from_osv_documents<'a>(
        documents: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Indicators, FeedError> {
        let mut indicators = Indicators::default();
        for (file, bytes) in documents {
            let error =
                |entry: &str, reason: String| FeedError { file: file.to_owned(), entry: entry.to_owned(), reason };
            let value: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|parse| error("(document)", format!("not JSON: {parse}")))?;
            let entries = match value {
                serde_json::Value::Array(entries) => entries,
                single => vec![single],
            };
            for (index, entry) in entries.into_iter().enumerate() {
                let entry_name =
                    entry.get("id").and_then(|id| id.as_str()).map_or_else(|| format!("#{index}"), str::to_owned);
                let advisory: OsvAdvisory = serde_json::from_value(entry)
                    .map_err(|parse| error(&entry_name, format!("not an OSV advisory: {parse}")))?;
                indicators.add_advisory(advisory).map_err(|reason| error(&entry_name, reason))?;
            }
        }
        Ok(indicators)
    }

    fn add_advisory(&mut self, advisory: OsvAdvisory) -> Result<(), String> {
        if advisory.id.trim().is_empty() {
            return Err("the advisory has an empty `id`".to_owned());
        }
        if advisory.withdrawn.is_some() {
            return Ok(());
        }
        let source = match &advisory.summary {
            Some(summary) if !summary.trim().is_empty() => format!("{} ({})", advisory.id, summary.trim()),
            _ => advisory.id.clone(),
        };
        for affected in &advisory.affected {
            if !affected.package.ecosystem.eq_ignore_ascii_case("npm") {
                continue;
            }
            let name = affected.package.name.trim();
            if name.is_empty() {
                return Err("an `affected` entry has an empty package name".to_owned());
            }
            let every_version = affected.ranges.iter().any(|range| {
                range.events.iter().any(|event| event.get("introduced").is_some_and(|version| version == "0"))
                    && !range.events.iter().any(|event| event.contains_key("fixed"))
            });
            if !every_version && affected.versions.is_empty() {
                return Err(format!("`{name}` lists no versions and no open range"));
            }
            let listing = self.packages.entry(name.to_owned()).or_insert_with(|| MaliciousPackage {
                versions: MaliciousVersions::Exact(BTreeSet::new()),
                advisories: BTreeSet::new(),
            });
            listing.advisories.insert(advisory.id.clone());
            match (&mut listing.versions, every_version) {
                (versions, true) => *versions = MaliciousVersions::All,
                (MaliciousVersions::All, false) => {}
                (MaliciousVersions::Exact(versions), false) => {
                    versions.extend(affected.versions.iter().map(|version| version.trim().to_owned()))
                }
            }
        }
        if let Some(iocs) = advisory.database_specific.and_then(|specific| specific.iocs) {
            for domain in iocs.domains {
                let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
                if !domain.contains('.') || domain.contains(['/', ' ', ':']) {
                    return Err(format!("`{domain}` is not a domain name"));
                }
                self.domains.insert(domain, source.clone());
            }
            for wallet in iocs.wallets {
                let wallet = wallet.trim().to_owned();
                if wallet.len() < 20 || !wallet.chars().all(|character| character.is_ascii_alphanumeric()) {
                    return Err(format!("`{wallet}` is not a wallet address"));
                }
                self.wallets.insert(wallet, source.clone());
            }
            for string in iocs.strings {
                let string = string.trim().to_ascii_lowercase();
                if string.chars().count() < MIN_STRING_INDICATOR_CHARS {
                    return Err(format!(
                        "`{string}` is shorter than {MIN_STRING_INDICATOR_CHARS} characters and would match ordinary text"
                    ));
                }
                self.strings.insert(string, source.clone());
            }
        }
        Ok(())
    }

    /// The advisories listing `name@version` as malicious, if any.
    pub fn malicious_version(&self, name: &str, version: &str) -> Option<&BTreeSet<String>> {
        let listing = self.packages.get(name)?;
        let listed = match &listing.versions {
            MaliciousVersions::All => true,
            MaliciousVersions::Exact(versions) => versions.contains(version),
        };
        listed.then_some(&listing.advisories)
    }

    /// What a scan of `name` needs: every indicator of compromise, and the listing of
    /// this package only. The server sends this, not the whole feed, to a check worker.
    pub fn for_package(&self, name: &str) -> Indicators {
        Indicators {
            domains: self.domains.clone(),
            wallets: self.wallets.clone(),
            strings: self.strings.clone(),
            packages: self.packages.get(name).map(|listing| (name.to_owned(), listing.clone())).into_iter().collect(),
        }
    }

    /// Whether there is nothing to look for.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.wallets.is_empty() && self.strings.is_empty() && self.packages.is_empty()
    }

    /// The indicator a lowercased string contains, and where: a listed domain (or a
    /// subdomain of one) as a token, or a listed string anywhere.
    pub(crate) fn find_in(&self, lower: &str) -> Option<(&str, &str, usize)> {
        if !self.domains.is_empty() && lower.contains('.') {
            for token in lower
                .split(|character: char| !(character.is_ascii_alphanumeric() || character == '.' || character == '-'))
            {
                // The token's byte offset in `lower` (it is a subslice of it).
                let start = token.as_ptr() as usize - lower.as_ptr() as usize;
                if !token.contains('.') {
                    continue;
                }
                let token = token.trim_matches('.');
                // `a.b.evil.example` matches `evil.example`.
                let mut candidate = token;
                loop {
                    if let Some((domain, source)) = self.domains.get_key_value(candidate) {
                        return Some((domain, source, start));
                    }
                    match candidate.split_once('.') {
                        Some((_, rest)) if rest.contains('.') => candidate = rest,
                        _ => break,
                    }
                }
            }
        }
        self.strings
            .iter()
            .find_map(|(needle, source)| Some((needle.as_str(), source.as_str(), lower.find(needle.as_str())?)))
    }

    /// The advisory naming a wallet address, if any.
    pub(crate) fn wallet(&self, address: &str) -> Option<&str> {
        self.wallets.get(address).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADVISORY: &str = r#"{
        "id": "MAL-2025-0001", "summary": "postmark-mcp copies every mail",
        "affected": [{"package": {"ecosystem": "npm", "name": "postmark-mcp"}, "versions": ["1.0.16"]},
                     {"package": {"ecosystem": "PyPI", "name": "ignored"}, "versions": ["1"]}],
        "database_specific": {"iocs": {"domains": ["giftshop.example"], "strings": ["s1ngularity-repository"]}}
    }"#;

    #[test]
    fn advisories_become_indicators() {
        let indicators = Indicators::from_osv_documents([("a.json", ADVISORY.as_bytes())]).expect("valid");
        assert!(indicators.malicious_version("postmark-mcp", "1.0.16").is_some());
        assert!(indicators.malicious_version("postmark-mcp", "1.0.15").is_none());
        assert!(indicators.malicious_version("ignored", "1").is_none());
        assert_eq!(
            indicators.find_in("bcc: x@mail.giftshop.example").map(|(domain, _, _)| domain),
            Some("giftshop.example")
        );
        assert_eq!(indicators.find_in("https://notgiftshop.example.org/"), None);
        assert!(indicators.find_in("create s1ngularity-repository-1").is_some());
    }

    #[test]
    fn an_open_range_lists_every_version() {
        let advisory = r#"[{"id": "MAL-2", "affected": [{"package": {"ecosystem": "npm", "name": "evil"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}]"#;
        let indicators = Indicators::from_osv_documents([("b.json", advisory.as_bytes())]).expect("valid");
        assert!(indicators.malicious_version("evil", "9.9.9").is_some());
    }

    #[test]
    fn bad_files_and_entries_are_named() {
        let error = Indicators::from_osv_documents([("bad.json", b"{".as_slice())]).expect_err("not JSON");
        assert_eq!((error.file.as_str(), error.entry.as_str()), ("bad.json", "(document)"));
        let short = r#"{"id": "MAL-3", "affected": [], "database_specific": {"iocs": {"strings": ["abc"]}}}"#;
        let error = Indicators::from_osv_documents([("short.json", short.as_bytes())]).expect_err("too short");
        assert_eq!(error.entry, "MAL-3");
        assert!(error.to_string().contains("`abc`"), "{error}");
        let no_versions = r#"{"id": "MAL-4", "affected": [{"package": {"ecosystem": "npm", "name": "x"}}]}"#;
        let error = Indicators::from_osv_documents([("v.json", no_versions.as_bytes())]).expect_err("no versions");
        assert!(error.to_string().contains("feed file `v.json`, entry `MAL-4`"), "{error}");
    }

    #[test]
    fn withdrawn_advisories_list_nothing() {
        let withdrawn = r#"{"id": "MAL-5", "withdrawn": "2025-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "npm", "name": "fine"}, "versions": ["1.0.0"]}]}"#;
        let indicators = Indicators::from_osv_documents([("w.json", withdrawn.as_bytes())]).expect("valid");
        assert!(indicators.is_empty());
    }
}
