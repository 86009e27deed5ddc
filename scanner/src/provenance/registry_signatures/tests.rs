//! Tests of registry signatures on the real `@isaacs/namespace-test` packument and the
//! npm registry's real keys.

use super::*;

const PACKUMENT: &[u8] = include_bytes!("../../../test_data/provenance/registry/@isaacs/namespace-test.json");
const KEYS: &[u8] = include_bytes!("../../../test_data/provenance/npm-keys/keys.json");

fn signed_version(packument: &[u8]) -> SignedVersion {
    SignedVersion::from_packument(packument, "1.0.0").expect("the fixture has 1.0.0")
}

fn outcomes(result: &RegistrySignatureResult) -> Vec<&SignatureOutcome> {
    result.checks.iter().map(|check| &check.outcome).collect()
}

#[test]
fn the_built_in_keys_are_npms_and_their_key_ids_are_ssh_fingerprints() {
    let keys = RegistryKeys::npm_public_registry();
    assert_eq!(keys, RegistryKeys::from_json(KEYS).unwrap());
    let ids: Vec<&str> = keys.keys.iter().map(|key| key.keyid.as_str()).collect();
    assert_eq!(
        ids,
        ["SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA", "SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U"]
    );
    assert_eq!(keys.keys[0].expires, Some("2025-01-29T00:00:00Z".parse().unwrap()));
    assert_eq!(keys.keys[1].expires, None);
}

#[test]
fn the_real_packument_signature_verifies_with_the_real_key() {
    let version = signed_version(PACKUMENT);
    assert_eq!(
        version.signed_message(),
        "@isaacs/namespace-test@1.0.0:sha512-5ZYe1LgwHIaag0p9loMwsf5N/wJ4XAuHVNhSO+qulQOXWnyJVuco6IZjo+5u4ZLF/GimdHJcX+QK892ONfOCqQ=="
    );
    let result = verify_registry_signatures(&version, &RegistryKeys::npm_public_registry(), true);
    assert_eq!(outcomes(&result), [&SignatureOutcome::Verified]);
    assert!(result.is_verified());
    assert!(!result.missing);
    assert_eq!(result.findings(), []);
}

#[test]
fn one_changed_byte_in_the_integrity_fails_the_signature() {
    let mut version = signed_version(PACKUMENT);
    // Change one character of the base64 digest: what a mirror swapping tarballs does.
    version.integrity = version.integrity.replacen("5ZYe", "5ZYf", 1);
    let result = verify_registry_signatures(&version, &RegistryKeys::npm_public_registry(), true);
    assert_eq!(outcomes(&result), [&SignatureOutcome::Invalid]);
    let findings = result.findings();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].rule, "registry-signature-invalid");
    assert_eq!(findings[0].severity, Severity::High);
    assert!(findings[0].message.contains("5ZYf"), "{}", findings[0].message);
}

#[test]
fn one_changed_byte_in_the_packument_name_or_signature_fails() {
    // One byte of the packument file itself, in `dist.integrity`.
    let text = std::str::from_utf8(PACKUMENT).unwrap();
    assert_eq!(text.matches("5ZYe1Lgw").count(), 1);
    let tampered = text.replacen("5ZYe1Lgw", "5ZYe1Lgx", 1);
    let result =
        verify_registry_signatures(&signed_version(tampered.as_bytes()), &RegistryKeys::npm_public_registry(), true);
    assert_eq!(outcomes(&result), [&SignatureOutcome::Invalid]);

    let mut version = signed_version(PACKUMENT);
    version.name = "@isaacs/namespace-tesT".to_owned();
    let result = verify_registry_signatures(&version, &RegistryKeys::npm_public_registry(), true);
    assert_eq!(outcomes(&result), [&SignatureOutcome::Invalid]);

    let mut version = signed_version(PACKUMENT);
    let sig = &mut version.signatures[0].sig;
    // Flip a byte inside the DER `s` integer: still DER, no longer a valid signature.
    let mut der = base64::engine::general_purpose::STANDARD.decode(&*sig).unwrap();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    *sig = base64::engine::general_purpose::STANDARD.encode(der);
    let result = verify_registry_signatures(&version, &RegistryKeys::npm_public_registry(), true);
    assert_eq!(outcomes(&result), [&SignatureOutcome::Invalid]);
}

#[test]
fn an_unknown_key_a_malformed_signature_and_a_missing_signature_are_findings() {
    let mut version = signed_version(PACKUMENT);
    version.signatures[0].keyid = "SHA256:unknown".to_owned();
    let result = verify_registry_signatures(&version, &RegistryKeys::npm_public_registry(), true);
    assert_eq!(outcomes(&result), [&SignatureOutcome::UnknownKey]);
    assert_eq!(result.findings()[0].rule, "registry-signature-unknown-key");

    let mut version = signed_version(PACKUMENT);
    version.signatures[0].sig = "not base64!".to_owned();
    let result = verify_registry_signatures(&version, &RegistryKeys::npm_public_registry(), true);
    assert!(matches!(outcomes(&result)[..], [SignatureOutcome::Malformed { .. }]));
    assert_eq!(result.findings()[0].rule, "registry-signature-invalid");

    let mut version = signed_version(PACKUMENT);
    version.signatures.clear();
    let result = verify_registry_signatures(&version, &RegistryKeys::npm_public_registry(), true);
    assert!(result.missing);
    assert!(!result.is_verified());
    assert_eq!(result.findings()[0].rule, "registry-signature-missing");
    // A registry that does not sign (no keys) is not expected to.
    let result = verify_registry_signatures(&version, &RegistryKeys::default(), false);
    assert_eq!(result.findings(), []);
}

#[test]
fn a_signature_by_a_key_that_expired_before_publication_fails() {
    let mut version = signed_version(PACKUMENT);
    version.published = Some("2025-02-01T00:00:00Z".parse().unwrap());
    let result = verify_registry_signatures(&version, &RegistryKeys::npm_public_registry(), true);
    assert!(matches!(outcomes(&result)[..], [SignatureOutcome::KeyExpired { .. }]));
    assert!(result.findings()[0].message.contains("expired"));

    version.published = None;
    let result = verify_registry_signatures(&version, &RegistryKeys::npm_public_registry(), true);
    assert!(matches!(outcomes(&result)[..], [SignatureOutcome::PublishTimeUnknown { .. }]));
}

#[test]
fn every_signature_must_verify_one_bad_one_is_not_outvoted() {
    let mut version = signed_version(PACKUMENT);
    let mut bad = version.signatures[0].clone();
    bad.keyid = "SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U".to_owned();
    version.signatures.push(bad);
    let result = verify_registry_signatures(&version, &RegistryKeys::npm_public_registry(), true);
    assert_eq!(outcomes(&result), [&SignatureOutcome::Verified, &SignatureOutcome::Invalid]);
    assert!(!result.is_verified());
}

#[test]
fn keys_whose_id_is_not_their_fingerprint_are_refused() {
    let text = std::str::from_utf8(KEYS).unwrap().replace(
        "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA",
        "SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U",
    );
    assert_eq!(
        RegistryKeys::from_json(text.as_bytes()).unwrap_err(),
        KeysError::KeyIdMismatch {
            declared: "SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U".to_owned(),
            computed: "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA".to_owned(),
        }
    );
    let text = std::str::from_utf8(KEYS).unwrap().replacen("ecdsa-sha2-nistp256", "ssh-ed25519", 1);
    assert!(matches!(RegistryKeys::from_json(text.as_bytes()), Err(KeysError::UnsupportedKeyType { .. })));
    insta::assert_snapshot!(
        RegistryKeys::from_json(b"{\"keys\": 1}").unwrap_err(),
        @"registry keys are not valid `/-/npm/v1/keys` JSON: invalid type: integer `1`, expected a sequence at line 1 column 10"
    );
}

#[test]
fn packument_problems_are_errors_quoting_the_version() {
    insta::assert_snapshot!(
        SignedVersion::from_packument(PACKUMENT, "9.9.9").unwrap_err(),
        @"packument has no version `9.9.9`"
    );
    let manifest = serde_json::json!({"name": "x", "version": "1.0.0", "dist": {}});
    insta::assert_snapshot!(
        SignedVersion::from_manifest(&manifest, None).unwrap_err(),
        @"version `1.0.0` has no string `dist.integrity`"
    );
}
