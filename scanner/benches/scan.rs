//! Scanner throughput over real package tarballs.
//!
//! The tarballs come from the calibration cache (`scripts/calibrate-top300.sh` fetches
//! them into `target/calibrate-top300/tarballs/`) and from `target/bench-tarballs/`
//! (for typescript 5, the largest classic JavaScript package:
//! `curl -o target/bench-tarballs/typescript-5.9.3.tgz https://registry.npmjs.org/typescript/-/typescript-5.9.3.tgz`).
//! A missing tarball is skipped with a note, so the benchmark runs (and measures less)
//! on a fresh checkout. Override the directory with `AIRLOCK_BENCH_TARBALLS`.
//!
//! Run: cargo bench -p airlock-scanner --bench scan

use std::path::PathBuf;

use airlock_scanner::{ScanOptions, read_tarball, scan_tarball};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A tiny, a typical, a mid-size and the largest popular JavaScript packages.
const TARBALLS: &[&str] = &[
    "ms-2.1.3.tgz",
    "chalk-6.0.1.tgz",
    "lodash-4.18.1.tgz",
    "react-dom-19.3.1.tgz",
    "zod-4.6.7.tgz",
    "typescript-5.9.3.tgz",
];

fn tarball_directories() -> Vec<PathBuf> {
    if let Some(directory) = std::env::var_os("AIRLOCK_BENCH_TARBALLS") {
        return vec![PathBuf::from(directory)];
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    vec![target.join("calibrate-top300/tarballs"), target.join("bench-tarballs")]
}

fn find_tarball(wanted: &str) -> Option<PathBuf> {
    for directory in tarball_directories() {
        let exact = directory.join(wanted);
        if exact.exists() {
            return Some(exact);
        }
    }
    // Any version of the same package: the cache follows the calibration list.
    let name = wanted.rsplit_once('-').map_or(wanted, |(name, _)| name);
    let mut candidates: Vec<PathBuf> = tarball_directories()
        .into_iter()
        .filter_map(|directory| std::fs::read_dir(directory).ok())
        .flatten()
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
            eprintln!("skipping {wanted}: not in {:?} (run scripts/calibrate-top300.sh)", tarball_directories());
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
