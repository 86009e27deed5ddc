//! A package as the checks see it: its regular files in memory, with paths relative to
//! the package root, plus what reading it already revealed (hostile tar entries).
//!
//! Built from a tarball by [`crate::tarball`] or, for `airlock scan DIR`, file by file
//! by the caller with [`PackageFiles::add_file`]. Both paths enforce [`ScanOptions`].
//!
//! Memory is bounded by what is kept, not by what the archive holds: every file is
//! hashed in full, but its contents are kept only up to `max_parsed_file_bytes` (no
//! check reads further) and only while the package's total stays within
//! `max_retained_bytes`; beyond that a file keeps its first [`HEAD_BYTES`] (what the
//! binary and script checks look at) or nothing, and the analysis reports the files it
//! could not read in full.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::{Finding, ScanOptions};

/// What is kept of a file too large to be read in full: enough for the binary format
/// and shebang checks and for a reviewer's first look.
pub(crate) const HEAD_BYTES: u64 = 1024 * 1024;

/// The files of one package version.
#[derive(Debug, Clone, Default)]
pub struct PackageFiles {
    // Invariant: keyed by normalised relative path (no leading `package/`, no `.` or
    // `..` components, `/` separators); every file passed the limits in `options`.
    files: BTreeMap<String, PackageFile>,
    total_bytes: u64,
    // Σ of `bytes.len()` over `files`: what the package costs in memory.
    retained_bytes: u64,
    // The first file (in reading order) kept only partly because `max_retained_bytes`
    // was spent; the analysis reports it.
    pub(crate) retention_exhausted_at: Option<String>,
    // Findings about the container itself, such as links or `..` in tar entries.
    pub(crate) reader_findings: Vec<Finding>,
}

/// One regular file of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    /// The file's contents, or only their start when the file is larger than any check
    /// reads or the package's retention budget was spent: see [`PackageFile::is_complete`].
    pub bytes: Vec<u8>,
    /// The file's size in the package, however much of it `bytes` holds.
    pub size: u64,
    /// SHA-256 of the contents, to compare versions without comparing bytes.
    pub sha256: [u8; 32],
    /// Whether the tar entry had any executable bit set (always false for directories
    /// read by the CLI, which do not carry reliable modes across platforms).
    pub executable: bool,
}

/// Adding a file broke a limit; the package is unscannable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageLimitError {
    /// Too many files.
    #[error("more than {limit} entries")]
    TooManyEntries {
        /// The limit that was exceeded.
        limit: u64,
    },
    /// One file is too large.
    #[error("file `{path}` is {size} bytes, more than the limit of {limit}")]
    FileTooLarge {
        /// The offending path.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// All files together are too large.
    #[error("package unpacks to more than {limit} bytes")]
    PackageTooLarge {
        /// The limit.
        limit: u64,
    },
    /// A path is too long or too deep.
    #[error("path `{path}` exceeds the path length ({max_bytes} bytes) or depth ({max_depth}) limit")]
    PathTooLong {
        /// The offending path, truncated to 200 bytes.
        path: String,
        /// The length limit.
        max_bytes: usize,
        /// The depth limit.
        max_depth: usize,
    },
}

impl PackageFiles {
    /// An empty package.
    pub fn new() -> PackageFiles {
        PackageFiles::default()
    }

    /// Adds a regular file at `path` (relative to the package root, `/`-separated).
    /// A second file at the same path replaces the first, as extraction would. Only
    /// what [`PackageFiles::bytes_to_keep`] allows of `bytes` is kept.
    pub fn add_file(
        &mut self,
        path: &str,
        mut bytes: Vec<u8>,
        executable: bool,
        options: &ScanOptions,
    ) -> Result<(), PackageLimitError> {
        let size = bytes.len() as u64;
        self.check_file_limits(path, size, options)?;
        let sha256 = Sha256::digest(&bytes).into();
        let keep = self.bytes_to_keep(path, size, options);
        if keep < size {
            bytes.truncate(keep as usize);
            bytes.shrink_to_fit();
        }
        self.insert(path, PackageFile { bytes, size, sha256, executable }, options)
    }

    /// Adds a file whose contents were streamed: `kept` is at most what
    /// [`PackageFiles::bytes_to_keep`] allowed, `size` and `sha256` cover all of it.
    pub(crate) fn add_streamed_file(
        &mut self,
        path: &str,
        file: PackageFile,
        options: &ScanOptions,
    ) -> Result<(), PackageLimitError> {
        self.check_file_limits(path, file.size, options)?;
        self.insert(path, file, options)
    }

    /// The limits a file must pass before any of it is kept.
    pub(crate) fn check_file_limits(
        &self,
        path: &str,
        size: u64,
        options: &ScanOptions,
    ) -> Result<(), PackageLimitError> {
        check_path_limits(path, options)?;
        if size > options.max_file_bytes {
            return Err(PackageLimitError::FileTooLarge { path: path.to_owned(), size, limit: options.max_file_bytes });
        }
        if self.files.len() as u64 >= options.max_entries && !self.files.contains_key(path) {
            return Err(PackageLimitError::TooManyEntries { limit: options.max_entries });
        }
        let replaced_size = self.files.get(path).map_or(0, |replaced| replaced.size);
        if self.total_bytes - replaced_size + size > options.max_uncompressed_bytes {
            return Err(PackageLimitError::PackageTooLarge { limit: options.max_uncompressed_bytes });
        }
        Ok(())
    }

    /// How many of the first bytes of a `size`-byte file at `path` are kept: all of a
    /// file a check may read in full (at most `max_parsed_file_bytes`), the first
    /// [`HEAD_BYTES`] of a larger one, and never more than what is left of
    /// `max_retained_bytes`. Records the first file cut short by the budget.
    pub(crate) fn bytes_to_keep(&mut self, path: &str, size: u64, options: &ScanOptions) -> u64 {
        let wanted = if size <= options.max_parsed_file_bytes { size } else { HEAD_BYTES.min(size) };
        let replaced = self.files.get(path).map_or(0, |replaced| replaced.bytes.len() as u64);
        let budget_left = options.max_retained_bytes.saturating_sub(self.retained_bytes - replaced);
        if wanted > budget_left && self.retention_exhausted_at.is_none() {
            self.retention_exhausted_at = Some(path.to_owned());
        }
        wanted.min(budget_left)
    }

    fn insert(&mut self, path: &str, file: PackageFile, options: &ScanOptions) -> Result<(), PackageLimitError> {
        debug_assert!(file.bytes.len() as u64 <= file.size);
        self.total_bytes += file.size;
        self.retained_bytes += file.bytes.len() as u64;
        if let Some(replaced) = self.files.insert(path.to_owned(), file) {
            self.total_bytes -= replaced.size;
            self.retained_bytes -= replaced.bytes.len() as u64;
        }
        debug_assert!(self.total_bytes <= options.max_uncompressed_bytes);
        Ok(())
    }

    /// The file at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&PackageFile> {
        self.files.get(path)
    }

    /// Whether there is a file at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    /// All files, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &PackageFile)> {
        self.files.iter().map(|(path, file)| (path.as_str(), file))
    }

    /// All paths, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the package has no files.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Total size of all files in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Total of what is kept of the files in memory, at most `max_retained_bytes`.
    pub fn retained_bytes(&self) -> u64 {
        self.retained_bytes
    }

    /// The parsed `package.json`, when there is one and it is a JSON object.
    pub fn manifest(&self) -> Option<crate::PackageManifest> {
        let file = self.files.get("package.json")?;
        crate::PackageManifest::parse(&file.bytes).ok()
    }
}

impl PackageFile {
    /// Whether `bytes` holds the whole file.
    pub fn is_complete(&self) -> bool {
        self.bytes.len() as u64 == self.size
    }
}

/// Path length and depth limits, shared by the tarball reader and [`PackageFiles::add_file`].
pub(crate) fn check_path_limits(path: &str, options: &ScanOptions) -> Result<(), PackageLimitError> {
    let depth = path.split('/').count();
    if path.len() > options.max_path_bytes || depth > options.max_path_depth {
        let mut shown = path.to_owned();
        if shown.len() > 200 {
            let mut cut = 200;
            while !shown.is_char_boundary(cut) {
                cut -= 1;
            }
            shown.truncate(cut);
        }
        return Err(PackageLimitError::PathTooLong {
            path: shown,
            max_bytes: options.max_path_bytes,
            max_depth: options.max_path_depth,
        });
    }
    Ok(())
}
