//! `AgentPlanner`: one call. It owns what a call touches outside the conversation — memory (loaded on the first
//! turn, written after every turn without waiting), the bookings snapshot each turn reads, the change to the
//! bookings a turn asks for and its confirmation email, reply wording, and the flight recorder — and leaves every
//! decision about what to say to the pure [`Dialogue`] step.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::json;
use tracing::{info_span, warn, Instrument};

use super::bookings::{BookOutcome, Booking, MoveOutcome};
use super::confirmations::{self, Notice};
use super::dialogue::{Calendar, Commit, Dialogue, Step};
use super::memory_service::{BookingEvent, MemoryService};
use super::memory_writer::MemoryWriter;
use super::parser::parse;
use super::state::{PlannerState, Slot};
use super::tools::{ToolEvent, Tools};
use super::wording::Wording;
use super::AgentError;
use crate::notify::{Delivery, Mailer};
use crate::recorder::FlightRecorder;

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

/// One call with one caller.
pub struct AgentPlanner {
    config: AgentConfig,
    user_id: String,
    session_id: String,
    dialogue: Dialogue,
    turn: usize,
    recorder: Option<Arc<FlightRecorder>>,
    writer: Option<MemoryWriter>,
    /// Spoken calls: the last exchange waits here until the caller has heard the reply (or cut it off).
    hold_exchanges: bool,
    held: Option<HeldExchange>,
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
            dialogue: Dialogue::new(user_id),
            turn: 0,
            recorder,
            writer: None,
            hold_exchanges: false,
            held: None,
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
    /// exchange is logged with what was heard, and offers or a question the caller never heard are forgotten.
    pub fn heard(&mut self, heard: &str) {
        let heard = heard.trim();
        if let Some(mut held) = self.held.take() {
            if heard.len() < held.agent.trim().len() {
                self.dialogue.unheard();
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

    /// Hands an exchange to the memory writer, or holds it until the caller has heard it.
    fn log_exchange(&mut self, user: &str, agent: &str) {
        if self.hold_exchanges {
            self.held = Some(HeldExchange { user: user.to_string(), agent: agent.to_string(), turn: self.turn });
        } else if let Some(writer) = &self.writer {
            writer.exchange(user, agent, self.turn);
        }
    }

    /// Adds an event to the session's flight recording (voice timings, protocol problems).
    pub fn record_event(&self, kind: &str, duration: Option<std::time::Duration>, data: serde_json::Value) {
        self.record(kind, duration, data);
    }

    /// Opens a call before the caller says anything: loads what memory knows about them and returns the greeting
    /// with the first question (a returning caller hears what is remembered and is not asked it again; one whose
    /// tour is recently over is asked how it went). Optional: without it, the first transcript's reply starts
    /// with the greeting.
    pub async fn greet(&mut self) -> Result<Reply, AgentError> {
        let span = info_span!("greet", session = %self.session_id);
        async {
            let started = Instant::now();
            if self.turn > 0 {
                return Err(AgentError::AlreadyGreeted);
            }
            let returning = self.load_caller().await;
            let memory_ms = started.elapsed().as_secs_f64() * 1000.0;
            self.turn += 1;
            let now = self.now();
            let tours = self.snapshot(now).await?;
            let catalog = self.config.tools.shared_catalog();
            let text = self.dialogue.greet(returning, &Calendar::new(&catalog, &tours, now));
            // The greeting opens the session's message log (it answers nobody, so it is no memory).
            self.release_held();
            self.log_exchange("", &text);
            let latency = started.elapsed();
            self.record("reply", Some(latency), json!({"text": text, "memory_ms": memory_ms, "greeting": true}));
            Ok(Reply {
                text,
                state: self.dialogue.state.clone(),
                changed: Vec::new(),
                tools: Vec::new(),
                memory_ms,
                latency_ms: latency.as_secs_f64() * 1000.0,
            })
        }
        .instrument(span)
        .await
    }

    /// The current state.
    pub fn state(&self) -> &PlannerState {
        &self.dialogue.state
    }

    /// Whether the last reply ended the call (the goodbye).
    pub fn call_over(&self) -> bool {
        self.dialogue.is_over()
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
        self.dialogue.state.name.iter().cloned().chain(catalog.properties.iter().map(|p| p.name.clone())).collect()
    }

    fn now(&self) -> NaiveDateTime {
        self.config.now.unwrap_or_else(|| chrono::Local::now().naive_local())
    }

    /// Every booking from `now` on: the snapshot a turn reads open slots, codes and the caller's tours from.
    async fn snapshot(&self, now: NaiveDateTime) -> Result<Vec<Booking>, AgentError> {
        self.config.tools.bookings().list(Some(now)).await
    }

    /// Reads one transcript and answers it.
    pub async fn process_transcript(&mut self, text: &str) -> Result<Reply, AgentError> {
        let span = info_span!("turn", session = %self.session_id, turn = self.turn);
        self.turn_inner(text).instrument(span).await
    }

    async fn turn_inner(&mut self, text: &str) -> Result<Reply, AgentError> {
        let started = Instant::now();
        self.record("transcript", None, json!({"text": text, "turn": self.turn}));
        let mut memory_ms = 0.0;
        let greeting = if self.turn == 0 {
            let t = Instant::now();
            let returning = self.load_caller().await;
            memory_ms = t.elapsed().as_secs_f64() * 1000.0;
            Some(returning)
        } else {
            None
        };
        self.turn += 1;

        let now = self.now();
        let catalog = self.config.tools.shared_catalog();
        let before = self.dialogue.state.clone();
        let parsed = parse(text, self.dialogue.expected(), now.date(), &catalog);
        let tours = self.snapshot(now).await?;
        let mut step = self.dialogue.step(&parsed, text, greeting, &Calendar::new(&catalog, &tours, now));
        let mut tools: Vec<ToolEvent> = step
            .answers
            .iter()
            .map(|(topic, answer)| ToolEvent {
                name: format!("{topic:?}").to_lowercase(),
                args: json!({"property": before.property, "bedrooms": self.dialogue.state.bedrooms}),
                result: json!({"answer": answer}),
                duration_ms: 0.0,
            })
            .collect();
        let tours = match step.commit.take() {
            Some(commit) => {
                self.commit(commit, &mut step, &mut tools).await?;
                self.snapshot(now).await?
            }
            None => tours,
        };
        let (mut reply_text, changed) = self.dialogue.finish(step, &Calendar::new(&catalog, &tours, now));

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
        let state = self.dialogue.state.clone();
        if !changed.is_empty() || state.stage != before.stage {
            let values: serde_json::Map<String, serde_json::Value> =
                changed.iter().map(|s| (s.as_str().to_string(), state.value(*s).unwrap_or_default())).collect();
            self.record("state", None, json!({"changed": values, "stage": state.stage}));
        }
        self.release_held();
        self.log_exchange(text, &reply_text);
        if let Some(writer) = &self.writer {
            writer.state(&state, changed.iter().copied().filter(|s| s.remembered()).collect());
        }
        let latency = started.elapsed();
        self.record("reply", Some(latency), json!({"text": reply_text, "memory_ms": memory_ms}));
        Ok(Reply { text: reply_text, state, changed, tools, memory_ms, latency_ms: latency.as_secs_f64() * 1000.0 })
    }

    /// Makes the change to the bookings the turn asked for, remembers it, emails the caller, and hands the outcome
    /// back to the dialogue.
    async fn commit(&mut self, commit: Commit, step: &mut Step, tools: &mut Vec<ToolEvent>) -> Result<(), AgentError> {
        let catalog = self.config.tools.shared_catalog();
        let bookings = self.config.tools.bookings().clone();
        match commit {
            Commit::Book(booking) => {
                let (outcome, event) = self.config.tools.book(booking.clone()).await?;
                tools.push(event);
                let emailed = match &outcome {
                    BookOutcome::Booked(b) => {
                        self.remember(b, BookingEvent::Booked, "agent");
                        self.send_notice(Notice::Booked(b), tools).await
                    }
                    BookOutcome::Taken => {
                        self.remember(&booking, BookingEvent::Failed, "agent");
                        String::new()
                    }
                };
                self.dialogue.booked(step, &outcome, emailed, &catalog);
            }
            Commit::Move { from, start, tour_type } => {
                let started = Instant::now();
                let outcome = bookings.reschedule(&from.confirmation, start, tour_type).await?;
                tools.push(ToolEvent {
                    name: "move_tour".into(),
                    args: json!({"confirmation": from.confirmation, "start": start, "tour_type": tour_type}),
                    result: json!({"outcome": match &outcome {
                        MoveOutcome::Moved { .. } => "moved",
                        MoveOutcome::Taken => "taken",
                        MoveOutcome::NotFound => "not_found",
                    }}),
                    duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                });
                let emailed = match &outcome {
                    MoveOutcome::Moved { from, to } => {
                        self.remember(to, BookingEvent::Moved { from: from.start }, self.by(to));
                        self.send_notice(Notice::Moved { from, to }, tools).await
                    }
                    _ => String::new(),
                };
                self.dialogue.moved(step, &outcome, emailed, &catalog);
            }
            Commit::Cancel(tour) => {
                let started = Instant::now();
                let cancelled = bookings.cancel(&tour.confirmation).await?;
                tools.push(ToolEvent {
                    name: "cancel_tour".into(),
                    args: json!({"confirmation": tour.confirmation}),
                    result: json!({"cancelled": cancelled.is_some()}),
                    duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                });
                let emailed = match &cancelled {
                    Some(b) => {
                        self.remember(b, BookingEvent::Cancelled, self.by(b));
                        self.send_notice(Notice::Cancelled(b), tools).await
                    }
                    None => String::new(),
                };
                self.dialogue.cancelled(step, cancelled.as_ref(), emailed, &catalog);
            }
        }
        Ok(())
    }

    /// Who changed a tour, for its memory: its caller, or someone who read out its code.
    fn by(&self, tour: &Booking) -> &'static str {
        if self.user_id == tour.user_id {
            "the caller"
        } else {
            "a caller with the confirmation code"
        }
    }

    /// Queues the memory of what happened to a tour.
    fn remember(&self, tour: &Booking, event: BookingEvent, by: &'static str) {
        if let Some(writer) = &self.writer {
            writer.booking(tour, event, by);
        }
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
        let tour = notice.booking();
        tools.push(ToolEvent {
            name: "email".into(),
            args: json!({"confirmation": tour.confirmation}),
            result: serde_json::to_value(&delivery).unwrap_or_default(),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        });
        email_sentence(&delivery, &tour.email)
    }

    /// First turn: restore what memory knows, start the memory writer, and find the caller's tours. Returns
    /// whether the caller is known.
    async fn load_caller(&mut self) -> bool {
        let user_id = self.user_id.clone();
        let mut known_ids: std::collections::HashMap<Slot, String> = Default::default();
        let mut remembered = None;
        if let Some(service) = &self.config.memory {
            let started = Instant::now();
            match service.retrieve_user_context(&user_id).await {
                Ok(ctx) => {
                    self.record(
                        "memory",
                        Some(started.elapsed()),
                        json!({"op": "retrieve_user_context", "known": ctx.known, "recent": ctx.recent.len()}),
                    );
                    let known = ctx.known.iter().any(|s| *s != Slot::Phone);
                    known_ids = ctx.slot_memories;
                    remembered = Some((ctx.state, known));
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
                user_id.clone(),
                self.session_id.clone(),
                known_ids,
                self.recorder.clone(),
            ));
        }
        let tours = self.config.tools.bookings_for(&user_id).await.unwrap_or_else(|e| {
            warn!(error = %e, "bookings unavailable; the caller's tours are not mentioned");
            Vec::new()
        });
        self.dialogue.begin(remembered, &tours, self.now())
    }

    /// Ends the session: waits for queued memory writes and closes the recording.
    pub async fn finish(&mut self) {
        self.release_held();
        if let Some(writer) = self.writer.take() {
            let started = Instant::now();
            writer.flush().await;
            self.record("memory", Some(started.elapsed()), json!({"op": "flush"}));
        }
        self.record("session_end", None, json!({"turns": self.turn, "stage": self.dialogue.state.stage}));
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
