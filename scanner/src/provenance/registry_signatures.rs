//! npm registry signatures: ECDSA P-256 / SHA-256 over `{name}@{version}:{integrity}`,
//! keys from `/-/npm/v1/keys`, the key picked by its SSH-style `keyid`.
//!
//! The registry signs what it serves, so a valid signature proves the integrity string
//! came from the registry that owns the key, not from a mirror or a cache in between.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use p256::ecdsa::signature::Verifier as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::{Finding, Severity};

/// The npm public registry's signing keys, as served at
/// `https://registry.npmjs.org/-/npm/v1/keys` (copied from nodejs/corepack's config).
const NPM_PUBLIC_REGISTRY_KEYS: &str = include_str!("npm_registry_keys.json");

/// An error in a `/-/npm/v1/keys` document; messages quote the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    /// The document is not the `{"keys": [...]}` JSON npm serves.
    #[error("registry keys are not valid `/-/npm/v1/keys` JSON: {0}")]
    Json(String),
    /// A key is not a base64 DER SubjectPublicKeyInfo of a P-256 key.
    #[error("registry key `{keyid}` is not a P-256 public key: {reason}")]
    BadKey {
        /// The key's declared id.
        keyid: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The declared `keyid` is not the fingerprint of the key it labels.
    #[error("registry key declares keyid `{declared}` but its fingerprint is `{computed}`")]
    KeyIdMismatch {
        /// The `keyid` field.
        declared: String,
        /// `SHA256:` + the unpadded base64 SHA-256 of the key in SSH wire format.
        computed: String,
    },
    /// A key type other than `ecdsa-sha2-nistp256`.
    #[error("registry key `{keyid}` has unsupported type `{keytype}`")]
    UnsupportedKeyType {
        /// The key's declared id.
        keyid: String,
        /// The `keytype` (or `scheme`) field.
        keytype: String,
    },
    /// The `expires` field is not an RFC 3339 time.
    #[error("registry key `{keyid}` has an unreadable expiry `{expires}`")]
    BadExpiry {
        /// The key's declared id.
        keyid: String,
        /// The `expires` field.
        expires: String,
    },
}

/// One registry signing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryKey {
    /// `SHA256:` + unpadded base64 of the SHA-256 of the key in SSH wire format.
    // Invariant: equal to `npm_ssh_key_id(&self.spki_der)`, checked when parsed.
    pub keyid: String,
    /// The public key as DER SubjectPublicKeyInfo.
    #[serde(skip)]
    pub spki_der: Vec<u8>,
    /// Signatures made after this instant are not accepted; `None` means no expiry.
    pub expires: Option<DateTime<Utc>>,
}

/// The signing keys of one registry, from its `/-/npm/v1/keys` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegistryKeys {
    /// The keys, in the order the registry listed them.
    pub keys: Vec<RegistryKey>,
}

#[derive(Deserialize)]
struct RawKeys {
    keys: Vec<RawKey>,
}

#[derive(Deserialize)]
struct RawKey {
    keyid: String,
    #[serde(default)]
    keytype: Option<String>,
    #[serde(default)]
    scheme: Option<String>,
    key: String,
    #[serde(default)]
    expires: Option<String>,
}

const NPM_KEY_TYPE: &str = "ecdsa-sha2-nistp256";

impl RegistryKeys {
    /// Parses a `/-/npm/v1/keys` response. Every key is checked: its type, that it is a
    /// P-256 key, and that its `keyid` is really its fingerprint (a registry that labels
    /// a key with another key's id would otherwise make signatures "verify" by the
    /// wrong key).
    pub fn from_json(json: &[u8]) -> Result<RegistryKeys, KeysError> {
        let raw: RawKeys = serde_json::from_slice(json).map_err(|error| KeysError::Json(error.to_string()))?;
        let mut keys = Vec::with_capacity(raw.keys.len());
        for raw_key in raw.keys {
            for declared_type in [&raw_key.keytype, &raw_key.scheme].into_iter().flatten() {
                if declared_type != NPM_KEY_TYPE {
                    return Err(KeysError::UnsupportedKeyType {
                        keyid: raw_key.keyid.clone(),
                        keytype: declared_type.clone(),
                    });
                }
            }
            let spki_der = base64::engine::general_purpose::STANDARD.decode(raw_key.key.trim()).map_err(|error| {
                KeysError::BadKey { keyid: raw_key.keyid.clone(), reason: format!("invalid base64: {error}") }
            })?;
            let computed = npm_ssh_key_id(&spki_der)
                .map_err(|reason| KeysError::BadKey { keyid: raw_key.keyid.clone(), reason })?;
            if computed != raw_key.keyid {
                return Err(KeysError::KeyIdMismatch { declared: raw_key.keyid, computed });
            }
            let expires = match raw_key.expires.as_deref() {
                None | Some("") => None,
                Some(text) => Some(
                    DateTime::parse_from_rfc3339(text)
                        .map_err(|_| KeysError::BadExpiry { keyid: raw_key.keyid.clone(), expires: text.to_owned() })?
                        .with_timezone(&Utc),
                ),
            };
            keys.push(RegistryKey { keyid: raw_key.keyid, spki_der, expires });
        }
        Ok(RegistryKeys { keys })
    }

    /// The npm public registry's keys, built in as the default for
    /// `https://registry.npmjs.org`.
    pub fn npm_public_registry() -> RegistryKeys {
        RegistryKeys::from_json(NPM_PUBLIC_REGISTRY_KEYS.as_bytes())
            .expect("the built-in npm registry keys parse; a unit test proves it")
    }

    /// The key with this id, if the registry has one.
    pub fn find(&self, keyid: &str) -> Option<&RegistryKey> {
        self.keys.iter().find(|key| key.keyid == keyid)
    }

    /// True when the registry publishes no keys (and so signs nothing).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// npm's key id for a P-256 key given as DER SubjectPublicKeyInfo: `SHA256:` followed by
/// the unpadded base64 SHA-256 of the key in SSH wire format (the `ssh-keygen -l`
/// fingerprint), not a hash of the DER bytes.
pub fn npm_ssh_key_id(spki_der: &[u8]) -> Result<String, String> {
    use p256::pkcs8::DecodePublicKey as _;
    let key = p256::PublicKey::from_public_key_der(spki_der)
        .map_err(|error| format!("not a DER P-256 public key: {error}"))?;
    let point = p256::EncodedPoint::from(key);
    let point = point.as_bytes();
    // SSH wire format (RFC 5656 §3.1): string "ecdsa-sha2-nistp256", string "nistp256",
    // string Q (the uncompressed point); each string is a u32 big-endian length + bytes.
    let mut wire = Vec::with_capacity(4 + 19 + 4 + 8 + 4 + point.len());
    for field in [NPM_KEY_TYPE.as_bytes(), b"nistp256", point] {
        let length = u32::try_from(field.len()).map_err(|_| "key field too long".to_owned())?;
        wire.extend_from_slice(&length.to_be_bytes());
        wire.extend_from_slice(field);
    }
    let digest = sha2::Sha256::digest(&wire);
    Ok(format!("SHA256:{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)))
}

/// One `dist.signatures[]` entry as the registry serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistSignature {
    /// The signing key's id.
    #[serde(default)]
    pub keyid: String,
    /// Base64 DER ECDSA signature.
    #[serde(default)]
    pub sig: String,
}

/// What a registry signature covers, with the signatures that claim to cover it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignedVersion {
    /// Package name, as in the packument.
    pub name: String,
    /// Version, as in the packument.
    pub version: String,
    /// `dist.integrity`, the SRI string the signature covers.
    pub integrity: String,
    /// `dist.signatures`, possibly empty.
    pub signatures: Vec<DistSignature>,
    /// When the version was published (`time[version]`), for key expiry.
    pub published: Option<DateTime<Utc>>,
}

/// Why a packument's version entry could not be read for signature checking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedVersionError {
    /// The bytes are not a JSON object.
    #[error("packument is not valid JSON: {0}")]
    Json(String),
    /// `versions[version]` is missing.
    #[error("packument has no version `{0}`")]
    NoSuchVersion(String),
    /// A field the signature covers is missing or not a string.
    #[error("version `{version}` has no string `{field}`")]
    MissingField {
        /// The version.
        version: String,
        /// The missing field, such as `dist.integrity`.
        field: &'static str,
    },
    /// `dist.signatures` is not a list of `{keyid, sig}`.
    #[error("version `{version}` has malformed `dist.signatures`: {reason}")]
    MalformedSignatures {
        /// The version.
        version: String,
        /// The parse error.
        reason: String,
    },
}

impl SignedVersion {
    /// Reads one version of a full packument (the JSON npm serves at `/{name}`).
    pub fn from_packument(packument: &[u8], version: &str) -> Result<Self, SignedVersionError> {
        let packument: serde_json::Value =
            serde_json::from_slice(packument).map_err(|error| SignedVersionError::Json(error.to_string()))?;
        let manifest = packument
            .get("versions")
            .and_then(|versions| versions.get(version))
            .ok_or_else(|| SignedVersionError::NoSuchVersion(version.to_owned()))?;
        let published = packument
            .get("time")
            .and_then(|time| time.get(version))
            .and_then(|time| time.as_str())
            .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
            .map(|time| time.with_timezone(&Utc));
        Self::from_manifest(manifest, published)
    }

    /// Reads a single-version manifest (`versions[v]` of a packument, or `/{name}/{v}`).
    pub fn from_manifest(
        manifest: &serde_json::Value,
        published: Option<DateTime<Utc>>,
    ) -> Result<Self, SignedVersionError> {
        let version = manifest.get("version").and_then(|value| value.as_str()).unwrap_or_default().to_owned();
        let text = |value: Option<&serde_json::Value>, field| {
            value
                .and_then(|value| value.as_str())
                .map(str::to_owned)
                .ok_or_else(|| SignedVersionError::MissingField { version: version.clone(), field })
        };
        let name = text(manifest.get("name"), "name")?;
        let version_text = text(manifest.get("version"), "version")?;
        let dist = manifest.get("dist");
        let integrity = text(dist.and_then(|dist| dist.get("integrity")), "dist.integrity")?;
        let signatures = match dist.and_then(|dist| dist.get("signatures")) {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(value) => serde_json::from_value(value.clone()).map_err(|error| {
                SignedVersionError::MalformedSignatures { version: version.clone(), reason: error.to_string() }
            })?,
        };
        Ok(SignedVersion { name, version: version_text, integrity, signatures, published })
    }

    /// The exact bytes a registry signature covers.
    pub fn signed_message(&self) -> String {
        format!("{}@{}:{}", self.name, self.version, self.integrity)
    }
}

/// The outcome of checking one `dist.signatures[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum SignatureOutcome {
    /// The signature verifies with the registry key it names.
    Verified,
    /// The registry has no key with this id.
    UnknownKey,
    /// The key had expired when the version was published.
    KeyExpired {
        /// When the key expired.
        expires: DateTime<Utc>,
        /// When the version was published.
        published: DateTime<Utc>,
    },
    /// The key expires and the publish time is unknown, so validity cannot be decided.
    PublishTimeUnknown {
        /// When the key expired.
        expires: DateTime<Utc>,
    },
    /// The signature is not base64 DER ECDSA.
    Malformed {
        /// The decoding error.
        reason: String,
    },
    /// The signature does not verify over `{name}@{version}:{integrity}`.
    Invalid,
}

/// One checked signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureCheck {
    /// The key id the signature names.
    pub keyid: String,
    /// What the check found.
    #[serde(flatten)]
    pub outcome: SignatureOutcome,
}

/// The result of checking a version's registry signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistrySignatureResult {
    /// The bytes the signatures were checked over: `{name}@{version}:{integrity}`.
    pub signed_message: String,
    /// One entry per `dist.signatures[]` element.
    pub checks: Vec<SignatureCheck>,
    /// True when the registry signs its versions but this one carries no signature.
    pub missing: bool,
}

impl RegistrySignatureResult {
    /// True when at least one signature verified and none failed.
    pub fn is_verified(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|check| check.outcome == SignatureOutcome::Verified)
    }

    /// The findings: `registry-signature-missing`, `registry-signature-unknown-key` and
    /// `registry-signature-invalid`, all high (a broken chain of custody).
    pub fn findings(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        if self.missing {
            findings.push(finding(
                "registry-signature-missing",
                format!("The registry signs its packages but `{}` carries no signature.", self.subject()),
            ));
        }
        for check in &self.checks {
            let subject = self.subject();
            let keyid = &check.keyid;
            let (rule, message) = match &check.outcome {
                SignatureOutcome::Verified => continue,
                SignatureOutcome::UnknownKey => (
                    "registry-signature-unknown-key",
                    format!("`{subject}` is signed by key `{keyid}`, which the registry does not publish."),
                ),
                SignatureOutcome::KeyExpired { expires, published } => (
                    "registry-signature-invalid",
                    format!(
                        "`{subject}` was published at {published} but signed by key `{keyid}`, which expired at {expires}."
                    ),
                ),
                SignatureOutcome::PublishTimeUnknown { expires } => (
                    "registry-signature-invalid",
                    format!(
                        "`{subject}` is signed by key `{keyid}`, which expired at {expires}, and its publish time is unknown."
                    ),
                ),
                SignatureOutcome::Malformed { reason } => (
                    "registry-signature-invalid",
                    format!("`{subject}` has a malformed signature by key `{keyid}`: {reason}."),
                ),
                SignatureOutcome::Invalid => (
                    "registry-signature-invalid",
                    format!("The registry signature by key `{keyid}` does not verify over `{}`.", self.signed_message),
                ),
            };
            findings.push(finding(rule, message));
        }
        findings
    }

    fn subject(&self) -> &str {
        self.signed_message.rsplit_once(':').map_or(self.signed_message.as_str(), |(subject, _)| subject)
    }
}

fn finding(rule: &str, message: String) -> Finding {
    Finding { rule: rule.to_owned(), severity: Severity::High, message, location: None, excerpt: None }
}

/// Checks every registry signature of a version.
///
/// `registry_signs_everything` says whether the registry signs all its versions (the
/// public registry does, and any registry whose keys endpoint lists a key); then a
/// version without a signature is `missing`. A version signed by several keys must
/// verify with each of them: a signature that fails is never outvoted by one that
/// passes.
pub fn verify_registry_signatures(
    version: &SignedVersion,
    keys: &RegistryKeys,
    registry_signs_everything: bool,
) -> RegistrySignatureResult {
    let signed_message = version.signed_message();
    let checks = version
        .signatures
        .iter()
        .map(|signature| SignatureCheck {
            keyid: signature.keyid.clone(),
            outcome: check_one(signature, signed_message.as_bytes(), keys, version.published),
        })
        .collect::<Vec<_>>();
    RegistrySignatureResult { missing: registry_signs_everything && checks.is_empty(), signed_message, checks }
}

fn check_one(
    signature: &DistSignature,
    message: &[u8],
    keys: &RegistryKeys,
    published: Option<DateTime<Utc>>,
) -> SignatureOutcome {
    let Some(key) = keys.find(&signature.keyid) else {
        return SignatureOutcome::UnknownKey;
    };
    if let Some(expires) = key.expires {
        match published {
            None => return SignatureOutcome::PublishTimeUnknown { expires },
            Some(published) if published >= expires => {
                return SignatureOutcome::KeyExpired { expires, published };
            }
            Some(_) => {}
        }
    }
    match verify_ecdsa_p256(&key.spki_der, message, &signature.sig) {
        Ok(true) => SignatureOutcome::Verified,
        Ok(false) => SignatureOutcome::Invalid,
        Err(reason) => SignatureOutcome::Malformed { reason },
    }
}

/// Verifies a base64 DER ECDSA P-256 / SHA-256 signature; `Err` when it is not one.
pub(crate) fn verify_ecdsa_p256(spki_der: &[u8], message: &[u8], signature_base64: &str) -> Result<bool, String> {
    use p256::pkcs8::DecodePublicKey as _;
    let key = p256::ecdsa::VerifyingKey::from_public_key_der(spki_der).map_err(|error| format!("bad key: {error}"))?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(signature_base64.trim())
        .map_err(|error| format!("invalid base64: {error}"))?;
    let signature =
        p256::ecdsa::DerSignature::from_bytes(&der).map_err(|error| format!("not a DER ECDSA signature: {error}"))?;
    Ok(key.verify(message, &signature).is_ok())
}

#[cfg(test)]
mod tests;
