//! The paths of mem0's hosted platform, which mem0's official `MemoryClient` (Python `mem0ai` 1.x and 2.x) calls:
//! `/v1/ping/`, `/v3/memories/add/`, `/v3/memories/`, `/v3/memories/search/`, `/v1/memories/{id}/…`, entities and
//! batches (and 1.x's `/v1/memories/`, `/v2/memories/`, `/v2/memories/search/`). The bodies are the same as on
//! mem0's own server's paths (see [`super::memories`]); add and search are served by those handlers themselves,
//! the rest differ only in their envelopes.

use axum::extract::{Path, State};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::ApiError;
use super::memories::{
    change, memory, scope_and_filters, scoped, Body, Params, ScopeParams, UpdateMemory, ACTOR, LIST_LIMIT,
};
use crate::app::AppState;
use crate::memory::{MemoryItem, Scope};

/// The organisation and project every key of this server belongs to (the client insists on both).
const ORG_ID: &str = "tourdesk";
/// See [`ORG_ID`].
const PROJECT_ID: &str = "default";
/// Most items one batch may change (mem0's limit).
const MAX_BATCH: usize = 1000;

/// `GET /v1/ping/`: the key is valid (the key check ran before), and the ids the client needs.
pub async fn ping() -> Json<Value> {
    Json(json!({
        "status": "ok",
        "message": "API key is valid",
        "org_id": ORG_ID,
        "project_id": PROJECT_ID,
        "user_email": null,
    }))
}

/// `POST /v3/memories/` body (and 1.x's `/v2/memories/`): ids in `filters` (or, for 1.x, at the top level).
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListBody {
    /// Owner ids (1.x).
    #[serde(flatten)]
    pub scope: ScopeParams,
    /// Owner ids and metadata conditions.
    #[serde(default)]
    pub filters: Option<Value>,
    /// Include expired memories.
    #[serde(default)]
    pub show_expired: Option<bool>,
}

/// `page` and `page_size` of a listing (query parameters).
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Page {
    /// From 1.
    pub page: Option<usize>,
    /// Items per page (1–1000; default: all, up to 1000).
    pub page_size: Option<usize>,
}

/// A page of memories, in the platform's envelope.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PageOf {
    /// Memories in the scope (all pages).
    pub count: usize,
    /// The next page's path, if there is one.
    pub next: Option<String>,
    /// The previous page's path, if there is one.
    pub previous: Option<String>,
    /// This page.
    pub results: Vec<MemoryItem>,
}

/// Lists a scope's memories, newest first, a page at a time.
pub async fn list_memories(
    State(state): State<AppState>,
    Params(page): Params<Page>,
    Body(body): Body<ListBody>,
) -> Result<Json<PageOf>, ApiError> {
    let (scope, filters) = scope_and_filters(&body.scope, body.filters.as_ref())?;
    let all = memory(&state)?.list(&scope, &filters, LIST_LIMIT, body.show_expired.unwrap_or(false)).await?;
    let size = page.page_size.unwrap_or(LIST_LIMIT);
    if !(1..=LIST_LIMIT).contains(&size) || page.page == Some(0) {
        return Err(ApiError::bad_request(format!("page starts at 1 and page_size is 1 to {LIST_LIMIT}")));
    }
    let n = page.page.unwrap_or(1);
    let count = all.len();
    let results: Vec<MemoryItem> = all.into_iter().skip((n - 1) * size).take(size).collect();
    let link = |p: usize| format!("/v3/memories/?page={p}&page_size={size}");
    Ok(Json(PageOf {
        count,
        next: (n * size < count).then(|| link(n + 1)),
        previous: (n > 1).then(|| link(n - 1)),
        results,
    }))
}

/// `PUT /v1/memories/{id}/`: text, metadata and/or expiration date (404 outside the ids given in the query).
pub async fn update_memory(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(scope): Params<ScopeParams>,
    Body(body): Body<UpdateMemory>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(change(&state, &id, &scope, body).await?))
}

/// One entity (a user, agent or run that owns memories), as `GET /v1/entities/` lists them.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Entity {
    /// The id.
    pub id: String,
    /// The id again (the client reads `name`).
    pub name: String,
    /// `user`, `agent` or `run`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Memories it owns.
    pub total_memories: usize,
}

/// `GET /v1/entities/`: every user, agent and run that owns memories.
pub async fn entities(State(state): State<AppState>) -> Result<Json<super::Results<Entity>>, ApiError> {
    let owners = memory(&state)?.owners().await?;
    let results = owners
        .into_iter()
        .map(|((kind, id), total_memories)| Entity { name: id.clone(), id, kind: kind.to_string(), total_memories })
        .collect();
    Ok(Json(super::Results { results }))
}

/// `DELETE /v2/entities/{type}/{id}/`: forgets everything the entity owns (as `DELETE /memories?…` does).
pub async fn delete_entity(
    State(state): State<AppState>,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let scope = match kind.as_str() {
        "user" => Scope { user_id: Some(id), ..Scope::default() },
        "agent" => Scope { agent_id: Some(id), ..Scope::default() },
        "run" => Scope { run_id: Some(id), ..Scope::default() },
        other => return Err(ApiError::bad_request(format!("entity type must be user, agent or run, not {other:?}"))),
    };
    let report = memory(&state)?.forget(&scope).await?;
    Ok(Json(json!({"message": "Entity deleted successfully.", "report": report})))
}

/// One item of a batch.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct BatchItem {
    /// The memory.
    pub memory_id: String,
    /// New text (updates).
    #[serde(default)]
    pub text: Option<String>,
    /// New metadata (updates).
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, Value>>,
}

/// `PUT|DELETE /v1/batch/` body.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Batch {
    /// Up to 1000 items.
    pub memories: Vec<BatchItem>,
}

impl Batch {
    /// Refuses an empty or oversized batch, or one naming a memory that does not exist, before anything changes.
    async fn checked(self, state: &AppState) -> Result<Vec<BatchItem>, ApiError> {
        if self.memories.is_empty() || self.memories.len() > MAX_BATCH {
            return Err(ApiError::bad_request(format!("a batch holds 1 to {MAX_BATCH} memories")));
        }
        let memory = memory(state)?;
        for item in &self.memories {
            scoped(memory, &item.memory_id, &ScopeParams::default()).await?;
        }
        Ok(self.memories)
    }
}

/// `PUT /v1/batch/`: updates many memories.
pub async fn batch_update(State(state): State<AppState>, Body(batch): Body<Batch>) -> Result<Json<Value>, ApiError> {
    let items = batch.checked(&state).await?;
    let n = items.len();
    for item in items {
        let body = UpdateMemory { text: item.text, metadata: item.metadata, expiration_date: None };
        change(&state, &item.memory_id, &ScopeParams::default(), body).await?;
    }
    Ok(Json(json!({"message": format!("Successfully updated {n} memories")})))
}

/// `DELETE /v1/batch/`: deletes many memories (their history records the deletion).
pub async fn batch_delete(State(state): State<AppState>, Body(batch): Body<Batch>) -> Result<Json<Value>, ApiError> {
    let items = batch.checked(&state).await?;
    let memory = memory(&state)?;
    for item in &items {
        memory.delete(&item.memory_id, Some(ACTOR)).await?;
    }
    Ok(Json(json!({"message": format!("Successfully deleted {} memories", items.len())})))
}
