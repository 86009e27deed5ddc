//! The parts of `package.json` the checks (and the quarantine UI) care about, read
//! leniently: npm itself accepts many shapes, and a strange shape is a finding, not an
//! error.

use std::collections::BTreeMap;

use serde_json::Value;

/// The lifecycle scripts npm runs when a package is installed from the registry.
/// `prepare` is not among them: it runs for git dependencies and local installs only.
pub const INSTALL_LIFECYCLE_SCRIPTS: [&str; 3] = ["preinstall", "install", "postinstall"];

/// The dependency fields of package.json, in the order they are reported.
pub const DEPENDENCY_FIELDS: [&str; 4] =
    ["dependencies", "optionalDependencies", "peerDependencies", "devDependencies"];

/// A parsed package.json.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageManifest {
    /// `name`, or empty.
    pub name: String,
    /// `version`, or empty.
    pub version: String,
    /// `scripts`, string values only.
    pub scripts: BTreeMap<String, String>,
    /// Every dependency field, by field name, then package name to spec.
    pub dependencies: BTreeMap<String, BTreeMap<String, String>>,
    /// `bin`, normalised to command name to path (a string `bin` is named after the package).
    pub bin: BTreeMap<String, String>,
    /// Hosts of `homepage`, `repository` and `bugs`: where the package says it lives.
    pub own_hosts: Vec<String>,
    /// `gypfile: false` turns off the implicit `node-gyp rebuild` for binding.gyp.
    pub gypfile_disabled: bool,
    /// `description`, or empty.
    pub description: String,
    /// Whether `repository` names a repository (a string or an object with a `url`).
    pub has_repository: bool,
}

/// package.json is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("package.json is not a JSON object: {reason}")]
pub struct ManifestError {
    /// The parser's message.
    pub reason: String,
}

impl PackageManifest {
    /// Parses the bytes of a package.json.
    pub fn parse(bytes: &[u8]) -> Result<PackageManifest, ManifestError> {
        // npm strips a UTF-8 BOM before parsing; so do we.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let value: Value =
            serde_json::from_slice(bytes).map_err(|error| ManifestError { reason: error.to_string() })?;
        let Value::Object(object) = value else {
            return Err(ManifestError { reason: "the top level is not an object".to_owned() });
        };
        let string_field = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
        let name = string_field("name");
        let string_map = |value: Option<&Value>| -> BTreeMap<String, String> {
            let Some(Value::Object(entries)) = value else { return BTreeMap::new() };
            entries.iter().filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned()))).collect()
        };
        let scripts = string_map(object.get("scripts"));
        let mut dependencies = BTreeMap::new();
        for field in DEPENDENCY_FIELDS {
            let entries = string_map(object.get(field));
            if !entries.is_empty() {
                dependencies.insert(field.to_owned(), entries);
            }
        }
        let bin = match object.get("bin") {
            Some(Value::String(path)) => {
                let command = name.rsplit('/').next().unwrap_or(&name).to_owned();
                BTreeMap::from([(command, path.clone())])
            }
            other => string_map(other),
        };
        let has_repository = match object.get("repository") {
            Some(Value::String(url)) => !url.trim().is_empty(),
            Some(Value::Object(inner)) => {
                inner.get("url").and_then(Value::as_str).is_some_and(|url| !url.trim().is_empty())
            }
            _ => false,
        };
        let mut own_hosts = Vec::new();
        for key in ["homepage", "repository", "bugs"] {
            let url = match object.get(key) {
                Some(Value::String(url)) => Some(url.as_str()),
                Some(Value::Object(inner)) => inner.get("url").and_then(Value::as_str),
                _ => None,
            };
            if let Some(host) = url.and_then(crate::rules::text::url_host) {
                own_hosts.push(host);
            }
        }
        own_hosts.sort();
        own_hosts.dedup();
        Ok(PackageManifest {
            version: string_field("version"),
            name,
            scripts,
            dependencies,
            bin,
            own_hosts,
            gypfile_disabled: object.get("gypfile") == Some(&Value::Bool(false)),
            description: string_field("description"),
            has_repository,
        })
    }

    /// The install-time lifecycle scripts that are present, in the order npm runs them.
    pub fn install_scripts(&self) -> impl Iterator<Item = (&'static str, &str)> {
        INSTALL_LIFECYCLE_SCRIPTS.into_iter().filter_map(|name| Some((name, self.scripts.get(name)?.as_str())))
    }
}
