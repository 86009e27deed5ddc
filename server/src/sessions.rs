//! Admin web UI sessions, in memory (sign-in throttling is `throttle.rs`).
//!
//! A session id is 32 random bytes, given to the browser once in an HttpOnly cookie and
//! kept here only as its SHA-256, so the table is looked up by a hash (timing reveals
//! nothing about a valid id) and a memory dump does not yield usable cookies. Each
//! session has its own CSRF token, compared in constant time. Sessions expire after
//! [`SESSION_IDLE`] without use and [`SESSION_MAX`] after sign-in; a restart signs
//! everyone out, which is the safe direction.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand_core::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// A session ends after this long without a request.
pub const SESSION_IDLE: Duration = Duration::hours(2);
/// A session ends this long after sign-in, however busy.
pub const SESSION_MAX: Duration = Duration::hours(12);
/// Most sessions kept; the oldest go first beyond it.
const MAX_SESSIONS: usize = 10_000;

/// A random token: 32 bytes from the OS, base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Constant-time equality of two secrets (CSRF tokens).
pub fn secrets_equal(left: &str, right: &str) -> bool {
    !left.is_empty() && bool::from(left.as_bytes().ct_eq(right.as_bytes()))
}

fn session_key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// A signed-in admin.
#[derive(Debug, Clone)]
pub struct Session {
    /// The admin's name.
    pub user: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    created: DateTime<Utc>,
    last_used: DateTime<Utc>,
}

/// Every session.
#[derive(Default)]
pub struct Sessions {
    // Keyed by the SHA-256 of the session id.
    sessions: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    /// Starts a session for `user`; returns the id to put into the cookie.
    pub fn create(&self, user: &str, now: DateTime<Utc>) -> String {
        let id = random_token();
        let session = Session { user: user.to_owned(), csrf: random_token(), created: now, last_used: now };
        let mut sessions = self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.retain(|_, session| alive(session, now));
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, session)| session.last_used).map(|(key, _)| *key)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(session_key(&id), session);
        id
    }

    /// The live session with this id, touched; `None` when unknown or expired.
    pub fn get(&self, id: &str, now: DateTime<Utc>) -> Option<Session> {
        let key = session_key(id);
        let mut sessions = self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let session = sessions.get_mut(&key)?;
        if !alive(session, now) {
            sessions.remove(&key);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&session_key(id));
    }
}

fn alive(session: &Session, now: DateTime<Utc>) -> bool {
    now - session.last_used < SESSION_IDLE && now - session.created < SESSION_MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_at_their_maximum_age() {
        let sessions = Sessions::default();
        let start = Utc::now();
        let id = sessions.create("ana", start);
        assert_eq!(sessions.get(&id, start).unwrap().user, "ana");
        assert!(sessions.get("not-an-id", start).is_none());
        // Kept alive by use, until the maximum age.
        let mut now = start;
        while now - start < SESSION_MAX - Duration::hours(1) {
            now += Duration::hours(1);
            assert!(sessions.get(&id, now).is_some());
        }
        assert!(sessions.get(&id, start + SESSION_MAX).is_none());
        let idle = sessions.create("ana", start);
        assert!(sessions.get(&idle, start + SESSION_IDLE).is_none());
        let ended = sessions.create("ana", start);
        sessions.remove(&ended);
        assert!(sessions.get(&ended, start).is_none());
    }

    #[test]
    fn secrets_compare_exactly() {
        let token = random_token();
        assert_eq!(token.len(), 43);
        assert!(secrets_equal(&token, &token.clone()));
        assert!(!secrets_equal(&token, &random_token()));
        assert!(!secrets_equal("", ""));
    }
}
