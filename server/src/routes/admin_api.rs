//! The admin JSON API under `/-/airlock/api/`: what is held and why, per-version detail,
//! approve / reject / recheck, the audit log and the policy.
//!
//! Every request needs `Authorization: Bearer <token>`; tokens are configured hashed and
//! compared in constant time. Every action is recorded with the token's name.

use axum::Json;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::AppState;
use crate::error::{AppError, AppResult, json_error};
use crate::npm::{PackageName, VersionSpec, quote};
use crate::quarantine::checks::CheckRecord;
use crate::store::{VersionRecord, VersionState};

/// Longest comment accepted on an action.
const MAX_COMMENT: usize = 4096;

/// The admin a valid token belongs to.
pub(crate) struct Admin(pub(crate) String);

/// Why a request was not authenticated.
pub(crate) struct Unauthorized(StatusCode, String);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let mut response = json_error(self.0, &self.1);
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Too many wrong tokens from this source: try again later.
pub(crate) struct Throttled(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>);

impl IntoResponse for Throttled {
    fn into_response(self) -> Response {
        let Throttled(retry_at, now) = self;
        let seconds = (retry_at - now).num_seconds().max(1);
        let mut response = json_error(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("too many wrong admin tokens from this address; try again in {seconds} s"),
        );
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        response
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, Response> {
        let source = super::client_ip(&parts.extensions, &parts.headers, &state.mirror.config().server.trusted_proxies);
        let throttle = &state.credential_throttle;
        let now = state.mirror.now();
        if let crate::throttle::Admission::RetryAt(retry_at) = throttle.admit(source, None, now) {
            return Err(Throttled(retry_at, now).into_response());
        }
        match authenticate(&parts.headers, &state.mirror.config().admin.tokens) {
            Ok(admin) => {
                throttle.record_success(source, None);
                Ok(admin)
            }
            Err(refusal) => {
                // Only a wrong token counts, not a missing one (a browser's first try).
                if refusal.0 == StatusCode::FORBIDDEN && throttle.record_failure(source, None, now) {
                    tracing::warn!(client.address = %source, "wrong admin tokens: this address now backs off");
                }
                Err(refusal.into_response())
            }
        }
    }
}

/// Checks a bearer token against the configured hashes. Every configured token is
/// compared (no early exit) and each comparison is constant-time, so timing reveals
/// neither which token nor how much of it matched.
pub(crate) fn authenticate(headers: &HeaderMap, tokens: &[airlock_config::AdminToken]) -> Result<Admin, Unauthorized> {
    if tokens.is_empty() {
        return Err(Unauthorized(
            StatusCode::UNAUTHORIZED,
            "the admin API is disabled: no admin tokens are configured (set AIRLOCK_ADMIN_TOKEN or [admin] tokens)"
                .into(),
        ));
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    let Some(presented) = presented else {
        return Err(Unauthorized(
            StatusCode::UNAUTHORIZED,
            "an admin token is required: Authorization: Bearer <token>".into(),
        ));
    };
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut matched: Option<&str> = None;
    for token in tokens {
        if bool::from(token.sha256.ct_eq(&digest)) {
            matched = Some(&token.name);
        }
    }
    match matched {
        Some(name) => Ok(Admin(name.to_owned())),
        None => {
            tracing::debug!("admin API request with an unknown token");
            Err(Unauthorized(StatusCode::FORBIDDEN, "the admin token is not valid".into()))
        }
    }
}

/// Filters of `GET /-/airlock/api/versions`.
#[derive(Deserialize)]
pub(super) struct VersionFilter {
    state: Option<String>,
    package: Option<String>,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    500
}

/// `GET /-/airlock/api/versions`: versions by state, held first, newest first.
pub(super) async fn list_versions(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(filter): ApiQuery<VersionFilter>,
) -> AppResult<Json<Value>> {
    let wanted_state = match filter.state.as_deref() {
        None | Some("") => None,
        Some(text) => Some(VersionState::parse(text).ok_or_else(|| {
            AppError::BadRequest(format!(
                "unknown state {}; expected checking, cooling, held, released or rejected",
                quote(text)
            ))
        })?),
    };
    let store = state.mirror.store();
    let mut versions: Vec<(String, String, VersionRecord)> = store
        .all_versions()
        .await?
        .into_iter()
        .filter(|(_, _, record)| wanted_state.is_none_or(|wanted| record.state == wanted))
        .filter(|(name, _, _)| {
            filter.package.as_deref().is_none_or(|package| name == package || name.contains(package))
        })
        .collect();
    let order = |state: VersionState| match state {
        VersionState::Held => 0,
        VersionState::Checking => 1,
        VersionState::Cooling => 2,
        VersionState::Rejected => 3,
        VersionState::Released => 4,
    };
    versions.sort_by(|left, right| {
        order(left.2.state)
            .cmp(&order(right.2.state))
            .then_with(|| right.2.state_changed_at.cmp(&left.2.state_changed_at))
            .then_with(|| right.2.first_seen.cmp(&left.2.first_seen))
    });
    let total = versions.len();
    let mut listed: Vec<Value> = Vec::new();
    for (name, version, record) in versions.into_iter().take(filter.limit.min(5000)) {
        let summary = match PackageName::parse(&name) {
            Ok(package) => store.checks::<CheckRecord>(&package, &version).await?.map(|checks| checks.summary()),
            Err(_) => None,
        };
        listed.push(version_summary(&state, &name, &version, &record, summary));
    }
    Ok(Json(json!({ "total": total, "versions": listed })))
}

fn version_summary(
    state: &AppState,
    name: &str,
    version: &str,
    record: &VersionRecord,
    checks: Option<Value>,
) -> Value {
    let cooling_until = PackageName::parse(name)
        .ok()
        .map(|package| state.mirror.policy().cooling_until(&package, version, record.effective_published));
    json!({
        "package": name,
        "version": version,
        "state": record.state.as_str(),
        "reason": record.reason,
        "decided_by": record.decided_by,
        "state_changed_at": record.state_changed_at,
        "first_seen": record.first_seen,
        "published": record.claimed_published,
        "effective_published": record.effective_published,
        "cooling_until": cooling_until,
        "integrity": record.integrity,
        "checks": checks,
    })
}

/// What a path under `/-/airlock/api/packages/` names.
enum PackagePath {
    Package(PackageName),
    Version(PackageName, String),
    Action(PackageName, String, String),
}

fn parse_admin_path(uri: &Uri) -> AppResult<PackagePath> {
    let raw = uri.path().strip_prefix("/-/airlock/api/packages/").unwrap_or("");
    let decoded = decode_scope_separator(raw);
    let segments: Vec<&str> = decoded.split('/').filter(|segment| !segment.is_empty()).collect();
    let (name_text, rest) = if decoded.starts_with('@') && segments.len() >= 2 {
        (format!("{}/{}", segments[0], segments[1]), &segments[2..])
    } else if let Some(first) = segments.first() {
        ((*first).to_owned(), &segments[1..])
    } else {
        return Err(AppError::NotFound("no package named".into()));
    };
    let name = PackageName::parse(&name_text)?;
    match rest {
        [] => Ok(PackagePath::Package(name)),
        ["versions", version] => Ok(PackagePath::Version(name, VersionSpec::parse(version)?.as_str().to_owned())),
        ["versions", version, action] => {
            Ok(PackagePath::Action(name, VersionSpec::parse(version)?.as_str().to_owned(), (*action).to_owned()))
        }
        _ => Err(AppError::NotFound(format!("no such admin path {}", quote(uri.path())))),
    }
}

/// `@scope%2fname` → `@scope/name`, like the registry routes.
pub(super) fn decode_scope_separator(raw: &str) -> String {
    if raw.starts_with('@') {
        let lower = raw.to_ascii_lowercase();
        if let Some(position) = lower.find("%2f") {
            return format!("{}/{}", &raw[..position], &raw[position + 3..]);
        }
    }
    raw.to_owned()
}

/// `GET /-/airlock/api/packages/{name}` and `.../versions/{version}`.
pub(super) async fn get_package_or_version(
    State(state): State<AppState>,
    _admin: Admin,
    uri: Uri,
) -> AppResult<Json<Value>> {
    match parse_admin_path(&uri)? {
        PackagePath::Package(name) => package_detail(&state, &name).await,
        PackagePath::Version(name, version) => version_detail(&state, &name, &version).await,
        PackagePath::Action(..) => Err(AppError::BadRequest("actions are POST requests".into())),
    }
}

async fn package_detail(state: &AppState, name: &PackageName) -> AppResult<Json<Value>> {
    let store = state.mirror.store();
    let mut versions = store.versions(name).await?;
    if versions.is_empty() {
        return Err(AppError::NotFound(format!("Airlock has not seen {name}")));
    }
    versions.sort_by(|left, right| match (semver::Version::parse(&left.0), semver::Version::parse(&right.0)) {
        (Ok(left), Ok(right)) => right.cmp(&left),
        _ => right.0.cmp(&left.0),
    });
    let mut listed: Vec<Value> = Vec::new();
    for (version, record) in &versions {
        let checks: Option<CheckRecord> = store.checks(name, version).await?;
        let mut summary =
            version_summary(state, name.as_str(), version, record, checks.as_ref().map(CheckRecord::summary));
        summary["provenance"] = checks.and_then(|checks| checks.provenance).unwrap_or(Value::Null);
        listed.push(summary);
    }
    let package = store.package(name).await?;
    Ok(Json(json!({
        "package": name.as_str(),
        "first_seen": package.as_ref().map(|record| record.first_seen),
        "fetched_at": package.as_ref().map(|record| record.fetched_at),
        "versions": listed,
    })))
}

async fn version_detail(state: &AppState, name: &PackageName, version: &str) -> AppResult<Json<Value>> {
    let store = state.mirror.store();
    let record = store
        .version(name, version)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("Airlock has no record of {name}@{version}")))?;
    let checks: Option<CheckRecord> = store.checks(name, version).await?;
    let mut detail = version_summary(state, name.as_str(), version, &record, checks.as_ref().map(CheckRecord::summary));
    detail["checks"] = serde_json::to_value(&checks).unwrap_or(Value::Null);
    detail["history"] = serde_json::to_value(store.history(name, version).await?).unwrap_or(Value::Null);
    detail["release_record"] = match store.release_record(name, version).await? {
        Some(_) => Value::String(format!(
            "{}/-/airlock/attestations/{}@{version}",
            state.mirror.public_base(),
            name.url_segment()
        )),
        None => Value::Null,
    };
    Ok(Json(detail))
}

/// A query string parsed into `T`, refused with a JSON error quoting it.
pub(super) struct ApiQuery<T>(T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ApiQuery<T>, Response> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(json_error(
                StatusCode::BAD_REQUEST,
                &format!("invalid query {}: {}", quote(parts.uri.query().unwrap_or_default()), rejection.body_text()),
            )),
        }
    }
}

/// Largest action body read; a comment is at most [`MAX_COMMENT`] bytes.
const MAX_ACTION_BODY: usize = 64 * 1024;

/// An optional JSON body of at most [`MAX_ACTION_BODY`] bytes, refused with a JSON error.
pub(super) struct ApiBody<T>(Option<T>);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for ApiBody<T> {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, _state: &S) -> Result<ApiBody<T>, Response> {
        let bytes = axum::body::to_bytes(request.into_body(), MAX_ACTION_BODY).await.map_err(|_| {
            json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the request body is larger than {MAX_ACTION_BODY} bytes"),
            )
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(ApiBody(None));
        }
        serde_json::from_slice(&bytes).map(|value| ApiBody(Some(value))).map_err(|error| {
            json_error(StatusCode::BAD_REQUEST, &format!("the request body is not the expected JSON: {error}"))
        })
    }
}

/// The body of an action.
#[derive(Deserialize, Default)]
pub(super) struct ActionBody {
    #[serde(default)]
    comment: Option<String>,
}

/// `POST .../versions/{version}/approve|reject|recheck` with `{"comment": "..."}`.
pub(super) async fn post_action(
    State(state): State<AppState>,
    admin: Admin,
    uri: Uri,
    ApiBody(body): ApiBody<ActionBody>,
) -> AppResult<Response> {
    let PackagePath::Action(name, version, action) = parse_admin_path(&uri)? else {
        return Err(AppError::NotFound(format!("no such admin action {}", quote(uri.path()))));
    };
    let comment = body.and_then(|body| body.comment).map(|comment| comment.trim().to_owned()).filter(|c| !c.is_empty());
    if comment.as_ref().is_some_and(|comment| comment.len() > MAX_COMMENT) {
        return Err(AppError::BadRequest(format!("the comment is longer than {MAX_COMMENT} bytes")));
    }
    let require_comment = || {
        comment
            .clone()
            .ok_or_else(|| AppError::BadRequest(format!("a comment is required to {action} {name}@{version}")))
    };
    tracing::info!(admin = %admin.0, action = %action, package.name = %name, package.version = %version, "admin action");
    match action.as_str() {
        "approve" => {
            state.pipeline.approve(&name, &version, &admin.0, &require_comment()?).await?;
        }
        "reject" => {
            state.pipeline.reject(&name, &version, &admin.0, &require_comment()?).await?;
        }
        "recheck" => {
            state.pipeline.recheck(&name, &version, &admin.0, comment).await?;
        }
        other => {
            return Err(AppError::NotFound(format!(
                "unknown action {}; expected approve, reject or recheck",
                quote(other)
            )));
        }
    }
    let Json(detail) = version_detail(&state, &name, &version).await?;
    Ok((StatusCode::OK, Json(detail)).into_response())
}

/// `GET /-/airlock/api/queue`: versions waiting for checks, with their attempts.
pub(super) async fn list_queue(State(state): State<AppState>, _admin: Admin) -> AppResult<Json<Value>> {
    let store = state.mirror.store();
    let mut entries = Vec::new();
    for (name, version, entry, in_flight) in state.pipeline.queue().await? {
        let record = store.version(&name, &version).await?;
        entries.push(json!({
            "package": name.as_str(),
            "version": version,
            "state": record.map(|record| record.state.as_str()),
            "attempts": entry.attempts,
            "last_error": entry.last_error,
            "in_flight": in_flight,
        }));
    }
    Ok(Json(json!({
        "max_attempts": state.mirror.config().checks.max_attempts,
        "total": entries.len(),
        "entries": entries,
    })))
}

/// The body of `POST /-/airlock/api/queue/clear`: one version, or every stuck entry
/// (one with a failed attempt and no check running).
#[derive(Deserialize)]
pub(super) struct ClearQueueBody {
    package: Option<String>,
    version: Option<String>,
    #[serde(default)]
    all_stuck: bool,
    comment: Option<String>,
}

/// `POST /-/airlock/api/feeds/refresh`: re-reads the known-malware feed now and holds
/// every known version it lists (released ones included).
pub(super) async fn refresh_feed(
    State(state): State<AppState>,
    admin: Admin,
) -> AppResult<Json<crate::quarantine::pipeline::FeedRefresh>> {
    let refresh = state.pipeline.refresh_feed_now().await?;
    tracing::info!(admin = %admin.0, feed.packages = refresh.listed_packages, held = refresh.held, "known-malware feed refreshed by an admin");
    Ok(Json(refresh))
}

/// `POST /-/airlock/api/queue/clear`: takes entries off the check queue; versions
/// still undecided are held.
pub(super) async fn clear_queue(
    State(state): State<AppState>,
    admin: Admin,
    Json(body): Json<ClearQueueBody>,
) -> AppResult<Json<Value>> {
    let comment = body.comment.map(|comment| comment.trim().to_owned()).filter(|comment| !comment.is_empty());
    let comment = comment.ok_or_else(|| AppError::BadRequest("a comment is required to clear queue entries".into()))?;
    if comment.len() > MAX_COMMENT {
        return Err(AppError::BadRequest(format!("the comment is longer than {MAX_COMMENT} bytes")));
    }
    let targets: Vec<(PackageName, String)> = match (body.package, body.version, body.all_stuck) {
        (Some(package), Some(version), false) => {
            let name = PackageName::parse(&package)?;
            if state.mirror.store().queue_entry(&name, &version).await?.is_none() {
                return Err(AppError::NotFound(format!("{name}@{} is not in the check queue", quote(&version))));
            }
            vec![(name, version)]
        }
        (None, None, true) => state
            .pipeline
            .queue()
            .await?
            .into_iter()
            .filter(|(_, _, entry, in_flight)| entry.attempts > 0 && !in_flight)
            .map(|(name, version, _, _)| (name, version))
            .collect(),
        _ => return Err(AppError::BadRequest("expected `package` and `version`, or `all_stuck: true`".into())),
    };
    let mut cleared = Vec::new();
    for (name, version) in targets {
        tracing::info!(admin = %admin.0, package.name = %name, package.version = %version, "admin clears a queue entry");
        state.pipeline.clear_queue_entry(&name, &version, &admin.0, &comment).await?;
        cleared.push(json!({ "package": name.as_str(), "version": version }));
    }
    Ok(Json(json!({ "cleared": cleared })))
}

/// Filters of `GET /-/airlock/api/audit`.
#[derive(Deserialize)]
pub(super) struct AuditFilter {
    since: Option<String>,
    actor: Option<String>,
    package: Option<String>,
    #[serde(default = "default_limit")]
    limit: usize,
}

/// `GET /-/airlock/api/audit`: decisions and actions, oldest first.
pub(super) async fn list_audit(
    State(state): State<AppState>,
    _admin: Admin,
    ApiQuery(filter): ApiQuery<AuditFilter>,
) -> AppResult<Json<Value>> {
    let since = match filter.since.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| AppError::BadRequest(format!("since must be an RFC 3339 time, not {}", quote(text))))?
                .with_timezone(&chrono::Utc),
        ),
    };
    let events: Vec<Value> = state
        .mirror
        .store()
        .audit_events()
        .await?
        .into_iter()
        .filter(|event| since.is_none_or(|since| event.time >= since))
        .filter(|event| {
            filter.actor.as_deref().is_none_or(|actor| event.actor == actor || event.actor == format!("admin:{actor}"))
        })
        .filter(|event| filter.package.as_deref().is_none_or(|package| event.package == package))
        .take(filter.limit.min(50_000))
        .map(|event| serde_json::to_value(event).unwrap_or(Value::Null))
        .collect();
    Ok(Json(json!({ "events": events })))
}

/// `GET /-/airlock/api/policy`: the effective policy.
pub(super) async fn get_policy(State(state): State<AppState>, _admin: Admin) -> Json<Value> {
    let config = state.mirror.policy().config();
    let rules = |rules: &[airlock_config::PackageRule]| -> Vec<Value> {
        rules
            .iter()
            .map(|rule| json!({"package": rule.package, "versions": rule.versions, "reason": rule.reason}))
            .collect()
    };
    Json(json!({
        "cooling_period": airlock_config::format_duration(config.cooling_period),
        "hold_severity": config.hold_severity.as_str(),
        "unverifiable_source_severity": config.unverifiable_source_severity.as_str(),
        "check_concurrency": config.check_concurrency,
        "rule_severity": config.rule_severity.iter().map(|(rule, level)| (rule.clone(), Value::String(level.as_str().into()))).collect::<serde_json::Map<_, _>>(),
        "allow": rules(&config.allow),
        "deny": rules(&config.deny),
        "require_provenance": rules(&config.require_provenance),
    }))
}

/// The body of `POST /-/airlock/api/waivers`.
#[derive(Deserialize)]
pub(super) struct WaiverBody {
    rule: String,
    package: String,
    /// An npm range; absent or `*` for every version.
    #[serde(default)]
    versions: Option<String>,
    reason: String,
    /// `90d` from now, or an RFC 3339 time; at most a year ahead.
    expires: String,
    /// Re-check the package's held versions whose holding findings are all waived now.
    #[serde(default)]
    recheck_held: bool,
}

/// Most held versions one waiver re-checks inline; the rest an admin re-checks by hand.
pub(crate) const MAX_WAIVER_RECHECKS: usize = 50;

fn waiver_json(state: &AppState, waiver: &crate::store::StoredWaiver) -> Value {
    let now = state.mirror.now();
    let status = match &waiver.revoked {
        Some(_) => "revoked",
        None if waiver.expires_at <= now => "expired",
        None => "active",
    };
    let mut value = serde_json::to_value(waiver).unwrap_or(Value::Null);
    value["status"] = Value::String(status.into());
    value
}

/// Creates a waiver and, when asked, re-checks the package's held versions it would
/// release. Shared by the API and the UI. Returns the waiver and the versions
/// re-checked with the state each ended in.
pub(crate) async fn create_waiver(
    state: &AppState,
    admin: &str,
    request: &crate::quarantine::waivers::WaiverRequest<'_>,
    recheck_held: bool,
) -> AppResult<(crate::store::StoredWaiver, Vec<(String, String)>)> {
    use crate::quarantine::waivers;
    let (store, policy) = (state.mirror.store(), state.mirror.policy());
    let waiver = waivers::create(store, policy, request, admin, state.mirror.now()).await?;
    tracing::info!(admin = %admin, waiver.id = waiver.id, rule = %waiver.rule, package.name = %waiver.package, "waiver created");
    let mut rechecked = Vec::new();
    if recheck_held {
        let name = PackageName::parse(&waiver.package)?;
        let comment = Some(format!("waiver {} accepts {}: {}", waiver.id, waiver.rule, waiver.reason));
        let versions = waivers::held_versions_waived(store, policy, &name, state.mirror.now()).await?;
        for version in versions.into_iter().take(MAX_WAIVER_RECHECKS) {
            state.pipeline.recheck(&name, &version, admin, comment.clone()).await?;
            let after = store.version(&name, &version).await?.map(|record| record.state.as_str().to_owned());
            rechecked.push((version, after.unwrap_or_default()));
        }
    }
    Ok((waiver, rechecked))
}

/// `GET /-/airlock/api/waivers`: every waiver, oldest first, with its status.
pub(super) async fn list_waivers(State(state): State<AppState>, _admin: Admin) -> AppResult<Json<Value>> {
    let waivers: Vec<Value> =
        state.mirror.store().waivers().await?.iter().map(|waiver| waiver_json(&state, waiver)).collect();
    Ok(Json(json!({ "waivers": waivers })))
}

/// `POST /-/airlock/api/waivers` with `{"rule", "package", "versions"?, "reason",
/// "expires", "recheck_held"?}`.
pub(super) async fn post_waiver(
    State(state): State<AppState>,
    admin: Admin,
    ApiBody(body): ApiBody<WaiverBody>,
) -> AppResult<Response> {
    let body =
        body.ok_or_else(|| AppError::BadRequest("expected a JSON body with rule, package, reason and expires".into()))?;
    let request = crate::quarantine::waivers::WaiverRequest {
        rule: &body.rule,
        package: &body.package,
        versions: body.versions.as_deref(),
        reason: &body.reason,
        expires: &body.expires,
    };
    let (waiver, rechecked) = create_waiver(&state, &admin.0, &request, body.recheck_held).await?;
    let rechecked: Vec<Value> =
        rechecked.into_iter().map(|(version, after)| json!({ "version": version, "state": after })).collect();
    let mut detail = waiver_json(&state, &waiver);
    detail["rechecked"] = Value::Array(rechecked);
    Ok((StatusCode::CREATED, Json(detail)).into_response())
}

/// `POST /-/airlock/api/waivers/{id}/revoke`.
pub(super) async fn revoke_waiver(
    State(state): State<AppState>,
    admin: Admin,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> AppResult<Json<Value>> {
    let id: u64 = id.parse().map_err(|_| AppError::BadRequest(format!("{} is not a waiver id", quote(&id))))?;
    let waiver = crate::quarantine::waivers::revoke(
        state.mirror.store(),
        state.mirror.policy(),
        id,
        &admin.0,
        state.mirror.now(),
    )
    .await?;
    tracing::info!(admin = %admin.0, waiver.id = id, "waiver revoked");
    Ok(Json(waiver_json(&state, &waiver)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Vec<airlock_config::AdminToken> {
        let config = airlock_config::Config::from_raw(
            Default::default(),
            airlock_config::Overrides {
                admin_token: Some("right-token-of-24-characters".into()),
                ..Default::default()
            },
        )
        .unwrap();
        config.admin.tokens
    }

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn tokens_are_checked() {
        let tokens = tokens();
        assert_eq!(
            authenticate(&with_authorization("Bearer right-token-of-24-characters"), &tokens).ok().map(|admin| admin.0),
            Some("admin".into())
        );
        let wrong = authenticate(&with_authorization("Bearer wrong-token"), &tokens).err().unwrap();
        assert_eq!(wrong.0, StatusCode::FORBIDDEN);
        let missing = authenticate(&HeaderMap::new(), &tokens).err().unwrap();
        assert_eq!(missing.0, StatusCode::UNAUTHORIZED);
        let basic = authenticate(&with_authorization("Basic cmlnaHQtdG9rZW4="), &tokens).err().unwrap();
        assert_eq!(basic.0, StatusCode::UNAUTHORIZED);
        let disabled = authenticate(&with_authorization("Bearer right-token-of-24-characters"), &[]).err().unwrap();
        assert!(disabled.1.starts_with("the admin API is disabled"));
    }
}
