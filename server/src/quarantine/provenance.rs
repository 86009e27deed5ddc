//! The signature, provenance and source-repository stage of a check: fetches what the
//! pure verifiers in `airlock_scanner::provenance` need (the upstream's keys, the
//! attestation bundles, the source archive from the forge) and turns their results
//! into findings and stored structure.
//!
//! Fails closed: evidence that cannot be fetched becomes a finding whose severity the
//! policy sets, never a silent pass.

use airlock_scanner::provenance::{
    self, ArchiveLimits, FileTree, PreviousProvenance, ProvenanceIdentity, ProvenanceResult, RegistryKeys,
    SignedVersion, SigstoreTrustRoot,
};
use airlock_scanner::{Finding, Severity};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Policy;
use crate::forge::ForgeClient;
use crate::npm::PackageName;
use crate::upstream::Upstream;

/// What the stage needs besides the version.
pub struct ProvenanceContext<'a> {
    /// The upstream, for attestation bundles.
    pub upstream: &'a Upstream,
    /// The upstream's registry keys.
    pub keys: &'a RegistryKeys,
    /// The Sigstore trust root.
    pub trust_root: &'a SigstoreTrustRoot,
    /// The forge, for source archives.
    pub forge: &'a ForgeClient,
    /// The policy.
    pub policy: &'a Policy,
}

/// The stage's result.
pub struct ProvenanceOutcome {
    /// Findings to add to the report.
    pub findings: Vec<Finding>,
    /// Signatures, attestations and identity policy, for the record and the UI.
    pub provenance: Value,
    /// The source-repository match, for the record and the UI.
    pub source_match: Value,
}

/// Runs the stage for one version.
pub async fn check(
    context: &ProvenanceContext<'_>,
    name: &PackageName,
    version: &str,
    manifest: &Value,
    published: Option<DateTime<Utc>>,
    tarball: &[u8],
    previous: Option<PreviousProvenance>,
) -> ProvenanceOutcome {
    let mut findings = Vec::new();
    let pins = context.policy.provenance_pins(name, version);
    let requires_provenance = pins.require_provenance;

    // Registry signatures. A registry that publishes keys signs every version.
    let signatures = match SignedVersion::from_manifest(manifest, published) {
        Ok(signed) => {
            let result = provenance::verify_registry_signatures(&signed, context.keys, !context.keys.keys.is_empty());
            findings.extend(result.findings());
            serde_json::to_value(&result).unwrap_or(Value::Null)
        }
        Err(error) => {
            if !context.keys.keys.is_empty() {
                findings.push(finding(
                    "registry-signature-missing",
                    Severity::High,
                    format!("The registry signature could not be checked: {error}."),
                ));
            }
            json!({ "error": error.to_string() })
        }
    };

    // Sigstore attestations, when the packument declares them.
    let tarball_sha512 = provenance::sha512_of(tarball);
    let declared = manifest.pointer("/dist/attestations").is_some();
    let attestations = if declared {
        let path = format!("/-/npm/v1/attestations/{}@{version}", name.url_segment());
        match context.upstream.fetch_small_json(&path).await {
            Ok(Some(body)) => provenance::verify_attestations(
                &body,
                name.as_str(),
                version,
                &tarball_sha512,
                context.keys,
                context.trust_root,
            ),
            Ok(None) => ProvenanceResult::absent(name.as_str(), version),
            Err(error) => {
                let severity =
                    if requires_provenance { Severity::High } else { context.policy.unverifiable_source_severity() };
                findings.push(finding(
                    "provenance-unavailable",
                    severity,
                    format!("The packument declares attestations, but they could not be fetched: {error}."),
                ));
                ProvenanceResult::absent(name.as_str(), version)
            }
        }
    } else {
        ProvenanceResult::absent(name.as_str(), version)
    };
    findings.extend(attestations.findings());
    findings.extend(provenance::undelivered_provenance(manifest, &attestations));

    // Identity policy: the provenance repository is the one package.json names, and
    // nothing regressed since the last released version.
    let tarball_tree = FileTree::from_tar_gz(tarball, ArchiveLimits::default());
    let package_json = tarball_tree
        .as_ref()
        .ok()
        .and_then(|tree| tree.get("package.json"))
        .and_then(|file| serde_json::from_slice::<Value>(&file.bytes).ok())
        .unwrap_or(Value::Null);
    let identity: Option<&ProvenanceIdentity> = attestations.identity.as_ref();
    let identity_policy = provenance::check_identity_policy(identity, &package_json, previous.as_ref(), &pins);
    findings.extend(identity_policy.findings());

    // Source-repository match.
    let source_match = match &tarball_tree {
        Ok(tree) => {
            let outcome =
                context.forge.match_source(tree, identity, context.policy.unverifiable_source_severity()).await;
            findings.extend(outcome.findings());
            serde_json::to_value(&outcome).unwrap_or(Value::Null)
        }
        Err(error) => {
            let message = format!("The tarball could not be unpacked for the source comparison: {error}.");
            findings.push(finding(
                "source-unverifiable",
                context.policy.unverifiable_source_severity(),
                message.clone(),
            ));
            json!({ "status": "unverifiable", "reason": message })
        }
    };

    ProvenanceOutcome {
        findings,
        provenance: json!({
            "registry_signatures": signatures,
            "attestations": attestations,
            "identity_policy": identity_policy,
            "identity": attestations.identity,
        }),
        source_match,
    }
}

/// The provenance identity stored with a version's check record, for continuity.
pub fn stored_identity(provenance: &Value) -> Option<ProvenanceIdentity> {
    serde_json::from_value(provenance.get("identity")?.clone()).ok()
}

fn finding(rule: &str, severity: Severity, message: String) -> Finding {
    Finding { rule: rule.to_owned(), severity, message, location: None, excerpt: None }
}
