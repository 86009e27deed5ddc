//! Arbitrary text as index.js and as package.json of an otherwise valid package: the
//! parser, the AST checks and the manifest checks must never panic.
#![no_main]

use airlock_scanner::{PackageFiles, ScanOptions, scan_files};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = ScanOptions::default();
    let mut files = PackageFiles::new();
    let _ = files.add_file("package.json", br#"{"name":"fuzz","version":"1.0.0","scripts":{"postinstall":"node index.js"}}"#.to_vec(), false, &options);
    let _ = files.add_file("index.js", data.to_vec(), false, &options);
    let _ = scan_files(&files, None, &options);
    let mut manifest_only = PackageFiles::new();
    let _ = manifest_only.add_file("package.json", data.to_vec(), false, &options);
    let _ = scan_files(&manifest_only, None, &options);
});
