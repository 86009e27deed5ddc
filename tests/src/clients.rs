//! Real package managers (pnpm, yarn classic, yarn berry, bun) driven against Airlock,
//! each with its own temporary home, caches and configuration, so that nothing on the
//! machine (a `~/.npmrc`, a global store, `npm_config_*` variables) leaks in.
//!
//! The binaries come from `tests/clients/node_modules` (pinned in
//! `tests/clients/package-lock.json`, installed with `npm ci --prefix tests/clients`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::{FakeRegistry, PackageVersion, long_ago};

/// The command that installs the pinned clients.
pub const INSTALL_CLIENTS: &str = "npm ci --prefix tests/clients";

/// A package manager under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// pnpm (10.x).
    Pnpm,
    /// Yarn classic (1.22).
    YarnClassic,
    /// Yarn berry (4.x, `@yarnpkg/cli-dist`).
    YarnBerry,
    /// Bun (the `bun` npm package's binary).
    Bun,
}

impl Client {
    /// Every client.
    pub const ALL: [Client; 4] = [Client::Pnpm, Client::YarnClassic, Client::YarnBerry, Client::Bun];

    /// A short name for messages.
    pub fn label(self) -> &'static str {
        match self {
            Client::Pnpm => "pnpm",
            Client::YarnClassic => "yarn classic",
            Client::YarnBerry => "yarn berry",
            Client::Bun => "bun",
        }
    }

    /// The program and leading arguments that run this client. Panics, naming the
    /// install command, when the pinned clients are not installed.
    fn program(self) -> (PathBuf, Vec<PathBuf>) {
        let modules = clients_dir().join("node_modules");
        // Both yarns ship a `yarn` bin; `.bin/yarn` is whichever npm linked last, so
        // each is run through node from its own package.
        let (program, script) = match self {
            Client::Pnpm => (None, modules.join("pnpm/bin/pnpm.cjs")),
            Client::YarnClassic => (None, modules.join("yarn/bin/yarn.js")),
            Client::YarnBerry => (None, modules.join("@yarnpkg/cli-dist/bin/yarn.js")),
            Client::Bun => (Some(modules.join(".bin/bun")), modules.join(".bin/bun")),
        };
        assert!(
            script.exists(),
            "{} is not installed at {}: run `{INSTALL_CLIENTS}` (from the repository root) before the client tests",
            self.label(),
            script.display()
        );
        match program {
            Some(program) => (program, Vec::new()),
            None => (PathBuf::from("node"), vec![script]),
        }
    }
}

/// `tests/clients`.
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("clients")
}

/// A project directory and an isolated home for one client, configured for a registry.
pub struct ClientProject {
    /// The client.
    pub client: Client,
    home: tempfile::TempDir,
    project: tempfile::TempDir,
}

/// Registry settings written into a project's configuration.
#[derive(Clone, Debug, Default)]
pub struct RegistryConfig {
    /// The registry's base URL (with or without a trailing slash).
    pub url: String,
    /// A client token (`_authToken`, `npmAuthToken`, bunfig `token`).
    pub token: Option<String>,
    /// Whether to send the token with every request (yarn classic's `always-auth`,
    /// berry's `npmAlwaysAuth`); other clients always send it.
    pub always_auth: bool,
}

impl RegistryConfig {
    /// Anonymous access to `url`.
    pub fn anonymous(url: &str) -> RegistryConfig {
        RegistryConfig { url: url.to_owned(), token: None, always_auth: false }
    }
}

impl ClientProject {
    /// A project with a `package.json` depending on `dependencies`, configured so the
    /// client uses `registry` and keeps every cache in its temporary home.
    pub fn new(client: Client, registry: &RegistryConfig, dependencies: serde_json::Value) -> ClientProject {
        let project =
            ClientProject { client, home: tempfile::tempdir().unwrap(), project: tempfile::tempdir().unwrap() };
        std::fs::write(
            project.dir().join("package.json"),
            serde_json::to_string_pretty(&json!({
                "name": "client-project",
                "version": "1.0.0",
                "private": true,
                "license": "MIT",
                "dependencies": dependencies
            }))
            .unwrap(),
        )
        .unwrap();
        project.configure(registry);
        project
    }

    /// (Re)writes the client's configuration for `registry`.
    pub fn configure(&self, registry: &RegistryConfig) {
        let url = format!("{}/", registry.url.trim_end_matches('/'));
        let project_dir = self.dir();
        let home_dir = self.home();
        // `//host:port/:_authToken=...`, npm's per-registry credential key.
        let auth_key = format!("{}:_authToken", url.trim_start_matches("http:").trim_start_matches("https:"));
        let mut npmrc = format!("registry={url}\nupdate-notifier=false\nfund=false\naudit=false\n");
        if let Some(token) = &registry.token {
            npmrc.push_str(&format!("{auth_key}={token}\n"));
            if registry.always_auth {
                npmrc.push_str("always-auth=true\n");
            }
        }
        // Every client reads `.npmrc`; the user one is in the temporary home.
        std::fs::write(home_dir.join(".npmrc"), &npmrc).unwrap();
        match self.client {
            Client::Pnpm => {
                let settings = format!(
                    "store-dir={}\ncache-dir={}\nstate-dir={}\n",
                    home_dir.join("pnpm-store").display(),
                    home_dir.join("pnpm-cache").display(),
                    home_dir.join("pnpm-state").display()
                );
                std::fs::write(project_dir.join(".npmrc"), format!("{npmrc}{settings}")).unwrap();
            }
            Client::YarnClassic => {
                std::fs::write(project_dir.join(".npmrc"), &npmrc).unwrap();
                std::fs::write(
                    project_dir.join(".yarnrc"),
                    format!(
                        "registry \"{url}\"\ncache-folder \"{}\"\ndisable-self-update-check true\n",
                        home_dir.join("yarn-cache").display()
                    ),
                )
                .unwrap();
            }
            Client::YarnBerry => {
                let host = url.trim_start_matches("http://").split([':', '/']).next().unwrap_or_default();
                // The mirror (a copy of every archive in the global folder) is off, so
                // a re-install really downloads; berry's own age gate is off, so
                // Airlock's cooling period is the one under test.
                let mut yarnrc = format!(
                    "npmRegistryServer: \"{}\"\nunsafeHttpWhitelist:\n  - \"{host}\"\nenableGlobalCache: false\n\
                     enableMirror: false\ncacheFolder: \"{}\"\nglobalFolder: \"{}\"\nnodeLinker: node-modules\n\
                     npmMinimalAgeGate: 0\nenableTelemetry: false\nenableProgressBars: false\nenableHyperlinks: false\n\
                     enableImmutableInstalls: false\n",
                    url.trim_end_matches('/'),
                    home_dir.join("yarn-berry-cache").display(),
                    home_dir.join("yarn-berry-global").display()
                );
                if let Some(token) = &registry.token {
                    yarnrc.push_str(&format!("npmAuthToken: \"{token}\"\nnpmAlwaysAuth: {}\n", registry.always_auth));
                }
                std::fs::write(project_dir.join(".yarnrc.yml"), yarnrc).unwrap();
            }
            Client::Bun => {
                let registry_value = match &registry.token {
                    Some(token) => format!("{{ url = \"{url}\", token = \"{token}\" }}"),
                    None => format!("\"{url}\""),
                };
                std::fs::write(
                    project_dir.join("bunfig.toml"),
                    format!(
                        "[install]\nregistry = {registry_value}\n\n[install.cache]\ndir = \"{}\"\n",
                        home_dir.join("bun-cache").display()
                    ),
                )
                .unwrap();
            }
        }
    }

    /// The project directory.
    pub fn dir(&self) -> &Path {
        self.project.path()
    }

    /// The isolated home directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Forgets everything installed or cached, as on a fresh machine with only the
    /// checked-in files (`package.json`, the lockfile, the client's configuration).
    pub fn clear_machine_state(&self) {
        for entry in std::fs::read_dir(self.home()).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name() != Some(std::ffi::OsStr::new(".npmrc")) {
                remove(&path);
            }
        }
        remove(&self.dir().join("node_modules"));
        remove(&self.dir().join(".yarn"));
    }

    /// A command for the client in the project, with a hermetic environment.
    pub fn command(&self, arguments: &[&str]) -> Command {
        let (program, leading) = self.client.program();
        let mut command = Command::new(program);
        command.args(leading).args(arguments).current_dir(self.dir());
        hermetic_env(&mut command, self.home());
        command
    }

    /// Runs the client; returns its output whatever the exit status. Panics, with what
    /// it printed so far, if it runs longer than [`CLIENT_TIMEOUT`].
    pub fn run(&self, arguments: &[&str]) -> Output {
        output_within(self.command(arguments), &format!("{} {arguments:?}", self.client.label()))
    }

    /// Runs the client and panics with its output unless it succeeded.
    pub fn run_ok(&self, arguments: &[&str]) -> Output {
        let output = self.run(arguments);
        assert!(
            output.status.success(),
            "{} {arguments:?} failed ({}):\n{}",
            self.client.label(),
            output.status,
            combined(&output)
        );
        output
    }

    /// The version of the package reached by following `path` from the project, as
    /// Node resolves it: `["chain-a", "chain-b"]` is the `chain-b` that `chain-a` gets.
    pub fn resolved_version(&self, path: &[&str]) -> String {
        let script = "let from = process.cwd();\n\
            for (const name of process.argv.slice(1)) {\n\
              const manifest = require.resolve(name + '/package.json', { paths: [from] });\n\
              from = require('path').dirname(require('fs').realpathSync(manifest));\n\
            }\n\
            console.log(require(require('path').join(from, 'package.json')).version);";
        let mut command = Command::new("node");
        command.arg("-e").arg(script).args(path).current_dir(self.dir());
        hermetic_env(&mut command, self.home());
        let output = output_within(command, &format!("node resolving {path:?}"));
        assert!(output.status.success(), "resolving {path:?}: {}", combined(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Runs an installed bin from `node_modules/.bin`; returns its stdout.
    pub fn run_bin(&self, name: &str) -> String {
        let mut command = Command::new(self.dir().join("node_modules/.bin").join(name));
        command.current_dir(self.dir());
        hermetic_env(&mut command, self.home());
        let output = output_within(command, &format!("the {name} bin"));
        assert!(output.status.success(), "the {name} bin failed: {}", combined(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Reads a file in the project.
    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir().join(path)).unwrap_or_else(|error| panic!("reading {path}: {error}"))
    }

    /// The lockfile the client writes.
    pub fn lockfile_name(&self) -> &'static str {
        match self.client {
            Client::Pnpm => "pnpm-lock.yaml",
            Client::YarnClassic | Client::YarnBerry => "yarn.lock",
            Client::Bun => "bun.lock",
        }
    }

    /// The lockfile's text.
    pub fn lockfile(&self) -> String {
        self.read(self.lockfile_name())
    }

    /// The arguments of a lockfile-only re-install (fails instead of changing the lockfile).
    pub fn frozen_install(&self) -> &'static [&'static str] {
        match self.client {
            Client::Pnpm | Client::YarnClassic | Client::Bun => &["install", "--frozen-lockfile"],
            Client::YarnBerry => &["install", "--immutable"],
        }
    }
}

/// How long one client command may take. Installs here take about a second; a client
/// waiting on a response that never comes must fail the test, not hang CI.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `command` (in its own process group) with captured output; after
/// [`CLIENT_TIMEOUT`] kills the group and panics with the output so far.
fn output_within(mut command: Command, what: &str) -> Output {
    use std::io::Read as _;
    use std::os::unix::process::CommandExt as _;
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = command.spawn().unwrap_or_else(|error| panic!("starting {what}: {error}"));
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap_or_else(|error| panic!("waiting for {what}: {error}")) {
            break status;
        }
        if Instant::now() >= deadline {
            // The whole group: clients start helpers (node workers, lifecycle shells).
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.kill();
            let status = child.wait().unwrap();
            let output = Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() };
            // A client that hangs is almost always waiting on a server that stopped
            // answering; a test runtime whose workers are stuck cannot shut down, so a
            // panic would hang the whole run. Fail the run now, loudly.
            // Straight to stderr: the test harness's capture would swallow `eprintln!`.
            let message = format!(
                "\n{what} did not finish within {CLIENT_TIMEOUT:?} and was killed; exiting the test binary \
                 (a hung client usually means a hung Airlock: rerun with AIRLOCK_TEST_LOG=debug):\n{}\n",
                combined(&output)
            );
            let _ = std::io::Write::write_all(&mut std::io::stderr(), message.as_bytes());
            std::process::exit(101);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

fn remove(path: &Path) {
    if path.is_dir() {
        std::fs::remove_dir_all(path).unwrap_or_else(|error| panic!("removing {}: {error}", path.display()));
    } else if path.exists() {
        std::fs::remove_file(path).unwrap_or_else(|error| panic!("removing {}: {error}", path.display()));
    }
}

/// Clears every package-manager variable inherited from the caller and points every
/// home, cache and state directory into `home`.
fn hermetic_env(command: &mut Command, home: &Path) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let lower = key.to_ascii_lowercase();
        if ["npm_", "yarn_", "pnpm_", "bun_", "corepack_", "xdg_"].iter().any(|prefix| lower.starts_with(prefix))
            || lower == "ci"
        {
            command.env_remove(&key);
        }
    }
    command
        .env("HOME", home)
        .env("USERPROFILE", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("npm_config_userconfig", home.join(".npmrc"))
        .env("NO_COLOR", "1")
        .env("FORCE_COLOR", "0")
        .env("DO_NOT_TRACK", "1")
        .env("YARN_ENABLE_TELEMETRY", "0")
        .env("YARN_IGNORE_PATH", "1")
        .env("BUN_INSTALL_CACHE_DIR", home.join("bun-cache"))
        .env("BUN_INSTALL", home.join(".bun"));
}

/// Both streams of an output, for assertions and messages.
pub fn combined(output: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The project dependencies matching [`publish_client_tree`].
pub fn client_tree_dependencies() -> serde_json::Value {
    let mut dependencies = json!({"@acme/logger": "^1.0.0", "chain-a": "^1.0.0", "hello-cli": "1.0.0"});
    for index in 0..PARALLEL_PACKAGES {
        dependencies[format!("@acme/part-{index}")] = json!("^1.0.0");
        dependencies[format!("part-{index}")] = json!("^1.0.0");
    }
    dependencies
}

/// How many extra scoped and unscoped leaf packages the tree has, so clients that
/// fetch in parallel (bun, pnpm) have many first downloads in flight at once.
const PARALLEL_PACKAGES: usize = 4;

/// Publishes the client test tree, all long ago: `@acme/logger` 1.0.0 and 1.1.0,
/// `chain-a` 1.0.0 → `chain-b` ^1.0.0 → `chain-c` ^2.0.0 (2.0.1; 3.0.0 also exists),
/// `hello-cli` 1.0.0 with a bin, and leaves `@acme/part-N` and `part-N` 1.0.0.
pub fn publish_client_tree(upstream: &FakeRegistry) {
    upstream.publish(PackageVersion::new("@acme/logger", "1.0.0", long_ago()));
    upstream.publish(PackageVersion::new("@acme/logger", "1.1.0", long_ago()));
    upstream.publish(
        PackageVersion::new("chain-a", "1.0.0", long_ago())
            .with_manifest(json!({"dependencies": {"chain-b": "^1.0.0"}})),
    );
    upstream.publish(
        PackageVersion::new("chain-b", "1.2.0", long_ago())
            .with_manifest(json!({"dependencies": {"chain-c": "^2.0.0"}})),
    );
    upstream.publish(PackageVersion::new("chain-c", "2.0.1", long_ago()));
    upstream.publish(PackageVersion::new("chain-c", "3.0.0", long_ago()));
    upstream.publish(
        PackageVersion::new("hello-cli", "1.0.0", long_ago())
            .with_manifest(json!({"bin": {"hello-cli": "cli.js"}}))
            .with_file("cli.js", b"#!/usr/bin/env node\nconsole.log('hello from hello-cli');\n"),
    );
    for index in 0..PARALLEL_PACKAGES {
        upstream.publish(PackageVersion::new(&format!("@acme/part-{index}"), "1.0.0", long_ago()));
        upstream.publish(PackageVersion::new(&format!("part-{index}"), "1.0.0", long_ago()));
    }
}

/// Publishes `fresh-pkg` 1.0.0 (long ago) and 2.0.0 (now, so inside any cooling period).
pub fn publish_fresh_package(upstream: &FakeRegistry) {
    upstream.publish(PackageVersion::new("fresh-pkg", "1.0.0", long_ago()));
    upstream.publish(PackageVersion::new("fresh-pkg", "2.0.0", chrono::Utc::now()));
}

/// Runs the machine's `npm` (not a pinned one: npm comes with node) in `home` with an
/// isolated cache and user config, against `registry`; returns its output whatever the
/// exit status.
pub fn npm(home: &Path, registry: &str, arguments: &[&str]) -> Output {
    npm_in(home, home, registry, arguments)
}

/// Runs npm in `project` with an isolated home, cache and user config (`home/.npmrc`),
/// pointed at `registry`, killed after the client time limit.
pub fn npm_in(project: &Path, home: &Path, registry: &str, arguments: &[&str]) -> Output {
    let registry = format!("{}/", registry.trim_end_matches('/'));
    let mut command = Command::new("npm");
    command
        .args(arguments)
        .args(["--registry", &registry, "--no-audit", "--no-fund"])
        .arg("--cache")
        .arg(home.join("npm-cache"))
        .current_dir(project);
    hermetic_env(&mut command, home);
    command.env("npm_config_update_notifier", "false");
    output_within(command, &format!("npm {arguments:?}"))
}
