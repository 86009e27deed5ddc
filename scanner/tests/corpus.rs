//! The calibration corpus: every malicious case (modelled on a documented attack) must
//! be held at the default threshold, every harmless look-alike must not, and the
//! "review" cases must be reported without being held. Each report is snapshotted and
//! reviewed like code.
//!
//! Cases are unpacked package directories under `scanner/test_data/{malicious,benign,
//! review}/<case>/`, and `diff/<case>/{previous,current}/` for the version diff. Each
//! case is scanned both from the directory and from a tarball built from it, and the
//! two reports must agree.

use std::path::Path;

use airlock_scanner::{Indicators, PackageFiles, ScanOptions, ScanReport, Severity, scan_files, scan_tarball};

/// The sample known-malware feed Airlock ships (`scanner/data/known-malware/`), loaded
/// the way the server loads a configured feed directory.
fn sample_feed() -> Indicators {
    let path = "incidents.json";
    let bytes = include_bytes!("../data/known-malware/incidents.json");
    Indicators::from_osv_documents([(path, bytes.as_slice())]).expect("the sample feed parses")
}

/// The options the corpus is scanned with: the defaults plus the sample feed.
fn corpus_options() -> ScanOptions {
    ScanOptions { indicators: std::sync::Arc::new(sample_feed()), ..ScanOptions::default() }
}

/// The rules each malicious case must trigger at high or critical severity.
const EXPECTED_MALICIOUS_RULES: &[(&str, &[&str])] = &[
    ("binary-disguised-as-script", &["binary-disguised"]),
    ("binding-gyp-download", &["binding-gyp-command"]),
    ("browser-wallet-stealer", &["credential-exfiltration", "network-exfil-service"]),
    ("chalk-debug-clipper", &["crypto-clipper", "obfuscated-code", "wallet-provider-tampering"]),
    ("curl-pipe-sh-install", &["install-script-download"]),
    ("decode-then-eval", &["decode-then-execute"]),
    ("dns-exfiltration", &["dns-exfiltration"]),
    ("env-exfil-discord-webhook", &["env-exfiltration", "network-exfil-service"]),
    ("eslint-scope-pastebin", &["network-exfil-service", "remote-code-execution"]),
    ("event-stream-flatmap-stream", &["decode-then-execute"]),
    ("glassworm-invisible-payload", &["unicode-hidden-code"]),
    ("hangul-filler-backdoor", &["unicode-hidden-code"]),
    ("nx-s1ngularity-telemetry", &["ai-cli-abuse", "credential-cli", "worm-github-repo", "shell-profile-write"]),
    ("postmark-mcp-bcc", &["mail-hidden-recipient"]),
    ("remote-url-dependency", &["dependency-non-registry"]),
    ("shai-hulud-worm", &["secret-scanner", "worm-npm-publish", "worm-workflow-write", "network-exfil-service"]),
    ("ssh-key-stealer", &["credential-exfiltration"]),
    ("trojan-source-bidi", &["unicode-bidi"]),
    ("typosquat-with-install-script", &["typosquat", "network-ip-literal"]),
    ("ua-parser-js-cryptominer", &["shell-script-download"]),
];

/// The rule each review case must report at medium, without anything holding it.
const EXPECTED_REVIEW_RULES: &[(&str, &str)] = &[
    ("bin-shadows-git", "bin-shadows-system-command"),
    ("fetch-polyfill", "network-api-override"),
    ("git-dependency", "dependency-non-registry"),
    ("require-hook", "require-hook"),
    ("typosquat-no-install-script", "typosquat"),
];

/// The rule each case that attacks the scanner itself (`limits/`) must report. These
/// exist to exhaust the analysis; their memory is asserted in `tests/resources.rs`.
const EXPECTED_LIMIT_RULES: &[(&str, &str)] = &[
    // See: issue 10 (40 doublings of a URL constant once took the scanner to 3 GiB).
    ("doubling-url-constants", "analysis-limit-reached"),
    // Its cousins: the same doubling through `+` chains, array spreads and templates.
    ("concatenation-chain", "analysis-limit-reached"),
    ("array-spread-doubling", "network-exfil-service"),
    ("nested-template-doubling", "analysis-limit-reached"),
];

fn read_case(directory: &Path) -> PackageFiles {
    let mut files = PackageFiles::new();
    let options = ScanOptions::default();
    let mut stack = vec![directory.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let relative = path.strip_prefix(directory).unwrap().to_string_lossy().replace('\\', "/");
            files.add_file(&relative, std::fs::read(&path).unwrap(), false, &options).unwrap();
        }
    }
    files
}

/// A registry-style tarball (`package/…`) of a case directory.
fn tarball_of(files: &PackageFiles) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for (path, file) in files.iter() {
        let mut header = tar::Header::new_gnu();
        header.set_size(file.bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, format!("package/{path}"), file.bytes.as_slice()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn scan_case(directory: &Path, previous: Option<&Path>) -> ScanReport {
    let options = corpus_options();
    let files = read_case(directory);
    let previous_files = previous.map(read_case);
    let report = scan_files(&files, previous_files.as_ref(), &options);
    let previous_tarball = previous_files.as_ref().map(tarball_of);
    let from_tarball = scan_tarball(&tarball_of(&files), previous_tarball.as_deref(), &options);
    assert_eq!(report, from_tarball, "directory and tarball scans of {} differ", directory.display());
    report
}

fn case_name(package_json: &Path) -> String {
    package_json.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned()
}

fn rules_at_or_above(report: &ScanReport, severity: Severity) -> Vec<&str> {
    report.findings.iter().filter(|finding| finding.severity >= severity).map(|finding| finding.rule.as_str()).collect()
}

#[test]
fn malicious_cases_are_held_for_the_expected_reasons() {
    insta::glob!("../test_data", "malicious/*/package.json", |package_json| {
        let case = case_name(package_json);
        let report = scan_case(package_json.parent().unwrap(), None);
        assert!(report.holds_at(Severity::High), "{case} is not held:\n{report:#?}");
        let expected = EXPECTED_MALICIOUS_RULES
            .iter()
            .find(|(name, _)| *name == case)
            .unwrap_or_else(|| panic!("no expectations listed for {case}"))
            .1;
        let held_by = rules_at_or_above(&report, Severity::High);
        for rule in expected {
            assert!(held_by.contains(rule), "{case}: expected {rule} at high or above, got {held_by:?}");
        }
        insta::assert_json_snapshot!(report);
    });
}

#[test]
fn benign_look_alikes_are_not_held() {
    insta::glob!("../test_data", "benign/*/package.json", |package_json| {
        let case = case_name(package_json);
        let report = scan_case(package_json.parent().unwrap(), None);
        assert!(!report.holds_at(Severity::High), "{case} is held by {:?}", rules_at_or_above(&report, Severity::High));
        insta::assert_json_snapshot!(report);
    });
}

#[test]
fn review_cases_are_reported_but_not_held() {
    insta::glob!("../test_data", "review/*/package.json", |package_json| {
        let case = case_name(package_json);
        let report = scan_case(package_json.parent().unwrap(), None);
        let expected = EXPECTED_REVIEW_RULES
            .iter()
            .find(|(name, _)| *name == case)
            .unwrap_or_else(|| panic!("no expectations listed for {case}"))
            .1;
        assert!(!report.holds_at(Severity::High), "{case} is held: {:?}", rules_at_or_above(&report, Severity::High));
        assert!(
            report.findings.iter().any(|finding| finding.rule == expected && finding.severity == Severity::Medium),
            "{case}: expected {expected} at medium:\n{report:#?}"
        );
        insta::assert_json_snapshot!(report);
    });
}

#[test]
fn limit_cases_report_the_limit_they_reach() {
    insta::glob!("../test_data", "limits/*/package.json", |package_json| {
        let case = case_name(package_json);
        let report = scan_case(package_json.parent().unwrap(), None);
        let expected = EXPECTED_LIMIT_RULES
            .iter()
            .find(|(name, _)| *name == case)
            .unwrap_or_else(|| panic!("no expectations listed for {case}"))
            .1;
        assert!(
            report.findings.iter().any(|finding| finding.rule == expected),
            "{case}: expected {expected}:\n{report:#?}"
        );
        insta::assert_json_snapshot!(report);
    });
}

#[test]
fn diff_cases() {
    insta::glob!("../test_data", "diff/*/current/package.json", |package_json| {
        let current = package_json.parent().unwrap();
        let previous = current.parent().unwrap().join("previous");
        let report = scan_case(current, Some(&previous));
        insta::assert_json_snapshot!(report);
    });
}

/// The postmark-mcp attack, as a diff: one added line with a hard-coded Bcc must be
/// high, at the right file and line, quoting the added line.
#[test]
fn one_line_bcc_addition_is_high_with_file_line_and_excerpt() {
    for case in ["postmark-mcp-1.0.16", "hidden-bcc-generic"] {
        let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/diff").join(case);
        let report = scan_case(&directory.join("current"), Some(&directory.join("previous")));
        let finding = report
            .findings
            .iter()
            .find(|finding| finding.rule == "diff-new-mail-recipient")
            .unwrap_or_else(|| panic!("{case}: no diff-new-mail-recipient finding"));
        assert_eq!(finding.severity, Severity::High);
        let location = finding.location.as_ref().unwrap();
        assert_eq!(location.file, "index.js");
        let current_text = std::fs::read_to_string(directory.join("current/index.js")).unwrap();
        let added_line_number =
            current_text.lines().position(|line| line.to_ascii_lowercase().contains("bcc:")).unwrap() + 1;
        assert_eq!(location.line, Some(added_line_number as u32));
        let added_line = current_text.lines().nth(added_line_number - 1).unwrap().trim();
        assert_eq!(finding.excerpt.as_deref(), Some(added_line));
        assert_eq!(report.diff.as_ref().unwrap().files_changed, vec!["index.js", "package.json"]);
        // The previous version alone is clean.
        let previous = scan_case(&directory.join("previous"), None);
        assert!(!previous.holds_at(Severity::Medium), "{case} previous: {:?}", previous.findings);
    }
}

#[test]
fn a_new_install_script_is_high_a_new_binary_medium_and_a_benign_refactor_is_not_held() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/diff");
    let report =
        scan_case(&directory.join("new-install-script/current"), Some(&directory.join("new-install-script/previous")));
    assert!(
        report
            .findings
            .iter()
            .any(|finding| finding.rule == "diff-new-install-script" && finding.severity == Severity::High)
    );
    let report = scan_case(&directory.join("new-binary/current"), Some(&directory.join("new-binary/previous")));
    assert!(
        report.findings.iter().any(|finding| finding.rule == "diff-new-binary" && finding.severity == Severity::Medium)
    );
    let report =
        scan_case(&directory.join("benign-refactor/current"), Some(&directory.join("benign-refactor/previous")));
    assert!(!report.holds_at(Severity::High), "{:?}", report.findings);
    assert_eq!(report.diff.as_ref().unwrap().dependencies_added, vec!["picocolors@^1.0.0"]);
}

/// Feeds only add: the postmark-mcp replay with its recipient moved to a domain no feed
/// lists, scanned with no feed at all, is still held by what the code does.
#[test]
fn postmark_replay_with_an_unlisted_domain_is_held_without_any_feed() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/malicious/postmark-mcp-bcc");
    let original = read_case(&directory);
    let mut files = PackageFiles::new();
    for (path, file) in original.iter() {
        let text = String::from_utf8_lossy(&file.bytes);
        assert!(path != "index.js" || text.contains("giftshop.club"), "the replay names the attacker's domain");
        let bytes =
            text.replace("giftshop.club", "mail-relay-service.net").replace("\"1.0.16\"", "\"1.0.99\"").into_bytes();
        files.add_file(path, bytes, false, &ScanOptions::default()).unwrap();
    }
    for options in [ScanOptions::default(), corpus_options()] {
        let report = scan_files(&files, None, &options);
        let held_by = rules_at_or_above(&report, Severity::High);
        assert!(held_by.contains(&"mail-hidden-recipient"), "not held by the mail rule: {held_by:?}");
        assert!(!held_by.contains(&"known-malware-indicator") && !held_by.contains(&"known-malicious-version"));
    }
}

#[test]
fn versions_and_indicators_a_feed_lists_are_critical() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/malicious/postmark-mcp-bcc");
    let report = scan_files(&read_case(&directory), None, &corpus_options());
    let critical: Vec<&str> = report
        .findings
        .iter()
        .filter(|finding| finding.severity == Severity::Critical)
        .map(|finding| finding.rule.as_str())
        .collect();
    assert!(critical.contains(&"known-malicious-version"), "{critical:?}");
    assert!(critical.contains(&"known-malware-indicator"), "{critical:?}");
    let unlisted = scan_files(&read_case(&directory), None, &ScanOptions::default());
    assert!(unlisted.findings.iter().all(|finding| !finding.rule.starts_with("known-")));
}
