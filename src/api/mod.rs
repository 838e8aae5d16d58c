//! The memory REST API (mem0's paths and payloads), its API-key check and its OpenAPI document.

mod auth;
mod bookings;
mod error;
mod memories;
mod messages;
pub mod openapi;
mod platform;

use axum::routing::{delete, get, post, put};
use axum::{middleware, Json, Router};

pub use auth::require_key;
pub use bookings::BookingFilter;
pub use error::ApiError;
pub use memories::{CreateMemory, Done, Forgotten, ListParams, Results, ScopeParams, SearchBody, UpdateMemory};
pub use messages::MessagesParams;
pub use platform::{Batch, Entity, ListBody, PageOf};

use crate::app::AppState;

/// `/memories…`, `/search`, `/reset` and mem0's platform paths behind the API key, and `/openapi.json`.
pub fn routes(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/memories", post(memories::create).get(memories::list).delete(memories::delete_all))
        .route("/memories/{memory_id}", get(memories::get).put(memories::update).delete(memories::delete))
        .route("/memories/{memory_id}/history", get(memories::history))
        .route("/search", post(memories::search))
        .route("/reset", post(memories::reset))
        .route("/messages", get(messages::list))
        .route("/bookings", get(bookings::list))
        .route("/bookings/{code}", get(bookings::show).delete(bookings::cancel))
        // mem0's hosted platform, as its official clients call it.
        .route("/v1/ping/", get(platform::ping))
        // The platform's add and search take the same bodies as mem0's server (the add is answered when done).
        .route("/v3/memories/add/", post(memories::create))
        .route("/v3/memories/", post(platform::list_memories))
        .route("/v3/memories/search/", post(memories::search))
        .route("/v1/memories/", post(memories::create).delete(memories::delete_all))
        .route("/v2/memories/", post(platform::list_memories))
        .route("/v2/memories/search/", post(memories::search))
        .route("/v1/memories/{memory_id}/", get(memories::get).put(platform::update_memory).delete(memories::delete))
        .route("/v1/memories/{memory_id}/history/", get(memories::history))
        .route("/v1/entities/", get(platform::entities))
        .route("/v2/entities/{kind}/{entity_id}/", delete(platform::delete_entity))
        .route("/v1/batch/", put(platform::batch_update).delete(platform::batch_delete))
        .route_layer(middleware::from_fn_with_state(state, require_key));
    protected.route("/openapi.json", get(|| async { Json(openapi::document()) }))
}
