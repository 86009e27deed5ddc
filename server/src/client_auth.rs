//! Optional read tokens for clients, and a rate limit per token.
//!
//! With no tokens configured the registry is anonymous. With tokens, every registry
//! request needs one, as `Authorization: Bearer <token>` (npm's `_authToken`) or Basic
//! with the token as the password (npm's `_auth`, yarn's `always-auth`). Tokens are
//! stored hashed, compared in constant time, and never logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use airlock_config::{AdminToken, ClientsConfig};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::error::json_error;
use crate::routes::AppState;

/// The client a request authenticated as; handlers read it as an extension.
#[derive(Debug, Clone)]
pub struct ClientIdentity(pub String);

/// Token buckets by token name.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    // Written by every authenticated request; held only to update one bucket.
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter with the configured rate.
    pub fn new(config: &ClientsConfig) -> RateLimiter {
        RateLimiter {
            per_second: f64::from(config.rate_limit_per_second),
            burst: f64::from(config.rate_limit_burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from the token's bucket; `Err(seconds)` to wait when empty.
    /// Uses the monotonic clock: rate limiting is about elapsed time, not dates.
    pub fn take(&self, token: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tokens, last) = buckets.entry(token.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

/// Paths that never need a client token: health and metrics (for the platform), the
/// admin API and UI (their own authentication), and Airlock's public keys.
fn is_exempt(path: &str) -> bool {
    matches!(path, "/-/airlock/health" | "/-/airlock/ready" | "/-/airlock/metrics" | "/-/airlock/keys")
        || path.starts_with("/-/airlock/api/")
        || path.starts_with("/-/airlock/admin")
}

/// The token a request presents, from Bearer or Basic authorization.
fn presented_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
        return Some(token.trim().to_owned());
    }
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    Some(password.to_owned())
}

/// The name of the token that matches, comparing against every token in constant time.
pub fn identify(presented: &str, tokens: &[AdminToken]) -> Option<String> {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut matched = None;
    for token in tokens {
        if bool::from(token.sha256.ct_eq(&digest)) {
            matched = Some(token.name.clone());
        }
    }
    matched
}

/// Middleware: require a valid client token when tokens are configured, and apply the
/// per-token rate limit.
pub async fn require_client_token(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let config = &state.mirror.config().clients;
    if config.tokens.is_empty() || is_exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let Some(name) = presented_token(request.headers()).and_then(|token| identify(&token, &config.tokens)) else {
        let mut response = json_error(
            StatusCode::UNAUTHORIZED,
            "this registry requires a token: set //<airlock host>/:_authToken in .npmrc (ask your platform team for one)",
        );
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"airlock\""));
        return response;
    };
    if let Err(wait) = state.client_rate_limiter.take(&name, Instant::now()) {
        tracing::warn!(client = %name, "client rate limit exceeded");
        let mut response = json_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("too many requests for the token {name:?}; retry in {wait} s"),
        );
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    request.extensions_mut().insert(ClientIdentity(name));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_tokens_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(presented_token(&headers).as_deref(), Some("abc"));
        let basic = base64::engine::general_purpose::STANDARD.encode("ci:abc");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {basic}")).unwrap());
        assert_eq!(presented_token(&headers).as_deref(), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Digest xyz"));
        assert_eq!(presented_token(&headers), None);
    }

    #[test]
    fn the_bucket_refills_at_the_configured_rate() {
        let limiter = RateLimiter { per_second: 2.0, burst: 2.0, buckets: Mutex::new(HashMap::new()) };
        let start = Instant::now();
        assert!(limiter.take("ci", start).is_ok());
        assert!(limiter.take("ci", start).is_ok());
        assert_eq!(limiter.take("ci", start), Err(1));
        assert!(limiter.take("other", start).is_ok(), "buckets are per token");
        assert!(limiter.take("ci", start + std::time::Duration::from_millis(600)).is_ok());
    }
}
