//! Checks on files as files: compiled binaries (and binaries pretending to be text),
//! native add-ons, shell scripts that download and run things, and binding.gyp.

use super::text::ShellCommandTraits;
use super::{Rule, finding_at, quote};
use crate::{Finding, PackageFile, Severity};

/// The executable format of a file, from its first bytes.
pub(crate) fn binary_format(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x7f, b'E', b'L', b'F', ..] => Some("ELF (Linux)"),
        [0xfe, 0xed, 0xfa, 0xce | 0xcf, ..] | [0xce | 0xcf, 0xfa, 0xed, 0xfe, ..] => Some("Mach-O (macOS)"),
        // 0xCAFEBABE is also a Java class file; a fat Mach-O has a small arch count there.
        [0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, count, ..] if *count < 20 => Some("Mach-O universal (macOS)"),
        [b'M', b'Z', ..] if bytes.len() > 0x40 => {
            let header_offset = u32::from_le_bytes([bytes[0x3c], bytes[0x3d], bytes[0x3e], bytes[0x3f]]) as usize;
            (bytes.get(header_offset..header_offset + 4) == Some(b"PE\0\0")).then_some("PE (Windows)")
        }
        _ => None,
    }
}

/// Extensions that promise text; a compiled binary behind one is hiding.
const TEXT_EXTENSIONS: &[&str] = &[
    "js", "cjs", "mjs", "ts", "json", "md", "txt", "css", "html", "map", "yml", "yaml", "ts", "jsx", "tsx", "png",
    "jpg", "gif", "svg", "woff", "woff2", "ttf",
];

/// Binary checks for one file.
pub(crate) fn check_binary(path: &str, file: &PackageFile, findings: &mut Vec<Finding>) {
    let Some(format) = binary_format(&file.bytes) else { return };
    let extension = path.rsplit('/').next().unwrap_or(path).rsplit_once('.').map(|(_, extension)| extension);
    let (rule, severity, message) = match extension {
        Some("node") => (
            Rule::NativeAddon,
            Severity::Low,
            format!(
                "Prebuilt Node.js native add-on ({format}, {} bytes): compiled code that cannot be reviewed as source.",
                file.size
            ),
        ),
        Some(extension) if TEXT_EXTENSIONS.contains(&extension) => (
            Rule::BinaryDisguised,
            Severity::High,
            format!(
                "A compiled {format} executable named `.{extension}`: binaries do not hide behind text extensions by accident."
            ),
        ),
        _ => (
            Rule::BinaryExecutable,
            Severity::Low,
            format!("Compiled {format} executable or library ({} bytes).", file.size),
        ),
    };
    findings.push(finding_at(rule, severity, message, path, None, None));
}

/// Whether a file is a shell, batch or PowerShell script.
pub(crate) fn is_shell_script(path: &str, bytes: &[u8]) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    [".sh", ".bash", ".bat", ".cmd", ".ps1", ".command"].iter().any(|extension| name.ends_with(extension))
        || bytes.starts_with(b"#!/bin/sh")
        || bytes.starts_with(b"#!/bin/bash")
        || bytes.starts_with(b"#!/usr/bin/env bash")
        || bytes.starts_with(b"#!/usr/bin/env sh")
}

/// Download-and-run and credential lines in a shell script. `install_script` names the
/// lifecycle script that runs it, when one does.
pub(crate) fn check_shell_script(path: &str, text: &str, install_script: Option<&str>, findings: &mut Vec<Finding>) {
    // Comments explain ("install curl to download the key"); only commands count.
    let is_comment = |line: &str| {
        let trimmed = line.trim_start();
        let lower = trimmed.get(..4).unwrap_or(trimmed).to_ascii_lowercase();
        trimmed.starts_with('#') || trimmed.starts_with("::") || lower == "rem " || lower == "rem"
    };
    let commands: String = text.lines().filter(|line| !is_comment(line)).collect::<Vec<_>>().join("\n");
    let text_with_comments = text;
    let text = commands.as_str();
    let whole = ShellCommandTraits::of(text);
    let has_ip = text
        .split(|character: char| !(character.is_ascii_digit() || character == '.'))
        .any(|word| super::text::parse_ipv4(word).is_some_and(super::text::is_public_ipv4));
    let line_has_ip = |line: &str| {
        line.split(|character: char| !(character.is_ascii_digit() || character == '.'))
            .any(|word| super::text::parse_ipv4(word).is_some_and(super::text::is_public_ipv4))
    };
    // The line to show: one that downloads and runs, else one that downloads from an IP
    // address, else one with a URL, else the first download.
    let mut download_line: Option<(usize, &str, u8)> = None;
    for (index, line) in text_with_comments.lines().enumerate() {
        if is_comment(line) {
            continue;
        }
        let traits = ShellCommandTraits::of(line);
        if let Some(attack) = traits.attack {
            findings.push(finding_at(
                attack.rule(),
                if install_script.is_some() { Severity::Critical } else { Severity::High },
                format!(
                    "Shell script {}: `{}`.{}",
                    attack.describe(),
                    quote(line.trim()),
                    install_script
                        .map(|script| format!(" It runs at install time (the `{script}` script)."))
                        .unwrap_or_default()
                ),
                path,
                Some(index as u32 + 1),
                Some(super::excerpt_window(line, 0)),
            ));
        }
        if traits.reads_cli_credentials {
            findings.push(finding_at(
                Rule::CredentialCli,
                Severity::High,
                format!("Shell script asks a CLI for its credentials: `{}`.", quote(line.trim())),
                path,
                Some(index as u32 + 1),
                Some(super::excerpt_window(line, 0)),
            ));
        }
        if !traits.downloads {
            continue;
        }
        let rank = if traits.downloads_and_runs() {
            3
        } else if line_has_ip(line) {
            2
        } else {
            u8::from(line.contains("://"))
        };
        if download_line.is_none_or(|(_, _, best)| rank > best) {
            download_line = Some((index, line, rank));
        }
    }
    let Some((index, line, _)) = download_line else { return };
    let downloads_and_runs = whole.downloads_and_runs() || whole.makes_executable || has_ip;
    if downloads_and_runs {
        let severity = if install_script.is_some() || has_ip { Severity::High } else { Severity::Medium };
        let context =
            install_script.map(|script| format!(" It runs at install time (`{script}`).")).unwrap_or_default();
        findings.push(finding_at(
            Rule::ShellScriptDownload,
            severity,
            format!(
                "Shell script downloads{} and runs code: `{}`.{context}",
                if has_ip { " from a hard-coded IP address" } else { "" },
                quote(line.trim())
            ),
            path,
            Some(index as u32 + 1),
            Some(super::excerpt_window(line, 0)),
        ));
    }
}

/// binding.gyp: node-gyp runs at install, and `<!(…)` expansions run commands while
/// the build is configured.
pub(crate) fn check_binding_gyp(
    text: &str,
    gypfile_disabled: bool,
    has_install_script: bool,
    findings: &mut Vec<Finding>,
) {
    if !gypfile_disabled && !has_install_script {
        findings.push(finding_at(
            Rule::NativeBuild,
            Severity::Low,
            "binding.gyp makes npm run `node-gyp rebuild` at install time, compiling native code.".to_owned(),
            "binding.gyp",
            None,
            None,
        ));
    }
    for (index, line) in text.lines().enumerate() {
        if !line.contains("<!") {
            continue;
        }
        let traits = ShellCommandTraits::of(line);
        if traits.downloads || traits.pipes_to_shell || traits.encoded_powershell {
            findings.push(finding_at(
                Rule::BindingGypCommand,
                Severity::High,
                format!(
                    "binding.gyp runs a download or shell command while configuring the build: `{}`.",
                    quote(line.trim())
                ),
                "binding.gyp",
                Some(index as u32 + 1),
                Some(super::excerpt_window(line, 0)),
            ));
        }
    }
}
