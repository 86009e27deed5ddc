//! Content-addressed files: tarballs as `blobs/sha512/ab/cdef…` named by the hex sha512
//! of their bytes, and documents (raw upstream packuments) as
//! `blobs/documents/ab/cdef…` named by their hex sha256.
//!
//! Invariant: a file exists under its final name only if its bytes hash to that name
//! (and, for tarballs, matched the declared integrity). Writers write into
//! `blobs/tmp/`, hash as they go, and rename only after the check passed; a crash
//! leaves at most a temporary file. Large values live here, not in sled, so the
//! metadata store keeps small records only and a document is read in one file read.

use std::path::{Path, PathBuf};

use futures_util::{Stream, StreamExt as _};
use tokio::io::AsyncWriteExt as _;

use crate::npm::{Digests, Hasher, Integrity};

/// The blob directory.
#[derive(Clone)]
pub struct Blobs {
    root: PathBuf,
}

/// Why a download was not stored.
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
    /// The disk failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Blobs {
    /// Opens the blob directory under `data_dir`, creating it, and removes temporary
    /// files a crash may have left.
    pub fn open(data_dir: &Path) -> std::io::Result<Blobs> {
        let root = data_dir.join("blobs");
        let temporary = root.join("tmp");
        if temporary.exists() {
            std::fs::remove_dir_all(&temporary)?;
        }
        std::fs::create_dir_all(&temporary)?;
        std::fs::create_dir_all(root.join("sha512"))?;
        std::fs::create_dir_all(root.join("documents"))?;
        Ok(Blobs { root })
    }

    /// Where the document with this sha256 lives (whether or not it exists).
    ///
    /// `sha256_hex` must be 64 lowercase hex digits, for the same reason as in
    /// [`Blobs::path`].
    pub fn document_path(&self, sha256_hex: &str) -> Option<PathBuf> {
        let valid = sha256_hex.len() == 64 && sha256_hex.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| self.root.join("documents").join(&sha256_hex[..2]).join(sha256_hex))
    }

    /// Stores a document under its sha256 and returns the hex digest. Storing the
    /// same bytes twice is a no-op. Blocking: call from a blocking thread.
    pub fn store_document(&self, bytes: &[u8]) -> std::io::Result<String> {
        use sha2::Digest as _;
        use std::io::Write as _;
        let hex = hex::encode(sha2::Sha256::digest(bytes));
        let final_path = self.document_path(&hex).ok_or_else(|| std::io::Error::other("unexpected sha256 form"))?;
        if final_path.exists() {
            return Ok(hex);
        }
        let temporary_path = self.root.join("tmp").join(temporary_name());
        let written = (|| {
            let mut file = std::fs::File::create(&temporary_path)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            if let Some(parent) = final_path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::rename(&temporary_path, &final_path)
        })();
        if let Err(error) = written {
            let _ = std::fs::remove_file(&temporary_path);
            return Err(error);
        }
        Ok(hex)
    }

    /// Reads a stored document. Like tarballs, blobs are trusted once written: they
    /// were hashed on the way in and are never modified in place.
    pub async fn read_document(&self, sha256_hex: &str) -> std::io::Result<Vec<u8>> {
        let path = self.document_path(sha256_hex).ok_or_else(|| std::io::Error::other("unexpected sha256 form"))?;
        tokio::fs::read(&path).await
    }

    /// Removes a document that nothing refers to any more. A missing file is fine.
    pub async fn remove_document(&self, sha256_hex: &str) -> std::io::Result<()> {
        let Some(path) = self.document_path(sha256_hex) else { return Ok(()) };
        match tokio::fs::remove_file(path).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    /// Where the blob with this sha512 lives (whether or not it exists).
    ///
    /// `sha512_hex` must be 128 lowercase hex digits; anything else could name a path
    /// outside the store, so it is refused.
    pub fn path(&self, sha512_hex: &str) -> Option<PathBuf> {
        let valid = sha512_hex.len() == 128 && sha512_hex.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| self.root.join("sha512").join(&sha512_hex[..2]).join(sha512_hex))
    }

    /// Streams `body` into the store if it matches `integrity` and stays under `limit`
    /// bytes. Returns the digests of the stored bytes.
    pub async fn store_verified<S, E>(&self, body: S, integrity: &Integrity, limit: u64) -> Result<Digests, BlobError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>>,
        E: std::fmt::Display,
    {
        let temporary_path = self.root.join("tmp").join(temporary_name());
        let result = self.write_verified(body, integrity, limit, &temporary_path).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temporary_path).await;
        }
        result
    }

    async fn write_verified<S, E>(
        &self,
        body: S,
        integrity: &Integrity,
        limit: u64,
        temporary_path: &Path,
    ) -> Result<Digests, BlobError>
    where
        S: Stream<Item = Result<bytes::Bytes, E>>,
        E: std::fmt::Display,
    {
        let mut file = tokio::fs::File::create(temporary_path).await?;
        let mut hasher = Hasher::default();
        let mut written: u64 = 0;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|error| BlobError::Stream(error.to_string()))?;
            written += chunk.len() as u64;
            if written > limit {
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        let digests = hasher.finish();
        if !integrity.matches(&digests) {
            return Err(BlobError::IntegrityMismatch {
                expected: integrity.to_string(),
                actual: digests.sha512_integrity(),
            });
        }
        file.sync_all().await?;
        drop(file);
        let final_path = self
            .path(&digests.sha512_hex())
            .ok_or_else(|| std::io::Error::other("sha512 hex digest has an unexpected form"))?;
        if let Some(parent) = final_path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(temporary_path, &final_path).await?;
        Ok(digests)
    }
}

fn temporary_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}.part", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}
