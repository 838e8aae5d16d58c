//! The mem0-compatible memory endpoints: the paths, bodies and answers of mem0's REST server.

use axum::extract::{Path, State};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::memory::{
    AddInput, AddRequest, HistoryEntry, InferredAdd, Memory, MemoryEvent, MemoryItem, Message, MetadataFilter, Scope,
    SearchHit, SearchRequest, DEFAULT_LIMIT,
};
use crate::realtime::AppState;

/// Who made changes through the API, in history.
const ACTOR: &str = "api";
/// Most memories `GET /memories` returns.
const LIST_LIMIT: usize = 1000;

/// A JSON body whose rejection is an [`ApiError`] (`{"detail": …}`), not axum's plain text.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Body<T>(pub T);

/// Query parameters whose rejection is an [`ApiError`].
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Params<T>(pub T);

fn memory(state: &AppState) -> Result<&Memory, ApiError> {
    state.agent.memory.as_ref().map(|m| m.memory()).ok_or_else(ApiError::no_memory)
}

/// `user_id` / `agent_id` / `run_id`, as query parameters or body fields.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct ScopeParams {
    /// The caller (a phone number for the agent's callers).
    pub user_id: Option<String>,
    /// The agent.
    pub agent_id: Option<String>,
    /// The session.
    pub run_id: Option<String>,
}

impl ScopeParams {
    fn scope(&self) -> Scope {
        Scope { user_id: self.user_id.clone(), agent_id: self.agent_id.clone(), run_id: self.run_id.clone() }
    }

    /// Whether `item` lies in every id given (none given: any).
    fn admits(&self, item: &Scope) -> bool {
        let ok = |want: &Option<String>, have: &Option<String>| want.is_none() || want == have;
        ok(&self.user_id, &item.user_id) && ok(&self.agent_id, &item.agent_id) && ok(&self.run_id, &item.run_id)
    }
}

/// `POST /memories`: mem0's `MemoryCreate`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateMemory {
    /// The conversation to remember.
    pub messages: Vec<Message>,
    /// Owner ids; at least one.
    #[serde(flatten)]
    pub scope: ScopeParams,
    /// Stored with every memory made.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// Extract facts with the chat model and reconcile them with what is stored (mem0's default); `false`
    /// stores each message as it is.
    #[serde(default)]
    pub infer: Option<bool>,
}

/// `PUT /memories/{id}`: the new text (as `text`, `memory` or `data`) and optionally new metadata.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateMemory {
    /// The new text.
    #[serde(alias = "memory", alias = "data")]
    pub text: String,
    /// Replaces the metadata when given.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

/// `POST /search`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchBody {
    /// What to look for.
    pub query: String,
    /// Whose memories; at least one id.
    #[serde(flatten)]
    pub scope: ScopeParams,
    /// Metadata conditions: `{"key": value}`, `{"key": {"gte": 3}}`, `{"AND": […]}`, …
    #[serde(default)]
    pub filters: Option<Value>,
    /// Most results (1–1000, default 10).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Least similarity (cosine, −1..1).
    #[serde(default)]
    pub threshold: Option<f32>,
}

/// `{"results": […]}`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Results<T> {
    /// The items.
    pub results: Vec<T>,
}

/// `{"message": …}` for changes that return nothing else.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Done {
    /// What happened.
    pub message: String,
    /// Memories removed, for bulk deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<usize>,
}

/// Creates memories from messages.
pub async fn create(
    State(state): State<AppState>,
    Body(body): Body<CreateMemory>,
) -> Result<Json<InferredAdd>, ApiError> {
    let memory = memory(&state)?;
    if body.messages.is_empty() {
        return Err(ApiError::bad_request("messages is empty: send at least one {\"role\", \"content\"}"));
    }
    let req = AddRequest {
        input: AddInput::Messages(body.messages),
        scope: body.scope.scope(),
        metadata: body.metadata.unwrap_or_default(),
        actor: Some(ACTOR.into()),
    };
    req.scope.validate()?;
    let added = match (body.infer.unwrap_or(true), &state.chat) {
        (true, Some(chat)) => memory.add_inferred(req, chat.as_ref()).await?,
        (true, None) => InferredAdd {
            results: memory.add(req).await?,
            fallback: Some("inference is off on this server (--no-infer): the messages were stored as they are".into()),
            ..Default::default()
        },
        (false, _) => InferredAdd { results: memory.add(req).await?, ..Default::default() },
    };
    Ok(Json(added))
}

/// Lists a scope's memories (newest first).
pub async fn list(
    State(state): State<AppState>,
    Params(scope): Params<ScopeParams>,
) -> Result<Json<Results<MemoryItem>>, ApiError> {
    let results = memory(&state)?.get_all(&scope.scope(), &MetadataFilter::All, LIST_LIMIT).await?;
    Ok(Json(Results { results }))
}

/// One memory, if it lies in the ids given.
async fn scoped(memory: &Memory, id: &str, scope: &ScopeParams) -> Result<MemoryItem, ApiError> {
    let item = memory.get(id).await?;
    if scope.admits(&item.scope) {
        Ok(item)
    } else {
        Err(ApiError::not_found(id))
    }
}

/// One memory.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(scope): Params<ScopeParams>,
) -> Result<Json<MemoryItem>, ApiError> {
    Ok(Json(scoped(memory(&state)?, &id, &scope).await?))
}

/// Changes a memory's text (history keeps the old one).
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(scope): Params<ScopeParams>,
    Body(body): Body<UpdateMemory>,
) -> Result<Json<Value>, ApiError> {
    let memory = memory(&state)?;
    scoped(memory, &id, &scope).await?;
    let event: MemoryEvent = memory.update(&id, &body.text, body.metadata, Some(ACTOR)).await?;
    Ok(Json(serde_json::json!({"message": "Memory updated successfully!", "result": event})))
}

/// Deletes a memory.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(scope): Params<ScopeParams>,
) -> Result<Json<Done>, ApiError> {
    let memory = memory(&state)?;
    scoped(memory, &id, &scope).await?;
    memory.delete(&id, Some(ACTOR)).await?;
    Ok(Json(Done { message: "Memory deleted successfully".into(), deleted: Some(1) }))
}

/// Deletes every memory of a scope (at least one id required).
pub async fn delete_all(
    State(state): State<AppState>,
    Params(scope): Params<ScopeParams>,
) -> Result<Json<Done>, ApiError> {
    let deleted = memory(&state)?.delete_all(&scope.scope(), Some(ACTOR)).await?;
    Ok(Json(Done { message: "All relevant memories deleted".into(), deleted: Some(deleted) }))
}

/// A memory's changes, oldest first.
pub async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(scope): Params<ScopeParams>,
) -> Result<Json<Vec<HistoryEntry>>, ApiError> {
    let memory = memory(&state)?;
    let entries = memory.history(&id).await?;
    let scoped_request = scope.user_id.is_some() || scope.agent_id.is_some() || scope.run_id.is_some();
    match memory.get(&id).await {
        Ok(item) if !scope.admits(&item.scope) => Err(ApiError::not_found(&id)),
        Ok(_) => Ok(Json(entries)),
        // A deleted memory keeps its history but no longer says whose it was: only an unscoped request sees it.
        Err(crate::memory::MemoryError::NotFound(_)) if entries.is_empty() || scoped_request => {
            Err(ApiError::not_found(&id))
        }
        Err(crate::memory::MemoryError::NotFound(_)) => Ok(Json(entries)),
        Err(e) => Err(e.into()),
    }
}

/// Semantic search in a scope.
pub async fn search(
    State(state): State<AppState>,
    Body(body): Body<SearchBody>,
) -> Result<Json<Results<SearchHit>>, ApiError> {
    let filters = match &body.filters {
        Some(v) if !v.is_null() => MetadataFilter::parse(v)?,
        _ => MetadataFilter::All,
    };
    let req = SearchRequest {
        query: body.query,
        scope: body.scope.scope(),
        filters,
        limit: body.limit.unwrap_or(DEFAULT_LIMIT),
        threshold: body.threshold,
    };
    Ok(Json(Results { results: memory(&state)?.search(&req).await? }))
}

/// Deletes every memory and all history.
pub async fn reset(State(state): State<AppState>) -> Result<Json<Done>, ApiError> {
    memory(&state)?.reset().await?;
    Ok(Json(Done { message: "Reset successful".into(), deleted: None }))
}
