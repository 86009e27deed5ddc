//! Every URL of the admin UI, built in one place. Package values only ever enter a URL
//! as a percent-encoded query value (scoped names contain `@` and `/`), so a hostile
//! name or version can neither change the path nor add a parameter.

/// Where the admin UI is mounted.
pub const BASE: &str = "/-/airlock/admin";
/// The queue (the UI's home).
pub const QUEUE: &str = "/-/airlock/admin/";
/// Sign-in form and its POST.
pub const SIGN_IN: &str = "/-/airlock/admin/sign-in";
/// Sign-out POST.
pub const SIGN_OUT: &str = "/-/airlock/admin/sign-out";
/// Version detail (`?package=&version=`).
pub const VERSION: &str = "/-/airlock/admin/version";
/// Approve / reject / recheck POST.
pub const ACTION: &str = "/-/airlock/admin/action";
/// Package page (`?package=`).
pub const PACKAGE: &str = "/-/airlock/admin/package";
/// Audit log.
pub const AUDIT: &str = "/-/airlock/admin/audit";
/// Audit log as JSON lines.
pub const AUDIT_JSONL: &str = "/-/airlock/admin/audit.jsonl";
/// Audit log as CSV.
pub const AUDIT_CSV: &str = "/-/airlock/admin/audit.csv";
/// Policy page.
pub const POLICY: &str = "/-/airlock/admin/policy";
/// Add-rule POST.
pub const POLICY_ADD: &str = "/-/airlock/admin/policy/add";
/// Remove-rule POST.
pub const POLICY_REMOVE: &str = "/-/airlock/admin/policy/remove";
/// Where the add-waiver form posts.
pub const WAIVER_ADD: &str = "/-/airlock/admin/policy/waivers/add";
/// Where revoke-waiver forms post.
pub const WAIVER_REVOKE: &str = "/-/airlock/admin/policy/waivers/revoke";
/// Keys page.
pub const KEYS: &str = "/-/airlock/admin/keys";
/// The public status page of a version (`/-/airlock/status/<name>/<version>`); no sign-in.
pub const STATUS: &str = "/-/airlock/status";
/// The stylesheet.
pub const STYLESHEET: &str = "/-/airlock/admin/static/admin.css";
/// The script.
pub const SCRIPT: &str = "/-/airlock/admin/static/admin.js";

/// Percent-encodes a query component: everything but unreserved characters.
pub fn encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A path with query parameters; empty values are left out.
pub fn with_query(path: &str, parameters: &[(&str, &str)]) -> String {
    let query: Vec<String> = parameters
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| format!("{}={}", encode(key), encode(value)))
        .collect();
    if query.is_empty() { path.to_owned() } else { format!("{path}?{}", query.join("&")) }
}

/// The detail page of one version.
pub fn version(package: &str, version: &str) -> String {
    with_query(VERSION, &[("package", package), ("version", version)])
}

/// The page of one package.
pub fn package(package: &str) -> String {
    with_query(PACKAGE, &[("package", package)])
}

/// The queue filtered to one state.
pub fn queue_state(state: &str) -> String {
    with_query(QUEUE, &[("state", state)])
}

/// The public status page of `package@version`.
pub fn status(package: &str, version: &str) -> String {
    // The name keeps its `/` (scoped names) so the path reads like the registry's.
    let name = package.split('/').map(encode).collect::<Vec<_>>().join("/");
    format!("{STATUS}/{name}/{}", encode(version))
}
