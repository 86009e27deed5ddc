//! The only place sled keys are built and read back. Keys are `name` or
//! `name\0version` (`name\0file name` for tarball entries), and a version's history
//! entries are `name\0version\0id` with an 8-byte id.
//!
//! Why the keys cannot collide, structurally rather than by luck: the name comes from a
//! [`PackageName`], which cannot contain NUL, so the first NUL always ends the name; a
//! history key is recognised by its exact length (prefix + NUL + 8 bytes), so the
//! history of `1.0.0` can never include that of a version `1.0.0\0x`; and every reader
//! below accepts only a valid [`Version`] or [`TarballFileName`] after the NUL, so a key
//! written from an unvalidated string (by a release before versions were validated) is
//! ignored instead of being taken for another version's. The layout stays
//! `name\0version` rather than length-prefixed so existing stores read unchanged.

use crate::npm::{PackageName, TarballFileName, Version};

/// Key of a package's record and raw packument.
pub(crate) fn package(name: &PackageName) -> Vec<u8> {
    name.as_str().as_bytes().to_vec()
}

/// Key of one version's record.
pub(crate) fn version(name: &PackageName, version: &str) -> Vec<u8> {
    let mut key = versions_prefix(name);
    key.extend_from_slice(version.as_bytes());
    key
}

/// Key of a tarball entry: `name\0file name` (file names are validated, without NUL).
pub(crate) fn tarball(name: &PackageName, file_name: &str) -> Vec<u8> {
    version(name, file_name)
}

/// Prefix of every version (and tarball) key of a package.
pub(crate) fn versions_prefix(name: &PackageName) -> Vec<u8> {
    let mut key = name.as_str().as_bytes().to_vec();
    key.push(0);
    key
}

/// Length of the id that ends a history key.
const HISTORY_ID_LENGTH: usize = 8;

/// Key of one entry of a version's history: the version key, NUL, the event id
/// (big-endian, so a prefix scan is in event order).
pub(crate) fn history(name: &PackageName, version_text: &str, id: u64) -> Vec<u8> {
    let mut key = history_prefix(name, version_text);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Prefix of a version's history keys; check hits with [`is_history_of`].
pub(crate) fn history_prefix(name: &PackageName, version_text: &str) -> Vec<u8> {
    let mut key = version(name, version_text);
    key.push(0);
    key
}

/// True when `key`, found by a scan over `prefix` (from [`history_prefix`]), is a
/// history entry of exactly that version and not of a longer one that starts alike.
pub(crate) fn is_history_of(key: &[u8], prefix: &[u8]) -> bool {
    key.len() == prefix.len() + HISTORY_ID_LENGTH && key.starts_with(prefix)
}

/// The version part of a version key, when it is a valid version.
pub(crate) fn version_of_key(key: &[u8]) -> Option<&str> {
    let (_, version) = split_key(key)?;
    Version::parse(version).is_ok().then_some(version)
}

/// The file-name part of a tarball key, when it is a valid tarball file name.
pub(crate) fn file_name_of_key(key: &[u8]) -> Option<&str> {
    let (_, file_name) = split_key(key)?;
    TarballFileName::parse(file_name).is_ok().then_some(file_name)
}

/// Splits a version key into package name and version, when both are valid.
pub(crate) fn split_version_key(key: &[u8]) -> Option<(&str, &str)> {
    let (name, version) = split_key(key)?;
    (PackageName::parse(name).is_ok() && Version::parse(version).is_ok()).then_some((name, version))
}

/// Splits at the first NUL, which ends the name.
fn split_key(key: &[u8]) -> Option<(&str, &str)> {
    let separator = key.iter().position(|&byte| byte == 0)?;
    let name = std::str::from_utf8(&key[..separator]).ok()?;
    let rest = std::str::from_utf8(&key[separator + 1..]).ok()?;
    Some((name, rest))
}

/// Key of an admin-added policy rule: its id, big-endian, so keys sort by age.
pub(crate) fn policy_rule(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> PackageName {
        PackageName::parse(text).unwrap()
    }

    #[test]
    fn a_version_whose_string_extends_another_has_a_separate_history() {
        let package = name("pkg");
        let prefix = history_prefix(&package, "1.0.0");
        assert!(is_history_of(&history(&package, "1.0.0", 7), &prefix));
        // What an unvalidated "1.0.0\0x" would have written: same prefix, longer key.
        assert!(!is_history_of(&history(&package, "1.0.0\0x", 7), &prefix));
        assert!(!is_history_of(&history(&package, "1.0.0.1", 7), &prefix));
        assert!(!is_history_of(&history(&name("pkg2"), "1.0.0", 7), &prefix));
    }

    #[test]
    fn keys_read_back_only_valid_names_versions_and_file_names() {
        let package = name("@scope/pkg");
        let key = version(&package, "1.0.0-beta.1");
        assert_eq!(split_version_key(&key), Some(("@scope/pkg", "1.0.0-beta.1")));
        assert_eq!(version_of_key(&key), Some("1.0.0-beta.1"));
        for hostile in ["1.0.0\0x", " 1.0.0 ", "1.0.0/../../x", "<script>"] {
            let key = version(&package, hostile);
            assert_eq!(split_version_key(&key), None, "{hostile:?}");
            assert_eq!(version_of_key(&key), None, "{hostile:?}");
        }
        assert_eq!(file_name_of_key(&tarball(&package, "pkg-1.0.0.tgz")), Some("pkg-1.0.0.tgz"));
        assert_eq!(file_name_of_key(&tarball(&package, "../x.tgz")), None);
    }
}
