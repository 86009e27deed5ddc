//! The view models: plain structs of strings and numbers that the server fills from its
//! domain values and the templates render. Nothing here knows about storage, HTTP or
//! the scanner; every string may come from a hostile package and is escaped by the
//! templates, never trusted.

/// What every signed-in page shows around its content.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// The signed-in admin's name.
    pub user: String,
    /// The session's CSRF token, put into every form.
    pub csrf: String,
    /// Which navigation entry is current: `queue`, `audit`, `policy` or `keys`.
    pub active: String,
    /// A one-line notice after an action (`Approved mail-mcp@1.0.16`), if any.
    pub notice: Option<String>,
    /// A one-line error after a refused action, if any.
    pub error: Option<String>,
}

/// The sign-in page.
#[derive(Debug, Clone, Default)]
pub struct SignInPage {
    /// The sign-in form's CSRF token (a double-submit cookie holds the same value).
    pub csrf: String,
    /// Why the last attempt failed, if it did.
    pub error: Option<String>,
    /// The name typed last time, to fill the field again.
    pub name: String,
}

/// One state and how many versions are in it, for the counts at the top of the queue.
#[derive(Debug, Clone, Default)]
pub struct StateCount {
    /// `held`, `checking`, `cooling`, `released` or `rejected`.
    pub state: String,
    /// How many versions are in this state.
    pub count: usize,
    /// The queue filtered to this state.
    pub href: String,
    /// True when the queue is currently filtered to this state.
    pub selected: bool,
}

/// The queue's filters as submitted (echoed into the form).
#[derive(Debug, Clone, Default)]
pub struct QueueFilters {
    /// State, or empty for all.
    pub state: String,
    /// Lowest severity, or empty for any.
    pub severity: String,
    /// Rule id, or empty for any.
    pub rule: String,
    /// Scope (`@acme`), or empty for any.
    pub scope: String,
    /// Substring of the package name, or empty.
    pub package: String,
}

/// One row of the queue.
#[derive(Debug, Clone, Default)]
pub struct QueueRow {
    /// Package name (hostile).
    pub package: String,
    /// Version (hostile).
    pub version: String,
    /// The version's state.
    pub state: String,
    /// The highest finding severity, or empty when there are none.
    pub top_severity: String,
    /// Findings per severity, most severe first, only non-zero ones: (`high`, 2).
    pub severity_counts: Vec<(String, usize)>,
    /// The rule ids of the findings, deduplicated.
    pub rules: Vec<String>,
    /// Why the version is in its state (hostile: it quotes findings).
    pub reason: String,
    /// Time note: "4h 12m left", "decided 3m ago by admin:ana".
    pub when: String,
    /// The version detail page.
    pub href: String,
    /// The package page.
    pub package_href: String,
}

/// A titled group of queue rows (held, cooling, recent decisions).
#[derive(Debug, Clone, Default)]
pub struct QueueSection {
    /// The section's heading.
    pub title: String,
    /// Its rows, in order.
    pub rows: Vec<QueueRow>,
    /// Rows left out (filter by state to see them).
    pub more: usize,
}

/// The queue page.
#[derive(Debug, Clone, Default)]
pub struct QueuePage {
    /// Navigation and identity.
    pub chrome: Chrome,
    /// Counts per state.
    pub counts: Vec<StateCount>,
    /// The filters in force.
    pub filters: QueueFilters,
    /// Every rule id seen, for the rule filter.
    pub known_rules: Vec<String>,
    /// Held, cooling and checking, and recent decisions.
    pub sections: Vec<QueueSection>,
}

/// One finding on the detail page.
#[derive(Debug, Clone, Default)]
pub struct FindingView {
    /// Rule id.
    pub rule: String,
    /// What was found (hostile: quotes package content).
    pub message: String,
    /// `file:line`, or empty.
    pub location: String,
    /// The code excerpt, line by line.
    pub excerpt: Vec<ExcerptLine>,
}

/// One line of a code excerpt.
#[derive(Debug, Clone, Default)]
pub struct ExcerptLine {
    /// The line number in the file, when known.
    pub number: String,
    /// The text (hostile).
    pub text: String,
    /// True for the line the finding is about.
    pub highlight: bool,
}

/// Findings of one severity.
#[derive(Debug, Clone, Default)]
pub struct FindingGroup {
    /// `critical`, `high`, `medium`, `low` or `info`.
    pub severity: String,
    /// The findings.
    pub findings: Vec<FindingView>,
}

/// One line of a unified diff.
#[derive(Debug, Clone, Default)]
pub struct DiffLine {
    /// `add`, `del`, `hunk` or `ctx`: the CSS class.
    pub kind: String,
    /// The line, with its `+`/`-`/` ` prefix (hostile).
    pub text: String,
}

/// The diff of one file.
#[derive(Debug, Clone, Default)]
pub struct FileDiff {
    /// The path inside the package (hostile).
    pub path: String,
    /// The unified diff, line by line.
    pub lines: Vec<DiffLine>,
}

/// A labelled list of values called out above a diff ("Hosts added": `evil.example`).
#[derive(Debug, Clone, Default)]
pub struct Callout {
    /// What the values are.
    pub label: String,
    /// The values (hostile).
    pub values: Vec<String>,
}

/// The diff against the previous released version.
#[derive(Debug, Clone, Default)]
pub struct DiffView {
    /// The version compared with.
    pub previous_version: String,
    /// Added hosts, recipients, scripts and dependencies, and file lists.
    pub callouts: Vec<Callout>,
    /// Unified diffs of changed text files.
    pub files: Vec<FileDiff>,
    /// Why some diffs are missing (too large, binary, tarball not stored), if so.
    pub note: String,
}

/// The source-repository match.
#[derive(Debug, Clone, Default)]
pub struct SourceMatchView {
    /// `compared`, `unverifiable` or `not run`.
    pub status: String,
    /// The repository and revision compared with, or why none was.
    pub summary: String,
    /// How many files were identical.
    pub identical_count: usize,
    /// Files that differ, with their diff from the repository to the tarball.
    pub differing: Vec<FileDiff>,
    /// Files only in the tarball that are not build output, and build output.
    pub callouts: Vec<Callout>,
}

/// A label and a value, for definition lists.
#[derive(Debug, Clone, Default)]
pub struct Fact {
    /// The label.
    pub label: String,
    /// The value (may be hostile).
    pub value: String,
}

/// One entry of a version's history.
#[derive(Debug, Clone, Default)]
pub struct HistoryRow {
    /// RFC 3339 time.
    pub time: String,
    /// `pipeline`, `policy` or `admin:<name>`.
    pub actor: String,
    /// `checked`, `approve`, ...
    pub action: String,
    /// `held → released`, or empty.
    pub change: String,
    /// Comment or reason (hostile).
    pub comment: String,
}

/// The version detail page: everything needed to decide.
#[derive(Debug, Clone, Default)]
pub struct VersionPage {
    /// Navigation and identity.
    pub chrome: Chrome,
    /// Package name (hostile).
    pub package: String,
    /// Version (hostile).
    pub version: String,
    /// The package page.
    pub package_href: String,
    /// The version's state.
    pub state: String,
    /// Why it is in its state.
    pub reason: String,
    /// Who decided last.
    pub decided_by: String,
    /// Time note (cooling left, decided when).
    pub when: String,
    /// Findings grouped by severity, most severe first.
    pub finding_groups: Vec<FindingGroup>,
    /// Total findings.
    pub finding_count: usize,
    /// True when approving needs the extra confirmation (a critical finding).
    pub has_critical: bool,
    /// The diff against the previous released version, when there was one.
    pub diff: Option<DiffView>,
    /// The source-repository match.
    pub source_match: SourceMatchView,
    /// Signatures, attestation identity, continuity.
    pub provenance: Vec<Fact>,
    /// Publish time, first seen, size, file count, install scripts, ...
    pub metadata: Vec<Fact>,
    /// Checks that could not run.
    pub incomplete: Vec<String>,
    /// State changes and actions, oldest first.
    pub history: Vec<HistoryRow>,
    /// Where the approve/reject/recheck form posts.
    pub action_href: String,
}

/// The confirmation step before approving a version with a critical finding.
#[derive(Debug, Clone, Default)]
pub struct ConfirmPage {
    /// Navigation and identity.
    pub chrome: Chrome,
    /// Package name (hostile).
    pub package: String,
    /// Version (hostile).
    pub version: String,
    /// The comment typed on the detail page.
    pub comment: String,
    /// The critical findings, again.
    pub findings: Vec<FindingView>,
    /// Where the confirmed form posts.
    pub action_href: String,
    /// Back to the detail page.
    pub back_href: String,
}

/// One version on the package page.
#[derive(Debug, Clone, Default)]
pub struct PackageVersionRow {
    /// Version (hostile).
    pub version: String,
    /// State.
    pub state: String,
    /// The highest finding severity, or empty.
    pub top_severity: String,
    /// Why it is in its state.
    pub reason: String,
    /// Who decided last.
    pub decided_by: String,
    /// First seen (RFC 3339).
    pub first_seen: String,
    /// Attestation identity (repository, workflow), or "none".
    pub identity: String,
    /// Continuity with the previous version: "same identity", "provenance dropped", ...
    pub continuity: String,
    /// The version detail page.
    pub href: String,
}

/// The package page.
#[derive(Debug, Clone, Default)]
pub struct PackagePage {
    /// Navigation and identity.
    pub chrome: Chrome,
    /// Package name (hostile).
    pub package: String,
    /// Every version, newest first.
    pub versions: Vec<PackageVersionRow>,
}

/// The audit log's filters as submitted.
#[derive(Debug, Clone, Default)]
pub struct AuditFilters {
    /// Actor (`admin:ana`, `pipeline`), or empty.
    pub actor: String,
    /// Action (`approve`), or empty.
    pub action: String,
    /// Package name substring, or empty.
    pub package: String,
}

/// One audit event.
#[derive(Debug, Clone, Default)]
pub struct AuditRow {
    /// Event id.
    pub id: String,
    /// RFC 3339 time.
    pub time: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Package (hostile).
    pub package: String,
    /// Version (hostile).
    pub version: String,
    /// `held → released`, or empty.
    pub change: String,
    /// Comment (hostile).
    pub comment: String,
    /// The version detail page, or empty for policy events.
    pub href: String,
}

/// The audit log page.
#[derive(Debug, Clone, Default)]
pub struct AuditPage {
    /// Navigation and identity.
    pub chrome: Chrome,
    /// The filters in force.
    pub filters: AuditFilters,
    /// Events, newest first.
    pub rows: Vec<AuditRow>,
    /// How many events matched (rows may be fewer).
    pub total: usize,
    /// The JSON lines export with the same filters.
    pub jsonl_href: String,
    /// The CSV export with the same filters.
    pub csv_href: String,
}

/// One allow or deny rule.
#[derive(Debug, Clone, Default)]
pub struct RuleView {
    /// `allow` or `deny`.
    pub kind: String,
    /// Package name or pattern.
    pub package: String,
    /// Version range, or `*`.
    pub versions: String,
    /// Why.
    pub reason: String,
    /// Where it comes from: `config` (read-only here) or `admin:<name>` (removable).
    pub source: String,
    /// The id to remove it with, for rules added here; empty for configured rules.
    pub id: String,
}

/// One waiver: a rule accepted for one package.
#[derive(Debug, Clone, Default)]
pub struct WaiverView {
    /// Its id, to revoke it with.
    pub id: String,
    /// The scanner rule id it accepts.
    pub rule: String,
    /// The package.
    pub package: String,
    /// The npm range, or `*`.
    pub versions: String,
    /// Why.
    pub reason: String,
    /// `admin:<name>` and when.
    pub created: String,
    /// When it stops applying.
    pub expires: String,
    /// `active`, `expired` or `revoked` (with by whom).
    pub status: String,
    /// Whether a revoke button is shown.
    pub revocable: bool,
}

/// The policy page.
#[derive(Debug, Clone, Default)]
pub struct PolicyPage {
    /// Navigation and identity.
    pub chrome: Chrome,
    /// Cooling period, hold severity, ...
    pub settings: Vec<Fact>,
    /// Allow and deny rules, configured and added here.
    pub rules: Vec<RuleView>,
    /// Where the add form posts.
    pub add_href: String,
    /// Where remove forms post.
    pub remove_href: String,
    /// Waivers, newest first, revoked and expired ones included.
    pub waivers: Vec<WaiverView>,
    /// Rule ids a waiver may accept, for the form's list.
    pub waivable_rules: Vec<String>,
    /// Where the add-waiver form posts.
    pub waiver_add_href: String,
    /// Where revoke forms post.
    pub waiver_revoke_href: String,
}

/// One public key.
#[derive(Debug, Clone, Default)]
pub struct KeyView {
    /// What the key signs.
    pub purpose: String,
    /// Key id or fingerprint.
    pub key_id: String,
    /// Algorithm.
    pub key_type: String,
    /// The public key, base64.
    pub public_key: String,
}

/// The keys page.
#[derive(Debug, Clone, Default)]
pub struct KeysPage {
    /// Navigation and identity.
    pub chrome: Chrome,
    /// Airlock's public keys.
    pub keys: Vec<KeyView>,
    /// The registry's public URL.
    pub registry_url: String,
    /// Shell commands CI runs, one per entry.
    pub commands: Vec<String>,
}

/// An error page (not found, refused).
#[derive(Debug, Clone, Default)]
pub struct ErrorPage {
    /// Navigation and identity; empty user when signed out.
    pub chrome: Chrome,
    /// Heading: "Not found", "Refused".
    pub title: String,
    /// What went wrong (may quote hostile input).
    pub message: String,
}

/// The page a developer refused a version reads (no sign-in): where the version stands,
/// why, when it can be installed, and whom to ask.
#[derive(Debug, Clone, Default)]
pub struct DeveloperStatusPage {
    /// The package name.
    pub package: String,
    /// The version asked for.
    pub version: String,
    /// The state in a few words: "Installable", "Cooling", "Held for review", "Rejected".
    pub state: String,
    /// The reason, one sentence.
    pub reason: String,
    /// When it can be installed ("from 2026-12-05T10:00:00Z if its checks pass",
    /// "when an admin approves it", "never").
    pub installable: String,
    /// Whom to ask.
    pub contact: String,
    /// Findings (severity, rule, message), only when the configuration shows them.
    pub findings: Vec<(String, String, String)>,
    /// The admin UI page of this version, for admins.
    pub admin_link: String,
}
