//! What the planner knows about the caller and how far the booking has come.

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// In-person or video tour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TourType {
    /// Walk through the building with an agent.
    InPerson,
    /// Live video tour.
    Virtual,
}

impl TourType {
    /// As said to a caller.
    pub fn spoken(self) -> &'static str {
        match self {
            Self::InPerson => "in-person",
            Self::Virtual => "virtual",
        }
    }

    /// With its article: "an in-person", "a virtual".
    pub fn with_article(self) -> &'static str {
        match self {
            Self::InPerson => "an in-person",
            Self::Virtual => "a virtual",
        }
    }
}

/// The caller's pets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pets {
    /// Number of cats.
    pub cats: u8,
    /// Number of dogs.
    pub dogs: u8,
    /// Other animals.
    pub other: u8,
}

impl Pets {
    /// Whether there are none.
    pub fn none(&self) -> bool {
        self.cats == 0 && self.dogs == 0 && self.other == 0
    }

    /// As said to a caller ("a cat and a dog", "no pets").
    pub fn spoken(&self) -> String {
        let part = |n: u8, one: &str, many: &str| match n {
            0 => None,
            1 => Some(format!("a {one}")),
            n => Some(format!("{n} {many}")),
        };
        let parts: Vec<String> =
            [part(self.cats, "cat", "cats"), part(self.dogs, "dog", "dogs"), part(self.other, "pet", "pets")]
                .into_iter()
                .flatten()
                .collect();
        if parts.is_empty() {
            "no pets".into()
        } else {
            parts.join(" and ")
        }
    }
}

/// Where the conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Nothing said yet.
    #[default]
    Greeting,
    /// Gathering what the caller wants.
    Qualifying,
    /// Choosing a tour slot.
    Scheduling,
    /// Taking name, email and phone.
    Contact,
    /// Read back, waiting for yes.
    Confirming,
    /// Booked.
    Booked,
}

/// Everything the planner knows in one call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PlannerState {
    /// Property id from the catalog.
    pub property: Option<String>,
    /// 0 for a studio.
    pub bedrooms: Option<u8>,
    /// Pets.
    pub pets: Option<Pets>,
    /// Wants a home that allows pets.
    #[serde(default)]
    pub pet_friendly: Option<bool>,
    /// Monthly budget in dollars.
    pub budget: Option<u32>,
    /// Desired move-in date.
    pub move_in: Option<NaiveDate>,
    /// Tour type.
    pub tour_type: Option<TourType>,
    /// Chosen tour start (office wall clock).
    pub tour_time: Option<NaiveDateTime>,
    /// Caller's name.
    pub name: Option<String>,
    /// Caller's email.
    pub email: Option<String>,
    /// Caller's phone (E.164).
    pub phone: Option<String>,
    /// Booking progress.
    pub stage: Stage,
    /// Confirmation code once booked.
    pub confirmation: Option<String>,
}

/// A slot of the state, for asking, remembering and reporting changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    /// Property.
    Property,
    /// Bedrooms.
    Bedrooms,
    /// Pets.
    Pets,
    /// Budget.
    Budget,
    /// Move-in date.
    MoveIn,
    /// Tour type.
    TourType,
    /// Tour time.
    TourTime,
    /// Name.
    Name,
    /// Email.
    Email,
    /// Phone.
    Phone,
}

impl Slot {
    /// Every slot, in the order the planner asks for them.
    pub const ALL: [Slot; 10] = [
        Slot::Property,
        Slot::Bedrooms,
        Slot::Pets,
        Slot::MoveIn,
        Slot::Budget,
        Slot::TourType,
        Slot::TourTime,
        Slot::Name,
        Slot::Email,
        Slot::Phone,
    ];

    /// Name used in memories and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Property => "property",
            Slot::Bedrooms => "bedrooms",
            Slot::Pets => "pets",
            Slot::Budget => "budget",
            Slot::MoveIn => "move_in",
            Slot::TourType => "tour_type",
            Slot::TourTime => "tour_time",
            Slot::Name => "name",
            Slot::Email => "email",
            Slot::Phone => "phone",
        }
    }

    /// Whether a later call should reuse it (a tour time belongs to one booking, not to the caller).
    pub fn remembered(self) -> bool {
        self != Slot::TourTime
    }
}

impl PlannerState {
    /// Whether a slot has a value.
    pub fn has(&self, slot: Slot) -> bool {
        match slot {
            Slot::Property => self.property.is_some(),
            Slot::Bedrooms => self.bedrooms.is_some(),
            Slot::Pets => self.pets.is_some(),
            Slot::Budget => self.budget.is_some(),
            Slot::MoveIn => self.move_in.is_some(),
            Slot::TourType => self.tour_type.is_some(),
            Slot::TourTime => self.tour_time.is_some(),
            Slot::Name => self.name.is_some(),
            Slot::Email => self.email.is_some(),
            Slot::Phone => self.phone.is_some(),
        }
    }

    /// A slot's value as JSON (for memory and events); `None` when unset.
    pub fn value(&self, slot: Slot) -> Option<serde_json::Value> {
        let v = match slot {
            Slot::Property => serde_json::to_value(&self.property),
            Slot::Bedrooms => serde_json::to_value(self.bedrooms),
            Slot::Pets => serde_json::to_value(self.pets),
            Slot::Budget => serde_json::to_value(self.budget),
            Slot::MoveIn => serde_json::to_value(self.move_in),
            Slot::TourType => serde_json::to_value(self.tour_type),
            Slot::TourTime => serde_json::to_value(self.tour_time),
            Slot::Name => serde_json::to_value(&self.name),
            Slot::Email => serde_json::to_value(&self.email),
            Slot::Phone => serde_json::to_value(&self.phone),
        }
        .ok()?;
        (!v.is_null()).then_some(v)
    }

    /// Sets a slot from its JSON value (as [`PlannerState::value`] wrote it); false when the value does not fit.
    pub fn set_value(&mut self, slot: Slot, v: serde_json::Value) -> bool {
        fn parse<T: serde::de::DeserializeOwned>(v: serde_json::Value, into: &mut Option<T>) -> bool {
            serde_json::from_value(v).map(|x| *into = Some(x)).is_ok()
        }
        match slot {
            Slot::Property => parse(v, &mut self.property),
            Slot::Bedrooms => parse(v, &mut self.bedrooms),
            Slot::Pets => parse(v, &mut self.pets),
            Slot::Budget => parse(v, &mut self.budget),
            Slot::MoveIn => parse(v, &mut self.move_in),
            Slot::TourType => parse(v, &mut self.tour_type),
            Slot::TourTime => parse(v, &mut self.tour_time),
            Slot::Name => parse(v, &mut self.name),
            Slot::Email => parse(v, &mut self.email),
            Slot::Phone => parse(v, &mut self.phone),
        }
    }

    /// Slots whose values differ between `self` and `other`.
    pub fn changed_slots(&self, other: &PlannerState) -> Vec<Slot> {
        Slot::ALL.into_iter().filter(|s| self.value(*s) != other.value(*s)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_json() {
        let mut s = PlannerState {
            property: Some("hudson-360".into()),
            bedrooms: Some(2),
            pets: Some(Pets { cats: 1, ..Pets::default() }),
            move_in: NaiveDate::from_ymd_opt(2027, 1, 15),
            tour_type: Some(TourType::Virtual),
            ..PlannerState::default()
        };
        let copy = s.clone();
        let mut fresh = PlannerState::default();
        for slot in Slot::ALL {
            if let Some(v) = s.value(slot) {
                assert!(fresh.set_value(slot, v));
            }
        }
        assert_eq!(fresh, copy);
        assert!(!s.set_value(Slot::Bedrooms, serde_json::json!("two")));
        s.bedrooms = Some(3);
        assert_eq!(s.changed_slots(&copy), [Slot::Bedrooms]);
        assert_eq!(Pets { cats: 2, dogs: 1, other: 0 }.spoken(), "2 cats and a dog");
    }
}
