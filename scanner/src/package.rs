//! A package as the checks see it: its regular files in memory, with paths relative to
//! the package root, plus what reading it already revealed (hostile tar entries).
//!
//! Built from a tarball by [`crate::tarball`] or, for `airlock scan DIR`, file by file
//! by the caller with [`PackageFiles::add_file`]. Both paths enforce [`ScanOptions`].

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::{Finding, ScanOptions};

/// The files of one package version.
#[derive(Debug, Clone, Default)]
pub struct PackageFiles {
    // Invariant: keyed by normalised relative path (no leading `package/`, no `.` or
    // `..` components, `/` separators); every file passed the limits in `options`.
    files: BTreeMap<String, PackageFile>,
    total_bytes: u64,
    // Findings about the container itself, such as links or `..` in tar entries.
    pub(crate) reader_findings: Vec<Finding>,
}

/// One regular file of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageFile {
    /// The file's contents.
    pub bytes: Vec<u8>,
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
    /// A second file at the same path replaces the first, as extraction would.
    pub fn add_file(
        &mut self,
        path: &str,
        bytes: Vec<u8>,
        executable: bool,
        options: &ScanOptions,
    ) -> Result<(), PackageLimitError> {
        check_path_limits(path, options)?;
        let size = bytes.len() as u64;
        if size > options.max_file_bytes {
            return Err(PackageLimitError::FileTooLarge { path: path.to_owned(), size, limit: options.max_file_bytes });
        }
        if self.files.len() as u64 >= options.max_entries {
            return Err(PackageLimitError::TooManyEntries { limit: options.max_entries });
        }
        self.total_bytes += size;
        if self.total_bytes > options.max_uncompressed_bytes {
            return Err(PackageLimitError::PackageTooLarge { limit: options.max_uncompressed_bytes });
        }
        let sha256 = Sha256::digest(&bytes).into();
        if let Some(replaced) = self.files.insert(path.to_owned(), PackageFile { bytes, sha256, executable }) {
            self.total_bytes -= replaced.bytes.len() as u64;
        }
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

    /// The parsed `package.json`, when there is one and it is a JSON object.
    pub fn manifest(&self) -> Option<crate::PackageManifest> {
        let file = self.files.get("package.json")?;
        crate::PackageManifest::parse(&file.bytes).ok()
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
