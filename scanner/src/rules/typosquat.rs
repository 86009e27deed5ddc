//! Typosquat detection: is a package name a near-copy of a popular one?
//!
//! The targets are the 10,000 most-downloaded npm packages
//! (`scanner/data/popular-packages.txt`, most popular first); the exemptions are those
//! plus the next most-downloaded names (`scanner/data/established-packages.txt`):
//! a package with hundreds of thousands of downloads a month is an established
//! project (often a fork or sibling of the popular one), not a squat. Both files are
//! regenerated from a download listing by `scripts/generate-popular-packages`.
//!
//! The shapes caught, each against a popular target:
//! - one edit (Damerau-Levenshtein: substitution, insertion, deletion, adjacent
//!   transposition), two for long names;
//! - separator confusion (`-`, `_`, `.`, none): `cross_env`, `crossenv`, `cross.env`;
//! - plurals and `js`/`node` affixes: `lodashs`, `lodash-js`, `node-lodash`;
//! - homoglyphs: `1odash`, `l0dash`, `rnocha`;
//! - scope confusion: a scope one edit away from, or extending, a popular scope
//!   (`@typescript_eslinter/parser`, `@types-node/fs`).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

static POPULAR_PACKAGES_TEXT: &str = include_str!("../../data/popular-packages.txt");
static ESTABLISHED_PACKAGES_TEXT: &str = include_str!("../../data/established-packages.txt");

/// Shorter targets (spelling keys) are skipped for edit distance: "ms", "ws", "uuid"
/// are one edit from many real names.
const MIN_EDIT_TARGET_LENGTH: usize = 5;
/// Targets at least this long (with keys longer than the minimum) also match at edit
/// distance two.
const MIN_TWO_EDIT_TARGET_LENGTH: usize = 9;
/// Popular scopes at least this long also match as a prefix (`@types-node`).
const MIN_SCOPE_PREFIX_LENGTH: usize = 5;

/// How a name imitates its target, for the finding's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SquatShape {
    /// One or two letters added, dropped, changed or swapped.
    Edit,
    /// The same name with other separators, a plural or a `js`/`node` affix.
    Spelling,
    /// Look-alike characters (`1` for `l`, `0` for `o`, `rn` for `m`).
    Homoglyph,
    /// A scope that imitates a popular scope.
    Scope,
}

impl SquatShape {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            SquatShape::Edit => "one or two letters away from",
            SquatShape::Spelling => "a respelling (separators, plural or affix) of",
            SquatShape::Homoglyph => "a look-alike (homoglyphs) of",
            SquatShape::Scope => "under a scope imitating that of",
        }
    }
}

/// The popular package a name imitates, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Squat {
    pub(crate) target: &'static str,
    pub(crate) shape: SquatShape,
}

struct PopularPackages {
    /// Unscoped targets with their spelling keys, most popular first.
    edit_targets: Vec<(&'static str, String)>,
    /// Popular and established names: never squats.
    exempt: HashSet<&'static str>,
    /// Spelling key (separators, affixes, plural removed) to the most popular target.
    by_spelling: HashMap<String, &'static str>,
    /// Homoglyph-folded spelling key to the most popular target.
    by_homoglyph: HashMap<String, &'static str>,
    /// Scopes of popular packages, most popular first, to a package under them.
    scopes: Vec<(&'static str, &'static str)>,
}

fn names(text: &'static str) -> impl Iterator<Item = &'static str> {
    text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#'))
}

fn popular_packages() -> &'static PopularPackages {
    static POPULAR: OnceLock<PopularPackages> = OnceLock::new();
    POPULAR.get_or_init(|| {
        let ordered: Vec<&'static str> = names(POPULAR_PACKAGES_TEXT).collect();
        let mut edit_targets = Vec::new();
        let exempt = ordered.iter().copied().chain(names(ESTABLISHED_PACKAGES_TEXT)).collect();
        let mut by_spelling = HashMap::new();
        let mut by_homoglyph = HashMap::new();
        let mut scopes: Vec<(&'static str, &'static str)> = Vec::new();
        for name in &ordered {
            match split_scope(name) {
                (Some(scope), _) => {
                    if !scopes.iter().any(|(known, _)| *known == scope) {
                        scopes.push((scope, name));
                    }
                }
                (None, bare) => {
                    let key = spelling_key(bare);
                    if key.len() >= MIN_EDIT_TARGET_LENGTH {
                        edit_targets.push((*name, key.clone()));
                    }
                    if key.len() >= 4 {
                        by_homoglyph.entry(fold_homoglyphs(&key)).or_insert(*name);
                        by_spelling.entry(key).or_insert(*name);
                    }
                }
            }
        }
        PopularPackages { edit_targets, exempt, by_spelling, by_homoglyph, scopes }
    })
}

/// `@scope/name` into `(Some("scope"), "name")`; an unscoped name into `(None, name)`.
fn split_scope(name: &str) -> (Option<&str>, &str) {
    match name.strip_prefix('@').and_then(|rest| rest.split_once('/')) {
        Some((scope, bare)) => (Some(scope), bare),
        None => (None, name),
    }
}

/// The popular package `name` imitates, if any.
pub(crate) fn typosquat_target(name: &str) -> Option<Squat> {
    let popular = popular_packages();
    let name = name.trim();
    if name.is_empty() || popular.exempt.contains(name) {
        return None;
    }
    match split_scope(name) {
        (Some(scope), _) => scope_squat(popular, scope),
        (None, bare) => bare_squat(popular, &bare.to_ascii_lowercase()),
    }
}

fn bare_squat(popular: &PopularPackages, name: &str) -> Option<Squat> {
    let key = spelling_key(name);
    if let Some(target) = popular.by_spelling.get(&key)
        && *target != name
    {
        return Some(Squat { target, shape: SquatShape::Spelling });
    }
    if let Some(target) = popular.by_homoglyph.get(&fold_homoglyphs(&key))
        && *target != name
    {
        return Some(Squat { target, shape: SquatShape::Homoglyph });
    }
    // Compared on spelling keys, so `log-symbles` and `logsymbles` are both one edit
    // from `log-symbols`.
    for (target, target_key) in &popular.edit_targets {
        let allowed =
            if target.len() >= MIN_TWO_EDIT_TARGET_LENGTH && target_key.len() > MIN_EDIT_TARGET_LENGTH { 2 } else { 1 };
        if target_key.len().abs_diff(key.len()) > allowed {
            continue;
        }
        if damerau_levenshtein(key.as_bytes(), target_key.as_bytes(), allowed) <= allowed {
            return Some(Squat { target, shape: SquatShape::Edit });
        }
    }
    None
}

/// A scope that is not a popular scope but imitates one: one edit away, the same with
/// other separators, or a popular scope with something appended (`types-node`).
fn scope_squat(popular: &PopularPackages, scope: &str) -> Option<Squat> {
    let scope = scope.to_ascii_lowercase();
    if popular.scopes.iter().any(|(known, _)| *known == scope) {
        return None;
    }
    let key = strip_separators(&scope);
    for (known, example) in &popular.scopes {
        let known_key = strip_separators(known);
        let imitates = known_key == key
            || (known.len() >= MIN_EDIT_TARGET_LENGTH
                && damerau_levenshtein(scope.as_bytes(), known.as_bytes(), 1) <= 1)
            || (known.len() >= MIN_SCOPE_PREFIX_LENGTH
                && scope.strip_prefix(known).is_some_and(|rest| rest.starts_with(['-', '_', '.']) || known.len() >= 8));
        if imitates {
            return Some(Squat { target: example, shape: SquatShape::Scope });
        }
    }
    None
}

fn strip_separators(name: &str) -> String {
    name.chars().filter(|character| !matches!(character, '-' | '_' | '.')).collect()
}

/// Separators removed, a `js`/`node` affix and a plural `s` dropped: `lodash-js`,
/// `lo_dash`, `lodashs` and `node-lodash` all become `lodash`.
fn spelling_key(name: &str) -> String {
    let mut simplified = strip_separators(&name.to_ascii_lowercase());
    for affix in ["js", "node"] {
        if let Some(rest) = simplified.strip_suffix(affix)
            && rest.len() >= 4
        {
            simplified = rest.to_owned();
        }
        if let Some(rest) = simplified.strip_prefix(affix)
            && rest.len() >= 4
        {
            simplified = rest.to_owned();
        }
    }
    if let Some(rest) = simplified.strip_suffix('s')
        && rest.len() >= 5
    {
        simplified = rest.to_owned();
    }
    simplified
}

/// Look-alike characters folded to one representative.
fn fold_homoglyphs(key: &str) -> String {
    key.replace("rn", "m")
        .replace("vv", "w")
        .chars()
        .map(|character| match character {
            '0' => 'o',
            '1' | 'i' | '|' => 'l',
            '3' => 'e',
            '4' => 'a',
            '5' => 's',
            '7' => 't',
            '8' => 'b',
            _ => character,
        })
        .collect()
}

/// Optimal-string-alignment distance (Damerau-Levenshtein with adjacent transpositions),
/// giving up early once every path exceeds `limit` (the result is then `limit + 1`).
fn damerau_levenshtein(left: &[u8], right: &[u8], limit: usize) -> usize {
    if left.len().abs_diff(right.len()) > limit {
        return limit + 1;
    }
    let width = right.len() + 1;
    let mut two_back = vec![0usize; width];
    let mut previous: Vec<usize> = (0..width).collect();
    let mut current = vec![0usize; width];
    for i in 1..=left.len() {
        current[0] = i;
        let mut row_minimum = current[0];
        for j in 1..width {
            let cost = usize::from(left[i - 1] != right[j - 1]);
            let mut best = (previous[j] + 1).min(current[j - 1] + 1).min(previous[j - 1] + cost);
            if i > 1 && j > 1 && left[i - 1] == right[j - 2] && left[i - 2] == right[j - 1] {
                best = best.min(two_back[j - 2] + 1);
            }
            current[j] = best;
            row_minimum = row_minimum.min(best);
        }
        if row_minimum > limit {
            return limit + 1;
        }
        std::mem::swap(&mut two_back, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[right.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expected: Option<(&str, SquatShape)>) {
        let found = typosquat_target(name);
        assert_eq!(found.as_ref().map(|squat| (squat.target, squat.shape)), expected, "{name} gave {found:?}");
    }

    #[test]
    fn edits_including_transpositions_are_squats() {
        check("lodahs", Some(("lodash", SquatShape::Edit)));
        check("expres", Some(("express", SquatShape::Edit)));
        check("exrpess", Some(("express", SquatShape::Edit)));
        check("axois", Some(("axios", SquatShape::Edit)));
        check("logsymbles", Some(("log-symbols", SquatShape::Edit)));
        check("uglyfi-js", Some(("uglify-js", SquatShape::Edit)));
    }

    #[test]
    fn separator_plural_and_affix_confusions_are_squats() {
        check("cross-env.js", Some(("cross-env", SquatShape::Spelling)));
        check("crossenv", Some(("cross-env", SquatShape::Spelling)));
        check("cross_env", Some(("cross-env", SquatShape::Spelling)));
        check("node-lodash", Some(("lodash", SquatShape::Spelling)));
        check("lodashs", Some(("lodash", SquatShape::Spelling)));
    }

    #[test]
    fn homoglyphs_are_squats() {
        check("1odash", Some(("lodash", SquatShape::Homoglyph)));
        check("l0dash", Some(("lodash", SquatShape::Homoglyph)));
        check("1ru-cache", Some(("lru-cache", SquatShape::Homoglyph)));
    }

    #[test]
    fn imitated_scopes_are_squats() {
        assert_eq!(typosquat_target("@typescript_eslinter/parser").map(|squat| squat.shape), Some(SquatShape::Scope));
        assert_eq!(typosquat_target("@types-node/fs").map(|squat| squat.shape), Some(SquatShape::Scope));
        assert_eq!(typosquat_target("@bable/core").map(|squat| squat.shape), Some(SquatShape::Scope));
    }

    #[test]
    fn popular_established_and_unrelated_names_are_not_squats() {
        check("lodash", None);
        check("debug", None);
        check("@types/node", None);
        check("@babel/core", None);
        check("@typescript-eslint/parser", None);
        check("@my-company/internal-tool", None);
        check("my-company-internal-tool", None);
        // Every popular and established name is exempt, including near pairs such as
        // `color`/`colors` and `preact`/`react`.
        for name in names(POPULAR_PACKAGES_TEXT).chain(names(ESTABLISHED_PACKAGES_TEXT)).take(30_000) {
            assert_eq!(typosquat_target(name), None, "{name} is popular or established");
        }
    }

    #[test]
    fn distance_is_damerau_levenshtein() {
        assert_eq!(damerau_levenshtein(b"lodash", b"lodahs", 2), 1);
        assert_eq!(damerau_levenshtein(b"lodash", b"lodash", 2), 0);
        assert_eq!(damerau_levenshtein(b"lodash", b"ldoahs", 2), 2);
        assert_eq!(damerau_levenshtein(b"lodash", b"express", 1), 2);
        assert_eq!(damerau_levenshtein(b"", b"ab", 2), 2);
    }
}
