//! pnpm, yarn classic, yarn berry and bun install through Airlock.

use airlock_tests::clients::publish_client_tree;
use airlock_tests::{FakeRegistry, PackageVersion, TestApp, TestAppOptions, long_ago};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "exploration"]
async fn explore() {
    let upstream = FakeRegistry::start().await;
    publish_client_tree(&upstream);
    upstream.publish(PackageVersion::new("fresh-pkg", "1.0.0", long_ago()));
    upstream.publish(PackageVersion::new("fresh-pkg", "2.0.0", chrono::Utc::now()));
    let data_dir = tempfile::tempdir().unwrap();
    let options = TestAppOptions { cooling_period: "72h", ..TestAppOptions::default() };
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    std::fs::write("/tmp/airlock-explore.url", format!("{} {}", app.url(), upstream.url())).unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3000)).await;
}
