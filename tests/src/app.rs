//! `TestApp`: the real Airlock server on an ephemeral loopback port, with a temporary
//! data directory, a manual clock and its upstream pointed at a [`FakeRegistry`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use airlock_config::{Config, Overrides};
use airlock_server::ManualClock;

/// The admin token every test app accepts (as the admin named `tester`).
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// A running Airlock.
pub struct TestApp {
    /// Where the server listens.
    pub address: SocketAddr,
    /// The clock the server reads; advance it to end cooling periods.
    pub clock: ManualClock,
    /// The configuration it runs with.
    pub config: Config,
    /// An HTTP client without automatic decompression, to see what is on the wire.
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// How to configure a [`TestApp`].
pub struct TestAppOptions {
    /// The cooling period.
    pub cooling_period: &'static str,
    /// The upstream timeout.
    pub upstream_timeout: &'static str,
    /// The forge API (a `FakeForge`); by default a closed loopback port, so source
    /// matches are "unverifiable" without touching the internet.
    pub forge_url: Option<String>,
    /// Extra TOML appended to the generated configuration (new sections only).
    pub extra_toml: String,
    /// Extra keys for the generated `[server]` section.
    pub server_toml: String,
    /// Extra keys for the generated `[upstream]` section.
    pub upstream_toml: String,
    /// Extra keys of the `[checks]` section (the worker executable is always set).
    pub checks_toml: String,
    /// What the server reads from the environment (object store credentials).
    pub overrides: Overrides,
}

impl Default for TestAppOptions {
    fn default() -> Self {
        TestAppOptions {
            cooling_period: "0s",
            upstream_timeout: "3s",
            forge_url: None,
            extra_toml: String::new(),
            server_toml: String::new(),
            upstream_toml: String::new(),
            checks_toml: String::new(),
            overrides: Overrides::default(),
        }
    }
}

/// The `airlock-for-tests` binary next to the running test binary (`target/debug/` for
/// `target/debug/deps/it-*`), which runs each check as Airlock's check worker.
pub fn worker_executable() -> std::path::PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary.parent().and_then(Path::parent).expect("target/<profile>/deps/<test binary>");
    let worker = profile_dir.join(format!("airlock-for-tests{}", std::env::consts::EXE_SUFFIX));
    assert!(worker.exists(), "{} is missing; cargo builds it with the tests crate", worker.display());
    worker
}

impl TestApp {
    /// Starts Airlock in front of `upstream_url` with data in `data_dir`.
    pub async fn spawn(upstream_url: &str, data_dir: &Path, options: TestAppOptions) -> TestApp {
        Self::spawn_with_clock(upstream_url, data_dir, options, ManualClock::new(chrono::Utc::now())).await
    }

    /// Like [`TestApp::spawn`], reusing a clock (for restarts).
    pub async fn spawn_with_clock(
        upstream_url: &str,
        data_dir: &Path,
        options: TestAppOptions,
        clock: ManualClock,
    ) -> TestApp {
        // AIRLOCK_TEST_LOG=debug shows the server's log in failing tests' output.
        if let Ok(filter) = std::env::var("AIRLOCK_TEST_LOG") {
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_test_writer().try_init();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding airlock");
        let address = listener.local_addr().unwrap();
        use sha2::Digest as _;
        let token_hash = hex::encode(sha2::Sha256::digest(ADMIN_TOKEN.as_bytes()));
        let toml_text = format!(
            "[server]\nlisten = \"{address}\"\ndata_dir = {data_dir:?}\nshutdown_grace = \"1s\"\n{}\n\
             [upstream]\nurl = \"{upstream_url}\"\ntimeout = \"{}\"\nconnect_timeout = \"1s\"\nretries = 1\nretry_backoff = \"10ms\"\n{}\n\
             [quarantine]\ncooling_period = \"{}\"\n\
             [[admin.tokens]]\nname = \"tester\"\nsha256 = \"{token_hash}\"\n\
             [forge]\napi_url = \"{}\"\nrepository_host = \"github.com\"\ntimeout = \"5s\"\n\
             [checks]\nworker_executable = {:?}\n{}\n{}",
            options.server_toml,
            options.upstream_timeout,
            options.upstream_toml,
            options.cooling_period,
            options.forge_url.as_deref().unwrap_or("http://127.0.0.1:1"),
            worker_executable(),
            options.checks_toml,
            options.extra_toml
        );
        let config = Config::from_toml("test.toml", &toml_text, options.overrides.clone()).expect("test configuration");
        // A stopped server's last detached tasks (a cancelled download still unwinding)
        // may hold the metadata store's lock for a moment after `stop` returns; a real
        // restart is a new process, whose lock the kernel released with the old one.
        let mut attempts = 0;
        let state = loop {
            match airlock_server::open_state(config.clone(), Arc::new(clock.clone())).await {
                Ok(state) => break state,
                Err(error) if attempts < 100 && format!("{error:#}").contains("could not acquire lock") => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("opening state: {error:?}"),
            }
        };
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(airlock_server::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        TestApp { address, clock, config, client, shutdown: Some(shutdown), server: Some(server) }
    }

    /// Base URL, e.g. `http://127.0.0.1:40124`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// GET a path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.url())).send().await.expect("request to airlock")
    }

    /// GET a path with headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.url()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("request to airlock")
    }

    /// GET an admin API path with the test admin token.
    pub async fn admin_get(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.url()))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request to airlock");
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    /// POST an admin action with a comment.
    pub async fn admin_post(&self, path: &str, comment: Option<&str>) -> (reqwest::StatusCode, serde_json::Value) {
        let body = comment.map(|comment| serde_json::json!({ "comment": comment }));
        self.admin_post_json(path, body.as_ref()).await
    }

    /// POST an admin API path with a JSON body (or none).
    pub async fn admin_post_json(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = self.client.post(format!("{}{path}", self.url())).bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.expect("request to airlock");
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    /// Waits until a version has left the `checking` state (the pipeline decided), and
    /// returns its detail.
    pub async fn wait_for_decision(&self, name: &str, version: &str) -> serde_json::Value {
        let path = format!("/-/airlock/api/packages/{name}/versions/{version}");
        for _ in 0..200 {
            let (status, detail) = self.admin_get(&path).await;
            if status == 200 && detail["state"] != "checking" {
                return detail;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{name}@{version} was not decided within 10 seconds");
    }

    /// GET a path and parse the JSON body.
    pub async fn get_json(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self.get(path).await;
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    /// Stops the server and waits until it released the data directory.
    pub async fn stop(mut self) -> ManualClock {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server result");
        }
        self.clock.clone()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
