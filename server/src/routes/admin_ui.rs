//! The admin web UI under `/-/airlock/admin/`: sign-in, the review queue, version and
//! package pages, the audit log, the policy and the keys. Handlers turn domain values
//! into `airlock_admin_ui::views` and call the same `Pipeline` methods as the JSON API;
//! every action is audited as `admin:<name>` by those methods.
//!
//! Security: sessions are HttpOnly, SameSite=Strict cookies (Secure behind https);
//! every POST carries a CSRF token compared in constant time; sign-in is rate-limited
//! per user and per address; every response carries a strict CSP and anti-framing
//! headers. Every action works without JavaScript: plain forms and 303 redirects.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use airlock_admin_ui::{paths, views};
use airlock_scanner::{Finding, Severity};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use crate::admin_users;
use crate::error::{AppError, AppResult};
use crate::npm::{Integrity, PackageName, VersionSpec};
use crate::quarantine::checks::CheckRecord;
use crate::quarantine::review::{FileDiff, ReviewMaterial};
use crate::sessions::{Session, Sessions, random_token, secrets_equal};
use crate::store::{AuditEvent, StoredPolicyRule, VersionRecord, VersionState};
use crate::throttle::Admission;

/// The session cookie.
const SESSION_COOKIE: &str = "airlock_admin_session";
/// The sign-in form's double-submit CSRF cookie (there is no session yet).
const SIGN_IN_COOKIE: &str = "airlock_admin_sign_in";
/// Longest comment accepted, as in the JSON API.
const MAX_COMMENT: usize = 4096;
/// Recent decisions shown on the queue.
const RECENT_DECISIONS: usize = 50;
/// Checking versions shown on the unfiltered queue.
const CHECKING_SHOWN: usize = 10;
/// Rows shown per queue section and on the audit page.
const MAX_ROWS: usize = 500;

/// Source-match files diffed on the version page, and diff lines shown in all.
const MAX_DIFF_FILES: usize = 40;
const MAX_DIFF_LINES: usize = 4000;

/// What the UI keeps between requests. One per `app()`; dropped with the router.
struct Ui {
    sessions: Sessions,
    // Bounds concurrent argon2 verifications (each takes ~19 MiB and tens of
    // milliseconds), so a flood of sign-ins cannot exhaust memory or the blocking pool.
    // A permit is held by `post_sign_in` for the verification only.
    verifications: tokio::sync::Semaphore,
}

impl Default for Ui {
    fn default() -> Ui {
        Ui { sessions: Sessions::default(), verifications: tokio::sync::Semaphore::new(4) }
    }
}

/// The UI's routes. The admin-added policy rules were loaded by `open_state`
/// ([`reload_policy_rules`]), so they apply from the start.
pub(super) fn router(_state: &AppState) -> Router<AppState> {
    let ui = Arc::new(Ui::default());
    Router::new()
        .route(paths::BASE, get(|| async { redirect(paths::QUEUE) }))
        .route(paths::QUEUE, get(get_queue))
        .route(paths::SIGN_IN, get(get_sign_in).post(post_sign_in))
        .route(paths::SIGN_OUT, post(post_sign_out))
        .route(paths::VERSION, get(get_version))
        .route(paths::ACTION, post(post_action))
        .route(paths::PACKAGE, get(get_package))
        .route(paths::AUDIT, get(get_audit))
        .route(paths::AUDIT_JSONL, get(get_audit_jsonl))
        .route(paths::AUDIT_CSV, get(get_audit_csv))
        .route(paths::POLICY, get(get_policy))
        .route(paths::POLICY_ADD, post(post_policy_add))
        .route(paths::POLICY_REMOVE, post(post_policy_remove))
        .route(paths::WAIVER_ADD, post(post_waiver_add))
        .route(paths::WAIVER_REVOKE, post(post_waiver_revoke))
        .route(paths::KEYS, get(get_keys))
        .route(paths::STYLESHEET, get(|| async { asset("text/css; charset=utf-8", airlock_admin_ui::STYLESHEET) }))
        .route(paths::SCRIPT, get(|| async { asset("text/javascript; charset=utf-8", airlock_admin_ui::SCRIPT) }))
        // Anything else under the UI is a page that does not exist, with the same headers.
        .route(
            "/-/airlock/admin/{*rest}",
            get(|| async { error_page(None, StatusCode::NOT_FOUND, "Not found", "There is no such admin page.") }),
        )
        .layer(axum::Extension(ui))
        .layer(axum::middleware::from_fn(security_headers))
}

/// Headers on every UI response: no inline script, no framing, no sniffing, no
/// referrer leaving the site, and no caching of pages that show package data.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(airlock_admin_ui::CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// 303: after a POST the browser GETs the target.
fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A cookie scoped to the UI. `Secure` when Airlock's public URL is https.
fn set_cookie(state: &AppState, name: &str, value: &str, max_age_seconds: i64) -> (header::HeaderName, HeaderValue) {
    let secure = if state.mirror.public_base().starts_with("https://") { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path={}; HttpOnly; SameSite=Strict; Max-Age={max_age_seconds}{secure}", paths::BASE);
    // Names and values are ours (base64url tokens), so the header is always valid.
    (header::SET_COOKIE, HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("")))
}

/// `application/x-www-form-urlencoded` into a map (the last value of a key wins).
fn parse_form(body: &[u8]) -> HashMap<String, String> {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut output = Vec::with_capacity(bytes.len());
        let mut index = 0;
        while index < bytes.len() {
            let escaped = (bytes[index] == b'%')
                .then(|| bytes.get(index + 1..index + 3))
                .flatten()
                .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match (bytes[index], escaped) {
                (_, Some(byte)) => {
                    output.push(byte);
                    index += 3;
                }
                (b'+', None) => {
                    output.push(b' ');
                    index += 1;
                }
                (byte, None) => {
                    output.push(byte);
                    index += 1;
                }
            }
        }
        String::from_utf8_lossy(&output).into_owned()
    }
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// A request from a signed-in admin. Without a live session, GETs are sent to the
/// sign-in page and POSTs refused.
struct SignedIn {
    session: Session,
    session_id: String,
    ui: Arc<Ui>,
}

impl SignedIn {
    fn chrome(&self, active: &str) -> views::Chrome {
        views::Chrome {
            user: self.session.user.clone(),
            csrf: self.session.csrf.clone(),
            active: active.to_owned(),
            notice: None,
            error: None,
        }
    }

    /// The actor recorded in the audit log.
    fn actor(&self) -> String {
        format!("admin:{}", self.session.user)
    }

    /// Checks a form's CSRF token against the session's, in constant time; returns the
    /// refusal when it does not match.
    fn csrf_refusal(&self, form: &HashMap<String, String>) -> Option<Response> {
        let presented = form.get("csrf").map(String::as_str).unwrap_or("");
        if secrets_equal(presented, &self.session.csrf) {
            None
        } else {
            tracing::warn!(admin = %self.session.user, "admin UI form without a valid CSRF token");
            Some(error_page(
                Some(self),
                StatusCode::FORBIDDEN,
                "Refused",
                "The form's security token is missing or stale. Reload the page and try again.",
            ))
        }
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<SignedIn, Response> {
        let ui = parts
            .extensions
            .get::<Arc<Ui>>()
            .cloned()
            .ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        let session = cookie_value(&parts.headers, SESSION_COOKIE)
            .and_then(|id| ui.sessions.get(&id, state.mirror.now()).map(|session| (id, session)));
        match session {
            Some((session_id, session)) => Ok(SignedIn { session, session_id, ui }),
            None if parts.method == axum::http::Method::GET => Err(redirect(paths::SIGN_IN)),
            None => Err(error_page(None, StatusCode::FORBIDDEN, "Signed out", "Your session ended. Sign in again.")),
        }
    }
}

fn error_page(signed_in: Option<&SignedIn>, status: StatusCode, title: &str, message: &str) -> Response {
    let chrome = signed_in.map(|signed_in| signed_in.chrome("")).unwrap_or_default();
    html(
        status,
        airlock_admin_ui::render_error(&views::ErrorPage { chrome, title: title.into(), message: message.into() }),
    )
}

fn app_error_page(signed_in: &SignedIn, error: AppError) -> Response {
    let status = error.status();
    let message = match &error {
        AppError::Internal(inner) => {
            tracing::error!(error = %format!("{inner:#}"), "admin UI request failed");
            "Something went wrong on Airlock's side; the details are in its log.".to_owned()
        }
        other => other.to_string(),
    };
    let title = if status == StatusCode::NOT_FOUND { "Not found" } else { "Refused" };
    error_page(Some(signed_in), status, title, &message)
}

// Sign-in and sign-out.

async fn get_sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Extension(ui): axum::Extension<Arc<Ui>>,
) -> Response {
    let signed_in =
        cookie_value(&headers, SESSION_COOKIE).is_some_and(|id| ui.sessions.get(&id, state.mirror.now()).is_some());
    if signed_in {
        return redirect(paths::QUEUE);
    }
    sign_in_form(&state, StatusCode::OK, None, "")
}

fn sign_in_form(state: &AppState, status: StatusCode, error: Option<&str>, name: &str) -> Response {
    let csrf = random_token();
    let page = views::SignInPage { csrf: csrf.clone(), error: error.map(str::to_owned), name: name.to_owned() };
    let mut response = html(status, airlock_admin_ui::render_sign_in(&page));
    let (key, value) = set_cookie(state, SIGN_IN_COOKIE, &csrf, 3600);
    response.headers_mut().append(key, value);
    response
}

async fn post_sign_in(
    State(state): State<AppState>,
    axum::Extension(ui): axum::Extension<Arc<Ui>>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let name = form.get("name").map(|name| name.trim().to_owned()).unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let expected = cookie_value(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if !secrets_equal(form.get("csrf").map(String::as_str).unwrap_or(""), &expected) {
        return sign_in_form(&state, StatusCode::FORBIDDEN, Some("The sign-in form expired. Try again."), &name);
    }
    let address = super::client_ip(&extensions, &headers, &state.mirror.config().server.trusted_proxies);
    let now = state.mirror.now();
    let throttle = &state.credential_throttle;
    match throttle.admit(address, Some(&name), now) {
        Admission::RetryAt(retry_at) => {
            let seconds = (retry_at - now).num_seconds().max(1);
            return sign_in_form(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                Some(&format!(
                    "Too many failed sign-ins from your address. Try again in {seconds} second{}.",
                    if seconds == 1 { "" } else { "s" }
                )),
                &name,
            );
        }
        // An account under attack answers more slowly, but its admin still gets in.
        Admission::CheckAfter(delay) if !delay.is_zero() => tokio::time::sleep(delay).await,
        Admission::CheckAfter(_) => {}
    }
    let configured = state.mirror.config().admin.users.clone();
    let data_dir = state.mirror.config().server.data_dir.clone();
    let (check_name, check_password) = (name.clone(), password);
    let valid = admin_users::validate_name(&name).is_ok() && {
        // The semaphore is never closed, so acquiring only waits.
        let _permit = ui.verifications.acquire().await;
        tokio::task::spawn_blocking(move || admin_users::verify(&configured, &data_dir, &check_name, &check_password))
            .await
            .unwrap_or(false)
    };
    if !valid {
        if throttle.record_failure(address, Some(&name), now) {
            tracing::warn!(admin = %name, client.address = %address, "failed admin sign-ins: this address now backs off");
        } else {
            tracing::info!(admin = %name, client.address = %address, "admin sign-in failed");
        }
        return sign_in_form(&state, StatusCode::UNAUTHORIZED, Some("Wrong name or password."), &name);
    }
    throttle.record_success(address, Some(&name));
    // A fresh id at every sign-in: a session id planted before cannot be reused.
    if let Some(old) = cookie_value(&headers, SESSION_COOKIE) {
        ui.sessions.remove(&old);
    }
    let session_id = ui.sessions.create(&name, now);
    tracing::info!(admin = %name, "admin signed in");
    let mut response = redirect(paths::QUEUE);
    let session_seconds = crate::sessions::SESSION_MAX.num_seconds();
    for (key, value) in
        [set_cookie(&state, SESSION_COOKIE, &session_id, session_seconds), set_cookie(&state, SIGN_IN_COOKIE, "", 0)]
    {
        response.headers_mut().append(key, value);
    }
    response
}

async fn post_sign_out(State(state): State<AppState>, signed_in: SignedIn, body: Bytes) -> Response {
    let form = parse_form(&body);
    if let Some(refusal) = signed_in.csrf_refusal(&form) {
        return refusal;
    }
    signed_in.ui.sessions.remove(&signed_in.session_id);
    let mut response = redirect(paths::SIGN_IN);
    let (key, value) = set_cookie(&state, SESSION_COOKIE, "", 0);
    response.headers_mut().append(key, value);
    response
}

// The queue.

#[derive(Deserialize, Default)]
struct QueueQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    package: String,
}

/// One version with what the queue needs of its checks.
struct Listed {
    name: String,
    version: String,
    record: VersionRecord,
    top: Option<Severity>,
    counts: Vec<(Severity, usize)>,
    rules: Vec<String>,
}

fn summarize(checks: Option<&CheckRecord>) -> (Option<Severity>, Vec<(Severity, usize)>, Vec<String>) {
    let Some(checks) = checks else { return (None, Vec::new(), Vec::new()) };
    let findings = &checks.report.findings;
    let counts = Severity::ALL
        .iter()
        .rev()
        .map(|severity| (*severity, findings.iter().filter(|finding| finding.severity == *severity).count()))
        .filter(|(_, count)| *count > 0)
        .collect();
    let mut seen = HashSet::new();
    let rules = findings
        .iter()
        .filter(|finding| seen.insert(finding.rule.clone()))
        .map(|finding| finding.rule.clone())
        .collect();
    (checks.report.max_severity(), counts, rules)
}

/// Every version with a summary of its checks, for the queue page.
async fn listed_versions(store: &crate::store::Store) -> AppResult<Vec<Listed>> {
    let mut listed = Vec::new();
    for (name, version, record) in store.all_versions().await? {
        let checks: Option<CheckRecord> = match PackageName::parse(&name) {
            Ok(package) => store.checks(&package, &version).await?,
            Err(_) => None,
        };
        let (top, counts, rules) = summarize(checks.as_ref());
        listed.push(Listed { name, version, record, top, counts, rules });
    }
    Ok(listed)
}

async fn get_queue(State(state): State<AppState>, signed_in: SignedIn, Query(query): Query<QueueQuery>) -> Response {
    let store = state.mirror.store().clone();
    let policy = state.mirror.policy().clone();
    let now = state.mirror.now();
    let listed = match listed_versions(&store).await {
        Ok(listed) => listed,
        Err(error) => return error.into_response(),
    };

    let mut state_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for item in &listed {
        *state_counts.entry(item.record.state.as_str()).or_default() += 1;
    }
    let counts = ["held", "checking", "cooling", "released", "rejected"]
        .iter()
        .map(|name| views::StateCount {
            state: (*name).into(),
            count: state_counts.get(name).copied().unwrap_or(0),
            href: paths::queue_state(name),
            selected: query.state == *name,
        })
        .collect();
    let mut known_rules: Vec<String> =
        listed.iter().flat_map(|item| item.rules.iter().cloned()).collect::<HashSet<_>>().into_iter().collect();
    known_rules.sort();

    let minimum = Severity::parse(&query.severity);
    let package_filter = query.package.trim().to_ascii_lowercase();
    let scope = query.scope.trim().trim_end_matches('/').to_ascii_lowercase();
    let wanted = |item: &&Listed| {
        (query.state.is_empty() || item.record.state.as_str() == query.state)
            && minimum.is_none_or(|minimum| item.top.is_some_and(|top| top >= minimum))
            && (query.rule.is_empty() || item.rules.contains(&query.rule))
            && (scope.is_empty()
                || item.name.starts_with(&format!(
                    "{}/",
                    if scope.starts_with('@') { scope.clone() } else { format!("@{scope}") }
                )))
            && (package_filter.is_empty() || item.name.to_ascii_lowercase().contains(&package_filter))
    };
    let filtered: Vec<&Listed> = listed.iter().filter(wanted).collect();
    let row = |item: &Listed, when: String| views::QueueRow {
        package: item.name.clone(),
        version: item.version.clone(),
        state: item.record.state.as_str().into(),
        top_severity: item.top.map(|severity| severity.as_str().to_owned()).unwrap_or_default(),
        severity_counts: item.counts.iter().map(|(severity, count)| (severity.as_str().to_owned(), *count)).collect(),
        rules: item.rules.clone(),
        reason: item.record.reason.clone().unwrap_or_default(),
        when,
        href: paths::version(&item.name, &item.version),
        package_href: paths::package(&item.name),
    };
    let since = |time: Option<DateTime<Utc>>| {
        time.map(|time| format!("{} ago", human_duration(now - time))).unwrap_or_default()
    };

    let mut held: Vec<&Listed> =
        filtered.iter().copied().filter(|item| item.record.state == VersionState::Held).collect();
    held.sort_by(|left, right| {
        right.top.cmp(&left.top).then_with(|| right.record.state_changed_at.cmp(&left.record.state_changed_at))
    });
    let mut cooling: Vec<(&Listed, DateTime<Utc>)> = filtered
        .iter()
        .copied()
        .filter(|item| item.record.state == VersionState::Cooling)
        .map(|item| {
            let until = PackageName::parse(&item.name)
                .map(|package| policy.cooling_until(&package, &item.version, item.record.effective_published))
                .unwrap_or(now);
            (item, until)
        })
        .collect();
    cooling.sort_by_key(|(_, until)| *until);
    let mut checking: Vec<&Listed> =
        filtered.iter().copied().filter(|item| item.record.state == VersionState::Checking).collect();
    checking.sort_by(|left, right| {
        left.name.cmp(&right.name).then_with(|| {
            match (semver::Version::parse(&left.version), semver::Version::parse(&right.version)) {
                (Ok(left), Ok(right)) => right.cmp(&left),
                _ => right.version.cmp(&left.version),
            }
        })
    });
    let mut decided: Vec<&Listed> = filtered
        .iter()
        .copied()
        .filter(|item| matches!(item.record.state, VersionState::Released | VersionState::Rejected))
        .collect();
    decided.sort_by_key(|item| std::cmp::Reverse(item.record.state_changed_at));
    let decided_limit = if query.state.is_empty() { RECENT_DECISIONS } else { MAX_ROWS };

    let mut sections = vec![views::QueueSection {
        title: "Held — a person must decide".into(),
        rows: held
            .iter()
            .take(MAX_ROWS)
            .map(|item| row(item, format!("held {}", since(item.record.state_changed_at))))
            .collect(),
        more: held.len().saturating_sub(MAX_ROWS),
    }];
    sections.push(views::QueueSection {
        title: "Cooling".into(),
        rows: cooling
            .iter()
            .take(MAX_ROWS)
            .map(|(item, until)| {
                row(
                    item,
                    if *until > now { format!("{} left", human_duration(*until - now)) } else { "due now".into() },
                )
            })
            .collect(),
        more: cooling.len().saturating_sub(MAX_ROWS),
    });
    sections.push(views::QueueSection {
        title: "Recent decisions".into(),
        rows: decided
            .iter()
            .take(decided_limit)
            .map(|item| {
                let by = item.record.decided_by.clone().unwrap_or_default();
                row(item, format!("{} by {by}", since(item.record.state_changed_at)))
            })
            .collect(),
        more: decided.len().saturating_sub(decided_limit),
    });
    // Established versions wait here for their first download; they matter less than
    // decisions, so they come last and, unfiltered, only the first few.
    let checking_limit = if query.state.is_empty() { CHECKING_SHOWN } else { MAX_ROWS };
    sections.push(views::QueueSection {
        title: "Checking".into(),
        rows: checking
            .iter()
            .take(checking_limit)
            .map(|item| row(item, format!("seen {}", since(Some(item.record.first_seen)))))
            .collect(),
        more: checking.len().saturating_sub(checking_limit),
    });
    if !query.state.is_empty() {
        sections.retain(|section| !section.rows.is_empty());
        if sections.is_empty() {
            sections.push(views::QueueSection {
                title: format!("No {} versions match", query.state),
                rows: Vec::new(),
                more: 0,
            });
        }
    }
    let page = views::QueuePage {
        chrome: signed_in.chrome("queue"),
        counts,
        filters: views::QueueFilters {
            state: query.state.clone(),
            severity: query.severity.clone(),
            rule: query.rule.clone(),
            scope: query.scope.clone(),
            package: query.package.clone(),
        },
        known_rules,
        sections,
    };
    html(StatusCode::OK, airlock_admin_ui::render_queue(&page))
}

/// `3d 4h`, `4h 12m`, `12m`, `30s`.
fn human_duration(duration: chrono::Duration) -> String {
    let seconds = duration.num_seconds().max(0);
    let (days, hours, minutes) = (seconds / 86_400, seconds % 86_400 / 3600, seconds % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, minutes) => format!("{minutes}m"),
        (0, hours, minutes) => format!("{hours}h {minutes}m"),
        (days, hours, _) => format!("{days}d {hours}h"),
    }
}

// The version page.

#[derive(Deserialize, Default)]
struct VersionQuery {
    #[serde(default)]
    package: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    done: String,
}

fn parse_target(package: &str, version: &str) -> Result<(PackageName, String), AppError> {
    let name = PackageName::parse(package.trim())?;
    let version = VersionSpec::parse(version.trim())?.as_str().to_owned();
    Ok((name, version))
}

async fn get_version(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<VersionQuery>,
) -> Response {
    match version_page(&state, &signed_in, &query.package, &query.version).await {
        Ok(mut page) => {
            // The notice names the version the page shows (validated, from the store),
            // never text from the query.
            let spec = format!("{}@{}", page.package, page.version);
            page.chrome.notice = match query.done.as_str() {
                "approve" => Some(format!("Approved {spec}: it is installable now.")),
                "reject" => Some(format!("Rejected {spec}: it will never be installable.")),
                "recheck" => Some(format!("Checked {spec} again.")),
                _ => None,
            };
            html(StatusCode::OK, airlock_admin_ui::render_version(&page))
        }
        Err(error) => app_error_page(&signed_in, error),
    }
}

async fn version_page(
    state: &AppState,
    signed_in: &SignedIn,
    package: &str,
    version: &str,
) -> Result<views::VersionPage, AppError> {
    let (name, version) = parse_target(package, version)?;
    let store = state.mirror.store();
    let record = store
        .version(&name, &version)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("Airlock has no record of {name}@{version}")))?;
    let checks: Option<CheckRecord> = store.checks(&name, &version).await?;
    let history = store.history(&name, &version).await?;
    let now = state.mirror.now();

    let findings: Vec<Finding> = checks.as_ref().map(|checks| checks.report.findings.clone()).unwrap_or_default();
    // The code around findings and the file diffs were kept by the check. Only a check
    // stored before that has none, and its page reads the tarballs again, bounded.
    let review = match checks.as_ref().and_then(|checks| checks.review.clone()) {
        Some(review) => review,
        None => reread_review(state, &name, &version, &record, checks.as_ref()).await?,
    };
    // The code around a place is shown once, with the first (most severe) finding
    // there; later findings at the same place refer to it by their location.
    let mut shown = HashSet::new();
    let finding_views: Vec<(Severity, views::FindingView)> = findings
        .iter()
        .map(|finding| {
            let mut view = finding_view(finding, &review);
            if !view.location.is_empty() && !shown.insert(view.location.clone()) {
                view.excerpt.clear();
            }
            (finding.severity, view)
        })
        .collect();
    let file_diffs: Vec<views::FileDiff> = review
        .file_diffs
        .iter()
        .map(|diff| views::FileDiff { path: diff.path.clone(), lines: stored_diff_lines(diff) })
        .collect();
    let diff_note = review.diff_note.clone();

    let mut finding_groups: Vec<views::FindingGroup> = Vec::new();
    for severity in Severity::ALL.iter().rev() {
        let group: Vec<views::FindingView> =
            finding_views.iter().filter(|(level, _)| level == severity).map(|(_, view)| view.clone()).collect();
        if !group.is_empty() {
            finding_groups.push(views::FindingGroup { severity: severity.as_str().into(), findings: group });
        }
    }
    let has_critical = findings_of(checks.as_ref()).any(|finding| finding.severity == Severity::Critical);
    let diff = checks.as_ref().and_then(|checks| checks.report.diff.as_ref()).map(|summary| views::DiffView {
        previous_version: summary.previous_version.clone(),
        callouts: diff_callouts(summary, findings_of(checks.as_ref())),
        files: file_diffs,
        note: diff_note,
    });
    let when = match record.state {
        VersionState::Cooling => {
            let until = state.mirror.policy().cooling_until(&name, &version, record.effective_published);
            format!("cooling until {} ({} left)", time_text(until), human_duration(until - now))
        }
        _ => record.state_changed_at.map(|time| format!("{} ago", human_duration(now - time))).unwrap_or_default(),
    };
    Ok(views::VersionPage {
        chrome: signed_in.chrome("queue"),
        package: name.as_str().into(),
        version: version.clone(),
        package_href: paths::package(name.as_str()),
        state: record.state.as_str().into(),
        reason: record.reason.clone().unwrap_or_default(),
        decided_by: record.decided_by.clone().unwrap_or_default(),
        when,
        finding_count: finding_views.len(),
        finding_groups,
        has_critical,
        diff,
        source_match: source_match_view(checks.as_ref().and_then(|checks| checks.source_match.as_ref())),
        provenance: provenance_facts(checks.as_ref().and_then(|checks| checks.provenance.as_ref())),
        metadata: metadata_facts(&record, checks.as_ref()),
        incomplete: checks.as_ref().map(|checks| checks.incomplete.clone()).unwrap_or_default(),
        history: history.iter().map(history_row).collect(),
        action_href: paths::ACTION.into(),
    })
}

fn findings_of(checks: Option<&CheckRecord>) -> impl Iterator<Item = &Finding> {
    checks.into_iter().flat_map(|checks| checks.report.findings.iter())
}

/// Bounds concurrent tarball re-reads for pages of checks stored without their review
/// material: each decompresses up to `REREAD_OPTIONS`' limit, so two at a time cap the
/// memory page views can take. A permit is held for one page's re-read and released
/// when it ends.
static TARBALL_REREADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// What a re-read may decompress per tarball; a bigger package shows no excerpts or
/// diffs on its page (its findings still show).
fn reread_options() -> airlock_scanner::ScanOptions {
    airlock_scanner::ScanOptions { max_uncompressed_bytes: 64 << 20, ..airlock_scanner::ScanOptions::default() }
}

/// The review material of an older check, from the tarballs on disk.
async fn reread_review(
    state: &AppState,
    name: &PackageName,
    version: &str,
    record: &VersionRecord,
    checks: Option<&CheckRecord>,
) -> Result<ReviewMaterial, AppError> {
    let Some(checks) = checks else { return Ok(ReviewMaterial::default()) };
    let _permit = TARBALL_REREADS
        .acquire()
        .await
        .map_err(|_| AppError::Internal(anyhow::anyhow!("the re-read semaphore is never closed")))?;
    let store = state.mirror.store();
    let current = tarball_bytes(state, name, version, record).await.ok();
    let previous = match &checks.previous_version {
        Some(previous) => match store.version(name, previous).await? {
            Some(previous_record) => tarball_bytes(state, name, previous, &previous_record).await.ok(),
            None => None,
        },
        None => None,
    };
    let report = checks.report.clone();
    tokio::task::spawn_blocking(move || match current {
        Some(current) => ReviewMaterial::collect(&report, &current, previous.as_deref(), &reread_options()),
        None => ReviewMaterial {
            diff_note: "File diffs are unavailable: the tarball is missing.".into(),
            ..ReviewMaterial::default()
        },
    })
    .await
    .map_err(|error| AppError::Internal(anyhow::anyhow!("building the version page: {error}")))
}

async fn tarball_bytes(
    state: &AppState,
    name: &PackageName,
    version: &str,
    record: &VersionRecord,
) -> Result<Vec<u8>, String> {
    let integrity = Integrity::from_dist(Some(&record.integrity), None).map_err(|error| error.to_string())?;
    // The blob is on disk once the version was checked; the URL is only a fallback
    // (the mirror downloads from its own upstream and verifies the integrity).
    state.mirror.fetch_tarball_bytes(name, version, &integrity, "").await.map_err(|error| error.to_string())
}

/// A finding with up to two lines of context from the file, the finding's line marked.
fn finding_view(finding: &Finding, review: &ReviewMaterial) -> views::FindingView {
    let location = finding
        .location
        .as_ref()
        .map(|location| match location.line {
            Some(line) => format!("{}:{line}", location.file),
            None => location.file.clone(),
        })
        .unwrap_or_default();
    let context = finding.location.as_ref().and_then(|location| {
        let line = location.line?;
        let excerpt = review.excerpt(&location.file, line)?;
        Some(
            excerpt
                .lines
                .iter()
                .map(|(number, text)| views::ExcerptLine {
                    number: number.to_string(),
                    text: shorten(text, 240),
                    highlight: *number == line,
                })
                .collect::<Vec<_>>(),
        )
    });
    let excerpt = context.unwrap_or_else(|| {
        finding
            .excerpt
            .iter()
            .map(|excerpt| views::ExcerptLine {
                number: finding
                    .location
                    .as_ref()
                    .and_then(|location| location.line)
                    .map(|line| line.to_string())
                    .unwrap_or_default(),
                text: shorten(excerpt, 240),
                highlight: true,
            })
            .collect()
    });
    views::FindingView { rule: finding.rule.clone(), message: finding.message.clone(), location, excerpt }
}

fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(limit).collect::<String>())
    }
}

/// A unified diff's lines (of the source match), bounded by `lines_left`.
fn unified_diff_lines(unified: &str, lines_left: &mut usize) -> Vec<views::DiffLine> {
    let mut lines = Vec::new();
    for line in unified.lines() {
        if line.starts_with("--- ") || line.starts_with("+++ ") {
            continue;
        }
        if *lines_left == 0 {
            lines.push(views::DiffLine { kind: "hunk".into(), text: "… (diff truncated)".into() });
            break;
        }
        *lines_left -= 1;
        lines.push(views::DiffLine { kind: diff_line_kind(line).into(), text: shorten(line, 400) });
    }
    lines
}

fn diff_line_kind(line: &str) -> &'static str {
    match line.as_bytes().first() {
        Some(b'+') => "add",
        Some(b'-') => "del",
        Some(b'@') => "hunk",
        _ => "ctx",
    }
}

/// A stored diff's lines, classed for the stylesheet.
fn stored_diff_lines(diff: &FileDiff) -> Vec<views::DiffLine> {
    let mut lines: Vec<views::DiffLine> = diff
        .lines
        .iter()
        .map(|line| views::DiffLine { kind: diff_line_kind(line).into(), text: line.clone() })
        .collect();
    if diff.truncated {
        lines.push(views::DiffLine { kind: "hunk".into(), text: "… (diff truncated)".into() });
    }
    lines
}

/// What a reviewer must not miss in a diff: new hosts, recipients, scripts and
/// dependencies (from the diff findings), and the file lists.
fn diff_callouts<'a>(
    summary: &airlock_scanner::DiffSummary,
    findings: impl Iterator<Item = &'a Finding>,
) -> Vec<views::Callout> {
    let mut by_rule: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for finding in findings {
        let Some(kind) = finding.rule.strip_prefix("diff-new-") else { continue };
        // Messages quote the value between backticks; fall back to the message.
        let value = finding.message.split('`').nth(1).map(str::to_owned).unwrap_or_else(|| finding.message.clone());
        let values = by_rule.entry(kind.replace('-', " ")).or_default();
        if !values.contains(&value) {
            values.push(value);
        }
    }
    let mut callouts: Vec<views::Callout> =
        by_rule.into_iter().map(|(kind, values)| views::Callout { label: format!("New {kind}:"), values }).collect();
    let lists = [
        ("Dependencies added:", &summary.dependencies_added),
        ("Dependencies removed:", &summary.dependencies_removed),
        ("Dependencies changed:", &summary.dependencies_changed),
        ("Files added:", &summary.files_added),
        ("Files removed:", &summary.files_removed),
        ("Files changed:", &summary.files_changed),
    ];
    for (label, values) in lists {
        if !values.is_empty() {
            callouts.push(views::Callout { label: label.into(), values: values.iter().take(100).cloned().collect() });
        }
    }
    callouts
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        // Tagged results (`{"status": "no-provenance", ...}`) read best as their tag.
        Value::Object(object) if object.get("status").is_some_and(Value::is_string) => {
            let status = object["status"].as_str().unwrap_or_default().replace('-', " ");
            let details: Vec<String> = object
                .iter()
                .filter(|(key, value)| key.as_str() != "status" && value.is_string())
                .map(|(key, value)| format!("{key} {}", value.as_str().unwrap_or_default()))
                .collect();
            if details.is_empty() { status } else { format!("{status} ({})", details.join(", ")) }
        }
        other => shorten(&other.to_string(), 300),
    }
}

fn source_match_view(source_match: Option<&Value>) -> views::SourceMatchView {
    let Some(value) = source_match else {
        return views::SourceMatchView {
            status: "not run".into(),
            summary: "The source match did not run for this version.".into(),
            ..Default::default()
        };
    };
    let status = value["status"].as_str().unwrap_or("unknown").to_owned();
    if status != "compared" {
        let reason = match &value["reason"] {
            Value::Object(object) => object
                .get("detail")
                .or_else(|| object.get("kind"))
                .map(text_of)
                .unwrap_or_else(|| text_of(&value["reason"])),
            other => text_of(other),
        };
        return views::SourceMatchView { status, summary: format!("Not compared: {reason}"), ..Default::default() };
    }
    let repository = &value["source"]["repository"];
    let repository_text = match (repository["host"].as_str(), repository["path"].as_str()) {
        (Some(host), Some(path)) => format!("{host}/{path}"),
        _ => text_of(repository),
    };
    let result = &value["result"];
    let strings = |key: &str| -> Vec<String> {
        result[key].as_array().map(|values| values.iter().take(100).map(text_of).collect()).unwrap_or_default()
    };
    let mut lines_left = MAX_DIFF_LINES;
    let differing: Vec<views::FileDiff> = result["differing"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .take(MAX_DIFF_FILES)
                .map(|file| views::FileDiff {
                    path: text_of(&file["path"]),
                    lines: unified_diff_lines(file["diff"].as_str().unwrap_or(""), &mut lines_left),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut callouts = Vec::new();
    for (label, key) in [("Only in the tarball:", "only_in_tarball"), ("Build output:", "build_output")] {
        let values = strings(key);
        if !values.is_empty() {
            callouts.push(views::Callout { label: label.into(), values });
        }
    }
    let identical_count = result["identical"].as_array().map(Vec::len).unwrap_or(0);
    let summary = format!(
        "Compared with {repository_text} at {}{}: {} identical, {} differing.",
        text_of(&value["fetched_ref"]),
        result["package_directory"]
            .as_str()
            .filter(|directory| !directory.is_empty())
            .map(|directory| format!(" (directory {directory})"))
            .unwrap_or_default(),
        identical_count,
        differing.len()
    );
    views::SourceMatchView { status, summary, identical_count, differing, callouts }
}

fn fact(label: &str, value: impl Into<String>) -> views::Fact {
    views::Fact { label: label.into(), value: value.into() }
}

fn provenance_facts(provenance: Option<&Value>) -> Vec<views::Fact> {
    let Some(provenance) = provenance else {
        return vec![fact("Status", "The provenance checks did not run for this version.")];
    };
    let mut facts = Vec::new();
    let signatures = &provenance["registry_signatures"];
    let signature_text = if let Some(error) = signatures["error"].as_str() {
        format!("not checked: {error}")
    } else if signatures["missing"].as_bool() == Some(true) {
        "missing (the registry signs every version)".into()
    } else {
        match signatures["checks"].as_array() {
            Some(checks) if !checks.is_empty() => checks
                .iter()
                .map(|check| format!("{}: {}", text_of(&check["outcome"]), text_of(&check["keyid"])))
                .collect::<Vec<_>>()
                .join("; "),
            _ => "none (the upstream publishes no registry keys)".into(),
        }
    };
    facts.push(fact("Registry signature", signature_text));
    let attestations = &provenance["attestations"];
    for (label, key) in [("Provenance attestation", "provenance"), ("Publish attestation", "publish")] {
        let status = attestations[key]["status"].as_str().unwrap_or("not checked");
        facts.push(fact(label, status));
    }
    if let Value::Object(identity) = &provenance["identity"] {
        for (key, value) in identity {
            if !value.is_null() {
                facts.push(fact(&key.replace('_', " "), text_of(value)));
            }
        }
    } else {
        facts.push(fact("Attestation identity", "none"));
    }
    facts.push(fact("Continuity", continuity(provenance)));
    facts
}

fn continuity(provenance: &Value) -> String {
    let policy = &provenance["identity_policy"];
    if policy.is_null() {
        return "not checked".into();
    }
    let regressions: Vec<String> =
        policy["regressions"].as_array().map(|values| values.iter().map(text_of).collect()).unwrap_or_default();
    let violations: Vec<String> =
        policy["pin_violations"].as_array().map(|values| values.iter().map(text_of).collect()).unwrap_or_default();
    let repository = text_of(&policy["repository"]);
    let mut parts = Vec::new();
    if !repository.is_empty() {
        parts.push(format!("repository: {repository}"));
    }
    parts.push(if regressions.is_empty() {
        "no regression from the previous version".into()
    } else {
        format!("regressions: {}", regressions.join(", "))
    });
    if !violations.is_empty() {
        parts.push(format!("pin violations: {}", violations.join(", ")));
    }
    parts.join("; ")
}

fn metadata_facts(record: &VersionRecord, checks: Option<&CheckRecord>) -> Vec<views::Fact> {
    let mut facts = vec![
        fact("Published (claimed)", record.claimed_published.map(time_text).unwrap_or_else(|| "unknown".into())),
        fact("Cooling counts from", time_text(record.effective_published)),
        fact("First seen", time_text(record.first_seen)),
        fact("Integrity", record.integrity.clone()),
    ];
    if let Some(checks) = checks {
        facts.push(fact("Checked", format!("{} ({} ms)", time_text(checks.completed_at), checks.duration_ms)));
        if let airlock_scanner::Verdict::Unscannable { reason } = &checks.report.verdict {
            facts.push(fact("Unscannable", reason.clone()));
        }
        if let Some(summary) = &checks.report.summary {
            facts.push(fact("Files", format!("{} ({} bytes unpacked)", summary.files, summary.bytes)));
            facts.push(fact(
                "JavaScript",
                format!(
                    "{} files, {} bytes, {} parse errors",
                    summary.javascript_files, summary.javascript_bytes, summary.parse_errors
                ),
            ));
            let scripts = if summary.install_scripts.is_empty() {
                "none".into()
            } else {
                summary
                    .install_scripts
                    .iter()
                    .map(|(name, command)| format!("{name}: {command}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            facts.push(fact("Install scripts", scripts));
            if !summary.hosts.is_empty() {
                facts.push(fact("Hosts in code", summary.hosts.join(", ")));
            }
        }
        if let Some(diff) = &checks.report.diff {
            let list = |values: &[String]| if values.is_empty() { "none".to_owned() } else { values.join(", ") };
            facts.push(fact("Dependencies added", list(&diff.dependencies_added)));
            facts.push(fact("Dependencies removed", list(&diff.dependencies_removed)));
        }
    }
    facts
}

/// `2026-11-24 02:16:11 UTC`: to the second, in one zone, short enough for a column.
fn time_text(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn change_text(event: &AuditEvent) -> String {
    match (event.from, event.to) {
        (Some(from), Some(to)) => format!("{} → {}", from.as_str(), to.as_str()),
        _ => String::new(),
    }
}

fn history_row(event: &AuditEvent) -> views::HistoryRow {
    views::HistoryRow {
        time: time_text(event.time),
        actor: event.actor.clone(),
        action: event.action.clone(),
        change: change_text(event),
        comment: event.comment.clone().unwrap_or_default(),
    }
}

// Actions.

async fn post_action(State(state): State<AppState>, signed_in: SignedIn, body: Bytes) -> Response {
    let form = parse_form(&body);
    if let Some(refusal) = signed_in.csrf_refusal(&form) {
        return refusal;
    }
    let field = |key: &str| form.get(key).map(|value| value.trim().to_owned()).unwrap_or_default();
    let (package, version, action, comment) = (field("package"), field("version"), field("action"), field("comment"));
    let (name, version) = match parse_target(&package, &version) {
        Ok(target) => target,
        Err(error) => return app_error_page(&signed_in, error),
    };
    let refuse = |message: String| async {
        match version_page(&state, &signed_in, name.as_str(), &version).await {
            Ok(mut page) => {
                page.chrome.error = Some(message);
                html(StatusCode::BAD_REQUEST, airlock_admin_ui::render_version(&page))
            }
            Err(error) => app_error_page(&signed_in, error),
        }
    };
    if comment.is_empty() {
        return refuse(format!("A comment is required to {action} a version.")).await;
    }
    if comment.len() > MAX_COMMENT {
        return refuse(format!("The comment is longer than {MAX_COMMENT} bytes.")).await;
    }
    let admin = signed_in.session.user.clone();
    tracing::info!(admin = %admin, action = %action, package.name = %name, package.version = %version, "admin UI action");
    let result = match action.as_str() {
        "approve" => {
            // A check record that cannot be read must not skip the confirmation step.
            let checks: Option<CheckRecord> = match state.mirror.store().checks(&name, &version).await {
                Ok(checks) => checks,
                Err(error) => return AppError::from(error).into_response(),
            };
            let critical: Vec<&Finding> =
                findings_of(checks.as_ref()).filter(|finding| finding.severity == Severity::Critical).collect();
            // Approving over a critical finding takes a second, explicit step.
            if !critical.is_empty() && field("confirm") != "yes" {
                let page = views::ConfirmPage {
                    chrome: signed_in.chrome("queue"),
                    package: name.as_str().into(),
                    version: version.clone(),
                    comment,
                    findings: critical
                        .iter()
                        .map(|finding| finding_view(finding, &ReviewMaterial::default()))
                        .collect(),
                    action_href: paths::ACTION.into(),
                    back_href: paths::version(name.as_str(), &version),
                };
                return html(StatusCode::OK, airlock_admin_ui::render_confirm(&page));
            }
            state.pipeline.approve(&name, &version, &admin, &comment).await.map(|_| ())
        }
        "reject" => state.pipeline.reject(&name, &version, &admin, &comment).await.map(|_| ()),
        "recheck" => state.pipeline.recheck(&name, &version, &admin, Some(comment)).await,
        other => Err(AppError::BadRequest(format!(
            "unknown action {}; expected approve, reject or recheck",
            crate::npm::quote(other)
        ))),
    };
    match result {
        Ok(()) => redirect(&paths::with_query(
            paths::VERSION,
            &[("package", name.as_str()), ("version", &version), ("done", &action)],
        )),
        Err(error @ AppError::Internal(_)) => app_error_page(&signed_in, error),
        Err(error) => refuse(error.to_string()).await,
    }
}

// The package page.

#[derive(Deserialize, Default)]
struct PackageQuery {
    #[serde(default)]
    package: String,
}

async fn get_package(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(query): Query<PackageQuery>,
) -> Response {
    let result = async {
        let name = PackageName::parse(query.package.trim())?;
        let store = state.mirror.store();
        let mut versions = store.versions(&name).await?;
        if versions.is_empty() {
            return Err(AppError::NotFound(format!("Airlock has not seen {name}")));
        }
        // Oldest first to follow the identity from one version to the next.
        versions.sort_by(|left, right| match (semver::Version::parse(&left.0), semver::Version::parse(&right.0)) {
            (Ok(left), Ok(right)) => left.cmp(&right),
            _ => left.0.cmp(&right.0),
        });
        let mut rows = Vec::new();
        let mut previous_identity: Option<(String, String)> = None;
        for (version, record) in &versions {
            let checks: Option<CheckRecord> = store.checks(&name, version).await?;
            let identity =
                checks.as_ref().and_then(|checks| checks.provenance.as_ref()).map(|provenance| &provenance["identity"]);
            let identity_text = match identity {
                Some(Value::Object(identity)) => {
                    let field = |key: &str| identity.get(key).map(text_of).unwrap_or_default();
                    let workflow = field("workflow_path");
                    format!(
                        "{}{}",
                        field("source_repository_uri"),
                        if workflow.is_empty() { String::new() } else { format!(" · {workflow}") }
                    )
                }
                _ => "none".into(),
            };
            let continuity = match &previous_identity {
                None => "first version seen".into(),
                Some((previous_version, previous)) if *previous == identity_text => {
                    format!("same as {previous_version}")
                }
                Some((previous_version, previous)) if previous != "none" && identity_text == "none" => {
                    format!("provenance dropped since {previous_version}")
                }
                Some((previous_version, _)) => format!("changed since {previous_version}"),
            };
            let (top, _, _) = summarize(checks.as_ref());
            rows.push(views::PackageVersionRow {
                version: version.clone(),
                state: record.state.as_str().into(),
                top_severity: top.map(|severity| severity.as_str().to_owned()).unwrap_or_default(),
                reason: record.reason.clone().unwrap_or_default(),
                decided_by: record.decided_by.clone().unwrap_or_default(),
                first_seen: time_text(record.first_seen),
                identity: identity_text.clone(),
                continuity,
                href: paths::version(name.as_str(), version),
            });
            previous_identity = Some((version.clone(), identity_text));
        }
        rows.reverse();
        Ok::<_, AppError>(views::PackagePage {
            chrome: signed_in.chrome("queue"),
            package: name.as_str().into(),
            versions: rows,
        })
    }
    .await;
    match result {
        Ok(page) => html(StatusCode::OK, airlock_admin_ui::render_package(&page)),
        Err(error) => app_error_page(&signed_in, error),
    }
}

// The audit log.

#[derive(Deserialize, Default)]
struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    package: String,
}

impl AuditQuery {
    fn matches(&self, event: &AuditEvent) -> bool {
        (self.actor.is_empty() || event.actor == self.actor || event.actor == format!("admin:{}", self.actor))
            && (self.action.is_empty() || event.action == self.action)
            && (self.package.is_empty() || event.package.contains(self.package.trim()))
    }

    fn parameters(&self) -> [(&'static str, &str); 3] {
        [("actor", &self.actor), ("action", &self.action), ("package", &self.package)]
    }
}

/// Matching events, newest first.
async fn audit_events(state: &AppState, query: &AuditQuery) -> AppResult<Vec<AuditEvent>> {
    let mut events: Vec<AuditEvent> =
        state.mirror.store().audit_events().await?.into_iter().filter(|event| query.matches(event)).collect();
    events.reverse();
    Ok(events)
}

async fn get_audit(State(state): State<AppState>, signed_in: SignedIn, Query(query): Query<AuditQuery>) -> Response {
    let events = match audit_events(&state, &query).await {
        Ok(events) => events,
        Err(error) => return app_error_page(&signed_in, error),
    };
    let rows = events
        .iter()
        .take(MAX_ROWS)
        .map(|event| {
            let is_version = event.from.is_some()
                || PackageName::parse(&event.package).is_ok() && !event.action.starts_with("policy-");
            views::AuditRow {
                id: event.id.to_string(),
                time: time_text(event.time),
                actor: event.actor.clone(),
                action: event.action.clone(),
                package: event.package.clone(),
                version: event.version.clone(),
                change: change_text(event),
                comment: event.comment.clone().unwrap_or_default(),
                href: if is_version { paths::version(&event.package, &event.version) } else { String::new() },
            }
        })
        .collect();
    let page = views::AuditPage {
        chrome: signed_in.chrome("audit"),
        filters: views::AuditFilters {
            actor: query.actor.clone(),
            action: query.action.clone(),
            package: query.package.clone(),
        },
        rows,
        total: events.len(),
        jsonl_href: paths::with_query(paths::AUDIT_JSONL, &query.parameters()),
        csv_href: paths::with_query(paths::AUDIT_CSV, &query.parameters()),
    };
    html(StatusCode::OK, airlock_admin_ui::render_audit(&page))
}

fn download(content_type: &'static str, file_name: &'static str, body: String) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CONTENT_DISPOSITION, file_name)], body).into_response()
}

/// The audit log as JSON lines, oldest first (the order of the log).
async fn get_audit_jsonl(
    State(state): State<AppState>,
    _signed_in: SignedIn,
    Query(query): Query<AuditQuery>,
) -> Response {
    let mut events = match audit_events(&state, &query).await {
        Ok(events) => events,
        Err(error) => return error.into_response(),
    };
    events.reverse();
    let mut body = String::new();
    for event in &events {
        body.push_str(&serde_json::to_string(event).unwrap_or_default());
        body.push('\n');
    }
    download("application/x-ndjson; charset=utf-8", "attachment; filename=\"airlock-audit.jsonl\"", body)
}

/// The audit log as CSV, oldest first; every cell is quoted and formula-safe.
async fn get_audit_csv(
    State(state): State<AppState>,
    _signed_in: SignedIn,
    Query(query): Query<AuditQuery>,
) -> Response {
    let mut events = match audit_events(&state, &query).await {
        Ok(events) => events,
        Err(error) => return error.into_response(),
    };
    events.reverse();
    let mut body =
        airlock_admin_ui::csv_line(["id", "time", "actor", "action", "package", "version", "from", "to", "comment"]);
    for event in &events {
        let (id, time) = (event.id.to_string(), event.time.to_rfc3339());
        let from = event.from.map(VersionState::as_str).unwrap_or("");
        let to = event.to.map(VersionState::as_str).unwrap_or("");
        let comment = event.comment.as_deref().unwrap_or("");
        body.push_str(&airlock_admin_ui::csv_line([
            id.as_str(),
            time.as_str(),
            &event.actor,
            &event.action,
            &event.package,
            &event.version,
            from,
            to,
            comment,
        ]));
    }
    download("text/csv; charset=utf-8", "attachment; filename=\"airlock-audit.csv\"", body)
}

// The policy.

/// Loads the admin-added rules from the store into the shared policy (see
/// `Pipeline::refresh_stored_rules`, which also drops the packuments they cover).
pub(super) async fn reload_policy_rules(state: &AppState) -> AppResult<()> {
    state.pipeline.refresh_stored_rules().await
}

async fn get_policy(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    match policy_page(&state, &signed_in).await {
        Ok(page) => html(StatusCode::OK, airlock_admin_ui::render_policy(&page)),
        Err(error) => app_error_page(&signed_in, error),
    }
}

async fn policy_page(state: &AppState, signed_in: &SignedIn) -> AppResult<views::PolicyPage> {
    let config = state.mirror.policy().config();
    let mut settings = vec![
        fact("Cooling period", airlock_config::format_duration(config.cooling_period)),
        fact("Hold at severity", format!("{} and above", config.hold_severity.as_str())),
        fact("Unverifiable source counts as", config.unverifiable_source_severity.as_str()),
        fact("Concurrent checks", config.check_concurrency.to_string()),
    ];
    for (rule, level) in &config.rule_severity {
        settings.push(fact(&format!("Severity of {rule}"), level.as_str()));
    }
    for rule in &config.require_provenance {
        settings
            .push(fact("Provenance required", format!("{}@{}", rule.package, rule.versions.as_deref().unwrap_or("*"))));
    }
    let configured = |kind: &str, rules: &[airlock_config::PackageRule]| -> Vec<views::RuleView> {
        rules
            .iter()
            .map(|rule| views::RuleView {
                kind: kind.into(),
                package: rule.package.clone(),
                versions: rule.versions.clone().unwrap_or_else(|| "*".into()),
                reason: rule.reason.clone().unwrap_or_default(),
                source: "config".into(),
                id: String::new(),
            })
            .collect()
    };
    let mut rules = configured("deny", &config.deny);
    rules.extend(configured("allow", &config.allow));
    rules.extend(state.mirror.store().policy_rules().await?.into_iter().map(|rule: StoredPolicyRule| {
        views::RuleView {
            kind: rule.kind,
            package: rule.package,
            versions: rule.versions.unwrap_or_else(|| "*".into()),
            reason: rule.reason,
            source: format!("{} at {}", rule.added_by, time_text(rule.added_at)),
            id: rule.id.to_string(),
        }
    }));
    Ok(views::PolicyPage {
        chrome: signed_in.chrome("policy"),
        settings,
        rules,
        add_href: paths::POLICY_ADD.into(),
        remove_href: paths::POLICY_REMOVE.into(),
        waivers: waiver_views(state).await?,
        waivable_rules: airlock_scanner::Rule::ALL
            .iter()
            .filter(|rule| !crate::quarantine::waivers::UNWAIVABLE_RULES.contains(rule))
            .map(|rule| rule.id().to_owned())
            .collect(),
        waiver_add_href: paths::WAIVER_ADD.into(),
        waiver_revoke_href: paths::WAIVER_REVOKE.into(),
    })
}

async fn waiver_views(state: &AppState) -> AppResult<Vec<views::WaiverView>> {
    let now = state.mirror.now();
    let mut waivers = state.mirror.store().waivers().await?;
    waivers.reverse();
    Ok(waivers
        .into_iter()
        .map(|waiver| {
            let status = match &waiver.revoked {
                Some(revocation) => format!("revoked by {} at {}", revocation.by, time_text(revocation.at)),
                None if waiver.expires_at <= now => "expired".into(),
                None => "active".into(),
            };
            views::WaiverView {
                id: waiver.id.to_string(),
                revocable: waiver.revoked.is_none() && waiver.expires_at > now,
                rule: waiver.rule,
                package: waiver.package,
                versions: waiver.versions.unwrap_or_else(|| "*".into()),
                reason: waiver.reason,
                created: format!("{} at {}", waiver.created_by, time_text(waiver.created_at)),
                expires: time_text(waiver.expires_at),
                status,
            }
        })
        .collect())
}

async fn post_waiver_add(State(state): State<AppState>, signed_in: SignedIn, body: Bytes) -> Response {
    let form = parse_form(&body);
    if let Some(refusal) = signed_in.csrf_refusal(&form) {
        return refusal;
    }
    let field = |key: &str| form.get(key).map(String::as_str).unwrap_or("");
    let request = crate::quarantine::waivers::WaiverRequest {
        rule: field("rule"),
        package: field("package"),
        versions: Some(field("versions")),
        reason: field("reason"),
        expires: field("expires"),
    };
    let recheck_held = form.contains_key("recheck_held");
    match super::admin_api::create_waiver(&state, &signed_in.session.user, &request, recheck_held).await {
        Ok(_) => redirect(paths::POLICY),
        Err(AppError::BadRequest(message)) => policy_error(&state, &signed_in, message).await,
        Err(error) => app_error_page(&signed_in, error),
    }
}

async fn post_waiver_revoke(State(state): State<AppState>, signed_in: SignedIn, body: Bytes) -> Response {
    let form = parse_form(&body);
    if let Some(refusal) = signed_in.csrf_refusal(&form) {
        return refusal;
    }
    let Ok(id) = form.get("id").map(String::as_str).unwrap_or("").parse::<u64>() else {
        return policy_error(&state, &signed_in, "No such waiver.".into()).await;
    };
    let revoked = crate::quarantine::waivers::revoke(
        state.mirror.store(),
        state.mirror.policy(),
        id,
        &signed_in.session.user,
        state.mirror.now(),
    )
    .await;
    match revoked {
        Ok(_) => {
            tracing::info!(admin = %signed_in.session.user, waiver.id = id, "waiver revoked");
            redirect(paths::POLICY)
        }
        Err(AppError::NotFound(message)) => policy_error(&state, &signed_in, message).await,
        Err(error) => app_error_page(&signed_in, error),
    }
}

async fn policy_error(state: &AppState, signed_in: &SignedIn, message: String) -> Response {
    let mut page = match policy_page(state, signed_in).await {
        Ok(page) => page,
        Err(error) => return app_error_page(signed_in, error),
    };
    page.chrome.error = Some(message);
    html(StatusCode::BAD_REQUEST, airlock_admin_ui::render_policy(&page))
}

async fn post_policy_add(State(state): State<AppState>, signed_in: SignedIn, body: Bytes) -> Response {
    let form = parse_form(&body);
    if let Some(refusal) = signed_in.csrf_refusal(&form) {
        return refusal;
    }
    let field = |key: &str| form.get(key).map(|value| value.trim().to_owned()).unwrap_or_default();
    let (kind, package, versions, reason) = (field("kind"), field("package"), field("versions"), field("reason"));
    if kind != "allow" && kind != "deny" {
        return policy_error(&state, &signed_in, "A rule is either allow or deny.".into()).await;
    }
    if reason.is_empty() || reason.len() > MAX_COMMENT {
        return policy_error(&state, &signed_in, "A rule needs a reason (at most 4096 bytes).".into()).await;
    }
    let versions = Some(versions).filter(|versions| !versions.is_empty() && versions != "*");
    if let Err(error) = airlock_config::PackageRule::new("policy rule", &package, versions.as_deref(), Some(&reason)) {
        return policy_error(&state, &signed_in, error.to_string()).await;
    }
    let stored = StoredPolicyRule {
        id: 0,
        kind,
        package: package.clone(),
        versions,
        reason,
        added_by: signed_in.actor(),
        added_at: state.mirror.now(),
    };
    if let Err(error) = state.mirror.store().add_policy_rule(stored).await {
        return app_error_page(&signed_in, error.into());
    }
    tracing::info!(admin = %signed_in.session.user, rule.package = %package, "admin added a policy rule");
    if let Err(error) = reload_policy_rules(&state).await {
        return app_error_page(&signed_in, error);
    }
    // Versions already waiting are decided again under the new rule.
    state.pipeline.wake();
    redirect(paths::POLICY)
}

async fn post_policy_remove(State(state): State<AppState>, signed_in: SignedIn, body: Bytes) -> Response {
    let form = parse_form(&body);
    if let Some(refusal) = signed_in.csrf_refusal(&form) {
        return refusal;
    }
    let Ok(id) = form.get("id").map(String::as_str).unwrap_or("").parse::<u64>() else {
        return policy_error(&state, &signed_in, "No such rule.".into()).await;
    };
    match state.mirror.store().remove_policy_rule(id, &signed_in.actor(), state.mirror.now()).await {
        Ok(Some(_)) => match reload_policy_rules(&state).await {
            Ok(()) => redirect(paths::POLICY),
            Err(error) => app_error_page(&signed_in, error),
        },
        Ok(None) => policy_error(&state, &signed_in, "No such rule (already removed?).".into()).await,
        Err(error) => app_error_page(&signed_in, error.into()),
    }
}

// Keys.

async fn get_keys(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    let signer = state.pipeline.signer();
    let registry = signer.registry_key_json();
    let release = signer.release_key_json();
    let registry_url = format!("{}/", state.mirror.public_base().trim_end_matches('/'));
    let keys = vec![
        views::KeyView {
            purpose: "npm registry signatures (npm audit signatures)".into(),
            key_id: text_of(&registry["keyid"]),
            key_type: text_of(&registry["keytype"]),
            public_key: text_of(&registry["key"]),
        },
        views::KeyView {
            purpose: "Release records (airlock verify)".into(),
            key_id: text_of(&release["keyid"]),
            key_type: text_of(&release["keytype"]),
            public_key: text_of(&release["public_key"]),
        },
    ];
    let commands = vec![
        "# Airlock's keys, once, into the repository:".into(),
        format!("curl -fsS {registry_url}-/airlock/keys > airlock-keys.json"),
        "# Every CI run, after npm ci:".into(),
        format!("airlock verify package-lock.json --registry {registry_url} --key airlock-keys.json"),
        format!("npm audit signatures --registry {registry_url}"),
    ];
    let page = views::KeysPage { chrome: signed_in.chrome("keys"), keys, registry_url, commands };
    html(StatusCode::OK, airlock_admin_ui::render_keys(&page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_decoded() {
        let form = parse_form(b"package=%40scope%2Fname&comment=a+b%20c%26d&csrf=x%3D&bad=%zz&end=%4");
        assert_eq!(form["package"], "@scope/name");
        assert_eq!(form["comment"], "a b c&d");
        assert_eq!(form["csrf"], "x=");
        assert_eq!(form["bad"], "%zz");
        assert_eq!(form["end"], "%4");
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other_airlock_admin_session=x; airlock_admin_session=abc"),
        );
        assert_eq!(cookie_value(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie_value(&headers, SIGN_IN_COOKIE), None);
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(human_duration(chrono::Duration::seconds(42)), "42s");
        assert_eq!(human_duration(chrono::Duration::minutes(12)), "12m");
        assert_eq!(human_duration(chrono::Duration::minutes(252)), "4h 12m");
        assert_eq!(human_duration(chrono::Duration::hours(76)), "3d 4h");
    }
}
