//! The property catalog (`data/properties.json`): buildings, units, policies, fees and tour schedules, and the
//! concrete tour slots those schedules open in the coming weeks.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

use super::state::TourType;
use super::AgentError;

/// The catalog shipped in `data/properties.json`, compiled in so the binary works from any folder.
const BUILTIN: &str = include_str!("../../data/properties.json");

/// The leasing office and its buildings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catalog {
    /// The office itself.
    pub office: Office,
    /// Buildings, in the order they are offered.
    pub properties: Vec<Property>,
}

/// The leasing office.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Office {
    /// Name used in greetings.
    pub name: String,
    /// Phone number read out on request.
    pub phone: String,
    /// IANA time zone of tour times (they are wall-clock times there).
    pub timezone: String,
}

/// One building.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Property {
    /// Stable id (`hudson-360`).
    pub id: String,
    /// Spoken name (`Hudson 360`).
    pub name: String,
    /// Lower-case phrases that name it in speech, longest first wins.
    pub aliases: Vec<String>,
    /// Street address.
    pub address: String,
    /// Unit types with rents and availability.
    pub units: Vec<Unit>,
    /// Pet policy.
    pub pets: PetPolicy,
    /// Parking.
    pub parking: Parking,
    /// One-off and monthly fees.
    pub fees: Fees,
    /// Security deposit rule, as said to callers.
    pub deposit: String,
    /// Amenities.
    pub amenities: Vec<String>,
    /// Weekly tour schedule.
    pub tours: Tours,
}

/// A unit type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unit {
    /// `studio`, `1BR`, …
    pub kind: String,
    /// 0 for a studio.
    pub bedrooms: u8,
    /// Lowest monthly rent.
    pub rent_min: u32,
    /// Highest monthly rent.
    pub rent_max: u32,
    /// Typical size.
    pub sqft: u32,
    /// First move-in date.
    pub available_from: NaiveDate,
    /// Units of this type open.
    pub available_units: u32,
}

/// Pet rules and costs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PetPolicy {
    /// Cats allowed.
    pub cats: bool,
    /// Dogs allowed.
    pub dogs: bool,
    /// Most pets per home.
    pub max_pets: u8,
    /// Heaviest dog allowed.
    pub dog_weight_limit_lbs: u32,
    /// One-off pet deposit.
    pub deposit: u32,
    /// Monthly pet rent per pet.
    pub monthly_fee: u32,
    /// Anything else worth saying.
    pub notes: String,
}

/// Parking.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Parking {
    /// What kind of parking.
    pub kind: String,
    /// Monthly cost per space.
    pub monthly: u32,
    /// EV chargers available.
    pub ev_charging: bool,
}

/// Fees.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fees {
    /// Application fee per adult.
    pub application: u32,
    /// Monthly amenity fee.
    pub amenity_monthly: u32,
    /// One-off move-in fee.
    pub move_in: u32,
}

/// Weekly tour schedules per tour type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tours {
    /// In-person tours.
    pub in_person: Schedule,
    /// Video tours.
    #[serde(rename = "virtual")]
    pub video: Schedule,
}

/// Days and start times of a weekly schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schedule {
    /// `Mon` … `Sun`.
    pub days: Vec<String>,
    /// `HH:MM`, office wall clock.
    pub times: Vec<String>,
}

impl Catalog {
    /// Which buildings take which pets: "All our buildings welcome pets: cats and dogs at 21 West End and
    /// Hudson 360, cats only at Riverview Lofts."
    pub fn pet_summary(&self) -> String {
        let kinds = |p: &PetPolicy| match (p.cats, p.dogs) {
            (true, true) => Some("cats and dogs"),
            (true, false) => Some("cats only"),
            (false, true) => Some("dogs only"),
            (false, false) => None,
        };
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for prop in &self.properties {
            if let Some(kind) = kinds(&prop.pets) {
                match groups.iter_mut().find(|(k, _)| *k == kind) {
                    Some((_, names)) => names.push(&prop.name),
                    None => groups.push((kind, vec![&prop.name])),
                }
            }
        }
        if groups.is_empty() {
            return "I'm sorry, none of our buildings allow pets.".into();
        }
        let all = groups.iter().map(|(_, n)| n.len()).sum::<usize>() == self.properties.len();
        let listed: Vec<String> =
            groups.iter().map(|(kind, names)| format!("{kind} at {}", names.join(" and "))).collect();
        format!(
            "{} welcome pets: {}.",
            if all { "All our buildings" } else { "Some of our buildings" },
            listed.join(", ")
        )
    }

    /// The catalog compiled into the binary.
    pub fn builtin() -> Result<Self, AgentError> {
        Self::from_json(BUILTIN)
    }

    /// Parses and checks a catalog.
    pub fn from_json(json: &str) -> Result<Self, AgentError> {
        let catalog: Catalog = serde_json::from_str(json).map_err(|e| AgentError::Catalog(e.to_string()))?;
        for p in &catalog.properties {
            for s in [&p.tours.in_person, &p.tours.video] {
                for d in &s.days {
                    d.parse::<Weekday>().map_err(|_| AgentError::Catalog(format!("{}: bad day {d:?}", p.id)))?;
                }
                for t in &s.times {
                    NaiveTime::parse_from_str(t, "%H:%M")
                        .map_err(|_| AgentError::Catalog(format!("{}: bad time {t:?}", p.id)))?;
                }
            }
        }
        Ok(catalog)
    }

    /// The property with this id.
    pub fn property(&self, id: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.id == id)
    }

    /// The property named in `text` (lower-case), preferring the longest alias that appears.
    pub fn find_property(&self, text: &str) -> Option<&Property> {
        self.properties
            .iter()
            .flat_map(|p| p.aliases.iter().map(move |a| (p, a)))
            .filter(|(_, alias)| contains_phrase(text, alias))
            .max_by_key(|(_, alias)| alias.len())
            .map(|(p, _)| p)
    }
}

/// Whether `phrase` appears in `text` on word boundaries.
pub(crate) fn contains_phrase(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(i, _)| {
        let before = text[..i].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        let after = text[i + phrase.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric());
        before && after
    })
}

impl Property {
    /// The unit type with this many bedrooms.
    pub fn unit(&self, bedrooms: u8) -> Option<&Unit> {
        self.units.iter().find(|u| u.bedrooms == bedrooms)
    }

    /// The schedule for a tour type.
    pub fn schedule(&self, tour: TourType) -> &Schedule {
        match tour {
            TourType::InPerson => &self.tours.in_person,
            TourType::Virtual => &self.tours.video,
        }
    }

    /// Every scheduled tour start of `tour` type from `after` (exclusive) through `days` days later, in order.
    pub fn tour_slots(&self, tour: TourType, after: NaiveDateTime, days: u32) -> Vec<NaiveDateTime> {
        let schedule = self.schedule(tour);
        let weekdays: Vec<Weekday> = schedule.days.iter().filter_map(|d| d.parse().ok()).collect();
        let mut times: Vec<NaiveTime> =
            schedule.times.iter().filter_map(|t| NaiveTime::parse_from_str(t, "%H:%M").ok()).collect();
        times.sort();
        let start = after.date();
        (0..=days)
            .filter_map(|d| start.checked_add_days(chrono::Days::new(d.into())))
            .filter(|date| weekdays.contains(&date.weekday()))
            .flat_map(|date| times.iter().map(move |t| date.and_time(*t)))
            .filter(|slot| *slot > after)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_the_three_buildings() {
        let c = Catalog::builtin().unwrap();
        let names: Vec<&str> = c.properties.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["21 West End", "Hudson 360", "Riverview Lofts"]);
        for p in &c.properties {
            assert!((0..=3).all(|b| p.unit(b).is_some()), "{} lacks a unit type", p.name);
        }
    }

    #[test]
    fn aliases_match_whole_words_and_prefer_the_longest() {
        let c = Catalog::builtin().unwrap();
        assert_eq!(c.find_property("i'd like to see hudson").unwrap().id, "hudson-360");
        assert_eq!(c.find_property("what about 21 west end?").unwrap().id, "21-west-end");
        assert_eq!(c.find_property("the riverview lofts please").unwrap().id, "riverview-lofts");
        assert!(c.find_property("hudsonville").is_none());
    }

    #[test]
    fn slots_follow_the_weekly_schedule() {
        let c = Catalog::builtin().unwrap();
        let hudson = c.property("hudson-360").unwrap();
        // 2026-11-27 is a Friday.
        let after = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap().and_hms_opt(12, 0, 0).unwrap();
        let slots = hudson.tour_slots(TourType::Virtual, after, 7);
        assert_eq!(slots[0], NaiveDate::from_ymd_opt(2026, 11, 27).unwrap().and_hms_opt(15, 0, 0).unwrap());
        assert!(slots.iter().all(|s| matches!(s.weekday(), Weekday::Mon | Weekday::Wed | Weekday::Fri)));
    }
}
