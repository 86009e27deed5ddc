//! An upstream that lies: it changes a rejected version's bytes, lists hostile version
//! strings, lets two versions claim one tarball, and is asked again and again for a
//! name it does not have. See issue 11.

use std::time::Duration;

use airlock_tests::{PackageVersion, TestAppOptions, long_ago};
use serde_json::Value;

use crate::setup;

/// Longer than the default `upstream.packument_max_age` (5m): the next request
/// revalidates with the upstream.
const PAST_MAX_AGE: Duration = Duration::from_secs(6 * 60);

// See: issue 11, item 3.
#[tokio::test]
async fn a_rejected_version_stays_rejected_when_the_upstream_changes_its_integrity() {
    let setup = setup(TestAppOptions::default()).await;
    let app = &setup.app;
    let detail_path = "/-/airlock/api/packages/demo/versions/1.0.0";
    assert_eq!(app.get("/demo").await.status(), 200);
    let (status, rejected) =
        app.admin_post(&format!("{detail_path}/reject"), Some("typosquat of a popular package")).await;
    assert_eq!((status.as_u16(), rejected["state"].as_str()), (200, Some("rejected")));
    let recorded_integrity = rejected["integrity"].as_str().unwrap().to_owned();

    // The upstream republishes 1.0.0 with other bytes.
    setup.upstream.publish(PackageVersion::new("demo", "1.0.0", long_ago()).with_file("index.js", b"evil();\n"));
    let republished = setup.upstream.packument("demo").unwrap()["versions"]["1.0.0"]["dist"]["integrity"].clone();
    assert_ne!(republished.as_str(), Some(recorded_integrity.as_str()));
    app.clock.advance(PAST_MAX_AGE);
    assert_eq!(app.get("/demo").await.status(), 200);
    // Asked again: the same change is not logged twice.
    app.clock.advance(PAST_MAX_AGE);
    assert_eq!(app.get("/demo").await.status(), 200);
    assert_eq!(setup.upstream.requests("/demo"), 3);

    let (_, detail) = app.admin_get(detail_path).await;
    assert_eq!(detail["state"], "rejected", "{detail:#}");
    assert_eq!(detail["decided_by"], "admin:tester");
    assert_eq!(detail["reason"], "typosquat of a popular package");
    assert_eq!(detail["integrity"], recorded_integrity.as_str());
    let history: Vec<(String, String, Value)> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            (
                event["actor"].as_str().unwrap().to_owned(),
                event["action"].as_str().unwrap().to_owned(),
                event["to"].clone(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("admin:tester".to_owned(), "reject".to_owned(), Value::from("rejected")),
            ("pipeline".to_owned(), "integrity-changed".to_owned(), Value::Null),
        ]
    );
    let change = detail["history"][1]["comment"].as_str().unwrap();
    assert!(change.contains(&recorded_integrity) && change.contains(republished.as_str().unwrap()), "{change}");
    assert_eq!(app.get("/demo/-/demo-1.0.0.tgz").await.status(), 403);
    assert!(app.get_json("/demo").await.1["versions"].get("1.0.0").is_none());
}

// See: issue 11, item 8.
#[tokio::test]
async fn an_unknown_name_is_asked_upstream_once_per_not_found_ttl() {
    let setup =
        setup(TestAppOptions { extra_toml: "[cache]\nnot_found_ttl = \"30s\"\n".into(), ..Default::default() }).await;
    let app = &setup.app;
    for _ in 0..50 {
        let (status, body) = app.get_json("/no-such-package").await;
        assert_eq!(
            (status.as_u16(), body["error"].as_str()),
            (404, Some("package no-such-package not found upstream"))
        );
    }
    // Concurrent requests are answered from the remembered 404 as well.
    let concurrent = futures_util::future::join_all((0..50).map(|_| app.get("/no-such-package"))).await;
    assert!(concurrent.iter().all(|response| response.status() == 404));
    assert_eq!(app.get("/no-such-package/-/no-such-package-1.0.0.tgz").await.status(), 404);
    assert_eq!(setup.upstream.requests("/no-such-package"), 1);

    // Once the period is over the upstream is asked again, and a name published in the
    // meantime is found.
    setup.upstream.publish(PackageVersion::new("no-such-package", "1.0.0", long_ago()));
    app.clock.advance(Duration::from_secs(29));
    assert_eq!(app.get("/no-such-package").await.status(), 404);
    app.clock.advance(Duration::from_secs(2));
    assert_eq!(app.get("/no-such-package").await.status(), 200);
    assert_eq!(setup.upstream.requests("/no-such-package"), 2);
}

/// Version strings npm's semver rules refuse, as a hostile upstream lists them.
const HOSTILE_VERSIONS: [&str; 5] =
    [" 1.0.0 ", "1.0.0\u{0}x", "<script>alert(1)</script>", "\u{ff11}.\u{ff10}.\u{ff10}", "1.0.0/../../x"];

/// A manifest for `pkg` whose `dist` declares `pkg-1.0.0.tgz` with `integrity`.
fn manifest_declaring_pkg_1_0_0(upstream_url: &str, version: &str, integrity: &str) -> Value {
    serde_json::json!({
        "name": "pkg",
        "version": version,
        "dist": {"tarball": format!("{upstream_url}/pkg/-/pkg-1.0.0.tgz"), "integrity": integrity},
    })
}

// See: issue 11, item 4.
#[tokio::test]
async fn hostile_versions_and_a_stolen_tarball_name_never_reach_clients_or_the_released_version() {
    let setup = setup(TestAppOptions { cooling_period: "72h", ..Default::default() }).await;
    let (app, upstream) = (&setup.app, &setup.upstream);
    let tarball_1_0_0 = upstream.publish(PackageVersion::new("pkg", "1.0.0", long_ago()));
    let integrity_1_0_0 = airlock_tests::integrity_of(&tarball_1_0_0);
    // Each hostile version claims 1.0.0's tarball and bytes, and the upstream tags one.
    for version in HOSTILE_VERSIONS {
        let manifest = manifest_declaring_pkg_1_0_0(&upstream.url(), version, &integrity_1_0_0);
        upstream.publish_raw_version("pkg", version, manifest, long_ago(), None);
    }
    upstream.tag("pkg", "next", "1.0.0\u{0}x");

    let (status, packument) = app.get_json("/pkg").await;
    assert_eq!(status, 200);
    assert_eq!(packument["versions"].as_object().unwrap().keys().collect::<Vec<_>>(), ["1.0.0"]);
    assert_eq!(packument["dist-tags"], serde_json::json!({"latest": "1.0.0"}));
    let tarball = app.get("/pkg/-/pkg-1.0.0.tgz").await;
    assert_eq!(tarball.status(), 200);
    assert_eq!(tarball.bytes().await.unwrap(), tarball_1_0_0);
    assert_eq!(app.wait_for_decision("pkg", "1.0.0").await["state"], "released");

    // A young 2.0.0 declares 1.0.0's file name with other bytes.
    let young = PackageVersion::new("pkg", "2.0.0", chrono::Utc::now()).with_file("index.js", b"steal();\n");
    let manifest_2_0_0 =
        manifest_declaring_pkg_1_0_0(&upstream.url(), "2.0.0", &airlock_tests::integrity_of(&young.tarball()));
    upstream.publish_raw_version("pkg", "2.0.0", manifest_2_0_0, chrono::Utc::now(), None);
    app.clock.advance(PAST_MAX_AGE);
    for accept in ["application/json", "application/vnd.npm.install-v1+json"] {
        let response = app.get_with("/pkg", &[("accept", accept)]).await;
        assert_eq!(response.status(), 200);
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(body["versions"].as_object().unwrap().keys().collect::<Vec<_>>(), ["1.0.0"], "{accept}");
        assert!(
            body["time"]
                .as_object()
                .unwrap()
                .keys()
                .all(|key| ["created", "modified", "1.0.0"].contains(&key.as_str()))
        );
    }
    assert_eq!(upstream.requests("/pkg"), 2, "the second request revalidated");
    assert_eq!(app.get("/pkg/2.0.0").await.status(), 404);
    let tarball = app.get("/pkg/-/pkg-1.0.0.tgz").await;
    assert_eq!(tarball.status(), 200);
    assert_eq!(tarball.bytes().await.unwrap(), tarball_1_0_0);

    // Airlock recorded, checked and logged 1.0.0 only.
    let (_, package) = app.admin_get("/-/airlock/api/packages/pkg").await;
    let recorded: Vec<&str> =
        package["versions"].as_array().unwrap().iter().map(|version| version["version"].as_str().unwrap()).collect();
    assert_eq!(recorded, ["1.0.0"]);
    let (_, detail) = app.admin_get("/-/airlock/api/packages/pkg/versions/1.0.0").await;
    let history = detail["history"].as_array().unwrap();
    assert!(!history.is_empty());
    assert!(history.iter().all(|event| event["version"] == "1.0.0"), "{history:#?}");
    let (_, audit) = app.admin_get("/-/airlock/api/audit").await;
    let package_events: Vec<&Value> =
        audit["events"].as_array().unwrap().iter().filter(|event| event["package"] == "pkg").collect();
    assert_eq!(package_events.len(), history.len(), "{package_events:#?}");
    let (_, queue) = app.admin_get("/-/airlock/api/queue").await;
    assert!(queue["entries"].as_array().unwrap().iter().all(|entry| entry["package"] != "pkg"), "{queue:#?}");
    assert_eq!(upstream.requests("/pkg/-/pkg-1.0.0.tgz"), 1, "downloaded once, for 1.0.0");
}
