//! `TestPostgres`: a throwaway PostgreSQL cluster for the tests, made with Debian's
//! `initdb` and `pg_ctl` in a temporary directory, listening on 127.0.0.1 on a free
//! port with a password (SCRAM), and stopped when dropped.
//!
//! PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres`
//! user that Debian's package creates. When the binaries are not installed,
//! [`TestPostgres::start`] prints "skipped: PostgreSQL not installed" (on stderr) and returns
//! `None`; `scripts/test` installs them, so CI never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster.
pub struct TestPostgres {
    directory: tempfile::TempDir,
    bin_dir: PathBuf,
    run_as: Option<(u32, u32)>,
    /// Where it listens.
    pub port: u16,
    /// The superuser's password (user `airlock`).
    pub password: String,
}

/// The superuser the cluster is made with.
const USER: &str = "airlock";

impl TestPostgres {
    /// Starts a new cluster, or `None` (with the skip message printed) when PostgreSQL
    /// is not installed. Panics when it is installed but cannot start.
    pub fn start(test: &str) -> Option<TestPostgres> {
        let Some(bin_dir) = find_bin_dir() else {
            eprintln!(
                "{test}: skipped: PostgreSQL not installed (no initdb and pg_ctl on PATH or in /usr/lib/postgresql/*/bin)"
            );
            return None;
        };
        let directory = tempfile::Builder::new().prefix("airlock-pg-").tempdir().expect("a temporary directory");
        let run_as = if is_root() { Some(postgres_user()) } else { None };
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(directory.path(), Some(uid), Some(gid)).expect("chown the cluster directory");
        }
        let password = format!("pw-{:016x}", rand_u64());
        let password_file = directory.path().join("password");
        std::fs::write(&password_file, &password).expect("writing the password file");
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(&password_file, Some(uid), Some(gid)).expect("chown the password file");
        }
        let data = directory.path().join("data");
        let output = command(&bin_dir, "initdb", run_as)
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"])
            .arg(format!("--pwfile={}", password_file.display()))
            .output()
            .expect("running initdb");
        assert!(output.status.success(), "initdb failed: {}", String::from_utf8_lossy(&output.stderr));
        let mut cluster = TestPostgres { directory, bin_dir, run_as, port: 0, password };
        for _ in 0..5 {
            cluster.port = free_port();
            let output = cluster.pg_ctl_start();
            if output.status.success() {
                return Some(cluster);
            }
            // Most likely the port was taken in the meantime; try another.
            eprintln!(
                "pg_ctl start on port {} failed: {}{}",
                cluster.port,
                String::from_utf8_lossy(&output.stderr),
                std::fs::read_to_string(cluster.directory.path().join("server.log")).unwrap_or_default()
            );
        }
        panic!("PostgreSQL did not start (see above)");
    }

    fn pg_ctl_start(&self) -> std::process::Output {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c fsync=off -c max_connections=200",
            self.port,
            self.directory.path().display()
        );
        command(&self.bin_dir, "pg_ctl", self.run_as)
            .arg("-D")
            .arg(self.directory.path().join("data"))
            .arg("-l")
            .arg(self.directory.path().join("server.log"))
            .args(["-w", "-t", "30", "-o", &options, "start"])
            .output()
            .expect("running pg_ctl start")
    }

    /// Starts the server again after [`TestPostgres::stop`], on the same port.
    pub fn start_again(&self) {
        let output = self.pg_ctl_start();
        assert!(output.status.success(), "pg_ctl start failed: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// The URL of database `name` as user `airlock`, with the password.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{USER}:{}@127.0.0.1:{}/{name}", self.password, self.port)
    }

    /// Creates a new, empty database and returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        let (client, connection) = tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
            .await
            .expect("connecting to postgres");
        let driver = tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.expect("creating a database");
        drop(client);
        let _ = driver.await;
        self.url(name)
    }

    /// Stops the server immediately (as a crash would), keeping its files.
    pub fn stop(&self) {
        let _ = command(&self.bin_dir, "pg_ctl", self.run_as)
            .arg("-D")
            .arg(self.directory.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `initdb` and `pg_ctl` from PATH, else from the newest `/usr/lib/postgresql/*/bin`.
fn find_bin_dir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_both(&dir) {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|dir| has_both(dir))
        .collect();
    versions.sort();
    versions.pop()
}

/// A command for one of the binaries, as `run_as` when given.
fn command(bin_dir: &Path, program: &str, run_as: Option<(u32, u32)>) -> Command {
    let program = bin_dir.join(program);
    let mut command = match run_as {
        Some((uid, gid)) => {
            let mut command = Command::new("setpriv");
            command.arg(format!("--reuid={uid}")).arg(format!("--regid={gid}")).arg("--clear-groups").arg(program);
            command
        }
        None => Command::new(program),
    };
    // The test's own directory may not be readable by the `postgres` user.
    command.current_dir("/");
    command
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// The uid and gid of the `postgres` user.
fn postgres_user() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let output = Command::new("id").args([flag, "postgres"]).output().expect("running id");
        assert!(
            output.status.success(),
            "running as root needs a `postgres` user (Debian's postgresql package makes it)"
        );
        String::from_utf8_lossy(&output.stdout).trim().parse().expect("a numeric id")
    };
    (id("-u"), id("-g"))
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port()
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
}
