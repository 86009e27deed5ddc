//! The caching mirror: packuments and tarballs from the upstream, through the store,
//! to clients, with revalidation, stale-if-error and one upstream fetch per key.
//!
//! Request path for a packument: memory cache (rendered bytes) → document blob (raw
//! upstream JSON, re-rendered) → upstream. For a tarball: the tarball entry recorded at
//! ingest (file name → version, declared integrity) and the version record →
//! [`quarantine::authorize`] → blob file, downloaded and verified first if missing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use airlock_config::{Config, MetadataStorage};
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;

use crate::clock::Clock;
use crate::error::{AppError, AppResult};
use crate::npm::{Integrity, PackageName, TarballFileName, Version};
use crate::packument::{self, RenderContext, Rendered};
use crate::quarantine::{self, Policy, Released, Visibility};
use crate::singleflight::SingleFlight;
use crate::store::blobs::{BlobError, Blobs, OpenedTarball};
use crate::store::space::{self, StorageReserve};
use crate::store::{
    Fetch, MetadataLocation, PackageRecord, Store, StoreError, TarballEntry, Transition, VersionRecord, VersionState,
};
use crate::upstream::{PackumentFetch, Upstream, Upstreams};

/// Largest tarball kept in the hot cache.
const MAX_HOT_TARBALL: usize = 256 << 10;

/// After an upstream failure, how long a stale packument is served before the next try.
const RETRY_AFTER_FAILURE: chrono::Duration = chrono::Duration::seconds(30);

/// Tarballs up to this size are read into memory in one blocking call; larger ones are
/// streamed. Most npm tarballs are far smaller.
const READ_WHOLE_TARBALL: u64 = 1 << 20;

/// Shortest time between two attempts to write the storage reserve again (each writes
/// up to `server.storage_reserve` bytes).
const RESERVE_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// Most package names whose upstream 404 is remembered at once (a name is at most 214
/// bytes, so this is a few MiB at worst); the least recently asked is forgotten first.
const MAX_NOT_FOUND_NAMES: usize = 10_000;

/// A rendered packument and when to look upstream again.
pub struct CachedPackument {
    /// What clients see.
    pub rendered: Rendered,
    /// When the upstream must be asked again.
    pub revalidate_at: DateTime<Utc>,
}

impl CachedPackument {
    fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        now < self.revalidate_at && self.rendered.valid_until.is_none_or(|until| now < until)
    }
}

/// A tarball authorised for serving (on disk or not yet).
pub struct TarballFile {
    /// The blob's name (hex sha512), when the integrity or an earlier download tells it.
    sha512_hex: Option<String>,
    /// What was authorised.
    pub released: Released,
    /// Where the upstream serves it, if it must be downloaded.
    upstream_url: String,
}

/// What the tarball route may do with a version.
pub enum TarballAccess {
    /// Authorised: serve it.
    Ready(TarballFile),
    /// Listed but not decided yet (never checked, or just out of its cooling period):
    /// the pipeline must settle it first.
    NeedsSettle {
        /// The version.
        version: String,
    },
}

/// The mirror service. Cheap to clone.
#[derive(Clone)]
pub struct Mirror {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    policy: Policy,
    // The key id of Airlock's registry signatures, added to released versions' dist.
    airlock_key_id: String,
    // Notified when versions are enqueued for checks; the pipeline's dispatcher waits
    // on it. Dropping it has no effect beyond that.
    checks_wanted: Arc<tokio::sync::Notify>,
    public_base: String,
    store: Store,
    blobs: Blobs,
    upstreams: Upstreams,
    clock: Arc<dyn Clock>,
    cache: WeightedCache<CachedPackument>,
    // Names the upstream answered 404 for, with when to ask again (`cache.not_found_ttl`),
    // so a client retrying an unknown name makes one upstream request per period, not
    // one per try. Locked for a lookup or an insert only; never across an await.
    not_found: Mutex<lru::LruCache<PackageName, DateTime<Utc>>>,
    // Small, frequently served tarballs by blob name (hex sha512), so the hottest ones
    // skip the blocking pool. Bounded by `cache.tarball_memory`; everything else is read
    // from disk. Only bytes verified against their name enter it.
    hot_tarballs: Mutex<(lru::LruCache<String, bytes::Bytes>, usize)>,
    storage: StorageState,
    // Why the object store failed the last probe, if it did; logged when it changes.
    blob_store_unavailable: Mutex<Option<String>>,
    // Bounds concurrent renders (CPU and transient memory); held across one render.
    render_permits: tokio::sync::Semaphore,
    // Bumped by every invalidation. A rendering started before a bump is returned but
    // not cached, so a decision is never papered over by a slower, older render.
    generation: std::sync::atomic::AtomicU64,
    // Keyed by package: concurrent misses for one packument share one upstream fetch.
    packument_flights: SingleFlight<PackageName, Result<Arc<CachedPackument>, SharedError>>,
    // Keyed by integrity: concurrent misses for one tarball share one download.
    tarball_flights: SingleFlight<String, Result<String, SharedError>>,
    // Cancelled at shutdown, after the grace period: stops fetches and checks in flight.
    stopping: tokio_util::sync::CancellationToken,
    metrics: Arc<crate::metrics::Metrics>,
}

/// What the mirror knows about its disk. Written by writes that found it full and by
/// [`Mirror::storage_problem`] (the readiness probe); read by readiness and metrics.
struct StorageState {
    reserve: StorageReserve,
    // Why the disk took no write at the last look, if it did not.
    full: Mutex<Option<String>>,
    // When writing the reserve was last tried, so probes do not write it every time.
    reserve_attempted: Mutex<Option<std::time::Instant>>,
}

/// An [`AppError`] that several waiters can receive.
#[derive(Clone)]
pub struct SharedError(Arc<AppError>);

impl From<AppError> for SharedError {
    fn from(error: AppError) -> Self {
        SharedError(Arc::new(error))
    }
}

impl From<SharedError> for AppError {
    fn from(shared: SharedError) -> Self {
        match &*shared.0 {
            AppError::BadRequest(message) => AppError::BadRequest(message.clone()),
            AppError::NotFound(message) => AppError::NotFound(message.clone()),
            AppError::Quarantined(message) => AppError::Quarantined(message.clone()),
            AppError::Upstream(message) => AppError::Upstream(message.clone()),
            AppError::UpstreamTimeout(message) => AppError::UpstreamTimeout(message.clone()),
            AppError::StorageFull(message) => AppError::StorageFull(message.clone()),
            AppError::StorageUnavailable(message) => AppError::StorageUnavailable(message.clone()),
            AppError::Unavailable(message) => AppError::Unavailable(message.clone()),
            AppError::Internal(error) => AppError::Internal(anyhow::anyhow!("{error:#}")),
        }
    }
}

fn panicked<T>() -> Result<T, SharedError> {
    Err(AppError::Internal(anyhow::anyhow!("a background fetch panicked or was stopped by shutdown")).into())
}

impl Mirror {
    /// Opens the metadata store (sled under the data directory, or PostgreSQL) and the
    /// blob directory under the configured data directory.
    ///
    /// On a full disk the sled store cannot open (sled writes when it opens): the
    /// storage reserve is released to make room, and the mirror starts marked full, so
    /// stored versions are served while readiness reports the disk.
    pub async fn open(config: Config, clock: Arc<dyn Clock>, airlock_key_id: String) -> anyhow::Result<Mirror> {
        use anyhow::Context as _;
        let data_dir = &config.server.data_dir;
        std::fs::create_dir_all(data_dir)?;
        let reserve = StorageReserve::new(data_dir, config.server.storage_reserve);
        let metadata_dir = data_dir.join("metadata");
        let location = match &config.storage.metadata {
            MetadataStorage::Sled => MetadataLocation::Sled(&metadata_dir),
            MetadataStorage::Postgres { url, pool_size } => {
                MetadataLocation::Postgres { url: url.expose(), pool_size: *pool_size as usize }
            }
        };
        let (store, full_at_start) = match Store::open(location).await {
            Ok(store) => (store, None),
            Err(error) if error.is_storage_full() && config.storage.metadata == MetadataStorage::Sled => {
                let freed = reserve.release().context("releasing the storage reserve")?;
                if freed == 0 {
                    return Err(anyhow::Error::new(error).context(format!(
                        "the disk of {} is full and there is no storage reserve (server.storage_reserve) to release; free some space",
                        data_dir.display()
                    )));
                }
                tracing::error!(
                    data_dir = %data_dir.display(),
                    freed_bytes = freed,
                    "the disk is full: released the storage reserve to open the metadata store; serving stored versions, not ready until space is freed"
                );
                let store = Store::open(MetadataLocation::Sled(&metadata_dir))
                    .await
                    .context("opening the metadata store after releasing the reserve")?;
                let reason = format!(
                    "the disk of {} was full at start: the storage reserve ({freed} bytes) was released so that stored versions can be served; free disk space",
                    data_dir.display()
                );
                (store, Some(reason))
            }
            Err(error) => {
                let described = match &config.storage.metadata {
                    MetadataStorage::Sled => format!("opening the metadata store in {}", metadata_dir.display()),
                    MetadataStorage::Postgres { url, .. } => {
                        format!("opening the metadata store on PostgreSQL at {}", url.address())
                    }
                };
                return Err(anyhow::Error::new(error).context(described));
            }
        };
        let blobs = Blobs::open(&config.storage.blobs, data_dir).context("opening the blob store")?;
        if full_at_start.is_none()
            && let Err(error) = reserve.ensure()
        {
            tracing::warn!(
                %error,
                bytes = config.server.storage_reserve,
                "could not set the storage reserve aside; a start on a full disk may fail"
            );
        }
        let upstreams = Upstreams::new(&config.upstream, config.limits.max_packument_size)?;
        let public_base = config.server.public_url.as_str().trim_end_matches('/').to_owned();
        let cache = WeightedCache::new(config.cache.rendered_packuments_memory as usize);
        let stopping = tokio_util::sync::CancellationToken::new();
        Ok(Mirror {
            inner: Arc::new(Inner {
                policy: Policy::new(config.quarantine.clone()),
                config,
                airlock_key_id,
                checks_wanted: Arc::new(tokio::sync::Notify::new()),
                public_base,
                store,
                blobs,
                upstreams,
                clock,
                cache,
                not_found: Mutex::new(lru::LruCache::new(
                    std::num::NonZeroUsize::new(MAX_NOT_FOUND_NAMES).expect("a non-zero constant"),
                )),
                hot_tarballs: Mutex::new((lru::LruCache::unbounded(), 0)),
                storage: StorageState {
                    reserve,
                    full: Mutex::new(full_at_start),
                    reserve_attempted: Mutex::new(Some(std::time::Instant::now())),
                },
                blob_store_unavailable: Mutex::new(None),
                generation: std::sync::atomic::AtomicU64::new(0),
                render_permits: tokio::sync::Semaphore::new(4),
                packument_flights: SingleFlight::new(stopping.clone()),
                tarball_flights: SingleFlight::new(stopping.clone()),
                stopping,
                metrics: Arc::default(),
            }),
        })
    }

    /// The configuration the mirror runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The upstream that serves a package.
    pub fn upstream_for(&self, name: &PackageName) -> &Upstream {
        self.inner.upstreams.for_package(name)
    }

    /// The default upstream (audits, `/-/npm/v1/keys`).
    pub fn default_upstream(&self) -> &Upstream {
        self.inner.upstreams.default_upstream()
    }

    /// Cancelled when the server stops; in-flight fetches and checks end with it.
    pub fn stopping(&self) -> tokio_util::sync::CancellationToken {
        self.inner.stopping.clone()
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    /// Whether the last write or probe found the disk full.
    pub fn storage_is_full(&self) -> bool {
        lock(&self.inner.storage.full).is_some()
    }

    /// Counts a write refused for lack of space and remembers it for readiness.
    fn note_storage_full(&self, store: &'static str, message: &str) {
        self.inner.metrics.record_storage_full(store);
        self.set_storage_problem(Some(message.to_owned()));
    }

    /// Records the storage's state, logging when it changes (not on every probe).
    fn set_storage_problem(&self, problem: Option<String>) {
        let mut full = lock(&self.inner.storage.full);
        match (&*full, &problem) {
            (None, Some(reason)) => tracing::error!(reason, "storage cannot take writes"),
            (Some(_), None) => tracing::info!("storage takes writes again"),
            _ => {}
        }
        *full = problem;
    }

    /// Converts a write's error; a full disk is counted under `store` and remembered.
    fn write_error(&self, store: &'static str, error: impl Into<AppError>) -> AppError {
        let error = error.into();
        if let AppError::StorageFull(message) = &error {
            self.note_storage_full(store, message);
        }
        error
    }

    /// Why Airlock cannot store what it fetches, or `None` when it can: the metadata
    /// store must take a write (sled refuses every write after one failed, until a
    /// restart), the blob directory must take a synced page, and the storage reserve
    /// must be whole (it is written again, at most once a minute, when there is room).
    /// For `/-/airlock/ready`.
    pub async fn storage_problem(&self) -> Option<String> {
        let inner = &self.inner;
        let data_dir = inner.config.server.data_dir.display().to_string();
        if let Err(error) = inner.store.accepts_writes().await {
            let reason = match (&error, inner.store.backend_name()) {
                (StoreError::StorageFull { .. }, "sled") => format!(
                    "the metadata store stopped taking writes when the disk of {data_dir} filled up; free disk space, then restart Airlock"
                ),
                (other, _) => format!("the metadata store refuses writes: {other}"),
            };
            self.set_storage_problem(Some(reason.clone()));
            return Some(reason);
        }
        // The blob directory's disk, or (blobs in an object store) the data directory's.
        let temporary = inner.blobs.temporary_dir().unwrap_or_else(|| inner.config.server.data_dir.clone());
        let storage = self.clone();
        let probe = tokio::task::spawn_blocking(move || {
            space::probe_writable(&temporary)?;
            let reserve = &storage.inner.storage.reserve;
            let mut attempted = lock(&storage.inner.storage.reserve_attempted);
            if reserve.is_whole() || attempted.is_some_and(|at| at.elapsed() < RESERVE_RETRY) {
                return Ok(reserve.is_whole());
            }
            *attempted = Some(std::time::Instant::now());
            match reserve.ensure() {
                Ok(_) => Ok(true),
                Err(error) if space::is_storage_full(&error) => Ok(false),
                Err(error) => Err(error),
            }
        })
        .await
        .unwrap_or_else(|error| Err(std::io::Error::other(format!("the storage probe panicked: {error}"))));
        let problem = match probe {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "the disk of {data_dir} has no room for the storage reserve of {} bytes (server.storage_reserve); free disk space",
                inner.config.server.storage_reserve
            )),
            Err(error) if space::is_storage_full(&error) => Some(format!("the disk of {data_dir} is full: {error}")),
            Err(error) => Some(format!("cannot write to {data_dir}: {error}")),
        };
        self.set_storage_problem(problem.clone());
        problem
    }

    /// Why blobs cannot be read or stored in the object store now, or `None` when it
    /// answers and takes a write (always `None` for the blob directory, whose disk
    /// [`Mirror::storage_problem`] probes). For `/-/airlock/ready` and the start.
    pub async fn blob_store_problem(&self) -> Option<String> {
        if self.inner.blobs.temporary_dir().is_some() {
            return None;
        }
        let problem = self.inner.blobs.probe().await.err().map(|error| error.to_string());
        let mut unavailable = lock(&self.inner.blob_store_unavailable);
        match (&*unavailable, &problem) {
            (None, Some(reason)) => tracing::error!(reason, "the blob store is unavailable"),
            (Some(_), None) => tracing::info!(blobs = %self.inner.blobs.describe(), "the blob store answers again"),
            _ => {}
        }
        unavailable.clone_from(&problem);
        problem
    }

    /// The signing keys of the registry that serves a package (cached).
    pub async fn upstream_registry_keys(&self, name: &PackageName) -> airlock_scanner::provenance::RegistryKeys {
        self.upstream_for(name).registry_keys(self.now()).await
    }

    /// A version's manifest exactly as the upstream serves it (from the stored
    /// packument), with the publish time the packument claims.
    pub async fn upstream_manifest(
        &self,
        name: &PackageName,
        version: &str,
    ) -> AppResult<(serde_json::Value, Option<DateTime<Utc>>)> {
        let record = self
            .inner
            .store
            .package(name)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("Airlock has not fetched {name} yet")))?;
        let raw = self.stored_raw(name, &record).await?;
        let (parse_name, parse_version) = (name.clone(), version.to_owned());
        // One version is parsed into a tree; the rest of the document is skipped.
        let found = tokio::task::spawn_blocking(move || {
            let document = packument::parse_upstream(&parse_name, &raw)?;
            let published = document.published(&parse_version);
            let manifest = match document.manifest(&parse_version) {
                Some(manifest) => {
                    Some(serde_json::from_str::<serde_json::Value>(manifest.get()).map_err(|error| error.to_string())?)
                }
                None => None,
            };
            Ok::<_, String>(manifest.map(|manifest| (manifest, published)))
        })
        .await
        .map_err(|error| AppError::Internal(anyhow::anyhow!("parsing panicked: {error}")))?
        .map_err(|message| AppError::Internal(anyhow::anyhow!("stored packument unreadable: {message}")))?;
        found.ok_or_else(|| AppError::NotFound(format!("the upstream no longer lists {name}@{version}")))
    }

    /// The metadata store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The quarantine policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// Airlock's public base URL, without a trailing slash.
    pub fn public_base(&self) -> &str {
        &self.inner.public_base
    }

    /// Notified whenever versions are enqueued for checks.
    pub fn checks_wanted(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.inner.checks_wanted)
    }

    /// Forgets the rendered packument, after a decision changed what clients may see.
    pub fn invalidate(&self, name: &PackageName) {
        self.inner.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.cache.remove(name);
    }

    /// Where anyone refused a version reads why (the public status page; it links the
    /// admin UI's page for admins).
    pub fn status_url(&self, name: &PackageName, version: &str) -> String {
        format!("{}{}", self.inner.public_base, airlock_admin_ui::paths::status(name.as_str(), version))
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// The packument as clients may see it now.
    pub async fn packument(&self, name: &PackageName) -> AppResult<Arc<CachedPackument>> {
        if let Some(cached) = self.inner.cache.get(name)
            && cached.is_fresh(self.now())
        {
            self.inner.metrics.record_packument_cache(true);
            return Ok(cached);
        }
        if let Some(error) = self.remembered_not_found(name) {
            self.inner.metrics.record_packument_cache(true);
            return Err(error);
        }
        self.inner.metrics.record_packument_cache(false);
        let mirror = self.clone();
        let key = name.clone();
        let name = name.clone();
        self.inner
            .packument_flights
            .run(key, move || async move { mirror.load_packument(&name).await.map_err(SharedError::from) }, panicked)
            .await
            .map_err(AppError::from)
    }

    /// The 404 to answer without asking the upstream, if it answered 404 for this name
    /// less than `cache.not_found_ttl` ago.
    fn remembered_not_found(&self, name: &PackageName) -> Option<AppError> {
        let mut not_found = self.inner.not_found.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let ask_again_at = *not_found.get(name)?;
        if self.now() < ask_again_at {
            return Some(not_found_upstream(name));
        }
        not_found.pop(name);
        None
    }

    /// Remembers that the upstream answered 404 for a name.
    fn remember_not_found(&self, name: &PackageName, now: DateTime<Utc>) {
        let ttl = self.inner.config.cache.not_found_ttl;
        if ttl.is_zero() {
            return;
        }
        let ask_again_at = chrono::Duration::from_std(ttl)
            .ok()
            .and_then(|ttl| now.checked_add_signed(ttl))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut not_found = self.inner.not_found.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        not_found.put(name.clone(), ask_again_at);
    }

    /// Refreshes from the store or the upstream, renders, and caches.
    async fn load_packument(&self, name: &PackageName) -> AppResult<Arc<CachedPackument>> {
        let inner = &self.inner;
        let generation = inner.generation.load(std::sync::atomic::Ordering::SeqCst);
        let now = self.now();
        let max_age =
            chrono::Duration::from_std(inner.config.upstream.packument_max_age).unwrap_or(chrono::Duration::MAX);
        let record = inner.store.package(name).await?;
        let stored_is_fresh = record.as_ref().is_some_and(|record| now - record.fetched_at < max_age);

        let (raw, revalidate_at) = match &record {
            Some(record) if stored_is_fresh => match self.stored_raw(name, record).await {
                Ok(raw) => (raw, record.fetched_at + max_age),
                Err(error) if is_corrupt_blob(&error) => {
                    // The stored document did not match its name and was removed: fetch
                    // it whole again (without the ETag, so the upstream cannot answer 304).
                    let unconditional = PackageRecord { upstream_etag: None, ..record.clone() };
                    (self.fetch_from_upstream(name, Some(&unconditional), now).await?, now + max_age)
                }
                Err(error) => return Err(error),
            },
            _ => match self.fetch_from_upstream(name, record.as_ref(), now).await {
                Ok(raw) => (raw, now + max_age),
                Err(error @ (AppError::Upstream(_) | AppError::UpstreamTimeout(_) | AppError::StorageFull(_)))
                    if record.is_some() =>
                {
                    // Stale-if-error: a cached copy beats no answer, also when the disk is
                    // too full to store the new one. Try again soon.
                    tracing::warn!(package.name = %name, error = %error, "packument not refreshed; serving the stored one");
                    let record = record.as_ref().expect("checked by the guard");
                    (self.stored_raw(name, record).await?, now + RETRY_AFTER_FAILURE.min(max_age))
                }
                Err(error) => return Err(error),
            },
        };

        let records: HashMap<String, VersionRecord> = inner.store.versions(name).await?.into_iter().collect();
        // A render holds the raw document and its output (about three times the raw
        // size) for a moment; a few at a time keeps peak memory bounded under a cold
        // install of hundreds.
        let _render_permit = inner
            .render_permits
            .acquire()
            .await
            .map_err(|_| AppError::Internal(anyhow::anyhow!("render permits closed")))?;
        let mirror = self.clone();
        let render_name = name.clone();
        let started = std::time::Instant::now();
        let rendered = tokio::task::spawn_blocking(move || {
            let document = packument::parse_upstream(&render_name, &raw)?;
            let context = RenderContext {
                public_base: &mirror.inner.public_base,
                upstream_base: mirror.inner.upstreams.for_package(&render_name).base(),
                policy: &mirror.inner.policy,
                airlock_key_id: &mirror.inner.airlock_key_id,
                now,
            };
            Ok::<_, String>(packument::render(&render_name, &document, &records, &context))
        })
        .await
        .map_err(|error| AppError::Internal(anyhow::anyhow!("rendering panicked: {error}")))?
        .map_err(|message| AppError::Internal(anyhow::anyhow!("stored packument unreadable: {message}")))?;
        tracing::debug!(
            package.name = %name,
            bytes = rendered.full.identity.len(),
            duration_ms = started.elapsed().as_millis() as u64,
            "packument rendered"
        );

        let cached = Arc::new(CachedPackument { rendered, revalidate_at });
        if inner.generation.load(std::sync::atomic::Ordering::SeqCst) == generation {
            inner.cache.insert(name.clone(), Arc::clone(&cached));
        }
        Ok(cached)
    }

    /// Who published `version` and when, from the stored upstream packument, for the
    /// risk layer.
    pub(crate) async fn publication_context(
        &self,
        name: &PackageName,
        version: &str,
    ) -> AppResult<airlock_scanner::PublicationContext> {
        let record = self
            .inner
            .store
            .package(name)
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the stored packument of {name} is missing")))?;
        let raw = self.stored_raw(name, &record).await?;
        let (name, version) = (name.clone(), version.to_owned());
        tokio::task::spawn_blocking(move || {
            let document = packument::parse_upstream(&name, &raw)
                .map_err(|message| AppError::Internal(anyhow::anyhow!("stored packument unreadable: {message}")))?;
            Ok(crate::publication::publication_context(&document, &version))
        })
        .await
        .map_err(|error| AppError::Internal(anyhow::anyhow!("parsing panicked: {error}")))?
    }

    /// The stored raw upstream packument: one file read.
    async fn stored_raw(&self, name: &PackageName, record: &PackageRecord) -> AppResult<bytes::Bytes> {
        match &record.raw_packument_sha256 {
            Some(hex) => Ok(self.inner.blobs.read_document(hex).await.map_err(|error| {
                if matches!(error, BlobError::Corrupt { .. }) {
                    self.inner.metrics.record_corrupt_blob("on_read");
                }
                blob_failure(error, &format!("read the stored packument of {name}"))
            })?),
            None => {
                let raw =
                    self.inner.store.legacy_raw_packument(name).await?.ok_or_else(|| {
                        AppError::Internal(anyhow::anyhow!("the stored packument of {name} is missing"))
                    })?;
                Ok(bytes::Bytes::copy_from_slice(&raw))
            }
        }
    }

    /// Asks the upstream (conditionally), records new versions and changed tarball
    /// entries, stores the raw document as a blob; returns the raw document.
    async fn fetch_from_upstream(
        &self,
        name: &PackageName,
        record: Option<&PackageRecord>,
        now: DateTime<Utc>,
    ) -> AppResult<bytes::Bytes> {
        let inner = &self.inner;
        let etag = record.and_then(|record| record.upstream_etag.as_deref());
        let started = std::time::Instant::now();
        let fetch = inner.upstreams.for_package(name).fetch_packument(name, etag).await;
        let outcome = match &fetch {
            Ok(PackumentFetch::Modified { .. }) => "ok",
            Ok(PackumentFetch::NotModified) => "not_modified",
            Ok(PackumentFetch::NotFound) => "not_found",
            Err(_) => "error",
        };
        inner.metrics.record_upstream("packument", outcome, started.elapsed());
        tracing::debug!(package.name = %name, duration_ms = started.elapsed().as_millis() as u64, "upstream packument fetch");
        match fetch? {
            PackumentFetch::NotFound => {
                self.remember_not_found(name, now);
                Err(not_found_upstream(name))
            }
            PackumentFetch::NotModified => {
                let Some(record) = record else {
                    return Err(AppError::Upstream(format!(
                        "the upstream answered 304 Not Modified for {name}, which Airlock never fetched"
                    )));
                };
                let refreshed = PackageRecord { fetched_at: now, ..record.clone() };
                let fetch =
                    Fetch { record: &refreshed, new_versions: &[], enqueue: &[], tarballs: &[], removed_tarballs: &[] };
                inner.store.save_fetch(name, &fetch).await.map_err(|error| self.write_error("metadata", error))?;
                self.stored_raw(name, record).await
            }
            PackumentFetch::Modified { body, etag } => {
                let (parse_name, parse_body) = (name.clone(), body.clone());
                let upstream_base = inner.upstreams.for_package(name).base().to_owned();
                // Parsing skips everything but each version's `dist` and time; the raw
                // bytes go to a document blob as they are.
                let (facts, tagged) = tokio::task::spawn_blocking(move || {
                    let document = packument::parse_upstream(&parse_name, &parse_body).map_err(AppError::Upstream)?;
                    let facts = packument::version_facts(&parse_name, &document, &upstream_base);
                    Ok::<_, AppError>((facts, document.tagged_versions()))
                })
                .await
                .map_err(|error| AppError::Internal(anyhow::anyhow!("parsing panicked: {error}")))??;
                let raw_sha256 = inner.blobs.store_document(body.clone()).await.map_err(|error| {
                    let error = match error {
                        BlobError::StorageFull(_) => AppError::storage_full(&format!("the packument of {name}")),
                        other => blob_failure(other, &format!("store the packument of {name}")),
                    };
                    self.write_error("documents", error)
                })?;
                for refused in &facts.refused {
                    tracing::warn!(
                        package.name = %name,
                        package.version = %crate::npm::quote(&refused.version),
                        reason = %refused.reason,
                        "upstream version refused: not recorded, listed or served"
                    );
                }
                let known_package = record.is_some();
                let existing: HashMap<String, VersionRecord> = inner.store.versions(name).await?.into_iter().collect();
                let mut known_tarballs: HashMap<String, TarballEntry> =
                    inner.store.tarballs(name).await?.into_iter().collect();
                let mut new_versions = Vec::new();
                let mut changed_integrity = Vec::new();
                let mut tarballs = Vec::new();
                for fact in facts.versions {
                    let declared = fact.integrity.as_ref().ok().map(Integrity::to_string);
                    let entry = TarballEntry {
                        version: fact.version.as_str().to_owned(),
                        declared_integrity: declared.clone(),
                        upstream_url: fact.upstream_tarball,
                    };
                    // Only new or changed entries are written: a revalidation of a
                    // package with thousands of versions writes what changed.
                    if known_tarballs.remove(&fact.tarball_file_name).as_ref() != Some(&entry) {
                        tarballs.push((fact.tarball_file_name, entry));
                    }
                    let Some(declared) = declared else { continue };
                    match existing.get(fact.version.as_str()) {
                        None => new_versions.push((
                            fact.version.clone(),
                            first_sighting(known_package, fact.claimed_published, declared, now),
                        )),
                        Some(known) if known.integrity != declared => {
                            changed_integrity.push((fact.version, known.integrity.clone(), declared));
                        }
                        Some(_) => {}
                    }
                }
                // What is left was listed before and is not any more.
                let removed_tarballs: Vec<String> = known_tarballs.into_keys().collect();
                let enqueue = self.versions_to_check_eagerly(name, &tagged, &new_versions, known_package, now);
                let new_record = PackageRecord {
                    first_seen: record.map_or(now, |record| record.first_seen),
                    fetched_at: now,
                    upstream_etag: etag,
                    raw_packument_sha256: Some(raw_sha256.clone()),
                };
                // save_fetch keeps existing version records; only true first sightings land.
                let fetch = Fetch {
                    record: &new_record,
                    new_versions: &new_versions,
                    enqueue: &enqueue,
                    tarballs: &tarballs,
                    removed_tarballs: &removed_tarballs,
                };
                inner.store.save_fetch(name, &fetch).await.map_err(|error| self.write_error("metadata", error))?;
                if let Some(previous) = record.and_then(|record| record.raw_packument_sha256.as_deref())
                    && previous != raw_sha256
                {
                    // The new document is durable and referenced; the old one is not.
                    if let Err(error) = inner.blobs.remove_document(previous).await {
                        tracing::warn!(package.name = %name, %error, "could not remove a replaced packument blob");
                    }
                }
                for (version, recorded, declared) in changed_integrity {
                    self.hold_for_changed_integrity(name, version.as_str(), &recorded, &declared, now).await?;
                }
                if !enqueue.is_empty() {
                    inner.checks_wanted.notify_one();
                }
                Ok(body)
            }
        }
    }

    /// Which newly seen versions are checked in the background right away: every new
    /// version of a package Airlock already knew (it is young by definition), and on
    /// first sight of a package, the versions its dist-tags point at and the ones still
    /// inside their cooling period. Older versions are checked on first download.
    fn versions_to_check_eagerly(
        &self,
        name: &PackageName,
        tagged: &[String],
        new_versions: &[(Version, VersionRecord)],
        known_package: bool,
        now: DateTime<Utc>,
    ) -> Vec<Version> {
        new_versions
            .iter()
            .filter(|(version, record)| {
                known_package
                    || tagged.iter().any(|target| target == version.as_str())
                    || self.inner.policy.cooling_until(name, version.as_str(), record.effective_published) > now
            })
            .map(|(version, _)| version.clone())
            .collect()
    }

    /// An upstream that changes the integrity of a known version: the version is held
    /// with a critical reason, and the originally recorded bytes stay the only ones it
    /// may ever be served as. A rejected version stays rejected (only an admin reverses
    /// a rejection; holding it would let a later approval release it), and the change is
    /// logged on it as an event instead, once per declared integrity.
    async fn hold_for_changed_integrity(
        &self,
        name: &PackageName,
        version: &str,
        recorded: &str,
        declared: &str,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        let reason = format!(
            "critical finding integrity-changed: the upstream registry changed the integrity of this published version from {recorded} to {declared}"
        );
        tracing::warn!(package.name = %name, package.version = version, recorded, declared, "upstream changed a version's integrity");
        let transition = Transition {
            state: VersionState::Held,
            actor: "pipeline".into(),
            action: "integrity-changed".into(),
            reason: Some(reason.clone()),
            airlock_signature: None,
            release_record: None,
        };
        let store = &self.inner.store;
        let applied = store
            .transition(name, version, now, |current| {
                let already_held =
                    current.decided_by.as_deref() == Some("pipeline") && current.state == VersionState::Held;
                // Logged once, not on every revalidation; a rejection is final.
                (current.state != VersionState::Rejected && !already_held).then(|| transition.clone())
            })
            .await?;
        if applied.is_some() {
            return Ok(());
        }
        let rejected = store.version(name, version).await?.is_some_and(|record| record.state == VersionState::Rejected);
        let already_logged = store
            .history(name, version)
            .await?
            .iter()
            .any(|event| event.action == "integrity-changed" && event.comment.as_deref() == Some(reason.as_str()));
        if rejected && !already_logged {
            store.log_event(name, version, now, "pipeline", "integrity-changed", Some(reason)).await?;
        }
        Ok(())
    }

    /// What a tarball file name stands for, and the version's stored record.
    ///
    /// The entry recorded at the last packument fetch answers, even when the packument
    /// is due for revalidation: a known version's integrity and decision do not depend
    /// on the upstream's latest word, and revalidating inside every tarball request
    /// would make warm installs wait on the upstream. An unknown file name (or a
    /// package stored before entries were recorded) asks for the packument first.
    async fn lookup_tarball(
        &self,
        name: &PackageName,
        file_name: &TarballFileName,
    ) -> AppResult<(TarballEntry, Option<VersionRecord>)> {
        let store = &self.inner.store;
        let entry = match store.tarball(name, file_name.as_str()).await? {
            Some(entry) => entry,
            None => {
                let packument = self.packument(name).await?;
                let index = &packument.rendered.index;
                let version = index.tarballs.get(file_name.as_str()).ok_or_else(|| {
                    AppError::NotFound(format!("{name} has no version with the tarball {}", file_name.as_str()))
                })?;
                let view = index.versions.get(version).ok_or_else(|| {
                    AppError::Internal(anyhow::anyhow!("tarball index names unknown version {version}"))
                })?;
                TarballEntry {
                    version: version.clone(),
                    declared_integrity: view.integrity.as_ref().map(Integrity::to_string),
                    upstream_url: view.upstream_tarball.clone(),
                }
            }
        };
        let record = store.version(name, &entry.version).await?;
        Ok((entry, record))
    }

    /// Authorises a tarball at this moment, against the version's stored record (not
    /// a cached rendering, so a decision made a moment ago counts). Does no disk I/O:
    /// the route opens the blob and asks for [`Mirror::download_released`] if missing.
    pub async fn tarball(&self, name: &PackageName, file_name: &TarballFileName) -> AppResult<TarballAccess> {
        let (entry, record) = self.lookup_tarball(name, file_name).await?;
        let version = entry.version;
        let declared = entry.declared_integrity.as_deref().map(|text| Integrity::from_dist(Some(text), None));
        let (Some(record), Some(Ok(integrity))) = (&record, &declared) else {
            let reason = match declared {
                Some(Ok(_)) => "Airlock has no record of this version yet".to_owned(),
                Some(Err(error)) => error.0,
                None => "the version has no usable dist.integrity".to_owned(),
            };
            return Err(AppError::Quarantined(Visibility::Unusable { reason }.explain(name, &version)));
        };
        let now = self.now();
        if quarantine::decide(name, &version, record, integrity, &self.inner.policy, now) == Visibility::Provisional {
            return Ok(TarballAccess::NeedsSettle { version });
        }
        let released = quarantine::authorize(
            name,
            &version,
            record,
            integrity,
            &self.inner.policy,
            now,
            &self.status_url(name, &version),
        )?;
        let sha512_hex = integrity.sha512_hex().or_else(|| record.blob_sha512.clone());
        Ok(TarballAccess::Ready(TarballFile { sha512_hex, released, upstream_url: entry.upstream_url }))
    }

    /// The bytes of an authorised tarball, verified against its name: from the hot
    /// cache, else from its blob file, else downloaded first (concurrent callers share
    /// one download). A blob that no longer matches its name is removed and downloaded
    /// again, never served. Counts a tarball cache hit or miss.
    pub async fn open_released(&self, tarball: &TarballFile) -> AppResult<OpenedTarball> {
        if let Some(hex) = &tarball.sha512_hex {
            if let Some(bytes) = self.hot_tarball(hex) {
                self.inner.metrics.record_tarball_cache(true);
                return Ok(OpenedTarball::Bytes(bytes));
            }
            if let Some(opened) = self.open_blob(hex).await? {
                self.inner.metrics.record_tarball_cache(true);
                return Ok(opened);
            }
        }
        self.inner.metrics.record_tarball_cache(false);
        let released = &tarball.released;
        let hex =
            self.fetch_blob(released.name(), released.version(), released.integrity(), &tarball.upstream_url).await?;
        self.open_blob(&hex)
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the verified tarball {hex} vanished from disk")))
    }

    /// Opens a stored blob, verified; `None` when it is missing or was corrupt (and has
    /// been removed). Small tarballs enter the hot cache.
    async fn open_blob(&self, sha512_hex: &str) -> AppResult<Option<OpenedTarball>> {
        match self.inner.blobs.open_tarball(sha512_hex, READ_WHOLE_TARBALL).await {
            Ok(Some(OpenedTarball::Bytes(bytes))) => {
                self.remember_tarball(sha512_hex, bytes.clone());
                Ok(Some(OpenedTarball::Bytes(bytes)))
            }
            Ok(Some(OpenedTarball::Stream { body, length })) => {
                // Verified while it streams: a mismatch found at its end is counted here.
                let metrics = self.inner.metrics.clone();
                let body = body.inspect(move |chunk| {
                    if matches!(chunk, Err(BlobError::Corrupt { .. })) {
                        metrics.record_corrupt_blob("on_read");
                    }
                });
                Ok(Some(OpenedTarball::Stream { body: Box::pin(body), length }))
            }
            Ok(opened) => Ok(opened),
            Err(BlobError::Corrupt { .. }) => {
                // Logged where it was found; the caller downloads it again.
                self.inner.metrics.record_corrupt_blob("on_read");
                Ok(None)
            }
            Err(error) => Err(blob_failure(error, "open a stored tarball")),
        }
    }

    /// A small tarball's bytes, if they are in the hot cache.
    fn hot_tarball(&self, sha512_hex: &str) -> Option<bytes::Bytes> {
        lock(&self.inner.hot_tarballs).0.get(sha512_hex).cloned()
    }

    /// Keeps a small tarball's bytes (read from its verified blob) in the hot cache.
    fn remember_tarball(&self, sha512_hex: &str, bytes: bytes::Bytes) {
        let budget = self.inner.config.cache.tarball_memory as usize;
        if bytes.len() > MAX_HOT_TARBALL || bytes.len() > budget {
            return;
        }
        let mut hot = lock(&self.inner.hot_tarballs);
        let (entries, weight) = &mut *hot;
        *weight += bytes.len();
        if let Some(previous) = entries.put(sha512_hex.to_owned(), bytes) {
            *weight -= previous.len();
        }
        while *weight > budget {
            match entries.pop_lru() {
                Some((_, evicted)) => *weight -= evicted.len(),
                None => break,
            }
        }
    }

    /// The bytes of a version's tarball, downloaded and verified if needed, for the
    /// checks. Not a path to clients: serving goes through [`Mirror::tarball`].
    pub async fn fetch_tarball_bytes(
        &self,
        name: &PackageName,
        version: &str,
        integrity: &Integrity,
        upstream_url: &str,
    ) -> AppResult<Vec<u8>> {
        // Twice at most: a blob found corrupt is removed by the first open, and the
        // second fetch downloads it again.
        for _ in 0..2 {
            let sha512_hex = self.fetch_blob(name, version, integrity, upstream_url).await?;
            // With u64::MAX every backend reads and verifies the whole tarball.
            let read = match self.inner.blobs.open_tarball(&sha512_hex, u64::MAX).await {
                Ok(Some(opened)) => opened.into_bytes().await.map(Some),
                other => other.map(|_| None),
            };
            match read {
                Ok(Some(bytes)) => return Ok(bytes.into()),
                Ok(None) => {}
                Err(BlobError::Corrupt { .. }) => self.inner.metrics.record_corrupt_blob("on_read"),
                Err(error) => return Err(blob_failure(error, "read a stored tarball")),
            }
        }
        Err(AppError::Internal(anyhow::anyhow!(
            "the tarball of {name}@{version} vanished from storage twice after its download"
        )))
    }

    /// Returns the sha512 of the stored blob with this integrity, downloading and
    /// verifying it first when it is not on disk.
    async fn fetch_blob(
        &self,
        name: &PackageName,
        version: &str,
        integrity: &Integrity,
        upstream_url: &str,
    ) -> AppResult<String> {
        let known_sha512 = match integrity.sha512_hex() {
            Some(hex) => Some(hex),
            None => self.inner.store.version(name, version).await?.and_then(|record| record.blob_sha512),
        };
        if let Some(hex) = known_sha512
            && self.inner.blobs.tarball_exists(&hex).await.map_err(|error| blob_failure(error, "look up a tarball"))?
        {
            return Ok(hex);
        }
        let mirror = self.clone();
        let (task_name, task_version, task_integrity) = (name.clone(), version.to_owned(), integrity.clone());
        let url = upstream_url.to_owned();
        self.inner
            .tarball_flights
            .run(
                integrity.to_string(),
                move || async move {
                    mirror.download(&task_name, &task_version, &task_integrity, &url).await.map_err(SharedError::from)
                },
                panicked,
            )
            .await
            .map_err(AppError::from)
    }

    async fn download(&self, name: &PackageName, version: &str, integrity: &Integrity, url: &str) -> AppResult<String> {
        let inner = &self.inner;
        let mut attempt = 0;
        loop {
            let started = std::time::Instant::now();
            let response = match inner.upstreams.for_package(name).fetch_tarball(url).await {
                Ok(response) => response,
                Err(error) => {
                    inner.metrics.record_upstream("tarball", "error", started.elapsed());
                    return Err(error.into());
                }
            };
            let body = response.bytes_stream().map(|chunk| chunk.map_err(|error| error.to_string()));
            match inner.blobs.store_verified(body, integrity, inner.config.limits.max_tarball_size).await {
                Ok(digests) => {
                    inner.metrics.record_upstream("tarball", "ok", started.elapsed());
                    let hex = digests.sha512_hex();
                    inner
                        .store
                        .set_blob(name, version, &hex)
                        .await
                        .map_err(|error| self.write_error("metadata", error))?;
                    tracing::info!(
                        package.name = %name,
                        package.version = version,
                        bytes = digests.length,
                        duration_ms = started.elapsed().as_millis() as u64,
                        "tarball stored"
                    );
                    return Ok(hex);
                }
                Err(BlobError::Stream(message)) if attempt < inner.config.upstream.retries => {
                    attempt += 1;
                    tracing::warn!(package.name = %name, package.version = version, error = %message, attempt, "tarball download interrupted; retrying");
                }
                Err(
                    error @ (BlobError::IntegrityMismatch { .. } | BlobError::TooLarge { .. } | BlobError::Stream(_)),
                ) => {
                    return Err(AppError::Upstream(format!(
                        "the upstream tarball of {name}@{version} was refused and not stored: {error}"
                    )));
                }
                Err(BlobError::StorageFull(error)) => {
                    inner.metrics.record_upstream("tarball", "ok", started.elapsed());
                    tracing::debug!(package.name = %name, package.version = version, %error, "tarball not stored: disk full");
                    let error = AppError::storage_full(&format!("the tarball of {name}@{version}"));
                    return Err(self.write_error("tarballs", error));
                }
                Err(error @ BlobError::ReadBackMismatch { .. }) => {
                    inner.metrics.record_corrupt_blob("on_write");
                    return Err(AppError::Internal(
                        anyhow::Error::new(error).context(format!("storing the tarball of {name}@{version}")),
                    ));
                }
                Err(error @ (BlobError::Corrupt { .. } | BlobError::Io(_) | BlobError::Unavailable { .. })) => {
                    return Err(blob_failure(error, &format!("store the tarball of {name}@{version}")));
                }
            }
        }
    }
}

/// The request-path error for a blob that could not be read or stored: the object store
/// failing is a 503 that says so, anything else an internal error with `what` as its
/// context.
fn blob_failure(error: BlobError, what: &str) -> AppError {
    match error {
        BlobError::Unavailable { .. } => AppError::storage_unavailable(what, &error),
        other => AppError::Internal(anyhow::Error::new(other).context(format!("failed to {what}"))),
    }
}

/// True when a request failed because a stored blob did not match its name (and was
/// removed), so fetching it again can succeed.
fn is_corrupt_blob(error: &AppError) -> bool {
    matches!(error, AppError::Internal(error) if error.chain().any(|cause| matches!(cause.downcast_ref::<BlobError>(), Some(BlobError::Corrupt { .. }))))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a client hears for a name the upstream does not have.
fn not_found_upstream(name: &PackageName) -> AppError {
    AppError::NotFound(format!("package {name} not found upstream"))
}

/// The record of a version seen for the first time.
fn first_sighting(
    known_package: bool,
    claimed_published: Option<DateTime<Utc>>,
    integrity: String,
    now: DateTime<Utc>,
) -> VersionRecord {
    let effective_published = match (known_package, claimed_published) {
        // The package is new to Airlock: the upstream's time is all there is to go on,
        // but a time in the future is clock skew or a lie and counts as now.
        (false, Some(claimed)) => claimed.min(now),
        // A version that appeared since the last fetch is new now, whatever it claims.
        (true, _) => now,
        // No usable publish time: fail closed, treat it as brand new.
        (false, None) => now,
    };
    VersionRecord {
        first_seen: now,
        claimed_published,
        effective_published,
        integrity,
        blob_sha512: None,
        state: VersionState::Checking,
        state_changed_at: None,
        decided_by: None,
        reason: None,
        airlock_signature: None,
    }
}

/// Something whose memory a [`WeightedCache`] can budget.
trait Weighed {
    fn weight(&self) -> usize;
}

impl Weighed for CachedPackument {
    fn weight(&self) -> usize {
        self.rendered.weight()
    }
}

/// An LRU map evicting past a byte budget, for rendered packuments.
struct WeightedCache<V> {
    budget: usize,
    // Locked for a lookup or an insert only; never across an await.
    state: Mutex<CacheState<V>>,
}

struct CacheState<V> {
    entries: lru::LruCache<PackageName, Arc<V>>,
    weight: usize,
}

impl<V: Weighed> WeightedCache<V> {
    fn new(budget: usize) -> WeightedCache<V> {
        WeightedCache { budget, state: Mutex::new(CacheState { entries: lru::LruCache::unbounded(), weight: 0 }) }
    }

    fn remove(&self, name: &PackageName) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(removed) = state.entries.pop(name) {
            state.weight -= removed.weight();
        }
    }

    fn get(&self, name: &PackageName) -> Option<Arc<V>> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.entries.get(name).cloned()
    }

    fn insert(&self, name: PackageName, entry: Arc<V>) {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.weight += entry.weight();
        if let Some(previous) = state.entries.put(name, entry) {
            state.weight -= previous.weight();
        }
        // Keep at least the newest entry even when it alone exceeds the budget.
        while state.weight > self.budget && state.entries.len() > 1 {
            if let Some((_, evicted)) = state.entries.pop_lru() {
                state.weight -= evicted.weight();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sighting_trusts_time_only_for_new_packages() {
        let now = Utc::now();
        let long_ago = now - chrono::Duration::days(400);
        let new_package = first_sighting(false, Some(long_ago), "sha512-x".into(), now);
        assert_eq!(new_package.effective_published, long_ago);
        let forged = first_sighting(true, Some(long_ago), "sha512-x".into(), now);
        assert_eq!(forged.effective_published, now);
        let undated = first_sighting(false, None, "sha512-x".into(), now);
        assert_eq!(undated.effective_published, now);
        let future = now + chrono::Duration::days(2);
        assert_eq!(first_sighting(false, Some(future), "sha512-x".into(), now).effective_published, now);
    }
}
