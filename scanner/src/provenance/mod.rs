//! Checks that tie a tarball to where it came from: npm registry signatures, Sigstore
//! provenance and publish attestations, the identity policy over the provenance, and
//! the file-by-file match against the source repository.
//!
//! Like the rest of the scanner this is pure: the server fetches keys, attestations and
//! source archives and hands over bytes; every function here turns bytes into a result
//! that serialises for the quarantine engine and the admin UI, and into findings.

mod archive;
mod attestations;
mod identity;
mod registry_signatures;
mod source_match;

pub use archive::{ArchiveError, ArchiveLimits, FileTree, TreeFile};
pub use attestations::{
    AttestationRejection, AttestationStatus, ProvenanceIdentity, ProvenanceResult, SigstoreTrustRoot, TrustRootError,
    declared_provenance, undelivered_provenance, verify_attestations,
};
pub use identity::{
    IdentityPolicyResult, PinViolation, PreviousProvenance, ProvenancePins, ProvenanceRegression, RepositoryId,
    RepositoryMatch, check_identity_policy, normalize_repository_url, package_json_repository,
};
pub use registry_signatures::{
    DistSignature, KeysError, RegistryKey, RegistryKeys, RegistrySignatureResult, SignatureCheck, SignatureOutcome,
    SignedVersion, SignedVersionError, npm_ssh_key_id, verify_registry_signatures,
};
pub use source_match::{
    CommitSource, DifferingFile, NameMismatch, SourceMatchOutcome, SourceMatchResult, SourceResolution, SourceRevision,
    UnverifiableReason, compare_with_source, find_package_directory, resolve_source,
};

/// The package URL npm attestations name as their subject: `pkg:npm/{name}@{version}`,
/// with a scope's `@` percent-encoded (`pkg:npm/%40scope/name@1.0.0`).
pub fn npm_package_url(name: &str, version: &str) -> String {
    let name = match name.strip_prefix('@') {
        Some(scoped) => format!("%40{scoped}"),
        None => name.to_owned(),
    };
    format!("pkg:npm/{name}@{version}")
}

/// Decodes an SRI `sha512-…` integrity string into the 64 digest bytes, if it is one.
pub fn sha512_from_integrity(integrity: &str) -> Option<[u8; 64]> {
    use base64::Engine as _;
    // An SRI value may list several hashes separated by whitespace; take the sha512 one.
    let encoded = integrity.split_whitespace().find_map(|part| part.strip_prefix("sha512-"))?;
    let encoded = encoded.split('?').next().unwrap_or(encoded);
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    bytes.try_into().ok()
}

/// The SHA-512 of some bytes, the digest npm attestations bind a tarball with.
pub fn sha512_of(bytes: &[u8]) -> [u8; 64] {
    use sha2::Digest as _;
    sha2::Sha512::digest(bytes).into()
}

#[cfg(test)]
mod tests;
