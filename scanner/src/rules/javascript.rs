//! The JavaScript/TypeScript checks: parse with oxc, resolve scopes with oxc_semantic,
//! walk the AST once collecting *sites* (a network call, a child process, an `eval`
//! of decoded data…) and what string literals say, then rate the file as a whole.
//!
//! Scope resolution matters: `require`, `eval`, `process` and `fetch` only count when
//! they are the globals (or aliases of them, or of `require('child_process')` and
//! friends), never a local that happens to share the name. Rating the file as a whole
//! matters too: reading `~/.ssh` is ordinary in an SSH client and alarming in a file
//! that also posts to a hard-coded host.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use oxc_allocator::Allocator;
use oxc_ast::ast::{
    Argument, AssignmentTarget, BindingPattern, CallExpression, ComputedMemberExpression, Expression, ForInStatement,
    Function, ImportDeclaration, ImportDeclarationSpecifier, NewExpression, ObjectProperty, PropertyKey, StringLiteral,
    TemplateLiteral, VariableDeclarator,
};
use oxc_ast_visit::{Visit, walk};
use oxc_parser::{ParseOptions, Parser};
use oxc_semantic::{Scoping, SemanticBuilder, SymbolId};
use oxc_span::{GetSpan, SourceType};
use oxc_syntax::scope::ScopeFlags;

use super::limits::{
    Limit, LimitsReached, MAX_ALIAS_PATH_BYTES, MAX_FOLDED_STRING_BYTES, MAX_REFERENCED_URLS_PER_WALK,
    MAX_SITES_PER_KIND, MAX_STRINGS_PER_KIND, MAX_URLS_PER_FILE, MAX_URLS_PER_SYMBOL,
};
use super::text::{
    self, CredentialKind, HiddenCharacter, ServiceKind, ShellCommandTraits, classify_credential_path, classify_service,
    find_emails, find_urls, is_wallet_address,
};
use super::{Indicator, IndicatorKind, LineIndex, Rule, finding_at, quote};
use crate::risk::Signal;
use crate::{Finding, Severity};

/// What the rest of the package says about a file.
#[derive(Debug, Clone)]
pub(crate) struct FileContext<'a> {
    /// The lifecycle script (`postinstall`, …) that runs this file at install time.
    pub(crate) install_script: Option<&'a str>,
    /// Hosts of the package's homepage, repository and bugs URLs.
    pub(crate) own_hosts: &'a [String],
    /// What the known-malware feeds list.
    pub(crate) indicators: &'a crate::Indicators,
}

/// Everything the checks learned from one code file.
#[derive(Debug, Default)]
pub(crate) struct FileAnalysis {
    pub(crate) findings: Vec<Finding>,
    pub(crate) indicators: Vec<Indicator>,
    pub(crate) parse_error: bool,
    pub(crate) hosts: BTreeSet<String>,
    pub(crate) minified: bool,
    /// Literal child-process commands, to follow scripts run from install-time files.
    pub(crate) commands: Vec<String>,
    /// What the file can do, for the risk layer: the signal, the line and a short quote.
    pub(crate) signals: Vec<(Signal, Option<u32>, String)>,
}

/// How a file should be parsed, from its name. `None`: not parsed (declaration files,
/// which hold types only).
pub(crate) fn source_type_for(path: &str) -> Option<SourceType> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.ends_with(".d.ts") || name.ends_with(".d.mts") || name.ends_with(".d.cts") {
        return None;
    }
    let extension = name.rsplit_once('.')?.1;
    Some(match extension {
        "js" | "jsx" => SourceType::unambiguous().with_jsx(true),
        "cjs" => SourceType::cjs(),
        "mjs" => SourceType::mjs(),
        "ts" | "mts" | "cts" => SourceType::ts(),
        "tsx" => SourceType::tsx(),
        _ => return None,
    })
}

/// Analyses one source text. `allocator` is reset and reused across files.
pub(crate) fn analyse_source(
    allocator: &mut Allocator,
    path: &str,
    source_text: &str,
    source_type: SourceType,
    context: &FileContext<'_>,
) -> FileAnalysis {
    allocator.reset();
    let options = ParseOptions { allow_return_outside_function: true, ..ParseOptions::default() };
    let parsed = Parser::new(allocator, source_text, source_type).with_options(options).parse();
    let line_index = LineIndex::new(source_text);
    let mut collector = Collector::new(&line_index, source_text, context.indicators);
    // A file that does not parse (Flow, a new proposal, deliberate garbage) is still
    // searched: every string-looking span is inspected as text.
    let parse_error = parsed.panicked || !parsed.diagnostics.is_empty();
    if parsed.panicked {
        collector.inspect_string(source_text, 0);
    } else {
        let semantic = SemanticBuilder::new().build(&parsed.program);
        let scoping = semantic.semantic.into_scoping();
        collector.comments =
            parsed.program.comments.iter().map(|comment| (comment.span.start, comment.span.end)).collect();
        let mut visitor = Visitor { collector: &mut collector, scoping: &scoping, state: Default::default() };
        visitor.visit_program(&parsed.program);
    }
    collector.scan_raw_text();
    let mut analysis = collector.rate(path, context);
    analysis.parse_error = parse_error;
    if parse_error {
        analysis.findings.push(finding_at(
            Rule::ParseError,
            Severity::Info,
            "This file does not parse as JavaScript/TypeScript; it was searched as text only.".to_owned(),
            path,
            None,
            None,
        ));
    }
    analysis
}

/// Where `require('child_process')` and friends were bound, and what flows where.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SiteKind {
    NetworkCall,
    ChildProcess {
        command: Option<String>,
    },
    DynamicCode {
        decoded: bool,
    },
    DecodedRequire,
    DecodedMemberCall,
    DecodedProcessAccess,
    EnvBulk,
    SecretEnv(String),
    FsWrite,
    DnsExfiltration,
    NetworkOverride(String),
    WalletProviderOverride,
    RequireHook(String),
    MailCall,
    Recipient {
        key: String,
        email: String,
    },
    Decoder,
    /// Reads the host name, user, home directory or network interfaces.
    SystemInfo,
    /// Any DNS query.
    DnsQuery,
}

impl SiteKind {
    /// Which budget a site counts against, and whether the checks only ever use the
    /// first site of its kind (so dropping the others loses nothing).
    fn budget(&self) -> (usize, bool) {
        match self {
            SiteKind::NetworkCall => (0, true),
            SiteKind::FsWrite => (1, true),
            SiteKind::MailCall => (2, true),
            SiteKind::Decoder => (3, true),
            SiteKind::EnvBulk => (4, true),
            SiteKind::ChildProcess { .. } => (5, false),
            SiteKind::DynamicCode { decoded: false } => (6, false),
            SiteKind::DynamicCode { decoded: true } => (7, false),
            SiteKind::DecodedRequire => (8, false),
            SiteKind::DecodedMemberCall => (9, false),
            SiteKind::DecodedProcessAccess => (10, false),
            SiteKind::SecretEnv(_) => (11, false),
            SiteKind::DnsExfiltration => (12, false),
            SiteKind::NetworkOverride(_) => (13, false),
            SiteKind::WalletProviderOverride => (14, false),
            SiteKind::RequireHook(_) => (15, false),
            SiteKind::Recipient { .. } => (16, false),
            SiteKind::SystemInfo => (17, true),
            SiteKind::DnsQuery => (18, true),
        }
    }
}

/// Number of site budgets in [`SiteKind::budget`].
const SITE_BUDGETS: usize = 19;

#[derive(Debug, Clone)]
struct Site {
    kind: SiteKind,
    offset: u32,
    detail: String,
}

#[derive(Debug, Clone)]
struct UrlSite {
    url: String,
    host: String,
    offset: u32,
    // A bare dotted quad, not a URL: it may as well be an OID (`2.5.4.3`), so it only
    // counts when passed to a network call.
    bare: bool,
}

/// What string literals and calls revealed; no opinions yet.
struct Collector<'text> {
    line_index: &'text LineIndex<'text>,
    source_text: &'text str,
    indicators: &'text crate::Indicators,
    // Invariant: at most `MAX_SITES_PER_KIND` per budget (`site_counts`), one for the
    // kinds only ever used once.
    sites: Vec<Site>,
    site_counts: [usize; SITE_BUDGETS],
    // Invariant: at most `MAX_URLS_PER_FILE`.
    urls: Vec<UrlSite>,
    // Indices into `urls` of the URLs passed to a network call (directly, through a
    // constant, or as a `host` option): the hosts the file actually contacts.
    contacted: HashSet<usize>,
    public_ips: Vec<(String, u32)>,
    credential_paths: BTreeMap<CredentialKind, (String, u32)>,
    emails: Vec<(String, u32)>,
    wallet_addresses: HashSet<String>,
    markers: BTreeMap<Marker, u32>,
    command_strings: Vec<(String, u32)>,
    high_entropy: Option<(usize, u32)>,
    hidden_in_code: Vec<(HiddenCharacter, u32)>,
    hidden_in_strings: Vec<(HiddenCharacter, u32)>,
    // Byte ranges of comments and string literals, to tell where a hidden character sits.
    comments: Vec<(u32, u32)>,
    string_spans: Vec<(u32, u32)>,
    obfuscator_identifiers: usize,
    string_array_rotation: bool,
    hex_escapes: usize,
    minified: bool,
    // Length and start of the longest run of consecutive variation selectors.
    longest_selector_run: Option<(usize, u32)>,
    // The caps this file reached; reported as one finding.
    limits: LimitsReached,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Marker {
    WorkflowPath,
    GithubRepoApi,
    NpmWhoami,
    NpmPublish,
    // `npm publish` in the command of a child process, not only in some string.
    NpmPublishRun,
    SecretScanner,
    CliCredentials,
    AiCliUnsafe,
    ShellProfile,
    Shutdown,
    MailService,
    /// A path into the user's Desktop or OneDrive folder.
    UserDocuments,
    /// What a feed lists: the indicator and the advisory that names it.
    KnownIndicator(String),
}

impl<'text> Collector<'text> {
    fn new(
        line_index: &'text LineIndex<'text>,
        source_text: &'text str,
        indicators: &'text crate::Indicators,
    ) -> Collector<'text> {
        Collector {
            line_index,
            source_text,
            indicators,
            sites: Vec::new(),
            site_counts: [0; SITE_BUDGETS],
            urls: Vec::new(),
            contacted: HashSet::new(),
            public_ips: Vec::new(),
            credential_paths: BTreeMap::new(),
            emails: Vec::new(),
            wallet_addresses: HashSet::new(),
            markers: BTreeMap::new(),
            command_strings: Vec::new(),
            high_entropy: None,
            hidden_in_code: Vec::new(),
            hidden_in_strings: Vec::new(),
            comments: Vec::new(),
            string_spans: Vec::new(),
            obfuscator_identifiers: 0,
            string_array_rotation: false,
            hex_escapes: 0,
            minified: false,
            longest_selector_run: None,
            limits: LimitsReached::default(),
        }
    }

    fn site(&mut self, kind: SiteKind, offset: u32, detail: impl Into<String>) {
        let (budget, first_only) = kind.budget();
        let kept = &mut self.site_counts[budget];
        if first_only && *kept >= 1 {
            return;
        }
        if *kept >= MAX_SITES_PER_KIND {
            self.limits.reach(Limit::SitesPerKind);
            return;
        }
        *kept += 1;
        self.sites.push(Site { kind, offset, detail: detail.into() });
    }

    /// Keeps a URL unless the file already has `MAX_URLS_PER_FILE`; says whether it did.
    fn keep_url(&mut self, url: UrlSite) -> bool {
        if self.urls.len() >= MAX_URLS_PER_FILE {
            self.limits.reach(Limit::UrlsPerFile);
            return false;
        }
        self.urls.push(url);
        true
    }

    /// Whether another string of a per-file list (`length` long now) may be kept.
    fn room_for_string(&mut self, length: usize) -> bool {
        let room = length < MAX_STRINGS_PER_KIND;
        if !room {
            self.limits.reach(Limit::StringsPerKind);
        }
        room
    }

    fn mark(&mut self, marker: Marker, offset: u32) {
        self.markers.entry(marker).or_insert(offset);
    }

    /// Inspects the value of a string literal (or template quasi) starting at `offset`.
    fn inspect_string(&mut self, value: &str, offset: u32) {
        if value.len() < 4 {
            return;
        }
        if value.contains("://") {
            for found in find_urls(value) {
                let url_offset = offset + found.offset as u32;
                if self.urls.len() >= MAX_URLS_PER_FILE {
                    self.limits.reach(Limit::UrlsPerFile);
                    break;
                }
                if let Some(octets) = text::parse_ipv4(&found.host)
                    && text::is_public_ipv4(octets)
                {
                    self.public_ips.push((found.host.clone(), url_offset));
                }
                if found.host == "api.github.com" && found.url.contains("/user/repos") {
                    self.mark(Marker::GithubRepoApi, url_offset);
                }
                if matches!(
                    found.host.as_str(),
                    "api.postmarkapp.com" | "api.sendgrid.com" | "api.mailgun.net" | "api.resend.com"
                ) {
                    self.mark(Marker::MailService, url_offset);
                }
                self.keep_url(UrlSite { url: found.url, host: found.host, offset: url_offset, bare: false });
            }
        } else if let Some(octets) = text::parse_ipv4(value)
            && text::is_public_ipv4(octets)
        {
            self.keep_url(UrlSite { url: value.to_owned(), host: value.to_owned(), offset, bare: true });
        }
        // Every check below runs on every string literal of every file: lowercase once
        // and skip the command checks for strings that cannot be commands.
        let lower = value.to_ascii_lowercase();
        if value.len() <= 300 {
            if let Some(kind) = classify_credential_path(&lower) {
                self.credential_paths.entry(kind).or_insert((value.to_owned(), offset));
            }
            if let Some(source) = self.indicators.wallet(value) {
                self.mark(Marker::KnownIndicator(format!("the wallet address `{value}` listed by {source}")), offset);
            }
            if is_wallet_address(value)
                && !self.wallet_addresses.contains(value)
                && self.room_for_string(self.wallet_addresses.len())
            {
                self.wallet_addresses.insert(value.to_owned());
            }
            if lower.contains(".github/workflows") {
                self.mark(Marker::WorkflowPath, offset);
            }
            if lower.contains("-/whoami") || lower.contains("npm whoami") {
                self.mark(Marker::NpmWhoami, offset);
            }
            if lower.contains("/desktop/") || lower.contains("/onedrive/") || lower.contains("\\desktop\\") {
                self.mark(Marker::UserDocuments, offset);
            }
            if lower.contains(".bashrc") || lower.contains(".zshrc") || lower.contains(".bash_profile") {
                self.mark(Marker::ShellProfile, offset);
            }
            // Commands have spaces; single words that matter are flags (`--yolo`) and
            // tool names.
            let could_be_command = lower.contains(' ')
                || lower.starts_with("--")
                || lower.contains("trufflehog")
                || lower.contains("gitleaks");
            let traits =
                if could_be_command { ShellCommandTraits::of_lowercase(&lower) } else { ShellCommandTraits::default() };
            if traits.npm_publish {
                self.mark(Marker::NpmPublish, offset);
            }
            if traits.secret_scanner {
                self.mark(Marker::SecretScanner, offset);
            }
            if traits.reads_cli_credentials {
                self.mark(Marker::CliCredentials, offset);
            }
            if traits.ai_cli_unsafe {
                self.mark(Marker::AiCliUnsafe, offset);
            }
            if traits.shutdown {
                self.mark(Marker::Shutdown, offset);
            }
            if traits.downloads_and_runs() && self.room_for_string(self.command_strings.len()) {
                self.command_strings.push((value.to_owned(), offset));
            }
            if lower.contains("bcc:") {
                for (email, _) in find_emails(value) {
                    self.site(SiteKind::Recipient { key: "Bcc".to_owned(), email }, offset, "");
                }
            }
        }
        if let Some((indicator, source, position)) = self.indicators.find_in(&lower) {
            let described = format!("`{indicator}`, listed by {source}");
            self.mark(Marker::KnownIndicator(described), offset + position as u32);
        }
        if value.contains('@') && value.len() <= 2000 {
            for (email, position) in find_emails(value) {
                if !self.room_for_string(self.emails.len()) {
                    break;
                }
                self.emails.push((email, offset + position as u32));
            }
        }
        if value.len() >= 1024
            && !value.contains(' ')
            && self.high_entropy.is_none_or(|(length, _)| value.len() > length)
            && text::shannon_entropy(value) > 5.2
        {
            self.high_entropy = Some((value.len(), offset));
        }
    }

    /// Whole-text checks that do not need the AST: obfuscator fingerprints, escape
    /// density, hidden Unicode, minification.
    fn scan_raw_text(&mut self) {
        let text = self.source_text;
        let bytes = text.as_bytes();
        let mut position = 0;
        while let Some(found) = text[position..].find("_0x") {
            let start = position + found;
            position = start + 3;
            let hex_run = bytes[position..].iter().take(7).take_while(|byte| byte.is_ascii_hexdigit()).count();
            let preceded_by_identifier =
                start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'$');
            if (4..=6).contains(&hex_run) && !preceded_by_identifier {
                self.obfuscator_identifiers += 1;
            }
        }
        self.hex_escapes = text.matches("\\x").count();
        // javascript-obfuscator's string-array rotation survives any identifier renaming.
        self.string_array_rotation =
            text.contains("while(!![])") || (text.contains("['push'](") && text.contains("['shift']())"));
        if !text.is_ascii() {
            let mut run: Option<(usize, u32)> = None;
            for (offset, character) in text.char_indices() {
                let hidden = text::hidden_character(character);
                if hidden == Some(HiddenCharacter::VariationSelector) {
                    let current = run.get_or_insert((0, offset as u32));
                    current.0 += 1;
                    if self.longest_selector_run.is_none_or(|(longest, _)| current.0 > longest) {
                        self.longest_selector_run = Some(*current);
                    }
                    continue;
                }
                run = None;
                if let Some(hidden) = hidden {
                    let offset = offset as u32;
                    let in_string = self.string_spans.iter().any(|(start, end)| (*start..*end).contains(&offset));
                    let in_comment = self.comments.iter().any(|(start, end)| (*start..*end).contains(&offset));
                    if in_string && !in_comment {
                        self.hidden_in_strings.push((hidden, offset));
                    } else {
                        self.hidden_in_code.push((hidden, offset));
                    }
                }
            }
        }
        let line_count = bytes.iter().filter(|byte| **byte == b'\n').count() + 1;
        self.minified = text.len() > 4096 && text.len() / line_count > 500;
    }

    fn has_site(&self, predicate: impl Fn(&SiteKind) -> bool) -> bool {
        self.sites.iter().any(|site| predicate(&site.kind))
    }

    fn first_site(&self, predicate: impl Fn(&SiteKind) -> bool) -> Option<&Site> {
        self.sites.iter().find(|site| predicate(&site.kind))
    }

    /// Turns what was collected into findings, judging the file as a whole.
    fn rate(self, path: &str, context: &FileContext<'_>) -> FileAnalysis {
        let mut findings = Vec::new();
        let mut indicators = Vec::new();
        let at = |offset: u32| (Some(self.line_index.line(offset)), Some(self.line_index.excerpt(offset)));
        let mut push = |rule: Rule, severity: Severity, message: String, offset: u32| {
            let (line, excerpt) = at(offset);
            findings.push(finding_at(rule, severity, message, path, line, excerpt));
        };
        let install_note = context
            .install_script
            .map(|script| format!(" This file runs at install time (the `{script}` script)."))
            .unwrap_or_default();

        // Facts about the file as a whole.
        let has_network = self.has_site(|kind| *kind == SiteKind::NetworkCall);
        let has_child_process = self.has_site(|kind| matches!(kind, SiteKind::ChildProcess { .. }));
        let has_fs_write = self.has_site(|kind| *kind == SiteKind::FsWrite);
        let is_own_host = |host: &str| {
            context.own_hosts.iter().any(|own| text::registrable_domain(own) == text::registrable_domain(host))
        };
        // Only hosts the file passes to a network call count as destinations: bundles
        // carry hundreds of documentation URLs that are never contacted.
        let external_hosts: BTreeSet<&str> = self
            .urls
            .iter()
            .enumerate()
            .filter(|(index, _)| self.contacted.contains(index))
            .map(|(_, url)| url.host.as_str())
            .filter(|host| {
                !is_own_host(host)
                    && !text::is_distribution_host(host)
                    && *host != "localhost"
                    && text::parse_ipv4(host).is_none_or(text::is_public_ipv4)
            })
            .collect();
        let exfiltration_services: Vec<(&UrlSite, ServiceKind, &'static str)> = self
            .urls
            .iter()
            .filter_map(|url| classify_service(&url.url, &url.host).map(|(kind, name)| (url, kind, name)))
            .collect();
        let has_exfiltration_service =
            exfiltration_services.iter().any(|(_, kind, _)| *kind == ServiceKind::Exfiltration);
        let sends_to_hard_coded_host = has_network && !external_hosts.is_empty() || has_exfiltration_service;
        let contacted_ips: Vec<(String, u32)> = self
            .urls
            .iter()
            .enumerate()
            .filter(|(index, url)| {
                self.contacted.contains(index) && text::parse_ipv4(&url.host).is_some_and(text::is_public_ipv4)
            })
            .map(|(_, url)| (url.host.clone(), url.offset))
            .collect();
        let secret_env: Vec<&Site> =
            self.sites.iter().filter(|site| matches!(site.kind, SiteKind::SecretEnv(_))).collect();
        let env_bulk = self.first_site(|kind| *kind == SiteKind::EnvBulk);
        let harvests = env_bulk.is_some() || !self.credential_paths.is_empty() || !secret_env.is_empty();
        let collects_tokens = !secret_env.is_empty()
            || self.credential_paths.contains_key(&CredentialKind::NpmConfig)
            || self.markers.contains_key(&Marker::CliCredentials)
            || self.markers.contains_key(&Marker::NpmWhoami);

        // Where data goes.
        let mut reported_services = HashSet::new();
        for (url, kind, name) in &exfiltration_services {
            if !reported_services.insert(url.host.clone()) {
                continue;
            }
            match kind {
                ServiceKind::Exfiltration => {
                    let severity = if harvests { Severity::Critical } else { Severity::High };
                    push(
                        Rule::NetworkExfilService,
                        severity,
                        format!("Hard-coded URL of {name}: `{}`.{install_note}", quote(&url.url)),
                        url.offset,
                    );
                }
                ServiceKind::Tunnel => {
                    let severity = if has_network { Severity::High } else { Severity::Medium };
                    push(
                        Rule::NetworkTunnel,
                        severity,
                        format!("Hard-coded URL of {name}: `{}`.", quote(&url.url)),
                        url.offset,
                    );
                }
            }
        }
        if has_network && let Some((ip, offset)) = contacted_ips.first().or(self.public_ips.first()) {
            let contacted = !contacted_ips.is_empty();
            let severity = if contacted && (context.install_script.is_some() || harvests) {
                Severity::High
            } else {
                Severity::Medium
            };
            push(
                Rule::NetworkIpLiteral,
                severity,
                format!("Network code with a hard-coded public IP address `{ip}`.{install_note}"),
                *offset,
            );
        }
        for site in self.sites.iter().filter(|site| site.kind == SiteKind::DnsExfiltration) {
            push(
                Rule::DnsExfiltration,
                Severity::High,
                format!(
                    "DNS lookup of a name built from data under `{}`: DNS queries carry data out past firewalls.",
                    site.detail
                ),
                site.offset,
            );
        }

        // What is collected.
        let is_small_file = self.source_text.len() < 32 * 1024;
        let is_small_script = is_small_file && !self.minified;
        if let Some(site) = env_bulk {
            if sends_to_hard_coded_host {
                // `Object.keys(process.env)` lists names (what `debug` does for its options);
                // serialising the values, or any enumeration in a small script, is what
                // stealers do.
                let names_only = !site.detail.starts_with("JSON.stringify")
                    && !site.detail.starts_with("Object.entries")
                    && !site.detail.starts_with("Object.values");
                let severity = if has_exfiltration_service {
                    Severity::Critical
                } else if names_only && !is_small_script && contacted_ips.is_empty() {
                    Severity::Medium
                } else {
                    Severity::High
                };
                push(
                    Rule::EnvExfiltration,
                    severity,
                    format!(
                        "Serialises or enumerates all of `process.env` in a file that sends data to {}.{install_note}",
                        describe_destinations(&external_hosts, &contacted_ips)
                    ),
                    site.offset,
                );
            } else {
                // Listing variable names is what `debug` and config loaders do; dumping
                // every value into one string is what stealers do.
                let serialises = site.detail.starts_with("JSON.stringify") || site.detail.starts_with("Object.entries");
                let severity = match (serialises, context.install_script.is_some()) {
                    (true, true) => Severity::High,
                    (true, false) | (false, true) => Severity::Medium,
                    (false, false) => Severity::Low,
                };
                push(
                    Rule::EnvEnumeration,
                    severity,
                    format!("Serialises or enumerates all of `process.env` (`{}`).{install_note}", site.detail),
                    site.offset,
                );
            }
        }
        for (kind, (value, offset)) in &self.credential_paths {
            indicators.push(self.indicator(IndicatorKind::CredentialAccess, kind.describe(), *offset));
            if sends_to_hard_coded_host || !self.command_strings.is_empty() {
                // Every package manager and CLI reads ~/.npmrc for its registry settings, and
                // big CLI bundles contact many hosts; naming it only counts next to a drop
                // service or an IP, at install time, or in a small script.
                let npm_config_in_tool = *kind == CredentialKind::NpmConfig
                    && !has_exfiltration_service
                    && contacted_ips.is_empty()
                    && context.install_script.is_none()
                    && !is_small_script;
                let severity = if has_exfiltration_service {
                    Severity::Critical
                } else if npm_config_in_tool {
                    Severity::Medium
                } else {
                    Severity::High
                };
                push(
                    Rule::CredentialExfiltration,
                    severity,
                    format!(
                        "Names {} (`{}`) in a file that sends data to {}.{install_note}",
                        kind.describe(),
                        quote(value),
                        describe_destinations(&external_hosts, &contacted_ips)
                    ),
                    *offset,
                );
            } else {
                let mut severity = kind.base_severity();
                if context.install_script.is_some() {
                    severity = severity.max(Severity::Medium);
                    if *kind != CredentialKind::NpmConfig && *kind != CredentialKind::CloudCredentials {
                        severity = Severity::High;
                    }
                }
                push(
                    Rule::CredentialFileAccess,
                    severity,
                    format!("Names {} (`{}`).{install_note}", kind.describe(), quote(value)),
                    *offset,
                );
            }
        }
        if !secret_env.is_empty() && sends_to_hard_coded_host && self.credential_paths.is_empty() && env_bulk.is_none()
        {
            let names: BTreeSet<&str> = secret_env.iter().map(|site| site.detail.as_str()).collect();
            let severity = if has_exfiltration_service { Severity::Critical } else { Severity::High };
            // Sending a token to the one service it belongs to is what SDKs do; only
            // unknown destinations are suspicious.
            if has_exfiltration_service || !contacted_ips.is_empty() {
                push(
                    Rule::CredentialExfiltration,
                    severity,
                    format!(
                        "Reads {} in a file that sends data to {}.",
                        names.into_iter().collect::<Vec<_>>().join(", "),
                        describe_destinations(&external_hosts, &contacted_ips)
                    ),
                    secret_env[0].offset,
                );
            }
        }
        for site in &secret_env {
            indicators.push(self.indicator(IndicatorKind::CredentialAccess, &site.detail, site.offset));
        }

        // Dynamic code.
        let mut dynamic_sites = 0;
        let mut first_dynamic: Option<&Site> = None;
        for site in &self.sites {
            match &site.kind {
                SiteKind::DynamicCode { decoded: true } => push(
                    Rule::DecodeThenExecute,
                    Severity::High,
                    format!(
                        "`{}` runs code produced by a decoder (base64, hex, char codes or a cipher).{install_note}",
                        site.detail
                    ),
                    site.offset,
                ),
                SiteKind::DecodedRequire => push(
                    Rule::DecodeThenExecute,
                    Severity::High,
                    "`require` of a module name produced by a decoder: the dependency is hidden from readers."
                        .to_owned(),
                    site.offset,
                ),
                SiteKind::DecodedMemberCall => push(
                    Rule::DecodeThenExecute,
                    Severity::High,
                    "Calls a method whose name is decoded at runtime, hiding what is called.".to_owned(),
                    site.offset,
                ),
                SiteKind::DecodedProcessAccess => push(
                    Rule::DecodeThenExecute,
                    Severity::High,
                    "Reads a property of `process` whose name is decoded at runtime.".to_owned(),
                    site.offset,
                ),
                SiteKind::DynamicCode { decoded: false } => {
                    indicators.push(self.indicator(IndicatorKind::DynamicCode, &site.detail, site.offset));
                    dynamic_sites += 1;
                    first_dynamic.get_or_insert(site);
                }
                _ => {}
            }
        }
        if let Some(site) = first_dynamic {
            if has_network && is_small_file && !self.minified {
                push(
                    Rule::RemoteCodeExecution,
                    Severity::High,
                    format!(
                        "`{}` runs a string built at runtime in a small file that also makes network requests: code fetched from the network may be executed.{install_note}",
                        site.detail
                    ),
                    site.offset,
                );
            } else {
                let severity = if context.install_script.is_some() { Severity::Medium } else { Severity::Low };
                push(
                    Rule::DynamicCode,
                    severity,
                    format!(
                        "`{}` runs a string built at runtime ({dynamic_sites} such call{} in this file).{install_note}",
                        site.detail,
                        if dynamic_sites == 1 { "" } else { "s" }
                    ),
                    site.offset,
                );
            }
        }

        // Child processes.
        let mut dynamic_commands = 0;
        let mut first_dynamic_command: Option<&Site> = None;
        for site in &self.sites {
            let SiteKind::ChildProcess { command } = &site.kind else { continue };
            indicators.push(self.indicator(IndicatorKind::ChildProcess, &site.detail, site.offset));
            match command {
                Some(command) => {
                    let traits = ShellCommandTraits::of(command);
                    if let Some(attack) = traits.attack {
                        push(
                            attack.rule(),
                            if context.install_script.is_some() { Severity::Critical } else { Severity::High },
                            format!("Runs `{}`, which {}.{install_note}", quote(command), attack.describe()),
                            site.offset,
                        );
                    }
                    let names_public_ip = command
                        .split(|character: char| !(character.is_ascii_digit() || character == '.'))
                        .any(|word| text::parse_ipv4(word).is_some_and(text::is_public_ipv4));
                    if traits.downloads_and_runs()
                        || traits.downloads && (!self.public_ips.is_empty() || names_public_ip)
                    {
                        let own_installer = downloads_only_from_own_hosts(command, context);
                        push(
                            Rule::ChildProcessDownloadExec,
                            match (context.install_script.is_some(), own_installer) {
                                (true, false) => Severity::Critical,
                                (true, true) | (false, false) => Severity::High,
                                (false, true) => Severity::Medium,
                            },
                            format!("Runs `{}`, which downloads and executes code.{install_note}", quote(command)),
                            site.offset,
                        );
                    }
                }
                None => {
                    dynamic_commands += 1;
                    first_dynamic_command.get_or_insert(site);
                }
            }
        }
        if has_child_process {
            for (command, offset) in &self.command_strings {
                // A package manager's self-installer fetches from the package's own site
                // (`curl -fsSL https://get.pnpm.io/install.sh | sh -`): worth a look, not a hold.
                let own_installer = downloads_only_from_own_hosts(command, context);
                let severity = match (context.install_script.is_some(), own_installer) {
                    (true, false) => Severity::Critical,
                    (true, true) | (false, false) => Severity::High,
                    (false, true) => Severity::Medium,
                };
                push(
                    Rule::ChildProcessDownloadExec,
                    severity,
                    format!(
                        "Builds the shell command `{}`, which downloads and executes code{}, in a file that starts processes.{install_note}",
                        quote(command),
                        if own_installer { " from the package's own site" } else { "" }
                    ),
                    *offset,
                );
            }
        }
        if let Some(site) = first_dynamic_command {
            let severity = if context.install_script.is_some() { Severity::Medium } else { Severity::Low };
            push(
                Rule::ChildProcess,
                severity,
                format!(
                    "`{}` starts a process with a command built at runtime ({dynamic_commands} such call{} in this file).{install_note}",
                    site.detail,
                    if dynamic_commands == 1 { "" } else { "s" }
                ),
                site.offset,
            );
        }

        // Markers that only mean something next to the capability they need.
        let marker = |marker: Marker| self.markers.get(&marker).copied();
        if has_child_process && let Some(offset) = marker(Marker::AiCliUnsafe) {
            push(
                Rule::AiCliAbuse,
                Severity::Critical,
                "Starts processes and passes an AI coding CLI the flag that disables its permission prompts (`--dangerously-skip-permissions`, `--yolo`, `--trust-all-tools`).".to_owned(),
                offset,
            );
        }
        if has_child_process && let Some(offset) = marker(Marker::CliCredentials) {
            // Release tooling asks `gh auth token` to call the GitHub API on the user's
            // behalf; a stealer does it at install time or next to a drop service. The
            // risk layer weighs the rest (`crate::risk`).
            let severity = if context.install_script.is_some() || has_exfiltration_service || !contacted_ips.is_empty()
            {
                Severity::High
            } else {
                Severity::Medium
            };
            push(
                Rule::CredentialCli,
                severity,
                "Asks a CLI for its stored credentials (`gh auth token` or similar).".to_owned(),
                offset,
            );
        }
        if (has_child_process || has_network)
            && let Some(offset) = marker(Marker::SecretScanner)
        {
            push(
                Rule::SecretScanner,
                Severity::High,
                "Runs or fetches a secret scanner (trufflehog/gitleaks): a worm looking for tokens to spread with."
                    .to_owned(),
                offset,
            );
        }
        if has_fs_write && let Some(offset) = marker(Marker::WorkflowPath) {
            let severity = if collects_tokens || has_network { Severity::High } else { Severity::Medium };
            push(
                Rule::WormWorkflowWrite,
                severity,
                "Writes into `.github/workflows`: a workflow added to a repository runs with its secrets.".to_owned(),
                offset,
            );
        }
        if has_network && let Some(offset) = marker(Marker::GithubRepoApi) {
            let severity = if collects_tokens || harvests { Severity::High } else { Severity::Medium };
            push(
                Rule::WormGithubRepo,
                severity,
                "Creates GitHub repositories through the API (`/user/repos`).".to_owned(),
                offset,
            );
        }
        if let Some(offset) = marker(Marker::NpmPublish).or(marker(Marker::NpmPublishRun))
            && (has_child_process || has_network)
        {
            // A package manager names `npm publish` in its help text and handles tokens
            // too (yarn 4); a worm runs it as a command.
            let runs = marker(Marker::NpmPublishRun);
            let (severity, message) = match (collects_tokens, runs.is_some()) {
                (true, true) => (
                    Severity::High,
                    "Runs `npm publish` in a file that also collects npm tokens: how a worm republishes its victims' packages.",
                ),
                (true, false) => (
                    Severity::Medium,
                    "Names `npm publish` in a file that also collects npm tokens, though not as the command of a child process.",
                ),
                (false, true) => (Severity::Low, "Runs `npm publish`."),
                (false, false) => (Severity::Low, "Names `npm publish`."),
            };
            push(Rule::WormNpmPublish, severity, message.to_owned(), runs.unwrap_or(offset));
        }
        if has_fs_write && let Some(offset) = marker(Marker::ShellProfile) {
            let foreign_download =
                self.command_strings.iter().any(|(command, _)| !downloads_only_from_own_hosts(command, context));
            let severity =
                if marker(Marker::Shutdown).is_some() || foreign_download { Severity::High } else { Severity::Medium };
            push(
                Rule::ShellProfileWrite,
                severity,
                "Writes to shell start-up files (`~/.bashrc`, `~/.zshrc`): code there runs in every new shell."
                    .to_owned(),
                offset,
            );
        }
        if has_fs_write && let Some(offset) = marker(Marker::UserDocuments) {
            // node-ipc's peacenotwar dropped files on its users' desktops: a library has
            // no business writing there.
            push(
                Rule::UserFilesWrite,
                Severity::High,
                "Writes files into the user's Desktop or OneDrive folder.".to_owned(),
                offset,
            );
        }
        for (marker, offset) in &self.markers {
            if let Marker::KnownIndicator(name) = marker {
                push(Rule::KnownMalwareIndicator, Severity::Critical, format!("Contains {name}."), *offset);
            }
        }

        // Obfuscation.
        let code_length = self.source_text.len().max(1);
        if self.string_array_rotation && self.obfuscator_identifiers < 20 {
            push(
                Rule::ObfuscatedCode,
                Severity::High,
                "Contains javascript-obfuscator's string-array rotation (`while(!![])` / `['push'](…['shift']())`)."
                    .to_owned(),
                first_offset(self.source_text, "while(!![])").max(first_offset(self.source_text, "['push'](")),
            );
        } else if self.obfuscator_identifiers >= 20 {
            push(
                Rule::ObfuscatedCode,
                Severity::High,
                format!(
                    "Looks like javascript-obfuscator output ({} `_0x…` identifiers).",
                    self.obfuscator_identifiers
                ),
                first_offset(self.source_text, "_0x"),
            );
        } else if self.hex_escapes >= 200 && self.hex_escapes * 4 * 10 > code_length {
            push(
                Rule::ObfuscatedCode,
                Severity::Medium,
                format!("Over a tenth of the file is `\\x` escapes ({} of them).", self.hex_escapes),
                first_offset(self.source_text, "\\x"),
            );
        }
        if let Some((length, offset)) = self.high_entropy {
            push(
                Rule::HighEntropyString,
                Severity::Low,
                format!("A {length}-character string with the entropy of encoded or encrypted data."),
                offset,
            );
        }
        // Emoji carry single variation selectors and flags carry short tag runs; only a
        // long unbroken run carries a hidden payload.
        if let Some((run_length, offset)) = self.longest_selector_run
            && run_length >= 16
        {
            push(
                Rule::UnicodeHiddenCode,
                Severity::Critical,
                format!(
                    "{run_length} invisible variation-selector characters in a row: a known way to hide a payload in code that looks empty."
                ),
                offset,
            );
        }
        if let Some((_, offset)) = self.hidden_in_code.iter().find(|(hidden, _)| *hidden == HiddenCharacter::Bidi) {
            push(
                Rule::UnicodeBidi,
                Severity::High,
                "A bidirectional control character outside string literals: the code runs differently from how it reads (Trojan Source).".to_owned(),
                *offset,
            );
        } else if let Some((_, offset)) =
            self.hidden_in_strings.iter().find(|(hidden, _)| *hidden == HiddenCharacter::Bidi)
        {
            push(
                Rule::UnicodeBidi,
                Severity::Low,
                "A bidirectional control character inside a string literal.".to_owned(),
                *offset,
            );
        }
        if let Some((_, offset)) =
            self.hidden_in_code.iter().find(|(hidden, _)| *hidden == HiddenCharacter::InvisibleIdentifier)
        {
            push(
                Rule::UnicodeHiddenCode,
                Severity::High,
                "An invisible character (Hangul filler) outside string literals: an identifier nobody can see."
                    .to_owned(),
                *offset,
            );
        }

        // Mail.
        let mail_context =
            self.has_site(|kind| *kind == SiteKind::MailCall) || self.markers.contains_key(&Marker::MailService);
        for site in &self.sites {
            let SiteKind::Recipient { key, email } = &site.kind else { continue };
            if text::is_placeholder_email(email) {
                continue;
            }
            let is_blind_copy = key.eq_ignore_ascii_case("bcc") || key.eq_ignore_ascii_case("bccaddresses");
            if is_blind_copy {
                indicators.push(self.indicator(IndicatorKind::MailRecipient, email, site.offset));
                push(
                    Rule::MailHiddenRecipient,
                    Severity::High,
                    format!(
                        "Hard-coded blind-copy recipient `{email}` (`{key}`): every message sent is silently copied to this address."
                    ),
                    site.offset,
                );
            } else if mail_context {
                indicators.push(self.indicator(IndicatorKind::MailRecipient, email, site.offset));
                push(
                    Rule::MailHardCodedRecipient,
                    Severity::Medium,
                    format!("Hard-coded `{key}` recipient `{email}` in mail-sending code."),
                    site.offset,
                );
            }
        }

        // Runtime tampering.
        let wallet_count = self.wallet_addresses.len();
        let obfuscated = self.obfuscator_identifiers >= 20 || self.string_array_rotation;
        for site in &self.sites {
            match &site.kind {
                SiteKind::NetworkOverride(name) => {
                    if wallet_count >= 3 || obfuscated {
                        push(
                            Rule::CryptoClipper,
                            Severity::Critical,
                            format!(
                                "Replaces `{name}` in a file with {wallet_count} hard-coded wallet addresses{}: how the chalk/debug compromise rewrote crypto transactions.",
                                if obfuscated { " and obfuscated code" } else { "" }
                            ),
                            site.offset,
                        );
                    } else {
                        push(
                            Rule::NetworkApiOverride,
                            Severity::Medium,
                            format!("Replaces the global `{name}`, which sees every request the application makes."),
                            site.offset,
                        );
                    }
                }
                SiteKind::WalletProviderOverride => push(
                    Rule::WalletProviderTampering,
                    if wallet_count >= 3 || obfuscated { Severity::Critical } else { Severity::High },
                    "Replaces or wraps `window.ethereum`, the browser wallet provider.".to_owned(),
                    site.offset,
                ),
                SiteKind::RequireHook(name) => push(
                    Rule::RequireHook,
                    Severity::Medium,
                    format!("Hooks `{name}`, which sees and can change every module loaded after it."),
                    site.offset,
                ),
                _ => {}
            }
        }

        // Install-time downloads: esbuild and sharp do this from their registry or
        // GitHub releases, which is worth a look; anywhere else is not normal.
        if let Some(script) = context.install_script
            && has_network
            && (has_child_process || has_fs_write)
        {
            let offset = self.first_site(|kind| *kind == SiteKind::NetworkCall).map_or(0, |site| site.offset);
            let all_hosts: BTreeSet<&str> = self
                .urls
                .iter()
                .enumerate()
                .filter(|(index, _)| self.contacted.contains(index))
                .map(|(_, url)| url.host.as_str())
                .collect();
            let (severity, message) = if !external_hosts.is_empty() {
                (
                    Severity::High,
                    format!(
                        "Runs at install time (`{script}`), contacts {} and {}.",
                        describe_destinations(&external_hosts, &contacted_ips),
                        if has_child_process { "starts processes" } else { "writes files" }
                    ),
                )
            } else if all_hosts.is_empty() {
                (
                    Severity::Medium,
                    format!(
                        "Runs at install time (`{script}`), contacts a URL built at runtime and {}.",
                        if has_child_process { "starts processes" } else { "writes files" }
                    ),
                )
            } else {
                (
                    Severity::Medium,
                    format!(
                        "Runs at install time (`{script}`), contacts {} (the package's own or a package distribution host) and {}: the usual way to fetch a platform binary.",
                        all_hosts.into_iter().collect::<Vec<_>>().join(", "),
                        if has_child_process { "starts processes" } else { "writes files" }
                    ),
                )
            };
            push(Rule::InstallTimeDownload, severity, message, offset);
        }

        let commands: Vec<String> = self
            .sites
            .iter()
            .filter_map(|site| match &site.kind {
                SiteKind::ChildProcess { command: Some(command) } => Some(command.clone()),
                _ => None,
            })
            .collect();

        // Indicators for the diff against the previous version.
        let mut hosts = BTreeSet::new();
        for (index, url) in self.urls.iter().enumerate() {
            if url.bare && !self.contacted.contains(&index) {
                continue;
            }
            hosts.insert(url.host.clone());
            let kind = if text::parse_ipv4(&url.host).is_some() { IndicatorKind::Ip } else { IndicatorKind::Host };
            indicators.push(self.indicator(kind, &url.host, url.offset));
        }
        for (email, offset) in &self.emails {
            if !text::is_placeholder_email(email) {
                let kind = if mail_context { IndicatorKind::MailRecipient } else { IndicatorKind::Email };
                indicators.push(self.indicator(kind, email, *offset));
            }
        }
        if let Some(site) = env_bulk {
            indicators.push(self.indicator(IndicatorKind::CredentialAccess, "process.env", site.offset));
        }
        indicators
            .sort_by(|left, right| (left.kind, &left.value, left.line).cmp(&(right.kind, &right.value, right.line)));
        indicators.dedup_by(|left, right| {
            left.kind == right.kind && left.value == right.value && left.excerpt == right.excerpt
        });

        findings.extend(self.limits.finding(path));
        let signals = self.signals(context, &external_hosts, &contacted_ips, has_exfiltration_service, obfuscated);
        FileAnalysis {
            findings: merge_repeated_findings(findings),
            indicators,
            parse_error: false,
            hosts,
            minified: self.minified,
            commands,
            signals,
        }
    }

    /// What the file can do, as signals for the risk layer (`crate::risk`).
    fn signals(
        &self,
        context: &FileContext<'_>,
        external_hosts: &BTreeSet<&str>,
        contacted_ips: &[(String, u32)],
        has_exfiltration_service: bool,
        obfuscated: bool,
    ) -> Vec<(Signal, Option<u32>, String)> {
        let mut signals = Vec::new();
        let line = |offset: u32| Some(self.line_index.line(offset));
        let first = |predicate: &dyn Fn(&SiteKind) -> bool| self.sites.iter().find(|site| predicate(&site.kind));
        if let Some(script) = context.install_script {
            signals.push((Signal::InstallTimeCode, None, format!("the `{script}` script")));
        }
        let network = first(&|kind| *kind == SiteKind::NetworkCall);
        if let Some(site) = network {
            signals.push((Signal::Network, line(site.offset), site.detail.clone()));
            if let Some((ip, offset)) = contacted_ips.first() {
                signals.push((Signal::ForeignNetwork, line(*offset), ip.clone()));
            } else if let Some(host) = external_hosts.iter().next() {
                let offset = self.urls.iter().find(|url| url.host == *host).map_or(site.offset, |url| url.offset);
                signals.push((Signal::ForeignNetwork, line(offset), (*host).to_owned()));
            } else if let Some((ip, offset)) = self.public_ips.first() {
                signals.push((Signal::ForeignNetwork, line(*offset), ip.clone()));
            } else if self.source_text.len() < SMALL_PROGRAM_BYTES
                && !self.minified
                && let Some(url) = self.urls.iter().find(|url| !url.bare && is_foreign_host(context, &url.host))
            {
                // A small script with one network call and a hard-coded URL sends there,
                // even when the URL reaches the call through a parameter.
                signals.push((Signal::ForeignNetwork, line(url.offset), url.host.clone()));
            }
        }
        if has_exfiltration_service
            && let Some(url) = self.urls.iter().find(|url| {
                classify_service(&url.url, &url.host).is_some_and(|(kind, _)| kind == ServiceKind::Exfiltration)
            })
        {
            signals.push((Signal::ExfiltrationService, line(url.offset), url.host.clone()));
        }
        if let Some(site) = first(&|kind| matches!(kind, SiteKind::DnsQuery | SiteKind::DnsExfiltration)) {
            signals.push((Signal::DnsQuery, line(site.offset), site.detail.clone()));
        }
        if let Some(site) = first(&|kind| *kind == SiteKind::SystemInfo) {
            signals.push((Signal::HostInformation, line(site.offset), site.detail.clone()));
        } else if let Some((value, offset)) = self.credential_paths.get(&CredentialKind::SystemAccounts) {
            signals.push((Signal::HostInformation, line(*offset), value.clone()));
        }
        if let Some(site) = first(&|kind| matches!(kind, SiteKind::EnvBulk | SiteKind::SecretEnv(_))) {
            signals.push((Signal::Environment, line(site.offset), site.detail.clone()));
        }
        if let Some((kind, (value, offset))) =
            self.credential_paths.iter().find(|(kind, _)| !matches!(kind, CredentialKind::NpmConfig))
        {
            signals.push((Signal::CredentialStore, line(*offset), format!("{}: {}", kind.describe(), quote(value))));
        }
        if let Some((command, offset)) = self.command_strings.first()
            && self.has_site(|kind| matches!(kind, SiteKind::ChildProcess { .. }))
        {
            signals.push((Signal::DownloadsAndRuns, line(*offset), quote(command)));
        }
        if let Some(offset) = self.markers.get(&Marker::CliCredentials)
            && self.has_site(|kind| matches!(kind, SiteKind::ChildProcess { .. }))
        {
            signals.push((Signal::CredentialStore, line(*offset), "a CLI's stored token".to_owned()));
        }
        if let Some(site) = first(&|kind| matches!(kind, SiteKind::ChildProcess { .. })) {
            signals.push((Signal::ChildProcess, line(site.offset), site.detail.clone()));
        }
        // `eval` of a runtime string is routine in big bundles (yarn's, webpack's); only
        // decoded code, or dynamic code in a small script, is a signal.
        let small_script = self.source_text.len() < SMALL_PROGRAM_BYTES && !self.minified;
        if let Some(site) = first(&|kind| {
            matches!(
                kind,
                SiteKind::DynamicCode { decoded: true }
                    | SiteKind::DecodedRequire
                    | SiteKind::DecodedMemberCall
                    | SiteKind::DecodedProcessAccess
            ) || small_script && *kind == SiteKind::DynamicCode { decoded: false }
        }) {
            signals.push((Signal::DecodedExecution, line(site.offset), site.detail.clone()));
        }
        let code_length = self.source_text.len().max(1);
        if obfuscated || (self.hex_escapes >= 200 && self.hex_escapes * 4 * 10 > code_length) {
            signals.push((Signal::Obfuscation, None, String::new()));
        }
        signals
    }

    fn indicator(&self, kind: IndicatorKind, value: &str, offset: u32) -> Indicator {
        Indicator {
            kind,
            value: value.to_owned(),
            line: self.line_index.line(offset),
            excerpt: self.line_index.excerpt(offset),
        }
    }
}

/// One finding per rule and message in a file, the first occurrence, with a count: a
/// minified payload repeats the same trick on one line and the reviewer needs it once.
fn merge_repeated_findings(findings: Vec<Finding>) -> Vec<Finding> {
    let mut merged: Vec<(Finding, usize)> = Vec::new();
    // Linear, not a search of `merged` per finding: a file can produce thousands.
    let mut positions: HashMap<(String, String), usize> = HashMap::new();
    for finding in findings {
        match positions.entry((finding.rule.clone(), finding.message.clone())) {
            std::collections::hash_map::Entry::Occupied(position) => merged[*position.get()].1 += 1,
            std::collections::hash_map::Entry::Vacant(position) => {
                position.insert(merged.len());
                merged.push((finding, 1));
            }
        }
    }
    merged
        .into_iter()
        .map(|(mut finding, count)| {
            if count > 1 {
                finding.message =
                    format!("{} ({count} occurrences in this file).", finding.message.trim_end_matches('.'));
            }
            finding
        })
        .collect()
}

fn describe_destinations(hosts: &BTreeSet<&str>, ips: &[(String, u32)]) -> String {
    let mut names: Vec<String> = ips.iter().take(5).map(|(ip, _)| format!("`{ip}`")).collect();
    names.extend(hosts.iter().take(5).map(|host| format!("`{host}`")));
    names.dedup();
    if names.is_empty() { "a hard-coded service".to_owned() } else { names.join(", ") }
}

fn first_offset(text: &str, needle: &str) -> u32 {
    text.find(needle).unwrap_or(0) as u32
}

/// Functions and methods by what they do, as qualified paths (`child_process.exec`).
fn is_network_call(path: &str) -> bool {
    const EXACT: &[&str] = &[
        "fetch",
        "http.request",
        "http.get",
        "https.request",
        "https.get",
        "http2.connect",
        "net.connect",
        "net.createConnection",
        "tls.connect",
        "dgram.createSocket",
        "node-fetch",
        "cross-fetch",
        "request",
        "navigator.sendBeacon",
        "$.ajax",
        "$.post",
        "jQuery.ajax",
        "undici.request",
        "undici.fetch",
        "XMLHttpRequest",
        "WebSocket",
        "ws",
        "net.Socket",
    ];
    const MODULES: &[&str] = &[
        "axios",
        "got",
        "needle",
        "superagent",
        "node-fetch",
        "undici",
        "phin",
        "ky",
        "sync-request",
        "then-request",
        "urllib",
        "request-promise",
        "request-promise-native",
    ];
    EXACT.contains(&path)
        || MODULES
            .iter()
            .any(|module| path == *module || path.strip_prefix(module).is_some_and(|rest| rest.starts_with('.')))
        || path.ends_with(".fetch") && path.starts_with("undici")
}

/// Files below this size are scripts: a hard-coded URL in one is where its network call goes.
const SMALL_PROGRAM_BYTES: usize = 16 * 1024;

/// Not the package's own host, a package distribution host or the local machine.
fn is_foreign_host(context: &FileContext<'_>, host: &str) -> bool {
    !context.own_hosts.iter().any(|own| text::registrable_domain(own) == text::registrable_domain(host))
        && !text::is_distribution_host(host)
        && host != "localhost"
        && !is_documentation_host(host)
        && text::parse_ipv4(host).is_none_or(text::is_public_ipv4)
}

/// Hosts that code names in comments-as-strings, licences and help texts, never as a
/// destination worth a signal.
fn is_documentation_host(host: &str) -> bool {
    let domain = text::registrable_domain(host);
    matches!(
        domain,
        "github.com"
            | "npmjs.com"
            | "nodejs.org"
            | "mozilla.org"
            | "w3.org"
            | "wikipedia.org"
            | "example.com"
            | "opensource.org"
            | "json-schema.org"
    )
}

/// Whether every URL a shell command downloads from is on the package's own site
/// (its homepage, repository or bugs host), and there is at least one.
fn downloads_only_from_own_hosts(command: &str, context: &FileContext<'_>) -> bool {
    let urls = find_urls(command);
    !urls.is_empty()
        && urls.iter().all(|url| {
            context.own_hosts.iter().any(|own| text::registrable_domain(own) == text::registrable_domain(&url.host))
        })
}

/// Whether a shell command asks who and where it runs: the recon of install probes.
fn reads_system_information(command: &str) -> bool {
    let lower = command.to_ascii_lowercase();
    lower.split(|character: char| !(character.is_ascii_alphanumeric() || character == '/' || character == '_')).any(
        |word| {
            matches!(
                word,
                "whoami" | "hostname" | "uname" | "ifconfig" | "ipconfig" | "systeminfo" | "/etc/hosts" | "/etc/passwd"
            )
        },
    )
}

fn is_child_process_call(path: &str) -> bool {
    matches!(
        path,
        "child_process.exec"
            | "child_process.execSync"
            | "child_process.spawn"
            | "child_process.spawnSync"
            | "child_process.execFile"
            | "child_process.execFileSync"
            | "child_process.fork"
            | "execa"
            | "execa.sync"
            | "execa.command"
            | "execa.commandSync"
            | "execa.execa"
            | "execa.execaSync"
            | "execa.execaCommand"
            | "cross-spawn"
            | "cross-spawn.sync"
            | "shelljs.exec"
            | "Bun.spawn"
            | "Bun.spawnSync"
    )
}

fn is_fs_write_call(path: &str) -> bool {
    let Some(method) = path.strip_prefix("fs.").map(|rest| rest.strip_prefix("promises.").unwrap_or(rest)) else {
        return false;
    };
    matches!(
        method,
        "writeFile"
            | "writeFileSync"
            | "appendFile"
            | "appendFileSync"
            | "createWriteStream"
            | "outputFile"
            | "outputFileSync"
            | "copyFile"
            | "copyFileSync"
            | "chmod"
            | "chmodSync"
    )
}

fn is_mail_call(path: &str) -> bool {
    let method = path.rsplit('.').next().unwrap_or(path);
    matches!(
        method,
        "sendMail"
            | "sendEmail"
            | "sendEmailWithTemplate"
            | "sendEmailBatch"
            | "sendRawEmail"
            | "SendEmailCommand"
            | "SendRawEmailCommand"
    ) || path.starts_with("nodemailer")
        || path.starts_with("postmark")
        || path.starts_with("@sendgrid/mail")
        || path.starts_with("@aws-sdk/client-ses")
        || path.starts_with("resend")
        || path.starts_with("mailgun")
}

/// Module names as the checks know them: `node:fs` is `fs`, fs-extra is `fs`.
fn normalise_module(name: &str) -> String {
    let name = name.strip_prefix("node:").unwrap_or(name);
    match name {
        "fs-extra" | "graceful-fs" => "fs".to_owned(),
        "fs/promises" => "fs.promises".to_owned(),
        "dns/promises" => "dns.promises".to_owned(),
        "child_process" | "node:child_process" => "child_process".to_owned(),
        "module" => "Module".to_owned(),
        other => other.to_owned(),
    }
}

/// A string constant folded from literals and other constants: its length, and its
/// value while that is short enough to keep.
#[derive(Debug, Clone)]
struct StringConstant {
    // Invariant: `Some` only when `length <= MAX_KEPT_CONSTANT_BYTES`.
    value: Option<String>,
    length: u64,
}

/// The longest string constant whose value is kept (recipient addresses are short).
const MAX_KEPT_CONSTANT_BYTES: u64 = 300;

/// How deeply a constant's initializer is folded; longer chains are not tracked.
const MAX_FOLD_DEPTH: usize = 64;

/// A frame of taint tracking: did the expression being visited call a decoder or read
/// a value that came from one?
#[derive(Default)]
struct TaintFrame {
    decoded: bool,
}

/// The AST walk. Holds the scoping so identifiers resolve to globals or symbols.
struct Visitor<'collector, 'text, 'scoping> {
    collector: &'collector mut Collector<'text>,
    scoping: &'scoping Scoping,
    // A `RefCell` because path resolution (`&self`) and binding share it; no borrow is
    // held across a call back into the visitor.
    state: std::cell::RefCell<WalkState>,
}

/// Per-walk state that must not borrow the collector.
#[derive(Default)]
struct WalkState {
    aliases: HashMap<SymbolId, String>,
    // Constants whose initializer contains URLs: symbol to indices into `urls`.
    // Invariant: each list is sorted, de-duplicated and at most `MAX_URLS_PER_SYMBOL`
    // long, so `const b = a + a` costs what `const b = a` does.
    url_symbols: HashMap<SymbolId, Vec<usize>>,
    // URL indices reached through identifiers during the current URL-capturing walks,
    // only while one is active. Invariant: at most `MAX_REFERENCED_URLS_PER_WALK`.
    referenced_urls: Vec<usize>,
    // How many URL-capturing walks enclose the node being visited.
    capture_depth: usize,
    decoded_symbols: HashSet<SymbolId>,
    // Objects built with all of `process.env` as a value (`{ env: process.env, … }`):
    // serialising one serialises the environment.
    environment_holders: HashSet<SymbolId>,
    // String constants, folded through `+` and templates: `const copy = 'x@evil.example'`
    // then `bcc: copy` is the same hard-coded recipient. Invariant: every value is at
    // most `MAX_KEPT_CONSTANT_BYTES`, so the map is linear in the declarations.
    string_constants: HashMap<SymbolId, StringConstant>,
    taint_frames: Vec<TaintFrame>,
}

/// The largest initializer or function whose decoder use taints its binding. Larger
/// ones are modules or bundles, where "contains a decoder somewhere" means nothing.
const MAX_TAINT_SPAN: u32 = 4096;

/// The most nodes [`Visitor::path_of`] looks through. Every path the checks know
/// (`child_process.exec`, `process.env.X`, `Module.prototype._compile`) is a handful of
/// components deep, so stopping here loses nothing.
const MAX_PATH_COMPONENTS: usize = 32;

impl<'a> Visitor<'_, '_, '_> {
    fn with_state<T>(&self, action: impl FnOnce(&mut WalkState) -> T) -> T {
        action(&mut self.state.borrow_mut())
    }

    /// The qualified path of an expression: `fetch`, `child_process.exec`,
    /// `process.env.NPM_TOKEN`. Global objects (`window`, `globalThis`, …) resolve to
    /// `<global>`. `None` for anything else, notably locals not bound to a module.
    fn path_of(&self, expression: &Expression<'a>) -> Option<String> {
        self.path_within(expression, MAX_PATH_COMPONENTS)
    }

    /// [`Self::path_of`], looking at most `depth` nodes down. The walk asks for the path
    /// of every call and member expression, and each of `a.b().c().d()…` would
    /// otherwise descend the whole chain: quadratic in its length.
    fn path_within(&self, expression: &Expression<'a>, depth: usize) -> Option<String> {
        let depth = depth.checked_sub(1)?;
        match expression {
            Expression::Identifier(identifier) => {
                let reference_id = identifier.reference_id.get()?;
                match self.scoping.get_reference(reference_id).symbol_id() {
                    Some(symbol_id) => self.with_state(|state| state.aliases.get(&symbol_id).cloned()),
                    None => Some(match identifier.name.as_str() {
                        "window" | "globalThis" | "global" | "self" => "<global>".to_owned(),
                        name => name.to_owned(),
                    }),
                }
            }
            Expression::StaticMemberExpression(member) => {
                let base = self.path_within(&member.object, depth)?;
                bounded_join_path(&base, member.property.name.as_str())
            }
            Expression::ComputedMemberExpression(member) => {
                let base = self.path_within(&member.object, depth)?;
                // `process['en' + 'v']` is `process.env`.
                let property = static_string(&member.expression)
                    .or_else(|| self.fold_string(&member.expression, MAX_FOLD_DEPTH)?.value)?;
                bounded_join_path(&base, &property)
            }
            Expression::CallExpression(call) => {
                let callee = self.path_within(&call.callee, depth)?;
                if callee == "require" {
                    let module = call.arguments.first().and_then(Argument::as_expression).and_then(static_string)?;
                    return Some(normalise_module(&module));
                }
                None
            }
            Expression::ParenthesizedExpression(inner) => self.path_within(&inner.expression, depth),
            // `process.env || {}` is still `process.env`.
            Expression::LogicalExpression(logical) => self.path_within(&logical.left, depth),
            Expression::SequenceExpression(sequence) => self.path_within(sequence.expressions.last()?, depth),
            Expression::AwaitExpression(inner) => {
                // `await import('child_process')`.
                if let Expression::ImportExpression(import) = &inner.argument {
                    return static_string(&import.source).map(|module| normalise_module(&module));
                }
                None
            }
            Expression::ImportExpression(import) => {
                static_string(&import.source).map(|module| normalise_module(&module))
            }
            _ => None,
        }
    }

    fn offset(span: oxc_span::Span) -> u32 {
        span.start
    }

    /// The string an expression evaluates to when it is built from literals and string
    /// constants with `+` and templates; its length only, once that is too long to keep.
    fn fold_string(&self, expression: &Expression<'a>, depth: usize) -> Option<StringConstant> {
        let depth = depth.checked_sub(1)?;
        let literal = |text: &str| StringConstant {
            value: (text.len() as u64 <= MAX_KEPT_CONSTANT_BYTES).then(|| text.to_owned()),
            length: text.len() as u64,
        };
        match expression {
            Expression::StringLiteral(string) => Some(literal(string.value.as_str())),
            Expression::ParenthesizedExpression(inner) => self.fold_string(&inner.expression, depth),
            Expression::Identifier(identifier) => {
                let symbol_id = self.scoping.get_reference(identifier.reference_id.get()?).symbol_id()?;
                self.with_state(|state| state.string_constants.get(&symbol_id).cloned())
            }
            Expression::BinaryExpression(binary)
                if binary.operator == oxc_syntax::operator::BinaryOperator::Addition =>
            {
                let left = self.fold_string(&binary.left, depth)?;
                let right = self.fold_string(&binary.right, depth)?;
                Some(concatenate([left, right]))
            }
            Expression::TemplateLiteral(template) => {
                let mut parts = Vec::with_capacity(template.quasis.len() + template.expressions.len());
                for (index, quasi) in template.quasis.iter().enumerate() {
                    parts.push(literal(quasi.value.cooked?.as_str()));
                    if let Some(inner) = template.expressions.get(index) {
                        parts.push(self.fold_string(inner, depth)?);
                    }
                }
                Some(concatenate(parts))
            }
            _ => None,
        }
    }

    /// Walks `action` inside a taint frame and says whether it saw decoded data.
    fn tainted_walk(&mut self, action: impl FnOnce(&mut Self)) -> bool {
        self.with_state(|state| state.taint_frames.push(TaintFrame::default()));
        action(self);
        let frame = self.with_state(|state| state.taint_frames.pop()).unwrap_or_default();
        if frame.decoded {
            self.taint();
        }
        frame.decoded
    }

    /// Walks `action` and returns the URLs it met, literals and constants referenced,
    /// sorted and de-duplicated.
    fn url_capturing_walk(&mut self, action: impl FnOnce(&mut Self)) -> Vec<usize> {
        let urls_before = self.collector.urls.len();
        let references_before = self.with_state(|state| {
            state.capture_depth += 1;
            state.referenced_urls.len()
        });
        action(self);
        let mut indices: Vec<usize> = (urls_before..self.collector.urls.len()).collect();
        self.with_state(|state| {
            state.capture_depth -= 1;
            indices.extend(state.referenced_urls.drain(references_before..));
        });
        indices.sort_unstable();
        indices.dedup();
        indices
    }

    /// Adds URL indices to the enclosing URL-capturing walk, if there is one.
    fn reference_urls(&mut self, indices: &[usize]) {
        let over_limit = self.with_state(|state| {
            if state.capture_depth == 0 {
                return false;
            }
            if state.referenced_urls.len() + indices.len() > MAX_REFERENCED_URLS_PER_WALK {
                return true;
            }
            state.referenced_urls.extend_from_slice(indices);
            false
        });
        if over_limit {
            self.collector.limits.reach(Limit::ReferencedUrls);
        }
    }

    fn taint(&self) {
        self.with_state(|state| {
            if let Some(frame) = state.taint_frames.last_mut() {
                frame.decoded = true;
            }
        });
    }

    fn bind(&self, pattern: &BindingPattern<'a>, path: &str) {
        match pattern {
            BindingPattern::BindingIdentifier(identifier) => {
                if let Some(symbol_id) = identifier.symbol_id.get() {
                    self.with_state(|state| state.aliases.insert(symbol_id, path.to_owned()));
                }
            }
            BindingPattern::ObjectPattern(object) => {
                for property in &object.properties {
                    if let Some(key) = property_key_name(&property.key)
                        && let Some(property_path) = bounded_join_path(path, &key)
                    {
                        self.bind(&property.value, &property_path);
                    }
                }
            }
            BindingPattern::AssignmentPattern(assignment) => self.bind(&assignment.left, path),
            BindingPattern::ArrayPattern(_) => {}
        }
    }

    fn mark_decoded(&self, pattern: &BindingPattern<'a>) {
        if let BindingPattern::BindingIdentifier(identifier) = pattern
            && let Some(symbol_id) = identifier.symbol_id.get()
        {
            self.with_state(|state| state.decoded_symbols.insert(symbol_id));
        }
    }

    fn is_decoder_call(&self, path: &str, call_arguments: &[Argument<'a>]) -> bool {
        match path {
            "atob"
            | "unescape"
            | "crypto.createDecipher"
            | "crypto.createDecipheriv"
            | "zlib.inflateSync"
            | "zlib.gunzipSync"
            | "zlib.inflateRawSync"
            | "zlib.brotliDecompressSync"
            | "zlib.unzipSync" => true,
            "String.fromCharCode" => !call_arguments.is_empty(),
            "Buffer.from" | "Buffer" => call_arguments
                .get(1)
                .and_then(Argument::as_expression)
                .and_then(static_string)
                .is_some_and(|encoding| matches!(encoding.as_str(), "base64" | "hex" | "base64url")),
            _ => false,
        }
    }

    fn handle_call(&mut self, path: &str, call_arguments: &[Argument<'a>], offset: u32, is_new: bool) {
        let first_argument = call_arguments.first().and_then(Argument::as_expression);
        if is_network_call(path) {
            self.collector.site(SiteKind::NetworkCall, offset, path);
        }
        if is_child_process_call(path) {
            let command = first_argument.and_then(static_string).map(|command| {
                // `spawn('sh', ['-c', '…'])`: the arguments are part of the command.
                let rest: Vec<String> = call_arguments
                    .get(1)
                    .and_then(Argument::as_expression)
                    .and_then(|expression| match expression {
                        Expression::ArrayExpression(array) => Some(
                            array
                                .elements
                                .iter()
                                .filter_map(|element| element.as_expression().and_then(static_string))
                                .collect(),
                        ),
                        _ => None,
                    })
                    .unwrap_or_default();
                if rest.is_empty() { command } else { format!("{command} {}", rest.join(" ")) }
            });
            if let Some(command) = &command {
                self.collector.inspect_string(command, offset);
                if reads_system_information(command) {
                    self.collector.site(SiteKind::SystemInfo, offset, quote(command));
                }
            }
            if command.as_deref().is_some_and(|command| command.to_ascii_lowercase().contains("npm publish"))
                || first_argument.is_some_and(|argument| self.spells_npm_publish(argument))
            {
                self.collector.mark(Marker::NpmPublishRun, offset);
            }
            self.collector.site(SiteKind::ChildProcess { command }, offset, path);
        }
        if is_fs_write_call(path) {
            self.collector.site(SiteKind::FsWrite, offset, path);
        }
        if matches!(path, "os.hostname" | "os.userInfo" | "os.homedir" | "os.networkInterfaces") {
            self.collector.site(SiteKind::SystemInfo, offset, format!("{path}()"));
        }
        if is_mail_call(path) {
            self.collector.site(SiteKind::MailCall, offset, path);
        }
        if matches!(
            path,
            "dns.resolve"
                | "dns.resolve4"
                | "dns.resolve6"
                | "dns.resolveTxt"
                | "dns.resolveAny"
                | "dns.lookup"
                | "dns.promises.resolve"
                | "dns.promises.lookup"
                | "dns.promises.resolveTxt"
        ) {
            self.collector.site(SiteKind::DnsQuery, offset, path);
            if let Some(domain) = first_argument.and_then(built_name_under_fixed_domain) {
                self.collector.site(SiteKind::DnsExfiltration, offset, domain);
            }
        }
        if matches!(
            path,
            "JSON.stringify" | "Object.keys" | "Object.entries" | "Object.values" | "Object.getOwnPropertyNames"
        ) && first_argument.is_some_and(|argument| self.holds_environment(argument))
        {
            self.collector.site(SiteKind::EnvBulk, offset, format!("{path}(process.env)"));
        }
        if path == "Object.defineProperty"
            && first_argument.and_then(|argument| self.path_of(argument)).as_deref() == Some("<global>")
            && let Some(name) = call_arguments.get(1).and_then(Argument::as_expression).and_then(static_string)
        {
            self.record_override(&name, offset);
        }
        if path == "Proxy"
            && is_new
            && first_argument.and_then(|argument| self.path_of(argument)).as_deref() == Some("ethereum")
        {
            self.collector.site(SiteKind::WalletProviderOverride, offset, "");
        }
    }

    /// Whether a command argument spells `npm publish`: in its own (short) source text,
    /// such as a template with the directory interpolated, or in the constant it names.
    fn spells_npm_publish(&self, argument: &Expression<'a>) -> bool {
        let span = argument.span();
        let spelled = (span.end - span.start <= 4096)
            .then(|| self.collector.source_text.get(span.start as usize..span.end as usize))
            .flatten()
            .is_some_and(|text| text.to_ascii_lowercase().contains("npm publish"));
        spelled
            || self
                .fold_string(argument, MAX_FOLD_DEPTH)
                .and_then(|constant| constant.value)
                .is_some_and(|value| value.to_ascii_lowercase().contains("npm publish"))
    }

    /// `process.env` itself, an object literal with it as a property value, or a
    /// variable initialised with such an object.
    fn holds_environment(&self, expression: &Expression<'a>) -> bool {
        match expression {
            Expression::ObjectExpression(object) => object.properties.iter().any(|property| match property {
                oxc_ast::ast::ObjectPropertyKind::ObjectProperty(property) => {
                    self.path_of(&property.value).as_deref() == Some("process.env")
                }
                oxc_ast::ast::ObjectPropertyKind::SpreadProperty(_) => false,
            }),
            Expression::Identifier(identifier) => {
                identifier
                .reference_id
                .get()
                .and_then(|reference_id| self.scoping.get_reference(reference_id).symbol_id())
                .is_some_and(|symbol_id| self.with_state(|state| state.environment_holders.contains(&symbol_id)))
                // `var data = process.env || {}; JSON.stringify(data)`.
                || self.path_of(expression).as_deref() == Some("process.env")
            }
            other => self.path_of(other).as_deref() == Some("process.env"),
        }
    }

    /// Records hard-coded email addresses assigned to a recipient key (`bcc`, `To`, …).
    fn record_recipients(&mut self, key: &str, value: &Expression<'a>, offset: u32) {
        let lower = key.to_ascii_lowercase();
        if !matches!(lower.as_str(), "bcc" | "cc" | "to" | "bccaddresses" | "ccaddresses" | "toaddresses") {
            return;
        }
        let mut values = Vec::new();
        let resolve_constant = |identifier: &oxc_ast::ast::IdentifierReference<'a>| {
            let symbol_id = self.scoping.get_reference(identifier.reference_id.get()?).symbol_id()?;
            self.with_state(|state| state.string_constants.get(&symbol_id).and_then(|constant| constant.value.clone()))
        };
        collect_static_strings(value, &resolve_constant, &mut values);
        for value in values {
            for (email, _) in find_emails(&value) {
                self.collector.site(SiteKind::Recipient { key: key.to_owned(), email }, offset, "");
            }
        }
    }

    fn record_override(&mut self, target: &str, offset: u32) {
        let target = target.strip_prefix("<global>.").unwrap_or(target);
        let target = target.replace("module.constructor", "Module");
        match target.as_str() {
            "fetch"
            | "XMLHttpRequest"
            | "WebSocket"
            | "XMLHttpRequest.prototype.open"
            | "XMLHttpRequest.prototype.send"
            | "XMLHttpRequest.prototype.setRequestHeader" => {
                self.collector.site(SiteKind::NetworkOverride(target.clone()), offset, "");
            }
            "ethereum" | "ethereum.request" | "ethereum.send" | "ethereum.sendAsync" | "ethereum.enable" | "solana"
            | "phantom" => {
                self.collector.site(SiteKind::WalletProviderOverride, offset, "");
            }
            "Module.prototype.require"
            | "Module._load"
            | "Module._resolveFilename"
            | "Module.prototype._compile"
            | "Module._extensions..js" => {
                self.collector.site(SiteKind::RequireHook(target.clone()), offset, "");
            }
            _ => {}
        }
    }

    fn assignment_target_path(&self, target: &AssignmentTarget<'a>) -> Option<String> {
        match target {
            AssignmentTarget::AssignmentTargetIdentifier(identifier) => {
                let reference_id = identifier.reference_id.get()?;
                self.scoping.get_reference(reference_id).symbol_id().is_none().then(|| identifier.name.to_string())
            }
            AssignmentTarget::StaticMemberExpression(member) => {
                Some(join_path(&self.path_of(&member.object)?, member.property.name.as_str()))
            }
            AssignmentTarget::ComputedMemberExpression(member) => {
                Some(join_path(&self.path_of(&member.object)?, &static_string(&member.expression)?))
            }
            _ => None,
        }
    }
}

impl<'a> Visit<'a> for Visitor<'_, '_, '_> {
    fn visit_string_literal(&mut self, literal: &StringLiteral<'a>) {
        self.collector.string_spans.push((literal.span.start, literal.span.end));
        self.collector.inspect_string(literal.value.as_str(), literal.span.start);
    }

    fn visit_reg_exp_literal(&mut self, literal: &oxc_ast::ast::RegExpLiteral<'a>) {
        // Regular expressions that match bidi controls legitimately contain them.
        self.collector.string_spans.push((literal.span.start, literal.span.end));
        // A regular expression matching Discord tokens is what token grabbers search with.
        let raw = self.collector.source_text.get(literal.span.start as usize..literal.span.end as usize).unwrap_or("");
        if let Some(kind) = classify_credential_path(&raw.to_ascii_lowercase()) {
            self.collector.credential_paths.entry(kind).or_insert((raw.to_owned(), literal.span.start));
        }
    }

    fn visit_jsx_text(&mut self, text: &oxc_ast::ast::JSXText<'a>) {
        self.collector.string_spans.push((text.span.start, text.span.end));
    }

    fn visit_template_literal(&mut self, template: &TemplateLiteral<'a>) {
        self.collector.string_spans.push((template.span.start, template.span.end));
        if template.expressions.is_empty() {
            if let Some(cooked) = template.quasis.first().and_then(|quasi| quasi.value.cooked) {
                self.collector.inspect_string(cooked.as_str(), template.span.start);
            }
        } else {
            // Inspect the template as a whole with placeholders, so that a URL whose
            // host is literal but whose path is interpolated is still seen.
            let mut joined = String::new();
            for quasi in &template.quasis {
                joined.push_str(quasi.value.cooked.map_or("", |cooked| cooked.as_str()));
                if !quasi.tail {
                    joined.push_str("${}");
                }
            }
            self.collector.inspect_string(&joined, template.span.start);
        }
        walk::walk_template_literal(self, template);
    }

    fn visit_identifier_reference(&mut self, identifier: &oxc_ast::ast::IdentifierReference<'a>) {
        let Some(reference_id) = identifier.reference_id.get() else { return };
        let Some(symbol_id) = self.scoping.get_reference(reference_id).symbol_id() else { return };
        if self.with_state(|state| state.decoded_symbols.contains(&symbol_id)) {
            self.taint();
        }
        let indices =
            self.with_state(
                |state| {
                    if state.capture_depth == 0 { None } else { state.url_symbols.get(&symbol_id).cloned() }
                },
            );
        if let Some(indices) = indices {
            self.reference_urls(&indices);
        }
    }

    fn visit_import_declaration(&mut self, declaration: &ImportDeclaration<'a>) {
        let module = normalise_module(declaration.source.value.as_str());
        if is_mail_call(&module) {
            self.collector.site(SiteKind::MailCall, declaration.span.start, module.clone());
        }
        if let Some(specifiers) = &declaration.specifiers {
            for specifier in specifiers {
                let (local, path) = match specifier {
                    ImportDeclarationSpecifier::ImportSpecifier(named) => {
                        let imported = named.imported.name();
                        let path =
                            if imported == "default" { module.clone() } else { join_path(&module, imported.as_str()) };
                        (&named.local, path)
                    }
                    ImportDeclarationSpecifier::ImportDefaultSpecifier(default) => (&default.local, module.clone()),
                    ImportDeclarationSpecifier::ImportNamespaceSpecifier(namespace) => {
                        (&namespace.local, module.clone())
                    }
                };
                if let Some(symbol_id) = local.symbol_id.get() {
                    self.with_state(|state| state.aliases.insert(symbol_id, path));
                }
            }
        }
        walk::walk_import_declaration(self, declaration);
    }

    fn visit_variable_declarator(&mut self, declarator: &VariableDeclarator<'a>) {
        let Some(init) = &declarator.init else {
            walk::walk_variable_declarator(self, declarator);
            return;
        };
        if let Some(path) = self.path_of(init) {
            self.bind(&declarator.id, &path);
            if is_mail_call(&path) {
                self.collector.site(SiteKind::MailCall, declarator.span.start, path);
            }
        }
        if let BindingPattern::BindingIdentifier(identifier) = &declarator.id
            && let Some(symbol_id) = identifier.symbol_id.get()
            && let Some(constant) = self.fold_string(init, MAX_FOLD_DEPTH)
        {
            if constant.length > MAX_FOLDED_STRING_BYTES {
                self.collector.limits.reach(Limit::FoldedString);
            } else {
                self.with_state(|state| state.string_constants.insert(symbol_id, constant));
            }
        }
        if matches!(init, Expression::ObjectExpression(_))
            && self.holds_environment(init)
            && let BindingPattern::BindingIdentifier(identifier) = &declarator.id
            && let Some(symbol_id) = identifier.symbol_id.get()
        {
            self.with_state(|state| state.environment_holders.insert(symbol_id));
        }
        let span = declarator.span;
        if span.end - span.start <= MAX_TAINT_SPAN {
            let mut decoded = false;
            let urls = self.url_capturing_walk(|visitor| {
                decoded = visitor.tainted_walk(|visitor| walk::walk_variable_declarator(visitor, declarator));
            });
            if decoded {
                self.mark_decoded(&declarator.id);
            }
            if !urls.is_empty()
                && let BindingPattern::BindingIdentifier(identifier) = &declarator.id
                && let Some(symbol_id) = identifier.symbol_id.get()
            {
                let mut urls = urls;
                if urls.len() > MAX_URLS_PER_SYMBOL {
                    urls.truncate(MAX_URLS_PER_SYMBOL);
                    self.collector.limits.reach(Limit::UrlsPerSymbol);
                }
                // Still visible to an enclosing network call, e.g. an IIFE argument.
                self.reference_urls(&urls);
                self.with_state(|state| state.url_symbols.insert(symbol_id, urls));
            }
        } else {
            walk::walk_variable_declarator(self, declarator);
        }
    }

    fn visit_function(&mut self, function: &Function<'a>, flags: ScopeFlags) {
        let span = function.span;
        match &function.id {
            Some(identifier) if span.end - span.start <= MAX_TAINT_SPAN => {
                let decoded = self.tainted_walk(|visitor| walk::walk_function(visitor, function, flags));
                if decoded && let Some(symbol_id) = identifier.symbol_id.get() {
                    self.with_state(|state| state.decoded_symbols.insert(symbol_id));
                }
            }
            _ => walk::walk_function(self, function, flags),
        }
    }

    fn visit_call_expression(&mut self, call: &CallExpression<'a>) {
        let offset = Self::offset(call.span);
        let path = self.path_of(&call.callee);
        if let Some(path) = &path {
            if self.is_decoder_call(path, &call.arguments) {
                self.taint();
                self.collector.site(SiteKind::Decoder, offset, path.clone());
            }
            self.handle_call(path, &call.arguments, offset, false);
            let executes = matches!(
                path.as_str(),
                "eval"
                    | "Function"
                    | "vm.runInThisContext"
                    | "vm.runInNewContext"
                    | "vm.runInContext"
                    | "vm.compileFunction"
            ) || matches!(path.as_str(), "setTimeout" | "setInterval")
                && call.arguments.first().and_then(Argument::as_expression).is_some_and(|argument| {
                    matches!(
                        argument,
                        Expression::StringLiteral(_) | Expression::TemplateLiteral(_) | Expression::BinaryExpression(_)
                    )
                });
            if executes || path == "require" {
                let all_static =
                    call.arguments.iter().all(|argument| argument.as_expression().and_then(static_string).is_some());
                self.visit_expression(&call.callee);
                let decoded = self.tainted_walk(|visitor| {
                    for argument in &call.arguments {
                        visitor.visit_argument(argument);
                    }
                });
                if path == "require" {
                    if decoded {
                        self.collector.site(SiteKind::DecodedRequire, offset, "require");
                    }
                } else if decoded || !all_static {
                    self.collector.site(SiteKind::DynamicCode { decoded }, offset, path.clone());
                }
                return;
            }
        }
        // `x._compile(code)`: how event-stream's payload loaded its decrypted module.
        if let Expression::StaticMemberExpression(member) = &call.callee
            && member.property.name == "_compile"
        {
            let decoded = self.tainted_walk(|visitor| walk::walk_call_expression(visitor, call));
            self.collector.site(SiteKind::DynamicCode { decoded }, offset, "Module.prototype._compile");
            return;
        }
        if path.as_deref().is_some_and(is_network_call) {
            let urls = self.url_capturing_walk(|visitor| walk::walk_call_expression(visitor, call));
            self.collector.contacted.extend(urls);
            return;
        }
        if let Expression::ComputedMemberExpression(member) = &call.callee {
            self.visit_expression(&member.object);
            let decoded = self.tainted_walk(|visitor| visitor.visit_expression(&member.expression));
            if decoded {
                self.collector.site(SiteKind::DecodedMemberCall, offset, "");
            }
            for argument in &call.arguments {
                self.visit_argument(argument);
            }
            return;
        }
        walk::walk_call_expression(self, call);
    }

    fn visit_new_expression(&mut self, new: &NewExpression<'a>) {
        let offset = Self::offset(new.span);
        if let Some(path) = self.path_of(&new.callee) {
            self.handle_call(&path, &new.arguments, offset, true);
            if matches!(path.as_str(), "Function" | "vm.Script") {
                let all_static =
                    new.arguments.iter().all(|argument| argument.as_expression().and_then(static_string).is_some());
                let decoded = self.tainted_walk(|visitor| walk::walk_new_expression(visitor, new));
                if decoded || !all_static {
                    self.collector.site(SiteKind::DynamicCode { decoded }, offset, format!("new {path}"));
                }
                return;
            }
            if self.is_decoder_call(&path, &new.arguments) {
                self.taint();
            }
            if is_network_call(&path) {
                let urls = self.url_capturing_walk(|visitor| walk::walk_new_expression(visitor, new));
                self.collector.contacted.extend(urls);
                return;
            }
        }
        walk::walk_new_expression(self, new);
    }

    fn visit_computed_member_expression(&mut self, member: &ComputedMemberExpression<'a>) {
        let object_path = self.path_of(&member.object);
        if matches!(object_path.as_deref(), Some("process" | "process.env")) {
            self.visit_expression(&member.object);
            let decoded = self.tainted_walk(|visitor| visitor.visit_expression(&member.expression));
            if decoded {
                self.collector.site(SiteKind::DecodedProcessAccess, member.span.start, "");
            }
            return;
        }
        walk::walk_computed_member_expression(self, member);
    }

    fn visit_static_member_expression(&mut self, member: &oxc_ast::ast::StaticMemberExpression<'a>) {
        if let Expression::StaticMemberExpression(inner) = &member.object
            && inner.property.name == "env"
            && self.path_of(&inner.object).as_deref() == Some("process")
        {
            let name = member.property.name.as_str();
            if text::is_secret_env_name(name) {
                self.collector.site(SiteKind::SecretEnv(name.to_owned()), member.span.start, name);
            }
            if matches!(name, "USER" | "USERNAME" | "LOGNAME" | "COMPUTERNAME" | "HOSTNAME" | "USERDOMAIN") {
                self.collector.site(SiteKind::SystemInfo, member.span.start, format!("process.env.{name}"));
            }
        }
        walk::walk_static_member_expression(self, member);
    }

    fn visit_for_in_statement(&mut self, statement: &ForInStatement<'a>) {
        if self.path_of(&statement.right).as_deref() == Some("process.env") {
            self.collector.site(SiteKind::EnvBulk, statement.span.start, "for (… in process.env)");
        }
        walk::walk_for_in_statement(self, statement);
    }

    fn visit_assignment_expression(&mut self, assignment: &oxc_ast::ast::AssignmentExpression<'a>) {
        if let Some(target) = self.assignment_target_path(&assignment.left) {
            self.record_override(&target, assignment.span.start);
        }
        // `message.bcc = '…'` hard-codes a recipient as surely as an object literal.
        if let AssignmentTarget::StaticMemberExpression(member) = &assignment.left {
            self.record_recipients(member.property.name.as_str(), &assignment.right, assignment.span.start);
        }
        walk::walk_assignment_expression(self, assignment);
    }

    fn visit_object_property(&mut self, property: &ObjectProperty<'a>) {
        if let Some(key) = property_key_name(&property.key) {
            let lower = key.to_ascii_lowercase();
            // `https.get({ hostname: 'pastebin.com', path: … })` names a host without a URL.
            if matches!(lower.as_str(), "host" | "hostname")
                && let Some(host) = static_string(&property.value)
                && !host.contains('/')
                && !host.contains(' ')
            {
                let before = self.collector.urls.len();
                self.collector.inspect_string(&format!("https://{host}/"), property.value.span().start);
                let after = self.collector.urls.len();
                self.collector.contacted.extend(before..after);
            }
            self.record_recipients(&key, &property.value, property.span.start);
        }
        walk::walk_object_property(self, property);
    }
}

fn join_path(base: &str, property: &str) -> String {
    if base == "<global>" { property.to_owned() } else { format!("{base}.{property}") }
}

/// [`join_path`], or `None` past `MAX_ALIAS_PATH_BYTES`: no path the checks know is
/// that long, and a chain of aliases each one property longer would otherwise store
/// a quadratic amount of text. Not a reported limit, since nothing is lost.
fn bounded_join_path(base: &str, property: &str) -> Option<String> {
    (base.len() + 1 + property.len() <= MAX_ALIAS_PATH_BYTES).then(|| join_path(base, property))
}

fn property_key_name(key: &PropertyKey<'_>) -> Option<String> {
    match key {
        PropertyKey::StaticIdentifier(identifier) => Some(identifier.name.to_string()),
        PropertyKey::StringLiteral(literal) => Some(literal.value.to_string()),
        _ => None,
    }
}

/// The value of a string literal or a template without substitutions.
fn static_string(expression: &Expression<'_>) -> Option<String> {
    match expression {
        Expression::StringLiteral(literal) => Some(literal.value.to_string()),
        Expression::TemplateLiteral(template) if template.expressions.is_empty() => {
            Some(template.quasis.first()?.value.cooked?.to_string())
        }
        Expression::ParenthesizedExpression(inner) => static_string(&inner.expression),
        _ => None,
    }
}

fn collect_static_strings<'a>(
    expression: &Expression<'a>,
    resolve_constant: &dyn Fn(&oxc_ast::ast::IdentifierReference<'a>) -> Option<String>,
    values: &mut Vec<String>,
) {
    match expression {
        Expression::ArrayExpression(array) => {
            for element in &array.elements {
                if let Some(element) = element.as_expression() {
                    collect_static_strings(element, resolve_constant, values);
                }
            }
        }
        Expression::TemplateLiteral(template) => {
            for quasi in &template.quasis {
                if let Some(cooked) = quasi.value.cooked {
                    values.push(cooked.to_string());
                }
            }
            for inner in &template.expressions {
                collect_static_strings(inner, resolve_constant, values);
            }
        }
        Expression::BinaryExpression(binary) => {
            collect_static_strings(&binary.left, resolve_constant, values);
            collect_static_strings(&binary.right, resolve_constant, values);
        }
        // `bcc: process.env.BCC || 'x@evil.example'` still hard-codes the fallback.
        Expression::LogicalExpression(logical) => {
            collect_static_strings(&logical.left, resolve_constant, values);
            collect_static_strings(&logical.right, resolve_constant, values);
        }
        Expression::ConditionalExpression(conditional) => {
            collect_static_strings(&conditional.consequent, resolve_constant, values);
            collect_static_strings(&conditional.alternate, resolve_constant, values);
        }
        Expression::Identifier(identifier) => values.extend(resolve_constant(identifier)),
        // SendGrid: `bcc: [{ email: '…', name: '…' }]`.
        Expression::ObjectExpression(object) => {
            for property in &object.properties {
                if let oxc_ast::ast::ObjectPropertyKind::ObjectProperty(property) = property {
                    collect_static_strings(&property.value, resolve_constant, values);
                }
            }
        }
        other => values.extend(static_string(other)),
    }
}

/// Joins folded strings, keeping the value only while it is short; the length saturates.
fn concatenate(parts: impl IntoIterator<Item = StringConstant>) -> StringConstant {
    let mut joined = StringConstant { value: Some(String::new()), length: 0 };
    for part in parts {
        joined.length = joined.length.saturating_add(part.length);
        joined.value = match (joined.value, part.value) {
            (Some(mut value), Some(part)) if joined.length <= MAX_KEPT_CONSTANT_BYTES => {
                value.push_str(&part);
                Some(value)
            }
            _ => None,
        };
    }
    joined
}

/// For `${data}.attacker.com` or `data + '.attacker.com'`: the fixed domain, when the
/// name is built at runtime under it.
fn built_name_under_fixed_domain(expression: &Expression<'_>) -> Option<String> {
    let suffix = match expression {
        Expression::TemplateLiteral(template) if !template.expressions.is_empty() => {
            template.quasis.last()?.value.cooked?.to_string()
        }
        Expression::BinaryExpression(binary) => static_string(&binary.right)?,
        _ => return None,
    };
    let domain = suffix.trim_start_matches('.');
    let looks_like_domain = suffix.starts_with('.')
        && domain.contains('.')
        && domain.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'-');
    looks_like_domain.then(|| domain.to_owned())
}

#[cfg(test)]
mod tests;
