//! The office's operations on tours, for the staff's command line and REST API: list, look up by confirmation code,
//! and cancel (the slot opens again and the caller's memory records the cancellation).

use chrono::NaiveDateTime;
use tracing::warn;

use super::bookings::{Booking, BookingStore};
use super::catalog::Catalog;
use super::confirmations::{self, Notice};
use super::memory_service::{BookingEvent, MemoryService};
use super::AgentError;

/// A time as staff type it: `YYYY-MM-DD` (midnight) or `YYYY-MM-DDTHH:MM`, office wall clock.
pub fn parse_office_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .or_else(|| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))
}

/// The office's desk: the bookings table, the catalog for names, and callers' memory when it runs.
#[derive(Clone)]
pub struct Office {
    bookings: BookingStore,
    catalog: std::sync::Arc<Catalog>,
    memory: Option<MemoryService>,
    mailer: Option<crate::notify::Mailer>,
}

/// What a cancellation did.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Cancelled {
    /// The tour that was cancelled (its slot is open again).
    pub booking: Booking,
    /// Whether the caller's memory now records it (false when the server runs without memory, or the write
    /// failed; the cancellation stands either way).
    pub remembered: bool,
    /// Whether the caller was emailed the cancellation (false without SMTP: it is in the outbox).
    pub emailed: bool,
}

impl Office {
    /// An office over `bookings`; `memory` records cancellations on the caller's memory, `mailer` tells the caller.
    pub fn new(
        bookings: BookingStore,
        catalog: std::sync::Arc<Catalog>,
        memory: Option<MemoryService>,
        mailer: Option<crate::notify::Mailer>,
    ) -> Self {
        Self { bookings, catalog, memory, mailer }
    }

    /// Tours soonest first: a caller's only when `user_id` is given, those from `from` on when given.
    pub async fn list(&self, user_id: Option<&str>, from: Option<NaiveDateTime>) -> Result<Vec<Booking>, AgentError> {
        let mut all = self.bookings.list(from).await?;
        if let Some(user) = user_id {
            all.retain(|b| b.user_id == user);
        }
        Ok(all)
    }

    /// The tour with this confirmation code.
    pub async fn show(&self, code: &str) -> Result<Option<Booking>, AgentError> {
        self.bookings.by_code(code).await
    }

    /// Cancels the tour with this code on behalf of `by` ("the office").
    pub async fn cancel(&self, code: &str, by: &str) -> Result<Option<Cancelled>, AgentError> {
        let Some(booking) = self.bookings.cancel(code).await? else { return Ok(None) };
        let remembered = match &self.memory {
            Some(memory) => match memory.remember_booking(&booking, BookingEvent::Cancelled, by, &self.catalog).await {
                Ok(_) => true,
                Err(e) => {
                    warn!(error = %e, code = %booking.confirmation, "the cancellation stands but is not in memory");
                    false
                }
            },
            None => false,
        };
        let emailed = confirmations::send(self.mailer.as_ref(), Notice::Cancelled(&booking), &self.catalog)
            .await
            .is_some_and(|d| d.sent);
        Ok(Some(Cancelled { booking, remembered, emailed }))
    }
}
