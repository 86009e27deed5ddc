//! The check queue cannot crash-loop: attempts are counted before each check starts, a
//! version whose checks keep dying is held instead of retried, and admins can list and
//! clear entries. See issue 10.

use std::time::Duration;

use airlock_server::npm::PackageName;
use airlock_server::store::{Claim, LeaseRequest, MetadataLocation, Store};
use airlock_tests::{ADMIN_TOKEN, FakeRegistry, PackageVersion, TestApp, TestAppOptions, long_ago};

/// Leaves `slow@1.0.0` in the queue of a stopped server, its check cut off mid-download.
async fn stopped_mid_check(upstream: &FakeRegistry, data_dir: &std::path::Path) -> airlock_server::ManualClock {
    upstream.publish(PackageVersion::new("slow", "1.0.0", long_ago()));
    upstream.publish(PackageVersion::new("demo", "1.0.0", long_ago()));
    let app = TestApp::spawn(&upstream.url(), data_dir, TestAppOptions::default()).await;
    // The packument arrives; the tarball download of the eager check hangs.
    assert_eq!(app.get("/slow").await.status(), 200);
    upstream.delay(Duration::from_secs(3));
    let (_, detail) = app.admin_get("/-/airlock/api/packages/slow/versions/1.0.0").await;
    assert_eq!(detail["state"], "checking");
    let clock = app.stop().await;
    upstream.delay(Duration::ZERO);
    clock
}

/// The entry leaves the queue right after the decision is stored.
async fn assert_queue_empties(app: &TestApp) {
    let mut queue = serde_json::Value::Null;
    for _ in 0..40 {
        queue = app.admin_get("/-/airlock/api/queue").await.1;
        if queue["total"] == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the queue did not empty: {queue:#}");
}

#[tokio::test]
async fn a_version_whose_checks_died_max_attempts_times_is_held_not_retried() {
    let upstream = FakeRegistry::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let clock = stopped_mid_check(&upstream, data_dir.path()).await;
    // As if the process had died during the check until the attempts ran out: the
    // claims are what a dying server leaves behind.
    {
        let store = Store::open(MetadataLocation::Sled(&data_dir.path().join("metadata"))).await.unwrap();
        let name = PackageName::parse("slow").unwrap();
        let mut now = chrono::Utc::now();
        while store.queue_entry(&name, "1.0.0").await.unwrap().expect("still queued").attempts < 2 {
            // Each claim by another process that died, after the last one's lease expired.
            let owner = format!("dead-{}", now.timestamp_micros());
            let request = LeaseRequest { owner: &owner, now, duration: chrono::Duration::minutes(1) };
            assert!(matches!(store.claim(&name, "1.0.0", &request).await.unwrap(), Claim::Granted(_)));
            now += chrono::Duration::minutes(2);
        }
    }
    let tarball_requests_before = upstream.requests("/slow/-/slow-1.0.0.tgz");

    let app = TestApp::spawn_with_clock(&upstream.url(), data_dir.path(), TestAppOptions::default(), clock).await;
    let detail = app.wait_for_decision("slow", "1.0.0").await;
    assert_eq!(detail["state"], "held", "{detail:#}");
    let findings = detail["checks"]["report"]["findings"].as_array().unwrap();
    assert_eq!(findings[0]["rule"], "check-failed-repeatedly", "{findings:#?}");
    assert!(findings[0]["message"].as_str().unwrap().contains("checks.max_attempts = 2"), "{findings:#?}");
    assert_eq!(upstream.requests("/slow/-/slow-1.0.0.tgz"), tarball_requests_before, "not checked again");
    assert_queue_empties(&app).await;
    // The restarted server serves everything else normally.
    assert_eq!(app.get("/demo").await.status(), 200);
    assert_eq!(app.get("/demo/-/demo-1.0.0.tgz").await.status(), 200);
    assert_eq!(app.get("/slow/-/slow-1.0.0.tgz").await.status(), 403);
}

#[tokio::test]
async fn a_deny_rule_rejects_a_queued_version_without_checking_it() {
    let upstream = FakeRegistry::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let clock = stopped_mid_check(&upstream, data_dir.path()).await;
    let tarball_requests_before = upstream.requests("/slow/-/slow-1.0.0.tgz");
    let options = TestAppOptions {
        extra_toml: "[[quarantine.deny]]\npackage = \"slow\"\nreason = \"it breaks the checks\"\n".into(),
        ..TestAppOptions::default()
    };
    let app = TestApp::spawn_with_clock(&upstream.url(), data_dir.path(), options, clock).await;
    let detail = app.wait_for_decision("slow", "1.0.0").await;
    assert_eq!(detail["state"], "rejected", "{detail:#}");
    assert_eq!(upstream.requests("/slow/-/slow-1.0.0.tgz"), tarball_requests_before);
    assert_queue_empties(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_and_clear_queue_entries_from_the_command_line() {
    let upstream = FakeRegistry::start().await;
    upstream.publish(PackageVersion::new("slow", "1.0.0", long_ago()));
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), TestAppOptions::default()).await;
    // The packument arrives; the tarball download of the eager check hangs.
    assert_eq!(app.get("/slow").await.status(), 200);
    upstream.delay(Duration::from_secs(3));
    let airlock = |arguments: &[&str]| {
        let output = std::process::Command::new(airlock_tests::app::worker_executable())
            .args(["admin", "--registry", &app.url()])
            .args(arguments)
            .env("AIRLOCK_TOKEN", ADMIN_TOKEN)
            .output()
            .expect("running airlock admin");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let listed = tokio::task::block_in_place(|| airlock(&["queue", "list"]));
    assert!(listed.contains("slow") && listed.contains("1/2*"), "{listed}");
    let cleared = tokio::task::block_in_place(|| airlock(&["queue", "clear", "slow@1.0.0", "-c", "stuck for good"]));
    assert!(cleared.contains("cleared slow@1.0.0"), "{cleared}");
    let (_, detail) = app.admin_get("/-/airlock/api/packages/slow/versions/1.0.0").await;
    assert_eq!(detail["state"], "held", "never released by clearing: {detail:#}");
    // The check that was running ends, and the admin's hold stands.
    upstream.delay(Duration::ZERO);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, detail) = app.admin_get("/-/airlock/api/packages/slow/versions/1.0.0").await;
    assert_eq!(detail["state"], "held", "{detail:#}");
    let listed = tokio::task::block_in_place(|| airlock(&["queue", "list"]));
    assert!(listed.contains("0 entries"), "{listed}");

    // The rest of `airlock admin` reads as a terminal tool should.
    let listed = tokio::task::block_in_place(|| airlock(&["list", "--limit", "1"]));
    assert!(listed.ends_with("\n1 version\n"), "{listed}");
    let approved = tokio::task::block_in_place(|| airlock(&["approve", "slow", "1.0.0", "-c", "cleared by mistake"]));
    assert_eq!(approved.lines().count(), 1, "{approved}");
    assert!(approved.starts_with("slow@1.0.0: released"), "{approved}");
    // `airlock admin list | head`: a reader that stops early is not an error.
    let mut child = std::process::Command::new(airlock_tests::app::worker_executable())
        .args(["admin", "--registry", &app.url(), "list"])
        .env("AIRLOCK_TOKEN", ADMIN_TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}
