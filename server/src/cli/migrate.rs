//! `airlock migrate --from-sled DIR --to URL`: copies an embedded installation's
//! metadata into an empty PostgreSQL database, then reads everything back and compares
//! counts and digests kind by kind. Run it with Airlock stopped (sled admits one process).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::store::blobs::Blobs;
use crate::store::{MetadataLocation, Snapshot, Store};

/// Arguments of `airlock migrate`.
#[derive(clap::Args)]
pub struct MigrateArgs {
    /// The embedded installation's data directory (`server.data_dir`; its `metadata/`
    /// is read and its raw packuments stored by old releases become document blobs).
    #[arg(long, value_name = "DIR")]
    from_sled: PathBuf,
    /// The PostgreSQL URL to copy into; the database must be empty.
    #[arg(long, value_name = "URL", env = airlock_config::EnvVars::STORAGE_URL, hide_env_values = true)]
    to: String,
    /// Connections to PostgreSQL.
    #[arg(long, default_value_t = 4)]
    pool_size: usize,
}

/// Copies, verifies and prints the report; fails when anything differs.
pub fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(migrate(args))
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let data_dir = args.from_sled;
    let metadata_dir = data_dir.join("metadata");
    anyhow::ensure!(
        metadata_dir.is_dir(),
        "{} has no metadata/ directory: is it Airlock's data directory?",
        data_dir.display()
    );
    let source = Store::open(MetadataLocation::Sled(&metadata_dir)).await.with_context(|| {
        format!("opening the embedded store in {} (is Airlock still running?)", metadata_dir.display())
    })?;
    let mut snapshot = source.export().await?;
    let source_summary = snapshot.summary();
    let moved = move_legacy_packuments(&data_dir, &mut snapshot).await?;
    let expected = snapshot.summary();

    let target = Store::open(MetadataLocation::Postgres { url: &args.to, pool_size: args.pool_size })
        .await
        .context("opening the PostgreSQL store")?;
    target.import(&snapshot).await?;
    let copied = target.export().await?.summary();

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{:<20} {:>10} {:>10}  SHA-256 (POSTGRESQL)", "RECORDS", "SLED", "POSTGRESQL")?;
    let mut all_equal = true;
    for ((from, want), got) in source_summary.iter().zip(&expected).zip(&copied) {
        let equal = want == got;
        all_equal &= equal;
        writeln!(stdout, "{:<20} {:>10} {:>10}  {}{}", from.kind, from.count, got.count, got.sha256, mark(equal))?;
    }
    if moved > 0 {
        writeln!(
            stdout,
            "{moved} raw packuments stored by an old release were moved to document blobs in {}",
            data_dir.display()
        )?;
    }
    if !all_equal {
        writeln!(stdout, "the copy differs from the source (marked above); the database keeps what was imported")?;
        return Ok(ExitCode::FAILURE);
    }
    writeln!(stdout, "every record copied; counts and digests match")?;
    Ok(ExitCode::SUCCESS)
}

fn mark(equal: bool) -> &'static str {
    if equal { "" } else { "  DIFFERS" }
}

/// PostgreSQL keeps no raw packuments: each one an old release kept in sled is written
/// as a document blob and its package record points at it, as a refresh would do.
async fn move_legacy_packuments(data_dir: &std::path::Path, snapshot: &mut Snapshot) -> anyhow::Result<usize> {
    if snapshot.legacy_packuments.is_empty() {
        return Ok(0);
    }
    // The blobs stay in the data directory's blob store, which the migrated installation
    // keeps using (copying blobs into a bucket is not part of this command).
    let blobs = Blobs::open(&airlock_config::BlobStorage::Directory, data_dir)
        .with_context(|| format!("opening the blobs in {}", data_dir.display()))?;
    let legacy = std::mem::take(&mut snapshot.legacy_packuments);
    for (name, raw) in &legacy {
        let sha256 = blobs
            .store_document(bytes::Bytes::from(raw.clone()))
            .await
            .with_context(|| format!("storing the packument of {name} as a blob"))?;
        if let Some((_, record)) = snapshot.packages.iter_mut().find(|(package, _)| package == name)
            && record.raw_packument_sha256.is_none()
        {
            record.raw_packument_sha256 = Some(sha256);
        }
    }
    Ok(legacy.len())
}
