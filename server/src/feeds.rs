//! Known-malware feeds: OSV advisories (the OpenSSF malicious-packages `MAL-*` format)
//! read from the directory `feeds.directory` names, at start and every
//! `feeds.refresh_interval`, and handed to every scan as
//! [`ScanOptions::indicators`](airlock_scanner::ScanOptions).
//!
//! A feed can only hold: what it lists becomes critical findings, and nothing in it
//! releases a version. At start a bad feed stops the server (the file and entry are
//! named); on a refresh it is logged and the previous feed stays in force.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use airlock_config::FeedsConfig;
use airlock_scanner::{FeedError, Indicators};

/// Largest feed file read; the whole OpenSSF npm feed is far smaller per advisory.
const MAX_FEED_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Most files read from the directory.
const MAX_FEED_FILES: usize = 100_000;

/// Why a feed directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FeedLoadError {
    /// The directory or a file could not be read.
    #[error("reading the feed {path}: {error}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A file is larger than [`MAX_FEED_FILE_BYTES`].
    #[error("feed file {path} is {bytes} bytes, more than the {MAX_FEED_FILE_BYTES} read")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// The directory has more than [`MAX_FEED_FILES`] files.
    #[error("feed directory {path} has more than {MAX_FEED_FILES} files")]
    TooManyFiles {
        /// The directory.
        path: PathBuf,
    },
    /// A file or an entry in it is not a valid advisory.
    #[error(transparent)]
    Invalid(#[from] FeedError),
}

/// Reads every `*.json` file in `directory` (sorted, not recursive) into one feed.
pub fn read_feed_directory(directory: &Path) -> Result<Indicators, FeedLoadError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |error| FeedLoadError::Io { path, error }
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(directory).map_err(io_error(directory))? {
        let path = entry.map_err(io_error(directory))?.path();
        if path.extension().is_some_and(|extension| extension == "json") && path.is_file() {
            if paths.len() >= MAX_FEED_FILES {
                return Err(FeedLoadError::TooManyFiles { path: directory.to_path_buf() });
            }
            paths.push(path);
        }
    }
    paths.sort();
    let mut documents = Vec::with_capacity(paths.len());
    for path in &paths {
        let bytes = std::fs::metadata(path).map_err(io_error(path))?.len();
        if bytes > MAX_FEED_FILE_BYTES {
            return Err(FeedLoadError::TooLarge { path: path.clone(), bytes });
        }
        documents.push((path.display().to_string(), std::fs::read(path).map_err(io_error(path))?));
    }
    Ok(Indicators::from_osv_documents(documents.iter().map(|(name, bytes)| (name.as_str(), bytes.as_slice())))?)
}

/// The feed in force, swapped whole on a successful refresh.
///
/// Readers (every check) take an `Arc` of the current feed; the refresh task is the only
/// writer.
#[derive(Debug)]
pub struct KnownMalwareFeed {
    directory: Option<PathBuf>,
    refresh_interval: Duration,
    current: RwLock<Arc<Indicators>>,
}

impl KnownMalwareFeed {
    /// Loads the configured directory; without one the feed is empty. A directory that
    /// cannot be read or holds a bad advisory is an error: the server does not start
    /// with a feed it cannot trust to be complete.
    pub fn load(config: &FeedsConfig) -> Result<KnownMalwareFeed, FeedLoadError> {
        let indicators = match &config.directory {
            Some(directory) => read_feed_directory(directory)?,
            None => Indicators::default(),
        };
        if let Some(directory) = &config.directory {
            tracing::info!(
                feed.directory = %directory.display(),
                feed.packages = indicators.packages.len(),
                feed.indicators = indicators.domains.len() + indicators.wallets.len() + indicators.strings.len(),
                "known-malware feed loaded"
            );
        }
        Ok(KnownMalwareFeed {
            directory: config.directory.clone(),
            refresh_interval: config.refresh_interval,
            current: RwLock::new(Arc::new(indicators)),
        })
    }

    /// The feed every scan uses now.
    pub fn current(&self) -> Arc<Indicators> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Re-reads the directory. On success the new feed replaces the old one; on error
    /// the old one stays and the error (naming file and entry) is returned.
    pub fn refresh(&self) -> Result<(), FeedLoadError> {
        let Some(directory) = &self.directory else { return Ok(()) };
        let indicators = read_feed_directory(directory)?;
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(indicators);
        Ok(())
    }

    /// Whether a directory is configured (without one there is nothing to refresh).
    pub fn is_configured(&self) -> bool {
        self.directory.is_some()
    }

    /// How often the directory is re-read.
    pub fn refresh_interval(&self) -> Duration {
        self.refresh_interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADVISORY: &str = r#"{"id": "MAL-2025-1", "summary": "evil",
        "affected": [{"package": {"ecosystem": "npm", "name": "evil-pkg"}, "versions": ["1.0.0"]}],
        "database_specific": {"iocs": {"domains": ["evil.example"]}}}"#;

    fn config(directory: &Path) -> FeedsConfig {
        FeedsConfig { directory: Some(directory.to_path_buf()), refresh_interval: Duration::from_secs(3600) }
    }

    #[test]
    fn a_directory_of_advisories_is_one_feed() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("a.json"), ADVISORY).unwrap();
        std::fs::write(directory.path().join("notes.txt"), "not a feed").unwrap();
        let feed = KnownMalwareFeed::load(&config(directory.path())).unwrap();
        assert!(feed.current().malicious_version("evil-pkg", "1.0.0").is_some());
    }

    #[test]
    fn a_bad_file_fails_the_start_naming_file_and_entry() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("a.json"), ADVISORY).unwrap();
        std::fs::write(
            directory.path().join("b.json"),
            r#"{"id": "MAL-2025-2", "affected": [{"package": {"ecosystem": "npm", "name": "x"}}]}"#,
        )
        .unwrap();
        let error = KnownMalwareFeed::load(&config(directory.path())).unwrap_err().to_string();
        assert!(error.contains("b.json") && error.contains("MAL-2025-2"), "{error}");
    }

    #[test]
    fn a_bad_refresh_keeps_the_previous_feed() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("a.json"), ADVISORY).unwrap();
        let feed = KnownMalwareFeed::load(&config(directory.path())).unwrap();
        std::fs::write(directory.path().join("a.json"), "{ not json").unwrap();
        let error = feed.refresh().unwrap_err().to_string();
        assert!(error.contains("a.json"), "{error}");
        assert!(feed.current().malicious_version("evil-pkg", "1.0.0").is_some(), "the previous feed stays");
        std::fs::write(directory.path().join("a.json"), "[]").unwrap();
        feed.refresh().unwrap();
        assert!(feed.current().is_empty());
    }

    #[test]
    fn no_directory_means_an_empty_feed() {
        let feed = KnownMalwareFeed::load(&FeedsConfig { directory: None, refresh_interval: Duration::from_secs(60) })
            .unwrap();
        assert!(feed.current().is_empty());
        feed.refresh().unwrap();
    }

    #[test]
    fn the_shipped_sample_feed_loads() {
        let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scanner/data/known-malware");
        let indicators = read_feed_directory(&directory).unwrap();
        assert!(indicators.malicious_version("postmark-mcp", "1.0.16").is_some());
    }
}
