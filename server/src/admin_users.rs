//! Admin web UI users: argon2id password hashes, from `[[admin.users]]` in the
//! configuration or from `admin-users.json` in the data directory (written by
//! `airlock admin add-user`). The file is read at each sign-in, so a user added while
//! the server runs can sign in at once; it is replaced atomically and readable only by
//! its owner.
//!
//! argon2id is memory-hard: a stolen hash file costs an attacker real hardware per
//! guess. Verification is deliberately slow (tens of milliseconds), which is why the
//! server runs it on a blocking thread and rate-limits sign-in attempts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context as _;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use rand_core::RngCore as _;
use serde::{Deserialize, Serialize};

/// The user file inside the data directory.
pub const USERS_FILE: &str = "admin-users.json";

/// Shortest password `add-user` accepts.
pub const MIN_PASSWORD_LENGTH: usize = 12;

/// One user in the user file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredUser {
    /// The sign-in name; actions are recorded as `admin:<name>`.
    pub name: String,
    /// The argon2 PHC string.
    pub password_hash: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct UserFile {
    users: Vec<StoredUser>,
}

/// The path of the user file in a data directory.
pub fn users_file(data_dir: &Path) -> PathBuf {
    data_dir.join(USERS_FILE)
}

/// Checks a user name: 1 to 64 ASCII letters, digits, `.`, `_` or `-` (it becomes part
/// of the audit log's actor, so it stays plain).
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
        return Err(format!("invalid user name {name:?}: expected 1 to 64 letters, digits, `.`, `_` or `-`"));
    }
    Ok(())
}

/// Hashes a password with argon2id (the crate's default parameters) and a random salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|error| anyhow::anyhow!("encoding the salt: {error}"))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|error| anyhow::anyhow!("hashing the password: {error}"))?;
    Ok(hash.to_string())
}

/// Adds a user to the data directory's user file, or replaces the password of an
/// existing one. Returns true when the user existed.
pub fn add_user(data_dir: &Path, name: &str, password_hash: &str) -> anyhow::Result<bool> {
    validate_name(name).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let path = users_file(data_dir);
    let mut file = read_file(&path)?;
    let existed = file.users.iter().any(|user| user.name == name);
    file.users.retain(|user| user.name != name);
    file.users.push(StoredUser { name: name.to_owned(), password_hash: password_hash.to_owned() });
    let temporary = path.with_extension("json.tmp");
    {
        use std::io::Write as _;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut output = options.open(&temporary).with_context(|| format!("writing {}", temporary.display()))?;
        output.write_all(&serde_json::to_vec_pretty(&file)?)?;
        output.sync_all()?;
    }
    std::fs::rename(&temporary, &path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(existed)
}

fn read_file(path: &Path) -> anyhow::Result<UserFile> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(UserFile::default()),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// Checks a name and password against the configured users, then the user file.
/// Takes about as long for an unknown name as for a known one (a dummy hash is
/// verified), so timing does not reveal which names exist. Blocking: call it from a
/// blocking thread.
pub fn verify(configured: &[airlock_config::AdminUser], data_dir: &Path, name: &str, password: &str) -> bool {
    let stored =
        configured.iter().find(|user| user.name == name).map(|user| user.password_hash.clone()).or_else(|| {
            match read_file(&users_file(data_dir)) {
                Ok(file) => file.users.into_iter().find(|user| user.name == name).map(|user| user.password_hash),
                Err(error) => {
                    tracing::error!(error = %format!("{error:#}"), "cannot read the admin user file");
                    None
                }
            }
        });
    match stored {
        Some(hash) => check(&hash, password),
        None => {
            let _ = check(dummy_hash(), password);
            false
        }
    }
}

fn check(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(error) => {
            tracing::error!(%error, "an admin user's password hash is malformed");
            false
        }
    }
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a password anyone has").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_added_to_the_data_directory_can_sign_in() {
        let directory = tempfile::tempdir().unwrap();
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!add_user(directory.path(), "ana", &hash).unwrap());
        assert!(verify(&[], directory.path(), "ana", "correct horse battery"));
        assert!(!verify(&[], directory.path(), "ana", "wrong horse battery"));
        assert!(!verify(&[], directory.path(), "bob", "correct horse battery"));
        // Replacing the password.
        assert!(add_user(directory.path(), "ana", &hash_password("another long one").unwrap()).unwrap());
        assert!(!verify(&[], directory.path(), "ana", "correct horse battery"));
        assert!(verify(&[], directory.path(), "ana", "another long one"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(users_file(directory.path())).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the user file is private");
        }
    }

    #[test]
    fn configured_users_can_sign_in() {
        let directory = tempfile::tempdir().unwrap();
        let configured = vec![airlock_config::AdminUser {
            name: "ops".into(),
            password_hash: hash_password("from the config file").unwrap(),
        }];
        assert!(verify(&configured, directory.path(), "ops", "from the config file"));
        assert!(!verify(&configured, directory.path(), "ops", "from the config fil"));
    }

    #[test]
    fn names_stay_plain() {
        assert!(validate_name("ana.b-c_1").is_ok());
        for bad in ["", "a b", "admin:x", "<script>", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
