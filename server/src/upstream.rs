//! The HTTP client for the upstream registry: bounded timeouts, bounded retries with
//! exponential backoff, size limits on everything read into memory.
//!
//! Architecture invariant: the upstream base URL comes from configuration; nothing else
//! in the server names a registry host.

use std::time::Duration;

use airlock_config::UpstreamConfig;
use bytes::Bytes;
use futures_util::StreamExt as _;
use reqwest::StatusCode;

use crate::npm::PackageName;

/// A failed upstream exchange, already phrased for the client.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No answer in time.
    #[error("the upstream registry did not answer in time: {0}")]
    Timeout(String),
    /// Connection failure, 5xx, or an unusable answer.
    #[error("the upstream registry failed: {0}")]
    Failed(String),
}

impl From<UpstreamError> for crate::error::AppError {
    fn from(error: UpstreamError) -> Self {
        match error {
            UpstreamError::Timeout(_) => crate::error::AppError::UpstreamTimeout(error.to_string()),
            UpstreamError::Failed(_) => crate::error::AppError::Upstream(error.to_string()),
        }
    }
}

/// The upstream's answer to a packument request.
pub enum PackumentFetch {
    /// A new document.
    Modified {
        /// The JSON body, at most `max_packument_size` bytes.
        body: Bytes,
        /// The upstream's ETag, for the next conditional request.
        etag: Option<String>,
    },
    /// 304: the stored copy is current.
    NotModified,
    /// 404: no such package upstream.
    NotFound,
}

/// The upstream registries: the default one and one per configured scope.
pub struct Upstreams {
    default: Upstream,
    scoped: Vec<(String, Upstream)>,
}

impl Upstreams {
    /// Builds a client per registry, each with its own credentials.
    pub fn new(config: &UpstreamConfig, max_packument_size: u64) -> anyhow::Result<Upstreams> {
        let default = Upstream::new(config, &config.url, config.token.as_ref(), max_packument_size)?;
        let scoped = config
            .scopes
            .iter()
            .map(|scoped| {
                let upstream = Upstream::new(config, &scoped.url, scoped.token.as_ref(), max_packument_size)?;
                Ok((format!("{}/", scoped.scope), upstream))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Upstreams { default, scoped })
    }

    /// The registry that serves this package.
    pub fn for_package(&self, name: &PackageName) -> &Upstream {
        self.scoped
            .iter()
            .find(|(prefix, _)| name.as_str().starts_with(prefix.as_str()))
            .map_or(&self.default, |(_, upstream)| upstream)
    }

    /// The default registry (audits, keys of unscoped packages).
    pub fn default_upstream(&self) -> &Upstream {
        &self.default
    }
}

/// One upstream registry's client.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    base: String,
    config: UpstreamConfig,
    max_packument_size: u64,
    keys: std::sync::Arc<crate::registry_keys::UpstreamKeys>,
}

/// Redirect hops an upstream request may take.
const MAX_REDIRECTS: usize = 5;

/// Follows a redirect only to the upstream's own origin or to a configured host
/// (`upstream.redirect_hosts`), so a hostile upstream cannot point Airlock at internal
/// services; the download of a tarball the packument declares elsewhere is refused by
/// the same rule (`packument::upstream_tarball_url`). Every hop is checked, not only the
/// first.
fn redirect_policy(base: &airlock_config::Url, allowed_hosts: &[String]) -> reqwest::redirect::Policy {
    let own_origin = base.origin();
    let allowed_hosts = allowed_hosts.to_vec();
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        let target = attempt.url();
        let host = target.host_str().unwrap_or_default().to_ascii_lowercase();
        let host_and_port = target.port().map(|port| format!("{host}:{port}"));
        let allowed = target.origin() == own_origin
            || (matches!(target.scheme(), "https" | "http")
                && allowed_hosts.iter().any(|entry| *entry == host || Some(entry) == host_and_port.as_ref()));
        if allowed {
            attempt.follow()
        } else {
            let refused =
                format!("refused a redirect to {target}: not the upstream's origin nor in upstream.redirect_hosts");
            attempt.error(refused)
        }
    })
}

impl Upstream {
    /// Builds the client. Uses rustls with the platform's certificate store, so networks
    /// that intercept TLS with a CA in the system store work. The token, if any, is a
    /// default header of this client only, marked sensitive so it is never logged.
    pub fn new(
        config: &UpstreamConfig,
        url: &airlock_config::Url,
        token: Option<&airlock_config::Secret>,
        max_packument_size: u64,
    ) -> anyhow::Result<Upstream> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .default_headers(headers)
            // reqwest drops the Authorization header on cross-origin redirects, so the
            // token never leaves; the policy decides which redirects are followed at all.
            .redirect(redirect_policy(url, &config.redirect_hosts))
            .build()?;
        Ok(Upstream {
            client,
            base: url.as_str().trim_end_matches('/').to_owned(),
            config: config.clone(),
            max_packument_size,
            keys: std::sync::Arc::default(),
        })
    }

    /// This registry's signing keys (cached).
    pub async fn registry_keys(&self, now: chrono::DateTime<chrono::Utc>) -> airlock_scanner::provenance::RegistryKeys {
        self.keys.get(self, now).await
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Fetches the full packument, conditionally when `etag` is known.
    pub async fn fetch_packument(
        &self,
        name: &PackageName,
        etag: Option<&str>,
    ) -> Result<PackumentFetch, UpstreamError> {
        let url = format!("{}/{}", self.base, name.url_segment());
        let response = self
            .send_with_retries(|| {
                let mut request = self
                    .client
                    .get(&url)
                    .timeout(self.config.timeout)
                    .header(reqwest::header::ACCEPT, "application/json");
                if let Some(etag) = etag {
                    request = request.header(reqwest::header::IF_NONE_MATCH, etag);
                }
                request
            })
            .await?;
        match response.status() {
            StatusCode::NOT_MODIFIED => Ok(PackumentFetch::NotModified),
            StatusCode::NOT_FOUND => Ok(PackumentFetch::NotFound),
            status if status.is_success() => {
                let etag = response
                    .headers()
                    .get(reqwest::header::ETAG)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                let body = read_limited(response, self.max_packument_size, "packument").await?;
                Ok(PackumentFetch::Modified { body, etag })
            }
            status => Err(UpstreamError::Failed(format!("{url} answered HTTP {status}"))),
        }
    }

    /// GETs a small JSON document (keys, attestations) under the upstream's base URL.
    /// `Ok(None)` when the upstream answers 404.
    pub async fn fetch_small_json(&self, path: &str) -> Result<Option<Bytes>, UpstreamError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .send_with_retries(|| {
                self.client.get(&url).timeout(self.config.timeout).header(reqwest::header::ACCEPT, "application/json")
            })
            .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => Ok(Some(read_limited(response, 16 << 20, "document").await?)),
            status => Err(UpstreamError::Failed(format!("{url} answered HTTP {status}"))),
        }
    }

    /// Starts a tarball download; the caller streams and verifies the body.
    pub async fn fetch_tarball(&self, url: &str) -> Result<reqwest::Response, UpstreamError> {
        let response = self.send_with_retries(|| self.client.get(url)).await?;
        match response.status() {
            status if status.is_success() => Ok(response),
            StatusCode::NOT_FOUND => Err(UpstreamError::Failed(format!("{url} answered HTTP 404"))),
            status => Err(UpstreamError::Failed(format!("{url} answered HTTP {status}"))),
        }
    }

    /// Forwards a POST (the audit endpoints) and returns status, content type and body.
    pub async fn forward_post(
        &self,
        path: &str,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        body: Bytes,
    ) -> Result<(StatusCode, Option<String>, Bytes), UpstreamError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .send_with_retries(|| {
                let mut request = self.client.post(&url).timeout(self.config.timeout).body(body.clone());
                if let Some(value) = content_type {
                    request = request.header(reqwest::header::CONTENT_TYPE, value);
                }
                if let Some(value) = content_encoding {
                    request = request.header(reqwest::header::CONTENT_ENCODING, value);
                }
                request
            })
            .await?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = read_limited(response, self.max_packument_size, "audit response").await?;
        Ok((status, content_type, body))
    }

    /// Sends a request, retrying connection errors, timeouts and 5xx answers up to
    /// `retries` times with exponential backoff. 4xx answers are returned at once.
    async fn send_with_retries(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut delay = self.config.retry_backoff;
        let mut attempt = 0;
        loop {
            let outcome = build().send().await;
            let retryable = match &outcome {
                Ok(response) => response.status().is_server_error(),
                // A refused redirect is the policy's answer, not a transient failure.
                Err(error) => !error.is_redirect(),
            };
            if !retryable || attempt >= self.config.retries {
                return match outcome {
                    Ok(response) => Ok(response),
                    Err(error) => Err(describe(error)),
                };
            }
            attempt += 1;
            tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, "retrying upstream request");
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }
}

/// Reads a body into memory, refusing more than `limit` bytes.
async fn read_limited(response: reqwest::Response, limit: u64, what: &str) -> Result<Bytes, UpstreamError> {
    if response.content_length().is_some_and(|length| length > limit) {
        return Err(UpstreamError::Failed(format!("the {what} is larger than the limit of {limit} bytes")));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(describe)?;
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(UpstreamError::Failed(format!("the {what} is larger than the limit of {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

fn describe(error: reqwest::Error) -> UpstreamError {
    // reqwest's Display omits the cause ("error sending request"); include the chain.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_timeout() { UpstreamError::Timeout(message) } else { UpstreamError::Failed(message) }
}
