//! The upstream registry's signing keys (`/-/npm/v1/keys`), fetched and cached, with the
//! npm public registry's keys built in for when it is the upstream and cannot be asked.

use std::sync::Mutex;

use airlock_scanner::provenance::RegistryKeys;
use base64::Engine as _;
use chrono::{DateTime, Utc};

use crate::upstream::Upstream;

/// How long fetched keys are trusted before asking again.
const KEYS_MAX_AGE: chrono::Duration = chrono::Duration::hours(1);

/// Cached upstream keys.
pub struct UpstreamKeys {
    // Written by `get` after a fetch; read by every caller. Never held across an await.
    cached: Mutex<Option<(DateTime<Utc>, RegistryKeys)>>,
}

impl UpstreamKeys {
    /// An empty cache.
    pub fn new() -> UpstreamKeys {
        UpstreamKeys { cached: Mutex::new(None) }
    }

    /// The upstream's keys: cached, fetched, or built in. An upstream that publishes no
    /// keys (most private registries) has none.
    pub async fn get(&self, upstream: &Upstream, now: DateTime<Utc>) -> RegistryKeys {
        if let Some((fetched_at, keys)) = &*self.cached.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
            && now - *fetched_at < KEYS_MAX_AGE
        {
            return keys.clone();
        }
        let keys = match upstream.fetch_small_json("/-/npm/v1/keys").await {
            Ok(Some(body)) => match RegistryKeys::from_json(&body) {
                Ok(keys) => keys,
                Err(error) => {
                    tracing::warn!(%error, "the upstream's /-/npm/v1/keys is unusable");
                    self.fallback(upstream)
                }
            },
            Ok(None) => RegistryKeys::default(),
            Err(error) => {
                tracing::warn!(%error, "cannot fetch the upstream's signing keys");
                self.fallback(upstream)
            }
        };
        *self.cached.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((now, keys.clone()));
        keys
    }

    fn fallback(&self, upstream: &Upstream) -> RegistryKeys {
        if upstream.base() == airlock_config::DEFAULT_UPSTREAM {
            RegistryKeys::npm_public_registry()
        } else {
            RegistryKeys::default()
        }
    }
}

impl Default for UpstreamKeys {
    fn default() -> Self {
        UpstreamKeys::new()
    }
}

/// A key in `/-/npm/v1/keys` format.
pub fn key_json(key: &airlock_scanner::provenance::RegistryKey) -> serde_json::Value {
    serde_json::json!({
        "expires": key.expires.map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "keyid": key.keyid,
        "keytype": "ecdsa-sha2-nistp256",
        "scheme": "ecdsa-sha2-nistp256",
        "key": base64::engine::general_purpose::STANDARD.encode(&key.spki_der),
    })
}
