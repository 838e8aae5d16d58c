//! The memory engine (our mem0): add, search, get, update, delete and history of memories scoped by user, agent
//! and session, stored in LanceDB with embeddings from any [`Embedder`](crate::inference::Embedder).

mod filter;
mod group;
mod import;
mod infer;
mod keyword;
mod messages;
mod ranking;
pub(crate) mod store;
mod time;
mod types;

pub use filter::{split_scope, MetadataFilter, Op};
pub use import::{import_jsonl, ImportLine, ImportReport};
pub use infer::InferredAdd;
pub use messages::{LoggedMessage, MessageLog};
pub use ranking::ScoreDetails;
pub(crate) use time::MONTHS;
pub use types::{
    parse_expiration, AddInput, EventKind, HistoryEntry, MemoryEvent, MemoryItem, Message, NewMemory, Scope, SearchHit,
    MAX_ID_BYTES, MAX_METADATA_BYTES, MAX_TEXT_BYTES,
};

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use lancedb::expr::{col, lit};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tracing::{instrument, warn};

use crate::inference::{EmbedderHandle, InferenceError};
use group::Group;
use ranking::{Candidate, QueryCues};
use store::{exact_scope_expr, scope_expr, LanceStore, Row};
use types::{validate_id, validate_metadata, validate_text};

/// Default number of search results.
pub const DEFAULT_LIMIT: usize = 10;
/// Most results one search or listing returns.
pub const MAX_LIMIT: usize = 1000;
/// Scopes with at most this many memories are searched exactly in Rust, their rows fetched while the query is
/// embedded; bigger scopes use LanceDB's vector search after the embedding.
pub const DEFAULT_EXACT_SEARCH_ROWS: usize = 2048;
/// Least candidates each retriever returns for a big scope before fusion (4 × the limit when that is more). Measured
/// with `bench recall` forced onto this path (`--exact-search-rows 1`): R@10 0.690 with 200 candidates, 0.693 with
/// 256 — the count is not what limits this path (the exact path, with conversation context, scores 0.802).
const CANDIDATES: usize = 64;
/// Writes between background compactions: LanceDB writes one small file per write, and reads slow down as
/// they pile up.
const COMPACT_EVERY: usize = 64;

/// Everything that can go wrong in the memory engine.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The request is malformed; nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// No memory has this id.
    #[error("no memory with id {0}")]
    NotFound(String),
    /// The table was made with another embedding model; mixing vectors would corrupt search.
    #[error(
        "memory table '{table}' holds vectors from {stored}, but the configured embedder is {configured}; \
         use the embedder the table was made with, or another table (`memory_table` in tourdesk.toml)"
    )]
    EmbedderMismatch { table: String, stored: String, configured: String },
    /// Embedding failed.
    #[error(transparent)]
    Inference(#[from] InferenceError),
    /// LanceDB failed.
    #[error("memory store error: {0}")]
    Store(#[from] lancedb::Error),
    /// Arrow failed building a batch.
    #[error("memory store error: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// A write queued with others was not committed (the store's error, shared by every write in the group).
    #[error("memory write failed: {0}")]
    Write(String),
    /// A read queued with others failed (the store's error, shared by every read in the group).
    #[error("memory read failed: {0}")]
    Read(String),
    /// Stored data does not have the expected shape.
    #[error("memory store is corrupt: {0}")]
    Corrupt(String),
}

/// Where a memory store lives.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// LanceDB URI: a folder, or an object-store URI (`s3://…`).
    pub uri: String,
    /// Memories table; by default named after the embedder so different embedders never share a table.
    pub table: Option<String>,
    /// Largest scope searched exactly in Rust (see [`DEFAULT_EXACT_SEARCH_ROWS`]).
    pub exact_search_rows: usize,
}

impl MemoryConfig {
    /// A store at `uri` with the default table and search settings.
    pub fn new(uri: impl Into<String>) -> Self {
        Self { uri: uri.into(), table: None, exact_search_rows: DEFAULT_EXACT_SEARCH_ROWS }
    }
}

/// A search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// What to look for.
    pub query: String,
    /// Whose memories (at least one id).
    pub scope: Scope,
    /// Metadata conditions.
    pub filters: MetadataFilter,
    /// Most results (1..=MAX_LIMIT).
    pub limit: usize,
    /// Least cosine similarity to the query a result may have (mem0's `threshold`).
    pub threshold: Option<f32>,
    /// Attach each result's score breakdown.
    pub explain: bool,
    /// Include expired memories.
    pub show_expired: bool,
}

impl SearchRequest {
    /// A search in `scope` with default limit and no filters.
    pub fn new(query: impl Into<String>, scope: Scope) -> Self {
        Self {
            query: query.into(),
            scope,
            filters: MetadataFilter::All,
            limit: DEFAULT_LIMIT,
            threshold: None,
            explain: false,
            show_expired: false,
        }
    }

    /// Whether `item` passes the metadata filters and, unless expired ones are asked for, has not expired.
    fn admits(&self, item: &MemoryItem, now: DateTime<Utc>) -> bool {
        (self.show_expired || !item.expired(now)) && self.filters.matches(&item.metadata)
    }
}

/// An add.
#[derive(Debug, Clone, Default)]
pub struct AddRequest {
    /// Text or messages.
    pub input: AddInput,
    /// Owner (at least one id).
    pub scope: Scope,
    /// Metadata stored with every memory made.
    pub metadata: Map<String, Value>,
    /// Recorded in history as who made the change.
    pub actor: Option<String>,
    /// When it happened, when not now (mem0's `timestamp`).
    pub timestamp: Option<DateTime<Utc>>,
    /// When the memories made expire.
    pub expiration_date: Option<DateTime<Utc>>,
}

/// What `forget` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ForgetReport {
    /// Memories deleted.
    pub memories: usize,
    /// History entries deleted.
    pub history_entries: usize,
    /// Logged messages deleted.
    pub messages: usize,
    /// Old table versions removed from disk (they still held the deleted rows).
    pub versions_removed: usize,
    /// Bytes of files removed from disk.
    pub bytes_removed: u64,
}

/// What an update changes; `None` leaves a part as it is.
#[derive(Debug, Clone, Default)]
pub struct MemoryChange {
    /// New text.
    pub text: Option<String>,
    /// New metadata (replaces the old object).
    pub metadata: Option<Map<String, Value>>,
    /// New expiration date; `Some(None)` removes it.
    pub expiration_date: Option<Option<DateTime<Utc>>>,
}

/// The memory engine. Cheap to clone; clones share the store and the embedder.
#[derive(Clone)]
pub struct Memory {
    inner: Arc<Inner>,
}

struct Inner {
    /// Adds from concurrent callers, done together (see [`Group`]).
    adds: Group<PendingAdd, Vec<MemoryEvent>>,
    /// Reads of whole callers' memories (each call's first turn), done together (see [`Group`]).
    caller_reads: Group<String, Vec<MemoryItem>>,
    store: LanceStore,
    messages: MessageLog,
    embedder: EmbedderHandle,
    exact_search_rows: usize,
    /// Writes since the last compaction.
    writes: AtomicUsize,
    /// Analyzed terms of memories searched recently.
    terms: keyword::TermCache,
}

/// One caller's records and who wrote them, waiting to be added with others'.
type PendingAdd = (Vec<NewMemory>, Option<String>);

/// sha256 of a memory's text: equal texts in one scope are stored once.
fn text_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl NewMemory {
    /// Checks scope, text and metadata.
    pub fn validate(&self) -> Result<(), MemoryError> {
        self.scope.validate()?;
        validate_text(&self.text)?;
        validate_metadata(&self.metadata)
    }
}

impl Memory {
    /// Opens (or creates) the store at `config.uri` for vectors from `embedder`.
    pub async fn open(config: &MemoryConfig, embedder: EmbedderHandle) -> Result<Self, MemoryError> {
        let table = config.table.clone().unwrap_or_else(|| default_table_name(embedder.model_id()));
        let store = LanceStore::open(&config.uri, &table, embedder.model_id(), embedder.dim()).await?;
        let messages = MessageLog::open(&config.uri).await?;
        let exact_search_rows = config.exact_search_rows;
        Ok(Self {
            inner: Arc::new(Inner {
                adds: Group::new(Arc::default()),
                caller_reads: Group::reads(),
                store,
                messages,
                embedder,
                exact_search_rows,
                writes: AtomicUsize::new(0),
                terms: keyword::TermCache::default(),
            }),
        })
    }

    /// The sessions' message log, kept beside the memories.
    pub fn messages(&self) -> &MessageLog {
        &self.inner.messages
    }

    /// The embedder this store uses.
    pub fn embedder(&self) -> &EmbedderHandle {
        &self.inner.embedder
    }

    /// Stores text, or each non-system message, as memories (exact duplicates in the scope are reported as NONE).
    #[instrument(skip_all, name = "memory.add")]
    pub async fn add(&self, req: AddRequest) -> Result<Vec<MemoryEvent>, MemoryError> {
        let template = NewMemory {
            scope: req.scope,
            metadata: req.metadata,
            timestamp: req.timestamp,
            expiration_date: req.expiration_date,
            ..Default::default()
        };
        let records = req.input.into_records(template);
        if records.is_empty() {
            return Err(MemoryError::Invalid("nothing to remember: no text and no user or assistant message".into()));
        }
        self.add_many(records, req.actor.as_deref()).await
    }

    /// Stores many memories in one write (the import path). Every record is checked first; one bad record fails
    /// the whole batch and nothing is written. Adds from callers writing at the same time are done together: one
    /// duplicate check, one embedding pass, one commit.
    #[instrument(skip_all, name = "memory.add_many", fields(n = records.len()))]
    pub async fn add_many(
        &self,
        records: Vec<NewMemory>,
        actor: Option<&str>,
    ) -> Result<Vec<MemoryEvent>, MemoryError> {
        for (i, r) in records.iter().enumerate() {
            r.validate().map_err(|e| MemoryError::Invalid(format!("record {i}: {e}")))?;
        }
        let memory = self.clone();
        self.inner
            .adds
            .submit(
                (records, actor.map(str::to_string)),
                move |pending| async move { memory.add_pending(pending).await },
            )
            .await
    }

    /// Adds the records of several callers as one batch; answers each caller with the events of its records.
    async fn add_pending(&self, pending: Vec<PendingAdd>) -> Vec<group::Answer<Vec<MemoryEvent>>> {
        let sizes: Vec<usize> = pending.iter().map(|(records, _)| records.len()).collect();
        let (records, actors): (Vec<NewMemory>, Vec<Option<String>>) = pending
            .into_iter()
            .flat_map(|(records, actor)| records.into_iter().map(move |r| (r, actor.clone())))
            .unzip();
        match self.add_records(&records, &actors).await {
            Ok(events) => {
                let mut events = events.into_iter();
                sizes.iter().map(|&n| Ok(events.by_ref().take(n).collect())).collect()
            }
            Err(e) => {
                let message: Arc<str> = e.to_string().into();
                sizes.iter().map(|_| Err(message.clone())).collect()
            }
        }
    }

    /// Adds checked records (`actors[i]` wrote `records[i]`): NONE for a duplicate already stored or earlier in
    /// the batch, else ADD.
    async fn add_records(
        &self,
        records: &[NewMemory],
        actors: &[Option<String>],
    ) -> Result<Vec<MemoryEvent>, MemoryError> {
        let hashes: Vec<String> = records.iter().map(|r| text_hash(&r.text)).collect();
        let existing = self.existing(records, &hashes).await?;

        // Decide per record: NONE for a duplicate already stored or earlier in this batch, else ADD.
        let mut events = Vec::with_capacity(records.len());
        let mut seen: HashMap<(Scope, &str), String> = HashMap::new();
        let mut fresh = Vec::new();
        for (r, hash) in records.iter().zip(&hashes) {
            let key = (r.scope.clone(), hash.as_str());
            if let Some(id) = existing.get(&key).or_else(|| seen.get(&key)) {
                events.push(MemoryEvent::unchanged(id, &r.text));
                continue;
            }
            let id = uuid::Uuid::new_v4().to_string();
            seen.insert(key, id.clone());
            events.push(MemoryEvent { id, memory: r.text.clone(), event: EventKind::Add, previous_memory: None });
            fresh.push(events.len() - 1);
        }
        if fresh.is_empty() {
            return Ok(events);
        }

        let texts: Vec<String> = fresh.iter().map(|&i| records[i].text.clone()).collect();
        let vectors = self.inner.embedder.embed_background(texts).await?;
        let now = Utc::now();
        let mut rows = Vec::with_capacity(fresh.len());
        let mut history = Vec::with_capacity(fresh.len());
        for (n, (&i, vector)) in fresh.iter().zip(vectors).enumerate() {
            let r = &records[i];
            // One microsecond apart, so the order of a batch (a conversation's turns) survives in created_at.
            let stored = now + chrono::Duration::microseconds(n as i64);
            let item = MemoryItem {
                id: events[i].id.clone(),
                memory: r.text.clone(),
                hash: hashes[i].clone(),
                scope: r.scope.clone(),
                role: r.role.clone(),
                metadata: r.metadata.clone(),
                created_at: r.timestamp.unwrap_or(stored),
                updated_at: stored,
                expiration_date: r.expiration_date,
            };
            history.push((
                entry(&item.id, None, Some(&item.memory), EventKind::Add, actors[i].as_deref()),
                r.scope.clone(),
            ));
            rows.push(Row { item, vector });
        }
        self.inner.store.insert(&rows).await?;
        self.inner.store.append_history(&history).await?;
        self.wrote(1);
        Ok(events)
    }

    /// Ids of stored memories with the same text in exactly the same scope, keyed by (scope, hash).
    async fn existing<'a>(
        &self,
        records: &[NewMemory],
        hashes: &'a [String],
    ) -> Result<HashMap<(Scope, &'a str), String>, MemoryError> {
        let unique: HashSet<&String> = hashes.iter().collect();
        let mut filter = col("hash").in_list(unique.into_iter().map(|h| lit(h.clone())).collect(), false);
        if let Some(first) = records.first().map(|r| &r.scope) {
            if records.iter().all(|r| &r.scope == first) {
                filter = filter.and(exact_scope_expr(first));
            }
        }
        let found = self.inner.store.find(filter, None).await?;
        let by_key: HashMap<(Scope, String), String> =
            found.into_iter().map(|item| ((item.scope, item.hash), item.id)).collect();
        Ok(records
            .iter()
            .zip(hashes)
            .filter_map(|(r, h)| {
                by_key.get(&(r.scope.clone(), h.clone())).map(|id| ((r.scope.clone(), h.as_str()), id.clone()))
            })
            .collect())
    }

    /// The scope's memories most relevant to the query, best first: vector similarity fused with keyword
    /// relevance, the conversation around each memory, its speaker and the period the query names (see
    /// [`ScoreDetails`]).
    #[instrument(skip_all, name = "memory.search", fields(limit = req.limit))]
    pub async fn search(&self, req: &SearchRequest) -> Result<Vec<SearchHit>, MemoryError> {
        req.scope.validate()?;
        validate_text(&req.query).map_err(|_| MemoryError::Invalid("search query is empty or too long".into()))?;
        check_limit(req.limit)?;
        let now = Utc::now();
        let filter = scope_expr(&req.scope);
        let cues = QueryCues::new(&req.query, time::query_time(&req.query, now));
        // Embed the query, then fetch a small scope; score exactly when the scope is small. One after the other:
        // done at once, the store read and the embedder's two threads fought over two cores (`bench memory` at 2,000
        // memories: search p95 19–20 ms at once, 6–10 ms in turn).
        let vector = self.inner.embedder.embed_one(&req.query).await?;
        let rows = self.inner.store.scope_rows(filter.clone(), self.inner.exact_search_rows).await?;
        if let Some(mut rows) = rows {
            // In creation order (stable: a batch's order is kept), so each memory knows its neighbours. Scores are
            // computed over the whole scope, as the index path's statistics are; the filters come after.
            rows.sort_by_key(|r| r.item.created_at);
            let neighbours = conversation_neighbours(&rows);
            let own: Vec<_> = rows.iter().map(|r| self.inner.terms.get(&r.item.hash, &r.item.memory)).collect();
            // A memory's keyword document includes the memory before it: the question a turn answers.
            let docs: Vec<Vec<&str>> = neighbours
                .iter()
                .enumerate()
                .map(|(i, (before, _))| {
                    let before = before.map_or(&[][..], |j| own[j].as_slice());
                    before.iter().chain(own[i].iter()).map(String::as_str).collect()
                })
                .collect();
            let bm25 = keyword::bm25(&keyword::terms(&req.query), &docs);
            let candidates = rows
                .into_iter()
                .zip(bm25)
                .map(|(row, bm25)| Candidate { similarity: cosine(&row.vector, &vector), bm25, item: row.item })
                .collect();
            return Ok(select_hits(ranking::rank(candidates, Some(&neighbours), &cues), req, now));
        }
        // A big scope: the nearest memories by vector and the best by LanceDB's full-text index, fused. Filters
        // run after retrieval, so ask for more candidates until enough pass or the scope runs out.
        let mut k = (req.limit * 4).max(CANDIDATES);
        loop {
            let (dense, keyword) = tokio::join!(
                self.inner.store.nearest(&vector, filter.clone(), k),
                self.inner.store.full_text(&req.query, filter.clone(), k)
            );
            let (dense, keyword) = (dense?, keyword?);
            let exhausted = dense.len() < k && keyword.len() < k;
            let mut found: HashMap<String, Candidate> = HashMap::new();
            for (item, similarity) in dense {
                found.insert(item.id.clone(), Candidate { item, similarity, bm25: 0.0 });
            }
            for (row, bm25) in keyword {
                let similarity = cosine(&row.vector, &vector);
                found.entry(row.item.id.clone()).or_insert(Candidate { item: row.item, similarity, bm25: 0.0 }).bm25 =
                    bm25;
            }
            let admitted = found.values().filter(|c| req.admits(&c.item, now)).count();
            let mut candidates: Vec<Candidate> = found.into_values().collect();
            candidates.sort_by_key(|c| c.item.created_at);
            let hits = select_hits(ranking::rank(candidates, None, &cues), req, now);
            if admitted >= req.limit || exhausted {
                return Ok(hits);
            }
            k *= 4;
        }
    }

    /// One memory by id.
    #[instrument(skip_all, name = "memory.get")]
    pub async fn get(&self, id: &str) -> Result<MemoryItem, MemoryError> {
        validate_id(id)?;
        self.inner
            .store
            .find(col("id").eq(lit(id.to_string())), Some(1))
            .await?
            .pop()
            .ok_or_else(|| MemoryError::NotFound(id.to_string()))
    }

    /// Unexpired memories in the scope that match the filters, most recently changed first, at most `limit`.
    pub async fn get_all(
        &self,
        scope: &Scope,
        filters: &MetadataFilter,
        limit: usize,
    ) -> Result<Vec<MemoryItem>, MemoryError> {
        self.list(scope, filters, limit, false).await
    }

    /// [`Memory::get_all`], with expired memories too when `show_expired`.
    #[instrument(skip_all, name = "memory.list")]
    pub async fn list(
        &self,
        scope: &Scope,
        filters: &MetadataFilter,
        limit: usize,
        show_expired: bool,
    ) -> Result<Vec<MemoryItem>, MemoryError> {
        scope.validate()?;
        check_limit(limit)?;
        let now = Utc::now();
        let mut items = match (&scope.user_id, &scope.agent_id, &scope.run_id) {
            (Some(user), None, None) => self.caller_memories(user.clone()).await?,
            _ => self.inner.store.find(scope_expr(scope), None).await?,
        };
        items.retain(|i| (show_expired || !i.expired(now)) && filters.matches(&i.metadata));
        items.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| a.id.cmp(&b.id)));
        items.truncate(limit);
        Ok(items)
    }

    /// Every memory of `user`, read in one query with those of the other callers asked for meanwhile.
    async fn caller_memories(&self, user: String) -> Result<Vec<MemoryItem>, MemoryError> {
        let inner = self.inner.clone();
        self.inner
            .caller_reads
            .submit(user, move |users: Vec<String>| async move {
                let mut distinct = users.clone();
                distinct.sort();
                distinct.dedup();
                // Typed literals, never spliced text.
                let filter = col("user_id").in_list(distinct.into_iter().map(lit).collect(), false);
                match inner.store.find(filter, None).await {
                    Ok(items) => {
                        let mut by_user: HashMap<String, Vec<MemoryItem>> = HashMap::new();
                        for item in items {
                            if let Some(user) = item.scope.user_id.clone() {
                                by_user.entry(user).or_default().push(item);
                            }
                        }
                        users.iter().map(|u| Ok(by_user.get(u).cloned().unwrap_or_default())).collect()
                    }
                    Err(e) => {
                        let e: Arc<str> = e.to_string().into();
                        users.iter().map(|_| Err(e.clone())).collect()
                    }
                }
            })
            .await
    }

    /// Every memory in the scope, or in the whole store when `scope` is `None`, in storage order (for export).
    #[instrument(skip_all, name = "memory.export")]
    pub async fn export(&self, scope: Option<&Scope>) -> Result<Vec<MemoryItem>, MemoryError> {
        let filter = match scope {
            Some(scope) => {
                scope.validate()?;
                scope_expr(scope)
            }
            None => lit(true),
        };
        self.inner.store.find(filter, None).await
    }

    /// Replaces a memory's text (re-embedding it) and, when given, its metadata.
    pub async fn update(
        &self,
        id: &str,
        text: &str,
        metadata: Option<Map<String, Value>>,
        actor: Option<&str>,
    ) -> Result<MemoryEvent, MemoryError> {
        self.change(id, MemoryChange { text: Some(text.to_string()), metadata, ..Default::default() }, actor).await
    }

    /// Changes what `change` names of a memory: its text (re-embedded; history keeps the old one), its metadata,
    /// its expiration date. Nothing named is an error.
    #[instrument(skip_all, name = "memory.update")]
    pub async fn change(
        &self,
        id: &str,
        change: MemoryChange,
        actor: Option<&str>,
    ) -> Result<MemoryEvent, MemoryError> {
        if change.text.is_none() && change.metadata.is_none() && change.expiration_date.is_none() {
            return Err(MemoryError::Invalid("nothing to change: give text, metadata or expiration_date".into()));
        }
        if let Some(text) = &change.text {
            validate_text(text)?;
        }
        if let Some(m) = &change.metadata {
            validate_metadata(m)?;
        }
        let old = self.get(id).await?;
        let text = change.text.unwrap_or_else(|| old.memory.clone());
        let vector = match text == old.memory {
            true => self.inner.store.vector(id).await?,
            false => self.inner.embedder.embed_one_background(&text).await?,
        };
        let item = MemoryItem {
            memory: text.clone(),
            hash: text_hash(&text),
            metadata: change.metadata.unwrap_or_else(|| old.metadata.clone()),
            updated_at: Utc::now(),
            expiration_date: change.expiration_date.unwrap_or(old.expiration_date),
            ..old.clone()
        };
        self.inner.store.upsert(&[Row { item, vector }]).await?;
        let history = entry(id, Some(&old.memory), Some(&text), EventKind::Update, actor);
        self.inner.store.append_history(&[(history, old.scope.clone())]).await?;
        self.wrote(1);
        Ok(MemoryEvent {
            id: id.to_string(),
            memory: text,
            event: EventKind::Update,
            previous_memory: Some(old.memory),
        })
    }

    /// Deletes one memory (its history stays, ending with DELETE).
    #[instrument(skip_all, name = "memory.delete")]
    pub async fn delete(&self, id: &str, actor: Option<&str>) -> Result<MemoryEvent, MemoryError> {
        let old = self.get(id).await?;
        self.inner.store.delete(&col("id").eq(lit(id.to_string()))).await?;
        let history = entry(id, Some(&old.memory), None, EventKind::Delete, actor);
        self.inner.store.append_history(&[(history, old.scope.clone())]).await?;
        self.wrote(1);
        Ok(MemoryEvent { id: id.to_string(), memory: old.memory, event: EventKind::Delete, previous_memory: None })
    }

    /// Deletes every memory in the scope, recording a DELETE for each. Returns how many.
    #[instrument(skip_all, name = "memory.delete_all")]
    pub async fn delete_all(&self, scope: &Scope, actor: Option<&str>) -> Result<usize, MemoryError> {
        scope.validate()?;
        let items = self.inner.store.find(scope_expr(scope), None).await?;
        if items.is_empty() {
            return Ok(0);
        }
        self.inner.store.delete(&scope_expr(scope)).await?;
        let history: Vec<_> = items
            .iter()
            .map(|i| (entry(&i.id, Some(&i.memory), None, EventKind::Delete, actor), i.scope.clone()))
            .collect();
        self.inner.store.append_history(&history).await?;
        self.wrote(1);
        Ok(items.len())
    }

    /// Removes every memory in the scope and all their history, leaving no trace on disk: the data files that held
    /// them are rewritten and every older table version is removed (see [`ForgetReport`]).
    #[instrument(skip_all, name = "memory.forget")]
    pub async fn forget(&self, scope: &Scope) -> Result<ForgetReport, MemoryError> {
        scope.validate()?;
        // Deleted by id, not by owner: a delete's filter is kept in the table's transaction log, and the owner
        // (a phone number) is part of what must go.
        let ids: Vec<String> =
            self.inner.store.find(scope_expr(scope), None).await?.into_iter().map(|i| i.id).collect();
        let memories = self.inner.store.delete_ids(&ids).await?;
        let history_entries = self.inner.store.delete_history(scope).await?;
        let log = &self.inner.messages;
        let messages = store::delete_by_ids(log.table(), &log.ids(scope).await?).await?;
        let purged = self.inner.store.purge(&[log.table()]).await?;
        Ok(ForgetReport {
            memories,
            history_entries,
            messages,
            versions_removed: purged.versions,
            bytes_removed: purged.bytes,
        })
    }

    /// Deletes every memory that has expired, recording a DELETE in each one's history. Returns what was deleted.
    #[instrument(skip_all, name = "memory.cleanup")]
    pub async fn cleanup_expired(&self, actor: Option<&str>) -> Result<Vec<MemoryEvent>, MemoryError> {
        let now = Utc::now();
        let mut expired = self.inner.store.find(col("expires_at").is_not_null(), None).await?;
        expired.retain(|i| i.expired(now));
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        let ids = expired.iter().map(|i| lit(i.id.clone())).collect();
        self.inner.store.delete(&col("id").in_list(ids, false)).await?;
        let history: Vec<_> = expired
            .iter()
            .map(|i| (entry(&i.id, Some(&i.memory), None, EventKind::Delete, actor), i.scope.clone()))
            .collect();
        self.inner.store.append_history(&history).await?;
        self.wrote(1);
        Ok(expired
            .into_iter()
            .map(|i| MemoryEvent { id: i.id, memory: i.memory, event: EventKind::Delete, previous_memory: None })
            .collect())
    }

    /// Every event of one memory, oldest first (also after the memory was deleted).
    #[instrument(skip_all, name = "memory.history")]
    pub async fn history(&self, id: &str) -> Result<Vec<HistoryEntry>, MemoryError> {
        validate_id(id)?;
        self.inner.store.history(id).await
    }

    /// Deletes every memory, all history and the message log in this store.
    #[instrument(skip_all, name = "memory.reset")]
    pub async fn reset(&self) -> Result<(), MemoryError> {
        self.inner.store.clear().await?;
        self.inner.messages.clear().await?;
        self.inner.store.optimize().await
    }

    /// Every user, agent and run that owns memories, by (`"user"`/`"agent"`/`"run"`, id), with how many it owns.
    #[instrument(skip_all, name = "memory.owners")]
    pub async fn owners(&self) -> Result<std::collections::BTreeMap<(&'static str, String), usize>, MemoryError> {
        let mut out = std::collections::BTreeMap::new();
        for scope in self.inner.store.owners().await? {
            for (kind, id) in [("user", scope.user_id), ("agent", scope.agent_id), ("run", scope.run_id)] {
                if let Some(id) = id {
                    *out.entry((kind, id)).or_default() += 1;
                }
            }
        }
        Ok(out)
    }

    /// Number of memories stored (all scopes).
    pub async fn count(&self) -> Result<usize, MemoryError> {
        self.inner.store.count().await
    }

    /// Compacts the tables and refreshes indexes; run after bulk imports.
    pub async fn optimize(&self) -> Result<(), MemoryError> {
        self.inner.writes.store(0, Ordering::Relaxed);
        self.inner.store.optimize().await
    }

    /// Counts a write and, every [`COMPACT_EVERY`] writes, compacts in the background.
    fn wrote(&self, n: usize) {
        let before = self.inner.writes.fetch_add(n, Ordering::Relaxed);
        if before / COMPACT_EVERY != (before + n) / COMPACT_EVERY {
            let store = self.inner.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.optimize().await {
                    warn!(error = %e, "background compaction failed; it is retried after the next writes");
                }
            });
        }
    }
}

/// The best `req.limit` of `ranked` (best first) that the request admits and whose similarity reaches the
/// threshold, with their breakdown when asked for.
fn select_hits(ranked: Vec<(MemoryItem, ScoreDetails)>, req: &SearchRequest, now: DateTime<Utc>) -> Vec<SearchHit> {
    let threshold = req.threshold.unwrap_or(f32::NEG_INFINITY);
    ranked
        .into_iter()
        .filter(|(item, details)| details.similarity >= threshold && req.admits(item, now))
        .take(req.limit)
        .map(|(item, details)| SearchHit {
            item,
            score: details.total(),
            score_details: req.explain.then_some(details),
        })
        .collect()
}

/// For rows in creation order: the rows just before and after each one in the same conversation (same agent and
/// run).
fn conversation_neighbours(rows: &[Row]) -> Vec<(Option<usize>, Option<usize>)> {
    let mut out = vec![(None, None); rows.len()];
    let mut last: HashMap<(Option<&str>, Option<&str>), usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let key = (row.item.scope.agent_id.as_deref(), row.item.scope.run_id.as_deref());
        if let Some(j) = last.insert(key, i) {
            out[i].0 = Some(j);
            out[j].1 = Some(i);
        }
    }
    out
}

/// Cosine similarity, as LanceDB's cosine distance (1 - this) computes it.
fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

fn check_limit(limit: usize) -> Result<(), MemoryError> {
    if limit == 0 || limit > MAX_LIMIT {
        return Err(MemoryError::Invalid(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    Ok(())
}

fn entry(memory_id: &str, old: Option<&str>, new: Option<&str>, event: EventKind, actor: Option<&str>) -> HistoryEntry {
    HistoryEntry {
        id: uuid::Uuid::new_v4().to_string(),
        memory_id: memory_id.to_string(),
        old_memory: old.map(str::to_string),
        new_memory: new.map(str::to_string),
        event,
        created_at: Utc::now(),
        actor: actor.map(str::to_string),
        is_deleted: event == EventKind::Delete,
    }
}

/// `memories_` plus the embedder's model id folded to `[a-z0-9_]`.
pub fn default_table_name(model_id: &str) -> String {
    let slug: String =
        model_id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    format!("memories_{slug}")
}
