//! The memory engine's vocabulary: scopes, memories, messages, events and history entries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::MemoryError;

/// Longest accepted scope id, in bytes.
pub const MAX_ID_BYTES: usize = 256;
/// Longest accepted memory text, in bytes; longer input is refused, not truncated, so nothing is silently lost.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Largest accepted metadata object, serialised, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Who a memory belongs to. Writes need at least one id; reads match every id that is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Scope {
    /// The person (for a caller: the normalised phone number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The agent that formed the memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// The session (for a call: its call id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

impl Scope {
    /// A scope for one user.
    pub fn user(user_id: impl Into<String>) -> Self {
        Self { user_id: Some(user_id.into()), ..Self::default() }
    }

    /// The same scope narrowed to one session.
    pub fn with_run(mut self, run_id: impl Into<String>) -> Self {
        self.run_id = Some(run_id.into());
        self
    }

    /// Whether no id is set.
    pub fn is_empty(&self) -> bool {
        self.user_id.is_none() && self.agent_id.is_none() && self.run_id.is_none()
    }

    /// The ids that are set, by column name.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("user_id", &self.user_id), ("agent_id", &self.agent_id), ("run_id", &self.run_id)]
            .into_iter()
            .filter_map(|(name, v)| v.as_deref().map(|v| (name, v)))
    }

    /// Checks every id that is set, and that at least one is.
    pub fn validate(&self) -> Result<(), MemoryError> {
        if self.is_empty() {
            return Err(MemoryError::Invalid("at least one of user_id, agent_id or run_id is required".into()));
        }
        for (name, value) in self.fields() {
            if value.trim().is_empty() {
                return Err(MemoryError::Invalid(format!("{name} is empty")));
            }
            if value.len() > MAX_ID_BYTES {
                return Err(MemoryError::Invalid(format!("{name} is longer than {MAX_ID_BYTES} bytes")));
            }
            if value.chars().any(char::is_control) {
                return Err(MemoryError::Invalid(format!("{name} contains control characters")));
            }
        }
        Ok(())
    }
}

/// One stored memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemoryItem {
    /// UUID.
    pub id: String,
    /// The remembered text.
    pub memory: String,
    /// sha256 of the text; equal texts in one scope are stored once.
    pub hash: String,
    /// Owner.
    #[serde(flatten)]
    pub scope: Scope,
    /// Who said it (`user`, `assistant`), for memories made from messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Free-form JSON object.
    pub metadata: Map<String, Value>,
    /// When it was first stored.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it expires: left out of searches and listings from then on (unless asked for), deleted by cleanup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<DateTime<Utc>>,
}

impl MemoryItem {
    /// Whether it has expired at `now`.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expiration_date.is_some_and(|t| t <= now)
    }
}

/// A memory found by a search, with its relevance to the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchHit {
    /// The memory.
    #[serde(flatten)]
    pub item: MemoryItem,
    /// Relevance: the sum of the parts `score_details` lists (about 0 to 2; only the order is meaningful).
    pub score: f32,
    /// The parts of `score`, when the search asked to explain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_details: Option<super::ranking::ScoreDetails>,
}

/// A chat message, as mem0 takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Message {
    /// `user`, `assistant` or `system` (system messages are not remembered).
    pub role: String,
    /// What was said.
    pub content: String,
}

impl AddInput {
    /// The memories this input makes: the text as one (with `template`'s role), or one per non-system message
    /// (with the message's role); each with `template`'s owner, metadata and times.
    pub fn into_records(self, template: NewMemory) -> Vec<NewMemory> {
        match self {
            Self::Text(text) => vec![NewMemory { text, ..template }],
            Self::Messages(messages) => messages
                .into_iter()
                .filter(|m| m.role != "system")
                .map(|m| NewMemory { text: m.content, role: Some(m.role), ..template.clone() })
                .collect(),
        }
    }
}

impl Default for AddInput {
    fn default() -> Self {
        Self::Text(String::new())
    }
}

/// Reads an expiration date as people and mem0 write it: `2030-01-31` (the memory lasts through that day, UTC) or
/// an RFC 3339 time.
pub fn parse_expiration(s: &str) -> Result<DateTime<Utc>, MemoryError> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.succ_opt())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            MemoryError::Invalid(format!("expiration_date {s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"))
        })
}

/// What `add` stores: plain text, or the messages of an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AddInput {
    /// One memory.
    Text(String),
    /// One memory per non-system message, with its role.
    Messages(Vec<Message>),
}

/// A new memory on its way into the store (one line of an import, one message of an add).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewMemory {
    /// The text.
    pub text: String,
    /// Owner.
    pub scope: Scope,
    /// Speaker, for messages.
    pub role: Option<String>,
    /// JSON object.
    pub metadata: Map<String, Value>,
    /// When it happened, when not now (mem0's `timestamp`): becomes its `created_at`.
    pub timestamp: Option<DateTime<Utc>>,
    /// When it expires.
    pub expiration_date: Option<DateTime<Utc>>,
}

/// What happened to a memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventKind {
    /// Stored.
    Add,
    /// Text changed.
    Update,
    /// Removed.
    Delete,
    /// Nothing stored (an exact duplicate already exists).
    None,
}

impl EventKind {
    /// The upper-case name used in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::None => "NONE",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, MemoryError> {
        match s {
            "ADD" => Ok(Self::Add),
            "UPDATE" => Ok(Self::Update),
            "DELETE" => Ok(Self::Delete),
            "NONE" => Ok(Self::None),
            other => Err(MemoryError::Corrupt(format!("unknown history event {other:?}"))),
        }
    }
}

/// The outcome of a write for one memory, as mem0 reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemoryEvent {
    /// The memory's id (for NONE: the existing duplicate).
    pub id: String,
    /// Its text after the event.
    pub memory: String,
    /// What happened.
    pub event: EventKind,
    /// Its text before an update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_memory: Option<String>,
}

impl MemoryEvent {
    /// A NONE event: memory `id` already says `memory`, nothing changed.
    pub fn unchanged(id: &str, memory: &str) -> Self {
        Self { id: id.to_string(), memory: memory.to_string(), event: EventKind::None, previous_memory: None }
    }
}

/// One line of a memory's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistoryEntry {
    /// UUID of the entry.
    pub id: String,
    /// The memory it is about.
    pub memory_id: String,
    /// Text before the event.
    pub old_memory: Option<String>,
    /// Text after the event.
    pub new_memory: Option<String>,
    /// What happened.
    pub event: EventKind,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Who made the change (`user`, `assistant`, `cli`, …), when known.
    pub actor: Option<String>,
    /// Whether the memory was deleted by this event.
    pub is_deleted: bool,
}

/// Checks a memory text: not blank, not over [`MAX_TEXT_BYTES`].
pub(crate) fn validate_text(text: &str) -> Result<(), MemoryError> {
    if text.trim().is_empty() {
        return Err(MemoryError::Invalid("memory text is empty".into()));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(MemoryError::Invalid(format!(
            "memory text is {} bytes; the limit is {MAX_TEXT_BYTES} bytes (split it into smaller memories)",
            text.len()
        )));
    }
    Ok(())
}

/// Checks a metadata object's size.
pub(crate) fn validate_metadata(metadata: &Map<String, Value>) -> Result<(), MemoryError> {
    let size = serde_json::to_string(metadata).map(|s| s.len()).unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err(MemoryError::Invalid(format!("metadata is {size} bytes; the limit is {MAX_METADATA_BYTES}")));
    }
    Ok(())
}

/// Checks that an id is a UUID, so a typo is "invalid id" rather than "not found".
pub(crate) fn validate_id(id: &str) -> Result<(), MemoryError> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| MemoryError::Invalid(format!("{id:?} is not a memory id (a UUID)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_need_an_id_and_reject_control_characters() {
        assert!(Scope::default().validate().is_err());
        assert!(Scope::user("").validate().is_err());
        assert!(Scope::user("a\u{0}b").validate().is_err());
        assert!(Scope::user("x".repeat(MAX_ID_BYTES + 1)).validate().is_err());
        // Quotes and SQL are ordinary characters in an id: they are never spliced into a query.
        assert!(Scope::user("x' OR '1'='1").validate().is_ok());
    }

    #[test]
    fn add_input_accepts_text_or_messages() {
        let text: AddInput = serde_json::from_str(r#""likes cats""#).unwrap();
        assert_eq!(text, AddInput::Text("likes cats".into()));
        let msgs: AddInput = serde_json::from_str(r#"[{"role":"user","content":"hi"}]"#).unwrap();
        assert!(matches!(msgs, AddInput::Messages(m) if m.len() == 1));
    }

    #[test]
    fn texts_and_ids_are_checked() {
        assert!(validate_text("  ").is_err());
        assert!(validate_text(&"a".repeat(MAX_TEXT_BYTES + 1)).is_err());
        assert!(validate_text("fine").is_ok());
        assert!(validate_id("not-a-uuid").is_err());
        assert!(validate_id(&uuid::Uuid::new_v4().to_string()).is_ok());
    }
}
