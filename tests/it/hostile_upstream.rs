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
