//! pnpm, yarn classic, yarn berry and bun install through Airlock from the fake
//! upstream, re-install from their lockfiles with the upstream gone, and are refused a
//! held version. The pinned clients live in `tests/clients` (`npm ci --prefix
//! tests/clients`); every client runs with its own temporary home and caches.

use std::process::Output;
use std::sync::Arc;

use airlock_tests::clients::{
    Client, ClientProject, RegistryConfig, client_tree_dependencies, combined, npm, publish_client_tree,
    publish_fresh_package,
};
use airlock_tests::{FakeRegistry, PackageVersion, TestApp, TestAppOptions, long_ago};
use serde_json::json;

/// Runs a client command off the async runtime (the server shares it).
async fn run(project: &Arc<ClientProject>, arguments: &'static [&'static str]) -> Output {
    let project = Arc::clone(project);
    tokio::task::spawn_blocking(move || project.run(arguments)).await.unwrap()
}

/// Like [`run`], panicking with the client's output unless it succeeded.
async fn run_ok(project: &Arc<ClientProject>, arguments: &'static [&'static str]) -> Output {
    let project = Arc::clone(project);
    tokio::task::spawn_blocking(move || project.run_ok(arguments)).await.unwrap()
}

/// The installed tree is the one the ranges allow, the bin runs, and the lockfile
/// records Airlock (where the client's format records a registry at all).
fn assert_client_tree(project: &ClientProject, airlock: &str) {
    let label = project.client.label();
    let version = |path: &[&str]| project.resolved_version(path);
    assert_eq!(version(&["@acme/logger"]), "1.1.0", "{label}: the scoped package");
    assert_eq!(version(&["chain-a"]), "1.0.0", "{label}");
    assert_eq!(version(&["chain-a", "chain-b"]), "1.2.0", "{label}: chain-a's dependency");
    assert_eq!(version(&["chain-a", "chain-b", "chain-c"]), "2.0.1", "{label}: ^2.0.0 must not pick 3.0.0");
    assert_eq!(version(&["@acme/part-3"]), "1.0.0", "{label}");
    assert_eq!(version(&["part-3"]), "1.0.0", "{label}");
    assert_eq!(project.run_bin("hello-cli").trim(), "hello from hello-cli", "{label}: the bin is linked");

    let lockfile = project.lockfile();
    assert!(!lockfile.contains("3.0.0"), "{label}: {lockfile}");
    match project.client {
        // pnpm and berry lockfiles are registry-relative: the configured registry
        // (Airlock) is asked at re-install time.
        Client::Pnpm => {
            assert!(lockfile.contains("chain-c@2.0.1:") && lockfile.contains("'@acme/logger@1.1.0':"), "{lockfile}");
        }
        Client::YarnBerry => {
            assert!(lockfile.contains("resolution: \"@acme/logger@npm:1.1.0\""), "{lockfile}");
            assert!(lockfile.contains("resolution: \"chain-c@npm:2.0.1\""), "{lockfile}");
        }
        // Yarn classic and bun record full tarball URLs: they must be Airlock's.
        Client::YarnClassic => {
            assert!(lockfile.contains(&format!("resolved \"{airlock}/@acme/logger/-/logger-1.1.0.tgz#")), "{lockfile}");
            assert!(lockfile.contains(&format!("resolved \"{airlock}/chain-c/-/chain-c-2.0.1.tgz#")), "{lockfile}");
        }
        Client::Bun => {
            assert!(lockfile.contains(&format!("\"{airlock}/@acme/logger/-/logger-1.1.0.tgz\"")), "{lockfile}");
            assert!(lockfile.contains(&format!("\"{airlock}/chain-c/-/chain-c-2.0.1.tgz\"")), "{lockfile}");
        }
    }
}

/// `airlock verify` reads the client's real lockfile and finds a release record signed
/// by Airlock for every package in it (and, where the lockfile has npm's integrity, for
/// exactly those bytes).
async fn verify_lockfile_against_release_records(app: &TestApp, project: &ClientProject) {
    use airlock_server::cli::verify::{LockedIntegrity, read_lockfile, verify_packages};
    use base64::Engine as _;
    let label = project.client.label();
    let (_, keys) = app.get_json("/-/airlock/keys").await;
    let pinned: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(keys["release_records"]["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let packages = read_lockfile(&project.dir().join(project.lockfile_name())).unwrap();
    let locked: Vec<String> = packages.iter().map(|package| format!("{}@{}", package.name, package.version)).collect();
    for expected in ["@acme/logger@1.1.0", "chain-a@1.0.0", "chain-b@1.2.0", "chain-c@2.0.1", "hello-cli@1.0.0"] {
        assert!(locked.contains(&expected.to_owned()), "{label}: {expected} not read from the lockfile: {locked:?}");
    }
    let comparable = packages.iter().filter(|package| matches!(package.integrity, LockedIntegrity::Sri(_))).count();
    match project.client {
        Client::YarnBerry => assert_eq!(comparable, 0, "{label}: berry pins its own cache archive"),
        _ => assert_eq!(comparable, packages.len(), "{label}: every entry has npm's integrity"),
    }
    let total = packages.len();
    let outcome = verify_packages(&app.url(), Some(pinned), None, packages, 8).await.unwrap();
    assert_eq!((outcome.total, outcome.failures.len()), (total, 0), "{label}: {outcome:?}");
}

/// Installs the tree through a cold Airlock (every version checked on first download,
/// many downloads in flight at once), then re-installs from the lockfile on a fresh
/// machine with the upstream stopped: Airlock's cache serves everything.
async fn installs_then_reinstalls_from_the_lockfile_with_the_upstream_down(client: Client) {
    let mut upstream = FakeRegistry::start().await;
    publish_client_tree(&upstream);
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), TestAppOptions::default()).await;
    let project =
        Arc::new(ClientProject::new(client, &RegistryConfig::anonymous(&app.url()), client_tree_dependencies()));

    run_ok(&project, &["install"]).await;
    assert_client_tree(&project, &app.url());
    let lockfile = project.lockfile();
    verify_lockfile_against_release_records(&app, &project).await;
    for path in ["/@acme/logger/-/logger-1.1.0.tgz", "/chain-c/-/chain-c-2.0.1.tgz", "/hello-cli/-/hello-cli-1.0.0.tgz"]
    {
        assert_eq!(upstream.requests(path), 1, "{}: Airlock fetched {path} once", client.label());
    }

    upstream.stop();
    project.clear_machine_state();
    let frozen = project.frozen_install();
    run_ok(&project, frozen).await;
    assert_client_tree(&project, &app.url());
    assert_eq!(project.lockfile(), lockfile, "{}: the frozen install keeps the lockfile", client.label());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pnpm_installs_through_airlock_and_reinstalls_frozen_with_the_upstream_down() {
    installs_then_reinstalls_from_the_lockfile_with_the_upstream_down(Client::Pnpm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yarn_classic_installs_through_airlock_and_reinstalls_frozen_with_the_upstream_down() {
    installs_then_reinstalls_from_the_lockfile_with_the_upstream_down(Client::YarnClassic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yarn_berry_installs_through_airlock_and_reinstalls_immutable_with_the_upstream_down() {
    installs_then_reinstalls_from_the_lockfile_with_the_upstream_down(Client::YarnBerry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bun_installs_through_airlock_and_reinstalls_frozen_with_the_upstream_down() {
    installs_then_reinstalls_from_the_lockfile_with_the_upstream_down(Client::Bun).await;
}

/// What each client prints when it asks for a held version by its exact number: the
/// version is not listed, so each reports that no version matches.
fn assert_no_matching_version(client: Client, output: &str) {
    let expected = match client {
        Client::Pnpm => "No matching version found for fresh-pkg@2.0.0",
        Client::YarnClassic => "Couldn't find any versions for \"fresh-pkg\" that matches \"2.0.0\"",
        Client::YarnBerry => "fresh-pkg@npm:2.0.0: No candidates found",
        Client::Bun => "No version matching \"2.0.0\" found for specifier \"fresh-pkg\"",
    };
    assert!(output.contains(expected), "{}: expected {expected:?} in:\n{output}", client.label());
}

/// What each client prints when Airlock refuses the held tarball with 403. None of the
/// four prints the response body (npm does); each names the URL (package and version)
/// and the status.
fn assert_refused_tarball(client: Client, output: &str, airlock: &str) {
    let url = format!("{airlock}/fresh-pkg/-/fresh-pkg-2.0.0.tgz");
    let expected: Vec<String> = match client {
        Client::Pnpm => vec!["ERR_PNPM_FETCH_403".into(), format!("GET {url}: "), " - 403".into()],
        Client::YarnClassic => vec![format!("{url}: Request failed \"403 ")],
        Client::YarnBerry => vec![
            "fresh-pkg@npm:2.0.0: The remote server failed to provide the requested resource".into(),
            "Response Code: 403 (".into(),
            format!("Request URL: {url}"),
        ],
        Client::Bun => vec![format!("GET {url} - 403")],
    };
    for expected in expected {
        assert!(output.contains(&expected), "{}: expected {expected:?} in:\n{output}", client.label());
    }
}

/// A young version inside the cooling period: a range install gets the older version,
/// an explicit request finds no such version, and a lockfile that pins it (written
/// against the public registry, as a bot's upgrade would be) is refused at the tarball
/// with 403 until an admin approves the version, after which the same frozen install
/// works.
async fn refuses_a_held_version(client: Client) {
    let upstream = FakeRegistry::start().await;
    publish_fresh_package(&upstream);
    let data_dir = tempfile::tempdir().unwrap();
    let options = TestAppOptions { cooling_period: "72h", ..TestAppOptions::default() };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    let airlock = RegistryConfig::anonymous(&app.url());
    let label = client.label();

    let project = Arc::new(ClientProject::new(client, &airlock, json!({"fresh-pkg": ">=1.0.0"})));
    run_ok(&project, &["install"]).await;
    assert_eq!(project.resolved_version(&["fresh-pkg"]), "1.0.0", "{label}: the held 2.0.0 is not offered");

    let output = run(&project, &["add", "fresh-pkg@2.0.0"]).await;
    assert!(!output.status.success(), "{label}: {}", combined(&output));
    assert_no_matching_version(client, &combined(&output));

    // The lockfile is written against the upstream directly, then pointed at Airlock.
    let locked = Arc::new(ClientProject::new(
        client,
        &RegistryConfig::anonymous(&upstream.url()),
        json!({"fresh-pkg": "2.0.0"}),
    ));
    run_ok(&locked, &["install"]).await;
    let lockfile_path = locked.dir().join(locked.lockfile_name());
    let lockfile = locked.lockfile().replace(&upstream.url(), &app.url());
    std::fs::write(&lockfile_path, &lockfile).unwrap();
    locked.configure(&airlock);
    locked.clear_machine_state();
    let frozen = locked.frozen_install();
    let output = run(&locked, frozen).await;
    assert!(!output.status.success(), "{label}: the held version must not install:\n{}", combined(&output));
    assert_refused_tarball(client, &combined(&output), &app.url());
    assert!(locked.dir().join("node_modules/fresh-pkg/package.json").metadata().is_err(), "{label}");

    // The reason is in Airlock's answer (npm prints it; these clients print the status).
    let (status, body) = app.get_json("/fresh-pkg/-/fresh-pkg-2.0.0.tgz").await;
    assert_eq!(status, 403);
    let reason = body["error"].as_str().unwrap_or_default();
    assert!(reason.starts_with("fresh-pkg@2.0.0 is in quarantine"), "{body}");

    let (status, detail) =
        app.admin_post("/-/airlock/api/packages/fresh-pkg/versions/2.0.0/approve", Some("reviewed")).await;
    assert_eq!(status, 200, "{detail}");
    run_ok(&locked, frozen).await;
    assert_eq!(locked.resolved_version(&["fresh-pkg"]), "2.0.0", "{label}: approved, the lockfile installs");
    assert_eq!(locked.lockfile(), lockfile, "{label}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pnpm_is_refused_a_held_version() {
    refuses_a_held_version(Client::Pnpm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yarn_classic_is_refused_a_held_version() {
    refuses_a_held_version(Client::YarnClassic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yarn_berry_is_refused_a_held_version() {
    refuses_a_held_version(Client::YarnBerry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bun_is_refused_a_held_version() {
    refuses_a_held_version(Client::Bun).await;
}

/// `npm view`, `npm dist-tag ls` and `npm ping` against Airlock print what they print
/// against the public registry, for the versions Airlock lets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_view_dist_tag_ls_and_ping_behave_as_against_the_public_registry() {
    let upstream = FakeRegistry::start().await;
    publish_client_tree(&upstream);
    publish_fresh_package(&upstream);
    upstream.publish(PackageVersion::new("@acme/logger", "2.0.0-beta.1", long_ago()));
    upstream.tag("@acme/logger", "next", "2.0.0-beta.1");
    upstream.tag("fresh-pkg", "next", "2.0.0");
    let data_dir = tempfile::tempdir().unwrap();
    let options = TestAppOptions { cooling_period: "72h", ..TestAppOptions::default() };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    let home = tempfile::tempdir().unwrap();
    let (home_path, registry) = (home.path().to_owned(), app.url());
    let run_npm = move |arguments: &'static [&'static str]| {
        let (home_path, registry) = (home_path.clone(), registry.clone());
        async move { tokio::task::spawn_blocking(move || npm(&home_path, &registry, arguments)).await.unwrap() }
    };
    let ok = |output: Output| {
        assert!(output.status.success(), "{}", combined(&output));
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
    };

    let (stdout, stderr) = ok(run_npm(&["ping"]).await);
    assert!(stderr.contains(&format!("PING {}/", app.url())) && stderr.contains("PONG"), "{stdout}{stderr}");

    let (stdout, _) = ok(run_npm(&["view", "@acme/logger", "version"]).await);
    assert_eq!(stdout.trim(), "1.1.0");
    let (stdout, _) = ok(run_npm(&["view", "@acme/logger", "versions", "--json"]).await);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&stdout).unwrap(), json!(["1.0.0", "1.1.0", "2.0.0-beta.1"]));
    let (stdout, _) = ok(run_npm(&["view", "@acme/logger@1.0.0", "dist.tarball"]).await);
    assert_eq!(stdout.trim(), format!("{}/@acme/logger/-/logger-1.0.0.tgz", app.url()));
    let (stdout, _) = ok(run_npm(&["view", "chain-a", "dependencies", "--json"]).await);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&stdout).unwrap(), json!({"chain-b": "^1.0.0"}));
    let (stdout, _) = ok(run_npm(&["view", "hello-cli"]).await);
    assert!(stdout.contains("hello-cli@1.0.0 | MIT | deps: none | versions: 1"), "{stdout}");
    assert!(stdout.contains(&format!(".tarball: {}/hello-cli/-/hello-cli-1.0.0.tgz", app.url())), "{stdout}");
    assert!(stdout.contains("bin: hello-cli"), "{stdout}");

    let (stdout, _) = ok(run_npm(&["dist-tag", "ls", "@acme/logger"]).await);
    assert_eq!(stdout, "latest: 1.1.0\nnext: 2.0.0-beta.1\n");
    let (stdout, _) = ok(run_npm(&["dist-tag", "ls", "chain-c"]).await);
    assert_eq!(stdout, "latest: 3.0.0\n");

    // A held version is neither listed nor tagged; npm shows Airlock's notice.
    let (stdout, stderr) = ok(run_npm(&["view", "fresh-pkg", "versions", "--json"]).await);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&stdout).unwrap(), json!(["1.0.0"]));
    assert!(stderr.contains("[airlock] fresh-pkg@2.0.0 is in quarantine: "), "{stderr}");
    let (stdout, _) = ok(run_npm(&["dist-tag", "ls", "fresh-pkg"]).await);
    assert!(stdout.starts_with("latest: 1.0.0\n") && !stdout.contains("2.0.0"), "{stdout}");

    let output = run_npm(&["view", "no-such-package"]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("code E404") && stderr.contains("no-such-package"), "{stderr}");
}

/// The client token every request needs in [`sends_the_client_token`].
const CLIENT_TOKEN: &str = "client-test-token";

/// With client tokens configured, each client installs the tree (scoped and unscoped
/// packages) with its token in its usual configuration, and is refused without one.
async fn sends_the_client_token(client: Client) {
    use sha2::Digest as _;
    let upstream = FakeRegistry::start().await;
    publish_client_tree(&upstream);
    let data_dir = tempfile::tempdir().unwrap();
    let hash = hex::encode(sha2::Sha256::digest(CLIENT_TOKEN.as_bytes()));
    let options = TestAppOptions {
        extra_toml: format!(
            "[clients]\nrate_limit_per_second = 1000\n[[clients.tokens]]\nname = \"dev\"\nsha256 = \"{hash}\"\n"
        ),
        ..TestAppOptions::default()
    };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    let label = client.label();

    let anonymous =
        Arc::new(ClientProject::new(client, &RegistryConfig::anonymous(&app.url()), client_tree_dependencies()));
    let output = run(&anonymous, &["install"]).await;
    assert!(!output.status.success(), "{label}: installed without a token:\n{}", combined(&output));
    let expected = match client {
        // Yarn classic prints the JSON `error` of a refused packument.
        Client::YarnClassic => "this registry requires a token",
        Client::YarnBerry => "Invalid authentication (as an anonymous user)",
        Client::Pnpm | Client::Bun => "401",
    };
    assert!(combined(&output).contains(expected), "{label}: expected {expected:?} in:\n{}", combined(&output));

    let with_token = RegistryConfig { url: app.url(), token: Some(CLIENT_TOKEN.into()), always_auth: true };
    let project = Arc::new(ClientProject::new(client, &with_token, client_tree_dependencies()));
    run_ok(&project, &["install"]).await;
    assert_client_tree(&project, &app.url());
    project.clear_machine_state();
    let frozen = project.frozen_install();
    run_ok(&project, frozen).await;
    assert_eq!(project.resolved_version(&["chain-a", "chain-b", "chain-c"]), "2.0.1", "{label}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pnpm_sends_the_client_token() {
    sends_the_client_token(Client::Pnpm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yarn_classic_sends_the_client_token_with_always_auth() {
    sends_the_client_token(Client::YarnClassic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yarn_berry_sends_the_client_token() {
    sends_the_client_token(Client::YarnBerry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bun_sends_the_client_token() {
    sends_the_client_token(Client::Bun).await;
}

/// Many first downloads at once against a cold Airlock, as bun and pnpm fetch: every
/// one settles its version inside the request. Repeated on fresh servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_first_downloads_all_complete() {
    // Regression: sled's flush_async deadlocked against transactions under this load.
    for round in 0..10 {
        let upstream = FakeRegistry::start().await;
        publish_client_tree(&upstream);
        let data_dir = tempfile::tempdir().unwrap();
        let app = TestApp::spawn(&upstream.url(), data_dir.path(), TestAppOptions::default()).await;
        let mut paths = vec![
            "/@acme/logger/-/logger-1.1.0.tgz".to_owned(),
            "/chain-a/-/chain-a-1.0.0.tgz".to_owned(),
            "/chain-b/-/chain-b-1.2.0.tgz".to_owned(),
            "/chain-c/-/chain-c-2.0.1.tgz".to_owned(),
            "/hello-cli/-/hello-cli-1.0.0.tgz".to_owned(),
        ];
        for index in 0..4 {
            paths.push(format!("/@acme/part-{index}/-/part-{index}-1.0.0.tgz"));
            paths.push(format!("/part-{index}/-/part-{index}-1.0.0.tgz"));
        }
        let requests = paths.iter().map(|path| {
            let app = &app;
            async move { (path.clone(), app.get(path).await.status()) }
        });
        let statuses = futures_util::future::join_all(requests).await;
        for (path, status) in statuses {
            assert_eq!(status, 200, "round {round}: {path}");
        }
        eprintln!("round {round} ok");
    }
}
