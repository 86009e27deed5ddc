//! Waivers (issue 12): an admin accepts one rule for one package (an npm range, a
//! reason, an expiry). The waived findings stay visible at `info`, naming the waiver;
//! a waiver of the known-malware rules is refused; a revoked waiver stops applying at
//! the next check; every change is audited.

use airlock_tests::{FakeRegistry, PackageVersion, TestApp, TestAppOptions, long_ago};
use serde_json::{Value, json};

const PACKAGE: &str = "setup-helper";

/// The rules of a version's findings at `high` or above: what holds it.
fn holding_rules(detail: &Value) -> Vec<String> {
    let mut rules: Vec<String> = detail["checks"]["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|finding| matches!(finding["severity"].as_str(), Some("high" | "critical")))
        .map(|finding| finding["rule"].as_str().unwrap().to_owned())
        .collect();
    rules.sort();
    rules.dedup();
    rules
}

fn waiver(rule: &str, versions: &str, recheck_held: bool) -> Value {
    json!({
        "rule": rule,
        "package": PACKAGE,
        "versions": versions,
        "reason": "our bootstrap script, reviewed by the platform team",
        "expires": "30d",
        "recheck_held": recheck_held,
    })
}

#[tokio::test]
async fn a_waiver_releases_what_it_accepts_keeps_the_findings_and_is_audited() {
    let upstream = FakeRegistry::start().await;
    let script = "curl -fsSL https://get.example.com/install.sh | sh";
    for version in ["1.0.0", "2.0.0"] {
        upstream.publish(
            PackageVersion::new(PACKAGE, version, long_ago())
                .with_manifest(json!({"scripts": {"postinstall": script}})),
        );
    }
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), TestAppOptions::default()).await;
    // Asking for a tarball checks that version.
    for version in ["1.0.0", "2.0.0"] {
        assert_eq!(app.get(&format!("/{PACKAGE}/-/{PACKAGE}-{version}.tgz")).await.status(), 403);
    }
    let held = app.wait_for_decision(PACKAGE, "1.0.0").await;
    assert_eq!(held["state"], "held", "{held:#}");
    let rules = holding_rules(&held);
    assert!(!rules.is_empty(), "{held:#}");

    // Bad requests name what is wrong.
    let (status, error) =
        app.admin_post_json("/-/airlock/api/waivers", Some(&waiver("no-such-rule", "*", false))).await;
    assert_eq!(status, 400);
    assert!(error["error"].as_str().unwrap().contains("\"no-such-rule\""), "{error}");
    let (status, error) =
        app.admin_post_json("/-/airlock/api/waivers", Some(&waiver("known-malicious-version", "*", false))).await;
    assert_eq!(status, 400, "known-malware findings cannot be waived");
    assert!(error["error"].as_str().unwrap().contains("cannot be waived"), "{error}");
    let mut forever = waiver(&rules[0], "*", false);
    forever["expires"] = json!("10y");
    let (status, error) = app.admin_post_json("/-/airlock/api/waivers", Some(&forever)).await;
    assert_eq!(status, 400, "{error}");
    let (status, error) = app.admin_post_json("/-/airlock/api/waivers", Some(&waiver(&rules[0], "^^1", false))).await;
    assert_eq!(status, 400, "{error}");

    // Waivers for 1.x only; the last one re-checks the held versions it covers.
    let mut ids = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        let last = index + 1 == rules.len();
        let (status, created) = app.admin_post_json("/-/airlock/api/waivers", Some(&waiver(rule, "1.x", last))).await;
        assert_eq!(status, 201, "{created:#}");
        assert_eq!(created["status"], "active");
        assert_eq!(created["created_by"], "admin:tester");
        ids.push(created["id"].as_u64().unwrap());
        if last {
            assert_eq!(created["rechecked"], json!([{"version": "1.0.0", "state": "released"}]), "{created:#}");
        }
    }

    // Released, served, and the waived findings are still there, lowered and named.
    let released = app.wait_for_decision(PACKAGE, "1.0.0").await;
    assert_eq!(released["state"], "released", "{released:#}");
    let findings = released["checks"]["report"]["findings"].as_array().unwrap();
    for rule in &rules {
        let finding = findings.iter().find(|finding| finding["rule"] == rule.as_str()).expect("waived finding kept");
        assert_eq!(finding["severity"], "info", "{finding:#}");
        assert!(finding["message"].as_str().unwrap().starts_with("[waived: "), "{finding:#}");
    }
    let tarball = app.get(&format!("/{PACKAGE}/-/{PACKAGE}-1.0.0.tgz")).await;
    assert_eq!(tarball.status(), 200);

    // Outside the range nothing changes.
    let (_, other) = app
        .admin_post(&format!("/-/airlock/api/packages/{PACKAGE}/versions/2.0.0/recheck"), Some("after the waiver"))
        .await;
    assert_eq!(other["state"], "held", "{other:#}");
    assert_eq!(holding_rules(&other), rules);

    // Listed with their status; a revoked waiver no longer applies at the next check.
    let (_, listing) = app.admin_get("/-/airlock/api/waivers").await;
    assert_eq!(listing["waivers"].as_array().unwrap().len(), rules.len(), "{listing:#}");
    for id in &ids {
        let (status, revoked) = app.admin_post(&format!("/-/airlock/api/waivers/{id}/revoke"), None).await;
        assert_eq!(status, 200, "{revoked:#}");
        assert_eq!(revoked["status"], "revoked");
    }
    // Revoking again changes nothing and is not audited twice (counted below).
    let (status, again) = app.admin_post(&format!("/-/airlock/api/waivers/{}/revoke", ids[0]), None).await;
    assert_eq!((status.as_u16(), again["status"].as_str()), (200, Some("revoked")), "{again:#}");
    let (status, _) = app.admin_post("/-/airlock/api/waivers/999999/revoke", None).await;
    assert_eq!(status, 404);
    let (_, again) = app
        .admin_post(&format!("/-/airlock/api/packages/{PACKAGE}/versions/1.0.0/recheck"), Some("waiver revoked"))
        .await;
    assert_eq!(again["state"], "held", "{again:#}");
    assert_eq!(app.get(&format!("/{PACKAGE}/-/{PACKAGE}-1.0.0.tgz")).await.status(), 403);

    // Every change is in the audit log.
    let (_, audit) = app.admin_get(&format!("/-/airlock/api/audit?package={PACKAGE}")).await;
    let actions: Vec<&str> =
        audit["events"].as_array().unwrap().iter().filter_map(|event| event["action"].as_str()).collect();
    assert_eq!(actions.iter().filter(|action| **action == "waiver-add").count(), rules.len(), "{actions:?}");
    assert_eq!(actions.iter().filter(|action| **action == "waiver-revoke").count(), rules.len(), "{actions:?}");
}

#[tokio::test]
async fn waivers_survive_a_restart() {
    let upstream = FakeRegistry::start().await;
    upstream.publish(
        PackageVersion::new(PACKAGE, "1.0.0", long_ago())
            .with_manifest(json!({"scripts": {"postinstall": "curl -fsSL https://get.example.com/install.sh | sh"}})),
    );
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), TestAppOptions::default()).await;
    assert_eq!(app.get(&format!("/{PACKAGE}/-/{PACKAGE}-1.0.0.tgz")).await.status(), 403);
    let rules = holding_rules(&app.wait_for_decision(PACKAGE, "1.0.0").await);
    for rule in &rules {
        let (status, created) = app.admin_post_json("/-/airlock/api/waivers", Some(&waiver(rule, "*", false))).await;
        assert_eq!(status, 201, "{created:#}");
    }
    let clock = app.stop().await;

    let app = TestApp::spawn_with_clock(&upstream.url(), data_dir.path(), TestAppOptions::default(), clock).await;
    let (_, rechecked) = app
        .admin_post(&format!("/-/airlock/api/packages/{PACKAGE}/versions/1.0.0/recheck"), Some("after a restart"))
        .await;
    assert_eq!(rechecked["state"], "released", "{rechecked:#}");
}
