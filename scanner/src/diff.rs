//! What changed since the previous version, reported as findings of its own: new
//! install scripts, new dependencies, and new hosts, recipients, dynamic code and child
//! processes, down to the line. A line whose text did not exist before is new even when
//! the same host or call existed elsewhere in the old version: that is how a one-line
//! change inside otherwise unchanged code is caught.

use std::collections::{BTreeMap, HashSet};

use crate::analysis::PackageAnalysis;
use crate::manifest::{DEPENDENCY_FIELDS, INSTALL_LIFECYCLE_SCRIPTS};
use crate::report::DiffSummary;
use crate::rules::{IndicatorKind, Rule, files, finding_at, quote};
use crate::{Finding, PackageFiles, Severity};

/// More findings of one rule than this are summarised in one extra finding.
const MAX_FINDINGS_PER_RULE: usize = 10;

pub(crate) fn diff_packages(
    current: &PackageFiles,
    current_analysis: &PackageAnalysis,
    previous: &PackageFiles,
    previous_analysis: &PackageAnalysis,
) -> (DiffSummary, Vec<Finding>) {
    let mut summary = DiffSummary {
        previous_version: previous_analysis
            .manifest
            .as_ref()
            .map(|manifest| manifest.version.clone())
            .unwrap_or_default(),
        ..DiffSummary::default()
    };
    for (path, file) in current.iter() {
        match previous.get(path) {
            None => summary.files_added.push(path.to_owned()),
            Some(old) if old.sha256 != file.sha256 => summary.files_changed.push(path.to_owned()),
            Some(_) => {}
        }
    }
    summary.files_removed = previous.paths().filter(|path| !current.contains(path)).map(str::to_owned).collect();

    let mut findings = Vec::new();
    findings.push(Finding {
        rule: Rule::DiffFiles.id().to_owned(),
        severity: Severity::Info,
        message: format!(
            "Since {}: {} files added{}, {} removed{}, {} changed{}.",
            if summary.previous_version.is_empty() {
                "the previous version".to_owned()
            } else {
                summary.previous_version.clone()
            },
            summary.files_added.len(),
            list_some(&summary.files_added),
            summary.files_removed.len(),
            list_some(&summary.files_removed),
            summary.files_changed.len(),
            list_some(&summary.files_changed),
        ),
        location: None,
        excerpt: None,
    });

    // A compiled binary appearing in a package that shipped none cannot be reviewed
    // against the source; one replacing another is the usual platform-binary update.
    let previous_had_binaries = previous.iter().any(|(_, file)| files::binary_format(&file.bytes).is_some());
    let mut new_binary_findings = Vec::new();
    for path in &summary.files_added {
        if let Some(format) = current.get(path).and_then(|file| files::binary_format(&file.bytes)) {
            new_binary_findings.push(finding_at(
                Rule::DiffNewBinary,
                if previous_had_binaries { Severity::Low } else { Severity::Medium },
                format!(
                    "New compiled {format} file{}.",
                    if previous_had_binaries { "" } else { "; the previous version shipped no binaries" }
                ),
                path,
                None,
                None,
            ));
        }
    }
    push_capped(&mut findings, new_binary_findings);

    let empty = BTreeMap::new();
    let current_scripts = current_analysis.manifest.as_ref().map_or(&empty, |manifest| &manifest.scripts);
    let previous_scripts = previous_analysis.manifest.as_ref().map_or(&empty, |manifest| &manifest.scripts);
    for script_name in INSTALL_LIFECYCLE_SCRIPTS {
        let Some(command) = current_scripts.get(script_name) else { continue };
        let (severity, message) = match previous_scripts.get(script_name) {
            None => (
                // A first install script is how Shai-Hulud and most account takeovers
                // turn a package into a dropper.
                Severity::High,
                format!("New `{script_name}` script (the previous version had none): `{}`.", quote(command)),
            ),
            Some(old) if old != command => (
                Severity::Medium,
                format!("The `{script_name}` script changed from `{}` to `{}`.", quote(old), quote(command)),
            ),
            Some(_) => continue,
        };
        findings.push(finding_at(
            Rule::DiffNewInstallScript,
            severity,
            message,
            "package.json",
            None,
            Some(format!("\"{script_name}\": \"{}\"", quote(command))),
        ));
    }

    let empty_dependencies = BTreeMap::new();
    let dependencies_of = |analysis: &PackageAnalysis| -> BTreeMap<(String, String), String> {
        let mut all = BTreeMap::new();
        let dependencies = analysis.manifest.as_ref().map_or(&empty_dependencies, |manifest| &manifest.dependencies);
        for field in DEPENDENCY_FIELDS {
            for (name, spec) in dependencies.get(field).into_iter().flatten() {
                all.insert((field.to_owned(), name.clone()), spec.clone());
            }
        }
        all
    };
    let current_dependencies = dependencies_of(current_analysis);
    let previous_dependencies = dependencies_of(previous_analysis);
    let mut new_dependency_findings = Vec::new();
    for ((field, name), spec) in &current_dependencies {
        match previous_dependencies.get(&(field.clone(), name.clone())) {
            None => {
                summary.dependencies_added.push(format!("{name}@{spec}"));
                if field != "devDependencies" {
                    new_dependency_findings.push(finding_at(
                        Rule::DiffNewDependency,
                        Severity::Low,
                        format!("New entry in `{field}`: `{name}@{}`.", quote(spec)),
                        "package.json",
                        None,
                        Some(format!("\"{name}\": \"{}\"", quote(spec))),
                    ));
                }
            }
            Some(old) if old != spec => summary.dependencies_changed.push(format!("{name}: {old} -> {spec}")),
            Some(_) => {}
        }
    }
    for ((field, name), spec) in &previous_dependencies {
        if !current_dependencies.contains_key(&(field.clone(), name.clone())) {
            summary.dependencies_removed.push(format!("{name}@{spec}"));
        }
    }
    push_capped(&mut findings, new_dependency_findings);

    // Indicators: what values and which lines existed before, anywhere in the package.
    // Lines are compared with each version's own version number blanked out: bundlers
    // inline it (`--service=0.25.0`), and a version bump is not a new child process.
    let version_of = |analysis: &PackageAnalysis| {
        analysis.manifest.as_ref().map(|manifest| manifest.version.clone()).unwrap_or_default()
    };
    let (current_version, previous_version) = (version_of(current_analysis), version_of(previous_analysis));
    let normalise_line = |excerpt: &str, version: &str| {
        if version.len() >= 3 { excerpt.replace(version, "<version>") } else { excerpt.to_owned() }
    };
    let mut previous_values = HashSet::new();
    let mut previous_lines = HashSet::new();
    for indicators in previous_analysis.indicators.values() {
        for indicator in indicators {
            previous_values.insert((indicator.kind, indicator.value.clone()));
            previous_lines.insert((
                indicator.kind,
                indicator.value.clone(),
                normalise_line(&indicator.excerpt, &previous_version),
            ));
        }
    }
    let mut by_rule: BTreeMap<Rule, Vec<Finding>> = BTreeMap::new();
    for (path, indicators) in &current_analysis.indicators {
        for indicator in indicators {
            let key = (indicator.kind, indicator.value.clone());
            let new_value = !previous_values.contains(&key);
            let new_line = !previous_lines.contains(&(
                indicator.kind,
                indicator.value.clone(),
                normalise_line(&indicator.excerpt, &current_version),
            ));
            let value = &indicator.value;
            let (rule, severity, message) = match indicator.kind {
                IndicatorKind::Host if new_value => {
                    (Rule::DiffNewHost, Severity::Low, format!("New hard-coded host `{value}`."))
                }
                IndicatorKind::Ip if new_value => {
                    (Rule::DiffNewIp, Severity::Medium, format!("New hard-coded IP address `{value}`."))
                }
                IndicatorKind::Email if new_value => {
                    (Rule::DiffNewEmail, Severity::Low, format!("New email address `{value}` in code."))
                }
                IndicatorKind::MailRecipient if new_line => (
                    Rule::DiffNewMailRecipient,
                    Severity::High,
                    format!(
                        "New hard-coded recipient `{value}` in mail-sending code: the previous version did not send mail to this address."
                    ),
                ),
                IndicatorKind::DynamicCode if new_line => (
                    Rule::DiffNewDynamicCode,
                    Severity::Medium,
                    format!("New dynamic code: `{value}` on a line the previous version did not have."),
                ),
                IndicatorKind::ChildProcess if new_line => (
                    Rule::DiffNewChildProcess,
                    Severity::Medium,
                    format!("New child process: `{value}` on a line the previous version did not have."),
                ),
                IndicatorKind::CredentialAccess if new_value => (
                    Rule::DiffNewCredentialAccess,
                    Severity::Medium,
                    format!("New access to {value}: the previous version did not touch it."),
                ),
                _ => continue,
            };
            by_rule.entry(rule).or_default().push(finding_at(
                rule,
                severity,
                message,
                path,
                Some(indicator.line),
                Some(indicator.excerpt.clone()),
            ));
        }
    }
    for (_, rule_findings) in by_rule {
        push_capped(&mut findings, rule_findings);
    }
    (summary, findings)
}

/// ` (a, b, c and 4 more)`, or nothing for an empty list.
fn list_some(paths: &[String]) -> String {
    const SHOWN: usize = 5;
    if paths.is_empty() {
        return String::new();
    }
    let shown = paths.iter().take(SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
    if paths.len() > SHOWN { format!(" ({shown} and {} more)", paths.len() - SHOWN) } else { format!(" ({shown})") }
}

/// Keeps the first [`MAX_FINDINGS_PER_RULE`] and summarises the rest in one finding.
fn push_capped(findings: &mut Vec<Finding>, mut rule_findings: Vec<Finding>) {
    if rule_findings.len() > MAX_FINDINGS_PER_RULE {
        let rest = rule_findings.split_off(MAX_FINDINGS_PER_RULE);
        let severity = rest.iter().map(|finding| finding.severity).max().unwrap_or(Severity::Info);
        let rule = rest[0].rule.clone();
        findings.push(Finding {
            rule,
            severity,
            message: format!("And {} more like the above.", rest.len()),
            location: None,
            excerpt: None,
        });
    }
    findings.extend(rule_findings);
}
