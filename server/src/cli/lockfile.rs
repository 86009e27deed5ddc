//! Lockfiles, read into the packages they install: npm's `package-lock.json` /
//! `npm-shrinkwrap.json` (v1–v3), yarn classic's and yarn berry's `yarn.lock`, pnpm's
//! `pnpm-lock.yaml` (v5.4–v9) and bun's text `bun.lock`.
//!
//! A lockfile in CI may come from the pull request being tested, so it is hostile input:
//! its size is bounded, the YAML parser has a budget (no alias expansion bombs, bounded
//! depth), and an entry that cannot be read is an error naming it, never skipped.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The largest lockfile read. The biggest real lockfiles are a few tens of MiB.
pub const MAX_LOCKFILE_BYTES: u64 = 128 << 20;

/// One package a lockfile installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedPackage {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// What the lockfile pins the bytes with.
    pub integrity: LockedIntegrity,
    /// Where it was resolved from, when the lockfile says: a tarball URL, or a
    /// non-registry source such as `git+https://…` or `file:…`.
    pub resolved: Option<String>,
}

/// What a lockfile pins a package's bytes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockedIntegrity {
    /// npm's subresource integrity (`sha512-…`), comparable with Airlock's release record.
    Sri(String),
    /// Nothing comparable: yarn berry's `checksum` hashes yarn's own cache archive, not
    /// the npm tarball. Only the release of `name@version` can be checked.
    NotComparable(&'static str),
    /// None at all.
    Missing,
}

impl LockedPackage {
    fn new(name: &str, version: &str, integrity: LockedIntegrity, resolved: Option<String>) -> LockedPackage {
        LockedPackage { name: name.to_owned(), version: version.to_owned(), integrity, resolved }
    }

    /// Whether the package comes from a registry (or a tarball URL), which Airlock can
    /// vouch for; git, file and link sources cannot be.
    pub fn is_from_registry(&self) -> bool {
        self.resolved
            .as_deref()
            .is_none_or(|resolved| resolved.starts_with("http://") || resolved.starts_with("https://"))
    }
}

/// Why a lockfile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LockfileError {
    /// Larger than [`MAX_LOCKFILE_BYTES`].
    #[error("{file} is {size} bytes, more than the {MAX_LOCKFILE_BYTES} bytes a lockfile may have")]
    TooLarge {
        /// The file name.
        file: String,
        /// Its size.
        size: u64,
    },
    /// Not the format its name says, or not well formed.
    #[error("{file} cannot be read: {reason}")]
    Malformed {
        /// The file name.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A format or version not supported, with what to do instead.
    #[error("{file}: {reason}")]
    Unsupported {
        /// The file name.
        file: String,
        /// What is not supported and what to do.
        reason: String,
    },
    /// One entry that cannot be understood.
    #[error("{file}: entry {entry:?}: {reason}")]
    Entry {
        /// The file name.
        file: String,
        /// The entry's key as written.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// The file could not be read.
    #[error("reading {file}: {source}")]
    Io {
        /// The path.
        file: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Reads and parses a lockfile, refusing one larger than [`MAX_LOCKFILE_BYTES`].
pub fn read_lockfile(path: &Path) -> Result<Vec<LockedPackage>, LockfileError> {
    let file = path.display().to_string();
    let io = |source| LockfileError::Io { file: file.clone(), source };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_LOCKFILE_BYTES {
        return Err(LockfileError::TooLarge { file, size });
    }
    if path.file_name().is_some_and(|name| name == "bun.lockb") {
        return Err(LockfileError::Unsupported {
            file,
            reason: "the binary bun.lockb cannot be read; run `bun install --save-text-lockfile` to write bun.lock"
                .into(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    parse_lockfile(path, &text)
}

/// Parses a lockfile by its file name; anything else is read as `package-lock.json`.
/// Packages are sorted by name and version, each once.
pub fn parse_lockfile(path: &Path, text: &str) -> Result<Vec<LockedPackage>, LockfileError> {
    let file = path.file_name().and_then(|name| name.to_str()).unwrap_or("").to_owned();
    let mut packages = match file.as_str() {
        "yarn.lock" if is_yarn_berry(text) => parse_yarn_berry(&file, text)?,
        "yarn.lock" => parse_yarn_classic(text),
        "pnpm-lock.yaml" => parse_pnpm(&file, text)?,
        "bun.lock" => parse_bun(&file, text)?,
        "bun.lockb" => {
            return Err(LockfileError::Unsupported {
                file,
                reason: "the binary bun.lockb cannot be read; run `bun install --save-text-lockfile` to write bun.lock"
                    .into(),
            });
        }
        _ => parse_package_lock(&file, text)?,
    };
    packages.sort_by(|left, right| (&left.name, &left.version).cmp(&(&right.name, &right.version)));
    packages.dedup_by(|left, right| left.name == right.name && left.version == right.version);
    Ok(packages)
}

fn malformed(file: &str, reason: impl std::fmt::Display) -> LockfileError {
    LockfileError::Malformed { file: file.to_owned(), reason: reason.to_string() }
}

fn entry_error(file: &str, entry: &str, reason: impl Into<String>) -> LockfileError {
    LockfileError::Entry { file: file.to_owned(), entry: entry.to_owned(), reason: reason.into() }
}

fn sri(integrity: Option<String>) -> LockedIntegrity {
    integrity.filter(|text| !text.is_empty()).map_or(LockedIntegrity::Missing, LockedIntegrity::Sri)
}

// npm.

fn parse_package_lock(file: &str, text: &str) -> Result<Vec<LockedPackage>, LockfileError> {
    let lock: serde_json::Value = serde_json::from_str(text).map_err(|error| malformed(file, error))?;
    let mut packages = Vec::new();
    if let Some(entries) = lock.get("packages").and_then(serde_json::Value::as_object) {
        for (path, entry) in entries {
            // "" is the project itself; links point at workspace folders.
            if path.is_empty() || entry.get("link").and_then(serde_json::Value::as_bool) == Some(true) {
                continue;
            }
            let name = match entry.get("name").and_then(serde_json::Value::as_str) {
                Some(name) => name.to_owned(),
                None => match path.rfind("node_modules/") {
                    Some(position) => path[position + "node_modules/".len()..].to_owned(),
                    // A workspace folder (not under node_modules): the project's own code.
                    None => continue,
                },
            };
            packages.push(npm_entry(&name, entry));
        }
    } else if let Some(dependencies) = lock.get("dependencies").and_then(serde_json::Value::as_object) {
        fn walk(dependencies: &serde_json::Map<String, serde_json::Value>, packages: &mut Vec<LockedPackage>) {
            for (name, entry) in dependencies {
                packages.push(npm_entry(name, entry));
                if let Some(nested) = entry.get("dependencies").and_then(serde_json::Value::as_object) {
                    walk(nested, packages);
                }
            }
        }
        walk(dependencies, &mut packages);
    }
    Ok(packages)
}

fn npm_entry(name: &str, entry: &serde_json::Value) -> LockedPackage {
    let text = |key: &str| entry.get(key).and_then(serde_json::Value::as_str).map(str::to_owned);
    LockedPackage::new(name, &text("version").unwrap_or_default(), sri(text("integrity")), text("resolved"))
}

// yarn classic.

/// yarn.lock v1: blocks of `"name@range", name@range:` followed by indented fields.
fn parse_yarn_classic(text: &str) -> Vec<LockedPackage> {
    let mut packages = Vec::new();
    let mut current: Option<(String, String, Option<String>, Option<String>)> = None;
    let finish = |current: Option<(String, String, Option<String>, Option<String>)>, packages: &mut Vec<_>| {
        if let Some((name, version, integrity, resolved)) = current {
            packages.push(LockedPackage::new(&name, &version, sri(integrity), resolved));
        }
    };
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            finish(current.take(), &mut packages);
            let first = line.trim_end_matches(':').split(',').next().unwrap_or("").trim().trim_matches('"');
            current = Some((split_name_and_rest(first).0.to_owned(), String::new(), None, None));
            continue;
        }
        let Some((_, version, integrity, resolved)) = current.as_mut() else { continue };
        let trimmed = line.trim();
        let (key, value) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
        let value = value.trim().trim_matches('"').to_owned();
        match key {
            "version" => *version = value,
            "integrity" => *integrity = Some(value),
            "resolved" => *resolved = Some(value),
            _ => {}
        }
    }
    finish(current, &mut packages);
    packages
}

/// `name@rest` → (`name`, `rest`), the name scoped or not.
fn split_name_and_rest(text: &str) -> (&str, &str) {
    let start = usize::from(text.starts_with('@'));
    match text[start..].find('@') {
        Some(position) => (&text[..start + position], &text[start + position + 1..]),
        None => (text, ""),
    }
}

// yarn berry.

fn is_yarn_berry(text: &str) -> bool {
    text.lines().any(|line| line.starts_with("__metadata:"))
}

#[derive(Deserialize)]
struct BerryEntry {
    #[serde(default)]
    version: Option<Scalar>,
    #[serde(default)]
    resolution: Option<String>,
}

/// A YAML scalar whatever its type (`__metadata.version` is a number).
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(text) => text.clone(),
            Scalar::Integer(number) => number.to_string(),
            Scalar::Float(number) => number.to_string(),
        }
    }
}

fn parse_yaml<T: for<'de> Deserialize<'de>>(file: &str, text: &str) -> Result<T, LockfileError> {
    // The default budget bounds depth, nodes and alias expansion.
    serde_saphyr::from_str(text).map_err(|error| malformed(file, error))
}

/// yarn berry (v2+): YAML keyed by `"name@npm:range, …"`, each entry with its
/// `resolution` (`name@npm:1.2.3`, `name@workspace:…`, `name@patch:…`, git, file…).
fn parse_yarn_berry(file: &str, text: &str) -> Result<Vec<LockedPackage>, LockfileError> {
    let entries: BTreeMap<String, BerryEntry> = parse_yaml(file, text)?;
    let mut packages = Vec::new();
    for (key, entry) in &entries {
        if key == "__metadata" {
            continue;
        }
        let resolution =
            entry.resolution.as_deref().ok_or_else(|| entry_error(file, key, "the entry has no resolution"))?;
        let (name, reference) = split_name_and_rest(resolution);
        let (protocol, rest) = reference.split_once(':').unwrap_or(("", reference));
        let not_comparable =
            LockedIntegrity::NotComparable("yarn berry's checksum hashes its cache archive, not the npm tarball");
        match protocol {
            "npm" => {
                // `name@npm:1.2.3`, or an alias `alias@npm:real@1.2.3`.
                let (name, version) = match rest.rsplit_once('@').filter(|(real, _)| !real.is_empty()) {
                    Some((real, version)) => (real, version),
                    None => (name, rest),
                };
                packages.push(LockedPackage::new(name, version, not_comparable, None));
            }
            // The project and its workspaces: its own code.
            "workspace" => {}
            // A patched npm package (yarn's builtin compat patches): the bytes are the npm
            // package's, patched at install; verify the package it patches.
            "patch" => {
                let inner = percent_decode(rest.split('#').next().unwrap_or(""));
                let (patched_name, patched) = split_name_and_rest(&inner);
                match patched.strip_prefix("npm:") {
                    Some(version) => packages.push(LockedPackage::new(patched_name, version, not_comparable, None)),
                    None => packages.push(LockedPackage::new(
                        name,
                        &version_text(entry),
                        LockedIntegrity::Missing,
                        Some(format!("patch:{inner}")),
                    )),
                }
            }
            _ => packages.push(LockedPackage::new(
                name,
                &version_text(entry),
                LockedIntegrity::Missing,
                Some(reference.to_owned()),
            )),
        }
    }
    Ok(packages)
}

fn version_text(entry: &BerryEntry) -> String {
    entry.version.as_ref().map(Scalar::text).unwrap_or_default()
}

/// `%3A` → `:` and the like, as yarn writes references inside a patch locator.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(byte) = text.get(index + 1..index + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            decoded.push(byte);
            index += 3;
            continue;
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

// pnpm.

#[derive(Deserialize)]
struct PnpmLock {
    #[serde(rename = "lockfileVersion")]
    lockfile_version: Scalar,
    #[serde(default)]
    packages: BTreeMap<String, PnpmPackage>,
}

#[derive(Deserialize)]
struct PnpmPackage {
    #[serde(default)]
    resolution: Option<PnpmResolution>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    version: Option<String>,
}

#[derive(Deserialize)]
struct PnpmResolution {
    #[serde(default)]
    integrity: Option<String>,
    #[serde(default)]
    tarball: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    repo: Option<String>,
    #[serde(default)]
    commit: Option<String>,
    #[serde(default)]
    directory: Option<String>,
}

/// pnpm-lock.yaml: `packages` keyed by `name@version` (v9), `/name@version(peers)`
/// (v6–v8) or `/name/version` (v5).
fn parse_pnpm(file: &str, text: &str) -> Result<Vec<LockedPackage>, LockfileError> {
    let lock: PnpmLock = parse_yaml(file, text)?;
    let version_text = lock.lockfile_version.text();
    let major: u32 = version_text.split('.').next().and_then(|major| major.parse().ok()).unwrap_or(0);
    if major < 5 {
        return Err(LockfileError::Unsupported {
            file: file.to_owned(),
            reason: format!("lockfileVersion {version_text} is older than pnpm 7's (5.4); run a current pnpm install"),
        });
    }
    let mut packages = Vec::new();
    for (key, package) in &lock.packages {
        let bare = key.strip_prefix('/').unwrap_or(key);
        // Peer-dependency suffixes, `(react@18.2.0)` or v5's `_react@18.2.0`, are not
        // part of the version.
        let bare = bare.split('(').next().unwrap_or(bare);
        let (mut name, mut version) = if major >= 6 {
            split_name_and_rest(bare)
        } else {
            let slash = bare.rfind('/').ok_or_else(|| entry_error(file, key, "expected /name/version"))?;
            let version = &bare[slash + 1..];
            (&bare[..slash], version.split('_').next().unwrap_or(version))
        };
        if let Some(explicit) = &package.name {
            name = explicit;
        }
        if let Some(explicit) = &package.version {
            version = explicit;
        }
        if name.is_empty() || version.is_empty() {
            return Err(entry_error(file, key, "no package name and version"));
        }
        let resolution = package.resolution.as_ref().ok_or_else(|| entry_error(file, key, "no resolution"))?;
        let resolved = match (&resolution.tarball, &resolution.kind, &resolution.directory) {
            (Some(tarball), _, _) => Some(tarball.clone()),
            (None, Some(kind), _) if kind == "git" => Some(format!(
                "git+{}#{}",
                resolution.repo.as_deref().unwrap_or("?"),
                resolution.commit.as_deref().unwrap_or("?")
            )),
            (None, _, Some(directory)) => Some(format!("file:{directory}")),
            (None, Some(kind), None) => Some(format!("{kind}:")),
            (None, None, None) => None,
        };
        // `version` may itself be a URL or a path for non-registry packages.
        let version = if version.contains(':') || version.contains('/') { "" } else { version };
        packages.push(LockedPackage::new(name, version, sri(resolution.integrity.clone()), resolved));
    }
    Ok(packages)
}

// bun.

/// bun.lock: JSON with trailing commas; `packages` values are arrays whose first
/// element is the resolution `name@version` and, for registry packages, whose fourth is
/// the integrity.
fn parse_bun(file: &str, text: &str) -> Result<Vec<LockedPackage>, LockfileError> {
    let json = without_trailing_commas(text);
    let lock: serde_json::Value = serde_json::from_str(&json).map_err(|error| malformed(file, error))?;
    let entries = lock
        .get("packages")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| malformed(file, "no \"packages\" object"))?;
    let mut packages = Vec::new();
    for (key, entry) in entries {
        let fields = entry.as_array().ok_or_else(|| entry_error(file, key, "expected an array"))?;
        let resolution = fields
            .first()
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| entry_error(file, key, "no resolution"))?;
        let (name, reference) = split_name_and_rest(resolution);
        if reference.starts_with("workspace:") || reference.starts_with("root:") {
            continue;
        }
        let is_registry = !reference.is_empty()
            && reference.chars().next().is_some_and(|first| first.is_ascii_digit())
            && !reference.contains(':');
        if is_registry {
            let integrity = fields.get(3).and_then(serde_json::Value::as_str).map(str::to_owned);
            let registry = fields.get(1).and_then(serde_json::Value::as_str).filter(|url| !url.is_empty());
            packages.push(LockedPackage::new(name, reference, sri(integrity), registry.map(str::to_owned)));
        } else {
            packages.push(LockedPackage::new(name, "", LockedIntegrity::Missing, Some(reference.to_owned())));
        }
    }
    Ok(packages)
}

/// Drops commas that only precede a closing `}` or `]` (outside strings), which bun
/// writes and JSON forbids.
fn without_trailing_commas(text: &str) -> String {
    let mut output = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for (index, character) in text.char_indices() {
        if in_string {
            output.push(character);
            match (escaped, character) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match character {
            '"' => {
                in_string = true;
                output.push(character);
            }
            ',' => {
                let next = text[index + 1..].trim_start().chars().next();
                if !matches!(next, Some('}' | ']')) {
                    output.push(character);
                }
            }
            _ => output.push(character),
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(file: &str, text: &str) -> Vec<(String, String, LockedIntegrity, Option<String>)> {
        parse_lockfile(Path::new(file), text)
            .unwrap()
            .into_iter()
            .map(|package| (package.name, package.version, package.integrity, package.resolved))
            .collect()
    }

    fn sri_of(text: &str) -> LockedIntegrity {
        LockedIntegrity::Sri(text.to_owned())
    }

    #[test]
    fn package_lock_v3_entries_are_read() {
        let text = r#"{"lockfileVersion": 3, "packages": {
            "": {"name": "app"},
            "node_modules/a": {"version": "1.0.0", "integrity": "sha512-a", "resolved": "https://r/a/-/a-1.0.0.tgz"},
            "node_modules/a/node_modules/@s/b": {"version": "2.0.0", "integrity": "sha512-b"},
            "packages/local": {"version": "0.0.0"},
            "node_modules/local": {"link": true, "resolved": "packages/local"}
        }}"#;
        assert_eq!(
            parse("package-lock.json", text),
            [
                ("@s/b".into(), "2.0.0".into(), sri_of("sha512-b"), None),
                ("a".into(), "1.0.0".into(), sri_of("sha512-a"), Some("https://r/a/-/a-1.0.0.tgz".into())),
            ]
        );
    }

    #[test]
    fn yarn_v1_entries_are_read() {
        let text = "# yarn lockfile v1\n\n\"@s/b@^2.0.0\", \"@s/b@^2.1.0\":\n  version \"2.1.0\"\n  resolved \"https://r/@s/b/-/b-2.1.0.tgz#abc\"\n  integrity sha512-b\n\na@^1.0.0:\n  version \"1.0.0\"\n  integrity sha512-a\n";
        assert_eq!(
            parse("yarn.lock", text),
            [
                ("@s/b".into(), "2.1.0".into(), sri_of("sha512-b"), Some("https://r/@s/b/-/b-2.1.0.tgz#abc".into())),
                ("a".into(), "1.0.0".into(), sri_of("sha512-a"), None),
            ]
        );
    }

    #[test]
    fn pnpm_v9_v6_and_v5_packages_are_read() {
        let v9 = "lockfileVersion: '9.0'\n\nimporters:\n  .:\n    dependencies:\n      is-number:\n        specifier: ^7.0.0\n        version: 7.0.0\n\npackages:\n\n  '@types/node@20.11.0':\n    resolution: {integrity: sha512-t}\n\n  is-number@7.0.0:\n    resolution: {integrity: sha512-i}\n    engines: {node: '>=0.12.0'}\n\n  tar-dep@https://example.com/t.tgz:\n    resolution: {tarball: https://example.com/t.tgz}\n    version: 1.2.3\n\n  from-git@git+https://github.com/o/r.git#abc:\n    resolution: {type: git, repo: 'https://github.com/o/r.git', commit: abc}\n    version: 0.1.0\n\nsnapshots:\n\n  is-number@7.0.0: {}\n";
        assert_eq!(
            parse("pnpm-lock.yaml", v9),
            [
                ("@types/node".into(), "20.11.0".into(), sri_of("sha512-t"), None),
                (
                    "from-git".into(),
                    "0.1.0".into(),
                    LockedIntegrity::Missing,
                    Some("git+https://github.com/o/r.git#abc".into())
                ),
                ("is-number".into(), "7.0.0".into(), sri_of("sha512-i"), None),
                ("tar-dep".into(), "1.2.3".into(), LockedIntegrity::Missing, Some("https://example.com/t.tgz".into())),
            ]
        );
        let v6 = "lockfileVersion: '6.0'\npackages:\n  /react-dom@18.2.0(react@18.2.0):\n    resolution: {integrity: sha512-d}\n  /@s/b@2.0.0:\n    resolution: {integrity: sha512-b}\n";
        assert_eq!(
            parse("pnpm-lock.yaml", v6),
            [
                ("@s/b".into(), "2.0.0".into(), sri_of("sha512-b"), None),
                ("react-dom".into(), "18.2.0".into(), sri_of("sha512-d"), None),
            ]
        );
        let v5 = "lockfileVersion: 5.4\npackages:\n  /react-dom/18.2.0_react@18.2.0:\n    resolution: {integrity: sha512-d}\n  /@s/b/2.0.0:\n    resolution: {integrity: sha512-b}\n";
        assert_eq!(
            parse("pnpm-lock.yaml", v5),
            [
                ("@s/b".into(), "2.0.0".into(), sri_of("sha512-b"), None),
                ("react-dom".into(), "18.2.0".into(), sri_of("sha512-d"), None),
            ]
        );
        let old = "lockfileVersion: 4.0\npackages: {}\n";
        assert!(matches!(
            parse_lockfile(Path::new("pnpm-lock.yaml"), old),
            Err(LockfileError::Unsupported { reason, .. }) if reason.contains("lockfileVersion 4")
        ));
    }

    #[test]
    fn yarn_berry_resolutions_are_read() {
        let text = "__metadata:\n  version: 8\n  cacheKey: 10c0\n\n\"@types/node@npm:20.11.0\":\n  version: 20.11.0\n  resolution: \"@types/node@npm:20.11.0\"\n  checksum: 10c0/560a\n  languageName: node\n  linkType: hard\n\n\"string-width-cjs@npm:string-width@^4.2.0\":\n  version: 4.2.3\n  resolution: \"string-width@npm:4.2.3\"\n\n\"resolve@patch:resolve@npm%3A^1.22.8#optional!builtin<compat/resolve>\":\n  version: 1.22.8\n  resolution: \"resolve@patch:resolve@npm%3A1.22.8#optional!builtin<compat/resolve>::version=1.22.8&hash=c3c19d\"\n\n\"p@workspace:.\":\n  version: 0.0.0-use.local\n  resolution: \"p@workspace:.\"\n\n\"lib@https://github.com/o/lib.git#commit=abc\":\n  version: 1.0.0\n  resolution: \"lib@https://github.com/o/lib.git#commit=abc\"\n";
        let not_comparable =
            LockedIntegrity::NotComparable("yarn berry's checksum hashes its cache archive, not the npm tarball");
        assert_eq!(
            parse("yarn.lock", text),
            [
                ("@types/node".into(), "20.11.0".into(), not_comparable.clone(), None),
                (
                    "lib".into(),
                    "1.0.0".into(),
                    LockedIntegrity::Missing,
                    Some("https://github.com/o/lib.git#commit=abc".into())
                ),
                ("resolve".into(), "1.22.8".into(), not_comparable.clone(), None),
                ("string-width".into(), "4.2.3".into(), not_comparable, None),
            ]
        );
    }

    #[test]
    fn bun_text_lockfiles_are_read() {
        let text = r#"{
  "lockfileVersion": 2,
  "workspaces": {
    "": {
      "name": "p",
      "dependencies": {
        "is-number": "^7.0.0",
      },
    },
  },
  "packages": {
    "@types/node": ["@types/node@20.11.0", "", { "dependencies": { "undici-types": "~5.26.4" } }, "sha512-t"],

    "string-width-cjs": ["string-width@4.2.3", "", {}, "sha512-s"],

    "string-width": ["string-width@4.2.3", "", {}, "sha512-s"],

    "private": ["private@1.0.0", "https://npm.example.com/", {}, "sha512-p"],

    "from-git": ["from-git@github:o/r#abc", {}, "o-r-abc"],

    "local": ["local@workspace:packages/local"],
  }
}"#;
        assert_eq!(
            parse("bun.lock", text),
            [
                ("@types/node".into(), "20.11.0".into(), sri_of("sha512-t"), None),
                ("from-git".into(), "".into(), LockedIntegrity::Missing, Some("github:o/r#abc".into())),
                ("private".into(), "1.0.0".into(), sri_of("sha512-p"), Some("https://npm.example.com/".into())),
                ("string-width".into(), "4.2.3".into(), sri_of("sha512-s"), None),
            ]
        );
        // Commas inside strings are data.
        assert_eq!(without_trailing_commas(r#"{"a": "x,}", "b": [1, 2,],}"#), r#"{"a": "x,}", "b": [1, 2]}"#);
    }

    #[test]
    fn hostile_lockfiles_fail_with_the_file_named() {
        let bomb = "lockfileVersion: '9.0'\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\npackages: {}\n";
        assert!(matches!(
            parse_lockfile(Path::new("pnpm-lock.yaml"), bomb),
            Err(LockfileError::Malformed { file, .. }) if file == "pnpm-lock.yaml"
        ));
        let error = parse_lockfile(Path::new("pnpm-lock.yaml"), "lockfileVersion: '9.0'\npackages:\n  x@1.0.0: {}\n")
            .unwrap_err();
        assert_eq!(error.to_string(), "pnpm-lock.yaml: entry \"x@1.0.0\": no resolution");
        assert!(parse_lockfile(Path::new("bun.lockb"), "").unwrap_err().to_string().contains("--save-text-lockfile"));
        assert!(
            parse_lockfile(Path::new("package-lock.json"), "{")
                .unwrap_err()
                .to_string()
                .starts_with("package-lock.json cannot be read")
        );
    }
}
