//! The memory REST API (mem0's paths and payloads), its API-key check and its OpenAPI document.

mod auth;
mod error;
mod memories;
pub mod openapi;

use axum::routing::{get, post};
use axum::{middleware, Json, Router};

pub use auth::require_key;
pub use error::ApiError;
pub use memories::{CreateMemory, Done, Results, ScopeParams, SearchBody, UpdateMemory};

use crate::realtime::AppState;

/// `/memories…`, `/search`, `/reset` behind the API key, and `/openapi.json`.
pub fn routes(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/memories", post(memories::create).get(memories::list).delete(memories::delete_all))
        .route("/memories/{memory_id}", get(memories::get).put(memories::update).delete(memories::delete))
        .route("/memories/{memory_id}/history", get(memories::history))
        .route("/search", post(memories::search))
        .route("/reset", post(memories::reset))
        .route_layer(middleware::from_fn_with_state(state, require_key));
    protected.route("/openapi.json", get(|| async { Json(openapi::document()) }))
}
