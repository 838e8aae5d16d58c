//! iCalendar (RFC 5545) invitations, with the scheduling method of RFC 5546: `REQUEST` for a new or changed event
//! (the same `UID`, a higher `SEQUENCE`), `CANCEL` for a cancelled one.

use chrono::{Duration, NaiveDateTime};
use icalendar::{Calendar, CalendarDateTime, Component, EventLike, EventStatus, Property};

/// What an invitation asks of the calendar receiving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Add the event, or replace an earlier copy with a lower sequence.
    Request,
    /// Remove the event.
    Cancel,
}

impl Method {
    /// The `METHOD` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "REQUEST",
            Self::Cancel => "CANCEL",
        }
    }
}

/// One event, as its invitation describes it.
#[derive(Debug, Clone)]
pub struct Invite {
    /// Stays the same across changes and the cancellation.
    pub uid: String,
    /// 0 when first sent, one more per change.
    pub sequence: u32,
    /// Request or cancel.
    pub method: Method,
    /// Title.
    pub summary: String,
    /// Body text.
    pub description: String,
    /// Where.
    pub location: String,
    /// Start, wall clock in `tzid`.
    pub start: NaiveDateTime,
    /// Length.
    pub duration: Duration,
    /// IANA time zone of `start`.
    pub tzid: String,
    /// The organizer's name and address.
    pub organizer: (String, String),
    /// The attendee's name and address.
    pub attendee: (String, String),
}

impl Invite {
    /// The `text/calendar` body.
    pub fn to_ics(&self) -> String {
        let at = |t: NaiveDateTime| CalendarDateTime::WithTimezone { date_time: t, tzid: self.tzid.clone() };
        let person = |key: &str, (name, address): &(String, String)| {
            Property::new(key, format!("mailto:{address}")).add_parameter("CN", name).done()
        };
        let mut attendee = person("ATTENDEE", &self.attendee);
        attendee.add_parameter("ROLE", "REQ-PARTICIPANT");
        let event = icalendar::Event::new()
            .uid(&self.uid)
            .sequence(self.sequence)
            .summary(&self.summary)
            .description(&self.description)
            .location(&self.location)
            .starts(at(self.start))
            .ends(at(self.start + self.duration))
            .status(match self.method {
                Method::Request => EventStatus::Confirmed,
                Method::Cancel => EventStatus::Cancelled,
            })
            .append_property(person("ORGANIZER", &self.organizer))
            .append_multi_property(attendee)
            .done();
        let mut calendar = Calendar::new();
        calendar.append_property(("METHOD", self.method.as_str())).push(event);
        calendar.done().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invitation_carries_uid_sequence_method_and_zoned_times() {
        let invite = Invite {
            uid: "ABC123@tourdesk".into(),
            sequence: 2,
            method: Method::Cancel,
            summary: "Tour of Hudson 360".into(),
            description: "Virtual tour; code ABC123, see you then".into(),
            location: "360 Hudson St, New York".into(),
            start: NaiveDateTime::parse_from_str("2026-12-04T11:00", "%Y-%m-%dT%H:%M").unwrap(),
            duration: Duration::minutes(30),
            tzid: "America/New_York".into(),
            organizer: ("Harborline Leasing".into(), "tours@example.com".into()),
            attendee: ("Dana".into(), "dana@example.com".into()),
        };
        let ics = invite.to_ics();
        for line in [
            "METHOD:CANCEL",
            "UID:ABC123@tourdesk",
            "SEQUENCE:2",
            "STATUS:CANCELLED",
            "DTSTART;TZID=America/New_York:20261204T110000",
            "DTEND;TZID=America/New_York:20261204T113000",
            "DESCRIPTION:Virtual tour\\; code ABC123\\, see you then",
        ] {
            assert!(ics.lines().any(|l| l == line), "{line} missing from\n{ics}");
        }
        assert!(ics.contains("ORGANIZER;CN=Harborline Leasing:mailto:tours@example.com"), "{ics}");
        assert!(ics.contains("\r\n"), "content lines end in CRLF");
    }
}
