//! The mem0-compatible memory endpoints: the paths, bodies and answers of mem0's REST server.

use axum::extract::{Path, State};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ApiError;
use chrono::{DateTime, Utc};

use crate::app::AppState;
use crate::memory::{
    parse_expiration, split_scope, AddInput, AddRequest, ForgetReport, HistoryEntry, InferredAdd, Memory, MemoryChange,
    MemoryEvent, MemoryItem, Message, MetadataFilter, Scope, SearchHit, SearchRequest, DEFAULT_LIMIT,
};

/// Who made changes through the API, in history.
pub(crate) const ACTOR: &str = "api";
/// Most memories `GET /memories` returns.
pub(crate) const LIST_LIMIT: usize = 1000;

/// A JSON body whose rejection is an [`ApiError`] (`{"detail": …}`), not axum's plain text.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Body<T>(pub T);

/// Query parameters whose rejection is an [`ApiError`].
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Params<T>(pub T);

pub(crate) fn memory(state: &AppState) -> Result<&Memory, ApiError> {
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

/// The conversation of an add: a list of messages, or one string (a user message), as mem0's clients send it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum AddMessages {
    /// `[{"role", "content"}, …]`.
    List(Vec<Message>),
    /// One user message.
    Text(String),
}

impl AddMessages {
    fn into_messages(self) -> Vec<Message> {
        match self {
            Self::List(messages) => messages,
            Self::Text(content) => vec![Message { role: "user".into(), content }],
        }
    }
}

/// `POST /memories` (and the platform's `/v3/memories/add/`): mem0's `MemoryCreate`, both generations.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateMemory {
    /// The conversation to remember.
    pub messages: AddMessages,
    /// Owner ids; at least one, here or in `filters`.
    #[serde(flatten)]
    pub scope: ScopeParams,
    /// mem0 2.x: owner ids as `{"user_id": …}` (other keys are refused on an add).
    #[serde(default)]
    pub filters: Option<Value>,
    /// Stored with every memory made.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// Extract facts with the chat model and reconcile them with what is stored (mem0's default); `false`
    /// stores each message as it is.
    #[serde(default)]
    pub infer: Option<bool>,
    /// When the memories expire: `YYYY-MM-DD` (they last through that day, UTC) or an RFC 3339 time.
    #[serde(default)]
    pub expiration_date: Option<String>,
    /// When the conversation happened, when not now: Unix seconds or an RFC 3339 time (becomes `created_at`).
    #[serde(default)]
    pub timestamp: Option<Value>,
}

/// `PUT /memories/{id}`: what to change. Parts not given stay as they are.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateMemory {
    /// The new text.
    #[serde(default, alias = "memory", alias = "data")]
    pub text: Option<String>,
    /// Replaces the metadata when given.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// A new expiration date (`YYYY-MM-DD` or RFC 3339); `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<String>")]
    pub expiration_date: Option<Value>,
}

/// Keeps an explicit `null` as `Some(Value::Null)` (absent stays `None` through `default`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// `POST /search` (and the platform's `/v3/memories/search/`): mem0 1.x's and 2.x's shapes.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchBody {
    /// What to look for.
    pub query: String,
    /// Whose memories (mem0 1.x); at least one id, here or in `filters`.
    #[serde(flatten)]
    pub scope: ScopeParams,
    /// Owner ids (mem0 2.x) and metadata conditions: `{"user_id": "a", "key": value}`, `{"key": {"gte": 3}}`,
    /// `{"AND": […]}`, …
    #[serde(default)]
    pub filters: Option<Value>,
    /// Most results (1–1000, default 10); mem0 2.x calls it `top_k`.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Most results (mem0 2.x).
    #[serde(default)]
    pub top_k: Option<usize>,
    /// Least cosine similarity to the query (−1..1).
    #[serde(default)]
    pub threshold: Option<f32>,
    /// Add `score_details` to each result: its similarity and the parts of its score (vector, keyword, context,
    /// speaker, time, question).
    #[serde(default)]
    pub explain: Option<bool>,
    /// Include expired memories.
    #[serde(default)]
    pub show_expired: Option<bool>,
}

impl SearchBody {
    /// The engine's request: ids from the top level and from `filters` (they must agree), the rest of `filters`
    /// as metadata conditions.
    pub fn request(self) -> Result<SearchRequest, ApiError> {
        let (scope, filters) = scope_and_filters(&self.scope, self.filters.as_ref())?;
        let limit = match (self.top_k, self.limit) {
            (Some(a), Some(b)) if a != b => return Err(ApiError::bad_request("top_k and limit disagree; give one")),
            (k, l) => k.or(l).unwrap_or(DEFAULT_LIMIT),
        };
        Ok(SearchRequest {
            query: self.query,
            scope,
            filters,
            limit,
            threshold: self.threshold,
            explain: self.explain.unwrap_or(false),
            show_expired: self.show_expired.unwrap_or(false),
        })
    }
}

/// The scope from top-level ids and from the ids in a mem0 2.x `filters` (an id given in both must agree), and
/// the metadata filter that remains.
pub(crate) fn scope_and_filters(
    top: &ScopeParams,
    filters: Option<&Value>,
) -> Result<(Scope, MetadataFilter), ApiError> {
    let (inner, rest) = split_scope(filters.unwrap_or(&Value::Null))?;
    let pick = |name: &str, a: &Option<String>, b: &Option<String>| match (a, b) {
        (Some(a), Some(b)) if a != b => {
            Err(ApiError::bad_request(format!("{name} differs between the body and filters")))
        }
        _ => Ok(a.clone().or_else(|| b.clone())),
    };
    let scope = Scope {
        user_id: pick("user_id", &top.user_id, &inner.user_id)?,
        agent_id: pick("agent_id", &top.agent_id, &inner.agent_id)?,
        run_id: pick("run_id", &top.run_id, &inner.run_id)?,
    };
    Ok((scope, rest))
}

/// An RFC 3339 time or Unix seconds (mem0's `timestamp`).
fn parse_timestamp(v: &Value) -> Result<DateTime<Utc>, ApiError> {
    let bad = || ApiError::bad_request("timestamp must be Unix seconds or an RFC 3339 time");
    match v {
        Value::Number(n) => {
            let secs = n.as_f64().ok_or_else(bad)?;
            DateTime::from_timestamp(secs.trunc() as i64, 0).ok_or_else(bad)
        }
        Value::String(s) => DateTime::parse_from_rfc3339(s.trim()).map(|t| t.with_timezone(&Utc)).map_err(|_| bad()),
        _ => Err(bad()),
    }
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
    Ok(Json(add(&state, body).await?))
}

/// An add in either generation's shape.
async fn add(state: &AppState, body: CreateMemory) -> Result<InferredAdd, ApiError> {
    let memory = memory(state)?;
    let messages = body.messages.into_messages();
    if messages.is_empty() {
        return Err(ApiError::bad_request("messages is empty: send at least one {\"role\", \"content\"}"));
    }
    let (scope, rest) = scope_and_filters(&body.scope, body.filters.as_ref())?;
    if !rest.is_all() {
        return Err(ApiError::bad_request("filters on an add may only hold user_id, agent_id and run_id"));
    }
    let req = AddRequest {
        input: AddInput::Messages(messages),
        scope,
        metadata: body.metadata.unwrap_or_default(),
        actor: Some(ACTOR.into()),
        timestamp: body.timestamp.as_ref().map(parse_timestamp).transpose()?,
        expiration_date: body.expiration_date.as_deref().map(parse_expiration).transpose()?,
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
    Ok(added)
}

/// `GET /memories` query: the scope, and whether expired memories are listed too.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListParams {
    /// Whose memories.
    #[serde(flatten)]
    pub scope: ScopeParams,
    /// Include expired memories.
    #[serde(default)]
    pub show_expired: Option<bool>,
}

/// Lists a scope's memories (newest first).
pub async fn list(
    State(state): State<AppState>,
    Params(params): Params<ListParams>,
) -> Result<Json<Results<MemoryItem>>, ApiError> {
    let show_expired = params.show_expired.unwrap_or(false);
    let results = memory(&state)?.list(&params.scope.scope(), &MetadataFilter::All, LIST_LIMIT, show_expired).await?;
    Ok(Json(Results { results }))
}

/// One memory, if it lies in the ids given.
pub(crate) async fn scoped(memory: &Memory, id: &str, scope: &ScopeParams) -> Result<MemoryItem, ApiError> {
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
    Ok(Json(change(&state, &id, &scope, body).await?))
}

/// An update in either generation's shape.
pub(crate) async fn change(
    state: &AppState,
    id: &str,
    scope: &ScopeParams,
    body: UpdateMemory,
) -> Result<Value, ApiError> {
    let memory = memory(state)?;
    scoped(memory, id, scope).await?;
    let expiration_date = match body.expiration_date {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(parse_expiration(&s)?)),
        Some(_) => return Err(ApiError::bad_request("expiration_date must be a date, an RFC 3339 time or null")),
    };
    let change = MemoryChange { text: body.text, metadata: body.metadata, expiration_date };
    let event: MemoryEvent = memory.change(id, change, Some(ACTOR)).await?;
    Ok(serde_json::json!({"message": "Memory updated successfully!", "result": event}))
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

/// Forgets every memory of a scope (at least one id required): the memories, their history, and every older
/// version of the tables that still held them.
pub async fn delete_all(
    State(state): State<AppState>,
    Params(scope): Params<ScopeParams>,
) -> Result<Json<Forgotten>, ApiError> {
    let report = memory(&state)?.forget(&scope.scope()).await?;
    Ok(Json(Forgotten { message: "All relevant memories deleted".into(), deleted: report.memories, report }))
}

/// The answer to a delete-all: mem0's message and count, and what was removed from disk.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Forgotten {
    /// What happened.
    pub message: String,
    /// Memories removed.
    pub deleted: usize,
    /// Memories, history entries, old table versions and bytes removed.
    pub report: ForgetReport,
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

/// Hybrid search in a scope.
pub async fn search(
    State(state): State<AppState>,
    Body(body): Body<SearchBody>,
) -> Result<Json<Results<SearchHit>>, ApiError> {
    let req = body.request()?;
    Ok(Json(Results { results: memory(&state)?.search(&req).await? }))
}

/// Deletes every memory and all history.
pub async fn reset(State(state): State<AppState>) -> Result<Json<Done>, ApiError> {
    memory(&state)?.reset().await?;
    Ok(Json(Done { message: "Reset successful".into(), deleted: None }))
}
