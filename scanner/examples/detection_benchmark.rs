//! The detection benchmark: scans every `.tgz` in one or more sample directories and
//! prints, per set, how many versions the default policy would hold, per category (when
//! the directory has an `index.json` like `../shared/malware-calibration/`), per rule,
//! and the seconds each package took (median, p95, max). Beside Airlock's numbers it
//! prints, from the same scans, the naive floor an analyst would start from: hold every
//! version with an install script (`preinstall`, `install`, `postinstall`). Driven by
//! `scripts/detection-benchmark`, which names the three standard sets.
//!
//! Usage: cargo run --release -p airlock-scanner --example detection_benchmark --
//!        [--threshold SEVERITY] [--list held|missed|all] [--jsonl FILE] NAME=DIR...
//!
//! A set whose directory does not exist is reported as skipped, not as an error, so the
//! benchmark runs where the live-malware set is absent.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use airlock_scanner::{ScanOptions, Severity, scan_tarball};

/// Which packages to name under each set's numbers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listing {
    /// Only the counts.
    None,
    /// The held packages, with the rules that held them (false holds, for benign sets).
    Held,
    /// The packages not held, with their category (misses, for malware sets).
    Missed,
    /// Both.
    All,
}

struct Arguments {
    threshold: Severity,
    listing: Listing,
    jsonl: Option<PathBuf>,
    sets: Vec<(String, PathBuf)>,
}

fn parse_arguments() -> Result<Arguments, String> {
    let usage = "usage: detection_benchmark [--threshold SEVERITY] [--list held|missed|all] [--jsonl FILE] NAME=DIR...";
    let mut parsed = Arguments { threshold: Severity::High, listing: Listing::None, jsonl: None, sets: Vec::new() };
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--threshold" => {
                let value = arguments.next().ok_or(usage)?;
                parsed.threshold = Severity::parse(&value).ok_or_else(|| format!("unknown severity {value:?}"))?;
            }
            "--list" => {
                parsed.listing = match arguments.next().as_deref() {
                    Some("held") => Listing::Held,
                    Some("missed") => Listing::Missed,
                    Some("all") => Listing::All,
                    other => return Err(format!("--list takes held, missed or all, not {other:?}")),
                }
            }
            "--jsonl" => parsed.jsonl = Some(PathBuf::from(arguments.next().ok_or(usage)?)),
            set => {
                let (name, directory) =
                    set.split_once('=').ok_or_else(|| format!("{set:?} is not NAME=DIR; {usage}"))?;
                parsed.sets.push((name.to_owned(), PathBuf::from(directory)));
            }
        }
    }
    if parsed.sets.is_empty() {
        return Err(usage.to_owned());
    }
    Ok(parsed)
}

/// Category per tarball file name, from an `index.json` in the directory or its parent
/// (`{"samples": [{"file": "samples/x@1.0.0.tgz", "attack_category": "…"}]}`).
fn categories_for(directory: &Path) -> BTreeMap<String, String> {
    let candidates = [directory.join("index.json"), directory.join("..").join("index.json")];
    let Some(text) = candidates.iter().find_map(|path| std::fs::read_to_string(path).ok()) else {
        return BTreeMap::new();
    };
    let Ok(index) = serde_json::from_str::<serde_json::Value>(&text) else {
        eprintln!("warning: index.json next to {} is not JSON; no categories", directory.display());
        return BTreeMap::new();
    };
    let samples = index.get("samples").and_then(|samples| samples.as_array()).cloned().unwrap_or_default();
    samples
        .iter()
        .filter_map(|sample| {
            let file = sample.get("file")?.as_str()?;
            let category = sample.get("attack_category")?.as_str()?;
            let file_name = Path::new(file).file_name()?.to_string_lossy().into_owned();
            Some((file_name, category.to_owned()))
        })
        .collect()
}

struct PackageResult {
    tarball: String,
    category: Option<String>,
    held: bool,
    held_by: BTreeSet<String>,
    has_install_script: bool,
    seconds: f64,
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arguments = parse_arguments()?;
    let options = ScanOptions::default();
    let mut jsonl = match &arguments.jsonl {
        Some(path) => Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => None,
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "threshold: {} (a version is held when any finding is at or above it)", arguments.threshold)?;
    for (set_name, directory) in &arguments.sets {
        let Ok(entries) = std::fs::read_dir(directory) else {
            writeln!(stdout, "\n== {set_name}: skipped ({} does not exist)", directory.display())?;
            continue;
        };
        let categories = categories_for(directory);
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "tgz"))
            .collect();
        paths.sort();
        let mut results = Vec::with_capacity(paths.len());
        for path in &paths {
            let bytes = std::fs::read(path)?;
            let started = Instant::now();
            let report = scan_tarball(&bytes, None, &options);
            let seconds = started.elapsed().as_secs_f64();
            let tarball = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
            let held_by: BTreeSet<String> = report
                .findings
                .iter()
                .filter(|finding| finding.severity >= arguments.threshold)
                .map(|finding| finding.rule.clone())
                .collect();
            let held = report.holds_at(arguments.threshold);
            if let Some(writer) = jsonl.as_mut() {
                let line = serde_json::json!({
                    "set": set_name,
                    "tarball": tarball,
                    "category": categories.get(&tarball),
                    "held": held,
                    "milliseconds": seconds * 1000.0,
                    "verdict": report.verdict,
                    "held_by": report.findings.iter().filter(|finding| finding.severity >= arguments.threshold).collect::<Vec<_>>(),
                    "below_threshold": report.findings.iter().filter(|finding| finding.severity < arguments.threshold && finding.severity > Severity::Info).map(|finding| format!("{} {}: {}", finding.severity, finding.rule, finding.message)).collect::<Vec<_>>(),
                });
                writeln!(writer, "{line}")?;
            }
            let has_install_script = report.summary.as_ref().is_some_and(|summary| !summary.install_scripts.is_empty());
            results.push(PackageResult {
                category: categories.get(&tarball).cloned(),
                tarball,
                held,
                held_by,
                has_install_script,
                seconds,
            });
        }
        print_set(&mut stdout, set_name, &results, arguments.listing)?;
    }
    Ok(())
}

fn print_set(
    output: &mut impl std::io::Write,
    set_name: &str,
    results: &[PackageResult],
    listing: Listing,
) -> std::io::Result<()> {
    let held = results.iter().filter(|result| result.held).count();
    let naive = results.iter().filter(|result| result.has_install_script).count();
    writeln!(output, "\n== {set_name}: {held}/{} held", results.len())?;
    writeln!(output, "   anchor, hold any install script: {naive}/{}", results.len())?;

    let mut by_category: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for result in results {
        if let Some(category) = &result.category {
            let counts = by_category.entry(category).or_default();
            counts.0 += usize::from(result.held);
            counts.1 += usize::from(result.has_install_script);
            counts.2 += 1;
        }
    }
    if !by_category.is_empty() {
        writeln!(output, "-- per category (held/total, then the install-script anchor)")?;
        for (category, (held, naive, total)) in &by_category {
            writeln!(output, "   {held:>4}/{total:<4} anchor {naive:>4}/{total:<4} {category}")?;
        }
    }

    let mut by_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for result in results {
        for rule in &result.held_by {
            *by_rule.entry(rule).or_default() += 1;
        }
    }
    if !by_rule.is_empty() {
        let mut rules: Vec<_> = by_rule.into_iter().collect();
        rules.sort_by(|left, right| right.1.cmp(&left.1).then(left.0.cmp(right.0)));
        writeln!(output, "-- per rule (packages with a finding of this rule at or above the threshold)")?;
        for (rule, count) in rules {
            writeln!(output, "   {count:>4} {rule}")?;
        }
    }

    let mut seconds: Vec<f64> = results.iter().map(|result| result.seconds).collect();
    seconds.sort_by(f64::total_cmp);
    let slowest = results.iter().max_by(|left, right| left.seconds.total_cmp(&right.seconds));
    writeln!(
        output,
        "-- seconds per package: median {:.4}, p95 {:.4}, max {:.4}{}",
        percentile(&seconds, 0.5),
        percentile(&seconds, 0.95),
        seconds.last().copied().unwrap_or(0.0),
        slowest.map(|result| format!(" ({})", result.tarball)).unwrap_or_default()
    )?;

    if matches!(listing, Listing::Held | Listing::All) {
        for result in results.iter().filter(|result| result.held) {
            let rules: Vec<_> = result.held_by.iter().map(String::as_str).collect();
            writeln!(output, "   held   {} [{}]", result.tarball, rules.join(", "))?;
        }
    }
    if matches!(listing, Listing::Missed | Listing::All) {
        for result in results.iter().filter(|result| !result.held) {
            writeln!(output, "   missed {} ({})", result.tarball, result.category.as_deref().unwrap_or("-"))?;
        }
    }
    Ok(())
}
