//! Dependency-aware holds: a version whose dependencies, resolved the way npm would
//! resolve them through Airlock now, include a held, rejected or known-malicious
//! version is held with that reason, so an `event-stream`-style release (a clean
//! parent whose new dependency carries the payload) never reaches a client through its
//! clean-looking parent.
//!
//! The server gathers the facts (the dependencies' packuments as Airlock lists them,
//! the known-malware feed); the resolution and the findings are pure functions here,
//! unit-tested without I/O. Only `dependencies` and `optionalDependencies` count: npm
//! installs neither `devDependencies` nor (since they are the consumer's choice)
//! `peerDependencies` on behalf of the package.
//!
//! Only direct dependencies are resolved: deeper levels count through each dependency's
//! own decision. A version Airlock lists before checking it (an established version,
//! checked at its first download) resolves as listed; its check still runs before any
//! of its bytes are served.
//!
//! A parent is resolved when it is checked and again when its cooling period ends
//! (`Pipeline::settle`), which catches a new dependency published with it and held
//! while both cooled. A dependency held or rejected after that does not reopen the
//! parent by itself (an admin recheck does); the dependency is not served either way.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use airlock_scanner::{Finding, Indicators, Location, MaliciousVersions, Severity};
use futures_util::StreamExt as _;

use super::Visibility;
use crate::error::AppError;
use crate::mirror::{CachedPackument, Mirror};
use crate::npm::{PackageName, quote};

/// Most dependency entries (both fields together) resolved per version. npm packages
/// rarely declare more than a hundred; a longer list is itself a finding (it is the
/// shape of dependency spam and of manifests built to exhaust checks), and only the
/// first by name are resolved.
pub const MAX_DEPENDENCY_ENTRIES: usize = 1_000;

/// Most dependency packuments one check fetches. Each is a packument npm itself would
/// fetch at install; the bound keeps one manifest from turning a check into hundreds of
/// upstream requests. Dependencies past it are not resolved, which is a finding.
pub const MAX_PACKUMENTS_PER_CHECK: usize = 250;

/// Dependency packuments fetched at once by one check.
const FETCH_CONCURRENCY: usize = 8;

/// Longest dependency spec read; npm's own ranges are far shorter.
const MAX_SPEC_CHARS: usize = 1_024;

/// Longest quoted reason of a dependency's hold inside the parent's finding.
const MAX_REASON_CHARS: usize = 300;

/// A dependency only held or rejected versions satisfy: high (holds by default), medium
/// for an optional one.
pub const RULE_HELD: &str = "dependency-held";
/// A dependency the known-malware feed lists: holds at any sensible policy.
pub const RULE_KNOWN_MALWARE: &str = "dependency-known-malware";
/// A dependency Airlock cannot resolve (git, URL, file, `workspace:`, invalid spec).
pub const RULE_UNRESOLVABLE: &str = "dependency-unresolvable";
/// A dependency that does not exist upstream, or no version of which satisfies the spec.
pub const RULE_MISSING: &str = "dependency-missing";
/// A dependency whose packument could not be read, or that was past the fetch bound.
pub const RULE_UNCHECKED: &str = "dependency-unchecked";
/// More dependency entries than [`MAX_DEPENDENCY_ENTRIES`].
pub const RULE_TOO_MANY: &str = "dependencies-too-many";
/// A dependency only versions still cooling or being checked satisfy (info).
pub const RULE_PENDING: &str = "dependency-in-quarantine";

/// Every rule this check reports, so a later resolution can replace its findings.
const RULES: [&str; 7] =
    [RULE_HELD, RULE_KNOWN_MALWARE, RULE_UNRESOLVABLE, RULE_MISSING, RULE_UNCHECKED, RULE_TOO_MANY, RULE_PENDING];

/// True when `rule` is one of this check's.
pub fn is_dependency_rule(rule: &str) -> bool {
    RULES.contains(&rule)
}

/// How each of this check's `incomplete` entries begins.
pub const INCOMPLETE_PREFIX: &str = "dependencies: ";

/// Which manifest field a dependency comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyKind {
    /// `dependencies`.
    Required,
    /// `optionalDependencies`.
    Optional,
}

/// One dependency entry as the manifest writes it (untrusted: quote it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredDependency {
    /// The key: the name the dependency is installed under.
    pub name: String,
    /// The value: a range, a tag, an alias, a URL...
    pub spec: String,
    /// Which field.
    pub kind: DependencyKind,
}

impl DeclaredDependency {
    fn verb(&self) -> &'static str {
        match self.kind {
            DependencyKind::Required => "depends on",
            DependencyKind::Optional => "optionally depends on",
        }
    }

    /// `name@spec` as written, quoted when it is not plain.
    fn written(&self) -> String {
        let text = format!("{}@{}", self.name, self.spec);
        if text.chars().all(|c| c.is_ascii_graphic()) && text.len() <= 120 { text } else { quote(&text) }
    }

    fn finding(&self, rule: &str, severity: Severity, message: String) -> Finding {
        let field = match self.kind {
            DependencyKind::Required => "dependencies",
            DependencyKind::Optional => "optionalDependencies",
        };
        Finding {
            rule: rule.to_owned(),
            severity,
            message,
            location: Some(Location { file: "package.json".into(), line: None, column: None }),
            excerpt: Some(format!("{field}: {}: {}", quote(&self.name), quote(&self.spec))),
        }
    }
}

/// What a spec asks npm for.
#[derive(Debug, Clone)]
pub enum Request {
    /// A registry package (named by the key, or by an `npm:` alias).
    Registry {
        /// The package fetched.
        package: PackageName,
        /// Which of its versions.
        selector: Selector,
    },
    /// Fetched by npm from a git host or a URL, bypassing Airlock: why, in a sentence
    /// fragment. The scanner's `dependency-non-registry` rates it (a URL high, git
    /// medium), so this check only records that it did not resolve it.
    Remote(String),
    /// Not a registry version, or not valid (npm cannot install it from a registry at
    /// all): why, in a sentence fragment.
    Unresolvable(String),
}

/// Which versions of a registry package a spec accepts.
#[derive(Debug, Clone)]
pub enum Selector {
    /// A semver range, with npm's rules.
    Range(nodejs_semver::Range),
    /// A dist-tag.
    Tag(String),
}

/// The dependency entries of a manifest npm fetches from a registry, `optionalDependencies`
/// replacing a `dependencies` entry of the same name (as npm does) and bundled ones left
/// out, at most [`MAX_DEPENDENCY_ENTRIES`] (the first by name); with findings for fields
/// and specs npm would not read.
pub fn declared_dependencies(manifest: &serde_json::Value) -> (Vec<DeclaredDependency>, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut by_name: BTreeMap<String, DeclaredDependency> = BTreeMap::new();
    let mut entries = 0usize;
    for (field, kind) in
        [("dependencies", DependencyKind::Required), ("optionalDependencies", DependencyKind::Optional)]
    {
        let Some(value) = manifest.get(field) else { continue };
        let Some(object) = value.as_object() else {
            if !value.is_null() {
                findings.push(Finding {
                    rule: RULE_UNRESOLVABLE.into(),
                    severity: Severity::Low,
                    message: format!(
                        "`{field}` in package.json is not an object, so npm ignores it; Airlock did not resolve it."
                    ),
                    location: Some(Location { file: "package.json".into(), line: None, column: None }),
                    excerpt: None,
                });
            }
            continue;
        };
        for (name, spec) in object {
            entries += 1;
            let Some(spec) = spec.as_str() else {
                // npm refuses to install a manifest with a non-string spec.
                let dependency = DeclaredDependency { name: name.clone(), spec: spec.to_string(), kind };
                let message = format!(
                    "{} {}: Airlock cannot resolve it: its spec is not a string, which npm refuses.",
                    dependency.verb(),
                    dependency.written()
                );
                findings.push(dependency.finding(RULE_UNRESOLVABLE, Severity::Low, message));
                continue;
            };
            by_name.insert(name.clone(), DeclaredDependency { name: name.clone(), spec: spec.to_owned(), kind });
        }
    }
    // Bundled dependencies ship inside the tarball, which the static checks read; npm
    // does not fetch them from the registry.
    let bundled = manifest.get("bundleDependencies").or_else(|| manifest.get("bundledDependencies"));
    match bundled {
        // npm copies `optionalDependencies` into `dependencies`, so `true` bundles both.
        Some(serde_json::Value::Bool(true)) => by_name.clear(),
        Some(serde_json::Value::Array(names)) => {
            for name in names.iter().filter_map(serde_json::Value::as_str) {
                by_name.remove(name);
            }
        }
        _ => {}
    }
    if entries > MAX_DEPENDENCY_ENTRIES {
        findings.push(Finding {
            rule: RULE_TOO_MANY.into(),
            severity: Severity::High,
            message: format!(
                "package.json declares {entries} dependencies, more than Airlock resolves ({MAX_DEPENDENCY_ENTRIES}); only the first {MAX_DEPENDENCY_ENTRIES} by name were checked. Real packages declare far fewer; this is the shape of dependency spam."
            ),
            location: Some(Location { file: "package.json".into(), line: None, column: None }),
            excerpt: None,
        });
    }
    (by_name.into_values().take(MAX_DEPENDENCY_ENTRIES).collect(), findings)
}

/// How npm would read a dependency's spec.
pub fn request(dependency: &DeclaredDependency) -> Request {
    let spec = dependency.spec.trim();
    if spec.len() > MAX_SPEC_CHARS {
        return Request::Unresolvable(format!("its spec is longer than {MAX_SPEC_CHARS} characters"));
    }
    if let Some(aliased) = spec.strip_prefix("npm:") {
        // `npm:<name>[@<range>]`: the real package is `<name>`. Resolved like any other,
        // so an alias cannot carry a held version past the check.
        let (name, range) = match aliased.strip_prefix('@') {
            Some(scoped) => match scoped.split_once('@') {
                Some((name, range)) => (format!("@{name}"), range),
                None => (aliased.to_owned(), ""),
            },
            None => match aliased.split_once('@') {
                Some((name, range)) => (name.to_owned(), range),
                None => (aliased.to_owned(), ""),
            },
        };
        return match PackageName::parse(&name) {
            Ok(package) => registry_request(package, range),
            Err(error) => Request::Unresolvable(format!("its `npm:` alias names an invalid package: {}", error.0)),
        };
    }
    if spec.starts_with("workspace:") {
        return Request::Unresolvable(
            "it is a `workspace:` spec, which names a package of the publisher's own monorepo and no registry version"
                .into(),
        );
    }
    if ["file:", "link:", "./", "../", "/", "~/"].iter().any(|prefix| spec.starts_with(prefix)) || spec == "." {
        return Request::Unresolvable("it is a local path, not a registry version".into());
    }
    let remote_prefixes = ["git+", "git:", "github:", "gitlab:", "bitbucket:", "gist:", "http:", "https:"];
    // A range never contains `/`: `user/repo` is npm's GitHub shorthand.
    if remote_prefixes.iter().any(|prefix| spec.starts_with(prefix)) || spec.contains("://") || spec.contains('/') {
        return Request::Remote(
            "it is a git or URL spec: npm fetches it straight from there, bypassing Airlock's quarantine".into(),
        );
    }
    match PackageName::parse(&dependency.name) {
        Ok(package) => registry_request(package, spec),
        Err(error) => Request::Unresolvable(format!("its name is not a valid package name: {}", error.0)),
    }
}

/// A range, else a dist-tag, as npm-package-arg decides.
fn registry_request(package: PackageName, spec: &str) -> Request {
    let spec = spec.trim();
    if let Ok(range) = nodejs_semver::Range::parse(spec) {
        return Request::Registry { package, selector: Selector::Range(range) };
    }
    let tag_like = spec.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if tag_like {
        return Request::Registry { package, selector: Selector::Tag(spec.to_owned()) };
    }
    Request::Unresolvable(format!("{} is neither a version range nor a dist-tag npm accepts", quote(spec)))
}

/// Where Airlock stands on one version of a dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Listed to clients: npm may resolve to it.
    Listed,
    /// Not listed yet but may be soon: cooling, or still being checked. npm resolves
    /// an older listed version meanwhile, so this never holds a parent.
    Pending,
    /// Refused: held, rejected, changed upstream or unusable; the sentence why.
    Refused(String),
}

impl Standing {
    /// The standing of a version rendered with this visibility.
    pub fn of(visibility: &Visibility, name: &PackageName, version: &str) -> Standing {
        match visibility {
            Visibility::Installable | Visibility::Provisional => Standing::Listed,
            Visibility::Cooling { .. } | Visibility::Checking => Standing::Pending,
            refused => Standing::Refused(refused.explain(name, version)),
        }
    }
}

/// One version of a dependency, as resolution sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The version, parsed with npm's rules.
    pub version: nodejs_semver::Version,
    /// As the packument writes it.
    pub text: String,
    /// Airlock's standing.
    pub standing: Standing,
    /// The advisories, when the known-malware feed lists this version.
    pub feed_advisories: Option<Vec<String>>,
}

impl Candidate {
    fn is_refused(&self) -> bool {
        self.feed_advisories.is_some() || matches!(self.standing, Standing::Refused(_))
    }
}

/// What npm would install for a spec through Airlock now.
#[derive(Debug, Clone, Copy)]
pub enum Resolution<'c> {
    /// This listed version.
    Listed(&'c Candidate),
    /// Nothing listed satisfies, and every upstream version that does is refused or
    /// feed-listed: the newest of those, which is what the parent was published to get.
    Refused(&'c Candidate),
    /// Nothing listed satisfies yet, but a version that does is cooling or checking:
    /// the newest such version, which npm gets once it passes.
    Pending(&'c Candidate),
    /// No version upstream satisfies (or no listed version carries the tag).
    NoMatch,
}

/// Resolves a selector against a dependency's versions the way npm picks a manifest
/// through Airlock: the `latest` tag when it satisfies the range, else the highest
/// listed version that does; prereleases only when the range names one of the same
/// `x.y.z`. `tags` are the dist-tags Airlock lists (they point at listed versions only).
///
/// A version the feed lists counts as refused even while Airlock still lists it (an
/// established version not downloaded yet): its check holds it on the feed's listing,
/// so it is never installable, and npm ends up with the next listed version, which is
/// what resolution picks here too.
pub fn resolve<'c>(selector: &Selector, tags: &HashMap<String, String>, candidates: &'c [Candidate]) -> Resolution<'c> {
    let range = match selector {
        Selector::Range(range) => range,
        Selector::Tag(tag) => {
            let Some(target) = tags.get(tag).and_then(|target| candidates.iter().find(|c| &c.text == target)) else {
                return Resolution::NoMatch;
            };
            return if target.is_refused() {
                Resolution::Refused(target)
            } else if target.standing == Standing::Listed {
                Resolution::Listed(target)
            } else {
                Resolution::Pending(target)
            };
        }
    };
    let satisfying: Vec<&Candidate> =
        candidates.iter().filter(|candidate| range.satisfies(&candidate.version)).collect();
    let installable = satisfying
        .iter()
        .copied()
        .filter(|candidate| candidate.standing == Standing::Listed && !candidate.is_refused());
    let latest = tags.get("latest");
    if let Some(tagged) = installable.clone().find(|candidate| Some(&candidate.text) == latest) {
        return Resolution::Listed(tagged);
    }
    if let Some(highest) = installable.max_by(|left, right| left.version.cmp(&right.version)) {
        return Resolution::Listed(highest);
    }
    if satisfying.is_empty() {
        return Resolution::NoMatch;
    }
    if let Some(pending) = satisfying
        .iter()
        .copied()
        .filter(|candidate| !candidate.is_refused())
        .max_by(|left, right| left.version.cmp(&right.version))
    {
        return Resolution::Pending(pending);
    }
    satisfying
        .into_iter()
        .max_by(|left, right| left.version.cmp(&right.version))
        .map_or(Resolution::NoMatch, Resolution::Refused)
}

/// The candidates of a rendered packument, with the feed's listings.
pub fn candidates(name: &PackageName, packument: &CachedPackument, feed: &Indicators) -> Vec<Candidate> {
    packument
        .rendered
        .index
        .versions
        .iter()
        .filter_map(|(text, view)| {
            let version = nodejs_semver::Version::parse(text).ok()?;
            Some(Candidate {
                version,
                text: text.clone(),
                standing: Standing::of(&view.visibility, name, text),
                feed_advisories: feed
                    .malicious_version(name.as_str(), text)
                    .map(|advisories| advisories.iter().cloned().collect()),
            })
        })
        .collect()
}

/// The finding a resolution makes, if any. `whole_package` holds the advisories when
/// the feed lists every version of the dependency.
pub fn finding(
    dependency: &DeclaredDependency,
    package: &PackageName,
    resolution: Resolution<'_>,
    whole_package: Option<&[String]>,
) -> Option<Finding> {
    let head = format!("{} {}", dependency.verb(), dependency.written());
    if let Some(advisories) = whole_package {
        return Some(dependency.finding(
            RULE_KNOWN_MALWARE,
            Severity::Critical,
            format!("{head}: the known-malware feed lists every version of {package} ({}).", advisories.join(", ")),
        ));
    }
    match resolution {
        Resolution::Listed(_) => None,
        // Recorded, not held: the dependency passes or fails its own checks, and this
        // version is resolved again when its cooling period ends.
        Resolution::Pending(candidate) => Some(dependency.finding(
            RULE_PENDING,
            Severity::Info,
            format!(
                "{head}, which only versions still in quarantine satisfy (the newest: {package}@{}); npm can install it only once one of them is released; Airlock resolves it again at the end of this version's cooling period, if it has one.",
                candidate.text
            ),
        )),
        Resolution::Refused(candidate) => Some(match (&candidate.feed_advisories, &candidate.standing) {
            (Some(advisories), _) => dependency.finding(
                RULE_KNOWN_MALWARE,
                Severity::Critical,
                format!(
                    "{head}, which resolves to {package}@{}, listed as malicious by the known-malware feed ({}); no version that satisfies it is installable.",
                    candidate.text,
                    advisories.join(", ")
                ),
            ),
            (None, standing) => {
                let why = match standing {
                    Standing::Refused(why) => shorten(why),
                    _ => String::from("refused"),
                };
                // npm installs a version without an optional dependency it cannot get,
                // so a held one (often a platform binary package the static checks are
                // wary of) does not hold the parent; a feed listing still does.
                let (severity, consequence) = match dependency.kind {
                    DependencyKind::Required => (Severity::High, "No version that satisfies it is installable."),
                    DependencyKind::Optional => (
                        Severity::Medium,
                        "No version that satisfies it is installable, so npm installs this version without it.",
                    ),
                };
                dependency.finding(
                    RULE_HELD,
                    severity,
                    format!("{head}, which resolves to {package}@{}, refused by Airlock: {why}. {consequence}", candidate.text),
                )
            }
        }),
        Resolution::NoMatch => Some(dependency.finding(
            RULE_MISSING,
            Severity::Low,
            format!("{head}, but no version of {package} satisfies it, so npm cannot install this version."),
        )),
    }
}

fn shorten(text: &str) -> String {
    if text.len() <= MAX_REASON_CHARS {
        return text.trim_end_matches('.').to_owned();
    }
    let mut end = MAX_REASON_CHARS;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// What the dependency check found, and the parts of it that could not run.
#[derive(Debug, Default)]
pub struct DependencyOutcome {
    /// Findings about the dependencies.
    pub findings: Vec<Finding>,
    /// Dependencies that could not be resolved, with why (the check record's
    /// `incomplete`).
    pub incomplete: Vec<String>,
}

/// Which packuments a check fetches, and for which entries.
#[derive(Debug, Default)]
pub struct Plan {
    /// Each registry package with the entries that name it (an alias and a plain entry
    /// may name the same one).
    pub by_package: BTreeMap<PackageName, Vec<(DeclaredDependency, Selector)>>,
    /// The packages fetched: the first [`MAX_PACKUMENTS_PER_CHECK`] by name.
    pub fetch: Vec<PackageName>,
    /// Findings about entries that are not resolved.
    pub findings: Vec<Finding>,
    /// What was left out, for the check record's `incomplete`.
    pub incomplete: Vec<String>,
}

/// Reads the entries of `manifest`, decides how npm reads each spec and which
/// packuments are fetched, within the bounds.
pub fn plan(manifest: &serde_json::Value) -> Plan {
    let (declared, mut findings) = declared_dependencies(manifest);
    let mut incomplete = Vec::new();
    let mut by_package: BTreeMap<PackageName, Vec<(DeclaredDependency, Selector)>> = BTreeMap::new();
    for dependency in declared {
        match request(&dependency) {
            Request::Registry { package, selector } => {
                by_package.entry(package).or_default().push((dependency, selector))
            }
            Request::Remote(why) => {
                let message =
                    format!("{} {}: Airlock cannot resolve it: {why}.", dependency.verb(), dependency.written());
                findings.push(dependency.finding(RULE_UNRESOLVABLE, Severity::Info, message));
            }
            Request::Unresolvable(why) => {
                let message =
                    format!("{} {}: Airlock cannot resolve it: {why}.", dependency.verb(), dependency.written());
                findings.push(dependency.finding(RULE_UNRESOLVABLE, Severity::Low, message));
            }
        }
    }
    let mut fetch: Vec<PackageName> = by_package.keys().cloned().collect();
    if fetch.len() > MAX_PACKUMENTS_PER_CHECK {
        let skipped = fetch.split_off(MAX_PACKUMENTS_PER_CHECK);
        let named: Vec<&str> = skipped.iter().take(5).map(PackageName::as_str).collect();
        let message = format!(
            "{} dependencies were not resolved: one check fetches at most {MAX_PACKUMENTS_PER_CHECK} dependency packuments (not resolved: {}{}).",
            skipped.len(),
            named.join(", "),
            if skipped.len() > named.len() { ", …" } else { "" }
        );
        incomplete.push(format!("{INCOMPLETE_PREFIX}{message}"));
        findings.push(Finding {
            rule: RULE_UNCHECKED.into(),
            severity: Severity::Medium,
            message,
            location: Some(Location { file: "package.json".into(), line: None, column: None }),
            excerpt: None,
        });
    }
    Plan { by_package, fetch, findings, incomplete }
}

/// Resolves the dependencies of `manifest` through Airlock's view of each dependency's
/// packument (fetched through the mirror, which records what it sees), at most
/// [`MAX_PACKUMENTS_PER_CHECK`] packuments, [`FETCH_CONCURRENCY`] at a time, each once.
///
/// A packument that cannot be fetched is a medium `dependency-unchecked` finding, not
/// a hold: an upstream blip must not hold every version that depends on a popular
/// package, and the dependency itself is never served unchecked either way. The
/// policy can raise it (`quarantine.rule_severity`).
pub async fn check(mirror: &Mirror, feed: &Indicators, manifest: &serde_json::Value) -> DependencyOutcome {
    let Plan { by_package, fetch: packages, mut findings, mut incomplete } = plan(manifest);
    let by_package = &by_package;
    // Each dependency package is fetched once, however many entries (an alias and a
    // plain entry) name it, and resolved as soon as it arrives: only the findings
    // outlive the fetch, so a check with hundreds of dependencies never holds hundreds
    // of packuments at once (at most `FETCH_CONCURRENCY`, beyond the mirror's own
    // byte-budgeted cache).
    let mut resolved: Vec<(PackageName, Vec<Finding>, Option<String>)> = futures_util::stream::iter(packages)
        .map(|package| async move {
            let result = mirror.packument(&package).await;
            let entries = by_package.get(&package).map(Vec::as_slice).unwrap_or_default();
            let (findings, incomplete) = resolve_package(&package, entries, result, feed);
            (package, findings, incomplete)
        })
        .buffer_unordered(FETCH_CONCURRENCY)
        .collect()
        .await;
    // Deterministic order whatever order the fetches finished in.
    resolved.sort_by(|left, right| left.0.cmp(&right.0));
    for (_, package_findings, package_incomplete) in resolved {
        findings.extend(package_findings);
        incomplete.extend(package_incomplete);
    }
    DependencyOutcome { findings, incomplete }
}

/// The findings of one dependency package's entries, from its packument (or from why it
/// could not be read), and the `incomplete` entry when it could not.
fn resolve_package(
    package: &PackageName,
    entries: &[(DeclaredDependency, Selector)],
    result: Result<Arc<CachedPackument>, AppError>,
    feed: &Indicators,
) -> (Vec<Finding>, Option<String>) {
    let mut findings = Vec::new();
    match result {
        Ok(packument) => {
            let candidates = candidates(package, &packument, feed);
            // Airlock's own rendering of the tags; should it not parse, resolution falls
            // back to the highest listed version, which is npm's rule without `latest`,
            // so no dependency goes unresolved.
            let tags: HashMap<String, String> =
                serde_json::from_slice(&packument.rendered.dist_tags).unwrap_or_default();
            drop(packument);
            let whole_package = feed
                .packages
                .get(package.as_str())
                .filter(|listing| listing.versions == MaliciousVersions::All)
                .map(|listing| listing.advisories.iter().cloned().collect::<Vec<_>>());
            for (dependency, selector) in entries {
                let resolution = resolve(selector, &tags, &candidates);
                findings.extend(finding(dependency, package, resolution, whole_package.as_deref()));
            }
            (findings, None)
        }
        Err(AppError::NotFound(_)) => {
            for (dependency, _) in entries {
                let message = format!(
                    "{} {}, but the upstream registry has no package {package}, so npm cannot install this version.",
                    dependency.verb(),
                    dependency.written()
                );
                findings.push(dependency.finding(RULE_MISSING, Severity::Low, message));
            }
            (findings, None)
        }
        Err(error) => {
            for (dependency, _) in entries {
                let message = format!(
                    "{} {}, but Airlock could not read the packument of {package} to resolve it: {error}.",
                    dependency.verb(),
                    dependency.written()
                );
                findings.push(dependency.finding(RULE_UNCHECKED, Severity::Medium, message));
            }
            (findings, Some(format!("{INCOMPLETE_PREFIX}{package}: {error}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dependency(name: &str, spec: &str) -> DeclaredDependency {
        DeclaredDependency { name: name.into(), spec: spec.into(), kind: DependencyKind::Required }
    }

    fn candidate(text: &str, standing: Standing) -> Candidate {
        Candidate {
            version: nodejs_semver::Version::parse(text).unwrap(),
            text: text.into(),
            standing,
            feed_advisories: None,
        }
    }

    fn held(text: &str) -> Candidate {
        candidate(
            text,
            Standing::Refused(format!(
                "evil-dep@{text} is held in quarantine until an Airlock admin decides: critical finding"
            )),
        )
    }

    fn range(spec: &str) -> Selector {
        match request(&dependency("evil-dep", spec)) {
            Request::Registry { selector, .. } => selector,
            Request::Remote(why) | Request::Unresolvable(why) => panic!("{spec} did not parse: {why}"),
        }
    }

    fn resolved(selector: &Selector, candidates: &[Candidate]) -> Option<String> {
        match resolve(selector, &HashMap::new(), candidates) {
            Resolution::Listed(candidate) => Some(format!("listed {}", candidate.text)),
            Resolution::Refused(candidate) => Some(format!("refused {}", candidate.text)),
            Resolution::Pending(candidate) => Some(format!("pending {}", candidate.text)),
            Resolution::NoMatch => None,
        }
    }

    #[test]
    fn resolves_to_the_highest_listed_version_in_the_range() {
        let candidates = [
            candidate("1.0.0", Standing::Listed),
            candidate("1.4.2", Standing::Listed),
            candidate("2.0.0", Standing::Listed),
        ];
        assert_eq!(resolved(&range("^1.0.0"), &candidates).as_deref(), Some("listed 1.4.2"));
        assert_eq!(resolved(&range("~1.0.0"), &candidates).as_deref(), Some("listed 1.0.0"));
        assert_eq!(resolved(&range(">=1.2 <3 || 0.x"), &candidates).as_deref(), Some("listed 2.0.0"));
        assert_eq!(resolved(&range("*"), &candidates).as_deref(), Some("listed 2.0.0"));
        assert_eq!(resolved(&range(""), &candidates).as_deref(), Some("listed 2.0.0"));
        assert_eq!(resolved(&range("^3.0.0"), &candidates), None);
    }

    #[test]
    fn the_latest_tag_wins_when_it_satisfies_the_range() {
        let candidates = [candidate("1.0.0", Standing::Listed), candidate("1.5.0", Standing::Listed)];
        let tags = HashMap::from([("latest".to_owned(), "1.0.0".to_owned())]);
        let Resolution::Listed(picked) = resolve(&range("^1.0.0"), &tags, &candidates) else { panic!() };
        assert_eq!(picked.text, "1.0.0");
        let Resolution::Listed(picked) = resolve(&range(">=1.1.0"), &tags, &candidates) else { panic!() };
        assert_eq!(picked.text, "1.5.0");
    }

    #[test]
    fn prereleases_satisfy_only_a_range_that_names_one() {
        let candidates = [candidate("1.0.0", Standing::Listed), candidate("1.1.0-beta.1", Standing::Listed)];
        assert_eq!(resolved(&range("^1.0.0"), &candidates).as_deref(), Some("listed 1.0.0"));
        assert_eq!(resolved(&range("^1.1.0-beta.0"), &candidates).as_deref(), Some("listed 1.1.0-beta.1"));
        // A held prerelease is not what `^1.0.0` resolves to, so it holds nothing.
        let candidates = [candidate("1.0.0", Standing::Listed), held("1.1.0-beta.1")];
        assert_eq!(resolved(&range("^1.0.0"), &candidates).as_deref(), Some("listed 1.0.0"));
    }

    #[test]
    fn cooling_versions_never_hold_a_parent() {
        // npm resolves the older listed version while the new one cools.
        let candidates = [candidate("1.0.0", Standing::Listed), candidate("1.0.1", Standing::Pending)];
        let resolution = resolve(&range("^1.0.0"), &HashMap::new(), &candidates);
        assert!(finding(&dependency("evil-dep", "^1.0.0"), &name(), resolution, None).is_none());
        // Nothing listed yet, only a young version: not a hold either, only a note.
        let candidates = [held("1.0.0"), candidate("1.0.1", Standing::Pending)];
        let resolution = resolve(&range("^1.0.0"), &HashMap::new(), &candidates);
        assert!(matches!(resolution, Resolution::Pending(pending) if pending.text == "1.0.1"));
        let noted = finding(&dependency("evil-dep", "^1.0.0"), &name(), resolution, None).expect("a note");
        assert_eq!((noted.rule.as_str(), noted.severity), (RULE_PENDING, Severity::Info));
    }

    fn name() -> PackageName {
        PackageName::parse("evil-dep").unwrap()
    }

    #[test]
    fn a_range_only_held_or_rejected_versions_satisfy_holds_the_parent() {
        let rejected = candidate(
            "1.0.1",
            Standing::Refused(
                "evil-dep@1.0.1 was rejected by admin:alice and cannot be installed: steals tokens".into(),
            ),
        );
        let candidates = [candidate("0.9.0", Standing::Listed), held("1.0.0"), rejected];
        let resolution = resolve(&range("^1.0.0"), &HashMap::new(), &candidates);
        let found = finding(&dependency("evil-dep", "^1.0.0"), &name(), resolution, None).expect("a finding");
        assert_eq!(found.rule, RULE_HELD);
        assert_eq!(found.severity, Severity::High);
        assert_eq!(
            found.message,
            "depends on evil-dep@^1.0.0, which resolves to evil-dep@1.0.1, refused by Airlock: evil-dep@1.0.1 was rejected by admin:alice and cannot be installed: steals tokens. No version that satisfies it is installable."
        );
        // npm installs the parent without an optional dependency it cannot get.
        let optional = DeclaredDependency { kind: DependencyKind::Optional, ..dependency("evil-dep", "^1.0.0") };
        let candidates = [candidate("0.9.0", Standing::Listed), held("1.0.0")];
        let resolution = resolve(&range("^1.0.0"), &HashMap::new(), &candidates);
        let found = finding(&optional, &name(), resolution, None).expect("a finding");
        assert_eq!((found.rule.as_str(), found.severity), (RULE_HELD, Severity::Medium));
        assert!(found.message.starts_with("optionally depends on evil-dep@^1.0.0, which resolves to evil-dep@1.0.0"));
        assert!(found.message.ends_with("so npm installs this version without it."), "{}", found.message);
        // An older listed version in the range is what npm installs: no hold.
        let candidates = [candidate("1.0.0", Standing::Listed), held("1.0.1")];
        let resolution = resolve(&range("^1.0.0"), &HashMap::new(), &candidates);
        assert!(finding(&dependency("evil-dep", "^1.0.0"), &name(), resolution, None).is_none());
    }

    #[test]
    fn feed_listed_versions_are_never_what_npm_ends_up_with() {
        let spec = dependency("flatmap-stream", "^0.1.0");
        let package = PackageName::parse("flatmap-stream").unwrap();
        let feed_listed = |text: &str, standing: Standing| {
            let mut listed = candidate(text, standing);
            listed.feed_advisories = Some(vec!["MAL-2018-1".into()]);
            listed
        };
        // Still listed by Airlock (established, not downloaded yet), but its check holds
        // it on the listing: npm gets the older clean version, and the parent passes.
        let candidates = [candidate("0.1.0", Standing::Listed), feed_listed("0.1.1", Standing::Listed)];
        let tags = HashMap::from([("latest".to_owned(), "0.1.1".to_owned())]);
        let resolution = resolve(&range("^0.1.0"), &tags, &candidates);
        assert!(matches!(resolution, Resolution::Listed(picked) if picked.text == "0.1.0"));
        assert!(finding(&spec, &package, resolution, None).is_none());
        // Only the listed version satisfies: known malware, critical.
        let resolution = resolve(&range("^0.1.1"), &tags, &candidates);
        let found = finding(&spec, &package, resolution, None).expect("a finding");
        assert_eq!(found.rule, RULE_KNOWN_MALWARE);
        assert_eq!(found.severity, Severity::Critical);
        assert_eq!(
            found.message,
            "depends on flatmap-stream@^0.1.0, which resolves to flatmap-stream@0.1.1, listed as malicious by the known-malware feed (MAL-2018-1); no version that satisfies it is installable."
        );
        // A tag that points at it, too.
        let Request::Registry { selector, .. } = request(&dependency("flatmap-stream", "latest")) else { panic!() };
        let resolution = resolve(&selector, &tags, &candidates);
        assert_eq!(finding(&spec, &package, resolution, None).expect("a finding").rule, RULE_KNOWN_MALWARE);
        // A feed-listed version still cooling counts as refused, not pending.
        let young = feed_listed("0.1.1", Standing::Pending);
        let resolution = resolve(&range("0.1.1"), &HashMap::new(), std::slice::from_ref(&young));
        assert_eq!(finding(&spec, &package, resolution, None).expect("a finding").rule, RULE_KNOWN_MALWARE);
        // A whole-package listing holds whatever resolves.
        let candidates = [candidate("0.1.0", Standing::Listed)];
        let resolution = resolve(&range("^0.1.0"), &HashMap::new(), &candidates);
        let advisories = ["MAL-2018-2".to_owned()];
        let found = finding(&spec, &package, resolution, Some(&advisories)).expect("a finding");
        assert_eq!(found.rule, RULE_KNOWN_MALWARE);
        assert!(found.message.contains("every version of flatmap-stream (MAL-2018-2)"), "{}", found.message);
    }

    #[test]
    fn tags_resolve_through_the_tags_airlock_lists() {
        let candidates = [candidate("1.0.0", Standing::Listed), held("2.0.0-rc.1")];
        let tags = HashMap::from([("next".to_owned(), "1.0.0".to_owned())]);
        let Request::Registry { selector, .. } = request(&dependency("evil-dep", "next")) else { panic!() };
        assert!(matches!(resolve(&selector, &tags, &candidates), Resolution::Listed(c) if c.text == "1.0.0"));
        let Request::Registry { selector, .. } = request(&dependency("evil-dep", "beta")) else { panic!() };
        assert!(matches!(resolve(&selector, &tags, &candidates), Resolution::NoMatch));
    }

    #[test]
    fn aliases_resolve_to_the_aliased_package() {
        for (spec, expected) in [
            ("npm:flatmap-stream@^0.1.0", "flatmap-stream"),
            ("npm:@evil/stream@1.0.0", "@evil/stream"),
            ("npm:flatmap-stream", "flatmap-stream"),
        ] {
            match request(&dependency("innocent-name", spec)) {
                Request::Registry { package, .. } => assert_eq!(package.as_str(), expected, "{spec}"),
                Request::Remote(why) | Request::Unresolvable(why) => panic!("{spec}: {why}"),
            }
        }
        assert!(matches!(request(&dependency("x", "npm:..bad@1")), Request::Unresolvable(_)));
    }

    #[test]
    fn specs_outside_the_registry_are_unresolvable_and_say_why() {
        for (spec, why) in [
            ("git+https://github.com/evil/dep.git", "bypassing Airlock"),
            ("github:evil/dep#main", "bypassing Airlock"),
            ("evil/dep", "bypassing Airlock"),
            ("https://evil.example/dep.tgz", "bypassing Airlock"),
            ("file:../dep", "local path"),
            ("link:../dep", "local path"),
            ("workspace:*", "workspace:"),
            ("not a range", "neither a version range"),
        ] {
            match request(&dependency("evil-dep", spec)) {
                Request::Remote(message) => {
                    assert!(why == "bypassing Airlock" && message.contains(why), "{spec}: {message}")
                }
                Request::Unresolvable(message) => assert!(message.contains(why), "{spec}: {message}"),
                Request::Registry { .. } => panic!("{spec} resolved"),
            }
        }
        // A tilde range is not a home-directory path.
        assert!(matches!(request(&dependency("evil-dep", "~1.2.0")), Request::Registry { .. }));
    }

    #[test]
    fn only_dependencies_and_optional_dependencies_are_read_and_bounded() {
        let manifest = serde_json::json!({
            "dependencies": {"a": "^1.0.0", "b": "^2.0.0"},
            "optionalDependencies": {"b": "^3.0.0", "c": "1.0.0"},
            "devDependencies": {"d": "1.0.0"},
            "peerDependencies": {"e": "1.0.0"},
        });
        let (declared, findings) = declared_dependencies(&manifest);
        assert!(findings.is_empty());
        let names: Vec<(&str, &str, DependencyKind)> =
            declared.iter().map(|entry| (entry.name.as_str(), entry.spec.as_str(), entry.kind)).collect();
        assert_eq!(
            names,
            [
                ("a", "^1.0.0", DependencyKind::Required),
                ("b", "^3.0.0", DependencyKind::Optional),
                ("c", "1.0.0", DependencyKind::Optional),
            ]
        );

        let many: serde_json::Map<String, serde_json::Value> =
            (0..MAX_DEPENDENCY_ENTRIES + 5).map(|index| (format!("spam-{index}"), "1.0.0".into())).collect();
        let (declared, findings) = declared_dependencies(&serde_json::json!({ "dependencies": many }));
        assert_eq!(declared.len(), MAX_DEPENDENCY_ENTRIES);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].rule, RULE_TOO_MANY);
        assert_eq!(findings[0].severity, Severity::High);

        let (declared, findings) = declared_dependencies(&serde_json::json!({ "dependencies": ["a"] }));
        assert!(declared.is_empty());
        assert_eq!(findings[0].rule, RULE_UNRESOLVABLE);

        let (declared, findings) =
            declared_dependencies(&serde_json::json!({ "dependencies": {"a": 1, "b": "1.0.0"} }));
        assert_eq!(declared.len(), 1);
        assert_eq!((findings[0].rule.as_str(), findings[0].severity), (RULE_UNRESOLVABLE, Severity::Low));
    }

    #[test]
    fn a_check_fetches_each_package_once_and_at_most_the_bound() {
        let manifest = serde_json::json!({
            "dependencies": {"stream": "^1.0.0", "alias": "npm:stream@^2.0.0", "remote": "github:o/r", "bad": "??"},
        });
        let plan = plan(&manifest);
        assert_eq!(plan.fetch.iter().map(PackageName::as_str).collect::<Vec<_>>(), ["stream"]);
        assert_eq!(plan.by_package.values().map(Vec::len).sum::<usize>(), 2);
        let severities: Vec<(&str, Severity)> =
            plan.findings.iter().map(|finding| (finding.rule.as_str(), finding.severity)).collect();
        assert_eq!(severities, [(RULE_UNRESOLVABLE, Severity::Low), (RULE_UNRESOLVABLE, Severity::Info)]);
        assert!(plan.incomplete.is_empty());

        let many: serde_json::Map<String, serde_json::Value> =
            (0..MAX_PACKUMENTS_PER_CHECK + 3).map(|index| (format!("dep-{index:04}"), "1.0.0".into())).collect();
        let plan = super::plan(&serde_json::json!({ "dependencies": many }));
        assert_eq!(plan.fetch.len(), MAX_PACKUMENTS_PER_CHECK);
        assert_eq!(plan.findings.len(), 1);
        assert_eq!((plan.findings[0].rule.as_str(), plan.findings[0].severity), (RULE_UNCHECKED, Severity::Medium));
        assert!(
            plan.findings[0].message.starts_with("3 dependencies were not resolved"),
            "{}",
            plan.findings[0].message
        );
        assert!(plan.incomplete[0].starts_with(INCOMPLETE_PREFIX));
    }

    #[test]
    fn bundled_dependencies_are_not_fetched() {
        let manifest = serde_json::json!({
            "dependencies": {"inside": "^1.0.0", "outside": "^2.0.0"},
            "bundleDependencies": ["inside"],
        });
        let names: Vec<String> = declared_dependencies(&manifest).0.into_iter().map(|entry| entry.name).collect();
        assert_eq!(names, ["outside"]);
        let manifest = serde_json::json!({
            "dependencies": {"inside": "^1.0.0"},
            "optionalDependencies": {"also": "^1.0.0"},
            "bundledDependencies": true,
        });
        assert!(declared_dependencies(&manifest).0.is_empty());
    }
}
