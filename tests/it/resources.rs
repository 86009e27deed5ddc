//! One package must never take Airlock down (issue 10): the real `airlock serve`, as a
//! subprocess so its memory can be read from `/proc`, checks hostile packages that hit
//! each worker limit while a client keeps fetching other packages.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use airlock_tests::{ADMIN_TOKEN, FakeRegistry, PackageVersion, long_ago};

/// The server's peak resident memory may not pass this while it checks the hostile
/// packages: the checks' memory is the workers', limited to `WORKER_MEMORY`.
const SERVER_RSS_BUDGET_KIB: u64 = 200 * 1024;
const WORKER_MEMORY: &str = "512MiB";

/// A `.tgz` with one file of `size` zeros, built by streaming so the test never holds it.
fn zeros_bomb(size: u64) -> Vec<u8> {
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(gzip);
    let mut add = |path: &str, size: u64, reader: &mut dyn std::io::Read| {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, reader).unwrap();
    };
    let manifest = br#"{"name":"bomb","version":"1.0.0","main":"index.js"}"#;
    add("package/package.json", manifest.len() as u64, &mut &manifest[..]);
    add("package/zeros.bin", size, &mut std::io::Read::take(std::io::repeat(0), size));
    builder.into_inner().unwrap().finish().unwrap()
}

/// Thousands of distinct small scripts: little memory, much parsing.
fn many_scripts(count: usize) -> PackageVersion {
    let mut version = PackageVersion::new("spinner", "1.0.0", long_ago());
    for index in 0..count {
        let source = format!(
            "const value{index} = [{index}, {index} + 1, \"{index}\"].map((item) => item * 2 + {index});\nmodule.exports.f{index} = function f{index}(a, b) {{ return a + b + value{index}.length; }};\n"
        );
        version.files.push((format!("lib/file{index}.js"), source.into_bytes()));
    }
    version
}

struct Server {
    child: Child,
}

impl Server {
    fn start(config_path: &std::path::Path) -> Server {
        let child = Command::new(airlock_tests::app::worker_executable())
            .args(["serve", "--config"])
            .arg(config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting airlock serve");
        Server { child }
    }

    /// Peak resident memory (`VmHWM`) of the server process, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn wait_ready(client: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{url}/-/airlock/ready")).send().await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("airlock serve did not become ready");
}

async fn detail(client: &reqwest::Client, url: &str, name: &str) -> serde_json::Value {
    let response = client
        .get(format!("{url}/-/airlock/api/packages/{name}/versions/1.0.0"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&response.bytes().await.unwrap_or_default()).unwrap_or(serde_json::Value::Null)
}

async fn wait_decided(client: &reqwest::Client, url: &str, name: &str, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let detail = detail(client, url, name).await;
        if detail["state"].is_string() && detail["state"] != "checking" {
            return detail;
        }
        assert!(Instant::now() < deadline, "{name} was not decided in time: {detail:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn rules(detail: &serde_json::Value) -> Vec<String> {
    detail["checks"]["report"]["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|finding| finding["rule"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_packages_hit_the_worker_limits_while_other_installs_succeed() {
    let upstream = FakeRegistry::start().await;
    let benign: Vec<String> = (0..8).map(|index| format!("benign{index}")).collect();
    for name in &benign {
        upstream.publish(PackageVersion::new(name, "1.0.0", long_ago()));
    }
    // 512 MiB of zeros in 0.5 MB, more than the worker's 512 MiB address space can hold.
    upstream.publish_tarball(PackageVersion::new("bomb", "1.0.0", long_ago()), zeros_bomb(512 << 20));
    // Parsing 60,000 scripts takes about four seconds here, over the CPU and
    // wall-clock limits of one second.
    upstream.publish(many_scripts(60_000));

    let data_dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    use sha2::Digest as _;
    let token_hash = hex::encode(sha2::Sha256::digest(ADMIN_TOKEN.as_bytes()));
    let config_path = data_dir.path().join("airlock.toml");
    let mut config = std::fs::File::create(&config_path).unwrap();
    write!(
        config,
        "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = {:?}\nshutdown_grace = \"1s\"\n\
         [upstream]\nurl = \"{}\"\n[quarantine]\ncooling_period = \"0s\"\n\
         [[admin.tokens]]\nname = \"tester\"\nsha256 = \"{token_hash}\"\n\
         [forge]\napi_url = \"http://127.0.0.1:1\"\n\
         [log]\nfilter = \"warn\"\n\
         [checks]\nworker_memory_limit = \"{WORKER_MEMORY}\"\nworker_cpu_time = \"1s\"\nworker_deadline = \"1s\"\n",
        data_dir.path().join("data"),
        upstream.url()
    )
    .unwrap();
    drop(config);

    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let server = Server::start(&config_path);
    wait_ready(&client, &url).await;

    // The hostile versions are checked inside their first download, like any
    // established version: the downloads are refused, the server stays up.
    let hostile = ["bomb", "spinner"].map(|name| {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let _ = client.get(format!("{url}/{name}")).send().await;
            client.get(format!("{url}/{name}/-/{name}-1.0.0.tgz")).send().await.map(|response| response.status())
        })
    });
    // Meanwhile a client keeps installing the other packages.
    let started = Instant::now();
    let (mut fetched, mut failed) = (0, Vec::new());
    while started.elapsed() < Duration::from_secs(6) {
        for name in &benign {
            for path in [format!("/{name}"), format!("/{name}/-/{name}-1.0.0.tgz")] {
                match client.get(format!("{url}{path}")).send().await {
                    Ok(response) if response.status() == 200 => fetched += 1,
                    Ok(response) => failed.push(format!("{path}: {}", response.status())),
                    Err(error) => failed.push(format!("{path}: {error}")),
                }
            }
        }
    }
    if !failed.is_empty() {
        let example = detail(&client, &url, &benign[0]).await;
        panic!(
            "{} of {} requests failed, first {:?}; {}: {example:#}",
            failed.len(),
            fetched + failed.len(),
            &failed[..3.min(failed.len())],
            benign[0]
        );
    }
    for (name, task) in ["bomb", "spinner"].into_iter().zip(hostile) {
        let status = task.await.unwrap().expect("the server answered the hostile download");
        assert_eq!(status, 403, "{name} is never served: {:#}", detail(&client, &url, name).await);
    }

    let bomb = wait_decided(&client, &url, "bomb", Duration::from_secs(20)).await;
    assert_eq!(bomb["state"], "held", "{bomb:#}");
    // Either the worker died at its address-space limit, or the scanner's own bounds
    // (the compression-ratio cap, fallible allocation) stopped it first.
    let crashed = rules(&bomb).iter().any(|rule| rule == "check-crashed");
    let verdict = &bomb["checks"]["report"]["verdict"];
    if crashed {
        let message = bomb["checks"]["report"]["findings"][0]["message"].as_str().unwrap();
        assert!(message.contains("512 MiB (checks.worker_memory_limit)"), "{message}");
    } else {
        assert_eq!(verdict["status"], "unscannable", "{bomb:#}");
        let reason = verdict["reason"].as_str().unwrap();
        assert!(reason.contains("decompression bomb") || reason.contains("out of memory"), "{bomb:#}");
    }
    let spinner = wait_decided(&client, &url, "spinner", Duration::from_secs(20)).await;
    assert_eq!(spinner["state"], "held", "{spinner:#}");
    assert!(rules(&spinner).iter().any(|rule| rule == "check-timeout"), "{spinner:#}");

    let peak = server.peak_rss_kib();
    eprintln!("airlock serve peak RSS: {} MiB; {fetched} other requests served", peak / 1024);
    assert!(peak < SERVER_RSS_BUDGET_KIB, "the server's peak RSS was {} MiB", peak / 1024);

    // Killed outright and started again, it serves at once and retries nothing.
    server.kill();
    let server = Server::start(&config_path);
    wait_ready(&client, &url).await;
    let response = client.get(format!("{url}/benign0/-/benign0-1.0.0.tgz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(detail(&client, &url, "bomb").await["state"], "held");
    let queue: serde_json::Value = client
        .get(format!("{url}/-/airlock/api/queue"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|bytes| serde_json::from_slice(&bytes).unwrap())
        .unwrap();
    assert_eq!(queue["total"], 0, "{queue:#}");
    server.kill();
}
