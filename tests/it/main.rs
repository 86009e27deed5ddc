//! End-to-end tests: the real server between a fake upstream and real clients, all on
//! loopback. One test binary (see matklad's "Delete Cargo Integration Tests").

mod admin_ui;
mod blobs;
mod clients;
mod connections;
mod cooling;
mod dependency_holds;
mod disk_full;
mod feeds;
mod forge;
mod hostile_upstream;
mod npm_client;
mod postgres;
mod quarantine;
mod queue;
mod registry;
mod resilience;
mod resources;
mod store_conformance;
mod waivers;

use airlock_tests::{FakeRegistry, PackageVersion, TestApp, TestAppOptions, long_ago};

/// A fake upstream with a few packages, an Airlock in front of it, and the temporary
/// data directory (kept alive by the caller).
pub(crate) struct Setup {
    pub(crate) upstream: FakeRegistry,
    pub(crate) app: TestApp,
    pub(crate) data_dir: tempfile::TempDir,
}

/// Publishes `demo` 1.0.0 and 1.1.0 and `@scope/pkg` 1.0.0, all long ago.
pub(crate) fn publish_basics(upstream: &FakeRegistry) {
    upstream.publish(PackageVersion::new("demo", "1.0.0", long_ago()));
    upstream.publish(PackageVersion::new("demo", "1.1.0", long_ago() + chrono::Duration::days(1)));
    upstream.publish(PackageVersion::new("@scope/pkg", "1.0.0", long_ago()));
}

pub(crate) async fn setup(options: TestAppOptions) -> Setup {
    let upstream = FakeRegistry::start().await;
    publish_basics(&upstream);
    let data_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&upstream.url(), data_dir.path(), options).await;
    Setup { upstream, app, data_dir }
}
