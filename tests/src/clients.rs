//! Real package managers (pnpm, yarn classic, yarn berry, bun) driven against Airlock,
//! each with its own temporary home, caches and configuration, so that nothing on the
//! machine (a `~/.npmrc`, a global store, `npm_config_*` variables) leaks in.
//!
//! The binaries come from `tests/clients/node_modules` (pinned in
//! `tests/clients/package-lock.json`, installed with `npm ci --prefix tests/clients`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// A project directory and an isolated home for one client, configured for `registry`.
pub struct ClientProject {
    /// The client.
    pub client: Client,
    /// The registry URL, with a trailing slash.
    pub registry: String,
    home: tempfile::TempDir,
    project: tempfile::TempDir,
}

impl ClientProject {
    /// A project with `package.json` depending on `dependencies`, configured so the
    /// client uses `registry` (Airlock's base URL) and keeps every cache in the temp dirs.
    pub fn new(client: Client, registry_base: &str, dependencies: serde_json::Value) -> ClientProject {
        let registry = format!("{}/", registry_base.trim_end_matches('/'));
        let home = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let project_dir = project.path();
        std::fs::write(
            project_dir.join("package.json"),
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
        let home_dir = home.path();
        // Every client reads `.npmrc` for the registry; the project one wins over ~.
        let npmrc = format!("registry={registry}\nupdate-notifier=false\nfund=false\naudit=false\n");
        std::fs::write(home_dir.join(".npmrc"), &npmrc).unwrap();
        match client {
            Client::Pnpm => {
                std::fs::write(
                    project_dir.join(".npmrc"),
                    format!(
                        "{npmrc}store-dir={}\ncache-dir={}\nstate-dir={}\n",
                        home_dir.join("pnpm-store").display(),
                        home_dir.join("pnpm-cache").display(),
                        home_dir.join("pnpm-state").display()
                    ),
                )
                .unwrap();
            }
            Client::YarnClassic => {
                std::fs::write(project_dir.join(".npmrc"), &npmrc).unwrap();
                std::fs::write(
                    project_dir.join(".yarnrc"),
                    format!(
                        "registry \"{registry}\"\ncache-folder \"{}\"\ndisable-self-update-check true\n",
                        home_dir.join("yarn-cache").display()
                    ),
                )
                .unwrap();
            }
            Client::YarnBerry => {
                let host = registry.trim_start_matches("http://").split([':', '/']).next().unwrap().to_owned();
                std::fs::write(
                    project_dir.join(".yarnrc.yml"),
                    format!(
                        "npmRegistryServer: \"{}\"\nunsafeHttpWhitelist:\n  - \"{host}\"\nenableGlobalCache: false\n\
                         cacheFolder: \"{}\"\nglobalFolder: \"{}\"\nnodeLinker: node-modules\nenableTelemetry: false\n\
                         enableProgressBars: false\nenableHyperlinks: false\n",
                        registry.trim_end_matches('/'),
                        home_dir.join("yarn-berry-cache").display(),
                        home_dir.join("yarn-berry-global").display()
                    ),
                )
                .unwrap();
            }
            Client::Bun => {
                std::fs::write(
                    project_dir.join("bunfig.toml"),
                    format!(
                        "[install]\nregistry = \"{registry}\"\n\n[install.cache]\ndir = \"{}\"\n",
                        home_dir.join("bun-cache").display()
                    ),
                )
                .unwrap();
            }
        }
        ClientProject { client, registry, home, project }
    }

    /// The project directory.
    pub fn dir(&self) -> &Path {
        self.project.path()
    }

    /// The isolated home directory.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A command for the client in the project, with a hermetic environment.
    pub fn command(&self, arguments: &[&str]) -> Command {
        let (program, leading) = self.client.program();
        let mut command = Command::new(program);
        command.args(leading).args(arguments).current_dir(self.dir());
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            let lower = key.to_ascii_lowercase();
            if lower.starts_with("npm_")
                || lower.starts_with("yarn_")
                || lower.starts_with("pnpm_")
                || lower.starts_with("bun_")
                || lower.starts_with("corepack_")
                || lower.starts_with("xdg_")
            {
                command.env_remove(&key);
            }
        }
        let home = self.home();
        command
            .env("HOME", home)
            .env("USERPROFILE", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("npm_config_userconfig", home.join(".npmrc"))
            .env("CI", "true")
            .env("NO_COLOR", "1")
            .env("FORCE_COLOR", "0")
            .env("DO_NOT_TRACK", "1")
            .env("COREPACK_ENABLE_STRICT", "0")
            .env("YARN_ENABLE_TELEMETRY", "0")
            .env("YARN_IGNORE_PATH", "1")
            .env("BUN_INSTALL_CACHE_DIR", home.join("bun-cache"))
            .env("BUN_INSTALL", home.join(".bun"));
        command
    }

    /// Runs the client; returns its output whatever the exit status.
    pub fn run(&self, arguments: &[&str]) -> Output {
        self.command(arguments)
            .output()
            .unwrap_or_else(|error| panic!("running {} {arguments:?}: {error}", self.client.label()))
    }

    /// Runs the client and panics with its output unless it succeeded.
    pub fn run_ok(&self, arguments: &[&str]) -> Output {
        let output = self.run(arguments);
        assert!(
            output.status.success(),
            "{} {arguments:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            self.client.label(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// The `package.json` of an installed package, as `node_modules/{name}` resolves it.
    pub fn installed(&self, name: &str) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir().join("node_modules").join(name).join("package.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Reads a file in the project.
    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir().join(path)).unwrap_or_else(|error| panic!("reading {path}: {error}"))
    }
}

/// Both streams of an output, for assertions and messages.
pub fn combined(output: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Publishes the client test tree, all long ago: `@acme/logger` 1.0.0 and 1.1.0,
/// `chain-a` 1.0.0 → `chain-b` ^1.0.0 → `chain-c` ^2.0.0 (2.0.1; 3.0.0 also exists),
/// `hello-cli` 1.0.0 with a bin.
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
}
