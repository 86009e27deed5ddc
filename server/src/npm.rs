//! npm's domain values, parsed at the edge: package names, versions, version specs,
//! tarball file names and Subresource Integrity strings. Anything that gets past these constructors
//! is safe to use in sled keys, file paths and URLs.

use std::fmt;

use base64::Engine as _;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// npm's limit on the length of a package name.
const MAX_NAME_LENGTH: usize = 214;
/// Generous limits for the other path components; npm has none, but we need some.
const MAX_VERSION_SPEC_LENGTH: usize = 256;
const MAX_TARBALL_FILE_LENGTH: usize = 300;

/// A validated npm package name: `name` or `@scope/name`.
///
/// Invariant: each part is non-empty, URL-safe (the characters npm has ever accepted,
/// including the uppercase of legacy names), does not start with `.` or `_`, and the
/// whole is at most 214 bytes. So the name contains no `/` but the scope separator, no
/// `..`, no `%`, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageName(String);

/// Why a name, version or file name was refused. The message quotes the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

impl PackageName {
    /// Parses a name as it appears in a packument or, decoded, in a URL.
    pub fn parse(text: &str) -> Result<PackageName, InvalidInput> {
        let invalid = |why: &str| InvalidInput(format!("invalid package name {}: {why}", quote(text)));
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        if text.len() > MAX_NAME_LENGTH {
            return Err(invalid("it is longer than 214 characters"));
        }
        let (scope, bare) = match text.strip_prefix('@') {
            Some(rest) => match rest.split_once('/') {
                Some((scope, bare)) => (Some(scope), bare),
                None => return Err(invalid("a scoped name must look like @scope/name")),
            },
            None => (None, text),
        };
        for part in scope.into_iter().chain([bare]) {
            if part.is_empty() {
                return Err(invalid("a part of the name is empty"));
            }
            if part.starts_with('.') || part.starts_with('_') {
                return Err(invalid("a name cannot start with a period or an underscore"));
            }
            if let Some(bad) = part.chars().find(|&c| !is_name_char(c)) {
                return Err(invalid(&format!("the character {bad:?} is not allowed")));
            }
        }
        if scope.is_none() && matches!(bare, "node_modules" | "favicon.ico") {
            return Err(invalid("that name is reserved"));
        }
        Ok(PackageName(text.to_owned()))
    }

    /// The name as npm writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the scope (`name` for both `name` and `@scope/name`).
    pub fn bare(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// True for `@scope/name`.
    pub fn is_scoped(&self) -> bool {
        self.0.starts_with('@')
    }

    /// The name as a single URL path segment, the way npm clients request it upstream
    /// (`@scope%2fname`).
    pub fn url_segment(&self) -> String {
        self.0.replacen('/', "%2f", 1)
    }

    /// The conventional tarball file name for a version: `name-1.2.3.tgz`.
    pub fn tarball_file_name(&self, version: &str) -> String {
        format!("{}-{version}.tgz", self.bare())
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Characters `encodeURIComponent` leaves alone, which is what npm has always required
/// of a name part (new names are lowercase too, but legacy names are not).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '!' | '\'' | '(' | ')' | '*')
}

/// node-semver's `MAX_LENGTH`: longer version strings are never valid.
const MAX_VERSION_LENGTH: usize = 256;

/// node-semver's limit on a numeric part (`Number.MAX_SAFE_INTEGER`).
const MAX_VERSION_NUMBER: u64 = (1 << 53) - 1;

/// A version string from an upstream packument, valid by npm's semver rules.
///
/// Invariant: exactly what node-semver's strict `valid()` accepts and returns unchanged:
/// `MAJOR.MINOR.PATCH` of ASCII digits without leading zeros (each at most 2^53 - 1),
/// then optionally `-` and dot-separated prerelease identifiers, then optionally `+` and
/// dot-separated build identifiers; identifiers are non-empty `[0-9A-Za-z-]`, and a
/// numeric prerelease identifier has no leading zero; at most 256 bytes. A string that
/// `valid()` would have to normalise (`v1.0.0`, `=1.0.0`, ` 1.0.0 `) is refused: it is a
/// key clients request by, so it must be the canonical form. So a version contains no
/// whitespace, no control character, no `/`, no `%` and nothing outside ASCII.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(String);

impl Version {
    /// Parses a version as it appears as a key of a packument's `versions`.
    pub fn parse(text: &str) -> Result<Version, InvalidInput> {
        let invalid = |why: &str| InvalidInput(format!("invalid version {}: {why}", quote(text)));
        if text.len() > MAX_VERSION_LENGTH {
            return Err(invalid("it is longer than 256 characters"));
        }
        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) => (rest, Some(build)),
            None => (text, None),
        };
        let (core, prerelease) = match rest.split_once('-') {
            Some((core, prerelease)) => (core, Some(prerelease)),
            None => (rest, None),
        };
        let numbers: Vec<&str> = core.split('.').collect();
        if numbers.len() != 3 {
            return Err(invalid("it is not MAJOR.MINOR.PATCH"));
        }
        for number in numbers {
            check_version_number(number).map_err(|why| invalid(&why))?;
        }
        if let Some(prerelease) = prerelease {
            for identifier in prerelease.split('.') {
                check_identifier(identifier, "prerelease").map_err(|why| invalid(&why))?;
                // Numeric, so compared as a number: no leading zero. node-semver puts
                // no bound on its size (a long one compares as text), so neither do we.
                if identifier.len() > 1 && identifier.starts_with('0') && identifier.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(invalid(&format!("the number {identifier} has a leading zero")));
                }
            }
        }
        if let Some(build) = build {
            for identifier in build.split('.') {
                check_identifier(identifier, "build").map_err(|why| invalid(&why))?;
            }
        }
        Ok(Version(text.to_owned()))
    }

    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// A numeric part: ASCII digits, no leading zero, at most 2^53 - 1.
fn check_version_number(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("a number is missing".into());
    }
    if let Some(bad) = text.chars().find(|c| !c.is_ascii_digit()) {
        return Err(format!("the character {bad:?} is not an ASCII digit"));
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(format!("the number {text} has a leading zero"));
    }
    match text.parse::<u64>() {
        Ok(number) if number <= MAX_VERSION_NUMBER => Ok(()),
        _ => Err(format!("the number {text} is larger than 2^53 - 1")),
    }
}

/// A prerelease or build identifier: non-empty `[0-9A-Za-z-]`.
fn check_identifier(text: &str, kind: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("a {kind} identifier is empty"));
    }
    match text.chars().find(|&c| !(c.is_ascii_alphanumeric() || c == '-')) {
        Some(bad) => Err(format!("the character {bad:?} is not allowed in a {kind} identifier")),
        None => Ok(()),
    }
}

/// The part of `/name/{spec}`: a version such as `1.2.3` or a dist-tag such as `latest`.
///
/// Invariant: non-empty, at most 256 bytes, only characters valid in semver versions and
/// dist-tags (no `/`, no `%`, no control characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSpec(String);

impl VersionSpec {
    /// Parses the last path segment of a version-manifest request.
    pub fn parse(text: &str) -> Result<VersionSpec, InvalidInput> {
        let valid = !text.is_empty()
            && text.len() <= MAX_VERSION_SPEC_LENGTH
            && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '+' | '~'));
        if valid {
            Ok(VersionSpec(text.to_owned()))
        } else {
            Err(InvalidInput(format!("invalid version or dist-tag {}", quote(text))))
        }
    }

    /// The spec as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tarball file name from a URL: `name-1.2.3.tgz`.
///
/// Invariant: ends with `.tgz`, at most 300 bytes, no path separator, does not start
/// with `.`, only characters that appear in npm file names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TarballFileName(String);

impl TarballFileName {
    /// Parses the file-name segment of a tarball URL.
    pub fn parse(text: &str) -> Result<TarballFileName, InvalidInput> {
        let valid = text.len() > 4
            && text.len() <= MAX_TARBALL_FILE_LENGTH
            && text.ends_with(".tgz")
            && !text.starts_with('.')
            && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '+' | '~'));
        if valid {
            Ok(TarballFileName(text.to_owned()))
        } else {
            Err(InvalidInput(format!("invalid tarball file name {}", quote(text))))
        }
    }

    /// The file name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Quotes untrusted text for an error message, truncated so a 10 MB name cannot make a
/// 10 MB error.
pub fn quote(text: &str) -> String {
    const MAX: usize = 80;
    if text.len() <= MAX {
        format!("{text:?}")
    } else {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{:?}…", &text[..end])
    }
}

/// A hash algorithm that Subresource Integrity strings use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashAlgorithm {
    /// Legacy `shasum`; only trusted when nothing stronger is declared.
    Sha1,
    /// `sha256-…`.
    Sha256,
    /// `sha384-…`.
    Sha384,
    /// `sha512-…`, what npm has used since 2017.
    Sha512,
}

/// The expected hash of a tarball, from `dist.integrity` (or `dist.shasum`).
///
/// Invariant: `digest` has the length of `algorithm`'s output, and `algorithm` is the
/// strongest one the packument declared: a weaker hash listed beside a stronger one is
/// ignored, so an attacker cannot pick the algorithm.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Integrity {
    algorithm: HashAlgorithm,
    digest: Vec<u8>,
}

impl Integrity {
    /// Parses `dist.integrity` (one or more space-separated `algo-base64` entries) and
    /// falls back to `dist.shasum` (hex sha1) when there is no integrity string.
    pub fn from_dist(integrity: Option<&str>, shasum: Option<&str>) -> Result<Integrity, InvalidInput> {
        if let Some(text) = integrity {
            let mut best: Option<Integrity> = None;
            for entry in text.split_ascii_whitespace() {
                let Some((algorithm_name, rest)) = entry.split_once('-') else { continue };
                let algorithm = match algorithm_name {
                    "sha512" => HashAlgorithm::Sha512,
                    "sha384" => HashAlgorithm::Sha384,
                    "sha256" => HashAlgorithm::Sha256,
                    "sha1" => HashAlgorithm::Sha1,
                    _ => continue,
                };
                // SRI allows `?options` after the digest.
                let encoded = rest.split('?').next().unwrap_or(rest);
                let digest = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| InvalidInput(format!("invalid integrity {}", quote(text))))?;
                let candidate = Integrity::new(algorithm, digest)
                    .ok_or_else(|| InvalidInput(format!("invalid integrity {}", quote(text))))?;
                if best.as_ref().is_none_or(|current| candidate.algorithm > current.algorithm) {
                    best = Some(candidate);
                }
            }
            if let Some(best) = best {
                return Ok(best);
            }
        }
        if let Some(hex_text) = shasum {
            let digest = hex::decode(hex_text.trim())
                .map_err(|_| InvalidInput(format!("invalid shasum {}", quote(hex_text))))?;
            return Integrity::new(HashAlgorithm::Sha1, digest)
                .ok_or_else(|| InvalidInput(format!("invalid shasum {}", quote(hex_text))));
        }
        Err(InvalidInput("no dist.integrity or dist.shasum".into()))
    }

    fn new(algorithm: HashAlgorithm, digest: Vec<u8>) -> Option<Integrity> {
        let expected = match algorithm {
            HashAlgorithm::Sha1 => 20,
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        };
        (digest.len() == expected).then_some(Integrity { algorithm, digest })
    }

    /// The algorithm that must match.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The sha512 digest in hex, when that is the declared algorithm: the name of the
    /// blob file that holds these bytes.
    pub fn sha512_hex(&self) -> Option<String> {
        (self.algorithm == HashAlgorithm::Sha512).then(|| hex::encode(&self.digest))
    }

    /// True when `digests` (computed over the downloaded bytes) match.
    pub fn matches(&self, digests: &Digests) -> bool {
        let actual: &[u8] = match self.algorithm {
            HashAlgorithm::Sha1 => &digests.sha1,
            HashAlgorithm::Sha256 => &digests.sha256,
            HashAlgorithm::Sha384 => &digests.sha384,
            HashAlgorithm::Sha512 => &digests.sha512,
        };
        // Not a secret: integrity values are public, so a plain comparison is fine.
        actual == self.digest.as_slice()
    }
}

impl fmt::Display for Integrity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.algorithm {
            HashAlgorithm::Sha1 => "sha1",
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        };
        write!(formatter, "{name}-{}", base64::engine::general_purpose::STANDARD.encode(&self.digest))
    }
}

/// Hashes computed while streaming a download, so any declared algorithm can be checked.
#[derive(Default)]
pub struct Hasher {
    sha1: Sha1,
    sha256: Sha256,
    sha384: Sha384,
    sha512: Sha512,
    length: u64,
}

/// The finished digests of a [`Hasher`].
#[derive(Debug, Clone)]
pub struct Digests {
    /// SHA-1.
    pub sha1: Vec<u8>,
    /// SHA-256.
    pub sha256: Vec<u8>,
    /// SHA-384.
    pub sha384: Vec<u8>,
    /// SHA-512.
    pub sha512: Vec<u8>,
    /// Bytes hashed.
    pub length: u64,
}

impl Hasher {
    /// Feeds a chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.sha1.update(chunk);
        self.sha256.update(chunk);
        self.sha384.update(chunk);
        self.sha512.update(chunk);
        self.length += chunk.len() as u64;
    }

    /// Finishes all digests.
    pub fn finish(self) -> Digests {
        Digests {
            sha1: self.sha1.finalize().to_vec(),
            sha256: self.sha256.finalize().to_vec(),
            sha384: self.sha384.finalize().to_vec(),
            sha512: self.sha512.finalize().to_vec(),
            length: self.length,
        }
    }
}

impl Digests {
    /// The sha512 in hex: the content address of the bytes.
    pub fn sha512_hex(&self) -> String {
        hex::encode(&self.sha512)
    }

    /// The sha512 as an SRI string.
    pub fn sha512_integrity(&self) -> String {
        format!("sha512-{}", base64::engine::general_purpose::STANDARD.encode(&self.sha512))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_npm_rules_including_legacy_uppercase() {
        for good in ["express", "@types/node", "JSONStream", "lodash.get", "@babel/core", "a", "is-number"] {
            assert_eq!(PackageName::parse(good).unwrap().as_str(), good);
        }
        for (bad, why) in [
            ("", "invalid package name \"\": it is empty"),
            (
                "../etc/passwd",
                "invalid package name \"../etc/passwd\": a name cannot start with a period or an underscore",
            ),
            ("a/../b", "invalid package name \"a/../b\": the character '/' is not allowed"),
            ("@scope", "invalid package name \"@scope\": a scoped name must look like @scope/name"),
            ("@/x", "invalid package name \"@/x\": a part of the name is empty"),
            ("@s/x/y", "invalid package name \"@s/x/y\": the character '/' is not allowed"),
            ("a%2fb", "invalid package name \"a%2fb\": the character '%' is not allowed"),
            ("bad\u{0}name", "invalid package name \"bad\\0name\": the character '\\0' is not allowed"),
            ("with space", "invalid package name \"with space\": the character ' ' is not allowed"),
            ("node_modules", "invalid package name \"node_modules\": that name is reserved"),
        ] {
            assert_eq!(PackageName::parse(bad).unwrap_err().to_string(), why);
        }
        let long = "a".repeat(215);
        assert!(PackageName::parse(&long).unwrap_err().0.contains("longer than 214"));
    }

    #[test]
    fn scoped_names_know_their_parts() {
        let name = PackageName::parse("@scope/pkg").unwrap();
        assert!(name.is_scoped());
        assert_eq!(name.bare(), "pkg");
        assert_eq!(name.url_segment(), "@scope%2fpkg");
        assert_eq!(name.tarball_file_name("1.0.0"), "pkg-1.0.0.tgz");
    }

    #[test]
    fn versions_follow_node_semver_strict_valid() {
        for good in [
            "0.0.0",
            "1.2.3",
            "10.20.30",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-0.3.7",
            "1.0.0-x.7.z.92",
            "1.0.0-x-y-z.--",
            "1.0.0-alpha+001",
            "1.0.0+20130313144700",
            "1.0.0-beta+exp.sha.5114f85",
            "1.0.0+21AF26D3----117B344092BD",
            "1.0.0-0a",
            "9007199254740991.0.0",
            "0.0.0-20240101123456789",
            "1.0.0-rc-1+build-01.002",
        ] {
            assert_eq!(Version::parse(good).unwrap().as_str(), good);
        }
        for (bad, why) in [
            (" 1.0.0 ", "invalid version \" 1.0.0 \": the character ' ' is not an ASCII digit"),
            ("1.0.0\u{0}x", "invalid version \"1.0.0\\0x\": the character '\\0' is not an ASCII digit"),
            ("<script>alert(1)</script>", "invalid version \"<script>alert(1)</script>\": it is not MAJOR.MINOR.PATCH"),
            ("１.０.０", "invalid version \"１.０.０\": the character '１' is not an ASCII digit"),
            ("1.0.0/../../x", "invalid version \"1.0.0/../../x\": it is not MAJOR.MINOR.PATCH"),
            ("1.0.0/x", "invalid version \"1.0.0/x\": the character '/' is not an ASCII digit"),
            (
                "1.0.0-a/../../x",
                "invalid version \"1.0.0-a/../../x\": the character '/' is not allowed in a prerelease identifier",
            ),
            ("", "invalid version \"\": it is not MAJOR.MINOR.PATCH"),
            ("1.0", "invalid version \"1.0\": it is not MAJOR.MINOR.PATCH"),
            ("1.0.0.0", "invalid version \"1.0.0.0\": it is not MAJOR.MINOR.PATCH"),
            ("v1.0.0", "invalid version \"v1.0.0\": the character 'v' is not an ASCII digit"),
            ("=1.0.0", "invalid version \"=1.0.0\": the character '=' is not an ASCII digit"),
            ("01.0.0", "invalid version \"01.0.0\": the number 01 has a leading zero"),
            ("1.00.0", "invalid version \"1.00.0\": the number 00 has a leading zero"),
            ("1.0.0-01", "invalid version \"1.0.0-01\": the number 01 has a leading zero"),
            ("1.0.0-rc.00", "invalid version \"1.0.0-rc.00\": the number 00 has a leading zero"),
            ("1..0", "invalid version \"1..0\": a number is missing"),
            ("1.0.0-", "invalid version \"1.0.0-\": a prerelease identifier is empty"),
            ("1.0.0-a..b", "invalid version \"1.0.0-a..b\": a prerelease identifier is empty"),
            ("1.0.0+", "invalid version \"1.0.0+\": a build identifier is empty"),
            ("1.0.0+a+b", "invalid version \"1.0.0+a+b\": the character '+' is not allowed in a build identifier"),
            ("1.0.0-é", "invalid version \"1.0.0-é\": the character 'é' is not allowed in a prerelease identifier"),
            (
                "9007199254740992.0.0",
                "invalid version \"9007199254740992.0.0\": the number 9007199254740992 is larger than 2^53 - 1",
            ),
        ] {
            assert_eq!(Version::parse(bad).unwrap_err().to_string(), why, "{bad:?}");
        }
        let longest = format!("1.0.0-{}", "a".repeat(250));
        assert!(Version::parse(&longest).is_ok());
        let too_long = format!("1.0.0-{}", "a".repeat(251));
        assert!(Version::parse(&too_long).unwrap_err().0.contains("longer than 256"));
    }

    #[test]
    fn tarball_names_and_specs_reject_traversal() {
        assert!(TarballFileName::parse("express-4.18.2.tgz").is_ok());
        assert!(TarballFileName::parse("../x.tgz").is_err());
        assert!(TarballFileName::parse("a/b.tgz").is_err());
        assert!(TarballFileName::parse(".tgz").is_err());
        assert!(TarballFileName::parse("x.tar").is_err());
        assert!(VersionSpec::parse("1.0.0-beta.1+build").is_ok());
        assert!(VersionSpec::parse("latest").is_ok());
        assert!(VersionSpec::parse("..%2f").is_err());
        assert!(VersionSpec::parse("").is_err());
    }

    #[test]
    fn integrity_prefers_the_strongest_algorithm() {
        let mut hasher = Hasher::default();
        hasher.update(b"hello");
        let digests = hasher.finish();
        let sha512 = digests.sha512_integrity();
        let sha1_hex = hex::encode(&digests.sha1);
        let integrity = Integrity::from_dist(Some(&sha512), Some(&sha1_hex)).unwrap();
        assert_eq!(integrity.algorithm(), HashAlgorithm::Sha512);
        assert!(integrity.matches(&digests));
        assert_eq!(integrity.to_string(), sha512);
        // A bogus sha1 beside a strong sha512 does not weaken the check.
        let wrong_sha1 = format!("sha1-{}", base64::engine::general_purpose::STANDARD.encode([0u8; 20]));
        let mixed = Integrity::from_dist(Some(&format!("{wrong_sha1} {sha512}")), None).unwrap();
        assert_eq!(mixed.algorithm(), HashAlgorithm::Sha512);
        // Only a shasum: sha1 is used.
        let legacy = Integrity::from_dist(None, Some(&sha1_hex)).unwrap();
        assert_eq!(legacy.algorithm(), HashAlgorithm::Sha1);
        assert!(legacy.matches(&digests));
        let mut other = Hasher::default();
        other.update(b"hellO");
        assert!(!legacy.matches(&other.finish()));
        assert!(Integrity::from_dist(Some("sha512-!!!"), None).is_err());
        assert!(Integrity::from_dist(None, None).is_err());
    }

    #[test]
    fn quoting_truncates_hostile_input() {
        let quoted = quote(&"x".repeat(1000));
        assert!(quoted.len() < 100);
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }
}
