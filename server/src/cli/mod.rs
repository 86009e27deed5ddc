//! The subcommands of the `airlock` binary. Each reads its own input and hands bytes to
//! the pure crates or runs the server.

pub mod admin;
pub mod prefetch;
pub mod scan;
pub mod scan_provenance;
pub mod serve;
pub mod users;
pub mod verify;

/// An HTTP client for talking to a running Airlock, sending `token` (a client or admin
/// token) as a bearer token on every request, marked sensitive so it is never logged.
pub(crate) fn airlock_client(token: Option<&str>, timeout: std::time::Duration) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(reqwest::Client::builder().timeout(timeout).default_headers(headers).build()?)
}
