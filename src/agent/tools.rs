//! The agent's tools: answers about pricing, pets, parking, fees, amenities, addresses and availability from the
//! catalog, open tour slots, and booking. Each call returns a [`ToolEvent`] for the reply and the flight recorder.

use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::{json, Value};

use super::bookings::{BookOutcome, Booking, BookingStore};
use super::catalog::{Catalog, Property};
use super::parser::Topic;
use super::state::TourType;
use super::AgentError;

/// How far ahead tours are offered.
pub const TOUR_WINDOW_DAYS: u32 = 21;

/// One tool call: what was asked, what came back, how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ToolEvent {
    /// Tool name.
    pub name: String,
    /// Arguments.
    pub args: Value,
    /// Result.
    pub result: Value,
    /// Wall time in milliseconds.
    pub duration_ms: f64,
}

/// The tool dispatcher. Cheap to clone.
#[derive(Clone)]
pub struct Tools {
    catalog: Arc<Catalog>,
    bookings: BookingStore,
}

/// "$3,800".
pub fn money(n: u32) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("${out}")
}

/// "studio", "one-bedroom", …
pub fn unit_name(bedrooms: u8) -> String {
    match bedrooms {
        0 => "studio".into(),
        1 => "one-bedroom".into(),
        2 => "two-bedroom".into(),
        3 => "three-bedroom".into(),
        n => format!("{n}-bedroom"),
    }
}

/// "Friday, November 27 at 10:00 AM".
pub fn spoken_time(t: NaiveDateTime) -> String {
    t.format("%A, %B %-d at %-I:%M %p").to_string()
}

/// The answer to a question about `topic` for one property (or every one, when none is chosen yet), from the
/// catalog.
pub fn answer(catalog: &Catalog, topic: Topic, property: Option<&str>, bedrooms: Option<u8>) -> String {
    let properties: Vec<&Property> = match property.and_then(|id| catalog.property(id)) {
        Some(p) => vec![p],
        None => catalog.properties.iter().collect(),
    };
    properties.iter().map(|p| answer_for(p, topic, bedrooms)).collect::<Vec<_>>().join(" ")
}

impl Tools {
    /// Tools over a catalog and a bookings table.
    pub fn new(catalog: Arc<Catalog>, bookings: BookingStore) -> Self {
        Self { catalog, bookings }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The catalog, shared.
    pub fn shared_catalog(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }

    /// Open tour starts after `after`, within [`TOUR_WINDOW_DAYS`], with booked ones removed.
    pub async fn open_slots(
        &self,
        property: &str,
        tour: TourType,
        after: NaiveDateTime,
    ) -> Result<(Vec<NaiveDateTime>, ToolEvent), AgentError> {
        let started = Instant::now();
        let p = self
            .catalog
            .property(property)
            .ok_or_else(|| AgentError::Catalog(format!("unknown property {property}")))?;
        let taken = self.bookings.taken(property, tour).await?;
        let open: Vec<NaiveDateTime> =
            p.tour_slots(tour, after, TOUR_WINDOW_DAYS).into_iter().filter(|s| !taken.contains(s)).collect();
        let event = ToolEvent {
            name: "availability".into(),
            args: json!({"property": property, "tour_type": tour, "after": after}),
            result: json!({"open": open.len(), "first": open.iter().take(3).collect::<Vec<_>>()}),
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        };
        Ok((open, event))
    }

    /// Books a tour.
    pub async fn book(&self, booking: Booking) -> Result<(BookOutcome, ToolEvent), AgentError> {
        let started = Instant::now();
        let args = json!({"property": booking.property, "tour_type": booking.tour_type, "start": booking.start});
        let outcome = self.bookings.book(booking).await?;
        let result = match &outcome {
            BookOutcome::Booked(b) => json!({"booked": true, "confirmation": b.confirmation}),
            BookOutcome::Taken => json!({"booked": false, "reason": "slot taken"}),
        };
        Ok((
            outcome,
            ToolEvent { name: "booking".into(), args, result, duration_ms: started.elapsed().as_secs_f64() * 1000.0 },
        ))
    }

    /// The bookings table.
    pub fn bookings(&self) -> &BookingStore {
        &self.bookings
    }

    /// A caller's existing bookings.
    pub async fn bookings_for(&self, user_id: &str) -> Result<Vec<Booking>, AgentError> {
        self.bookings.for_user(user_id).await
    }
}

fn answer_for(p: &Property, topic: Topic, bedrooms: Option<u8>) -> String {
    let name = &p.name;
    match topic {
        Topic::Pricing => match bedrooms.and_then(|b| p.unit(b)) {
            Some(u) => format!(
                "At {name}, {}s rent for {} to {} a month.",
                unit_name(u.bedrooms),
                money(u.rent_min),
                money(u.rent_max)
            ),
            None => {
                let lo = p.units.iter().map(|u| u.rent_min).min().unwrap_or(0);
                let hi = p.units.iter().map(|u| u.rent_max).max().unwrap_or(0);
                format!("At {name}, rents run from {} for a studio to {} for a three-bedroom.", money(lo), money(hi))
            }
        },
        Topic::Pets => {
            let allowed = match (p.pets.cats, p.pets.dogs) {
                (true, true) => format!("cats and dogs up to {} pounds are welcome", p.pets.dog_weight_limit_lbs),
                (true, false) => "cats are welcome but not dogs".into(),
                (false, true) => "dogs are welcome but not cats".into(),
                (false, false) => "pets are not allowed".into(),
            };
            format!(
                "At {name}, {allowed}, up to {} per home. The pet deposit is {} and pet rent is {} a month per pet. {}",
                p.pets.max_pets,
                money(p.pets.deposit),
                money(p.pets.monthly_fee),
                p.pets.notes
            )
        }
        Topic::Parking => format!(
            "{name} has a {} at {} a month{}.",
            p.parking.kind,
            money(p.parking.monthly),
            if p.parking.ev_charging { ", with EV charging" } else { "" }
        ),
        Topic::Fees => format!(
            "At {name}, the application fee is {}, the amenity fee is {} a month{}, and the deposit is: {}.",
            money(p.fees.application),
            money(p.fees.amenity_monthly),
            if p.fees.move_in > 0 {
                format!(", there is a {} move-in fee", money(p.fees.move_in))
            } else {
                String::new()
            },
            p.deposit.to_lowercase()
        ),
        Topic::Amenities => format!("{name} offers {}.", p.amenities.join(", ")),
        Topic::Address => format!("{name} is at {}.", p.address),
        Topic::Availability => {
            let units: Vec<String> = p
                .units
                .iter()
                .filter(|u| bedrooms.is_none_or(|b| u.bedrooms == b) && u.available_units > 0)
                .map(|u| {
                    format!(
                        "{} {}s from {}",
                        u.available_units,
                        unit_name(u.bedrooms),
                        u.available_from.format("%B %-d")
                    )
                })
                .collect();
            if units.is_empty() {
                format!("{name} has nothing of that size open right now.")
            } else {
                format!("{name} has {} open.", units.join(", "))
            }
        }
        Topic::TourTimes => {
            let ip = &p.tours.in_person;
            format!(
                "{name} offers in-person tours {} and virtual tours {}.",
                ip.days.join("/"),
                p.tours.video.days.join("/")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_come_from_the_catalog() {
        let catalog = Catalog::builtin().unwrap();
        let hudson = catalog.property("hudson-360").unwrap();
        assert!(answer_for(hudson, Topic::Pets, None).contains("$400"));
        assert!(answer_for(hudson, Topic::Pricing, Some(2)).contains("$3,800 to $4,200"));
        let riverview = catalog.property("riverview-lofts").unwrap();
        assert!(answer_for(riverview, Topic::Pets, None).contains("not dogs"));
        assert_eq!(money(12345), "$12,345");
        assert_eq!(unit_name(0), "studio");
    }
}
