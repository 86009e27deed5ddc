//! `airlock admin`: the admin API from a terminal. The token comes from
//! `AIRLOCK_TOKEN`, never from a flag (flags end up in shell history and `ps`).

use std::io::Write as _;
use std::process::ExitCode;

use airlock_config::EnvVars;
use anyhow::Context as _;
use serde_json::Value;

/// Arguments of `airlock admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Airlock's URL.
    #[arg(long, env = "AIRLOCK_REGISTRY", default_value = "http://127.0.0.1:4873", global = true)]
    pub registry: String,
    /// Print the API's JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// The admin actions.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// List versions, held first.
    List {
        /// Only this state: checking, cooling, held, released, rejected.
        #[arg(long)]
        state: Option<String>,
        /// Only packages whose name contains this.
        #[arg(long)]
        package: Option<String>,
        /// At most this many rows (the total is printed either way).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Show one version: state, findings, history.
    Show {
        /// Package name.
        package: String,
        /// Version.
        version: String,
    },
    /// Release a version now, whatever its age and findings.
    Approve {
        /// Package name.
        package: String,
        /// Version.
        version: String,
        /// Why (required; recorded in the audit log and the release record).
        #[arg(long, short)]
        comment: String,
    },
    /// Make a version never installable.
    Reject {
        /// Package name.
        package: String,
        /// Version.
        version: String,
        /// Why (required; shown to clients and recorded).
        #[arg(long, short)]
        comment: String,
    },
    /// Create an admin web UI user, or change its password (read from stdin).
    AddUser(super::users::AddUserArgs),
    /// The check queue: list entries with their attempts, or clear stuck ones.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Re-read the known-malware feed now and hold every known version it lists.
    RefreshFeed,
    /// Run a version's checks again.
    Recheck {
        /// Package name.
        package: String,
        /// Version.
        version: String,
        /// Why (optional).
        #[arg(long, short)]
        comment: Option<String>,
    },
    /// Accept one rule's findings for one package (every version, or a range): they no
    /// longer hold it, and show as `info` naming the waiver.
    Waive {
        /// The rule id, as in the findings (`install-script`).
        rule: String,
        /// `NAME` or `NAME@RANGE` (`left-pad@^1.3.0`, `@scope/name@>=2 <3`).
        spec: String,
        /// Why (required; recorded in the audit log and in every waived finding).
        #[arg(long, short)]
        reason: String,
        /// When it stops applying: a duration (`90d`) or an RFC 3339 time, at most a year.
        #[arg(long)]
        expires: String,
        /// Also re-check the package's held versions whose holding findings it covers.
        #[arg(long)]
        recheck_held: bool,
    },
    /// List the waivers: active, expired and revoked.
    Waivers,
    /// Revoke a waiver: it stops applying to versions checked from now on.
    Unwaive {
        /// The waiver's id (from `airlock admin waivers`).
        id: u64,
    },
}

/// `airlock admin queue ...`.
#[derive(Debug, clap::Subcommand)]
pub enum QueueCommand {
    /// Versions waiting for checks, with attempts and the last error.
    List,
    /// Take entries off the queue; versions not yet decided are held, never released.
    Clear {
        /// `NAME@VERSION` (`@scope/name@1.2.3`).
        spec: Option<String>,
        /// Every entry with a failed attempt and no check running.
        #[arg(long, conflicts_with = "spec")]
        all_stuck: bool,
        /// Why (required; recorded in the audit log).
        #[arg(long, short)]
        comment: String,
    },
}

/// Runs the command.
pub fn run(args: AdminArgs) -> anyhow::Result<ExitCode> {
    if let AdminCommand::AddUser(add_user) = &args.command {
        return super::users::run(add_user);
    }
    let token = std::env::var(EnvVars::TOKEN)
        .ok()
        .filter(|token| !token.is_empty())
        .with_context(|| format!("set {} to an admin token", EnvVars::TOKEN))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(run_async(args, token))
}

async fn run_async(args: AdminArgs, token: String) -> anyhow::Result<ExitCode> {
    let base = format!("{}/-/airlock/api", args.registry.trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(120)).build()?;
    let version_path = |package: &str, version: &str| {
        format!("{base}/packages/{}/versions/{version}", package.replacen('/', "%2f", 1))
    };
    let (request, kind) = match &args.command {
        AdminCommand::List { state, package, limit } => {
            let mut url = airlock_config::Url::parse(&format!("{base}/versions")).context("invalid --registry URL")?;
            if let Some(state) = state {
                url.query_pairs_mut().append_pair("state", state);
            }
            if let Some(package) = package {
                url.query_pairs_mut().append_pair("package", package);
            }
            url.query_pairs_mut().append_pair("limit", &limit.to_string());
            (client.get(url.as_str()), Kind::List)
        }
        AdminCommand::Show { package, version } => (client.get(version_path(package, version)), Kind::Version),
        AdminCommand::Approve { package, version, comment } => {
            (action(&client, version_path(package, version), "approve", Some(comment)), Kind::Decision)
        }
        AdminCommand::Reject { package, version, comment } => {
            (action(&client, version_path(package, version), "reject", Some(comment)), Kind::Decision)
        }
        AdminCommand::Recheck { package, version, comment } => {
            (action(&client, version_path(package, version), "recheck", comment.as_ref()), Kind::Decision)
        }
        AdminCommand::Queue(QueueCommand::List) => (client.get(format!("{base}/queue")), Kind::Queue),
        AdminCommand::Queue(QueueCommand::Clear { spec, all_stuck, comment }) => {
            let body = match (spec, all_stuck) {
                (Some(spec), false) => {
                    let (package, version) = split_spec(spec)?;
                    serde_json::json!({ "package": package, "version": version, "comment": comment })
                }
                (None, true) => serde_json::json!({ "all_stuck": true, "comment": comment }),
                _ => anyhow::bail!("give NAME@VERSION or --all-stuck"),
            };
            let request = client
                .post(format!("{base}/queue/clear"))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
            (request, Kind::Cleared)
        }
        AdminCommand::RefreshFeed => (client.post(format!("{base}/feeds/refresh")), Kind::FeedRefreshed),
        AdminCommand::Waive { rule, spec, reason, expires, recheck_held } => {
            let (package, versions) = split_package_range(spec);
            let body = serde_json::json!({
                "rule": rule,
                "package": package,
                "versions": versions,
                "reason": reason,
                "expires": expires,
                "recheck_held": recheck_held,
            });
            let request = client
                .post(format!("{base}/waivers"))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
            (request, Kind::Waiver)
        }
        AdminCommand::Waivers => (client.get(format!("{base}/waivers")), Kind::Waivers),
        AdminCommand::Unwaive { id } => (client.post(format!("{base}/waivers/{id}/revoke")), Kind::Waiver),
        AdminCommand::AddUser(_) => unreachable!("add-user is handled by `run` before any request"),
    };
    let response =
        request.bearer_auth(token).send().await.with_context(|| format!("connecting to {}", args.registry))?;
    let status = response.status();
    let bytes = response.bytes().await?;
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        let message = body["error"].as_str().unwrap_or("no error message");
        anyhow::bail!("the admin API answered HTTP {status}: {message}");
    }
    match print(&args, kind, &body) {
        // `airlock admin list | head`: the reader has all it wanted.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(error) => Err(error.into()),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

fn print(args: &AdminArgs, kind: Kind, body: &Value) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", serde_json::to_string_pretty(body)?)?;
        return stdout.flush();
    }
    match kind {
        Kind::List => print_list(&mut stdout, body)?,
        Kind::Version => print_version(&mut stdout, body)?,
        Kind::Decision => writeln!(
            stdout,
            "{}@{}: {}{}",
            text_of(&body["package"]),
            text_of(&body["version"]),
            text_of(&body["state"]),
            body["reason"].as_str().map(|reason| format!(" ({reason})")).unwrap_or_default()
        )?,
        Kind::Queue => print_queue(&mut stdout, body)?,
        Kind::Cleared => {
            for entry in body["cleared"].as_array().into_iter().flatten() {
                writeln!(stdout, "cleared {}@{}", text_of(&entry["package"]), text_of(&entry["version"]))?;
            }
            let cleared = body["cleared"].as_array().map_or(0, Vec::len);
            writeln!(stdout, "{cleared} {} cleared", plural(cleared, "entry", "entries"))?;
        }
        Kind::Waiver => {
            print_waiver(&mut stdout, body)?;
            for rechecked in body["rechecked"].as_array().into_iter().flatten() {
                writeln!(
                    stdout,
                    "  re-checked {}@{}: {}",
                    text_of(&body["package"]),
                    text_of(&rechecked["version"]),
                    text_of(&rechecked["state"])
                )?;
            }
        }
        Kind::Waivers => {
            let waivers = body["waivers"].as_array().cloned().unwrap_or_default();
            for waiver in &waivers {
                print_waiver(&mut stdout, waiver)?;
            }
            writeln!(stdout, "{} {}", waivers.len(), plural(waivers.len(), "waiver", "waivers"))?;
        }
        Kind::FeedRefreshed => writeln!(
            stdout,
            "feed reloaded: {} packages listed, {} versions newly held",
            body["listed_packages"], body["held"]
        )?,
    }
    stdout.flush()
}

fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}

enum Kind {
    List,
    Version,
    Decision,
    Queue,
    Cleared,
    FeedRefreshed,
    Waiver,
    Waivers,
}

/// Splits `name@range` (a scoped name starts with `@`); no `@` after the name means
/// every version.
fn split_package_range(spec: &str) -> (&str, Option<&str>) {
    match spec.rfind('@').filter(|&at| at > 0) {
        Some(at) => (&spec[..at], Some(&spec[at + 1..])),
        None => (spec, None),
    }
}

/// One line per waiver: id, status, what it accepts, until when, who, why.
fn print_waiver(out: &mut impl std::io::Write, waiver: &Value) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<6} {:<8} {} for {}@{} until {} by {}: {}",
        waiver["id"],
        text_of(&waiver["status"]),
        text_of(&waiver["rule"]),
        text_of(&waiver["package"]),
        waiver["versions"].as_str().unwrap_or("*"),
        text_of(&waiver["expires_at"]),
        text_of(&waiver["created_by"]),
        text_of(&waiver["reason"])
    )
}

/// Splits `name@version`, where a scoped name starts with `@`.
fn split_spec(spec: &str) -> anyhow::Result<(&str, &str)> {
    let at = spec.rfind('@').filter(|&at| at > 0).with_context(|| format!("expected NAME@VERSION, got {spec:?}"))?;
    Ok((&spec[..at], &spec[at + 1..]))
}

fn text_of(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

fn print_queue(out: &mut impl std::io::Write, body: &Value) -> std::io::Result<()> {
    writeln!(out, "{:<40} {:<16} {:<9} {:<8} LAST ERROR", "PACKAGE", "VERSION", "STATE", "ATTEMPTS")?;
    for entry in body["entries"].as_array().into_iter().flatten() {
        let attempts = format!(
            "{}/{}{}",
            entry["attempts"],
            body["max_attempts"],
            if entry["in_flight"].as_bool() == Some(true) { "*" } else { "" }
        );
        writeln!(
            out,
            "{:<40} {:<16} {:<9} {:<8} {}",
            text_of(&entry["package"]),
            text_of(&entry["version"]),
            text_of(&entry["state"]),
            attempts,
            text_of(&entry["last_error"])
        )?;
    }
    let total = body["total"].as_u64().unwrap_or(0) as usize;
    writeln!(out, "{total} {} (* = being checked now)", plural(total, "entry", "entries"))
}

fn action(client: &reqwest::Client, path: String, verb: &str, comment: Option<&String>) -> reqwest::RequestBuilder {
    client
        .post(format!("{path}/{verb}"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::json!({ "comment": comment }).to_string())
}

fn print_list(out: &mut impl std::io::Write, body: &Value) -> std::io::Result<()> {
    writeln!(out, "{:<9} {:<40} {:<16} REASON", "STATE", "PACKAGE", "VERSION")?;
    for version in body["versions"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "{:<9} {:<40} {:<16} {}",
            version["state"].as_str().unwrap_or(""),
            version["package"].as_str().unwrap_or(""),
            version["version"].as_str().unwrap_or(""),
            version["reason"].as_str().unwrap_or("")
        )?;
    }
    let shown = body["versions"].as_array().map_or(0, Vec::len);
    let total = body["total"].as_u64().unwrap_or(shown as u64) as usize;
    if shown < total {
        writeln!(out, "{shown} of {total} {} shown (--limit N for more)", plural(total, "version", "versions"))
    } else {
        writeln!(out, "{total} {}", plural(total, "version", "versions"))
    }
}

fn print_version(out: &mut impl std::io::Write, detail: &Value) -> std::io::Result<()> {
    let text = |value: &Value| value.as_str().unwrap_or("-").to_owned();
    writeln!(out, "{}@{}: {}", text(&detail["package"]), text(&detail["version"]), text(&detail["state"]))?;
    writeln!(out, "  reason:     {}", text(&detail["reason"]))?;
    writeln!(out, "  decided by: {}", text(&detail["decided_by"]))?;
    writeln!(out, "  integrity:  {}", text(&detail["integrity"]))?;
    writeln!(
        out,
        "  published:  {} (cooling until {})",
        text(&detail["effective_published"]),
        text(&detail["cooling_until"])
    )?;
    let findings = detail["checks"]["report"]["findings"].as_array().cloned().unwrap_or_default();
    writeln!(out, "  findings:   {}", findings.len())?;
    for finding in findings {
        let location = match (finding["location"]["file"].as_str(), finding["location"]["line"].as_u64()) {
            (Some(file), Some(line)) => format!(" {file}:{line}"),
            (Some(file), None) => format!(" {file}"),
            _ => String::new(),
        };
        writeln!(
            out,
            "    [{}] {}{location}: {}",
            text(&finding["severity"]),
            text(&finding["rule"]),
            text(&finding["message"])
        )?;
        if let Some(excerpt) = finding["excerpt"].as_str() {
            for line in excerpt.lines().take(3) {
                writeln!(out, "        | {line}")?;
            }
        }
    }
    writeln!(out, "  history:")?;
    for event in detail["history"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "    {} {} {} -> {} {}",
            text(&event["time"]),
            text(&event["actor"]),
            text(&event["action"]),
            text(&event["to"]),
            event["comment"].as_str().unwrap_or("")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_ranges_split_after_the_scope() {
        assert_eq!(split_package_range("left-pad"), ("left-pad", None));
        assert_eq!(split_package_range("left-pad@^1.3.0"), ("left-pad", Some("^1.3.0")));
        assert_eq!(split_package_range("@scope/name"), ("@scope/name", None));
        assert_eq!(split_package_range("@scope/name@>=2 <3"), ("@scope/name", Some(">=2 <3")));
    }
}
