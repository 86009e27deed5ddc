//! Retroactive quarantine by the known-malware feed (issue 13): a version the feed lists
//! stops being served at once, released or not, is held with the advisory as its reason
//! and audited; an admin can overrule the listing; a bad feed keeps the previous one.

use std::path::Path;
use std::time::Duration;

use airlock_tests::{FakeRegistry, PackageVersion, TestApp, TestAppOptions, long_ago};

fn advisory(id: &str, package: &str, version: &str) -> String {
    serde_json::json!({
        "id": id,
        "summary": "steals npm tokens",
        "affected": [{"package": {"ecosystem": "npm", "name": package}, "versions": [version]}]
    })
    .to_string()
}

fn options(feed: &Path) -> TestAppOptions {
    TestAppOptions {
        extra_toml: format!("[feeds]\ndirectory = {:?}\n", feed.display().to_string()),
        ..TestAppOptions::default()
    }
}

async fn tarball_status(app: &TestApp, version: &str) -> u16 {
    app.get(&format!("/quiet-lib/-/quiet-lib-{version}.tgz")).await.status().as_u16()
}

async fn listed_versions(app: &TestApp) -> Vec<String> {
    let (_, packument) = app.get_json("/quiet-lib").await;
    packument["versions"].as_object().map(|versions| versions.keys().cloned().collect()).unwrap_or_default()
}

#[tokio::test]
async fn a_version_the_feed_lists_later_stops_being_served_and_is_held() {
    let upstream = FakeRegistry::start().await;
    upstream.publish(PackageVersion::new("quiet-lib", "1.0.0", long_ago()));
    upstream.publish(PackageVersion::new("quiet-lib", "1.0.1", long_ago()));
    let data_dir = tempfile::tempdir().unwrap();
    let feed = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options(feed.path())).await;

    // Released and served before the feed knows anything.
    assert_eq!(tarball_status(&app, "1.0.0").await, 200);
    assert_eq!(tarball_status(&app, "1.0.1").await, 200);
    assert_eq!(app.wait_for_decision("quiet-lib", "1.0.0").await["state"], "released");
    let (status, _) = app.get_json("/-/airlock/attestations/quiet-lib@1.0.0").await;
    assert_eq!(status, 200, "a released version has a release record");

    // The feed learns of 1.0.0; an admin asks for the refresh instead of waiting an hour.
    std::fs::write(feed.path().join("MAL-2026-1.json"), advisory("MAL-2026-1", "quiet-lib", "1.0.0")).unwrap();
    let (status, refresh) = app.admin_post("/-/airlock/api/feeds/refresh", None).await;
    assert_eq!(status, 200, "{refresh:#}");
    assert_eq!(refresh["held"], 1, "{refresh:#}");
    assert_eq!(tarball_status(&app, "1.0.0").await, 403);
    assert_eq!(listed_versions(&app).await, ["1.0.1"]);
    assert_eq!(tarball_status(&app, "1.0.1").await, 200, "other versions are untouched");
    let (_, detail) = app.admin_get("/-/airlock/api/packages/quiet-lib/versions/1.0.0").await;
    assert_eq!(detail["state"], "held", "{detail:#}");
    assert_eq!(detail["decided_by"], "feed", "{detail:#}");
    assert!(detail["reason"].as_str().unwrap().contains("MAL-2026-1"), "{detail:#}");
    let (_, audit) = app.admin_get("/-/airlock/api/audit").await;
    assert!(audit.to_string().contains("known-malware"), "{audit:#}");
    let (status, _) = app.get_json("/-/airlock/attestations/quiet-lib@1.0.0").await;
    assert_ne!(status, 200, "the release record is withdrawn with the release");

    // A refresh with nothing new holds nothing.
    let (_, refresh) = app.admin_post("/-/airlock/api/feeds/refresh", None).await;
    assert_eq!(refresh["held"], 0, "{refresh:#}");

    // An admin who overrules the listing is not overruled by the next refresh.
    let (status, _) = app
        .admin_post("/-/airlock/api/packages/quiet-lib/versions/1.0.0/approve", Some("false positive: our fork"))
        .await;
    assert_eq!(status, 200);
    let (_, refresh) = app.admin_post("/-/airlock/api/feeds/refresh", None).await;
    assert_eq!(refresh["held"], 0, "{refresh:#}");
    assert_eq!(tarball_status(&app, "1.0.0").await, 200);

    // A broken feed file is an error naming it, and the previous feed stays in force.
    std::fs::write(feed.path().join("broken.json"), "{ not json").unwrap();
    let (status, error) = app.admin_post("/-/airlock/api/feeds/refresh", None).await;
    assert_eq!(status, 400, "{error:#}");
    assert!(error["error"].as_str().unwrap().contains("broken.json"), "{error:#}");
    std::fs::remove_file(feed.path().join("broken.json")).unwrap();

    // At start, the feed in force is applied to what Airlock already has.
    std::fs::write(feed.path().join("MAL-2026-2.json"), advisory("MAL-2026-2", "quiet-lib", "1.0.1")).unwrap();
    app.stop().await;
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options(feed.path())).await;
    let mut state = serde_json::Value::Null;
    for _ in 0..100 {
        state = app.admin_get("/-/airlock/api/packages/quiet-lib/versions/1.0.1").await.1["state"].clone();
        if state == "held" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "held");
    assert_eq!(tarball_status(&app, "1.0.1").await, 403);
    assert_eq!(tarball_status(&app, "1.0.0").await, 200, "the admin's approval still stands");
}
