//! The HTTP surface, grouped by who uses it. Handlers are thin: they parse, call a
//! service, and shape the response.

mod admin_api;
mod admin_ui;
mod airlock;
mod meta;
mod registry;
mod status_page;

use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};

use crate::mirror::Mirror;
use crate::quarantine::pipeline::Pipeline;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The caching mirror.
    pub mirror: Mirror,
    /// The check pipeline and admin decisions.
    pub pipeline: Pipeline,
    /// Per-token rate limits of client tokens.
    pub client_rate_limiter: std::sync::Arc<crate::client_auth::RateLimiter>,
    /// Wrong admin tokens and passwords, by source and account.
    pub credential_throttle: std::sync::Arc<crate::throttle::CredentialThrottle>,
}

/// Loads the admin-added policy rules and the waivers into the policy (at start, before
/// serving).
pub async fn load_policy_rules(state: &AppState) -> anyhow::Result<()> {
    admin_ui::reload_policy_rules(state)
        .await
        .map_err(|error| anyhow::anyhow!("loading the admin-added policy rules: {error}"))?;
    crate::quarantine::waivers::reload(state.mirror.store(), state.mirror.policy())
        .await
        .map_err(|error| anyhow::anyhow!("loading the waivers: {error}"))
}

/// The whole application, ready to serve or to `oneshot` in tests.
pub fn app(state: AppState) -> Router {
    Router::new()
        // Used by npm, pnpm, yarn and bun.
        .route("/-/ping", get(meta::ping))
        .route("/-/whoami", get(meta::whoami))
        .route("/-/npm/v1/security/advisories/bulk", post(meta::forward_audit))
        .route("/-/npm/v1/security/audits/quick", post(meta::forward_audit))
        .route("/-/npm/v1/security/audits", post(meta::forward_audit))
        .route("/-/package/{*rest}", get(registry::get_dist_tags))
        .route("/-/npm/v1/keys", get(airlock::get_npm_keys))
        // Used by CI to verify what it installed.
        .route("/-/airlock/keys", get(airlock::get_airlock_keys))
        .route("/-/airlock/attestations/{*spec}", get(airlock::get_release_record))
        // Used by developers a version was refused to (the link in every refusal).
        .route("/-/airlock/status/{*rest}", get(status_page::get_status))
        // Used by admins (and `airlock admin`).
        .route("/-/airlock/api/versions", get(admin_api::list_versions))
        .route("/-/airlock/api/packages/{*rest}", get(admin_api::get_package_or_version).post(admin_api::post_action))
        .route("/-/airlock/api/audit", get(admin_api::list_audit))
        .route("/-/airlock/api/queue", get(admin_api::list_queue))
        .route("/-/airlock/api/queue/clear", axum::routing::post(admin_api::clear_queue))
        .route("/-/airlock/api/feeds/refresh", axum::routing::post(admin_api::refresh_feed))
        .route("/-/airlock/api/policy", get(admin_api::get_policy))
        .route("/-/airlock/api/waivers", get(admin_api::list_waivers).post(admin_api::post_waiver))
        .route("/-/airlock/api/waivers/{id}/revoke", axum::routing::post(admin_api::revoke_waiver))
        // Used by admins in a browser: the web UI under `/-/airlock/admin/`.
        .merge(admin_ui::router(&state))
        // Used by operators and load balancers.
        .route("/-/airlock/health", get(meta::health))
        .route("/-/airlock/ready", get(meta::ready))
        .route("/-/airlock/metrics", get(meta::metrics))
        // Packuments, version manifests and tarballs: `/name`, `/@scope/name`,
        // `/@scope%2fname`, `/name/1.2.3`, `/name/-/name-1.2.3.tgz`. The scope separator
        // may be encoded, so these are parsed from the raw path rather than routed.
        .fallback(registry::get_package_path)
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::client_auth::require_client_token))
        .layer(axum::middleware::from_fn_with_state(state.clone(), log_request))
        .with_state(state)
}

/// One log line per request, at the boundary, with a request id (the client's
/// `x-request-id` when it is short and plain, else a new one), and the request metrics.
/// Headers are never logged: they may carry tokens.
async fn log_request(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty()
                && value.len() <= 64
                && value.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
        .map(str::to_owned)
        .unwrap_or_else(next_request_id);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        request.headers_mut().insert("x-request-id", value);
    }
    let mut response = next.run(request).await;
    let status = response.status().as_u16();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let bytes = response
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    state.mirror.metrics().record_request(crate::metrics::route_of(&path), status, bytes);
    if status >= 500 {
        tracing::warn!(request.id = %request_id, http.method = %method, http.path = %path, http.status = status, duration_ms, "request");
    } else {
        tracing::info!(request.id = %request_id, http.method = %method, http.path = %path, http.status = status, duration_ms, "request");
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// A process-unique request id: a random prefix chosen at start and a counter.
fn next_request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| rand_core::RngCore::next_u32(&mut rand_core::OsRng));
    format!("{prefix:08x}-{:012x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The client's IP address for per-client limits: the peer, or the client a trusted
/// proxy forwarded for. Without connect info (a router driven by `oneshot` in tests),
/// the unspecified address, so all such requests share one bucket.
pub(crate) fn client_ip(
    extensions: &axum::http::Extensions,
    headers: &axum::http::HeaderMap,
    trusted_proxies: &[std::net::IpAddr],
) -> std::net::IpAddr {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |info| info.0.ip());
    let forwarded_for = headers.get("x-forwarded-for").and_then(|value| value.to_str().ok());
    crate::throttle::client_address(peer, forwarded_for, trusted_proxies)
}
