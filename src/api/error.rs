//! API errors: a status and `{"detail": "…"}` (the shape mem0's server, a FastAPI app, answers with). Server-side
//! failures are logged in full and reported to the client without internals.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::agent::AgentError;
use crate::memory::MemoryError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
}

impl ApiError {
    /// 400 with `detail`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, detail: detail.into() }
    }

    /// 404 for memory `id`.
    pub fn not_found(id: &str) -> Self {
        Self { status: StatusCode::NOT_FOUND, detail: format!("no memory with id {id} in this scope") }
    }

    /// 404 for a confirmation code no tour has.
    pub fn no_booking(code: &str) -> Self {
        let code: String = code.chars().take(32).collect();
        Self { status: StatusCode::NOT_FOUND, detail: format!("no tour has confirmation code {code:?}") }
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            detail: "missing or invalid API key: send `Authorization: Bearer <TOURDESK_API_KEY>` or `X-API-Key`".into(),
        }
    }

    /// 503 when the server runs without memory.
    pub fn no_memory() -> Self {
        Self { status: StatusCode::SERVICE_UNAVAILABLE, detail: "this server runs without memory (--no-memory)".into() }
    }
}

impl From<MemoryError> for ApiError {
    fn from(e: MemoryError) -> Self {
        match e {
            MemoryError::Invalid(detail) => Self::bad_request(detail),
            MemoryError::NotFound(id) => Self::not_found(&id),
            MemoryError::Inference(e) => {
                tracing::error!(error = %e, "embedding failed during an API request");
                Self { status: StatusCode::SERVICE_UNAVAILABLE, detail: "the embedding model is unavailable".into() }
            }
            other => {
                tracing::error!(error = %other, "memory store failed during an API request");
                Self { status: StatusCode::INTERNAL_SERVER_ERROR, detail: "internal error; see the server log".into() }
            }
        }
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::InvalidCode(_) => Self::bad_request(e.to_string()),
            AgentError::Memory(e) => e.into(),
            other => {
                tracing::error!(error = %other, "bookings failed during an API request");
                Self { status: StatusCode::INTERNAL_SERVER_ERROR, detail: "internal error; see the server log".into() }
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        Self { status: e.status(), detail: format!("invalid request body: {}", e.body_text()) }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        Self::bad_request(format!("invalid query: {}", e.body_text()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "detail": self.detail }))).into_response()
    }
}
