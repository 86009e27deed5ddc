//! `GET /-/airlock/status/<name>/<version>`: the page every refusal links to, readable
//! without signing in. It says where the version stands, why in one sentence, when it
//! can be installed and whom to ask; findings only when `admin.show_findings_to_developers`
//! is on (they can describe an attack that is not public yet). HTML for browsers, JSON for
//! `Accept: application/json`.

use airlock_admin_ui::views::DeveloperStatusPage;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;

use super::AppState;
use super::admin_api::decode_scope_separator;
use crate::error::{AppError, AppResult};
use crate::npm::{Integrity, PackageName, VersionSpec, quote};
use crate::quarantine::checks::CheckRecord;
use crate::quarantine::{self, Visibility};

/// Findings listed at most, when they are shown.
const MAX_FINDINGS_SHOWN: usize = 10;

pub(super) async fn get_status(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> AppResult<Response> {
    let (name, version) = parse_status_path(&uri)?;
    let page = status_page(&state, &name, &version).await?;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json") && !accept.contains("text/html"));
    if wants_json {
        let body = serde_json::json!({
            "package": page.package,
            "version": page.version,
            "state": page.state,
            "reason": page.reason,
            "installable": page.installable,
            "contact": page.contact,
            "findings": page.findings.iter().map(|(severity, rule, message)| serde_json::json!({
                "severity": severity, "rule": rule, "message": message,
            })).collect::<Vec<_>>(),
        });
        return Ok(axum::Json(body).into_response());
    }
    let mut response = (StatusCode::OK, airlock_admin_ui::render_developer_status(&page)).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response_headers
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(airlock_admin_ui::CONTENT_SECURITY_POLICY));
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `<name>/<version>`, the name scoped or not, the scope separator in any form.
fn parse_status_path(uri: &Uri) -> AppResult<(PackageName, String)> {
    let raw = uri.path().strip_prefix(airlock_admin_ui::paths::STATUS).unwrap_or("").trim_start_matches('/');
    let decoded = decode_scope_separator(raw);
    let segments: Vec<&str> = decoded.split('/').collect();
    let (name_text, version) = match segments.as_slice() {
        [scope, name, version] if scope.starts_with('@') => (format!("{scope}/{name}"), *version),
        [name, version] if !name.starts_with('@') => ((*name).to_owned(), *version),
        _ => {
            return Err(AppError::NotFound(format!(
                "no status page at {}: expected /-/airlock/status/<package>/<version>",
                quote(uri.path())
            )));
        }
    };
    let name = PackageName::parse(&name_text)?;
    let version = VersionSpec::parse(version)?.as_str().to_owned();
    Ok((name, version))
}

async fn status_page(state: &AppState, name: &PackageName, version: &str) -> AppResult<DeveloperStatusPage> {
    let config = state.mirror.config();
    let store = state.mirror.store();
    let record = store.version(name, version).await?.ok_or_else(|| {
        AppError::NotFound(format!("Airlock has not seen {name}@{version}; check the name and the version"))
    })?;
    let integrity = Integrity::from_dist(Some(&record.integrity), None)?;
    let now = state.mirror.now();
    let visibility = quarantine::decide(name, version, &record, &integrity, state.mirror.policy(), now);
    let time = |moment: &chrono::DateTime<chrono::Utc>| moment.to_rfc3339_opts(SecondsFormat::Secs, true);
    let (state_words, installable) = match &visibility {
        Visibility::Installable | Visibility::Provisional => ("Installable", "now".to_owned()),
        Visibility::Cooling { until, checked: true } => {
            ("Cooling (checks passed)", format!("from {} (or sooner if an admin approves it)", time(until)))
        }
        Visibility::Cooling { until, checked: false } => {
            ("Cooling", format!("from {} if its checks pass (or sooner if an admin approves it)", time(until)))
        }
        Visibility::Checking => ("Being checked", "when its checks pass, usually within minutes".to_owned()),
        Visibility::Held { .. } => ("Held for review", "only when an Airlock admin approves it".to_owned()),
        Visibility::Rejected { .. } => ("Rejected", "never: this version will not be served".to_owned()),
        Visibility::IntegrityChanged { .. } => {
            ("Held: the upstream changed its bytes", "only when an Airlock admin approves it".to_owned())
        }
        Visibility::Unusable { .. } => ("Cannot be served", "never".to_owned()),
    };
    let findings = if config.admin.show_findings_to_developers {
        let checks: Option<CheckRecord> = store.checks(name, version).await?;
        checks
            .map(|checks| {
                checks
                    .report
                    .findings
                    .iter()
                    .take(MAX_FINDINGS_SHOWN)
                    .map(|finding| (finding.severity.to_string(), finding.rule.to_string(), finding.message.clone()))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(DeveloperStatusPage {
        package: name.as_str().to_owned(),
        version: version.to_owned(),
        state: state_words.to_owned(),
        reason: visibility.explain(name, version),
        installable,
        contact: config.admin.contact.clone().unwrap_or_else(|| "an Airlock admin".to_owned()),
        findings,
        admin_link: format!(
            "{}{}",
            state.mirror.public_base(),
            airlock_admin_ui::paths::version(name.as_str(), version)
        ),
    })
}
