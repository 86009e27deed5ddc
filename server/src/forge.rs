//! The forge client: fetches a repository's source archive at a commit or tag from a
//! GitHub-compatible HTTP API (`GET {api}/repos/{owner}/{repo}/tarball/{ref}`), with a
//! size limit, bounded timeouts and an on-disk cache keyed by commit, and runs the
//! scanner's source match over it.
//!
//! The API base URL comes from configuration; `https://api.github.com` is only the
//! documented default, and GitHub Enterprise (`https://ghe.example.com/api/v3`) works
//! the same way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use airlock_scanner::Severity;
use airlock_scanner::provenance::{
    ArchiveLimits, FileTree, ProvenanceIdentity, RepositoryId, SourceMatchOutcome, SourceResolution,
    UnverifiableReason, compare_with_source, resolve_source,
};
use bytes::Bytes;
use reqwest::StatusCode;

/// The public GitHub API, the default forge.
pub const DEFAULT_GITHUB_API_URL: &str = "https://api.github.com";

/// How long a forge that could not be connected to is reported unreachable without a new
/// attempt (see [`ForgeSettings::unreachable_backoff`]).
pub const DEFAULT_UNREACHABLE_BACKOFF: Duration = Duration::from_secs(30);

/// How to reach one forge.
#[derive(Debug, Clone)]
pub struct ForgeSettings {
    /// The API base URL, without a trailing slash, such as `https://api.github.com`.
    pub api_base_url: String,
    /// The web host whose repositories this API serves (`github.com`); a repository on
    /// another host is "unsupported forge", never fetched from this API.
    pub repository_host: String,
    /// Optional token, sent as `Authorization: Bearer` to the API host only.
    pub token: Option<String>,
    /// The largest archive downloaded, compressed.
    pub max_archive_bytes: u64,
    /// Limits for unpacking the archive.
    pub archive_limits: ArchiveLimits,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout, redirects and body included.
    pub request_timeout: Duration,
    /// Where archives are cached, by commit; the client creates it.
    pub cache_directory: PathBuf,
    /// After the forge could not be connected to, how long further requests fail at once
    /// (as "unreachable", naming the first failure) instead of each waiting for its own
    /// connect timeout.
    pub unreachable_backoff: Duration,
}

impl ForgeSettings {
    /// Settings for public GitHub with conservative limits, caching under `cache_directory`.
    pub fn github(cache_directory: PathBuf) -> ForgeSettings {
        ForgeSettings {
            api_base_url: DEFAULT_GITHUB_API_URL.to_owned(),
            repository_host: "github.com".to_owned(),
            token: None,
            max_archive_bytes: 100 * 1024 * 1024,
            archive_limits: ArchiveLimits::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            cache_directory,
            unreachable_backoff: DEFAULT_UNREACHABLE_BACKOFF,
        }
    }
}

/// Why an archive could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// The forge answered 404: the repository or the ref does not exist (or is private).
    #[error("{repository} has no ref `{reference}` (HTTP 404)")]
    NotFound {
        /// `owner/repo`.
        repository: String,
        /// The ref asked for.
        reference: String,
    },
    /// Any other non-success status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The archive is larger than allowed.
    #[error("the archive at {url} is larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The request timed out.
    #[error("{url} timed out")]
    Timeout {
        /// The URL.
        url: String,
    },
    /// Connection or protocol failure.
    #[error("{url} is unreachable: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// An owner, repository or ref that would be unsafe in a URL or a cache path.
    #[error("refusing suspicious repository or ref `{0}`")]
    InvalidName(String),
    /// The cache directory could not be written or read.
    #[error("forge cache: {0}")]
    Cache(#[from] std::io::Error),
    /// The HTTP client could not be built.
    #[error("building the forge HTTP client: {0}")]
    Client(String),
}

/// A downloaded (or cached) source archive.
#[derive(Debug, Clone)]
pub struct SourceArchive {
    /// The ref that was fetched.
    pub reference: String,
    /// The commit, when known (the ref itself, or the archive's pax `comment`).
    pub commit: Option<String>,
    /// The gzipped tar bytes.
    pub bytes: Bytes,
    /// True when served from the on-disk cache.
    pub from_cache: bool,
}

/// A client for one forge.
#[derive(Debug, Clone)]
pub struct ForgeClient {
    http: reqwest::Client,
    settings: ForgeSettings,
    // Why only connection failures open this: they say the forge itself is out of reach,
    // for every repository. A slow answer for one repository (which a package's author
    // can provoke with a huge repository) must not blind the source match of others.
    unreachable: std::sync::Arc<std::sync::Mutex<Option<Unreachable>>>,
}

/// The forge could not be connected to: since when, and why.
#[derive(Debug, Clone)]
struct Unreachable {
    since: std::time::Instant,
    reason: String,
}

impl ForgeClient {
    /// Builds the client (rustls; no request is made).
    pub fn new(settings: ForgeSettings) -> Result<ForgeClient, ForgeError> {
        // Why the default redirect policy is fine: GitHub answers the tarball endpoint
        // with a redirect to codeload.github.com, and reqwest drops the Authorization
        // header when a redirect leaves the original host, so the token stays with the API.
        let http = reqwest::Client::builder()
            .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .build()
            .map_err(|error| ForgeError::Client(error.to_string()))?;
        let mut settings = settings;
        settings.api_base_url = settings.api_base_url.trim_end_matches('/').to_owned();
        settings.repository_host = settings.repository_host.to_ascii_lowercase();
        Ok(ForgeClient { http, settings, unreachable: Default::default() })
    }

    /// The settings in use.
    pub fn settings(&self) -> &ForgeSettings {
        &self.settings
    }

    /// Fetches the archive of `owner/repo` at `reference` (a commit, tag or branch).
    /// A full commit id is served from the cache when present; archives are cached by
    /// the commit they contain, never by a tag or branch name, which can move.
    pub async fn fetch_archive(&self, owner: &str, repo: &str, reference: &str) -> Result<SourceArchive, ForgeError> {
        check_path_segment(owner)?;
        check_path_segment(repo)?;
        check_reference(reference)?;
        if is_full_commit(reference)
            && let Some(bytes) = self.read_cache(owner, repo, reference).await?
        {
            return Ok(SourceArchive {
                reference: reference.to_owned(),
                commit: Some(reference.to_ascii_lowercase()),
                bytes,
                from_cache: true,
            });
        }
        let url =
            format!("{}/repos/{owner}/{repo}/tarball/{}", self.settings.api_base_url, encode_reference(reference));
        let response = self.get(&url).await?;
        match response.status() {
            status if status.is_success() => {}
            StatusCode::NOT_FOUND => {
                return Err(ForgeError::NotFound {
                    repository: format!("{owner}/{repo}"),
                    reference: reference.to_owned(),
                });
            }
            status => {
                return Err(ForgeError::Status { url, status: status.as_u16() });
            }
        }
        let bytes = self.read_body(response, &url).await?;
        let commit =
            if is_full_commit(reference) { Some(reference.to_ascii_lowercase()) } else { archive_commit(&bytes) };
        if let Some(commit) = &commit {
            self.write_cache(owner, repo, commit, &bytes).await?;
        }
        Ok(SourceArchive { reference: reference.to_owned(), commit, bytes, from_cache: false })
    }

    /// Whether the repository exists (`GET {api}/repos/{owner}/{repo}` is 200), to tell a
    /// missing repository from a missing tag.
    pub async fn repository_exists(&self, owner: &str, repo: &str) -> Result<bool, ForgeError> {
        check_path_segment(owner)?;
        check_path_segment(repo)?;
        let url = format!("{}/repos/{owner}/{repo}", self.settings.api_base_url);
        let response = self.get(&url).await?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => Err(ForgeError::Status { url, status: status.as_u16() }),
        }
    }

    /// Fetches the archive for a resolved source: the commit, or the first tag
    /// candidate that exists. Failures become the reason the source is unverifiable.
    pub async fn fetch_resolved(&self, resolution: &SourceResolution) -> Result<SourceArchive, UnverifiableReason> {
        let (owner, repo) = self.owner_and_repo(&resolution.repository)?;
        let references = resolution.revision.refs();
        for reference in &references {
            match self.fetch_archive(owner, repo, reference).await {
                Ok(archive) => return Ok(archive),
                Err(ForgeError::NotFound { .. }) => continue,
                Err(error) => return Err(unverifiable(error)),
            }
        }
        match self.repository_exists(owner, repo).await {
            Ok(false) => Err(UnverifiableReason::RepositoryNotFound(resolution.repository.to_string())),
            Ok(true) => Err(UnverifiableReason::RevisionNotFound {
                repository: resolution.repository.to_string(),
                tried: references,
            }),
            Err(error) => Err(unverifiable(error)),
        }
    }

    /// The whole source match for one version: resolve the source from the verified
    /// provenance (or package.json), fetch it, unpack it and compare it with the
    /// tarball. Never a silent pass: anything that prevents the comparison is
    /// `Unverifiable` at `unverifiable_severity`.
    pub async fn match_source(
        &self,
        tarball: &FileTree,
        identity: Option<&ProvenanceIdentity>,
        unverifiable_severity: Severity,
    ) -> SourceMatchOutcome {
        let unverifiable = |reason| SourceMatchOutcome::Unverifiable { reason, severity: unverifiable_severity };
        let Some(package_json) =
            tarball.get("package.json").and_then(|file| serde_json::from_slice::<serde_json::Value>(&file.bytes).ok())
        else {
            return unverifiable(UnverifiableReason::NoPackageJson);
        };
        let resolution = match resolve_source(&package_json, identity) {
            Ok(resolution) => resolution,
            Err(reason) => return unverifiable(reason),
        };
        let archive = match self.fetch_resolved(&resolution).await {
            Ok(archive) => archive,
            Err(reason) => return unverifiable(reason),
        };
        let limits = self.settings.archive_limits;
        let tarball = tarball.clone();
        let directory = resolution.directory.clone();
        // Unpacking and diffing are CPU-bound; keep them off the async workers.
        let compared = tokio::task::spawn_blocking(move || {
            let source = FileTree::from_tar_gz(&archive.bytes, limits)
                .map_err(|error| UnverifiableReason::ArchiveUnreadable(error.to_string()))?;
            compare_with_source(&tarball, &source, directory.as_deref())
                .map(|result| (result, archive.commit.unwrap_or(archive.reference)))
        })
        .await;
        match compared {
            Ok(Ok((result, fetched_ref))) => {
                SourceMatchOutcome::Compared { source: resolution, fetched_ref, result: Box::new(result) }
            }
            Ok(Err(reason)) => unverifiable(reason),
            Err(join_error) => {
                unverifiable(UnverifiableReason::ArchiveUnreadable(format!("comparison task failed: {join_error}")))
            }
        }
    }

    fn owner_and_repo<'a>(&self, repository: &'a RepositoryId) -> Result<(&'a str, &'a str), UnverifiableReason> {
        if repository.host != self.settings.repository_host {
            return Err(UnverifiableReason::UnsupportedForge(repository.to_string()));
        }
        repository.owner_and_name().ok_or_else(|| UnverifiableReason::UnsupportedForge(repository.to_string()))
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, ForgeError> {
        let mut request = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(token) = &self.settings.token {
            request = request.bearer_auth(token);
        }
        if let Some(unreachable) = self.recently_unreachable() {
            return Err(ForgeError::Unreachable {
                url: url.to_owned(),
                reason: format!(
                    "not retried: the forge could not be connected to {}s ago ({}); the next attempt is made {}s after that",
                    unreachable.since.elapsed().as_secs(),
                    unreachable.reason,
                    self.settings.unreachable_backoff.as_secs()
                ),
            });
        }
        match request.send().await {
            Ok(response) => {
                *self.unreachable.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
                Ok(response)
            }
            Err(error) => {
                if error.is_connect() {
                    let reason = error_chain(&error);
                    tracing::warn!(url, %reason, "the forge could not be connected to; source matches report it unreachable for a while");
                    *self.unreachable.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
                        Some(Unreachable { since: std::time::Instant::now(), reason });
                }
                Err(transport_error(url, &error))
            }
        }
    }

    /// The last connection failure, if it is younger than the backoff.
    fn recently_unreachable(&self) -> Option<Unreachable> {
        let unreachable = self.unreachable.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        unreachable.clone().filter(|unreachable| unreachable.since.elapsed() < self.settings.unreachable_backoff)
    }

    async fn read_body(&self, mut response: reqwest::Response, url: &str) -> Result<Bytes, ForgeError> {
        let limit = self.settings.max_archive_bytes;
        let too_large = || ForgeError::TooLarge { url: url.to_owned(), limit };
        if response.content_length().is_some_and(|length| length > limit) {
            return Err(too_large());
        }
        // Why chunk by chunk: a forge (or whatever answers at its URL) may send more
        // than it announced, or announce nothing; memory stays bounded by the limit.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| transport_error(url, &error))? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }

    fn cache_path(&self, owner: &str, repo: &str, commit: &str) -> PathBuf {
        // Every component was checked by `check_path_segment` or is hex; the host is
        // configuration. Lowercased so one repository has one cache entry.
        self.settings
            .cache_directory
            .join(sanitize_host(&self.settings.repository_host))
            .join(owner.to_ascii_lowercase())
            .join(repo.to_ascii_lowercase())
            .join(format!("{}.tar.gz", commit.to_ascii_lowercase()))
    }

    async fn read_cache(&self, owner: &str, repo: &str, commit: &str) -> Result<Option<Bytes>, ForgeError> {
        let path = self.cache_path(owner, repo, commit);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(ForgeError::Cache(error)),
        }
    }

    async fn write_cache(&self, owner: &str, repo: &str, commit: &str, bytes: &[u8]) -> Result<(), ForgeError> {
        let path = self.cache_path(owner, repo, commit);
        let directory = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(directory).await?;
        // Write then rename, so a crash or a concurrent reader never sees half an archive;
        // the counter keeps two concurrent downloads of one commit apart.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temporary =
            directory.join(format!(".{}.{}.{write}.partial", commit.to_ascii_lowercase(), std::process::id()));
        tokio::fs::write(&temporary, bytes).await?;
        tokio::fs::rename(&temporary, &path).await?;
        Ok(())
    }
}

fn unverifiable(error: ForgeError) -> UnverifiableReason {
    match error {
        ForgeError::TooLarge { .. } => UnverifiableReason::ArchiveUnreadable(error.to_string()),
        ForgeError::InvalidName(_) => UnverifiableReason::UnsupportedForge(error.to_string()),
        _ => UnverifiableReason::ForgeUnreachable(error.to_string()),
    }
}

/// An error and its sources in one line (reqwest's own message omits the cause).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn transport_error(url: &str, error: &reqwest::Error) -> ForgeError {
    if error.is_timeout() {
        ForgeError::Timeout { url: url.to_owned() }
    } else {
        ForgeError::Unreachable { url: url.to_owned(), reason: error.to_string() }
    }
}

fn is_full_commit(reference: &str) -> bool {
    (reference.len() == 40 || reference.len() == 64) && reference.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// Owner and repository names as GitHub allows them; anything else could change the
/// URL's meaning or escape the cache directory.
fn check_path_segment(segment: &str) -> Result<(), ForgeError> {
    let valid = !segment.is_empty()
        && segment.len() <= 100
        && !segment.starts_with('.')
        && segment.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
    if valid { Ok(()) } else { Err(ForgeError::InvalidName(segment.to_owned())) }
}

/// Refs as git allows them, minus anything that could change the URL's meaning.
fn check_reference(reference: &str) -> Result<(), ForgeError> {
    let valid = !reference.is_empty()
        && reference.len() <= 255
        && !reference.starts_with(['-', '/'])
        && !reference.contains("..")
        && !reference.contains("//")
        && reference
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'/' | b'@' | b'+'));
    if valid { Ok(()) } else { Err(ForgeError::InvalidName(reference.to_owned())) }
}

/// Percent-encodes `@` and `+` (valid in tags such as `@scope/name@1.0.0`); `/` stays,
/// as GitHub reads the rest of the path as the ref.
fn encode_reference(reference: &str) -> String {
    reference.replace('@', "%40").replace('+', "%2B")
}

fn sanitize_host(host: &str) -> String {
    host.chars()
        .map(
            |character| {
                if character.is_ascii_alphanumeric() || matches!(character, '-' | '.') { character } else { '_' }
            },
        )
        .collect()
}

/// The commit `git archive` records in the pax global header's `comment` record (GitHub
/// and `git archive` both write it for a commit-ish), read from the first blocks only.
fn archive_commit(gzipped: &[u8]) -> Option<String> {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(2048);
    flate2::read::GzDecoder::new(gzipped).take(2048).read_to_end(&mut head).ok()?;
    // ustar header: type flag at offset 156; 'g' is a pax global header whose records
    // ("<length> <key>=<value>\n") start in the next 512-byte block.
    if head.len() < 1024 || head[156] != b'g' {
        return None;
    }
    let size_field = std::str::from_utf8(&head[124..136]).ok()?;
    let size = usize::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8).ok()?;
    let records = head.get(512..512 + size.min(head.len() - 512))?;
    let records = std::str::from_utf8(records).ok()?;
    records.lines().find_map(|record| {
        let (_, key_value) = record.split_once(' ')?;
        let commit = key_value.strip_prefix("comment=")?;
        is_full_commit(commit).then(|| commit.to_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_and_names_that_could_change_the_url_are_refused() {
        for bad in ["..", "a/../b", "-rf", "/abs", "a b", "a?b", "a#b", "a%2f"] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
        for good in ["v1.0.0", "1.0.0", "@scope/name@1.0.0", "refs/tags/v1", "1.0.0+build"] {
            assert!(check_reference(good).is_ok(), "{good}");
        }
        for bad in ["", ".git", "a/b", "..", "o%2e"] {
            assert!(check_path_segment(bad).is_err(), "{bad}");
        }
        assert_eq!(encode_reference("@s/p@1.0.0"), "%40s/p%401.0.0");
    }
}
