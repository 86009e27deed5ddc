//! A fake upstream npm registry on 127.0.0.1: real gzip tarballs with real integrity
//! values, full packuments with `time`, scoped names, ETags, and knobs to make it fail
//! (`fail_next`, `delay`, `corrupt_tarball`, `stop`).

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest as _, Sha512};

/// One version to publish: its manifest fields and files.
#[derive(Clone)]
pub struct PackageVersion {
    /// Package name (`name` or `@scope/name`).
    pub name: String,
    /// Version.
    pub version: String,
    /// Extra `package.json` fields (dependencies, bin, scripts...).
    pub manifest: Value,
    /// Files under `package/`, besides `package.json`.
    pub files: Vec<(String, Vec<u8>)>,
    /// The publish time the packument claims.
    pub published: chrono::DateTime<chrono::Utc>,
}

impl PackageVersion {
    /// A version with an `index.js` and the given publish time.
    pub fn new(name: &str, version: &str, published: chrono::DateTime<chrono::Utc>) -> PackageVersion {
        PackageVersion {
            name: name.to_owned(),
            version: version.to_owned(),
            manifest: json!({}),
            files: vec![(
                "index.js".into(),
                format!("module.exports = {:?};\n", format!("{name}@{version}")).into_bytes(),
            )],
            published,
        }
    }

    /// Merges fields into `package.json`.
    pub fn with_manifest(mut self, fields: Value) -> PackageVersion {
        if let (Some(target), Some(source)) = (self.manifest.as_object_mut(), fields.as_object()) {
            for (key, value) in source {
                target.insert(key.clone(), value.clone());
            }
        }
        self
    }

    /// Adds or replaces a file.
    pub fn with_file(mut self, path: &str, contents: &[u8]) -> PackageVersion {
        self.files.retain(|(existing, _)| existing != path);
        self.files.push((path.to_owned(), contents.to_vec()));
        self
    }

    /// The full `package.json`.
    pub fn package_json(&self) -> Value {
        let mut manifest = json!({"name": self.name, "version": self.version, "main": "index.js", "license": "MIT"});
        if let (Some(target), Some(source)) = (manifest.as_object_mut(), self.manifest.as_object()) {
            for (key, value) in source {
                target.insert(key.clone(), value.clone());
            }
        }
        manifest
    }

    /// The tarball bytes: `package/...` entries, gzip-compressed, as `npm pack` makes them.
    pub fn tarball(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut add = |path: &str, contents: &[u8], mode: u32| {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(mode);
            header.set_mtime(499_162_500); // npm's fixed 1985-10-26 timestamp.
            header.set_cksum();
            builder
                .append_data(&mut header, format!("package/{path}"), contents)
                .expect("appending to an in-memory tar");
        };
        add("package.json", serde_json::to_string_pretty(&self.package_json()).unwrap().as_bytes(), 0o644);
        for (path, contents) in &self.files {
            let executable = contents.starts_with(b"#!");
            add(path, contents, if executable { 0o755 } else { 0o644 });
        }
        let tar_bytes = builder.into_inner().expect("finishing tar");
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&tar_bytes).unwrap();
        gzip.finish().unwrap()
    }

    /// The tarball's file name.
    pub fn file_name(&self) -> String {
        format!("{}-{}.tgz", self.name.rsplit('/').next().unwrap(), self.version)
    }
}

/// The SRI sha512 of some bytes.
pub fn integrity_of(bytes: &[u8]) -> String {
    format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes)))
}

#[derive(Default)]
struct Inner {
    /// Versions by package name, in publish order.
    packages: HashMap<String, Vec<PackageVersion>>,
    /// Tarball bytes by `name/file`.
    tarballs: HashMap<String, Vec<u8>>,
    /// Tarballs to serve with one byte flipped (declared integrity unchanged).
    corrupt: Vec<String>,
    /// Extra dist-tags by package.
    tags: HashMap<String, HashMap<String, String>>,
    /// Overrides of `time[version]`, to forge publish times.
    forged_times: HashMap<(String, String), String>,
    /// Requests by path (decoded scoped form).
    requests: HashMap<String, usize>,
    /// Audit requests received.
    audits: usize,
    /// When set, requests without `Authorization: Bearer <token>` get 401.
    required_token: Option<String>,
    /// When set, tarball requests are answered with a 302 to the same path under this base.
    tarball_redirect_base: Option<String>,
    /// The Authorization header of every request, in order.
    authorizations: Vec<Option<String>>,
    /// Members added to `versions` as given, after the published ones, by package:
    /// (version key, manifest, `time` entry). What a hostile upstream would list.
    raw_versions: HashMap<String, Vec<(String, Value, String)>>,
}

/// The fake upstream. Dropping it stops the server.
pub struct FakeRegistry {
    inner: Arc<Mutex<Inner>>,
    fail_next: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicUsize>,
    address: SocketAddr,
    server: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Clone)]
struct FakeState {
    inner: Arc<Mutex<Inner>>,
    fail_next: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicUsize>,
    base: String,
}

impl FakeRegistry {
    /// Starts the fake on an ephemeral loopback port.
    pub async fn start() -> FakeRegistry {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the fake registry");
        let address = listener.local_addr().unwrap();
        let mut registry = FakeRegistry {
            inner: Arc::default(),
            fail_next: Arc::default(),
            delay_ms: Arc::default(),
            address,
            server: None,
        };
        registry.serve_on(listener);
        registry
    }

    fn serve_on(&mut self, listener: tokio::net::TcpListener) {
        let state = FakeState {
            inner: Arc::clone(&self.inner),
            fail_next: Arc::clone(&self.fail_next),
            delay_ms: Arc::clone(&self.delay_ms),
            base: self.url(),
        };
        let app = Router::new().fallback(handle).with_state(state);
        self.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Publishes a version; returns its tarball bytes.
    pub fn publish(&self, version: PackageVersion) -> Vec<u8> {
        let tarball = version.tarball();
        let mut inner = self.inner.lock().unwrap();
        inner.tarballs.insert(format!("{}/{}", version.name, version.file_name()), tarball.clone());
        inner.packages.entry(version.name.clone()).or_default().push(version);
        tarball
    }

    /// Publishes a version whose tarball is `tarball` as given (hostile archives built
    /// by streaming, never held uncompressed); `version`'s files are ignored.
    pub fn publish_tarball(&self, version: PackageVersion, tarball: Vec<u8>) {
        let mut inner = self.inner.lock().unwrap();
        inner.tarballs.insert(format!("{}/{}", version.name, version.file_name()), tarball);
        inner.packages.entry(version.name.clone()).or_default().push(version);
    }

    /// Lists `manifest` under the key `version_key` in the packument's `versions` (and
    /// `time`), exactly as given: no validation, no tarball built, `dist` as written.
    /// `tarball`, if given, is served at `/<name>/-/<file name>`. For hostile upstreams.
    pub fn publish_raw_version(
        &self,
        name: &str,
        version_key: &str,
        manifest: Value,
        published: chrono::DateTime<chrono::Utc>,
        tarball: Option<(&str, Vec<u8>)>,
    ) {
        let mut inner = self.inner.lock().unwrap();
        if let Some((file_name, bytes)) = tarball {
            inner.tarballs.insert(format!("{name}/{file_name}"), bytes);
        }
        let time = published.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        inner.raw_versions.entry(name.to_owned()).or_default().push((version_key.to_owned(), manifest, time));
    }

    /// Sets a dist-tag.
    pub fn tag(&self, name: &str, tag: &str, version: &str) {
        self.inner.lock().unwrap().tags.entry(name.into()).or_default().insert(tag.into(), version.into());
    }

    /// Makes the packument claim another publish time for a version.
    pub fn forge_time(&self, name: &str, version: &str, time: &str) {
        self.inner.lock().unwrap().forged_times.insert((name.into(), version.into()), time.into());
    }

    /// Serves the tarball with one byte changed, under the original integrity.
    pub fn corrupt_tarball(&self, name: &str, file_name: &str) {
        self.inner.lock().unwrap().corrupt.push(format!("{name}/{file_name}"));
    }

    /// The next `count` requests get HTTP 500.
    pub fn fail_next(&self, count: usize) {
        self.fail_next.store(count, Ordering::SeqCst);
    }

    /// Every answer waits this long first.
    pub fn delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as usize, Ordering::SeqCst);
    }

    /// Requests received for a path such as `/@scope/name` or `/name/-/name-1.0.0.tgz`.
    pub fn requests(&self, path: &str) -> usize {
        self.inner.lock().unwrap().requests.get(path).copied().unwrap_or(0)
    }

    /// Answers every tarball request with a redirect to the same path under `base`
    /// (another server), as a hostile upstream or a registry with a blob store would.
    pub fn redirect_tarballs_to(&self, base: &str) {
        self.inner.lock().unwrap().tarball_redirect_base = Some(base.trim_end_matches('/').to_owned());
    }

    /// Requires `Authorization: Bearer <token>` on every request from now on.
    pub fn require_token(&self, token: &str) {
        self.inner.lock().unwrap().required_token = Some(token.to_owned());
    }

    /// The Authorization header of every request received, in order.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.inner.lock().unwrap().authorizations.clone()
    }

    /// Audit requests received.
    pub fn audits(&self) -> usize {
        self.inner.lock().unwrap().audits
    }

    /// Stops answering: connections are refused from now on.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// The packument the fake serves for `name`.
    pub fn packument(&self, name: &str) -> Option<Value> {
        build_packument(&self.inner.lock().unwrap(), name, &self.url())
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn build_packument(inner: &Inner, name: &str, base: &str) -> Option<Value> {
    let versions = inner.packages.get(name)?;
    let mut version_map = serde_json::Map::new();
    let mut time = serde_json::Map::new();
    let mut latest: Option<&PackageVersion> = None;
    for version in versions {
        let tarball = &inner.tarballs[&format!("{name}/{}", version.file_name())];
        let mut manifest = version.package_json();
        let object = manifest.as_object_mut().unwrap();
        object.insert("_id".into(), json!(format!("{name}@{}", version.version)));
        object.insert(
            "dist".into(),
            json!({
                "tarball": format!("{base}/{name}/-/{}", version.file_name()),
                "integrity": integrity_of(tarball),
                "shasum": hex::encode(Sha1::digest(tarball)),
                "fileCount": version.files.len() + 1,
                "unpackedSize": 1234
            }),
        );
        version_map.insert(version.version.clone(), manifest);
        let claimed = inner
            .forged_times
            .get(&(name.to_owned(), version.version.clone()))
            .cloned()
            .unwrap_or_else(|| version.published.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        time.insert(version.version.clone(), json!(claimed));
        let newer = latest.is_none_or(|current| {
            semver::Version::parse(&version.version).unwrap() > semver::Version::parse(&current.version).unwrap()
        });
        if newer && semver::Version::parse(&version.version).unwrap().pre.is_empty() {
            latest = Some(version);
        }
    }
    for (version_key, manifest, published) in inner.raw_versions.get(name).into_iter().flatten() {
        version_map.insert(version_key.clone(), manifest.clone());
        time.insert(version_key.clone(), json!(published));
    }
    let first = versions.first()?;
    time.insert("created".into(), json!(first.published.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
    let modified = versions.iter().map(|version| version.published).max()?;
    time.insert("modified".into(), json!(modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
    let mut tags = serde_json::Map::new();
    if let Some(latest) = latest {
        tags.insert("latest".into(), json!(latest.version));
    }
    for (tag, version) in inner.tags.get(name).into_iter().flatten() {
        tags.insert(tag.clone(), json!(version));
    }
    Some(json!({
        "_id": name,
        "name": name,
        "description": format!("{name}, served by the fake registry"),
        "dist-tags": tags,
        "versions": version_map,
        "time": time,
        "readme": "# fake\n",
        "maintainers": [{"name": "tester", "email": "tester@example.com"}]
    }))
}

async fn handle(State(state): State<FakeState>, request: Request) -> Response {
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay as u64)).await;
    }
    let path = request.uri().path().replace("%2f", "/").replace("%2F", "/");
    let authorization =
        request.headers().get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).map(str::to_owned);
    {
        let mut inner = state.inner.lock().unwrap();
        inner.requests.entry(path.clone()).and_modify(|count| *count += 1).or_insert(1);
        inner.authorizations.push(authorization.clone());
        if let Some(required) = &inner.required_token
            && authorization.as_deref() != Some(format!("Bearer {required}").as_str())
        {
            return (StatusCode::UNAUTHORIZED, "{\"error\":\"authentication required\"}").into_response();
        }
    }
    if state.fail_next.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |count| count.checked_sub(1)).is_ok() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "injected failure").into_response();
    }
    if path.starts_with("/-/npm/v1/security/") {
        state.inner.lock().unwrap().audits += 1;
        return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "{}").into_response();
    }
    if let Some((package, file)) = path.trim_start_matches('/').split_once("/-/") {
        let inner = state.inner.lock().unwrap();
        if let Some(base) = &inner.tarball_redirect_base {
            return (StatusCode::FOUND, [(header::LOCATION, format!("{base}{path}"))]).into_response();
        }
        let key = format!("{package}/{file}");
        return match inner.tarballs.get(&key) {
            Some(bytes) => {
                let mut bytes = bytes.clone();
                if inner.corrupt.contains(&key) {
                    let last = bytes.len() - 1;
                    bytes[last] ^= 0xff;
                }
                (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
            }
            None => (StatusCode::NOT_FOUND, "{\"error\":\"Not found\"}").into_response(),
        };
    }
    let name = path.trim_start_matches('/');
    let Some(packument) = build_packument(&state.inner.lock().unwrap(), name, &state.base) else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "application/json")], "{\"error\":\"Not found\"}")
            .into_response();
    };
    let body = serde_json::to_vec(&packument).unwrap();
    let etag = format!("\"{}\"", hex::encode(&Sha512::digest(&body)[..8]));
    if request.headers().get(header::IF_NONE_MATCH).and_then(|value| value.to_str().ok()) == Some(etag.as_str()) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::ETAG, HeaderValue::from_str(&etag).unwrap());
    response
}
