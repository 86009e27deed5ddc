//! Typosquat detection against the most-downloaded package names, shipped in
//! `scanner/data/popular-packages.txt` (one name per line, most popular first).

use std::collections::HashSet;
use std::sync::OnceLock;

static POPULAR_PACKAGES_TEXT: &str = include_str!("../../data/popular-packages.txt");

/// Only the most popular names are worth squatting; comparing against all 5,000 with
/// edit distance 1 would flag many legitimate short names.
const SQUAT_TARGETS: usize = 2000;

struct PopularPackages {
    ordered: Vec<&'static str>,
    all: HashSet<&'static str>,
}

fn popular_packages() -> &'static PopularPackages {
    static POPULAR: OnceLock<PopularPackages> = OnceLock::new();
    POPULAR.get_or_init(|| {
        let ordered: Vec<&'static str> = POPULAR_PACKAGES_TEXT
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect();
        let all = ordered.iter().copied().collect();
        PopularPackages { ordered, all }
    })
}

/// The popular package `name` imitates, if any.
pub(crate) fn typosquat_target(name: &str) -> Option<&'static str> {
    let popular = popular_packages();
    if name.is_empty() || popular.all.contains(name) {
        return None;
    }
    let normalised = normalise(name);
    for candidate in popular.ordered.iter().take(SQUAT_TARGETS) {
        if candidate.len() < 5 {
            // "ms", "ws", "uuid": every short name is one edit from another real one.
            continue;
        }
        if normalise(candidate) == normalised || is_one_edit_apart(name, candidate) {
            return Some(candidate);
        }
        // `@scope/lodash` is not a squat, but `@types-node/x`-style scope tricks are
        // rare enough to leave to the diff and provenance checks.
    }
    None
}

/// Ignores separators and the common `js`/`node` affixes: `lodash-js`, `lo_dash`.
fn normalise(name: &str) -> String {
    let without_scope = name.rsplit('/').next().unwrap_or(name);
    let mut simplified: String =
        without_scope.chars().filter(|character| !matches!(character, '-' | '_' | '.')).collect();
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
    simplified
}

/// Damerau-Levenshtein distance of exactly one (substitution, insertion, deletion or
/// adjacent transposition).
fn is_one_edit_apart(left: &str, right: &str) -> bool {
    let (left, right) = (left.as_bytes(), right.as_bytes());
    if left == right || left.len().abs_diff(right.len()) > 1 {
        return false;
    }
    let prefix = left.iter().zip(right).take_while(|(a, b)| a == b).count();
    let (left_rest, right_rest) = (&left[prefix..], &right[prefix..]);
    match left.len().cmp(&right.len()) {
        std::cmp::Ordering::Equal => {
            left_rest[1..] == right_rest[1..]
                || (left_rest.len() >= 2
                    && left_rest[0] == right_rest[1]
                    && left_rest[1] == right_rest[0]
                    && left_rest[2..] == right_rest[2..])
        }
        std::cmp::Ordering::Less => left_rest == &right_rest[1..],
        std::cmp::Ordering::Greater => &left_rest[1..] == right_rest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squats_of_popular_names_are_found() {
        assert_eq!(typosquat_target("lodahs"), Some("lodash"));
        assert_eq!(typosquat_target("expres"), Some("express"));
        assert_eq!(typosquat_target("cross-env.js"), Some("cross-env"));
    }

    #[test]
    fn popular_and_unrelated_names_are_not_squats() {
        assert_eq!(typosquat_target("lodash"), None);
        assert_eq!(typosquat_target("debug"), None);
        assert_eq!(typosquat_target("my-company-internal-tool"), None);
    }
}
