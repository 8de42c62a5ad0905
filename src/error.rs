//! The one error type. Every handler returns `Result<_, Error>`; clients get the contract's
//! `{"error": {"code", "message"}}` and a 500 never explains itself.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Client { status: StatusCode, code: &'static str, message: String, retry_after: Option<u64> },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Error::Client { status, code, message: message.into(), retry_after: None }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unauthorized() -> Self {
        Self::client(StatusCode::UNAUTHORIZED, "unauthorized", "missing or invalid credentials")
    }
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::FORBIDDEN, code, message)
    }
    pub fn not_found() -> Self {
        Self::client(StatusCode::NOT_FOUND, "not_found", "not found")
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::CONFLICT, code, message)
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    pub fn gone(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::GONE, code, message)
    }
    pub fn too_many(retry_after: u64) -> Self {
        Error::Client {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: format!("too many attempts, retry in {retry_after} s"),
            retry_after: Some(retry_after),
        }
    }
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }
    /// A failure that says nothing about the request and that the same transaction, run
    /// again, may not meet: a PostgreSQL deadlock or serialization failure, SQLite busy.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Db(sqlx::Error::Database(e)) => {
                matches!(e.code().as_deref(), Some("40P01" | "40001" | "5" | "6" | "517"))
            }
            _ => false,
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Client { status, .. } => *status,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code, message, retry_after) = match self {
            Error::Client { status, code, message, retry_after } => (status, code, message, retry_after),
            other => {
                tracing::error!(error = %other, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error".to_owned(), None)
            }
        };
        let body = axum::Json(ErrorBody { error: ErrorDetail { code: code.to_owned(), message } });
        match retry_after {
            Some(secs) => (status, [(header::RETRY_AFTER, secs.to_string())], body).into_response(),
            None => (status, body).into_response(),
        }
    }
}

/// The contract's error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable machine-readable `code` and a message for people.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// Maps database constraint violations to client errors.
pub trait DbResultExt<T> {
    /// A unique violation becomes 409 with `code`.
    fn on_unique(self, code: &'static str, message: &str) -> Result<T>;
}

impl<T> DbResultExt<T> for std::result::Result<T, sqlx::Error> {
    fn on_unique(self, code: &'static str, message: &str) -> Result<T> {
        self.map_err(|e| match e.as_database_error() {
            Some(d) if d.is_unique_violation() => Error::conflict(code, message),
            _ => Error::Db(e),
        })
    }
}
