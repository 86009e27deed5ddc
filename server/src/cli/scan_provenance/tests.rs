//! Tests of `airlock scan`'s provenance options on the real fixtures in
//! `scanner/test_data/provenance`.

use super::*;

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scanner/test_data/provenance").join(path)
}

const NAMESPACE_TEST_TGZ: &str = "registry/@isaacs/namespace-test/-/namespace-test-1.0.0.tgz";
const SIGSTORE_TGZ: &str = "npm-provenance/slsa-verifier/provenance-npm-test-cli-v1-prega.tgz";

fn empty_report() -> ScanReport {
    ScanReport::scanned(Vec::new())
}

fn run(args: &ProvenanceArgs, tarball: &str) -> Vec<(String, Severity)> {
    let mut report = empty_report();
    extend_report(args, &std::fs::read(fixture(tarball)).unwrap(), &mut report).unwrap();
    report.findings.into_iter().map(|finding| (finding.rule, finding.severity)).collect()
}

fn rules(findings: &[(String, Severity)]) -> Vec<&str> {
    findings.iter().map(|(rule, _)| rule.as_str()).collect()
}

#[test]
fn nothing_requested_adds_nothing() {
    assert_eq!(run(&ProvenanceArgs::default(), NAMESPACE_TEST_TGZ), []);
}

#[test]
fn the_real_packument_signature_passes_and_a_tampered_one_fails() {
    let args = ProvenanceArgs {
        packument: Some(fixture("registry/@isaacs/namespace-test.json")),
        keys: Some(fixture("npm-keys/keys.json")),
        ..ProvenanceArgs::default()
    };
    assert_eq!(run(&args, NAMESPACE_TEST_TGZ), []);

    let directory = tempfile::tempdir().unwrap();
    let tampered = directory.path().join("packument.json");
    let text = std::fs::read_to_string(fixture("registry/@isaacs/namespace-test.json")).unwrap();
    std::fs::write(&tampered, text.replacen("5ZYe1Lgw", "5ZYe1Lgx", 1)).unwrap();
    let args = ProvenanceArgs { packument: Some(tampered), ..ProvenanceArgs::default() };
    assert_eq!(rules(&run(&args, NAMESPACE_TEST_TGZ)), ["integrity-mismatch", "registry-signature-invalid"]);
}

#[test]
fn real_attestations_verify_and_a_regression_is_reported() {
    let args = ProvenanceArgs {
        attestations: Some(fixture("npm-provenance/slsa-verifier/provenance-npm-test-cli-v1-prega.tgz.json")),
        ..ProvenanceArgs::default()
    };
    assert_eq!(rules(&run(&args, SIGSTORE_TGZ)), ["provenance-verified"]);

    let directory = tempfile::tempdir().unwrap();
    let previous = directory.path().join("previous.json");
    std::fs::write(
        &previous,
        r#"{"version": "2.3.0", "identity": {
            "source_repository_uri": "https://github.com/someone-else/sigstore-js",
            "source_commit": null, "source_ref": null,
            "workflow_path": ".github/workflows/release.yml", "build_signer_uri": null,
            "builder_id": null, "issuer": null, "run_invocation_uri": null,
            "runner_environment": null}}"#,
    )
    .unwrap();
    let args = ProvenanceArgs { previous_provenance: Some(previous), ..args };
    let findings = run(&args, SIGSTORE_TGZ);
    assert_eq!(findings[0], ("provenance-regression".to_owned(), Severity::High));

    // The same attestations against another package's bytes: rejected, high.
    let args = ProvenanceArgs { attestations: args.attestations.clone(), ..ProvenanceArgs::default() };
    let mut report = empty_report();
    let mut other = std::fs::read(fixture(SIGSTORE_TGZ)).unwrap();
    other.extend_from_slice(b"\0");
    // A trailing NUL keeps the gzip readable but changes the sha512.
    extend_report(&args, &other, &mut report).unwrap();
    assert!(report.findings.iter().any(|finding| finding.rule == "provenance-subject-mismatch"));
}

/// Unpacks `tarball` into `directory/packages/client`, the way sigstore-js lays out
/// its monorepo, with TypeScript sources instead of the built `dist/`.
fn sigstore_js_checkout(directory: &Path, tamper: Option<(&str, &str)>) {
    let package =
        FileTree::from_tar_gz(&std::fs::read(fixture(SIGSTORE_TGZ)).unwrap(), ArchiveLimits::default()).unwrap();
    for (path, file) in &package.files {
        let target = if path == "LICENSE" {
            directory.join(path)
        } else if path.starts_with("dist/") {
            continue;
        } else {
            directory.join("packages/client").join(path)
        };
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        let mut bytes = file.bytes.clone();
        if let Some((tampered_path, line)) = tamper
            && tampered_path == path
        {
            bytes.extend_from_slice(line.as_bytes());
        }
        std::fs::write(target, bytes).unwrap();
    }
    let source = directory.join("packages/client/src/index.ts");
    std::fs::create_dir_all(source.parent().unwrap()).unwrap();
    std::fs::write(source, "export * from './sigstore';\n").unwrap();
    std::fs::write(directory.join("package.json"), r#"{"name": "sigstore-monorepo", "private": true}"#).unwrap();
}

#[test]
fn a_source_directory_is_compared_file_by_file_with_build_output_apart() {
    let checkout = tempfile::tempdir().unwrap();
    sigstore_js_checkout(checkout.path(), None);
    let args = ProvenanceArgs { source: Some(checkout.path().to_owned()), ..ProvenanceArgs::default() };
    assert_eq!(rules(&run(&args, SIGSTORE_TGZ)), ["source-build-output", "source-match"]);

    // The repository's README differs from the published one: low; package.json: high.
    let checkout = tempfile::tempdir().unwrap();
    sigstore_js_checkout(checkout.path(), Some(("README.md", "\nextra line\n")));
    let args = ProvenanceArgs { source: Some(checkout.path().to_owned()), ..ProvenanceArgs::default() };
    let findings = run(&args, SIGSTORE_TGZ);
    assert!(findings.contains(&("source-mismatch".to_owned(), Severity::Low)), "{findings:?}");
}

#[test]
fn a_source_without_the_package_is_unverifiable_at_the_chosen_severity() {
    // A workspace root that publishes no package of this name: nothing to compare with.
    let checkout = tempfile::tempdir().unwrap();
    std::fs::write(checkout.path().join("package.json"), r#"{"name": "other", "private": true}"#).unwrap();
    let args = ProvenanceArgs {
        source: Some(checkout.path().to_owned()),
        source_unverifiable_severity: Severity::High,
        ..ProvenanceArgs::default()
    };
    assert_eq!(run(&args, NAMESPACE_TEST_TGZ), [("source-unverifiable".to_owned(), Severity::High)]);
}

#[test]
fn a_source_that_publishes_another_name_is_compared_and_the_mismatch_reported() {
    let checkout = tempfile::tempdir().unwrap();
    std::fs::write(checkout.path().join("package.json"), r#"{"name": "other"}"#).unwrap();
    let args = ProvenanceArgs {
        source: Some(checkout.path().to_owned()),
        source_unverifiable_severity: Severity::High,
        ..ProvenanceArgs::default()
    };
    let findings = run(&args, NAMESPACE_TEST_TGZ);
    assert!(findings.contains(&("source-name-mismatch".to_owned(), Severity::Medium)), "{findings:?}");
    assert!(!findings.iter().any(|(rule, _)| rule == "source-unverifiable"), "{findings:?}");
}

#[test]
fn a_severity_flag_names_the_accepted_values() {
    assert_eq!(parse_severity("critical"), Ok(Severity::Critical));
    assert_eq!(parse_severity("urgent"), Err("`urgent` is not one of info, low, medium, high, critical".to_owned()));
}

#[test]
fn an_unscannable_package_is_left_as_it_is() {
    let args = ProvenanceArgs {
        packument: Some(fixture("registry/@isaacs/namespace-test.json")),
        ..ProvenanceArgs::default()
    };
    let mut report = ScanReport::unscannable("not a tarball");
    extend_report(&args, b"not a tarball", &mut report).unwrap();
    assert!(report.findings.is_empty());
    assert!(extend_report(&args, b"not a tarball", &mut ScanReport::scanned(Vec::new())).is_err());
}

#[test]
fn provenance_declared_by_the_packument_must_be_delivered() {
    use base64::Engine as _;
    let tarball = std::fs::read(fixture(SIGSTORE_TGZ)).unwrap();
    let integrity = format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(sha512_of(&tarball)));
    let directory = tempfile::tempdir().unwrap();
    let packument = directory.path().join("packument.json");
    std::fs::write(
        &packument,
        serde_json::json!({"name": "sigstore", "versions": {"2.3.1": {
            "name": "sigstore", "version": "2.3.1",
            "dist": {"integrity": integrity, "attestations": {"provenance": {"predicateType": "https://slsa.dev/provenance/v1"}}}
        }}})
        .to_string(),
    )
    .unwrap();
    let empty = directory.path().join("attestations.json");
    std::fs::write(&empty, r#"{"attestations": []}"#).unwrap();
    let args =
        ProvenanceArgs { packument: Some(packument.clone()), attestations: Some(empty), ..ProvenanceArgs::default() };
    // No signature from a registry that signs everything, and the provenance went missing.
    assert_eq!(rules(&run(&args, SIGSTORE_TGZ)), ["provenance-missing", "registry-signature-missing"]);

    let args = ProvenanceArgs {
        packument: Some(packument),
        attestations: Some(fixture("npm-provenance/slsa-verifier/provenance-npm-test-cli-v1-prega.tgz.json")),
        ..ProvenanceArgs::default()
    };
    assert_eq!(rules(&run(&args, SIGSTORE_TGZ)), ["registry-signature-missing", "provenance-verified"]);
}
