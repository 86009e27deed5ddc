//! Durable state: package and version records in sled, tarballs as content-addressed
//! files (see [`blobs`]).
//!
//! This is the storage interface the rest of the server uses; sled stays behind it so
//! the backend can be swapped. Records are JSON so they stay readable and can gain
//! fields without a migration.

pub mod blobs;
mod keys;
pub mod space;
mod waivers;

use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::npm::{PackageName, Version};
pub use waivers::{StoredWaiver, WaiverRevocation};

/// What Airlock remembers about a package between requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageRecord {
    /// When Airlock first fetched this package's packument.
    pub first_seen: DateTime<Utc>,
    /// When the stored packument was last confirmed by the upstream (200 or 304).
    pub fetched_at: DateTime<Utc>,
    /// The upstream's ETag for the stored packument, for conditional revalidation.
    pub upstream_etag: Option<String>,
    /// The sha256 (hex) of the raw upstream packument, stored as a document blob
    /// ([`blobs::Blobs::read_document`]). `None` for records written before documents
    /// became blobs: their raw packument is still in the `packuments` tree.
    #[serde(default)]
    pub raw_packument_sha256: Option<String>,
}

/// What a tarball file name stands for, recorded at packument ingest so the tarball
/// route authorises without a packument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarballEntry {
    /// The version the file belongs to.
    pub version: String,
    /// The integrity the upstream declared at the last fetch (SRI), if usable. Compared
    /// with the version record's, so a changed integrity is refused as before.
    pub declared_integrity: Option<String>,
    /// Where the upstream serves the file.
    pub upstream_url: String,
}

/// What Airlock remembers about one version. Written when the version is first seen and
/// never rewritten by upstream data, so a later upstream cannot change its history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    /// When Airlock first saw this version in an upstream packument.
    pub first_seen: DateTime<Utc>,
    /// The publish time the upstream claimed at first sight (`time[version]`), if any.
    pub claimed_published: Option<DateTime<Utc>>,
    /// The time the cooling period counts from: the claimed publish time when the
    /// package was new to Airlock, otherwise the later of the claim and `first_seen`,
    /// so a version that appears late cannot pretend to be old.
    pub effective_published: DateTime<Utc>,
    /// `dist.integrity` (or the `shasum` as SRI) at first sight: the only bytes this
    /// version may ever be served as.
    pub integrity: String,
    /// The sha512 (hex) of the stored tarball, once downloaded and verified.
    pub blob_sha512: Option<String>,
    /// Where the version stands in the quarantine.
    #[serde(default)]
    pub state: VersionState,
    /// When `state` last changed.
    #[serde(default)]
    pub state_changed_at: Option<DateTime<Utc>>,
    /// Who made the last decision: `pipeline`, `policy` or `admin:<name>`.
    #[serde(default)]
    pub decided_by: Option<String>,
    /// Why the version is in its state, in one sentence (the top finding, the admin's
    /// comment, the deny rule).
    #[serde(default)]
    pub reason: Option<String>,
    /// Airlock's registry signature (base64 DER ECDSA P-256 over
    /// `name@version:integrity`), set when the version is released.
    #[serde(default)]
    pub airlock_signature: Option<String>,
}

/// The states of a version in the quarantine.
///
/// ```text
///            checks pass, young           cooling period over
/// Checking ─────────────────────► Cooling ───────────────────► Released
///    │  checks pass, old enough                                  ▲
///    ├───────────────────────────────────────────────────────────┤
///    │  finding ≥ hold severity, or a required check failed      │ admin approves
///    └─────────────────────────────► Held ───────────────────────┘
///  deny rule or admin rejects (from any state) ──────────────► Rejected
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionState {
    /// Not checked yet (queued, running, or waiting for its first download).
    #[default]
    Checking,
    /// Checks passed; waiting for the cooling period to end.
    Cooling,
    /// A person must decide.
    Held,
    /// Installable.
    Released,
    /// Never installable.
    Rejected,
}

impl VersionState {
    /// The lowercase name used in the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionState::Checking => "checking",
            VersionState::Cooling => "cooling",
            VersionState::Held => "held",
            VersionState::Released => "released",
            VersionState::Rejected => "rejected",
        }
    }

    /// Parses a name as written by [`VersionState::as_str`].
    pub fn parse(text: &str) -> Option<VersionState> {
        Some(match text {
            "checking" => VersionState::Checking,
            "cooling" => VersionState::Cooling,
            "held" => VersionState::Held,
            "released" => VersionState::Released,
            "rejected" => VersionState::Rejected,
            _ => return None,
        })
    }
}

/// One entry of the audit log: a decision or an action, who did it, when and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Monotonic id; the log's order.
    pub id: u64,
    /// When.
    pub time: DateTime<Utc>,
    /// `pipeline`, `policy` or `admin:<name>`.
    pub actor: String,
    /// What was done: `checked`, `released`, `approve`, `reject`, `recheck`, ...
    pub action: String,
    /// The package.
    pub package: String,
    /// The version.
    pub version: String,
    /// State before.
    pub from: Option<VersionState>,
    /// State after.
    pub to: Option<VersionState>,
    /// The comment or reason.
    pub comment: Option<String>,
}

/// What one upstream fetch writes (see [`Store::save_fetch`]).
pub struct Fetch<'a> {
    /// The package record.
    pub record: &'a PackageRecord,
    /// Versions seen for the first time; existing records are never overwritten.
    pub new_versions: &'a [(Version, VersionRecord)],
    /// Versions to queue for checks.
    pub enqueue: &'a [Version],
    /// Tarball entries that are new or changed.
    pub tarballs: &'a [(String, TarballEntry)],
    /// Tarball file names the upstream no longer lists.
    pub removed_tarballs: &'a [String],
}

/// What a state change writes besides the record.
#[derive(Clone)]
pub struct Transition {
    /// The new state.
    pub state: VersionState,
    /// Who decided.
    pub actor: String,
    /// The audit action name.
    pub action: String,
    /// Why, in one sentence.
    pub reason: Option<String>,
    /// Airlock's registry signature, for releases.
    pub airlock_signature: Option<String>,
    /// The signed release record (DSSE JSON), for releases.
    pub release_record: Option<Vec<u8>>,
}

/// A version waiting in the check queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// Checks started for it, counted before each starts; one that took the process
    /// down counts too.
    #[serde(default)]
    pub attempts: u32,
    /// Why the last attempt failed, when it failed cleanly.
    #[serde(default)]
    pub last_error: Option<String>,
}

impl QueueEntry {
    /// Longest error kept.
    const MAX_ERROR_CHARS: usize = 1000;

    /// Reads an entry. Entries written before attempts were counted are empty values;
    /// they read as no attempts.
    fn decode(bytes: &[u8]) -> QueueEntry {
        if bytes.is_empty() {
            return QueueEntry::default();
        }
        decode(bytes).unwrap_or_default()
    }
}

/// The metadata store.
#[derive(Clone)]
pub struct Store {
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

impl Store {
    /// Opens (or creates) the store under `directory`.
    pub fn open(directory: &Path) -> anyhow::Result<Store> {
        let database = sled::Config::new()
            .path(directory)
            // Decisions must survive a crash; sled also flushes every 500 ms by itself,
            // and writes that matter call `Store::flush` explicitly.
            .flush_every_ms(Some(500))
            .cache_capacity(16 << 20)
            .open()
            .with_context(|| format!("opening the metadata store in {}", directory.display()))?;
        Ok(Store {
            packages: database.open_tree("packages")?,
            packuments: database.open_tree("packuments")?,
            versions: database.open_tree("versions")?,
            checks: database.open_tree("checks")?,
            queue: database.open_tree("queue")?,
            audit: database.open_tree("audit")?,
            history: database.open_tree("history")?,
            releases: database.open_tree("releases")?,
            policy_rules: database.open_tree("policy_rules")?,
            waivers: database.open_tree("waivers")?,
            tarballs: database.open_tree("tarballs")?,
            database,
        })
    }

    /// Whether the store still takes writes. After a write to its log fails (a full
    /// disk), sled refuses every later write until the process restarts, while reads go
    /// on. Writes one small value to sled's default tree, where nothing else lives, and
    /// does not wait for a flush.
    pub fn accepts_writes(&self) -> sled::Result<()> {
        self.database.insert(b"airlock-writability-probe", &[1u8][..]).map(drop)
    }

    /// The package's record, if Airlock has fetched it before.
    pub fn package(&self, name: &PackageName) -> sled::Result<Option<PackageRecord>> {
        Ok(self.packages.get(keys::package(name))?.and_then(|bytes| decode(&bytes)))
    }

    /// The raw upstream packument stored in the metadata store by earlier releases
    /// (newer ones store it as a document blob; see [`PackageRecord`]).
    pub fn legacy_raw_packument(&self, name: &PackageName) -> sled::Result<Option<sled::IVec>> {
        self.packuments.get(keys::package(name))
    }

    /// Stores a fetch's package record, the records of versions seen for the first
    /// time, their queue entries and the changed tarball entries, atomically, and waits
    /// until they are on disk. The raw packument is a blob written before this call.
    pub async fn save_fetch(&self, name: &PackageName, fetch: &Fetch<'_>) -> sled::Result<()> {
        use sled::Transactional as _;
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
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|error| match error {
                sled::transaction::TransactionError::Storage(error) => error,
                sled::transaction::TransactionError::Abort(()) => {
                    sled::Error::Unsupported("transaction aborted".into())
                }
            })?;
        self.flush().await?;
        Ok(())
    }

    /// What a tarball file name of a package stands for, if a fetch recorded it.
    pub fn tarball(&self, name: &PackageName, file_name: &str) -> sled::Result<Option<TarballEntry>> {
        Ok(self.tarballs.get(keys::tarball(name, file_name))?.and_then(|bytes| decode(&bytes)))
    }

    /// Every recorded tarball entry of a package, by file name.
    pub fn tarballs(&self, name: &PackageName) -> sled::Result<Vec<(String, TarballEntry)>> {
        let mut entries = Vec::new();
        for entry in self.tarballs.scan_prefix(keys::versions_prefix(name)) {
            let (key, value) = entry?;
            if let (Some(file_name), Some(entry)) = (keys::file_name_of_key(&key), decode(&value)) {
                entries.push((file_name.to_owned(), entry));
            }
        }
        Ok(entries)
    }

    /// Every version record of a package.
    pub fn versions(&self, name: &PackageName) -> sled::Result<Vec<(String, VersionRecord)>> {
        let mut records = Vec::new();
        for entry in self.versions.scan_prefix(keys::versions_prefix(name)) {
            let (key, value) = entry?;
            if let (Some(version), Some(record)) = (keys::version_of_key(&key), decode(&value)) {
                records.push((version.to_owned(), record));
            }
        }
        Ok(records)
    }

    /// Records that a version's tarball is stored and verified.
    pub async fn set_blob(&self, name: &PackageName, version: &str, sha512_hex: &str) -> sled::Result<()> {
        let key = keys::version(name, version);
        self.versions.fetch_and_update(&key, |current| {
            let mut record: VersionRecord = decode(current?)?;
            record.blob_sha512 = Some(sha512_hex.to_owned());
            Some(encode(&record))
        })?;
        self.flush().await?;
        Ok(())
    }

    /// The version's record.
    pub fn version(&self, name: &PackageName, version: &str) -> sled::Result<Option<VersionRecord>> {
        Ok(self.versions.get(keys::version(name, version))?.and_then(|bytes| decode(&bytes)))
    }
}

impl Store {
    /// Waits until everything written so far is on disk.
    ///
    /// A blocking `flush` on the blocking pool, not sled's `flush_async`: sled 0.34's
    /// `flush_async` can deadlock against transactions running on the async workers
    /// (spacejam/sled#1308), which froze the server under parallel first downloads.
    async fn flush(&self) -> sled::Result<usize> {
        let database = self.database.clone();
        tokio::task::spawn_blocking(move || database.flush())
            .await
            .unwrap_or_else(|error| Err(sled::Error::ReportableBug(format!("flush panicked: {error}"))))
    }

    /// Every version record of every package (for the admin API's listings).
    pub fn all_versions(&self) -> impl Iterator<Item = (String, String, VersionRecord)> + '_ {
        self.versions.iter().filter_map(|entry| {
            let (key, value) = entry.ok()?;
            let (name, version) = keys::split_version_key(&key)?;
            Some((name.to_owned(), version.to_owned(), decode(&value)?))
        })
    }

    /// Adds versions to the check queue, durably, with no attempts counted (an admin's
    /// recheck starts over).
    pub async fn enqueue(&self, name: &PackageName, versions: &[String]) -> sled::Result<()> {
        for version in versions {
            self.queue.insert(keys::version(name, version), encode(&QueueEntry::default()))?;
        }
        self.flush().await?;
        Ok(())
    }

    /// Everything in the check queue.
    pub fn queued(&self) -> Vec<(PackageName, String)> {
        self.queue_entries().into_iter().map(|(name, version, _)| (name, version)).collect()
    }

    /// Everything in the check queue, with attempts and last errors.
    pub fn queue_entries(&self) -> Vec<(PackageName, String, QueueEntry)> {
        self.queue
            .iter()
            .filter_map(|entry| {
                let (key, value) = entry.ok()?;
                let (name, version) = keys::split_version_key(&key)?;
                Some((PackageName::parse(name).ok()?, version.to_owned(), QueueEntry::decode(&value)))
            })
            .collect()
    }

    /// The queue entry of a version, if it is queued.
    pub fn queue_entry(&self, name: &PackageName, version: &str) -> sled::Result<Option<QueueEntry>> {
        Ok(self.queue.get(keys::version(name, version))?.map(|bytes| QueueEntry::decode(&bytes)))
    }

    /// Counts one more attempt at checking a version and waits until that is on disk,
    /// so a check that takes the process down still counts. Creates the entry for a
    /// version checked outside the queue (inside its first download). Returns the entry
    /// with this attempt counted.
    pub async fn claim(&self, name: &PackageName, version: &str) -> sled::Result<QueueEntry> {
        let key = keys::version(name, version);
        let updated = self.queue.update_and_fetch(&key, |current| {
            let mut entry = current.map(QueueEntry::decode).unwrap_or_default();
            entry.attempts = entry.attempts.saturating_add(1);
            Some(encode(&entry))
        })?;
        self.flush().await?;
        Ok(updated.map(|bytes| QueueEntry::decode(&bytes)).unwrap_or_default())
    }

    /// Records why an attempt failed. `counts` false takes the attempt back: the failure
    /// came from outside the package (the upstream was down) and the process survived.
    pub async fn record_failure(
        &self,
        name: &PackageName,
        version: &str,
        error: &str,
        counts: bool,
    ) -> sled::Result<()> {
        let key = keys::version(name, version);
        self.queue.fetch_and_update(&key, |current| {
            let mut entry = QueueEntry::decode(current?);
            if !counts {
                entry.attempts = entry.attempts.saturating_sub(1);
            }
            entry.last_error = Some(error.chars().take(QueueEntry::MAX_ERROR_CHARS).collect());
            Some(encode(&entry))
        })?;
        self.flush().await?;
        Ok(())
    }

    /// Removes a version from the check queue.
    pub fn dequeue(&self, name: &PackageName, version: &str) -> sled::Result<()> {
        self.queue.remove(keys::version(name, version))?;
        Ok(())
    }

    /// Stores check results.
    pub fn save_checks<T: Serialize>(&self, name: &PackageName, version: &str, checks: &T) -> sled::Result<()> {
        self.checks.insert(keys::version(name, version), encode(checks))?;
        Ok(())
    }

    /// The stored check results.
    pub fn checks<T: for<'de> Deserialize<'de>>(&self, name: &PackageName, version: &str) -> sled::Result<Option<T>> {
        Ok(self.checks.get(keys::version(name, version))?.and_then(|bytes| decode(&bytes)))
    }

    /// The signed release record of a version.
    pub fn release_record(&self, name: &PackageName, version: &str) -> sled::Result<Option<sled::IVec>> {
        self.releases.get(keys::version(name, version))
    }

    /// Changes a version's state atomically with its audit event, when `decide` returns
    /// a transition for the current record. Concurrent callers are serialised by the
    /// transaction: each sees the other's result, and both events are logged.
    /// Returns the record before and after, or `None` when `decide` declined.
    pub async fn transition(
        &self,
        name: &PackageName,
        version: &str,
        now: DateTime<Utc>,
        decide: impl Fn(&VersionRecord) -> Option<Transition>,
    ) -> sled::Result<Option<(VersionRecord, VersionRecord)>> {
        use sled::Transactional as _;
        let key = keys::version(name, version);
        let result = (&self.versions, &self.audit, &self.history, &self.releases).transaction(
            |(versions, audit, history, releases)| {
                let Some(current) = versions.get(key.as_slice())?.and_then(|bytes| decode::<VersionRecord>(&bytes))
                else {
                    return Ok(None);
                };
                let Some(transition) = decide(&current) else { return Ok(None) };
                let mut next = current.clone();
                next.state = transition.state;
                next.state_changed_at = Some(now);
                next.decided_by = Some(transition.actor.clone());
                next.reason = transition.reason.clone();
                next.airlock_signature = match transition.state {
                    VersionState::Released => transition.airlock_signature.clone(),
                    _ => None,
                };
                versions.insert(key.as_slice(), encode(&next))?;
                match (&transition.release_record, transition.state) {
                    (Some(record), VersionState::Released) => {
                        releases.insert(key.as_slice(), record.as_slice())?;
                    }
                    _ => {
                        releases.remove(key.as_slice())?;
                    }
                }
                let id = audit.generate_id()?;
                let event = AuditEvent {
                    id,
                    time: now,
                    actor: transition.actor.clone(),
                    action: transition.action.clone(),
                    package: name.as_str().to_owned(),
                    version: version.to_owned(),
                    from: Some(current.state),
                    to: Some(next.state),
                    comment: transition.reason.clone(),
                };
                audit.insert(&id.to_be_bytes(), encode(&event))?;
                history.insert(keys::history(name, version, id), &id.to_be_bytes())?;
                Ok::<_, sled::transaction::ConflictableTransactionError<()>>(Some((current, next)))
            },
        );
        let result = result.map_err(|error| match error {
            sled::transaction::TransactionError::Storage(error) => error,
            sled::transaction::TransactionError::Abort(()) => sled::Error::Unsupported("transaction aborted".into()),
        })?;
        self.flush().await?;
        Ok(result)
    }

    /// Appends an audit event that changes no state (a re-check request, say).
    pub async fn log_event(
        &self,
        name: &PackageName,
        version: &str,
        now: DateTime<Utc>,
        actor: &str,
        action: &str,
        comment: Option<String>,
    ) -> sled::Result<()> {
        let id = self.database.generate_id()?;
        let event = AuditEvent {
            id,
            time: now,
            actor: actor.to_owned(),
            action: action.to_owned(),
            package: name.as_str().to_owned(),
            version: version.to_owned(),
            from: None,
            to: None,
            comment,
        };
        self.audit.insert(id.to_be_bytes(), encode(&event))?;
        self.history.insert(keys::history(name, version, id), &id.to_be_bytes())?;
        self.flush().await?;
        Ok(())
    }

    /// The audit log in order, oldest first.
    pub fn audit_events(&self) -> impl Iterator<Item = AuditEvent> + '_ {
        self.audit.iter().values().filter_map(|value| decode(&value.ok()?))
    }

    /// One version's audit events, oldest first.
    pub fn history(&self, name: &PackageName, version: &str) -> Vec<AuditEvent> {
        let prefix = keys::history_prefix(name, version);
        self.history
            .scan_prefix(&prefix)
            .filter_map(|entry| {
                let (key, id) = entry.ok()?;
                // A longer version that starts like this one is not this one.
                if !keys::is_history_of(&key, &prefix) {
                    return None;
                }
                decode(&self.audit.get(id).ok()??)
            })
            .collect()
    }
}

/// An allow or deny rule added in the admin UI.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredPolicyRule {
    /// Its id (for removal).
    pub id: u64,
    /// `allow` or `deny`.
    pub kind: String,
    /// The package pattern.
    pub package: String,
    /// The version range, if any.
    pub versions: Option<String>,
    /// Why.
    pub reason: String,
    /// `admin:<name>`.
    pub added_by: String,
    /// When.
    pub added_at: DateTime<Utc>,
}

impl Store {
    /// The rules added in the admin UI, oldest first.
    pub fn policy_rules(&self) -> Vec<StoredPolicyRule> {
        self.policy_rules.iter().values().filter_map(|value| decode(&value.ok()?)).collect()
    }

    /// Adds a rule and its audit event (`policy-add`), durably. `rule.id` is assigned.
    pub async fn add_policy_rule(&self, mut rule: StoredPolicyRule) -> sled::Result<StoredPolicyRule> {
        rule.id = self.database.generate_id()?;
        let comment =
            format!("{} {}@{}: {}", rule.kind, rule.package, rule.versions.as_deref().unwrap_or("*"), rule.reason);
        self.policy_rules.insert(keys::policy_rule(rule.id), encode(&rule))?;
        self.log_policy_event(&rule, &rule.added_by, "policy-add", rule.added_at, comment).await?;
        Ok(rule)
    }

    /// Removes a rule and logs `policy-remove`; `None` when there was no such rule.
    pub async fn remove_policy_rule(
        &self,
        id: u64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> sled::Result<Option<StoredPolicyRule>> {
        let Some(rule) =
            self.policy_rules.remove(keys::policy_rule(id))?.and_then(|bytes| decode::<StoredPolicyRule>(&bytes))
        else {
            return Ok(None);
        };
        let comment =
            format!("{} {}@{}: {}", rule.kind, rule.package, rule.versions.as_deref().unwrap_or("*"), rule.reason);
        self.log_policy_event(&rule, actor, "policy-remove", now, comment).await?;
        Ok(Some(rule))
    }

    async fn log_policy_event(
        &self,
        rule: &StoredPolicyRule,
        actor: &str,
        action: &str,
        now: DateTime<Utc>,
        comment: String,
    ) -> sled::Result<()> {
        let id = self.database.generate_id()?;
        let event = AuditEvent {
            id,
            time: now,
            actor: actor.to_owned(),
            action: action.to_owned(),
            package: rule.package.clone(),
            version: rule.versions.clone().unwrap_or_else(|| "*".into()),
            from: None,
            to: None,
            comment: Some(comment),
        };
        self.audit.insert(id.to_be_bytes(), encode(&event))?;
        self.flush().await?;
        Ok(())
    }
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
