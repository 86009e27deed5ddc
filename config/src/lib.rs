//! Airlock's configuration: defaults, the TOML file, environment variables and flags,
//! merged and validated into one [`Config`] before anything starts.
//!
//! This crate is pure: the caller reads the file and the environment and hands the
//! text over, so every rule here is unit-tested without touching the process.
#![warn(missing_docs)]

mod env;
mod policy;
mod raw;
mod units;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use env::EnvVars;
pub use policy::{AdminToken, PackageRule, SeverityLevel};
pub use raw::{ByteSize, RawConfig};
pub use units::{format_duration, parse_byte_size, parse_duration};
pub use url::Url;

/// The public npm registry, the default upstream.
pub const DEFAULT_UPSTREAM: &str = "https://registry.npmjs.org";
/// The default forge API: GitHub's.
pub const DEFAULT_FORGE_API: &str = "https://api.github.com";
/// The shortest admin token accepted in plain text: a guessable token makes the throttle
/// the only defence.
pub const MIN_ADMIN_TOKEN_LENGTH: usize = 24;
/// The default listen address: loopback only, so a laptop default is never exposed.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4873";

/// Anything wrong with the configuration. Every message names the key and quotes the value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML did not parse, or had an unknown key (the message names it).
    #[error("invalid configuration file {path}: {message}")]
    Toml {
        /// The file, as given.
        path: String,
        /// The TOML parser's message, which names the offending key.
        message: String,
    },
    /// A key had a value of the right type but an unacceptable content.
    #[error("invalid value for `{key}`: {value:?}: {reason}")]
    Invalid {
        /// The dotted key, for example `upstream.url`.
        key: &'static str,
        /// The value as written.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where and as what the server is reachable.
    pub server: ServerConfig,
    /// The registry Airlock mirrors.
    pub upstream: UpstreamConfig,
    /// Quarantine policy.
    pub quarantine: QuarantineConfig,
    /// In-memory caches.
    pub cache: CacheConfig,
    /// Size limits on untrusted input.
    pub limits: LimitsConfig,
    /// Logging.
    pub log: LogConfig,
    /// The source forge (GitHub or GitHub Enterprise).
    pub forge: ForgeConfig,
    /// Admin API access.
    pub admin: AdminConfig,
    /// Airlock's own signing keys.
    pub signing: SigningConfig,
    /// Client (read) tokens.
    pub clients: ClientsConfig,
    /// Webhook notifications.
    pub notifications: NotificationsConfig,
    /// Bounds of the check worker and the check queue.
    pub checks: ChecksConfig,
    /// Known-malware feeds.
    pub feeds: FeedsConfig,
    /// Where the metadata and the blobs are stored.
    pub storage: StorageConfig,
}

/// `[storage]`: which backends hold the metadata and the blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// The metadata backend.
    pub metadata: MetadataStorage,
    /// Where tarballs and raw packuments live.
    pub blobs: BlobStorage,
}

/// `storage.blobs`: the blob backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobStorage {
    /// `"dir"`: files under `<data_dir>/blobs` (the default).
    Directory,
    /// `"s3"`: objects in an S3-compatible bucket.
    S3(Box<S3Storage>),
}

/// An S3-compatible bucket for blobs (`storage.s3_*`), with credentials from the
/// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Storage {
    /// The store's URL; `None` is AWS S3 in `region`.
    pub endpoint: Option<Url>,
    /// The bucket.
    pub bucket: String,
    /// The region requests are signed for.
    pub region: String,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub prefix: String,
    /// Access key id; `None` (with no secret) uses the platform's credentials
    /// (instance metadata, web identity).
    pub access_key_id: Option<Secret>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// Session token of temporary credentials.
    pub session_token: Option<Secret>,
    /// Bytes of `<data_dir>/blob-cache` kept for verified copies of tarballs read
    /// from the bucket, served as files; 0 reads every tarball from the bucket.
    pub cache_size: u64,
}

/// `storage.metadata` with what that backend needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataStorage {
    /// The embedded sled database under `server.data_dir/metadata` (the default).
    Sled,
    /// A PostgreSQL database shared by every replica.
    Postgres {
        /// `storage.url`.
        url: DatabaseUrl,
        /// `storage.pool_size`: most connections at once.
        pool_size: u32,
    },
}

/// A `postgres://` URL whose password never reaches a log: `Debug` and
/// [`DatabaseUrl::redacted`] replace it, and [`DatabaseUrl::expose`] is for the one place
/// that connects.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(Url);

impl DatabaseUrl {
    /// The URL as written, password included.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// `host:port` (5432 when the URL names none), for messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.0.host_str().unwrap_or_default(), self.0.port().unwrap_or(5432))
    }

    /// The URL with its password replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        redact_password(&self.0)
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.redacted())
    }
}

fn redact_password(url: &Url) -> String {
    if url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    // Cannot fail: a URL with a password has a host.
    let _ = shown.set_password(None);
    let user = shown.username().to_owned();
    // Written by hand: `set_password` would percent-encode the brackets.
    shown.to_string().replacen(&format!("//{user}@"), &format!("//{user}:[redacted]@"), 1)
}

/// `[checks]`: every check runs in a worker subprocess bounded by these limits, and a
/// version whose checks keep failing is held instead of retried forever.
#[derive(Debug, Clone)]
pub struct ChecksConfig {
    /// Address-space limit (`RLIMIT_AS`) of one worker, in bytes.
    pub worker_memory_limit: u64,
    /// CPU-time limit (`RLIMIT_CPU`) of one worker, whole seconds.
    pub worker_cpu_time: Duration,
    /// Wall-clock deadline of one worker; its process group is killed after it.
    pub worker_deadline: Duration,
    /// Attempts (counted when a check starts) before a version is held.
    pub max_attempts: u32,
    /// The executable started as `<executable> internal check-worker`; `None` means
    /// the running executable.
    pub worker_executable: Option<PathBuf>,
}

/// `[feeds]`: known-malware advisories (OSV, OpenSSF malicious-packages format) that
/// can only hold versions, never release them.
#[derive(Debug, Clone)]
pub struct FeedsConfig {
    /// Directory of OSV `*.json` files; `None` runs without a feed.
    pub directory: Option<PathBuf>,
    /// How often the directory is re-read.
    pub refresh_interval: Duration,
}

/// `[notifications]`.
#[derive(Clone)]
pub struct NotificationsConfig {
    /// Where events are POSTed, if anywhere.
    pub webhook_url: Option<Url>,
    /// HMAC secret; never printed.
    pub webhook_secret: Option<String>,
    /// Delivery attempts per event.
    pub webhook_attempts: u32,
}

impl std::fmt::Debug for NotificationsConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("NotificationsConfig")
            .field("webhook_url", &self.webhook_url.as_ref().map(Url::as_str))
            .field("webhook_secret", &self.webhook_secret.as_ref().map(|_| "[redacted]"))
            .field("webhook_attempts", &self.webhook_attempts)
            .finish()
    }
}

/// `[clients]`.
#[derive(Debug, Clone)]
pub struct ClientsConfig {
    /// Accepted read tokens (hashed). Empty: anonymous access.
    pub tokens: Vec<AdminToken>,
    /// Sustained requests per second per token.
    pub rate_limit_per_second: u32,
    /// Burst above the sustained rate.
    pub rate_limit_burst: u32,
}

/// `[forge]`.
#[derive(Debug, Clone)]
pub struct ForgeConfig {
    /// Base URL of the REST API, without a trailing `/`.
    pub api_url: Url,
    /// The web host of the repositories it serves: `github.com` for GitHub's API, the
    /// API's own host for GitHub Enterprise.
    pub repository_host: String,
    /// Optional API token.
    pub token: Option<Secret>,
    /// Timeout of one archive download.
    pub timeout: Duration,
    /// Largest source archive accepted, in bytes.
    pub max_archive_size: u64,
}

/// `[admin]`.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Accepted admin tokens (hashed), including `AIRLOCK_ADMIN_TOKEN`'s.
    pub tokens: Vec<AdminToken>,
    /// Admin web UI users configured in the file (more live in the data directory).
    pub users: Vec<AdminUser>,
    /// Who a refused developer should ask ("#npm-help on Slack"), on the status page.
    pub contact: Option<String>,
    /// Whether the public status page of a held version lists its findings (off: the
    /// findings can describe an unpublished attack, and the page needs no sign-in).
    pub show_findings_to_developers: bool,
}

/// An admin web UI user from `[[admin.users]]`.
#[derive(Debug, Clone)]
pub struct AdminUser {
    /// The sign-in name.
    pub name: String,
    /// The argon2 PHC string; verified by the server.
    pub password_hash: String,
}

/// `[signing]`.
#[derive(Debug, Clone)]
pub struct SigningConfig {
    /// Where the Ed25519 (release records) and P-256 (registry signatures) keys live.
    pub key_dir: PathBuf,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Base URL clients use; rewritten tarball URLs start with it. Never ends with `/`.
    pub public_url: Url,
    /// Root of all persistent state.
    pub data_dir: PathBuf,
    /// How long in-flight requests may run after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Longest wait for a whole request head, counted from the connection's first byte
    /// or from the end of the previous response: closes idle and slowloris connections.
    pub header_read_timeout: Duration,
    /// Most client connections served at once; further ones wait in the listen backlog.
    pub max_connections: u32,
    /// Bytes kept allocated in `data_dir/storage-reserve` and released when a start
    /// finds the disk full, so the metadata store can open and stored data be served.
    /// `0` keeps no reserve.
    pub storage_reserve: u64,
    /// Proxies in front of Airlock whose `X-Forwarded-For` entry names the client, for
    /// per-client limits (otherwise everyone behind one proxy is one client).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// `[upstream]`.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Base URL of the upstream registry, without a trailing `/`.
    pub url: Url,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout for metadata, idle timeout for tarball bodies.
    pub timeout: Duration,
    /// Retries after a transient failure.
    pub retries: u32,
    /// First retry delay, doubled for each further retry.
    pub retry_backoff: Duration,
    /// Age after which a cached packument is revalidated.
    pub packument_max_age: Duration,
    /// A token sent as `Authorization: Bearer` to this upstream only.
    pub token: Option<Secret>,
    /// Other registries for some scopes, checked before the default.
    pub scopes: Vec<ScopedUpstream>,
    /// Hosts an upstream may redirect to besides its own origin (`host` or `host:port`,
    /// lower case). Any other redirect is refused: a hostile or compromised upstream must
    /// not make Airlock reach internal addresses.
    pub redirect_hosts: Vec<String>,
}

/// A secret from the configuration: printed as `[redacted]`, read with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret's text, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("[redacted]")
    }
}

/// A registry that serves one scope.
#[derive(Clone)]
pub struct ScopedUpstream {
    /// The scope, `@name`.
    pub scope: String,
    /// The registry's base URL, without a trailing `/`.
    pub url: Url,
    /// Its token, if any.
    pub token: Option<Secret>,
}

impl std::fmt::Debug for ScopedUpstream {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ScopedUpstream")
            .field("scope", &self.scope)
            .field("url", &self.url.as_str())
            .field("token", &self.token)
            .finish()
    }
}

/// `[quarantine]`.
#[derive(Debug, Clone)]
pub struct QuarantineConfig {
    /// Minimum age of a version before it is listed or served; zero disables.
    pub cooling_period: Duration,
    /// Findings at or above this severity hold a version.
    pub hold_severity: SeverityLevel,
    /// Severity of "source unverifiable" findings.
    pub unverifiable_source_severity: SeverityLevel,
    /// Versions checked at once.
    pub check_concurrency: usize,
    /// Per-rule severity overrides.
    pub rule_severity: std::collections::BTreeMap<String, SeverityLevel>,
    /// Versions that skip the cooling period (they are still checked).
    pub allow: Vec<PackageRule>,
    /// Versions that are never installable.
    pub deny: Vec<PackageRule>,
    /// Packages that must carry valid provenance.
    pub require_provenance: Vec<PackageRule>,
    /// A Sigstore trust root file replacing the embedded public-good root.
    pub sigstore_trust_root: Option<PathBuf>,
    /// Expected provenance identities; a version without verified provenance matching
    /// its pin is held.
    pub provenance_pins: Vec<ProvenancePin>,
}

/// The provenance identity expected of some packages.
#[derive(Debug, Clone)]
pub struct ProvenancePin {
    /// Which packages (the rule's `versions` is unused).
    pub rule: PackageRule,
    /// Expected repository.
    pub repository: Option<String>,
    /// Expected workflow file.
    pub workflow: Option<String>,
    /// Expected ref glob.
    pub ref_pattern: Option<String>,
}

/// `[cache]`.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Memory budget, in bytes, for rendered packuments kept ready to serve.
    pub rendered_packuments_memory: u64,
    /// Memory budget, in bytes, for package indexes used to serve tarballs.
    pub package_index_memory: u64,
    /// Memory budget, in bytes, for small hot tarballs (0 disables).
    pub tarball_memory: u64,
    /// How long an upstream 404 for a package name is answered from memory, so a
    /// client retrying an unknown name does not make one upstream request per try
    /// (zero disables).
    pub not_found_ttl: Duration,
}

/// `[limits]`.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Largest upstream packument accepted, in bytes.
    pub max_packument_size: u64,
    /// Largest upstream tarball accepted, in bytes.
    pub max_tarball_size: u64,
}

/// `[log]`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// One JSON object per line instead of human-readable text.
    pub json: bool,
    /// A tracing filter directive.
    pub filter: String,
}

/// Values that override the file: from environment variables, then from flags.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `server.listen`.
    pub listen: Option<String>,
    /// `server.public_url`.
    pub public_url: Option<String>,
    /// `server.data_dir`.
    pub data_dir: Option<String>,
    /// `upstream.url`.
    pub upstream: Option<String>,
    /// `quarantine.cooling_period`.
    pub cooling_period: Option<String>,
    /// `log.format`.
    pub log_format: Option<String>,
    /// `log.filter`.
    pub log_filter: Option<String>,
    /// An admin token in plain text (`AIRLOCK_ADMIN_TOKEN`), hashed on load.
    pub admin_token: Option<String>,
    /// `forge.token`.
    pub forge_token: Option<String>,
    /// `notifications.webhook_secret`.
    pub webhook_secret: Option<String>,
    /// `upstream.token`.
    pub upstream_token: Option<String>,
    /// `storage.url`.
    pub storage_url: Option<String>,
    /// Environment variables named by `upstream.scopes[].token_env`, resolved by name.
    pub scope_tokens: std::collections::BTreeMap<String, String>,
    /// `AWS_ACCESS_KEY_ID`, for `storage.blobs = "s3"`.
    pub aws_access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub aws_secret_access_key: Option<String>,
    /// `AWS_SESSION_TOKEN`.
    pub aws_session_token: Option<String>,
}

impl Overrides {
    /// Reads the overrides from an environment lookup (pass `|k| std::env::var(k).ok()`).
    /// Scoped upstream tokens named by `token_env` are looked up later, by
    /// [`Overrides::resolve_scope_tokens`], once the file says which variables to read.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Self {
        Self {
            listen: lookup(EnvVars::LISTEN),
            public_url: lookup(EnvVars::PUBLIC_URL),
            data_dir: lookup(EnvVars::DATA_DIR),
            upstream: lookup(EnvVars::UPSTREAM),
            cooling_period: lookup(EnvVars::COOLING_PERIOD),
            log_format: lookup(EnvVars::LOG_FORMAT),
            log_filter: lookup(EnvVars::LOG),
            admin_token: lookup(EnvVars::ADMIN_TOKEN).filter(|token| !token.is_empty()),
            forge_token: lookup(EnvVars::FORGE_TOKEN).filter(|token| !token.is_empty()),
            webhook_secret: lookup(EnvVars::WEBHOOK_SECRET).filter(|secret| !secret.is_empty()),
            upstream_token: lookup(EnvVars::UPSTREAM_TOKEN).filter(|token| !token.is_empty()),
            storage_url: lookup(EnvVars::STORAGE_URL).filter(|url| !url.is_empty()),
            scope_tokens: std::collections::BTreeMap::new(),
            aws_access_key_id: lookup(EnvVars::AWS_ACCESS_KEY_ID).filter(|value| !value.is_empty()),
            aws_secret_access_key: lookup(EnvVars::AWS_SECRET_ACCESS_KEY).filter(|value| !value.is_empty()),
            aws_session_token: lookup(EnvVars::AWS_SESSION_TOKEN).filter(|value| !value.is_empty()),
        }
    }

    /// Reads the environment variables that `[[upstream.scopes]]` entries name with
    /// `token_env`, from the TOML text (so the file stays the one source of names).
    pub fn resolve_scope_tokens(mut self, toml_text: &str, lookup: impl Fn(&str) -> Option<String>) -> Self {
        if let Ok(raw) = toml::from_str::<RawConfig>(toml_text) {
            for scope in raw.upstream.scopes {
                if let Some(variable) = scope.token_env
                    && let Some(value) = lookup(&variable).filter(|value| !value.is_empty())
                {
                    self.scope_tokens.insert(variable, value);
                }
            }
        }
        self
    }

    /// Layers `other` on top of `self`: a value set in `other` wins.
    pub fn then(self, other: Overrides) -> Self {
        Self {
            listen: other.listen.or(self.listen),
            public_url: other.public_url.or(self.public_url),
            data_dir: other.data_dir.or(self.data_dir),
            upstream: other.upstream.or(self.upstream),
            cooling_period: other.cooling_period.or(self.cooling_period),
            log_format: other.log_format.or(self.log_format),
            log_filter: other.log_filter.or(self.log_filter),
            admin_token: other.admin_token.or(self.admin_token),
            forge_token: other.forge_token.or(self.forge_token),
            webhook_secret: other.webhook_secret.or(self.webhook_secret),
            upstream_token: other.upstream_token.or(self.upstream_token),
            storage_url: other.storage_url.or(self.storage_url),
            scope_tokens: if other.scope_tokens.is_empty() { self.scope_tokens } else { other.scope_tokens },
            aws_access_key_id: other.aws_access_key_id.or(self.aws_access_key_id),
            aws_secret_access_key: other.aws_secret_access_key.or(self.aws_secret_access_key),
            aws_session_token: other.aws_session_token.or(self.aws_session_token),
        }
    }
}

impl Config {
    /// The configuration with every default and no file: what `airlock serve` runs with.
    pub fn defaults() -> Config {
        Self::from_raw(RawConfig::default(), Overrides::default()).expect("the embedded defaults are valid")
    }

    /// Parses TOML text (`path` is only used in messages) and applies `overrides`.
    pub fn from_toml(path: &str, text: &str, overrides: Overrides) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|error| ConfigError::Toml { path: path.to_owned(), message: error.to_string() })?;
        Self::from_raw(raw, overrides)
    }

    /// Validates a parsed file with overrides applied on top.
    pub fn from_raw(raw: RawConfig, overrides: Overrides) -> Result<Config, ConfigError> {
        let listen_text = overrides.listen.or(raw.server.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| ConfigError::Invalid {
            key: "server.listen",
            value: listen_text.clone(),
            reason: "expected an IP address and port such as 127.0.0.1:4873".into(),
        })?;

        let public_url_text =
            overrides.public_url.or(raw.server.public_url).unwrap_or_else(|| format!("http://{listen}"));
        let public_url = parse_base_url("server.public_url", &public_url_text)?;

        let data_dir =
            PathBuf::from(overrides.data_dir.or(raw.server.data_dir).unwrap_or_else(|| "./airlock-data".to_owned()));
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "server.data_dir",
                value: String::new(),
                reason: "must not be empty".into(),
            });
        }

        let upstream_text = overrides.upstream.or(raw.upstream.url).unwrap_or_else(|| DEFAULT_UPSTREAM.to_owned());
        let upstream_url = parse_base_url("upstream.url", &upstream_text)?;

        let duration = |key: &'static str, value: Option<String>, default: &str| {
            let text = value.unwrap_or_else(|| default.to_owned());
            parse_duration(&text).map_err(|reason| ConfigError::Invalid { key, value: text, reason })
        };
        let size = |key: &'static str, value: Option<ByteSize>, default: u64| match value {
            None => Ok(default),
            Some(ByteSize::Bytes(bytes)) => Ok(bytes),
            Some(ByteSize::Text(text)) => {
                parse_byte_size(&text).map_err(|reason| ConfigError::Invalid { key, value: text, reason })
            }
        };

        let mut scopes = Vec::new();
        for scoped in raw.upstream.scopes {
            let valid_scope = scoped.scope.len() > 1
                && scoped.scope.starts_with('@')
                && scoped.scope[1..].chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
            if !valid_scope {
                return Err(ConfigError::Invalid {
                    key: "upstream.scopes",
                    value: scoped.scope,
                    reason: "a scope looks like @mycompany".into(),
                });
            }
            let token = match (&scoped.token, &scoped.token_env) {
                (Some(token), _) => Some(Secret(token.clone())),
                (None, Some(variable)) => {
                    Some(overrides.scope_tokens.get(variable).cloned().map(Secret).ok_or_else(|| {
                        ConfigError::Invalid {
                            key: "upstream.scopes",
                            value: variable.clone(),
                            reason: format!(
                                "the environment variable named by token_env for {} is not set",
                                scoped.scope
                            ),
                        }
                    })?)
                }
                (None, None) => None,
            };
            scopes.push(ScopedUpstream {
                scope: scoped.scope,
                url: parse_base_url("upstream.scopes", &scoped.url)?,
                token,
            });
        }
        let upstream = UpstreamConfig {
            token: overrides
                .upstream_token
                .clone()
                .or(raw.upstream.token)
                .filter(|token| !token.is_empty())
                .map(Secret),
            scopes,
            redirect_hosts: redirect_hosts(raw.upstream.redirect_hosts)?,
            url: upstream_url,
            connect_timeout: duration("upstream.connect_timeout", raw.upstream.connect_timeout, "5s")?,
            timeout: duration("upstream.timeout", raw.upstream.timeout, "30s")?,
            retries: raw.upstream.retries.unwrap_or(2),
            retry_backoff: duration("upstream.retry_backoff", raw.upstream.retry_backoff, "200ms")?,
            packument_max_age: duration("upstream.packument_max_age", raw.upstream.packument_max_age, "5m")?,
        };
        if upstream.retries > 10 {
            return Err(ConfigError::Invalid {
                key: "upstream.retries",
                value: upstream.retries.to_string(),
                reason: "at most 10 retries; more would hold client requests for minutes".into(),
            });
        }
        for (key, value) in
            [("upstream.connect_timeout", upstream.connect_timeout), ("upstream.timeout", upstream.timeout)]
        {
            if value.is_zero() {
                return Err(ConfigError::Invalid {
                    key,
                    value: "0s".into(),
                    reason: "a timeout of zero would fail every request".into(),
                });
            }
        }

        let severity = |key: &'static str, value: Option<String>, default: &str| {
            let text = value.unwrap_or_else(|| default.to_owned());
            SeverityLevel::parse(&text).ok_or_else(|| ConfigError::Invalid {
                key,
                value: text,
                reason: "expected info, low, medium, high or critical".into(),
            })
        };
        let mut rule_severity = std::collections::BTreeMap::new();
        for (rule, level) in raw.quarantine.rule_severity {
            let parsed = severity("quarantine.rule_severity", Some(level), "")?;
            rule_severity.insert(rule, parsed);
        }
        let check_concurrency = raw.quarantine.check_concurrency.unwrap_or(2);
        if !(1..=64).contains(&check_concurrency) {
            return Err(ConfigError::Invalid {
                key: "quarantine.check_concurrency",
                value: check_concurrency.to_string(),
                reason: "expected 1 to 64".into(),
            });
        }
        let quarantine = QuarantineConfig {
            cooling_period: duration(
                "quarantine.cooling_period",
                overrides.cooling_period.or(raw.quarantine.cooling_period),
                "72h",
            )?,
            hold_severity: severity("quarantine.hold_severity", raw.quarantine.hold_severity, "high")?,
            unverifiable_source_severity: severity(
                "quarantine.unverifiable_source_severity",
                raw.quarantine.unverifiable_source_severity,
                "medium",
            )?,
            check_concurrency,
            rule_severity,
            allow: PackageRule::parse_all("quarantine.allow", raw.quarantine.allow)?,
            deny: PackageRule::parse_all("quarantine.deny", raw.quarantine.deny)?,
            require_provenance: PackageRule::parse_all(
                "quarantine.require_provenance",
                raw.quarantine.require_provenance,
            )?,
            sigstore_trust_root: raw.quarantine.sigstore_trust_root.map(PathBuf::from),
            provenance_pins: raw
                .quarantine
                .provenance_pins
                .into_iter()
                .map(|pin| {
                    if pin.repository.is_none() && pin.workflow.is_none() && pin.ref_pattern.is_none() {
                        return Err(ConfigError::Invalid {
                            key: "quarantine.provenance_pins",
                            value: pin.package,
                            reason: "a pin needs at least one of repository, workflow, ref".into(),
                        });
                    }
                    let rule = PackageRule::parse_all(
                        "quarantine.provenance_pins",
                        vec![raw::RawPackageRule { package: pin.package, versions: None, reason: None }],
                    )?
                    .remove(0);
                    Ok(ProvenancePin {
                        rule,
                        repository: pin.repository,
                        workflow: pin.workflow,
                        ref_pattern: pin.ref_pattern,
                    })
                })
                .collect::<Result<_, _>>()?,
        };

        let cache = CacheConfig {
            rendered_packuments_memory: size(
                "cache.rendered_packuments_memory",
                raw.cache.rendered_packuments_memory,
                32 << 20,
            )?,
            package_index_memory: size("cache.package_index_memory", raw.cache.package_index_memory, 64 << 20)?,
            tarball_memory: size("cache.tarball_memory", raw.cache.tarball_memory, 16 << 20)?,
            not_found_ttl: duration("cache.not_found_ttl", raw.cache.not_found_ttl, "60s")?,
        };

        let limits = LimitsConfig {
            max_packument_size: size("limits.max_packument_size", raw.limits.max_packument_size, 128 << 20)?,
            max_tarball_size: size("limits.max_tarball_size", raw.limits.max_tarball_size, 512 << 20)?,
        };
        for (key, value) in [
            ("limits.max_packument_size", limits.max_packument_size),
            ("limits.max_tarball_size", limits.max_tarball_size),
        ] {
            if value < 1024 {
                return Err(ConfigError::Invalid {
                    key,
                    value: value.to_string(),
                    reason: "must be at least 1KiB".into(),
                });
            }
        }

        let format_text = overrides.log_format.or(raw.log.format).unwrap_or_else(|| "text".into());
        let json = match format_text.as_str() {
            "text" => false,
            "json" => true,
            _ => {
                return Err(ConfigError::Invalid {
                    key: "log.format",
                    value: format_text,
                    reason: "expected \"text\" or \"json\"".into(),
                });
            }
        };
        let log = LogConfig { json, filter: overrides.log_filter.or(raw.log.filter).unwrap_or_else(|| "info".into()) };

        let server = ServerConfig {
            listen,
            public_url,
            data_dir,
            shutdown_grace: duration("server.shutdown_grace", raw.server.shutdown_grace, "10s")?,
            header_read_timeout: duration("server.header_read_timeout", raw.server.header_read_timeout, "30s")?,
            max_connections: raw.server.max_connections.unwrap_or(4096),
            storage_reserve: size("server.storage_reserve", raw.server.storage_reserve, 64 << 20)?,
            trusted_proxies: raw
                .server
                .trusted_proxies
                .into_iter()
                .map(|text| {
                    text.trim().parse().map_err(|_| ConfigError::Invalid {
                        key: "server.trusted_proxies",
                        value: text.clone(),
                        reason: "expected an IP address".into(),
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        if server.header_read_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                key: "server.header_read_timeout",
                value: "0s".into(),
                reason: "must be positive; without it idle and slowloris connections are never closed".into(),
            });
        }
        if !(16..=1_000_000).contains(&server.max_connections) {
            return Err(ConfigError::Invalid {
                key: "server.max_connections",
                value: server.max_connections.to_string(),
                reason: "expected 16 to 1000000 connections".into(),
            });
        }

        let forge_api = parse_base_url("forge.api_url", raw.forge.api_url.as_deref().unwrap_or(DEFAULT_FORGE_API))?;
        let repository_host = match raw.forge.repository_host {
            Some(host) => host,
            None if forge_api.host_str() == Some("api.github.com") => "github.com".to_owned(),
            None => forge_api.host_str().unwrap_or_default().to_owned(),
        };
        let forge = ForgeConfig {
            api_url: forge_api,
            repository_host,
            token: overrides.forge_token.or(raw.forge.token).filter(|token| !token.is_empty()).map(Secret),
            timeout: duration("forge.timeout", raw.forge.timeout, "60s")?,
            max_archive_size: size("forge.max_archive_size", raw.forge.max_archive_size, 256 << 20)?,
        };

        let mut tokens = Vec::new();
        for token in raw.admin.tokens {
            tokens.push(AdminToken::from_hash("admin.tokens", &token.name, &token.sha256)?);
        }
        if let Some(plain) = overrides.admin_token {
            if plain.chars().count() < MIN_ADMIN_TOKEN_LENGTH {
                return Err(ConfigError::Invalid {
                    key: "AIRLOCK_ADMIN_TOKEN",
                    value: "[redacted]".into(),
                    reason: format!(
                        "an admin token needs at least {MIN_ADMIN_TOKEN_LENGTH} characters \
                         (`head -c 32 /dev/urandom | base64` makes one); it is {} long",
                        plain.chars().count()
                    ),
                });
            }
            tokens.push(AdminToken::from_plain("admin", &plain));
        }
        let mut users = Vec::new();
        for user in raw.admin.users {
            if user.name.is_empty()
                || user.name.len() > 64
                || !user.name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                return Err(ConfigError::Invalid {
                    key: "admin.users.name",
                    value: user.name,
                    reason: "expected 1 to 64 letters, digits, `.`, `_` or `-`".into(),
                });
            }
            if !user.password_hash.starts_with("$argon2") {
                return Err(ConfigError::Invalid {
                    key: "admin.users.password_hash",
                    value: user.name,
                    reason: "expected an argon2 PHC string ($argon2id$...) for this user".into(),
                });
            }
            users.push(AdminUser { name: user.name, password_hash: user.password_hash });
        }
        let contact = raw.admin.contact.map(|contact| contact.trim().to_owned()).filter(|contact| !contact.is_empty());
        if let Some(contact) = &contact
            && (contact.chars().count() > 200 || contact.chars().any(char::is_control))
        {
            return Err(ConfigError::Invalid {
                key: "admin.contact",
                value: contact.clone(),
                reason: "expected one line of at most 200 characters".into(),
            });
        }
        let admin = AdminConfig {
            tokens,
            users,
            contact,
            show_findings_to_developers: raw.admin.show_findings_to_developers.unwrap_or(false),
        };

        let signing = SigningConfig {
            key_dir: raw.signing.key_dir.map(PathBuf::from).unwrap_or_else(|| server.data_dir.join("keys")),
        };

        let mut client_tokens = Vec::new();
        for token in raw.clients.tokens {
            client_tokens.push(AdminToken::from_hash("clients.tokens", &token.name, &token.sha256)?);
        }
        let clients = ClientsConfig {
            tokens: client_tokens,
            rate_limit_per_second: raw.clients.rate_limit_per_second.unwrap_or(500),
            rate_limit_burst: raw.clients.rate_limit_burst.unwrap_or(2000),
        };
        if clients.rate_limit_per_second == 0 {
            return Err(ConfigError::Invalid {
                key: "clients.rate_limit_per_second",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }

        let webhook_url = match raw.notifications.webhook_url.as_deref() {
            None | Some("") => None,
            Some(text) => {
                let invalid = |reason: String| ConfigError::Invalid {
                    key: "notifications.webhook_url",
                    value: text.to_owned(),
                    reason,
                };
                let url = Url::parse(text).map_err(|error| invalid(error.to_string()))?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(invalid("expected an http:// or https:// URL".into()));
                }
                Some(url)
            }
        };
        let webhook_attempts = raw.notifications.webhook_attempts.unwrap_or(6);
        if !(1..=20).contains(&webhook_attempts) {
            return Err(ConfigError::Invalid {
                key: "notifications.webhook_attempts",
                value: webhook_attempts.to_string(),
                reason: "expected 1 to 20".into(),
            });
        }
        let notifications = NotificationsConfig {
            webhook_url,
            webhook_secret: overrides
                .webhook_secret
                .or(raw.notifications.webhook_secret)
                .filter(|secret| !secret.is_empty()),
            webhook_attempts,
        };

        let checks = ChecksConfig {
            worker_memory_limit: size("checks.worker_memory_limit", raw.checks.worker_memory_limit, 1 << 30)?,
            worker_cpu_time: duration("checks.worker_cpu_time", raw.checks.worker_cpu_time, "60s")?,
            worker_deadline: duration("checks.worker_deadline", raw.checks.worker_deadline, "120s")?,
            max_attempts: raw.checks.max_attempts.unwrap_or(2),
            worker_executable: raw.checks.worker_executable.map(PathBuf::from),
        };
        // The limit is on address space: the worker maps its executable and reserves the
        // scanner's 256 MiB analysis stack (reserved, not committed) before any package
        // byte arrives, so below this every check would fail.
        if checks.worker_memory_limit < 384 << 20 {
            return Err(ConfigError::Invalid {
                key: "checks.worker_memory_limit",
                value: checks.worker_memory_limit.to_string(),
                reason: "must be at least 384MiB (the worker reserves a 256MiB analysis stack)".into(),
            });
        }
        // RLIMIT_CPU counts whole seconds.
        if checks.worker_cpu_time < Duration::from_secs(1) || checks.worker_cpu_time.subsec_nanos() != 0 {
            return Err(ConfigError::Invalid {
                key: "checks.worker_cpu_time",
                value: format_duration(checks.worker_cpu_time),
                reason: "expected a whole number of seconds, at least 1s".into(),
            });
        }
        if checks.worker_deadline < Duration::from_millis(100) {
            return Err(ConfigError::Invalid {
                key: "checks.worker_deadline",
                value: format_duration(checks.worker_deadline),
                reason: "must be at least 100ms".into(),
            });
        }
        if !(1..=100).contains(&checks.max_attempts) {
            return Err(ConfigError::Invalid {
                key: "checks.max_attempts",
                value: checks.max_attempts.to_string(),
                reason: "expected 1 to 100".into(),
            });
        }
        if checks.worker_executable.as_ref().is_some_and(|path| path.as_os_str().is_empty()) {
            return Err(ConfigError::Invalid {
                key: "checks.worker_executable",
                value: String::new(),
                reason: "must not be empty; leave it out to use the running executable".into(),
            });
        }
        let feeds = FeedsConfig {
            directory: raw.feeds.directory.as_deref().filter(|text| !text.trim().is_empty()).map(PathBuf::from),
            refresh_interval: match raw.feeds.refresh_interval.as_deref() {
                None => Duration::from_secs(3600),
                Some(text) => {
                    let invalid = |reason: String| ConfigError::Invalid {
                        key: "feeds.refresh_interval",
                        value: text.to_owned(),
                        reason,
                    };
                    let interval = units::parse_duration(text).map_err(invalid)?;
                    if interval < Duration::from_secs(60) {
                        return Err(invalid("must be at least 1m".into()));
                    }
                    interval
                }
            },
        };

        let metadata = metadata_storage(&raw.storage, overrides.storage_url)?;
        let storage = StorageConfig {
            metadata,
            blobs: blob_storage(
                raw.storage,
                overrides.aws_access_key_id.as_deref(),
                overrides.aws_secret_access_key.as_deref(),
                overrides.aws_session_token.as_deref(),
            )?,
        };

        Ok(Config {
            server,
            upstream,
            quarantine,
            cache,
            limits,
            log,
            forge,
            admin,
            signing,
            clients,
            notifications,
            checks,
            feeds,
            storage,
        })
    }
}

/// Validates `[storage]`. The URL is quoted with its password redacted.
fn metadata_storage(raw: &raw::RawStorage, url_override: Option<String>) -> Result<MetadataStorage, ConfigError> {
    let metadata_text = raw.metadata.clone().unwrap_or_else(|| "sled".to_owned());
    let url_text = url_override.or_else(|| raw.url.clone()).filter(|url| !url.is_empty());
    let metadata = match metadata_text.as_str() {
        "sled" => {
            if let Some(pool_size) = raw.pool_size {
                return Err(ConfigError::Invalid {
                    key: "storage.pool_size",
                    value: pool_size.to_string(),
                    reason: "only used with storage.metadata = \"postgres\"".into(),
                });
            }
            MetadataStorage::Sled
        }
        "postgres" => {
            let text = url_text.clone().ok_or_else(|| ConfigError::Invalid {
                key: "storage.url",
                value: String::new(),
                reason: format!("required with storage.metadata = \"postgres\" (or set {})", EnvVars::STORAGE_URL),
            })?;
            let url = Url::parse(&text).map_err(|error| ConfigError::Invalid {
                key: "storage.url",
                // Unparsable, so the password cannot be found to redact: quote nothing.
                value: "[not shown: it may contain a password]".into(),
                reason: error.to_string(),
            })?;
            let invalid = |reason: &str| ConfigError::Invalid {
                key: "storage.url",
                value: redact_password(&url),
                reason: reason.to_owned(),
            };
            if !matches!(url.scheme(), "postgres" | "postgresql") {
                return Err(invalid("expected a postgres:// URL"));
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(invalid("expected a host, as in postgres://airlock@127.0.0.1:5432/airlock"));
            }
            if url.path().trim_start_matches('/').is_empty() {
                return Err(invalid("expected a database name, as in postgres://airlock@127.0.0.1:5432/airlock"));
            }
            let pool_size = raw.pool_size.unwrap_or(16);
            if !(1..=1000).contains(&pool_size) {
                return Err(ConfigError::Invalid {
                    key: "storage.pool_size",
                    value: pool_size.to_string(),
                    reason: "expected 1 to 1000".into(),
                });
            }
            MetadataStorage::Postgres { url: DatabaseUrl(url), pool_size }
        }
        _ => {
            return Err(ConfigError::Invalid {
                key: "storage.metadata",
                value: metadata_text,
                reason: "expected \"sled\" or \"postgres\"".into(),
            });
        }
    };
    if metadata == MetadataStorage::Sled && url_text.is_some() {
        return Err(ConfigError::Invalid {
            key: "storage.url",
            value: "[not shown: it may contain a password]".into(),
            reason: "only used with storage.metadata = \"postgres\"".into(),
        });
    }
    Ok(metadata)
}

/// Parses an `http`/`https` base URL and strips any trailing `/`, so joining paths is
/// plain string concatenation everywhere else.
/// `upstream.redirect_hosts`: each entry a bare host name or `host:port`.
fn redirect_hosts(entries: Vec<String>) -> Result<Vec<String>, ConfigError> {
    entries
        .into_iter()
        .map(|entry| {
            let host = entry.to_ascii_lowercase();
            let parsed = Url::parse(&format!("https://{host}/")).ok();
            let valid = !host.is_empty()
                && !host.contains(['/', '@', '?', '#', ' '])
                && parsed.is_some_and(|url| url.host_str().is_some() && url.path() == "/");
            if valid {
                Ok(host)
            } else {
                Err(ConfigError::Invalid {
                    key: "upstream.redirect_hosts",
                    value: entry,
                    reason: "expected a host name or host:port, without scheme or path".into(),
                })
            }
        })
        .collect()
}

/// `[storage]`: `blobs` picks the backend; the `s3_*` keys belong to `"s3"` only, so a
/// half-switched configuration is an error rather than silently the directory.
fn blob_storage(
    raw: raw::RawStorage,
    access_key_id: Option<&str>,
    secret_access_key: Option<&str>,
    session_token: Option<&str>,
) -> Result<BlobStorage, ConfigError> {
    let kind = raw.blobs.unwrap_or_else(|| "dir".to_owned());
    match kind.as_str() {
        "dir" => {
            let s3_keys = [
                ("storage.s3_endpoint", &raw.s3_endpoint),
                ("storage.s3_bucket", &raw.s3_bucket),
                ("storage.s3_region", &raw.s3_region),
                ("storage.s3_prefix", &raw.s3_prefix),
            ];
            if let Some(size) = &raw.s3_cache_size {
                return Err(ConfigError::Invalid {
                    key: "storage.s3_cache_size",
                    value: match size {
                        ByteSize::Bytes(bytes) => bytes.to_string(),
                        ByteSize::Text(text) => text.clone(),
                    },
                    reason: "only used with storage.blobs = \"s3\"".into(),
                });
            }
            if let Some((key, Some(value))) = s3_keys.into_iter().find(|(_, value)| value.is_some()) {
                return Err(ConfigError::Invalid {
                    key,
                    value: value.clone(),
                    reason: "only used with storage.blobs = \"s3\"".into(),
                });
            }
            Ok(BlobStorage::Directory)
        }
        "s3" => {
            let endpoint = match raw.s3_endpoint.as_deref() {
                None => None,
                // Checked before parsing so that no message repeats a password.
                Some(text) if text.contains('@') => {
                    return Err(ConfigError::Invalid {
                        key: "storage.s3_endpoint",
                        value: "[redacted]".into(),
                        reason: "credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                            .into(),
                    });
                }
                Some(text) => {
                    let url = parse_base_url("storage.s3_endpoint", text)?;
                    if !url.path().is_empty() && url.path() != "/" {
                        return Err(ConfigError::Invalid {
                            key: "storage.s3_endpoint",
                            value: text.to_owned(),
                            reason:
                                "expected the store's root URL without a path; the bucket goes in storage.s3_bucket"
                                    .into(),
                        });
                    }
                    Some(url)
                }
            };
            let bucket = raw.s3_bucket.ok_or_else(|| ConfigError::Invalid {
                key: "storage.s3_bucket",
                value: String::new(),
                reason: "required with storage.blobs = \"s3\"".into(),
            })?;
            // S3's bucket naming rules: also what keeps the name out of the URL's syntax.
            let valid_bucket = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-'))
                && bucket.as_bytes()[0].is_ascii_alphanumeric()
                && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric();
            if !valid_bucket {
                return Err(ConfigError::Invalid {
                    key: "storage.s3_bucket",
                    value: bucket,
                    reason: "expected 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit".into(),
                });
            }
            let region = raw.s3_region.unwrap_or_else(|| "us-east-1".to_owned());
            if region.is_empty() || !region.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-') {
                return Err(ConfigError::Invalid {
                    key: "storage.s3_region",
                    value: region,
                    reason: "expected a region name such as us-east-1".into(),
                });
            }
            let prefix_text = raw.s3_prefix.unwrap_or_default();
            let prefix = prefix_text.trim_matches('/').to_owned();
            let valid_prefix = prefix.split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && segment.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte))
            });
            if !prefix.is_empty() && !valid_prefix {
                return Err(ConfigError::Invalid {
                    key: "storage.s3_prefix",
                    value: prefix_text,
                    reason: "expected path segments of letters, digits, '-', '_' and '.' separated by '/'".into(),
                });
            }
            let (access_key_id, secret_access_key) = match (access_key_id, secret_access_key) {
                (Some(id), Some(secret)) => (Some(Secret(id.to_owned())), Some(Secret(secret.to_owned()))),
                (None, None) => (None, None),
                (Some(_), None) => {
                    return Err(ConfigError::Invalid {
                        key: "storage.blobs",
                        value: kind,
                        reason: format!(
                            "{} is set but {} is not",
                            EnvVars::AWS_ACCESS_KEY_ID,
                            EnvVars::AWS_SECRET_ACCESS_KEY
                        ),
                    });
                }
                (None, Some(_)) => {
                    return Err(ConfigError::Invalid {
                        key: "storage.blobs",
                        value: kind,
                        reason: format!(
                            "{} is set but {} is not",
                            EnvVars::AWS_SECRET_ACCESS_KEY,
                            EnvVars::AWS_ACCESS_KEY_ID
                        ),
                    });
                }
            };
            let cache_size = match raw.s3_cache_size {
                None => 0,
                Some(ByteSize::Bytes(bytes)) => bytes,
                Some(ByteSize::Text(text)) => parse_byte_size(&text).map_err(|reason| ConfigError::Invalid {
                    key: "storage.s3_cache_size",
                    value: text,
                    reason,
                })?,
            };
            Ok(BlobStorage::S3(Box::new(S3Storage {
                cache_size,
                endpoint,
                bucket,
                region,
                prefix,
                access_key_id,
                secret_access_key,
                session_token: session_token.map(|token| Secret(token.to_owned())),
            })))
        }
        _ => {
            Err(ConfigError::Invalid { key: "storage.blobs", value: kind, reason: "expected \"dir\" or \"s3\"".into() })
        }
    }
}

fn parse_base_url(key: &'static str, text: &str) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid { key, value: text.to_owned(), reason };
    let mut url = Url::parse(text).map_err(|error| invalid(error.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid("expected an http:// or https:// URL".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a base URL has no query or fragment".into()));
    }
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(invalid("expected an absolute URL with a host".into()));
    }
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

#[cfg(test)]
mod tests;
