//! The quarantine end to end: the postmark-mcp scenario, admin decisions, the audit log,
//! signed release records, tokens, restarts in the middle of the pipeline.

use std::time::Duration;

use airlock_tests::forge::{FakeForge, GitRepository};
use airlock_tests::scenarios::{MAIL_PACKAGE, MailWorld, mail_version, malicious_mail_source};
use airlock_tests::{ADMIN_TOKEN, FakeRegistry, PackageVersion, TestApp, TestAppOptions, long_ago};
use serde_json::Value;

const PACKAGE: &str = MAIL_PACKAGE;

/// The hidden recipient. Not the real attacker's domain (which a known-indicator rule
/// would catch): the diff against the previous release must catch it.
const RECIPIENT: &str = "records@inbox-archive.net";

fn malicious_source() -> String {
    malicious_mail_source(RECIPIENT)
}

/// The scenario's moving parts, kept alive for the test's duration.
struct Scenario {
    _upstream: FakeRegistry,
    _forge: FakeForge,
    _repository: GitRepository,
    app: TestApp,
    _data_dir: tempfile::TempDir,
}

/// Fifteen clean versions published long ago, their GitHub repository (tags v1.0.1 to
/// v1.0.16, all clean) on a fake forge, Airlock in front, 1.0.15 checked and released;
/// then 1.0.16 appears upstream, with one line that is not in the repository.
async fn postmark_scenario() -> Scenario {
    postmark_scenario_with(String::new()).await
}

/// [`postmark_scenario`] with extra configuration.
async fn postmark_scenario_with(extra_toml: String) -> Scenario {
    let MailWorld { upstream, forge, repository } = MailWorld::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let options = TestAppOptions { forge_url: Some(forge.api_url()), extra_toml, ..TestAppOptions::default() };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    let (_, body) = app.get_json(&format!("/{PACKAGE}")).await;
    assert_eq!(body["dist-tags"]["latest"], "1.0.15");
    // The version `latest` points at is checked eagerly on first sight.
    let detail = app.wait_for_decision(PACKAGE, "1.0.15").await;
    assert_eq!(detail["state"], "released", "{detail:#}");
    // 1.0.15 is exactly its repository at tag v1.0.15.
    assert_eq!(detail["checks"]["source_match"]["status"], "compared", "{detail:#}");
    assert_eq!(app.get(&format!("/{PACKAGE}/-/{PACKAGE}-1.0.15.tgz")).await.status(), 200);

    upstream.publish(mail_version("1.0.16", malicious_source(), chrono::Utc::now()));
    // Past the packument max age: Airlock revalidates, sees 1.0.16, checks it at once.
    app.clock.advance(Duration::from_secs(6 * 60));
    let (_, body) = app.get_json(&format!("/{PACKAGE}")).await;
    assert!(body["versions"].get("1.0.16").is_none(), "never listed while undecided");
    Scenario { _upstream: upstream, _forge: forge, _repository: repository, app, _data_dir: data_dir }
}

fn finding_for<'a>(detail: &'a Value, needle: &str) -> Option<&'a Value> {
    detail["checks"]["report"]["findings"]
        .as_array()?
        .iter()
        .find(|finding| finding["excerpt"].as_str().is_some_and(|excerpt| excerpt.contains(needle)))
}

#[tokio::test]
async fn the_sixteenth_version_with_a_hidden_bcc_is_held_and_then_rejected() {
    let scenario = postmark_scenario().await;
    let app = &scenario.app;
    let detail = app.wait_for_decision(PACKAGE, "1.0.16").await;
    assert_eq!(detail["state"], "held", "{detail:#}");
    // The source match names the one line that is not in the repository at v1.0.16.
    let mismatch = detail["checks"]["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["rule"] == "source-mismatch")
        .unwrap_or_else(|| panic!("no source-mismatch finding: {detail:#}"));
    assert_eq!(mismatch["severity"], "high");
    assert_eq!(mismatch["location"]["file"], "index.js");
    assert_eq!(mismatch["location"]["line"], 14);
    let finding =
        finding_for(&detail, RECIPIENT).unwrap_or_else(|| panic!("no finding names the BCC line: {detail:#}"));
    assert!(matches!(finding["severity"].as_str(), Some("high" | "critical")), "{finding:#}");
    assert_eq!(finding["location"]["file"], "index.js");
    assert_eq!(finding["location"]["line"], 14);
    assert_eq!(detail["checks"]["previous_version"], "1.0.15");

    // Not listed, `latest` stays, the tarball is refused with the reason and where to look.
    let (_, body) = app.get_json(&format!("/{PACKAGE}")).await;
    assert!(body["versions"].get("1.0.16").is_none());
    assert_eq!(body["dist-tags"]["latest"], "1.0.15");
    let (status, error) = app.get_json(&format!("/{PACKAGE}/-/{PACKAGE}-1.0.16.tgz")).await;
    assert_eq!(status, 403);
    let message = error["error"].as_str().unwrap();
    assert!(message.starts_with("mail-mcp@1.0.16 is held in quarantine until an Airlock admin decides: "), "{message}");
    assert!(message.ends_with("/-/airlock/status/mail-mcp/1.0.16)"), "{message}");

    // The held queue shows it first.
    let (_, listing) = app.admin_get("/-/airlock/api/versions?state=held").await;
    assert_eq!(listing["versions"][0]["package"], PACKAGE);
    assert_eq!(listing["versions"][0]["version"], "1.0.16");

    // A rejection needs a comment, then sticks.
    let (status, _) = app.admin_post(&format!("/-/airlock/api/packages/{PACKAGE}/versions/1.0.16/reject"), None).await;
    assert_eq!(status, 400);
    let (status, detail) = app
        .admin_post(
            &format!("/-/airlock/api/packages/{PACKAGE}/versions/1.0.16/reject"),
            Some("exfiltrates every email via BCC"),
        )
        .await;
    assert_eq!(status, 200, "{detail:#}");
    assert_eq!(detail["state"], "rejected");
    assert_eq!(detail["decided_by"], "admin:tester");
    let (status, error) = app.get_json(&format!("/{PACKAGE}/-/{PACKAGE}-1.0.16.tgz")).await;
    assert_eq!(status, 403);
    assert!(
        error["error"].as_str().unwrap().starts_with(
            "mail-mcp@1.0.16 was rejected by admin:tester and cannot be installed: exfiltrates every email via BCC"
        ),
        "{error}"
    );
    assert!(detail["release_record"].is_null());

    // The audit log has the pipeline's hold and the admin's rejection, in order.
    let (_, audit) = app.admin_get(&format!("/-/airlock/api/audit?package={PACKAGE}")).await;
    let actions: Vec<(String, String, String)> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["version"] == "1.0.16")
        .map(|event| {
            (
                event["actor"].as_str().unwrap().to_owned(),
                event["action"].as_str().unwrap().to_owned(),
                event["to"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("pipeline".to_owned(), "held".to_owned(), "held".to_owned()),
            ("admin:tester".to_owned(), "reject".to_owned(), "rejected".to_owned())
        ]
    );
}

#[tokio::test]
async fn an_admin_approval_releases_the_held_version_with_a_signed_record() {
    let scenario = postmark_scenario().await;
    let app = &scenario.app;
    assert_eq!(app.wait_for_decision(PACKAGE, "1.0.16").await["state"], "held");
    let (status, detail) = app
        .admin_post(
            &format!("/-/airlock/api/packages/{PACKAGE}/versions/1.0.16/approve"),
            Some("reviewed: the BCC is ours"),
        )
        .await;
    assert_eq!(status, 200, "{detail:#}");
    assert_eq!(detail["state"], "released");

    let (_, body) = app.get_json(&format!("/{PACKAGE}")).await;
    assert_eq!(body["dist-tags"]["latest"], "1.0.16");
    let tarball = app.get(&format!("/{PACKAGE}/-/{PACKAGE}-1.0.16.tgz")).await;
    assert_eq!(tarball.status(), 200);
    let bytes = tarball.bytes().await.unwrap();

    // Airlock's registry signature is on the version, next to the upstream's (none here).
    let signatures = body["versions"]["1.0.16"]["dist"]["signatures"].as_array().unwrap();
    let (_, keys) = app.get_json("/-/npm/v1/keys").await;
    assert_eq!(signatures[0]["keyid"], keys["keys"][0]["keyid"]);

    // The release record verifies offline with the pinned key and covers these bytes.
    let (_, airlock_keys) = app.get_json("/-/airlock/keys").await;
    use base64::Engine as _;
    let public_key: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(airlock_keys["release_records"]["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let record = app.get(&format!("/-/airlock/attestations/{PACKAGE}@1.0.16")).await.bytes().await.unwrap();
    let statement = airlock_server::signing::verify_release_record(&record, &public_key).unwrap();
    use sha2::Digest as _;
    let digest: String = sha2::Sha512::digest(&bytes).iter().map(|byte| format!("{byte:02x}")).collect();
    assert_eq!(statement["subject"][0]["name"], "pkg:npm/mail-mcp@1.0.16");
    assert_eq!(statement["subject"][0]["digest"]["sha512"], digest);
    assert_eq!(statement["predicate"]["actor"], "admin:tester");
    assert_eq!(statement["predicate"]["reason"], "reviewed: the BCC is ours");

    let (_, audit) = app.admin_get("/-/airlock/api/audit?actor=tester").await;
    assert_eq!(audit["events"].as_array().unwrap().len(), 1);
    assert_eq!(audit["events"][0]["action"], "approve");
}

#[tokio::test]
async fn admin_api_tokens_missing_wrong_and_right() {
    let upstream = FakeRegistry::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), TestAppOptions::default()).await;
    let url = format!("{}/-/airlock/api/versions", app.url());
    let missing = app.client.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let wrong = app.client.get(&url).bearer_auth("not-the-token").send().await.unwrap();
    assert_eq!(wrong.status(), 403);
    let right = app.client.get(&url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(right.status(), 200);
    let action =
        app.client.post(format!("{}/-/airlock/api/packages/x/versions/1.0.0/approve", app.url())).send().await.unwrap();
    assert_eq!(action.status(), 401, "no action without a token");
}

#[tokio::test]
async fn a_version_seen_during_its_cooling_period_is_released_when_it_ends() {
    let upstream = FakeRegistry::start().await;
    upstream.publish(PackageVersion::new("cool", "1.0.0", long_ago()));
    upstream.publish(PackageVersion::new("cool", "1.1.0", chrono::Utc::now() - chrono::Duration::hours(1)));
    let data_dir = tempfile::tempdir().unwrap();
    let options = TestAppOptions { cooling_period: "24h", ..TestAppOptions::default() };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    let (_, body) = app.get_json("/cool").await;
    assert_eq!(body["dist-tags"]["latest"], "1.0.0");
    // Checked eagerly, in the background, while it cools.
    let detail = app.wait_for_decision("cool", "1.1.0").await;
    assert_eq!(detail["state"], "cooling", "{detail:#}");
    assert_eq!(app.get("/cool/-/cool-1.1.0.tgz").await.status(), 403);

    app.clock.advance(Duration::from_secs(24 * 3600));
    let (_, body) = app.get_json("/cool").await;
    assert_eq!(body["dist-tags"]["latest"], "1.1.0");
    assert_eq!(app.get("/cool/-/cool-1.1.0.tgz").await.status(), 200);
    let (_, detail) = app.admin_get("/-/airlock/api/packages/cool/versions/1.1.0").await;
    assert_eq!(detail["state"], "released");
    assert_eq!(detail["decided_by"], "pipeline");
    assert!(detail["release_record"].is_string());
}

#[tokio::test]
async fn deny_and_allow_rules() {
    let upstream = FakeRegistry::start().await;
    upstream.publish(PackageVersion::new("event-stream", "3.3.5", long_ago()));
    upstream.publish(PackageVersion::new("event-stream", "3.3.6", long_ago()));
    upstream.publish(PackageVersion::new("@acme/internal", "2.0.0", chrono::Utc::now()));
    let data_dir = tempfile::tempdir().unwrap();
    let options = TestAppOptions {
        cooling_period: "72h",
        extra_toml: "[[quarantine.deny]]\npackage = \"event-stream\"\nversions = \"3.3.6\"\nreason = \"flatmap-stream backdoor\"\n\
                     [[quarantine.allow]]\npackage = \"@acme/*\"\n"
            .into(),
        ..TestAppOptions::default()
    };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    let (_, body) = app.get_json("/event-stream").await;
    assert!(body["versions"].get("3.3.6").is_none());
    assert_eq!(body["dist-tags"]["latest"], "3.3.5");
    let (status, error) = app.get_json("/event-stream/-/event-stream-3.3.6.tgz").await;
    assert_eq!(status, 403);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("rejected by policy and cannot be installed: flatmap-stream backdoor")
    );
    assert_eq!(app.get("/event-stream/-/event-stream-3.3.5.tgz").await.status(), 200);

    // The allow rule skips the cooling period; the checks still run first.
    let (status, _) = app.get_json("/@acme/internal").await;
    assert_eq!(status, 200);
    let detail = app.wait_for_decision("@acme/internal", "2.0.0").await;
    assert_eq!(detail["state"], "released", "{detail:#}");
    assert!(detail["checks"]["report"].is_object());
    assert_eq!(app.get("/@acme/internal/-/internal-2.0.0.tgz").await.status(), 200);
}

#[tokio::test]
async fn checks_interrupted_by_a_shutdown_resume_after_the_restart() {
    let upstream = FakeRegistry::start().await;
    upstream.publish(PackageVersion::new("slow", "1.0.0", long_ago()));
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), TestAppOptions::default()).await;
    // The packument arrives; the tarball download of the eager check hangs.
    assert_eq!(app.get("/slow").await.status(), 200);
    upstream.delay(Duration::from_secs(2));
    app.clock.advance(Duration::from_secs(0));
    let (_, detail) = app.admin_get("/-/airlock/api/packages/slow/versions/1.0.0").await;
    assert_eq!(detail["state"], "checking");
    // Stopped mid-check (the grace period is shorter than the download).
    let clock = app.stop().await;

    upstream.delay(Duration::ZERO);
    let app = TestApp::spawn_with_clock(&upstream.url(), data_dir.path(), TestAppOptions::default(), clock).await;
    let detail = app.wait_for_decision("slow", "1.0.0").await;
    assert_eq!(detail["state"], "released", "the queued check resumed: {detail:#}");
}

#[tokio::test]
async fn two_admins_acting_at_once_end_in_one_state_with_both_actions_logged() {
    let scenario = postmark_scenario().await;
    let app = &scenario.app;
    assert_eq!(app.wait_for_decision(PACKAGE, "1.0.16").await["state"], "held");
    let path = format!("/-/airlock/api/packages/{PACKAGE}/versions/1.0.16");
    let (approve_path, reject_path) = (format!("{path}/approve"), format!("{path}/reject"));
    let (approve, reject) = tokio::join!(
        app.admin_post(&approve_path, Some("looks fine to me")),
        app.admin_post(&reject_path, Some("no, it exfiltrates mail")),
    );
    assert_eq!((approve.0.as_u16(), reject.0.as_u16()), (200, 200));
    let (_, detail) = app.admin_get(&path).await;
    let final_state = detail["state"].as_str().unwrap().to_owned();
    let history = detail["history"].as_array().unwrap();
    let admin_events: Vec<&Value> = history.iter().filter(|event| event["actor"] == "admin:tester").collect();
    assert_eq!(admin_events.len(), 2, "both actions are in the log: {history:#?}");
    // The last action in the log is the state the version is in, and the release
    // record exists exactly when it is released.
    assert_eq!(admin_events[1]["to"], final_state.as_str());
    assert_eq!(detail["release_record"].is_string(), final_state == "released");
    let tarball = app.get(&format!("/{PACKAGE}/-/{PACKAGE}-1.0.16.tgz")).await.status();
    assert_eq!(tarball == 200, final_state == "released");
}

#[tokio::test]
async fn decisions_are_posted_to_the_webhook_signed_and_retried() {
    use std::sync::{Arc, Mutex};
    type Received = Arc<Mutex<Vec<(String, Value)>>>;
    let received: Received = Arc::default();
    let failures_left = Arc::new(std::sync::atomic::AtomicUsize::new(1));
    let app_state = (Arc::clone(&received), Arc::clone(&failures_left));
    let receiver = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State((received, failures_left)): axum::extract::State<(
                    Received,
                    Arc<std::sync::atomic::AtomicUsize>,
                )>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    // The first delivery fails: Airlock must retry.
                    if failures_left
                        .fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |n| {
                            n.checked_sub(1)
                        })
                        .is_ok()
                    {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let signature = headers["x-airlock-signature"].to_str().unwrap().to_owned();
                    assert_eq!(signature, airlock_server::notifications::signature("hook-secret", &body));
                    received.lock().unwrap().push((signature, serde_json::from_slice(&body).unwrap()));
                    axum::http::StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(app_state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let scenario = postmark_scenario_with(format!(
        "[notifications]\nwebhook_url = \"{hook_url}\"\nwebhook_secret = \"hook-secret\"\n"
    ))
    .await;
    let app = &scenario.app;
    assert_eq!(app.wait_for_decision(PACKAGE, "1.0.16").await["state"], "held");
    let (status, _) = app
        .admin_post(&format!("/-/airlock/api/packages/{PACKAGE}/versions/1.0.16/reject"), Some("exfiltration"))
        .await;
    assert_eq!(status, 200);
    for _ in 0..100 {
        if received.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events: Vec<(String, String, String)> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, event)| {
            (
                event["event"].as_str().unwrap().to_owned(),
                event["version"].as_str().unwrap().to_owned(),
                event["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("held".to_owned(), "1.0.16".to_owned(), "pipeline".to_owned()),
            ("rejected".to_owned(), "1.0.16".to_owned(), "admin:tester".to_owned())
        ]
    );
}

#[tokio::test]
async fn prefetch_sends_a_lockfile_through_the_pipeline_and_reports_what_is_held() {
    use airlock_server::cli::prefetch::{Outcome, prefetch};
    use airlock_server::cli::verify::parse_lockfile;
    let scenario = postmark_scenario().await;
    let app = &scenario.app;
    assert_eq!(app.wait_for_decision(PACKAGE, "1.0.16").await["state"], "held");
    // A lockfile made elsewhere (against the public registry) with three versions.
    let lockfile = serde_json::json!({
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "app"},
            "node_modules/mail-mcp": {"version": "1.0.16", "resolved": "https://registry.npmjs.org/mail-mcp/-/mail-mcp-1.0.16.tgz"},
            "node_modules/a/node_modules/mail-mcp": {"version": "1.0.3", "resolved": "https://registry.npmjs.org/mail-mcp/-/mail-mcp-1.0.3.tgz"},
            "node_modules/b/node_modules/mail-mcp": {"version": "1.0.7"}
        }
    });
    let packages = parse_lockfile(std::path::Path::new("package-lock.json"), &lockfile.to_string()).unwrap();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let mut results = prefetch(&app.url(), None, packages, 4, |_| {
        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    })
    .await
    .unwrap();
    assert_eq!(done.load(std::sync::atomic::Ordering::SeqCst), 3, "progress is reported for each package");
    results.sort_by_key(|(package, _)| semver::Version::parse(&package.version).unwrap());
    assert_eq!(results[0].1, Outcome::Released);
    assert_eq!(results[1].1, Outcome::Released);
    match &results[2].1 {
        Outcome::Refused(why) => assert!(why.starts_with("mail-mcp@1.0.16 is held in quarantine"), "{why}"),
        other => panic!("1.0.16 must be refused: {other:?}"),
    }
    // The established versions were checked and released on the way.
    let (_, detail) = app.admin_get(&format!("/-/airlock/api/packages/{PACKAGE}/versions/1.0.3")).await;
    assert_eq!(detail["state"], "released");
    assert!(detail["checks"]["report"].is_object());
}

#[tokio::test]
async fn verify_says_why_a_locked_version_has_no_release_record() {
    use airlock_server::cli::verify::{parse_lockfile, verify_packages};
    let scenario = postmark_scenario().await;
    let app = &scenario.app;
    assert_eq!(app.wait_for_decision(PACKAGE, "1.0.16").await["state"], "held");
    let lockfile = serde_json::json!({
        "lockfileVersion": 3,
        "packages": {
            "node_modules/mail-mcp": {"version": "1.0.16", "integrity": "sha512-AAAA"},
        }
    });
    let packages = || parse_lockfile(std::path::Path::new("package-lock.json"), &lockfile.to_string()).unwrap();
    let outcome = verify_packages(&app.url(), None, None, packages(), 1).await.unwrap();
    let reason = &outcome.failures[0].1;
    assert!(reason.starts_with("no release record: mail-mcp@1.0.16 is held in quarantine"), "{reason}");

    let (status, _) =
        app.admin_post(&format!("/-/airlock/api/packages/{PACKAGE}/versions/1.0.16/reject"), Some("hidden BCC")).await;
    assert_eq!(status, 200);
    let outcome = verify_packages(&app.url(), None, None, packages(), 1).await.unwrap();
    let reason = &outcome.failures[0].1;
    assert!(
        reason.starts_with(
            "no release record: mail-mcp@1.0.16 was rejected by admin:tester and cannot be installed: hidden BCC"
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn a_pinned_package_without_the_pinned_provenance_is_held() {
    let upstream = FakeRegistry::start().await;
    upstream.publish(PackageVersion::new("@pinned/lib", "1.0.0", long_ago()));
    upstream.publish(PackageVersion::new("free-lib", "1.0.0", long_ago()));
    let data_dir = tempfile::tempdir().unwrap();
    let options = TestAppOptions {
        extra_toml: "[[quarantine.provenance_pins]]\npackage = \"@pinned/*\"\nrepository = \"github:pinned/lib\"\n"
            .into(),
        ..TestAppOptions::default()
    };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    assert_eq!(app.get_json("/@pinned/lib").await.0, 200);
    let detail = app.wait_for_decision("@pinned/lib", "1.0.0").await;
    assert_eq!(detail["state"], "held", "{detail:#}");
    let rules: Vec<&str> = detail["checks"]["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|finding| finding["severity"] == "high")
        .map(|finding| finding["rule"].as_str().unwrap())
        .collect();
    assert!(rules.iter().any(|rule| rule.starts_with("provenance")), "{rules:?}");
    // The same package without a pin is released.
    assert_eq!(app.get_json("/free-lib").await.0, 200);
    assert_eq!(app.wait_for_decision("free-lib", "1.0.0").await["state"], "released");
}
