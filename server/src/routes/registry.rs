//! The npm registry read API: packuments (full and abbreviated), version manifests,
//! dist-tags and tarballs.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use crate::error::{AppError, AppResult};
use crate::mirror::{CachedPackument, TarballAccess};
use crate::npm::{PackageName, TarballFileName, VersionSpec, quote};
use crate::packument::{Compression, Encoded};
use crate::store::blobs::OpenedTarball;

/// The media type of npm's abbreviated packument.
const ABBREVIATED_MEDIA_TYPE: &str = "application/vnd.npm.install-v1+json";
/// Chunk size for streaming tarballs from disk.
const TARBALL_CHUNK: usize = 64 << 10;

/// What a package path asks for.
#[derive(Debug, PartialEq, Eq)]
enum PackagePath {
    Packument(PackageName),
    VersionManifest(PackageName, VersionSpec),
    Tarball(PackageName, TarballFileName),
}

/// Parses a raw (still percent-encoded) request path into a package request.
///
/// Accepts `/@scope/name`, `/@scope%2fname` and `/@scope%2Fname`. No other percent
/// escapes are decoded: no valid name, version or file name needs one, so any `%` left
/// is refused by the validators.
fn parse_package_path(raw_path: &str) -> AppResult<PackagePath> {
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let mut segments: Vec<&str> = path.split('/').collect();
    if segments.last() == Some(&"") && segments.len() > 1 {
        segments.pop();
    }
    let (name_text, rest): (String, &[&str]) = if path.starts_with('@') {
        let first = segments[0];
        let lower = first.to_ascii_lowercase();
        if let Some(position) = lower.find("%2f") {
            (format!("{}/{}", &first[..position], &first[position + 3..]), &segments[1..])
        } else if segments.len() >= 2 {
            (format!("{}/{}", segments[0], segments[1]), &segments[2..])
        } else {
            (first.to_owned(), &segments[1..])
        }
    } else {
        (segments[0].to_owned(), &segments[1..])
    };
    let name = PackageName::parse(&name_text)?;
    match rest {
        [] => Ok(PackagePath::Packument(name)),
        [spec] => Ok(PackagePath::VersionManifest(name, VersionSpec::parse(spec)?)),
        ["-", file] => Ok(PackagePath::Tarball(name, TarballFileName::parse(file)?)),
        _ => Err(AppError::NotFound(format!("no such registry path {}", quote(raw_path)))),
    }
}

/// `GET /{name}`, `/{name}/{version}`, `/{name}/-/{file}.tgz` (scoped forms too).
pub(super) async fn get_package_path(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> AppResult<Response> {
    if method != Method::GET && method != Method::HEAD {
        return Err(AppError::BadRequest(format!(
            "Airlock is a read-only mirror; {method} {} is not supported",
            quote(uri.path())
        )));
    }
    match parse_package_path(uri.path())? {
        PackagePath::Packument(name) => get_packument(&state, &name, &headers).await,
        PackagePath::VersionManifest(name, spec) => get_version_manifest(&state, &name, &spec).await,
        PackagePath::Tarball(name, file_name) => get_tarball(&state, &name, &file_name, &headers).await,
    }
}

async fn get_packument(state: &AppState, name: &PackageName, headers: &HeaderMap) -> AppResult<Response> {
    let packument = state.mirror.packument(name).await?;
    let abbreviated = accepts_abbreviated(headers);
    encoded_response(headers, packument, abbreviated).await
}

/// The form of the document a request asked for.
fn chosen_form(packument: &CachedPackument, abbreviated: bool) -> &Encoded {
    if abbreviated { &packument.rendered.abbreviated } else { &packument.rendered.full }
}

/// True when the client asked for the abbreviated document (npm, pnpm, yarn and bun
/// all send `application/vnd.npm.install-v1+json` first when installing).
fn accepts_abbreviated(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains(ABBREVIATED_MEDIA_TYPE))
}

/// Which precompressed variant to send.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

/// Picks brotli, then gzip, then identity, honouring `q=0`.
fn negotiate_encoding(headers: &HeaderMap) -> Encoding {
    let Some(accept) = headers.get(header::ACCEPT_ENCODING).and_then(|value| value.to_str().ok()) else {
        return Encoding::Identity;
    };
    let mut gzip = false;
    let mut brotli = false;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = parts.any(|parameter| {
            let parameter = parameter.trim();
            parameter.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
        });
        if refused {
            continue;
        }
        match coding.as_str() {
            "br" => brotli = true,
            "gzip" | "x-gzip" => gzip = true,
            "*" => {
                brotli = true;
                gzip = true;
            }
            _ => {}
        }
    }
    if brotli {
        Encoding::Brotli
    } else if gzip {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// True when `If-None-Match` names the content tag in any encoding (or is `*`).
fn not_modified(headers: &HeaderMap, tag: &str) -> bool {
    let Some(value) = headers.get(header::IF_NONE_MATCH).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    value.split(',').any(|candidate| {
        let candidate = candidate.trim();
        if candidate == "*" {
            return true;
        }
        let candidate = candidate.strip_prefix("W/").unwrap_or(candidate).trim_matches('"');
        let candidate = candidate.strip_suffix("-br").or_else(|| candidate.strip_suffix("-gzip")).unwrap_or(candidate);
        candidate == tag
    })
}

/// A document in the negotiated encoding, or 304. A compressed form is made on its
/// first request (on a blocking thread) and kept with the rendering.
async fn encoded_response(
    headers: &HeaderMap,
    packument: std::sync::Arc<CachedPackument>,
    abbreviated: bool,
) -> AppResult<Response> {
    let content_type = if abbreviated { ABBREVIATED_MEDIA_TYPE } else { "application/json" };
    let document = chosen_form(&packument, abbreviated);
    let (compression, etag, content_encoding) = match negotiate_encoding(headers) {
        Encoding::Identity => (None, format!("\"{}\"", document.tag), None),
        Encoding::Gzip => (Some(Compression::Gzip), format!("\"{}-gzip\"", document.tag), Some("gzip")),
        Encoding::Brotli => (Some(Compression::Brotli), format!("\"{}-br\"", document.tag), Some("br")),
    };
    let mut response = if not_modified(headers, &document.tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = match compression {
            None => document.identity.clone(),
            Some(compression) => match document.compressed_if_ready(compression) {
                Some(bytes) => bytes,
                None => {
                    let held = std::sync::Arc::clone(&packument);
                    tokio::task::spawn_blocking(move || chosen_form(&held, abbreviated).compressed(compression))
                        .await
                        .map_err(|error| AppError::Internal(anyhow::anyhow!("compressing panicked: {error}")))?
                }
            },
        };
        let mut response = Response::new(Body::from(body));
        let response_headers = response.headers_mut();
        response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(content_encoding) = content_encoding {
            response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(content_encoding));
        }
        response
    };
    let rendered = &packument.rendered;
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    response_headers.insert(header::VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    match rendered.notice.as_deref().map(HeaderValue::from_str) {
        Some(Ok(notice)) => {
            response_headers.insert("npm-notice", notice);
            // npm prints `npm-notice` only for responses it does not cache, and a
            // packument with held versions changes as soon as one is released anyway.
            response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        _ => {
            // Clients revalidate every time (a 304 is cheap), so a release or a
            // rejection is seen at once.
            response_headers
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=0, must-revalidate"));
        }
    }
    Ok(response)
}

async fn get_version_manifest(state: &AppState, name: &PackageName, spec: &VersionSpec) -> AppResult<Response> {
    let packument = state.mirror.packument(name).await?;
    let rendered = &packument.rendered;
    let tags: serde_json::Map<String, Value> = serde_json::from_slice(&rendered.dist_tags).unwrap_or_default();
    let version = match tags.get(spec.as_str()).and_then(Value::as_str) {
        Some(tagged) => tagged.to_owned(),
        None => spec.as_str().to_owned(),
    };
    match rendered.index.versions.get(&version) {
        None => {
            return Err(AppError::NotFound(format!("version not found: {name}@{}", spec.as_str())));
        }
        Some(view) if !view.visibility.is_listed() => {
            return Err(AppError::Quarantined(view.visibility.explain(name, &version)));
        }
        Some(_) => {}
    }
    let manifest = rendered
        .manifest(&version)
        .ok_or_else(|| AppError::NotFound(format!("version not found: {name}@{version}")))?;
    let mut response = Response::new(Body::from(manifest));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// `GET /-/package/{name}/dist-tags`.
pub(super) async fn get_dist_tags(State(state): State<AppState>, uri: Uri) -> AppResult<Response> {
    // The raw path, not axum's decoded one, so `%2f` handling and validation are the
    // same as for every other package path.
    let raw = uri.path().strip_prefix("/-/package").unwrap_or("");
    let Some(name_path) = raw.strip_suffix("/dist-tags") else {
        return Err(AppError::NotFound(format!("no such registry path {}", quote(uri.path()))));
    };
    let PackagePath::Packument(name) = parse_package_path(name_path)? else {
        return Err(AppError::NotFound(format!("no such registry path {}", quote(uri.path()))));
    };
    let packument = state.mirror.packument(&name).await?;
    Ok(json_response(StatusCode::OK, String::from_utf8_lossy(&packument.rendered.dist_tags).into_owned()))
}

async fn get_tarball(
    state: &AppState,
    name: &PackageName,
    file_name: &TarballFileName,
    headers: &HeaderMap,
) -> AppResult<Response> {
    // A listed version that was never checked (or just finished cooling) is settled
    // here, inside the request: no byte is served before its checks passed.
    let tarball = match state.mirror.tarball(name, file_name).await? {
        TarballAccess::Ready(tarball) => tarball,
        TarballAccess::NeedsSettle { version } => {
            state.pipeline.settle(name, &version).await?;
            match state.mirror.tarball(name, file_name).await? {
                TarballAccess::Ready(tarball) => tarball,
                TarballAccess::NeedsSettle { version } => {
                    return Err(AppError::Quarantined(format!(
                        "{name}@{version} is in quarantine: Airlock is still checking it; try again in a minute"
                    )));
                }
            }
        }
    };
    let etag = format!("\"{}\"", tarball.released.integrity());
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|candidate| candidate.trim().trim_start_matches("W/") == etag))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match state.mirror.open_released(&tarball).await? {
            OpenedTarball::Bytes(bytes) => tarball_response(bytes.len() as u64, Body::from(bytes)),
            OpenedTarball::File { file, length } => {
                let stream =
                    tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), TARBALL_CHUNK);
                tarball_response(length, Body::from_stream(stream))
            }
            OpenedTarball::Stream { body, length } => tarball_response(length, Body::from_stream(body)),
        }
    };
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    tracing::debug!(
        package.name = %tarball.released.name(),
        package.version = tarball.released.version(),
        "tarball served"
    );
    Ok(response)
}

fn tarball_response(length: u64, body: Body) -> Response {
    let mut response = Response::new(body);
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// A JSON body with the right content type.
pub(super) fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(text: &str) -> PackageName {
        PackageName::parse(text).unwrap()
    }

    #[test]
    fn scoped_names_parse_in_all_three_forms() {
        for path in ["/@scope/pkg", "/@scope%2fpkg", "/@scope%2Fpkg", "/@scope/pkg/"] {
            assert_eq!(parse_package_path(path).unwrap(), PackagePath::Packument(name("@scope/pkg")), "{path}");
        }
        assert_eq!(
            parse_package_path("/@scope%2Fpkg/1.0.0").unwrap(),
            PackagePath::VersionManifest(name("@scope/pkg"), VersionSpec::parse("1.0.0").unwrap())
        );
        assert_eq!(
            parse_package_path("/@scope/pkg/-/pkg-1.0.0.tgz").unwrap(),
            PackagePath::Tarball(name("@scope/pkg"), TarballFileName::parse("pkg-1.0.0.tgz").unwrap())
        );
        assert_eq!(
            parse_package_path("/express/-/express-4.18.2.tgz").unwrap(),
            PackagePath::Tarball(name("express"), TarballFileName::parse("express-4.18.2.tgz").unwrap())
        );
    }

    #[test]
    fn hostile_paths_are_bad_requests() {
        for path in ["/..", "/%2e%2e", "/a%00b", "/@scope", "/@scope%2f..", "/x/-/..%2fetc.tgz", "/ spaced"] {
            let error = parse_package_path(path).unwrap_err();
            assert!(matches!(error, AppError::BadRequest(_)), "{path}: {error:?}");
        }
        assert!(matches!(parse_package_path("/a/b/c/d"), Err(AppError::NotFound(_))));
    }

    #[test]
    fn encodings_are_negotiated_with_q_values() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
            negotiate_encoding(&headers)
        };
        assert_eq!(with("gzip, deflate, br"), Encoding::Brotli);
        assert_eq!(with("gzip"), Encoding::Gzip);
        assert_eq!(with("br;q=0, gzip;q=0.5"), Encoding::Gzip);
        assert_eq!(with("identity"), Encoding::Identity);
        assert_eq!(negotiate_encoding(&HeaderMap::new()), Encoding::Identity);
    }

    #[test]
    fn if_none_match_accepts_any_encoding_of_the_same_content() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            not_modified(&headers, "abc")
        };
        assert!(with("\"abc\""));
        assert!(with("W/\"abc-gzip\""));
        assert!(with("\"zzz\", \"abc-br\""));
        assert!(with("*"));
        assert!(!with("\"abd\""));
    }
}
