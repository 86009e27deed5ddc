//! Arbitrary bytes through every provenance parser: the attestations response (Sigstore
//! bundles, DSSE envelopes, in-toto statements), the registry keys and packument
//! signatures, the source archive reader, and the repository URL and identity policy.
//! Each must return a result (a rejection at worst), never panic or grow unbounded.
#![no_main]

use airlock_scanner::provenance::{
    ArchiveLimits, FileTree, PreviousProvenance, ProvenancePins, RegistryKeys, SignedVersion, SigstoreTrustRoot,
    check_identity_policy, normalize_repository_url, package_json_repository, resolve_source, sha512_of,
    verify_attestations, verify_registry_signatures,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the parser, so each keeps its own corpus region.
    let Some((&selector, input)) = data.split_first() else { return };
    match selector % 4 {
        0 => {
            let keys = RegistryKeys::npm_public_registry();
            let trust_root = SigstoreTrustRoot::public_good();
            let digest = sha512_of(b"fuzz");
            let result = verify_attestations(input, "fuzz", "1.0.0", &digest, &keys, &trust_root);
            let _ = result.findings();
        }
        1 => {
            let _ = RegistryKeys::from_json(input);
            if let Ok(version) = SignedVersion::from_packument(input, "1.0.0") {
                let _ = verify_registry_signatures(&version, &RegistryKeys::npm_public_registry(), true);
            }
        }
        2 => {
            let limits = ArchiveLimits { max_total_bytes: 16 * 1024 * 1024, max_file_bytes: 4 * 1024 * 1024, max_entries: 10_000 };
            let _ = FileTree::from_tar_gz(input, limits);
        }
        _ => {
            let _ = normalize_repository_url(&String::from_utf8_lossy(input));
            if let Ok(package_json) = serde_json::from_slice::<serde_json::Value>(input) {
                let _ = package_json_repository(&package_json);
                let _ = resolve_source(&package_json, None);
                let previous: Option<PreviousProvenance> = None;
                let _ = check_identity_policy(None, &package_json, previous.as_ref(), &ProvenancePins::default());
            }
        }
    }
});
