//! package.json checks: install scripts and what they run, non-registry dependencies,
//! `bin` names that shadow system commands, and typosquatted names.
//!
//! The install-script check also decides which files run at install time, so that the
//! JavaScript checks can rate those files in that light.

use std::collections::BTreeMap;

use super::text::{ShellCommandTraits, find_urls};
use super::{Rule, finding_at, quote};
use crate::{Finding, PackageFiles, PackageManifest, Severity};

/// What the install scripts run, for the other checks.
#[derive(Debug, Default)]
pub(crate) struct InstallTargets {
    /// Package files run at install time, with the lifecycle script that runs them.
    pub(crate) files: BTreeMap<String, &'static str>,
    /// `node -e` bodies, with the lifecycle script they come from.
    pub(crate) inline_scripts: Vec<(&'static str, String)>,
}

/// Tools whose install-time use is routine: native builds, git hooks, banners.
const ROUTINE_INSTALL_COMMANDS: &[&str] = &[
    "node-gyp",
    "node-gyp-build",
    "node-gyp-build-optional-packages",
    "prebuild-install",
    "node-pre-gyp",
    "cmake-js",
    "husky",
    "patch-package",
    "opencollective",
    "opencollective-postinstall",
    "is-ci",
    "echo",
    "exit",
    "true",
    "npm-run-all",
    "tsc",
];

/// System commands a `bin` entry should not be named after.
const SYSTEM_COMMANDS: &[&str] = &[
    "node", "npm", "npx", "yarn", "pnpm", "corepack", "git", "sh", "bash", "zsh", "ls", "cp", "mv", "rm", "cat",
    "curl", "wget", "ssh", "scp", "sudo", "su", "python", "python3", "pip", "make", "gcc", "cc", "docker", "kubectl",
    "env", "chmod", "chown", "tar", "gzip", "openssl", "gpg", "sed", "awk", "grep", "find",
];

/// Runs the package.json checks.
pub(crate) fn check_manifest(
    manifest: &PackageManifest,
    files: &PackageFiles,
    findings: &mut Vec<Finding>,
) -> InstallTargets {
    let mut targets = InstallTargets::default();
    for (script_name, command) in manifest.install_scripts() {
        check_install_script(script_name, command, manifest, files, findings, &mut targets);
    }
    if let Some(command) = manifest.scripts.get("prepare") {
        findings.push(finding_at(
            Rule::PrepareScript,
            Severity::Info,
            format!(
                "`prepare` runs `{}` (only for git dependencies and local installs, not registry installs).",
                quote(command)
            ),
            "package.json",
            None,
            Some(format!("\"prepare\": \"{}\"", quote(command))),
        ));
    }
    check_dependencies(manifest, findings);
    check_bin(manifest, findings);
    if let Some(squat) = super::typosquat::typosquat_target(&manifest.name) {
        let has_install_script = manifest.install_scripts().next().is_some();
        findings.push(finding_at(
            Rule::Typosquat,
            if has_install_script { Severity::High } else { Severity::Medium },
            format!(
                "The name `{}` is {} the popular package `{}`{}.",
                manifest.name,
                squat.shape.describe(),
                squat.target,
                if has_install_script { " and it has an install script" } else { "" }
            ),
            "package.json",
            None,
            None,
        ));
    }
    targets
}

fn check_install_script(
    script_name: &'static str,
    command: &str,
    manifest: &PackageManifest,
    files: &PackageFiles,
    findings: &mut Vec<Finding>,
    targets: &mut InstallTargets,
) {
    let excerpt = Some(format!("\"{script_name}\": \"{}\"", quote(command)));
    let traits = ShellCommandTraits::of(command);
    if let Some(attack) = traits.attack {
        findings.push(finding_at(
            attack.rule(),
            Severity::Critical,
            format!("The `{script_name}` script {} at install time: `{}`.", attack.describe(), quote(command)),
            "package.json",
            None,
            excerpt.clone(),
        ));
    }
    let urls = find_urls(command);
    if traits.downloads_and_runs() || traits.downloads || !urls.is_empty() {
        let severity = if traits.downloads_and_runs() { Severity::Critical } else { Severity::High };
        findings.push(finding_at(
            Rule::InstallScriptDownload,
            severity,
            format!(
                "The `{script_name}` script {} at install time: `{}`.",
                if traits.downloads_and_runs() { "downloads and runs code" } else { "fetches from the network" },
                quote(command)
            ),
            "package.json",
            None,
            excerpt,
        ));
        return;
    }
    let mut routine = true;
    let mut missing_files = Vec::new();
    let mut described = Vec::new();
    for segment in split_shell_command(command) {
        let words = shell_words(&segment);
        let Some(program) = words.first() else { continue };
        let program = program.strip_prefix("npx").map_or(program.as_str(), |_| words.get(1).map_or("", String::as_str));
        let program = program.rsplit('/').next().unwrap_or(program);
        match program {
            "node" | "node.exe" | "bun" => {
                let mut arguments = words.iter().skip(1);
                let mut script_file = None;
                while let Some(argument) = arguments.next() {
                    match argument.as_str() {
                        "-e" | "--eval" | "-p" | "--print" => {
                            let body: Vec<&str> = arguments.by_ref().map(String::as_str).collect();
                            targets.inline_scripts.push((script_name, body.join(" ")));
                            described.push("inline JavaScript (`node -e`)".to_owned());
                            break;
                        }
                        "-r" | "--require" => {
                            arguments.next();
                        }
                        flag if flag.starts_with('-') => {}
                        file => {
                            script_file = Some(file.to_owned());
                            break;
                        }
                    }
                }
                if let Some(script_file) = script_file {
                    match resolve_package_file(files, &script_file) {
                        Some(resolved) => {
                            described.push(format!("the bundled file `{resolved}`"));
                            targets.files.insert(resolved, script_name);
                        }
                        None => missing_files.push(script_file),
                    }
                }
            }
            "sh" | "bash" => {
                if let Some(script_file) = words.get(1) {
                    if let Some(resolved) = resolve_package_file(files, script_file) {
                        described.push(format!("the shell script `{resolved}`"));
                        targets.files.insert(resolved, script_name);
                    } else {
                        routine = false;
                        described.push(format!("`{}`", quote(&segment)));
                    }
                }
            }
            "npm" | "yarn" | "pnpm" if words.get(1).is_some_and(|word| word == "run" || word == "run-script") => {
                // `npm run build` at install time: the named script runs too.
                if let Some(inner) = words.get(2).and_then(|name| manifest.scripts.get(name.as_str()))
                    && inner != command
                {
                    let inner_traits = ShellCommandTraits::of(inner);
                    if inner_traits.downloads {
                        routine = false;
                    }
                    described.push(format!("`npm run {}` (`{}`)", words[2], quote(inner)));
                }
            }
            program if ROUTINE_INSTALL_COMMANDS.contains(&program) => {
                described.push(format!("`{program}`"));
            }
            _ => {
                routine = false;
                described.push(format!("`{}`", quote(&segment)));
            }
        }
    }
    let (severity, message) = if !missing_files.is_empty() {
        (
            Severity::Medium,
            format!(
                "The `{script_name}` script runs `{}`, which is not in the package: what runs is decided at install time.",
                missing_files.join("`, `")
            ),
        )
    } else if routine {
        (Severity::Low, format!("The `{script_name}` script runs {} at install time.", described.join(", ")))
    } else {
        (Severity::Medium, format!("The `{script_name}` script runs {} at install time.", described.join(", ")))
    };
    findings.push(finding_at(Rule::InstallScript, severity, message, "package.json", None, excerpt));
}

/// Package files a shell command runs: `bash x.sh`, `sh ./x`, `node x.js`, `cmd /c x.bat`,
/// or a script path run directly.
pub(crate) fn files_started_by(command: &str, files: &PackageFiles) -> Vec<String> {
    let mut started = Vec::new();
    for segment in split_shell_command(command) {
        for word in shell_words(&segment) {
            let looks_like_script = [".sh", ".bash", ".bat", ".cmd", ".ps1", ".js", ".cjs", ".mjs"]
                .iter()
                .any(|extension| word.ends_with(extension));
            if looks_like_script && let Some(resolved) = resolve_package_file(files, &word) {
                started.push(resolved);
            }
        }
    }
    started
}

/// `a && b || c; d | e` → its simple commands.
fn split_shell_command(command: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut quote_character: Option<char> = None;
    for character in command.chars() {
        match (quote_character, character) {
            (Some(open), _) if character == open => {
                quote_character = None;
                current.push(character);
            }
            (Some(_), _) => current.push(character),
            (None, '"' | '\'') => {
                quote_character = Some(character);
                current.push(character);
            }
            // Subshell parentheses group commands; they separate them just the same.
            (None, '&' | '|' | ';' | '(' | ')') => {
                if !current.trim().is_empty() {
                    segments.push(current.trim().to_owned());
                }
                current.clear();
            }
            (None, _) => current.push(character),
        }
    }
    if !current.trim().is_empty() {
        segments.push(current.trim().to_owned());
    }
    segments
}

/// Splits one simple command into words, removing quotes.
fn shell_words(segment: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quote_character: Option<char> = None;
    for character in segment.chars() {
        match (quote_character, character) {
            (Some(open), _) if character == open => quote_character = None,
            (Some(_), _) => current.push(character),
            (None, '"' | '\'') => quote_character = Some(character),
            (None, character) if character.is_whitespace() => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            (None, _) => current.push(character),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// A script path as node resolves it: as is, `.js`, `.cjs`, `.mjs`, `/index.js`.
fn resolve_package_file(files: &PackageFiles, script_path: &str) -> Option<String> {
    let trimmed = script_path.trim_start_matches("./").trim_end_matches('/');
    let candidates = [
        trimmed.to_owned(),
        format!("{trimmed}.js"),
        format!("{trimmed}.cjs"),
        format!("{trimmed}.mjs"),
        format!("{trimmed}/index.js"),
    ];
    candidates.into_iter().find(|candidate| files.contains(candidate))
}

fn check_dependencies(manifest: &PackageManifest, findings: &mut Vec<Finding>) {
    for field in ["dependencies", "optionalDependencies"] {
        let Some(dependencies) = manifest.dependencies.get(field) else { continue };
        for (name, spec) in dependencies {
            let spec_lower = spec.to_ascii_lowercase();
            let (severity, kind) = if spec_lower.starts_with("http://") || spec_lower.starts_with("https://") {
                // A URL dependency is fetched at install time from wherever it points,
                // and can change without a new version (PhantomRaven, 2025).
                (Severity::High, "a URL")
            } else if spec_lower.starts_with("git")
                || spec_lower.starts_with("github:")
                || spec_lower.starts_with("gitlab:")
                || spec_lower.starts_with("bitbucket:")
                || (!spec.starts_with("npm:") && !spec.starts_with('@') && spec.contains('/') && !spec.contains(':'))
            {
                (Severity::Medium, "a git repository")
            } else if spec_lower.starts_with("file:") || spec_lower.starts_with("link:") {
                (Severity::Low, "the file system")
            } else {
                continue;
            };
            findings.push(finding_at(
                Rule::DependencyNonRegistry,
                severity,
                format!("`{field}` takes `{name}` from {kind} (`{}`), not from the registry: it bypasses registry checks and can change under the same spec.", quote(spec)),
                "package.json",
                None,
                Some(format!("\"{name}\": \"{}\"", quote(spec))),
            ));
        }
    }
}

fn check_bin(manifest: &PackageManifest, findings: &mut Vec<Finding>) {
    let package_base_name = manifest.name.rsplit('/').next().unwrap_or(&manifest.name);
    // The package managers legitimately install each other's commands.
    if matches!(manifest.name.as_str(), "npm" | "yarn" | "pnpm" | "corepack" | "node") {
        return;
    }
    for (command, path) in &manifest.bin {
        if SYSTEM_COMMANDS.contains(&command.as_str()) && command != package_base_name {
            findings.push(finding_at(
                Rule::BinShadowsSystemCommand,
                Severity::Medium,
                format!("The `bin` entry `{command}` (→ `{}`) shadows the system command of the same name for scripts run by npm.", quote(path)),
                "package.json",
                None,
                Some(format!("\"{command}\": \"{}\"", quote(path))),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_commands_split_outside_quotes() {
        assert_eq!(
            split_shell_command("node-gyp rebuild || echo 'a && b'; node x.js"),
            vec!["node-gyp rebuild", "echo 'a && b'", "node x.js"]
        );
        assert_eq!(shell_words("node -e \"require('./x')\""), vec!["node", "-e", "require('./x')"]);
        assert_eq!(split_shell_command("(node a && b) || (c)"), vec!["node a", "b", "c"]);
    }
}
