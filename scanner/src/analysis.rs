//! Runs every check over one package and gathers findings, indicators (for the diff)
//! and the summary. The order matters only in one place: package.json first, because
//! it decides which files run at install time.

use std::collections::{BTreeMap, BTreeSet};

use oxc_allocator::Allocator;

use crate::report::ScanSummary;
use crate::risk::{self, RiskSignals, Signal};
use crate::rules::javascript::{FileContext, analyse_source, source_type_for};
use crate::rules::manifest::InstallTargets;
use crate::rules::{Indicator, Rule, files, finding_at, limits, manifest, typosquat};
use crate::{Finding, PackageFiles, PackageManifest, ScanOptions, Severity};

/// Everything learned about one package version.
#[derive(Debug, Default)]
pub(crate) struct PackageAnalysis {
    pub(crate) manifest: Option<PackageManifest>,
    pub(crate) findings: Vec<Finding>,
    /// By file path.
    pub(crate) indicators: BTreeMap<String, Vec<Indicator>>,
    pub(crate) summary: ScanSummary,
}

/// Directories where shipping bundled or minified code is the norm.
fn is_build_output_path(path: &str) -> bool {
    // Directories only: a root-level `index.min.js` among plain files is exactly how
    // flatmap-stream shipped its payload.
    path.split('/').any(|component| {
        matches!(
            component,
            "dist" | "build" | "umd" | "bundles" | "lib" | "cjs" | "esm" | "es" | "browser" | "vendor" | "out"
        )
    })
}

pub(crate) fn analyse_package(package: &PackageFiles, options: &ScanOptions) -> PackageAnalysis {
    // The parser and the AST walks recurse once per nesting level; files deeper than
    // `MAX_NESTING_DEPTH` are not parsed, and this stack has room for those that are.
    stacker::grow(limits::ANALYSIS_STACK_BYTES, || analyse_package_on_this_stack(package, options))
}

fn analyse_package_on_this_stack(package: &PackageFiles, options: &ScanOptions) -> PackageAnalysis {
    let mut analysis = PackageAnalysis { findings: package.reader_findings.clone(), ..PackageAnalysis::default() };
    let mut summary =
        ScanSummary { files: package.len() as u64, bytes: package.total_bytes(), ..ScanSummary::default() };
    if let Some(first_cut) = &package.retention_exhausted_at {
        analysis.findings.push(finding_at(
            Rule::FileNotAnalysed,
            Severity::High,
            format!(
                "The package's files add up to more than the {} bytes the scanner keeps in memory: from this file on, files were checked from their first bytes at most, or not at all.",
                options.max_retained_bytes
            ),
            first_cut,
            None,
            None,
        ));
    }

    let mut targets = InstallTargets::default();
    match package.get("package.json") {
        None => analysis.findings.push(finding_at(
            Rule::ManifestMissing,
            Severity::Medium,
            "The package has no package.json at its root.".to_owned(),
            "package.json",
            None,
            None,
        )),
        Some(file) => match PackageManifest::parse(&file.bytes) {
            Ok(parsed) => {
                targets = manifest::check_manifest(&parsed, package, &mut analysis.findings);
                summary.install_scripts =
                    parsed.install_scripts().map(|(name, command)| (name.to_owned(), command.to_owned())).collect();
                analysis.manifest = Some(parsed);
            }
            Err(error) => analysis.findings.push(finding_at(
                Rule::ManifestInvalid,
                Severity::High,
                format!("{error}. npm would refuse it, so the tarball is not what it claims to be."),
                "package.json",
                None,
                None,
            )),
        },
    }
    let own_hosts: Vec<String> = analysis.manifest.as_ref().map(|parsed| parsed.own_hosts.clone()).unwrap_or_default();
    let has_install_script = !summary.install_scripts.is_empty();

    let mut signals = RiskSignals::default();
    let mut allocator = Allocator::default();
    let mut hosts = BTreeSet::new();
    let mut plain_code_files = 0;
    let mut minified_files = Vec::new();
    let mut shell_scripts = Vec::new();
    for (path, file) in package.iter() {
        let install_script = targets.files.get(path).copied();
        if let Some(source_type) = source_type_for(path) {
            if file.size > options.max_parsed_file_bytes {
                analysis.findings.push(finding_at(
                    Rule::FileNotAnalysed,
                    Severity::High,
                    format!(
                        "This code file is {} bytes, more than the {} bytes the scanner parses: nobody looked at it.",
                        file.size, options.max_parsed_file_bytes
                    ),
                    path,
                    None,
                    None,
                ));
                continue;
            }
            if !file.is_complete() {
                // Cut short by the package's retention budget, reported once below.
                continue;
            }
            if files::binary_format(&file.bytes).is_some() {
                files::check_binary(path, file, &mut analysis.findings);
                continue;
            }
            let nesting = limits::estimated_nesting_depth(&file.bytes, limits::MAX_NESTING_DEPTH);
            if nesting > limits::MAX_NESTING_DEPTH {
                analysis.findings.push(finding_at(
                    Rule::FileNotAnalysed,
                    Severity::High,
                    format!(
                        "This code file nests more than {} levels deep (brackets, template substitutions or operator chains), more than the scanner parses: nobody looked at it.",
                        limits::MAX_NESTING_DEPTH
                    ),
                    path,
                    None,
                    None,
                ));
                continue;
            }
            let source_text = String::from_utf8_lossy(&file.bytes);
            let context = FileContext { install_script, own_hosts: &own_hosts, indicators: &options.indicators };
            let file_analysis = analyse_source(&mut allocator, path, &source_text, source_type, &context);
            summary.javascript_files += 1;
            summary.javascript_bytes += file.bytes.len() as u64;
            summary.parse_errors += u64::from(file_analysis.parse_error);
            if file_analysis.minified {
                if !is_build_output_path(path) {
                    minified_files.push(path);
                }
            } else {
                plain_code_files += 1;
            }
            hosts.extend(file_analysis.hosts);
            for (signal, line, detail) in file_analysis.signals {
                signals.add(signal, path, line, detail);
            }
            for command in &file_analysis.commands {
                add_started_executables(command, path, package, &mut signals);
            }
            if let Some(script) = install_script {
                // `exec('bash preinstall.sh')` from an install-time file runs that script at
                // install time too (ua-parser-js 0.7.29).
                for command in &file_analysis.commands {
                    for started in manifest::files_started_by(command, package) {
                        targets.files.entry(started).or_insert(script);
                    }
                }
            }
            analysis.findings.extend(file_analysis.findings);
            if !file_analysis.indicators.is_empty() {
                analysis.indicators.insert(path.to_owned(), file_analysis.indicators);
            }
        } else if path == "binding.gyp" {
            files::check_binding_gyp(
                &String::from_utf8_lossy(&file.bytes),
                analysis.manifest.as_ref().is_some_and(|parsed| parsed.gypfile_disabled),
                has_install_script,
                &mut analysis.findings,
            );
        } else if files::binary_format(&file.bytes).is_some() {
            files::check_binary(path, file, &mut analysis.findings);
        } else if files::is_shell_script(path, &file.bytes) {
            if file.is_complete() {
                // After the code: an install-time file may start this script.
                shell_scripts.push(path);
            } else if file.size > options.max_parsed_file_bytes {
                analysis.findings.push(finding_at(
                    Rule::FileNotAnalysed,
                    Severity::High,
                    format!(
                        "This shell script is {} bytes, more than the {} bytes the scanner reads: nobody looked at it.",
                        file.size, options.max_parsed_file_bytes
                    ),
                    path,
                    None,
                    None,
                ));
            }
        }
    }

    for path in shell_scripts {
        let Some(file) = package.get(path) else { continue };
        let install_script = targets.files.get(path).copied();
        let text = String::from_utf8_lossy(&file.bytes);
        files::check_shell_script(path, &text, install_script, &mut analysis.findings);
        if let Some(script) = install_script {
            signals.add(Signal::InstallTimeCode, path, None, format!("the `{script}` script"));
            let traits = crate::rules::text::ShellCommandTraits::of(&text);
            if traits.downloads {
                signals.add(Signal::Network, path, None, "curl/wget");
            }
        }
    }

    // `node -e` bodies from install scripts are code too, run at install time.
    for (script_name, body) in &targets.inline_scripts {
        let path = "package.json";
        if limits::estimated_nesting_depth(body.as_bytes(), limits::MAX_NESTING_DEPTH) > limits::MAX_NESTING_DEPTH {
            analysis.findings.push(finding_at(
                Rule::FileNotAnalysed,
                Severity::High,
                format!(
                    "`scripts.{script_name}` (`node -e`) nests more than {} levels deep, more than the scanner parses: nobody looked at it.",
                    limits::MAX_NESTING_DEPTH
                ),
                path,
                None,
                None,
            ));
            continue;
        }
        let context =
            FileContext { install_script: Some(script_name), own_hosts: &own_hosts, indicators: &options.indicators };
        let file_analysis = analyse_source(&mut allocator, path, body, oxc_span::SourceType::cjs(), &context);
        analysis.findings.extend(
            file_analysis.findings.into_iter().filter(|finding| finding.rule != Rule::ParseError.id()).map(
                |mut finding| {
                    finding.message = format!("In `scripts.{script_name}` (`node -e`): {}", finding.message);
                    if let Some(location) = &mut finding.location {
                        location.line = None;
                    }
                    finding
                },
            ),
        );
        hosts.extend(file_analysis.hosts);
        analysis.indicators.entry(path.to_owned()).or_default().extend(file_analysis.indicators);
        for (signal, line, detail) in file_analysis.signals {
            signals.add(signal, path, line, detail);
        }
    }

    // A minified file among plain sources is how flatmap-stream hid its payload.
    if plain_code_files >= 3 && !minified_files.is_empty() && minified_files.len() <= 2 {
        for path in minified_files {
            analysis.findings.push(finding_at(
                Rule::MinifiedCode,
                Severity::Low,
                format!("Minified code outside any build directory, in a package with {plain_code_files} plain source files."),
                path,
                None,
                None,
            ));
        }
    }

    if let Some(parsed) = &analysis.manifest
        && let Some(advisories) = options.indicators.malicious_version(&parsed.name, &parsed.version)
    {
        let advisories: Vec<&str> = advisories.iter().map(String::as_str).collect();
        analysis.findings.push(finding_at(
            Rule::KnownMaliciousVersion,
            Severity::Critical,
            format!("`{}@{}` is listed as malicious by {}.", parsed.name, parsed.version, advisories.join(", ")),
            "package.json",
            None,
            None,
        ));
    }
    add_package_signals(package, &analysis, options, &mut signals);
    signals.code_files = summary.javascript_files as usize;
    if let Some(assessment) = risk::assess(&signals) {
        analysis.findings.push(risk::finding(&assessment));
    }

    summary.hosts = hosts.into_iter().take(100).collect();
    analysis.summary = summary;
    analysis
}

/// Packages this small are a script, not a library.
const TINY_PACKAGE_FILES: usize = 3;

/// The signals about the package as a whole: who it says it is, install hooks that run
/// commands rather than bundled code, shipped executables.
fn add_package_signals(
    package: &PackageFiles,
    analysis: &PackageAnalysis,
    options: &ScanOptions,
    signals: &mut RiskSignals,
) {
    let manifest_path = "package.json";
    if let Some(parsed) = &analysis.manifest {
        if !parsed.has_repository {
            signals.add(Signal::NoRepository, manifest_path, None, "");
        }
        let has_readme =
            package.iter().any(|(path, _)| !path.contains('/') && path.to_ascii_lowercase().starts_with("readme"));
        if parsed.description.trim().is_empty() && !has_readme {
            signals.add(Signal::NoDescription, manifest_path, None, "");
        }
        if is_probe_version(&parsed.version) {
            signals.add(Signal::ProbeVersion, manifest_path, None, parsed.version.clone());
        }
        if let Some(squat) = typosquat::typosquat_target(&parsed.name) {
            signals.add(Signal::ImitatedName, manifest_path, None, format!("`{}` for `{}`", parsed.name, squat.target));
        }
        for (_, command) in parsed.install_scripts() {
            add_started_executables(command, manifest_path, package, signals);
        }
    }
    // An install script that runs commands (not only bundled JavaScript or a routine
    // build tool) is install-time code too.
    for finding in &analysis.findings {
        if finding.rule == Rule::InstallScript.id() && finding.severity >= Severity::Medium {
            let excerpt = finding.excerpt.clone().unwrap_or_default();
            signals.add(Signal::InstallTimeCode, manifest_path, None, excerpt.clone());
            // The lifecycle script itself runs those commands.
            signals.add(Signal::ChildProcess, manifest_path, None, excerpt);
        }
    }
    if package.len() <= TINY_PACKAGE_FILES {
        signals.add(Signal::TinyPackage, manifest_path, None, format!("{} files", package.len()));
    }
    // A compiled executable shipped next to code that starts processes: the code can
    // run it whatever the command looks like (`spawn(path.join(__dirname, x))`).
    if signals.contains(Signal::ChildProcess)
        && !signals.contains(Signal::ShippedExecutable)
        && let Some((path, _)) =
            package.iter().find(|(path, file)| !path.ends_with(".node") && files::binary_format(&file.bytes).is_some())
    {
        signals.add(Signal::ShippedExecutable, path, None, "shipped next to code that starts processes");
    }
    signals.add_publication(&options.publication);
}

/// Adds [`Signal::ShippedExecutable`] when `command` starts a compiled executable in the package.
fn add_started_executables(command: &str, from: &str, package: &PackageFiles, signals: &mut RiskSignals) {
    for started in manifest::files_started_by(command, package) {
        if let Some(file) = package.get(&started)
            && files::binary_format(&file.bytes).is_some()
        {
            signals.add(
                Signal::ShippedExecutable,
                from,
                None,
                format!("`{}` runs `{started}`", crate::rules::quote(command)),
            );
        }
    }
}

/// A version above anything a real internal package uses (`99.0.0`, `1.999.0`,
/// `8.9998.2`, `200000.0.2`): what dependency-confusion probes publish so that a
/// resolver prefers them over the internal package. Calendar majors (`2024.1.0`) are not.
pub(crate) fn is_probe_version(version: &str) -> bool {
    let release = version.split(['-', '+']).next().unwrap_or(version);
    let mut components = release.split('.');
    let (Some(major), Some(minor), Some(patch)) = (components.next(), components.next(), components.next()) else {
        return false;
    };
    let Ok(major_number) = major.parse::<u64>() else { return false };
    let calendar_year = (1990..=2100).contains(&major_number);
    (major_number >= 90 && !calendar_year) || minor.starts_with("999") || patch.starts_with("999")
}

#[cfg(test)]
mod tests {
    use super::is_probe_version;

    #[test]
    fn probe_versions_are_recognised() {
        for version in ["99.0.0", "99.10.9", "1.999.0", "8.9998.2", "200000.0.2", "100.0.0-beta.1"] {
            assert!(is_probe_version(version), "{version}");
        }
        for version in ["1.0.0", "4.17.21", "2024.1.0", "0.0.1", "1.20261117.1", "12.0.0", "garbage"] {
            assert!(!is_probe_version(version), "{version}");
        }
    }
}
