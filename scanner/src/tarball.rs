//! Streaming, bounded reading of a package tarball (`.tgz`) into [`PackageFiles`],
//! without extraction to disk and without trusting a single header field.
//!
//! Every limit in [`ScanOptions`] is enforced while streaming, before the bytes it
//! guards are buffered. Files stream through a hash and only what
//! [`PackageFiles::bytes_to_keep`] allows is kept, so memory is bounded by
//! `max_retained_bytes` whatever the archive holds or claims; decompression stops at
//! `max_uncompressed_bytes` or at a [`MAX_COMPRESSION_RATIO`] no real package has.
//! Hostile but readable entries (links, `..`, absolute paths, duplicates, data after
//! the end-of-archive marker) become findings; only a broken or oversized archive is
//! an error.

use std::cell::{Cell, RefCell};
use std::io::Read;
use std::rc::Rc;

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::package::{PackageFile, PackageLimitError, check_path_limits};
use crate::rules::{Rule, finding_at};
use crate::{Finding, PackageFiles, ScanOptions, Severity};

/// Why a tarball could not be read. Every variant makes the report unscannable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TarballError {
    /// The compressed input is larger than `max_compressed_bytes`.
    #[error("the tarball is {size} bytes, more than the limit of {limit}")]
    CompressedTooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Decompression produced more than `max_uncompressed_bytes`.
    #[error("the tarball decompresses to more than {limit} bytes")]
    UncompressedTooLarge {
        /// The limit.
        limit: u64,
    },
    /// Decompression expanded the input more than any real package does: a
    /// decompression bomb, stopped before it is inflated.
    #[error(
        "the tarball is a decompression bomb: {compressed} compressed bytes had inflated to {uncompressed} bytes, more than {ratio} times their size"
    )]
    CompressionRatio {
        /// Compressed bytes consumed when the ratio was exceeded.
        compressed: u64,
        /// Bytes they inflated to.
        uncompressed: u64,
        /// The ratio limit.
        ratio: u64,
    },
    /// The gzip stream or the tar structure is broken.
    #[error("the tarball cannot be read: {reason}")]
    Malformed {
        /// The decoder's message.
        reason: String,
    },
    /// A file, path or count limit was exceeded.
    #[error("the tarball exceeds a limit: {0}")]
    Limit(#[from] PackageLimitError),
    /// The archive holds no regular files at all.
    #[error("the tarball contains no files")]
    Empty,
}

/// The most a tarball may expand before it is a decompression bomb, once it has
/// inflated past [`RATIO_CHECKED_ABOVE_BYTES`]. Real packages compress 3 to 10 times
/// (minified code, JSON); 12 files of zeros compress over 1000 times.
pub(crate) const MAX_COMPRESSION_RATIO: u64 = 200;
/// Below this much output the ratio is not checked: small files of repeated bytes are
/// legitimate and cost nothing.
pub(crate) const RATIO_CHECKED_ABOVE_BYTES: u64 = 64 * 1024 * 1024;
/// Zero bytes tolerated after the end-of-archive marker: the marker's second block and
/// padding to a record (GNU tar pads to 10 KiB, larger blocking factors to 64 KiB).
pub(crate) const TRAILING_ZEROS_ALLOWED: u64 = 64 * 1024;
/// How far past the end-of-archive marker the reader looks: enough to prove there is
/// more there, without inflating a trailing bomb (2 GiB of zeros compress to 2 MB).
pub(crate) const TRAILING_BYTES_INSPECTED: u64 = 1024 * 1024;

/// Reads a gzip-compressed tar archive, as served by the npm registry. Every gzip
/// member is read, as npm's own decompression does, so a second member cannot hide
/// files from the scan.
pub fn read_tarball(tarball: &[u8], options: &ScanOptions) -> Result<PackageFiles, TarballError> {
    let compressed_size = tarball.len() as u64;
    if compressed_size > options.max_compressed_bytes {
        return Err(TarballError::CompressedTooLarge { size: compressed_size, limit: options.max_compressed_bytes });
    }
    let stopped = Rc::new(RefCell::new(None));
    let compressed_read = Rc::new(Cell::new(0));
    let decompressed = LimitedReader {
        inner: MultiGzDecoder::new(CountingReader { inner: tarball, count: Rc::clone(&compressed_read) }),
        produced: 0,
        limit: options.max_uncompressed_bytes,
        compressed_read,
        stopped: Rc::clone(&stopped),
    };
    let mut archive = tar::Archive::new(decompressed);
    let result = read_entries(&mut archive, options);
    // A read error caused by our own cap must be reported as the cap, not as the
    // confusing I/O error it surfaces as inside the tar crate.
    if let Some(error) = stopped.borrow_mut().take() {
        return Err(error);
    }
    let mut package = result?;
    if let Some(finding) = inspect_after_end_of_archive(archive.into_inner()) {
        package.reader_findings.push(finding);
    }
    Ok(package)
}

/// What follows the end-of-archive marker (the tar reader stops at its first zero
/// block). Every client still inflates it, and some extractors read entries after a
/// single zero block, so anything beyond the marker and record padding is reported.
fn inspect_after_end_of_archive<R: Read>(mut reader: LimitedReader<R>) -> Option<Finding> {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut trailing: u64 = 0;
    let mut first_non_zero: Option<u64> = None;
    let mut unreadable = false;
    while trailing < TRAILING_BYTES_INSPECTED {
        let wanted = buffer.len().min((TRAILING_BYTES_INSPECTED - trailing) as usize);
        match reader.read(&mut buffer[..wanted]) {
            Ok(0) => break,
            Ok(read) => {
                if first_non_zero.is_none() {
                    first_non_zero =
                        buffer[..read].iter().position(|&byte| byte != 0).map(|position| trailing + position as u64);
                }
                trailing += read as u64;
            }
            // Over a limit, or a gzip stream that is corrupt after the archive ended:
            // either way there is more than a clean end.
            Err(_) => {
                unreadable = reader.stopped.borrow().is_none();
                break;
            }
        }
    }
    let more_beyond = trailing >= TRAILING_BYTES_INSPECTED || reader.stopped.borrow().is_some();
    if first_non_zero.is_none() && trailing <= TRAILING_ZEROS_ALLOWED && !unreadable && !more_beyond {
        return None;
    }
    let amount = if more_beyond { format!("at least {trailing} bytes") } else { format!("{trailing} bytes") };
    let what = match first_non_zero {
        Some(offset) => format!("non-zero data from byte {offset} on"),
        None => "zeros".to_owned(),
    };
    let corrupt = if unreadable { ", then a corrupt compressed stream" } else { "" };
    Some(Finding {
        rule: Rule::TarTrailingData.id().to_owned(),
        severity: Severity::High,
        message: format!(
            "The tarball holds {amount} after its end-of-archive marker ({what}{corrupt}): every client inflates them, some extractors read them as more files, and no packing tool writes them."
        ),
        location: None,
        excerpt: None,
    })
}

fn read_entries<R: Read>(archive: &mut tar::Archive<R>, options: &ScanOptions) -> Result<PackageFiles, TarballError> {
    let malformed = |error: std::io::Error| TarballError::Malformed { reason: error.to_string() };
    let mut package = PackageFiles::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut entry_count: u64 = 0;
    let mut package_root: Option<String> = None;
    let mut reported_second_root = false;
    let mut chunk = vec![0u8; 64 * 1024];
    for entry in archive.entries().map_err(malformed)? {
        let mut entry = entry.map_err(malformed)?;
        entry_count += 1;
        if entry_count > options.max_entries {
            return Err(PackageLimitError::TooManyEntries { limit: options.max_entries }.into());
        }
        let raw_path = entry.path_bytes().into_owned();
        let entry_type = entry.header().entry_type();
        if raw_path.len() > options.max_path_bytes {
            check_path_limits(&String::from_utf8_lossy(&raw_path), options)?;
        }
        let path_text = match String::from_utf8(raw_path.clone()) {
            Ok(text) => text,
            Err(_) => {
                let lossy = String::from_utf8_lossy(&raw_path).into_owned();
                findings.push(tar_finding(
                    Rule::TarSuspiciousPath,
                    Severity::Medium,
                    format!(
                        "Tar entry `{lossy}` has a path that is not valid UTF-8; tools disagree on how to extract it."
                    ),
                    &lossy,
                ));
                lossy
            }
        };
        if matches!(entry_type, tar::EntryType::XGlobalHeader | tar::EntryType::Directory) {
            continue;
        }
        // A ustar name that disagrees with the PAX/GNU long name is a known way to make
        // two tools extract different files from the same archive.
        let ustar_name = entry.header().path_bytes().into_owned();
        if !ustar_name.is_empty() && ustar_name.len() < 99 && ustar_name != raw_path {
            findings.push(tar_finding(
                Rule::TarSuspiciousPath,
                Severity::Medium,
                format!(
                    "Tar entry `{path_text}` carries a different name in its plain header (`{}`); tools that ignore PAX/GNU names extract another path.",
                    String::from_utf8_lossy(&ustar_name)
                ),
                &path_text,
            ));
        }
        let Some(relative_path) =
            normalise_entry_path(&path_text, &mut package_root, &mut reported_second_root, &mut findings)
        else {
            continue;
        };
        check_path_limits(&relative_path, options)?;
        match entry_type {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|target| String::from_utf8_lossy(&target).into_owned())
                    .unwrap_or_default();
                findings.push(tar_finding(
                    Rule::TarLinkEntry,
                    Severity::Medium,
                    format!("Tar entry `{relative_path}` is a link to `{target}`; npm does not install links from tarballs, so this file is not what it seems."),
                    &relative_path,
                ));
                continue;
            }
            other => {
                findings.push(tar_finding(
                    Rule::TarSpecialEntry,
                    Severity::Medium,
                    format!("Tar entry `{relative_path}` is of unexpected type {other:?}."),
                    &relative_path,
                ));
                continue;
            }
        }
        let declared_size = entry.size();
        if declared_size > options.max_file_bytes {
            return Err(PackageLimitError::FileTooLarge {
                path: relative_path,
                size: declared_size,
                limit: options.max_file_bytes,
            }
            .into());
        }
        package.check_file_limits(&relative_path, declared_size, options)?;
        let executable = entry.header().mode().map(|mode| mode & 0o111 != 0).unwrap_or(false);
        // The tar reader yields exactly the declared size (or fails), so the kept
        // prefix is allocated once, within the retention budget.
        let keep = package.bytes_to_keep(&relative_path, declared_size, options);
        let mut bytes = Vec::with_capacity(keep as usize);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        loop {
            let read = entry.read(&mut chunk).map_err(malformed)?;
            if read == 0 {
                break;
            }
            hasher.update(&chunk[..read]);
            size += read as u64;
            let room = (keep as usize).saturating_sub(bytes.len()).min(read);
            bytes.extend_from_slice(&chunk[..room]);
        }
        if package.contains(&relative_path) {
            findings.push(tar_finding(
                Rule::TarDuplicateEntry,
                Severity::Medium,
                format!("Tar entry `{relative_path}` appears more than once; extraction keeps the last copy, which is the one scanned here."),
                &relative_path,
            ));
        }
        let file = PackageFile { bytes, size, sha256: hasher.finalize().into(), executable };
        package.add_streamed_file(&relative_path, file, options)?;
    }
    if package.is_empty() {
        return Err(TarballError::Empty);
    }
    package.reader_findings = findings;
    Ok(package)
}

/// Strips the package root directory (`package/` in registry tarballs, anything in
/// old ones) and rejects paths that would escape it. `None` means: skip this entry.
fn normalise_entry_path(
    path: &str,
    package_root: &mut Option<String>,
    reported_second_root: &mut bool,
    findings: &mut Vec<Finding>,
) -> Option<String> {
    if path.starts_with('/') || path.starts_with('\\') || path.get(1..3) == Some(":\\") {
        findings.push(tar_finding(
            Rule::TarPathTraversal,
            Severity::High,
            format!(
                "Tar entry `{path}` has an absolute path; extracted naively it writes outside the package directory."
            ),
            path,
        ));
        return None;
    }
    if path.contains('\\') {
        findings.push(tar_finding(
            Rule::TarSuspiciousPath,
            Severity::Medium,
            format!("Tar entry `{path}` contains a backslash, which is a path separator on Windows."),
            path,
        ));
    }
    let mut components = Vec::new();
    for component in path.split(['/', '\\']) {
        match component {
            "" | "." => {}
            ".." => {
                findings.push(tar_finding(
                    Rule::TarPathTraversal,
                    Severity::High,
                    format!(
                        "Tar entry `{path}` contains `..`; extracted naively it writes outside the package directory."
                    ),
                    path,
                ));
                return None;
            }
            other => components.push(other),
        }
    }
    if components.len() < 2 {
        // A file at the archive's top level, outside any package root directory.
        findings.push(tar_finding(
            Rule::TarSuspiciousPath,
            Severity::Medium,
            format!("Tar entry `{path}` lies outside the package directory."),
            path,
        ));
        return None;
    }
    let root = components[0];
    match package_root {
        None => *package_root = Some(root.to_owned()),
        Some(existing) if existing != root && !*reported_second_root => {
            *reported_second_root = true;
            findings.push(tar_finding(
                Rule::TarSuspiciousPath,
                Severity::Medium,
                format!("Tar entry `{path}` lies under `{root}/`, not under the package directory `{existing}/`; both are scanned as one package."),
                path,
            ));
        }
        Some(_) => {}
    }
    Some(components[1..].join("/"))
}

fn tar_finding(rule: Rule, severity: Severity, message: String, path: &str) -> Finding {
    finding_at(rule, severity, message, path, None, None)
}

/// Counts the compressed bytes the decoder has consumed.
struct CountingReader<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.count.set(self.count.get() + read as u64);
        Ok(read)
    }
}

/// Counts decompressed bytes and fails the read once the budget is spent or the
/// output outgrows its input by more than [`MAX_COMPRESSION_RATIO`].
struct LimitedReader<R> {
    inner: R,
    produced: u64,
    limit: u64,
    compressed_read: Rc<Cell<u64>>,
    // Shared with `read_tarball`, which cannot get the reader back from the tar crate
    // while it is reading entries.
    stopped: Rc<RefCell<Option<TarballError>>>,
}

impl<R: Read> LimitedReader<R> {
    fn stop(&self, error: TarballError) -> std::io::Error {
        let message = error.to_string();
        *self.stopped.borrow_mut() = Some(error);
        std::io::Error::other(message)
    }
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.produced >= self.limit {
            // One more byte tells "exactly at the limit" from "over it".
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            return Err(self.stop(TarballError::UncompressedTooLarge { limit: self.limit }));
        }
        let allowed = buffer.len().min(usize::try_from(self.limit - self.produced).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buffer[..allowed])?;
        self.produced += read as u64;
        let compressed = self.compressed_read.get().max(1);
        if self.produced > RATIO_CHECKED_ABOVE_BYTES && self.produced / compressed > MAX_COMPRESSION_RATIO {
            return Err(self.stop(TarballError::CompressionRatio {
                compressed,
                uncompressed: self.produced,
                ratio: MAX_COMPRESSION_RATIO,
            }));
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests;
