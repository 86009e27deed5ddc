//! Webhook notifications: a JSON POST when a version is held or rejected, or released
//! by an admin. Events go through a bounded channel to one background task, so a slow
//! or dead webhook never slows down installs or decisions; deliveries retry with
//! exponential backoff and are dropped (and logged) after the configured attempts.

use std::time::Duration;

use airlock_config::NotificationsConfig;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::mpsc;

/// Events waiting for delivery before new ones are dropped.
const QUEUE_CAPACITY: usize = 1024;

/// One notification.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `held`, `rejected` or `released`.
    pub event: &'static str,
    /// The package.
    pub package: String,
    /// The version.
    pub version: String,
    /// `pipeline`, `policy` or `admin:<name>`.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// When.
    pub time: DateTime<Utc>,
    /// Where an admin looks at it.
    pub url: String,
}

/// The sending side; cheap to clone. A no-op when no webhook is configured.
#[derive(Clone)]
pub struct Notifier {
    // Receiver: the delivery task. When it is gone (shutdown), sends fail silently.
    sender: Option<mpsc::Sender<Event>>,
}

impl Notifier {
    /// Starts the delivery task when a webhook is configured.
    pub fn start(config: &NotificationsConfig) -> anyhow::Result<Notifier> {
        let Some(url) = config.webhook_url.clone() else {
            return Ok(Notifier { sender: None });
        };
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        let (sender, mut receiver) = mpsc::channel::<Event>(QUEUE_CAPACITY);
        let secret = config.webhook_secret.clone();
        let attempts = config.webhook_attempts;
        tokio::spawn(async move {
            while let Some(event) = receiver.recv().await {
                deliver(&client, url.as_str(), secret.as_deref(), attempts, &event).await;
            }
        });
        Ok(Notifier { sender: Some(sender) })
    }

    /// Queues an event; never waits.
    pub fn notify(&self, event: Event) {
        let Some(sender) = &self.sender else { return };
        if let Err(error) = sender.try_send(event) {
            tracing::warn!(%error, "webhook queue full or closed; notification dropped");
        }
    }
}

/// `sha256=<hex>` of the body, for the `X-Airlock-Signature` header.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn deliver(client: &reqwest::Client, url: &str, secret: Option<&str>, attempts: u32, event: &Event) {
    let body = serde_json::to_vec(event).unwrap_or_default();
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=attempts {
        let mut request = client.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone());
        if let Some(secret) = secret {
            request = request.header("x-airlock-signature", signature(secret, &body));
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(event = event.event, package.name = %event.package, package.version = %event.version, "webhook delivered");
                return;
            }
            Ok(response) => tracing::warn!(status = response.status().as_u16(), attempt, "webhook answered an error"),
            Err(error) => tracing::warn!(error = %error.without_url(), attempt, "webhook delivery failed"),
        }
        if attempt < attempts {
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }
    tracing::error!(event = event.event, package.name = %event.package, package.version = %event.version, "webhook notification dropped after {attempts} attempts");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
