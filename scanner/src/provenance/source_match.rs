//! The source-repository match: the tarball's files against the repository's files at
//! the version's commit or tag, file by file.
//!
//! This is the check that catches a tarball that is a faithful copy of a project plus
//! one malicious line (postmark-mcp 1.0.16 added a `Bcc:` to `index.js`). Fetching the
//! archive is the server's job (`server::forge`); this resolves what to fetch and
//! compares what was fetched.

use serde::Serialize;

use super::archive::{FileTree, TreeFile};
use super::attestations::ProvenanceIdentity;
use super::identity::{RepositoryId, normalize_repository_url, package_json_repository};
use crate::{Finding, Location, Severity};

/// Where the commit to compare against came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitSource {
    /// The verified provenance's source commit.
    Provenance,
    /// package.json's `gitHead`, which npm writes at publish time (not authenticated).
    GitHead,
}

/// Which revision of the repository the tarball should equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SourceRevision {
    /// A known commit.
    Commit {
        /// The full commit id.
        sha: String,
        /// Where it came from.
        from: CommitSource,
    },
    /// No commit is known; try these tags in order (`v{version}`, `{version}`,
    /// `{name}@{version}`).
    Tags {
        /// The tag names.
        candidates: Vec<String>,
    },
}

impl SourceRevision {
    /// The refs to ask the forge for, in order.
    pub fn refs(&self) -> Vec<String> {
        match self {
            SourceRevision::Commit { sha, .. } => vec![sha.clone()],
            SourceRevision::Tags { candidates } => candidates.clone(),
        }
    }
}

/// What to fetch from the forge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceResolution {
    /// The repository.
    pub repository: RepositoryId,
    /// The monorepo directory from package.json's `repository.directory`, when it
    /// names the same repository. `None` means "find the directory by package name".
    pub directory: Option<String>,
    /// The revision.
    pub revision: SourceRevision,
}

/// Why the tarball could not be compared with its source. Never a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum UnverifiableReason {
    /// Neither provenance nor package.json names a repository.
    #[error("the package names no source repository")]
    NoRepository,
    /// package.json's `repository` is not a URL of a repository.
    #[error("package.json's repository `{0}` is not a repository URL")]
    UnreadableRepository(String),
    /// The repository is not on the configured forge.
    #[error("repository `{0}` is not on a supported forge")]
    UnsupportedForge(String),
    /// The forge could not be reached or failed.
    #[error("the forge is unreachable: {0}")]
    ForgeUnreachable(String),
    /// The forge says the repository does not exist (or is private).
    #[error("repository `{0}` was not found on the forge")]
    RepositoryNotFound(String),
    /// None of the refs exists.
    #[error("none of {tried:?} exists in `{repository}`")]
    RevisionNotFound {
        /// The repository.
        repository: String,
        /// The refs tried.
        tried: Vec<String>,
    },
    /// The source archive could not be read.
    #[error("the source archive is unreadable: {0}")]
    ArchiveUnreadable(String),
    /// No directory of the repository holds a package.json with this name.
    #[error("no package.json named `{0}` in the repository")]
    PackageNotFound(String),
    /// The tarball itself has no readable package.json.
    #[error("the tarball has no readable package.json")]
    NoPackageJson,
}

/// One file present in both and different.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DifferingFile {
    /// Path relative to the package root.
    pub path: String,
    /// Unified diff from the repository's file (`a/`) to the tarball's (`b/`).
    pub diff: String,
    /// 1-based lines of the tarball's file that are not in the repository's.
    pub added_lines: Vec<u32>,
    /// 1-based lines of the repository's file that are not in the tarball's.
    pub removed_lines: Vec<u32>,
    /// How bad the difference is: high for code, lower for documentation.
    pub severity: Severity,
}

/// The comparison of a tarball with its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceMatchResult {
    /// The package's directory inside the repository (`""` for the root).
    pub package_directory: String,
    /// Files equal in both.
    pub identical: Vec<String>,
    /// Files in both that differ.
    pub differing: Vec<DifferingFile>,
    /// Files only in the tarball that are not build output.
    pub only_in_tarball: Vec<String>,
    /// Files only in the repository (tests, configuration: normal).
    pub only_in_repository: Vec<String>,
    /// Files only in the tarball under the package's declared build output.
    pub build_output: Vec<String>,
    /// Set when the repository publishes a package of another name and the files were
    /// compared with that package: the package claims someone else's repository.
    pub name_mismatch: Option<NameMismatch>,
}

/// The tarball's package name and the one the claimed repository publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameMismatch {
    /// The name in the tarball's package.json.
    pub tarball: String,
    /// The name in the repository's package.json at the compared directory.
    pub repository: String,
}

/// The outcome of the source match, whatever happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum SourceMatchOutcome {
    /// The tarball was compared with the repository.
    Compared {
        /// The repository and revision compared with.
        source: SourceResolution,
        /// The ref that was fetched (a commit or the tag that existed).
        fetched_ref: String,
        /// The comparison (boxed: it is much larger than the other variant).
        result: Box<SourceMatchResult>,
    },
    /// The comparison could not be made.
    Unverifiable {
        /// Why.
        reason: UnverifiableReason,
        /// The configured severity of an unverifiable source.
        severity: Severity,
    },
}

impl SourceMatchOutcome {
    /// The findings: `source-mismatch` per differing file and per executable file only
    /// in the tarball, `source-extra-files` (low) for other tarball-only files,
    /// `source-build-output` and `source-match` (info), or `source-unverifiable` at the
    /// configured severity.
    pub fn findings(&self) -> Vec<Finding> {
        match self {
            SourceMatchOutcome::Unverifiable { reason, severity } => vec![Finding {
                rule: "source-unverifiable".to_owned(),
                severity: *severity,
                message: format!("The tarball could not be compared with its source: {reason}."),
                location: None,
                excerpt: None,
            }],
            SourceMatchOutcome::Compared { source, fetched_ref, result } => {
                result.findings(&format!("{}@{fetched_ref}", source.repository))
            }
        }
    }
}

impl SourceMatchResult {
    /// The findings, naming the source as `source_label` (such as
    /// `github.com/o/r@abc123`).
    pub fn findings(&self, source_label: &str) -> Vec<Finding> {
        let mut findings = Vec::new();
        if let Some(mismatch) = &self.name_mismatch {
            findings.push(Finding {
                rule: "source-name-mismatch".to_owned(),
                severity: Severity::Medium,
                message: format!(
                    "{source_label} publishes `{}`, not `{}`: this package claims another package's repository \
                     (how the fake postmark-mcp posed as the real one), or is a fork published under a new name. \
                     Its files were compared with `{}`'s.",
                    mismatch.repository, mismatch.tarball, mismatch.repository
                ),
                location: Some(Location { file: "package.json".to_owned(), line: None, column: None }),
                excerpt: None,
            });
        }
        for file in &self.differing {
            let line = file.added_lines.first().copied();
            let what = match (file.added_lines.len(), file.removed_lines.len()) {
                (0, removed) => format!("{removed} line(s) of the repository's file are missing"),
                (added, 0) => format!("{added} line(s) are not in the repository"),
                (added, removed) => {
                    format!("{added} line(s) are not in the repository and {removed} of its line(s) are missing")
                }
            };
            let lines = if file.added_lines.is_empty() {
                String::new()
            } else {
                format!(" (lines {})", format_lines(&file.added_lines))
            };
            findings.push(Finding {
                rule: "source-mismatch".to_owned(),
                severity: file.severity,
                message: format!("`{}` differs from {source_label}: {what}{lines}.", file.path),
                location: Some(Location { file: file.path.clone(), line, column: None }),
                excerpt: Some(changed_lines_excerpt(&file.diff)),
            });
        }
        let (executable, other): (Vec<&String>, Vec<&String>) =
            self.only_in_tarball.iter().partition(|path| is_code_path(path));
        for path in executable {
            findings.push(Finding {
                rule: "source-mismatch".to_owned(),
                severity: Severity::High,
                message: format!(
                    "`{path}` is in the tarball but not in {source_label}, and is not declared build output."
                ),
                location: Some(Location { file: path.clone(), line: None, column: None }),
                excerpt: None,
            });
        }
        if !other.is_empty() {
            findings.push(Finding {
                rule: "source-extra-files".to_owned(),
                severity: Severity::Low,
                message: format!(
                    "{} file(s) are in the tarball but not in {source_label}: {}.",
                    other.len(),
                    list_some(&other)
                ),
                location: None,
                excerpt: None,
            });
        }
        if !self.build_output.is_empty() {
            findings.push(Finding {
                rule: "source-build-output".to_owned(),
                severity: Severity::Info,
                message: format!(
                    "{} file(s) are build output, not in the repository and not compared: {}.",
                    self.build_output.len(),
                    list_some(&self.build_output.iter().collect::<Vec<_>>())
                ),
                location: None,
                excerpt: None,
            });
        }
        findings.push(Finding {
            rule: "source-match".to_owned(),
            severity: Severity::Info,
            message: format!(
                "{} file(s) identical to {source_label}{}, {} differ, {} only in the tarball.",
                self.identical.len(),
                if self.package_directory.is_empty() {
                    String::new()
                } else {
                    format!(" (directory `{}`)", self.package_directory)
                },
                self.differing.len(),
                self.only_in_tarball.len()
            ),
            location: None,
            excerpt: None,
        });
        findings
    }
}

fn format_lines(lines: &[u32]) -> String {
    let mut text = lines.iter().take(10).map(u32::to_string).collect::<Vec<_>>().join(", ");
    if lines.len() > 10 {
        text.push_str(", …");
    }
    text
}

fn list_some(paths: &[&String]) -> String {
    let mut text = paths.iter().take(5).map(|path| format!("`{path}`")).collect::<Vec<_>>().join(", ");
    if paths.len() > 5 {
        text.push_str(&format!(" and {} more", paths.len() - 5));
    }
    text
}

/// The changed lines of a unified diff (at most eight), for a finding's excerpt.
fn changed_lines_excerpt(diff: &str) -> String {
    diff.lines()
        .filter(|line| {
            (line.starts_with('+') && !line.starts_with("+++")) || (line.starts_with('-') && !line.starts_with("---"))
        })
        .take(8)
        .map(|line| truncate_line(line, 300))
        .collect::<Vec<_>>()
        .join("\n")
}

fn truncate_line(line: &str, max_chars: usize) -> String {
    if line.chars().count() <= max_chars {
        line.to_owned()
    } else {
        let mut truncated: String = line.chars().take(max_chars).collect();
        truncated.push('…');
        truncated
    }
}

/// Decides what to compare against: the repository from provenance (else
/// package.json's `repository`), the commit from provenance (else `gitHead`, else tag
/// candidates). The server fetches `revision.refs()` in order from the forge.
pub fn resolve_source(
    package_json: &serde_json::Value,
    identity: Option<&ProvenanceIdentity>,
) -> Result<SourceResolution, UnverifiableReason> {
    let declared = package_json_repository(package_json);
    let repository = match identity {
        Some(identity) => normalize_repository_url(&identity.source_repository_uri)
            .ok_or_else(|| UnverifiableReason::UnreadableRepository(identity.source_repository_uri.clone()))?,
        None => match &declared {
            Some((repository, _)) => repository.clone(),
            None => {
                return Err(match repository_text(package_json) {
                    Some(text) => UnverifiableReason::UnreadableRepository(text),
                    None => UnverifiableReason::NoRepository,
                });
            }
        },
    };
    // The directory hint only applies when package.json talks about the same repository.
    let directory = declared.filter(|(declared, _)| *declared == repository).and_then(|(_, directory)| directory);
    let git_head = package_json.get("gitHead").and_then(|value| value.as_str()).filter(|sha| is_commit_sha(sha));
    let revision = match identity.and_then(|identity| identity.source_commit.as_deref()) {
        Some(sha) => SourceRevision::Commit { sha: sha.to_owned(), from: CommitSource::Provenance },
        None => match git_head {
            Some(sha) => SourceRevision::Commit { sha: sha.to_owned(), from: CommitSource::GitHead },
            None => {
                let version = package_json.get("version").and_then(|value| value.as_str()).unwrap_or_default();
                let name = package_json.get("name").and_then(|value| value.as_str()).unwrap_or_default();
                SourceRevision::Tags {
                    candidates: vec![format!("v{version}"), version.to_owned(), format!("{name}@{version}")],
                }
            }
        },
    };
    Ok(SourceResolution { repository, directory, revision })
}

fn repository_text(package_json: &serde_json::Value) -> Option<String> {
    match package_json.get("repository")? {
        serde_json::Value::String(text) => Some(text.clone()),
        other => other.get("url").and_then(|url| url.as_str()).map(str::to_owned),
    }
}

fn is_commit_sha(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// The repository directory holding this package: the `directory` hint when its
/// package.json has the name, else the root, else the shallowest directory whose
/// package.json has the name (outside `node_modules`).
pub fn find_package_directory(source: &FileTree, package_name: &str, directory_hint: Option<&str>) -> Option<String> {
    let name_at = |directory: &str| {
        let path = if directory.is_empty() { "package.json".to_owned() } else { format!("{directory}/package.json") };
        source
            .get(&path)
            .and_then(|file| serde_json::from_slice::<serde_json::Value>(&file.bytes).ok())
            .and_then(|json| json.get("name").and_then(|name| name.as_str()).map(str::to_owned))
    };
    if let Some(hint) = directory_hint {
        let hint = hint.trim_matches('/');
        if name_at(hint).as_deref() == Some(package_name) {
            return Some(hint.to_owned());
        }
    }
    if name_at("").as_deref() == Some(package_name) {
        return Some(String::new());
    }
    source
        .files
        .keys()
        .filter_map(|path| path.strip_suffix("/package.json"))
        .filter(|directory| !directory.split('/').any(|segment| segment == "node_modules"))
        .filter(|directory| name_at(directory).as_deref() == Some(package_name))
        .min_by_key(|directory| (directory.matches('/').count(), directory.len()))
        .map(str::to_owned)
}

/// The one package a repository publishes, when the tarball's name is not found in it:
/// the `directory` hint's package.json, else the root's when the repository is a single
/// package (the root is not a private workspace root and no other package.json exists
/// outside `node_modules`). Returns the directory and that package's name. A monorepo
/// without a matching directory gives `None`: which of its packages would be compared
/// is a guess.
fn single_package_directory(source: &FileTree, directory_hint: Option<&str>) -> Option<(String, String)> {
    let manifest_at = |directory: &str| {
        let path = if directory.is_empty() { "package.json".to_owned() } else { format!("{directory}/package.json") };
        source.get(&path).and_then(|file| serde_json::from_slice::<serde_json::Value>(&file.bytes).ok())
    };
    let name_of = |manifest: &serde_json::Value| manifest.get("name").and_then(|name| name.as_str()).map(str::to_owned);
    if let Some(hint) = directory_hint.map(|hint| hint.trim_matches('/'))
        && let Some(name) = manifest_at(hint).as_ref().and_then(name_of)
    {
        return Some((hint.to_owned(), name));
    }
    let root = manifest_at("")?;
    let workspace_root =
        root.get("private").and_then(serde_json::Value::as_bool) == Some(true) || root.get("workspaces").is_some();
    let other_manifests = source
        .files
        .keys()
        .any(|path| path.ends_with("/package.json") && !path.split('/').any(|segment| segment == "node_modules"));
    if workspace_root || other_manifests {
        return None;
    }
    Some((String::new(), name_of(&root)?))
}

/// Compares an unpacked npm tarball with the unpacked source archive.
///
/// `directory_hint` is [`SourceResolution::directory`]. Errors only when the package
/// cannot be located in the repository or has no package.json.
pub fn compare_with_source(
    tarball: &FileTree,
    source: &FileTree,
    directory_hint: Option<&str>,
) -> Result<SourceMatchResult, UnverifiableReason> {
    let package_json: serde_json::Value = tarball
        .get("package.json")
        .and_then(|file| serde_json::from_slice(&file.bytes).ok())
        .ok_or(UnverifiableReason::NoPackageJson)?;
    let name = package_json.get("name").and_then(|name| name.as_str()).ok_or(UnverifiableReason::NoPackageJson)?;
    // Why compare with a package of another name at all: a package that claims a
    // popular project's repository (the postmark-mcp impersonation) is exactly what the
    // file comparison must expose, line by line, not skip as "not found".
    let (directory, name_mismatch) = match find_package_directory(source, name, directory_hint) {
        Some(directory) => (directory, None),
        None => {
            let (directory, repository_name) = single_package_directory(source, directory_hint)
                .ok_or_else(|| UnverifiableReason::PackageNotFound(name.to_owned()))?;
            (directory, Some(NameMismatch { tarball: name.to_owned(), repository: repository_name }))
        }
    };
    let repository = source.subtree(&directory);
    let build_directories = build_output_directories(&package_json, &repository);

    let mut result = SourceMatchResult {
        package_directory: directory,
        identical: Vec::new(),
        differing: Vec::new(),
        only_in_tarball: Vec::new(),
        only_in_repository: Vec::new(),
        build_output: Vec::new(),
        name_mismatch,
    };
    for (path, file) in &tarball.files {
        // npm copies a README or licence from the repository root into a monorepo package.
        let repository_file = repository.get(path).or_else(|| {
            (is_root_document(path) && !result.package_directory.is_empty()).then(|| source.get(path)).flatten()
        });
        match repository_file {
            Some(repository_file) if path == "package.json" => {
                match compare_package_json(&file.bytes, &repository_file.bytes) {
                    None => result.identical.push(path.clone()),
                    Some(differing) => result.differing.push(differing),
                }
            }
            Some(repository_file) => {
                if same_text(&file.bytes, &repository_file.bytes) {
                    result.identical.push(path.clone());
                } else {
                    result.differing.push(diff_file(path, repository_file, file));
                }
            }
            None => {
                let first_segment = path.split('/').next().unwrap_or_default();
                let in_build_directory = path.contains('/') && build_directories.iter().any(|dir| dir == first_segment);
                if in_build_directory || compiled_from_typescript(path, &repository) {
                    result.build_output.push(path.clone());
                } else {
                    result.only_in_tarball.push(path.clone());
                }
            }
        }
    }
    result.only_in_repository =
        repository.files.keys().filter(|path| !tarball.files.contains_key(*path)).cloned().collect();
    Ok(result)
}

/// A `.js`/`.mjs`/`.cjs` file (or its `.map`) whose TypeScript source sits beside it,
/// or under `src/`, in the repository: compiled output of a source that is compared
/// through its own review, not an unexplained extra file.
fn compiled_from_typescript(path: &str, repository: &FileTree) -> bool {
    let path = path.strip_suffix(".map").unwrap_or(path);
    let Some((stem, extension)) = path.rsplit_once('.') else {
        return false;
    };
    let source_extensions: &[&str] = match extension {
        "js" => &["ts", "tsx"],
        "mjs" => &["mts", "ts"],
        "cjs" => &["cts", "ts"],
        _ => return false,
    };
    source_extensions.iter().any(|source_extension| {
        repository.get(&format!("{stem}.{source_extension}")).is_some()
            || repository.get(&format!("src/{stem}.{source_extension}")).is_some()
    })
}

fn is_root_document(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    !path.contains('/')
        && ["readme", "license", "licence", "changelog", "notice"].iter().any(|prefix| lower.starts_with(prefix))
}

/// Directory names conventionally holding generated output.
const BUILD_DIRECTORY_NAMES: [&str; 10] = ["dist", "lib", "build", "out", "esm", "cjs", "umd", "es", "bundle", "types"];

/// The top-level directories that package.json declares (through `main`, `module`,
/// `browser`, `types`, `bin`, `exports` or `files`), that have a conventional build
/// output name, and that the repository does not contain while it does contain
/// sources. Only those count as build output: a declared `lib/` that is committed to
/// the repository is source, and a new file in it is not excused.
fn build_output_directories(package_json: &serde_json::Value, repository: &FileTree) -> Vec<String> {
    let mut declared = Vec::new();
    for field in ["main", "module", "browser", "types", "typings", "bin", "exports", "files"] {
        if let Some(value) = package_json.get(field) {
            collect_strings(value, &mut declared);
        }
    }
    let has_sources =
        repository.files.keys().any(|path| is_code_path(path) || path.ends_with(".ts") || path.ends_with(".tsx"));
    if !has_sources {
        return Vec::new();
    }
    let mut directories: Vec<String> = declared
        .iter()
        .filter_map(|path| {
            let path = path.trim_start_matches("./");
            let (first, _) = path.split_once('/').unwrap_or((path, ""));
            BUILD_DIRECTORY_NAMES.contains(&first).then(|| first.to_owned())
        })
        .filter(|directory| {
            let prefix = format!("{directory}/");
            !repository.files.keys().any(|path| path.starts_with(&prefix))
        })
        .collect();
    directories.sort();
    directories.dedup();
    directories
}

fn collect_strings(value: &serde_json::Value, into: &mut Vec<String>) {
    match value {
        serde_json::Value::String(text) => into.push(text.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_strings(item, into)),
        serde_json::Value::Object(fields) => fields.values().for_each(|item| collect_strings(item, into)),
        _ => {}
    }
}

/// Code a package may run or load: JavaScript and TypeScript, native add-ons,
/// WebAssembly, shell and other scripts.
fn is_code_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let extension = lower.rsplit_once('.').map_or("", |(_, extension)| extension);
    [
        "js", "mjs", "cjs", "jsx", "ts", "mts", "cts", "tsx", "node", "wasm", "sh", "bash", "ps1", "bat", "cmd", "py",
        "exe", "dll", "so", "dylib",
    ]
    .contains(&extension)
        && !lower.ends_with(".d.ts")
        && !lower.ends_with(".d.mts")
        && !lower.ends_with(".d.cts")
}

/// Equal bytes, or equal text once CRLF line endings are normalised (git may check a
/// file out with either).
fn same_text(left: &[u8], right: &[u8]) -> bool {
    left == right || normalize_newlines(left) == normalize_newlines(right)
}

fn normalize_newlines(bytes: &[u8]) -> Vec<u8> {
    let mut normalized = Vec::with_capacity(bytes.len());
    let mut iter = bytes.iter().peekable();
    while let Some(&byte) = iter.next() {
        if byte == b'\r' && iter.peek() == Some(&&b'\n') {
            continue;
        }
        normalized.push(byte);
    }
    normalized
}

/// Files larger than this are reported as differing without a line diff (the diff
/// would be slow and unreadable; minified bundles are single huge lines anyway).
const MAX_DIFF_INPUT_BYTES: usize = 1024 * 1024;

fn diff_file(path: &str, repository: &TreeFile, tarball: &TreeFile) -> DifferingFile {
    let severity = if is_code_path(path) || tarball.executable {
        Severity::High
    } else if path.to_ascii_lowercase().ends_with(".md")
        || path.to_ascii_lowercase().ends_with(".txt")
        || is_root_document(path)
    {
        Severity::Low
    } else {
        Severity::Medium
    };
    let texts = (std::str::from_utf8(&repository.bytes), std::str::from_utf8(&tarball.bytes));
    let (Ok(old), Ok(new)) = texts else {
        return DifferingFile {
            path: path.to_owned(),
            diff: format!(
                "Binary files a/{path} ({} bytes) and b/{path} ({} bytes) differ\n",
                repository.bytes.len(),
                tarball.bytes.len()
            ),
            added_lines: Vec::new(),
            removed_lines: Vec::new(),
            severity,
        };
    };
    if old.len() > MAX_DIFF_INPUT_BYTES || new.len() > MAX_DIFF_INPUT_BYTES {
        return DifferingFile {
            path: path.to_owned(),
            diff: format!(
                "Files a/{path} ({} bytes) and b/{path} ({} bytes) differ; too large to diff\n",
                old.len(),
                new.len()
            ),
            added_lines: Vec::new(),
            removed_lines: Vec::new(),
            severity,
        };
    }
    let (old, new) = (old.replace("\r\n", "\n"), new.replace("\r\n", "\n"));
    line_diff(path, &old, &new, severity)
}

fn line_diff(path: &str, old: &str, new: &str, severity: Severity) -> DifferingFile {
    let diff = similar::TextDiff::from_lines(old, new);
    let mut added_lines = Vec::new();
    let mut removed_lines = Vec::new();
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => {
                if let Some(index) = change.new_index() {
                    added_lines.push(u32::try_from(index + 1).unwrap_or(u32::MAX));
                }
            }
            similar::ChangeTag::Delete => {
                if let Some(index) = change.old_index() {
                    removed_lines.push(u32::try_from(index + 1).unwrap_or(u32::MAX));
                }
            }
            similar::ChangeTag::Equal => {}
        }
    }
    let unified = diff.unified_diff().context_radius(3).header(&format!("a/{path}"), &format!("b/{path}")).to_string();
    DifferingFile {
        path: path.to_owned(),
        diff: unified.lines().map(|line| truncate_line(line, 1000)).collect::<Vec<_>>().join("\n") + "\n",
        added_lines,
        removed_lines,
        severity,
    }
}

/// Fields npm adds or rewrites at publish time; they never count as a difference.
fn is_publish_added_field(key: &str) -> bool {
    key.starts_with('_') || matches!(key, "gitHead" | "readme" | "readmeFilename" | "dist")
}

/// The fields that change what installing or loading the package runs.
const SIGNIFICANT_PACKAGE_FIELDS: [&str; 16] = [
    "name",
    "scripts",
    "main",
    "module",
    "browser",
    "bin",
    "exports",
    "imports",
    "dependencies",
    "optionalDependencies",
    "peerDependencies",
    "bundleDependencies",
    "bundledDependencies",
    "gypfile",
    "binary",
    "files",
];

/// Compares package.json on the fields that matter, after undoing npm's publish-time
/// normalisation (`./` prefixes of `bin`, a string `bin`). `None` when equivalent.
fn compare_package_json(tarball: &[u8], repository: &[u8]) -> Option<DifferingFile> {
    let parse = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).ok();
    let (Some(tarball_json), Some(repository_json)) = (parse(tarball), parse(repository)) else {
        return Some(DifferingFile {
            path: "package.json".to_owned(),
            diff: "package.json is not valid JSON in one of the two\n".to_owned(),
            added_lines: Vec::new(),
            removed_lines: Vec::new(),
            severity: Severity::High,
        });
    };
    let significant = |json: &serde_json::Value| {
        let mut fields = serde_json::Map::new();
        for key in SIGNIFICANT_PACKAGE_FIELDS {
            if is_publish_added_field(key) {
                continue;
            }
            if let Some(value) = json.get(key) {
                fields.insert(key.to_owned(), normalize_package_field(key, value, json));
            }
        }
        serde_json::Value::Object(fields)
    };
    let (tarball_fields, repository_fields) = (significant(&tarball_json), significant(&repository_json));
    if tarball_fields == repository_fields {
        return None;
    }
    let render = |value: &serde_json::Value| serde_json::to_string_pretty(value).unwrap_or_default() + "\n";
    let mut differing =
        line_diff("package.json", &render(&repository_fields), &render(&tarball_fields), Severity::Medium);
    // The line numbers are of the rendered fields, not the file: drop them.
    differing.added_lines.clear();
    differing.removed_lines.clear();
    let runs_something = ["scripts", "main", "module", "browser", "bin", "exports", "imports", "gypfile", "binary"]
        .iter()
        .any(|key| tarball_fields.get(key) != repository_fields.get(key));
    differing.severity = if runs_something { Severity::High } else { Severity::Medium };
    Some(differing)
}

fn normalize_package_field(key: &str, value: &serde_json::Value, json: &serde_json::Value) -> serde_json::Value {
    let strip = |text: &str| serde_json::Value::String(text.trim_start_matches("./").to_owned());
    match (key, value) {
        ("bin", serde_json::Value::String(path)) => {
            // A string `bin` means `{ <name without scope>: path }`.
            let name = json.get("name").and_then(|name| name.as_str()).unwrap_or_default();
            let command = name.rsplit('/').next().unwrap_or(name);
            serde_json::json!({ command: strip(path) })
        }
        ("bin", serde_json::Value::Object(commands)) => serde_json::Value::Object(
            commands
                .iter()
                .map(|(command, path)| {
                    let path = path.as_str().map_or_else(|| path.clone(), strip);
                    (command.clone(), path)
                })
                .collect(),
        ),
        ("main", serde_json::Value::String(path)) => strip(path),
        _ => value.clone(),
    }
}

#[cfg(test)]
mod tests;
