//! Durable state: package and version records in sled, tarballs as content-addressed
//! files (see [`blobs`]).
//!
//! This is the storage interface the rest of the server uses; sled stays behind it so
//! the backend can be swapped. Records are JSON so they stay readable and can gain
//! fields without a migration.

pub mod blobs;
mod keys;

use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::npm::PackageName;

/// What Airlock remembers about a package between requests.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageRecord {
    /// When Airlock first fetched this package's packument.
    pub first_seen: DateTime<Utc>,
    /// When the stored packument was last confirmed by the upstream (200 or 304).
    pub fetched_at: DateTime<Utc>,
    /// The upstream's ETag for the stored packument, for conditional revalidation.
    pub upstream_etag: Option<String>,
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
}

/// The metadata store.
#[derive(Clone)]
pub struct Store {
    packages: sled::Tree,
    packuments: sled::Tree,
    versions: sled::Tree,
    database: sled::Db,
}

impl Store {
    /// Opens (or creates) the store under `directory`.
    pub fn open(directory: &Path) -> anyhow::Result<Store> {
        let database = sled::Config::new()
            .path(directory)
            // Decisions must survive a crash; sled also flushes every 500 ms by itself,
            // and writes that matter call `flush_async` explicitly.
            .flush_every_ms(Some(500))
            .cache_capacity(16 << 20)
            .open()
            .with_context(|| format!("opening the metadata store in {}", directory.display()))?;
        Ok(Store {
            packages: database.open_tree("packages")?,
            packuments: database.open_tree("packuments")?,
            versions: database.open_tree("versions")?,
            database,
        })
    }

    /// The package's record, if Airlock has fetched it before.
    pub fn package(&self, name: &PackageName) -> sled::Result<Option<PackageRecord>> {
        Ok(self.packages.get(keys::package(name))?.and_then(|bytes| decode(&bytes)))
    }

    /// The raw upstream packument stored for the package.
    pub fn raw_packument(&self, name: &PackageName) -> sled::Result<Option<sled::IVec>> {
        self.packuments.get(keys::package(name))
    }

    /// Stores a freshly fetched packument, its record and the records of versions seen
    /// for the first time, atomically, and waits until they are on disk.
    pub async fn save_fetch(
        &self,
        name: &PackageName,
        record: &PackageRecord,
        raw_packument: Option<&[u8]>,
        new_versions: &[(String, VersionRecord)],
    ) -> sled::Result<()> {
        use sled::Transactional as _;
        let package_key = keys::package(name);
        let record_bytes = encode(record);
        let version_entries: Vec<(Vec<u8>, Vec<u8>)> = new_versions
            .iter()
            .map(|(version, record)| (keys::version(name, version), encode(record)))
            .collect();
        (&self.packages, &self.packuments, &self.versions)
            .transaction(|(packages, packuments, versions)| {
                packages.insert(package_key.as_slice(), record_bytes.as_slice())?;
                if let Some(raw) = raw_packument {
                    packuments.insert(package_key.as_slice(), raw)?;
                }
                for (key, value) in &version_entries {
                    // Never overwrite: the first sighting is the record of truth.
                    if versions.get(key.as_slice())?.is_none() {
                        versions.insert(key.as_slice(), value.as_slice())?;
                    }
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|error| match error {
                sled::transaction::TransactionError::Storage(error) => error,
                sled::transaction::TransactionError::Abort(()) => {
                    sled::Error::Unsupported("transaction aborted".into())
                }
            })?;
        self.database.flush_async().await?;
        Ok(())
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
        self.database.flush_async().await?;
        Ok(())
    }

    /// The version's record.
    pub fn version(&self, name: &PackageName, version: &str) -> sled::Result<Option<VersionRecord>> {
        Ok(self.versions.get(keys::version(name, version))?.and_then(|bytes| decode(&bytes)))
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
