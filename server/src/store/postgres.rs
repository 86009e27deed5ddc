//! The PostgreSQL backend, for several replicas on one database. The only module that
//! names a `tokio_postgres` or `deadpool_postgres` type or holds SQL.
//!
//! - Connections come from a `deadpool-postgres` pool of `[storage] pool_size`, without
//!   TLS (`NoTls`): the database is expected on loopback or a private link.
//! - The schema is versioned SQL in `migrations/`, applied at open inside one
//!   transaction that first takes `pg_advisory_xact_lock`, so replicas starting
//!   together apply each migration once and in order, and a database newer than this
//!   release is refused.
//! - Every multi-record write is one transaction, as it is one sled transaction in the
//!   embedded backend; a transition locks its version row (`FOR UPDATE`), so concurrent
//!   decisions are serialised and each sees the other's result.
//! - The check queue is a lease table: a claim locks the entry with
//!   `FOR UPDATE SKIP LOCKED` (a claim in progress elsewhere means "held elsewhere"),
//!   and a decision is stored only while the entry still carries the claim's token.

use std::str::FromStr as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient as _, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Json;

use super::{
    AuditEvent, Claim, Fetch, Lease, LeaseHolder, LeaseRequest, LeasedDecision, PackageRecord, QueueEntry, StoreError,
    StoreResult, StoredPolicyRule, StoredWaiver, TarballEntry, Transition, Transitioned, VersionRecord, VersionState,
};
use crate::npm::PackageName;

/// The schema, in order. A migration is never edited once released: a change is a new
/// file with the next number.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "metadata", include_str!("migrations/0001_metadata.sql")),
    (2, "waivers", include_str!("migrations/0002_waivers.sql")),
];

/// The advisory lock key that serialises migrations (`airlock` in ASCII).
const MIGRATION_LOCK: i64 = 0x0061_6972_6c6f_636b;

/// How long a request waits for a pooled connection, and for a new one to connect.
const POOL_WAIT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL store.
#[derive(Clone)]
pub(super) struct PostgresStore {
    pool: Pool,
    /// `host:port` of the database, for messages (the URL without its password).
    address: String,
}

type Client = deadpool_postgres::Object;

impl PostgresStore {
    /// Connects, checks the database answers and applies the migrations it lacks.
    pub(super) async fn open(url: &str, pool_size: usize) -> StoreResult<PostgresStore> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|error| StoreError::Failed {
            doing: "reading `storage.url`".into(),
            // The parser's message never repeats the password.
            detail: error.to_string(),
        })?;
        let address = address_of(&config);
        if config.get_application_name().is_none() {
            config.application_name("airlock");
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|error| StoreError::Failed {
                doing: "creating the connection pool".into(),
                detail: error.to_string(),
            })?;
        let store = PostgresStore { pool, address };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let doing = "applying the schema migrations";
        let mut client = self.client(doing).await?;
        let transaction = client.transaction().await.map_err(self.failed(doing))?;
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(self.failed(doing))?;
        transaction
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS airlock_schema_migrations (
                    version INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                )",
            )
            .await
            .map_err(self.failed(doing))?;
        let applied: Vec<i32> = transaction
            .query("SELECT version FROM airlock_schema_migrations ORDER BY version", &[])
            .await
            .map_err(self.failed(doing))?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let known = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
        if let Some(newer) = applied.iter().find(|version| **version > known) {
            return Err(StoreError::Failed {
                doing: doing.into(),
                detail: format!(
                    "the database at {} has schema version {newer}, newer than this Airlock knows ({known}); run a newer release",
                    self.address
                ),
            });
        }
        for (version, name, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            transaction
                .batch_execute(sql)
                .await
                .map_err(self.failed(format!("applying migration {version} ({name})")))?;
            transaction
                .execute("INSERT INTO airlock_schema_migrations (version, name) VALUES ($1, $2)", &[version, name])
                .await
                .map_err(self.failed(doing))?;
            tracing::info!(migration = version, name, database = %self.address, "applied a schema migration");
        }
        transaction.commit().await.map_err(self.failed(doing))
    }

    /// Turns a database error into the store's, saying what was being done.
    fn failed<D: Into<String>>(&self, doing: D) -> impl FnOnce(tokio_postgres::Error) -> StoreError + use<D> {
        let (address, doing) = (self.address.clone(), doing.into());
        move |error| classify(&address, doing, &error)
    }

    async fn client(&self, doing: &str) -> StoreResult<Client> {
        self.pool.get().await.map_err(|error| {
            let detail = match &error {
                deadpool_postgres::PoolError::Backend(error) => describe(error),
                other => other.to_string(),
            };
            StoreError::Unavailable { address: self.address.clone(), doing: doing.into(), detail }
        })
    }

    pub(super) async fn accepts_writes(&self) -> StoreResult<()> {
        let doing = "asking the database whether it takes writes";
        let client = self.client(doing).await?;
        let row = client.query_one("SELECT pg_is_in_recovery()", &[]).await.map_err(self.failed(doing))?;
        if row.get::<_, bool>(0) {
            return Err(StoreError::Failed {
                doing: doing.into(),
                detail: format!("{} is a read-only standby", self.address),
            });
        }
        Ok(())
    }

    pub(super) async fn package(&self, name: &PackageName) -> StoreResult<Option<PackageRecord>> {
        let doing = format!("reading the record of {name}");
        let client = self.client(&doing).await?;
        let statement =
            client.prepare_cached("SELECT record FROM packages WHERE name = $1").await.map_err(self.failed(&doing))?;
        let row = client.query_opt(&statement, &[&name.as_str()]).await.map_err(self.failed(&doing))?;
        Ok(row.and_then(|row| decode(row.get(0))))
    }

    pub(super) async fn save_fetch(&self, name: &PackageName, fetch: &Fetch<'_>) -> StoreResult<()> {
        let doing = format!("storing the fetch of {name}");
        let mut client = self.client(&doing).await?;
        let transaction = client.transaction().await.map_err(self.failed(&doing))?;
        let package = name.as_str();
        transaction
            .execute(
                "INSERT INTO packages (name, record) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record",
                &[&package, &Json(fetch.record)],
            )
            .await
            .map_err(self.failed(&doing))?;
        if !fetch.new_versions.is_empty() {
            let versions: Vec<&str> = fetch.new_versions.iter().map(|(version, _)| version.as_str()).collect();
            let records: Vec<Json<&VersionRecord>> =
                fetch.new_versions.iter().map(|(_, record)| Json(record)).collect();
            // Never overwrite: the first sighting is the record of truth.
            transaction
                .execute(
                    "INSERT INTO versions (package, version, record)
                     SELECT $1, version, record FROM UNNEST($2::text[], $3::jsonb[]) AS new (version, record)
                     ON CONFLICT (package, version) DO NOTHING",
                    &[&package, &versions, &records],
                )
                .await
                .map_err(self.failed(&doing))?;
        }
        if !fetch.enqueue.is_empty() {
            let versions: Vec<&str> = fetch.enqueue.iter().map(|version| version.as_str()).collect();
            // An entry already there keeps its attempts and its lease.
            transaction
                .execute(
                    "INSERT INTO check_queue (package, version)
                     SELECT $1, version FROM UNNEST($2::text[]) AS new (version)
                     ON CONFLICT (package, version) DO NOTHING",
                    &[&package, &versions],
                )
                .await
                .map_err(self.failed(&doing))?;
        }
        if !fetch.tarballs.is_empty() {
            let file_names: Vec<&str> = fetch.tarballs.iter().map(|(file_name, _)| file_name.as_str()).collect();
            let entries: Vec<Json<&TarballEntry>> = fetch.tarballs.iter().map(|(_, entry)| Json(entry)).collect();
            transaction
                .execute(
                    "INSERT INTO tarballs (package, file_name, entry)
                     SELECT $1, file_name, entry FROM UNNEST($2::text[], $3::jsonb[]) AS new (file_name, entry)
                     ON CONFLICT (package, file_name) DO UPDATE SET entry = EXCLUDED.entry",
                    &[&package, &file_names, &entries],
                )
                .await
                .map_err(self.failed(&doing))?;
        }
        if !fetch.removed_tarballs.is_empty() {
            let file_names: Vec<&str> = fetch.removed_tarballs.iter().map(String::as_str).collect();
            transaction
                .execute("DELETE FROM tarballs WHERE package = $1 AND file_name = ANY($2)", &[&package, &file_names])
                .await
                .map_err(self.failed(&doing))?;
        }
        transaction.commit().await.map_err(self.failed(&doing))
    }

    pub(super) async fn tarball(&self, name: &PackageName, file_name: &str) -> StoreResult<Option<TarballEntry>> {
        let doing = format!("reading the tarball entry {name}/{file_name}");
        let client = self.client(&doing).await?;
        let statement = client
            .prepare_cached("SELECT entry FROM tarballs WHERE package = $1 AND file_name = $2")
            .await
            .map_err(self.failed(&doing))?;
        let row = client.query_opt(&statement, &[&name.as_str(), &file_name]).await.map_err(self.failed(&doing))?;
        Ok(row.and_then(|row| decode(row.get(0))))
    }

    pub(super) async fn tarballs(&self, name: &PackageName) -> StoreResult<Vec<(String, TarballEntry)>> {
        let doing = format!("reading the tarball entries of {name}");
        let client = self.client(&doing).await?;
        let rows = client
            .query("SELECT file_name, entry FROM tarballs WHERE package = $1 ORDER BY file_name", &[&name.as_str()])
            .await
            .map_err(self.failed(&doing))?;
        Ok(rows.iter().filter_map(|row| Some((row.get(0), decode(row.get(1))?))).collect())
    }

    pub(super) async fn versions(&self, name: &PackageName) -> StoreResult<Vec<(String, VersionRecord)>> {
        let doing = format!("reading the versions of {name}");
        let client = self.client(&doing).await?;
        let statement = client
            .prepare_cached("SELECT version, record FROM versions WHERE package = $1 ORDER BY version")
            .await
            .map_err(self.failed(&doing))?;
        let rows = client.query(&statement, &[&name.as_str()]).await.map_err(self.failed(&doing))?;
        Ok(rows.iter().filter_map(|row| Some((row.get(0), decode(row.get(1))?))).collect())
    }

    pub(super) async fn version(&self, name: &PackageName, version: &str) -> StoreResult<Option<VersionRecord>> {
        let doing = format!("reading the record of {name}@{version}");
        let client = self.client(&doing).await?;
        let statement = client
            .prepare_cached("SELECT record FROM versions WHERE package = $1 AND version = $2")
            .await
            .map_err(self.failed(&doing))?;
        let row = client.query_opt(&statement, &[&name.as_str(), &version]).await.map_err(self.failed(&doing))?;
        Ok(row.and_then(|row| decode(row.get(0))))
    }

    pub(super) async fn all_versions(&self) -> StoreResult<Vec<(String, String, VersionRecord)>> {
        let doing = "reading every version record";
        let client = self.client(doing).await?;
        let rows = client
            .query("SELECT package, version, record FROM versions ORDER BY package, version", &[])
            .await
            .map_err(self.failed(doing))?;
        Ok(rows.iter().filter_map(|row| Some((row.get(0), row.get(1), decode(row.get(2))?))).collect())
    }

    pub(super) async fn set_blob(&self, name: &PackageName, version: &str, sha512_hex: &str) -> StoreResult<()> {
        let doing = format!("recording the stored tarball of {name}@{version}");
        let client = self.client(&doing).await?;
        client
            .execute(
                "UPDATE versions SET record = jsonb_set(record, '{blob_sha512}', to_jsonb($3::text))
                 WHERE package = $1 AND version = $2",
                &[&name.as_str(), &version, &sha512_hex],
            )
            .await
            .map_err(self.failed(&doing))?;
        Ok(())
    }

    pub(super) async fn enqueue(&self, name: &PackageName, versions: &[String]) -> StoreResult<()> {
        let doing = format!("queueing checks of {name}");
        let client = self.client(&doing).await?;
        // A new entry starts over: no attempts, no error, no lease.
        client
            .execute(
                "INSERT INTO check_queue (package, version)
                 SELECT $1, version FROM UNNEST($2::text[]) AS new (version)
                 ON CONFLICT (package, version) DO UPDATE SET attempts = 0, last_error = NULL,
                     lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL",
                &[&name.as_str(), &versions],
            )
            .await
            .map_err(self.failed(&doing))?;
        Ok(())
    }

    pub(super) async fn queue_entries(&self) -> StoreResult<Vec<(PackageName, String, QueueEntry)>> {
        let doing = "reading the check queue";
        let client = self.client(doing).await?;
        let rows = client
            .query(
                "SELECT package, version, attempts, last_error, lease_owner, lease_token, lease_expires_at
                 FROM check_queue ORDER BY package, version",
                &[],
            )
            .await
            .map_err(self.failed(doing))?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let name = PackageName::parse(row.get::<_, &str>(0)).ok()?;
                Some((name, row.get(1), queue_entry(row, 2)))
            })
            .collect())
    }

    pub(super) async fn queue_entry(&self, name: &PackageName, version: &str) -> StoreResult<Option<QueueEntry>> {
        let doing = format!("reading the queue entry of {name}@{version}");
        let client = self.client(&doing).await?;
        let row = client
            .query_opt(
                "SELECT attempts, last_error, lease_owner, lease_token, lease_expires_at
                 FROM check_queue WHERE package = $1 AND version = $2",
                &[&name.as_str(), &version],
            )
            .await
            .map_err(self.failed(&doing))?;
        Ok(row.map(|row| queue_entry(&row, 0)))
    }

    pub(super) async fn claim(
        &self,
        name: &PackageName,
        version: &str,
        request: &LeaseRequest<'_>,
    ) -> StoreResult<Claim> {
        let doing = format!("claiming the check of {name}@{version}");
        let mut client = self.client(&doing).await?;
        let transaction = client.transaction().await.map_err(self.failed(&doing))?;
        let package = name.as_str();
        transaction
            .execute(
                "INSERT INTO check_queue (package, version) VALUES ($1, $2) ON CONFLICT (package, version) DO NOTHING",
                &[&package, &version],
            )
            .await
            .map_err(self.failed(&doing))?;
        let row = transaction
            .query_opt(
                "SELECT attempts, last_error, lease_owner, lease_token, lease_expires_at
                 FROM check_queue WHERE package = $1 AND version = $2 FOR UPDATE SKIP LOCKED",
                &[&package, &version],
            )
            .await
            .map_err(self.failed(&doing))?;
        // Locked: another replica is claiming or deciding it at this moment.
        let Some(row) = row else { return Ok(Claim::HeldElsewhere { holder: None }) };
        let mut entry = queue_entry(&row, 0);
        if entry.refuses(request) {
            return Ok(Claim::HeldElsewhere { holder: entry.lease });
        }
        let holder = LeaseHolder {
            owner: request.owner.to_owned(),
            token: super::new_lease_token(),
            expires_at: request.now + request.duration,
        };
        entry.attempts = entry.attempts.saturating_add(1);
        transaction
            .execute(
                "UPDATE check_queue SET attempts = $3, lease_owner = $4, lease_token = $5, lease_expires_at = $6
                 WHERE package = $1 AND version = $2",
                &[
                    &name.as_str(),
                    &version,
                    &attempts_column(entry.attempts),
                    &holder.owner,
                    &holder.token,
                    &holder.expires_at,
                ],
            )
            .await
            .map_err(self.failed(&doing))?;
        transaction.commit().await.map_err(self.failed(&doing))?;
        entry.lease = Some(holder.clone());
        Ok(Claim::Granted(Lease { name: name.clone(), version: version.to_owned(), holder, entry }))
    }

    pub(super) async fn record_failure(&self, lease: &Lease, error: &str, counts: bool) -> StoreResult<()> {
        let doing = format!("recording a failed check of {}@{}", lease.name, lease.version);
        let client = self.client(&doing).await?;
        client
            .execute(
                "UPDATE check_queue
                 SET attempts = CASE WHEN $4 THEN attempts ELSE GREATEST(attempts - 1, 0) END,
                     last_error = $5, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                 WHERE package = $1 AND version = $2 AND lease_token = $3",
                &[&lease.name.as_str(), &lease.version, &lease.holder.token, &counts, &super::bounded_error(error)],
            )
            .await
            .map_err(self.failed(&doing))?;
        Ok(())
    }

    pub(super) async fn decide(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        decide: impl Fn(&VersionRecord) -> Option<Transition>,
    ) -> StoreResult<LeasedDecision> {
        let (name, version) = (&lease.name, lease.version.as_str());
        let doing = format!("storing the decision on {name}@{version}");
        let mut client = self.client(&doing).await?;
        let transaction = client.transaction().await.map_err(self.failed(&doing))?;
        let token: Option<Option<String>> = transaction
            .query_opt(
                "SELECT lease_token FROM check_queue WHERE package = $1 AND version = $2 FOR UPDATE",
                &[&name.as_str(), &version],
            )
            .await
            .map_err(self.failed(&doing))?
            .map(|row| row.get(0));
        if token.flatten().as_deref() != Some(lease.holder.token.as_str()) {
            return Ok(LeasedDecision::NotHolder);
        }
        let stored = apply_transition(&transaction, name, version, now, &decide).await.map_err(self.failed(&doing))?;
        transaction
            .execute("DELETE FROM check_queue WHERE package = $1 AND version = $2", &[&name.as_str(), &version])
            .await
            .map_err(self.failed(&doing))?;
        transaction.commit().await.map_err(self.failed(&doing))?;
        Ok(LeasedDecision::Stored(stored))
    }

    pub(super) async fn dequeue(&self, name: &PackageName, version: &str) -> StoreResult<()> {
        let doing = format!("taking {name}@{version} off the check queue");
        let client = self.client(&doing).await?;
        client
            .execute("DELETE FROM check_queue WHERE package = $1 AND version = $2", &[&name.as_str(), &version])
            .await
            .map_err(self.failed(&doing))?;
        Ok(())
    }

    pub(super) async fn save_checks(
        &self,
        name: &PackageName,
        version: &str,
        checks: &serde_json::Value,
    ) -> StoreResult<()> {
        let doing = format!("storing the checks of {name}@{version}");
        let client = self.client(&doing).await?;
        client
            .execute(
                "INSERT INTO checks (package, version, record) VALUES ($1, $2, $3)
                 ON CONFLICT (package, version) DO UPDATE SET record = EXCLUDED.record",
                &[&name.as_str(), &version, &Json(checks)],
            )
            .await
            .map_err(self.failed(&doing))?;
        Ok(())
    }

    pub(super) async fn checks(&self, name: &PackageName, version: &str) -> StoreResult<Option<serde_json::Value>> {
        let doing = format!("reading the checks of {name}@{version}");
        let client = self.client(&doing).await?;
        let row = client
            .query_opt("SELECT record FROM checks WHERE package = $1 AND version = $2", &[&name.as_str(), &version])
            .await
            .map_err(self.failed(&doing))?;
        Ok(row.map(|row| row.get::<_, Json<serde_json::Value>>(0).0))
    }

    pub(super) async fn release_record(&self, name: &PackageName, version: &str) -> StoreResult<Option<Vec<u8>>> {
        let doing = format!("reading the release record of {name}@{version}");
        let client = self.client(&doing).await?;
        let row = client
            .query_opt(
                "SELECT record FROM release_records WHERE package = $1 AND version = $2",
                &[&name.as_str(), &version],
            )
            .await
            .map_err(self.failed(&doing))?;
        Ok(row.map(|row| row.get(0)))
    }

    pub(super) async fn transition(
        &self,
        name: &PackageName,
        version: &str,
        now: DateTime<Utc>,
        decide: impl Fn(&VersionRecord) -> Option<Transition>,
    ) -> StoreResult<Option<Transitioned>> {
        let doing = format!("storing the transition of {name}@{version}");
        let mut client = self.client(&doing).await?;
        let transaction = client.transaction().await.map_err(self.failed(&doing))?;
        let stored = apply_transition(&transaction, name, version, now, &decide).await.map_err(self.failed(&doing))?;
        transaction.commit().await.map_err(self.failed(&doing))?;
        Ok(stored)
    }

    pub(super) async fn log_event(&self, event: AuditEvent) -> StoreResult<()> {
        let doing = format!("logging `{}` on {}@{}", event.action, event.package, event.version);
        let client = self.client(&doing).await?;
        insert_event(&client, &event, true).await.map_err(self.failed(&doing))?;
        Ok(())
    }

    pub(super) async fn audit_events(&self) -> StoreResult<Vec<AuditEvent>> {
        let doing = "reading the audit log";
        let client = self.client(doing).await?;
        let rows = client
            .query(&format!("SELECT {EVENT_COLUMNS} FROM audit_events ORDER BY id"), &[])
            .await
            .map_err(self.failed(doing))?;
        Ok(rows.iter().map(event_of_row).collect())
    }

    pub(super) async fn history(&self, name: &PackageName, version: &str) -> StoreResult<Vec<AuditEvent>> {
        let doing = format!("reading the history of {name}@{version}");
        let client = self.client(&doing).await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM audit_events
                     WHERE in_history AND package = $1 AND version = $2 ORDER BY id"
                ),
                &[&name.as_str(), &version],
            )
            .await
            .map_err(self.failed(&doing))?;
        Ok(rows.iter().map(event_of_row).collect())
    }

    pub(super) async fn policy_rules(&self) -> StoreResult<Vec<StoredPolicyRule>> {
        let doing = "reading the policy rules";
        let client = self.client(doing).await?;
        let rows = client
            .query("SELECT id, kind, package, versions, reason, added_by, added_at FROM policy_rules ORDER BY id", &[])
            .await
            .map_err(self.failed(doing))?;
        Ok(rows
            .iter()
            .map(|row| StoredPolicyRule {
                id: row.get::<_, i64>(0).unsigned_abs(),
                kind: row.get(1),
                package: row.get(2),
                versions: row.get(3),
                reason: row.get(4),
                added_by: row.get(5),
                added_at: row.get(6),
            })
            .collect())
    }

    pub(super) async fn add_policy_rule(&self, mut rule: StoredPolicyRule) -> StoreResult<StoredPolicyRule> {
        let doing = format!("adding the {} rule for {}", rule.kind, rule.package);
        let mut client = self.client(&doing).await?;
        let transaction = client.transaction().await.map_err(self.failed(&doing))?;
        let row = transaction
            .query_one(
                "INSERT INTO policy_rules (kind, package, versions, reason, added_by, added_at)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[&rule.kind, &rule.package, &rule.versions, &rule.reason, &rule.added_by, &rule.added_at],
            )
            .await
            .map_err(self.failed(&doing))?;
        rule.id = row.get::<_, i64>(0).unsigned_abs();
        insert_event(&transaction, &rule.event(&rule.added_by, "policy-add", rule.added_at), false)
            .await
            .map_err(self.failed(&doing))?;
        transaction.commit().await.map_err(self.failed(&doing))?;
        Ok(rule)
    }

    pub(super) async fn waivers(&self) -> StoreResult<Vec<StoredWaiver>> {
        let doing = "reading the waivers";
        let client = self.client(doing).await?;
        let rows = client.query("SELECT record FROM waivers ORDER BY id", &[]).await.map_err(self.failed(doing))?;
        Ok(rows.iter().filter_map(|row| decode(row.get::<_, serde_json::Value>(0))).collect())
    }

    pub(super) async fn add_waiver(&self, mut waiver: StoredWaiver) -> StoreResult<StoredWaiver> {
        let doing = format!("adding a waiver of {} for {}", waiver.rule, waiver.package);
        let mut client = self.client(&doing).await?;
        let transaction = client.transaction().await.map_err(self.failed(&doing))?;
        let row = transaction
            .query_one("SELECT nextval(pg_get_serial_sequence('waivers', 'id'))", &[])
            .await
            .map_err(self.failed(&doing))?;
        waiver.id = row.get::<_, i64>(0).unsigned_abs();
        let id = row.get::<_, i64>(0);
        transaction
            .execute("INSERT INTO waivers (id, record) VALUES ($1, $2)", &[&id, &Json(&waiver)])
            .await
            .map_err(self.failed(&doing))?;
        insert_event(&transaction, &waiver.event(&waiver.created_by, "waiver-add", waiver.created_at), false)
            .await
            .map_err(self.failed(&doing))?;
        transaction.commit().await.map_err(self.failed(&doing))?;
        Ok(waiver)
    }

    pub(super) async fn revoke_waiver(
        &self,
        id: u64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<StoredWaiver>> {
        let doing = format!("revoking waiver {id}");
        let Ok(id) = i64::try_from(id) else { return Ok(None) };
        let mut client = self.client(&doing).await?;
        let transaction = client.transaction().await.map_err(self.failed(&doing))?;
        let row = transaction
            .query_opt("SELECT record FROM waivers WHERE id = $1 FOR UPDATE", &[&id])
            .await
            .map_err(self.failed(&doing))?;
        let Some(mut waiver) = row.and_then(|row| decode::<StoredWaiver>(row.get::<_, serde_json::Value>(0))) else {
            return Ok(None);
        };
        if waiver.revoked.is_some() {
            return Ok(Some(waiver));
        }
        waiver.revoked = Some(super::WaiverRevocation { by: actor.to_owned(), at: now });
        transaction
            .execute("UPDATE waivers SET record = $2 WHERE id = $1", &[&id, &Json(&waiver)])
            .await
            .map_err(self.failed(&doing))?;
        insert_event(&transaction, &waiver.event(actor, "waiver-revoke", now), false)
            .await
            .map_err(self.failed(&doing))?;
        transaction.commit().await.map_err(self.failed(&doing))?;
        Ok(Some(waiver))
    }

    pub(super) async fn remove_policy_rule(
        &self,
        id: u64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<StoredPolicyRule>> {
        let doing = format!("removing policy rule {id}");
        let Ok(id) = i64::try_from(id) else { return Ok(None) };
        let mut client = self.client(&doing).await?;
        let transaction = client.transaction().await.map_err(self.failed(&doing))?;
        let row = transaction
            .query_opt(
                "DELETE FROM policy_rules WHERE id = $1 RETURNING id, kind, package, versions, reason, added_by, added_at",
                &[&id],
            )
            .await
            .map_err(self.failed(&doing))?;
        let Some(row) = row else { return Ok(None) };
        let rule = StoredPolicyRule {
            id: row.get::<_, i64>(0).unsigned_abs(),
            kind: row.get(1),
            package: row.get(2),
            versions: row.get(3),
            reason: row.get(4),
            added_by: row.get(5),
            added_at: row.get(6),
        };
        insert_event(&transaction, &rule.event(actor, "policy-remove", now), false)
            .await
            .map_err(self.failed(&doing))?;
        transaction.commit().await.map_err(self.failed(&doing))?;
        Ok(Some(rule))
    }
}

impl PostgresStore {
    /// Every record (see [`super::Snapshot`]).
    pub(super) async fn export(&self) -> StoreResult<super::Snapshot> {
        let doing = "reading every record";
        let client = self.client(doing).await?;
        let mut snapshot = super::Snapshot::default();
        for row in client.query("SELECT name, record FROM packages", &[]).await.map_err(self.failed(doing))? {
            if let Some(record) = decode(row.get(1)) {
                snapshot.packages.push((row.get(0), record));
            }
        }
        for row in
            client.query("SELECT package, version, record FROM versions", &[]).await.map_err(self.failed(doing))?
        {
            if let Some(record) = decode(row.get(2)) {
                snapshot.versions.push((row.get(0), row.get(1), record));
            }
        }
        for row in
            client.query("SELECT package, file_name, entry FROM tarballs", &[]).await.map_err(self.failed(doing))?
        {
            if let Some(entry) = decode(row.get(2)) {
                snapshot.tarballs.push((row.get(0), row.get(1), entry));
            }
        }
        for row in client.query("SELECT package, version, record FROM checks", &[]).await.map_err(self.failed(doing))? {
            snapshot.checks.push((row.get(0), row.get(1), row.get::<_, Json<serde_json::Value>>(2).0));
        }
        for row in client.query("SELECT package, version, attempts, last_error, lease_owner, lease_token, lease_expires_at FROM check_queue", &[]).await.map_err(self.failed(doing))?
        {
            snapshot.queue.push((row.get(0), row.get(1), queue_entry(&row, 2)));
        }
        for row in client.query("SELECT id, time, actor, action, package, version, from_state, to_state, comment, in_history FROM audit_events", &[]).await.map_err(self.failed(doing))?
        {
            snapshot.audit.push((event_of_row(&row), row.get(9)));
        }
        for row in client
            .query("SELECT package, version, record FROM release_records", &[])
            .await
            .map_err(self.failed(doing))?
        {
            snapshot.releases.push((row.get(0), row.get(1), row.get(2)));
        }
        snapshot.policy_rules = self.policy_rules().await?;
        Ok(snapshot)
    }

    /// Writes a snapshot into an empty database in one transaction, keeping ids.
    pub(super) async fn import(&self, snapshot: &super::Snapshot) -> StoreResult<()> {
        let doing = "importing records";
        let mut client = self.client(doing).await?;
        let transaction = client.transaction().await.map_err(self.failed(doing))?;
        let held: i64 = transaction
            .query_one(
                "SELECT (SELECT count(*) FROM packages) + (SELECT count(*) FROM versions)
                      + (SELECT count(*) FROM audit_events) + (SELECT count(*) FROM policy_rules)",
                &[],
            )
            .await
            .map_err(self.failed(doing))?
            .get(0);
        if held > 0 {
            return Err(StoreError::Failed {
                doing: doing.into(),
                detail: format!(
                    "the database at {} already holds {held} records; import into an empty database",
                    self.address
                ),
            });
        }
        if let Some((name, _)) = snapshot.legacy_packuments.first() {
            return Err(StoreError::Failed {
                doing: doing.into(),
                detail: format!(
                    "the raw packument of {name} is still a metadata record; store it as a document blob first"
                ),
            });
        }
        let (names, records): (Vec<&str>, Vec<Json<&PackageRecord>>) =
            snapshot.packages.iter().map(|(name, record)| (name.as_str(), Json(record))).unzip();
        transaction
            .execute(
                "INSERT INTO packages (name, record) SELECT * FROM UNNEST($1::text[], $2::jsonb[])",
                &[&names, &records],
            )
            .await
            .map_err(self.failed("importing package records"))?;
        let (keys, records): (Vec<(&str, &str)>, Vec<Json<&VersionRecord>>) = snapshot
            .versions
            .iter()
            .map(|(name, version, record)| ((name.as_str(), version.as_str()), Json(record)))
            .unzip();
        let (packages, versions): (Vec<&str>, Vec<&str>) = keys.into_iter().unzip();
        transaction
            .execute(
                "INSERT INTO versions (package, version, record) SELECT * FROM UNNEST($1::text[], $2::text[], $3::jsonb[])",
                &[&packages, &versions, &records],
            )
            .await
            .map_err(self.failed("importing version records"))?;
        let (keys, entries): (Vec<(&str, &str)>, Vec<Json<&TarballEntry>>) = snapshot
            .tarballs
            .iter()
            .map(|(name, file_name, entry)| ((name.as_str(), file_name.as_str()), Json(entry)))
            .unzip();
        let (packages, file_names): (Vec<&str>, Vec<&str>) = keys.into_iter().unzip();
        transaction
            .execute(
                "INSERT INTO tarballs (package, file_name, entry) SELECT * FROM UNNEST($1::text[], $2::text[], $3::jsonb[])",
                &[&packages, &file_names, &entries],
            )
            .await
            .map_err(self.failed("importing tarball entries"))?;
        let (keys, checks): (Vec<(&str, &str)>, Vec<Json<&serde_json::Value>>) = snapshot
            .checks
            .iter()
            .map(|(name, version, checks)| ((name.as_str(), version.as_str()), Json(checks)))
            .unzip();
        let (packages, versions): (Vec<&str>, Vec<&str>) = keys.into_iter().unzip();
        transaction
            .execute(
                "INSERT INTO checks (package, version, record) SELECT * FROM UNNEST($1::text[], $2::text[], $3::jsonb[])",
                &[&packages, &versions, &checks],
            )
            .await
            .map_err(self.failed("importing check results"))?;
        let packages: Vec<&str> = snapshot.queue.iter().map(|(name, _, _)| name.as_str()).collect();
        let versions: Vec<&str> = snapshot.queue.iter().map(|(_, version, _)| version.as_str()).collect();
        let attempts: Vec<i32> = snapshot.queue.iter().map(|(_, _, entry)| attempts_column(entry.attempts)).collect();
        let errors: Vec<Option<&str>> =
            snapshot.queue.iter().map(|(_, _, entry)| entry.last_error.as_deref()).collect();
        transaction
            .execute(
                "INSERT INTO check_queue (package, version, attempts, last_error)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::integer[], $4::text[])",
                &[&packages, &versions, &attempts, &errors],
            )
            .await
            .map_err(self.failed("importing the check queue"))?;
        for (event, in_history) in &snapshot.audit {
            let id = i64::try_from(event.id).map_err(|_| StoreError::Failed {
                doing: "importing the audit log".into(),
                detail: format!("event id {} does not fit PostgreSQL's bigint", event.id),
            })?;
            transaction
                .execute(
                    "INSERT INTO audit_events (id, time, actor, action, package, version, from_state, to_state, comment, in_history)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[
                        &id,
                        &event.time,
                        &event.actor,
                        &event.action,
                        &event.package,
                        &event.version,
                        &event.from.map(VersionState::as_str),
                        &event.to.map(VersionState::as_str),
                        &event.comment,
                        in_history,
                    ],
                )
                .await
                .map_err(self.failed("importing the audit log"))?;
        }
        let packages: Vec<&str> = snapshot.releases.iter().map(|(name, _, _)| name.as_str()).collect();
        let versions: Vec<&str> = snapshot.releases.iter().map(|(_, version, _)| version.as_str()).collect();
        let records: Vec<&[u8]> = snapshot.releases.iter().map(|(_, _, record)| record.as_slice()).collect();
        transaction
            .execute(
                "INSERT INTO release_records (package, version, record) SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[])",
                &[&packages, &versions, &records],
            )
            .await
            .map_err(self.failed("importing release records"))?;
        for rule in &snapshot.policy_rules {
            let id = i64::try_from(rule.id).map_err(|_| StoreError::Failed {
                doing: "importing policy rules".into(),
                detail: format!("rule id {} does not fit PostgreSQL's bigint", rule.id),
            })?;
            transaction
                .execute(
                    "INSERT INTO policy_rules (id, kind, package, versions, reason, added_by, added_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[&id, &rule.kind, &rule.package, &rule.versions, &rule.reason, &rule.added_by, &rule.added_at],
                )
                .await
                .map_err(self.failed("importing policy rules"))?;
        }
        // New ids continue after the imported ones.
        transaction
            .batch_execute(
                "SELECT setval('audit_events_id_seq', COALESCE((SELECT max(id) FROM audit_events), 0) + 1, false);
                 SELECT setval('policy_rules_id_seq', COALESCE((SELECT max(id) FROM policy_rules), 0) + 1, false);",
            )
            .await
            .map_err(self.failed(doing))?;
        transaction.commit().await.map_err(self.failed(doing))
    }
}

/// The body of a transition inside a transaction: the version row is locked, `decide`
/// sees the committed record, and the record, the release record and the audit event
/// are written together.
async fn apply_transition(
    transaction: &deadpool_postgres::Transaction<'_>,
    name: &PackageName,
    version: &str,
    now: DateTime<Utc>,
    decide: &impl Fn(&VersionRecord) -> Option<Transition>,
) -> Result<Option<Transitioned>, tokio_postgres::Error> {
    let package = name.as_str();
    let row = transaction
        .query_opt("SELECT record FROM versions WHERE package = $1 AND version = $2 FOR UPDATE", &[&package, &version])
        .await?;
    let Some(current) = row.and_then(|row| decode::<VersionRecord>(row.get(0))) else { return Ok(None) };
    let Some(transition) = decide(&current) else { return Ok(None) };
    let next = current.after(&transition, now);
    transaction
        .execute(
            "UPDATE versions SET record = $3 WHERE package = $1 AND version = $2",
            &[&package, &version, &Json(&next)],
        )
        .await?;
    match transition.kept_release_record() {
        Some(record) => {
            transaction
                .execute(
                    "INSERT INTO release_records (package, version, record) VALUES ($1, $2, $3)
                     ON CONFLICT (package, version) DO UPDATE SET record = EXCLUDED.record",
                    &[&package, &version, &record],
                )
                .await?;
        }
        None => {
            transaction
                .execute("DELETE FROM release_records WHERE package = $1 AND version = $2", &[&package, &version])
                .await?;
        }
    }
    insert_event(transaction, &transition.event(name, version, current.state, now), true).await?;
    Ok(Some((current, next)))
}

const EVENT_COLUMNS: &str = "id, time, actor, action, package, version, from_state, to_state, comment";

async fn insert_event(
    client: &impl deadpool_postgres::GenericClient,
    event: &AuditEvent,
    in_history: bool,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO audit_events (time, actor, action, package, version, from_state, to_state, comment, in_history)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &event.time,
                &event.actor,
                &event.action,
                &event.package,
                &event.version,
                &event.from.map(VersionState::as_str),
                &event.to.map(VersionState::as_str),
                &event.comment,
                &in_history,
            ],
        )
        .await
        .map(drop)
}

fn event_of_row(row: &tokio_postgres::Row) -> AuditEvent {
    AuditEvent {
        id: row.get::<_, i64>(0).unsigned_abs(),
        time: row.get(1),
        actor: row.get(2),
        action: row.get(3),
        package: row.get(4),
        version: row.get(5),
        from: row.get::<_, Option<&str>>(6).and_then(VersionState::parse),
        to: row.get::<_, Option<&str>>(7).and_then(VersionState::parse),
        comment: row.get(8),
    }
}

/// A queue entry from `attempts, last_error, lease_owner, lease_token, lease_expires_at`
/// starting at column `first`.
fn queue_entry(row: &tokio_postgres::Row, first: usize) -> QueueEntry {
    let lease = match (
        row.get::<_, Option<String>>(first + 2),
        row.get::<_, Option<String>>(first + 3),
        row.get::<_, Option<DateTime<Utc>>>(first + 4),
    ) {
        (Some(owner), Some(token), Some(expires_at)) => Some(LeaseHolder { owner, token, expires_at }),
        _ => None,
    };
    QueueEntry { attempts: u32::try_from(row.get::<_, i32>(first)).unwrap_or(0), last_error: row.get(first + 1), lease }
}

fn attempts_column(attempts: u32) -> i32 {
    i32::try_from(attempts).unwrap_or(i32::MAX)
}

fn decode<T: for<'de> serde::Deserialize<'de>>(value: serde_json::Value) -> Option<T> {
    super::decode_value(value, "record")
}

/// `host:port` of the first host in a connection config (what an operator needs to
/// find the database; never the user or the password).
fn address_of(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

/// What a database error means for the caller.
fn classify(address: &str, doing: String, error: &tokio_postgres::Error) -> StoreError {
    match error.code() {
        Some(code) if *code == SqlState::DISK_FULL => StoreError::StorageFull { doing },
        // No SQLSTATE: the error is the connection's (closed, refused, timed out).
        None => StoreError::Unavailable { address: address.to_owned(), doing, detail: describe(error) },
        Some(_) => StoreError::Failed { doing, detail: describe(error) },
    }
}

/// The error with its cause (tokio-postgres puts the interesting part in the source).
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(database) => format!("{}: {}", database.code().code(), database.message()),
        None => match std::error::Error::source(error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        },
    }
}
