//! The configuration as written in TOML: every field optional, unknown keys rejected.
//! `crate::Config::from_raw` turns this into validated values.

use serde::Deserialize;

/// The whole file. Sections mirror the validated [`crate::Config`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[server]`.
    #[serde(default)]
    pub server: RawServer,
    /// `[upstream]`.
    #[serde(default)]
    pub upstream: RawUpstream,
    /// `[quarantine]`.
    #[serde(default)]
    pub quarantine: RawQuarantine,
    /// `[cache]`.
    #[serde(default)]
    pub cache: RawCache,
    /// `[limits]`.
    #[serde(default)]
    pub limits: RawLimits,
    /// `[log]`.
    #[serde(default)]
    pub log: RawLog,
    /// `[forge]`.
    #[serde(default)]
    pub forge: RawForge,
    /// `[admin]`.
    #[serde(default)]
    pub admin: RawAdmin,
    /// `[signing]`.
    #[serde(default)]
    pub signing: RawSigning,
    /// `[clients]`.
    #[serde(default)]
    pub clients: RawClients,
    /// `[notifications]`.
    #[serde(default)]
    pub notifications: RawNotifications,
    /// `[checks]`.
    #[serde(default)]
    pub checks: RawChecks,
    /// `[feeds]`.
    #[serde(default)]
    pub feeds: RawFeeds,
    /// `[storage]`.
    #[serde(default)]
    pub storage: RawStorage,
}

/// `[storage]` as written: where the metadata and the blobs (tarballs, raw packuments) live.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// `"dir"` (the data directory) or `"s3"` (an S3-compatible object store).
    pub blobs: Option<String>,
    /// The object store's URL, for stores other than AWS S3.
    pub s3_endpoint: Option<String>,
    /// The bucket.
    pub s3_bucket: Option<String>,
    /// The region (signing needs one even where the store has none).
    pub s3_region: Option<String>,
    /// A key prefix inside the bucket, so one bucket can hold several installations.
    pub s3_prefix: Option<String>,
    /// Disk space for verified copies of tarballs read from the bucket (0: none).
    pub s3_cache_size: Option<ByteSize>,
    /// `sled` (embedded, the default) or `postgres`.
    pub metadata: Option<String>,
    /// The PostgreSQL URL, for `metadata = "postgres"`.
    pub url: Option<String>,
    /// Most connections to PostgreSQL at once.
    pub pool_size: Option<u32>,
}

/// `[checks]` as written: how the check worker subprocess is bounded.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChecks {
    /// Address-space limit of one check worker.
    pub worker_memory_limit: Option<ByteSize>,
    /// CPU-time limit of one check worker.
    pub worker_cpu_time: Option<String>,
    /// Wall-clock deadline of one check worker.
    pub worker_deadline: Option<String>,
    /// Check attempts before a version is held instead of retried.
    pub max_attempts: Option<u32>,
    /// The executable re-run as the check worker (default: the running `airlock`).
    pub worker_executable: Option<String>,
}

/// `[feeds]` as written: known-malware feeds (OSV advisories) loaded from a directory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeeds {
    /// Directory of OSV `*.json` files (one advisory or an array each).
    pub directory: Option<String>,
    /// How often the directory is re-read, for example `"1h"`.
    pub refresh_interval: Option<String>,
}

/// `[notifications]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifications {
    /// URL that receives a JSON POST when a version is held, rejected or approved.
    pub webhook_url: Option<String>,
    /// Secret for the `X-Airlock-Signature` HMAC-SHA256 header (prefer the environment).
    pub webhook_secret: Option<String>,
    /// Delivery attempts before an event is dropped (logged).
    pub webhook_attempts: Option<u32>,
}

/// `[clients]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClients {
    /// Read tokens; when any is configured, every registry request needs one.
    #[serde(default)]
    pub tokens: Vec<RawAdminToken>,
    /// Sustained requests per second allowed per token.
    pub rate_limit_per_second: Option<u32>,
    /// Requests a token may send in a burst above the sustained rate.
    pub rate_limit_burst: Option<u32>,
}

/// `[server]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Socket address.
    pub listen: Option<String>,
    /// Public base URL.
    pub public_url: Option<String>,
    /// Data directory.
    pub data_dir: Option<String>,
    /// How long in-flight requests may take to finish on shutdown.
    pub shutdown_grace: Option<String>,
    /// Longest wait for a request's headers, and for the next request on an idle connection.
    pub header_read_timeout: Option<String>,
    /// Most client connections open at once.
    pub max_connections: Option<u32>,
    /// Space set aside for a start on a full disk.
    pub storage_reserve: Option<ByteSize>,
    /// Proxies whose `X-Forwarded-For` names the real client address.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// `[upstream]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// Base URL of the upstream registry.
    pub url: Option<String>,
    /// TCP and TLS connect timeout.
    pub connect_timeout: Option<String>,
    /// Whole-request timeout for metadata; idle timeout for tarball bodies.
    pub timeout: Option<String>,
    /// Retries after a connection error, a timeout or a 5xx.
    pub retries: Option<u32>,
    /// First retry delay; doubles each retry.
    pub retry_backoff: Option<String>,
    /// Cached packuments older than this are revalidated upstream.
    pub packument_max_age: Option<String>,
    /// A token sent to the upstream (prefer the environment variable).
    pub token: Option<String>,
    /// Hosts (`host` or `host:port`) an upstream may redirect to besides its own origin.
    #[serde(default)]
    pub redirect_hosts: Vec<String>,
    /// Other registries for some scopes, each with its own credentials.
    #[serde(default)]
    pub scopes: Vec<RawScopedUpstream>,
}

/// `[[upstream.scopes]]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScopedUpstream {
    /// The scope, such as `@mycompany`.
    pub scope: String,
    /// The registry that serves it.
    pub url: String,
    /// A token for that registry (or `token_env`).
    pub token: Option<String>,
    /// The name of an environment variable holding the token.
    pub token_env: Option<String>,
}

/// `[quarantine]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuarantine {
    /// Minimum age before a version is listed or served.
    pub cooling_period: Option<String>,
    /// Findings at or above this severity hold a version.
    pub hold_severity: Option<String>,
    /// Severity given to "source unverifiable" (forge unreachable, no repository).
    pub unverifiable_source_severity: Option<String>,
    /// How many versions are checked at once.
    pub check_concurrency: Option<usize>,
    /// Per-rule severity overrides, `rule-id = "severity"`.
    #[serde(default)]
    pub rule_severity: std::collections::BTreeMap<String, String>,
    /// Versions that skip the cooling period (still checked).
    #[serde(default)]
    pub allow: Vec<RawPackageRule>,
    /// Versions that are never installable.
    #[serde(default)]
    pub deny: Vec<RawPackageRule>,
    /// Packages whose versions must carry valid provenance.
    #[serde(default)]
    pub require_provenance: Vec<RawPackageRule>,
    /// A Sigstore `trusted_root.json` replacing the embedded public-good root.
    pub sigstore_trust_root: Option<String>,
    /// Expected provenance identities per package or scope.
    #[serde(default)]
    pub provenance_pins: Vec<RawProvenancePin>,
}

/// `[[quarantine.provenance_pins]]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvenancePin {
    /// `name`, `@scope/*`, `prefix*` or `*`.
    pub package: String,
    /// The repository provenance must name (any spelling npm accepts).
    pub repository: Option<String>,
    /// The workflow file, such as `.github/workflows/release.yml`.
    pub workflow: Option<String>,
    /// A glob over the git ref, such as `refs/tags/v*`.
    #[serde(rename = "ref")]
    pub ref_pattern: Option<String>,
}

/// A rule that matches packages and, optionally, a version range.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPackageRule {
    /// `name`, `@scope/*`, `prefix*` or `*`.
    pub package: String,
    /// An npm semver range such as `^1.2.0` or `1.x || >=3`.
    pub versions: Option<String>,
    /// Why the rule exists (shown to admins and clients).
    pub reason: Option<String>,
}

/// `[forge]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawForge {
    /// Base URL of the GitHub (or GitHub Enterprise) REST API.
    pub api_url: Option<String>,
    /// The web host whose repositories the API serves (`github.com`).
    pub repository_host: Option<String>,
    /// A token for the forge API (prefer the environment variable).
    pub token: Option<String>,
    /// Timeout of one source archive download.
    pub timeout: Option<String>,
    /// Largest source archive accepted.
    pub max_archive_size: Option<ByteSize>,
}

/// `[admin]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Admin API tokens, stored as SHA-256 hashes.
    #[serde(default)]
    pub tokens: Vec<RawAdminToken>,
    /// Admin web UI users, with argon2 password hashes.
    #[serde(default)]
    pub users: Vec<RawAdminUser>,
    /// Who developers refused a version should ask (shown on the status page).
    pub contact: Option<String>,
    /// Whether the public status page lists the findings of a held version.
    pub show_findings_to_developers: Option<bool>,
}

/// One admin web UI user as written (`[[admin.users]]`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminUser {
    /// The sign-in name; recorded as `admin:<name>` on every action.
    pub name: String,
    /// The argon2 PHC string (`$argon2id$v=19$...`), as `airlock admin add-user NAME --print` prints it.
    pub password_hash: String,
}

/// One admin token as written: a name for the audit log and the token's SHA-256.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminToken {
    /// Who holds the token; recorded as the actor of every action.
    pub name: String,
    /// Hex SHA-256 of the token (`printf %s "$TOKEN" | sha256sum`).
    pub sha256: String,
}

/// `[signing]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigning {
    /// Directory of Airlock's signing keys (default: `<data_dir>/keys`).
    pub key_dir: Option<String>,
}

/// `[cache]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// Memory budget for rendered (rewritten, precompressed) packuments.
    pub rendered_packuments_memory: Option<ByteSize>,
    /// Memory budget for package indexes (tarball name to version and integrity).
    pub package_index_memory: Option<ByteSize>,
    /// Memory budget for small, frequently served tarballs.
    pub tarball_memory: Option<ByteSize>,
    /// How long an upstream "not found" is remembered.
    pub not_found_ttl: Option<String>,
}

/// `[limits]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Largest upstream packument accepted.
    pub max_packument_size: Option<ByteSize>,
    /// Largest upstream tarball accepted.
    pub max_tarball_size: Option<ByteSize>,
}

/// `[log]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `text` or `json`.
    pub format: Option<String>,
    /// A tracing filter directive.
    pub filter: Option<String>,
}

/// A size written either as a number of bytes or as a string such as `"64MiB"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ByteSize {
    /// A plain number of bytes.
    Bytes(u64),
    /// A number with a unit: `B`, `KB`, `KiB`, `MB`, `MiB`, `GB`, `GiB`.
    Text(String),
}
