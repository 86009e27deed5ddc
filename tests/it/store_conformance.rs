//! One conformance suite for every metadata backend: the same assertions run against
//! sled (in a temporary directory) and PostgreSQL (a cluster the harness starts; the
//! PostgreSQL half says "skipped" when it is not installed). Each case gets a fresh
//! store: a new directory, or a new database in the one cluster.

use std::future::Future;
use std::sync::Arc;

use airlock_server::npm::{PackageName, Version};
use airlock_server::store::{
    Claim, Fetch, LeaseRequest, LeasedDecision, MetadataLocation, PackageRecord, Store, StoredPolicyRule, StoredWaiver,
    TarballEntry, Transition, VersionRecord, VersionState, WaiverRevocation,
};
use airlock_tests::postgres::TestPostgres;
use chrono::{DateTime, Duration, TimeZone as _, Utc};

/// Opens a fresh, empty store of one backend.
trait Backend {
    fn fresh(&self, case: &str) -> impl Future<Output = Store>;
}

struct Sled {
    root: tempfile::TempDir,
}

impl Backend for Sled {
    async fn fresh(&self, case: &str) -> Store {
        Store::open(MetadataLocation::Sled(&self.root.path().join(case))).await.expect("opening sled")
    }
}

struct Postgres {
    cluster: TestPostgres,
}

impl Backend for Postgres {
    async fn fresh(&self, case: &str) -> Store {
        let url = self.cluster.create_database(case).await;
        Store::open(MetadataLocation::Postgres { url: &url, pool_size: 8 }).await.expect("opening postgres")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sled_backend_conforms() {
    run_suite(&Sled { root: tempfile::tempdir().unwrap() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_backend_conforms() {
    let Some(cluster) = TestPostgres::start("postgres_backend_conforms") else { return };
    let backend = Postgres { cluster };
    run_suite(&backend).await;
    // The migrations are applied once: a second open of a migrated database (a second
    // replica, a restart) finds nothing to do and reads the same records.
    let url = backend.cluster.create_database("reopened").await;
    let first = Store::open(MetadataLocation::Postgres { url: &url, pool_size: 2 }).await.unwrap();
    save_demo_fetch(&first).await;
    let (second, third) = tokio::join!(
        Store::open(MetadataLocation::Postgres { url: &url, pool_size: 2 }),
        Store::open(MetadataLocation::Postgres { url: &url, pool_size: 2 }),
    );
    for store in [second.unwrap(), third.unwrap()] {
        assert_eq!(store.versions(&name("demo")).await.unwrap().len(), 2);
    }
}

#[tokio::test]
async fn an_unreachable_database_is_an_error_naming_its_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://airlock:secret-password@127.0.0.1:{port}/airlock");
    let error = match Store::open(MetadataLocation::Postgres { url: &url, pool_size: 2 }).await {
        Ok(_) => panic!("a closed port opened"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert!(error.contains("unreachable"), "{error}");
    assert!(!error.contains("secret-password"), "{error}");
}

async fn run_suite(backend: &impl Backend) {
    packages_versions_and_tarballs_round_trip(backend.fresh("records").await).await;
    transitions_are_logged_in_order_with_release_records(backend.fresh("transitions").await).await;
    concurrent_transitions_of_one_version_have_one_winner(backend.fresh("concurrent").await).await;
    leases_expire_and_only_the_holder_decides(backend.fresh("leases").await).await;
    concurrent_claims_have_one_winner(backend.fresh("claims").await).await;
    a_failed_attempt_gives_the_lease_up(backend.fresh("failures").await).await;
    policy_rules_are_added_listed_and_removed(backend.fresh("policy").await).await;
    waivers_are_added_revoked_once_and_audited(backend.fresh("waivers").await).await;
    checks_and_blobs_are_stored(backend.fresh("checks").await).await;
}

fn name(text: &str) -> PackageName {
    PackageName::parse(text).unwrap()
}

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, hour, 0, 0).unwrap()
}

fn version_record(integrity: &str) -> VersionRecord {
    VersionRecord {
        first_seen: at(1),
        claimed_published: Some(at(0)),
        effective_published: at(0),
        integrity: integrity.to_owned(),
        blob_sha512: None,
        state: VersionState::Checking,
        state_changed_at: None,
        decided_by: None,
        reason: None,
        airlock_signature: None,
    }
}

fn transition(state: VersionState, actor: &str, action: &str) -> Transition {
    Transition {
        state,
        actor: actor.to_owned(),
        action: action.to_owned(),
        reason: Some(format!("{action} by {actor}")),
        airlock_signature: (state == VersionState::Released).then(|| format!("signature-{actor}")),
        release_record: (state == VersionState::Released)
            .then(|| format!("{{\"released-by\":\"{actor}\"}}").into_bytes()),
    }
}

/// `demo` 1.0.0 and 1.1.0, the second queued, with a tarball entry each.
async fn save_demo_fetch(store: &Store) {
    let record = PackageRecord {
        first_seen: at(1),
        fetched_at: at(1),
        upstream_etag: Some("\"v1\"".into()),
        raw_packument_sha256: Some("ab".repeat(32)),
    };
    let new_versions = [
        (Version::parse("1.0.0").unwrap(), version_record("sha512-one")),
        (Version::parse("1.1.0").unwrap(), version_record("sha512-two")),
    ];
    let tarballs =
        [("demo-1.0.0.tgz".to_owned(), tarball_entry("1.0.0")), ("demo-1.1.0.tgz".to_owned(), tarball_entry("1.1.0"))];
    let fetch = Fetch {
        record: &record,
        new_versions: &new_versions,
        enqueue: &[Version::parse("1.1.0").unwrap()],
        tarballs: &tarballs,
        removed_tarballs: &[],
    };
    store.save_fetch(&name("demo"), &fetch).await.unwrap();
}

fn tarball_entry(version: &str) -> TarballEntry {
    TarballEntry {
        version: version.to_owned(),
        declared_integrity: Some(format!("sha512-{version}")),
        upstream_url: format!("http://upstream.invalid/demo/-/demo-{version}.tgz"),
    }
}

async fn packages_versions_and_tarballs_round_trip(store: Store) {
    let demo = name("demo");
    assert_eq!(store.package(&demo).await.unwrap(), None);
    save_demo_fetch(&store).await;

    let package = store.package(&demo).await.unwrap().expect("the package record");
    assert_eq!(package.upstream_etag.as_deref(), Some("\"v1\""));
    let mut versions = store.versions(&demo).await.unwrap();
    versions.sort_by(|left, right| left.0.cmp(&right.0));
    assert_eq!(
        versions,
        vec![("1.0.0".into(), version_record("sha512-one")), ("1.1.0".into(), version_record("sha512-two"))]
    );
    assert_eq!(store.version(&demo, "1.1.0").await.unwrap(), Some(version_record("sha512-two")));
    assert_eq!(store.version(&demo, "9.9.9").await.unwrap(), None);
    assert_eq!(store.version(&name("other"), "1.0.0").await.unwrap(), None);
    assert_eq!(store.all_versions().await.unwrap().len(), 2);
    assert_eq!(store.tarball(&demo, "demo-1.0.0.tgz").await.unwrap(), Some(tarball_entry("1.0.0")));
    assert_eq!(store.queued().await.unwrap(), vec![(demo.clone(), "1.1.0".to_owned())]);
    assert_eq!(store.queue_entry(&demo, "1.1.0").await.unwrap().map(|entry| entry.attempts), Some(0));
    assert_eq!(store.queue_entry(&demo, "1.0.0").await.unwrap(), None);

    // A later fetch never rewrites a known version, and drops a tarball no longer listed.
    let refreshed = PackageRecord { fetched_at: at(5), upstream_etag: Some("\"v2\"".into()), ..package.clone() };
    let tampered = [(Version::parse("1.0.0").unwrap(), version_record("sha512-TAMPERED"))];
    let fetch = Fetch {
        record: &refreshed,
        new_versions: &tampered,
        enqueue: &[],
        tarballs: &[],
        removed_tarballs: &["demo-1.1.0.tgz".to_owned()],
    };
    store.save_fetch(&demo, &fetch).await.unwrap();
    assert_eq!(store.package(&demo).await.unwrap(), Some(refreshed));
    assert_eq!(store.version(&demo, "1.0.0").await.unwrap().unwrap().integrity, "sha512-one");
    assert_eq!(store.tarballs(&demo).await.unwrap(), vec![("demo-1.0.0.tgz".to_owned(), tarball_entry("1.0.0"))]);
    assert_eq!(store.legacy_raw_packument(&demo).await.unwrap(), None);
}

async fn transitions_are_logged_in_order_with_release_records(store: Store) {
    let demo = name("demo");
    save_demo_fetch(&store).await;
    let cooled = store
        .transition(&demo, "1.0.0", at(2), |_| Some(transition(VersionState::Cooling, "pipeline", "checked")))
        .await
        .unwrap()
        .expect("a transition");
    assert_eq!((cooled.0.state, cooled.1.state), (VersionState::Checking, VersionState::Cooling));
    let released = store
        .transition(&demo, "1.0.0", at(3), |current| {
            (current.state == VersionState::Cooling).then(|| transition(VersionState::Released, "pipeline", "released"))
        })
        .await
        .unwrap()
        .expect("a release");
    assert_eq!(released.1.airlock_signature.as_deref(), Some("signature-pipeline"));
    assert_eq!(released.1.state_changed_at, Some(at(3)));
    assert_eq!(
        store.release_record(&demo, "1.0.0").await.unwrap().as_deref(),
        Some(&b"{\"released-by\":\"pipeline\"}"[..])
    );
    // `decide` declining writes nothing.
    assert_eq!(store.transition(&demo, "1.0.0", at(4), |_| None).await.unwrap(), None);
    // An unknown version is no transition.
    let unknown = store.transition(&demo, "7.0.0", at(4), |_| Some(transition(VersionState::Held, "x", "y"))).await;
    assert_eq!(unknown.unwrap(), None);
    store.log_event(&demo, "1.0.0", at(4), "admin:ann", "recheck", Some("look again".into())).await.unwrap();
    // A release record goes with the release.
    store
        .transition(&demo, "1.0.0", at(5), |_| Some(transition(VersionState::Held, "admin:ann", "hold")))
        .await
        .unwrap();
    assert_eq!(store.release_record(&demo, "1.0.0").await.unwrap(), None);
    let record = store.version(&demo, "1.0.0").await.unwrap().unwrap();
    assert_eq!((record.state, record.airlock_signature), (VersionState::Held, None));
    assert_eq!(record.decided_by.as_deref(), Some("admin:ann"));

    let history = store.history(&demo, "1.0.0").await.unwrap();
    let actions: Vec<(&str, Option<VersionState>, Option<VersionState>)> =
        history.iter().map(|event| (event.action.as_str(), event.from, event.to)).collect();
    assert_eq!(
        actions,
        vec![
            ("checked", Some(VersionState::Checking), Some(VersionState::Cooling)),
            ("released", Some(VersionState::Cooling), Some(VersionState::Released)),
            ("recheck", None, None),
            ("hold", Some(VersionState::Released), Some(VersionState::Held)),
        ]
    );
    assert_eq!(history[2].comment.as_deref(), Some("look again"));
    assert!(history.windows(2).all(|pair| pair[0].id < pair[1].id), "{history:?}");
    assert!(store.history(&demo, "1.1.0").await.unwrap().is_empty());
    let log = store.audit_events().await.unwrap();
    assert_eq!(
        log.iter().map(|event| event.id).collect::<Vec<_>>(),
        history.iter().map(|event| event.id).collect::<Vec<_>>()
    );
}

async fn concurrent_transitions_of_one_version_have_one_winner(store: Store) {
    let demo = name("demo");
    save_demo_fetch(&store).await;
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for admin in 0..8 {
        let (store, demo) = (store.clone(), demo.clone());
        tasks.push(tokio::spawn(async move {
            let actor = format!("admin:{admin}");
            store
                .transition(&demo, "1.1.0", at(2), |current| {
                    (current.state == VersionState::Checking)
                        .then(|| transition(VersionState::Released, &actor, "approve"))
                })
                .await
                .unwrap()
                .map(|(_, after)| after)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(after) = task.await.unwrap() {
            winners.push(after);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = store.version(&demo, "1.1.0").await.unwrap().unwrap();
    assert_eq!(stored, winners[0]);
    assert_eq!(store.history(&demo, "1.1.0").await.unwrap().len(), 1);
    let release = store.release_record(&demo, "1.1.0").await.unwrap().unwrap();
    assert!(String::from_utf8(release).unwrap().contains(stored.decided_by.as_deref().unwrap()));
}

fn request(owner: &str, now: DateTime<Utc>) -> LeaseRequest<'_> {
    LeaseRequest { owner, now, duration: Duration::minutes(10) }
}

async fn leases_expire_and_only_the_holder_decides(store: Store) {
    let demo = name("demo");
    save_demo_fetch(&store).await;
    let Claim::Granted(first) = store.claim(&demo, "1.1.0", &request("replica-a", at(2))).await.unwrap() else {
        panic!("the first claim is granted");
    };
    assert_eq!(first.entry.attempts, 1);
    assert_eq!(first.holder.expires_at, at(2) + Duration::minutes(10));
    let stored = store.queue_entry(&demo, "1.1.0").await.unwrap().unwrap();
    assert_eq!(stored.lease.as_ref(), Some(&first.holder));

    // Another replica is refused while the lease stands...
    match store.claim(&demo, "1.1.0", &request("replica-b", at(2) + Duration::minutes(9))).await.unwrap() {
        Claim::HeldElsewhere { holder } => assert_eq!(holder.map(|holder| holder.owner), Some("replica-a".into())),
        Claim::Granted(lease) => panic!("a standing lease was granted again: {lease:?}"),
    }
    // ...and reclaims it once it expired (replica A died mid-check).
    let Claim::Granted(second) = store.claim(&demo, "1.1.0", &request("replica-b", at(3))).await.unwrap() else {
        panic!("an expired lease is reclaimed");
    };
    assert_eq!(second.entry.attempts, 2);
    assert_ne!(second.holder.token, first.holder.token);

    // A's late decision is refused and stores nothing.
    let late = store
        .decide(&first, at(3), |_| Some(transition(VersionState::Released, "pipeline", "released")))
        .await
        .unwrap();
    assert_eq!(late, LeasedDecision::NotHolder);
    assert_eq!(store.version(&demo, "1.1.0").await.unwrap().unwrap().state, VersionState::Checking);
    assert!(store.history(&demo, "1.1.0").await.unwrap().is_empty());
    assert!(store.queue_entry(&demo, "1.1.0").await.unwrap().is_some());
    // A's failure report does not touch B's lease either.
    store.record_failure(&first, "late failure", true).await.unwrap();
    assert_eq!(store.queue_entry(&demo, "1.1.0").await.unwrap().unwrap().lease, Some(second.holder.clone()));

    // B's decision is stored with its event and release record, and the entry leaves.
    let decided = store
        .decide(&second, at(4), |_| Some(transition(VersionState::Released, "pipeline", "released")))
        .await
        .unwrap();
    let LeasedDecision::Stored(Some((before, after))) = decided else { panic!("stored: {decided:?}") };
    assert_eq!((before.state, after.state), (VersionState::Checking, VersionState::Released));
    assert_eq!(store.queue_entry(&demo, "1.1.0").await.unwrap(), None);
    assert_eq!(store.history(&demo, "1.1.0").await.unwrap().len(), 1);
    assert!(store.release_record(&demo, "1.1.0").await.unwrap().is_some());
    // The decision consumed the lease: it cannot decide twice.
    let again = store.decide(&second, at(5), |_| Some(transition(VersionState::Held, "pipeline", "held"))).await;
    assert_eq!(again.unwrap(), LeasedDecision::NotHolder);

    // An owner's own earlier lease does not block it (one process runs one check of a
    // version at a time, so that lease is from a check that ended without a word), but
    // the new claim has a new token, so the stale one can no longer decide.
    store.enqueue(&demo, &["1.1.0".to_owned()]).await.unwrap();
    let Claim::Granted(stale) = store.claim(&demo, "1.1.0", &request("replica-c", at(5))).await.unwrap() else {
        panic!("granted");
    };
    let Claim::Granted(fresh) = store.claim(&demo, "1.1.0", &request("replica-c", at(5))).await.unwrap() else {
        panic!("the owner's own lease is replaced");
    };
    assert_eq!(fresh.entry.attempts, 2);
    let refused = store.decide(&stale, at(5), |_| Some(transition(VersionState::Held, "pipeline", "held"))).await;
    assert_eq!(refused.unwrap(), LeasedDecision::NotHolder);
    store.record_failure(&fresh, "gave up", false).await.unwrap();

    // An admin clearing the entry takes the lease away from a running check.
    let Claim::Granted(third) = store.claim(&demo, "1.0.0", &request("replica-a", at(6))).await.unwrap() else {
        panic!("a version checked outside the queue gets an entry and a lease");
    };
    store.dequeue(&demo, "1.0.0").await.unwrap();
    let dropped = store.decide(&third, at(6), |_| Some(transition(VersionState::Released, "pipeline", "x"))).await;
    assert_eq!(dropped.unwrap(), LeasedDecision::NotHolder);
    assert_eq!(store.version(&demo, "1.0.0").await.unwrap().unwrap().state, VersionState::Checking);
}

async fn concurrent_claims_have_one_winner(store: Store) {
    let demo = name("demo");
    save_demo_fetch(&store).await;
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for replica in 0..8 {
        let (store, demo) = (store.clone(), demo.clone());
        tasks.push(tokio::spawn(async move {
            let owner = format!("replica-{replica}");
            store.claim(&demo, "1.1.0", &request(&owner, at(2))).await.unwrap()
        }));
    }
    let mut granted = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), Claim::Granted(_)) {
            granted += 1;
        }
    }
    assert_eq!(granted, 1);
    assert_eq!(store.queue_entry(&demo, "1.1.0").await.unwrap().unwrap().attempts, 1);
}

async fn a_failed_attempt_gives_the_lease_up(store: Store) {
    let demo = name("demo");
    save_demo_fetch(&store).await;
    let Claim::Granted(lease) = store.claim(&demo, "1.1.0", &request("replica-a", at(2))).await.unwrap() else {
        panic!("granted");
    };
    // An upstream failure is not the package's: the attempt is taken back.
    store.record_failure(&lease, &"upstream down ".repeat(200), false).await.unwrap();
    let entry = store.queue_entry(&demo, "1.1.0").await.unwrap().unwrap();
    assert_eq!((entry.attempts, entry.lease), (0, None));
    assert_eq!(entry.last_error.map(|error| error.chars().count()), Some(1000));
    let Claim::Granted(lease) = store.claim(&demo, "1.1.0", &request("replica-b", at(2))).await.unwrap() else {
        panic!("a lease given up is claimed again at once");
    };
    store.record_failure(&lease, "the worker crashed", true).await.unwrap();
    let entry = store.queue_entry(&demo, "1.1.0").await.unwrap().unwrap();
    assert_eq!((entry.attempts, entry.last_error.as_deref()), (1, Some("the worker crashed")));
    // An admin's recheck starts over.
    store.enqueue(&demo, &["1.1.0".to_owned()]).await.unwrap();
    assert_eq!(store.queue_entry(&demo, "1.1.0").await.unwrap().unwrap(), Default::default());
}

async fn policy_rules_are_added_listed_and_removed(store: Store) {
    let rule = |package: &str, kind: &str| StoredPolicyRule {
        id: 0,
        kind: kind.to_owned(),
        package: package.to_owned(),
        versions: Some("1.0.0".into()),
        reason: format!("{kind} {package}"),
        added_by: "admin:ann".into(),
        added_at: at(2),
    };
    let first = store.add_policy_rule(rule("evil", "deny")).await.unwrap();
    let second = store.add_policy_rule(rule("@corp/*", "allow")).await.unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(store.policy_rules().await.unwrap(), vec![first.clone(), second.clone()]);
    assert_eq!(store.remove_policy_rule(first.id, "admin:bob", at(3)).await.unwrap(), Some(first.clone()));
    assert_eq!(store.remove_policy_rule(first.id, "admin:bob", at(3)).await.unwrap(), None);
    assert_eq!(store.policy_rules().await.unwrap(), vec![second]);
    let log: Vec<(String, String, String)> = store
        .audit_events()
        .await
        .unwrap()
        .into_iter()
        .map(|event| (event.actor, event.action, event.package))
        .collect();
    assert_eq!(
        log,
        vec![
            ("admin:ann".into(), "policy-add".into(), "evil".into()),
            ("admin:ann".into(), "policy-add".into(), "@corp/*".into()),
            ("admin:bob".into(), "policy-remove".into(), "evil".into()),
        ]
    );
    // Rule events name a pattern, not a version: no version's history lists them.
    assert!(store.history(&name("evil"), "1.0.0").await.unwrap().is_empty());
}

async fn waivers_are_added_revoked_once_and_audited(store: Store) {
    let waiver = |package: &str| StoredWaiver {
        id: 0,
        rule: "install-script".into(),
        package: package.to_owned(),
        versions: Some("^1.0.0".into()),
        reason: "reviewed the postinstall".into(),
        expires_at: at(20),
        created_by: "admin:ann".into(),
        created_at: at(2),
        revoked: None,
    };
    let first = store.add_waiver(waiver("left-pad")).await.unwrap();
    let second = store.add_waiver(waiver("right-pad")).await.unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(store.waivers().await.unwrap(), vec![first.clone(), second.clone()]);
    let revoked = store.revoke_waiver(first.id, "admin:bob", at(3)).await.unwrap().unwrap();
    assert_eq!(revoked.revoked, Some(WaiverRevocation { by: "admin:bob".into(), at: at(3) }));
    // A second revocation changes nothing and is not logged again; an unknown id is None.
    assert_eq!(store.revoke_waiver(first.id, "admin:eve", at(4)).await.unwrap(), Some(revoked.clone()));
    assert_eq!(store.revoke_waiver(second.id + 1000, "admin:bob", at(4)).await.unwrap(), None);
    assert_eq!(store.waivers().await.unwrap(), vec![revoked, second]);
    let log: Vec<(String, String, String)> = store
        .audit_events()
        .await
        .unwrap()
        .into_iter()
        .map(|event| (event.actor, event.action, event.package))
        .collect();
    assert_eq!(
        log,
        vec![
            ("admin:ann".into(), "waiver-add".into(), "left-pad".into()),
            ("admin:ann".into(), "waiver-add".into(), "right-pad".into()),
            ("admin:bob".into(), "waiver-revoke".into(), "left-pad".into()),
        ]
    );
}

async fn checks_and_blobs_are_stored(store: Store) {
    let demo = name("demo");
    save_demo_fetch(&store).await;
    assert_eq!(store.checks::<serde_json::Value>(&demo, "1.0.0").await.unwrap(), None);
    let checks = serde_json::json!({"verdict": "clean", "findings": [{"rule": "x", "line": 3}]});
    store.save_checks(&demo, "1.0.0", &checks).await.unwrap();
    assert_eq!(store.checks::<serde_json::Value>(&demo, "1.0.0").await.unwrap(), Some(checks));
    store.set_blob(&demo, "1.0.0", &"cd".repeat(64)).await.unwrap();
    let record = store.version(&demo, "1.0.0").await.unwrap().unwrap();
    assert_eq!(record.blob_sha512, Some("cd".repeat(64)));
    assert_eq!(record.integrity, "sha512-one");
    store.accepts_writes().await.unwrap();
}
