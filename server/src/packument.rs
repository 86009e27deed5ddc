//! Upstream packuments in, client packuments out, without a tree of the whole document.
//!
//! [`parse_upstream`] borrows the upstream bytes: top-level fields, versions and times
//! stay raw JSON slices ([`RawValue`]), so a 20 MB packument costs a few vectors of
//! pointers instead of a DOM ten times its size. It drops versions whose string is not a
//! valid [`Version`], and both [`version_facts`] and [`render`] drop versions that claim
//! another version's tarball file name, so neither is recorded, listed or served.
//! [`version_facts`] extracts what Airlock
//! records about each version; [`render`] copies the raw manifest of every listed
//! version into the client documents (full and abbreviated), rewriting only `dist`
//! (tarball URL, Airlock's signature), moves dist-tags off hidden versions, and passes
//! every other field through byte for byte. Compression happens on first demand.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write as _;
use std::ops::Range;
use std::sync::OnceLock;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize as _;
use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;
use sha2::{Digest as _, Sha256};

use crate::npm::{Integrity, PackageName, TarballFileName, Version};
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
    // Who published it, with `trustedPublisher` for versions published through trusted
    // publishing: pnpm's `trustPolicy: no-downgrade` reads it from this document.
    "_npmUser",
];

/// Most versions one packument may list. npm's largest packages list a few tens of
/// thousands; a document beyond this is refused rather than rendered.
pub const MAX_VERSIONS: usize = 100_000;

/// Deepest nesting of arrays and objects accepted in a packument. Real ones stay under
/// ten levels; a deeper one is hostile or broken and is refused before any parsing.
pub const MAX_DEPTH: usize = 256;

/// True when `text` (valid or not) nests arrays and objects deeper than `limit`. One
/// pass over the bytes, aware of strings and escapes.
fn nests_deeper_than(text: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// One JSON object's members in document order, borrowed from the raw bytes.
///
/// Invariant: keys are unique. A key that appears twice keeps its first position and
/// its last value, as serde_json's `preserve_order` map (and `JSON.parse`) would, so
/// what Airlock records and what it renders always come from the same member.
#[derive(Debug, Default)]
pub struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Members<'a> {
    /// The members of `raw`, or `None` when it is not an object.
    fn of(raw: &'a RawValue) -> Option<Members<'a>> {
        let text = raw.get();
        if !text.starts_with('{') {
            return None;
        }
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let members = deserializer.deserialize_map(MembersVisitor).ok()?;
        Some(Members(deduplicate(members)))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(candidate, _)| candidate == key).map(|(_, value)| *value)
    }

    /// The members in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &'a RawValue)> + '_ {
        self.0.iter().map(|(key, value)| (key.as_ref(), *value))
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the object has no members.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Keeps the first position and the last value of every key.
fn deduplicate<'a>(members: Vec<(Cow<'a, str>, &'a RawValue)>) -> Vec<(Cow<'a, str>, &'a RawValue)> {
    let mut positions: HashMap<&str, usize> = HashMap::with_capacity(members.len());
    let mut duplicates = false;
    for (index, (key, _)) in members.iter().enumerate() {
        if positions.insert(key.as_ref(), index).is_some() {
            duplicates = true;
        }
    }
    if !duplicates {
        return members;
    }
    // `positions` now holds the last index of every key.
    let last: HashMap<String, usize> = positions.into_iter().map(|(key, index)| (key.to_owned(), index)).collect();
    let values: Vec<&'a RawValue> = members.iter().map(|(_, value)| *value).collect();
    let mut seen = std::collections::HashSet::with_capacity(last.len());
    members
        .into_iter()
        .filter_map(|(key, _)| {
            let value = values[last[key.as_ref()]];
            seen.insert(key.clone()).then_some((key, value))
        })
        .collect()
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            members.push((key.0, value));
        }
        Ok(members)
    }
}

/// A JSON string, borrowed when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// The string a raw value holds, or `None` when it is not a string.
fn raw_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    Text::deserialize(&mut serde_json::Deserializer::from_str(text)).ok().map(|text| text.0)
}

/// A version the upstream lists that Airlock will not record, list or serve, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedVersion {
    /// The version string as the upstream wrote it (untrusted: quote it).
    pub version: String,
    /// Why, in one sentence quoting the input.
    pub reason: String,
}

/// A parsed upstream packument, borrowing the upstream's bytes.
#[derive(Debug)]
pub struct Document<'a> {
    /// The top-level members in order (with `versions`, `dist-tags` and `time` raw).
    members: Members<'a>,
    /// `versions`, in order. Invariant: every key is a valid [`Version`].
    versions: Members<'a>,
    /// The members of `versions` dropped because their key is not a valid version.
    invalid_versions: Vec<RefusedVersion>,
    /// `dist-tags` (empty when absent or not an object).
    dist_tags: Members<'a>,
    /// `time`, when it is an object.
    time: Option<Members<'a>>,
}

impl<'a> Document<'a> {
    /// The raw manifest of one version.
    pub fn manifest(&self, version: &str) -> Option<&'a RawValue> {
        self.versions.get(version)
    }

    /// `time[version]`, if present and parseable.
    pub fn published(&self, version: &str) -> Option<DateTime<Utc>> {
        parse_time(self.time.as_ref()?.get(version)?)
    }

    /// Every `time` entry that parses, versions and `created`/`modified` alike.
    pub fn times(&self) -> impl Iterator<Item = (&str, DateTime<Utc>)> + '_ {
        self.time.iter().flat_map(Members::iter).filter_map(|(key, raw)| Some((key, parse_time(raw)?)))
    }

    /// The versions the dist-tags point at.
    pub fn tagged_versions(&self) -> Vec<String> {
        self.dist_tags.iter().filter_map(|(_, target)| raw_str(target).map(Cow::into_owned)).collect()
    }
}

fn parse_time(raw: &RawValue) -> Option<DateTime<Utc>> {
    let text = raw_str(raw)?;
    DateTime::parse_from_rfc3339(&text).ok().map(|time| time.with_timezone(&Utc))
}

/// Parses and sanity-checks an upstream packument. An upstream that answers for
/// another package, or with something that is not a packument, is refused.
pub fn parse_upstream<'a>(name: &PackageName, body: &'a [u8]) -> Result<Document<'a>, String> {
    let text =
        std::str::from_utf8(body).map_err(|error| format!("the packument of {name} is not valid UTF-8: {error}"))?;
    if nests_deeper_than(body, MAX_DEPTH) {
        return Err(format!("the packument of {name} nests deeper than Airlock's limit of {MAX_DEPTH} levels"));
    }
    let not_json = |error: serde_json::Error| format!("the packument of {name} is not valid JSON: {error}");
    let whole: &RawValue = serde_json::from_str(text).map_err(not_json)?;
    let members = Members::of(whole).ok_or_else(|| format!("the packument of {name} is not a JSON object"))?;
    match members.get("name").map(raw_str) {
        Some(Some(declared)) if declared == name.as_str() => {}
        Some(Some(declared)) => {
            return Err(format!("the upstream answered for {} when asked for {name}", crate::npm::quote(&declared)));
        }
        _ => return Err(format!("the packument of {name} has no name")),
    }
    let mut versions = match members.get("versions") {
        None => Members::default(),
        Some(raw) => Members::of(raw)
            .ok_or_else(|| format!("the packument of {name} has a `versions` field that is not an object"))?,
    };
    if versions.len() > MAX_VERSIONS {
        return Err(format!(
            "the packument of {name} lists {} versions, more than Airlock's limit of {MAX_VERSIONS}",
            versions.len()
        ));
    }
    // A version string becomes a store key, a URL segment and HTML; one that npm's
    // semver rules refuse is dropped here, before anything reads it.
    let mut invalid_versions = Vec::new();
    versions.0.retain(|(version, _)| match Version::parse(version) {
        Ok(_) => true,
        Err(error) => {
            invalid_versions.push(RefusedVersion { version: version.clone().into_owned(), reason: error.0 });
            false
        }
    });
    let dist_tags = members.get("dist-tags").and_then(Members::of).unwrap_or_default();
    let time = members.get("time").and_then(Members::of);
    Ok(Document { members, versions, invalid_versions, dist_tags, time })
}

/// What the upstream says about one version, as Airlock records it at first sight.
#[derive(Debug, Clone)]
pub struct VersionFacts {
    /// The version.
    pub version: Version,
    /// `time[version]`, if present and parseable.
    pub claimed_published: Option<DateTime<Utc>>,
    /// `dist.integrity` (or `shasum`), or why it is unusable.
    pub integrity: Result<Integrity, String>,
    /// The tarball's file name, as clients will request it from Airlock.
    pub tarball_file_name: String,
    /// Where to download the tarball upstream (see [`upstream_tarball_url`]).
    pub upstream_tarball: String,
}

/// The `dist` fields Airlock reads from one manifest.
struct Dist<'a> {
    tarball: Option<Cow<'a, str>>,
    integrity: Result<Integrity, String>,
}

fn read_dist<'a>(manifest: &Members<'a>) -> Dist<'a> {
    let Some(dist) = manifest.get("dist").and_then(Members::of) else {
        return Dist { tarball: None, integrity: Err("the version has no dist".into()) };
    };
    let integrity_text = dist.get("integrity").and_then(raw_str);
    let shasum = dist.get("shasum").and_then(raw_str);
    Dist {
        tarball: dist.get("tarball").and_then(raw_str),
        integrity: Integrity::from_dist(integrity_text.as_deref(), shasum.as_deref()).map_err(|error| error.0),
    }
}

/// One version of a document with its `dist` read and its tarball file name.
struct Claim<'d> {
    version: &'d str,
    raw: &'d RawValue,
    dist: Dist<'d>,
    file_name: String,
}

/// Reads every version's `dist` (one pass over each manifest's top level) and refuses
/// versions that claim another version's tarball file name: a file name must stand for
/// one version, or a request for it could be answered with (or refused for) another
/// version's bytes. The file name stays with the version it is npm's conventional name
/// of (`name-1.0.0.tgz` with 1.0.0), whatever the order in the document, so a new
/// version cannot take over a released one's tarball; when no claimant is its
/// conventional owner, every claimant is refused, since any choice could be wrong.
fn claims<'d>(name: &PackageName, document: &'d Document<'_>) -> (Vec<Claim<'d>>, Vec<RefusedVersion>) {
    let mut claims: Vec<Claim<'d>> = document
        .versions
        .iter()
        .map(|(version, raw)| {
            let dist = read_dist(&Members::of(raw).unwrap_or_default());
            let file_name = tarball_file_name(name, version, dist.tarball.as_deref().unwrap_or(""));
            Claim { version, raw, dist, file_name }
        })
        .collect();
    let mut claimants: HashMap<&str, Vec<&str>> = HashMap::with_capacity(claims.len());
    for claim in &claims {
        claimants.entry(claim.file_name.as_str()).or_default().push(claim.version);
    }
    let mut refused_versions: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut refused = Vec::new();
    for (file_name, versions) in claimants.iter().filter(|(_, versions)| versions.len() > 1) {
        let owner = versions.iter().find(|version| name.tarball_file_name(version) == *file_name);
        for version in versions.iter().filter(|version| Some(*version) != owner) {
            let others: Vec<String> =
                versions.iter().filter(|other| *other != version).map(|other| crate::npm::quote(other)).collect();
            let reason = match owner {
                Some(owner) => format!(
                    "version {} declares the tarball {}, which belongs to version {owner}",
                    crate::npm::quote(version),
                    crate::npm::quote(file_name)
                ),
                None => format!(
                    "version {} declares the tarball {}, which is also declared by {}",
                    crate::npm::quote(version),
                    crate::npm::quote(file_name),
                    others.join(", ")
                ),
            };
            refused_versions.insert((*version).to_owned());
            refused.push(RefusedVersion { version: (*version).to_owned(), reason });
        }
    }
    drop(claimants);
    claims.retain(|claim| !refused_versions.contains(claim.version));
    // In document order, so the log reads like the packument.
    let order: HashMap<&str, usize> =
        document.versions.iter().enumerate().map(|(index, (version, _))| (version, index)).collect();
    refused.sort_by_key(|refused| order.get(refused.version.as_str()).copied().unwrap_or(usize::MAX));
    (claims, refused)
}

/// What [`version_facts`] finds: the versions Airlock may record, and the ones it
/// refuses (to be logged once, where the upstream document is fetched).
#[derive(Debug)]
pub struct Facts {
    /// Versions to record, in document order.
    pub versions: Vec<VersionFacts>,
    /// Versions refused: invalid version strings, then duplicate tarball file names.
    pub refused: Vec<RefusedVersion>,
}

/// Extracts the per-version facts from a parsed packument: one pass over each
/// manifest's top level and its `dist`, skipping everything else unread.
pub fn version_facts(name: &PackageName, document: &Document<'_>, upstream_base: &str) -> Facts {
    let (claims, duplicates) = claims(name, document);
    let versions = claims
        .into_iter()
        .filter_map(|claim| {
            let declared_url = claim.dist.tarball.as_deref().unwrap_or("");
            Some(VersionFacts {
                // Invariant of `Document::versions`; never `None`.
                version: Version::parse(claim.version).ok()?,
                claimed_published: document.published(claim.version),
                upstream_tarball: upstream_tarball_url(name, &claim.file_name, declared_url, upstream_base),
                tarball_file_name: claim.file_name,
                integrity: claim.dist.integrity,
            })
        })
        .collect();
    let mut refused = document.invalid_versions.clone();
    refused.extend(duplicates);
    Facts { versions, refused }
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

/// A compressed form of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (level 6).
    Gzip,
    /// brotli (quality 5).
    Brotli,
}

/// Bytes of one document, ready to send, with its entity tag. The compressed forms are
/// made on first demand (most clients ask for one encoding of one form only) and kept.
#[derive(Debug)]
pub struct Encoded {
    /// Uncompressed JSON.
    pub identity: Bytes,
    /// Strong entity tag of the content (without quotes or encoding suffix).
    pub tag: String,
    gzip: OnceLock<Bytes>,
    brotli: OnceLock<Bytes>,
}

impl Encoded {
    fn new(identity: Vec<u8>) -> Encoded {
        let tag = hex::encode(&Sha256::digest(&identity)[..16]);
        Encoded { identity: identity.into(), tag, gzip: OnceLock::new(), brotli: OnceLock::new() }
    }

    /// The compressed bytes if they were made already (cheap; never compresses).
    pub fn compressed_if_ready(&self, compression: Compression) -> Option<Bytes> {
        match compression {
            Compression::Gzip => self.gzip.get().cloned(),
            Compression::Brotli => self.brotli.get().cloned(),
        }
    }

    /// The compressed bytes, compressing now if needed. CPU-bound for large documents:
    /// call from a blocking thread. Concurrent callers wait for one compression.
    pub fn compressed(&self, compression: Compression) -> Bytes {
        match compression {
            Compression::Gzip => self.gzip.get_or_init(|| gzip(&self.identity)).clone(),
            Compression::Brotli => self.brotli.get_or_init(|| brotli(&self.identity)).clone(),
        }
    }

    /// The memory budgeted for this document: the identity bytes and room for its
    /// compressed forms (JSON compresses at least 3:1 at these levels).
    fn weight(&self) -> usize {
        self.identity.len() + self.identity.len() / 3
    }
}

fn gzip(identity: &[u8]) -> Bytes {
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(identity.len() / 6), flate2::Compression::new(6));
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(identity);
    encoder.finish().unwrap_or_default().into()
}

fn brotli(identity: &[u8]) -> Bytes {
    let mut compressed = Vec::with_capacity(identity.len() / 8);
    {
        let mut writer = brotli::CompressorWriter::new(&mut compressed, 64 << 10, 5, 22);
        let _ = writer.write_all(identity);
    }
    compressed.into()
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
    /// Where each listed version's manifest sits in `full.identity`, so a version
    /// request is a slice, not a parse.
    pub manifests: HashMap<String, Range<usize>>,
    /// What the pipeline needs about every version.
    pub index: std::sync::Arc<PackageIndex>,
    /// The `npm-notice` text when versions are hidden.
    pub notice: Option<String>,
    /// When the rendering goes out of date by itself (a cooling period ends).
    pub valid_until: Option<DateTime<Utc>>,
}

/// Every version of a package with its visibility and where its tarball lives.
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
        self.full.weight()
            + self.abbreviated.weight()
            + self.dist_tags.len()
            + self.manifests.len() * 48
            + self.index.weight()
    }

    /// A listed version's manifest, as it appears in the full document.
    pub fn manifest(&self, version: &str) -> Option<Bytes> {
        let range = self.manifests.get(version)?;
        Some(self.full.identity.slice(range.clone()))
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

/// Appends `"key":` to a JSON buffer.
fn write_key(out: &mut Vec<u8>, key: &str) {
    // Serialising a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
}

/// Appends a comma unless this is the first member of an object.
fn separate(out: &mut Vec<u8>, first: &mut bool) {
    if !std::mem::take(first) {
        out.push(b',');
    }
}

/// A listed version, decided in the first pass and written in the second.
struct Listed<'d> {
    version: &'d str,
    raw: &'d RawValue,
    file_name: String,
    // Airlock's registry signature, for a released version.
    signature: Option<String>,
}

/// Builds the client view of a packument in two passes over the versions: decide each
/// version (reading only its `dist`), then write both documents straight into their
/// buffers, so a render holds the raw document and its output, nothing in between.
pub fn render(
    name: &PackageName,
    document: &Document<'_>,
    records: &HashMap<String, VersionRecord>,
    context: &RenderContext<'_>,
) -> Rendered {
    let version_count = document.versions.len();
    let mut views = HashMap::with_capacity(version_count);
    let mut tarballs = HashMap::with_capacity(version_count);
    let mut valid_until: Option<DateTime<Utc>> = None;
    let mut hidden: Vec<(String, Visibility)> = Vec::new();
    let mut listed: Vec<Listed<'_>> = Vec::new();

    // Refused versions were logged when the document was fetched.
    let (claims, _refused) = claims(name, document);
    for Claim { version, raw, dist, file_name } in claims {
        let declared_url = dist.tarball.as_deref().unwrap_or("");
        let record = records.get(version).cloned();
        let visibility = match (&record, &dist.integrity) {
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
            let signature = record
                .as_ref()
                .and_then(|record| record.airlock_signature.clone())
                .filter(|_| visibility.is_installable());
            listed.push(Listed { version, raw, file_name: file_name.clone(), signature });
        } else {
            hidden.push((version.to_owned(), visibility.clone()));
        }
        views.insert(
            version.to_owned(),
            VersionView {
                visibility,
                record,
                integrity: dist.integrity.ok(),
                upstream_tarball: upstream_tarball_url(name, &file_name, declared_url, context.upstream_base),
            },
        );
        tarballs.insert(file_name, version.to_owned());
    }

    let upstream_tags: Vec<(&str, Cow<'_, str>)> =
        document.dist_tags.iter().filter_map(|(tag, target)| Some((tag, raw_str(target)?))).collect();
    let dist_tags = recompute_dist_tags(
        upstream_tags.iter().map(|(tag, target)| (*tag, target.as_ref())),
        listed.iter().map(|listed| listed.version),
    );
    let dist_tags_json = dist_tags_json(&dist_tags);
    let listed_names: std::collections::HashSet<&str> = listed.iter().map(|listed| listed.version).collect();
    let time = document.time.as_ref().map(|time| filtered_time(time, &listed_names));

    // The full document: every top-level member in the upstream's order, with
    // `versions`, `dist-tags` and `time` replaced.
    let raw_size: usize = listed.iter().map(|listed| listed.raw.get().len()).sum();
    let mut full = Vec::with_capacity(raw_size + raw_size / 16 + 4096);
    let mut abbreviated_versions = Vec::with_capacity(raw_size / 4);
    let mut manifests = HashMap::with_capacity(listed.len());
    let mut dist_buffer: Vec<u8> = Vec::new();
    full.push(b'{');
    let mut first = true;
    for (key, value) in document.members.iter() {
        separate(&mut full, &mut first);
        write_key(&mut full, key);
        match key {
            "versions" => {
                full.push(b'{');
                for listed in &listed {
                    separate_members(&mut full, listed.version, manifests.is_empty());
                    let start = full.len();
                    write_listed(&mut full, &mut abbreviated_versions, &mut dist_buffer, name, listed, context);
                    manifests.insert(listed.version.to_owned(), start..full.len());
                }
                full.push(b'}');
            }
            "dist-tags" => full.extend_from_slice(&dist_tags_json),
            "time" => full.extend_from_slice(time.as_deref().unwrap_or(b"null")),
            _ => full.extend_from_slice(value.get().as_bytes()),
        }
    }
    if document.members.get("dist-tags").is_none() {
        separate(&mut full, &mut first);
        write_key(&mut full, "dist-tags");
        full.extend_from_slice(&dist_tags_json);
    }
    full.push(b'}');

    let mut abbreviated = Vec::with_capacity(abbreviated_versions.len() + 1024);
    abbreviated.push(b'{');
    write_key(&mut abbreviated, "name");
    let _ = serde_json::to_writer(&mut abbreviated, name.as_str());
    let modified =
        document.members.get("modified").or_else(|| document.time.as_ref().and_then(|time| time.get("modified")));
    if let Some(modified) = modified {
        abbreviated.push(b',');
        write_key(&mut abbreviated, "modified");
        abbreviated.extend_from_slice(modified.get().as_bytes());
    }
    abbreviated.push(b',');
    write_key(&mut abbreviated, "dist-tags");
    abbreviated.extend_from_slice(&dist_tags_json);
    abbreviated.push(b',');
    write_key(&mut abbreviated, "versions");
    abbreviated.push(b'{');
    abbreviated.extend_from_slice(&abbreviated_versions);
    drop(abbreviated_versions);
    abbreviated.push(b'}');
    if let Some(time) = &time {
        abbreviated.push(b',');
        write_key(&mut abbreviated, "time");
        abbreviated.extend_from_slice(time);
    }
    abbreviated.push(b'}');

    let notice = notice(name, &hidden);
    Rendered {
        full: Encoded::new(full),
        abbreviated: Encoded::new(abbreviated),
        dist_tags: dist_tags_json.into(),
        manifests,
        index: std::sync::Arc::new(PackageIndex { versions: views, tarballs }),
        notice,
        valid_until,
    }
}

/// Writes a listed version's full manifest into `full` (without its key) and its
/// `"version":{abbreviated}` member into `abbreviated_versions`.
fn write_listed(
    full: &mut Vec<u8>,
    abbreviated_versions: &mut Vec<u8>,
    dist_buffer: &mut Vec<u8>,
    name: &PackageName,
    listed: &Listed<'_>,
    context: &RenderContext<'_>,
) {
    let manifest = Members::of(listed.raw);
    let empty = Members::default();
    let fields = manifest.as_ref().unwrap_or(&empty);
    let tarball_url = format!("{}/{}/-/{}", context.public_base, name.as_str(), listed.file_name);
    dist_buffer.clear();
    let rewritten_dist = fields.get("dist").and_then(|raw_dist| {
        rewrite_dist(dist_buffer, raw_dist, &tarball_url, listed.signature.as_deref(), context.airlock_key_id)
    });
    let rewritten_dist = rewritten_dist.map(|()| dist_buffer.as_slice());
    match &manifest {
        Some(fields) => write_manifest(full, fields, rewritten_dist),
        // Not an object: passed through as it is, like any other field.
        None => full.extend_from_slice(listed.raw.get().as_bytes()),
    }
    if !abbreviated_versions.is_empty() {
        abbreviated_versions.push(b',');
    }
    write_key(abbreviated_versions, listed.version);
    write_abbreviated(abbreviated_versions, fields, rewritten_dist);
}

/// Writes the separator (unless `first`) and the key of a member of `versions`.
fn separate_members(out: &mut Vec<u8>, version: &str, first: bool) {
    if !first {
        out.push(b',');
    }
    write_key(out, version);
}

/// Writes `dist` with Airlock's tarball URL and, for a released version, Airlock's
/// registry signature after the upstream's (which stay). `None` when `dist` is not an
/// object (it is then passed through unchanged).
fn rewrite_dist(
    out: &mut Vec<u8>,
    raw_dist: &RawValue,
    tarball_url: &str,
    signature: Option<&str>,
    airlock_key_id: &str,
) -> Option<()> {
    let dist = Members::of(raw_dist)?;
    let airlock_signature = signature.map(|signature| {
        serde_json::to_string(&serde_json::json!({"keyid": airlock_key_id, "sig": signature})).unwrap_or_default()
    });
    out.push(b'{');
    let mut first = true;
    let mut wrote_tarball = false;
    let mut wrote_signatures = false;
    for (key, value) in dist.iter() {
        separate(out, &mut first);
        write_key(out, key);
        match key {
            "tarball" => {
                let _ = serde_json::to_writer(&mut *out, tarball_url);
                wrote_tarball = true;
            }
            "signatures" => match &airlock_signature {
                Some(ours) => {
                    // Not an array: replaced by one holding Airlock's signature only.
                    out.push(b'[');
                    for entry in signature_entries(value).unwrap_or_default() {
                        out.extend_from_slice(entry.get().as_bytes());
                        out.push(b',');
                    }
                    out.extend_from_slice(ours.as_bytes());
                    out.push(b']');
                    wrote_signatures = true;
                }
                None => out.extend_from_slice(value.get().as_bytes()),
            },
            _ => out.extend_from_slice(value.get().as_bytes()),
        }
    }
    if !wrote_tarball {
        separate(out, &mut first);
        write_key(out, "tarball");
        let _ = serde_json::to_writer(&mut *out, tarball_url);
    }
    if let (Some(ours), false) = (&airlock_signature, wrote_signatures) {
        separate(out, &mut first);
        write_key(out, "signatures");
        out.push(b'[');
        out.extend_from_slice(ours.as_bytes());
        out.push(b']');
    }
    out.push(b'}');
    Some(())
}

/// The entries of a `signatures` array, or `None` when it is not an array.
fn signature_entries(raw: &RawValue) -> Option<Vec<&RawValue>> {
    serde_json::from_str(raw.get()).ok()
}

/// Writes one manifest with its `dist` replaced.
fn write_manifest(out: &mut Vec<u8>, fields: &Members<'_>, rewritten_dist: Option<&[u8]>) {
    out.push(b'{');
    let mut first = true;
    for (key, value) in fields.iter() {
        separate(out, &mut first);
        write_key(out, key);
        match (key, rewritten_dist) {
            ("dist", Some(dist)) => out.extend_from_slice(dist),
            _ => out.extend_from_slice(value.get().as_bytes()),
        }
    }
    out.push(b'}');
}

/// Writes the abbreviated form of one manifest (its `dist` already rewritten).
fn write_abbreviated(out: &mut Vec<u8>, fields: &Members<'_>, rewritten_dist: Option<&[u8]>) {
    out.push(b'{');
    let mut first = true;
    for field in ABBREVIATED_VERSION_FIELDS {
        let Some(value) = fields.get(field) else { continue };
        separate(out, &mut first);
        write_key(out, field);
        match (*field, rewritten_dist) {
            ("dist", Some(dist)) => out.extend_from_slice(dist),
            _ => out.extend_from_slice(value.get().as_bytes()),
        }
    }
    if fields.get("hasInstallScript").is_none() && has_install_script(fields) {
        separate(out, &mut first);
        out.extend_from_slice(br#""hasInstallScript":true"#);
    }
    out.push(b'}');
}

fn has_install_script(manifest: &Members<'_>) -> bool {
    let scripts = manifest.get("scripts").and_then(Members::of);
    scripts.is_some_and(|scripts| ["preinstall", "install", "postinstall"].iter().any(|key| scripts.get(key).is_some()))
        || manifest.get("gypfile").is_some_and(|gypfile| gypfile.get() == "true")
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

/// `time` with `created`, `modified` and the times of listed versions, as JSON.
fn filtered_time(time: &Members<'_>, listed: &std::collections::HashSet<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(listed.len() * 40 + 64);
    out.push(b'{');
    let mut first = true;
    for (key, value) in time.iter() {
        if matches!(key, "created" | "modified") || listed.contains(key) {
            separate(&mut out, &mut first);
            write_key(&mut out, key);
            out.extend_from_slice(value.get().as_bytes());
        }
    }
    out.push(b'}');
    out
}

fn dist_tags_json(tags: &[(String, String)]) -> Vec<u8> {
    let mut out = b"{".to_vec();
    let mut first = true;
    for (tag, version) in tags {
        separate(&mut out, &mut first);
        write_key(&mut out, tag);
        let _ = serde_json::to_writer(&mut out, version);
    }
    out.push(b'}');
    out
}

/// Points every dist-tag at a visible version: a tag on a hidden version moves to the
/// newest visible version not greater than it (stable versions only, unless the tag
/// pointed at a prerelease); a tag with no such version is dropped.
pub fn recompute_dist_tags<'a>(
    tags: impl Iterator<Item = (&'a str, &'a str)>,
    visible: impl Iterator<Item = &'a str>,
) -> Vec<(String, String)> {
    let visible: Vec<(&str, Option<semver::Version>)> =
        visible.map(|version| (version, semver::Version::parse(version).ok())).collect();
    let visible_names: std::collections::HashSet<&str> = visible.iter().map(|(version, _)| *version).collect();
    let mut result = Vec::new();
    for (tag, target) in tags {
        if visible_names.contains(target) {
            result.push((tag.to_owned(), target.to_owned()));
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
            result.push((tag.to_owned(), text.to_owned()));
        }
    }
    result
}

/// Longest `npm-notice` sent: npm prints it on one line, and a held version's reason is
/// on the status page anyway.
const MAX_NOTICE_CHARS: usize = 300;

/// The `npm-notice` for a packument with hidden versions: the newest one's own sentence
/// (when it can be installed, or why not), since a developer who asks for
/// `pkg@<that version>` otherwise gets only npm's "no matching version".
fn notice(name: &PackageName, hidden: &[(String, Visibility)]) -> Option<String> {
    let (newest, visibility) = hidden
        .iter()
        .filter_map(|(version, visibility)| {
            semver::Version::parse(version).ok().map(|parsed| (parsed, version, visibility))
        })
        .max_by(|left, right| left.0.cmp(&right.0))
        .map(|(_, version, visibility)| (version.as_str(), visibility))
        .or_else(|| hidden.first().map(|(version, visibility)| (version.as_str(), visibility)))?;
    let others = hidden.len() - 1;
    let mut text = format!("[airlock] {}", visibility.explain(name, newest));
    match others {
        0 => {}
        1 => text.push_str(&format!("; 1 other version of {name} is in quarantine too")),
        _ => text.push_str(&format!("; {others} other versions of {name} are in quarantine too")),
    }
    // A header value is visible ASCII; a reason may quote anything.
    let mut notice: String = text
        .chars()
        .map(|character| if character.is_ascii_graphic() || character == ' ' { character } else { '?' })
        .collect();
    if notice.len() > MAX_NOTICE_CHARS {
        notice.truncate(MAX_NOTICE_CHARS - 3);
        notice.push_str("...");
    }
    Some(notice)
}

#[cfg(test)]
mod tests;
