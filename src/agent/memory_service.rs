//! The tour domain's view of the memory engine: exchanges and planner state in, a caller's context out.
//!
//! Preferences are stored one memory per slot with `{"kind": "preference", "slot": …, "value": …}` metadata, so a
//! later call restores them exactly (no re-parsing of text) and a changed slot updates its memory, with history.

use std::collections::HashMap;

use chrono::Utc;
use serde_json::{json, Map, Value};
use tracing::instrument;

use super::bookings::Booking;
use super::catalog::Catalog;
use super::state::{PlannerState, Slot};
use super::tools::{money, unit_name};
use crate::memory::{
    AddInput, AddRequest, Memory, MemoryError, MemoryEvent, MemoryItem, Message, MetadataFilter, NewMemory, Scope,
    SearchHit, SearchRequest, MAX_TEXT_BYTES,
};

/// Agent id recorded on every memory the agent writes.
pub const AGENT_ID: &str = "tourdesk";

/// What is remembered about a caller.
#[derive(Debug, Clone, Default)]
pub struct UserContext {
    /// Remembered slots, as a state.
    pub state: PlannerState,
    /// Which slots were remembered.
    pub known: Vec<Slot>,
    /// The memory holding each remembered slot.
    pub slot_memories: HashMap<Slot, String>,
    /// Recent memories besides preferences (what the caller said, bookings), newest first.
    pub recent: Vec<MemoryItem>,
}

/// What happened to a booking, as the caller's memory records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingEvent {
    /// The tour was booked.
    Booked,
    /// The tour was moved; it started at this time before.
    Moved {
        /// The old start.
        from: chrono::NaiveDateTime,
    },
    /// The tour was cancelled (by whom is said beside it).
    Cancelled,
    /// A booking was tried and the slot was taken.
    Failed,
}

impl BookingEvent {
    fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::Moved { .. } => "moved",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

/// Memory for the tour agent. Cheap to clone.
#[derive(Clone)]
pub struct MemoryService {
    memory: Memory,
}

fn preference_filter(slot: Option<Slot>) -> MetadataFilter {
    let mut f = Map::new();
    f.insert("kind".into(), json!("preference"));
    if let Some(slot) = slot {
        f.insert("slot".into(), json!(slot.as_str()));
    }
    MetadataFilter::parse(&Value::Object(f)).expect("static filter")
}

/// The longest prefix of `text` within `max` bytes, cut on a character boundary.
fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let end = (0..=max).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
    &text[..end]
}

/// Words that carry nothing about the caller on their own: answers, courtesies and fillers.
const EMPTY_WORDS: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "no",
    "nope",
    "nah",
    "ok",
    "okay",
    "sure",
    "please",
    "thanks",
    "thank",
    "you",
    "that",
    "that's",
    "thats",
    "is",
    "it",
    "all",
    "fine",
    "good",
    "great",
    "sounds",
    "perfect",
    "right",
    "correct",
    "uh",
    "um",
    "hmm",
    "hi",
    "hello",
    "hey",
    "bye",
    "goodbye",
    "so",
    "much",
    "the",
    "one",
    "works",
    "oh",
    "well",
    "alright",
    "book",
    "go",
    "ahead",
    "do",
    "confirm",
    "proceed",
    "absolutely",
    "definitely",
    "exactly",
    "cool",
    "nice",
    "awesome",
    "wonderful",
    "a",
    "i",
    "i'll",
    "will",
    "would",
    "be",
    "me",
    "for",
    "it's",
    "this",
    "now",
    "then",
];

/// Whether an utterance says something about the caller worth remembering: at least three words, not all of them
/// answers, courtesies or fillers ("Yes please", "No, that's all, thanks" are not).
fn says_something(text: &str) -> bool {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.len() >= 3 && words.iter().any(|w| !EMPTY_WORDS.contains(&w.as_str()))
}

fn slot_from(name: &str) -> Option<Slot> {
    Slot::ALL.into_iter().find(|s| s.as_str() == name)
}

/// The sentence stored for a slot ("Interested in Hudson 360").
pub fn preference_text(state: &PlannerState, slot: Slot, catalog: &Catalog) -> Option<String> {
    Some(match slot {
        Slot::Property => {
            let id = state.property.as_deref()?;
            format!("Interested in {}", catalog.property(id).map_or(id, |p| p.name.as_str()))
        }
        Slot::Bedrooms => format!("Wants a {} apartment", unit_name(state.bedrooms?)),
        Slot::Pets => {
            let pets = state.pets?;
            if pets.none() {
                "Has no pets".into()
            } else {
                format!("Has {}", pets.spoken())
            }
        }
        Slot::Budget => format!("Budget is about {} a month", money(state.budget?)),
        Slot::MoveIn => format!("Wants to move in on {}", state.move_in?.format("%B %-d, %Y")),
        Slot::TourType => format!("Prefers {} tour", state.tour_type?.with_article()),
        Slot::TourTime => format!("Tour time {}", state.tour_time?.format("%Y-%m-%d %H:%M")),
        Slot::Name => format!("Name is {}", state.name.as_deref()?),
        Slot::Email => format!("Email is {}", state.email.as_deref()?),
        Slot::Phone => format!("Phone is {}", state.phone.as_deref()?),
    })
}

impl MemoryService {
    /// Wraps the memory engine.
    pub fn new(memory: Memory) -> Self {
        Self { memory }
    }

    /// The engine underneath.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// Logs one exchange in the session's message log, and remembers what the caller said when it says
    /// something about them (not a bare "yes" or "thanks"). The agent's own words go to the log only: they are
    /// never a fact about the caller. Returns the memories made.
    #[instrument(skip_all, name = "memory_service.store_conversation")]
    pub async fn store_conversation_memory(
        &self,
        user_id: &str,
        session_id: &str,
        turn: u32,
        user_text: &str,
        agent_text: &str,
    ) -> Result<Vec<MemoryEvent>, MemoryError> {
        let scope =
            Scope { user_id: Some(user_id.into()), agent_id: Some(AGENT_ID.into()), run_id: Some(session_id.into()) };
        // An over-long utterance (a runaway transcript) is kept in part rather than refused whole; the flight
        // recorder has it in full.
        let messages: Vec<Message> = [("user", user_text), ("assistant", agent_text)]
            .into_iter()
            .map(|(role, text)| Message { role: role.into(), content: clip(text, MAX_TEXT_BYTES).into() })
            .collect();
        self.memory.messages().append(&scope, turn, &messages).await?;
        if !says_something(user_text) {
            return Ok(Vec::new());
        }
        let mut metadata = Map::new();
        metadata.insert("kind".into(), json!("said"));
        metadata.insert("turn".into(), json!(turn));
        metadata.insert("at".into(), json!(Utc::now().to_rfc3339()));
        if user_text.len() > MAX_TEXT_BYTES {
            metadata.insert("truncated".into(), json!(true));
        }
        self.memory
            .add(AddRequest {
                input: AddInput::Messages(vec![messages[0].clone()]),
                scope,
                metadata,
                actor: Some("caller".into()),
                ..Default::default()
            })
            .await
    }

    /// Records a booking's outcome as a memory of its caller ("Booked a virtual tour of Hudson 360 for Friday,
    /// December 4 at 11:00 AM (confirmation ABC123)"), with the code, property, tour type, start and who did it in
    /// the metadata (`kind: booking`). One memory per confirmation code: a move or a cancellation updates it, so
    /// its history is the tour's story. A failed attempt is a memory of its own.
    #[instrument(skip_all, name = "memory_service.remember_booking")]
    pub async fn remember_booking(
        &self,
        booking: &Booking,
        event: BookingEvent,
        by: &str,
        catalog: &Catalog,
    ) -> Result<MemoryEvent, MemoryError> {
        let property = catalog.property(&booking.property).map_or(booking.property.as_str(), |p| p.name.as_str());
        let at = |t: chrono::NaiveDateTime| t.format("%A, %B %-d at %-I:%M %p").to_string();
        let when = at(booking.start);
        let code = &booking.confirmation;
        let (article, kind) = (booking.tour_type.with_article(), booking.tour_type.spoken());
        let text = match event {
            BookingEvent::Booked => format!("Booked {article} tour of {property} for {when} (confirmation {code})"),
            BookingEvent::Moved { from } => format!(
                "Booked {article} tour of {property} for {when} (confirmation {code}), moved by {by} from {}",
                at(from)
            ),
            BookingEvent::Cancelled => {
                format!("Tour cancelled by {by}: the {kind} tour of {property} on {when} (confirmation {code})")
            }
            BookingEvent::Failed => {
                format!("Tried to book {article} tour of {property} for {when}, but another caller had just taken it")
            }
        };
        let metadata = json!({
            "kind": "booking",
            "event": event.as_str(),
            "confirmation": code,
            "property": booking.property,
            "tour_type": kind,
            "start": booking.start.format("%Y-%m-%dT%H:%M").to_string(),
            "by": by,
        });
        let metadata = metadata.as_object().cloned().unwrap_or_default();
        let scope = Scope::user(booking.user_id.as_str());
        if event != BookingEvent::Failed && event != BookingEvent::Booked {
            let filter = MetadataFilter::parse(&json!({"kind": "booking", "confirmation": code}))?;
            if let Some(earlier) = self.memory.get_all(&scope, &filter, 1).await?.pop() {
                return self.memory.update(&earlier.id, &text, Some(metadata), Some(by)).await;
            }
        }
        let req = AddRequest {
            input: AddInput::Text(text),
            scope: Scope { user_id: Some(booking.user_id.clone()), agent_id: Some(AGENT_ID.into()), run_id: None },
            metadata,
            actor: Some(by.into()),
            ..Default::default()
        };
        Ok(self.memory.add(req).await?.remove(0))
    }

    /// Saves `slots` of the state as preference memories: a slot already remembered is updated, new ones are added
    /// in one write (one embedding pass and commit for all of them, not one apiece). `known` maps slots to their
    /// memory ids and is kept current.
    #[instrument(skip_all, name = "memory_service.save_state", fields(n = slots.len()))]
    pub async fn save_planner_state(
        &self,
        user_id: &str,
        state: &PlannerState,
        slots: &[Slot],
        known: &mut HashMap<Slot, String>,
        catalog: &Catalog,
    ) -> Result<Vec<MemoryEvent>, MemoryError> {
        let mut events = Vec::new();
        let mut new = Vec::new();
        for &slot in slots.iter().filter(|s| s.remembered()) {
            let (Some(text), Some(value)) = (preference_text(state, slot, catalog), state.value(slot)) else {
                continue;
            };
            let metadata = json!({"kind": "preference", "slot": slot.as_str(), "value": value});
            let metadata = metadata.as_object().cloned().unwrap_or_default();
            let updated = match known.get(&slot) {
                Some(id) => match self.memory.update(id, &text, Some(metadata.clone()), Some("planner")).await {
                    Err(MemoryError::NotFound(_)) => None,
                    other => Some(other?),
                },
                None => None,
            };
            match updated {
                Some(event) => {
                    known.insert(slot, event.id.clone());
                    events.push(event);
                }
                None => {
                    let scope = Scope { user_id: Some(user_id.into()), agent_id: Some(AGENT_ID.into()), run_id: None };
                    new.push((slot, NewMemory { text, scope, metadata, ..Default::default() }));
                }
            }
        }
        if !new.is_empty() {
            let (new_slots, records): (Vec<Slot>, Vec<NewMemory>) = new.into_iter().unzip();
            for (slot, event) in new_slots.into_iter().zip(self.memory.add_many(records, Some("planner")).await?) {
                known.insert(slot, event.id.clone());
                events.push(event);
            }
        }
        Ok(events)
    }

    /// Everything remembered about a caller.
    #[instrument(skip_all, name = "memory_service.retrieve_context")]
    pub async fn retrieve_user_context(&self, user_id: &str) -> Result<UserContext, MemoryError> {
        let items = self.memory.get_all(&Scope::user(user_id), &MetadataFilter::All, crate::memory::MAX_LIMIT).await?;
        let mut ctx = UserContext::default();
        let prefs = preference_filter(None);
        // Newest first: the first memory seen for a slot wins.
        for item in items {
            if prefs.matches(&item.metadata) {
                let slot = item.metadata.get("slot").and_then(Value::as_str).and_then(slot_from);
                let value = item.metadata.get("value").cloned();
                if let (Some(slot), Some(value)) = (slot, value) {
                    if !ctx.slot_memories.contains_key(&slot) && ctx.state.set_value(slot, value) {
                        ctx.slot_memories.insert(slot, item.id.clone());
                        ctx.known.push(slot);
                    }
                }
            } else if ctx.recent.len() < 10 {
                ctx.recent.push(item);
            }
        }
        Ok(ctx)
    }

    /// A short summary of what is known about a caller.
    pub async fn get_user_summary(&self, user_id: &str, catalog: &Catalog) -> Result<String, MemoryError> {
        let ctx = self.retrieve_user_context(user_id).await?;
        let facts: Vec<String> = Slot::ALL.iter().filter_map(|s| preference_text(&ctx.state, *s, catalog)).collect();
        Ok(if facts.is_empty() {
            format!("Nothing is remembered about {user_id}.")
        } else {
            format!("{}. {} recent message(s) on record.", facts.join(". "), ctx.recent.len())
        })
    }

    /// Searches a caller's memories.
    pub async fn search(&self, user_id: &str, query: &str, limit: usize) -> Result<Vec<SearchHit>, MemoryError> {
        let mut req = SearchRequest::new(query, Scope::user(user_id));
        req.limit = limit;
        self.memory.search(&req).await
    }

    /// Only the preference memory of one slot, if any (for tests and tools).
    pub async fn slot_memory(&self, user_id: &str, slot: Slot) -> Result<Option<MemoryItem>, MemoryError> {
        Ok(self.memory.get_all(&Scope::user(user_id), &preference_filter(Some(slot)), 1).await?.pop())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_utterances_about_the_caller_are_remembered() {
        for empty in ["Yes please", "No, that's all, thanks.", "Okay sounds good", "yes", "Hi"] {
            assert!(!says_something(empty), "{empty}");
        }
        for said in ["I have a dog", "My budget is around 3000", "We need two bedrooms please"] {
            assert!(says_something(said), "{said}");
        }
    }

    #[test]
    fn clipping_keeps_whole_characters() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("ééé", 3), "é");
        assert_eq!(clip(&"a".repeat(20), 8).len(), 8);
    }
}
