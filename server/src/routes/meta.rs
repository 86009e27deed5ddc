//! Registry endpoints that are not about one package: ping, whoami, the audit
//! endpoints (forwarded upstream) and health.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;

use super::AppState;
use super::registry::json_response;
use crate::error::{AppError, AppResult};

/// Largest audit request forwarded (npm sends the whole dependency tree).
const MAX_AUDIT_BODY: usize = 32 << 20;

/// `GET /-/ping`: npm's health check.
pub(super) async fn ping() -> Response {
    json_response(StatusCode::OK, "{}".into())
}

/// `GET /-/whoami`: the client token's name, or `anonymous` when tokens are off.
pub(super) async fn whoami(identity: Option<axum::Extension<crate::client_auth::ClientIdentity>>) -> Response {
    let name = identity.map(|axum::Extension(identity)| identity.0).unwrap_or_else(|| "anonymous".to_owned());
    json_response(StatusCode::OK, serde_json::json!({ "username": name }).to_string())
}

/// `GET /-/airlock/health`: the process is up.
pub(super) async fn health() -> Response {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#.into())
}

/// `GET /-/airlock/ready`: the store answers, the object store (when blobs live in
/// one) takes a write, and the disk takes writes (the keys are
/// loaded before the server starts, so a running server has them). Not ready is 503
/// with the reason; reads of stored versions are served meanwhile.
pub(super) async fn ready(State(state): State<AppState>) -> Response {
    if let Err(error) = state
        .mirror
        .store()
        .package(&crate::npm::PackageName::parse("airlock-readiness-probe").expect("valid name"))
        .await
    {
        tracing::error!(%error, "readiness probe: the store does not answer");
        return json_response(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"store unavailable"}"#.into());
    }
    if let Some(reason) = state.mirror.blob_store_problem().await {
        // Logged by the mirror when the state changes, not on every probe.
        let body = serde_json::json!({ "status": "blob store unavailable", "reason": reason });
        return json_response(StatusCode::SERVICE_UNAVAILABLE, body.to_string());
    }
    match state.mirror.storage_problem().await {
        None => json_response(StatusCode::OK, r#"{"status":"ready"}"#.into()),
        Some(reason) => {
            // Logged by the mirror when the state changes, not on every probe.
            let body = serde_json::json!({ "status": "storage full", "reason": reason });
            json_response(StatusCode::SERVICE_UNAVAILABLE, body.to_string())
        }
    }
}

/// `GET /-/airlock/metrics`: Prometheus text format.
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let store = state.mirror.store();
    let mut counts = (std::collections::BTreeMap::new(), 0u64);
    match (store.all_versions().await, store.queued().await) {
        (Ok(versions), Ok(queued)) => {
            for (_, _, record) in versions {
                *counts.0.entry(record.state.as_str()).or_insert(0u64) += 1;
            }
            counts.1 = queued.len() as u64;
        }
        (Err(error), _) | (_, Err(error)) => {
            tracing::error!(%error, "metrics: the store does not answer; version gauges read 0");
        }
    }
    let gauges = crate::metrics::Gauges {
        versions_by_state: ["checking", "cooling", "held", "released", "rejected"]
            .into_iter()
            .map(|state| (state, counts.0.get(state).copied().unwrap_or(0)))
            .collect(),
        queue_depth: counts.1,
        storage_full: state.mirror.storage_is_full(),
    };
    let body = state.mirror.metrics().render(&gauges);
    let mut response = Response::new(axum::body::Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// `POST /-/npm/v1/security/...`: forwarded to the upstream as is. Audits send only
/// names and versions, never package contents, and the answer is advisory data.
pub(super) async fn forward_audit(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    if body.len() > MAX_AUDIT_BODY {
        return Err(AppError::BadRequest(format!("the audit request is larger than {MAX_AUDIT_BODY} bytes")));
    }
    let header_text = |name: header::HeaderName| headers.get(name).and_then(|value| value.to_str().ok());
    let upstream = state.mirror.default_upstream();
    let (status, content_type, response_body) = upstream
        .forward_post(uri.path(), header_text(header::CONTENT_TYPE), header_text(header::CONTENT_ENCODING), body)
        .await?;
    if matches!(status.as_u16(), 404 | 405 | 501) {
        return Err(AppError::NotFound(format!(
            "the upstream registry {} has no audit service (it answered HTTP {} to {})",
            upstream.base(),
            status.as_u16(),
            uri.path()
        )));
    }
    let mut response = Response::new(axum::body::Body::from(response_body));
    *response.status_mut() = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if let Some(content_type) = content_type.and_then(|value| header::HeaderValue::from_str(&value).ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    }
    Ok(response)
}
