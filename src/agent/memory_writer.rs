//! Saves a session's exchanges (to the message log, and what the caller said to memory) and state changes to memory on a background task, so a reply never waits for a
//! memory write. The queue is bounded: when memory falls that far behind, new writes are dropped and logged rather
//! than piling up in RAM.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

use super::bookings::Booking;
use super::catalog::Catalog;
use super::memory_service::{BookingEvent, MemoryService};
use super::state::{PlannerState, Slot};
use crate::recorder::FlightRecorder;

/// Writes waiting before new ones are dropped.
const QUEUE: usize = 256;

/// One write.
enum Job {
    /// A user/agent exchange.
    Exchange { user: String, agent: String, turn: u32 },
    /// Slots of the state that changed.
    State { state: Box<PlannerState>, slots: Vec<Slot> },
    /// What happened to a tour in this call (booked, moved, cancelled, a failed attempt), and who did it.
    Booking { booking: Box<Booking>, event: BookingEvent, by: &'static str },
}

/// The session's memory writer. Dropping it without [`MemoryWriter::flush`] lets queued writes finish in the
/// background.
pub struct MemoryWriter {
    /// The planner sends jobs; the writer task receives them in order.
    jobs: mpsc::Sender<Job>,
    task: JoinHandle<()>,
    recorder: Option<Arc<FlightRecorder>>,
}

impl MemoryWriter {
    /// Starts the writer for one caller and session; `known` maps remembered slots to their memory ids.
    pub fn spawn(
        service: MemoryService,
        catalog: Arc<Catalog>,
        user_id: String,
        session_id: String,
        mut known: HashMap<Slot, String>,
        recorder: Option<Arc<FlightRecorder>>,
    ) -> Self {
        let (jobs, mut rx) = mpsc::channel::<Job>(QUEUE);
        let rec = recorder.clone();
        let task = tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let started = Instant::now();
                let (op, result) = match job {
                    Job::Exchange { user, agent, turn } => {
                        let r = service.store_conversation_memory(&user_id, &session_id, turn, &user, &agent).await;
                        ("store_conversation", r.map(|e| e.len()))
                    }
                    Job::State { state, slots } => {
                        let r = service.save_planner_state(&user_id, &state, &slots, &mut known, &catalog).await;
                        ("save_planner_state", r.map(|e| e.len()))
                    }
                    Job::Booking { booking, event, by } => {
                        let r = service.remember_booking(&booking, event, by, &catalog).await;
                        ("remember_booking", r.map(|_| 1))
                    }
                };
                let data = match &result {
                    Ok(n) => json!({"op": op, "memories": n}),
                    Err(e) => {
                        warn!(op, error = %e, "memory write failed; the call goes on without it");
                        json!({"op": op, "error": e.to_string()})
                    }
                };
                if let Some(rec) = &rec {
                    rec.record("memory", Some(started.elapsed()), data);
                }
            }
        });
        Self { jobs, task, recorder }
    }

    fn submit(&self, job: Job, what: &str) {
        if self.jobs.try_send(job).is_err() {
            warn!(what, "memory queue full; this write is dropped");
            if let Some(rec) = &self.recorder {
                rec.record("memory", None, json!({"op": what, "error": "queue full, dropped"}));
            }
        }
    }

    /// Queues an exchange.
    pub fn exchange(&self, user: &str, agent: &str, turn: usize) {
        let turn = u32::try_from(turn).unwrap_or(u32::MAX);
        self.submit(Job::Exchange { user: user.into(), agent: agent.into(), turn }, "store_conversation");
    }

    /// Queues changed slots of the state.
    pub fn state(&self, state: &PlannerState, slots: Vec<Slot>) {
        if !slots.is_empty() {
            self.submit(Job::State { state: Box::new(state.clone()), slots }, "save_planner_state");
        }
    }

    /// Queues the memory of what happened to a tour in this call; `by` is who did it ("agent", "the caller").
    pub fn booking(&self, booking: &Booking, event: BookingEvent, by: &'static str) {
        self.submit(Job::Booking { booking: Box::new(booking.clone()), event, by }, "remember_booking");
    }

    /// Waits until every queued write is done (end of a session).
    pub async fn flush(self) {
        drop(self.jobs);
        if let Err(e) = self.task.await {
            warn!(error = %e, "memory writer task failed");
        }
    }
}
