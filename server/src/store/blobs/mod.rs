//! Content-addressed blobs: tarballs named by the hex sha512 of their bytes, and
//! documents (raw upstream packuments) named by their hex sha256.
//!
//! [`Blobs`] is the one seam: the rest of the server stores, opens, tests and removes
//! blobs by name and never sees where they live. Two backends sit behind it, each in
//! its own module, and no type of theirs leaves it:
//!
//! - `directory`: files under `data_dir/blobs` (the embedded default), served by
//!   streaming the open file;
//! - `s3`: objects in an S3-compatible bucket (`[storage] blobs = "s3"`), through the
//!   `object_store` crate.
//!
//! Invariant (both backends): a blob exists under its final name only if its bytes hash
//! to that name (and, for tarballs, matched the declared integrity), and no byte is
//! served that does not: every reader checks again, and a blob found not to match is
//! removed, reported as [`BlobError::Corrupt`] and fetched again by the caller.

mod directory;
mod s3;

use std::path::{Path, PathBuf};
use std::pin::Pin;

use airlock_config::BlobStorage;
use futures_util::{Stream, StreamExt as _};

use crate::npm::{Digests, Integrity};

/// The blob store the server was configured with. Cheap to clone.
#[derive(Clone)]
pub struct Blobs {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Directory(directory::DirectoryBlobs),
    S3(s3::S3Blobs),
}

/// Why a blob was not stored, or cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// More bytes than the configured limit.
    #[error("the tarball is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The bytes do not match `dist.integrity`.
    #[error("the tarball's bytes do not match its declared integrity {expected} (got {actual})")]
    IntegrityMismatch {
        /// The declared integrity.
        expected: String,
        /// The sha512 of what arrived.
        actual: String,
    },
    /// The body stream failed.
    #[error("the download failed: {0}")]
    Stream(String),
    /// The disk (or the quota) is full: ENOSPC or EDQUOT from a write, a flush or a sync.
    #[error("the disk is full: {0}")]
    StorageFull(std::io::Error),
    /// The blob written, read back (or looked up) in the store, is not what was
    /// written: a write that reported success but did not land. It was removed.
    #[error(
        "the blob read back from storage ({actual_length} bytes, sha512 {actual_sha512}) is not what was written ({expected_length} bytes, sha512 {expected_sha512})"
    )]
    ReadBackMismatch {
        /// Bytes received and written.
        expected_length: u64,
        /// Bytes found in the store.
        actual_length: u64,
        /// Hex sha512 of what was written (empty when only the length was compared).
        expected_sha512: String,
        /// Hex sha512 of what is stored (empty when only the length was compared).
        actual_sha512: String,
    },
    /// A stored blob does not match its name (truncated or changed in the store). It
    /// was removed so it is fetched again.
    #[error("the stored blob {location} does not match its name ({reason}); it was removed")]
    Corrupt {
        /// The file or object that was removed.
        location: String,
        /// What did not match.
        reason: String,
    },
    /// The object store did not answer, or refused the request (unreachable, timed
    /// out, denied, missing bucket). Nothing was stored or served.
    #[error("the object store {store} failed: {reason}")]
    Unavailable {
        /// Which store (endpoint and bucket), for the operator.
        store: String,
        /// What it said, or why it could not be asked.
        reason: String,
    },
    /// Any other disk failure (EIO, EFBIG, permissions).
    #[error("disk error: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for BlobError {
    fn from(error: std::io::Error) -> Self {
        if super::space::is_storage_full(&error) { BlobError::StorageFull(error) } else { BlobError::Io(error) }
    }
}

/// The bytes of a blob that is being read, each chunk already part of a checked whole:
/// the stream ends with an error instead of its last chunk when the whole does not
/// match the blob's name.
pub type BlobStream = Pin<Box<dyn Stream<Item = Result<bytes::Bytes, BlobError>> + Send>>;

/// A verified tarball opened for serving.
pub enum OpenedTarball {
    /// A small blob, read whole and verified.
    Bytes(bytes::Bytes),
    /// A large file of the directory backend, verified, positioned at its start, to be
    /// streamed.
    File {
        /// The open file.
        file: std::fs::File,
        /// Its verified length.
        length: u64,
    },
    /// A large object of an object store, hashed while it streams: its last chunk is
    /// held back until the whole matched its name, so a client never receives a
    /// complete response of other bytes (the body ends with an error instead).
    Stream {
        /// The checked chunks.
        body: BlobStream,
        /// The object's length, as stored.
        length: u64,
    },
}

impl OpenedTarball {
    /// The whole tarball in memory (read on a blocking thread when it was left open).
    pub async fn into_bytes(self) -> Result<bytes::Bytes, BlobError> {
        match self {
            OpenedTarball::Bytes(bytes) => Ok(bytes),
            OpenedTarball::File { file, length } => Ok(directory::read_whole(file, length).await?),
            OpenedTarball::Stream { mut body, length } => {
                let mut bytes = Vec::with_capacity(length as usize);
                while let Some(chunk) = body.next().await {
                    bytes.extend_from_slice(&chunk?);
                }
                Ok(bytes.into())
            }
        }
    }
}

impl Blobs {
    /// Opens the configured blob store. The directory (and the object store's local
    /// tarball cache) live under `data_dir`; an object store is only configured here
    /// (no request is made: see [`Blobs::probe`]).
    pub fn open(storage: &BlobStorage, data_dir: &Path) -> Result<Blobs, BlobError> {
        let backend = match storage {
            BlobStorage::Directory => Backend::Directory(directory::DirectoryBlobs::open(data_dir)?),
            BlobStorage::S3(s3) => Backend::S3(s3::S3Blobs::open(s3, data_dir)?),
        };
        Ok(Blobs { backend })
    }

    /// Opens the blob directory under `data_dir`, creating it.
    pub fn open_directory(data_dir: &Path) -> std::io::Result<Blobs> {
        Ok(Blobs { backend: Backend::Directory(directory::DirectoryBlobs::open(data_dir)?) })
    }

    /// Where the blobs live, for log lines and messages (never a credential).
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Directory(directory) => format!("the blob directory {}", directory.root().display()),
            Backend::S3(s3) => format!("the object store {}", s3.describe()),
        }
    }

    /// The local directory temporary files are written to, when the backend has one
    /// (the readiness probe writes there to test the disk).
    pub fn temporary_dir(&self) -> Option<PathBuf> {
        match &self.backend {
            Backend::Directory(directory) => Some(directory.temporary_dir()),
            Backend::S3(_) => None,
        }
    }

    /// Checks that the store takes a write now: a synced page in the directory, a
    /// small object in the bucket. For readiness and the start.
    pub async fn probe(&self) -> Result<(), BlobError> {
        match &self.backend {
            Backend::Directory(directory) => directory.probe().await,
            Backend::S3(s3) => s3.probe().await,
        }
    }

    /// Stores a document under its sha256 and returns the hex digest. Storing the same
    /// bytes twice is a no-op.
    pub async fn store_document(&self, bytes: bytes::Bytes) -> Result<String, BlobError> {
        match &self.backend {
            Backend::Directory(directory) => directory.store_document(bytes).await,
            Backend::S3(s3) => s3.store_document(bytes).await,
        }
    }

    /// Reads a stored document and checks its hash; a document that does not match its
    /// name is removed and reported as [`BlobError::Corrupt`].
    pub async fn read_document(&self, sha256_hex: &str) -> Result<bytes::Bytes, BlobError> {
        let id = DocumentId::parse(sha256_hex)?;
        match &self.backend {
            Backend::Directory(directory) => directory.read_document(&id).await,
            Backend::S3(s3) => s3.read_document(&id).await,
        }
    }

    /// Removes a document that nothing refers to any more. A missing one is fine.
    pub async fn remove_document(&self, sha256_hex: &str) -> Result<(), BlobError> {
        let Ok(id) = DocumentId::parse(sha256_hex) else { return Ok(()) };
        match &self.backend {
            Backend::Directory(directory) => directory.remove_document(&id).await,
            Backend::S3(s3) => s3.remove_document(&id).await,
        }
    }

    /// Whether a tarball with this sha512 is stored (not whether it still matches its
    /// name: opening it checks that).
    pub async fn tarball_exists(&self, sha512_hex: &str) -> Result<bool, BlobError> {
        let id = TarballId::parse(sha512_hex)?;
        match &self.backend {
            Backend::Directory(directory) => directory.tarball_exists(&id).await,
            Backend::S3(s3) => s3.tarball_exists(&id).await,
        }
    }

    /// Opens a stored tarball for serving, or `None` when it is not stored. Tarballs up
    /// to `read_whole_up_to` bytes are read into memory and verified; larger ones are
    /// returned open (verified by the directory backend before, by the object store
    /// backend while they stream). A tarball that does not match its name is removed
    /// and reported as [`BlobError::Corrupt`]: the caller downloads it again.
    pub async fn open_tarball(
        &self,
        sha512_hex: &str,
        read_whole_up_to: u64,
    ) -> Result<Option<OpenedTarball>, BlobError> {
        let id = TarballId::parse(sha512_hex)?;
        match &self.backend {
            Backend::Directory(directory) => directory.open_tarball(&id, read_whole_up_to).await,
            Backend::S3(s3) => s3.open_tarball(&id, read_whole_up_to).await,
        }
    }

    /// Streams `body` into the store if it matches `integrity` and stays under `limit`
    /// bytes. Returns the digests of the stored bytes. Storing a tarball that is
    /// already stored (another replica, a concurrent download) is success.
    pub async fn store_verified<S, E>(&self, body: S, integrity: &Integrity, limit: u64) -> Result<Digests, BlobError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>>,
        E: std::fmt::Display,
    {
        match &self.backend {
            Backend::Directory(directory) => directory.store_verified(body, integrity, limit).await,
            Backend::S3(s3) => s3.store_verified(body, integrity, limit).await,
        }
    }
}

/// A tarball's name: its sha512, as 128 lowercase hex digits (anything else could name
/// a path or key outside the store, so it is refused).
struct TarballId {
    hex: String,
    digest: [u8; 64],
}

impl TarballId {
    fn parse(hex: &str) -> Result<TarballId, BlobError> {
        let mut digest = [0u8; 64];
        if !is_lower_hex(hex, 128) || hex::decode_to_slice(hex, &mut digest).is_err() {
            return Err(BlobError::Io(std::io::Error::other(format!(
                "a tarball blob name must be 128 lowercase hex digits, not {}",
                crate::npm::quote(hex)
            ))));
        }
        Ok(TarballId { hex: hex.to_owned(), digest })
    }

    fn from_digests(digests: &Digests) -> TarballId {
        let mut digest = [0u8; 64];
        digest.copy_from_slice(&digests.sha512);
        TarballId { hex: digests.sha512_hex(), digest }
    }
}

/// A document's name: its sha256, as 64 lowercase hex digits.
struct DocumentId {
    hex: String,
}

impl DocumentId {
    fn parse(hex: &str) -> Result<DocumentId, BlobError> {
        if !is_lower_hex(hex, 64) {
            return Err(BlobError::Io(std::io::Error::other(format!(
                "a document blob name must be 64 lowercase hex digits, not {}",
                crate::npm::quote(hex)
            ))));
        }
        Ok(DocumentId { hex: hex.to_owned() })
    }

    fn of(bytes: &[u8]) -> DocumentId {
        use sha2::Digest as _;
        DocumentId { hex: hex::encode(sha2::Sha256::digest(bytes)) }
    }
}

fn is_lower_hex(text: &str, length: usize) -> bool {
    text.len() == length && text.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

/// Collects a download into memory while hashing it, refusing more than `limit` bytes
/// and bytes that do not match `integrity`. For backends that must know the whole blob
/// (and its name) before they write it.
async fn receive_verified<S, E>(
    body: S,
    integrity: &Integrity,
    limit: u64,
) -> Result<(Vec<bytes::Bytes>, Digests), BlobError>
where
    S: Stream<Item = Result<bytes::Bytes, E>>,
    E: std::fmt::Display,
{
    let mut hasher = crate::npm::Hasher::default();
    let mut chunks = Vec::new();
    let mut received: u64 = 0;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|error| BlobError::Stream(error.to_string()))?;
        received += chunk.len() as u64;
        if received > limit {
            return Err(BlobError::TooLarge { limit });
        }
        hasher.update(&chunk);
        chunks.push(chunk);
    }
    let digests = hasher.finish();
    if !integrity.matches(&digests) {
        return Err(BlobError::IntegrityMismatch {
            expected: integrity.to_string(),
            actual: digests.sha512_integrity(),
        });
    }
    Ok((chunks, digests))
}
