//! Scanner throughput over real package tarballs.
//!
//! The tarballs come from the calibration cache (`scripts/calibrate-top300.sh` fetches
//! them into `target/calibrate-top300/tarballs/`); a missing tarball is skipped with a
//! note, so the benchmark runs (and measures less) on a fresh checkout. Override the
//! directory with `AIRLOCK_BENCH_TARBALLS`.
//!
//! Run: cargo bench -p airlock-scanner --bench scan

use std::path::PathBuf;

use airlock_scanner::{ScanOptions, read_tarball, scan_tarball};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A small, a typical and the largest popular packages.
const TARBALLS: &[&str] =
    &["ms-2.1.3.tgz", "chalk-6.0.1.tgz", "lodash-4.18.1.tgz", "react-dom-19.3.1.tgz", "typescript-7.0.2.tgz"];

fn tarball_directory() -> PathBuf {
    std::env::var_os("AIRLOCK_BENCH_TARBALLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/calibrate-top300/tarballs"))
}

fn find_tarball(prefix: &str) -> Option<PathBuf> {
    let exact = tarball_directory().join(prefix);
    if exact.exists() {
        return Some(exact);
    }
    // Any version of the same package: the cache follows the calibration list.
    let name = prefix.rsplit_once('-').map_or(prefix, |(name, _)| name);
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(tarball_directory())
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name().and_then(|file| file.to_str()).is_some_and(|file| {
                file.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|rest| rest.starts_with(|character: char| character.is_ascii_digit()))
            })
        })
        .collect();
    candidates.sort();
    candidates.pop()
}

fn bench_scan(criterion: &mut Criterion) {
    let options = ScanOptions::default();
    let mut group = criterion.benchmark_group("scan_tarball");
    group.sample_size(10);
    for wanted in TARBALLS {
        let Some(path) = find_tarball(wanted) else {
            eprintln!("skipping {wanted}: not in {} (run scripts/calibrate-top300.sh)", tarball_directory().display());
            continue;
        };
        let bytes = std::fs::read(&path).expect("reading a cached tarball");
        let unpacked_bytes = read_tarball(&bytes, &options).map(|files| files.total_bytes()).unwrap_or(0);
        let label = path.file_name().and_then(|name| name.to_str()).unwrap_or(wanted).to_owned();
        // Throughput in unpacked bytes: what the parser and checks actually read.
        group.throughput(Throughput::Bytes(unpacked_bytes));
        group.bench_function(label, |bencher| bencher.iter(|| scan_tarball(&bytes, None, &options)));
    }
    group.finish();
}

criterion_group!(benches, bench_scan);
criterion_main!(benches);
