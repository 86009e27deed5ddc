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

/// The deepest nesting a code file may have to be parsed. The parser and every AST walk
/// recurse once per level, so `((((…1…))))` or `1+1+…+1` a hundred thousand levels deep
/// overflows the stack and kills the process, which no `catch_unwind` can stop. Real
/// code stays below this: the deepest estimate in yarn 4's bundle is 4,267 (a
/// 2,000-term `||` chain over Unicode ranges, counted twice with its `==`).
pub(crate) const MAX_NESTING_DEPTH: usize = 20_000;

/// The stack the analysis of a package runs on: room for [`MAX_NESTING_DEPTH`] levels
/// of the deepest-recursing construct with a wide margin (about 3 KiB a level in an
/// unoptimised build, so 60 MiB at the limit), whatever thread the caller scans on
/// (tokio's blocking threads have 2 MiB). Reserved, not committed: only the
/// pages a deep file touches cost memory.
pub(crate) const ANALYSIS_STACK_BYTES: usize = 256 * 1024 * 1024;

/// An upper estimate of how deeply the parser and the AST walks recurse on `source`,
/// from a single pass over its bytes (no parsing, no allocation beyond one small stack
/// per bracket level). Stops counting once the estimate passes `stop_above`.
///
/// Each bracket (`(`, `[`, `{`, `${`) is one level. Inside a level, every operator or
/// operator keyword since the last `;` or `,` is one more: `a+b+c`, `a=b=c`, `!!!a`,
/// `a?b:c?d:e`, `a.b.c`, `x=>y=>z` and `else if` chains each nest the AST one level per
/// link. String, template and comment contents do not count; regular expression
/// literals are recognised by what precedes the `/`. Overestimating only ever makes a
/// file unparsed (and reported), never unbounded.
pub(crate) fn estimated_nesting_depth(source: &[u8], stop_above: usize) -> usize {
    // Per open level: the operator chain length so far, and whether it is a template
    // substitution (whose `}` resumes the template text).
    struct Level {
        chain: usize,
        template_substitution: bool,
    }
    let mut levels: Vec<Level> = Vec::new();
    // Operators outside any bracket.
    let mut top_chain = 0usize;
    // Σ over open levels of (1 + chain), plus `top_chain`: the current estimate.
    let mut depth = 0usize;
    let mut deepest = 0usize;
    // Whether the previous token ends a value, so that a `/` divides rather than
    // starting a regular expression.
    let mut after_value = false;
    let mut index = 0;
    let length = source.len();

    macro_rules! chain_link {
        () => {{
            match levels.last_mut() {
                Some(level) => level.chain += 1,
                None => top_chain += 1,
            }
            depth += 1;
        }};
    }

    while index < length {
        if deepest > stop_above {
            return deepest;
        }
        let byte = source[index];
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => index += 1,
            b'/' if source.get(index + 1) == Some(&b'/') => {
                index = memchr::memchr(b'\n', &source[index..]).map_or(length, |offset| index + offset);
            }
            b'/' if source.get(index + 1) == Some(&b'*') => {
                index =
                    memchr::memmem::find(&source[index + 2..], b"*/").map_or(length, |offset| index + 2 + offset + 2);
            }
            b'/' if !after_value => {
                // A regular expression literal: skip to its closing `/`, honouring
                // escapes and character classes, and give up at a line end.
                index += 1;
                let mut in_class = false;
                while index < length {
                    match source[index] {
                        b'\\' => index += 1,
                        b'[' => in_class = true,
                        b']' => in_class = false,
                        b'/' if !in_class => break,
                        b'\n' => break,
                        _ => {}
                    }
                    index += 1;
                }
                index += 1;
                after_value = true;
            }
            b'\'' | b'"' => {
                index += 1;
                while index < length && source[index] != byte && source[index] != b'\n' {
                    index += if source[index] == b'\\' { 2 } else { 1 };
                }
                index += 1;
                after_value = true;
            }
            b'`' => {
                index = skip_template_text(source, index + 1);
                if source.get(index.wrapping_sub(2)..index) == Some(b"${") {
                    levels.push(Level { chain: 0, template_substitution: true });
                    depth += 1;
                    after_value = false;
                } else {
                    after_value = true;
                }
            }
            b'(' | b'[' | b'{' => {
                // A call or index after a value (`f()()()`, `a[0][0]`) is one more link
                // of the chain that holds it.
                if after_value && byte != b'{' {
                    chain_link!();
                }
                levels.push(Level { chain: 0, template_substitution: false });
                depth += 1;
                index += 1;
                after_value = false;
            }
            b')' | b']' | b'}' => {
                index += 1;
                after_value = true;
                let Some(level) = levels.pop() else { continue };
                depth -= 1 + level.chain;
                if byte == b'}' && level.template_substitution {
                    index = skip_template_text(source, index);
                    if source.get(index.wrapping_sub(2)..index) == Some(b"${") {
                        levels.push(Level { chain: 0, template_substitution: true });
                        depth += 1;
                        after_value = false;
                    }
                }
            }
            b';' | b',' => {
                let chain = match levels.last_mut() {
                    Some(level) => std::mem::take(&mut level.chain),
                    None => std::mem::take(&mut top_chain),
                };
                depth -= chain;
                index += 1;
                after_value = false;
            }
            byte if byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$' || byte >= 0x80 => {
                let start = index;
                // The `.` of a number (`1.5`) belongs to it.
                let number = byte.is_ascii_digit();
                while index < length
                    && (source[index].is_ascii_alphanumeric()
                        || (number && source[index] == b'.')
                        || source[index] == b'_'
                        || source[index] == b'$'
                        || source[index] >= 0x80)
                {
                    index += 1;
                }
                let word = &source[start..index];
                let operator_keyword = matches!(
                    word,
                    b"new"
                        | b"typeof"
                        | b"void"
                        | b"delete"
                        | b"await"
                        | b"yield"
                        | b"in"
                        | b"instanceof"
                        | b"else"
                        | b"if"
                        | b"for"
                        | b"while"
                        | b"do"
                        | b"with"
                );
                if operator_keyword {
                    chain_link!();
                }
                // `return /re/` starts a regular expression; `x / y` divides.
                after_value = !operator_keyword && !matches!(word, b"return" | b"throw" | b"case" | b"of");
            }
            _ => {
                // Any other punctuator: one operator, however many bytes it spells
                // (`>>>=` is one link, `a+-b` two).
                chain_link!();
                index += 1;
                while index < length && matches!(source[index], b'=' | b'>' | b'<' | b'&' | b'|' | b'?' | b'*' | b'.') {
                    index += 1;
                }
                after_value = false;
            }
        }
        deepest = deepest.max(depth);
    }
    deepest
}

/// Skips template literal text from `index` (just after a backtick or a substitution's
/// closing `}`) to just after the closing backtick or a `${`.
fn skip_template_text(source: &[u8], mut index: usize) -> usize {
    while index < source.len() {
        match source[index] {
            b'\\' => index += 2,
            b'`' => return index + 1,
            b'$' if source.get(index + 1) == Some(&b'{') => return index + 2,
            _ => index += 1,
        }
    }
    source.len()
}

#[cfg(test)]
mod tests {
    use super::estimated_nesting_depth;

    #[test]
    fn brackets_and_operator_chains_count_as_nesting() {
        let deep_parens = format!("x = {}1{};", "(".repeat(5_000), ")".repeat(5_000));
        assert!(estimated_nesting_depth(deep_parens.as_bytes(), usize::MAX) >= 5_000);
        let sum_chain = format!("x = 1{};", "+1".repeat(5_000));
        assert!(estimated_nesting_depth(sum_chain.as_bytes(), usize::MAX) >= 5_000);
        let nested_templates = format!("x = {}{};", "`${".repeat(3_000), "}`".repeat(3_000));
        assert!(estimated_nesting_depth(nested_templates.as_bytes(), usize::MAX) >= 3_000);
        let calls = format!("f{};", "()".repeat(3_000));
        assert!(estimated_nesting_depth(calls.as_bytes(), usize::MAX) >= 3_000);
        let else_if = "if (a) {} else ".repeat(3_000);
        assert!(estimated_nesting_depth(else_if.as_bytes(), usize::MAX) >= 3_000);
    }

    #[test]
    fn statements_lists_strings_and_comments_do_not_accumulate() {
        let statements = "a = b + c * d;\n".repeat(10_000);
        assert!(estimated_nesting_depth(statements.as_bytes(), usize::MAX) < 10);
        let list = format!("[{}]", "a + 1, ".repeat(10_000));
        assert!(estimated_nesting_depth(list.as_bytes(), usize::MAX) < 10);
        let strings = format!(
            "x = '{}' + \"{}\" + `{}` /* {} */ + /[(]{{3}}/;",
            "(".repeat(999),
            "[".repeat(999),
            "{".repeat(999),
            "(".repeat(999)
        );
        assert!(estimated_nesting_depth(strings.as_bytes(), usize::MAX) < 10);
    }

    #[test]
    fn counting_stops_once_over_the_limit() {
        let deep = "(".repeat(1_000_000);
        let estimate = estimated_nesting_depth(deep.as_bytes(), 100);
        assert!((101..200).contains(&estimate), "{estimate}");
    }
}
