//! Durable state: the metadata store (package and version records, decisions, the audit
//! log, the check queue, policy rules, release records) and the blobs (tarballs and
//! documents as content-addressed files, see [`blobs`]).
//!
//! [`Store`] is the seam: it speaks Airlock's domain and hides which backend holds the
//! records, the embedded sled database ([`sled_backend`], the default) or PostgreSQL
//! ([`postgres`], for several replicas on one database). No backend type leaves its
//! module; every failure is a [`StoreError`]. Records are JSON in both backends so they
//! stay readable and can gain fields without a migration.

pub mod blobs;
mod postgres;
mod sled_backend;
mod sled_keys;
pub mod space;
mod waivers;

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::npm::{PackageName, Version};
pub use waivers::{StoredWaiver, WaiverRevocation};

/// Every way the metadata store can fail, with what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A write met a full disk (ENOSPC/EDQUOT locally, `disk_full` in PostgreSQL).
    /// Reads go on; the server answers 507 and counts it.
    #[error("the metadata store's storage is full: {doing} failed")]
    StorageFull {
        /// What could not be stored.
        doing: String,
    },
    /// The database could not be reached (connection refused, pool timed out).
    #[error("the metadata store at {address} is unreachable: {doing} failed: {detail}")]
    Unavailable {
        /// `host:port` of the database (never the password).
        address: String,
        /// What was being done.
        doing: String,
        /// The backend's own words.
        detail: String,
    },
    /// Any other failure of the backend.
    #[error("the metadata store failed: {doing}: {detail}")]
    Failed {
        /// What was being done.
        doing: String,
        /// The backend's own words.
        detail: String,
    },
}

/// Short name for the store's error inside the crate.
pub use StoreError as Error;

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// True when the failure is a full disk.
    pub fn is_storage_full(&self) -> bool {
        matches!(self, StoreError::StorageFull { .. })
    }
}

/// What Airlock remembers about a package between requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

impl VersionRecord {
    /// The record after `transition`, made at `now`.
    fn after(&self, transition: &Transition, now: DateTime<Utc>) -> VersionRecord {
        let mut next = self.clone();
        next.state = transition.state;
        next.state_changed_at = Some(now);
        next.decided_by = Some(transition.actor.clone());
        next.reason = transition.reason.clone();
        next.airlock_signature = match transition.state {
            VersionState::Released => transition.airlock_signature.clone(),
            _ => None,
        };
        next
    }
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone)]
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

impl Transition {
    /// The audit event this transition logs, before its id is assigned.
    fn event(&self, name: &PackageName, version: &str, from: VersionState, now: DateTime<Utc>) -> AuditEvent {
        AuditEvent {
            id: 0,
            time: now,
            actor: self.actor.clone(),
            action: self.action.clone(),
            package: name.as_str().to_owned(),
            version: version.to_owned(),
            from: Some(from),
            to: Some(self.state),
            comment: self.reason.clone(),
        }
    }

    /// The release record to keep: only a release keeps one; any other state drops it.
    fn kept_release_record(&self) -> Option<&[u8]> {
        match (&self.release_record, self.state) {
            (Some(record), VersionState::Released) => Some(record),
            _ => None,
        }
    }
}

/// The record before and after a stored transition.
pub type Transitioned = (VersionRecord, VersionRecord);

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
    /// Who is checking it now, if anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseHolder>,
}

impl QueueEntry {
    /// Longest error kept.
    const MAX_ERROR_CHARS: usize = 1000;

    /// Whether someone holds an unexpired lease on the entry at `now`.
    pub fn leased_at(&self, now: DateTime<Utc>) -> bool {
        self.lease.as_ref().is_some_and(|lease| lease.expires_at > now)
    }

    /// Whether the entry's lease stops `request` from claiming it: an unexpired lease of
    /// another owner. An owner's own earlier lease does not: an owner (one process) runs
    /// one check of a version at a time, so its earlier lease is from a check that ended
    /// without giving it up (a panic).
    fn refuses(&self, request: &LeaseRequest<'_>) -> bool {
        self.lease.as_ref().is_some_and(|lease| lease.expires_at > request.now && lease.owner != request.owner)
    }
}

/// The error text kept for a failed attempt, cut to a bounded length.
fn bounded_error(error: &str) -> String {
    error.chars().take(QueueEntry::MAX_ERROR_CHARS).collect()
}

/// The holder of a check lease, as stored with the queue entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// The replica that claimed it (see [`LeaseRequest::owner`]).
    pub owner: String,
    /// Random per claim: a later claim of the same entry, even by the same owner, has
    /// another token, so a stale holder cannot store a decision.
    pub token: String,
    /// Until when the claim stands; after that another replica may reclaim the entry.
    pub expires_at: DateTime<Utc>,
}

/// Who asks for a lease, when, and for how long.
#[derive(Debug, Clone)]
pub struct LeaseRequest<'a> {
    /// This replica's id, unique per process.
    pub owner: &'a str,
    /// The time the claim is made.
    pub now: DateTime<Utc>,
    /// How long the claim stands without a decision.
    pub duration: chrono::Duration,
}

/// A granted check lease: the right to store the check's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The package.
    pub name: PackageName,
    /// The version.
    pub version: String,
    /// The lease as stored.
    pub holder: LeaseHolder,
    /// The queue entry with this attempt counted.
    pub entry: QueueEntry,
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The lease is ours.
    Granted(Lease),
    /// Another claim stands (or is being made right now); `holder` is `None` when the
    /// entry was locked by a claim in progress.
    HeldElsewhere {
        /// The current holder, when known.
        holder: Option<LeaseHolder>,
    },
}

/// What a decision under a lease did.
#[derive(Debug, Clone, PartialEq)]
// Made once per check and matched at once: boxing the records would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum LeasedDecision {
    /// The lease was ours: the decision (if `decide` made one) and the queue entry's
    /// removal are stored together.
    Stored(Option<Transitioned>),
    /// The lease is no longer ours (reclaimed after expiry, or the entry was cleared):
    /// nothing was stored.
    NotHolder,
}

/// An allow or deny rule added in the admin UI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

impl StoredPolicyRule {
    /// The audit event of adding or removing the rule.
    fn event(&self, actor: &str, action: &str, now: DateTime<Utc>) -> AuditEvent {
        let comment =
            format!("{} {}@{}: {}", self.kind, self.package, self.versions.as_deref().unwrap_or("*"), self.reason);
        AuditEvent::about_pattern(actor, action, &self.package, self.versions.as_deref(), comment, now)
    }
}

impl AuditEvent {
    /// An event about a package pattern and a range (a policy rule, a waiver) rather
    /// than one version, so no version's history lists it.
    fn about_pattern(
        actor: &str,
        action: &str,
        package: &str,
        versions: Option<&str>,
        comment: String,
        now: DateTime<Utc>,
    ) -> AuditEvent {
        AuditEvent {
            id: 0,
            time: now,
            actor: actor.to_owned(),
            action: action.to_owned(),
            package: package.to_owned(),
            version: versions.unwrap_or("*").to_owned(),
            from: None,
            to: None,
            comment: Some(comment),
        }
    }
}

/// Which metadata backend to open, from `[storage]`.
pub enum MetadataLocation<'a> {
    /// The embedded sled database in this directory.
    Sled(&'a Path),
    /// A PostgreSQL database.
    Postgres {
        /// The connection URL (`postgres://user:password@host:port/database`).
        url: &'a str,
        /// At most this many connections.
        pool_size: usize,
    },
}

/// The metadata store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sled(sled_backend::SledStore),
    Postgres(postgres::PostgresStore),
}

/// Calls the same operation on whichever backend is open; sled's are synchronous.
macro_rules! dispatch {
    ($self:ident, $backend:ident => $sled:expr, $postgres:expr) => {
        match &$self.backend {
            Backend::Sled($backend) => $sled,
            Backend::Postgres($backend) => $postgres,
        }
    };
}

impl Store {
    /// Opens (or creates) the store. PostgreSQL's schema migrations are applied first,
    /// one replica at a time.
    pub async fn open(location: MetadataLocation<'_>) -> StoreResult<Store> {
        let backend = match location {
            MetadataLocation::Sled(directory) => Backend::Sled(sled_backend::SledStore::open(directory)?),
            MetadataLocation::Postgres { url, pool_size } => {
                Backend::Postgres(postgres::PostgresStore::open(url, pool_size).await?)
            }
        };
        Ok(Store { backend })
    }

    /// Which backend this is, for logs and readiness: `sled` or `postgres`.
    pub fn backend_name(&self) -> &'static str {
        dispatch!(self, _store => "sled", "postgres")
    }

    /// Whether the store still takes writes. sled refuses every write after one to its
    /// log failed (a full disk) until the process restarts; PostgreSQL may be down.
    pub async fn accepts_writes(&self) -> StoreResult<()> {
        dispatch!(self, store => store.accepts_writes(), store.accepts_writes().await)
    }

    /// The package's record, if Airlock has fetched it before.
    pub async fn package(&self, name: &PackageName) -> StoreResult<Option<PackageRecord>> {
        dispatch!(self, store => store.package(name), store.package(name).await)
    }

    /// The raw upstream packument stored in the metadata store by earlier releases
    /// (newer ones store it as a document blob; see [`PackageRecord`]). Only sled
    /// stores can have one.
    pub async fn legacy_raw_packument(&self, name: &PackageName) -> StoreResult<Option<Vec<u8>>> {
        match &self.backend {
            Backend::Sled(store) => store.legacy_raw_packument(name),
            Backend::Postgres(_) => Ok(None),
        }
    }

    /// Stores a fetch's package record, the records of versions seen for the first
    /// time, their queue entries and the changed tarball entries, atomically and
    /// durably. The raw packument is a blob written before this call.
    pub async fn save_fetch(&self, name: &PackageName, fetch: &Fetch<'_>) -> StoreResult<()> {
        dispatch!(self, store => store.save_fetch(name, fetch).await, store.save_fetch(name, fetch).await)
    }

    /// What a tarball file name of a package stands for, if a fetch recorded it.
    pub async fn tarball(&self, name: &PackageName, file_name: &str) -> StoreResult<Option<TarballEntry>> {
        dispatch!(self, store => store.tarball(name, file_name), store.tarball(name, file_name).await)
    }

    /// Every recorded tarball entry of a package, by file name.
    pub async fn tarballs(&self, name: &PackageName) -> StoreResult<Vec<(String, TarballEntry)>> {
        dispatch!(self, store => store.tarballs(name), store.tarballs(name).await)
    }

    /// Every version record of a package.
    pub async fn versions(&self, name: &PackageName) -> StoreResult<Vec<(String, VersionRecord)>> {
        dispatch!(self, store => store.versions(name), store.versions(name).await)
    }

    /// The version's record.
    pub async fn version(&self, name: &PackageName, version: &str) -> StoreResult<Option<VersionRecord>> {
        dispatch!(self, store => store.version(name, version), store.version(name, version).await)
    }

    /// Every version record of every package (for listings and the cooling sweep).
    pub async fn all_versions(&self) -> StoreResult<Vec<(String, String, VersionRecord)>> {
        dispatch!(self, store => store.all_versions(), store.all_versions().await)
    }

    /// Records that a version's tarball is stored and verified, durably.
    pub async fn set_blob(&self, name: &PackageName, version: &str, sha512_hex: &str) -> StoreResult<()> {
        dispatch!(self, store => store.set_blob(name, version, sha512_hex).await, store.set_blob(name, version, sha512_hex).await)
    }

    /// Adds versions to the check queue, durably, with no attempts counted (an admin's
    /// recheck starts over).
    pub async fn enqueue(&self, name: &PackageName, versions: &[String]) -> StoreResult<()> {
        dispatch!(self, store => store.enqueue(name, versions).await, store.enqueue(name, versions).await)
    }

    /// Everything in the check queue, with attempts, last errors and leases.
    pub async fn queue_entries(&self) -> StoreResult<Vec<(PackageName, String, QueueEntry)>> {
        dispatch!(self, store => store.queue_entries(), store.queue_entries().await)
    }

    /// Everything in the check queue.
    pub async fn queued(&self) -> StoreResult<Vec<(PackageName, String)>> {
        Ok(self.queue_entries().await?.into_iter().map(|(name, version, _)| (name, version)).collect())
    }

    /// The queue entry of a version, if it is queued.
    pub async fn queue_entry(&self, name: &PackageName, version: &str) -> StoreResult<Option<QueueEntry>> {
        dispatch!(self, store => store.queue_entry(name, version), store.queue_entry(name, version).await)
    }

    /// Claims the lease to check a version: granted when no unexpired lease stands,
    /// counting one more attempt durably (so a check that takes the process down still
    /// counts). Creates the entry for a version checked outside the queue (inside its
    /// first download). Exactly one of several concurrent claimants wins.
    pub async fn claim(&self, name: &PackageName, version: &str, request: &LeaseRequest<'_>) -> StoreResult<Claim> {
        dispatch!(self, store => store.claim(name, version, request).await, store.claim(name, version, request).await)
    }

    /// Records why an attempt failed and gives the lease up, so the entry can be
    /// claimed again at once. `counts` false takes the attempt back: the failure came
    /// from outside the package (the upstream was down). A lease no longer held changes
    /// nothing.
    pub async fn record_failure(&self, lease: &Lease, error: &str, counts: bool) -> StoreResult<()> {
        dispatch!(self, store => store.record_failure(lease, error, counts).await, store.record_failure(lease, error, counts).await)
    }

    /// Stores a check's decision only while `lease` is held: the transition (when
    /// `decide` returns one for the current record), its audit event, its release
    /// record and the queue entry's removal, in one transaction.
    pub async fn decide(
        &self,
        lease: &Lease,
        now: DateTime<Utc>,
        decide: impl Fn(&VersionRecord) -> Option<Transition>,
    ) -> StoreResult<LeasedDecision> {
        dispatch!(self, store => store.decide(lease, now, decide).await, store.decide(lease, now, decide).await)
    }

    /// Removes a version from the check queue (an admin's decision, a version that is
    /// no longer checking). A check still running then loses its lease.
    pub async fn dequeue(&self, name: &PackageName, version: &str) -> StoreResult<()> {
        dispatch!(self, store => store.dequeue(name, version), store.dequeue(name, version).await)
    }

    /// Stores check results.
    pub async fn save_checks<T: Serialize>(&self, name: &PackageName, version: &str, checks: &T) -> StoreResult<()> {
        let value = serde_json::to_value(checks).map_err(|error| StoreError::Failed {
            doing: format!("encoding the checks of {name}@{version}"),
            detail: error.to_string(),
        })?;
        dispatch!(self, store => store.save_checks(name, version, &value), store.save_checks(name, version, &value).await)
    }

    /// The stored check results; `None` also for results this release cannot read.
    pub async fn checks<T: for<'de> Deserialize<'de>>(
        &self,
        name: &PackageName,
        version: &str,
    ) -> StoreResult<Option<T>> {
        let value = dispatch!(self, store => store.checks(name, version)?, store.checks(name, version).await?);
        Ok(value.and_then(|value| decode_value(value, "check record")))
    }

    /// The signed release record of a version.
    pub async fn release_record(&self, name: &PackageName, version: &str) -> StoreResult<Option<Vec<u8>>> {
        dispatch!(self, store => store.release_record(name, version), store.release_record(name, version).await)
    }

    /// Changes a version's state atomically with its audit event and release record,
    /// when `decide` returns a transition for the current record. Concurrent callers
    /// are serialised: each sees the other's result, and both events are logged.
    /// Returns the record before and after, or `None` when `decide` declined or there
    /// is no such version.
    pub async fn transition(
        &self,
        name: &PackageName,
        version: &str,
        now: DateTime<Utc>,
        decide: impl Fn(&VersionRecord) -> Option<Transition>,
    ) -> StoreResult<Option<Transitioned>> {
        dispatch!(self, store => store.transition(name, version, now, decide).await, store.transition(name, version, now, decide).await)
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
    ) -> StoreResult<()> {
        let event = AuditEvent {
            id: 0,
            time: now,
            actor: actor.to_owned(),
            action: action.to_owned(),
            package: name.as_str().to_owned(),
            version: version.to_owned(),
            from: None,
            to: None,
            comment,
        };
        dispatch!(self, store => store.log_event(event, true).await, store.log_event(event).await)
    }

    /// The audit log in order, oldest first.
    pub async fn audit_events(&self) -> StoreResult<Vec<AuditEvent>> {
        dispatch!(self, store => store.audit_events(), store.audit_events().await)
    }

    /// One version's audit events, oldest first.
    pub async fn history(&self, name: &PackageName, version: &str) -> StoreResult<Vec<AuditEvent>> {
        dispatch!(self, store => store.history(name, version), store.history(name, version).await)
    }

    /// The rules added in the admin UI, oldest first.
    pub async fn policy_rules(&self) -> StoreResult<Vec<StoredPolicyRule>> {
        dispatch!(self, store => store.policy_rules(), store.policy_rules().await)
    }

    /// Adds a rule and its audit event (`policy-add`), durably. `rule.id` is assigned.
    pub async fn add_policy_rule(&self, rule: StoredPolicyRule) -> StoreResult<StoredPolicyRule> {
        dispatch!(self, store => store.add_policy_rule(rule).await, store.add_policy_rule(rule).await)
    }

    /// Removes a rule and logs `policy-remove`; `None` when there was no such rule.
    pub async fn remove_policy_rule(
        &self,
        id: u64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<StoredPolicyRule>> {
        dispatch!(self, store => store.remove_policy_rule(id, actor, now).await, store.remove_policy_rule(id, actor, now).await)
    }
}

/// Every record of a metadata store, for `airlock migrate` ([`Store::export`],
/// [`Store::import`]). Queue entries are copied without their leases: a migration runs
/// with every replica stopped.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot {
    /// Package records by name.
    pub packages: Vec<(String, PackageRecord)>,
    /// Raw packuments kept in sled by releases before documents were blobs, by name.
    /// PostgreSQL keeps none: the migration stores them as document blobs first.
    pub legacy_packuments: Vec<(String, Vec<u8>)>,
    /// Version records by package and version.
    pub versions: Vec<(String, String, VersionRecord)>,
    /// Tarball entries by package and file name.
    pub tarballs: Vec<(String, String, TarballEntry)>,
    /// Check results by package and version.
    pub checks: Vec<(String, String, serde_json::Value)>,
    /// The check queue.
    pub queue: Vec<(String, String, QueueEntry)>,
    /// The audit log, oldest first, each with whether it is in its version's history.
    pub audit: Vec<(AuditEvent, bool)>,
    /// Signed release records by package and version.
    pub releases: Vec<(String, String, Vec<u8>)>,
    /// Admin-added policy rules.
    pub policy_rules: Vec<StoredPolicyRule>,
}

/// How many records of one kind a snapshot holds, and a digest over them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindSummary {
    /// The kind: `packages`, `versions`, ...
    pub kind: &'static str,
    /// How many records.
    pub count: usize,
    /// sha256 (hex) over the records in a canonical order, as JSON lines.
    pub sha256: String,
}

impl Snapshot {
    /// Sorts every kind into its canonical order, so two stores with the same records
    /// give equal snapshots and digests.
    pub fn sort(&mut self) {
        self.packages.sort_by(|left, right| left.0.cmp(&right.0));
        self.legacy_packuments.sort_by(|left, right| left.0.cmp(&right.0));
        self.versions.sort_by(|left, right| (&left.0, &left.1).cmp(&(&right.0, &right.1)));
        self.tarballs.sort_by(|left, right| (&left.0, &left.1).cmp(&(&right.0, &right.1)));
        self.checks.sort_by(|left, right| (&left.0, &left.1).cmp(&(&right.0, &right.1)));
        self.queue.sort_by(|left, right| (&left.0, &left.1).cmp(&(&right.0, &right.1)));
        for (_, _, entry) in &mut self.queue {
            entry.lease = None;
        }
        self.audit.sort_by_key(|(event, _)| event.id);
        self.releases.sort_by(|left, right| (&left.0, &left.1).cmp(&(&right.0, &right.1)));
        self.policy_rules.sort_by_key(|rule| rule.id);
    }

    /// Counts and digests of every kind (call [`Snapshot::sort`] first).
    pub fn summary(&self) -> Vec<KindSummary> {
        fn digest<T: Serialize>(kind: &'static str, records: &[T]) -> KindSummary {
            use sha2::Digest as _;
            let mut hasher = sha2::Sha256::new();
            for record in records {
                hasher.update(serde_json::to_vec(record).unwrap_or_default());
                hasher.update(b"\n");
            }
            KindSummary { kind, count: records.len(), sha256: hex::encode(hasher.finalize()) }
        }
        // Compared as PostgreSQL keeps them: times to the microsecond (sled keeps
        // nanoseconds), and check results as JSON with sorted keys (jsonb reorders).
        use chrono::SubsecRound as _;
        let checks: Vec<(&String, &String, serde_json::Value)> =
            self.checks.iter().map(|(name, version, checks)| (name, version, sorted_keys(checks))).collect();
        let audit: Vec<(AuditEvent, bool)> = self
            .audit
            .iter()
            .map(|(event, in_history)| (AuditEvent { time: event.time.trunc_subsecs(6), ..event.clone() }, *in_history))
            .collect();
        let policy_rules: Vec<StoredPolicyRule> = self
            .policy_rules
            .iter()
            .map(|rule| StoredPolicyRule { added_at: rule.added_at.trunc_subsecs(6), ..rule.clone() })
            .collect();
        vec![
            digest("packages", &self.packages),
            digest("legacy packuments", &self.legacy_packuments),
            digest("versions", &self.versions),
            digest("tarball entries", &self.tarballs),
            digest("check results", &checks),
            digest("queue entries", &self.queue),
            digest("audit events", &audit),
            digest("release records", &self.releases),
            digest("policy rules", &policy_rules),
        ]
    }
}

/// `value` with every object's keys in sorted order, for digests that do not depend on
/// the order a backend keeps them in.
fn sorted_keys(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            serde_json::Value::Object(keys.into_iter().map(|key| (key.clone(), sorted_keys(&object[key]))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.iter().map(sorted_keys).collect()),
        other => other.clone(),
    }
}

impl Store {
    /// Every record, in canonical order.
    pub async fn export(&self) -> StoreResult<Snapshot> {
        let mut snapshot = dispatch!(self, store => store.export()?, store.export().await?);
        snapshot.sort();
        Ok(snapshot)
    }

    /// Writes every record of `snapshot` into this store, which must be an empty
    /// PostgreSQL database, in one transaction that keeps audit and rule ids.
    pub async fn import(&self, snapshot: &Snapshot) -> StoreResult<()> {
        match &self.backend {
            Backend::Sled(_) => Err(StoreError::Failed {
                doing: "importing records".into(),
                detail: "only a PostgreSQL store takes an import; the embedded store is the source".into(),
            }),
            Backend::Postgres(store) => store.import(snapshot).await,
        }
    }
}

/// A random lease token: 128 bits, hex.
fn new_lease_token() -> String {
    use rand_core::RngCore as _;
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Reads a JSON value as a record, logging (not failing on) one this release cannot read.
fn decode_value<T: for<'de> Deserialize<'de>>(value: serde_json::Value, what: &str) -> Option<T> {
    match serde_json::from_value(value) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::error!(%error, what, "undecodable record in the metadata store");
            None
        }
    }
}
