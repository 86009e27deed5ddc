//! Every environment variable Airlock reads, in one place, so the README and the
//! binary cannot disagree about their names.

/// The environment variables Airlock reads. Each overrides the matching key of the
/// configuration file; command-line flags override both.
pub struct EnvVars;

impl EnvVars {
    /// Path of the TOML configuration file.
    pub const CONFIG: &'static str = "AIRLOCK_CONFIG";
    /// `server.listen`: the socket address to listen on.
    pub const LISTEN: &'static str = "AIRLOCK_LISTEN";
    /// `server.public_url`: the URL clients reach Airlock at; tarball URLs point there.
    pub const PUBLIC_URL: &'static str = "AIRLOCK_PUBLIC_URL";
    /// `server.data_dir`: where metadata and tarballs are stored.
    pub const DATA_DIR: &'static str = "AIRLOCK_DATA_DIR";
    /// `upstream.url`: the registry Airlock mirrors.
    pub const UPSTREAM: &'static str = "AIRLOCK_UPSTREAM";
    /// `upstream.token`: a token for the default upstream.
    pub const UPSTREAM_TOKEN: &'static str = "AIRLOCK_UPSTREAM_TOKEN";
    /// `quarantine.cooling_period`: how old a version must be before it is served.
    pub const COOLING_PERIOD: &'static str = "AIRLOCK_COOLING_PERIOD";
    /// `log.format`: `text` or `json`.
    pub const LOG_FORMAT: &'static str = "AIRLOCK_LOG_FORMAT";
    /// `log.filter`: a tracing filter such as `info,airlock_server=debug`.
    pub const LOG: &'static str = "AIRLOCK_LOG";
    /// A first admin token, in plain text; it acts as the admin named `admin`.
    pub const ADMIN_TOKEN: &'static str = "AIRLOCK_ADMIN_TOKEN";
    /// `forge.token`: a token for the GitHub API.
    pub const FORGE_TOKEN: &'static str = "AIRLOCK_FORGE_TOKEN";
    /// `notifications.webhook_secret`: the webhook's HMAC secret.
    pub const WEBHOOK_SECRET: &'static str = "AIRLOCK_WEBHOOK_SECRET";
    /// `storage.url`: the PostgreSQL URL, with its password.
    pub const STORAGE_URL: &'static str = "AIRLOCK_STORAGE_URL";
    /// The token `airlock admin` and `airlock verify` send to a running Airlock.
    pub const TOKEN: &'static str = "AIRLOCK_TOKEN";
    /// The object store's access key id (`storage.blobs = "s3"`), under the name every
    /// S3 tool reads.
    pub const AWS_ACCESS_KEY_ID: &'static str = "AWS_ACCESS_KEY_ID";
    /// The object store's secret access key.
    pub const AWS_SECRET_ACCESS_KEY: &'static str = "AWS_SECRET_ACCESS_KEY";
    /// A session token that goes with temporary object store credentials.
    pub const AWS_SESSION_TOKEN: &'static str = "AWS_SESSION_TOKEN";

    /// Every variable with the configuration key it overrides, for documentation and tests.
    pub const ALL: &'static [(&'static str, &'static str)] = &[
        (Self::CONFIG, "(path of the configuration file)"),
        (Self::LISTEN, "server.listen"),
        (Self::PUBLIC_URL, "server.public_url"),
        (Self::DATA_DIR, "server.data_dir"),
        (Self::UPSTREAM, "upstream.url"),
        (Self::UPSTREAM_TOKEN, "upstream.token"),
        (Self::COOLING_PERIOD, "quarantine.cooling_period"),
        (Self::LOG_FORMAT, "log.format"),
        (Self::LOG, "log.filter"),
        (Self::ADMIN_TOKEN, "admin.tokens (one more, named `admin`)"),
        (Self::FORGE_TOKEN, "forge.token"),
        (Self::WEBHOOK_SECRET, "notifications.webhook_secret"),
        (Self::STORAGE_URL, "storage.url"),
        (Self::TOKEN, "(client side: the token of `airlock admin` and `airlock verify`)"),
        (Self::AWS_ACCESS_KEY_ID, "(object store credentials for `storage.blobs = \"s3\"`)"),
        (Self::AWS_SECRET_ACCESS_KEY, "(object store credentials for `storage.blobs = \"s3\"`)"),
        (Self::AWS_SESSION_TOKEN, "(object store credentials for `storage.blobs = \"s3\"`)"),
    ];
}
