//! A fake forge: an axum server on 127.0.0.1 that answers the GitHub API's
//! `GET /repos/{owner}/{repo}` and `GET /repos/{owner}/{repo}/tarball/{ref}` with
//! archives made by `git archive` from repositories the tests build with the `git` CLI,
//! or with a fixed status (404, 500) for a repository told to fail.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// How the fake answers for one repository.
#[derive(Debug, Clone)]
enum Behaviour {
    /// Serve archives from this git repository.
    Git(PathBuf),
    /// Answer tarball requests with a redirect to `http://localhost:{port}/codeload/…`
    /// (another host than `127.0.0.1`, as codeload.github.com is for GitHub), which
    /// serves the archive from this repository.
    Redirect(PathBuf),
    /// Answer every request with this status.
    Status(StatusCode),
    /// Wait this long before answering (a forge that hangs).
    Delay(std::time::Duration),
}

#[derive(Debug, Default)]
struct ForgeState {
    /// Keyed by lowercase `owner/repo`, as GitHub's names are case-insensitive.
    repositories: HashMap<String, Behaviour>,
    /// Request paths, in order.
    requests: Vec<String>,
    /// The `Authorization` header of each request, in order.
    authorizations: Vec<Option<String>>,
}

/// The running fake forge. Dropping it stops the server.
pub struct FakeForge {
    address: SocketAddr,
    state: Arc<Mutex<ForgeState>>,
    /// Aborted on drop, which closes the listener.
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeForge {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeForge {
    /// Starts the fake on an ephemeral loopback port.
    pub async fn start() -> FakeForge {
        let state = Arc::new(Mutex::new(ForgeState::default()));
        let app = axum::Router::new()
            .route("/repos/{owner}/{repo}", get(repository))
            .route("/repos/{owner}/{repo}/tarball/{*reference}", get(tarball))
            .route("/codeload/{owner}/{repo}/{*reference}", get(codeload))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the fake forge");
        let address = listener.local_addr().expect("the fake forge's address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the fake forge serves");
        });
        FakeForge { address, state, server }
    }

    /// The API base URL to configure, such as `http://127.0.0.1:40123`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Serves `owner/repo` from a git repository on disk.
    pub fn add_repository(&self, owner: &str, repo: &str, git: &GitRepository) {
        self.set(owner, repo, Behaviour::Git(git.path().to_owned()));
    }

    /// Serves `owner/repo` like GitHub does: the API redirects to another host.
    pub fn add_redirecting_repository(&self, owner: &str, repo: &str, git: &GitRepository) {
        self.set(owner, repo, Behaviour::Redirect(git.path().to_owned()));
    }

    /// Answers requests about `owner/repo` only after `delay`.
    pub fn delay_repository(&self, owner: &str, repo: &str, delay: std::time::Duration) {
        self.set(owner, repo, Behaviour::Delay(delay));
    }

    /// Answers every request about `owner/repo` with `status`.
    pub fn fail_repository(&self, owner: &str, repo: &str, status: u16) {
        let status = StatusCode::from_u16(status).expect("a valid status code");
        self.set(owner, repo, Behaviour::Status(status));
    }

    /// The request paths received so far.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// The `Authorization` headers received so far.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.lock().authorizations.clone()
    }

    fn set(&self, owner: &str, repo: &str, behaviour: Behaviour) {
        self.lock().repositories.insert(format!("{owner}/{repo}").to_ascii_lowercase(), behaviour);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ForgeState> {
        self.state.lock().expect("the fake forge's state is not poisoned")
    }
}

fn record(state: &Mutex<ForgeState>, path: String, headers: &HeaderMap) -> Option<Behaviour> {
    let mut state = state.lock().expect("the fake forge's state is not poisoned");
    let key = path.trim_start_matches("/repos/").split('/').take(2).collect::<Vec<_>>().join("/").to_ascii_lowercase();
    // Requests to /codeload/{owner}/{repo}/… are keyed the same way.
    let key = if path.starts_with("/codeload/") {
        path.trim_start_matches("/codeload/").split('/').take(2).collect::<Vec<_>>().join("/").to_ascii_lowercase()
    } else {
        key
    };
    state.requests.push(path);
    state
        .authorizations
        .push(headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).map(str::to_owned));
    state.repositories.get(&key).cloned()
}

async fn repository(
    State(state): State<Arc<Mutex<ForgeState>>>,
    UrlPath((owner, repo)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match record(&state, format!("/repos/{owner}/{repo}"), &headers) {
        Some(Behaviour::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            StatusCode::NOT_FOUND.into_response()
        }
        Some(Behaviour::Git(_) | Behaviour::Redirect(_)) => {
            axum::Json(serde_json::json!({ "full_name": format!("{owner}/{repo}") })).into_response()
        }
        Some(Behaviour::Status(status)) => status.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn tarball(
    State(state): State<Arc<Mutex<ForgeState>>>,
    UrlPath((owner, repo, reference)): UrlPath<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/tarball/{reference}");
    let git = match record(&state, path, &headers) {
        Some(Behaviour::Git(git)) => git,
        Some(Behaviour::Redirect(_)) => {
            let port = headers
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
                .and_then(|host| host.rsplit_once(':'))
                .map(|(_, port)| port.to_owned())
                .unwrap_or_default();
            let location = format!("http://localhost:{port}/codeload/{owner}/{repo}/{reference}");
            return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
        }
        Some(Behaviour::Status(status)) => return status.into_response(),
        Some(Behaviour::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            return StatusCode::NOT_FOUND.into_response();
        }
        None => return StatusCode::NOT_FOUND.into_response(),
    };
    serve_archive(git, owner, repo, reference).await
}

/// The redirect target of [`Behaviour::Redirect`], standing in for codeload.github.com.
async fn codeload(
    State(state): State<Arc<Mutex<ForgeState>>>,
    UrlPath((owner, repo, reference)): UrlPath<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    match record(&state, format!("/codeload/{owner}/{repo}/{reference}"), &headers) {
        Some(Behaviour::Redirect(git)) => serve_archive(git, owner, repo, reference).await,
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn serve_archive(git: PathBuf, owner: String, repo: String, reference: String) -> Response {
    let archive =
        tokio::task::spawn_blocking(move || archive(&git, &owner, &repo, &reference)).await.expect("git archive task");
    match archive {
        Some(bytes) => ([(header::CONTENT_TYPE, "application/x-gzip")], bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `git archive` of `reference` with GitHub's `{owner}-{repo}-{short sha}/` prefix, or
/// `None` when the ref does not exist.
fn archive(git: &Path, owner: &str, repo: &str, reference: &str) -> Option<Vec<u8>> {
    let commit = git_output(git, &["rev-parse", "--verify", "--quiet", &format!("{reference}^{{commit}}")])?;
    let prefix = format!("{owner}-{repo}-{}/", &commit[..7]);
    let output = Command::new("git")
        .arg("-C")
        .arg(git)
        .args(["archive", "--format=tar.gz", &format!("--prefix={prefix}"), &commit])
        .output()
        .expect("running git archive");
    output.status.success().then_some(output.stdout)
}

fn git_output(git: &Path, arguments: &[&str]) -> Option<String> {
    let output = Command::new("git").arg("-C").arg(git).args(arguments).output().expect("running git");
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A git repository in a temporary directory, driven through the `git` CLI.
pub struct GitRepository {
    directory: tempfile::TempDir,
}

impl GitRepository {
    /// `git init` with a fixed identity and `main` as the branch.
    pub fn init() -> GitRepository {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let repository = GitRepository { directory };
        repository.git(&["init", "--quiet", "--initial-branch=main"]);
        repository.git(&["config", "user.email", "tests@airlock.invalid"]);
        repository.git(&["config", "user.name", "Airlock Tests"]);
        repository.git(&["config", "commit.gpgsign", "false"]);
        repository.git(&["config", "core.autocrlf", "false"]);
        repository
    }

    /// The working tree.
    pub fn path(&self) -> &Path {
        self.directory.path()
    }

    /// Writes a file (creating directories) without committing it.
    pub fn write(&self, path: &str, contents: &str) -> &GitRepository {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().expect("a file has a parent")).expect("mkdir");
        std::fs::write(full, contents).expect("writing a file");
        self
    }

    /// Stages everything and commits; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Tags the current commit.
    pub fn tag(&self, name: &str) -> &GitRepository {
        self.git(&["tag", name]);
        self
    }

    /// Runs git with these arguments and returns its trimmed output.
    pub fn git(&self, arguments: &[&str]) -> String {
        let output = Command::new("git").arg("-C").arg(self.path()).args(arguments).output().expect("running git");
        assert!(output.status.success(), "git {arguments:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}
