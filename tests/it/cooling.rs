//! The cooling period: young versions are neither listed nor served.

use std::time::Duration;

use crate::setup;
use airlock_tests::{PackageVersion, TestAppOptions, long_ago};

fn cooling_72h() -> TestAppOptions {
    TestAppOptions { cooling_period: "72h", ..TestAppOptions::default() }
}

#[tokio::test]
async fn young_versions_are_hidden_until_the_cooling_period_ends() {
    let setup = setup(cooling_72h()).await;
    let now = setup.app.clock.clone();
    setup.upstream.publish(PackageVersion::new("demo", "2.0.0", chrono::Utc::now() - chrono::Duration::hours(1)));
    setup.upstream.tag("demo", "next", "2.0.0");

    let response = setup.app.get("/demo").await;
    let notice = response.headers()["npm-notice"].to_str().unwrap().to_owned();
    // The notice says when the version the developer may have asked for can be installed.
    assert!(notice.starts_with("[airlock] demo@2.0.0 is in quarantine: "), "{notice}");
    assert!(notice.contains("can be installed from 20"), "{notice}");
    assert!(!notice.contains("other version"), "{notice}");
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert!(body["versions"].get("2.0.0").is_none());
    assert!(body["time"].get("2.0.0").is_none());
    // `latest` and `next` pointed at 2.0.0; both move to the newest visible version.
    assert_eq!(body["dist-tags"], serde_json::json!({"latest": "1.1.0", "next": "1.1.0"}));

    let (status, error) = setup.app.get_json("/demo/-/demo-2.0.0.tgz").await;
    assert_eq!(status, 403);
    let message = error["error"].as_str().unwrap();
    assert!(
        message.starts_with(
            "demo@2.0.0 is in quarantine: it is younger than the cooling period and can be installed from 20"
        ),
        "{message}"
    );
    // The pipeline checks a young version in the background (downloading it once); it
    // stays unlisted and unserved while it cools.
    assert_eq!(setup.app.wait_for_decision("demo", "2.0.0").await["state"], "cooling");
    assert!(setup.upstream.requests("/demo/-/demo-2.0.0.tgz") <= 1);
    let (status, _) = setup.app.get_json("/demo/2.0.0").await;
    assert_eq!(status, 403);
    // pnpm, yarn berry and bun print the status line, not the body: it carries the reason.
    let status_line = raw_status_line(&setup.app, "/demo/-/demo-2.0.0.tgz").await;
    assert!(
        status_line.starts_with("HTTP/1.1 403 Forbidden: demo@2.0.0 is in quarantine: ")
            && status_line.contains("cooling period"),
        "{status_line}"
    );

    now.advance(Duration::from_secs(72 * 3600));
    let (status, body) = setup.app.get_json("/demo").await;
    assert_eq!(status, 200);
    assert_eq!(body["dist-tags"]["latest"], "2.0.0");
    assert_eq!(setup.app.get("/demo/-/demo-2.0.0.tgz").await.status(), 200);
}

#[tokio::test]
async fn a_version_that_appears_later_counts_from_first_sight_not_its_claimed_time() {
    let setup = setup(cooling_72h()).await;
    let (_, body) = setup.app.get_json("/demo").await;
    assert_eq!(body["dist-tags"]["latest"], "1.1.0");

    // The upstream now lists 1.2.0 and claims it was published a year ago.
    setup.upstream.publish(PackageVersion::new("demo", "1.2.0", long_ago() + chrono::Duration::days(2)));
    // Past the packument max age (5m), Airlock revalidates and sees 1.2.0 for the first time.
    setup.app.clock.advance(Duration::from_secs(6 * 60));
    let response = setup.app.get("/demo").await;
    assert!(response.headers().contains_key("npm-notice"));
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert!(body["versions"].get("1.2.0").is_none(), "a forged old time must not skip the cooling period");
    assert_eq!(setup.app.wait_for_decision("demo", "1.2.0").await["state"], "cooling");
    assert_eq!(setup.app.get("/demo/-/demo-1.2.0.tgz").await.status(), 403);

    setup.app.clock.advance(Duration::from_secs(72 * 3600));
    let (_, body) = setup.app.get_json("/demo").await;
    assert_eq!(body["dist-tags"]["latest"], "1.2.0");
}

#[tokio::test]
async fn forged_time_on_a_known_version_changes_nothing() {
    let setup = setup(cooling_72h()).await;
    assert_eq!(setup.app.get("/demo/-/demo-1.1.0.tgz").await.status(), 200);
    // The upstream rewrites 1.1.0's time to "just now": Airlock keeps its first record.
    setup.upstream.forge_time("demo", "1.1.0", &chrono::Utc::now().to_rfc3339());
    setup.app.clock.advance(Duration::from_secs(6 * 60));
    let (_, body) = setup.app.get_json("/demo").await;
    assert!(body["versions"].get("1.1.0").is_some());
}

#[tokio::test]
async fn zero_disables_the_cooling_period() {
    let setup = setup(TestAppOptions::default()).await;
    setup.upstream.publish(PackageVersion::new("demo", "2.0.0", chrono::Utc::now()));
    setup.app.get("/demo").await;
    // Without a cooling period, a new version is listed as soon as its checks passed.
    assert_eq!(setup.app.wait_for_decision("demo", "2.0.0").await["state"], "released");
    // The decision is stored a moment before the cached packument is dropped.
    let mut response = setup.app.get("/demo").await;
    for _ in 0..20 {
        if !response.headers().contains_key("npm-notice") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        response = setup.app.get("/demo").await;
    }
    assert!(!response.headers().contains_key("npm-notice"));
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["dist-tags"]["latest"], "2.0.0");
}

/// The first line of a raw HTTP/1.1 response, reason phrase included.
async fn raw_status_line(app: &airlock_tests::TestApp, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", app.address);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn every_refusal_links_a_status_page_the_developer_can_read_without_signing_in() {
    let setup =
        setup(TestAppOptions { extra_toml: "[admin]\ncontact = \"#npm-help on Slack\"\n".into(), ..cooling_72h() })
            .await;
    setup.upstream.publish(PackageVersion::new("demo", "2.0.0", chrono::Utc::now() - chrono::Duration::hours(1)));
    let (status, error) = setup.app.get_json("/demo/-/demo-2.0.0.tgz").await;
    assert_eq!(status, 403);
    let message = error["error"].as_str().unwrap();
    let status_url = format!("{}/-/airlock/status/demo/2.0.0", setup.app.url());
    assert!(message.ends_with(&format!("(details: {status_url})")), "{message}");

    // The page, as a browser gets it: no credentials.
    let page = reqwest::get(&status_url).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    assert!(html.contains("<h1>demo@2.0.0</h1>"), "{html}");
    assert!(html.contains(r#"<dd class="state">Cooling</dd>"#), "{html}");
    assert!(html.contains("if its checks pass (or sooner if an admin approves it)"), "{html}");
    assert!(html.contains("#npm-help on Slack"), "{html}");

    // The same as JSON, and an admin's rejection reads as final, with its comment.
    setup.app.wait_for_decision("demo", "2.0.0").await;
    let (status, _) =
        setup.app.admin_post("/-/airlock/api/packages/demo/versions/2.0.0/reject", Some("a typosquat's payload")).await;
    assert_eq!(status, 200);
    let response = setup.app.get_with("/-/airlock/status/demo/2.0.0", &[("accept", "application/json")]).await;
    assert_eq!(response.status(), 200);
    let json: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(json["state"], "Rejected");
    assert_eq!(json["installable"], "never: this version will not be served");
    assert!(json["reason"].as_str().unwrap().contains("a typosquat's payload"), "{json}");
    assert_eq!(json["findings"], serde_json::json!([]), "findings stay hidden unless configured");

    // Unknown versions and malformed paths are clear 404s.
    let (status, body) = setup.app.get_json("/-/airlock/status/demo/9.9.9").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "Airlock has not seen demo@9.9.9; check the name and the version");
    assert_eq!(setup.app.get_json("/-/airlock/status/demo").await.0, 404);
}
