//! The embedded backend: records as JSON in sled trees, keys built in [`sled_keys`].
//! The only module that names a `sled::` type.
//!
//! sled is opened by one process at a time (it locks its directory), so a check lease
//! found at open belongs to a process that is gone: `open` clears them all, and the
//! restarted server checks those versions again at once, as before leases existed.
//! Within the process, leases have the same semantics as PostgreSQL's.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::Transactional as _;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::sled_keys as keys;
use super::space::is_storage_full;
use super::{
    AuditEvent, Claim, Fetch, Lease, LeaseHolder, LeaseRequest, LeasedDecision, PackageRecord, QueueEntry, StoreError,
    StoreResult, StoredPolicyRule, StoredWaiver, TarballEntry, Transition, Transitioned, VersionRecord,
};
use crate::npm::PackageName;

/// Turns a sled error into the store's, saying what was being done.
fn failed(doing: impl Into<String>) -> impl FnOnce(sled::Error) -> StoreError {
    move |error| match error {
        sled::Error::Io(io) if is_storage_full(&io) => StoreError::StorageFull { doing: doing.into() },
        other => StoreError::Failed { doing: doing.into(), detail: other.to_string() },
    }
}

/// The same for a transaction; `abort` is what an abort stands for.
fn transaction_failed<A>(doing: impl Into<String>) -> impl FnOnce(TransactionError<A>) -> Result<A, StoreError> {
    move |error| match error {
        TransactionError::Storage(error) => Err(failed(doing)(error)),
        TransactionError::Abort(abort) => Ok(abort),
    }
}

/// Why a lease-bound transaction stopped without writing.
#[derive(Debug)]
enum LeasedAbort {
    NotHolder,
}

/// The sled store.
#[derive(Clone)]
pub(super) struct SledStore {
    packages: sled::Tree,
    packuments: sled::Tree,
    versions: sled::Tree,
    // Check results by version key.
    checks: sled::Tree,
    // Versions waiting for checks, by version key; the pipeline's durable queue.
    queue: sled::Tree,
    // Audit events by big-endian id.
    audit: sled::Tree,
    // Audit event ids by version key + id, for a version's history.
    history: sled::Tree,
    // Signed release records by version key.
    releases: sled::Tree,
    // Allow and deny rules added in the admin UI, by big-endian id.
    policy_rules: sled::Tree,
    // Waivers (accepted findings of one rule for one package), by big-endian id.
    waivers: sled::Tree,
    // Tarball file name → `TarballEntry`, by `name\0file name`.
    tarballs: sled::Tree,
    database: sled::Db,
}

impl SledStore {
    /// Opens (or creates) the store under `directory` and clears the leases of the
    /// process that had it open before.
    pub(super) fn open(directory: &Path) -> StoreResult<SledStore> {
        let opening = format!("opening the metadata store in {}", directory.display());
        let database = sled::Config::new()
            .path(directory)
            // Decisions must survive a crash; sled also flushes every 500 ms by itself,
            // and writes that matter call `flush` explicitly.
            .flush_every_ms(Some(500))
            .cache_capacity(16 << 20)
            .open()
            .map_err(failed(opening.clone()))?;
        let tree = |name: &str| database.open_tree(name).map_err(failed(opening.clone()));
        let store = SledStore {
            packages: tree("packages")?,
            packuments: tree("packuments")?,
            versions: tree("versions")?,
            checks: tree("checks")?,
            queue: tree("queue")?,
            audit: tree("audit")?,
            history: tree("history")?,
            releases: tree("releases")?,
            policy_rules: tree("policy_rules")?,
            waivers: tree("waivers")?,
            tarballs: tree("tarballs")?,
            database,
        };
        store.clear_leases()?;
        Ok(store)
    }

    fn clear_leases(&self) -> StoreResult<()> {
        for entry in self.queue.iter() {
            let (key, value) = entry.map_err(failed("reading the check queue"))?;
            let mut queued = decode_queue_entry(&value);
            if queued.lease.take().is_some() {
                self.queue.insert(key, encode(&queued)).map_err(failed("clearing a stale check lease"))?;
            }
        }
        Ok(())
    }

    /// Writes one small value to sled's default tree, where nothing else lives, and
    /// does not wait for a flush.
    pub(super) fn accepts_writes(&self) -> StoreResult<()> {
        self.database
            .insert(b"airlock-writability-probe", &[1u8][..])
            .map(drop)
            .map_err(failed("writing the writability probe"))
    }

    pub(super) fn package(&self, name: &PackageName) -> StoreResult<Option<PackageRecord>> {
        let bytes = self.packages.get(keys::package(name)).map_err(failed(format!("reading the record of {name}")))?;
        Ok(bytes.and_then(|bytes| decode(&bytes)))
    }

    pub(super) fn legacy_raw_packument(&self, name: &PackageName) -> StoreResult<Option<Vec<u8>>> {
        let bytes = self
            .packuments
            .get(keys::package(name))
            .map_err(failed(format!("reading the stored packument of {name}")))?;
        Ok(bytes.map(|bytes| bytes.to_vec()))
    }

    pub(super) async fn save_fetch(&self, name: &PackageName, fetch: &Fetch<'_>) -> StoreResult<()> {
        let queue_keys: Vec<Vec<u8>> =
            fetch.enqueue.iter().map(|version| keys::version(name, version.as_str())).collect();
        let package_key = keys::package(name);
        let record_bytes = encode(fetch.record);
        let version_entries: Vec<(Vec<u8>, Vec<u8>)> = fetch
            .new_versions
            .iter()
            .map(|(version, record)| (keys::version(name, version.as_str()), encode(record)))
            .collect();
        let tarball_entries: Vec<(Vec<u8>, Vec<u8>)> =
            fetch.tarballs.iter().map(|(file_name, entry)| (keys::tarball(name, file_name), encode(entry))).collect();
        let removed_tarball_keys: Vec<Vec<u8>> =
            fetch.removed_tarballs.iter().map(|file_name| keys::tarball(name, file_name)).collect();
        let drop_legacy = fetch.record.raw_packument_sha256.is_some();
        let doing = format!("storing the fetch of {name}");
        (&self.packages, &self.packuments, &self.versions, &self.queue, &self.tarballs)
            .transaction(|(packages, packuments, versions, queue, tarballs)| {
                packages.insert(package_key.as_slice(), record_bytes.as_slice())?;
                if drop_legacy {
                    packuments.remove(package_key.as_slice())?;
                }
                for (key, value) in &version_entries {
                    // Never overwrite: the first sighting is the record of truth.
                    if versions.get(key.as_slice())?.is_none() {
                        versions.insert(key.as_slice(), value.as_slice())?;
                    }
                }
                for key in &queue_keys {
                    // An entry already there keeps its attempts.
                    if queue.get(key.as_slice())?.is_none() {
                        queue.insert(key.as_slice(), encode(&QueueEntry::default()))?;
                    }
                }
                for (key, value) in &tarball_entries {
                    tarballs.insert(key.as_slice(), value.as_slice())?;
                }
                for key in &removed_tarball_keys {
                    tarballs.remove(key.as_slice())?;
                }
                Ok::<(), ConflictableTransactionError<()>>(())
            })
            .or_else(transaction_failed(doing.clone()))?;
        self.flush(doing).await
    }

    pub(super) fn tarball(&self, name: &PackageName, file_name: &str) -> StoreResult<Option<TarballEntry>> {
        let bytes = self
            .tarballs
            .get(keys::tarball(name, file_name))
            .map_err(failed(format!("reading the tarball entry {name}/{file_name}")))?;
        Ok(bytes.and_then(|bytes| decode(&bytes)))
    }

    pub(super) fn tarballs(&self, name: &PackageName) -> StoreResult<Vec<(String, TarballEntry)>> {
        let mut entries = Vec::new();
        for entry in self.tarballs.scan_prefix(keys::versions_prefix(name)) {
            let (key, value) = entry.map_err(failed(format!("reading the tarball entries of {name}")))?;
            if let (Some(file_name), Some(entry)) = (keys::file_name_of_key(&key), decode(&value)) {
                entries.push((file_name.to_owned(), entry));
            }
        }
        Ok(entries)
    }

    pub(super) fn versions(&self, name: &PackageName) -> StoreResult<Vec<(String, VersionRecord)>> {
        let mut records = Vec::new();
        for entry in self.versions.scan_prefix(keys::versions_prefix(name)) {
            let (key, value) = entry.map_err(failed(format!("reading the versions of {name}")))?;
            if let (Some(version), Some(record)) = (keys::version_of_key(&key), decode(&value)) {
                records.push((version.to_owned(), record));
            }
        }
        Ok(records)
    }

    pub(super) fn version(&self, name: &PackageName, version: &str) -> StoreResult<Option<VersionRecord>> {
        let bytes = self
            .versions
            .get(keys::version(name, version))
            .map_err(failed(format!("reading the record of {name}@{version}")))?;
        Ok(bytes.and_then(|bytes| decode(&bytes)))
    }

    pub(super) fn all_versions(&self) -> StoreResult<Vec<(String, String, VersionRecord)>> {
        let mut records = Vec::new();
        for entry in self.versions.iter() {
            let (key, value) = entry.map_err(failed("reading every version record"))?;
            let Some((name, version)) = keys::split_version_key(&key) else { continue };
            if let Some(record) = decode(&value) {
                records.push((name.to_owned(), version.to_owned(), record));
            }
        }
        Ok(records)
    }

    pub(super) async fn set_blob(&self, name: &PackageName, version: &str, sha512_hex: &str) -> StoreResult<()> {
        let doing = format!("recording the stored tarball of {name}@{version}");
        self.versions
            .fetch_and_update(keys::version(name, version), |current| {
                let mut record: VersionRecord = decode(current?)?;
                record.blob_sha512 = Some(sha512_hex.to_owned());
                Some(encode(&record))
            })
            .map_err(failed(doing.clone()))?;
        self.flush(doing).await
    }

    pub(super) async fn enqueue(&self, name: &PackageName, versions: &[String]) -> StoreResult<()> {
        let doing = format!("queueing checks of {name}");
        for version in versions {
            self.queue
                .insert(keys::version(name, version), encode(&QueueEntry::default()))
                .map_err(failed(doing.clone()))?;
        }
        self.flush(doing).await
    }

    pub(super) fn queue_entries(&self) -> StoreResult<Vec<(PackageName, String, QueueEntry)>> {
        let mut entries = Vec::new();
        for entry in self.queue.iter() {
            let (key, value) = entry.map_err(failed("reading the check queue"))?;
            let Some((name, version)) = keys::split_version_key(&key) else { continue };
            let Ok(name) = PackageName::parse(name) else { continue };
            entries.push((name, version.to_owned(), decode_queue_entry(&value)));
        }
        Ok(entries)
    }

    pub(super) fn queue_entry(&self, name: &PackageName, version: &str) -> StoreResult<Option<QueueEntry>> {
        let bytes = self
            .queue
            .get(keys::version(name, version))
            .map_err(failed(format!("reading the queue entry of {name}@{version}")))?;
        Ok(bytes.map(|bytes| decode_queue_entry(&bytes)))
    }

    pub(super) async fn claim(
        &self,
        name: &PackageName,
        version: &str,
        request: &LeaseRequest<'_>,
    ) -> StoreResult<Claim> {
        let key = keys::version(name, version);
        let doing = format!("claiming the check of {name}@{version}");
        let claim = self
            .queue
            .transaction(|queue| {
                let mut entry = queue.get(key.as_slice())?.map(|bytes| decode_queue_entry(&bytes)).unwrap_or_default();
                if entry.refuses(request) {
                    return Ok(Claim::HeldElsewhere { holder: entry.lease });
                }
                let holder = LeaseHolder {
                    owner: request.owner.to_owned(),
                    token: super::new_lease_token(),
                    expires_at: request.now + request.duration,
                };
                entry.attempts = entry.attempts.saturating_add(1);
                entry.lease = Some(holder.clone());
                queue.insert(key.as_slice(), encode(&entry))?;
                Ok::<_, ConflictableTransactionError<()>>(Claim::Granted(Lease {
                    name: name.clone(),
                    version: version.to_owned(),
                    holder,
                    entry,
                }))
            })
            .map_err(|error| match error {
                TransactionError::Storage(error) => failed(doing.clone())(error),
                TransactionError::Abort(()) => StoreError::Failed { doing: doing.clone(), detail: "aborted".into() },
            })?;
        if matches!(claim, Claim::Granted(_)) {
            self.flush(doing).await?;
        }
        Ok(claim)
    }

    pub(super) async fn record_failure(&self, lease: &Lease, error: &str, counts: bool) -> StoreResult<()> {
        let doing = format!("recording a failed check of {}@{}", lease.name, lease.version);
        self.queue
            .fetch_and_update(keys::version(&lease.name, &lease.version), |current| {
                let mut entry = decode_queue_entry(current?);
                if entry.lease.as_ref().map(|holder| &holder.token) != Some(&lease.holder.token) {
                    return Some(encode(&entry));
                }
                if !counts {
                    entry.attempts = entry.attempts.saturating_sub(1);
                }
                entry.last_error = Some(super::bounded_error(error));
                entry.lease = None;
                Some(encode(&entry))
            })
            .map_err(failed(doing.clone()))?;
        self.flush(doing).await
    }

    pub(super) async fn decide(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        decide: impl Fn(&VersionRecord) -> Option<Transition>,
    ) -> StoreResult<LeasedDecision> {
        let (name, version) = (&lease.name, lease.version.as_str());
        let key = keys::version(name, version);
        let doing = format!("storing the decision on {name}@{version}");
        let result = (&self.versions, &self.audit, &self.history, &self.releases, &self.queue).transaction(
            |(versions, audit, history, releases, queue)| {
                let entry = queue.get(key.as_slice())?.map(|bytes| decode_queue_entry(&bytes));
                let holds =
                    entry.and_then(|entry| entry.lease).is_some_and(|holder| holder.token == lease.holder.token);
                if !holds {
                    return Err(ConflictableTransactionError::Abort(LeasedAbort::NotHolder));
                }
                let stored = apply_transition(versions, audit, history, releases, name, version, now, &decide)?;
                queue.remove(key.as_slice())?;
                Ok(LeasedDecision::Stored(stored))
            },
        );
        let decision = match result {
            Ok(decision) => decision,
            Err(TransactionError::Abort(LeasedAbort::NotHolder)) => return Ok(LeasedDecision::NotHolder),
            Err(TransactionError::Storage(error)) => return Err(failed(doing)(error)),
        };
        self.flush(doing).await?;
        Ok(decision)
    }

    pub(super) fn dequeue(&self, name: &PackageName, version: &str) -> StoreResult<()> {
        self.queue
            .remove(keys::version(name, version))
            .map(drop)
            .map_err(failed(format!("taking {name}@{version} off the check queue")))
    }

    pub(super) fn save_checks(&self, name: &PackageName, version: &str, checks: &serde_json::Value) -> StoreResult<()> {
        self.checks
            .insert(keys::version(name, version), encode(checks))
            .map(drop)
            .map_err(failed(format!("storing the checks of {name}@{version}")))
    }

    pub(super) fn checks(&self, name: &PackageName, version: &str) -> StoreResult<Option<serde_json::Value>> {
        let bytes = self
            .checks
            .get(keys::version(name, version))
            .map_err(failed(format!("reading the checks of {name}@{version}")))?;
        Ok(bytes.and_then(|bytes| decode(&bytes)))
    }

    pub(super) fn release_record(&self, name: &PackageName, version: &str) -> StoreResult<Option<Vec<u8>>> {
        let bytes = self
            .releases
            .get(keys::version(name, version))
            .map_err(failed(format!("reading the release record of {name}@{version}")))?;
        Ok(bytes.map(|bytes| bytes.to_vec()))
    }

    pub(super) async fn transition(
        &self,
        name: &PackageName,
        version: &str,
        now: DateTime<Utc>,
        decide: impl Fn(&VersionRecord) -> Option<Transition>,
    ) -> StoreResult<Option<Transitioned>> {
        let doing = format!("storing the transition of {name}@{version}");
        let result = (&self.versions, &self.audit, &self.history, &self.releases)
            .transaction(|(versions, audit, history, releases)| {
                apply_transition::<()>(versions, audit, history, releases, name, version, now, &decide)
            })
            .map_err(|error| match error {
                TransactionError::Storage(error) => failed(doing.clone())(error),
                TransactionError::Abort(abort) => {
                    StoreError::Failed { doing: doing.clone(), detail: format!("{abort:?}") }
                }
            })?;
        self.flush(doing).await?;
        Ok(result)
    }

    /// Appends an event; `in_history` also lists it in its version's history.
    pub(super) async fn log_event(&self, mut event: AuditEvent, in_history: bool) -> StoreResult<()> {
        let doing = format!("logging `{}` on {}@{}", event.action, event.package, event.version);
        event.id = self.database.generate_id().map_err(failed(doing.clone()))?;
        self.audit.insert(event.id.to_be_bytes(), encode(&event)).map_err(failed(doing.clone()))?;
        if in_history && let Ok(name) = PackageName::parse(&event.package) {
            self.history
                .insert(keys::history(&name, &event.version, event.id), &event.id.to_be_bytes())
                .map_err(failed(doing.clone()))?;
        }
        self.flush(doing).await
    }

    pub(super) fn audit_events(&self) -> StoreResult<Vec<AuditEvent>> {
        let mut events = Vec::new();
        for value in self.audit.iter().values() {
            if let Some(event) = decode(&value.map_err(failed("reading the audit log"))?) {
                events.push(event);
            }
        }
        Ok(events)
    }

    pub(super) fn history(&self, name: &PackageName, version: &str) -> StoreResult<Vec<AuditEvent>> {
        let doing = || format!("reading the history of {name}@{version}");
        let prefix = keys::history_prefix(name, version);
        let mut events = Vec::new();
        for entry in self.history.scan_prefix(&prefix) {
            let (key, id) = entry.map_err(failed(doing()))?;
            // A longer version that starts like this one is not this one.
            if !keys::is_history_of(&key, &prefix) {
                continue;
            }
            if let Some(event) = self.audit.get(id).map_err(failed(doing()))?.and_then(|bytes| decode(&bytes)) {
                events.push(event);
            }
        }
        Ok(events)
    }

    pub(super) fn policy_rules(&self) -> StoreResult<Vec<StoredPolicyRule>> {
        let mut rules = Vec::new();
        for value in self.policy_rules.iter().values() {
            if let Some(rule) = decode(&value.map_err(failed("reading the policy rules"))?) {
                rules.push(rule);
            }
        }
        Ok(rules)
    }

    pub(super) async fn add_policy_rule(&self, mut rule: StoredPolicyRule) -> StoreResult<StoredPolicyRule> {
        let doing = format!("adding the {} rule for {}", rule.kind, rule.package);
        rule.id = self.database.generate_id().map_err(failed(doing.clone()))?;
        self.policy_rules.insert(keys::policy_rule(rule.id), encode(&rule)).map_err(failed(doing))?;
        self.log_event(rule.event(&rule.added_by, "policy-add", rule.added_at), false).await?;
        Ok(rule)
    }

    pub(super) async fn remove_policy_rule(
        &self,
        id: u64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<StoredPolicyRule>> {
        let removed =
            self.policy_rules.remove(keys::policy_rule(id)).map_err(failed(format!("removing policy rule {id}")))?;
        let Some(rule) = removed.and_then(|bytes| decode::<StoredPolicyRule>(&bytes)) else {
            return Ok(None);
        };
        self.log_event(rule.event(actor, "policy-remove", now), false).await?;
        Ok(Some(rule))
    }

    pub(super) fn waivers(&self) -> StoreResult<Vec<StoredWaiver>> {
        let mut waivers = Vec::new();
        for value in self.waivers.iter().values() {
            if let Some(waiver) = decode(&value.map_err(failed("reading the waivers"))?) {
                waivers.push(waiver);
            }
        }
        Ok(waivers)
    }

    pub(super) async fn add_waiver(&self, mut waiver: StoredWaiver) -> StoreResult<StoredWaiver> {
        let doing = format!("adding a waiver of {} for {}", waiver.rule, waiver.package);
        waiver.id = self.database.generate_id().map_err(failed(doing.clone()))?;
        self.waivers.insert(waiver.id.to_be_bytes(), encode(&waiver)).map_err(failed(doing))?;
        self.log_event(waiver.event(&waiver.created_by, "waiver-add", waiver.created_at), false).await?;
        Ok(waiver)
    }

    pub(super) async fn revoke_waiver(
        &self,
        id: u64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<StoredWaiver>> {
        let doing = format!("revoking waiver {id}");
        let stored = self.waivers.get(id.to_be_bytes()).map_err(failed(doing.clone()))?;
        let Some(mut waiver) = stored.and_then(|bytes| decode::<StoredWaiver>(&bytes)) else { return Ok(None) };
        if waiver.revoked.is_some() {
            return Ok(Some(waiver));
        }
        waiver.revoked = Some(super::WaiverRevocation { by: actor.to_owned(), at: now });
        self.waivers.insert(id.to_be_bytes(), encode(&waiver)).map_err(failed(doing))?;
        self.log_event(waiver.event(actor, "waiver-revoke", now), false).await?;
        Ok(Some(waiver))
    }

    /// Every record, read tree by tree (see [`super::Snapshot`]).
    pub(super) fn export(&self) -> StoreResult<super::Snapshot> {
        let read = |tree: &sled::Tree, what: &str| -> StoreResult<Vec<(sled::IVec, sled::IVec)>> {
            tree.iter().collect::<Result<Vec<_>, _>>().map_err(failed(format!("reading every {what}")))
        };
        let by_version =
            |key: &[u8]| keys::split_version_key(key).map(|(name, version)| (name.to_owned(), version.to_owned()));
        let mut snapshot = super::Snapshot::default();
        for (key, value) in read(&self.packages, "package record")? {
            if let (Ok(name), Some(record)) = (std::str::from_utf8(&key), decode(&value)) {
                snapshot.packages.push((name.to_owned(), record));
            }
        }
        for (key, value) in read(&self.packuments, "stored packument")? {
            if let Ok(name) = std::str::from_utf8(&key) {
                snapshot.legacy_packuments.push((name.to_owned(), value.to_vec()));
            }
        }
        for (key, value) in read(&self.versions, "version record")? {
            if let (Some((name, version)), Some(record)) = (by_version(&key), decode(&value)) {
                snapshot.versions.push((name, version, record));
            }
        }
        for (key, value) in read(&self.tarballs, "tarball entry")? {
            let file_name = keys::file_name_of_key(&key).map(str::to_owned);
            let name = key.iter().position(|&byte| byte == 0).and_then(|end| std::str::from_utf8(&key[..end]).ok());
            if let (Some(name), Some(file_name), Some(entry)) = (name, file_name, decode(&value)) {
                snapshot.tarballs.push((name.to_owned(), file_name, entry));
            }
        }
        for (key, value) in read(&self.checks, "check result")? {
            if let (Some((name, version)), Some(checks)) = (by_version(&key), decode(&value)) {
                snapshot.checks.push((name, version, checks));
            }
        }
        for (key, value) in read(&self.queue, "queue entry")? {
            if let Some((name, version)) = by_version(&key) {
                snapshot.queue.push((name, version, decode_queue_entry(&value)));
            }
        }
        let in_history: std::collections::HashSet<Vec<u8>> =
            read(&self.history, "history entry")?.into_iter().map(|(_, id)| id.to_vec()).collect();
        for (key, value) in read(&self.audit, "audit event")? {
            if let Some(event) = decode::<AuditEvent>(&value) {
                snapshot.audit.push((event, in_history.contains(key.as_ref())));
            }
        }
        for (key, value) in read(&self.releases, "release record")? {
            if let Some((name, version)) = by_version(&key) {
                snapshot.releases.push((name, version, value.to_vec()));
            }
        }
        for (_, value) in read(&self.policy_rules, "policy rule")? {
            if let Some(rule) = decode(&value) {
                snapshot.policy_rules.push(rule);
            }
        }
        Ok(snapshot)
    }

    /// Waits until everything written so far is on disk.
    ///
    /// A blocking `flush` on the blocking pool, not sled's `flush_async`: sled 0.34's
    /// `flush_async` can deadlock against transactions running on the async workers
    /// (spacejam/sled#1308), which froze the server under parallel first downloads.
    async fn flush(&self, doing: String) -> StoreResult<()> {
        let database = self.database.clone();
        tokio::task::spawn_blocking(move || database.flush())
            .await
            .unwrap_or_else(|error| Err(sled::Error::ReportableBug(format!("flush panicked: {error}"))))
            .map(drop)
            .map_err(failed(format!("{doing} (flushing to disk)")))
    }
}

/// The body of a transition inside a sled transaction: record, release record, audit
/// event and history entry.
#[allow(clippy::too_many_arguments)]
fn apply_transition<A>(
    versions: &TransactionalTree,
    audit: &TransactionalTree,
    history: &TransactionalTree,
    releases: &TransactionalTree,
    name: &PackageName,
    version: &str,
    now: DateTime<Utc>,
    decide: &impl Fn(&VersionRecord) -> Option<Transition>,
) -> Result<Option<Transitioned>, ConflictableTransactionError<A>> {
    let key = keys::version(name, version);
    let Some(current) = versions.get(key.as_slice())?.and_then(|bytes| decode::<VersionRecord>(&bytes)) else {
        return Ok(None);
    };
    let Some(transition) = decide(&current) else { return Ok(None) };
    let next = current.after(&transition, now);
    versions.insert(key.as_slice(), encode(&next))?;
    match transition.kept_release_record() {
        Some(record) => {
            releases.insert(key.as_slice(), record)?;
        }
        None => {
            releases.remove(key.as_slice())?;
        }
    }
    let mut event = transition.event(name, version, current.state, now);
    event.id = audit.generate_id()?;
    audit.insert(&event.id.to_be_bytes(), encode(&event))?;
    history.insert(keys::history(name, version, event.id), &event.id.to_be_bytes())?;
    Ok(Some((current, next)))
}

/// Reads a queue entry. Entries written before attempts were counted are empty values;
/// they read as no attempts.
fn decode_queue_entry(bytes: &[u8]) -> QueueEntry {
    if bytes.is_empty() {
        return QueueEntry::default();
    }
    decode(bytes).unwrap_or_default()
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Option<T> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::error!(%error, "undecodable record in the metadata store");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_inside_sled_is_the_stores_storage_full_naming_what_failed() {
        let full = sled::Error::Io(std::io::Error::from_raw_os_error(28));
        let error = failed("storing the fetch of demo")(full);
        assert!(error.is_storage_full());
        assert_eq!(error.to_string(), "the metadata store's storage is full: storing the fetch of demo failed");
        let other = failed("reading demo")(sled::Error::Io(std::io::Error::from_raw_os_error(5)));
        assert!(!other.is_storage_full());
        assert!(other.to_string().starts_with("the metadata store failed: reading demo: "), "{other}");
    }
}
