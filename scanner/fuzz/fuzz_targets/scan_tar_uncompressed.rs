//! Arbitrary bytes as an uncompressed tar (gzipped here, so the fuzzer explores tar
//! headers instead of fighting the gzip checksum).
#![no_main]

use std::io::Write as _;

use airlock_scanner::{ScanOptions, scan_tarball};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    encoder.write_all(data).unwrap();
    let tarball = encoder.finish().unwrap();
    let options = ScanOptions { max_uncompressed_bytes: 16 * 1024 * 1024, ..ScanOptions::default() };
    let _ = scan_tarball(&tarball, None, &options);
});
