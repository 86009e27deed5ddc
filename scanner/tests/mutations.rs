//! A cheap, deterministic stand-in for the cargo-fuzz targets (scanner/fuzz) that runs
//! in every `cargo test`: corpus tarballs with flipped bytes, truncated, and with their
//! tar headers corrupted under a valid gzip layer. Every scan must return a report, and
//! none may come from the panic guard.

use std::io::{Read as _, Write as _};
use std::path::Path;

use airlock_scanner::{ScanOptions, Verdict, scan_tarball};

/// xorshift64: reproducible without a dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}

fn corpus_tarballs() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data");
    let mut tarballs = Vec::new();
    for group in ["malicious", "benign"] {
        let mut cases: Vec<_> =
            std::fs::read_dir(root.join(group)).unwrap().map(|entry| entry.unwrap().path()).collect();
        cases.sort();
        for case in cases {
            let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let mut builder = tar::Builder::new(encoder);
            builder.append_dir_all("package", &case).unwrap();
            tarballs.push(builder.into_inner().unwrap().finish().unwrap());
        }
    }
    tarballs
}

fn assert_no_internal_error(bytes: &[u8], options: &ScanOptions) {
    let report = scan_tarball(bytes, None, options);
    if let Verdict::Unscannable { reason } = &report.verdict {
        assert!(!reason.starts_with("internal scanner error"), "{reason}");
    }
}

#[test]
fn mutated_tarballs_never_reach_the_panic_guard() {
    let options = ScanOptions { max_uncompressed_bytes: 8 * 1024 * 1024, ..ScanOptions::default() };
    let mut random = Random(0x5eed_a1f0_c0ff_ee11);
    for tarball in corpus_tarballs() {
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(tarball.as_slice()).read_to_end(&mut tar).unwrap();
        for _ in 0..40 {
            // Corrupt the tar layer under valid gzip: headers, sizes, names, checksums.
            let mut mutated = tar.clone();
            for _ in 0..1 + random.below(8) {
                let index = random.below(mutated.len());
                mutated[index] = random.next() as u8;
            }
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
            encoder.write_all(&mutated).unwrap();
            assert_no_internal_error(&encoder.finish().unwrap(), &options);
            // And the raw compressed bytes: flips and truncation.
            let mut compressed = tarball.clone();
            let index = random.below(compressed.len());
            compressed[index] ^= 1 << random.below(8);
            assert_no_internal_error(&compressed, &options);
            compressed.truncate(random.below(compressed.len()));
            assert_no_internal_error(&compressed, &options);
        }
    }
}
