//! Bad upstreams, concurrency and restarts.

use std::time::Duration;

use crate::{publish_basics, setup};
use airlock_tests::{FakeRegistry, TestApp, TestAppOptions};

/// Where the blob with this SRI sha512 would be stored.
fn blob_path(data_dir: &std::path::Path, integrity: &str) -> std::path::PathBuf {
    use base64::Engine as _;
    let digest = base64::engine::general_purpose::STANDARD.decode(integrity.trim_start_matches("sha512-")).unwrap();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    data_dir.join("blobs/sha512").join(&hex[..2]).join(hex)
}

fn temporary_files(data_dir: &std::path::Path) -> usize {
    std::fs::read_dir(data_dir.join("blobs/tmp")).map(|entries| entries.count()).unwrap_or(0)
}

#[tokio::test]
async fn a_tarball_that_does_not_match_its_integrity_is_never_stored_or_served() {
    let setup = setup(TestAppOptions::default()).await;
    setup.upstream.corrupt_tarball("demo", "demo-1.0.0.tgz");
    let integrity = setup.upstream.packument("demo").unwrap()["versions"]["1.0.0"]["dist"]["integrity"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        let (status, body) = setup.app.get_json("/demo/-/demo-1.0.0.tgz").await;
        assert_eq!(status, 502);
        let message = body["error"].as_str().unwrap();
        assert!(
            message.starts_with("the upstream tarball of demo@1.0.0 was refused and not stored: the tarball's bytes do not match its declared integrity sha512-"),
            "{message}"
        );
    }
    // Let the eager check of `latest` (1.1.0) finish its own download first.
    setup.app.wait_for_decision("demo", "1.1.0").await;
    assert!(!blob_path(setup.data_dir.path(), &integrity).exists(), "nothing may be stored");
    assert_eq!(temporary_files(setup.data_dir.path()), 0, "nothing may be left on disk");
    // Each attempt went upstream again: a bad download is not cached either.
    assert_eq!(setup.upstream.requests("/demo/-/demo-1.0.0.tgz"), 2);
    // Other versions are unaffected.
    assert_eq!(setup.app.get("/demo/-/demo-1.1.0.tgz").await.status(), 200);
}

#[tokio::test]
async fn cached_packuments_and_tarballs_are_served_when_the_upstream_is_down() {
    let mut setup = setup(TestAppOptions::default()).await;
    assert_eq!(setup.app.get("/demo/-/demo-1.0.0.tgz").await.status(), 200);
    setup.upstream.stop();
    // Past the max age, so Airlock tries to revalidate and fails.
    setup.app.clock.advance(Duration::from_secs(3600));
    let (status, body) = setup.app.get_json("/demo").await;
    assert_eq!(status, 200);
    assert_eq!(body["dist-tags"]["latest"], "1.1.0");
    assert_eq!(setup.app.get("/demo/-/demo-1.0.0.tgz").await.status(), 200);
    // What was never cached gets a clear 502.
    let (status, body) = setup.app.get_json("/never-seen").await;
    assert_eq!(status, 502);
    assert!(body["error"].as_str().unwrap().starts_with("the upstream registry failed: "), "{body}");
}

#[tokio::test]
async fn upstream_5xx_is_retried_and_then_stale_is_served() {
    let setup = setup(TestAppOptions::default()).await;
    // One failure is absorbed by the single retry.
    setup.upstream.fail_next(1);
    assert_eq!(setup.app.get("/demo").await.status(), 200);
    setup.app.clock.advance(Duration::from_secs(3600));
    setup.upstream.fail_next(100);
    assert_eq!(setup.app.get("/demo").await.status(), 200);
    let (status, body) = setup.app.get_json("/@scope/pkg").await;
    assert_eq!(status, 502);
    assert!(body["error"].as_str().unwrap().contains("answered HTTP 500"), "{body}");
}

#[tokio::test]
async fn a_hanging_upstream_times_out_and_stale_is_served() {
    let options = TestAppOptions { upstream_timeout: "300ms", ..TestAppOptions::default() };
    let setup = setup(options).await;
    assert_eq!(setup.app.get("/demo").await.status(), 200);
    setup.upstream.delay(Duration::from_secs(5));
    setup.app.clock.advance(Duration::from_secs(3600));
    let started = std::time::Instant::now();
    assert_eq!(setup.app.get("/demo").await.status(), 200);
    let (status, body) = setup.app.get_json("/@scope/pkg").await;
    assert_eq!(status, 504, "{body}");
    assert!(started.elapsed() < Duration::from_secs(4), "timeouts are bounded: {:?}", started.elapsed());
}

#[tokio::test]
async fn concurrent_identical_requests_share_one_upstream_fetch() {
    let setup = setup(TestAppOptions::default()).await;
    setup.upstream.delay(Duration::from_millis(300));
    let requests = (0..20).map(|_| setup.app.get("/demo"));
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(setup.upstream.requests("/demo"), 1);
    let requests = (0..20).map(|_| setup.app.get("/demo/-/demo-1.0.0.tgz"));
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(setup.upstream.requests("/demo/-/demo-1.0.0.tgz"), 1);
}

#[tokio::test]
async fn a_restart_keeps_packuments_tarballs_and_first_seen_times() {
    let mut upstream = FakeRegistry::start().await;
    publish_basics(&upstream);
    let data_dir = tempfile::tempdir().unwrap();
    let options = || TestAppOptions { cooling_period: "72h", ..TestAppOptions::default() };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options()).await;
    assert_eq!(app.get("/demo/-/demo-1.0.0.tgz").await.status(), 200);
    // A version seen during this run starts cooling now.
    upstream.publish(airlock_tests::PackageVersion::new("demo", "1.2.0", airlock_tests::long_ago()));
    app.clock.advance(Duration::from_secs(600));
    assert_eq!(app.get("/demo/-/demo-1.2.0.tgz").await.status(), 403);
    let clock = app.stop().await;

    upstream.stop();
    let app = TestApp::spawn_with_clock(&upstream.url(), data_dir.path(), options(), clock).await;
    let (status, body) = app.get_json("/demo").await;
    assert_eq!(status, 200);
    assert_eq!(body["dist-tags"]["latest"], "1.1.0");
    assert_eq!(app.get("/demo/-/demo-1.0.0.tgz").await.status(), 200);
    // Its first-seen time survived the restart: still cooling, then released.
    assert_eq!(app.get("/demo/-/demo-1.2.0.tgz").await.status(), 403);
    app.clock.advance(Duration::from_secs(72 * 3600));
    let (_, body) = app.get_json("/demo").await;
    assert_eq!(body["dist-tags"]["latest"], "1.2.0");
}

#[tokio::test]
async fn an_upstream_redirect_to_another_origin_is_refused_unless_that_host_is_allowed() {
    // Another server, standing in for an internal service a hostile upstream points at.
    let elsewhere = FakeRegistry::start().await;
    publish_basics(&elsewhere);

    let setup = setup(TestAppOptions::default()).await;
    setup.upstream.redirect_tarballs_to(&elsewhere.url());
    let (status, body) = setup.app.get_json("/demo/-/demo-1.0.0.tgz").await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("refused a redirect to http://127.0.0.1:"), "{message}");
    assert_eq!(elsewhere.requests("/demo/-/demo-1.0.0.tgz"), 0, "the redirect must not be followed");
    assert_eq!(setup.upstream.requests("/demo/-/demo-1.0.0.tgz"), 1, "a refused redirect is not retried");

    // A registry that really keeps its tarballs on another host is configured so.
    let allowed = elsewhere.url().trim_start_matches("http://").to_owned();
    let options =
        TestAppOptions { upstream_toml: format!("redirect_hosts = [\"{allowed}\"]"), ..TestAppOptions::default() };
    let setup = crate::setup(options).await;
    setup.upstream.redirect_tarballs_to(&elsewhere.url());
    assert_eq!(setup.app.get("/demo/-/demo-1.0.0.tgz").await.status(), 200);
    assert!(elsewhere.requests("/demo/-/demo-1.0.0.tgz") >= 1);
}

#[tokio::test]
async fn malformed_admin_api_input_gets_a_json_error_naming_it() {
    let setup = setup(TestAppOptions::default()).await;
    let app = &setup.app;
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.bearer_auth(airlock_tests::ADMIN_TOKEN).send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap())
            .unwrap_or_else(|error| panic!("not JSON ({error})"));
        assert_eq!(content_type, "application/json");
        (status, body["error"].as_str().unwrap().to_owned())
    };
    let (status, message) = send(app.client.get(format!("{}/-/airlock/api/versions?limit=abc", app.url()))).await;
    assert_eq!(status, 400);
    assert!(message.starts_with("invalid query \"limit=abc\": "), "{message}");

    let action = format!("{}/-/airlock/api/packages/demo/versions/1.0.0/reject", app.url());
    let (status, message) =
        send(app.client.post(&action).header("content-type", "application/json").body("{\"comment\": ")).await;
    assert_eq!(status, 400);
    assert!(message.starts_with("the request body is not the expected JSON: "), "{message}");

    let huge = format!("{{\"comment\": \"{}\"}}", "x".repeat(5 << 20));
    let (status, message) = send(app.client.post(&action).header("content-type", "application/json").body(huge)).await;
    assert_eq!(status, 413);
    assert_eq!(message, "the request body is larger than 65536 bytes");

    let long = format!("{{\"comment\": \"{}\"}}", "x".repeat(5000));
    let (status, message) = send(app.client.post(&action).header("content-type", "application/json").body(long)).await;
    assert_eq!(status, 400);
    assert_eq!(message, "the comment is longer than 4096 bytes");
}
