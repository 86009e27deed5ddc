//! Test support for Airlock's end-to-end tests: a fake upstream registry, a fake forge
//! and the real server, all on 127.0.0.1 ephemeral ports. Nothing here touches the
//! internet.

pub mod app;
pub mod clients;
pub mod forge;
pub mod postgres;
pub mod registry;
pub mod scenarios;
pub mod seaweedfs;

pub use app::{ADMIN_TOKEN, TestApp, TestAppOptions};
pub use registry::{FakeRegistry, PackageVersion, integrity_of};

/// A publish time long before any cooling period.
pub fn long_ago() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::days(365)
}
