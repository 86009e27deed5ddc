//! The check pipeline: fetches what the checks need, runs them off the async runtime
//! with bounded concurrency, decides by policy, records the decision, and signs
//! releases. Also the admin actions (approve, reject, recheck), which go through the
//! same state transitions.
//!
//! The queue is durable (the store's `queue` tree): a version is enqueued in the same
//! transaction that records it, and leaves the queue only after its decision is stored,
//! so a crash mid-check means the check runs again after the restart.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_scanner::provenance::{ArchiveLimits, PreviousProvenance, SigstoreTrustRoot};
use airlock_scanner::{Finding, Severity};
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, Semaphore};

use super::checks::{self, CheckInputs, CheckRecord};
use super::policy::RuntimeRules;
use super::worker::{CheckWorker, ScanContext};
use super::{Policy, Visibility};
use crate::error::{AppError, AppResult};
use crate::forge::{ForgeClient, ForgeSettings};
use crate::mirror::{Mirror, SharedError};
use crate::notifications::{Event, Notifier};
use crate::npm::{Integrity, PackageName};
use crate::signing::{ReleasePredicate, Signer};
use crate::singleflight::SingleFlight;
use crate::store::{
    Claim, Lease, LeaseRequest, LeasedDecision, QueueEntry, Store, StoredPolicyRule, Transition, VersionRecord,
    VersionState,
};

/// How often the dispatcher looks at the queue and the cooling versions without being
/// woken.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// The pipeline. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

struct Inner {
    mirror: Mirror,
    notifier: Notifier,
    forge: ForgeClient,
    trust_root: SigstoreTrustRoot,
    store: Store,
    policy: Policy,
    signer: Arc<Signer>,
    // Starts the limited subprocess each check's static scan runs in.
    worker: CheckWorker,
    // The known-malware feed; its refresh task is tracked in `tasks`.
    feed: Arc<crate::feeds::KnownMalwareFeed>,
    // Bounds concurrent checks. Acquired by `check_now` around the CPU-heavy part and
    // the downloads; released when the permit drops.
    permits: Semaphore,
    // One check per version at a time; a second caller waits for the first's result.
    flights: SingleFlight<(PackageName, String), Result<(), SharedError>>,
    // Versions the dispatcher has handed to a task; removed when the task ends.
    dispatched: Mutex<HashSet<(PackageName, String)>>,
    // Cancelled by `shutdown`; the dispatcher stops taking work when it is.
    stop: tokio_util::sync::CancellationToken,
    // Every task the pipeline spawned (the dispatcher and the checks it started);
    // `shutdown` waits for them so the store is released.
    tasks: tokio_util::task::TaskTracker,
    // Wakes the dispatcher: notified (by the mirror or an admin action) when versions
    // are enqueued. Nobody waits on it but the dispatcher task.
    wake: Arc<Notify>,
    // This process's id as a check-lease owner: unique per start, so replicas sharing
    // one database (and this process after a restart) are told apart.
    replica: String,
    // How long a check lease stands without a decision (see `lease_duration`).
    lease_duration: chrono::Duration,
    // The admin-added rules last loaded into the policy, to see what another replica
    // (or this one) changed since. Held across a whole refresh, so a slow sweep that read
    // the rules before an admin's change cannot put the older rules back after it.
    stored_rules: tokio::sync::Mutex<Vec<StoredPolicyRule>>,
}

/// A lease outlives the slowest check that can still finish: the worker's deadline plus
/// this margin for the downloads, the provenance fetches and storing the decision. A
/// replica that dies mid-check leaves its lease to expire; another then checks again.
const LEASE_MARGIN: Duration = Duration::from_secs(10 * 60);

/// How long a first download waits for another replica's check of the version, and
/// how often it looks. Past the wait the version is refused as still being checked.
const OTHER_REPLICA_WAIT: Duration = Duration::from_secs(60);
const OTHER_REPLICA_POLL: Duration = Duration::from_millis(250);
/// How long a first download on a shared store keeps looking for another replica's
/// lease when its own claim was refused but no lease is visible yet.
const CLAIM_COMMIT_GRACE: Duration = Duration::from_secs(2);

/// A random id for this process as a lease owner: the process id and 64 random bits.
fn replica_id() -> String {
    use rand_core::RngCore as _;
    format!("{}-{:016x}", std::process::id(), rand_core::OsRng.next_u64())
}

/// Why an admin action was refused.
#[derive(Debug)]
pub enum ActionError {
    /// The version is unknown.
    UnknownVersion,
    /// The request itself is wrong.
    Invalid(String),
}

impl Pipeline {
    /// Creates the pipeline and starts its dispatcher, which first resumes every
    /// version a previous run left in the queue.
    pub fn start(mirror: Mirror, signer: Arc<Signer>) -> anyhow::Result<Pipeline> {
        let config = mirror.config();
        let forge = ForgeClient::new(ForgeSettings {
            api_base_url: config.forge.api_url.as_str().trim_end_matches('/').to_owned(),
            repository_host: config.forge.repository_host.clone(),
            token: config.forge.token.as_ref().map(|token| token.expose().to_owned()),
            max_archive_bytes: config.forge.max_archive_size,
            archive_limits: ArchiveLimits::default(),
            connect_timeout: config.upstream.connect_timeout,
            request_timeout: config.forge.timeout,
            cache_directory: config.server.data_dir.join("forge-cache"),
            unreachable_backoff: crate::forge::DEFAULT_UNREACHABLE_BACKOFF,
        })
        .map_err(|error| anyhow::anyhow!("setting up the forge client: {error}"))?;
        let trust_root = match &config.quarantine.sigstore_trust_root {
            Some(path) => {
                let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                SigstoreTrustRoot::from_json(&bytes).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?
            }
            None => SigstoreTrustRoot::public_good(),
        };
        let worker = CheckWorker::new(&config.checks)?;
        let lease_duration =
            chrono::Duration::from_std(config.checks.worker_deadline + LEASE_MARGIN).unwrap_or(chrono::Duration::MAX);
        let feed = Arc::new(crate::feeds::KnownMalwareFeed::load(&config.feeds)?);
        let policy = mirror.policy().clone();
        let store = mirror.store().clone();
        let concurrency = policy.config().check_concurrency;
        let stopping = mirror.stopping();
        let pipeline = Pipeline {
            inner: Arc::new(Inner {
                notifier: Notifier::start(&config.notifications)?,
                forge,
                trust_root,
                wake: mirror.checks_wanted(),
                mirror,
                store,
                policy,
                signer,
                worker,
                feed,
                permits: Semaphore::new(concurrency),
                flights: SingleFlight::new(stopping),
                dispatched: Mutex::new(HashSet::new()),
                stop: tokio_util::sync::CancellationToken::new(),
                tasks: tokio_util::task::TaskTracker::new(),
                replica: replica_id(),
                lease_duration,
                stored_rules: tokio::sync::Mutex::new(Vec::new()),
            }),
        };
        let dispatcher = pipeline.clone();
        pipeline.inner.tasks.spawn(async move { dispatcher.dispatch_forever().await });
        let watcher = pipeline.clone();
        pipeline.inner.tasks.spawn(async move { watcher.watch_feed().await });
        Ok(pipeline)
    }

    /// Stops taking work and waits (at most `grace`) for running checks. Work that did
    /// not finish stays in the durable queue and resumes on the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.stop.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(grace, self.inner.tasks.wait()).await.is_err() {
            tracing::warn!("checks still running at shutdown; they resume on the next start");
            // Ends every fetch and check in flight; the durable queue keeps the work.
            self.inner.mirror.stopping().cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.tasks.wait()).await;
        }
        self.inner.mirror.stopping().cancel();
    }

    /// Holds what the feed lists at start, then re-reads the feed every
    /// `feeds.refresh_interval` and holds what each new feed lists, until shutdown. A
    /// failed refresh is logged once, here, and the previous feed stays in force.
    async fn watch_feed(self) {
        let feed = self.inner.feed.clone();
        if !feed.is_configured() {
            return;
        }
        self.hold_listed_versions().await;
        let mut ticker = tokio::time::interval(feed.refresh_interval());
        ticker.tick().await; // The first tick is immediate; the feed was loaded at start.
        loop {
            tokio::select! {
                () = self.inner.stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let refreshing = feed.clone();
            match tokio::task::spawn_blocking(move || refreshing.refresh()).await {
                Ok(Ok(())) => {
                    tracing::debug!("known-malware feed refreshed");
                    self.hold_listed_versions().await;
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "known-malware feed refresh failed; the previous feed stays in force")
                }
                Err(error) => {
                    tracing::error!(%error, "known-malware feed refresh panicked; the previous feed stays in force")
                }
            }
        }
    }

    /// Re-reads the feed now (an admin asked) and holds what it lists. A feed that does
    /// not load leaves the previous one in force and is an error naming file and entry.
    pub async fn refresh_feed_now(&self) -> AppResult<FeedRefresh> {
        let feed = self.inner.feed.clone();
        if !feed.is_configured() {
            return Err(AppError::BadRequest("no known-malware feed is configured (feeds.directory)".into()));
        }
        tokio::task::spawn_blocking(move || feed.refresh())
            .await
            .map_err(|error| AppError::Internal(anyhow::anyhow!("the feed refresh panicked: {error}")))?
            .map_err(|error| {
                AppError::BadRequest(format!(
                    "the known-malware feed did not reload; the previous feed stays in force: {error}"
                ))
            })?;
        let held = self.hold_listed_versions().await;
        Ok(FeedRefresh { listed_packages: self.inner.feed.current().packages.len(), held })
    }

    /// Retroactive quarantine: every version Airlock knows that the feed in force lists
    /// as malicious stops being served at once (released ones included), is held with the
    /// advisory as its reason, audited and notified. A feed only ever holds. An admin who
    /// approves a version after the feed held it has overruled that listing, and later
    /// refreshes leave the approval alone. Returns how many versions it held.
    pub async fn hold_listed_versions(&self) -> usize {
        let indicators = self.inner.feed.current();
        let mut held = 0;
        for (listed_name, listing) in &indicators.packages {
            let Ok(name) = PackageName::parse(listed_name) else {
                tracing::warn!(feed.package = %crate::npm::quote(listed_name), "the feed lists a package name npm would not accept; ignored");
                continue;
            };
            let versions = match self.inner.store.versions(&name).await {
                Ok(versions) => versions,
                Err(error) => {
                    tracing::error!(package.name = %name, %error, "reading versions for the known-malware feed failed");
                    continue;
                }
            };
            for (version, record) in versions {
                if indicators.malicious_version(listed_name, &version).is_none()
                    || matches!(record.state, VersionState::Held | VersionState::Rejected)
                {
                    continue;
                }
                let admin_decided = record.decided_by.as_deref().is_some_and(|actor| actor.starts_with("admin:"));
                // A history that cannot be read counts as not overruled: the feed holds.
                let overruled = admin_decided
                    && match self.inner.store.history(&name, &version).await {
                        Ok(history) => history.iter().any(|event| event.action == FEED_HOLD_ACTION),
                        Err(error) => {
                            tracing::error!(package.name = %name, package.version = %version, %error, "reading the history for the known-malware feed failed; holding");
                            false
                        }
                    };
                if overruled {
                    continue;
                }
                let advisories: Vec<&str> = listing.advisories.iter().map(String::as_str).collect();
                let reason = format!(
                    "listed as malicious by the known-malware feed ({}); it stays held unless an admin overrules the feed",
                    advisories.join(", ")
                );
                let transition = plain_transition(VersionState::Held, "feed", FEED_HOLD_ACTION, reason);
                let now = self.inner.mirror.now();
                let applied = self
                    .inner
                    .store
                    .transition(&name, &version, now, |current| {
                        (!matches!(current.state, VersionState::Held | VersionState::Rejected))
                            .then(|| transition.clone())
                    })
                    .await;
                match applied {
                    Ok(Some((before, after))) => {
                        held += 1;
                        self.inner.mirror.invalidate(&name);
                        let _ = self.inner.store.dequeue(&name, &version).await;
                        tracing::warn!(package.name = %name, package.version = %version, was = ?before.state, "known-malware feed lists this version; held");
                        self.notify(&name, &version, &after);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::error!(package.name = %name, package.version = %version, %error, "holding a feed-listed version failed")
                    }
                }
            }
        }
        held
    }

    /// Asks the dispatcher to look at the queue now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The signer.
    pub fn signer(&self) -> &Signer {
        &self.inner.signer
    }

    async fn dispatch_forever(self) {
        while !self.inner.stop.is_cancelled() {
            let queued = match self.inner.store.queued().await {
                Ok(queued) => queued,
                Err(error) => {
                    tracing::error!(%error, "reading the check queue failed; trying again at the next sweep");
                    Vec::new()
                }
            };
            for (name, version) in queued {
                let key = (name.clone(), version.clone());
                let newly_dispatched =
                    self.inner.dispatched.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(key.clone());
                if !newly_dispatched {
                    continue;
                }
                let pipeline = self.clone();
                self.inner.tasks.spawn(async move {
                    if let Err(error) = pipeline.check(&name, &version, false).await {
                        tracing::warn!(package.name = %name, package.version = %version, error = %error, "check failed; will retry");
                    }
                    pipeline.inner.dispatched.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&key);
                });
            }
            // Rules added or removed on another replica apply here within one sweep.
            if let Err(error) = self.refresh_stored_rules().await {
                tracing::error!(%error, "reading the admin-added policy rules failed; keeping the ones in force");
            }
            // Waivers added or revoked on another replica apply here within a sweep.
            if let Err(error) = super::waivers::reload(&self.inner.store, &self.inner.policy).await {
                tracing::warn!(%error, "reading the waivers; the loaded ones stay in force");
            }
            self.release_due_versions().await;
            tokio::select! {
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(SWEEP_INTERVAL) => {}
                () = self.inner.stop.cancelled() => {}
            }
        }
    }

    /// Loads the admin-added policy rules from the store into the policy when they
    /// changed since the last load (on any replica sharing the store), then drops the
    /// cached packuments of every known package an added or removed rule covers, so the
    /// next packument shows the change. Rules that no longer parse (a stricter validator
    /// after an upgrade) are skipped and logged.
    pub async fn refresh_stored_rules(&self) -> AppResult<()> {
        let mut current = self.inner.stored_rules.lock().await;
        let stored = self.inner.store.policy_rules().await?;
        if *current == stored {
            return Ok(());
        }
        let removed = current.iter().filter(|rule| !stored.contains(rule));
        let added = stored.iter().filter(|rule| !current.contains(rule));
        let changed: Vec<String> = removed.chain(added).map(|rule| rule.package.clone()).collect();
        let mut rules = RuntimeRules::default();
        for rule in &stored {
            match airlock_config::PackageRule::new(
                "policy rule",
                &rule.package,
                rule.versions.as_deref(),
                Some(&rule.reason),
            ) {
                Ok(parsed) if rule.kind == "deny" => rules.deny.push(parsed),
                Ok(parsed) => rules.allow.push(parsed),
                Err(error) => tracing::error!(%error, rule.id = rule.id, "skipping an admin-added policy rule"),
            }
        }
        self.inner.policy.set_runtime_rules(rules);
        *current = stored;
        drop(current);
        let patterns: Vec<airlock_config::PackageRule> = changed
            .iter()
            .filter_map(|pattern| airlock_config::PackageRule::new("policy rule", pattern, None, None).ok())
            .collect();
        let names: HashSet<String> =
            self.inner.store.all_versions().await?.into_iter().map(|(name, _, _)| name).collect();
        for name in names.into_iter().filter(|name| patterns.iter().any(|rule| rule.matches_package(name))) {
            if let Ok(package) = PackageName::parse(&name) {
                self.inner.mirror.invalidate(&package);
            }
        }
        Ok(())
    }

    /// Releases every cooling version whose cooling period is over.
    async fn release_due_versions(&self) {
        let now = self.inner.mirror.now();
        let versions = match self.inner.store.all_versions().await {
            Ok(versions) => versions,
            Err(error) => {
                tracing::error!(%error, "reading the versions to release failed; trying again at the next sweep");
                return;
            }
        };
        let due: Vec<(String, String)> = versions
            .into_iter()
            .filter(|(_, _, record)| record.state == VersionState::Cooling)
            .filter_map(|(name, version, record)| {
                let package = PackageName::parse(&name).ok()?;
                (self.inner.policy.cooling_until(&package, &version, record.effective_published) <= now)
                    .then_some((name, version))
            })
            .collect();
        for (name, version) in due {
            let Ok(package) = PackageName::parse(&name) else { continue };
            if let Err(error) = self.settle(&package, &version).await {
                tracing::warn!(package.name = %name, package.version = %version, error = %error, "releasing a cooled version failed");
            }
        }
    }

    /// Brings a listed-but-not-yet-servable version to a decision: runs its checks if
    /// it was never checked, or releases it if its cooling period is over. Called by the
    /// tarball route before serving, so no byte is served before the checks passed.
    pub async fn settle(&self, name: &PackageName, version: &str) -> AppResult<()> {
        let record = self.record(name, version).await?;
        match record.state {
            VersionState::Checking => {
                self.check(name, version, false).await?;
                self.await_other_replica(name, version).await
            }
            VersionState::Cooling => {
                let now = self.inner.mirror.now();
                if self.inner.policy.cooling_until(name, version, record.effective_published) > now {
                    return Ok(());
                }
                let mut checks: Option<CheckRecord> = self.inner.store.checks(name, version).await?;
                // A dependency published with this version may have been held while both
                // cooled (the event-stream shape: a new parent and its new dependency); so
                // dependencies are resolved again now, and a held one holds this version.
                let held = self.resolve_dependencies_again(name, version, checks.as_mut()).await?;
                if let Some(checks) = &checks {
                    self.inner.store.save_checks(name, version, checks).await?;
                }
                let (transition, holding_rules) = match held {
                    Some((reason, holding_rules)) => {
                        (plain_transition(VersionState::Held, "pipeline", "held", reason), holding_rules)
                    }
                    None => (
                        self.release_transition(
                            name,
                            version,
                            &record,
                            "pipeline",
                            "released",
                            "the checks passed and the cooling period is over".into(),
                            checks.as_ref(),
                            now,
                        ),
                        Vec::new(),
                    ),
                };
                let applied = self
                    .inner
                    .store
                    .transition(name, version, now, |current| {
                        (current.state == VersionState::Cooling).then(|| transition.clone())
                    })
                    .await?;
                self.inner.mirror.invalidate(name);
                if let Some((_, after)) = &applied
                    && after.state == VersionState::Held
                {
                    self.inner.mirror.metrics().record_holds(&holding_rules);
                    self.notify(name, version, after);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Resolves a cooled version's dependencies again before its release. Returns the
    /// hold reason and the holding rules when the policy holds on what they resolve to
    /// now. The dependency findings of the check record (when there is one) are
    /// replaced by the new ones; the caller stores it.
    async fn resolve_dependencies_again(
        &self,
        name: &PackageName,
        version: &str,
        checks: Option<&mut CheckRecord>,
    ) -> AppResult<Option<(String, Vec<String>)>> {
        let inner = &self.inner;
        let (manifest, _) = inner.mirror.upstream_manifest(name, version).await?;
        let outcome = super::dependencies::check(&inner.mirror, &inner.feed.current(), &manifest).await;
        let mut report = airlock_scanner::ScanReport {
            verdict: airlock_scanner::Verdict::Scanned,
            findings: outcome.findings,
            package: None,
            summary: None,
            diff: None,
        };
        inner.policy.apply_overrides(&mut report);
        let threshold = inner.policy.hold_severity();
        let reason = inner.policy.hold_reason(&report).map(|reason| {
            let rules = report.findings.iter().filter(|finding| finding.severity >= threshold);
            (reason, rules.map(|finding| finding.rule.clone()).collect())
        });
        let Some(checks) = checks else { return Ok(reason) };
        checks.report.findings.retain(|finding| !super::dependencies::is_dependency_rule(&finding.rule));
        checks.report.findings.extend(report.findings);
        checks.report.findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
        checks.incomplete.retain(|entry| !entry.starts_with(super::dependencies::INCOMPLETE_PREFIX));
        checks.incomplete.extend(outcome.incomplete);
        Ok(reason)
    }

    /// When another replica holds the version's check lease, waits (polling the store,
    /// at most [`OTHER_REPLICA_WAIT`]) for its decision, so a first download that
    /// reaches this replica while another checks the version is answered like one that
    /// reached the checking replica. Returns at once when the version is decided or
    /// nobody else holds its lease; the caller authorises against the record either way.
    async fn await_other_replica(&self, name: &PackageName, version: &str) -> AppResult<()> {
        let started = std::time::Instant::now();
        // Only a shared store has other replicas; sled is one process.
        let shared = self.inner.store.backend_name() != "sled";
        loop {
            let decided = self.record(name, version).await?.state != VersionState::Checking;
            let now = self.inner.mirror.now();
            let leased_elsewhere = self.inner.store.queue_entry(name, version).await?.is_some_and(|entry| {
                entry.leased_at(now) && entry.lease.as_ref().is_some_and(|lease| lease.owner != self.inner.replica)
            });
            // Our claim may have been refused while another replica's claim was still being
            // committed (the entry locked, no lease visible yet): that lease shows up within
            // moments, so a shared store is polled a little before "nobody checks it".
            let claim_in_flight = shared && started.elapsed() < CLAIM_COMMIT_GRACE;
            if decided || !(leased_elsewhere || claim_in_flight) || started.elapsed() >= OTHER_REPLICA_WAIT {
                return Ok(());
            }
            tokio::time::sleep(OTHER_REPLICA_POLL).await;
        }
    }

    /// Runs the checks of a version (once at a time per version) and records the
    /// decision. `force` re-checks a version that was already decided.
    pub async fn check(&self, name: &PackageName, version: &str, force: bool) -> AppResult<()> {
        let pipeline = self.clone();
        let task_name = name.clone();
        let task_version = version.to_owned();
        self.inner
            .flights
            .run(
                (name.clone(), version.to_owned()),
                move || async move { pipeline.check_now(&task_name, &task_version, force).await.map_err(SharedError::from) },
                || Err(AppError::Internal(anyhow::anyhow!("a check panicked or was stopped by shutdown")).into()),
            )
            .await
            .map_err(AppError::from)
    }

    async fn check_now(&self, name: &PackageName, version: &str, force: bool) -> AppResult<()> {
        let inner = &self.inner;
        let record = self.record(name, version).await?;
        if record.state != VersionState::Checking && !force {
            inner.store.dequeue(name, version).await?;
            return Ok(());
        }
        // A denied version is rejected before any of its bytes reach a check, so a deny
        // rule is the way out of a package that breaks the checks.
        if let Some(rule) = inner.policy.denied(name, version) {
            let reason = rule.reason.clone().unwrap_or_else(|| format!("a deny rule covers {}", rule.package));
            let transition = plain_transition(VersionState::Rejected, "policy", "rejected", reason);
            let applied =
                inner.store.transition(name, version, inner.mirror.now(), |_| Some(transition.clone())).await?;
            inner.mirror.invalidate(name);
            inner.store.dequeue(name, version).await?;
            if let Some((_, after)) = &applied {
                self.notify(name, version, after);
            }
            return Ok(());
        }
        let _permit =
            inner.permits.acquire().await.map_err(|_| AppError::Internal(anyhow::anyhow!("pipeline closed")))?;
        // The lease makes this replica the only one checking the version, and counts the
        // attempt on disk before the check starts: if this check takes the process down,
        // the restarted server sees the attempt and stops after `max_attempts`.
        let request = LeaseRequest { owner: &inner.replica, now: inner.mirror.now(), duration: inner.lease_duration };
        let lease = match inner.store.claim(name, version, &request).await? {
            Claim::Granted(lease) => lease,
            Claim::HeldElsewhere { holder } => {
                // Every sweep of every other replica sees the entry: not worth more than debug.
                tracing::debug!(
                    package.name = %name,
                    package.version = version,
                    holder = holder.as_ref().map(|holder| holder.owner.as_str()),
                    until = ?holder.as_ref().map(|holder| holder.expires_at),
                    "another replica is checking this version"
                );
                return Ok(());
            }
        };
        // Read again under the lease: another replica may have decided the version (and
        // given its lease up) between the first read and this claim.
        let record = self.record(name, version).await?;
        if record.state != VersionState::Checking && !force {
            inner.store.decide(&lease, inner.mirror.now(), |_| None).await?;
            return Ok(());
        }
        let max_attempts = inner.mirror.config().checks.max_attempts;
        if lease.entry.attempts > max_attempts {
            return self.hold_after_failed_attempts(&lease, max_attempts).await;
        }
        match self.run_checks(&lease, &record).await {
            Ok(()) => Ok(()),
            Err(error) => {
                // Upstream or database trouble is not the package's fault; the attempt is
                // taken back.
                let counts =
                    !matches!(error, AppError::Upstream(_) | AppError::UpstreamTimeout(_) | AppError::Unavailable(_));
                if let Err(store_error) = inner.store.record_failure(&lease, &error.to_string(), counts).await {
                    tracing::error!(package.name = %name, package.version = version, error = %store_error, "recording a failed check attempt");
                }
                Err(error)
            }
        }
    }

    /// Holds a version whose checks were started `max_attempts` times without a
    /// decision, instead of starting them again.
    async fn hold_after_failed_attempts(&self, lease: &Lease, max_attempts: u32) -> AppResult<()> {
        let inner = &self.inner;
        let (name, version, entry) = (&lease.name, lease.version.as_str(), &lease.entry);
        let started = inner.mirror.now();
        let cause = match &entry.last_error {
            Some(error) => format!("The last attempt failed: {error}"),
            None => "No attempt returned, so the process stopped during each (for example, killed by the system for its memory).".into(),
        };
        let message = format!(
            "The checks of this version were started {} times without reaching a decision (checks.max_attempts = {max_attempts}); Airlock stopped retrying. {cause}",
            entry.attempts - 1
        );
        let finding = Finding {
            rule: "check-failed-repeatedly".into(),
            severity: Severity::Critical,
            message: message.clone(),
            location: None,
            excerpt: None,
        };
        let inputs = CheckInputs { previous_version: None, extra_findings: vec![finding], incomplete: Vec::new() };
        let outcome = Ok(super::worker::WorkerResponse {
            report: airlock_scanner::ScanReport {
                verdict: airlock_scanner::Verdict::Unscannable { reason: message.clone() },
                findings: Vec::new(),
                package: None,
                summary: None,
                diff: None,
            },
            review: Default::default(),
        });
        let check_record = checks::record(outcome, inputs, &inner.policy, started, inner.mirror.now());
        inner.store.save_checks(name, version, &check_record).await?;
        let transition = plain_transition(VersionState::Held, "pipeline", "held", message);
        let decision = inner
            .store
            .decide(lease, inner.mirror.now(), |current| {
                (current.state == VersionState::Checking).then(|| transition.clone())
            })
            .await?;
        inner.mirror.invalidate(name);
        if let Some((_, after)) = &self.stored_under_lease(lease, decision) {
            self.notify(name, version, after);
        }
        inner.mirror.metrics().record_check("held", Duration::ZERO, &["check-failed-repeatedly".to_owned()]);
        tracing::warn!(package.name = %name, package.version = version, attempts = entry.attempts - 1, "held after repeated failed checks");
        Ok(())
    }

    /// The checks proper: fetches, the worker, provenance, the decision.
    async fn run_checks(&self, lease: &Lease, record: &VersionRecord) -> AppResult<()> {
        let inner = &self.inner;
        let (name, version) = (&lease.name, lease.version.as_str());
        let started = inner.mirror.now();
        tracing::info!(package.name = %name, package.version = version, "checking");

        let packument = inner.mirror.packument(name).await?;
        let view = packument
            .rendered
            .index
            .versions
            .get(version)
            .ok_or_else(|| AppError::NotFound(format!("the upstream no longer lists {name}@{version}")))?;
        let mut extra_findings = Vec::new();
        let mut incomplete = Vec::new();
        let recorded_integrity = Integrity::from_dist(Some(&record.integrity), None)?;
        if let Visibility::IntegrityChanged { recorded, declared } = &view.visibility {
            extra_findings.push(Finding {
                rule: "integrity-changed".into(),
                severity: Severity::Critical,
                message: format!(
                    "The upstream registry changed this version's integrity from {recorded} to {declared} after Airlock first saw it. Published versions are immutable on npm; this is tampering or a registry incident. The originally recorded bytes are kept."
                ),
                location: None,
                excerpt: None,
            });
        }

        // The bytes that were recorded at first sight, never the upstream's new claim.
        let tarball =
            inner.mirror.fetch_tarball_bytes(name, version, &recorded_integrity, &view.upstream_tarball).await?;
        let previous = match self.previous_released(name, version).await? {
            Some((previous_version, previous_record)) => {
                let previous_view = packument.rendered.index.versions.get(&previous_version);
                match (Integrity::from_dist(Some(&previous_record.integrity), None), previous_view) {
                    (Ok(integrity), Some(previous_view)) => {
                        match inner
                            .mirror
                            .fetch_tarball_bytes(name, &previous_version, &integrity, &previous_view.upstream_tarball)
                            .await
                        {
                            Ok(bytes) => Some((previous_version, bytes)),
                            Err(error) => {
                                incomplete.push(format!("diff against {previous_version}: {error}"));
                                None
                            }
                        }
                    }
                    _ => None,
                }
            }
            None => None,
        };

        // Signatures, provenance and the source match (fetches keys, bundles, archives).
        let (manifest, published) = inner.mirror.upstream_manifest(name, version).await?;
        let keys = inner.mirror.upstream_registry_keys(name).await;
        let previous_provenance = match &previous {
            Some((previous_version, _)) => Some(PreviousProvenance {
                version: previous_version.clone(),
                identity: inner
                    .store
                    .checks::<CheckRecord>(name, previous_version)
                    .await?
                    .and_then(|checks| checks.provenance)
                    .and_then(|provenance| super::provenance::stored_identity(&provenance)),
            }),
            None => None,
        };
        let context = super::provenance::ProvenanceContext {
            upstream: inner.mirror.upstream_for(name),
            keys: &keys,
            trust_root: &inner.trust_root,
            forge: &inner.forge,
            policy: &inner.policy,
        };
        let provenance_outcome =
            super::provenance::check(&context, name, version, &manifest, published, &tarball, previous_provenance)
                .await;
        extra_findings.extend(provenance_outcome.findings);

        // Dependencies as npm would resolve them through Airlock now: a held, rejected or
        // feed-listed one holds this version too.
        let dependency_outcome = super::dependencies::check(&inner.mirror, &inner.feed.current(), &manifest).await;
        extra_findings.extend(dependency_outcome.findings);
        incomplete.extend(dependency_outcome.incomplete);

        // Context only adds signals; when the packument cannot be read again it is unknown.
        let publication = match inner.mirror.publication_context(name, version).await {
            Ok(publication) => publication,
            Err(error) => {
                tracing::warn!(package.name = %name, package.version = version, %error, "no publication context");
                airlock_scanner::PublicationContext::default()
            }
        };
        let scan_context = ScanContext { indicators: inner.feed.current().for_package(name.as_str()), publication };
        // The static checks run in a limited subprocess; its failure is a finding.
        let outcome =
            inner.worker.scan(&tarball, previous.as_ref().map(|(_, bytes)| bytes.as_slice()), scan_context).await;
        if let Err(failure) = &outcome {
            tracing::warn!(package.name = %name, package.version = version, rule = failure.rule(), error = failure.message(), "check worker failed");
        }
        drop(tarball);
        let inputs = CheckInputs {
            previous_version: previous.map(|(previous_version, _)| previous_version),
            extra_findings,
            incomplete,
        };
        let mut check_record = checks::record(outcome, inputs, &inner.policy, started, inner.mirror.now());
        inner.policy.apply_waivers(name, version, &mut check_record.report, inner.mirror.now());
        check_record.provenance = Some(provenance_outcome.provenance);
        check_record.source_match = Some(provenance_outcome.source_match);
        inner.store.save_checks(name, version, &check_record).await?;

        let now = inner.mirror.now();
        let transition = self.decide_after_checks(name, version, record, &check_record, now);
        let decided_state = transition.state;
        let decision = inner
            .store
            .decide(lease, now, |current| {
                // An admin decision made while the checks ran stands (a hold comes from clearing
                // the queue entry).
                let admin_decided = current.decided_by.as_deref().is_some_and(|actor| actor.starts_with("admin:"))
                    && matches!(current.state, VersionState::Released | VersionState::Rejected | VersionState::Held);
                (!admin_decided).then(|| transition.clone())
            })
            .await?;
        inner.mirror.invalidate(name);
        let stored = self.stored_under_lease(lease, decision);
        if let Some((_, after)) = &stored
            && matches!(after.state, VersionState::Held | VersionState::Rejected)
        {
            self.notify(name, version, after);
        }
        let threshold = inner.policy.hold_severity();
        let holding_rules: Vec<String> = if decided_state == VersionState::Held {
            check_record
                .report
                .findings
                .iter()
                .filter(|finding| finding.severity >= threshold)
                .map(|finding| finding.rule.clone())
                .collect()
        } else {
            Vec::new()
        };
        inner.mirror.metrics().record_check(
            decided_state.as_str(),
            Duration::from_millis(check_record.duration_ms),
            &holding_rules,
        );
        tracing::info!(
            package.name = %name,
            package.version = version,
            state = decided_state.as_str(),
            applied = stored.is_some(),
            findings = check_record.report.findings.len(),
            duration_ms = check_record.duration_ms,
            "checked"
        );
        Ok(())
    }

    /// The decision the policy makes from check results.
    fn decide_after_checks(
        &self,
        name: &PackageName,
        version: &str,
        record: &VersionRecord,
        checks: &CheckRecord,
        now: DateTime<Utc>,
    ) -> Transition {
        let policy = &self.inner.policy;
        if let Some(rule) = policy.denied(name, version) {
            let reason = rule.reason.clone().unwrap_or_else(|| format!("a deny rule covers {}", rule.package));
            return plain_transition(VersionState::Rejected, "policy", "rejected", reason);
        }
        if let Some(reason) = policy.hold_reason(&checks.report) {
            return plain_transition(VersionState::Held, "pipeline", "held", reason);
        }
        if policy.cooling_until(name, version, record.effective_published) > now {
            return plain_transition(
                VersionState::Cooling,
                "pipeline",
                "checked",
                "the checks passed; waiting for the cooling period".into(),
            );
        }
        self.release_transition(
            name,
            version,
            record,
            "pipeline",
            "released",
            "the checks passed".into(),
            Some(checks),
            now,
        )
    }

    /// A transition to `Released`, signed.
    #[allow(clippy::too_many_arguments)]
    fn release_transition(
        &self,
        name: &PackageName,
        version: &str,
        record: &VersionRecord,
        actor: &str,
        action: &str,
        reason: String,
        checks: Option<&CheckRecord>,
        now: DateTime<Utc>,
    ) -> Transition {
        let signer = &self.inner.signer;
        let digest = match (
            Integrity::from_dist(Some(&record.integrity), None).ok().and_then(|integrity| integrity.sha512_hex()),
            &record.blob_sha512,
        ) {
            (Some(hex), _) => ("sha512".to_owned(), hex),
            (None, Some(hex)) => ("sha512".to_owned(), hex.clone()),
            (None, None) => ("integrity".to_owned(), record.integrity.clone()),
        };
        let config = self.inner.policy.config();
        let predicate = ReleasePredicate {
            package: name.to_string(),
            version: version.to_owned(),
            integrity: record.integrity.clone(),
            decision: "released".into(),
            actor: actor.to_owned(),
            time: now,
            reason: reason.clone(),
            policy: serde_json::json!({
                "cooling_period": airlock_config::format_duration(self.inner.policy.cooling_period(name, version)),
                "hold_severity": config.hold_severity.as_str(),
            }),
            checks: checks.map(CheckRecord::summary).unwrap_or(serde_json::Value::Null),
        };
        Transition {
            state: VersionState::Released,
            actor: actor.to_owned(),
            action: action.to_owned(),
            reason: Some(reason),
            airlock_signature: Some(signer.registry_signature(name, version, &record.integrity)),
            release_record: Some(signer.release_record(name, (&digest.0, &digest.1), &predicate)),
        }
    }

    /// What a decision under `lease` stored. A lease lost meanwhile (an admin took the
    /// version off the queue, or it expired and another replica claimed it) stored
    /// nothing: whoever holds the version now decides it.
    fn stored_under_lease(&self, lease: &Lease, decision: LeasedDecision) -> Option<crate::store::Transitioned> {
        match decision {
            LeasedDecision::Stored(stored) => stored,
            LeasedDecision::NotHolder => {
                tracing::warn!(
                    package.name = %lease.name,
                    package.version = lease.version,
                    "the check lease was lost before the decision was stored; the decision was dropped"
                );
                None
            }
        }
    }

    /// The newest released version older than `version`, for the diff.
    async fn previous_released(&self, name: &PackageName, version: &str) -> AppResult<Option<(String, VersionRecord)>> {
        let Ok(current) = semver::Version::parse(version) else { return Ok(None) };
        Ok(self
            .inner
            .store
            .versions(name)
            .await?
            .into_iter()
            .filter(|(_, record)| record.state == VersionState::Released)
            .filter_map(|(text, record)| semver::Version::parse(&text).ok().map(|parsed| (parsed, text, record)))
            .filter(|(parsed, _, _)| *parsed < current)
            .max_by(|left, right| left.0.cmp(&right.0))
            .map(|(_, text, record)| (text, record)))
    }

    async fn record(&self, name: &PackageName, version: &str) -> AppResult<VersionRecord> {
        self.inner
            .store
            .version(name, version)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("Airlock has no record of {name}@{version}")))
    }

    /// An admin releases a version now, whatever its age and findings.
    pub async fn approve(
        &self,
        name: &PackageName,
        version: &str,
        admin: &str,
        comment: &str,
    ) -> AppResult<VersionRecord> {
        let now = self.inner.mirror.now();
        let record = self.record(name, version).await?;
        let checks: Option<CheckRecord> = self.inner.store.checks(name, version).await?;
        let actor = format!("admin:{admin}");
        let transition = self.release_transition(
            name,
            version,
            &record,
            &actor,
            "approve",
            comment.to_owned(),
            checks.as_ref(),
            now,
        );
        self.apply_admin_decision(name, version, now, transition).await
    }

    /// Records an admin's decision whatever the current state, then drops the cached
    /// packument, takes the version off the check queue and tells the webhook.
    async fn apply_admin_decision(
        &self,
        name: &PackageName,
        version: &str,
        now: DateTime<Utc>,
        transition: Transition,
    ) -> AppResult<VersionRecord> {
        let result = self.inner.store.transition(name, version, now, |_| Some(transition.clone())).await?;
        self.inner.mirror.invalidate(name);
        self.inner.store.dequeue(name, version).await?;
        let (_, after) =
            result.ok_or_else(|| AppError::NotFound(format!("Airlock has no record of {name}@{version}")))?;
        self.notify(name, version, &after);
        Ok(after)
    }

    /// Tells the webhook about a decision.
    fn notify(&self, name: &PackageName, version: &str, record: &VersionRecord) {
        let event = match record.state {
            VersionState::Held => "held",
            VersionState::Rejected => "rejected",
            VersionState::Released => "released",
            _ => return,
        };
        self.inner.notifier.notify(Event {
            event,
            package: name.to_string(),
            version: version.to_owned(),
            actor: record.decided_by.clone().unwrap_or_default(),
            reason: record.reason.clone(),
            time: record.state_changed_at.unwrap_or_else(|| self.inner.mirror.now()),
            url: self.inner.mirror.status_url(name, version),
        });
    }

    /// An admin rejects a version: it is never installable.
    pub async fn reject(
        &self,
        name: &PackageName,
        version: &str,
        admin: &str,
        comment: &str,
    ) -> AppResult<VersionRecord> {
        let now = self.inner.mirror.now();
        let transition =
            plain_transition(VersionState::Rejected, &format!("admin:{admin}"), "reject", comment.to_owned());
        self.apply_admin_decision(name, version, now, transition).await
    }

    /// The check queue: each entry with whether a check of it is running now (here, or
    /// on another replica that holds its lease).
    pub async fn queue(&self) -> AppResult<Vec<(PackageName, String, QueueEntry, bool)>> {
        let entries = self.inner.store.queue_entries().await?;
        let now = self.inner.mirror.now();
        let running = self.inner.dispatched.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        Ok(entries
            .into_iter()
            .map(|(name, version, entry)| {
                let in_flight = running.contains(&(name.clone(), version.clone())) || entry.leased_at(now);
                (name, version, entry, in_flight)
            })
            .collect())
    }

    /// An admin takes a version off the check queue. A version still undecided is held
    /// (it was never checked, so it must not be served), never released.
    pub async fn clear_queue_entry(
        &self,
        name: &PackageName,
        version: &str,
        admin: &str,
        comment: &str,
    ) -> AppResult<()> {
        let now = self.inner.mirror.now();
        let transition = plain_transition(
            VersionState::Held,
            &format!("admin:{admin}"),
            "clear-queue",
            format!("taken off the check queue by {admin} before its checks finished: {comment}"),
        );
        let applied = self
            .inner
            .store
            .transition(name, version, now, |current| {
                (current.state == VersionState::Checking).then(|| transition.clone())
            })
            .await?;
        if applied.is_none() {
            self.inner
                .store
                .log_event(name, version, now, &format!("admin:{admin}"), "clear-queue", Some(comment.to_owned()))
                .await?;
        }
        self.inner.mirror.invalidate(name);
        self.inner.store.dequeue(name, version).await?;
        if let Some((_, after)) = &applied {
            self.notify(name, version, after);
        }
        Ok(())
    }

    /// An admin asks for the checks to run again; the version returns to `checking`
    /// unless an admin already decided it.
    pub async fn recheck(
        &self,
        name: &PackageName,
        version: &str,
        admin: &str,
        comment: Option<String>,
    ) -> AppResult<()> {
        let now = self.inner.mirror.now();
        let actor = format!("admin:{admin}");
        self.record(name, version).await?;
        self.inner.store.log_event(name, version, now, &actor, "recheck", comment).await?;
        self.inner.store.enqueue(name, &[version.to_owned()]).await?;
        self.check(name, version, true).await
    }
}

/// What an admin-triggered feed refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FeedRefresh {
    /// Packages the feed now lists.
    pub listed_packages: usize,
    /// Versions it held that were not held before.
    pub held: usize,
}

/// The audit action of a hold by the known-malware feed.
const FEED_HOLD_ACTION: &str = "known-malware";

fn plain_transition(state: VersionState, actor: &str, action: &str, reason: String) -> Transition {
    Transition {
        state,
        actor: actor.to_owned(),
        action: action.to_owned(),
        reason: Some(reason),
        airlock_signature: None,
        release_record: None,
    }
}
