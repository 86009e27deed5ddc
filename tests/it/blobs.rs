//! One blob contract, every backend: the data directory and an S3-compatible object
//! store (a real SeaweedFS), through the same `Blobs` seam the server uses.

use std::path::Path;

use airlock_config::BlobStorage;
use airlock_server::npm::Integrity;
use airlock_server::store::blobs::{BlobError, Blobs, OpenedTarball};
use airlock_tests::seaweedfs::SeaweedFs;
use airlock_tests::{FakeRegistry, PackageVersion, TestApp, TestAppOptions, long_ago};
use futures_util::StreamExt as _;
use sha2::Digest as _;

/// How a test reaches behind the seam to change a stored tarball.
enum Backend<'a> {
    Directory(&'a Path),
    /// With `cache`, each open gets an empty local tarball cache under it.
    S3 {
        seaweed: &'a SeaweedFs,
        prefix: String,
        cache: Option<&'a Path>,
    },
}

impl Backend<'_> {
    fn name(&self) -> &'static str {
        match self {
            Backend::Directory(_) => "dir",
            Backend::S3 { cache: None, .. } => "s3",
            Backend::S3 { cache: Some(_), .. } => "s3 with a local cache",
        }
    }

    /// A fresh `Blobs` on the same storage (for the directory: a restart, which
    /// forgets the lengths it verified).
    fn open(&self) -> Blobs {
        match self {
            Backend::Directory(data_dir) => Blobs::open_directory(data_dir).unwrap(),
            Backend::S3 { seaweed, prefix, cache } => {
                let mut storage = seaweed.blob_storage(prefix);
                let data_dir = match (cache, &mut storage) {
                    (Some(root), BlobStorage::S3(s3)) => {
                        s3.cache_size = 1 << 30;
                        // Kept until `root` goes: the cache lives there.
                        tempfile::tempdir_in(root).unwrap().keep()
                    }
                    // Nothing is written under the data directory without a cache.
                    _ => std::path::PathBuf::from("/nonexistent-airlock-data"),
                };
                Blobs::open(&storage, &data_dir).unwrap()
            }
        }
    }

    /// Replaces a stored tarball's bytes with `bytes`, as a disk fault or someone with
    /// write access to the bucket would.
    async fn overwrite_tarball(&self, sha512_hex: &str, bytes: Vec<u8>) {
        match self {
            Backend::Directory(data_dir) => {
                let path = data_dir.join("blobs/sha512").join(&sha512_hex[..2]).join(sha512_hex);
                assert!(path.is_file(), "{} is where the directory keeps it", path.display());
                std::fs::write(path, bytes).unwrap();
            }
            Backend::S3 { seaweed, prefix, .. } => {
                seaweed.overwrite(&format!("{prefix}/tarballs/sha512/{sha512_hex}"), bytes).await;
            }
        }
    }
}

/// `length` bytes that do not repeat, and their integrity.
fn tarball(length: usize, seed: u32) -> (Vec<u8>, Integrity) {
    let bytes: Vec<u8> =
        (0..length as u32).map(|index| (index.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let integrity = airlock_tests::integrity_of(&bytes);
    (bytes, Integrity::from_dist(Some(&integrity), None).unwrap())
}

fn body(bytes: &[u8]) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + use<> {
    let chunks: Vec<_> = bytes.chunks(16 << 10).map(|chunk| Ok(bytes::Bytes::copy_from_slice(chunk))).collect();
    futures_util::stream::iter(chunks)
}

/// Everything a reader gets from an opened tarball: the bytes delivered before the
/// end, and how it ended.
async fn drain(opened: OpenedTarball) -> (Vec<u8>, Result<(), BlobError>) {
    match opened {
        OpenedTarball::Bytes(bytes) => (bytes.to_vec(), Ok(())),
        OpenedTarball::File { .. } => match opened.into_bytes().await {
            Ok(bytes) => (bytes.to_vec(), Ok(())),
            Err(error) => (Vec::new(), Err(error)),
        },
        OpenedTarball::Stream { mut body, .. } => {
            let mut delivered = Vec::new();
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(chunk) => delivered.extend_from_slice(&chunk),
                    Err(error) => return (delivered, Err(error)),
                }
            }
            (delivered, Ok(()))
        }
    }
}

async fn round_trip(backend: &Backend<'_>) {
    let blobs = backend.open();
    let (bytes, integrity) = tarball(300 << 10, 1);
    let digests = blobs.store_verified(body(&bytes), &integrity, u64::MAX).await.unwrap();
    let hex = digests.sha512_hex();
    assert_eq!(hex, hex::encode(sha2::Sha512::digest(&bytes)));
    assert!(blobs.tarball_exists(&hex).await.unwrap());
    // Read whole, and opened for streaming (larger than the whole-read limit).
    for (read_whole_up_to, what) in [(u64::MAX, "whole"), (1024, "streamed")] {
        let opened = backend.open().open_tarball(&hex, read_whole_up_to).await.unwrap().expect("stored");
        let (delivered, end) = drain(opened).await;
        assert!(end.is_ok(), "{} {what}: {end:?}", backend.name());
        assert!(delivered == bytes, "{} {what}: the bytes read are the bytes stored", backend.name());
    }
    let document = bytes::Bytes::from_static(br#"{"name":"demo","versions":{}}"#);
    let sha256 = blobs.store_document(document.clone()).await.unwrap();
    assert_eq!(sha256, hex::encode(sha2::Sha256::digest(&document)));
    assert_eq!(blobs.read_document(&sha256).await.unwrap(), document);
    assert_eq!(blobs.store_document(document.clone()).await.unwrap(), sha256, "storing it again is a no-op");
    blobs.remove_document(&sha256).await.unwrap();
    assert!(blobs.read_document(&sha256).await.is_err(), "{}: a removed document is gone", backend.name());
    blobs.remove_document(&sha256).await.unwrap();
}

async fn storing_twice_and_concurrently_is_one_blob(backend: &Backend<'_>) {
    let blobs = backend.open();
    let (bytes, integrity) = tarball(200 << 10, 2);
    let first = blobs.store_verified(body(&bytes), &integrity, u64::MAX).await.unwrap();
    let second = blobs.store_verified(body(&bytes), &integrity, u64::MAX).await.unwrap();
    assert_eq!(first.sha512, second.sha512, "{}: create-if-absent twice", backend.name());
    let (bytes, integrity) = tarball(200 << 10, 3);
    let puts = (0..8).map(|_| {
        let (blobs, integrity, bytes) = (backend.open(), integrity.clone(), bytes.clone());
        async move { blobs.store_verified(body(&bytes), &integrity, u64::MAX).await }
    });
    let results = futures_util::future::join_all(puts).await;
    for result in &results {
        assert!(result.is_ok(), "{}: every concurrent put of one blob succeeds: {result:?}", backend.name());
    }
    let hex = results[0].as_ref().unwrap().sha512_hex();
    let (delivered, end) = drain(backend.open().open_tarball(&hex, u64::MAX).await.unwrap().unwrap()).await;
    assert!(end.is_ok() && delivered == bytes, "{}: the blob is whole after concurrent puts", backend.name());
}

async fn a_changed_blob_is_never_served_and_is_removed(backend: &Backend<'_>) {
    let (bytes, integrity) = tarball(300 << 10, 4);
    for (read_whole_up_to, what) in [(u64::MAX, "whole"), (1024, "streamed")] {
        let blobs = backend.open();
        let hex = blobs.store_verified(body(&bytes), &integrity, u64::MAX).await.unwrap().sha512_hex();
        // Same length, one byte flipped: only the hash tells.
        let mut changed = bytes.clone();
        changed[bytes.len() / 2] ^= 1;
        backend.overwrite_tarball(&hex, changed).await;
        let reader = backend.open();
        let (delivered, end) = match reader.open_tarball(&hex, read_whole_up_to).await {
            Ok(Some(opened)) => drain(opened).await,
            Ok(None) => panic!("{} {what}: the changed blob is still there to be refused", backend.name()),
            Err(error) => (Vec::new(), Err(error)),
        };
        assert!(
            matches!(end, Err(BlobError::Corrupt { .. })),
            "{} {what}: a blob that does not match its name is an error: {end:?}",
            backend.name()
        );
        assert!(
            delivered.len() < bytes.len(),
            "{} {what}: never all of a changed blob's bytes ({} of {})",
            backend.name(),
            delivered.len(),
            bytes.len()
        );
        assert!(!reader.tarball_exists(&hex).await.unwrap(), "{} {what}: the changed blob is removed", backend.name());
    }
}

async fn refused_and_missing_blobs(backend: &Backend<'_>) {
    let blobs = backend.open();
    let (bytes, _) = tarball(50 << 10, 5);
    let (_, other_integrity) = tarball(50 << 10, 6);
    let refused = blobs.store_verified(body(&bytes), &other_integrity, u64::MAX).await;
    assert!(matches!(refused, Err(BlobError::IntegrityMismatch { .. })), "{}: {refused:?}", backend.name());
    let hex = hex::encode(sha2::Sha512::digest(&bytes));
    assert!(!blobs.tarball_exists(&hex).await.unwrap(), "{}: nothing stored under its name", backend.name());
    let (_, integrity) = tarball(50 << 10, 5);
    let too_large = blobs.store_verified(body(&bytes), &integrity, 1000).await;
    assert!(matches!(too_large, Err(BlobError::TooLarge { limit: 1000 })), "{}: {too_large:?}", backend.name());
    assert!(!blobs.tarball_exists(&hex).await.unwrap());
    let missing = "0".repeat(128);
    assert!(blobs.open_tarball(&missing, u64::MAX).await.unwrap().is_none(), "{}: missing", backend.name());
    assert!(blobs.read_document(&"0".repeat(64)).await.is_err(), "{}: missing document", backend.name());
    assert!(blobs.open_tarball("../../etc/passwd", u64::MAX).await.is_err(), "{}: not a name", backend.name());
}

/// The local cache of the object store backend: the first read copies the verified
/// bytes, later reads are files that no longer depend on the bucket.
async fn a_cached_copy_is_served_as_a_file(seaweed: &SeaweedFs, cache_root: &Path) {
    let backend = Backend::S3 { seaweed, prefix: "cache-hit".to_owned(), cache: Some(cache_root) };
    let blobs = backend.open();
    let (bytes, integrity) = tarball(300 << 10, 7);
    let hex = blobs.store_verified(body(&bytes), &integrity, u64::MAX).await.unwrap().sha512_hex();
    let first = blobs.open_tarball(&hex, 1024).await.unwrap().unwrap();
    assert!(matches!(first, OpenedTarball::File { .. }), "copied into the cache and served as a file");
    assert!(drain(first).await.0 == bytes);
    // The bucket's object changes; the verified copy is what is served.
    backend.overwrite_tarball(&hex, vec![0; bytes.len()]).await;
    let second = blobs.open_tarball(&hex, 1024).await.unwrap().unwrap();
    assert!(matches!(second, OpenedTarball::File { .. }), "served from the cache");
    let (delivered, end) = drain(second).await;
    assert!(end.is_ok() && delivered == bytes, "the cached copy is the verified bytes");
}

/// The cache stays within its budget: the least recently served copy goes first.
async fn the_cache_keeps_to_its_budget(seaweed: &SeaweedFs) {
    let data_dir = tempfile::tempdir().unwrap();
    let mut storage = seaweed.blob_storage("cache-budget");
    let BlobStorage::S3(s3) = &mut storage else { unreachable!("configured as s3") };
    s3.cache_size = 700 << 10;
    let blobs = Blobs::open(&storage, data_dir.path()).unwrap();
    let mut names = Vec::new();
    for seed in 10..13 {
        let (bytes, integrity) = tarball(300 << 10, seed);
        names.push(blobs.store_verified(body(&bytes), &integrity, u64::MAX).await.unwrap().sha512_hex());
    }
    let cached = |hex: &str| data_dir.path().join("blob-cache/sha512").join(&hex[..2]).join(hex).is_file();
    for hex in &names[..2] {
        assert!(drain(blobs.open_tarball(hex, 1024).await.unwrap().unwrap()).await.1.is_ok());
    }
    // Serving the first again makes the second the least recently served.
    assert!(drain(blobs.open_tarball(&names[0], 1024).await.unwrap().unwrap()).await.1.is_ok());
    assert!(drain(blobs.open_tarball(&names[2], 1024).await.unwrap().unwrap()).await.1.is_ok());
    assert_eq!(names.iter().map(|hex| cached(hex)).collect::<Vec<_>>(), [true, false, true]);
    // A restart counts what is on disk against the budget.
    let restarted = Blobs::open(&storage, data_dir.path()).unwrap();
    assert!(drain(restarted.open_tarball(&names[1], 1024).await.unwrap().unwrap()).await.1.is_ok());
    assert_eq!(names.iter().filter(|hex| cached(hex)).count(), 2, "at most 700 KiB of 300 KiB copies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_blob_backend_keeps_the_blob_contract() {
    let data_dir = tempfile::tempdir().unwrap();
    let seaweed = SeaweedFs::start("every_blob_backend_keeps_the_blob_contract").await;
    let cache_root = tempfile::tempdir().unwrap();
    let mut backends = vec![Backend::Directory(data_dir.path())];
    if let Some(seaweed) = &seaweed {
        backends.push(Backend::S3 { seaweed, prefix: "conformance".to_owned(), cache: None });
        backends.push(Backend::S3 { seaweed, prefix: "cached".to_owned(), cache: Some(cache_root.path()) });
    }
    for backend in &backends {
        round_trip(backend).await;
        storing_twice_and_concurrently_is_one_blob(backend).await;
        a_changed_blob_is_never_served_and_is_removed(backend).await;
        refused_and_missing_blobs(backend).await;
    }
    if let Some(seaweed) = &seaweed {
        a_cached_copy_is_served_as_a_file(seaweed, cache_root.path()).await;
        the_cache_keeps_to_its_budget(seaweed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tarballs_install_through_an_s3_blob_store_and_a_changed_object_is_never_served() {
    let Some(seaweed) = SeaweedFs::start("tarballs_install_through_an_s3_blob_store").await else { return };
    let upstream = FakeRegistry::start().await;
    let version = PackageVersion::new("s3-demo", "1.0.0", long_ago()).with_file("index.js", b"module.exports = 42;\n");
    let tarball = version.tarball();
    upstream.publish(version);
    let data_dir = tempfile::tempdir().unwrap();
    let options = TestAppOptions {
        // No hot copies in memory: every tarball is read from the bucket.
        extra_toml: format!("{}[cache]\ntarball_memory = 0\n", seaweed.storage_toml("e2e")),
        overrides: seaweed.credentials(),
        ..TestAppOptions::default()
    };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    assert_eq!(app.get("/-/airlock/ready").await.status(), 200);

    let (status, packument) = app.get_json("/s3-demo").await;
    assert_eq!(status, 200);
    let tarball_path = "/s3-demo/-/s3-demo-1.0.0.tgz";
    assert_eq!(packument["versions"]["1.0.0"]["dist"]["tarball"], format!("{}{tarball_path}", app.url()));
    let response = app.get(tarball_path).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), tarball);

    // The blobs are in the bucket, not in the data directory.
    let sha512_hex = hex::encode(sha2::Sha512::digest(&tarball));
    let key = format!("e2e/tarballs/sha512/{sha512_hex}");
    let store = seaweed.object_store("");
    use object_store::ObjectStoreExt as _;
    let stored = store.head(&object_store::path::Path::from(key.as_str())).await.unwrap();
    assert_eq!(stored.size, tarball.len() as u64);
    assert!(!data_dir.path().join("blobs").exists(), "no blob directory with blobs = \"s3\"");

    // Someone with write access to the bucket changes the object: after a restart (no
    // hot copy in memory) Airlock refuses it, counts it, and serves the real bytes
    // again from the upstream.
    app.stop().await;
    let mut changed = tarball.clone();
    let middle = changed.len() / 2;
    changed[middle] ^= 1;
    seaweed.overwrite(&key, changed).await;
    let options = TestAppOptions {
        // No hot copies in memory: every tarball is read from the bucket.
        extra_toml: format!("{}[cache]\ntarball_memory = 0\n", seaweed.storage_toml("e2e")),
        overrides: seaweed.credentials(),
        ..TestAppOptions::default()
    };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    let response = app.get(tarball_path).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), tarball, "the changed object is never served");
    let metrics = app.get("/-/airlock/metrics").await.text().await.unwrap();
    assert!(metrics.contains("airlock_corrupt_blobs_total{found=\"on_read\"} 1\n"), "{metrics}");

    // The object store goes away: not ready, and a tarball is a 503 that says why,
    // never bytes that were not verified.
    drop(seaweed);
    let ready = app.get("/-/airlock/ready").await;
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = serde_json::from_slice(&ready.bytes().await.unwrap()).unwrap();
    assert_eq!(body["status"], "blob store unavailable", "{body}");
    let response = app.get(tarball_path).await;
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(message.starts_with("Airlock's blob store is unavailable"), "{message}");
    assert!(!message.contains(airlock_tests::seaweedfs::SECRET_ACCESS_KEY), "{message}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_object_store_does_not_answer_fails_naming_it() {
    // A loopback port with nothing behind it: connections are refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let data_dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\
         [storage]\nblobs = \"s3\"\ns3_endpoint = \"http://127.0.0.1:{closed}\"\ns3_bucket = \"airlock-blobs\"\n",
        data_dir.path()
    );
    let overrides = airlock_config::Overrides::from_env(|key| match key {
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".to_owned()),
        "AWS_SECRET_ACCESS_KEY" => Some("never-printed-secret".to_owned()),
        _ => None,
    });
    let config = airlock_config::Config::from_toml("test.toml", &text, overrides).unwrap();
    let started = std::time::Instant::now();
    let error = airlock_server::cli::serve::run(config).await.expect_err("no object store, no start");
    let message = format!("{error:#}");
    assert!(message.contains(&format!("bucket `airlock-blobs` at http://127.0.0.1:{closed}")), "{message}");
    assert!(!message.contains("never-printed-secret"), "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "fails fast: {:?}", started.elapsed());
}
