//! What the admin version page shows from a package's files (the code around each
//! finding and the diffs of changed files), taken once by the check worker while it has
//! the files in memory and stored with the check, so a page view never re-reads or
//! decompresses a tarball.

use std::collections::HashSet;

use airlock_scanner::{Finding, PackageFiles, ScanOptions, ScanReport};
use serde::{Deserialize, Serialize};

/// Changed files diffed, and diff lines kept in all.
const MAX_DIFF_FILES: usize = 40;
const MAX_DIFF_LINES: usize = 4000;
/// Files larger than this are not diffed.
const MAX_DIFF_FILE_BYTES: usize = 512 * 1024;
/// Places whose surrounding code is kept; a report has at most a few hundred findings.
const MAX_EXCERPTS: usize = 1000;
/// Longest line kept, in characters.
const MAX_LINE_CHARS: usize = 400;

/// The stored review material of one check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewMaterial {
    /// Up to two lines either side of each place a finding points at.
    pub excerpts: Vec<CodeExcerpt>,
    /// Unified diffs of changed text files against the previous version.
    pub file_diffs: Vec<FileDiff>,
    /// Why some changed files have no diff (binary, too large, over the budget).
    pub diff_note: String,
}

/// The code around one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeExcerpt {
    /// Path inside the package.
    pub file: String,
    /// The 1-based line a finding points at.
    pub line: u32,
    /// `(line number, text)`, the pointed-at line among them.
    pub lines: Vec<(u32, String)>,
}

/// One changed file's unified diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    /// Path inside the package.
    pub path: String,
    /// The diff's lines without the `---`/`+++` header, bounded by the line budget.
    pub lines: Vec<String>,
    /// Whether the line budget cut it short.
    pub truncated: bool,
}

impl ReviewMaterial {
    /// Reads the tarballs again (the worker still has them) and keeps what the page needs.
    pub fn collect(report: &ScanReport, tarball: &[u8], previous: Option<&[u8]>, options: &ScanOptions) -> Self {
        let changed: &[String] = report.diff.as_ref().map(|diff| diff.files_changed.as_slice()).unwrap_or_default();
        let wants_current = !changed.is_empty() || report.findings.iter().any(|finding| line_of(finding).is_some());
        if !wants_current {
            return ReviewMaterial::default();
        }
        let current = airlock_scanner::read_tarball(tarball, options).ok();
        let previous = match (previous, changed.is_empty()) {
            (Some(bytes), false) => airlock_scanner::read_tarball(bytes, options).ok(),
            _ => None,
        };
        let mut material = Self::from_files(&report.findings, current.as_ref(), previous.as_ref(), changed);
        if !changed.is_empty() && material.diff_note.is_empty() && (current.is_none() || previous.is_none()) {
            material.diff_note = "File diffs are unavailable: a tarball could not be read.".into();
        }
        material
    }

    /// The material from files already read.
    pub fn from_files(
        findings: &[Finding],
        current: Option<&PackageFiles>,
        previous: Option<&PackageFiles>,
        changed: &[String],
    ) -> Self {
        let mut excerpts = Vec::new();
        if let Some(current) = current {
            let mut seen = HashSet::new();
            for finding in findings {
                let Some((file, line)) = line_of(finding) else { continue };
                if excerpts.len() >= MAX_EXCERPTS || !seen.insert((file, line)) {
                    continue;
                }
                if let Some(excerpt) = excerpt(current, file, line) {
                    excerpts.push(excerpt);
                }
            }
        }
        let (file_diffs, diff_note) = match (current, previous) {
            (Some(current), Some(previous)) => file_diffs(previous, current, changed),
            _ => (Vec::new(), String::new()),
        };
        ReviewMaterial { excerpts, file_diffs, diff_note }
    }

    /// The excerpt around `file:line`, if one was kept.
    pub fn excerpt(&self, file: &str, line: u32) -> Option<&CodeExcerpt> {
        self.excerpts.iter().find(|excerpt| excerpt.file == file && excerpt.line == line)
    }
}

fn line_of(finding: &Finding) -> Option<(&str, u32)> {
    let location = finding.location.as_ref()?;
    Some((location.file.as_str(), location.line?))
}

fn excerpt(files: &PackageFiles, file: &str, line: u32) -> Option<CodeExcerpt> {
    let text = std::str::from_utf8(&files.get(file)?.bytes).ok()?;
    let wanted = line as usize;
    let first = wanted.saturating_sub(2).max(1);
    let lines: Vec<(u32, String)> = text
        .lines()
        .enumerate()
        .skip(first - 1)
        .take(wanted + 3 - first)
        .map(|(index, text)| (index as u32 + 1, shorten(text, MAX_LINE_CHARS)))
        .collect();
    lines.iter().any(|(number, _)| *number == line).then(|| CodeExcerpt { file: file.to_owned(), line, lines })
}

/// Unified diffs of changed text files, bounded in files and lines.
fn file_diffs(previous: &PackageFiles, current: &PackageFiles, changed: &[String]) -> (Vec<FileDiff>, String) {
    let mut diffs = Vec::new();
    let mut skipped = Vec::new();
    let mut lines_left = MAX_DIFF_LINES;
    for path in changed {
        let (Some(old), Some(new)) = (previous.get(path), current.get(path)) else { continue };
        let texts = (std::str::from_utf8(&old.bytes), std::str::from_utf8(&new.bytes));
        let (Ok(old_text), Ok(new_text)) = texts else {
            skipped.push(format!("{path} (binary)"));
            continue;
        };
        if diffs.len() >= MAX_DIFF_FILES || lines_left == 0 || old_text.len().max(new_text.len()) > MAX_DIFF_FILE_BYTES
        {
            skipped.push(path.clone());
            continue;
        }
        let unified = similar::TextDiff::from_lines(old_text, new_text)
            .unified_diff()
            .context_radius(3)
            .header(&format!("a/{path}"), &format!("b/{path}"))
            .to_string();
        let mut lines = Vec::new();
        let mut truncated = false;
        for line in unified.lines() {
            if line.starts_with("--- ") || line.starts_with("+++ ") {
                continue;
            }
            if lines_left == 0 {
                truncated = true;
                break;
            }
            lines_left -= 1;
            lines.push(shorten(line, MAX_LINE_CHARS));
        }
        diffs.push(FileDiff { path: path.clone(), lines, truncated });
    }
    let note = if skipped.is_empty() { String::new() } else { format!("Not shown: {}.", skipped.join(", ")) };
    (diffs, note)
}

fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(limit).collect::<String>())
    }
}
