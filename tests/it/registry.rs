//! The registry surface as clients see it.

use crate::setup;
use airlock_tests::TestAppOptions;
use serde_json::Value;

#[tokio::test]
async fn full_packument_rewrites_tarball_urls_and_keeps_everything_else() {
    let setup = setup(TestAppOptions::default()).await;
    let (status, body) = setup.app.get_json("/demo").await;
    assert_eq!(status, 200);
    let upstream = setup.upstream.packument("demo").unwrap();
    let dist = &body["versions"]["1.0.0"]["dist"];
    assert_eq!(dist["tarball"], format!("{}/demo/-/demo-1.0.0.tgz", setup.app.url()));
    assert_eq!(dist["integrity"], upstream["versions"]["1.0.0"]["dist"]["integrity"]);
    assert_eq!(dist["shasum"], upstream["versions"]["1.0.0"]["dist"]["shasum"]);
    assert_eq!(body["time"], upstream["time"]);
    assert_eq!(body["readme"], upstream["readme"]);
    assert_eq!(body["maintainers"], upstream["maintainers"]);
    assert_eq!(body["dist-tags"]["latest"], "1.1.0");
}

#[tokio::test]
async fn abbreviated_packument_is_built_even_though_upstream_ignores_accept() {
    let setup = setup(TestAppOptions::default()).await;
    let response = setup
        .app
        .get_with("/demo", &[("accept", "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*")])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/vnd.npm.install-v1+json");
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["name", "modified", "dist-tags", "versions", "time"]);
    let version = body["versions"]["1.0.0"].as_object().unwrap();
    assert!(version.contains_key("dist"));
    assert!(!version.contains_key("description"));
    assert!(!version.contains_key("_id"));
}

#[tokio::test]
async fn scoped_packages_answer_in_all_three_forms() {
    let setup = setup(TestAppOptions::default()).await;
    let mut bodies = Vec::new();
    for path in ["/@scope/pkg", "/@scope%2fpkg", "/@scope%2Fpkg"] {
        let (status, body) = setup.app.get_json(path).await;
        assert_eq!(status, 200, "{path}");
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[1], bodies[2]);
    let tarball_url = bodies[0]["versions"]["1.0.0"]["dist"]["tarball"].as_str().unwrap().to_owned();
    assert_eq!(tarball_url, format!("{}/@scope/pkg/-/pkg-1.0.0.tgz", setup.app.url()));
    let tarball = setup.app.client.get(&tarball_url).send().await.unwrap();
    assert_eq!(tarball.status(), 200);
    let bytes = tarball.bytes().await.unwrap();
    assert_eq!(
        airlock_tests::integrity_of(&bytes),
        bodies[0]["versions"]["1.0.0"]["dist"]["integrity"].as_str().unwrap()
    );
    // pnpm asks for tarballs with the encoded form too.
    let encoded = setup.app.get("/@scope%2fpkg/-/pkg-1.0.0.tgz").await;
    assert_eq!(encoded.status(), 200);
}

#[tokio::test]
async fn version_manifests_and_dist_tags() {
    let setup = setup(TestAppOptions::default()).await;
    let (status, body) = setup.app.get_json("/demo/1.0.0").await;
    assert_eq!(status, 200);
    assert_eq!(body["version"], "1.0.0");
    assert!(body["dist"]["tarball"].as_str().unwrap().starts_with(&setup.app.url()));
    let (status, body) = setup.app.get_json("/demo/latest").await;
    assert_eq!(status, 200);
    assert_eq!(body["version"], "1.1.0");
    let (status, body) = setup.app.get_json("/demo/9.9.9").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "version not found: demo@9.9.9");
    let (status, body) = setup.app.get_json("/-/package/demo/dist-tags").await;
    assert_eq!((status.as_u16(), body), (200, serde_json::json!({"latest": "1.1.0"})));
    let (status, body) = setup.app.get_json("/-/package/@scope%2fpkg/dist-tags").await;
    assert_eq!((status.as_u16(), body), (200, serde_json::json!({"latest": "1.0.0"})));
}

#[tokio::test]
async fn etags_give_304_for_packuments_and_tarballs() {
    let setup = setup(TestAppOptions::default()).await;
    for path in ["/demo", "/demo/-/demo-1.0.0.tgz"] {
        let first = setup.app.get(path).await;
        assert_eq!(first.status(), 200);
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        let again = setup.app.get_with(path, &[("if-none-match", &etag)]).await;
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
        let other = setup.app.get_with(path, &[("if-none-match", "\"something-else\"")]).await;
        assert_eq!(other.status(), 200);
    }
}

#[tokio::test]
async fn packuments_are_served_gzip_and_brotli() {
    use std::io::Read as _;
    let setup = setup(TestAppOptions::default()).await;
    let identity = setup.app.get("/demo").await.bytes().await.unwrap();
    let gzip = setup.app.get_with("/demo", &[("accept-encoding", "gzip")]).await;
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    assert!(gzip.headers()["vary"].to_str().unwrap().contains("Accept-Encoding"));
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&gzip.bytes().await.unwrap()[..]).read_to_end(&mut decoded).unwrap();
    assert_eq!(decoded, identity);
    let brotli = setup.app.get_with("/demo", &[("accept-encoding", "gzip, deflate, br")]).await;
    assert_eq!(brotli.headers()["content-encoding"], "br");
    assert!(brotli.bytes().await.unwrap().len() < identity.len());
}

#[tokio::test]
async fn bad_names_get_400_with_an_npm_error_body() {
    let setup = setup(TestAppOptions::default()).await;
    for (path, expected) in [
        (
            "/..%2f..%2fetc%2fpasswd",
            "invalid package name \"..%2f..%2fetc%2fpasswd\": a name cannot start with a period or an underscore",
        ),
        ("/%00evil", "invalid package name \"%00evil\": the character '%' is not allowed"),
        ("/@scope", "invalid package name \"@scope\": a scoped name must look like @scope/name"),
        ("/demo/-/..%2f..%2fsecret.tgz", "invalid tarball file name \"..%2f..%2fsecret.tgz\""),
    ] {
        let (status, body) = setup.app.get_json(path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(body["error"], expected, "{path}");
    }
    let long = format!("/{}", "a".repeat(300));
    assert_eq!(setup.app.get(&long).await.status(), 400);
    // Nothing reached the upstream for any of them.
    assert_eq!(setup.upstream.requests("/.."), 0);
}

#[tokio::test]
async fn ping_whoami_and_audit_forwarding() {
    let setup = setup(TestAppOptions::default()).await;
    assert_eq!(setup.app.get_json("/-/ping").await, (reqwest::StatusCode::OK, serde_json::json!({})));
    assert_eq!(
        setup.app.get_json("/-/whoami").await,
        (reqwest::StatusCode::OK, serde_json::json!({"username": "anonymous"}))
    );
    let response = setup
        .app
        .client
        .post(format!("{}/-/npm/v1/security/advisories/bulk", setup.app.url()))
        .header("content-type", "application/json")
        .body(r#"{"demo":["1.0.0"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(setup.upstream.audits(), 1);
}

#[tokio::test]
async fn unknown_packages_are_404() {
    let setup = setup(TestAppOptions::default()).await;
    let (status, body) = setup.app.get_json("/does-not-exist").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "package does-not-exist not found upstream");
    let (status, _) = setup.app.get_json("/demo/-/demo-7.0.0.tgz").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn health_readiness_metrics_and_request_ids() {
    let setup = setup(TestAppOptions::default()).await;
    assert_eq!(setup.app.get_json("/-/airlock/health").await.0, 200);
    assert_eq!(
        setup.app.get_json("/-/airlock/ready").await,
        (reqwest::StatusCode::OK, serde_json::json!({"status": "ready"}))
    );
    assert_eq!(setup.app.get("/demo").await.status(), 200);
    assert_eq!(setup.app.get("/demo").await.status(), 200);
    assert_eq!(setup.app.get("/demo/-/demo-1.0.0.tgz").await.status(), 200);
    setup.app.wait_for_decision("demo", "1.1.0").await;
    let response = setup.app.get_with("/-/airlock/metrics", &[("x-request-id", "trace-me-42")]).await;
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    assert!(text.contains("airlock_http_requests_total{route=\"packument\",status=\"200\"} 2\n"), "{text}");
    assert!(text.contains("airlock_http_requests_total{route=\"tarball\",status=\"200\"} 1\n"), "{text}");
    assert!(text.contains("airlock_upstream_requests_total{kind=\"packument\",outcome=\"ok\"} 1\n"), "{text}");
    assert!(text.contains("airlock_cache_requests_total{cache=\"packument\",result=\"hit\"}"), "{text}");
    assert!(text.contains("airlock_versions{state=\"released\"} 2\n"), "{text}");
    assert!(text.contains("airlock_checks_total{state=\"released\"} 2\n"), "{text}");
    assert!(text.contains("airlock_check_queue_depth 0\n"), "{text}");
    // A generated id when the client sends none (or an unusable one).
    let generated = setup.app.get_with("/-/ping", &[("x-request-id", "has spaces")]).await;
    assert_ne!(generated.headers()["x-request-id"], "has spaces");
}

#[tokio::test]
async fn scoped_packages_come_from_their_own_upstream_with_its_credentials() {
    use airlock_tests::{FakeRegistry, PackageVersion, TestApp, long_ago};
    let public = FakeRegistry::start().await;
    public.publish(PackageVersion::new("demo", "1.0.0", long_ago()));
    // A decoy: the public registry must never be asked for the internal scope.
    public.publish(PackageVersion::new("@acme/tool", "6.6.6", long_ago()));
    let internal = FakeRegistry::start().await;
    internal.publish(PackageVersion::new("@acme/tool", "1.0.0", long_ago()));
    internal.require_token("acme-secret");
    let data_dir = tempfile::tempdir().unwrap();
    let options = TestAppOptions {
        extra_toml: format!(
            "[[upstream.scopes]]\nscope = \"@acme\"\nurl = \"{}\"\ntoken = \"acme-secret\"\n",
            internal.url()
        ),
        ..TestAppOptions::default()
    };
    let app = TestApp::spawn(&public.url(), data_dir.path(), options).await;

    let (status, body) = app.get_json("/@acme/tool").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dist-tags"]["latest"], "1.0.0");
    assert_eq!(body["versions"]["1.0.0"]["dist"]["tarball"], format!("{}/@acme/tool/-/tool-1.0.0.tgz", app.url()));
    assert_eq!(app.get("/@acme/tool/-/tool-1.0.0.tgz").await.status(), 200);
    assert_eq!(app.get_json("/demo").await.0, 200);

    assert_eq!(public.requests("/@acme/tool"), 0, "the internal scope never leaks to the public upstream");
    assert_eq!(internal.requests("/demo"), 0);
    assert!(internal.authorizations().iter().all(|header| header.as_deref() == Some("Bearer acme-secret")));
    assert!(
        public.authorizations().iter().all(Option::is_none),
        "the internal token never goes to the public upstream"
    );
}
