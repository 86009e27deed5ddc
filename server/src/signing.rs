//! Airlock's own keys and what it signs with them.
//!
//! - An Ed25519 key signs a release record for every released version: an in-toto
//!   statement (subject `pkg:npm/name@version` with the tarball's digest; predicate:
//!   the decision, actor, time, policy and a check summary) in a DSSE envelope.
//! - An ECDSA P-256 key signs `name@version:integrity`, npm's registry signature format,
//!   so stock `npm audit signatures` against Airlock proves a package came through it.
//!
//! Keys are generated on first start in `signing.key_dir` with owner-only permissions.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use chrono::{DateTime, Utc};
use ed25519_dalek::Signer as _;
use p256::pkcs8::EncodePublicKey as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::npm::PackageName;

/// The in-toto payload type of release records.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The predicate type of Airlock's release records.
pub const PREDICATE_TYPE: &str = "https://airlock.invalid/attestations/release/v1";

/// Airlock's signing keys.
pub struct Signer {
    release_key: ed25519_dalek::SigningKey,
    release_key_id: String,
    registry_key: p256::ecdsa::SigningKey,
    registry_key_id: String,
    registry_key_spki: Vec<u8>,
}

/// What a release record says about a version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleasePredicate {
    /// The package.
    pub package: String,
    /// The version.
    pub version: String,
    /// The integrity that was vetted (the only bytes this record covers).
    pub integrity: String,
    /// Always `released`.
    pub decision: String,
    /// `pipeline`, `policy` or `admin:<name>`.
    pub actor: String,
    /// When.
    pub time: DateTime<Utc>,
    /// Why, in one sentence.
    pub reason: String,
    /// The policy in force.
    pub policy: serde_json::Value,
    /// A summary of the checks.
    pub checks: serde_json::Value,
}

/// A DSSE envelope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The payload's media type.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 of the statement.
    pub payload: String,
    /// Signatures over the PAE.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Which key.
    pub keyid: String,
    /// Base64 signature.
    pub sig: String,
}

impl Signer {
    /// Loads the keys from `key_dir`, creating them (owner-only) on first start.
    pub fn load_or_create(key_dir: &Path) -> anyhow::Result<Signer> {
        create_private_dir(key_dir)?;
        let release_seed = load_or_create_secret(&key_dir.join("release-ed25519.key"))?;
        let release_key = ed25519_dalek::SigningKey::from_bytes(&release_seed);
        let registry_secret = load_or_create_secret(&key_dir.join("registry-p256.key"))?;
        let registry_key = p256::ecdsa::SigningKey::from_bytes(&registry_secret.into())
            .context("the registry signing key is not a valid P-256 scalar")?;
        let registry_key_spki = p256::PublicKey::from(registry_key.verifying_key())
            .to_public_key_der()
            .context("encoding the registry public key")?
            .as_bytes()
            .to_vec();
        let registry_key_id = airlock_scanner::provenance::npm_ssh_key_id(&registry_key_spki)
            .map_err(|error| anyhow::anyhow!("computing the registry key id: {error}"))?;
        let release_key_id = ed25519_key_id(release_key.verifying_key().as_bytes());
        Ok(Signer { release_key, release_key_id, registry_key, registry_key_id, registry_key_spki })
    }

    /// npm's registry signature over `name@version:integrity`: base64 DER ECDSA P-256.
    pub fn registry_signature(&self, name: &PackageName, version: &str, integrity: &str) -> String {
        let message = format!("{name}@{version}:{integrity}");
        let signature: p256::ecdsa::Signature =
            p256::ecdsa::signature::Signer::sign(&self.registry_key, message.as_bytes());
        STANDARD.encode(signature.to_der().as_bytes())
    }

    /// The key id of the registry key, in npm's `SHA256:` SSH fingerprint format.
    pub fn registry_key_id(&self) -> &str {
        &self.registry_key_id
    }

    /// The registry key in `/-/npm/v1/keys` format.
    pub fn registry_key_json(&self) -> serde_json::Value {
        serde_json::json!({
            "expires": null,
            "keyid": self.registry_key_id,
            "keytype": "ecdsa-sha2-nistp256",
            "scheme": "ecdsa-sha2-nistp256",
            "key": STANDARD.encode(&self.registry_key_spki),
        })
    }

    /// The release-record key: id and raw public key (base64).
    pub fn release_key_json(&self) -> serde_json::Value {
        serde_json::json!({
            "keyid": self.release_key_id,
            "keytype": "ed25519",
            "purpose": "release records (DSSE over in-toto statements)",
            "public_key": STANDARD.encode(self.release_key.verifying_key().as_bytes()),
        })
    }

    /// Signs a release record for a version whose tarball has this digest
    /// (`("sha512", hex)` normally).
    pub fn release_record(&self, name: &PackageName, digest: (&str, &str), predicate: &ReleasePredicate) -> Vec<u8> {
        let statement = serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{
                "name": package_url(name, &predicate.version),
                "digest": { digest.0: digest.1 },
            }],
            "predicateType": PREDICATE_TYPE,
            "predicate": predicate,
        });
        let payload = serde_json::to_vec(&statement).unwrap_or_default();
        let signature = self.release_key.sign(&pae(PAYLOAD_TYPE, &payload));
        let envelope = Envelope {
            payload_type: PAYLOAD_TYPE.into(),
            payload: STANDARD.encode(&payload),
            signatures: vec![EnvelopeSignature {
                keyid: self.release_key_id.clone(),
                sig: STANDARD.encode(signature.to_bytes()),
            }],
        };
        serde_json::to_vec(&envelope).unwrap_or_default()
    }
}

/// The package URL of a version, as in npm's attestations (`@` of a scope as `%40`).
pub fn package_url(name: &PackageName, version: &str) -> String {
    format!("pkg:npm/{}@{version}", name.as_str().replacen('@', "%40", 1))
}

/// DSSE's pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut encoded = format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    encoded.extend_from_slice(payload);
    encoded
}

/// The id of an Ed25519 public key: `SHA256:` and the unpadded base64 of its SHA-256.
pub fn ed25519_key_id(public_key: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(public_key)))
}

/// A statement verified offline against a pinned Ed25519 key.
pub fn verify_release_record(envelope_json: &[u8], public_key: &[u8; 32]) -> Result<serde_json::Value, String> {
    let envelope: Envelope =
        serde_json::from_slice(envelope_json).map_err(|error| format!("not a DSSE envelope: {error}"))?;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(format!("unexpected payload type {:?}", envelope.payload_type));
    }
    let payload = STANDARD.decode(&envelope.payload).map_err(|_| "the payload is not base64".to_owned())?;
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(public_key).map_err(|error| format!("invalid public key: {error}"))?;
    let expected_id = ed25519_key_id(public_key);
    let verified = envelope.signatures.iter().any(|signature| {
        signature.keyid == expected_id
            && STANDARD
                .decode(&signature.sig)
                .ok()
                .and_then(|bytes| ed25519_dalek::Signature::from_slice(&bytes).ok())
                .is_some_and(|sig| key.verify_strict(&pae(&envelope.payload_type, &payload), &sig).is_ok())
    });
    if !verified {
        return Err("no signature by the pinned key verifies".into());
    }
    let statement: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|error| format!("the statement is not JSON: {error}"))?;
    if statement["predicateType"] != PREDICATE_TYPE {
        return Err(format!("unexpected predicate type {}", statement["predicateType"]));
    }
    Ok(statement)
}

fn create_private_dir(directory: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(directory).with_context(|| format!("creating {}", directory.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(directory, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", directory.display()))?;
    }
    Ok(())
}

/// Reads a 32-byte secret stored as hex, or creates one with owner-only permissions.
fn load_or_create_secret(path: &Path) -> anyhow::Result<[u8; 32]> {
    if path.exists() {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let bytes = hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?;
        return bytes.try_into().map_err(|_| anyhow::anyhow!("{} does not hold 32 bytes", path.display()));
    }
    let mut secret = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut secret);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, hex::encode(secret).as_bytes())?;
    file.sync_all()?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_private_and_reloaded() {
        let directory = tempfile::tempdir().unwrap();
        let key_dir = directory.path().join("keys");
        let first = Signer::load_or_create(&key_dir).unwrap();
        let second = Signer::load_or_create(&key_dir).unwrap();
        assert_eq!(first.registry_key_id(), second.registry_key_id());
        assert!(first.registry_key_id().starts_with("SHA256:"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(key_dir.join("release-ed25519.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn registry_signatures_verify_with_the_published_key() {
        let directory = tempfile::tempdir().unwrap();
        let signer = Signer::load_or_create(directory.path()).unwrap();
        let name = PackageName::parse("@scope/pkg").unwrap();
        let signature = signer.registry_signature(&name, "1.0.0", "sha512-abc");
        let key_der = STANDARD.decode(signer.registry_key_json()["key"].as_str().unwrap()).unwrap();
        let key = <p256::ecdsa::VerifyingKey as p256::pkcs8::DecodePublicKey>::from_public_key_der(&key_der).unwrap();
        let der = p256::ecdsa::Signature::from_der(&STANDARD.decode(signature).unwrap()).unwrap();
        use p256::ecdsa::signature::Verifier as _;
        assert!(key.verify(b"@scope/pkg@1.0.0:sha512-abc", &der).is_ok());
        assert!(key.verify(b"@scope/pkg@1.0.1:sha512-abc", &der).is_err());
    }

    #[test]
    fn release_records_verify_offline_and_reject_tampering() {
        let directory = tempfile::tempdir().unwrap();
        let signer = Signer::load_or_create(directory.path()).unwrap();
        let name = PackageName::parse("@scope/pkg").unwrap();
        let predicate = ReleasePredicate {
            package: name.to_string(),
            version: "1.0.0".into(),
            integrity: "sha512-abc".into(),
            decision: "released".into(),
            actor: "pipeline".into(),
            time: Utc::now(),
            reason: "checks passed".into(),
            policy: serde_json::json!({}),
            checks: serde_json::json!({}),
        };
        let record = signer.release_record(&name, ("sha512", "00ff"), &predicate);
        let public_key: [u8; 32] = *signer.release_key.verifying_key().as_bytes();
        let statement = verify_release_record(&record, &public_key).unwrap();
        assert_eq!(statement["subject"][0]["name"], "pkg:npm/%40scope/pkg@1.0.0");
        assert_eq!(statement["subject"][0]["digest"]["sha512"], "00ff");

        let mut envelope: Envelope = serde_json::from_slice(&record).unwrap();
        let mut payload = STANDARD.decode(&envelope.payload).unwrap();
        let position = payload.iter().position(|&byte| byte == b'0').unwrap();
        payload[position] = b'1';
        envelope.payload = STANDARD.encode(&payload);
        let tampered = serde_json::to_vec(&envelope).unwrap();
        assert_eq!(
            verify_release_record(&tampered, &public_key).unwrap_err(),
            "no signature by the pinned key verifies"
        );
        let other_key = [7u8; 32];
        assert!(verify_release_record(&record, &other_key).is_err());
    }
}
