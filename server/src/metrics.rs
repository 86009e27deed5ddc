//! Prometheus metrics, kept in process and rendered in the text exposition format at
//! `/-/airlock/metrics`. Counters are plain atomics or small maps behind a mutex held
//! for nanoseconds; nothing here allocates on the hot path once a label set exists.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Count and total seconds of one label set.
type CountAndSeconds = (u64, f64);

/// Every metric Airlock exports.
#[derive(Default)]
pub struct Metrics {
    // (route, status) → count; (route) → bytes. Written by the request middleware.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    bytes_served: Mutex<BTreeMap<&'static str, u64>>,
    // (kind, outcome) → (count, total seconds). Written by the upstream client.
    upstream: Mutex<BTreeMap<(&'static str, &'static str), CountAndSeconds>>,
    packument_cache_hits: AtomicU64,
    packument_cache_misses: AtomicU64,
    tarball_cache_hits: AtomicU64,
    tarball_downloads: AtomicU64,
    // outcome state → (count, total seconds). Written by the pipeline.
    checks: Mutex<BTreeMap<&'static str, CountAndSeconds>>,
    // rule → versions held with a finding of that rule at or above the hold severity.
    holds_by_rule: Mutex<BTreeMap<String, u64>>,
    // store (`tarballs`, `documents`, `metadata`) → writes refused because the disk
    // was full. Written by the mirror where it stores.
    storage_full: Mutex<BTreeMap<&'static str, u64>>,
    // found (`on_write`: read back after writing, `on_read`: opened for serving) →
    // blobs that did not match their name and were removed.
    corrupt_blobs: Mutex<BTreeMap<&'static str, u64>>,
}

/// Gauges read from the store at scrape time.
pub struct Gauges {
    /// Versions by state.
    pub versions_by_state: Vec<(&'static str, u64)>,
    /// Versions waiting in the check queue.
    pub queue_depth: u64,
    /// Whether the last look at the data directory found it unable to take writes for
    /// lack of space.
    pub storage_full: bool,
}

impl Metrics {
    /// Counts a served request.
    pub fn record_request(&self, route: &'static str, status: u16, bytes: u64) {
        *lock(&self.requests).entry((route, status)).or_default() += 1;
        *lock(&self.bytes_served).entry(route).or_default() += bytes;
    }

    /// Counts an upstream exchange: `kind` is `packument`, `tarball`, `keys`, ...,
    /// `outcome` is `ok`, `not_modified`, `not_found` or `error`.
    pub fn record_upstream(&self, kind: &'static str, outcome: &'static str, duration: Duration) {
        let mut upstream = lock(&self.upstream);
        let entry = upstream.entry((kind, outcome)).or_default();
        entry.0 += 1;
        entry.1 += duration.as_secs_f64();
    }

    /// Counts a packument served from the rendered cache (or not).
    pub fn record_packument_cache(&self, hit: bool) {
        let counter = if hit { &self.packument_cache_hits } else { &self.packument_cache_misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a tarball served from disk (hit) or downloaded first.
    pub fn record_tarball_cache(&self, hit: bool) {
        let counter = if hit { &self.tarball_cache_hits } else { &self.tarball_downloads };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a finished check and the state it led to, and the rules that held it.
    pub fn record_check(&self, state: &'static str, duration: Duration, holding_rules: &[String]) {
        let mut checks = lock(&self.checks);
        let entry = checks.entry(state).or_default();
        entry.0 += 1;
        entry.1 += duration.as_secs_f64();
        drop(checks);
        self.record_holds(holding_rules);
    }

    /// Counts a hold by the rules of its findings at or above the hold severity (a
    /// check's, or the dependency resolution's at the end of a cooling period).
    pub fn record_holds(&self, holding_rules: &[String]) {
        let mut holds = lock(&self.holds_by_rule);
        for rule in holding_rules {
            *holds.entry(rule.clone()).or_default() += 1;
        }
    }

    /// Counts a write refused for lack of space; `store` is `tarballs`, `documents` or
    /// `metadata`.
    pub fn record_storage_full(&self, store: &'static str) {
        *lock(&self.storage_full).entry(store).or_default() += 1;
    }

    /// Counts a blob that did not match its name; `found` is `on_write` or `on_read`.
    pub fn record_corrupt_blob(&self, found: &'static str) {
        *lock(&self.corrupt_blobs).entry(found).or_default() += 1;
    }

    /// The text exposition format.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let _ = self.render_into(&mut out, gauges);
        out
    }

    fn render_into(&self, out: &mut String, gauges: &Gauges) -> std::fmt::Result {
        writeln!(out, "# HELP airlock_http_requests_total HTTP requests served, by route and status.")?;
        writeln!(out, "# TYPE airlock_http_requests_total counter")?;
        for ((route, status), count) in lock(&self.requests).iter() {
            writeln!(out, "airlock_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}")?;
        }
        writeln!(out, "# HELP airlock_http_response_bytes_total Response body bytes sent, by route.")?;
        writeln!(out, "# TYPE airlock_http_response_bytes_total counter")?;
        for (route, bytes) in lock(&self.bytes_served).iter() {
            writeln!(out, "airlock_http_response_bytes_total{{route=\"{route}\"}} {bytes}")?;
        }
        writeln!(
            out,
            "# HELP airlock_upstream_requests_total Requests to the upstream registry, by kind and outcome."
        )?;
        writeln!(out, "# TYPE airlock_upstream_requests_total counter")?;
        writeln!(out, "# HELP airlock_upstream_request_seconds_total Time spent waiting for the upstream.")?;
        writeln!(out, "# TYPE airlock_upstream_request_seconds_total counter")?;
        for ((kind, outcome), (count, seconds)) in lock(&self.upstream).iter() {
            writeln!(out, "airlock_upstream_requests_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {count}")?;
            writeln!(
                out,
                "airlock_upstream_request_seconds_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {seconds:.6}"
            )?;
        }
        writeln!(out, "# HELP airlock_cache_requests_total Cache lookups, by cache and result.")?;
        writeln!(out, "# TYPE airlock_cache_requests_total counter")?;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        writeln!(
            out,
            "airlock_cache_requests_total{{cache=\"packument\",result=\"hit\"}} {}",
            load(&self.packument_cache_hits)
        )?;
        writeln!(
            out,
            "airlock_cache_requests_total{{cache=\"packument\",result=\"miss\"}} {}",
            load(&self.packument_cache_misses)
        )?;
        writeln!(
            out,
            "airlock_cache_requests_total{{cache=\"tarball\",result=\"hit\"}} {}",
            load(&self.tarball_cache_hits)
        )?;
        writeln!(
            out,
            "airlock_cache_requests_total{{cache=\"tarball\",result=\"miss\"}} {}",
            load(&self.tarball_downloads)
        )?;
        writeln!(out, "# HELP airlock_versions Versions Airlock knows, by quarantine state.")?;
        writeln!(out, "# TYPE airlock_versions gauge")?;
        for (state, count) in &gauges.versions_by_state {
            writeln!(out, "airlock_versions{{state=\"{state}\"}} {count}")?;
        }
        writeln!(out, "# HELP airlock_check_queue_depth Versions waiting for their checks.")?;
        writeln!(out, "# TYPE airlock_check_queue_depth gauge")?;
        writeln!(out, "airlock_check_queue_depth {}", gauges.queue_depth)?;
        writeln!(out, "# HELP airlock_checks_total Finished checks, by the state they led to.")?;
        writeln!(out, "# TYPE airlock_checks_total counter")?;
        writeln!(out, "# HELP airlock_check_seconds_total Time spent in checks, by the state they led to.")?;
        writeln!(out, "# TYPE airlock_check_seconds_total counter")?;
        for (state, (count, seconds)) in lock(&self.checks).iter() {
            writeln!(out, "airlock_checks_total{{state=\"{state}\"}} {count}")?;
            writeln!(out, "airlock_check_seconds_total{{state=\"{state}\"}} {seconds:.6}")?;
        }
        writeln!(out, "# HELP airlock_holds_total Versions held, by the rule of a holding finding.")?;
        writeln!(out, "# TYPE airlock_holds_total counter")?;
        for (rule, count) in lock(&self.holds_by_rule).iter() {
            // Rule ids are ours ([a-z0-9-]), but escape anyway: labels must stay valid.
            let rule = rule.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            writeln!(out, "airlock_holds_total{{rule=\"{rule}\"}} {count}")?;
        }
        writeln!(out, "# HELP airlock_storage_full_errors_total Writes refused because the disk was full, by store.")?;
        writeln!(out, "# TYPE airlock_storage_full_errors_total counter")?;
        for store in ["tarballs", "documents", "metadata"] {
            let count = lock(&self.storage_full).get(store).copied().unwrap_or(0);
            writeln!(out, "airlock_storage_full_errors_total{{store=\"{store}\"}} {count}")?;
        }
        writeln!(
            out,
            "# HELP airlock_corrupt_blobs_total Stored files that did not match their name and were removed, by when it was found."
        )?;
        writeln!(out, "# TYPE airlock_corrupt_blobs_total counter")?;
        for found in ["on_write", "on_read"] {
            let count = lock(&self.corrupt_blobs).get(found).copied().unwrap_or(0);
            writeln!(out, "airlock_corrupt_blobs_total{{found=\"{found}\"}} {count}")?;
        }
        writeln!(
            out,
            "# HELP airlock_storage_full Whether the data directory's disk was full at the last look (1) or not (0)."
        )?;
        writeln!(out, "# TYPE airlock_storage_full gauge")?;
        writeln!(out, "airlock_storage_full {}", u8::from(gauges.storage_full))?;
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The route label of a request path: a small fixed set, so label cardinality stays
/// bounded whatever clients send.
pub fn route_of(path: &str) -> &'static str {
    if let Some(rest) = path.strip_prefix("/-/") {
        return match rest {
            "ping" => "ping",
            "whoami" => "whoami",
            "npm/v1/keys" => "keys",
            "airlock/health" | "airlock/ready" => "health",
            "airlock/metrics" => "metrics",
            "airlock/keys" => "keys",
            _ if rest.starts_with("npm/v1/security/") => "audit",
            _ if rest.starts_with("package/") => "dist_tags",
            _ if rest.starts_with("airlock/attestations/") => "release_records",
            _ if rest.starts_with("airlock/api/") => "admin_api",
            _ if rest.starts_with("airlock/admin") => "admin_ui",
            _ => "other",
        };
    }
    if path.contains("/-/") {
        "tarball"
    } else {
        let segments = path.trim_matches('/').split('/').count();
        let scoped = path.starts_with("/@") && !path[2..].to_ascii_lowercase().contains("%2f");
        match segments - usize::from(scoped) {
            1 => "packument",
            2 => "version_manifest",
            _ => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_a_closed_set() {
        assert_eq!(route_of("/express"), "packument");
        assert_eq!(route_of("/@scope/pkg"), "packument");
        assert_eq!(route_of("/@scope%2Fpkg"), "packument");
        assert_eq!(route_of("/@scope/pkg/1.0.0"), "version_manifest");
        assert_eq!(route_of("/express/-/express-4.0.0.tgz"), "tarball");
        assert_eq!(route_of("/-/airlock/api/versions"), "admin_api");
        assert_eq!(route_of("/-/npm/v1/security/advisories/bulk"), "audit");
        assert_eq!(route_of("/a/b/c/d/e"), "other");
    }

    #[test]
    fn rendering_is_valid_exposition_text() {
        let metrics = Metrics::default();
        metrics.record_request("packument", 200, 1000);
        metrics.record_request("packument", 200, 500);
        metrics.record_upstream("packument", "ok", Duration::from_millis(250));
        metrics.record_check("held", Duration::from_millis(40), &["hidden-recipient".into()]);
        metrics.record_storage_full("tarballs");
        metrics.record_corrupt_blob("on_read");
        let text = metrics.render(&Gauges { versions_by_state: vec![("held", 1)], queue_depth: 3, storage_full: true });
        assert!(text.contains("airlock_http_requests_total{route=\"packument\",status=\"200\"} 2\n"));
        assert!(text.contains("airlock_http_response_bytes_total{route=\"packument\"} 1500\n"));
        assert!(text.contains("airlock_upstream_request_seconds_total{kind=\"packument\",outcome=\"ok\"} 0.250000\n"));
        assert!(text.contains("airlock_holds_total{rule=\"hidden-recipient\"} 1\n"));
        assert!(text.contains("airlock_check_queue_depth 3\n"));
        assert!(text.contains("airlock_versions{state=\"held\"} 1\n"));
        assert!(text.contains("airlock_storage_full_errors_total{store=\"tarballs\"} 1\n"));
        assert!(text.contains("airlock_storage_full_errors_total{store=\"metadata\"} 0\n"));
        assert!(text.contains("airlock_corrupt_blobs_total{found=\"on_read\"} 1\n"));
        assert!(text.contains("airlock_storage_full 1\n"));
    }
}
