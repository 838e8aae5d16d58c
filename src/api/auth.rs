//! API-key authentication: `Authorization: Bearer <key>` (or mem0's `Token <key>`), `X-API-Key: <key>`, or, for
//! websockets from a browser (which cannot set headers), `?api_key=<key>`.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::app::AppState;

/// The key a request presents, if any.
fn presented(request: &Request) -> Option<String> {
    let headers = request.headers();
    if let Some(auth) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let auth = auth.trim();
        for scheme in ["Bearer ", "Token "] {
            if let Some(key) = auth.strip_prefix(scheme) {
                return Some(key.trim().to_string());
            }
        }
    }
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim().to_string());
    }
    request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("api_key=").map(|k| k.to_string())))
}

/// Refuses requests without the configured key (every request passes when none is configured: the server then
/// listens on loopback only).
pub async fn require_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(expected) = &state.api_key {
        // Compared as digests so the comparison's timing says nothing about the key.
        let ok =
            presented(&request).is_some_and(|k| Sha256::digest(k.as_bytes()) == Sha256::digest(expected.0.as_bytes()));
        if !ok {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}
