//! The server's error type and how it becomes an HTTP answer.
//!
//! Use [`AppError`] in every handler and service function on the request path; it maps
//! to the npm-style body `{"error": "..."}` that npm, pnpm, yarn and bun print. A full
//! disk is [`AppError::StorageFull`] (507) wherever it is met: the `From` conversions of
//! I/O, metadata-store and blob errors recognise ENOSPC and EDQUOT. Startup
//! code uses `anyhow`. Client mistakes (4xx) are not logged as errors; internal errors
//! are logged once, here, and the client gets a generic message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::store::space::is_storage_full;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request itself is malformed (bad package name, bad file name).
    #[error("{0}")]
    BadRequest(String),
    /// The package, version or file does not exist (upstream said so, or never had it).
    #[error("{0}")]
    NotFound(String),
    /// The version exists but may not be installed (yet). The message names the
    /// package, the version, why and until when.
    #[error("{0}")]
    Quarantined(String),
    /// The upstream failed, answered nonsense, or sent bytes that do not match their
    /// declared integrity.
    #[error("{0}")]
    Upstream(String),
    /// The upstream did not answer in time.
    #[error("{0}")]
    UpstreamTimeout(String),
    /// Airlock's disk (or quota) is full, so what the request needs could not be
    /// stored. The message says what; versions already stored are still served.
    #[error("{0}")]
    StorageFull(String),
    /// The object store holding the blobs did not answer or refused, so what the
    /// request needs could not be read or stored (nothing else was served instead).
    #[error("{0}")]
    StorageUnavailable(String),
    /// The metadata store cannot be reached (PostgreSQL down or out of connections):
    /// nothing can be decided or authorised, so the request is refused as unavailable.
    /// The message names no address; the log has the details.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an I/O failure on our side. Details are logged, not sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Result type of request-path code.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// The status code npm clients expect for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Quarantined(_) => StatusCode::FORBIDDEN,
            AppError::Upstream(_) => StatusCode::BAD_GATEWAY,
            AppError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            AppError::StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
            AppError::StorageUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error for a blob the object store could not read or store; the details
    /// (logged here) stay out of the answer.
    pub fn storage_unavailable(what: &str, error: &crate::store::blobs::BlobError) -> AppError {
        tracing::error!(%error, "blob store unavailable");
        AppError::StorageUnavailable(format!(
            "Airlock's blob store is unavailable: it could not {what}; try again in a minute"
        ))
    }

    /// The error for a write that found the disk full, naming what could not be stored.
    pub fn storage_full(what: &str) -> AppError {
        AppError::StorageFull(format!(
            "Airlock's storage is full: it could not store {what}. Versions it already stores can still be installed; ask the Airlock operator to free disk space"
        ))
    }
}

impl From<crate::store::blobs::BlobError> for AppError {
    fn from(error: crate::store::blobs::BlobError) -> Self {
        use crate::store::blobs::BlobError;
        match error {
            BlobError::StorageFull(_) => AppError::storage_full("a file"),
            BlobError::TooLarge { .. } | BlobError::IntegrityMismatch { .. } | BlobError::Stream(_) => {
                AppError::Upstream(error.to_string())
            }
            BlobError::Unavailable { .. } => AppError::storage_unavailable("read or store a file", &error),
            BlobError::ReadBackMismatch { .. } | BlobError::Corrupt { .. } | BlobError::Io(_) => {
                AppError::Internal(anyhow::Error::new(error))
            }
        }
    }
}

impl From<crate::npm::InvalidInput> for AppError {
    fn from(error: crate::npm::InvalidInput) -> Self {
        AppError::BadRequest(error.0)
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::StorageFull { .. } => AppError::storage_full("its metadata"),
            crate::store::StoreError::Unavailable { .. } => {
                tracing::error!(%error, "the metadata store is unreachable");
                AppError::Unavailable(
                    "Airlock cannot reach its metadata store right now, so it cannot authorise this request; try again shortly".into(),
                )
            }
            crate::store::StoreError::Failed { .. } => AppError::Internal(anyhow::Error::new(error)),
        }
    }
}

impl From<std::io::Error> for AppError {
    fn from(error: std::io::Error) -> Self {
        if is_storage_full(&error) {
            AppError::storage_full("a file")
        } else {
            AppError::Internal(anyhow::Error::new(error))
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            AppError::Internal(error) => {
                tracing::error!(error = format!("{error:#}"), "internal error");
                "internal error in Airlock; the server log has the details".to_owned()
            }
            AppError::Upstream(message) | AppError::UpstreamTimeout(message) => {
                tracing::warn!(error = %message, "upstream failure");
                message.clone()
            }
            AppError::StorageFull(message) => {
                tracing::error!(error = %message, "storage full");
                message.clone()
            }
            // Logged with the address where the store error was converted.
            AppError::Unavailable(message) => message.clone(),
            other => other.to_string(),
        };
        let mut response = json_error(status, &message);
        let phrase_prefix = match status {
            StatusCode::FORBIDDEN => Some("Forbidden"),
            StatusCode::INSUFFICIENT_STORAGE => Some("Insufficient Storage"),
            StatusCode::SERVICE_UNAVAILABLE => Some("Service Unavailable"),
            _ => None,
        };
        if let Some(prefix) = phrase_prefix {
            // pnpm, yarn and bun print the status line of a failed tarball download but
            // not its body: put the one-sentence reason into the reason phrase too.
            if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason_phrase(prefix, &message)) {
                response.extensions_mut().insert(phrase);
            }
        }
        response
    }
}

/// An npm-style error response.
pub fn json_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Longest message part of a reason phrase: clients print the status line whole, and
/// some cut it (npm at about 200 characters), so it must end where a reader can stop.
const MAX_REASON_PHRASE_MESSAGE: usize = 160;

/// `<prefix>: <message>` (`Forbidden: ...`) reduced to what a reason phrase may hold
/// (visible ASCII and spaces) and to one short sentence: the "(details: URL)" tail is
/// moved to the front as "see URL" only when it fits whole, and a long message is cut at
/// a word with "...".
fn reason_phrase(prefix: &str, message: &str) -> Vec<u8> {
    let (sentence, details) = match message.rsplit_once(" (details: ") {
        Some((sentence, tail)) => (sentence, tail.strip_suffix(')')),
        None => (message, None),
    };
    let printable = |text: &str| -> String {
        text.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect()
    };
    let mut text = printable(sentence);
    if text.len() > MAX_REASON_PHRASE_MESSAGE {
        let cut = text[..MAX_REASON_PHRASE_MESSAGE].rfind(' ').unwrap_or(MAX_REASON_PHRASE_MESSAGE);
        text.truncate(cut);
        text.push_str("...");
    }
    if let Some(url) = details.map(printable)
        && text.len() + url.len() + 6 <= MAX_REASON_PHRASE_MESSAGE + 60
    {
        text = format!("{text}; see {url}");
    }
    let mut phrase: Vec<u8> = format!("{prefix}: ").into_bytes();
    phrase.extend(text.bytes());
    phrase
}

#[cfg(test)]
mod tests {
    use super::reason_phrase;

    #[test]
    fn a_reason_phrase_is_one_short_sentence_never_cut_mid_url() {
        let short = "demo@2.0.0 was rejected by admin:ana and cannot be installed: typosquat (details: http://a/-/airlock/status/demo/2.0.0)";
        assert_eq!(
            String::from_utf8(reason_phrase("Forbidden", short)).unwrap(),
            "Forbidden: demo@2.0.0 was rejected by admin:ana and cannot be installed: typosquat; see http://a/-/airlock/status/demo/2.0.0"
        );
        let long = format!("{} (details: http://airlock.internal:4873/-/airlock/status/x/1.0.0)", "word ".repeat(60));
        let phrase = String::from_utf8(reason_phrase("Forbidden", &long)).unwrap();
        assert!(phrase.len() <= "Forbidden: ".len() + 220, "{phrase}");
        assert!(phrase.ends_with("word...") || phrase.ends_with("/x/1.0.0"), "{phrase}");
        assert!(!phrase.contains("http://airlock.internal:4873/-/air "), "never a cut URL: {phrase}");
        assert_eq!(String::from_utf8(reason_phrase("Forbidden", "bad\u{0}byte")).unwrap(), "Forbidden: bad?byte");
    }
}
