//! The check worker: the static scan of one version runs in a subprocess of the same
//! binary (`airlock internal check-worker`), so a package that exhausts memory, spins the
//! CPU or crashes the parser takes down only that subprocess, never the server.
//!
//! The server side ([`CheckWorker::scan`]) starts the worker, waits for its ready line,
//! limits it with `prlimit` (address space, CPU time, no new file descriptors, no files,
//! no core dumps), and only then writes the tarballs to its stdin; the worker writes one
//! JSON [`WorkerResponse`] to stdout. Everything else about the outcome is a
//! [`WorkerFailure`] that the pipeline stores as a finding.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{ExitCode, ExitStatus, Stdio};
use std::time::Duration;

use airlock_config::ChecksConfig;
use airlock_scanner::{Indicators, PublicationContext, ScanOptions, ScanReport};
use rustix::process::{Pid, Resource, Rlimit};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::review::ReviewMaterial;

/// The worker's first line on stdout: it started and waits for limits and input.
const READY_LINE: &[u8] = b"airlock-check-worker ready\n";
/// The largest response accepted from a worker. A report is findings and counts, each
/// bounded by the scanner; more than this is a broken or hostile worker.
const MAX_RESPONSE_BYTES: u64 = 64 << 20;
/// How much of the worker's stderr is kept for the failure message.
const MAX_STDERR_BYTES: u64 = 16 << 10;
/// Descriptors the worker may hold: stdin, stdout, stderr. `RLIMIT_NOFILE` at this
/// value makes every `socket()` and `open()` fail, which is the worker's "no network".
const WORKER_FILE_DESCRIPTORS: u64 = 3;

/// What the server sends after the ready line: this header as one JSON line, then the
/// tarball's bytes, then the previous tarball's bytes.
#[derive(Debug, Serialize, Deserialize)]
struct WorkerRequest {
    tarball_size: u64,
    previous_size: Option<u64>,
    context: ScanContext,
}

/// What a check knows besides the bytes: the known-malware feed's part that concerns
/// this package and who published the version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanContext {
    /// Indicators of compromise and this package's listing (`Indicators::for_package`).
    pub indicators: Indicators,
    /// Age, first version, publisher change, provenance dropped.
    pub publication: PublicationContext,
}

impl ScanContext {
    fn options(self) -> ScanOptions {
        ScanOptions {
            indicators: std::sync::Arc::new(self.indicators),
            publication: self.publication,
            ..ScanOptions::default()
        }
    }
}

/// What the worker writes on stdout when it finished.
#[derive(Debug, Serialize, Deserialize)]
pub struct WorkerResponse {
    /// The scanner's report, before the policy's overrides.
    pub report: ScanReport,
    /// What the admin page shows from the files, so it never re-reads the tarball.
    pub review: ReviewMaterial,
}

/// Why a worker gave no report. The message names the limit it hit and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerFailure {
    /// It ran past its CPU-time limit or its wall-clock deadline and was killed.
    TimedOut(String),
    /// It died (out of memory, a signal, a nonzero exit) or answered garbage.
    Crashed(String),
}

impl WorkerFailure {
    /// The stored finding's rule id.
    pub fn rule(&self) -> &'static str {
        match self {
            WorkerFailure::TimedOut(_) => "check-timeout",
            WorkerFailure::Crashed(_) => "check-crashed",
        }
    }

    /// What happened, in one sentence.
    pub fn message(&self) -> &str {
        match self {
            WorkerFailure::TimedOut(message) | WorkerFailure::Crashed(message) => message,
        }
    }
}

/// Starts bounded check workers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CheckWorker {
    executable: PathBuf,
    memory_limit: u64,
    cpu_seconds: u64,
    deadline: Duration,
}

impl CheckWorker {
    /// A worker launcher from `[checks]`; the executable defaults to the running one.
    pub fn new(config: &ChecksConfig) -> anyhow::Result<CheckWorker> {
        let executable = match &config.worker_executable {
            Some(path) => path.clone(),
            None => std::env::current_exe()
                .map_err(|error| anyhow::anyhow!("finding the airlock executable for check workers: {error}"))?,
        };
        Ok(CheckWorker {
            executable,
            memory_limit: config.worker_memory_limit,
            cpu_seconds: config.worker_cpu_time.as_secs(),
            deadline: config.worker_deadline,
        })
    }

    /// Scans `tarball` (and diffs it against `previous`) in a fresh, limited worker.
    pub async fn scan(
        &self,
        tarball: &[u8],
        previous: Option<&[u8]>,
        context: ScanContext,
    ) -> Result<WorkerResponse, WorkerFailure> {
        let mut command = tokio::process::Command::new(&self.executable);
        command
            .args(["internal", "check-worker"])
            // The worker needs nothing from the environment, and the server's holds
            // tokens and secrets.
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a deadline kills everything it might start.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|error| {
            WorkerFailure::Crashed(format!("the check worker {} could not start: {error}", self.executable.display()))
        })?;
        let pid = child.id().and_then(|id| Pid::from_raw(id as i32));
        let (Some(pid), Some(mut stdin), Some(mut stdout), Some(stderr)) =
            (pid, child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(WorkerFailure::Crashed("the check worker exited before it started".into()));
        };

        let exchange = async {
            let mut ready = vec![0u8; READY_LINE.len()];
            if stdout.read_exact(&mut ready).await.is_err() || ready != READY_LINE {
                return Err(WorkerFailure::Crashed("the check worker did not start (no ready line)".into()));
            }
            // The limits are in place before the first byte of package data reaches
            // the worker, so nothing the package contains runs unlimited.
            self.limit(pid).map_err(|error| {
                WorkerFailure::Crashed(format!("the check worker could not be limited (prlimit): {error}"))
            })?;
            let header = WorkerRequest {
                tarball_size: tarball.len() as u64,
                previous_size: previous.map(|bytes| bytes.len() as u64),
                context,
            };
            let mut header_line = serde_json::to_vec(&header).unwrap_or_default();
            header_line.push(b'\n');
            let send = async {
                // A worker that dies early closes the pipe; its exit status says why.
                let _ = async {
                    stdin.write_all(&header_line).await?;
                    stdin.write_all(tarball).await?;
                    if let Some(previous) = previous {
                        stdin.write_all(previous).await?;
                    }
                    stdin.shutdown().await
                }
                .await;
                drop(stdin);
            };
            let mut response = Vec::new();
            let mut bounded_stdout = (&mut stdout).take(MAX_RESPONSE_BYTES + 1);
            let receive = bounded_stdout.read_to_end(&mut response);
            let mut error_output = Vec::new();
            let mut bounded_stderr = stderr.take(MAX_STDERR_BYTES);
            let receive_errors = bounded_stderr.read_to_end(&mut error_output);
            let ((), received, _) = tokio::join!(send, receive, receive_errors);
            let status = child
                .wait()
                .await
                .map_err(|error| WorkerFailure::Crashed(format!("waiting for the check worker failed: {error}")))?;
            if let Err(error) = received {
                return Err(WorkerFailure::Crashed(format!("reading the check worker's report failed: {error}")));
            }
            Ok((status, response, error_output))
        };
        match tokio::time::timeout(self.deadline, exchange).await {
            Ok(Ok((status, response, error_output))) => self.outcome(status, &response, &error_output),
            Ok(Err(failure)) => {
                self.kill(pid);
                Err(failure)
            }
            Err(_) => {
                self.kill(pid);
                let _ = child.wait().await;
                Err(WorkerFailure::TimedOut(format!(
                    "The check did not finish within its wall-clock deadline of {} (checks.worker_deadline) and was killed.",
                    airlock_config::format_duration(self.deadline)
                )))
            }
        }
    }

    /// Applies the limits to the started worker.
    fn limit(&self, pid: Pid) -> rustix::io::Result<()> {
        let exactly = |value: u64| Rlimit { current: Some(value), maximum: Some(value) };
        rustix::process::prlimit(Some(pid), Resource::As, exactly(self.memory_limit))?;
        // SIGXCPU at the soft limit; SIGKILL a second later should it be caught.
        rustix::process::prlimit(
            Some(pid),
            Resource::Cpu,
            Rlimit { current: Some(self.cpu_seconds), maximum: Some(self.cpu_seconds + 1) },
        )?;
        rustix::process::prlimit(Some(pid), Resource::Nofile, exactly(WORKER_FILE_DESCRIPTORS))?;
        rustix::process::prlimit(Some(pid), Resource::Fsize, exactly(0))?;
        rustix::process::prlimit(Some(pid), Resource::Core, exactly(0))?;
        Ok(())
    }

    /// Kills the worker's process group; it may already be gone.
    fn kill(&self, pid: Pid) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }

    /// Reads a finished worker's exit status and output.
    fn outcome(
        &self,
        status: ExitStatus,
        response: &[u8],
        error_output: &[u8],
    ) -> Result<WorkerResponse, WorkerFailure> {
        use std::os::unix::process::ExitStatusExt as _;
        let stderr_text = String::from_utf8_lossy(error_output);
        let last_line = stderr_text.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("").trim();
        let said =
            if last_line.is_empty() { String::new() } else { format!(" It said: {}", crate::npm::quote(last_line)) };
        let memory = format!(
            "The check ran out of memory: its address-space limit of {} (checks.worker_memory_limit) was reached and the worker died.",
            human_bytes(self.memory_limit)
        );
        if stderr_text.contains("memory allocation of") {
            return Err(WorkerFailure::Crashed(format!("{memory}{said}")));
        }
        if let Some(signal) = status.signal() {
            if signal == rustix::process::Signal::XCPU.as_raw() {
                return Err(WorkerFailure::TimedOut(format!(
                    "The check used up its CPU-time limit of {}s (checks.worker_cpu_time) and was killed.",
                    self.cpu_seconds
                )));
            }
            return Err(WorkerFailure::Crashed(format!(
                "The check worker was killed by signal {signal} (limits: {} of memory, checks.worker_memory_limit).{said}",
                human_bytes(self.memory_limit)
            )));
        }
        if !status.success() {
            return Err(WorkerFailure::Crashed(format!(
                "The check worker exited with status {}.{said}",
                status.code().unwrap_or(-1)
            )));
        }
        if response.len() as u64 > MAX_RESPONSE_BYTES {
            return Err(WorkerFailure::Crashed(format!(
                "The check worker wrote a report larger than {}.",
                human_bytes(MAX_RESPONSE_BYTES)
            )));
        }
        serde_json::from_slice(response)
            .map_err(|error| WorkerFailure::Crashed(format!("The check worker wrote an unreadable report: {error}.")))
    }
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        bytes if bytes >= 1 << 30 && bytes % (1 << 30) == 0 => format!("{} GiB", bytes >> 30),
        bytes if bytes >= 1 << 20 => format!("{} MiB", bytes >> 20),
        bytes => format!("{bytes} bytes"),
    }
}

/// The worker's side: `airlock internal check-worker`. Says it is ready, reads one
/// request from stdin once the server limited it, writes one response to stdout.
pub fn run_check_worker() -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(READY_LINE).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::from(3);
    }
    let mut input = Vec::new();
    if let Err(error) = std::io::stdin().lock().read_to_end(&mut input) {
        let _ = writeln!(std::io::stderr(), "airlock check-worker: reading the request: {error}");
        return ExitCode::from(3);
    }
    // Only the server starts workers, and it limits them before sending input; one
    // started any other way would check a package with no limits at all.
    if rustix::process::getrlimit(Resource::As).current.is_none() {
        let _ = writeln!(std::io::stderr(), "airlock check-worker: refusing to run without an address-space limit");
        return ExitCode::from(3);
    }
    let response = match parse_request(&input) {
        Ok(Request { tarball, previous, context }) => check(tarball, previous, context),
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "airlock check-worker: {message}");
            return ExitCode::from(3);
        }
    };
    // Serialising plain report structs cannot fail.
    let bytes = serde_json::to_vec(&response).unwrap_or_default();
    if stdout.write_all(&bytes).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::from(3);
    }
    ExitCode::SUCCESS
}

/// The work itself, also used in-process by benchmarks and unit tests.
pub fn check(tarball: &[u8], previous: Option<&[u8]>, context: ScanContext) -> WorkerResponse {
    let options = context.options();
    let report = airlock_scanner::scan_tarball(tarball, previous, &options);
    let review = ReviewMaterial::collect(&report, tarball, previous, &options);
    WorkerResponse { report, review }
}

/// One parsed request: the tarball, the previous version's, and the context.
#[derive(Debug, PartialEq, Eq)]
struct Request<'a> {
    tarball: &'a [u8],
    previous: Option<&'a [u8]>,
    context: ScanContext,
}

fn parse_request(input: &[u8]) -> Result<Request<'_>, String> {
    let newline = input.iter().position(|&byte| byte == b'\n').ok_or("the request has no header line")?;
    let header: WorkerRequest =
        serde_json::from_slice(&input[..newline]).map_err(|error| format!("unreadable request header: {error}"))?;
    let body = &input[newline + 1..];
    let tarball_size = usize::try_from(header.tarball_size).map_err(|_| "tarball size out of range")?;
    let previous_size = usize::try_from(header.previous_size.unwrap_or(0)).map_err(|_| "size out of range")?;
    if tarball_size.checked_add(previous_size) != Some(body.len()) {
        return Err(format!("the request declares {tarball_size} + {previous_size} bytes but has {}", body.len()));
    }
    let (tarball, rest) = body.split_at(tarball_size);
    Ok(Request { tarball, previous: header.previous_size.map(|_| rest), context: header.context })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tarball_size: u64, previous_size: Option<u64>, context: ScanContext) -> Vec<u8> {
        let mut input = serde_json::to_vec(&WorkerRequest { tarball_size, previous_size, context }).unwrap();
        input.push(b'\n');
        input
    }

    #[test]
    fn requests_split_into_the_declared_tarballs_and_carry_their_context() {
        let context = ScanContext {
            indicators: Indicators::default(),
            publication: PublicationContext { first_version: Some(true), ..PublicationContext::default() },
        };
        let mut input = request(3, Some(2), context.clone());
        input.extend_from_slice(b"abcde");
        assert_eq!(parse_request(&input), Ok(Request { tarball: b"abc", previous: Some(b"de"), context }));
        let mut input = request(3, None, ScanContext::default());
        input.extend_from_slice(b"abc");
        assert_eq!(
            parse_request(&input),
            Ok(Request { tarball: b"abc", previous: None, context: ScanContext::default() })
        );
        input.push(b'!');
        assert_eq!(parse_request(&input), Err("the request declares 3 + 0 bytes but has 4".into()));
    }

    /// A launcher whose "worker" is a shell script that says it is ready, then `body`.
    fn script_worker(directory: &std::path::Path, body: &str, deadline: Duration) -> CheckWorker {
        use std::os::unix::fs::PermissionsExt as _;
        let path = directory.join("worker.sh");
        std::fs::write(&path, format!("#!/bin/sh\nprintf 'airlock-check-worker ready\\n'\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        CheckWorker::new(&ChecksConfig {
            worker_memory_limit: 512 << 20,
            worker_cpu_time: Duration::from_secs(5),
            worker_deadline: deadline,
            max_attempts: 2,
            worker_executable: Some(path),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_worker_that_dies_is_a_crash_naming_the_signal_and_the_memory_limit() {
        let directory = tempfile::tempdir().unwrap();
        let worker = script_worker(directory.path(), "kill -KILL $$", Duration::from_secs(10));
        let failure = worker.scan(b"tarball", None, ScanContext::default()).await.unwrap_err();
        assert_eq!(failure.rule(), "check-crashed");
        assert!(failure.message().contains("killed by signal 9"), "{}", failure.message());
        assert!(failure.message().contains("512 MiB of memory, checks.worker_memory_limit"), "{}", failure.message());
    }

    #[tokio::test]
    async fn a_worker_past_its_deadline_is_killed_and_timed_out() {
        let directory = tempfile::tempdir().unwrap();
        let worker = script_worker(directory.path(), "while :; do :; done", Duration::from_millis(300));
        let started = std::time::Instant::now();
        let failure = worker.scan(b"tarball", None, ScanContext::default()).await.unwrap_err();
        assert_eq!(failure.rule(), "check-timeout");
        assert!(failure.message().contains("checks.worker_deadline"), "{}", failure.message());
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_worker_that_answers_garbage_is_a_crash() {
        let directory = tempfile::tempdir().unwrap();
        let worker = script_worker(directory.path(), "printf 'not json'", Duration::from_secs(10));
        let failure = worker.scan(b"tarball", None, ScanContext::default()).await.unwrap_err();
        assert_eq!(failure.rule(), "check-crashed");
        assert!(failure.message().contains("unreadable report"), "{}", failure.message());
    }

    #[test]
    fn limits_read_in_human_units() {
        assert_eq!(human_bytes(1 << 30), "1 GiB");
        assert_eq!(human_bytes(96 << 20), "96 MiB");
        assert_eq!(human_bytes(512), "512 bytes");
    }
}
