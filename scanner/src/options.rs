//! The limits a scan works within. Every limit exists because the input is hostile:
//! a tarball is attacker-controlled bytes, and a scan must finish in bounded time and
//! memory whatever they are.

/// Hard limits for reading and analysing one package. Exceeding a reading limit makes
/// the report [`Verdict::Unscannable`](crate::Verdict::Unscannable), which fails closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// Largest accepted `.tgz`. The biggest popular packages are ~60 MB compressed.
    pub max_compressed_bytes: u64,
    /// Largest total of decompressed tar bytes (headers included): the zip-bomb cap.
    pub max_uncompressed_bytes: u64,
    /// Most tar entries (files, directories, links and metadata headers).
    pub max_entries: u64,
    /// Largest single file.
    pub max_file_bytes: u64,
    /// Longest entry path, in bytes.
    pub max_path_bytes: usize,
    /// Deepest entry path, in components.
    pub max_path_depth: usize,
    /// Largest JavaScript/TypeScript file that is parsed. Larger code files are
    /// reported (high: code nobody looked at) rather than parsed, and no larger file
    /// is kept in memory beyond its first bytes.
    pub max_parsed_file_bytes: u64,
    /// Most bytes of file contents kept in memory for the checks, all files together.
    /// Files are hashed and counted in full while they stream past; what does not fit
    /// is reported (high) instead of buffered. The largest of the top 1000 npm
    /// packages keeps 14 MB.
    pub max_retained_bytes: u64,
    /// What the server knows about who published this version and when; unknown by
    /// default (the CLI scanning a tarball knows none of it).
    pub publication: PublicationContext,
    /// Known-malware indicators and versions from the configured feeds (empty by
    /// default: nothing is compiled in). Shared, because every scan uses the same feed.
    pub indicators: std::sync::Arc<crate::Indicators>,
}

/// Identity facts only the server can see (from the packument and the provenance
/// checks), combined with what the code does by the risk layer. `None` is unknown and
/// never counts as a signal.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublicationContext {
    /// Days between the package's creation and this version's publication.
    pub package_age_days: Option<u32>,
    /// Whether this is the first version the package published.
    pub first_version: Option<bool>,
    /// Whether the publisher is not among the previous version's maintainers.
    pub maintainer_changed: Option<bool>,
    /// Whether earlier versions had provenance attestations and this one has none.
    pub provenance_dropped: Option<bool>,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            max_compressed_bytes: 256 * 1024 * 1024,
            max_uncompressed_bytes: 1024 * 1024 * 1024,
            max_entries: 200_000,
            max_file_bytes: 512 * 1024 * 1024,
            max_path_bytes: 1024,
            max_path_depth: 48,
            max_parsed_file_bytes: 32 * 1024 * 1024,
            max_retained_bytes: 128 * 1024 * 1024,
            publication: PublicationContext::default(),
            indicators: std::sync::Arc::default(),
        }
    }
}
