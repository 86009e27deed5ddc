//! Airlock's public endpoints for CI: its keys and its signed release records.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::AppState;
use super::admin_api::decode_scope_separator;
use super::registry::json_response;
use crate::error::{AppError, AppResult};
use crate::npm::{PackageName, VersionSpec, quote};

/// `GET /-/npm/v1/keys`: Airlock's registry key plus the upstream's, in npm's format, so
/// `npm audit signatures` verifies both signatures on every released version.
pub(super) async fn get_npm_keys(State(state): State<AppState>) -> Json<Value> {
    let mut keys = vec![state.pipeline.signer().registry_key_json()];
    let upstream_keys = state.mirror.default_upstream().registry_keys(state.mirror.now()).await;
    keys.extend(upstream_keys.keys.iter().map(crate::registry_keys::key_json));
    Json(json!({ "keys": keys }))
}

/// `GET /-/airlock/keys`: the public keys CI pins.
pub(super) async fn get_airlock_keys(State(state): State<AppState>) -> Json<Value> {
    let signer = state.pipeline.signer();
    Json(json!({
        "release_records": signer.release_key_json(),
        "registry_signatures": signer.registry_key_json(),
    }))
}

/// `GET /-/airlock/attestations/{name}@{version}`: the signed release record (a DSSE
/// envelope) of a released version.
pub(super) async fn get_release_record(State(state): State<AppState>, uri: Uri) -> AppResult<Response> {
    let raw = uri.path().strip_prefix("/-/airlock/attestations/").unwrap_or("");
    let decoded = decode_scope_separator(raw);
    let Some((name_text, version_text)) = decoded.rsplit_once('@').filter(|(name, _)| !name.is_empty()) else {
        return Err(AppError::BadRequest(format!(
            "expected /-/airlock/attestations/NAME@VERSION, not {}",
            quote(uri.path())
        )));
    };
    let name = PackageName::parse(name_text)?;
    let version = VersionSpec::parse(version_text)?;
    match state.mirror.store().release_record(&name, version.as_str()).await? {
        Some(record) => Ok(json_response(StatusCode::OK, String::from_utf8_lossy(&record).into_owned())),
        None => Err(AppError::NotFound(format!(
            "{name}@{} has no release record: it was not released by Airlock",
            version.as_str()
        ))),
    }
}
