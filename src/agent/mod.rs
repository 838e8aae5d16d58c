//! The tour-booking agent: the property catalog, a deterministic parser of callers' words, the planner's state and
//! dialogue policy, the tools (answers, open slots, bookings), and the agent's use of memory.

mod bookings;
mod catalog;
mod confirmations;
mod dialogue;
mod memory_service;
mod memory_writer;
mod office;
mod parser;
mod phrases;
mod planner;
mod state;
mod tools;
mod wording;

pub use bookings::{confirmation_code, BookOutcome, Booking, BookingStore, MoveOutcome};
pub use catalog::{Catalog, Property};
pub use confirmations::Notice;
pub use dialogue::{Calendar, Commit, Dialogue, Step};
pub use memory_service::{preference_text, BookingEvent, MemoryService, UserContext, AGENT_ID};
pub use office::{parse_office_time, Cancelled, Office};
pub use parser::{parse, words_to_numbers, Parsed, TimeRequest, Topic};
pub use phrases::Phrases;
pub use planner::{AgentConfig, AgentPlanner, Reply};
pub use state::{Pets, PlannerState, Slot, Stage, TourType};
pub use tools::{answer, spoken_time, ToolEvent, Tools};
pub use wording::{Worded, Wording};

use crate::memory::MemoryError;

/// Everything that can go wrong in the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// `data/properties.json` is malformed.
    #[error("property catalog is invalid: {0}")]
    Catalog(String),
    /// The bookings table failed or holds bad data.
    #[error("bookings store error: {0}")]
    Bookings(String),
    /// LanceDB failed.
    #[error("bookings store error: {0}")]
    Store(#[from] lancedb::Error),
    /// Memory failed where it could not be skipped.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// Not a confirmation code.
    #[error("{0:?} is not a confirmation code: codes are 4 to 16 letters and digits, as read to the caller")]
    InvalidCode(String),
    /// Confirmation emails cannot be set up.
    #[error(transparent)]
    Notify(#[from] crate::notify::NotifyError),
    /// `greet` after the call's first turn.
    #[error("the call has already been greeted")]
    AlreadyGreeted,
}
