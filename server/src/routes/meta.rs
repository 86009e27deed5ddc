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

/// `GET /-/whoami`: anonymous until client tokens exist.
pub(super) async fn whoami() -> Response {
    json_response(StatusCode::OK, r#"{"username":"anonymous"}"#.into())
}

/// `GET /-/airlock/health`: the process is up.
pub(super) async fn health() -> Response {
    json_response(StatusCode::OK, r#"{"status":"ok"}"#.into())
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
    let upstream = state.mirror.upstream();
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
