//! Streaming, bounded reading of a package tarball (`.tgz`) into [`PackageFiles`],
//! without extraction to disk and without trusting a single header field.
//!
//! Every limit in [`ScanOptions`] is enforced while streaming, before the bytes it
//! guards are buffered, so memory stays bounded by `max_uncompressed_bytes` whatever
//! the input claims. Hostile but readable entries (links, `..`, absolute paths,
//! duplicates) become findings; only a broken or oversized archive is an error.

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

use flate2::read::GzDecoder;

use crate::package::{PackageLimitError, check_path_limits};
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

/// Reads a gzip-compressed tar archive, as served by the npm registry.
pub fn read_tarball(tarball: &[u8], options: &ScanOptions) -> Result<PackageFiles, TarballError> {
    let compressed_size = tarball.len() as u64;
    if compressed_size > options.max_compressed_bytes {
        return Err(TarballError::CompressedTooLarge { size: compressed_size, limit: options.max_compressed_bytes });
    }
    let limit_reached = Rc::new(Cell::new(false));
    let decompressed = LimitedReader {
        inner: GzDecoder::new(tarball),
        remaining: options.max_uncompressed_bytes,
        limit_reached: Rc::clone(&limit_reached),
    };
    let result = read_entries(tar::Archive::new(decompressed), options);
    // A read error caused by our own cap must be reported as the cap, not as the
    // confusing I/O error it surfaces as inside the tar crate.
    if limit_reached.get() {
        return Err(TarballError::UncompressedTooLarge { limit: options.max_uncompressed_bytes });
    }
    result
}

fn read_entries<R: Read>(mut archive: tar::Archive<R>, options: &ScanOptions) -> Result<PackageFiles, TarballError> {
    let malformed = |error: std::io::Error| TarballError::Malformed { reason: error.to_string() };
    let mut package = PackageFiles::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut entry_count: u64 = 0;
    let mut package_root: Option<String> = None;
    let mut reported_second_root = false;
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
        // The declared size is bounded above, so this allocation is too; the read is
        // capped again in case the header lies.
        let mut bytes = Vec::with_capacity(declared_size.min(16 * 1024 * 1024) as usize);
        (&mut entry).take(options.max_file_bytes + 1).read_to_end(&mut bytes).map_err(malformed)?;
        let executable = entry.header().mode().map(|mode| mode & 0o111 != 0).unwrap_or(false);
        if package.contains(&relative_path) {
            findings.push(tar_finding(
                Rule::TarDuplicateEntry,
                Severity::Medium,
                format!("Tar entry `{relative_path}` appears more than once; extraction keeps the last copy, which is the one scanned here."),
                &relative_path,
            ));
        }
        package.add_file(&relative_path, bytes, executable, options)?;
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

/// Counts decompressed bytes and fails the read once the budget is spent.
struct LimitedReader<R> {
    inner: R,
    remaining: u64,
    // Shared with `read_tarball`, which cannot get the reader back from the tar crate.
    limit_reached: Rc<Cell<bool>>,
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 {
            // One more byte tells "exactly at the limit" from "over it".
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.limit_reached.set(true);
            return Err(std::io::Error::other("decompressed size limit reached"));
        }
        let allowed = buffer.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buffer[..allowed])?;
        self.remaining -= read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests;
