//! Arbitrary bytes as a .tgz: the scan must return a report (never panic, never grow
//! without bound), with or without a previous version.
#![no_main]

use airlock_scanner::{ScanOptions, scan_tarball};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = ScanOptions { max_uncompressed_bytes: 16 * 1024 * 1024, ..ScanOptions::default() };
    let (current, previous) = data.split_at(data.len() / 2);
    let _ = scan_tarball(data, None, &options);
    let _ = scan_tarball(current, Some(previous), &options);
});
