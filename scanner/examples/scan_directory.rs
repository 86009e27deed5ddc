//! Scans every `.tgz` in a directory and prints one JSON line per tarball with the
//! package, the time taken and the findings at or above a threshold. Used by
//! `scripts/calibrate-top300.sh` (one process for 300 tarballs, so the timings are the
//! scanner's and not process start-up).
//!
//! Usage: cargo run --release -p airlock-scanner --example scan_directory -- DIR [SEVERITY]

use std::io::Write as _;
use std::time::Instant;

use airlock_scanner::{ScanOptions, Severity, scan_tarball};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut arguments = std::env::args().skip(1);
    let directory = arguments.next().ok_or("usage: scan_directory DIR [SEVERITY]")?;
    let threshold = arguments.next().and_then(|text| Severity::parse(&text)).unwrap_or(Severity::High);
    let mut paths: Vec<_> = std::fs::read_dir(&directory)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "tgz"))
        .collect();
    paths.sort();
    let options = ScanOptions::default();
    let mut stdout = std::io::stdout().lock();
    for path in paths {
        let bytes = std::fs::read(&path)?;
        let started = Instant::now();
        let report = scan_tarball(&bytes, None, &options);
        let elapsed = started.elapsed();
        let held_by: Vec<_> = report.findings.iter().filter(|finding| finding.severity >= threshold).collect();
        let line = serde_json::json!({
            "tarball": path.file_name().map(|name| name.to_string_lossy().into_owned()),
            "compressed_bytes": bytes.len(),
            "uncompressed_bytes": report.summary.as_ref().map(|summary| summary.bytes),
            "milliseconds": elapsed.as_secs_f64() * 1000.0,
            "held": report.holds_at(threshold),
            "verdict": report.verdict,
            "held_by": held_by,
            "counts": Severity::ALL.iter().map(|severity| (severity.as_str(), report.findings.iter().filter(|finding| finding.severity == *severity).count())).collect::<std::collections::BTreeMap<_, _>>(),
        });
        writeln!(stdout, "{line}")?;
    }
    Ok(())
}
