//! Tests of archive reading: prefixes stripped, limits enforced, hostile paths refused.

use super::*;

/// Builds a .tar.gz from (path, contents, mode) entries, writing raw header paths so
/// hostile names reach the reader unchanged.
fn tar_gz(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(*mode);
        header.set_entry_type(tar::EntryType::Regular);
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, *contents).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

#[test]
fn the_real_npm_tarball_reads_without_its_package_prefix() {
    let bytes =
        include_bytes!("../../../test_data/provenance/registry/@isaacs/namespace-test/-/namespace-test-1.0.0.tgz");
    let tree = FileTree::from_tar_gz(bytes, ArchiveLimits::default()).unwrap();
    assert_eq!(tree.files.keys().collect::<Vec<_>>(), ["package.json"]);
}

#[test]
fn a_single_top_directory_is_stripped_and_modes_kept() {
    let bytes = tar_gz(&[("o-r-abc1234/index.js", b"x", 0o644), ("o-r-abc1234/bin/cli", b"#!/bin/sh", 0o755)]);
    let tree = FileTree::from_tar_gz(&bytes, ArchiveLimits::default()).unwrap();
    assert_eq!(tree.files.keys().collect::<Vec<_>>(), ["bin/cli", "index.js"]);
    assert!(tree.get("bin/cli").unwrap().executable);
    assert!(!tree.get("index.js").unwrap().executable);
    let mixed = tar_gz(&[("a/x", b"1", 0o644), ("b/y", b"2", 0o644)]);
    let tree = FileTree::from_tar_gz(&mixed, ArchiveLimits::default()).unwrap();
    assert_eq!(tree.files.keys().collect::<Vec<_>>(), ["a/x", "b/y"]);
}

#[test]
fn hostile_paths_are_refused() {
    for path in ["package/../../etc/passwd", "/etc/passwd", "package/a\\..\\b", "C:/x"] {
        let bytes = tar_gz(&[(path, b"x", 0o644)]);
        assert_eq!(
            FileTree::from_tar_gz(&bytes, ArchiveLimits::default()),
            Err(ArchiveError::HostilePath(path.to_owned())),
            "{path}"
        );
    }
    assert!(FileTree::from_files([("../x", Vec::new())]).is_err());
}

#[test]
fn limits_are_errors_never_truncations() {
    let big = vec![b'a'; 10_000];
    let bytes = tar_gz(&[("package/a.js", &big, 0o644)]);
    let limits = ArchiveLimits { max_file_bytes: 9_999, ..ArchiveLimits::default() };
    assert!(matches!(FileTree::from_tar_gz(&bytes, limits), Err(ArchiveError::FileTooLarge { .. })));
    // A decompression bomb: tiny compressed, large expanded.
    let limits = ArchiveLimits { max_total_bytes: 4_096, ..ArchiveLimits::default() };
    assert_eq!(FileTree::from_tar_gz(&bytes, limits), Err(ArchiveError::TooLarge(4_096)));
    let many = tar_gz(&[("p/a", b"1", 0o644), ("p/b", b"2", 0o644), ("p/c", b"3", 0o644)]);
    let limits = ArchiveLimits { max_entries: 2, ..ArchiveLimits::default() };
    assert_eq!(FileTree::from_tar_gz(&many, limits), Err(ArchiveError::TooManyEntries(2)));
    let twice = tar_gz(&[("p/a", b"1", 0o644), ("p/a", b"2", 0o644)]);
    assert_eq!(
        FileTree::from_tar_gz(&twice, ArchiveLimits::default()),
        Err(ArchiveError::DuplicatePath("p/a".to_owned()))
    );
    assert!(matches!(FileTree::from_tar_gz(b"not gzip", ArchiveLimits::default()), Err(ArchiveError::Corrupt(_))));
}
