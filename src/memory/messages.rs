//! The message log: what was said in each session, word for word and in order, kept apart from memories (as mem0
//! keeps a session's recent messages apart from the facts it extracts). Memories hold what is true about a user;
//! the log holds the conversation, so an agent's own sentences are never returned as facts about the caller.
//!
//! Rows are owned like memories (`user_id`, `agent_id`, `run_id` = the session), so `forget` and `reset` reach
//! them too.

use std::sync::Arc;

use arrow_array::builder::{StringBuilder, TimestampMicrosecondBuilder, UInt32Builder};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use lancedb::expr::lit;
use lancedb::query::{ExecutableQuery, QueryBase};
use lancedb::Table;
use serde::Serialize;
use tracing::instrument;

use super::group::Appends;
use super::store::{connect, ids_in, open_or_create, scope_expr};
use super::types::{Message, Scope};
use super::MemoryError;

/// Name of the message log table, beside the memories.
const TABLE: &str = "messages";

/// One logged message.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LoggedMessage {
    /// Row id (UUID).
    pub id: String,
    /// Session (mem0's `run_id`).
    pub run_id: String,
    /// Who the session was with.
    pub user_id: Option<String>,
    /// The agent that spoke.
    pub agent_id: Option<String>,
    /// `user` or `assistant`.
    pub role: String,
    /// What was said.
    pub content: String,
    /// Turn number within the session (both messages of an exchange share it).
    pub turn: u32,
    /// When it was logged.
    pub created_at: DateTime<Utc>,
}

/// The message log table. Cheap to clone.
#[derive(Clone)]
pub struct MessageLog {
    table: Table,
    /// This process's writes, one at a time (see the memory store's write gate).
    gate: Arc<tokio::sync::Mutex<()>>,
    /// Appends, committed together (see [`Appends`]).
    appends: Arc<Appends>,
}

fn schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("id", false),
        text("run_id", false),
        text("user_id", true),
        text("agent_id", true),
        text("role", false),
        text("content", false),
        Field::new("turn", DataType::UInt32, false),
        Field::new("created_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
    ]))
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, MemoryError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| MemoryError::Corrupt(format!("message log column {name} is missing or of the wrong type")))
}

fn rows(batch: &RecordBatch) -> Result<Vec<LoggedMessage>, MemoryError> {
    let (id, run, user, agent, role, content) = (
        column::<StringArray>(batch, "id")?,
        column::<StringArray>(batch, "run_id")?,
        column::<StringArray>(batch, "user_id")?,
        column::<StringArray>(batch, "agent_id")?,
        column::<StringArray>(batch, "role")?,
        column::<StringArray>(batch, "content")?,
    );
    let turn = column::<UInt32Array>(batch, "turn")?;
    let at = column::<TimestampMicrosecondArray>(batch, "created_at")?;
    let opt = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_string());
    (0..batch.num_rows())
        .map(|i| {
            Ok(LoggedMessage {
                id: id.value(i).into(),
                run_id: run.value(i).into(),
                user_id: opt(user, i),
                agent_id: opt(agent, i),
                role: role.value(i).into(),
                content: content.value(i).into(),
                turn: turn.value(i),
                created_at: DateTime::from_timestamp_micros(at.value(i))
                    .ok_or_else(|| MemoryError::Corrupt("message log time out of range".into()))?,
            })
        })
        .collect()
}

/// Conversation order: by time, then turn, the caller before the agent within a turn.
fn sort(messages: &mut [LoggedMessage]) {
    messages.sort_by(|a, b| {
        (a.created_at, a.turn, a.role != "user", &a.id).cmp(&(b.created_at, b.turn, b.role != "user", &b.id))
    });
}

impl MessageLog {
    /// Opens (or creates) the log in the LanceDB at `uri`.
    pub(crate) async fn open(uri: &str) -> Result<Self, MemoryError> {
        let db = connect(uri).await?;
        let table = open_or_create(&db, TABLE, schema()).await?;
        let gate = Arc::<tokio::sync::Mutex<()>>::default();
        let appends = Arc::new(Appends::new(table.clone(), gate.clone()));
        Ok(Self { table, gate, appends })
    }

    /// The table, for purges.
    pub(crate) fn table(&self) -> &Table {
        &self.table
    }

    /// Appends the non-empty, non-system messages of one turn of session `scope.run_id`, in order.
    #[instrument(skip_all, name = "messages.append", fields(n = messages.len()))]
    pub async fn append(&self, scope: &Scope, turn: u32, messages: &[Message]) -> Result<usize, MemoryError> {
        scope.validate()?;
        let run_id = scope
            .run_id
            .as_deref()
            .ok_or_else(|| MemoryError::Invalid("a logged message needs the session's run_id".into()))?;
        let kept: Vec<&Message> =
            messages.iter().filter(|m| m.role != "system" && !m.content.trim().is_empty()).collect();
        if kept.is_empty() {
            return Ok(0);
        }
        let strings = |f: &dyn Fn(&Message) -> Option<String>| -> ArrayRef {
            let mut b = StringBuilder::new();
            kept.iter().for_each(|m| b.append_option(f(m)));
            Arc::new(b.finish())
        };
        let now = Utc::now().timestamp_micros();
        let mut at = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut turns = UInt32Builder::new();
        for _ in &kept {
            at.append_value(now);
            turns.append_value(turn);
        }
        let columns = vec![
            strings(&|_| Some(uuid::Uuid::new_v4().to_string())),
            strings(&|_| Some(run_id.to_string())),
            strings(&|_| scope.user_id.clone()),
            strings(&|_| scope.agent_id.clone()),
            strings(&|m| Some(m.role.clone())),
            strings(&|m| Some(m.content.clone())),
            Arc::new(turns.finish()) as ArrayRef,
            Arc::new(at.finish()),
        ];
        let batch = RecordBatch::try_new(schema(), columns)?;
        self.appends.append(batch).await?;
        Ok(kept.len())
    }

    /// Every message in the scope (a session, a user, an agent), in conversation order; with `last`, only the last
    /// that many.
    #[instrument(skip_all, name = "messages.list")]
    pub async fn list(&self, scope: &Scope, last: Option<usize>) -> Result<Vec<LoggedMessage>, MemoryError> {
        scope.validate()?;
        let batches: Vec<RecordBatch> =
            self.table.query().only_if_expr(scope_expr(scope)).execute().await?.try_collect().await?;
        let mut out = Vec::new();
        for batch in &batches {
            out.extend(rows(batch)?);
        }
        sort(&mut out);
        if let Some(n) = last {
            out.drain(..out.len().saturating_sub(n));
        }
        Ok(out)
    }

    /// Ids of the messages in the scope (for deletes by id, which keep owners out of the transaction log).
    pub(crate) async fn ids(&self, scope: &Scope) -> Result<Vec<String>, MemoryError> {
        ids_in(&self.table, scope).await
    }

    /// Deletes every message.
    pub(crate) async fn clear(&self) -> Result<(), MemoryError> {
        let _write = self.gate.lock().await;
        self.table.delete(&lit(true)).await?;
        Ok(())
    }
}
