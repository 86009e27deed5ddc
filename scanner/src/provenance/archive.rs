//! Reads a gzipped tarball (an npm package or a forge's source archive) into a
//! [`FileTree`] of relative paths, with bounded memory and hostile paths refused.
//!
//! Both kinds of archive put everything under one top-level directory (`package/`,
//! `{owner}-{repo}-{sha}/`), which is stripped.

use std::collections::BTreeMap;
use std::io::Read;

use serde::Serialize;

/// Size limits for reading an archive. Exceeding one is an error, never a truncation:
/// a comparison over part of the files would be a silent pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// The most uncompressed bytes read from the gzip stream (headers included).
    pub max_total_bytes: u64,
    /// The largest single file.
    pub max_file_bytes: u64,
    /// The most entries.
    pub max_entries: usize,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        ArchiveLimits { max_total_bytes: 512 * 1024 * 1024, max_file_bytes: 64 * 1024 * 1024, max_entries: 100_000 }
    }
}

/// Why an archive could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum ArchiveError {
    /// Not gzip, or not tar, or truncated.
    #[error("not a readable .tar.gz: {0}")]
    Corrupt(String),
    /// More uncompressed bytes than allowed (a decompression bomb, or just too big).
    #[error("archive expands beyond {0} bytes")]
    TooLarge(u64),
    /// One file is larger than allowed.
    #[error("file `{path}` is larger than {limit} bytes")]
    FileTooLarge {
        /// The entry.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// More entries than allowed.
    #[error("archive has more than {0} entries")]
    TooManyEntries(usize),
    /// An absolute path, or one with `..`, which could escape wherever it is unpacked.
    #[error("archive entry `{0}` has a hostile path")]
    HostilePath(String),
    /// The same path twice (tar allows it; the later one would shadow the earlier).
    #[error("archive has `{0}` more than once")]
    DuplicatePath(String),
}

/// One regular file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// The contents.
    pub bytes: Vec<u8>,
    /// True when any executable bit is set in the archive's mode.
    pub executable: bool,
}

/// Regular files by relative path (`/`-separated, no leading `./`, no `..`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTree {
    /// The files. Symlinks, hard links, devices and directories are not kept.
    pub files: BTreeMap<String, TreeFile>,
}

impl FileTree {
    /// Builds a tree from paths and contents (for a directory the caller read, or
    /// tests). Paths are normalised like archive entries; a hostile one is an error.
    pub fn from_files<I, P>(files: I) -> Result<FileTree, ArchiveError>
    where
        I: IntoIterator<Item = (P, Vec<u8>)>,
        P: AsRef<str>,
    {
        let mut tree = FileTree::default();
        for (path, bytes) in files {
            let path = normalize_entry_path(path.as_ref())?;
            tree.files.insert(path, TreeFile { bytes, executable: false });
        }
        Ok(tree)
    }

    /// Reads a `.tar.gz` and strips its single top-level directory (when every entry
    /// shares one).
    pub fn from_tar_gz(bytes: &[u8], limits: ArchiveLimits) -> Result<FileTree, ArchiveError> {
        let gunzip = flate2::read::GzDecoder::new(bytes);
        // Why a byte cap on the decompressed stream: a few KB of gzip can expand to
        // gigabytes; the cap bounds memory and time whatever the headers claim.
        let capped = CappedReader { inner: gunzip, remaining: limits.max_total_bytes, limit: limits.max_total_bytes };
        let mut archive = tar::Archive::new(capped);
        let mut files = BTreeMap::new();
        let entries = archive.entries().map_err(|error| corrupt_or_capped(&error, limits))?;
        let mut entry_count = 0usize;
        for entry in entries {
            let mut entry = entry.map_err(|error| corrupt_or_capped(&error, limits))?;
            entry_count += 1;
            if entry_count > limits.max_entries {
                return Err(ArchiveError::TooManyEntries(limits.max_entries));
            }
            let kind = entry.header().entry_type();
            if !kind.is_file() {
                // Directories, links, pax and GNU headers carry no file content we compare.
                continue;
            }
            let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let path = normalize_entry_path(&raw_path)?;
            let size = entry.header().size().unwrap_or(u64::MAX);
            if size > limits.max_file_bytes {
                return Err(ArchiveError::FileTooLarge { path, limit: limits.max_file_bytes });
            }
            let mode = entry.header().mode().unwrap_or(0o644);
            let mut contents = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 20));
            (&mut entry)
                .take(limits.max_file_bytes + 1)
                .read_to_end(&mut contents)
                .map_err(|error| corrupt_or_capped(&error, limits))?;
            if files.contains_key(&path) {
                return Err(ArchiveError::DuplicatePath(path));
            }
            files.insert(path, TreeFile { bytes: contents, executable: mode & 0o111 != 0 });
        }
        Ok(FileTree { files }.strip_common_top_directory())
    }

    /// Removes the one top-level directory every file sits under, if there is one.
    fn strip_common_top_directory(self) -> FileTree {
        let mut top = None;
        for path in self.files.keys() {
            let Some((first, _)) = path.split_once('/') else {
                return self;
            };
            match top {
                None => top = Some(first.to_owned()),
                Some(ref existing) if existing == first => {}
                Some(_) => return self,
            }
        }
        let Some(top) = top else {
            return self;
        };
        let prefix = format!("{top}/");
        let files = self.files.into_iter().map(|(path, file)| (path[prefix.len()..].to_owned(), file)).collect();
        FileTree { files }
    }

    /// The files under `directory` (`""` for all), with paths relative to it.
    pub fn subtree(&self, directory: &str) -> FileTree {
        let directory = directory.trim_matches('/');
        if directory.is_empty() {
            return self.clone();
        }
        let prefix = format!("{directory}/");
        let files = self
            .files
            .iter()
            .filter_map(|(path, file)| path.strip_prefix(&prefix).map(|relative| (relative.to_owned(), file.clone())))
            .collect();
        FileTree { files }
    }

    /// The file at `path`, if present.
    pub fn get(&self, path: &str) -> Option<&TreeFile> {
        self.files.get(path)
    }
}

fn corrupt_or_capped(error: &std::io::Error, limits: ArchiveLimits) -> ArchiveError {
    if error.kind() == std::io::ErrorKind::FileTooLarge {
        ArchiveError::TooLarge(limits.max_total_bytes)
    } else {
        ArchiveError::Corrupt(error.to_string())
    }
}

/// Normalises an entry path: strips `./`, refuses absolute paths, `..`, backslashes
/// and NULs, which could escape a directory if anyone ever unpacked it.
fn normalize_entry_path(raw: &str) -> Result<String, ArchiveError> {
    let hostile = || ArchiveError::HostilePath(raw.to_owned());
    if raw.starts_with('/') || raw.contains('\\') || raw.contains('\0') {
        return Err(hostile());
    }
    let mut segments = Vec::new();
    for segment in raw.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(hostile()),
            segment if segment.len() >= 2 && segment.as_bytes()[1] == b':' && segments.is_empty() => {
                // A Windows drive prefix such as `C:`.
                return Err(hostile());
            }
            segment => segments.push(segment),
        }
    }
    if segments.is_empty() {
        return Err(hostile());
    }
    Ok(segments.join("/"))
}

/// Fails with `FileTooLarge` (kind) once more than `limit` bytes were read.
struct CappedReader<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 {
            // Distinguish "exactly at the cap and finished" from "more to come".
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::FileTooLarge,
                    format!("more than {} bytes", self.limit),
                )),
            };
        }
        let allowed = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(buffer.len());
        let read = self.inner.read(&mut buffer[..allowed])?;
        self.remaining -= read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests;
