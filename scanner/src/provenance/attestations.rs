//! npm attestations (`GET /-/npm/v1/attestations/{name}@{version}`): the SLSA
//! provenance attestation, signed keylessly by a Fulcio certificate issued to a CI
//! workflow, and the publish attestation, signed by the registry's key.
//!
//! The cryptography (DSSE over the PAE, the Fulcio chain, Rekor SET or inclusion proof,
//! certificate validity at the integrated time) is `sigstore-verify`'s; this file checks
//! what is specific to npm first (statement and predicate types, the subject's package
//! URL and sha512, key ids) so a rejection names the most specific reason, and then
//! extracts the identity: source repository, commit, ref, workflow and builder.

use serde::{Deserialize, Serialize};
use sigstore_verify::types::bundle::VerificationMaterialContent;
use sigstore_verify::types::{Artifact, ArtifactDigest, Bundle, DerPublicKey, HashAlgorithm, SignatureContent};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, Verifier};

use super::identity::normalize_repository_url;
use super::registry_signatures::RegistryKeys;
use crate::{Finding, Severity};

/// The Sigstore public-good trust root (Fulcio CAs, Rekor and CT log keys, timestamp
/// authorities), a copy of sigstore/root-signing's `trusted_root.json`.
const PUBLIC_GOOD_TRUSTED_ROOT: &str = include_str!("sigstore_trusted_root.json");

const PROVENANCE_PREDICATE_V02: &str = "https://slsa.dev/provenance/v0.2";
const PROVENANCE_PREDICATE_V1: &str = "https://slsa.dev/provenance/v1";
const PUBLISH_PREDICATE_V01: &str = "https://github.com/npm/attestation/tree/main/specs/publish/v0.1";
const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
const IN_TOTO_STATEMENT_TYPES: [&str; 2] = ["https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1"];

/// A trust root could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Sigstore trust root is unusable: {0}")]
pub struct TrustRootError(String);

/// The Sigstore trust root attestations are verified against, prepared once.
pub struct SigstoreTrustRoot {
    verifier: Verifier,
}

impl std::fmt::Debug for SigstoreTrustRoot {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("SigstoreTrustRoot")
    }
}

impl SigstoreTrustRoot {
    /// Loads a trust root in the `trusted_root.json` format (from configuration).
    pub fn from_json(json: &[u8]) -> Result<SigstoreTrustRoot, TrustRootError> {
        let text = std::str::from_utf8(json).map_err(|error| TrustRootError(error.to_string()))?;
        let root = sigstore_verify::trust_root::TrustedRoot::from_json(text)
            .map_err(|error| TrustRootError(error.to_string()))?;
        let verifier = Verifier::new(&root).map_err(|error| TrustRootError(error.to_string()))?;
        Ok(SigstoreTrustRoot { verifier })
    }

    /// The built-in Sigstore public-good trust root, the default.
    pub fn public_good() -> SigstoreTrustRoot {
        SigstoreTrustRoot::from_json(PUBLIC_GOOD_TRUSTED_ROOT.as_bytes())
            .expect("the built-in trust root loads; a unit test proves it")
    }
}

/// Why an attestation was rejected. Each variant quotes what was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum AttestationRejection {
    /// The attestations response is not the JSON npm serves.
    #[error("the attestations response is malformed: {0}")]
    MalformedResponse(String),
    /// The bundle is not a Sigstore bundle this verifier reads.
    #[error("the Sigstore bundle is malformed: {0}")]
    MalformedBundle(String),
    /// An attestation of a type npm does not publish.
    #[error("unsupported attestation predicate type `{0}`")]
    UnsupportedPredicateType(String),
    /// A second attestation of the same type.
    #[error("more than one attestation of type `{0}`")]
    Duplicate(String),
    /// The DSSE payload is not an in-toto statement.
    #[error("unsupported DSSE payload type `{0}`")]
    UnsupportedPayloadType(String),
    /// The payload is not a JSON in-toto statement.
    #[error("the in-toto statement is malformed: {0}")]
    MalformedStatement(String),
    /// The statement's `_type` is not an in-toto statement type.
    #[error("unsupported in-toto statement type `{0}`")]
    UnsupportedStatementType(String),
    /// The statement's predicate type differs from the one the registry listed.
    #[error("the statement's predicate type `{statement}` differs from the listed `{listed}`")]
    PredicateTypeMismatch {
        /// The `predicateType` of the attestation entry.
        listed: String,
        /// The `predicateType` inside the signed statement.
        statement: String,
    },
    /// The statement has no subjects.
    #[error("the in-toto statement has no subjects")]
    NoSubjects,
    /// No subject names this package version.
    #[error("the statement's subjects {found:?} do not include `{expected}`")]
    SubjectNameMismatch {
        /// The package URL of the version being checked.
        expected: String,
        /// The subject names found.
        found: Vec<String>,
    },
    /// The subject carries no sha512 digest.
    #[error("subject `{0}` has no sha512 digest")]
    SubjectDigestMissing(String),
    /// The subject's sha512 is not the tarball's.
    #[error("subject digest sha512 {found} is not the tarball's sha512 {expected}")]
    SubjectDigestMismatch {
        /// The tarball's sha512, hex.
        expected: String,
        /// The subject's sha512, as found.
        found: String,
    },
    /// The verification material is not of the kind this attestation needs.
    #[error("expected {expected} as verification material")]
    WrongVerificationMaterial {
        /// What the attestation type requires.
        expected: &'static str,
    },
    /// The publish attestation's signature names no key.
    #[error("the publish attestation's signature has no key id")]
    MissingKeyId,
    /// The envelope's key id disagrees with the bundle's key hint, or a keyless
    /// provenance signature names a key.
    #[error("the signature's key id `{found}` does not match `{expected}`")]
    KeyIdMismatch {
        /// The key the bundle says signed it (empty for a keyless signature).
        expected: String,
        /// The key id in the DSSE signature.
        found: String,
    },
    /// The publish attestation is signed by a key the registry does not publish.
    #[error("the publish attestation is signed by unknown registry key `{0}`")]
    UnknownRegistryKey(String),
    /// The registry key had expired when the attestation was logged.
    #[error("registry key `{keyid}` expired at {expires}, before the attestation was logged at {integrated_time}")]
    RegistryKeyExpired {
        /// The key.
        keyid: String,
        /// Its expiry.
        expires: String,
        /// When Rekor logged the attestation.
        integrated_time: String,
    },
    /// The DSSE signature does not verify.
    #[error("the signature is invalid: {0}")]
    SignatureInvalid(String),
    /// The certificate does not chain to the trust root or was not valid when used.
    #[error("the signing certificate is invalid: {0}")]
    CertificateInvalid(String),
    /// The Rekor entry (SET, inclusion proof, or its consistency with the bundle) fails.
    #[error("the transparency log entry is invalid: {0}")]
    TransparencyLogInvalid(String),
    /// A timestamp does not verify.
    #[error("a timestamp is invalid: {0}")]
    TimestampInvalid(String),
    /// The certificate names no source repository and the predicate gives none.
    #[error("the provenance names no source repository")]
    NoSourceRepository,
    /// The signed predicate contradicts the certificate's claims.
    #[error("the provenance predicate says {field} `{predicate}` but the certificate says `{certificate}`")]
    PredicateContradictsCertificate {
        /// Which claim.
        field: &'static str,
        /// The value in the SLSA predicate.
        predicate: String,
        /// The value in the Fulcio certificate.
        certificate: String,
    },
    /// Any other verification failure.
    #[error("verification failed: {0}")]
    Verification(String),
}

impl AttestationRejection {
    fn rule(&self) -> &'static str {
        match self {
            AttestationRejection::SubjectNameMismatch { .. }
            | AttestationRejection::SubjectDigestMissing(_)
            | AttestationRejection::SubjectDigestMismatch { .. }
            | AttestationRejection::NoSubjects => "provenance-subject-mismatch",
            _ => "provenance-invalid",
        }
    }
}

/// Where a package version was built, as its verified provenance says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceIdentity {
    /// The source repository, as the certificate states it (Fulcio OID .12), such as
    /// `https://github.com/sigstore/sigstore-js`.
    pub source_repository_uri: String,
    /// The commit the package was built from (OID .13, or the predicate's digest).
    pub source_commit: Option<String>,
    /// The git ref the build ran on, such as `refs/heads/main` (OID .14).
    pub source_ref: Option<String>,
    /// The workflow file, relative to the repository, such as
    /// `.github/workflows/release.yml` (from OID .9 or the predicate).
    pub workflow_path: Option<String>,
    /// The build signer URI, the certificate's identity (OID .9 / the SAN).
    pub build_signer_uri: Option<String>,
    /// The builder, such as `https://github.com/actions/runner/github-hosted`.
    pub builder_id: Option<String>,
    /// The OIDC issuer of the certificate, such as
    /// `https://token.actions.githubusercontent.com`.
    pub issuer: Option<String>,
    /// The CI run that built it, when the certificate says (OID .21).
    pub run_invocation_uri: Option<String>,
    /// `github-hosted` or `self-hosted`, when the certificate says (OID .11).
    pub runner_environment: Option<String>,
}

/// The state of one attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum AttestationStatus {
    /// The registry served no attestation of this kind.
    Absent,
    /// It verified completely.
    Verified {
        /// The predicate type.
        predicate_type: String,
        /// Who signed: the certificate identity, or the registry key id.
        signer: String,
        /// When Rekor logged it, RFC 3339, when authenticated.
        integrated_time: Option<String>,
    },
    /// It was rejected.
    Rejected {
        /// The predicate type as listed.
        predicate_type: String,
        /// Why.
        reason: AttestationRejection,
    },
}

/// The result of verifying a version's attestations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvenanceResult {
    /// The subject every attestation must name: `pkg:npm/{name}@{version}`.
    pub package_url: String,
    /// The SLSA provenance attestation.
    pub provenance: AttestationStatus,
    /// The registry's publish attestation.
    pub publish: AttestationStatus,
    /// Where the version was built; present only when the provenance verified.
    pub identity: Option<ProvenanceIdentity>,
    /// Problems with the response itself or attestations of unknown types.
    pub other_rejections: Vec<AttestationRejection>,
}

impl ProvenanceResult {
    /// The result for a version the registry has no attestations for.
    pub fn absent(name: &str, version: &str) -> ProvenanceResult {
        ProvenanceResult {
            package_url: super::npm_package_url(name, version),
            provenance: AttestationStatus::Absent,
            publish: AttestationStatus::Absent,
            identity: None,
            other_rejections: Vec::new(),
        }
    }

    /// True when the provenance attestation verified.
    pub fn has_verified_provenance(&self) -> bool {
        self.identity.is_some()
    }

    /// The findings: each rejection as `provenance-invalid` or
    /// `provenance-subject-mismatch` (high), and an informational `provenance-verified`
    /// naming the source for the reviewer.
    pub fn findings(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (what, status) in [("provenance", &self.provenance), ("publish", &self.publish)] {
            if let AttestationStatus::Rejected { reason, .. } = status {
                findings.push(Finding {
                    rule: reason.rule().to_owned(),
                    severity: Severity::High,
                    message: format!("The {what} attestation of `{}` was rejected: {reason}.", self.package_url),
                    location: None,
                    excerpt: None,
                });
            }
        }
        for reason in &self.other_rejections {
            findings.push(Finding {
                rule: reason.rule().to_owned(),
                severity: Severity::High,
                message: format!("An attestation of `{}` was rejected: {reason}.", self.package_url),
                location: None,
                excerpt: None,
            });
        }
        if let Some(identity) = &self.identity {
            findings.push(Finding {
                rule: "provenance-verified".to_owned(),
                severity: Severity::Info,
                message: format!(
                    "Built from {} at commit {} by {}.",
                    identity.source_repository_uri,
                    identity.source_commit.as_deref().unwrap_or("(unknown)"),
                    identity
                        .workflow_path
                        .as_deref()
                        .or(identity.build_signer_uri.as_deref())
                        .unwrap_or("(unknown workflow)"),
                ),
                location: None,
                excerpt: None,
            });
        }
        findings
    }
}

/// The provenance predicate type a version's manifest (`versions[v]` of a packument)
/// declares in `dist.attestations.provenance.predicateType`, if any.
pub fn declared_provenance(manifest: &serde_json::Value) -> Option<&str> {
    manifest.pointer("/dist/attestations/provenance/predicateType").and_then(|value| value.as_str())
}

/// A high `provenance-missing` finding when the packument declares provenance for the
/// version but the attestations delivered have none: something between the registry
/// and Airlock dropped it, or the packument lies.
pub fn undelivered_provenance(manifest: &serde_json::Value, result: &ProvenanceResult) -> Option<Finding> {
    let declared = declared_provenance(manifest)?;
    (result.provenance == AttestationStatus::Absent).then(|| Finding {
        rule: "provenance-missing".to_owned(),
        severity: Severity::High,
        message: format!(
            "The packument declares a `{declared}` attestation for `{}` but none was delivered.",
            result.package_url
        ),
        location: None,
        excerpt: None,
    })
}

#[derive(Deserialize)]
struct RawResponse {
    attestations: Vec<RawAttestation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAttestation {
    predicate_type: String,
    bundle: serde_json::Value,
}

/// Verifies an npm attestations response for `name@version` against the tarball's
/// sha512, the registry's keys and a Sigstore trust root.
///
/// Never fails: every problem is a rejection in the result. The clock is read only by
/// `sigstore-verify`, to refuse log entries from the future.
pub fn verify_attestations(
    response_json: &[u8],
    name: &str,
    version: &str,
    tarball_sha512: &[u8; 64],
    registry_keys: &RegistryKeys,
    trust_root: &SigstoreTrustRoot,
) -> ProvenanceResult {
    let mut result = ProvenanceResult::absent(name, version);
    let response: RawResponse = match serde_json::from_slice(response_json) {
        Ok(response) => response,
        Err(error) => {
            result.other_rejections.push(AttestationRejection::MalformedResponse(error.to_string()));
            return result;
        }
    };
    let package_url = result.package_url.clone();
    let context = Context { package_url: &package_url, tarball_sha512, registry_keys, verifier: &trust_root.verifier };
    for attestation in response.attestations {
        let predicate_type = attestation.predicate_type.clone();
        let is_provenance = predicate_type == PROVENANCE_PREDICATE_V02 || predicate_type == PROVENANCE_PREDICATE_V1;
        let slot = if is_provenance {
            &mut result.provenance
        } else if predicate_type == PUBLISH_PREDICATE_V01 {
            &mut result.publish
        } else {
            result.other_rejections.push(AttestationRejection::UnsupportedPredicateType(predicate_type));
            continue;
        };
        if *slot != AttestationStatus::Absent {
            result.other_rejections.push(AttestationRejection::Duplicate(predicate_type));
            continue;
        }
        let outcome = if is_provenance {
            context.verify_provenance(&attestation).map(|(status, identity)| {
                result.identity = Some(identity);
                status
            })
        } else {
            context.verify_publish(&attestation)
        };
        *slot = outcome.unwrap_or_else(|reason| AttestationStatus::Rejected { predicate_type, reason });
    }
    result
}

struct Context<'a> {
    package_url: &'a str,
    tarball_sha512: &'a [u8; 64],
    registry_keys: &'a RegistryKeys,
    verifier: &'a Verifier,
}

/// The parts of a bundle checked before any cryptography.
struct Parsed {
    bundle: Bundle,
    statement: serde_json::Value,
    envelope_keyid: String,
}

impl Context<'_> {
    fn verify_provenance(
        &self,
        attestation: &RawAttestation,
    ) -> Result<(AttestationStatus, ProvenanceIdentity), AttestationRejection> {
        let parsed = self.parse(attestation)?;
        if !matches!(
            parsed.bundle.verification_material.content,
            VerificationMaterialContent::Certificate(_) | VerificationMaterialContent::X509CertificateChain { .. }
        ) {
            return Err(AttestationRejection::WrongVerificationMaterial { expected: "a Fulcio certificate" });
        }
        // A keyless signature names no key; a key id on it means the envelope was
        // edited after signing (the DSSE signature does not cover the key id).
        if !parsed.envelope_keyid.is_empty() {
            return Err(AttestationRejection::KeyIdMismatch { expected: String::new(), found: parsed.envelope_keyid });
        }
        // Any identity is accepted here: npm packages are built by many CI providers;
        // the identity policy (identity.rs) decides which repository is acceptable.
        let policy = VerificationPolicy::any_identity();
        let verified = self.verifier.verify(self.artifact(), &parsed.bundle, &policy).map_err(map_sigstore_error)?;
        let certificate = verified
            .certificate()
            .ok_or_else(|| AttestationRejection::Verification("no certificate in the verification result".into()))?;
        let identity = extract_identity(certificate, verified.issuer(), &parsed.statement)?;
        let status = AttestationStatus::Verified {
            predicate_type: attestation.predicate_type.clone(),
            signer: verified.identity().map(|identity| identity.as_str().to_owned()).unwrap_or_default(),
            integrated_time: verified.integrated_time().map(|time| time.to_string()),
        };
        Ok((status, identity))
    }

    fn verify_publish(&self, attestation: &RawAttestation) -> Result<AttestationStatus, AttestationRejection> {
        let parsed = self.parse(attestation)?;
        let VerificationMaterialContent::PublicKey(hint) = &parsed.bundle.verification_material.content else {
            return Err(AttestationRejection::WrongVerificationMaterial { expected: "a registry key hint" });
        };
        if parsed.envelope_keyid.is_empty() {
            return Err(AttestationRejection::MissingKeyId);
        }
        if parsed.envelope_keyid != hint.hint {
            return Err(AttestationRejection::KeyIdMismatch {
                expected: hint.hint.clone(),
                found: parsed.envelope_keyid,
            });
        }
        let key = self
            .registry_keys
            .find(&parsed.envelope_keyid)
            .ok_or_else(|| AttestationRejection::UnknownRegistryKey(parsed.envelope_keyid.clone()))?;
        let policy = PublicKeyVerificationPolicy::new(DerPublicKey::new(key.spki_der.clone()));
        let verified = self.verifier.verify(self.artifact(), &parsed.bundle, &policy).map_err(map_sigstore_error)?;
        let integrated_time = verified.integrated_time();
        if let Some(expires) = key.expires {
            // The SET authenticates the integrated time; without one the key's validity
            // at signing cannot be shown, which fails closed.
            let logged = integrated_time.and_then(|time| chrono::DateTime::from_timestamp(time.as_second(), 0));
            match logged {
                Some(logged) if logged < expires => {}
                _ => {
                    return Err(AttestationRejection::RegistryKeyExpired {
                        keyid: key.keyid.clone(),
                        expires: expires.to_rfc3339(),
                        integrated_time: logged.map_or_else(|| "an unknown time".to_owned(), |time| time.to_rfc3339()),
                    });
                }
            }
        }
        Ok(AttestationStatus::Verified {
            predicate_type: attestation.predicate_type.clone(),
            signer: key.keyid.clone(),
            integrated_time: integrated_time.map(|time| time.to_string()),
        })
    }

    fn artifact(&self) -> Artifact<'static> {
        let digest = sigstore_verify::types::Sha512Hash::from(*self.tarball_sha512);
        Artifact::Digest(
            ArtifactDigest::new(HashAlgorithm::Sha2512, digest).expect("a sha512 digest is 64 bytes by its type"),
        )
    }

    /// Parses the bundle and checks the statement against this package version.
    fn parse(&self, attestation: &RawAttestation) -> Result<Parsed, AttestationRejection> {
        let bundle: Bundle = serde_json::from_value(attestation.bundle.clone())
            .map_err(|error| AttestationRejection::MalformedBundle(error.to_string()))?;
        let SignatureContent::DsseEnvelope(envelope) = &bundle.content else {
            return Err(AttestationRejection::MalformedBundle(
                "npm attestations are DSSE envelopes, this bundle has a message signature".into(),
            ));
        };
        if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(AttestationRejection::UnsupportedPayloadType(envelope.payload_type.clone()));
        }
        let statement: serde_json::Value = serde_json::from_slice(envelope.payload.as_bytes())
            .map_err(|error| AttestationRejection::MalformedStatement(error.to_string()))?;
        let statement_type = statement.get("_type").and_then(|value| value.as_str()).unwrap_or_default();
        if !IN_TOTO_STATEMENT_TYPES.contains(&statement_type) {
            return Err(AttestationRejection::UnsupportedStatementType(statement_type.to_owned()));
        }
        let statement_predicate = statement.get("predicateType").and_then(|value| value.as_str()).unwrap_or_default();
        if statement_predicate != attestation.predicate_type {
            return Err(AttestationRejection::PredicateTypeMismatch {
                listed: attestation.predicate_type.clone(),
                statement: statement_predicate.to_owned(),
            });
        }
        self.check_subject(&statement)?;
        let envelope_keyid = envelope.signature.keyid.to_string();
        Ok(Parsed { envelope_keyid, statement, bundle })
    }

    fn check_subject(&self, statement: &serde_json::Value) -> Result<(), AttestationRejection> {
        let subjects =
            statement.get("subject").and_then(|value| value.as_array()).map(Vec::as_slice).unwrap_or_default();
        if subjects.is_empty() {
            return Err(AttestationRejection::NoSubjects);
        }
        fn subject_name(subject: &serde_json::Value) -> Option<&str> {
            subject.get("name").and_then(|name| name.as_str())
        }
        let Some(subject) = subjects.iter().find(|subject| subject_name(subject) == Some(self.package_url)) else {
            return Err(AttestationRejection::SubjectNameMismatch {
                expected: self.package_url.to_owned(),
                found: subjects.iter().map(|subject| subject_name(subject).unwrap_or_default().to_owned()).collect(),
            });
        };
        let found = subject
            .get("digest")
            .and_then(|digest| digest.get("sha512"))
            .and_then(|digest| digest.as_str())
            .ok_or_else(|| AttestationRejection::SubjectDigestMissing(self.package_url.to_owned()))?;
        let expected = hex::encode(self.tarball_sha512);
        if !found.eq_ignore_ascii_case(&expected) {
            return Err(AttestationRejection::SubjectDigestMismatch { expected, found: found.to_owned() });
        }
        Ok(())
    }
}

fn map_sigstore_error(error: sigstore_verify::Error) -> AttestationRejection {
    use sigstore_verify::Error;
    match error {
        Error::SignatureInvalid(detail) => AttestationRejection::SignatureInvalid(detail),
        Error::Certificate(inner) => AttestationRejection::CertificateInvalid(inner.to_string()),
        Error::TransparencyLog(inner) => AttestationRejection::TransparencyLogInvalid(inner.to_string()),
        Error::Timestamp(inner) => AttestationRejection::TimestampInvalid(inner.to_string()),
        Error::InvalidBundle(detail) | Error::UnsupportedBundle(detail) => {
            AttestationRejection::MalformedBundle(detail)
        }
        other @ Error::Bundle(_) => AttestationRejection::MalformedBundle(other.to_string()),
        other => AttestationRejection::Verification(other.to_string()),
    }
}

/// The repository, commit, ref and workflow the signed SLSA predicate states.
#[derive(Default)]
struct PredicateClaims {
    repository: Option<String>,
    commit: Option<String>,
    git_ref: Option<String>,
    workflow_path: Option<String>,
    builder_id: Option<String>,
}

fn predicate_claims(statement: &serde_json::Value) -> PredicateClaims {
    let text = |value: Option<&serde_json::Value>| {
        value.and_then(|value| value.as_str()).filter(|value| !value.is_empty()).map(str::to_owned)
    };
    let predicate = statement.get("predicate");
    let pointer = |path: &str| text(predicate.and_then(|predicate| predicate.pointer(path)));
    let mut claims = PredicateClaims::default();
    if let Some(workflow) =
        predicate.and_then(|predicate| predicate.pointer("/buildDefinition/externalParameters/workflow"))
    {
        // SLSA v1, as npm writes it for GitHub Actions and GitLab.
        claims.repository = text(workflow.get("repository"));
        claims.git_ref = text(workflow.get("ref"));
        claims.workflow_path = text(workflow.get("path"));
        claims.commit = predicate
            .and_then(|predicate| predicate.pointer("/buildDefinition/resolvedDependencies"))
            .and_then(|dependencies| dependencies.as_array())
            .and_then(|dependencies| dependencies.first())
            .and_then(|dependency| dependency.pointer("/digest/gitCommit"))
            .and_then(|commit| commit.as_str())
            .map(str::to_owned);
        claims.builder_id = pointer("/runDetails/builder/id");
    } else if let Some(uri) = pointer("/invocation/configSource/uri") {
        // SLSA v0.2: `git+https://github.com/owner/repo@refs/heads/main`.
        let (repository, git_ref) = match uri.rsplit_once('@') {
            Some((repository, git_ref)) => (repository.to_owned(), Some(git_ref.to_owned())),
            None => (uri.clone(), None),
        };
        claims.repository = Some(repository);
        claims.git_ref = git_ref;
        claims.commit = pointer("/invocation/configSource/digest/sha1");
        claims.workflow_path = pointer("/invocation/configSource/entryPoint");
        claims.builder_id = pointer("/builder/id");
    }
    claims
}

fn extract_identity(
    certificate: &sigstore_verify::crypto::CertificateInfo,
    issuer: Option<&str>,
    statement: &serde_json::Value,
) -> Result<ProvenanceIdentity, AttestationRejection> {
    let claims = &certificate.ci_claims;
    let deprecated = &claims.deprecated_github;
    let predicate = predicate_claims(statement);
    let signer = claims
        .build_signer_uri
        .clone()
        .or_else(|| certificate.identity.as_ref().map(|identity| identity.as_str().to_owned()));
    // The certificate's claims come from the CI provider's OIDC token; the predicate is
    // written by the build itself. The certificate wins, and a predicate that
    // contradicts it is rejected rather than silently ignored.
    let certificate_repository = claims.source_repository_uri.clone().or_else(|| {
        deprecated.workflow_repository.as_ref().map(|repository| format!("https://github.com/{repository}"))
    });
    let certificate_commit = claims.source_repository_digest.clone().or_else(|| deprecated.workflow_sha.clone());
    let certificate_ref = claims.source_repository_ref.clone().or_else(|| deprecated.workflow_ref.clone());
    if let (Some(from_certificate), Some(from_predicate)) = (&certificate_repository, &predicate.repository)
        && normalize_repository_url(from_certificate) != normalize_repository_url(from_predicate)
    {
        return Err(AttestationRejection::PredicateContradictsCertificate {
            field: "repository",
            predicate: from_predicate.clone(),
            certificate: from_certificate.clone(),
        });
    }
    if let (Some(from_certificate), Some(from_predicate)) = (&certificate_commit, &predicate.commit)
        && !from_certificate.eq_ignore_ascii_case(from_predicate)
    {
        return Err(AttestationRejection::PredicateContradictsCertificate {
            field: "commit",
            predicate: from_predicate.clone(),
            certificate: from_certificate.clone(),
        });
    }
    let source_repository_uri =
        certificate_repository.or(predicate.repository).ok_or(AttestationRejection::NoSourceRepository)?;
    let workflow_path = signer
        .as_deref()
        .and_then(|signer| workflow_from_signer(signer, &source_repository_uri))
        .or(predicate.workflow_path);
    Ok(ProvenanceIdentity {
        source_commit: certificate_commit.or(predicate.commit),
        source_ref: certificate_ref.or(predicate.git_ref),
        workflow_path,
        build_signer_uri: signer,
        builder_id: predicate.builder_id,
        issuer: issuer.map(str::to_owned),
        run_invocation_uri: claims.run_invocation_uri.clone(),
        runner_environment: claims.runner_environment.clone(),
        source_repository_uri,
    })
}

/// `https://github.com/o/r/.github/workflows/release.yml@refs/heads/main` →
/// `.github/workflows/release.yml`, when the signer lives in the source repository.
fn workflow_from_signer(signer: &str, repository_uri: &str) -> Option<String> {
    let without_ref = signer.split_once('@').map_or(signer, |(path, _)| path);
    let rest = without_ref.strip_prefix(repository_uri.trim_end_matches('/'))?;
    let path = rest.strip_prefix('/')?;
    (!path.is_empty()).then(|| path.to_owned())
}

#[cfg(test)]
mod tests;
