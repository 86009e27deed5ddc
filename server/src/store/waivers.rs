//! Waivers: an admin's "accept rule X for package P" decisions, by big-endian id.
//! Validation and matching live in `crate::quarantine::waivers`; this is the durable
//! record and its audit events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AuditEvent, Backend, Store, StoreResult};

/// A waiver as stored. Never deleted: a revoked waiver keeps its record (and its
/// revocation) so the list shows what was accepted, by whom, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredWaiver {
    /// Its id, assigned by [`Store::add_waiver`].
    pub id: u64,
    /// The scanner rule id it accepts.
    pub rule: String,
    /// The package it applies to (one exact name).
    pub package: String,
    /// The npm version range it applies to; `None` for every version.
    pub versions: Option<String>,
    /// Why the findings are accepted.
    pub reason: String,
    /// When it stops applying.
    pub expires_at: DateTime<Utc>,
    /// `admin:<name>`.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Who revoked it and when, if it was.
    #[serde(default)]
    pub revoked: Option<WaiverRevocation>,
}

/// The revocation of a waiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaiverRevocation {
    /// `admin:<name>`.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

impl StoredWaiver {
    /// The audit comment: what it accepts, where, until when, and why.
    fn audit_comment(&self) -> String {
        format!(
            "waiver {}: accept {} for {}@{} until {}: {}",
            self.id,
            self.rule,
            self.package,
            self.versions.as_deref().unwrap_or("*"),
            self.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.reason
        )
    }
}

impl StoredWaiver {
    /// The audit event of adding or revoking it.
    pub(super) fn event(&self, actor: &str, action: &str, now: DateTime<Utc>) -> AuditEvent {
        AuditEvent::about_pattern(actor, action, &self.package, self.versions.as_deref(), self.audit_comment(), now)
    }
}

impl Store {
    /// Every waiver, revoked and expired ones included, oldest first.
    pub async fn waivers(&self) -> StoreResult<Vec<StoredWaiver>> {
        match &self.backend {
            Backend::Sled(store) => store.waivers(),
            Backend::Postgres(store) => store.waivers().await,
        }
    }

    /// Adds a waiver and its audit event (`waiver-add`), durably. `waiver.id` is assigned.
    pub async fn add_waiver(&self, waiver: StoredWaiver) -> StoreResult<StoredWaiver> {
        match &self.backend {
            Backend::Sled(store) => store.add_waiver(waiver).await,
            Backend::Postgres(store) => store.add_waiver(waiver).await,
        }
    }

    /// Marks a waiver revoked and logs `waiver-revoke`. `None` when there is no such
    /// waiver; a waiver revoked before is returned unchanged and logged no second time.
    pub async fn revoke_waiver(&self, id: u64, actor: &str, now: DateTime<Utc>) -> StoreResult<Option<StoredWaiver>> {
        match &self.backend {
            Backend::Sled(store) => store.revoke_waiver(id, actor, now).await,
            Backend::Postgres(store) => store.revoke_waiver(id, actor, now).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiver(now: DateTime<Utc>) -> StoredWaiver {
        StoredWaiver {
            id: 0,
            rule: "install-script".into(),
            package: "left-pad".into(),
            versions: Some("^1.0.0".into()),
            reason: "reviewed the postinstall".into(),
            expires_at: now + chrono::Duration::days(90),
            created_by: "admin:alice".into(),
            created_at: now,
            revoked: None,
        }
    }

    #[tokio::test]
    async fn waivers_are_stored_revoked_once_and_audited() {
        let directory = tempfile::tempdir().unwrap();
        let store = Store::open(crate::store::MetadataLocation::Sled(directory.path())).await.unwrap();
        let now = Utc::now();
        let added = store.add_waiver(waiver(now)).await.unwrap();
        assert_eq!(store.waivers().await.unwrap(), vec![added.clone()]);

        let revoked = store.revoke_waiver(added.id, "admin:bob", now).await.unwrap().unwrap();
        assert_eq!(revoked.revoked, Some(WaiverRevocation { by: "admin:bob".into(), at: now }));
        // A second revocation changes nothing and is not logged again.
        assert_eq!(store.revoke_waiver(added.id, "admin:carol", now).await.unwrap(), Some(revoked.clone()));
        assert_eq!(store.revoke_waiver(added.id + 1000, "admin:bob", now).await.unwrap(), None);
        assert_eq!(store.waivers().await.unwrap(), vec![revoked]);

        let events = store.audit_events().await.unwrap();
        let actions: Vec<(String, String)> =
            events.iter().map(|event| (event.action.clone(), event.actor.clone())).collect();
        assert_eq!(
            actions,
            vec![("waiver-add".to_owned(), "admin:alice".to_owned()), ("waiver-revoke".into(), "admin:bob".into())]
        );
        let comment = events[0].comment.clone().unwrap();
        assert!(comment.contains("accept install-script for left-pad@^1.0.0"), "{comment}");
    }
}
