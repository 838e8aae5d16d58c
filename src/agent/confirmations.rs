//! Tour confirmations by email: what a caller receives when a tour is booked, moved or cancelled, with the
//! calendar invitation that adds, updates or removes it (one `UID` per confirmation code, `SEQUENCE` from the
//! booking).

use chrono::Duration;
use tracing::warn;

use super::bookings::Booking;
use super::catalog::Catalog;
use super::tools::spoken_time;
use crate::notify::{Delivery, Email, Invite, Mailer, Method};

/// Length of a tour in the invitation.
const TOUR_MINUTES: i64 = 30;

/// What happened to a tour.
#[derive(Debug, Clone, Copy)]
pub enum Notice<'a> {
    /// Newly booked.
    Booked(&'a Booking),
    /// Moved from one time to another (the same confirmation code).
    Moved {
        /// As it was.
        from: &'a Booking,
        /// As it is now.
        to: &'a Booking,
    },
    /// Cancelled.
    Cancelled(&'a Booking),
}

impl<'a> Notice<'a> {
    /// The tour the notice is about (as it is now).
    pub fn booking(&self) -> &'a Booking {
        match self {
            Self::Booked(b) | Self::Cancelled(b) | Self::Moved { to: b, .. } => b,
        }
    }

    fn suffix(&self) -> &'static str {
        match self {
            Self::Booked(_) => "booked",
            Self::Moved { .. } => "moved",
            Self::Cancelled(_) => "cancelled",
        }
    }
}

/// The email for a notice, with its invitation (`REQUEST`, or `CANCEL` for a cancellation).
pub fn email(notice: Notice<'_>, catalog: &Catalog, organizer: (String, String)) -> Email {
    let b = notice.booking();
    let property = catalog.property(&b.property);
    let name = property.map_or(b.property.as_str(), |p| p.name.as_str());
    let address = property.map_or_else(String::new, |p| p.address.clone());
    let office = &catalog.office;
    let tour = format!("{} tour of {name}", b.tour_type.spoken());
    let (subject, opening) = match notice {
        Notice::Booked(_) => (
            format!("Your {tour} on {}", spoken_time(b.start)),
            format!("Your {tour} is booked for {}.", spoken_time(b.start)),
        ),
        Notice::Moved { from, to } => (
            format!("Moved: your {tour}, now {}", spoken_time(to.start)),
            format!("Your {tour} has moved from {} to {}.", spoken_time(from.start), spoken_time(to.start)),
        ),
        Notice::Cancelled(_) => (
            format!("Cancelled: your {tour} on {}", spoken_time(b.start)),
            format!("Your {tour} on {} is cancelled.", spoken_time(b.start)),
        ),
    };
    let body = format!(
        "Hello {},\n\n{opening}\nConfirmation code: {}\nAddress: {address}\n\nTo change or cancel, call {} and give \
         your confirmation code.\n\n{}\n",
        b.name, b.confirmation, office.phone, office.name
    );
    let invite = Invite {
        uid: format!("{}@tourdesk", b.confirmation),
        sequence: invite_sequence(&notice),
        method: if matches!(notice, Notice::Cancelled(_)) { Method::Cancel } else { Method::Request },
        summary: capitalised(&tour),
        description: format!("{opening} Confirmation code {}. {}: {}.", b.confirmation, office.name, office.phone),
        location: if address.is_empty() { name.to_string() } else { address },
        start: b.start,
        duration: Duration::minutes(TOUR_MINUTES),
        tzid: office.timezone.clone(),
        organizer,
        attendee: (b.name.clone(), b.email.clone()),
    };
    Email {
        to_name: b.name.clone(),
        to: b.email.clone(),
        subject,
        body,
        invite: Some(invite),
        name: format!("{}-{}-{}", b.confirmation, invite_sequence(&notice), notice.suffix()),
    }
}

/// "Virtual tour of …" from "virtual tour of …".
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The invitation's sequence: the booking's, and one more for its cancellation (RFC 5546 asks a CANCEL to carry a
/// sequence above the last request's).
fn invite_sequence(notice: &Notice<'_>) -> u32 {
    notice.booking().sequence + u32::from(matches!(notice, Notice::Cancelled(_)))
}

/// Sends (or keeps in the outbox) the email for a notice. `None` when there is no mailer or the email could not
/// be made (logged): the caller is then told nothing about an email.
pub async fn send(mailer: Option<&Mailer>, notice: Notice<'_>, catalog: &Catalog) -> Option<Delivery> {
    let mailer = mailer?;
    match mailer.deliver(&email(notice, catalog, mailer.from_address())).await {
        Ok(d) => Some(d),
        Err(e) => {
            warn!(error = %e, code = %notice.booking().confirmation, "no confirmation email for this tour");
            None
        }
    }
}
