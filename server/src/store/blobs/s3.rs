//! The object-store backend: blobs as objects in an S3-compatible bucket, through the
//! `object_store` crate (AWS S3, SeaweedFS, Ceph, MinIO, R2 alike).
//!
//! Keys are content addressed under the configured prefix:
//! `<prefix>/tarballs/sha512/<hex>` and `<prefix>/documents/sha256/<hex>`.
//!
//! How the directory backend's invariant holds without a rename:
//! - the whole blob is received and hashed *before* its PUT, so only bytes that match
//!   their name (and the declared integrity) are ever sent under it, with their sha256
//!   signed and as a checksum header, so the store refuses a body changed on the way;
//! - the PUT is create-if-absent (`If-None-Match: *`): a key, once written, is never
//!   overwritten by Airlock, and "already exists" is success since the same name means
//!   the same bytes (concurrent downloads, other replicas);
//! - after the PUT the object's length is compared (HEAD), and an object of the wrong
//!   length is deleted;
//! - every read hashes what arrives: small blobs are checked whole before a byte is
//!   returned, large tarballs while they stream, with the last chunk held back until
//!   the whole matched, so a changed object never reaches a client as a complete
//!   response. An object that does not match is deleted (the caller fetches it again),
//!   logged and reported as [`BlobError::Corrupt`].

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder, Checksum, S3ConditionalPut};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore as _, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, RetryConfig,
};
use sha2::Digest as _;

use super::directory::DirectoryBlobs;
use super::{BlobError, BlobStream, DocumentId, OpenedTarball, TarballId};
use crate::npm::{Digests, Integrity};

/// Connecting to the store takes at most this long: an unreachable store fails the
/// request (and readiness) quickly instead of holding clients.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One request, body included (the largest tarballs take the longest).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Retries of a failed request (connection errors, 5xx), all within `RETRY_WINDOW`.
const RETRIES: usize = 2;
const RETRY_WINDOW: Duration = Duration::from_secs(15);

/// A bucket of blobs. Cheap to clone.
#[derive(Clone)]
pub(super) struct S3Blobs {
    store: Arc<AmazonS3>,
    // "" or "a/b", validated by the configuration.
    prefix: String,
    // "bucket `b` at <endpoint>", for messages (no credential).
    description: Arc<str>,
    // Verified local copies of tarballs read from the bucket, if configured.
    cache: Option<Arc<TarballCache>>,
}

/// A bounded directory of tarballs read from the bucket (`storage.s3_cache_size`): the
/// directory backend (verified on the way in and on every first open, served as files),
/// with the least recently served evicted first. A copy is only made from bytes that
/// hashed to their name on the way from the bucket.
struct TarballCache {
    directory: DirectoryBlobs,
    budget: u64,
    // sha512 → length, and the total.
    entries: Mutex<(lru::LruCache<[u8; 64], u64>, u64)>,
}

impl TarballCache {
    /// Opens the directory and counts what a previous run left in it (newest first
    /// out is unknown after a restart, so their order is the directory's).
    fn open(root: std::path::PathBuf, budget: u64) -> std::io::Result<TarballCache> {
        let directory = DirectoryBlobs::open_at(root)?;
        let mut entries = lru::LruCache::unbounded();
        let mut total = 0;
        for (digest, length) in directory.stored_tarballs()? {
            entries.put(digest, length);
            total += length;
        }
        Ok(TarballCache { directory, budget, entries: Mutex::new((entries, total)) })
    }

    fn touch(&self, digest: &[u8; 64]) {
        lock(&self.entries).0.get(digest);
    }

    fn forget(&self, digest: &[u8; 64]) {
        let mut entries = lock(&self.entries);
        if let Some(length) = entries.0.pop(digest) {
            entries.1 -= length;
        }
    }

    /// Records a new copy and removes the least recently served ones over the budget.
    async fn insert(&self, digest: [u8; 64], length: u64) {
        let evicted = {
            let mut entries = lock(&self.entries);
            let (lru, total) = &mut *entries;
            if let Some(previous) = lru.put(digest, length) {
                *total -= previous;
            }
            *total += length;
            let mut evicted = Vec::new();
            while *total > self.budget {
                let Some((old, old_length)) = lru.pop_lru() else { break };
                *total -= old_length;
                evicted.push(old);
            }
            evicted
        };
        for old in evicted {
            if let Err(error) = self.directory.remove_tarball(&old).await {
                tracing::warn!(%error, "could not remove a tarball from the blob cache");
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl S3Blobs {
    /// Configures the client (makes no request) and opens the local tarball cache
    /// under `data_dir` when one is configured.
    pub(super) fn open(config: &airlock_config::S3Storage, data_dir: &Path) -> Result<S3Blobs, BlobError> {
        let endpoint = config.endpoint.as_ref().map_or("AWS S3".to_owned(), |url| url.as_str().to_owned());
        let description: Arc<str> = format!("bucket `{}` at {endpoint}", config.bucket).into();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            // The body's sha256 is signed (SigV4) and sent as `x-amz-checksum-sha256`:
            // the store refuses a body that changed on the way instead of creating the key.
            .with_checksum_algorithm(Checksum::SHA256)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: RETRIES,
                retry_timeout: RETRY_WINDOW,
            })
            .with_client_options(
                ClientOptions::new().with_connect_timeout(CONNECT_TIMEOUT).with_timeout(REQUEST_TIMEOUT),
            );
        if let Some(url) = &config.endpoint {
            // Path-style requests (`<endpoint>/<bucket>/<key>`): what S3-compatible
            // stores answer without wildcard DNS.
            builder = builder
                .with_endpoint(url.as_str().trim_end_matches('/'))
                .with_allow_http(url.scheme() == "http")
                .with_virtual_hosted_style_request(false);
        }
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            builder = builder.with_access_key_id(id.expose()).with_secret_access_key(secret.expose());
            if let Some(token) = &config.session_token {
                builder = builder.with_token(token.expose());
            }
        }
        let store = builder
            .build()
            .map_err(|error| BlobError::Unavailable { store: description.to_string(), reason: error.to_string() })?;
        let cache = match config.cache_size {
            0 => None,
            budget => Some(Arc::new(TarballCache::open(data_dir.join("blob-cache"), budget)?)),
        };
        Ok(S3Blobs { store: Arc::new(store), prefix: config.prefix.clone(), description, cache })
    }

    pub(super) fn describe(&self) -> &str {
        &self.description
    }

    fn key(&self, kind: &str, hex: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(format!("{kind}/{hex}"))
        } else {
            ObjectPath::from(format!("{}/{kind}/{hex}", self.prefix))
        }
    }

    fn tarball_key(&self, id: &TarballId) -> ObjectPath {
        self.key("tarballs/sha512", &id.hex)
    }

    fn document_key(&self, id: &DocumentId) -> ObjectPath {
        self.key("documents/sha256", &id.hex)
    }

    fn unavailable(&self, error: object_store::Error) -> BlobError {
        BlobError::Unavailable { store: self.description.to_string(), reason: error.to_string() }
    }

    /// Writes (overwrites) one small object: the store answers and takes writes.
    pub(super) async fn probe(&self) -> Result<(), BlobError> {
        let key = if self.prefix.is_empty() {
            ObjectPath::from("airlock-probe")
        } else {
            ObjectPath::from(format!("{}/airlock-probe", self.prefix))
        };
        self.store
            .put(&key, PutPayload::from_static(b"airlock readiness probe\n"))
            .await
            .map_err(|error| self.unavailable(error))?;
        Ok(())
    }

    /// Writes `payload` under `key` unless an object is there already, then checks the
    /// stored length. An object of the wrong length under the key (a write that did not
    /// land whole, or an old corrupt one) is deleted and written again, once.
    async fn create(&self, key: &ObjectPath, payload: PutPayload, length: u64) -> Result<(), BlobError> {
        for attempt in 0..2 {
            match self.store.put_opts(key, payload.clone(), PutOptions::from(PutMode::Create)).await {
                // Content addressed: what is there has this name, so these bytes.
                Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(error) => return Err(self.unavailable(error)),
            }
            let stored = match self.store.head(key).await {
                Ok(meta) => meta.size,
                // Written and gone: another replica found it corrupt and removed it.
                Err(object_store::Error::NotFound { .. }) if attempt == 0 => continue,
                Err(error) => return Err(self.unavailable(error)),
            };
            if stored == length {
                return Ok(());
            }
            tracing::error!(
                blob.key = %key,
                expected_bytes = length,
                stored_bytes = stored,
                "an object does not have its blob's length after a write; deleting it"
            );
            self.delete(key).await?;
            if attempt == 1 {
                return Err(BlobError::ReadBackMismatch {
                    expected_length: length,
                    actual_length: stored,
                    expected_sha512: String::new(),
                    actual_sha512: String::new(),
                });
            }
        }
        Err(BlobError::Unavailable {
            store: self.description.to_string(),
            reason: format!("{key} vanished twice right after it was written"),
        })
    }

    async fn delete(&self, key: &ObjectPath) -> Result<(), BlobError> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(self.unavailable(error)),
        }
    }

    /// Deletes an object that does not match its name, logs it once, and returns the
    /// error the caller reports.
    async fn remove_corrupt(&self, key: &ObjectPath, reason: String) -> BlobError {
        tracing::error!(blob.key = %key, reason, "a stored object does not match its name; deleting it");
        if let Err(error) = self.delete(key).await {
            tracing::error!(blob.key = %key, %error, "could not delete a corrupt object");
        }
        BlobError::Corrupt { location: format!("{} in {}", key, self.description), reason }
    }

    pub(super) async fn store_document(&self, bytes: bytes::Bytes) -> Result<String, BlobError> {
        let id = DocumentId::of(&bytes);
        let length = bytes.len() as u64;
        self.create(&self.document_key(&id), PutPayload::from_bytes(bytes), length).await?;
        Ok(id.hex)
    }

    pub(super) async fn read_document(&self, id: &DocumentId) -> Result<bytes::Bytes, BlobError> {
        let key = self.document_key(id);
        let bytes = match self.store.get(&key).await {
            Ok(result) => result.bytes().await.map_err(|error| self.unavailable(error))?,
            Err(error @ object_store::Error::NotFound { .. }) => {
                return Err(BlobError::Io(std::io::Error::new(std::io::ErrorKind::NotFound, error.to_string())));
            }
            Err(error) => return Err(self.unavailable(error)),
        };
        let actual = hex::encode(sha2::Sha256::digest(&bytes));
        if actual != id.hex {
            return Err(self.remove_corrupt(&key, format!("{} bytes with sha256 {actual}", bytes.len())).await);
        }
        Ok(bytes)
    }

    pub(super) async fn remove_document(&self, id: &DocumentId) -> Result<(), BlobError> {
        self.delete(&self.document_key(id)).await
    }

    pub(super) async fn tarball_exists(&self, id: &TarballId) -> Result<bool, BlobError> {
        match self.store.head(&self.tarball_key(id)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(self.unavailable(error)),
        }
    }

    pub(super) async fn open_tarball(
        &self,
        id: &TarballId,
        read_whole_up_to: u64,
    ) -> Result<Option<OpenedTarball>, BlobError> {
        if let Some(cache) = &self.cache {
            match cache.directory.open_tarball(id, read_whole_up_to).await {
                Ok(Some(opened)) => {
                    cache.touch(&id.digest);
                    return Ok(Some(opened));
                }
                Ok(None) => {}
                // Logged and removed by the directory; the bucket has the real bytes.
                Err(BlobError::Corrupt { .. }) => cache.forget(&id.digest),
                Err(error) => tracing::warn!(%error, "the blob cache could not be read; reading the bucket"),
            }
        }
        let key = self.tarball_key(id);
        let result = match self.store.get(&key).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(self.unavailable(error)),
        };
        let length = result.meta.size;
        if let Some(cache) = self.cache.as_ref().filter(|cache| length <= cache.budget) {
            // Copied through the directory backend, which hashes it on the way in and
            // keeps it only if it matches its name.
            let integrity = Integrity::from_dist(
                Some(&format!(
                    "sha512-{}",
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, id.digest)
                )),
                None,
            )
            .map_err(|error| BlobError::Io(std::io::Error::other(error.0)))?;
            let body = result.into_stream().map(|chunk| chunk.map_err(|error| error.to_string()));
            match cache.directory.store_verified(body, &integrity, length).await {
                Ok(_) => {
                    cache.insert(id.digest, length).await;
                    if let Some(opened) = cache.directory.open_tarball(id, read_whole_up_to).await? {
                        return Ok(Some(opened));
                    }
                }
                Err(BlobError::IntegrityMismatch { actual, .. }) => {
                    return Err(self.remove_corrupt(&key, format!("{length} bytes with {actual}")).await);
                }
                Err(BlobError::TooLarge { .. }) => {
                    return Err(self.remove_corrupt(&key, format!("more than its {length} bytes")).await);
                }
                Err(BlobError::Stream(reason)) => {
                    return Err(BlobError::Unavailable { store: self.description.to_string(), reason });
                }
                // A full or failing local disk: serve from the bucket without a copy.
                Err(error) => tracing::warn!(%error, "could not copy a tarball into the blob cache"),
            }
            return self.open_uncached(id, read_whole_up_to).await;
        }
        self.finish_open(key, result, id, read_whole_up_to).await
    }

    /// [`S3Blobs::open_tarball`] straight from the bucket.
    async fn open_uncached(&self, id: &TarballId, read_whole_up_to: u64) -> Result<Option<OpenedTarball>, BlobError> {
        let key = self.tarball_key(id);
        let result = match self.store.get(&key).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(self.unavailable(error)),
        };
        self.finish_open(key, result, id, read_whole_up_to).await
    }

    async fn finish_open(
        &self,
        key: ObjectPath,
        result: object_store::GetResult,
        id: &TarballId,
        read_whole_up_to: u64,
    ) -> Result<Option<OpenedTarball>, BlobError> {
        let length = result.meta.size;
        if length <= read_whole_up_to {
            let bytes = result.bytes().await.map_err(|error| self.unavailable(error))?;
            let actual = sha2::Sha512::digest(&bytes);
            if actual.as_slice() != id.digest || bytes.len() as u64 != length {
                let reason = format!("{} bytes with sha512 {}", bytes.len(), hex::encode(actual));
                return Err(self.remove_corrupt(&key, reason).await);
            }
            return Ok(Some(OpenedTarball::Bytes(bytes)));
        }
        let body = verified_stream(self.clone(), key, result.into_stream(), id.digest, length);
        Ok(Some(OpenedTarball::Stream { body, length }))
    }

    pub(super) async fn store_verified<S, E>(
        &self,
        body: S,
        integrity: &Integrity,
        limit: u64,
    ) -> Result<Digests, BlobError>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, E>>,
        E: std::fmt::Display,
    {
        // The whole tarball is in memory (bounded by `limits.max_tarball_size`) so that
        // its name is known, and checked, before anything is written under it.
        let (chunks, digests) = super::receive_verified(body, integrity, limit).await?;
        let id = TarballId::from_digests(&digests);
        self.create(&self.tarball_key(&id), chunks.into_iter().collect(), digests.length).await?;
        Ok(digests)
    }
}

/// The chunks of `inner`, hashed as they pass, with the last one held back until the
/// whole is known to be `length` bytes hashing to `digest`. On a mismatch the stream
/// ends with [`BlobError::Corrupt`] instead of its last chunk, and the object is
/// deleted.
fn verified_stream(
    blobs: S3Blobs,
    key: ObjectPath,
    inner: futures_util::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
    digest: [u8; 64],
    length: u64,
) -> BlobStream {
    struct State {
        blobs: S3Blobs,
        key: ObjectPath,
        inner: futures_util::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
        hasher: sha2::Sha512,
        received: u64,
        held: Option<bytes::Bytes>,
        done: bool,
    }
    let state = State { blobs, key, inner, hasher: sha2::Sha512::new(), received: 0, held: None, done: false };
    Box::pin(futures_util::stream::unfold(state, move |mut state| async move {
        if state.done {
            return None;
        }
        loop {
            match state.inner.next().await {
                Some(Ok(chunk)) => {
                    state.received += chunk.len() as u64;
                    if state.received > length {
                        state.done = true;
                        let reason = format!("more than its {length} bytes");
                        return Some((Err(state.blobs.remove_corrupt(&state.key, reason).await), state));
                    }
                    state.hasher.update(&chunk);
                    if let Some(previous) = state.held.replace(chunk) {
                        return Some((Ok(previous), state));
                    }
                }
                Some(Err(error)) => {
                    state.done = true;
                    return Some((Err(state.blobs.unavailable(error)), state));
                }
                None => {
                    state.done = true;
                    let actual: [u8; 64] = std::mem::take(&mut state.hasher).finalize().into();
                    if state.received != length || actual != digest {
                        let reason = format!("{} bytes with sha512 {}", state.received, hex::encode(actual));
                        return Some((Err(state.blobs.remove_corrupt(&state.key, reason).await), state));
                    }
                    return state.held.take().map(|last| (Ok(last), state));
                }
            }
        }
    }))
}
