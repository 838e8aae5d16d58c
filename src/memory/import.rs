//! The JSONL import format (`tourdesk memory import` / `export`): one memory, or one exchange, a line.

use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::types::{AddInput, EventKind, Message, NewMemory, Scope};
use super::{Memory, MemoryError};

/// One line of an import or export.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImportLine {
    /// One memory's text (or use `messages`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// An exchange: each non-system message becomes a memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Message>>,
    /// Owner ids.
    #[serde(flatten)]
    pub scope: Scope,
    /// Who said `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Stored with every memory of the line.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// When it happened (becomes `created_at`; export writes it so a round trip keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
    /// When it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<DateTime<Utc>>,
}

impl ImportLine {
    /// Parses and checks one line.
    pub fn parse(line: &str) -> Result<Vec<NewMemory>, MemoryError> {
        let l: ImportLine = serde_json::from_str(line)
            .map_err(|e| MemoryError::Invalid(format!("not a JSON object of the import format: {e}")))?;
        let input = match (l.text, l.messages) {
            (Some(text), None) => AddInput::Text(text),
            (None, Some(messages)) => AddInput::Messages(messages),
            _ => return Err(MemoryError::Invalid("needs exactly one of \"text\" or \"messages\"".into())),
        };
        let template = NewMemory {
            scope: l.scope,
            role: l.role,
            metadata: l.metadata,
            timestamp: l.timestamp,
            expiration_date: l.expiration_date,
            ..Default::default()
        };
        let records = input.into_records(template);
        for r in &records {
            r.validate()?;
        }
        Ok(records)
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// Memories stored.
    pub added: usize,
    /// Exact duplicates of stored memories, skipped.
    pub duplicates: usize,
    /// Lines not imported: (line number from 1, why).
    pub skipped: Vec<(usize, String)>,
}

/// Imports JSONL from `reader` in writes of `batch` memories, then compacts the store. A bad line is recorded in
/// the report and skipped; every good line is imported. `progress` is called after each line with the bytes read
/// so far and the memories added so far.
pub async fn import_jsonl<R: BufRead>(
    memory: &Memory,
    reader: R,
    batch: usize,
    mut progress: impl FnMut(u64, usize),
) -> Result<ImportReport, MemoryError> {
    let batch = batch.max(1);
    let mut report = ImportReport::default();
    let (mut pending, mut bytes) = (Vec::new(), 0u64);
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| MemoryError::Invalid(format!("cannot read line {}: {e}", n + 1)))?;
        bytes += line.len() as u64 + 1;
        if !line.trim().is_empty() {
            match ImportLine::parse(&line) {
                Ok(records) => pending.extend(records),
                Err(e) => report.skipped.push((n + 1, e.to_string())),
            }
        }
        if pending.len() >= batch {
            store(memory, std::mem::take(&mut pending), &mut report).await?;
        }
        progress(bytes, report.added);
    }
    if !pending.is_empty() {
        store(memory, pending, &mut report).await?;
        progress(bytes, report.added);
    }
    memory.optimize().await?;
    Ok(report)
}

async fn store(memory: &Memory, records: Vec<NewMemory>, report: &mut ImportReport) -> Result<(), MemoryError> {
    for e in memory.add_many(records, Some("import")).await? {
        match e.event {
            EventKind::Add => report.added += 1,
            _ => report.duplicates += 1,
        }
    }
    Ok(())
}
