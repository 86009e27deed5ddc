//! Hostile connections: idle sockets, slowloris request heads, and the connection cap,
//! while real installs go on.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::setup;
use airlock_tests::TestAppOptions;

fn options(server_toml: &str) -> TestAppOptions {
    TestAppOptions { server_toml: server_toml.to_owned(), ..TestAppOptions::default() }
}

/// Waits until the server closes `stream` (EOF or reset), at most `limit`; returns
/// whether it did. Anything the server sends first (a timeout answer) is read past.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn idle_and_slowloris_connections_are_closed_while_installs_keep_working() {
    // 2,000 idle sockets cost 4,000 descriptors in this process (both ends).
    airlock_server::connections::raise_open_file_limit(12_000);
    let setup = setup(options("header_read_timeout = \"1s\"")).await;
    let address = setup.app.address;

    let mut idle = Vec::with_capacity(2000);
    for _ in 0..2000 {
        idle.push(TcpStream::connect(address).await.expect("connecting an idle socket"));
    }

    // A slowloris head: one header line every 200 ms, never finished.
    let slowloris = tokio::spawn(async move {
        let started = Instant::now();
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(b"GET /-/ping HTTP/1.1\r\nHost: airlock\r\n").await.unwrap();
        for line in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stream.write_all(format!("X-Trickle-{line}: 1\r\n").as_bytes()).await.is_err() {
                break;
            }
            let mut byte = [0u8; 1];
            if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut byte)).await {
                break;
            }
        }
        started.elapsed()
    });

    // Real installs go on beside them: packument, tarball, ping.
    for _ in 0..3 {
        assert_eq!(setup.app.get("/demo").await.status(), 200);
        assert_eq!(setup.app.get("/demo/-/demo-1.0.0.tgz").await.status(), 200);
        assert_eq!(setup.app.get("/-/ping").await.status(), 200);
    }

    // Every idle socket is closed by the server soon after the header-read timeout.
    let closed =
        futures_util::future::join_all(idle.iter_mut().map(|stream| closed_within(stream, Duration::from_secs(10))))
            .await;
    let still_open = closed.iter().filter(|closed| !**closed).count();
    assert_eq!(still_open, 0, "{still_open} of 2000 idle sockets were not closed");

    let trickled_for = slowloris.await.unwrap();
    assert!(trickled_for < Duration::from_secs(8), "the slowloris head was read for {trickled_for:?}");

    // A keep-alive connection that goes quiet after a response is closed too.
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /-/ping HTTP/1.1\r\nHost: airlock\r\n\r\n").await.unwrap();
    let mut response = vec![0u8; 1024];
    let length = stream.read(&mut response).await.unwrap();
    assert!(response[..length].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&response[..length]));
    assert!(closed_within(&mut stream, Duration::from_secs(10)).await, "an idle keep-alive connection stayed open");

    // And the server still answers.
    assert_eq!(setup.app.get("/-/ping").await.status(), 200);
}

#[tokio::test]
async fn at_the_connection_cap_new_clients_wait_for_a_free_slot_instead_of_failing() {
    let setup = setup(options("header_read_timeout = \"1s\"\nmax_connections = 16")).await;
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(TcpStream::connect(setup.app.address).await.unwrap());
    }
    // Give the accept loop time to take all 16 slots.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let response = setup.app.get("/-/ping").await;
    assert_eq!(response.status(), 200);
    // Served only once the idle sockets timed out and freed their slots.
    assert!(started.elapsed() >= Duration::from_millis(500), "served after {:?}", started.elapsed());
    for stream in &mut idle {
        assert!(closed_within(stream, Duration::from_secs(5)).await);
    }
}
