//! Whether Airlock can still write to its data directory, and the storage reserve that
//! lets it start on a full disk.
//!
//! sled writes the tail of its log segment when it opens (about 512 KiB of zeros), so on
//! a disk with no free byte the metadata store cannot open and nothing stored could be
//! served. The reserve is a file of `server.storage_reserve` bytes kept allocated in the
//! data directory; a start that finds the disk full deletes it, opens the store in the
//! space it freed and serves what is stored while `/-/airlock/ready` says why it is not
//! ready. The reserve is made again once there is room.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The reserve's file name, directly under the data directory.
const RESERVE_FILE: &str = "storage-reserve";

/// How much the writability probe writes (one page: the smallest allocation a file
/// system makes).
const PROBE_BYTES: usize = 4096;

/// True when an I/O error means the disk (or the user's quota) is full.
pub fn is_storage_full(error: &std::io::Error) -> bool {
    matches!(error.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
}

/// True when any cause in an error chain is a full disk (the metadata store reports
/// its own).
pub fn chain_is_storage_full(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return is_storage_full(io);
        }
        cause.downcast_ref::<super::StoreError>().is_some_and(super::StoreError::is_storage_full)
    })
}

/// The reserve file of one data directory.
pub struct StorageReserve {
    path: PathBuf,
    bytes: u64,
}

impl StorageReserve {
    /// The reserve of `data_dir`, `bytes` long (0: none).
    pub fn new(data_dir: &Path, bytes: u64) -> StorageReserve {
        StorageReserve { path: data_dir.join(RESERVE_FILE), bytes }
    }

    /// Whether the reserve exists at its full size (always true with no reserve).
    pub fn is_whole(&self) -> bool {
        self.bytes == 0 || std::fs::metadata(&self.path).is_ok_and(|metadata| metadata.len() == self.bytes)
    }

    /// Deletes the reserve; returns how many bytes that freed (0 when there was none).
    pub fn release(&self) -> std::io::Result<u64> {
        let length = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(error) => return Err(error),
        };
        std::fs::remove_file(&self.path)?;
        Ok(length)
    }

    /// Makes sure the reserve exists at its full size. Writes zeros (not a sparse file:
    /// the blocks must really be taken) into a temporary name first, so a disk that
    /// fills up half-way leaves no reserve that only looks whole. Only starts when twice
    /// the reserve is free, so writing it never fills the disk under the metadata store
    /// (a failed sled write stops all its writes); less room is a `StorageFull` error.
    /// Returns whether a new reserve was written. Blocking.
    pub fn ensure(&self) -> std::io::Result<bool> {
        if self.is_whole() {
            return Ok(false);
        }
        let directory = self.path.parent().unwrap_or(Path::new("."));
        let available = available_bytes(directory)?;
        if available < self.bytes.saturating_mul(2) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                format!(
                    "{available} bytes free in {}; writing the storage reserve of {} bytes needs twice that",
                    directory.display(),
                    self.bytes
                ),
            ));
        }
        let partial = self.path.with_extension("part");
        let written = (|| {
            let mut file = std::fs::File::create(&partial)?;
            let zeros = vec![0u8; 1 << 20];
            let mut left = self.bytes;
            while left > 0 {
                let chunk = left.min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..chunk])?;
                left -= chunk as u64;
            }
            file.sync_all()?;
            std::fs::rename(&partial, &self.path)
        })();
        if let Err(error) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
        Ok(true)
    }
}

/// Bytes an unprivileged writer may still use on the file system of `path`.
pub fn available_bytes(path: &Path) -> std::io::Result<u64> {
    let statistics = rustix::fs::statvfs(path)?;
    Ok(statistics.f_bavail.saturating_mul(statistics.f_frsize))
}

/// Writes, syncs and deletes one page in `directory`: whether the disk takes a write
/// right now. Blocking.
pub fn probe_writable(directory: &Path) -> std::io::Result<()> {
    let path = directory.join(format!("probe-{}", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&path)?;
        file.write_all(&[0u8; PROBE_BYTES])?;
        file.sync_all()
    })();
    let removed = std::fs::remove_file(&path);
    written?;
    match removed {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_written_whole_and_released_once() {
        let directory = tempfile::tempdir().unwrap();
        let reserve = StorageReserve::new(directory.path(), 3 << 20);
        assert!(reserve.ensure().unwrap());
        assert!(!reserve.ensure().unwrap(), "an existing reserve is kept");
        assert_eq!(std::fs::metadata(directory.path().join(RESERVE_FILE)).unwrap().len(), 3 << 20);
        assert_eq!(reserve.release().unwrap(), 3 << 20);
        assert_eq!(reserve.release().unwrap(), 0);
        assert!(!StorageReserve::new(directory.path(), 0).ensure().unwrap(), "0 keeps no reserve");
    }

    #[test]
    fn a_reserve_is_not_written_without_twice_its_size_free() {
        let directory = tempfile::tempdir().unwrap();
        let available = available_bytes(directory.path()).unwrap();
        let reserve = StorageReserve::new(directory.path(), available / 2 + (1 << 20));
        let error = reserve.ensure().unwrap_err();
        assert!(is_storage_full(&error), "{error}");
        assert!(error.to_string().contains("needs twice that"), "{error}");
        assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 0, "nothing was written");
    }

    #[test]
    fn full_disk_errors_are_recognised_through_the_store_and_context() {
        let full = || std::io::Error::from_raw_os_error(28);
        assert!(is_storage_full(&full()));
        assert!(!is_storage_full(&std::io::Error::from_raw_os_error(5)), "EIO is not a full disk");
        let store_error = super::super::StoreError::StorageFull { doing: "opening".into() };
        let wrapped = anyhow::Error::new(store_error).context("opening the metadata store");
        assert!(chain_is_storage_full(&wrapped));
        let wrapped = anyhow::Error::new(full()).context("writing a blob");
        assert!(chain_is_storage_full(&wrapped));
        assert!(!chain_is_storage_full(&anyhow::anyhow!("No space left on device")), "only typed errors count");
    }
}
