//! The caps on what the analysis of one file keeps. A file is attacker-controlled, and
//! every list the checks build from it must stay linear in its size and below a fixed
//! cap, whatever it contains: 40 lines of `const b = a + a` once doubled a list per line.
//!
//! Reaching a cap is itself a finding (`analysis-limit-reached`): what was dropped is
//! reported as missing, never silently.

use std::collections::BTreeSet;

use super::{Rule, finding_at};
use crate::{Finding, Severity};

/// URLs kept per file (literals and host options). Real bundles hold a few thousand.
pub(crate) const MAX_URLS_PER_FILE: usize = 10_000;
/// URLs a constant carries to where it is used (`const api = base + '/x'`).
pub(crate) const MAX_URLS_PER_SYMBOL: usize = 64;
/// URL references gathered while walking one initializer or network call, before they
/// are de-duplicated.
pub(crate) const MAX_REFERENCED_URLS_PER_WALK: usize = 4_096;
/// Sites (calls, overrides, recipients…) kept per kind of site and file.
pub(crate) const MAX_SITES_PER_KIND: usize = 1_000;
/// Email addresses, wallet addresses and shell commands kept per file.
pub(crate) const MAX_STRINGS_PER_KIND: usize = 1_000;
/// The longest string constant folded at all. Only reuse makes a constant longer than
/// the file that spells it (`const b = a + a`, forty times over, is 2^40 copies), so a
/// longer one is a resource attack on whatever evaluates it. Only its length is
/// computed, never the string.
pub(crate) const MAX_FOLDED_STRING_BYTES: u64 = 1024 * 1024;
/// Longest qualified path an alias may stand for (`child_process.exec`); longer ones
/// name nothing the checks know, and building them is quadratic in a chain of aliases.
pub(crate) const MAX_ALIAS_PATH_BYTES: usize = 256;

/// A cap that was reached while analysing one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Limit {
    UrlsPerFile,
    UrlsPerSymbol,
    ReferencedUrls,
    SitesPerKind,
    StringsPerKind,
    FoldedString,
}

impl Limit {
    fn describe(self) -> String {
        match self {
            Limit::UrlsPerFile => format!("more than {MAX_URLS_PER_FILE} URLs"),
            Limit::UrlsPerSymbol => format!("a constant carrying more than {MAX_URLS_PER_SYMBOL} URLs"),
            Limit::ReferencedUrls => {
                format!("an expression referencing more than {MAX_REFERENCED_URLS_PER_WALK} URL constants")
            }
            Limit::SitesPerKind => format!("more than {MAX_SITES_PER_KIND} call sites of one kind"),
            Limit::StringsPerKind => {
                format!("more than {MAX_STRINGS_PER_KIND} email addresses, wallet addresses or shell commands")
            }
            Limit::FoldedString => {
                format!("a string constant built by concatenation longer than {MAX_FOLDED_STRING_BYTES} bytes")
            }
        }
    }
}

/// The caps reached in one file, in a stable order.
#[derive(Debug, Clone, Default)]
pub(crate) struct LimitsReached(BTreeSet<Limit>);

impl LimitsReached {
    /// Records that `limit` was reached; what goes over it is dropped by the caller.
    pub(crate) fn reach(&mut self, limit: Limit) {
        self.0.insert(limit);
    }

    /// One finding for the file, listing every cap reached, or none.
    pub(crate) fn finding(&self, path: &str) -> Option<Finding> {
        if self.0.is_empty() {
            return None;
        }
        let reached: Vec<String> = self.0.iter().map(|limit| limit.describe()).collect();
        // Medium: a reviewer should know the file was not fully tracked, but real large
        // bundles may legitimately get here and must not be held by default. A policy
        // override can raise it.
        Some(finding_at(
            Rule::AnalysisLimitReached,
            Severity::Medium,
            format!(
                "The analysis of this file reached its limits ({}); what lies beyond them was not tracked.",
                reached.join("; ")
            ),
            path,
            None,
            None,
        ))
    }
}
