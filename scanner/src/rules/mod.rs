//! The catalogue of rules and the helpers every check uses to build findings.
//!
//! Each check lives in its own module: `manifest` (package.json), `files` (binaries,
//! shell scripts, minified code), `javascript` (the AST walk) with `text` (what string
//! literals say), and `typosquat`. Severities are calibrated where the finding is made,
//! from context (install time, the package's own hosts, what else the file does), so
//! the rule id alone does not fix the severity.

pub(crate) mod files;
pub(crate) mod javascript;
pub(crate) mod limits;
pub(crate) mod manifest;
pub(crate) mod text;
pub(crate) mod typosquat;

use crate::{Finding, Location, Severity};

macro_rules! rules {
    ($($variant:ident => $id:literal: $description:literal,)*) => {
        /// Every rule the static checks can report, with a stable id.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule {
            $(#[doc = $description] $variant,)*
        }

        impl Rule {
            /// Every rule, in catalogue order.
            pub const ALL: &'static [Rule] = &[$(Rule::$variant,)*];

            /// The stable id used in findings, configuration and documentation.
            pub fn id(self) -> &'static str {
                match self { $(Rule::$variant => $id,)* }
            }

            /// One sentence on what the rule looks for.
            pub fn description(self) -> &'static str {
                match self { $(Rule::$variant => $description,)* }
            }
        }
    };
}

rules! {
    // The container.
    TarPathTraversal => "tar-path-traversal": "A tar entry with an absolute path or `..` that would write outside the package.",
    TarLinkEntry => "tar-link-entry": "A symbolic or hard link in the tarball.",
    TarDuplicateEntry => "tar-duplicate-entry": "The same path twice in the tarball; extraction keeps the last.",
    TarSpecialEntry => "tar-special-entry": "A device, FIFO or other non-file tar entry.",
    TarSuspiciousPath => "tar-suspicious-path": "A tar path tools may disagree about: outside the root, backslashes, non-UTF-8, PAX/ustar mismatch.",
    TarTrailingData => "tar-trailing-data": "Data after the tar end-of-archive marker: inflated by every client, read as files by some.",
    // package.json.
    ManifestMissing => "manifest-missing": "The package has no package.json.",
    ManifestInvalid => "manifest-invalid": "package.json is not a JSON object.",
    InstallScript => "install-script": "A preinstall/install/postinstall script, rated by what it runs.",
    InstallScriptDownload => "install-script-download": "An install script that downloads from the network or pipes into a shell.",
    InstallTimeDownload => "install-time-download": "Code run at install time that downloads and runs or writes files.",
    PrepareScript => "prepare-script": "A prepare script (runs for git and local installs only).",
    NativeBuild => "native-build": "binding.gyp: npm runs node-gyp at install time.",
    BindingGypCommand => "binding-gyp-command": "binding.gyp runs a download or shell command while building.",
    DependencyNonRegistry => "dependency-non-registry": "A dependency fetched from a URL, git or the file system instead of the registry.",
    BinShadowsSystemCommand => "bin-shadows-system-command": "A `bin` entry named like a common system command.",
    Typosquat => "typosquat": "A package name one edit away from a popular package.",
    // Files.
    BinaryExecutable => "binary-executable": "A compiled executable or shared library in the package.",
    NativeAddon => "native-addon": "A prebuilt Node.js native add-on (.node).",
    BinaryDisguised => "binary-disguised": "A compiled executable whose name claims it is text or script.",
    MinifiedCode => "minified-code": "Minified or packed code in a package whose other code is plain source.",
    ShellScriptDownload => "shell-script-download": "A shell/batch/PowerShell script that downloads and runs or persists something.",
    FileNotAnalysed => "file-not-analysed": "A code file too large to parse; nobody looked at it.",
    ParseError => "parse-error": "A code file that does not parse; it was searched as text only.",
    AnalysisLimitReached => "analysis-limit-reached": "The analysis reached a cap on what it tracks per file or package; the rest was not tracked.",
    // JavaScript behaviour.
    ChildProcess => "child-process": "Starts a process with a command built at runtime.",
    ChildProcessDownloadExec => "child-process-download-exec": "Runs a shell command that downloads and executes, or runs a shell with a script.",
    CredentialCli => "credential-cli": "Asks a CLI for its credentials (`gh auth token`, `npm token`, cloud CLIs).",
    AiCliAbuse => "ai-cli-abuse": "Runs an AI coding CLI with its safety prompts turned off (the nx s1ngularity attack).",
    NetworkExfilService => "network-exfil-service": "A webhook, paste site, request catcher or file drop: where stolen data goes.",
    NetworkTunnel => "network-tunnel": "A tunnelling service host (ngrok, localtunnel, trycloudflare).",
    NetworkIpLiteral => "network-ip-literal": "A URL or socket to a hard-coded public IP address.",
    DnsExfiltration => "dns-exfiltration": "A DNS lookup of a name built from data under a fixed domain.",
    EnvEnumeration => "env-enumeration": "Serialises or enumerates all of `process.env`.",
    EnvExfiltration => "env-exfiltration": "Enumerates `process.env` in a file that also sends data to a hard-coded host.",
    CredentialFileAccess => "credential-file-access": "Names credential files: ~/.npmrc, ~/.ssh, cloud credentials, browser profiles, wallets, /etc/passwd.",
    CredentialExfiltration => "credential-exfiltration": "Reads credentials in a file that also sends data to a hard-coded host.",
    DynamicCode => "dynamic-code": "eval, new Function, vm or setTimeout with a string built at runtime.",
    DecodeThenExecute => "decode-then-execute": "Executes or requires what a decoder (base64, hex, char codes, decipher) produced.",
    RemoteCodeExecution => "remote-code-execution": "Evaluates code in a small file that also fetches from the network.",
    ObfuscatedCode => "obfuscated-code": "javascript-obfuscator output or dense escaped strings.",
    HighEntropyString => "high-entropy-string": "A very long string with the entropy of encoded or encrypted data.",
    UnicodeBidi => "unicode-bidi": "Bidirectional control characters that make code read differently than it runs (Trojan Source).",
    UnicodeHiddenCode => "unicode-hidden-code": "Invisible identifiers or runs of variation selectors hiding data in code.",
    MailHiddenRecipient => "mail-hidden-recipient": "A hard-coded Bcc address in mail-sending code (the postmark-mcp attack).",
    MailHardCodedRecipient => "mail-hard-coded-recipient": "A hard-coded To/Cc address in mail-sending code.",
    NetworkApiOverride => "network-api-override": "Replaces fetch, XMLHttpRequest or WebSocket.",
    WalletProviderTampering => "wallet-provider-tampering": "Replaces or wraps window.ethereum or another wallet provider.",
    CryptoClipper => "crypto-clipper": "Hooks network APIs in a file full of wallet addresses (the chalk/debug compromise).",
    RequireHook => "require-hook": "Hooks Module.prototype.require, Module._load or _compile.",
    WormWorkflowWrite => "worm-workflow-write": "Writes GitHub Actions workflows.",
    WormNpmPublish => "worm-npm-publish": "Publishes to npm with found tokens.",
    WormGithubRepo => "worm-github-repo": "Creates GitHub repositories through the API with found tokens.",
    SecretScanner => "secret-scanner": "Runs or downloads a secret scanner such as trufflehog.",
    ShellProfileWrite => "shell-profile-write": "Writes to shell start-up files such as ~/.bashrc.",
    KnownMalwareIndicator => "known-malware-indicator": "A domain, wallet or string a known-malware feed lists.",
    KnownMaliciousVersion => "known-malicious-version": "A version a known-malware feed lists as malicious.",
    ReverseShell => "reverse-shell": "A command that hands a shell to a remote host (`/dev/tcp`, `nc -e`).",
    DestructiveCommand => "destructive-command": "A command that deletes the user's or the system's files (`rm -rf ~`).",
    UserFilesWrite => "user-files-write": "Writes files into the user's Desktop or OneDrive folder (the node-ipc/peacenotwar protestware).",
    // The combination of weak signals (scanner/src/risk.rs).
    RiskCombination => "risk-combination": "Weak signals that together make an attack pattern: what the code does plus who published it.",
    // What changed since the previous version.
    DiffFiles => "diff-files": "Files added, removed and changed since the previous version.",
    DiffNewInstallScript => "diff-new-install-script": "An install script that the previous version did not have.",
    DiffNewDependency => "diff-new-dependency": "A dependency the previous version did not have.",
    DiffNewBinary => "diff-new-binary": "A compiled executable or native add-on the previous version did not ship.",
    DiffNewHost => "diff-new-host": "A hard-coded host or URL the previous version did not contain.",
    DiffNewIp => "diff-new-ip": "A hard-coded IP address the previous version did not contain.",
    DiffNewMailRecipient => "diff-new-mail-recipient": "A hard-coded recipient in mail-sending code, new in this version.",
    DiffNewEmail => "diff-new-email": "An email address in code, new in this version.",
    DiffNewDynamicCode => "diff-new-dynamic-code": "Dynamic code (eval, Function, vm) new in this version.",
    DiffNewChildProcess => "diff-new-child-process": "A child process new in this version.",
    DiffNewCredentialAccess => "diff-new-credential-access": "Credential or environment harvesting new in this version.",
}

impl std::fmt::Display for Rule {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.id())
    }
}

/// A finding about a place in the package.
pub(crate) fn finding_at(
    rule: Rule,
    severity: Severity,
    message: String,
    file: &str,
    line: Option<u32>,
    excerpt: Option<String>,
) -> Finding {
    Finding {
        rule: rule.id().to_owned(),
        severity,
        message,
        location: Some(Location { file: file.to_owned(), line, column: None }),
        excerpt,
    }
}

/// Maps byte offsets in a source text to 1-based lines and short excerpts.
pub(crate) struct LineIndex<'text> {
    text: &'text str,
    line_starts: Vec<u32>,
}

/// Longest excerpt: minified code puts a whole program on one line.
const MAX_EXCERPT_CHARS: usize = 160;

impl<'text> LineIndex<'text> {
    pub(crate) fn new(text: &'text str) -> LineIndex<'text> {
        let mut line_starts = vec![0];
        line_starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|offset| offset as u32 + 1));
        LineIndex { text, line_starts }
    }

    /// 1-based line of a byte offset.
    pub(crate) fn line(&self, offset: u32) -> u32 {
        match self.line_starts.binary_search(&offset) {
            Ok(index) => index as u32 + 1,
            Err(index) => index as u32,
        }
    }

    /// The trimmed line containing `offset`, cut to a window around it when long.
    pub(crate) fn excerpt(&self, offset: u32) -> String {
        let line = self.line(offset) as usize;
        let start = self.line_starts[line - 1] as usize;
        let end = self.line_starts.get(line).map_or(self.text.len(), |next| *next as usize - 1);
        let line_text = &self.text[start..end.max(start)];
        let offset_in_line = (offset as usize).saturating_sub(start);
        excerpt_window(line_text, offset_in_line)
    }
}

/// A window of at most [`MAX_EXCERPT_CHARS`] characters of `line` around byte `focus`.
pub(crate) fn excerpt_window(line: &str, focus: usize) -> String {
    let trimmed_end = line.trim_end();
    if trimmed_end.chars().count() <= MAX_EXCERPT_CHARS {
        return trimmed_end.trim_start().to_owned();
    }
    let mut start = focus.saturating_sub(MAX_EXCERPT_CHARS / 3).min(trimmed_end.len());
    while !trimmed_end.is_char_boundary(start) {
        start -= 1;
    }
    let window: String = trimmed_end[start..].chars().take(MAX_EXCERPT_CHARS).collect();
    let prefix = if start > 0 { "…" } else { "" };
    let suffix = if start + window.len() < trimmed_end.len() { "…" } else { "" };
    format!("{prefix}{}{suffix}", window.trim())
}

/// Shortens a value quoted in a message.
pub(crate) fn quote(value: &str) -> String {
    const LIMIT: usize = 100;
    if value.chars().count() <= LIMIT {
        value.to_owned()
    } else {
        let head: String = value.chars().take(LIMIT).collect();
        format!("{head}…")
    }
}

/// Something a version contains that matters when it is new: a host, an address, a
/// use of dynamic code. Compared against the previous version by [`crate::diff`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Indicator {
    pub(crate) kind: IndicatorKind,
    /// The host, address, callee or credential kind.
    pub(crate) value: String,
    pub(crate) line: u32,
    /// The line it is on, trimmed; a new excerpt means a new occurrence.
    pub(crate) excerpt: String,
}

/// What an [`Indicator`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum IndicatorKind {
    Host,
    Ip,
    Email,
    MailRecipient,
    DynamicCode,
    ChildProcess,
    CredentialAccess,
}
