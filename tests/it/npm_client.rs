//! The real npm client installs through Airlock from the fake upstream.

use std::path::Path;
use std::process::Command;

use airlock_tests::clients::{npm_in, publish_client_tree};
use airlock_tests::{FakeRegistry, PackageVersion, TestApp, TestAppOptions, long_ago};
use serde_json::json;

/// Runs npm in `project` with an isolated home (see `airlock_tests::clients::npm_in`),
/// panicking with its output unless it succeeded.
fn npm(project: &Path, home: &Path, registry: &str, arguments: &[&str]) -> std::process::Output {
    let output = npm_in(project, home, registry, arguments);
    assert!(
        output.status.success(),
        "npm {arguments:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_installs_a_dependency_tree_and_ci_works_with_the_upstream_down() {
    let mut upstream = FakeRegistry::start().await;
    publish_client_tree(&upstream);
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), TestAppOptions::default()).await;
    let registry = format!("{}/", app.url());
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("package.json"),
        json!({
            "name": "client-project",
            "version": "1.0.0",
            "private": true,
            "dependencies": {"@acme/logger": "^1.0.0", "chain-a": "^1.0.0", "hello-cli": "1.0.0"}
        })
        .to_string(),
    )
    .unwrap();

    let (project_path, home_path, registry_url) = (project.path().to_owned(), home.path().to_owned(), registry.clone());
    tokio::task::spawn_blocking(move || npm(&project_path, &home_path, &registry_url, &["install"])).await.unwrap();

    let installed = |path: &str| -> serde_json::Value {
        let text =
            std::fs::read_to_string(project.path().join("node_modules").join(path).join("package.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    assert_eq!(installed("@acme/logger")["version"], "1.1.0");
    assert_eq!(installed("chain-a")["version"], "1.0.0");
    assert_eq!(installed("chain-b")["version"], "1.2.0");
    assert_eq!(installed("chain-c")["version"], "2.0.1", "the ^2.0.0 range must not pick 3.0.0");
    assert!(project.path().join("node_modules/.bin/hello-cli").exists(), "the bin is linked");

    let lockfile: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(project.path().join("package-lock.json")).unwrap()).unwrap();
    let resolved = lockfile["packages"]["node_modules/@acme/logger"]["resolved"].as_str().unwrap();
    assert_eq!(resolved, format!("{}/@acme/logger/-/logger-1.1.0.tgz", app.url()));

    // A fresh machine (no node_modules, no npm cache) with the upstream gone: npm ci
    // still works from Airlock's cache.
    upstream.stop();
    std::fs::remove_dir_all(project.path().join("node_modules")).unwrap();
    std::fs::remove_dir_all(home.path().join("npm-cache")).unwrap();
    let (project_path, home_path) = (project.path().to_owned(), home.path().to_owned());
    tokio::task::spawn_blocking(move || npm(&project_path, &home_path, &registry, &["ci"])).await.unwrap();
    assert_eq!(installed("chain-c")["version"], "2.0.1");
    assert!(project.path().join("node_modules/.bin/hello-cli").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_prints_the_quarantine_reason_for_a_young_version() {
    let upstream = FakeRegistry::start().await;
    upstream.publish(PackageVersion::new("fresh-pkg", "1.0.0", long_ago()));
    upstream.publish(PackageVersion::new("fresh-pkg", "2.0.0", chrono::Utc::now()));
    let data_dir = tempfile::tempdir().unwrap();
    let options = TestAppOptions { cooling_period: "72h", ..TestAppOptions::default() };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    let registry = format!("{}/", app.url());
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("package.json"), r#"{"name":"p","version":"1.0.0","private":true}"#).unwrap();

    // `npm install fresh-pkg` gets the newest installable version.
    let (project_path, home_path, registry_url) = (project.path().to_owned(), home.path().to_owned(), registry.clone());
    let output =
        tokio::task::spawn_blocking(move || npm(&project_path, &home_path, &registry_url, &["install", "fresh-pkg"]))
            .await
            .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    // The notice names the held version and when it can be installed.
    assert!(
        stderr.contains("npm notice [airlock] fresh-pkg@2.0.0 is in quarantine: it is younger than the cooling period and can be installed from 20"),
        "npm shows the notice: {stderr} / {stdout}"
    );
    let installed = std::fs::read_to_string(project.path().join("node_modules/fresh-pkg/package.json")).unwrap();
    assert!(installed.contains("\"version\": \"1.0.0\""));

    // Asking for the held version by its tarball URL fails with the reason.
    let tarball = format!("{}fresh-pkg/-/fresh-pkg-2.0.0.tgz", registry);
    let (project_path, home_path) = (project.path().to_owned(), home.path().to_owned());
    let output =
        tokio::task::spawn_blocking(move || npm_in(&project_path, &home_path, &registry, &["install", &tarball]))
            .await
            .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("403"), "{stderr}");
    assert!(stderr.contains("fresh-pkg@2.0.0 is in quarantine"), "npm prints the reason: {stderr}");
}

/// Verifies registry signatures the way `npm audit signatures` does: with npm's own
/// bundled `pacote` (`verifySignatures: true`) and the keys from the registry's
/// `/-/npm/v1/keys`. (`npm audit signatures` itself first asks Sigstore's TUF CDN for
/// keys, which this sandbox cannot reach; against a registry it does not know, it then
/// uses exactly these keys and this call.)
const VERIFY_SCRIPT: &str = r#"
const [pacotePath, registry, tamper, ...specs] = process.argv.slice(1);
const pacote = require(pacotePath);
const crypto = require('crypto');
(async () => {
  const response = await fetch(registry + '-/npm/v1/keys');
  let keys = (await response.json()).keys.map((key) => ({ ...key, pemkey: `-----BEGIN PUBLIC KEY-----\n${key.key}\n-----END PUBLIC KEY-----` }));
  if (tamper === 'tamper') {
    // Same key ids, other key material: every signature must now fail.
    const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    keys = keys.map((key) => ({ ...key, key: other, pemkey: `-----BEGIN PUBLIC KEY-----\n${other}\n-----END PUBLIC KEY-----` }));
  }
  const host = new URL(registry);
  const options = { registry, verifySignatures: true, [`//${host.host}${host.pathname}:_keys`]: keys, cache: process.env.VERIFY_CACHE, preferOnline: true };
  for (const spec of specs) {
    try {
      const manifest = await pacote.manifest(spec, options);
      console.log(`${spec} verified ${manifest._signatures.length}`);
    } catch (error) {
      console.log(`${spec} failed ${error.code}`);
    }
  }
})();
"#;

fn verify_with_npm_pacote(registry: &str, tamper: bool, specs: &[&str], cache: &Path) -> String {
    let root = Command::new("npm").args(["root", "-g"]).output().expect("npm root -g");
    let pacote = format!("{}/npm/node_modules/pacote", String::from_utf8_lossy(&root.stdout).trim());
    let output = Command::new("node")
        .arg("-e")
        .arg(VERIFY_SCRIPT)
        .arg(&pacote)
        .arg(registry)
        .arg(if tamper { "tamper" } else { "keep" })
        .args(specs)
        .env("VERIFY_CACHE", cache)
        .output()
        .expect("node must be installed");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_verifies_airlocks_registry_signatures_and_detects_a_wrong_key() {
    let upstream = FakeRegistry::start().await;
    publish_client_tree(&upstream);
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), TestAppOptions::default()).await;
    let registry = format!("{}/", app.url());
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("package.json"),
        json!({"name": "p", "version": "1.0.0", "private": true, "dependencies": {"chain-a": "^1.0.0", "@acme/logger": "^1.0.0"}})
            .to_string(),
    )
    .unwrap();
    let (project_path, home_path, registry_url) = (project.path().to_owned(), home.path().to_owned(), registry.clone());
    tokio::task::spawn_blocking(move || npm(&project_path, &home_path, &registry_url, &["install"])).await.unwrap();

    // Every installed version was released by Airlock while npm installed it, and
    // carries Airlock's signature.
    let specs = ["chain-a@1.0.0", "chain-b@1.2.0", "chain-c@2.0.1", "@acme/logger@1.1.0"];
    let cache = home.path().join("verify-cache");
    let (registry_url, cache_path) = (registry.clone(), cache.clone());
    let verified =
        tokio::task::spawn_blocking(move || verify_with_npm_pacote(&registry_url, false, &specs, &cache_path))
            .await
            .unwrap();
    assert_eq!(
        verified,
        "chain-a@1.0.0 verified 1\nchain-b@1.2.0 verified 1\nchain-c@2.0.1 verified 1\n@acme/logger@1.1.0 verified 1\n"
    );
    let registry_url = registry.clone();
    let tampered =
        tokio::task::spawn_blocking(move || verify_with_npm_pacote(&registry_url, true, &specs[..2], &cache))
            .await
            .unwrap();
    assert_eq!(tampered, "chain-a@1.0.0 failed EINTEGRITYSIGNATURE\nchain-b@1.2.0 failed EINTEGRITYSIGNATURE\n");

    // `airlock verify package-lock.json` with the pinned release key: every locked
    // package has a release record for exactly the locked integrity.
    use airlock_server::cli::verify::{parse_lockfile, verify_packages};
    use base64::Engine as _;
    let (_, keys) = app.get_json("/-/airlock/keys").await;
    let pinned: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(keys["release_records"]["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let lockfile_path = project.path().join("package-lock.json");
    let lockfile = std::fs::read_to_string(&lockfile_path).unwrap();
    let packages = parse_lockfile(&lockfile_path, &lockfile).unwrap();
    let outcome = verify_packages(&registry, Some(pinned), None, packages, 4).await.unwrap();
    assert_eq!((outcome.total, outcome.failures.len()), (4, 0), "{outcome:?}");

    // A lockfile whose integrity was swapped, or with a version Airlock never released,
    // or checked against another key, fails with the reason.
    let mut tampered_lock: serde_json::Value = serde_json::from_str(&lockfile).unwrap();
    tampered_lock["packages"]["node_modules/chain-c"]["integrity"] =
        json!("sha512-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==");
    tampered_lock["packages"]["node_modules/chain-c"]["version"] = json!("2.0.1");
    tampered_lock["packages"]["node_modules/chain-b"]["version"] = json!("9.9.9");
    let packages = parse_lockfile(&lockfile_path, &tampered_lock.to_string()).unwrap();
    let outcome = verify_packages(&registry, Some(pinned), None, packages.clone(), 4).await.unwrap();
    let reasons: Vec<(String, String)> =
        outcome.failures.iter().map(|(package, reason)| (package.name.clone(), reason.clone())).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0].0, "chain-b");
    assert_eq!(reasons[0].1, "no release record: Airlock did not release this version");
    assert_eq!(reasons[1].0, "chain-c");
    assert!(reasons[1].1.starts_with("the lockfile's integrity differs from the one Airlock released"), "{reasons:?}");
    let outcome = verify_packages(&registry, Some([9u8; 32]), None, packages, 4).await.unwrap();
    assert!(
        outcome.failures.iter().all(|(_, reason)| reason == "no signature by the pinned key verifies"
            || reason == "no release record: Airlock did not release this version"
            || reason.starts_with("invalid public key")),
        "{:?}",
        outcome.failures
    );
    assert_eq!(outcome.failures.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_installs_with_a_client_token_and_is_refused_without_one() {
    use sha2::Digest as _;
    let upstream = FakeRegistry::start().await;
    publish_client_tree(&upstream);
    let data_dir = tempfile::tempdir().unwrap();
    let hash = hex::encode(sha2::Sha256::digest(b"ci-read-token"));
    let options = TestAppOptions {
        extra_toml: format!(
            "[clients]\nrate_limit_per_second = 1000\n[[clients.tokens]]\nname = \"ci\"\nsha256 = \"{hash}\"\n"
        ),
        ..TestAppOptions::default()
    };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    let (status, body) = app.get_json("/chain-a").await;
    assert_eq!(status, 401);
    assert!(body["error"].as_str().unwrap().starts_with("this registry requires a token"));
    assert_eq!(app.get_json("/-/airlock/health").await.0, 200, "health stays open");
    let whoami = app.client.get(format!("{}/-/whoami", app.url())).bearer_auth("ci-read-token").send().await.unwrap();
    assert_eq!(whoami.text().await.unwrap(), r#"{"username":"ci"}"#);
    let wrong = app.client.get(format!("{}/chain-a", app.url())).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);

    let registry = format!("{}/", app.url());
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("package.json"),
        json!({"name": "p", "version": "1.0.0", "private": true, "dependencies": {"chain-a": "^1.0.0"}}).to_string(),
    )
    .unwrap();
    // The token goes in the user config, as a developer would set it.
    std::fs::write(home.path().join(".npmrc"), format!("//{}/:_authToken=ci-read-token\n", app.address)).unwrap();
    let (project_path, home_path) = (project.path().to_owned(), home.path().to_owned());
    tokio::task::spawn_blocking(move || npm(&project_path, &home_path, &registry, &["install"])).await.unwrap();
    assert!(project.path().join("node_modules/chain-c/package.json").exists());
}
