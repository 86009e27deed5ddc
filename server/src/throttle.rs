//! Throttling of wrong admin credentials (API tokens and web UI passwords), in memory.
//!
//! Two rules, chosen so that an attacker can neither guess quickly nor lock a real admin
//! out:
//! - **Per source address, exponential backoff.** After [`FREE_FAILURES_PER_SOURCE`]
//!   failures within [`FAILURE_WINDOW`], the source must wait 1 s, then 2 s, 4 s, … (at
//!   most [`MAX_SOURCE_BACKOFF`]) after its last failure before the next try is even
//!   checked. The source is the client address, or the address a trusted proxy forwarded
//!   for (`server.trusted_proxies`), so one proxy in front of a whole company is not one
//!   source.
//! - **Per account, a slow-down that never refuses.** Failures for one user name (from
//!   any source) add a delay before the password is checked, up to
//!   [`MAX_ACCOUNT_DELAY`]. A distributed guesser is slowed; the admin who has the
//!   password still gets in, a little later.
//!
//! One failure log line is written per source when its backoff starts, not per attempt,
//! so a flood of wrong tokens cannot flood the log.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// How long a failure counts.
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);
/// Failures a source may make in the window before its backoff starts.
pub const FREE_FAILURES_PER_SOURCE: usize = 5;
/// The longest a source is made to wait between attempts.
pub const MAX_SOURCE_BACKOFF: Duration = Duration::minutes(5);
/// Failures for one account before its slow-down starts.
pub const FREE_FAILURES_PER_ACCOUNT: usize = 5;
/// The slow-down added per account failure beyond the free ones.
const ACCOUNT_DELAY_STEP: std::time::Duration = std::time::Duration::from_millis(200);
/// The longest slow-down for an account.
pub const MAX_ACCOUNT_DELAY: std::time::Duration = std::time::Duration::from_secs(3);
/// Most keys kept; expired ones are pruned beyond it, and when all are live the oldest
/// source is dropped (bounded memory under a spray from many addresses).
const MAX_KEYS: usize = 100_000;
/// Failures remembered per key (enough to compute the backoff).
const MAX_FAILURES_KEPT: usize = 64;

/// What a credential check may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check it, after waiting this long (zero when the account is not under attack).
    CheckAfter(std::time::Duration),
    /// Do not check it: the source is backing off until then.
    RetryAt(DateTime<Utc>),
}

/// Counts recent credential failures by source and by account.
#[derive(Default)]
pub struct CredentialThrottle {
    failures: Mutex<HashMap<ThrottleKey, VecDeque<DateTime<Utc>>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ThrottleKey {
    Source(IpAddr),
    Account(String),
}

impl ThrottleKey {
    /// An IPv6 client controls its whole /64, so that is one source.
    fn source(address: IpAddr) -> ThrottleKey {
        match address {
            IpAddr::V4(_) => ThrottleKey::Source(address),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                ThrottleKey::Source(IpAddr::V6(prefix.into()))
            }
        }
    }
}

impl CredentialThrottle {
    /// Whether a credential from `source` for `account` (a user name; `None` for a
    /// token, which names no account) may be checked now.
    pub fn admit(&self, source: IpAddr, account: Option<&str>, now: DateTime<Utc>) -> Admission {
        let failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let recent = |key: &ThrottleKey| -> Vec<DateTime<Utc>> {
            failures
                .get(key)
                .map(|times| times.iter().copied().filter(|time| now - *time < FAILURE_WINDOW).collect())
                .unwrap_or_default()
        };
        let by_source = recent(&ThrottleKey::source(source));
        if let Some(retry_at) = source_retry_at(&by_source)
            && retry_at > now
        {
            return Admission::RetryAt(retry_at);
        }
        let delay = account.map_or(std::time::Duration::ZERO, |account| {
            let count = recent(&ThrottleKey::Account(account.to_owned())).len();
            let excess = count.saturating_sub(FREE_FAILURES_PER_ACCOUNT) as u32;
            ACCOUNT_DELAY_STEP.saturating_mul(excess).min(MAX_ACCOUNT_DELAY)
        });
        Admission::CheckAfter(delay)
    }

    /// Records a wrong credential. Returns true when this failure started (or extended)
    /// the source's backoff, the moment worth a log line.
    pub fn record_failure(&self, source: IpAddr, account: Option<&str>, now: DateTime<Utc>) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, times| times.back().is_some_and(|last| now - *last < FAILURE_WINDOW));
            if failures.len() >= MAX_KEYS {
                // All live: drop the tenth least recently failed, so the cost of this
                // sort is spread over the next MAX_KEYS / 10 insertions.
                let mut by_age: Vec<(DateTime<Utc>, ThrottleKey)> =
                    failures.iter().map(|(key, times)| (times.back().copied().unwrap_or(now), key.clone())).collect();
                by_age.sort_unstable_by_key(|(last, _)| *last);
                for (_, key) in by_age.into_iter().take(MAX_KEYS / 10) {
                    failures.remove(&key);
                }
            }
        }
        let keys = [Some(ThrottleKey::source(source)), account.map(|account| ThrottleKey::Account(account.to_owned()))];
        let mut source_count = 0;
        for key in keys.into_iter().flatten() {
            let is_source = matches!(key, ThrottleKey::Source(_));
            let times = failures.entry(key).or_default();
            times.retain(|time| now - *time < FAILURE_WINDOW);
            times.push_back(now);
            if times.len() > MAX_FAILURES_KEPT {
                times.pop_front();
            }
            if is_source {
                source_count = times.len();
            }
        }
        source_count >= FREE_FAILURES_PER_SOURCE
    }

    /// Forgets the source's failures and the account's after a correct credential.
    pub fn record_success(&self, source: IpAddr, account: Option<&str>) {
        let mut failures = self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(&ThrottleKey::source(source));
        if let Some(account) = account {
            failures.remove(&ThrottleKey::Account(account.to_owned()));
        }
    }
}

/// When a source with these recent failures may try again: 1 s after its last failure
/// once it used its free ones, doubling with each further failure.
fn source_retry_at(recent: &[DateTime<Utc>]) -> Option<DateTime<Utc>> {
    let excess = recent.len().checked_sub(FREE_FAILURES_PER_SOURCE)?;
    let backoff = Duration::seconds(1i64 << excess.min(20)).min(MAX_SOURCE_BACKOFF);
    recent.last().map(|last| *last + backoff)
}

/// The address a request comes from: the peer, or, when the peer is a trusted proxy, the
/// nearest address in `X-Forwarded-For` that is not itself a trusted proxy. Entries a
/// client wrote itself (to the left of what the trusted proxies appended) are never used.
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted_proxies: &[IpAddr]) -> IpAddr {
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    let Some(forwarded_for) = forwarded_for else { return peer };
    let mut nearest = peer;
    for entry in forwarded_for.rsplit(',') {
        match entry.trim().parse::<IpAddr>() {
            Ok(address) if trusted_proxies.contains(&address) => nearest = address,
            Ok(address) => return address,
            // A malformed hop: stop at the last address a trusted proxy vouched for.
            Err(_) => return nearest,
        }
    }
    nearest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_guessing_source_backs_off_exponentially_and_recovers() {
        let throttle = CredentialThrottle::default();
        let attacker = address("203.0.113.9");
        let now = Utc::now();
        for _ in 0..FREE_FAILURES_PER_SOURCE - 1 {
            assert_eq!(throttle.admit(attacker, None, now), Admission::CheckAfter(std::time::Duration::ZERO));
            assert!(!throttle.record_failure(attacker, None, now));
        }
        assert!(throttle.record_failure(attacker, None, now), "the fifth failure starts the backoff");
        assert_eq!(throttle.admit(attacker, None, now), Admission::RetryAt(now + Duration::seconds(1)));
        // Each further failure doubles the wait.
        let later = now + Duration::seconds(1);
        assert!(matches!(throttle.admit(attacker, None, later), Admission::CheckAfter(_)));
        throttle.record_failure(attacker, None, later);
        assert_eq!(throttle.admit(attacker, None, later), Admission::RetryAt(later + Duration::seconds(2)));
        // Never more than the cap, and forgotten after the window.
        for _ in 0..40 {
            throttle.record_failure(attacker, None, later);
        }
        assert_eq!(throttle.admit(attacker, None, later), Admission::RetryAt(later + MAX_SOURCE_BACKOFF));
        assert!(matches!(throttle.admit(attacker, None, later + FAILURE_WINDOW), Admission::CheckAfter(_)));
        // Other sources are unaffected.
        assert!(matches!(throttle.admit(address("198.51.100.1"), None, later), Admission::CheckAfter(_)));
    }

    #[test]
    fn an_account_under_attack_is_slowed_but_never_refused_to_its_admin() {
        let throttle = CredentialThrottle::default();
        let now = Utc::now();
        // A distributed guesser: 100 sources, one failure each, all against "ana".
        for index in 0..100u8 {
            throttle.record_failure(IpAddr::from([10, 1, 0, index]), Some("ana"), now);
        }
        let admin = address("192.0.2.7");
        assert_eq!(throttle.admit(admin, Some("ana"), now), Admission::CheckAfter(MAX_ACCOUNT_DELAY));
        assert_eq!(throttle.admit(admin, Some("bob"), now), Admission::CheckAfter(std::time::Duration::ZERO));
        throttle.record_success(admin, Some("ana"));
        assert_eq!(throttle.admit(admin, Some("ana"), now), Admission::CheckAfter(std::time::Duration::ZERO));
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_from_many_addresses() {
        let throttle = CredentialThrottle::default();
        let now = Utc::now();
        for index in 0..(MAX_KEYS as u32 + 500) {
            throttle.record_failure(IpAddr::from(index.to_be_bytes()), None, now);
        }
        assert!(throttle.failures.lock().unwrap().len() <= MAX_KEYS);
    }

    #[test]
    fn an_ipv6_client_is_one_source_per_64_prefix() {
        let throttle = CredentialThrottle::default();
        let now = Utc::now();
        for index in 0..FREE_FAILURES_PER_SOURCE as u16 {
            throttle.record_failure(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, index]), None, now);
        }
        let same_prefix = address("2001:db8:0:1:ffff::1");
        assert!(matches!(throttle.admit(same_prefix, None, now), Admission::RetryAt(_)));
        assert!(matches!(throttle.admit(address("2001:db8:0:2::1"), None, now), Admission::CheckAfter(_)));
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy = address("10.0.0.1");
        let trusted = [proxy, address("10.0.0.2")];
        let client = address("192.0.2.50");
        // Not through a trusted proxy: the header is the client's own claim.
        assert_eq!(client_address(client, Some("1.2.3.4"), &trusted), client);
        // Through the proxy: the address it appended.
        assert_eq!(client_address(proxy, Some("192.0.2.50"), &trusted), client);
        // A spoofed entry to the left of the proxies' is ignored.
        assert_eq!(client_address(proxy, Some("6.6.6.6, 192.0.2.50, 10.0.0.2"), &trusted), client);
        // A garbage hop stops at the last trusted one; no header means the proxy itself.
        assert_eq!(client_address(proxy, Some("not-an-ip"), &trusted), proxy);
        assert_eq!(client_address(proxy, None, &trusted), proxy);
    }
}
