//! What a piece of text says, independent of where it came from: URLs and their hosts,
//! exfiltration services, credential paths, email addresses, wallet addresses, shell
//! download patterns. Used on string literals, package.json scripts and shell scripts.
//!
//! Everything here is plain byte scanning without regular expressions: these run on
//! every string literal of every file, so they must be cheap.

use crate::Severity;

/// A URL found in text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FoundUrl {
    /// The URL as written, up to the first character that cannot be part of one.
    pub(crate) url: String,
    /// Lowercased host without port or credentials.
    pub(crate) host: String,
    /// Byte offset of the URL in the scanned text.
    pub(crate) offset: usize,
}

/// URLs in `text` (http, https, ws, wss, ftp).
pub(crate) fn find_urls(text: &str) -> Vec<FoundUrl> {
    let mut urls = Vec::new();
    let bytes = text.as_bytes();
    let mut search_from = 0;
    while let Some(relative) = text[search_from..].find("://") {
        let separator = search_from + relative;
        search_from = separator + 3;
        let mut scheme_start = separator;
        while scheme_start > 0 && bytes[scheme_start - 1].is_ascii_alphabetic() {
            scheme_start -= 1;
        }
        let scheme = text[scheme_start..separator].to_ascii_lowercase();
        if !matches!(scheme.as_str(), "http" | "https" | "ws" | "wss" | "ftp") {
            continue;
        }
        let mut end = separator + 3;
        while end < bytes.len() && is_url_byte(bytes[end]) {
            end += 1;
        }
        let url = &text[scheme_start..end];
        if let Some(host) = url_host(url) {
            urls.push(FoundUrl { url: url.to_owned(), host, offset: scheme_start });
        }
    }
    urls
}

fn is_url_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&*+,;=%".contains(&byte)
}

/// The lowercased host of a URL (also `git+https://…`, `git@github.com:…`), if any.
pub(crate) fn url_host(url: &str) -> Option<String> {
    let after_scheme = match url.find("://") {
        Some(index) => &url[index + 3..],
        None => url.strip_prefix("git@")?,
    };
    let authority = after_scheme.split(['/', '?', '#']).next()?;
    let host_and_port = authority.rsplit('@').next()?;
    let host = if let Some(rest) = host_and_port.strip_prefix('[') {
        rest.split(']').next()?
    } else {
        host_and_port.split(':').next()?
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let plausible = !host.is_empty()
        && host.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-.:".contains(&byte))
        && (host.contains('.') || host.contains(':') || host == "localhost");
    plausible.then_some(host)
}

/// The last two labels of a host (`api.posthog.com` → `posthog.com`), good enough to
/// tell "the package's own service" from "somewhere else".
pub(crate) fn registrable_domain(host: &str) -> &str {
    let mut dots = host.rmatch_indices('.');
    let _last = dots.next();
    match dots.next() {
        Some((index, _)) => &host[index + 1..],
        None => host,
    }
}

/// Parses a dotted IPv4 address.
pub(crate) fn parse_ipv4(text: &str) -> Option<[u8; 4]> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    parts.next().is_none().then_some(octets)
}

/// True for an IPv4 address on the public internet (not loopback, private, link-local,
/// multicast, documentation or unspecified).
pub(crate) fn is_public_ipv4(octets: [u8; 4]) -> bool {
    !matches!(
        octets,
        [0, ..]
            | [10, ..]
            | [127, ..]
            | [169, 254, ..]
            | [172, 16..=31, ..]
            | [100, 64..=127, ..]
            | [192, 168, ..]
            | [192, 0, 2, _]
            | [198, 51, 100, _]
            | [203, 0, 113, _]
            | [224..=255, ..]
    )
}

/// A place stolen data is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ServiceKind {
    /// Webhooks, request catchers, paste sites and file drops: no legitimate library
    /// hard-codes one.
    Exfiltration,
    /// Tunnels to a developer's machine: legitimate in dev tools, odd in libraries.
    Tunnel,
}

/// What kind of service a URL points at, and a name for messages.
pub(crate) fn classify_service(url: &str, host: &str) -> Option<(ServiceKind, &'static str)> {
    let lower = url.to_ascii_lowercase();
    let path_after_host = lower.split_once(host).map_or("", |(_, rest)| rest);
    let starts_with_digit = |prefix: &str| {
        path_after_host
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.bytes().next().is_some_and(|byte| byte.is_ascii_digit()))
    };
    // Webhook URLs with a concrete id/token: the API base alone is what SDKs contain.
    if matches!(host, "discord.com" | "discordapp.com" | "ptb.discord.com" | "canary.discord.com")
        && starts_with_digit("/api/webhooks/")
    {
        return Some((ServiceKind::Exfiltration, "a Discord webhook"));
    }
    if host == "hooks.slack.com" && path_after_host.starts_with("/services/t") {
        return Some((ServiceKind::Exfiltration, "a Slack webhook"));
    }
    if host == "api.telegram.org" && starts_with_digit("/bot") {
        return Some((ServiceKind::Exfiltration, "a Telegram bot"));
    }
    const EXFILTRATION_HOSTS: &[(&str, &str)] = &[
        ("webhook.site", "webhook.site, a request catcher"),
        ("pipedream.net", "a Pipedream request catcher"),
        ("requestbin.net", "a RequestBin request catcher"),
        ("requestbin.com", "a RequestBin request catcher"),
        ("requestcatcher.com", "a request catcher"),
        ("beeceptor.com", "a Beeceptor request catcher"),
        ("hookbin.com", "a Hookbin request catcher"),
        ("interact.sh", "an interactsh out-of-band server"),
        ("oast.fun", "an interactsh out-of-band server"),
        ("oast.me", "an interactsh out-of-band server"),
        ("oast.pro", "an interactsh out-of-band server"),
        ("oast.live", "an interactsh out-of-band server"),
        ("oast.site", "an interactsh out-of-band server"),
        ("oast.online", "an interactsh out-of-band server"),
        ("oastify.com", "a Burp Collaborator server"),
        ("burpcollaborator.net", "a Burp Collaborator server"),
        ("canarytokens.com", "a canary token server"),
        ("dnslog.cn", "a DNS logging service"),
        ("ceye.io", "a DNS logging service"),
        ("pastebin.com", "Pastebin, a paste site"),
        ("paste.ee", "a paste site"),
        ("hastebin.com", "a paste site"),
        ("rentry.co", "a paste site"),
        ("ghostbin.com", "a paste site"),
        ("transfer.sh", "a file drop"),
        ("file.io", "a file drop"),
        ("0x0.st", "a file drop"),
        ("temp.sh", "a file drop"),
        ("bashupload.com", "a file drop"),
    ];
    const TUNNEL_HOSTS: &[(&str, &str)] = &[
        ("ngrok.io", "an ngrok tunnel"),
        ("ngrok-free.app", "an ngrok tunnel"),
        ("ngrok.app", "an ngrok tunnel"),
        ("trycloudflare.com", "a Cloudflare quick tunnel"),
        ("serveo.net", "a serveo tunnel"),
        ("loca.lt", "a localtunnel tunnel"),
        ("localtunnel.me", "a localtunnel tunnel"),
        ("localhost.run", "a localhost.run tunnel"),
        ("pagekite.me", "a PageKite tunnel"),
    ];
    let matches_domain =
        |domain: &str| host == domain || host.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'));
    for (domain, name) in EXFILTRATION_HOSTS {
        if matches_domain(domain) {
            return Some((ServiceKind::Exfiltration, name));
        }
    }
    for (domain, name) in TUNNEL_HOSTS {
        if matches_domain(domain) {
            return Some((ServiceKind::Tunnel, name));
        }
    }
    None
}

/// Hosts that serve packages and release binaries for everyone; downloads from them at
/// install time are how esbuild, sharp, puppeteer and friends get platform binaries.
pub(crate) fn is_distribution_host(host: &str) -> bool {
    const HOSTS: &[&str] = &[
        "registry.npmjs.org",
        "registry.yarnpkg.com",
        "registry.npmmirror.com",
        "npmmirror.com",
        "github.com",
        "objects.githubusercontent.com",
        "codeload.github.com",
        "api.github.com",
        "nodejs.org",
        "storage.googleapis.com",
        "cdn.jsdelivr.net",
        "unpkg.com",
        "dl.google.com",
        "download.cypress.io",
        "cdn.cypress.io",
        "playwright.azureedge.net",
        "cdn.playwright.dev",
        "playwright.download.prss.microsoft.com",
        "binaries.prisma.sh",
        "downloads.sentry-cdn.com",
        "electronjs.org",
        "nodejs.org",
        "sharp.pixelplumbing.com",
    ];
    HOSTS.contains(&host)
}

/// A kind of credential a path points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CredentialKind {
    /// ~/.npmrc: also read by legitimate tooling for registry settings.
    NpmConfig,
    /// SSH private keys.
    SshKeys,
    /// AWS, GCP, Azure, Kubernetes, Docker, git credentials.
    CloudCredentials,
    /// /etc/passwd, /etc/shadow.
    SystemAccounts,
    /// Browser profile databases: saved passwords, cookies.
    BrowserProfiles,
    /// Cryptocurrency wallets and wallet extensions.
    Wallets,
    /// Discord and Telegram session storage, browser local storage, token patterns.
    AppTokens,
}

impl CredentialKind {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            CredentialKind::NpmConfig => "npm credentials",
            CredentialKind::SshKeys => "SSH keys",
            CredentialKind::CloudCredentials => "cloud or git credentials",
            CredentialKind::SystemAccounts => "system account files",
            CredentialKind::BrowserProfiles => "browser profile data",
            CredentialKind::Wallets => "cryptocurrency wallets",
            CredentialKind::AppTokens => "Discord, Telegram or browser session tokens",
        }
    }

    /// Naming it alone is worth a look (medium) rather than context only (low).
    pub(crate) fn base_severity(self) -> Severity {
        match self {
            CredentialKind::NpmConfig => Severity::Low,
            CredentialKind::CloudCredentials => Severity::Low,
            _ => Severity::Medium,
        }
    }
}

/// The credential a lowercased string refers to, if any.
pub(crate) fn classify_credential_path(lower: &str) -> Option<CredentialKind> {
    if lower.len() > 300 || lower.len() < 5 {
        return None;
    }
    let normalised;
    let lower = if lower.contains('\\') {
        normalised = lower.replace('\\', "/");
        normalised.as_str()
    } else {
        lower
    };
    const PATTERNS: &[(&str, CredentialKind)] = &[
        (".ssh/id_", CredentialKind::SshKeys),
        (".ssh/", CredentialKind::SshKeys),
        ("id_rsa", CredentialKind::SshKeys),
        ("id_ed25519", CredentialKind::SshKeys),
        (".aws/credentials", CredentialKind::CloudCredentials),
        (".config/gcloud", CredentialKind::CloudCredentials),
        ("application_default_credentials.json", CredentialKind::CloudCredentials),
        (".azure/", CredentialKind::CloudCredentials),
        (".kube/config", CredentialKind::CloudCredentials),
        (".docker/config.json", CredentialKind::CloudCredentials),
        (".git-credentials", CredentialKind::CloudCredentials),
        ("/etc/passwd", CredentialKind::SystemAccounts),
        ("/etc/shadow", CredentialKind::SystemAccounts),
        ("google/chrome/user data", CredentialKind::BrowserProfiles),
        ("application support/google/chrome", CredentialKind::BrowserProfiles),
        ("brave-browser/user data", CredentialKind::BrowserProfiles),
        ("microsoft/edge/user data", CredentialKind::BrowserProfiles),
        (".mozilla/firefox", CredentialKind::BrowserProfiles),
        ("login data", CredentialKind::BrowserProfiles),
        ("logins.json", CredentialKind::BrowserProfiles),
        ("key4.db", CredentialKind::BrowserProfiles),
        ("cookies.sqlite", CredentialKind::BrowserProfiles),
        ("wallet.dat", CredentialKind::Wallets),
        ("exodus.wallet", CredentialKind::Wallets),
        (".electrum", CredentialKind::Wallets),
        ("atomic/local storage", CredentialKind::Wallets),
        ("local extension settings/nkbihfbeogaeaoehlefnkodbefgpgknn", CredentialKind::Wallets),
        ("nkbihfbeogaeaoehlefnkodbefgpgknn", CredentialKind::Wallets),
        ("bfnaelmomeimhlpmgjnjophhpkkoljpa", CredentialKind::Wallets),
        ("solana/id.json", CredentialKind::Wallets),
        ("ethereum/keystore", CredentialKind::Wallets),
        ("discord/local storage", CredentialKind::AppTokens),
        ("discordcanary", CredentialKind::AppTokens),
        ("discordptb", CredentialKind::AppTokens),
        ("local storage/leveldb", CredentialKind::AppTokens),
        ("telegram desktop/tdata", CredentialKind::AppTokens),
        // Regular expressions matching Discord tokens: `[\w-]{24}\.[\w-]{6}\.[\w-]{27}`, `mfa\.[\w-]{84}`.
        ("{24}\\.[\\w-]{6}", CredentialKind::AppTokens),
        ("mfa\\.[\\w-]{84}", CredentialKind::AppTokens),
        (".npmrc", CredentialKind::NpmConfig),
    ];
    PATTERNS.iter().find(|(pattern, _)| lower.contains(pattern)).map(|(_, kind)| *kind)
}

/// Environment variables that hold publishing or cloud credentials.
pub(crate) fn is_secret_env_name(name: &str) -> bool {
    matches!(
        name,
        "NPM_TOKEN"
            | "NODE_AUTH_TOKEN"
            | "NPM_CONFIG__AUTH"
            | "GITHUB_TOKEN"
            | "GH_TOKEN"
            | "GITLAB_TOKEN"
            | "CI_JOB_TOKEN"
            | "AWS_SECRET_ACCESS_KEY"
            | "AWS_SESSION_TOKEN"
            | "AZURE_CLIENT_SECRET"
            | "GOOGLE_APPLICATION_CREDENTIALS"
            | "CIRCLE_TOKEN"
            | "TRAVIS_TOKEN"
            | "SLACK_TOKEN"
            | "OPENAI_API_KEY"
            | "ANTHROPIC_API_KEY"
    )
}

/// An email address in text, with its byte offset.
pub(crate) fn find_emails(text: &str) -> Vec<(String, usize)> {
    let bytes = text.as_bytes();
    let mut emails = Vec::new();
    let is_local = |byte: u8| byte.is_ascii_alphanumeric() || b"._%+-".contains(&byte);
    let is_domain = |byte: u8| byte.is_ascii_alphanumeric() || b".-".contains(&byte);
    for (at, _) in text.match_indices('@') {
        let mut start = at;
        while start > 0 && is_local(bytes[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < bytes.len() && is_domain(bytes[end]) {
            end += 1;
        }
        let local = &text[start..at];
        let domain = text[at + 1..end].trim_end_matches(['.', '-']);
        let Some((_, top_level)) = domain.rsplit_once('.') else { continue };
        if local.is_empty()
            || local.starts_with('.')
            || top_level.len() < 2
            || !top_level.bytes().all(|byte| byte.is_ascii_alphabetic())
        {
            continue;
        }
        emails.push((format!("{local}@{domain}").to_ascii_lowercase(), start));
    }
    emails
}

/// Addresses at domains reserved for examples and tests, which are placeholders.
pub(crate) fn is_placeholder_email(email: &str) -> bool {
    let domain = email.rsplit('@').next().unwrap_or("");
    matches!(
        registrable_domain(domain),
        "example.com" | "example.org" | "example.net" | "test.com" | "domain.com" | "email.com" | "localhost"
    ) || domain.ends_with(".test")
        || domain.ends_with(".example")
        || domain.ends_with(".invalid")
        || domain.ends_with(".local")
}

/// Whether a whole string is a cryptocurrency address (Ethereum, Bitcoin, Tron).
pub(crate) fn is_wallet_address(text: &str) -> bool {
    let bytes = text.as_bytes();
    let base58 = |byte: &u8| byte.is_ascii_alphanumeric() && !b"0OIl".contains(byte);
    (bytes.len() == 42 && text.starts_with("0x") && bytes[2..].iter().all(u8::is_ascii_hexdigit))
        || ((42..=62).contains(&bytes.len())
            && text.starts_with("bc1")
            && bytes.iter().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit()))
        || ((26..=35).contains(&bytes.len())
            && (text.starts_with('1') || text.starts_with('3'))
            && bytes.iter().all(base58)
            && bytes.iter().any(u8::is_ascii_uppercase)
            && bytes.iter().any(u8::is_ascii_lowercase))
        || (bytes.len() == 34 && text.starts_with('T') && bytes.iter().all(base58))
}

/// What a shell command (an install script, an `exec` string, a line of a .sh file) does
/// that matters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ShellCommandTraits {
    /// What makes the command an attack whatever runs it: a reverse shell, a decoded
    /// script piped into a shell, wiping the home directory or the disk.
    pub(crate) attack: Option<ShellAttack>,
    /// Downloads with curl, wget, certutil, Invoke-WebRequest, bitsadmin.
    pub(crate) downloads: bool,
    /// Pipes into or evaluates with a shell or interpreter (`| sh`, `iex`, `bash -c`).
    pub(crate) pipes_to_shell: bool,
    /// Makes something executable or runs a just-written file.
    pub(crate) makes_executable: bool,
    /// Runs an encoded PowerShell command.
    pub(crate) encoded_powershell: bool,
    /// Asks a CLI for its stored credentials.
    pub(crate) reads_cli_credentials: bool,
    /// An AI coding CLI with its permission prompts turned off.
    pub(crate) ai_cli_unsafe: bool,
    /// `npm publish`.
    pub(crate) npm_publish: bool,
    /// Runs trufflehog or gitleaks.
    pub(crate) secret_scanner: bool,
    /// Powers the machine off (nx s1ngularity appended this to shell profiles).
    pub(crate) shutdown: bool,
}

impl ShellCommandTraits {
    pub(crate) fn of(command: &str) -> ShellCommandTraits {
        ShellCommandTraits::of_lowercase(&command.to_ascii_lowercase())
    }

    /// [`ShellCommandTraits::of`] for text already lowercased.
    pub(crate) fn of_lowercase(lower: &str) -> ShellCommandTraits {
        let has_word = |word: &str| {
            lower.match_indices(word).any(|(index, _)| {
                let before = lower[..index].chars().next_back();
                let after = lower[index + word.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
        };
        let downloads = has_word("curl")
            || has_word("wget")
            || lower.contains("certutil") && lower.contains("urlcache")
            || lower.contains("invoke-webrequest")
            || has_word("iwr")
            || lower.contains("downloadstring")
            || lower.contains("downloadfile")
            || has_word("bitsadmin");
        let pipes_to_shell =
            ["| sh", "|sh", "| bash", "|bash", "| zsh", "| node", "|node", "| python", "| iex", "|iex"]
                .iter()
                .any(|pattern| lower.contains(pattern))
                || lower.contains("iex(")
                || lower.contains("invoke-expression")
                || (lower.contains("bash -c") || lower.contains("sh -c")) && downloads;
        let attack = if lower.contains("/dev/tcp/")
            || lower.contains("/dev/udp/")
            || (has_word("nc") || has_word("ncat") || has_word("netcat"))
                && (lower.contains(" -e ") || lower.contains(" -c "))
            || (lower.contains("bash -i") || lower.contains("sh -i")) && lower.contains(">&")
        {
            Some(ShellAttack::ReverseShell)
        } else if (lower.contains("base64 -d") || lower.contains("base64 --decode")) && pipes_to_shell {
            Some(ShellAttack::DecodedScript)
        } else if [
            "rm -rf / ",
            "rm -rf /*",
            "rm -rf ~",
            "rm -rf $home",
            "rm -rf \"$home",
            "rm -rf ${home}",
            "rm -rf /home",
            "del /f /s /q c:\\",
            "format c:",
        ]
        .iter()
        .any(|pattern| lower.contains(pattern))
            || lower.ends_with("rm -rf /")
        {
            Some(ShellAttack::Destruction)
        } else {
            None
        };
        ShellCommandTraits {
            attack,
            downloads,
            pipes_to_shell,
            makes_executable: lower.contains("chmod +x") || lower.contains("chmod 7") || lower.contains("chmod 5"),
            encoded_powershell: lower.contains("powershell")
                && (lower.contains(" -enc") || lower.contains(" -e ") || lower.contains("-encodedcommand")),
            reads_cli_credentials: lower.contains("gh auth token")
                || lower.contains("npm token")
                || lower.contains("gcloud auth print-access-token")
                || lower.contains("az account get-access-token")
                || lower.contains("aws configure export-credentials"),
            ai_cli_unsafe: lower.contains("--dangerously-skip-permissions")
                || lower.contains("--yolo")
                || lower.contains("--trust-all-tools"),
            npm_publish: lower.contains("npm publish"),
            secret_scanner: has_word("trufflehog") || has_word("gitleaks"),
            shutdown: lower.contains("shutdown -h") || lower.contains("shutdown now") || lower.contains("halt -p"),
        }
    }

    /// Fetches something and runs it.
    pub(crate) fn downloads_and_runs(&self) -> bool {
        self.downloads && (self.pipes_to_shell || self.makes_executable) || self.encoded_powershell
    }
}

/// Shannon entropy in bits per byte.
pub(crate) fn shannon_entropy(text: &str) -> f64 {
    let mut counts = [0u32; 256];
    for byte in text.bytes() {
        counts[byte as usize] += 1;
    }
    let length = text.len() as f64;
    counts
        .iter()
        .filter(|count| **count > 0)
        .map(|count| {
            let probability = f64::from(*count) / length;
            -probability * probability.log2()
        })
        .sum()
}

/// Code points that hide code or data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HiddenCharacter {
    /// U+202A–U+202E, U+2066–U+2069: reorder how code is displayed.
    Bidi,
    /// Hangul fillers and similar: render as nothing but are valid identifier parts.
    InvisibleIdentifier,
    /// Variation selectors (U+FE00–U+FE0F, U+E0100–U+E01EF) and tag characters: carry
    /// arbitrary bytes invisibly (the 2025 "GlassWorm" technique).
    VariationSelector,
}

/// Classifies one character.
pub(crate) fn hidden_character(character: char) -> Option<HiddenCharacter> {
    match character {
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => Some(HiddenCharacter::Bidi),
        '\u{3164}' | '\u{115F}' | '\u{1160}' | '\u{FFA0}' => Some(HiddenCharacter::InvisibleIdentifier),
        '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}' | '\u{E0000}'..='\u{E007F}' => {
            Some(HiddenCharacter::VariationSelector)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts_are_lowercased_without_port_or_credentials() {
        assert_eq!(url_host("https://user:pw@API.Example.com:8443/x").as_deref(), Some("api.example.com"));
        assert_eq!(url_host("git+ssh://git@github.com/a/b.git").as_deref(), Some("github.com"));
        assert_eq!(url_host("git@github.com:a/b.git").as_deref(), Some("github.com"));
        assert_eq!(url_host("http://159.148.186.228/download").as_deref(), Some("159.148.186.228"));
        assert_eq!(url_host("https://${host}/x"), None);
    }

    #[test]
    fn services_need_a_concrete_webhook_not_an_api_base() {
        let classify = |url: &str| classify_service(url, &url_host(url).unwrap()).map(|(kind, _)| kind);
        assert_eq!(classify("https://discord.com/api/webhooks/123/abc"), Some(ServiceKind::Exfiltration));
        assert_eq!(classify("https://discord.com/api/v10"), None);
        assert_eq!(classify("https://webhook.site/bb8ca5f6"), Some(ServiceKind::Exfiltration));
        assert_eq!(classify("https://abc.ngrok-free.app/x"), Some(ServiceKind::Tunnel));
        assert_eq!(classify("https://notwebhook.site/x"), None);
    }

    #[test]
    fn emails_are_found_and_placeholders_recognised() {
        let emails = find_emails("Bcc: phan@giftshop.club, x@y");
        assert_eq!(emails, vec![("phan@giftshop.club".to_owned(), 5)]);
        assert!(is_placeholder_email("bar@example.com"));
        assert!(!is_placeholder_email("phan@giftshop.club"));
        assert!(find_emails("@babel/core").is_empty());
    }

    #[test]
    fn shell_traits() {
        assert!(ShellCommandTraits::of("curl -sL https://x.sh | bash").downloads_and_runs());
        assert!(!ShellCommandTraits::of("node-gyp rebuild").downloads);
        assert!(!ShellCommandTraits::of("node ./scripts/curly.js").downloads);
        assert!(ShellCommandTraits::of("gh auth token").reads_cli_credentials);
    }

    #[test]
    fn wallet_addresses() {
        assert!(is_wallet_address("0xFc4a4858bafef54D1b1d7697bfb5c52F4c166976"));
        assert!(is_wallet_address("1H13VnQJKtT4HjD5ZFKaaiZEetMbG7nDHx"));
        assert!(is_wallet_address("bc1qms4f8ys8c4z47h0q29nnmyekc9r74u5ypqw6wm"));
        assert!(!is_wallet_address("0x1234"));
        assert!(!is_wallet_address("1234567890123456789012345678"));
    }
}

/// A shell command that is an attack by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShellAttack {
    /// `bash -i >& /dev/tcp/…`, `nc -e /bin/sh …`: hands a shell to a remote host.
    ReverseShell,
    /// `echo … | base64 -d | sh`: runs a script hidden from readers.
    DecodedScript,
    /// `rm -rf ~`, `rm -rf /`: destroys the user's files.
    Destruction,
}

impl ShellAttack {
    pub(crate) fn rule(self) -> super::Rule {
        match self {
            ShellAttack::ReverseShell => super::Rule::ReverseShell,
            ShellAttack::DecodedScript => super::Rule::DecodeThenExecute,
            ShellAttack::Destruction => super::Rule::DestructiveCommand,
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            ShellAttack::ReverseShell => "opens a reverse shell (hands a shell on this machine to a remote host)",
            ShellAttack::DecodedScript => "decodes a hidden script and pipes it into a shell",
            ShellAttack::Destruction => "deletes the user's or the system's files",
        }
    }
}
