//! Upstream packuments in, client packuments out.
//!
//! [`parse_upstream`] checks an upstream document's shape; [`version_facts`] extracts
//! what Airlock records about each version; [`render`] builds what clients see: only
//! installable versions, tarball URLs pointing at Airlock, dist-tags moved off hidden
//! versions, in the full and the abbreviated form, serialised and precompressed once.
//! Every other field is passed through untouched.

use std::collections::HashMap;
use std::io::Write as _;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::npm::{Integrity, PackageName, TarballFileName};
use crate::quarantine::{self, Policy, Visibility};
use crate::store::VersionRecord;

/// The fields of a version kept in the abbreviated ("corgi") document: npm's documented
/// set plus the ones pnpm, yarn and bun read.
const ABBREVIATED_VERSION_FIELDS: &[&str] = &[
    "name",
    "version",
    "deprecated",
    "dependencies",
    "optionalDependencies",
    "devDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "acceptDependencies",
    "bin",
    "directories",
    "dist",
    "engines",
    "cpu",
    "os",
    "libc",
    "funding",
    "license",
    "_hasShrinkwrap",
    "hasInstallScript",
];

/// A parsed upstream packument: the top-level JSON object.
pub type Document = Map<String, Value>;

/// Parses and sanity-checks an upstream packument. An upstream that answers for
/// another package, or with something that is not a packument, is refused.
pub fn parse_upstream(name: &PackageName, body: &[u8]) -> Result<Document, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| format!("the packument of {name} is not valid JSON: {error}"))?;
    let Value::Object(document) = value else {
        return Err(format!("the packument of {name} is not a JSON object"));
    };
    match document.get("name").and_then(Value::as_str) {
        Some(declared) if declared == name.as_str() => {}
        Some(declared) => {
            return Err(format!("the upstream answered for {} when asked for {name}", crate::npm::quote(declared)));
        }
        None => return Err(format!("the packument of {name} has no name")),
    }
    if !document.get("versions").is_none_or(Value::is_object) {
        return Err(format!("the packument of {name} has a `versions` field that is not an object"));
    }
    Ok(document)
}

/// What the upstream says about one version, as Airlock records it at first sight.
#[derive(Debug, Clone)]
pub struct VersionFacts {
    /// The version string.
    pub version: String,
    /// `time[version]`, if present and parseable.
    pub claimed_published: Option<DateTime<Utc>>,
    /// `dist.integrity` (or `shasum`), or why it is unusable.
    pub integrity: Result<Integrity, String>,
}

/// Extracts the per-version facts from a parsed packument.
pub fn version_facts(document: &Document) -> Vec<VersionFacts> {
    let times = document.get("time").and_then(Value::as_object);
    let Some(versions) = document.get("versions").and_then(Value::as_object) else {
        return Vec::new();
    };
    versions
        .iter()
        .map(|(version, manifest)| VersionFacts {
            version: version.clone(),
            claimed_published: times
                .and_then(|times| times.get(version))
                .and_then(Value::as_str)
                .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
                .map(|time| time.with_timezone(&Utc)),
            integrity: declared_integrity(manifest),
        })
        .collect()
}

fn declared_integrity(manifest: &Value) -> Result<Integrity, String> {
    let dist = manifest.get("dist").ok_or("the version has no dist")?;
    Integrity::from_dist(dist.get("integrity").and_then(Value::as_str), dist.get("shasum").and_then(Value::as_str))
        .map_err(|error| error.0)
}

/// One version as the server needs it after rendering.
#[derive(Debug, Clone)]
pub struct VersionView {
    /// Its visibility when rendered; recomputed by [`quarantine::authorize`] on use.
    pub visibility: Visibility,
    /// The record, when one exists.
    pub record: Option<VersionRecord>,
    /// The integrity declared now.
    pub integrity: Option<Integrity>,
    /// Where the upstream serves the tarball.
    pub upstream_tarball: String,
}

/// Bytes of one document, ready to send, with its entity tag.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Uncompressed JSON.
    pub identity: Bytes,
    /// gzip (level 6).
    pub gzip: Bytes,
    /// brotli (quality 5).
    pub brotli: Bytes,
    /// Strong entity tag of the content (without quotes or encoding suffix).
    pub tag: String,
}

impl Encoded {
    fn new(identity: Vec<u8>) -> Encoded {
        let tag = hex::encode(&Sha256::digest(&identity)[..16]);
        let mut gzip =
            flate2::write::GzEncoder::new(Vec::with_capacity(identity.len() / 6), flate2::Compression::new(6));
        // Writing into a Vec cannot fail.
        let _ = gzip.write_all(&identity);
        let gzip = gzip.finish().unwrap_or_default();
        let mut brotli = Vec::with_capacity(identity.len() / 8);
        {
            let mut writer = brotli::CompressorWriter::new(&mut brotli, 64 << 10, 5, 22);
            let _ = writer.write_all(&identity);
        }
        Encoded { identity: identity.into(), gzip: gzip.into(), brotli: brotli.into(), tag }
    }

    fn weight(&self) -> usize {
        self.identity.len() + self.gzip.len() + self.brotli.len()
    }
}

/// A packument as clients see it, cached until something it depends on changes.
#[derive(Debug)]
pub struct Rendered {
    /// The full document.
    pub full: Encoded,
    /// The abbreviated document (`application/vnd.npm.install-v1+json`).
    pub abbreviated: Encoded,
    /// The recomputed dist-tags, as JSON.
    pub dist_tags: Bytes,
    /// What the tarball route needs, cached apart from the (much larger) documents.
    pub index: std::sync::Arc<PackageIndex>,
    /// The `npm-notice` text when versions are hidden.
    pub notice: Option<String>,
    /// When the rendering goes out of date by itself (a cooling period ends).
    pub valid_until: Option<DateTime<Utc>>,
}

/// Every version of a package with where its tarball lives: enough to serve tarballs
/// without the rendered documents.
#[derive(Debug)]
pub struct PackageIndex {
    /// Every version the upstream lists, visible or not.
    pub versions: HashMap<String, VersionView>,
    /// Tarball file name to version, for every version.
    pub tarballs: HashMap<String, String>,
}

impl PackageIndex {
    /// Approximate memory held, for the cache budget.
    pub fn weight(&self) -> usize {
        self.versions.len() * 320
    }
}

impl Rendered {
    /// Approximate memory held, for the cache budget.
    pub fn weight(&self) -> usize {
        self.full.weight() + self.abbreviated.weight() + self.dist_tags.len() + self.index.weight()
    }
}

/// What a rendering depends on besides the document and the records.
pub struct RenderContext<'a> {
    /// Airlock's public base URL, no trailing slash.
    pub public_base: &'a str,
    /// The upstream base URL, no trailing slash.
    pub upstream_base: &'a str,
    /// The quarantine policy.
    pub policy: &'a Policy,
    /// The key id of Airlock's registry signatures.
    pub airlock_key_id: &'a str,
    /// The time the rendering is for.
    pub now: DateTime<Utc>,
}

/// Builds the client view of a packument.
pub fn render(
    name: &PackageName,
    document: &Document,
    records: &HashMap<String, VersionRecord>,
    context: &RenderContext<'_>,
) -> Rendered {
    let empty = Map::new();
    let upstream_versions = document.get("versions").and_then(Value::as_object).unwrap_or(&empty);
    let mut visible_versions = Map::new();
    let mut abbreviated_versions = Map::new();
    let mut views = HashMap::with_capacity(upstream_versions.len());
    let mut tarballs = HashMap::with_capacity(upstream_versions.len());
    let mut valid_until: Option<DateTime<Utc>> = None;
    let mut hidden: Vec<(String, Visibility)> = Vec::new();

    for (version, manifest) in upstream_versions {
        let upstream_url = manifest.pointer("/dist/tarball").and_then(Value::as_str).unwrap_or("");
        let file_name = tarball_file_name(name, version, upstream_url);
        let record = records.get(version).cloned();
        let integrity = declared_integrity(manifest);
        let visibility = match (&record, &integrity) {
            (_, Err(reason)) => Visibility::Unusable { reason: reason.clone() },
            (None, Ok(_)) => Visibility::Unusable { reason: "Airlock has no record of this version yet".into() },
            (Some(record), Ok(integrity)) => {
                quarantine::decide(name, version, record, integrity, context.policy, context.now)
            }
        };
        if let Visibility::Cooling { until, .. } = visibility {
            valid_until = Some(valid_until.map_or(until, |current| current.min(until)));
        }
        if visibility.is_listed() {
            let mut manifest = manifest.clone();
            if let Some(dist) = manifest.get_mut("dist").and_then(Value::as_object_mut) {
                dist.insert(
                    "tarball".into(),
                    Value::String(format!("{}/{}/-/{file_name}", context.public_base, name.as_str())),
                );
                // Airlock's own registry signature, next to the upstream's (which stay).
                if let Some(signature) = record.as_ref().and_then(|record| record.airlock_signature.as_ref())
                    && visibility.is_installable()
                {
                    let entry = serde_json::json!({"keyid": context.airlock_key_id, "sig": signature});
                    match dist.get_mut("signatures").and_then(Value::as_array_mut) {
                        Some(signatures) => signatures.push(entry),
                        None => {
                            dist.insert("signatures".into(), Value::Array(vec![entry]));
                        }
                    }
                }
            }
            abbreviated_versions.insert(version.clone(), abbreviate(&manifest));
            visible_versions.insert(version.clone(), manifest);
        } else {
            hidden.push((version.clone(), visibility.clone()));
        }
        tarballs.insert(file_name.clone(), version.clone());
        views.insert(
            version.clone(),
            VersionView {
                visibility,
                record,
                integrity: integrity.ok(),
                upstream_tarball: upstream_tarball_url(name, &file_name, upstream_url, context.upstream_base),
            },
        );
    }

    let upstream_tags = document.get("dist-tags").and_then(Value::as_object).unwrap_or(&empty);
    let dist_tags = recompute_dist_tags(upstream_tags, visible_versions.keys().map(String::as_str));
    let time = filter_time(document.get("time"), &visible_versions);

    let mut full = Map::with_capacity(document.len());
    for (key, value) in document {
        let replaced = match key.as_str() {
            "versions" => Value::Object(visible_versions.clone()),
            "dist-tags" => Value::Object(dist_tags.clone()),
            "time" => time.clone().unwrap_or(Value::Null),
            _ => value.clone(),
        };
        full.insert(key.clone(), replaced);
    }
    if !full.contains_key("dist-tags") {
        full.insert("dist-tags".into(), Value::Object(dist_tags.clone()));
    }

    let mut abbreviated = Map::new();
    abbreviated.insert("name".into(), Value::String(name.as_str().to_owned()));
    if let Some(modified) =
        document.get("modified").or_else(|| document.get("time").and_then(|time| time.get("modified")))
    {
        abbreviated.insert("modified".into(), modified.clone());
    }
    abbreviated.insert("dist-tags".into(), Value::Object(dist_tags.clone()));
    abbreviated.insert("versions".into(), Value::Object(abbreviated_versions));
    if let Some(time) = time {
        abbreviated.insert("time".into(), time);
    }

    let notice = notice(name, &hidden);
    Rendered {
        full: Encoded::new(serde_json::to_vec(&full).unwrap_or_default()),
        abbreviated: Encoded::new(serde_json::to_vec(&abbreviated).unwrap_or_default()),
        dist_tags: serde_json::to_vec(&dist_tags).unwrap_or_default().into(),
        index: std::sync::Arc::new(PackageIndex { versions: views, tarballs }),
        notice,
        valid_until,
    }
}

/// The tarball's file name: the upstream's, when it is a safe name, else npm's
/// conventional `name-version.tgz`.
fn tarball_file_name(name: &PackageName, version: &str, upstream_url: &str) -> String {
    let last_segment = upstream_url.rsplit('/').next().unwrap_or("");
    match TarballFileName::parse(last_segment) {
        Ok(file_name) => file_name.as_str().to_owned(),
        Err(_) => name.tarball_file_name(version),
    }
}

/// Where to download a tarball: the upstream's URL when it is on the upstream's own
/// origin, else the conventional path on the upstream. An upstream packument therefore
/// cannot make Airlock fetch from an arbitrary host (an internal service, say).
fn upstream_tarball_url(name: &PackageName, file_name: &str, declared: &str, upstream_base: &str) -> String {
    let origin = |url: &str| -> Option<String> {
        let parsed = airlock_config::Url::parse(url).ok()?;
        Some(format!("{}://{}:{}", parsed.scheme(), parsed.host_str()?, parsed.port_or_known_default()?))
    };
    match (origin(declared), origin(upstream_base)) {
        (Some(declared_origin), Some(upstream_origin)) if declared_origin == upstream_origin => declared.to_owned(),
        _ => format!("{upstream_base}/{}/-/{file_name}", name.as_str()),
    }
}

/// The abbreviated form of one (already rewritten) version manifest.
fn abbreviate(manifest: &Value) -> Value {
    let mut abbreviated = Map::new();
    if let Some(object) = manifest.as_object() {
        for field in ABBREVIATED_VERSION_FIELDS {
            if let Some(value) = object.get(*field) {
                abbreviated.insert((*field).to_owned(), value.clone());
            }
        }
        if !abbreviated.contains_key("hasInstallScript") && has_install_script(object) {
            abbreviated.insert("hasInstallScript".into(), Value::Bool(true));
        }
    }
    Value::Object(abbreviated)
}

fn has_install_script(manifest: &Map<String, Value>) -> bool {
    let scripts = manifest.get("scripts").and_then(Value::as_object);
    scripts.is_some_and(|scripts| ["preinstall", "install", "postinstall"].iter().any(|key| scripts.contains_key(*key)))
        || manifest.get("gypfile").and_then(Value::as_bool).unwrap_or(false)
}

/// Keeps `created`, `modified` and the times of visible versions.
fn filter_time(time: Option<&Value>, visible: &Map<String, Value>) -> Option<Value> {
    let time = time?.as_object()?;
    let filtered: Map<String, Value> = time
        .iter()
        .filter(|(key, _)| matches!(key.as_str(), "created" | "modified") || visible.contains_key(*key))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    Some(Value::Object(filtered))
}

/// Points every dist-tag at a visible version: a tag on a hidden version moves to the
/// newest visible version not greater than it (stable versions only, unless the tag
/// pointed at a prerelease); a tag with no such version is dropped.
pub fn recompute_dist_tags<'a>(
    tags: &Map<String, Value>,
    visible: impl Iterator<Item = &'a str>,
) -> Map<String, Value> {
    let visible: Vec<(&str, Option<semver::Version>)> =
        visible.map(|version| (version, semver::Version::parse(version).ok())).collect();
    let mut result = Map::new();
    for (tag, target) in tags {
        let Some(target) = target.as_str() else { continue };
        if visible.iter().any(|(version, _)| *version == target) {
            result.insert(tag.clone(), Value::String(target.to_owned()));
            continue;
        }
        let Ok(target_version) = semver::Version::parse(target) else { continue };
        let replacement = visible
            .iter()
            .filter_map(|(text, parsed)| parsed.as_ref().map(|parsed| (*text, parsed)))
            .filter(|(_, parsed)| {
                **parsed <= target_version && (parsed.pre.is_empty() || !target_version.pre.is_empty())
            })
            .max_by(|left, right| left.1.cmp(right.1));
        if let Some((text, _)) = replacement {
            result.insert(tag.clone(), Value::String(text.to_owned()));
        }
    }
    result
}

fn notice(name: &PackageName, hidden: &[(String, Visibility)]) -> Option<String> {
    if hidden.is_empty() {
        return None;
    }
    let newest = hidden
        .iter()
        .filter_map(|(version, _)| semver::Version::parse(version).ok().map(|parsed| (parsed, version)))
        .max()
        .map(|(_, version)| version.as_str())
        .unwrap_or(hidden[0].0.as_str());
    let count = hidden.len();
    let (noun, verb) = if count == 1 { ("version", "is") } else { ("versions", "are") };
    Some(format!(
        "[airlock] {count} {noun} of {name} {verb} in quarantine and not listed (newest: {newest}); install an older version or ask an Airlock admin"
    ))
}

#[cfg(test)]
mod tests;
