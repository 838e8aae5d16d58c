//! `GET /messages`: the sessions' message log (what was said, word for word), kept apart from memories.

use axum::extract::State;
use axum::Json;
use schemars::JsonSchema;
use serde::Deserialize;

use super::error::ApiError;
use super::memories::{memory, Params, Results};
use crate::app::AppState;
use crate::memory::{LoggedMessage, Scope};

/// Messages returned when `last` is not given.
const DEFAULT_LAST: usize = 200;
/// The most messages one request returns.
const MAX_LAST: usize = 1000;

/// `GET /messages` query: whose sessions (a `run_id` is one call), and how many of the latest messages. (Plain
/// fields, not a flattened scope: flattened query structs cannot read numbers.)
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct MessagesParams {
    /// The caller.
    pub user_id: Option<String>,
    /// The agent.
    pub agent_id: Option<String>,
    /// One session (call).
    pub run_id: Option<String>,
    /// The latest this many messages (default 200, at most 1000).
    pub last: Option<usize>,
}

/// The scope's messages in conversation order, the latest `last` of them.
pub async fn list(
    State(state): State<AppState>,
    Params(params): Params<MessagesParams>,
) -> Result<Json<Results<LoggedMessage>>, ApiError> {
    let last = params.last.unwrap_or(DEFAULT_LAST);
    if last == 0 || last > MAX_LAST {
        return Err(ApiError::bad_request(format!("last must be between 1 and {MAX_LAST}, got {last}")));
    }
    let scope = Scope { user_id: params.user_id, agent_id: params.agent_id, run_id: params.run_id };
    let results = memory(&state)?.messages().list(&scope, Some(last)).await?;
    Ok(Json(Results { results }))
}
