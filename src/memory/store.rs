//! The LanceDB side of the memory engine: table schemas, Arrow conversion, and the few queries the engine needs.
//!
//! Filters are built as DataFusion expressions (`col("user_id").eq(lit(v))`), never as SQL text, so no user
//! string can change a query's meaning.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::builder::{BooleanBuilder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::types::Float32Type;
use arrow_array::{
    Array, ArrayRef, BooleanArray, FixedSizeListArray, Float32Array, RecordBatch, RecordBatchIterator, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use lancedb::expr::{col, lit, DfExpr};
use lancedb::index::scalar::FullTextSearchQuery;
use lancedb::index::Index;
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::table::{CompactionOptions, NewColumnTransform, OptimizeAction};
use lancedb::{DistanceType, Table};
use serde_json::{Map, Value};
use tracing::instrument;

use super::group::Appends;
use super::keyword;
use super::types::{EventKind, HistoryEntry, MemoryItem, Scope};
use super::MemoryError;

/// Schema metadata key holding the embedder's model id.
const META_MODEL: &str = "tourdesk.embedder.model_id";
/// Schema metadata key holding the vector length.
const META_DIM: &str = "tourdesk.embedder.dim";
/// Name of the history table, shared by every memories table (memory ids are UUIDs).
const HISTORY_TABLE: &str = "memory_history";
/// Ids per delete when deleting by id.
const DELETE_CHUNK: usize = 1024;
/// Rows above which a scalar index on `user_id` pays for itself.
const INDEX_AT_ROWS: usize = 10_000;
/// Columns read back for a memory (everything but the vector).
const ITEM_COLUMNS: [&str; 11] = [
    "id",
    "text",
    "hash",
    "user_id",
    "agent_id",
    "run_id",
    "role",
    "metadata",
    "created_at",
    "updated_at",
    "expires_at",
];
/// Columns read back from a vector search: the memory and its distance.
const HIT_COLUMNS: [&str; 12] = [
    "id",
    "text",
    "hash",
    "user_id",
    "agent_id",
    "run_id",
    "role",
    "metadata",
    "created_at",
    "updated_at",
    "expires_at",
    "_distance",
];

/// What a purge removed from disk.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PurgeStats {
    /// Old table versions removed.
    pub versions: usize,
    /// Bytes of files removed.
    pub bytes: u64,
}

/// A memory row on its way in: the item plus its vector.
pub(crate) struct Row {
    pub item: MemoryItem,
    pub vector: Vec<f32>,
}

/// The two tables of one memory store.
#[derive(Clone)]
pub(crate) struct LanceStore {
    memories: Table,
    history: Table,
    schema: SchemaRef,
    dim: usize,
    /// This process's writes, one at a time. LanceDB resolves concurrent commits by retrying against the newer
    /// version, and under many callers at once (`bench load`, 50 sessions) appends ran out of retries and were lost;
    /// queued here they commit in order, without conflicts, and a compaction waits its turn.
    gate: Arc<tokio::sync::Mutex<()>>,
    /// Appends to `memories`, committed together (see [`Appends`]).
    memory_appends: Arc<Appends>,
    /// Appends to `history`, likewise.
    history_appends: Arc<Appends>,
}

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn memories_schema(model_id: &str, dim: usize) -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let fields = vec![
        text("id", false),
        text("text", false),
        text("hash", false),
        Field::new(
            "vector",
            DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, true)), dim as i32),
            false,
        ),
        text("user_id", true),
        text("agent_id", true),
        text("run_id", true),
        text("role", true),
        text("metadata", false),
        Field::new("created_at", timestamp_type(), false),
        Field::new("updated_at", timestamp_type(), false),
        expires_field(),
    ];
    let meta = HashMap::from([(META_MODEL.to_string(), model_id.to_string()), (META_DIM.to_string(), dim.to_string())]);
    Arc::new(Schema::new_with_metadata(fields, meta))
}

/// When a memory expires (added in 0.2; tables made before get it, empty, when opened).
fn expires_field() -> Field {
    Field::new("expires_at", timestamp_type(), true)
}

fn history_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("id", false),
        text("memory_id", false),
        text("user_id", true),
        text("agent_id", true),
        text("run_id", true),
        text("old", true),
        text("new", true),
        text("event", false),
        Field::new("at", timestamp_type(), false),
        text("actor", true),
        Field::new("is_deleted", DataType::Boolean, false),
    ]))
}

/// Equality on every id the scope sets.
pub(crate) fn scope_expr(scope: &Scope) -> DfExpr {
    scope.fields().map(|(name, value)| col(name).eq(lit(value.to_string()))).reduce(DfExpr::and).unwrap_or(lit(true))
}

/// Equality on every id the scope sets and "is null" on the others: exactly this scope.
pub(crate) fn exact_scope_expr(scope: &Scope) -> DfExpr {
    [("user_id", &scope.user_id), ("agent_id", &scope.agent_id), ("run_id", &scope.run_id)]
        .into_iter()
        .map(|(name, value)| match value {
            Some(v) => col(name).eq(lit(v.clone())),
            None => col(name).is_null(),
        })
        .reduce(DfExpr::and)
        .expect("three columns")
}

/// How stale a read may be with respect to other processes' writes (this process's own writes are seen at once).
const READ_CONSISTENCY: Duration = Duration::from_secs(1);

/// Connects to the LanceDB at `uri`, re-reading the latest version at most every [`READ_CONSISTENCY`], so a
/// `tourdesk memory forget` from the shell reaches a running server within a second.
pub(crate) async fn connect(uri: &str) -> lancedb::Result<lancedb::Connection> {
    lancedb::connect(uri).read_consistency_interval(READ_CONSISTENCY).execute().await.map_err(|e| {
        // The object store's own message runs to kilobytes of nested debug output: lead with what to check.
        let hint = if uri.contains("://") {
            " (check the URI, AWS_ENDPOINT for an S3-compatible store, AWS_REGION and the credentials)"
        } else {
            ""
        };
        let cause: String = e.to_string().chars().take(400).collect();
        lancedb::Error::Runtime { message: format!("cannot open the LanceDB at {uri}{hint}: {cause}") }
    })
}

/// Opens table `name`, creating it empty with `schema` when it does not exist yet.
pub(crate) async fn open_or_create(db: &lancedb::Connection, name: &str, schema: SchemaRef) -> lancedb::Result<Table> {
    match db.open_table(name).execute().await {
        Err(lancedb::Error::TableNotFound { .. }) => match db.create_empty_table(name, schema).execute().await {
            // Another process created it between our open and create.
            Err(lancedb::Error::TableAlreadyExists { .. }) => db.open_table(name).execute().await,
            created => created,
        },
        opened => opened,
    }
}

impl LanceStore {
    /// Opens (or creates) the memories table `table` and the history table at `uri`, checking that the table was
    /// made by the same embedder.
    pub(crate) async fn open(uri: &str, table: &str, model_id: &str, dim: usize) -> Result<Self, MemoryError> {
        let db = connect(uri).await?;
        let schema = memories_schema(model_id, dim);
        let memories = open_or_create(&db, table, schema.clone()).await?;
        let found = memories.schema().await?;
        let found_model = found.metadata().get(META_MODEL).cloned().unwrap_or_default();
        let found_dim = found.metadata().get(META_DIM).cloned().unwrap_or_default();
        if found_model != model_id || found_dim != dim.to_string() {
            return Err(MemoryError::EmbedderMismatch {
                table: table.to_string(),
                stored: format!("{found_model} ({found_dim}-d)"),
                configured: format!("{model_id} ({dim}-d)"),
            });
        }
        if found.field_with_name("expires_at").is_err() {
            let added = Arc::new(Schema::new(vec![expires_field()]));
            memories.add_columns().transform(NewColumnTransform::AllNulls(added)).execute().await?;
        }
        let history = open_or_create(&db, HISTORY_TABLE, history_schema()).await?;
        let gate = Arc::<tokio::sync::Mutex<()>>::default();
        let memory_appends = Arc::new(Appends::new(memories.clone(), gate.clone()));
        let history_appends = Arc::new(Appends::new(history.clone(), gate.clone()));
        Ok(Self { memories, history, schema, dim, gate, memory_appends, history_appends })
    }

    fn memory_batch(&self, rows: &[Row]) -> Result<RecordBatch, MemoryError> {
        let strings = |f: &dyn Fn(&MemoryItem) -> Option<&str>| -> ArrayRef {
            let mut b = StringBuilder::new();
            rows.iter().for_each(|r| b.append_option(f(&r.item)));
            Arc::new(b.finish())
        };
        let times = |f: &dyn Fn(&MemoryItem) -> DateTime<Utc>| -> ArrayRef {
            let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
            rows.iter().for_each(|r| b.append_value(f(&r.item).timestamp_micros()));
            Arc::new(b.finish())
        };
        if let Some(bad) = rows.iter().find(|r| r.vector.len() != self.dim) {
            return Err(MemoryError::Invalid(format!(
                "vector of length {} for a {}-d table",
                bad.vector.len(),
                self.dim
            )));
        }
        let vectors = FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
            rows.iter().map(|r| Some(r.vector.iter().copied().map(Some).collect::<Vec<_>>())),
            self.dim as i32,
        );
        let metadata: Vec<String> = rows.iter().map(|r| Value::Object(r.item.metadata.clone()).to_string()).collect();
        let columns: Vec<ArrayRef> = vec![
            strings(&|i| Some(i.id.as_str())),
            strings(&|i| Some(i.memory.as_str())),
            strings(&|i| Some(i.hash.as_str())),
            Arc::new(vectors),
            strings(&|i| i.scope.user_id.as_deref()),
            strings(&|i| i.scope.agent_id.as_deref()),
            strings(&|i| i.scope.run_id.as_deref()),
            strings(&|i| i.role.as_deref()),
            Arc::new(StringArray::from(metadata)),
            times(&|i| i.created_at),
            times(&|i| i.updated_at),
            {
                let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
                rows.iter().for_each(|r| b.append_option(r.item.expiration_date.map(|t| t.timestamp_micros())));
                Arc::new(b.finish())
            },
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }

    /// Appends memories.
    #[instrument(skip_all, name = "store.insert", fields(n = rows.len()))]
    pub(crate) async fn insert(&self, rows: &[Row]) -> Result<(), MemoryError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.memory_appends.append(self.memory_batch(rows)?).await
    }

    /// Replaces memories with the same id (one atomic merge).
    #[instrument(skip_all, name = "store.upsert", fields(n = rows.len()))]
    pub(crate) async fn upsert(&self, rows: &[Row]) -> Result<(), MemoryError> {
        let _write = self.gate.lock().await;
        let batch = self.memory_batch(rows)?;
        let reader = RecordBatchIterator::new(vec![Ok(batch)], self.schema.clone());
        let mut merge = self.memories.merge_insert(&["id"]);
        merge.when_matched_update_all(None).when_not_matched_insert_all();
        merge.execute(Box::new(reader)).await?;
        Ok(())
    }

    /// Memories matching `filter`, in storage order, at most `limit`.
    #[instrument(skip_all, name = "store.find")]
    pub(crate) async fn find(&self, filter: DfExpr, limit: Option<usize>) -> Result<Vec<MemoryItem>, MemoryError> {
        let mut query = self.memories.query().only_if_expr(filter).select(Select::columns(&ITEM_COLUMNS[..]));
        if let Some(limit) = limit {
            query = query.limit(limit);
        }
        let batches: Vec<RecordBatch> = query.execute().await?.try_collect().await?;
        let mut out = Vec::new();
        for batch in &batches {
            out.extend(items_from_batch(batch)?);
        }
        Ok(out)
    }

    /// Every memory matching `filter` with its vector, or `None` when there are more than `cap` (then a vector
    /// search is the cheaper way).
    #[instrument(skip_all, name = "store.scope_rows")]
    pub(crate) async fn scope_rows(&self, filter: DfExpr, cap: usize) -> Result<Option<Vec<Row>>, MemoryError> {
        let mut columns = ITEM_COLUMNS.to_vec();
        columns.push("vector");
        let batches: Vec<RecordBatch> = self
            .memories
            .query()
            .only_if_expr(filter)
            .select(Select::columns(&columns[..]))
            .limit(cap + 1)
            .execute()
            .await?
            .try_collect()
            .await?;
        if batches.iter().map(RecordBatch::num_rows).sum::<usize>() > cap {
            return Ok(None);
        }
        let mut rows = Vec::new();
        for batch in &batches {
            rows.extend(self.rows_from_batch(batch)?);
        }
        Ok(Some(rows))
    }

    /// The stored vector of memory `id`.
    pub(crate) async fn vector(&self, id: &str) -> Result<Vec<f32>, MemoryError> {
        self.scope_rows(col("id").eq(lit(id.to_string())), 1)
            .await?
            .and_then(|mut rows| rows.pop())
            .map(|row| row.vector)
            .ok_or_else(|| MemoryError::NotFound(id.to_string()))
    }

    /// The `k` memories nearest to `vector` among those matching `filter`, nearest first, with cosine similarity.
    #[instrument(skip_all, name = "store.nearest", fields(k))]
    pub(crate) async fn nearest(
        &self,
        vector: &[f32],
        filter: DfExpr,
        k: usize,
    ) -> Result<Vec<(MemoryItem, f32)>, MemoryError> {
        let batches: Vec<RecordBatch> = self
            .memories
            .query()
            .nearest_to(vector)?
            .distance_type(DistanceType::Cosine)
            .only_if_expr(filter)
            .select(Select::columns(&HIT_COLUMNS[..]))
            .limit(k)
            .execute()
            .await?
            .try_collect()
            .await?;
        let mut out = Vec::new();
        for batch in &batches {
            let distances = f32_col(batch, "_distance")?;
            for (i, item) in items_from_batch(batch)?.into_iter().enumerate() {
                out.push((item, 1.0 - distances.value(i)));
            }
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(out)
    }

    /// The `k` memories matching `filter` with the best BM25 for `query` by the full-text index (rows written since
    /// the index was last refreshed are searched without it), best first, with their vectors.
    #[instrument(skip_all, name = "store.full_text", fields(k))]
    pub(crate) async fn full_text(
        &self,
        query: &str,
        filter: DfExpr,
        k: usize,
    ) -> Result<Vec<(Row, f32)>, MemoryError> {
        let search = FullTextSearchQuery::new(query.to_string())
            .with_column("text".to_string())
            .map_err(|e| MemoryError::Corrupt(format!("full-text search on column text: {e}")))?;
        let mut columns = ITEM_COLUMNS.to_vec();
        columns.extend(["vector", "_score"]);
        let batches: Vec<RecordBatch> = self
            .memories
            .query()
            .full_text_search(search)
            .only_if_expr(filter)
            .select(Select::columns(&columns[..]))
            .limit(k)
            .execute()
            .await?
            .try_collect()
            .await?;
        let mut out = Vec::new();
        for batch in &batches {
            let scores = f32_col(batch, "_score")?;
            for (i, row) in self.rows_from_batch(batch)?.into_iter().enumerate() {
                out.push((row, scores.value(i)));
            }
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(out)
    }

    /// Memories with their vectors from a batch that has the item columns and `vector`.
    fn rows_from_batch(&self, batch: &RecordBatch) -> Result<Vec<Row>, MemoryError> {
        let vectors = batch
            .column_by_name("vector")
            .and_then(|c| c.as_any().downcast_ref::<FixedSizeListArray>())
            .ok_or_else(|| MemoryError::Corrupt("column vector is missing or not a vector".into()))?;
        let values = vectors
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .ok_or_else(|| MemoryError::Corrupt("vectors are not f32".into()))?;
        Ok(items_from_batch(batch)?
            .into_iter()
            .enumerate()
            .map(|(i, item)| Row { item, vector: values.values()[i * self.dim..(i + 1) * self.dim].to_vec() })
            .collect())
    }

    /// Deletes the memories matching `filter`; returns how many.
    #[instrument(skip_all, name = "store.delete")]
    pub(crate) async fn delete(&self, filter: &DfExpr) -> Result<usize, MemoryError> {
        let _write = self.gate.lock().await;
        Ok(self.memories.delete(filter).await?.num_deleted_rows as usize)
    }

    /// The owner ids of every memory.
    #[instrument(skip_all, name = "store.owners")]
    pub(crate) async fn owners(&self) -> Result<Vec<Scope>, MemoryError> {
        let batches: Vec<RecordBatch> = self
            .memories
            .query()
            .select(Select::columns(&["user_id", "agent_id", "run_id"]))
            .execute()
            .await?
            .try_collect()
            .await?;
        let mut out = Vec::new();
        for batch in &batches {
            let (user, agent, run) =
                (string_col(batch, "user_id")?, string_col(batch, "agent_id")?, string_col(batch, "run_id")?);
            out.extend((0..batch.num_rows()).map(|i| Scope {
                user_id: opt(user, i),
                agent_id: opt(agent, i),
                run_id: opt(run, i),
            }));
        }
        Ok(out)
    }

    /// Number of memories in the table.
    pub(crate) async fn count(&self) -> Result<usize, MemoryError> {
        Ok(self.memories.count_rows(None).await?)
    }

    /// Appends history entries; `scopes[i]` is the owner of `entries[i]`'s memory.
    #[instrument(skip_all, name = "store.history_append", fields(n = entries.len()))]
    pub(crate) async fn append_history(&self, entries: &[(HistoryEntry, Scope)]) -> Result<(), MemoryError> {
        if entries.is_empty() {
            return Ok(());
        }
        let strings = |f: &dyn Fn(&(HistoryEntry, Scope)) -> Option<&str>| -> ArrayRef {
            let mut b = StringBuilder::new();
            entries.iter().for_each(|e| b.append_option(f(e)));
            Arc::new(b.finish())
        };
        let mut at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut deleted = BooleanBuilder::new();
        for (e, _) in entries {
            at.append_value(e.created_at.timestamp_micros());
            deleted.append_value(e.is_deleted);
        }
        let columns: Vec<ArrayRef> = vec![
            strings(&|(e, _)| Some(e.id.as_str())),
            strings(&|(e, _)| Some(e.memory_id.as_str())),
            strings(&|(_, s)| s.user_id.as_deref()),
            strings(&|(_, s)| s.agent_id.as_deref()),
            strings(&|(_, s)| s.run_id.as_deref()),
            strings(&|(e, _)| e.old_memory.as_deref()),
            strings(&|(e, _)| e.new_memory.as_deref()),
            strings(&|(e, _)| Some(e.event.as_str())),
            Arc::new(at.finish()),
            strings(&|(e, _)| e.actor.as_deref()),
            Arc::new(deleted.finish()),
        ];
        let batch = RecordBatch::try_new(history_schema(), columns)?;
        self.history_appends.append(batch).await
    }

    /// History of one memory, oldest first.
    #[instrument(skip_all, name = "store.history")]
    pub(crate) async fn history(&self, memory_id: &str) -> Result<Vec<HistoryEntry>, MemoryError> {
        let batches: Vec<RecordBatch> = self
            .history
            .query()
            .only_if_expr(col("memory_id").eq(lit(memory_id.to_string())))
            .execute()
            .await?
            .try_collect()
            .await?;
        let mut out = Vec::new();
        for batch in &batches {
            out.extend(history_from_batch(batch)?);
        }
        // Stable: entries with the same timestamp keep their storage (insertion) order.
        out.sort_by_key(|e| e.created_at);
        Ok(out)
    }

    /// Deletes the memories with these ids; returns how many.
    pub(crate) async fn delete_ids(&self, ids: &[String]) -> Result<usize, MemoryError> {
        let _write = self.gate.lock().await;
        delete_by_ids(&self.memories, ids).await
    }

    /// Deletes the history entries of memories owned by `scope` (by entry id, like [`LanceStore::delete_ids`]);
    /// returns how many.
    pub(crate) async fn delete_history(&self, scope: &Scope) -> Result<usize, MemoryError> {
        let _write = self.gate.lock().await;
        let ids = ids_in(&self.history, scope).await?;
        delete_by_ids(&self.history, &ids).await
    }

    /// Deletes every memory and every history entry.
    pub(crate) async fn clear(&self) -> Result<(), MemoryError> {
        let _write = self.gate.lock().await;
        self.memories.delete(&lit(true)).await?;
        self.history.delete(&lit(true)).await?;
        Ok(())
    }

    /// Compacts small writes into larger files and keeps the indexes current: the `user_id` index and the
    /// full-text index on `text` are created once the table is big enough for them to pay.
    #[instrument(skip_all, name = "store.optimize")]
    pub(crate) async fn optimize(&self) -> Result<(), MemoryError> {
        let _write = self.gate.lock().await;
        let indices = self.memories.list_indices().await?;
        let has = |column: &str| indices.iter().any(|i| i.columns == [column]);
        if (!has("user_id") || !has("text")) && self.count().await? >= INDEX_AT_ROWS {
            if !has("user_id") {
                self.memories.create_index(&["user_id"], Index::BTree(Default::default())).execute().await?;
            }
            if !has("text") {
                self.memories.create_index(&["text"], Index::FTS(keyword::fts_params())).execute().await?;
            }
        }
        self.memories.optimize(OptimizeAction::All).await?;
        self.history.optimize(OptimizeAction::All).await?;
        Ok(())
    }

    /// Makes deleted rows unrecoverable: rewrites every data file that still holds a deleted row, rebuilds the
    /// full-text index from the live rows (its vocabulary would keep deleted words), and removes every older
    /// version of both tables (and of `also`) with the files only they used. Returns the table versions removed.
    #[instrument(skip_all, name = "store.purge")]
    pub(crate) async fn purge(&self, also: &[&Table]) -> Result<PurgeStats, MemoryError> {
        let _write = self.gate.lock().await;
        let compact = || OptimizeAction::Compact {
            options: CompactionOptions {
                materialize_deletions: true,
                materialize_deletions_threshold: 0.0,
                ..Default::default()
            },
            remap_options: None,
        };
        // Files no version references are removed only when older than this: a concurrent writer's files in
        // flight are never touched, while our own old versions go at once.
        let prune = || OptimizeAction::Prune {
            older_than: Some(chrono::Duration::zero()),
            delete_unverified: Some(false),
            error_if_tagged_old_versions: Some(true),
        };
        let mut stats = PurgeStats::default();
        for table in [&self.memories, &self.history].into_iter().chain(also.iter().copied()) {
            table.optimize(compact()).await?;
            // Indexes are rebuilt from the live rows: the full-text vocabulary would keep deleted words, the
            // owner index deleted owners.
            for index in table.list_indices().await? {
                let rebuilt = match index.columns.as_slice() {
                    [c] if c == "text" => Index::FTS(keyword::fts_params()),
                    [c] if c == "user_id" => Index::BTree(Default::default()),
                    _ => continue,
                };
                table.create_index(&index.columns, rebuilt).replace(true).execute().await?;
            }
            let removed = table.optimize(prune()).await?;
            if let Some(p) = removed.prune {
                stats.versions += p.old_versions as usize;
                stats.bytes += p.bytes_removed;
            }
        }
        Ok(stats)
    }
}

fn string_col<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, MemoryError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| MemoryError::Corrupt(format!("column {name} is missing or not text")))
}

fn f32_col<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Float32Array, MemoryError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Float32Array>())
        .ok_or_else(|| MemoryError::Corrupt(format!("column {name} is missing or not f32")))
}

/// The ids of the rows of `table` that `scope` owns.
pub(crate) async fn ids_in(table: &Table, scope: &Scope) -> Result<Vec<String>, MemoryError> {
    let batches: Vec<RecordBatch> = table
        .query()
        .only_if_expr(scope_expr(scope))
        .select(Select::columns(&["id"]))
        .execute()
        .await?
        .try_collect()
        .await?;
    let mut ids = Vec::new();
    for batch in &batches {
        let id = string_col(batch, "id")?;
        ids.extend((0..batch.num_rows()).map(|i| id.value(i).to_string()));
    }
    Ok(ids)
}

/// Deletes the rows of `table` with these ids, a chunk of ids per delete; returns how many.
pub(crate) async fn delete_by_ids(table: &Table, ids: &[String]) -> Result<usize, MemoryError> {
    let mut deleted = 0;
    for chunk in ids.chunks(DELETE_CHUNK) {
        let list = chunk.iter().map(|id| lit(id.clone())).collect();
        deleted += table.delete(&col("id").in_list(list, false)).await?.num_deleted_rows as usize;
    }
    Ok(deleted)
}

fn time_col<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a TimestampMicrosecondArray, MemoryError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .ok_or_else(|| MemoryError::Corrupt(format!("column {name} is missing or not a timestamp")))
}

fn opt(array: &StringArray, i: usize) -> Option<String> {
    array.is_valid(i).then(|| array.value(i).to_string())
}

fn time(array: &TimestampMicrosecondArray, i: usize) -> Result<DateTime<Utc>, MemoryError> {
    DateTime::from_timestamp_micros(array.value(i)).ok_or_else(|| MemoryError::Corrupt("timestamp out of range".into()))
}

fn items_from_batch(batch: &RecordBatch) -> Result<Vec<MemoryItem>, MemoryError> {
    let [id, text, hash, user, agent, run, role, meta] =
        ["id", "text", "hash", "user_id", "agent_id", "run_id", "role", "metadata"].map(|n| string_col(batch, n));
    let (id, text, hash, user, agent, run, role, meta) = (id?, text?, hash?, user?, agent?, run?, role?, meta?);
    let (created, updated) = (time_col(batch, "created_at")?, time_col(batch, "updated_at")?);
    let expires = time_col(batch, "expires_at")?;
    (0..batch.num_rows())
        .map(|i| {
            let metadata: Map<String, Value> = serde_json::from_str(meta.value(i))
                .map_err(|e| MemoryError::Corrupt(format!("metadata of memory {}: {e}", id.value(i))))?;
            Ok(MemoryItem {
                id: id.value(i).to_string(),
                memory: text.value(i).to_string(),
                hash: hash.value(i).to_string(),
                scope: Scope { user_id: opt(user, i), agent_id: opt(agent, i), run_id: opt(run, i) },
                role: opt(role, i),
                metadata,
                created_at: time(created, i)?,
                updated_at: time(updated, i)?,
                expiration_date: if expires.is_valid(i) { Some(time(expires, i)?) } else { None },
            })
        })
        .collect()
}

fn history_from_batch(batch: &RecordBatch) -> Result<Vec<HistoryEntry>, MemoryError> {
    let [id, memory_id, old, new, event, actor] =
        ["id", "memory_id", "old", "new", "event", "actor"].map(|n| string_col(batch, n));
    let (id, memory_id, old, new, event, actor) = (id?, memory_id?, old?, new?, event?, actor?);
    let at = time_col(batch, "at")?;
    let deleted = batch
        .column_by_name("is_deleted")
        .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
        .ok_or_else(|| MemoryError::Corrupt("column is_deleted is missing".into()))?;
    (0..batch.num_rows())
        .map(|i| {
            Ok(HistoryEntry {
                id: id.value(i).to_string(),
                memory_id: memory_id.value(i).to_string(),
                old_memory: opt(old, i),
                new_memory: opt(new, i),
                event: EventKind::parse(event.value(i))?,
                created_at: time(at, i)?,
                actor: opt(actor, i),
                is_deleted: deleted.value(i),
            })
        })
        .collect()
}
