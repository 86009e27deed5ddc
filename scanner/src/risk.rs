//! Risk in context: weak signals combined the way an analyst would.
//!
//! Each rule rates one behaviour, and most behaviours are ordinary somewhere: a build
//! tool starts processes, an SDK reads `process.env`, a CLI contacts its own API. What
//! makes a version malicious is the combination: what its code can do (a *capability*:
//! runs at install time, reads host information, sends data to a host that is not the
//! package's own…) together with who it is (an *identity* signal: no repository, a
//! three-file package, a `99.0.0` version, a name one letter off a popular one, a
//! package published yesterday…).
//!
//! [`assess`] matches the signals of one version against [`COMBINATIONS`], a table an
//! engineer can read and the tests check row by row, and the first (most severe) row
//! that matches becomes one `risk-combination` finding whose message says "Held
//! because: A + B + C". Nothing here lowers another finding: a combination can only add.

use std::collections::{BTreeMap, BTreeSet};

use crate::options::PublicationContext;
use crate::rules::{Rule, finding_at};
use crate::{Finding, Severity};

/// One thing a version's code can do, or one thing about who published it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Signal {
    // What the code can do.
    /// A file runs at install time (a lifecycle script runs it).
    InstallTimeCode,
    /// Network calls to a hard-coded host that is not the package's own, or to a public IP.
    ForeignNetwork,
    /// A network call (destination not known statically).
    Network,
    /// A webhook, request catcher or paste site.
    ExfiltrationService,
    /// DNS queries (probes send data out as DNS names).
    DnsQuery,
    /// Reads the host name, user name, home directory, network interfaces or accounts.
    HostInformation,
    /// Reads all of `process.env` or publishing tokens from it.
    Environment,
    /// Names credential stores: SSH keys, browser profiles, Discord/Telegram storage, wallets.
    CredentialStore,
    /// Starts processes.
    ChildProcess,
    /// Executes a compiled executable shipped in the package.
    ShippedExecutable,
    /// Builds or runs a shell command that downloads and runs code.
    DownloadsAndRuns,
    /// Evaluates code produced by a decoder, or a string built at runtime.
    DecodedExecution,
    /// javascript-obfuscator output or dense escapes.
    Obfuscation,
    // Who published it: seen in the package itself.
    /// package.json has no `repository`.
    NoRepository,
    /// No description and no README.
    NoDescription,
    /// At most a handful of files.
    TinyPackage,
    /// A version like `99.0.0` or `1.999.0`: above anything an internal package uses.
    ProbeVersion,
    /// The name is one typo away from a popular package.
    ImitatedName,
    // Who published it: passed in by the server (`ScanOptions::publication`).
    /// The package was created recently.
    NewPackage,
    /// The first version of the package.
    FirstVersion,
    /// Published by a maintainer the previous version did not have.
    MaintainerChanged,
    /// Earlier versions had provenance; this one does not.
    ProvenanceDropped,
}

impl Signal {
    /// Whether the signal is about who published the version rather than what it does.
    pub(crate) fn is_identity(self) -> bool {
        matches!(
            self,
            Signal::NoRepository
                | Signal::NoDescription
                | Signal::TinyPackage
                | Signal::ProbeVersion
                | Signal::ImitatedName
                | Signal::NewPackage
                | Signal::FirstVersion
                | Signal::MaintainerChanged
                | Signal::ProvenanceDropped
        )
    }

    /// Whether the evidence belongs to the package as a whole, not to one file.
    fn is_package_wide(self) -> bool {
        self.is_identity()
    }

    /// The phrase used in "Held because: …".
    fn describe(self) -> &'static str {
        match self {
            Signal::InstallTimeCode => "runs at install time",
            Signal::ForeignNetwork => "sends to a host that is not the package's own",
            Signal::Network => "makes network requests",
            Signal::ExfiltrationService => "names a webhook or request-catcher service",
            Signal::DnsQuery => "makes DNS queries",
            Signal::HostInformation => "reads host and user information",
            Signal::Environment => "reads the environment's variables or tokens",
            Signal::CredentialStore => "names credential stores",
            Signal::ChildProcess => "starts processes",
            Signal::ShippedExecutable => "runs an executable shipped in the package",
            Signal::DownloadsAndRuns => "downloads and runs code",
            Signal::DecodedExecution => "executes code built or decoded at runtime",
            Signal::Obfuscation => "is obfuscated",
            Signal::NoRepository => "package.json names no repository",
            Signal::NoDescription => "there is no description or README",
            Signal::TinyPackage => "the package is a handful of files",
            Signal::ProbeVersion => "the version has the shape of a dependency-confusion probe",
            Signal::ImitatedName => "the name imitates a popular package",
            Signal::NewPackage => "the package is new",
            Signal::FirstVersion => "this is the package's first version",
            Signal::MaintainerChanged => "the publisher is not one of the previous version's maintainers",
            Signal::ProvenanceDropped => "earlier versions had provenance and this one has none",
        }
    }
}

/// Where a signal was seen: a file and line and the value that shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Evidence {
    /// Package path; `package.json` for identity signals.
    pub(crate) file: String,
    pub(crate) line: Option<u32>,
    /// A short quote: a host, a call, a script name.
    pub(crate) detail: String,
}

/// Every signal seen in one version, with its evidence.
#[derive(Debug, Default, Clone)]
pub(crate) struct RiskSignals {
    seen: BTreeMap<Signal, Vec<Evidence>>,
    /// Code files in the package: in a package this small every file is the program, so
    /// combinations need not be in one file.
    pub(crate) code_files: usize,
}

/// Most evidence items kept per signal; the message quotes the first.
const MAX_EVIDENCE_PER_SIGNAL: usize = 16;

impl RiskSignals {
    pub(crate) fn add(&mut self, signal: Signal, file: &str, line: Option<u32>, detail: impl Into<String>) {
        let evidence = self.seen.entry(signal).or_default();
        if evidence.len() < MAX_EVIDENCE_PER_SIGNAL {
            evidence.push(Evidence { file: file.to_owned(), line, detail: detail.into() });
        }
    }

    pub(crate) fn contains(&self, signal: Signal) -> bool {
        self.seen.contains_key(&signal)
    }

    /// Adds what the server knows about the publication.
    pub(crate) fn add_publication(&mut self, publication: &PublicationContext) {
        let file = "package.json";
        if let Some(age_days) = publication.package_age_days
            && age_days < NEW_PACKAGE_DAYS
        {
            self.add(Signal::NewPackage, file, None, format!("created {age_days} days before this version"));
        }
        if publication.first_version == Some(true) {
            self.add(Signal::FirstVersion, file, None, "");
        }
        if publication.maintainer_changed == Some(true) {
            self.add(Signal::MaintainerChanged, file, None, "");
        }
        if publication.provenance_dropped == Some(true) {
            self.add(Signal::ProvenanceDropped, file, None, "");
        }
    }

    fn identity_signals(&self) -> impl Iterator<Item = Signal> + '_ {
        self.seen.keys().copied().filter(|signal| signal.is_identity())
    }

    /// The files where all of `signals` were seen (package-wide signals match any file).
    fn files_with_all(&self, signals: &[Signal]) -> BTreeSet<&str> {
        let mut files: Option<BTreeSet<&str>> = None;
        for signal in signals.iter().filter(|signal| !signal.is_package_wide()) {
            let here: BTreeSet<&str> =
                self.seen.get(signal).into_iter().flatten().map(|evidence| evidence.file.as_str()).collect();
            files = Some(match files {
                None => here,
                Some(previous) => previous.intersection(&here).copied().collect(),
            });
        }
        files.unwrap_or_default()
    }
}

/// A package younger than this many days counts as new.
pub(crate) const NEW_PACKAGE_DAYS: u32 = 30;

/// Code files up to which the package is judged as one program (signals in different
/// files still combine).
const SMALL_PROGRAM_FILES: usize = 4;

/// One row of the table: a pattern of signals and the severity it earns.
#[derive(Debug)]
pub(crate) struct Combination {
    /// What the pattern looks like, as an analyst would say it.
    pub(crate) name: &'static str,
    /// Every group must be matched by at least one of its signals.
    pub(crate) all_of: &'static [&'static [Signal]],
    /// How many identity signals (of any kind) must also be present.
    pub(crate) identity_signals: usize,
    /// Whether the behaviour signals must be seen in one file (unless the package is small).
    pub(crate) same_file: bool,
    pub(crate) severity: Severity,
}

use Signal::*;

const SENDS_OUT: &[Signal] = &[ForeignNetwork, ExfiltrationService, DnsQuery];
const COLLECTS: &[Signal] = &[HostInformation, Environment, CredentialStore];

/// The combinations, most severe and most specific first. A version gets the first that
/// matches. Every row is covered by a case in the tests below.
pub(crate) const COMBINATIONS: &[Combination] = &[
    Combination {
        name: "an install-time beacon: it collects data about the machine and sends it out while installing",
        all_of: &[&[InstallTimeCode], COLLECTS, SENDS_OUT],
        identity_signals: 0,
        same_file: true,
        severity: Severity::High,
    },
    Combination {
        name: "obfuscated code run at install time",
        all_of: &[&[InstallTimeCode], &[Obfuscation]],
        identity_signals: 0,
        same_file: true,
        severity: Severity::High,
    },
    Combination {
        name: "a dependency-confusion probe: an install hook under a version no real release uses",
        all_of: &[&[InstallTimeCode], &[ProbeVersion]],
        // The probe version plus one more: Chrome-versioned packages (chromedriver 157) are real.
        identity_signals: 2,
        same_file: false,
        severity: Severity::High,
    },
    Combination {
        name: "a typosquat that does something: a name imitating a popular package with code that acts",
        all_of: &[
            &[ImitatedName],
            &[
                InstallTimeCode,
                ForeignNetwork,
                ExfiltrationService,
                ChildProcess,
                HostInformation,
                Environment,
                CredentialStore,
                ShippedExecutable,
            ],
        ],
        identity_signals: 0,
        same_file: false,
        severity: Severity::High,
    },
    Combination {
        name: "a credential stealer: it names credential stores and sends data out",
        all_of: &[&[CredentialStore], SENDS_OUT],
        identity_signals: 1,
        same_file: true,
        severity: Severity::High,
    },
    Combination {
        name: "exfiltration by a package with no track record: it collects data and sends it out",
        all_of: &[COLLECTS, SENDS_OUT],
        identity_signals: 1,
        same_file: true,
        severity: Severity::High,
    },
    Combination {
        name: "exfiltration by an anonymous package: it collects data and makes network requests from one file",
        all_of: &[COLLECTS, &[Network]],
        identity_signals: 2,
        same_file: true,
        severity: Severity::High,
    },
    Combination {
        name: "an install-time network call by a package with no track record",
        all_of: &[&[InstallTimeCode], SENDS_OUT],
        identity_signals: 1,
        same_file: true,
        severity: Severity::High,
    },
    Combination {
        name: "an install-time beacon to a host built at runtime, from a package with no track record",
        all_of: &[&[InstallTimeCode], COLLECTS, &[Network, DnsQuery]],
        identity_signals: 1,
        same_file: true,
        severity: Severity::High,
    },
    Combination {
        name: "a downloader in a package with no track record: it fetches code and runs it",
        all_of: &[&[DownloadsAndRuns]],
        identity_signals: 1,
        same_file: false,
        severity: Severity::High,
    },
    Combination {
        name: "an install-time network call by an anonymous package",
        all_of: &[&[InstallTimeCode], &[Network, DnsQuery]],
        identity_signals: 2,
        same_file: true,
        severity: Severity::High,
    },
    Combination {
        name: "a dropper: it runs an executable shipped in the package",
        all_of: &[&[ShippedExecutable]],
        identity_signals: 1,
        same_file: false,
        severity: Severity::High,
    },
    Combination {
        name: "a loader: it executes code decoded or built at runtime in a file that uses the network",
        all_of: &[&[DecodedExecution], &[Network, ForeignNetwork]],
        identity_signals: 1,
        same_file: true,
        severity: Severity::High,
    },
    Combination {
        name: "a remote-command backdoor: one file talks to the network and starts processes, in an anonymous package",
        all_of: &[&[Network, ForeignNetwork], &[ChildProcess]],
        identity_signals: 2,
        same_file: true,
        severity: Severity::High,
    },
    Combination {
        name: "an install hook that starts processes, in a package with no track record",
        all_of: &[&[InstallTimeCode], &[ChildProcess]],
        identity_signals: 2,
        same_file: true,
        severity: Severity::High,
    },
    Combination {
        name: "data collection sent out",
        all_of: &[COLLECTS, SENDS_OUT],
        identity_signals: 0,
        same_file: true,
        severity: Severity::Medium,
    },
];

/// What the combination layer concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Assessment {
    pub(crate) combination: &'static str,
    pub(crate) severity: Severity,
    /// The signals that made the row match, behaviour first, with their evidence.
    pub(crate) because: Vec<(Signal, Evidence)>,
}

/// The first row of [`COMBINATIONS`] the signals match.
pub(crate) fn assess(signals: &RiskSignals) -> Option<Assessment> {
    let small_program = signals.code_files <= SMALL_PROGRAM_FILES;
    let identity: Vec<Signal> = signals.identity_signals().collect();
    COMBINATIONS.iter().find_map(|combination| {
        if identity.len() < combination.identity_signals {
            return None;
        }
        // Choose, per group, the signals present; with `same_file`, a file must hold one
        // of each behaviour group.
        let present: Vec<Vec<Signal>> = combination
            .all_of
            .iter()
            .map(|group| group.iter().copied().filter(|signal| signals.contains(*signal)).collect())
            .collect();
        if present.iter().any(Vec::is_empty) {
            return None;
        }
        let chosen: Vec<Signal> = if combination.same_file && !small_program {
            choose_in_one_file(signals, &present)?
        } else {
            present.iter().map(|group| group[0]).collect()
        };
        let mut because: Vec<(Signal, Evidence)> = Vec::new();
        let shared_files =
            if combination.same_file && !small_program { signals.files_with_all(&chosen) } else { BTreeSet::new() };
        for signal in chosen {
            let evidence = signals.seen.get(&signal).into_iter().flatten();
            let mut evidence = evidence.filter(|item| {
                shared_files.is_empty() || shared_files.contains(item.file.as_str()) || signal.is_package_wide()
            });
            if let Some(item) = evidence.next() {
                because.push((signal, item.clone()));
            }
        }
        for signal in identity.iter().copied() {
            if !because.iter().any(|(chosen, _)| *chosen == signal)
                && let Some(item) = signals.seen.get(&signal).and_then(|evidence| evidence.first())
            {
                because.push((signal, item.clone()));
            }
        }
        Some(Assessment { combination: combination.name, severity: combination.severity, because })
    })
}

/// One signal per group, all seen in a common file; `None` when no file has them all.
fn choose_in_one_file(signals: &RiskSignals, present: &[Vec<Signal>]) -> Option<Vec<Signal>> {
    let files: BTreeSet<&str> = present
        .iter()
        .flatten()
        .filter(|signal| !signal.is_package_wide())
        .flat_map(|signal| signals.seen.get(signal).into_iter().flatten().map(|evidence| evidence.file.as_str()))
        .collect();
    files.into_iter().find_map(|file| {
        present
            .iter()
            .map(|group| {
                group.iter().copied().find(|signal| {
                    signal.is_package_wide()
                        || signals
                            .seen
                            .get(signal)
                            .is_some_and(|evidence| evidence.iter().any(|item| item.file == file))
                })
            })
            .collect::<Option<Vec<Signal>>>()
    })
}

/// The finding for an assessment: one sentence naming every signal.
pub(crate) fn finding(assessment: &Assessment) -> Finding {
    let reasons: Vec<String> = assessment
        .because
        .iter()
        .map(|(signal, evidence)| {
            let mut reason = signal.describe().to_owned();
            if !signal.is_package_wide() {
                reason.push_str(&format!(" (`{}`", evidence.file));
                if let Some(line) = evidence.line {
                    reason.push_str(&format!(":{line}"));
                }
                if !evidence.detail.is_empty() {
                    reason.push_str(&format!(": {}", crate::rules::quote(&evidence.detail)));
                }
                reason.push(')');
            } else if !evidence.detail.is_empty() {
                reason.push_str(&format!(" ({})", crate::rules::quote(&evidence.detail)));
            }
            reason
        })
        .collect();
    let location =
        assessment.because.iter().find(|(signal, _)| !signal.is_package_wide()).map(|(_, evidence)| evidence);
    let (file, line) = location.map_or(("package.json", None), |evidence| (evidence.file.as_str(), evidence.line));
    finding_at(
        Rule::RiskCombination,
        assessment.severity,
        format!("Held because: {}. Together this looks like {}.", reasons.join(" + "), assessment.combination),
        file,
        line,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds signals, each `(signal, file)`; identity signals go on package.json.
    fn signals(seen: &[(Signal, &str)], code_files: usize) -> RiskSignals {
        let mut signals = RiskSignals { code_files, ..RiskSignals::default() };
        for (signal, file) in seen {
            signals.add(*signal, file, Some(1), "");
        }
        signals
    }

    fn check(seen: &[(Signal, &str)], code_files: usize, expected: Option<Severity>) {
        let assessment = assess(&signals(seen, code_files));
        assert_eq!(
            assessment.as_ref().map(|assessment| assessment.severity),
            expected,
            "signals {seen:?} in {code_files} code files gave {assessment:?}"
        );
    }

    const BIG: usize = 40;
    const SMALL: usize = 2;

    #[test]
    fn combinations_table() {
        let pj = "package.json";
        // Install-time beacon: no identity needed, but one file must do all three.
        check(
            &[(InstallTimeCode, "i.js"), (HostInformation, "i.js"), (ForeignNetwork, "i.js")],
            BIG,
            Some(Severity::High),
        );
        check(&[(InstallTimeCode, "i.js"), (HostInformation, "a.js"), (ForeignNetwork, "b.js")], BIG, None);
        check(&[(InstallTimeCode, "i.js"), (HostInformation, "a.js"), (DnsQuery, "b.js")], SMALL, Some(Severity::High));
        // Obfuscated install-time code.
        check(&[(InstallTimeCode, "i.js"), (Obfuscation, "i.js")], BIG, Some(Severity::High));
        check(&[(InstallTimeCode, "i.js"), (Obfuscation, "dist/x.js")], BIG, None);
        // Probe-shaped version with an install hook.
        check(&[(InstallTimeCode, "i.js"), (ProbeVersion, pj), (NoRepository, pj)], BIG, Some(Severity::High));
        check(&[(InstallTimeCode, "i.js"), (ProbeVersion, pj)], BIG, None);
        check(&[(ProbeVersion, pj), (ChildProcess, "i.js")], BIG, None);
        // A typosquat only matters when the code acts.
        check(&[(ImitatedName, pj), (ChildProcess, "i.js")], BIG, Some(Severity::High));
        check(&[(ImitatedName, pj), (Network, "i.js")], BIG, None);
        // Credential stores plus sending: needs one identity signal.
        check(
            &[(CredentialStore, "s.js"), (ExfiltrationService, "s.js"), (NoRepository, pj)],
            BIG,
            Some(Severity::High),
        );
        check(&[(CredentialStore, "s.js"), (ForeignNetwork, "s.js")], BIG, Some(Severity::Medium));
        // Collection plus any network in a package with no track record.
        check(&[(Environment, "a.js"), (ForeignNetwork, "a.js"), (NewPackage, pj)], BIG, Some(Severity::High));
        check(&[(Environment, "a.js"), (Network, "a.js"), (NewPackage, pj)], BIG, None);
        check(
            &[(Environment, "a.js"), (Network, "a.js"), (NewPackage, pj), (NoRepository, pj)],
            BIG,
            Some(Severity::High),
        );
        check(&[(Environment, "a.js"), (Network, "a.js")], BIG, None);
        check(&[(Environment, "a.js"), (Network, "b.js"), (TinyPackage, pj)], BIG, None);
        // Install-time network.
        check(&[(InstallTimeCode, "i.js"), (ForeignNetwork, "i.js"), (FirstVersion, pj)], BIG, Some(Severity::High));
        check(&[(InstallTimeCode, "i.js"), (ForeignNetwork, "i.js")], BIG, None);
        check(
            &[(InstallTimeCode, "i.js"), (Network, "i.js"), (NoRepository, pj), (NoDescription, pj)],
            BIG,
            Some(Severity::High),
        );
        check(&[(InstallTimeCode, "i.js"), (Network, "i.js"), (NoRepository, pj)], BIG, None);
        check(
            &[(InstallTimeCode, "i.js"), (Environment, "i.js"), (Network, "i.js"), (NoRepository, pj)],
            BIG,
            Some(Severity::High),
        );
        check(&[(InstallTimeCode, "i.js"), (Environment, "i.js"), (Network, "i.js")], BIG, None);
        check(&[(DownloadsAndRuns, "i.js"), (TinyPackage, pj)], BIG, Some(Severity::High));
        check(&[(DownloadsAndRuns, "i.js")], BIG, None);
        // Droppers.
        check(&[(ShippedExecutable, "i.js"), (NoDescription, pj)], BIG, Some(Severity::High));
        check(&[(ShippedExecutable, "i.js")], BIG, None);
        // Loaders.
        check(&[(DecodedExecution, "l.js"), (Network, "l.js"), (MaintainerChanged, pj)], BIG, Some(Severity::High));
        check(&[(DecodedExecution, "l.js"), (Network, "l.js")], BIG, None);
        // Install hooks starting processes need two identity signals.
        check(
            &[(InstallTimeCode, "i.js"), (ChildProcess, "i.js"), (NoRepository, pj), (TinyPackage, pj)],
            BIG,
            Some(Severity::High),
        );
        check(&[(InstallTimeCode, "i.js"), (ChildProcess, "i.js"), (NoRepository, pj)], BIG, None);
        check(
            &[(Network, "b.js"), (ChildProcess, "b.js"), (NoRepository, pj), (TinyPackage, pj)],
            BIG,
            Some(Severity::High),
        );
        check(&[(Network, "b.js"), (ChildProcess, "b.js"), (NoRepository, pj)], BIG, None);
        // Identity alone, or one capability alone, is never enough.
        check(&[(NoRepository, pj), (TinyPackage, pj), (ProbeVersion, pj), (NewPackage, pj)], BIG, None);
        check(&[(ProvenanceDropped, pj), (ChildProcess, "a.js")], BIG, None);
        check(&[(InstallTimeCode, "i.js")], SMALL, None);
    }

    #[test]
    fn every_combination_is_exercised_by_the_table() {
        // The table test above names each row's signals; this guards against a row that
        // no signal set can reach (an empty group).
        for combination in COMBINATIONS {
            assert!(combination.all_of.iter().all(|group| !group.is_empty()), "{}", combination.name);
        }
    }

    #[test]
    fn the_message_names_every_signal() {
        let mut seen = RiskSignals { code_files: 1, ..RiskSignals::default() };
        seen.add(InstallTimeCode, "index.js", None, "preinstall");
        seen.add(HostInformation, "index.js", Some(3), "os.hostname()");
        seen.add(ForeignNetwork, "index.js", Some(9), "abc.example.net");
        seen.add(ProbeVersion, "package.json", None, "99.10.9");
        let assessment = assess(&seen).expect("a beacon");
        let finding = finding(&assessment);
        assert_eq!(finding.severity, Severity::High);
        assert_eq!(
            finding.message,
            "Held because: runs at install time (`index.js`: preinstall) + reads host and user information (`index.js`:3: os.hostname()) + sends to a host that is not the package's own (`index.js`:9: abc.example.net) + the version has the shape of a dependency-confusion probe (99.10.9). Together this looks like an install-time beacon: it collects data about the machine and sends it out while installing."
        );
    }

    #[test]
    fn publication_context_becomes_identity_signals() {
        let mut seen = RiskSignals::default();
        seen.add_publication(&PublicationContext {
            package_age_days: Some(2),
            first_version: Some(true),
            maintainer_changed: Some(false),
            provenance_dropped: None,
        });
        assert!(seen.contains(NewPackage));
        assert!(seen.contains(FirstVersion));
        assert!(!seen.contains(MaintainerChanged));
        assert!(!seen.contains(ProvenanceDropped));
        let mut old = RiskSignals::default();
        old.add_publication(&PublicationContext { package_age_days: Some(900), ..PublicationContext::default() });
        assert!(!old.contains(NewPackage));
    }
}
