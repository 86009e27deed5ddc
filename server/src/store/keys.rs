//! The only place sled keys are built. Keys are `name` or `name\0version`: a NUL can
//! never appear in a validated [`PackageName`] or version, so keys cannot collide and a
//! prefix scan over `name\0` finds exactly one package's versions.

use crate::npm::PackageName;

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

/// The version part of a version key.
pub(crate) fn version_of_key(key: &[u8]) -> Option<&str> {
    let separator = key.iter().position(|&byte| byte == 0)?;
    std::str::from_utf8(&key[separator + 1..]).ok()
}

/// Splits a version key into package name and version.
pub(crate) fn split_version_key(key: &[u8]) -> Option<(&str, &str)> {
    let separator = key.iter().position(|&byte| byte == 0)?;
    let name = std::str::from_utf8(&key[..separator]).ok()?;
    let version = std::str::from_utf8(&key[separator + 1..]).ok()?;
    Some((name, version))
}

/// Key of an admin-added policy rule: its id, big-endian, so keys sort by age.
pub(crate) fn policy_rule(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}
