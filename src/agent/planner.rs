//! `AgentPlanner`: one call's conversation. It reads each transcript, updates the state, answers questions from the
//! tools, offers real open slots, confirms and books; on the first turn it loads what memory knows about the caller,
//! and after every turn it hands the exchange and the state change to the memory writer without waiting.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDateTime, Timelike};
use serde::Serialize;
use serde_json::json;
use tracing::{info_span, warn, Instrument};

use super::bookings::{BookOutcome, Booking, MoveOutcome};
use super::confirmations::{self, Notice};
use super::memory_service::{preference_text, BookingEvent, MemoryService};
use super::memory_writer::MemoryWriter;
use super::parser::{parse, Parsed, TimeRequest};
use super::state::{PlannerState, Slot, Stage, TourType};
use super::tools::{spoken_time, unit_name, ToolEvent, Tools};
use super::wording::Wording;
use super::AgentError;
use crate::notify::{Delivery, Mailer};
use crate::recorder::FlightRecorder;

/// Slots offered at once.
const OFFER: usize = 3;
/// A past tour is asked about ("How was your tour?") for this many days after it.
const ASK_ABOUT_PAST_DAYS: i64 = 60;

/// What a planner needs; shared by every session of a server.
#[derive(Clone)]
pub struct AgentConfig {
    /// Catalog answers, open slots, bookings.
    pub tools: Tools,
    /// Caller memory; `None` runs without it.
    pub memory: Option<MemoryService>,
    /// Folder for flight-recorder files; `None` records nothing.
    pub recordings: Option<PathBuf>,
    /// A fixed "now" (office wall clock) for tests and demos; the local clock otherwise.
    pub now: Option<NaiveDateTime>,
    /// Reply wording by the chat model; `None` speaks the templates as they are.
    pub wording: Option<Wording>,
    /// Confirmation emails (sent over SMTP or kept in the outbox); `None` sends none.
    pub mailer: Option<Mailer>,
}

/// A confirmation code as it is read to a caller: one character at a time ("A 1 B 2 C 3").
fn spelled(code: &str) -> String {
    code.chars().map(String::from).collect::<Vec<_>>().join(" ")
}

impl AgentConfig {
    /// The office's desk over this agent's bookings, catalog and memory.
    pub fn office(&self) -> super::Office {
        super::Office::new(
            self.tools.bookings().clone(),
            self.tools.shared_catalog(),
            self.memory.clone(),
            self.mailer.clone(),
        )
    }
}

/// The agent's answer to one transcript.
#[derive(Debug, Clone, Serialize)]
pub struct Reply {
    /// What to say.
    pub text: String,
    /// The state after this turn.
    pub state: PlannerState,
    /// Slots this turn changed.
    pub changed: Vec<Slot>,
    /// Tools called this turn.
    pub tools: Vec<ToolEvent>,
    /// Time spent reading memory this turn (first turn only), milliseconds.
    pub memory_ms: f64,
    /// Whole turn, milliseconds.
    pub latency_ms: f64,
}

/// One conversation with one caller.
pub struct AgentPlanner {
    config: AgentConfig,
    user_id: String,
    session_id: String,
    state: PlannerState,
    /// The slot the last reply asked for.
    expected: Option<Slot>,
    /// Slots the last reply offered, in the order said.
    offered: Vec<NaiveDateTime>,
    /// A time the caller gave before property and tour type were known.
    pending_time: Option<TimeRequest>,
    /// The caller said no to the read-back; wait for a change before reading it back again.
    awaiting_change: bool,
    turn: usize,
    recorder: Option<Arc<FlightRecorder>>,
    writer: Option<MemoryWriter>,
    /// Spoken calls: the last exchange waits here until the caller has heard the reply (or cut it off).
    hold_exchanges: bool,
    held: Option<HeldExchange>,
    /// The caller's next tour, from the bookings table (or booked in this call).
    upcoming: Option<Booking>,
    /// The last reply asked whether to cancel the upcoming tour.
    confirming_cancel: bool,
    /// The tour being moved: the new time is being chosen or confirmed.
    moving: Option<Booking>,
    /// The next prompt asks whether to keep, move or cancel the upcoming tour.
    ask_keep: bool,
    /// The last reply asked whether to keep, move or cancel the upcoming tour.
    asked_keep: bool,
    /// The caller's most recent tour, when it is over and recent: the greeting asks how it went.
    past: Option<Booking>,
    /// The caller asked to cancel or move a tour that is not on this number: done once they give its code.
    pending: Option<TourAction>,
}

/// A change to a tour waiting for its confirmation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TourAction {
    Cancel,
    Move,
}

/// An exchange not yet written to memory.
struct HeldExchange {
    user: String,
    agent: String,
    turn: usize,
}

impl AgentPlanner {
    /// Starts a call from `user_id` (the key of their memories and tours; a phone number on the phone line);
    /// `session_id` names this call in the message log and the flight recorder.
    pub fn start(config: AgentConfig, user_id: &str, session_id: &str) -> Self {
        let recorder = config.recordings.as_ref().and_then(|dir| match FlightRecorder::create(dir, session_id) {
            Ok(r) => Some(Arc::new(r)),
            Err(e) => {
                warn!(error = %e, dir = %dir.display(), "cannot open the flight recorder; the call goes on unrecorded");
                None
            }
        });
        let planner = Self {
            config,
            user_id: user_id.to_string(),
            session_id: session_id.to_string(),
            state: PlannerState::default(),
            expected: None,
            offered: Vec::new(),
            pending_time: None,
            awaiting_change: false,
            turn: 0,
            recorder,
            writer: None,
            hold_exchanges: false,
            held: None,
            upcoming: None,
            confirming_cancel: false,
            moving: None,
            ask_keep: false,
            asked_keep: false,
            past: None,
            pending: None,
        };
        planner.record("session_start", None, json!({"user_id": user_id}));
        planner
    }

    /// For spoken calls, where the caller can cut a reply off: each exchange is written to memory only once the
    /// next turn starts, the call ends, or [`AgentPlanner::heard`] says how much of the reply was heard. Call it
    /// before the first turn.
    pub fn hold_exchanges(&mut self) {
        self.hold_exchanges = true;
    }

    /// Barge-in: the caller heard only `heard` of the last reply (the sentences played before they spoke). The
    /// exchange is remembered with what was heard, and offers or a question the caller never heard are forgotten.
    pub fn heard(&mut self, heard: &str) {
        let heard = heard.trim();
        if let Some(mut held) = self.held.take() {
            if heard.len() < held.agent.trim().len() {
                self.expected = None;
                self.offered.clear();
            }
            held.agent = heard.to_string();
            self.held = Some(held);
        }
        self.release_held();
    }

    /// Writes the held exchange (if any) to memory.
    fn release_held(&mut self) {
        if let (Some(held), Some(writer)) = (self.held.take(), &self.writer) {
            if !held.agent.is_empty() || !held.user.is_empty() {
                writer.exchange(&held.user, &held.agent, held.turn);
            }
        }
    }

    /// Adds an event to the session's flight recording (voice timings, protocol problems).
    pub fn record_event(&self, kind: &str, duration: Option<std::time::Duration>, data: serde_json::Value) {
        self.record(kind, duration, data);
    }

    /// Opens a call before the caller says anything: loads what memory knows about them and returns the greeting
    /// with the first question (a returning caller hears what is remembered and is not asked it again). Optional:
    /// without it, the first transcript's reply starts with the greeting.
    pub async fn greet(&mut self) -> Result<Reply, AgentError> {
        let span = info_span!("greet", session = %self.session_id);
        async {
            let started = Instant::now();
            let user_id = self.user_id.clone();
            if self.turn > 0 {
                return Err(AgentError::AlreadyGreeted);
            }
            let returning = self.load_caller(&user_id).await;
            let memory_ms = started.elapsed().as_secs_f64() * 1000.0;
            self.turn += 1;
            let mut tools = Vec::new();
            let text = match self.past.take() {
                // A recent tour is asked about first; the usual questions follow the answer.
                Some(past) => format!("{} How was your {}?", self.greeting(returning), self.tour_words(&past)),
                None => format!("{} {}", self.greeting(returning), self.next_prompt(self.now(), &mut tools).await?),
            };
            // The greeting opens the session's message log (it answers nobody, so it is no memory).
            if self.hold_exchanges {
                self.held = Some(HeldExchange { user: String::new(), agent: text.clone(), turn: self.turn });
            } else if let Some(writer) = &self.writer {
                writer.exchange("", &text, self.turn);
            }
            let latency = started.elapsed();
            self.record("reply", Some(latency), json!({"text": text, "memory_ms": memory_ms, "greeting": true}));
            Ok(Reply {
                text,
                state: self.state.clone(),
                changed: Vec::new(),
                tools,
                memory_ms,
                latency_ms: latency.as_secs_f64() * 1000.0,
            })
        }
        .instrument(span)
        .await
    }

    /// The current state.
    pub fn state(&self) -> &PlannerState {
        &self.state
    }

    /// The flight-recorder file of this session, if recording.
    pub fn recording(&self) -> Option<PathBuf> {
        self.recorder.as_ref().map(|r| r.path().to_path_buf())
    }

    fn record(&self, kind: &str, duration: Option<std::time::Duration>, data: serde_json::Value) {
        if let Some(r) = &self.recorder {
            r.record(kind, duration, data);
        }
    }

    /// Words a reworded reply must keep besides its numbers: the caller's name and the buildings' names.
    fn facts_to_keep(&self) -> Vec<String> {
        let catalog = self.config.tools.catalog();
        self.state.name.iter().cloned().chain(catalog.properties.iter().map(|p| p.name.clone())).collect()
    }

    fn now(&self) -> NaiveDateTime {
        self.config.now.unwrap_or_else(|| chrono::Local::now().naive_local())
    }

    fn property_name(&self) -> String {
        let id = self.state.property.as_deref().unwrap_or_default();
        self.config.tools.catalog().property(id).map_or_else(|| id.to_string(), |p| p.name.clone())
    }

    /// Reads one transcript and answers it.
    pub async fn process_transcript(&mut self, text: &str) -> Result<Reply, AgentError> {
        let span = info_span!("turn", session = %self.session_id, turn = self.turn);
        self.turn_inner(text).instrument(span).await
    }

    async fn turn_inner(&mut self, text: &str) -> Result<Reply, AgentError> {
        let started = Instant::now();
        let user_id = self.user_id.clone();
        self.record("transcript", None, json!({"text": text, "turn": self.turn}));
        let before = self.state.clone();
        let mut parts = Vec::new();
        let mut tools = Vec::new();
        let mut memory_ms = 0.0;
        let first_turn = self.turn == 0;
        let mut returning = false;
        if first_turn {
            let t = Instant::now();
            returning = self.load_caller(&user_id).await;
            memory_ms = t.elapsed().as_secs_f64() * 1000.0;
        }
        self.turn += 1;

        let now = self.now();
        let expected_before = self.expected;
        let parsed = parse(text, self.expected, now.date(), self.config.tools.catalog());
        let was_asked_keep = std::mem::take(&mut self.asked_keep);
        let mut wants_cancel = parsed.cancel_tour;
        let mut wants_move = parsed.move_tour;
        if let Some(code) = &parsed.code {
            if let Some(action) = self.find_by_code(code, now, &mut parts, &mut tools).await? {
                wants_cancel |= action == TourAction::Cancel;
                wants_move |= action == TourAction::Move;
            }
        }
        if wants_cancel || wants_move || parsed.keep_tour || parsed.own_tour {
            self.ask_keep = false;
        }
        let booked_property = (self.state.stage == Stage::Booked).then(|| self.state.property.clone()).flatten();
        let asked_again = self.apply(&parsed, &mut parts);
        if booked_property.is_some() && self.state.property != booked_property {
            // Another building after a booking: a new booking for it (the one they have stays).
            self.state.stage = Stage::Qualifying;
            self.state.tour_time = None;
            self.state.confirmation = None;
        } else if let Some(tour) = self.upcoming.clone().filter(|_| booked_property.is_some()) {
            // A move asked for, or a different type or time for the tour they have: choose the new time.
            let asked_type = self.state.tour_type.is_some_and(|t| t != tour.tour_type);
            if (wants_move || asked_type || parsed.time.is_some()) && !wants_cancel {
                self.start_move(&tour, &mut parts);
            }
        } else if wants_move && self.upcoming.is_none() && mentions_own_tour(text) {
            parts.push(self.no_tour_here());
            self.pending = Some(TourAction::Move);
        }
        if first_turn {
            parts.insert(0, self.greeting(returning));
        }
        if parsed.own_tour {
            parts.push(self.own_tour_answer());
        }
        if !wants_cancel && !wants_move && self.upcoming.is_some() {
            if parsed.keep_tour || (was_asked_keep && parsed.answer == Some(true)) {
                parts.push("Great, your tour stays as booked.".into());
            } else if was_asked_keep && parsed.answer == Some(false) {
                parts.push("Would you like to move it, or cancel it?".into());
                self.asked_keep = true;
            }
        }
        let was_confirming_cancel = std::mem::take(&mut self.confirming_cancel);
        let mut cancel_asked = false;
        if wants_cancel {
            match &self.upcoming {
                Some(tour) => {
                    parts.push(format!("Shall I cancel your {}?", self.tour_words(tour)));
                    self.confirming_cancel = true;
                    cancel_asked = true;
                }
                None => {
                    parts.push(self.no_tour_here());
                    self.pending = Some(TourAction::Cancel);
                }
            }
        } else if was_confirming_cancel {
            match parsed.answer {
                Some(true) => self.cancel_upcoming(&mut parts, &mut tools).await?,
                Some(false) => parts.push("Okay, your tour stays as booked.".into()),
                None => {}
            }
        }
        for topic in &parsed.questions {
            let event = self.config.tools.answer(*topic, self.state.property.as_deref(), self.state.bedrooms);
            if let Some(answer) = event.result["answer"].as_str() {
                parts.push(answer.to_string());
            }
            tools.push(event);
        }
        self.choose_time(&parsed, text, now, &mut parts, &mut tools).await?;
        let was_awaiting = self.awaiting_change;
        if self.state.stage == Stage::Confirming {
            self.confirm(&parsed, &user_id, &mut parts, &mut tools).await?;
        }
        let reopened_now = self.awaiting_change && !was_awaiting;
        let understood = !parsed.questions.is_empty()
            || parsed.own_tour
            || parsed.code.is_some()
            || self.state != before
            || asked_again
            || parsed.keep_tour
            || (was_asked_keep && parsed.answer.is_some());
        if !understood && expected_before.is_some() {
            parts.push("Sorry, I didn't catch that.".into());
        }
        // Asking the next question changes the stage, never a slot, so this is the turn's change.
        let changed = self.state.changed_slots(&before);
        let finished = self.state.stage == Stage::Booked
            && parsed.answer == Some(false)
            && changed.is_empty()
            && !was_confirming_cancel
            && !was_asked_keep;
        let prompt = if cancel_asked || self.asked_keep {
            String::new()
        } else if finished {
            // "No, that's all" after a booking: the call is over.
            format!("Thanks for calling {}. Goodbye!", self.config.tools.catalog().office.name)
        } else if self.awaiting_change && changed.is_empty() {
            if reopened_now {
                String::new()
            } else {
                "What would you like to change: the time, the tour type, or your contact details?".into()
            }
        } else {
            self.awaiting_change = false;
            self.next_prompt(now, &mut tools).await?
        };
        parts.push(prompt);

        let mut reply_text = parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ");
        if let Some(wording) = &self.config.wording {
            let worded = wording.word(text, &reply_text, &self.facts_to_keep()).instrument(info_span!("wording")).await;
            self.record(
                "wording",
                Some(std::time::Duration::from_secs_f64(worded.ms / 1000.0)),
                json!({"model": wording.model_id(), "by_model": worded.by_model, "fallback": worded.fallback, "template": reply_text}),
            );
            reply_text = worded.text;
        }
        for t in &tools {
            self.record("tool", None, serde_json::to_value(t).unwrap_or_default());
        }
        if !changed.is_empty() || self.state.stage != before.stage {
            let values: serde_json::Map<String, serde_json::Value> =
                changed.iter().map(|s| (s.as_str().to_string(), self.state.value(*s).unwrap_or_default())).collect();
            self.record("state", None, json!({"changed": values, "stage": self.state.stage}));
        }
        self.release_held();
        if self.hold_exchanges {
            self.held = Some(HeldExchange { user: text.to_string(), agent: reply_text.clone(), turn: self.turn });
        } else if let Some(writer) = &self.writer {
            writer.exchange(text, &reply_text, self.turn);
        }
        if let Some(writer) = &self.writer {
            writer.state(&self.state, changed.iter().copied().filter(|s| s.remembered()).collect());
        }
        let latency = started.elapsed();
        self.record("reply", Some(latency), json!({"text": reply_text, "memory_ms": memory_ms}));
        Ok(Reply {
            text: reply_text,
            state: self.state.clone(),
            changed,
            tools,
            memory_ms,
            latency_ms: latency.as_secs_f64() * 1000.0,
        })
    }

    /// First turn: restore what memory knows and start the memory writer. Returns whether the caller is known.
    async fn load_caller(&mut self, user_id: &str) -> bool {
        let mut known_ids: std::collections::HashMap<Slot, String> = Default::default();
        let mut returning = false;
        if let Some(service) = &self.config.memory {
            let started = Instant::now();
            match service.retrieve_user_context(user_id).await {
                Ok(ctx) => {
                    self.record(
                        "memory",
                        Some(started.elapsed()),
                        json!({"op": "retrieve_user_context", "known": ctx.known, "recent": ctx.recent.len()}),
                    );
                    self.state = ctx.state;
                    self.state.tour_time = None;
                    returning = ctx.known.iter().any(|s| *s != Slot::Phone);
                    known_ids = ctx.slot_memories;
                }
                Err(e) => {
                    warn!(error = %e, "memory unavailable; continuing without the caller's history");
                    self.record(
                        "memory",
                        Some(started.elapsed()),
                        json!({"op": "retrieve_user_context", "error": e.to_string()}),
                    );
                }
            }
            self.writer = Some(MemoryWriter::spawn(
                service.clone(),
                self.config.tools.shared_catalog(),
                user_id.to_string(),
                self.session_id.clone(),
                known_ids,
                self.recorder.clone(),
            ));
        }
        let caller_phone =
            user_id.starts_with('+') && user_id.len() >= 11 && user_id[1..].chars().all(|c| c.is_ascii_digit());
        if self.state.phone.is_none() && caller_phone {
            self.state.phone = Some(user_id.to_string());
        }
        self.state.stage = Stage::Qualifying;
        let tours = self.config.tools.bookings_for(user_id).await.unwrap_or_else(|e| {
            warn!(error = %e, "bookings unavailable; the caller's tours are not mentioned");
            Vec::new()
        });
        let now = self.now();
        self.upcoming = tours.iter().filter(|b| b.start > now).min_by_key(|b| b.start).cloned();
        if let Some(tour) = self.upcoming.clone() {
            // The tour they have is where this call starts: no new slots are offered for it, and the first
            // question is whether to keep, move or cancel it.
            self.hold_tour(&tour);
            self.ask_keep = true;
            returning = true;
        } else {
            let recent = now - chrono::Duration::days(ASK_ABOUT_PAST_DAYS);
            self.past = tours.into_iter().filter(|b| b.start <= now && b.start > recent).max_by_key(|b| b.start);
            returning |= self.past.is_some();
        }
        returning
    }

    /// The state of a call about this booked tour: its property, type, time and code, the contact details it was
    /// booked with where the call has none, stage Booked.
    fn hold_tour(&mut self, tour: &Booking) {
        let s = &mut self.state;
        s.property = Some(tour.property.clone());
        s.tour_type = Some(tour.tour_type);
        s.tour_time = Some(tour.start);
        s.confirmation = Some(tour.confirmation.clone());
        s.name.get_or_insert_with(|| tour.name.clone());
        s.email.get_or_insert_with(|| tour.email.clone());
        s.phone.get_or_insert_with(|| tour.phone.clone());
        s.stage = Stage::Booked;
    }

    /// Starts moving `tour`: the new time is asked for (or taken from this turn) and read back before the move.
    fn start_move(&mut self, tour: &Booking, parts: &mut Vec<String>) {
        if self.moving.is_none() {
            parts.push(format!("Sure, let's find a new time for your {}.", self.tour_words(tour)));
        }
        let chosen_type = self.state.tour_type;
        self.hold_tour(tour);
        self.state.tour_type = chosen_type.or(Some(tour.tour_type));
        self.state.tour_time = None;
        self.state.stage = Stage::Scheduling;
        self.offered.clear();
        self.moving = Some(tour.clone());
    }

    /// A tour found by the confirmation code the caller read out: it becomes the tour this call is about, whoever
    /// booked it (the code is the proof). Returns the change they asked for before giving the code, if any.
    async fn find_by_code(
        &mut self,
        code: &str,
        now: NaiveDateTime,
        parts: &mut Vec<String>,
        tools: &mut Vec<ToolEvent>,
    ) -> Result<Option<TourAction>, AgentError> {
        let started = Instant::now();
        let found = self.config.tools.bookings().by_code(code).await?.filter(|b| b.start > now);
        tools.push(ToolEvent {
            name: "find_tour_by_code".into(),
            args: json!({"confirmation": code}),
            result: json!({"found": found.is_some()}),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        });
        match found {
            Some(tour) => {
                if self.upcoming.as_ref() != Some(&tour) {
                    parts.push(format!("Thanks, I found your {}.", self.tour_words(&tour)));
                }
                self.hold_tour(&tour);
                self.upcoming = Some(tour);
                self.moving = None;
                Ok(self.pending.take())
            }
            None => {
                parts.push(format!("I couldn't find an upcoming tour with the code {}.", spelled(code)));
                Ok(None)
            }
        }
    }

    /// What is said when the caller asks about or for a change to a tour this number has not booked.
    fn no_tour_here(&self) -> String {
        "I don't see an upcoming tour booked for this number. If you booked from another phone, please read me \
         your confirmation code."
            .into()
    }

    /// Sends the email for a change to a tour and says what happened to it: sent, or not sent (the code is what
    /// they keep); nothing when confirmations only go to the office's outbox.
    async fn send_notice(&self, notice: Notice<'_>, tools: &mut Vec<ToolEvent>) -> String {
        let started = Instant::now();
        let Some(delivery) =
            confirmations::send(self.config.mailer.as_ref(), notice, self.config.tools.catalog()).await
        else {
            return String::new();
        };
        tools.push(ToolEvent {
            name: "email".into(),
            args: json!({"confirmation": notice_booking(&notice).confirmation}),
            result: serde_json::to_value(&delivery).unwrap_or_default(),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        });
        email_sentence(&delivery, &notice_booking(&notice).email)
    }

    /// "You have a virtual tour of Hudson 360 on Friday, November 27 at 11:00 AM", for the caller's next tour.
    fn upcoming_sentence(&self, tour: &Booking) -> String {
        format!("{} {}", if tour.tour_type == TourType::InPerson { "an" } else { "a" }, self.tour_words(tour))
    }

    /// "virtual tour of Hudson 360 on Friday, November 27 at 11:00 AM".
    fn tour_words(&self, tour: &Booking) -> String {
        let catalog = self.config.tools.catalog();
        let name = catalog.property(&tour.property).map_or(tour.property.as_str(), |p| p.name.as_str());
        format!("{} tour of {name} on {}", tour.tour_type.spoken(), spoken_time(tour.start))
    }

    /// Cancels the caller's upcoming tour (the caller asked and said yes): the slot opens again and memory records
    /// it.
    async fn cancel_upcoming(&mut self, parts: &mut Vec<String>, tools: &mut Vec<ToolEvent>) -> Result<(), AgentError> {
        let Some(tour) = self.upcoming.take() else { return Ok(()) };
        let started = Instant::now();
        let cancelled = self.config.tools.bookings().cancel(&tour.confirmation).await?;
        tools.push(ToolEvent {
            name: "cancel_tour".into(),
            args: json!({"confirmation": tour.confirmation}),
            result: json!({"cancelled": cancelled.is_some()}),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        });
        match cancelled {
            Some(b) => {
                let by = if self.user_id == b.user_id {
                    "the caller"
                } else {
                    "a caller with the confirmation code"
                };
                if let Some(writer) = &self.writer {
                    writer.booking(&b, BookingEvent::Cancelled, by);
                }
                let emailed = self.send_notice(Notice::Cancelled(&b), tools).await;
                parts.push(format!("Done: your {} is cancelled.", self.tour_words(&b)));
                parts.push(emailed);
                self.state.confirmation = None;
                self.state.tour_time = None;
                self.moving = None;
            }
            None => parts.push("That tour was already cancelled.".into()),
        }
        Ok(())
    }

    /// The answer to "when is my tour?".
    fn own_tour_answer(&self) -> String {
        match &self.upcoming {
            Some(tour) => {
                format!(
                    "You have {}. Your confirmation code is {}.",
                    self.upcoming_sentence(tour),
                    spelled(&tour.confirmation)
                )
            }
            None => self.no_tour_here(),
        }
    }

    /// The first words of a call: a returning caller hears what we remember.
    fn greeting(&self, returning: bool) -> String {
        let office = &self.config.tools.catalog().office.name;
        if !returning {
            return match &self.state.name {
                Some(name) => format!("Thanks for calling {office}, {name}!"),
                None => format!("Thanks for calling {office}!"),
            };
        }
        let catalog = self.config.tools.catalog();
        let known: Vec<String> = [Slot::Bedrooms, Slot::Property, Slot::Pets]
            .iter()
            .filter_map(|s| preference_text(&self.state, *s, catalog))
            .map(|t| {
                let mut c = t.chars();
                c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
            })
            .collect();
        let welcome = match &self.state.name {
            Some(name) => format!("Welcome back to {office}, {name}!"),
            None => format!("Welcome back to {office}!"),
        };
        let welcome = match &self.upcoming {
            Some(tour) => format!("{welcome} You have {}.", self.upcoming_sentence(tour)),
            None => welcome,
        };
        if known.is_empty() {
            welcome
        } else {
            format!("{welcome} From your last call I have: {}.", known.join(", "))
        }
    }

    /// Applies parsed values to the state; invalid ones get a note and are asked again. Returns whether something
    /// was heard but refused.
    fn apply(&mut self, p: &Parsed, parts: &mut Vec<String>) -> bool {
        let catalog = self.config.tools.shared_catalog();
        let mut refused = false;
        if let Some(id) = &p.property {
            if self.state.property.as_deref() != Some(id) {
                self.state.property = Some(id.clone());
                self.state.tour_time = None;
                self.offered.clear();
            }
        }
        match &p.bedrooms {
            Some(Ok(b)) => self.state.bedrooms = Some(*b),
            Some(Err(heard)) => {
                parts.push(format!(
                    "We have studios up to three bedrooms, so {heard} bedrooms isn't something I can offer."
                ));
                refused = true;
            }
            None => {}
        }
        if let Some(pets) = p.pets {
            self.state.pets = Some(pets);
            if let Some(prop) = self.state.property.as_deref().and_then(|id| catalog.property(id)) {
                if pets.dogs > 0 && !prop.pets.dogs {
                    parts.push(format!("Just so you know, {} is cats-only.", prop.name));
                }
            }
        }
        if p.pet_friendly == Some(true) && self.state.pet_friendly != Some(true) {
            // A pet-friendly home asked for: say where pets are welcome.
            self.state.pet_friendly = Some(true);
            parts.push(match self.state.property.as_deref().and_then(|id| catalog.property(id)) {
                Some(prop) => self.config.tools.answer(super::Topic::Pets, Some(&prop.id), None).result["answer"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                None => catalog.pet_summary(),
            });
        }
        match &p.budget {
            Some(Ok(b)) => self.state.budget = Some(*b),
            Some(Err(heard)) => {
                parts.push(format!("I heard a budget of {heard}, which doesn't look like a monthly rent."));
                refused = true;
            }
            None => {}
        }
        if let Some(d) = p.move_in {
            self.state.move_in = Some(d);
        }
        if let Some(t) = p.tour_type {
            if self.state.tour_type != Some(t) {
                self.state.tour_type = Some(t);
                self.state.tour_time = None;
                self.offered.clear();
            }
        }
        if let Some(n) = &p.name {
            self.state.name = Some(n.clone());
        }
        match &p.email {
            Some(Ok(e)) => self.state.email = Some(e.clone()),
            Some(Err(heard)) => {
                parts.push(format!("Sorry, \"{heard}\" doesn't look like a complete email address."));
                self.state.email = None;
                refused = true;
            }
            None => {}
        }
        match &p.phone {
            Some(Ok(n)) => self.state.phone = Some(n.clone()),
            Some(Err(_)) => {
                parts.push("Sorry, I need a ten-digit phone number.".into());
                refused = true;
            }
            None => {}
        }
        if let (Some(b), Some(budget), Some(prop)) = (
            self.state.bedrooms,
            p.budget.as_ref().and_then(|b| b.as_ref().ok()),
            self.state.property.as_deref().and_then(|id| catalog.property(id)),
        ) {
            if let Some(u) = prop.unit(b).filter(|u| u.rent_min > *budget) {
                parts.push(format!(
                    "Just so you know, {}s at {} start at ${} a month.",
                    unit_name(b),
                    prop.name,
                    u.rent_min
                ));
            }
        }
        refused
    }

    /// Picks a tour time from what the caller said, refusing taken or unscheduled times with alternatives.
    async fn choose_time(
        &mut self,
        p: &Parsed,
        text: &str,
        now: NaiveDateTime,
        parts: &mut Vec<String>,
        tools: &mut Vec<ToolEvent>,
    ) -> Result<(), AgentError> {
        let request = p.time.or(self.pending_time);
        let (Some(property), Some(tour)) = (self.state.property.clone(), self.state.tour_type) else {
            self.pending_time = request;
            return Ok(());
        };
        self.pending_time = None;
        if self.expected == Some(Slot::TourTime) && !self.offered.is_empty() {
            let lower = text.to_lowercase();
            let pick = ["first", "second", "third"]
                .iter()
                .position(|w| lower.contains(w))
                .or_else(|| lower.contains("last").then(|| self.offered.len() - 1))
                .or_else(|| {
                    request.and_then(|r| {
                        self.offered
                            .iter()
                            .position(|o| r.date.is_none_or(|d| o.date() == d) && r.time.is_none_or(|t| o.time() == t))
                    })
                })
                .or_else(|| (p.answer == Some(true) && request.is_none()).then_some(0));
            if let Some(slot) = pick.and_then(|i| self.offered.get(i)) {
                self.state.tour_time = Some(*slot);
                return Ok(());
            }
        }
        let Some(request) = request else { return Ok(()) };
        let (open, event) = self.config.tools.open_slots(&property, tour, now).await?;
        tools.push(event);
        let name = self.property_name();
        match (request.date, request.time) {
            (Some(date), Some(time)) => {
                let wanted = date.and_time(time);
                if open.contains(&wanted) {
                    self.state.tour_time = Some(wanted);
                } else {
                    let mut nearest = open.clone();
                    nearest.sort_by_key(|s| (*s - wanted).num_minutes().abs());
                    nearest.truncate(2);
                    nearest.sort();
                    let alternatives: Vec<String> = nearest.iter().map(|s| spoken_time(*s)).collect();
                    parts.push(format!(
                        "Sorry, {} isn't available for {} tour of {name}. The closest open times are {}.",
                        spoken_time(wanted),
                        tour.with_article(),
                        alternatives.join(" or ")
                    ));
                    self.offered = nearest;
                    self.expected = Some(Slot::TourTime);
                }
            }
            (Some(date), None) => {
                let that_day: Vec<NaiveDateTime> =
                    open.iter().copied().filter(|s| s.date() == date).take(OFFER).collect();
                if that_day.is_empty() {
                    parts.push(format!(
                        "There are no {} tours of {name} open on {}.",
                        tour.spoken(),
                        date.format("%A, %B %-d")
                    ));
                } else if that_day.len() == 1 {
                    self.state.tour_time = Some(that_day[0]);
                } else {
                    self.offered = that_day;
                }
            }
            (None, Some(time)) => {
                if let Some(slot) =
                    open.iter().find(|s| s.time().hour() == time.hour() && s.time().minute() == time.minute())
                {
                    self.state.tour_time = Some(*slot);
                }
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// In the confirming stage: yes books (or moves the tour being moved), no reopens the details.
    async fn confirm(
        &mut self,
        p: &Parsed,
        user_id: &str,
        parts: &mut Vec<String>,
        tools: &mut Vec<ToolEvent>,
    ) -> Result<(), AgentError> {
        match p.answer {
            Some(true) => match self.moving.clone() {
                Some(from) => self.move_tour(&from, parts, tools).await,
                None => self.book(user_id, parts, tools).await,
            },
            Some(false) => {
                if let Some(tour) = self.moving.take() {
                    self.hold_tour(&tour);
                    parts.push(format!("Okay, your tour stays as booked: {}.", self.upcoming_sentence(&tour)));
                    return Ok(());
                }
                parts.push("No problem. What would you like to change?".into());
                self.state.stage = Stage::Qualifying;
                self.expected = None;
                self.awaiting_change = true;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Books the tour read back. A caller who already has an upcoming tour of the same property is offered to
    /// move it instead of getting a second one.
    async fn book(&mut self, user_id: &str, parts: &mut Vec<String>, tools: &mut Vec<ToolEvent>) -> Result<(), AgentError> {
        let s = &self.state;
        let (Some(property), Some(tour_type), Some(start), Some(name), Some(email), Some(phone)) =
            (s.property.clone(), s.tour_type, s.tour_time, s.name.clone(), s.email.clone(), s.phone.clone())
        else {
            return Ok(());
        };
        let now = self.now();
        let existing = self
            .config
            .tools
            .bookings_for(user_id)
            .await?
            .into_iter()
            .filter(|b| b.property == property && b.start > now)
            .min_by_key(|b| b.start);
        if let Some(existing) = existing {
            parts.push(format!(
                "You already have {}. Shall I move it to {} instead?",
                self.upcoming_sentence(&existing),
                spoken_time(start)
            ));
            self.upcoming = Some(existing.clone());
            self.moving = Some(existing);
            return Ok(());
        }
        let code = uuid::Uuid::new_v4().simple().to_string()[..6].to_uppercase();
        let booking =
            Booking { confirmation: code, property, tour_type, start, user_id: user_id.into(), name, email, phone, sequence: 0 };
        let (outcome, event) = self.config.tools.book(booking.clone()).await?;
        tools.push(event);
        match outcome {
            BookOutcome::Booked(b) => {
                if let Some(writer) = &self.writer {
                    writer.booking(&b, BookingEvent::Booked, "agent");
                }
                self.upcoming = Some(b.clone());
                let emailed = self.send_notice(Notice::Booked(&b), tools).await;
                parts.push(format!(
                    "You're all set! Your {} tour of {} is booked for {}. Your confirmation code is {}.",
                    b.tour_type.spoken(),
                    self.property_name(),
                    spoken_time(b.start),
                    spelled(&b.confirmation),
                ));
                parts.push(emailed);
                self.state.confirmation = Some(b.confirmation);
                self.state.stage = Stage::Booked;
            }
            BookOutcome::Taken => {
                if let Some(writer) = &self.writer {
                    writer.booking(&booking, BookingEvent::Failed, "agent");
                }
                parts.push("Sorry, that time was just taken by another caller.".into());
                self.state.tour_time = None;
                self.state.stage = Stage::Scheduling;
            }
        }
        Ok(())
    }

    /// Moves the tour being moved to the time read back: the new slot is taken and the old one freed in one step.
    async fn move_tour(&mut self, from: &Booking, parts: &mut Vec<String>, tools: &mut Vec<ToolEvent>) -> Result<(), AgentError> {
        let Some(start) = self.state.tour_time else { return Ok(()) };
        let started = Instant::now();
        let outcome = self.config.tools.bookings().reschedule(&from.confirmation, start, self.state.tour_type).await?;
        tools.push(ToolEvent {
            name: "move_tour".into(),
            args: json!({"confirmation": from.confirmation, "start": start, "tour_type": self.state.tour_type}),
            result: json!({"outcome": match &outcome {
                MoveOutcome::Moved { .. } => "moved",
                MoveOutcome::Taken => "taken",
                MoveOutcome::NotFound => "not_found",
            }}),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        });
        match outcome {
            MoveOutcome::Moved { from, to } => {
                self.moving = None;
                if let Some(writer) = &self.writer {
                    let by = if self.user_id == to.user_id {
                        "the caller"
                    } else {
                        "a caller with the confirmation code"
                    };
                    writer.booking(&to, BookingEvent::Moved { from: from.start }, by);
                }
                let emailed = self.send_notice(Notice::Moved { from: &from, to: &to }, tools).await;
                parts.push(format!(
                    "Done: your {} tour of {} is now on {}. Your confirmation code stays {}.",
                    to.tour_type.spoken(),
                    self.property_name(),
                    spoken_time(to.start),
                    spelled(&to.confirmation),
                ));
                parts.push(emailed);
                self.hold_tour(&to);
                self.upcoming = Some(to);
            }
            MoveOutcome::Taken => {
                parts.push("Sorry, that time was just taken by another caller.".into());
                self.state.tour_time = None;
                self.state.stage = Stage::Scheduling;
            }
            MoveOutcome::NotFound => {
                self.moving = None;
                self.upcoming = None;
                self.state.confirmation = None;
                self.state.tour_time = None;
                self.state.stage = Stage::Qualifying;
                parts.push("I can't find that tour any more: it may have been cancelled.".into());
            }
        }
        Ok(())
    }

    /// Asks for the first missing slot, offers slots, or reads the booking back.
    async fn next_prompt(&mut self, now: NaiveDateTime, tools: &mut Vec<ToolEvent>) -> Result<String, AgentError> {
        if self.state.stage == Stage::Booked {
            self.expected = None;
            if std::mem::take(&mut self.ask_keep) && self.upcoming.is_some() {
                self.asked_keep = true;
                return Ok("Would you like to keep it, move it, or cancel it?".into());
            }
            return Ok("Is there anything else I can help you with?".into());
        }
        // Moving a tour needs only its new time.
        let missing = match &self.moving {
            Some(_) => (!self.state.has(Slot::TourTime)).then_some(Slot::TourTime),
            None => Slot::ALL.into_iter().find(|s| !self.state.has(*s)),
        };
        self.expected = missing;
        let name = self.property_name();
        Ok(match missing {
            Some(Slot::Property) => {
                "Which of our buildings are you interested in: 21 West End, Hudson 360, or Riverview Lofts?".into()
            }
            Some(Slot::Bedrooms) => {
                format!("How many bedrooms are you looking for at {name}? We have studios up to three bedrooms.")
            }
            Some(Slot::Pets) => "Will any pets be moving in with you?".into(),
            Some(Slot::MoveIn) => "When are you hoping to move in?".into(),
            Some(Slot::Budget) => "What monthly budget do you have in mind?".into(),
            Some(Slot::TourType) => "Would you like an in-person tour or a virtual one?".into(),
            Some(Slot::TourTime) => {
                self.state.stage = Stage::Scheduling;
                let tour = self.state.tour_type.unwrap_or(super::state::TourType::InPerson);
                if self.offered.is_empty() || self.offered.iter().any(|s| *s <= now) {
                    let property = self.state.property.clone().unwrap_or_default();
                    let (open, event) = self.config.tools.open_slots(&property, tour, now).await?;
                    tools.push(event);
                    self.offered = open.into_iter().take(OFFER).collect();
                }
                if self.offered.is_empty() {
                    self.expected = None;
                    format!("I'm sorry, there are no open {} tours of {name} in the next three weeks.", tour.spoken())
                } else {
                    let times: Vec<String> = self.offered.iter().map(|s| spoken_time(*s)).collect();
                    format!(
                        "For {} tour of {name}, I can offer {}. Which works best?",
                        tour.with_article(),
                        times.join(", or ")
                    )
                }
            }
            Some(Slot::Name) => {
                self.state.stage = Stage::Contact;
                "Great. May I have your name?".into()
            }
            Some(Slot::Email) => {
                self.state.stage = Stage::Contact;
                "What's the best email address for the confirmation?".into()
            }
            Some(Slot::Phone) => {
                self.state.stage = Stage::Contact;
                "And a phone number where we can reach you?".into()
            }
            None if self.moving.is_some() => {
                self.state.stage = Stage::Confirming;
                let from = self.moving.as_ref().map(|b| b.start).unwrap_or(now);
                format!(
                    "Let me confirm: move your {} tour of {name} from {} to {}. Shall I move it?",
                    self.state.tour_type.map_or("", |t| t.spoken()),
                    spoken_time(from),
                    self.state.tour_time.map(spoken_time).unwrap_or_default(),
                )
            }
            None => {
                self.state.stage = Stage::Confirming;
                let s = &self.state;
                format!(
                    "Let me confirm: {} tour of {name} on {}, for {}, email {}, phone {}. Shall I book it?",
                    s.tour_type.map_or("a", |t| t.with_article()),
                    s.tour_time.map(spoken_time).unwrap_or_default(),
                    s.name.as_deref().unwrap_or_default(),
                    s.email.as_deref().unwrap_or_default(),
                    s.phone.as_deref().unwrap_or_default()
                )
            }
        })
    }

    /// Ends the session: waits for queued memory writes and closes the recording.
    pub async fn finish(&mut self) {
        self.release_held();
        if let Some(writer) = self.writer.take() {
            let started = Instant::now();
            writer.flush().await;
            self.record("memory", Some(started.elapsed()), json!({"op": "flush"}));
        }
        self.record("session_end", None, json!({"turns": self.turn, "stage": self.state.stage}));
    }
}

/// Whether the caller speaks of a tour of their own ("my tour", "my appointment").
fn mentions_own_tour(text: &str) -> bool {
    let t = text.to_lowercase();
    ["my tour", "my appointment", "my booking", "my visit", "my showing", "my viewing"].iter().any(|w| t.contains(w))
}

/// The tour a notice is about.
fn notice_booking<'a>(notice: &Notice<'a>) -> &'a Booking {
    match notice {
        Notice::Booked(b) | Notice::Cancelled(b) | Notice::Moved { to: b, .. } => b,
    }
}

/// What the caller is told about the email: only what happened.
fn email_sentence(delivery: &Delivery, address: &str) -> String {
    match (delivery.sent, &delivery.error) {
        (true, _) => format!("I've emailed the details to {address}."),
        (false, Some(_)) => "I couldn't send the email just now, so please note your code.".into(),
        (false, None) => String::new(),
    }
}
