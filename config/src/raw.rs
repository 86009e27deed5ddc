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
}

/// `[quarantine]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuarantine {
    /// Minimum age before a version is listed or served.
    pub cooling_period: Option<String>,
}

/// `[cache]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    /// Memory budget for rendered (rewritten, precompressed) packuments.
    pub rendered_packuments_memory: Option<ByteSize>,
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
