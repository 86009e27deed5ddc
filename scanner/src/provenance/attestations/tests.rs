//! Tests of attestation verification, on real attestations the npm registry served and
//! on tampered copies of them (see `scanner/test_data/provenance/README.md`).

use super::*;
use crate::provenance::{RegistryKeys, sha512_of};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/test_data/provenance/npm-provenance");

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/{path}")).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// The sha512 the valid statement in `response` names, for fixtures without a tarball.
fn subject_sha512(response: &[u8]) -> [u8; 64] {
    use base64::Engine as _;
    let response: serde_json::Value = serde_json::from_slice(response).unwrap();
    let payload = response["attestations"][0]["bundle"]["dsseEnvelope"]["payload"].as_str().unwrap();
    let statement: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(payload).unwrap()).unwrap();
    let hex_digest = statement["subject"][0]["digest"]["sha512"].as_str().unwrap();
    hex::decode(hex_digest).unwrap().try_into().unwrap()
}

fn check(response: &[u8], name: &str, version: &str, sha512: &[u8; 64]) -> ProvenanceResult {
    verify_attestations(
        response,
        name,
        version,
        sha512,
        &RegistryKeys::npm_public_registry(),
        &SigstoreTrustRoot::public_good(),
    )
}

fn check_slsa_verifier(case: &str, name: &str, version: &str) -> ProvenanceResult {
    let tarball = read(&format!("slsa-verifier/{case}.tgz"));
    let response = read(&format!("slsa-verifier/{case}.tgz.json"));
    check(&response, name, version, &sha512_of(&tarball))
}

fn rejection(status: &AttestationStatus) -> &AttestationRejection {
    match status {
        AttestationStatus::Rejected { reason, .. } => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn assert_verified(status: &AttestationStatus) {
    assert!(matches!(status, AttestationStatus::Verified { .. }), "expected verified, got {status:?}");
}

#[test]
fn sigstore_2_3_1_slsa_v1_verifies_and_names_its_repository_and_commit() {
    let result = check_slsa_verifier("provenance-npm-test-cli-v1-prega", "sigstore", "2.3.1");
    assert_verified(&result.provenance);
    assert_verified(&result.publish);
    assert!(result.other_rejections.is_empty());
    let identity = result.identity.clone().expect("identity");
    assert_eq!(identity.source_repository_uri, "https://github.com/sigstore/sigstore-js");
    assert_eq!(identity.source_commit.as_deref(), Some("46e7056ff9912ebfee5298d94024895a9fea76c0"));
    assert_eq!(identity.source_ref.as_deref(), Some("refs/heads/main"));
    assert_eq!(identity.workflow_path.as_deref(), Some(".github/workflows/release.yml"));
    assert_eq!(identity.builder_id.as_deref(), Some("https://github.com/actions/runner/github-hosted"));
    assert_eq!(identity.issuer.as_deref(), Some("https://token.actions.githubusercontent.com"));
    assert_eq!(
        result.findings().iter().map(|finding| finding.rule.as_str()).collect::<Vec<_>>(),
        ["provenance-verified"]
    );
}

#[test]
fn playwright_cli_bundle_v0_3_with_dsse_entries_verifies_with_the_current_key() {
    let tarball = read("playwright-cli-0.1.1/playwright-cli-0.1.1.tgz");
    let response = read("playwright-cli-0.1.1/playwright-cli-0.1.1-attestations.json");
    let result = check(&response, "@playwright/cli", "0.1.1", &sha512_of(&tarball));
    assert_eq!(result.package_url, "pkg:npm/%40playwright/cli@0.1.1");
    assert_verified(&result.provenance);
    match &result.publish {
        AttestationStatus::Verified { signer, .. } => {
            assert_eq!(signer, "SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U")
        }
        other => panic!("publish not verified: {other:?}"),
    }
    let identity = result.identity.expect("identity");
    assert_eq!(identity.source_repository_uri, "https://github.com/microsoft/playwright-cli");
    assert_eq!(identity.source_commit.as_deref(), Some("d1c6d1113932ddcee243e8b111b6d4aea553df20"));
    assert_eq!(identity.source_ref.as_deref(), Some("refs/tags/v0.1.1"));
    assert_eq!(identity.workflow_path.as_deref(), Some(".github/workflows/publish.yml"));
}

#[test]
fn other_valid_responses_verify_with_slsa_v1_and_v0_2() {
    for (case, name, version, repository, commit) in [
        (
            "gundam-visor-cli-v1-tag",
            "gundam-visor",
            "1.0.1",
            "https://github.com/ramonpetgrave64/gundam-visor",
            "599500821344b070902a7a5666064bfdaba715df",
        ),
        (
            "provenance-npm-test-cli-v02-prega",
            "@laurentsimon/provenance-npm-test",
            "1.0.3",
            "https://github.com/laurentsimon/provenance-npm-test",
            "b38894f2dda4355ea5606fccb166e61565e12a14",
        ),
        (
            "provenance-npm-test-ossf",
            "@laurentsimon/provenance-npm-test",
            "1.0.5",
            "https://github.com/laurentsimon/provenance-npm-test",
            "34490b44db557f009617bcb92b8780f972c189ab",
        ),
    ] {
        let result = check_slsa_verifier(case, name, version);
        assert_verified(&result.provenance);
        assert_verified(&result.publish);
        let identity = result.identity.unwrap_or_else(|| panic!("{case}: no identity"));
        assert_eq!(identity.source_repository_uri, repository, "{case}");
        assert_eq!(identity.source_commit.as_deref(), Some(commit), "{case}");
    }
    let result = check_slsa_verifier("supreme-googles-cli-v02-tag", "@trishankatdatadog/supreme-goggles", "1.0.5");
    assert_verified(&result.provenance);
    assert_verified(&result.publish);
}

#[test]
fn broken_provenance_or_publish_signatures_are_rejected_as_invalid_signatures() {
    for (case, name, version) in [
        ("provenance-npm-test-cli-v1-prega", "sigstore", "2.3.1"),
        ("gundam-visor-cli-v1-tag", "gundam-visor", "1.0.1"),
        ("provenance-npm-test-cli-v02-prega", "@laurentsimon/provenance-npm-test", "1.0.3"),
        ("provenance-npm-test-ossf", "@laurentsimon/provenance-npm-test", "1.0.5"),
        ("supreme-googles-cli-v02-tag", "@trishankatdatadog/supreme-goggles", "1.0.5"),
    ] {
        let broken_provenance = check_slsa_verifier(&format!("{case}-invalidsigprov"), name, version);
        assert!(
            matches!(rejection(&broken_provenance.provenance), AttestationRejection::SignatureInvalid(_)),
            "{case}: {:?}",
            broken_provenance.provenance
        );
        assert_eq!(broken_provenance.identity, None, "{case}");
        assert_verified(&broken_provenance.publish);

        let broken_publish = check_slsa_verifier(&format!("{case}-invalidsigpub"), name, version);
        assert!(
            matches!(rejection(&broken_publish.publish), AttestationRejection::SignatureInvalid(_)),
            "{case}: {:?}",
            broken_publish.publish
        );
        assert_verified(&broken_publish.provenance);
        let rules: Vec<String> = broken_publish.findings().into_iter().map(|f| f.rule).collect();
        assert!(rules.contains(&"provenance-invalid".to_owned()), "{case}: {rules:?}");
    }
}

fn check_pacote(case: &str) -> ProvenanceResult {
    let digest = subject_sha512(&read("pacote-sigstore-0.4.0/valid-attestations.json"));
    let response = read(&format!("pacote-sigstore-0.4.0/{case}-attestations.json"));
    check(&response, "sigstore", "0.4.0", &digest)
}

#[test]
fn pacote_valid_sigstore_0_4_0_verifies_from_deprecated_and_v0_2_claims() {
    let result = check_pacote("valid");
    assert_verified(&result.provenance);
    assert_verified(&result.publish);
    let identity = result.identity.expect("identity");
    assert_eq!(identity.source_repository_uri, "https://github.com/sigstore/sigstore-js");
    assert_eq!(identity.source_ref.as_deref(), Some("refs/tags/v0.4.0"));
    assert_eq!(identity.workflow_path.as_deref(), Some(".github/workflows/publish.yml"));
}

#[test]
fn pacote_broken_variants_are_rejected_with_their_specific_reason() {
    type Expectation = fn(&ProvenanceResult) -> bool;
    let expectations: [(&str, Expectation); 7] = [
        (
            "invalid",
            |result| matches!(rejection(&result.publish), AttestationRejection::MalformedBundle(text) if text.contains("base64")),
        ),
        ("malformed-subject", |result| {
            *rejection(&result.publish) == AttestationRejection::SubjectDigestMissing("pkg:npm/sigstore@0.4.0".into())
        }),
        ("mismatched-keyid", |result| {
            *rejection(&result.provenance)
                == AttestationRejection::KeyIdMismatch {
                    expected: String::new(),
                    found: "JXkT/aBM9baLZ7dpjJLQhJrj3Ru5s/OSXoZzZsPUyhg".into(),
                }
        }),
        (
            "mismatched-subject-digest",
            |result| matches!(rejection(&result.publish), AttestationRejection::SubjectDigestMismatch { found, .. } if found.starts_with("123c0c5f")),
        ),
        ("mismatched-subject-name", |result| {
            *rejection(&result.publish)
                == AttestationRejection::SubjectNameMismatch {
                    expected: "pkg:npm/sigstore@0.4.0".into(),
                    found: vec!["pkg:npm/sigstore@1.4.0".into()],
                }
        }),
        ("no-keyid", |result| *rejection(&result.publish) == AttestationRejection::MissingKeyId),
        ("unsupported", |result| {
            *rejection(&result.publish) == AttestationRejection::UnsupportedPayloadType("tlog-entry-mismatch".into())
        }),
    ];
    for (case, expected) in expectations {
        let result = check_pacote(case);
        assert!(expected(&result), "{case}: {result:#?}");
        assert!(!result.findings().iter().all(|f| f.severity == Severity::Info), "{case}");
    }
}

fn check_bundle(case: &str) -> ProvenanceResult {
    let digest = subject_sha512(&read("slsa-verifier-bundles/npm-attestations.intoto.sigstore"));
    let response = read(&format!("slsa-verifier-bundles/{case}.intoto.sigstore"));
    check(&response, "@laurentsimon/provenance-npm-test", "1.0.0", &digest)
}

#[test]
fn slsa_verifier_bundle_negative_cases_are_rejected_with_their_specific_reason() {
    let valid = check_bundle("npm-attestations");
    assert_verified(&valid.provenance);
    assert_verified(&valid.publish);

    let result = check_bundle("npm-att-mismatch-prov-payloadtype");
    assert_eq!(
        *rejection(&result.provenance),
        AttestationRejection::UnsupportedPayloadType("application/vnd.in-toto+jsonA".into())
    );
    let result = check_bundle("npm-att-mismatch-pub-payloadtype");
    assert_eq!(
        *rejection(&result.provenance),
        AttestationRejection::UnsupportedPayloadType("application/vnd.in-toto+jsonA".into())
    );
    let result = check_bundle("npm-att-mismatch-prov-predicatetype");
    assert_eq!(result.provenance, AttestationStatus::Absent);
    assert_eq!(
        result.other_rejections,
        [AttestationRejection::UnsupportedPredicateType("https://slsa.dev/provenanc/v0.2".into())]
    );
    let result = check_bundle("npm-att-mismatch-pub-predicatetype");
    assert_eq!(result.publish, AttestationStatus::Absent);
    assert_eq!(
        result.other_rejections,
        [AttestationRejection::UnsupportedPredicateType(
            "https://github.com/npm/attestation/tree/main/specs/publis/v0.1".into()
        )]
    );
    let result = check_bundle("npm-att-prov-invalid-signature");
    assert!(matches!(rejection(&result.provenance), AttestationRejection::SignatureInvalid(_)));
    let result = check_bundle("npm-att-publish-invalid-signature");
    assert!(matches!(rejection(&result.publish), AttestationRejection::SubjectDigestMissing(_)));
    let result = check_bundle("npm-att-publish-nodigest");
    assert!(matches!(rejection(&result.publish), AttestationRejection::SubjectDigestMissing(_)));
    let result = check_bundle("npm-att-publish-nosubjects");
    assert_eq!(*rejection(&result.publish), AttestationRejection::NoSubjects);
    let result = check_bundle("npm-stmt-mismatch-prov-type");
    assert_eq!(
        *rejection(&result.provenance),
        AttestationRejection::UnsupportedStatementType("https://in-toto.io/StatementA/v0.1".into())
    );
    let result = check_bundle("npm-stmt-mismatch-pub-type");
    assert_eq!(
        *rejection(&result.publish),
        AttestationRejection::UnsupportedStatementType("https://in-toto.io/StatementA/v0.1".into())
    );
    let result = check_bundle("npm-stmt-mismatch-prov-predicatetype");
    assert!(matches!(
        rejection(&result.provenance),
        AttestationRejection::PredicateTypeMismatch { statement, .. } if statement == "https://slsa.dev/provenanc/v0.2"
    ));
    let result = check_bundle("npm-stmt-mismatch-pub-predicatetype");
    assert!(matches!(
        rejection(&result.publish),
        AttestationRejection::PredicateTypeMismatch { statement, .. }
            if statement == "https://github.com/npm/attestation/tree/main/specs/publis/v0.1"
    ));
}

#[test]
fn a_valid_response_for_other_tarball_bytes_is_a_subject_digest_mismatch() {
    let response = read("slsa-verifier/provenance-npm-test-cli-v1-prega.tgz.json");
    let result = check(&response, "sigstore", "2.3.1", &sha512_of(b"another tarball"));
    for status in [&result.provenance, &result.publish] {
        assert!(matches!(rejection(status), AttestationRejection::SubjectDigestMismatch { .. }));
    }
    assert_eq!(result.identity, None);
    assert!(result.findings().iter().any(|f| f.rule == "provenance-subject-mismatch"));
}

#[test]
fn a_valid_response_for_another_version_is_a_subject_name_mismatch() {
    let tarball = read("slsa-verifier/provenance-npm-test-cli-v1-prega.tgz");
    let response = read("slsa-verifier/provenance-npm-test-cli-v1-prega.tgz.json");
    let result = check(&response, "sigstore", "2.3.2", &sha512_of(&tarball));
    assert!(matches!(
        rejection(&result.provenance),
        AttestationRejection::SubjectNameMismatch { expected, .. } if expected == "pkg:npm/sigstore@2.3.2"
    ));
}

#[test]
fn the_publish_attestation_needs_a_registry_key_valid_when_it_was_logged() {
    let tarball = read("slsa-verifier/provenance-npm-test-cli-v1-prega.tgz");
    let response = read("slsa-verifier/provenance-npm-test-cli-v1-prega.tgz.json");
    let root = SigstoreTrustRoot::public_good();

    let no_keys =
        verify_attestations(&response, "sigstore", "2.3.1", &sha512_of(&tarball), &RegistryKeys::default(), &root);
    assert_eq!(
        *rejection(&no_keys.publish),
        AttestationRejection::UnknownRegistryKey("SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA".into())
    );
    assert_verified(&no_keys.provenance);

    let mut early_expiry = RegistryKeys::npm_public_registry();
    early_expiry.keys[0].expires = Some("2024-01-01T00:00:00Z".parse().unwrap());
    let expired = verify_attestations(&response, "sigstore", "2.3.1", &sha512_of(&tarball), &early_expiry, &root);
    assert!(matches!(
        rejection(&expired.publish),
        AttestationRejection::RegistryKeyExpired { integrated_time, .. } if integrated_time.starts_with("2024-05-16")
    ));
}

#[test]
fn a_response_that_is_not_json_is_a_finding_not_an_error() {
    let result = check(b"<html>", "sigstore", "2.3.1", &[0; 64]);
    assert!(matches!(result.other_rejections.as_slice(), [AttestationRejection::MalformedResponse(_)]));
    assert_eq!(result.findings()[0].rule, "provenance-invalid");
    assert_eq!(result.findings()[0].severity, Severity::High);
}

#[test]
fn a_trust_root_without_the_fulcio_ca_rejects_the_certificate() {
    let mut root: serde_json::Value = serde_json::from_str(include_str!("../sigstore_trusted_root.json")).unwrap();
    root["certificateAuthorities"] = serde_json::json!([]);
    let root = SigstoreTrustRoot::from_json(root.to_string().as_bytes()).unwrap();
    let tarball = read("slsa-verifier/provenance-npm-test-cli-v1-prega.tgz");
    let response = read("slsa-verifier/provenance-npm-test-cli-v1-prega.tgz.json");
    let result = verify_attestations(
        &response,
        "sigstore",
        "2.3.1",
        &sha512_of(&tarball),
        &RegistryKeys::npm_public_registry(),
        &root,
    );
    assert!(
        matches!(rejection(&result.provenance), AttestationRejection::CertificateInvalid(_)),
        "{:?}",
        result.provenance
    );
    assert!(SigstoreTrustRoot::from_json(b"{}").is_err());
}

#[test]
fn workflow_paths_come_from_the_signer_only_inside_the_source_repository() {
    assert_eq!(
        workflow_from_signer(
            "https://github.com/o/r/.github/workflows/release.yml@refs/tags/v1",
            "https://github.com/o/r"
        )
        .as_deref(),
        Some(".github/workflows/release.yml")
    );
    assert_eq!(
        workflow_from_signer("https://github.com/other/gen/.github/workflows/x.yml@v1", "https://github.com/o/r"),
        None
    );
}

/// Edits the playwright response's attestation of `predicate_type` with `edit` and
/// verifies the result.
fn check_tampered_playwright(predicate_type: &str, edit: impl Fn(&mut serde_json::Value)) -> AttestationStatus {
    let tarball = read("playwright-cli-0.1.1/playwright-cli-0.1.1.tgz");
    let mut response: serde_json::Value =
        serde_json::from_slice(&read("playwright-cli-0.1.1/playwright-cli-0.1.1-attestations.json")).unwrap();
    for attestation in response["attestations"].as_array_mut().unwrap() {
        if attestation["predicateType"] == predicate_type {
            edit(&mut attestation["bundle"]);
        }
    }
    let result = check(response.to_string().as_bytes(), "@playwright/cli", "0.1.1", &sha512_of(&tarball));
    if predicate_type.contains("slsa") { result.provenance } else { result.publish }
}

#[test]
fn a_tampered_rekor_entry_is_rejected_by_the_transparency_log_check() {
    let provenance = "https://slsa.dev/provenance/v1";
    // A later integrated time is no longer covered by the signed entry timestamp.
    let status = check_tampered_playwright(provenance, |bundle| {
        let entry = &mut bundle["verificationMaterial"]["tlogEntries"][0];
        entry["integratedTime"] = serde_json::json!("1771111999");
    });
    assert!(matches!(rejection(&status), AttestationRejection::TransparencyLogInvalid(_)), "{status:?}");
    // An inclusion proof for another tree position does not lead to the signed root.
    let status = check_tampered_playwright(provenance, |bundle| {
        let proof = &mut bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"];
        let index: u64 = proof["logIndex"].as_str().unwrap().parse().unwrap();
        proof["logIndex"] = serde_json::json!((index - 1).to_string());
    });
    assert!(matches!(rejection(&status), AttestationRejection::TransparencyLogInvalid(_)), "{status:?}");
    // Without any log entry there is no proof the signature was ever published.
    let status =
        check_tampered_playwright("https://github.com/npm/attestation/tree/main/specs/publish/v0.1", |bundle| {
            bundle["verificationMaterial"]["tlogEntries"] = serde_json::json!([]);
        });
    assert!(matches!(rejection(&status), AttestationRejection::MalformedBundle(_)), "{status:?}");
}

#[test]
fn a_publish_attestation_from_a_certificate_or_a_provenance_from_a_key_is_refused() {
    let tarball = read("playwright-cli-0.1.1/playwright-cli-0.1.1.tgz");
    let mut response: serde_json::Value =
        serde_json::from_slice(&read("playwright-cli-0.1.1/playwright-cli-0.1.1-attestations.json")).unwrap();
    // Swap the two predicate types: each bundle now claims to be the other kind.
    let attestations = response["attestations"].as_array_mut().unwrap();
    let first = attestations[0]["predicateType"].clone();
    attestations[0]["predicateType"] = attestations[1]["predicateType"].clone();
    attestations[1]["predicateType"] = first;
    let result = check(response.to_string().as_bytes(), "@playwright/cli", "0.1.1", &sha512_of(&tarball));
    assert!(matches!(rejection(&result.provenance), AttestationRejection::PredicateTypeMismatch { .. }));
    assert!(matches!(rejection(&result.publish), AttestationRejection::PredicateTypeMismatch { .. }));
}

#[test]
fn the_trust_root_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<SigstoreTrustRoot>();
    shareable::<RegistryKeys>();
}

#[test]
fn the_result_serialises_for_the_quarantine_engine_and_the_ui() {
    let result = check_slsa_verifier("provenance-npm-test-cli-v1-prega-invalidsigpub", "sigstore", "2.3.1");
    insta::assert_json_snapshot!(result);
}

#[test]
fn provenance_the_packument_declares_but_nobody_delivered_is_a_finding() {
    let manifest = serde_json::json!({"dist": {"attestations": {
        "url": "https://registry.npmjs.org/-/npm/v1/attestations/sigstore@2.3.1",
        "provenance": {"predicateType": "https://slsa.dev/provenance/v1"}
    }}});
    assert_eq!(declared_provenance(&manifest), Some("https://slsa.dev/provenance/v1"));
    let finding = undelivered_provenance(&manifest, &ProvenanceResult::absent("sigstore", "2.3.1")).unwrap();
    assert_eq!((finding.rule.as_str(), finding.severity), ("provenance-missing", Severity::High));
    let delivered = check_slsa_verifier("provenance-npm-test-cli-v1-prega", "sigstore", "2.3.1");
    assert_eq!(undelivered_provenance(&manifest, &delivered), None);
    assert_eq!(undelivered_provenance(&serde_json::json!({}), &ProvenanceResult::absent("x", "1.0.0")), None);
}
