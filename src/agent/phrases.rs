//! What the agent says, in one place: the questions, read-backs and answers about tours, with the buildings, unit
//! sizes and pet policies taken from the catalog rather than restated.

use chrono::NaiveDateTime;

use super::bookings::Booking;
use super::catalog::Catalog;
use super::state::{PlannerState, Slot, TourType};
use super::tools::{money, spoken_time, unit_name};

/// The phrases for one catalog.
#[derive(Clone, Copy)]
pub struct Phrases<'a> {
    catalog: &'a Catalog,
}

/// "one", "two", … for small counts; digits beyond.
fn count_word(n: u8) -> String {
    const WORDS: [&str; 10] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    WORDS.get(usize::from(n)).map_or_else(|| n.to_string(), |w| (*w).to_string())
}

/// "A, B, or C"; "A or B"; "A".
fn either(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        [rest @ .., last] => format!("{}, or {last}", rest.join(", ")),
    }
}

/// A confirmation code as it is read to a caller: one character at a time ("A 1 B 2 C 3").
pub fn spelled(code: &str) -> String {
    code.chars().map(String::from).collect::<Vec<_>>().join(" ")
}

impl<'a> Phrases<'a> {
    /// Phrases over `catalog`.
    pub fn new(catalog: &'a Catalog) -> Self {
        Self { catalog }
    }

    /// A building's spoken name (its id when the catalog does not know it).
    pub fn property_name(&self, id: &str) -> String {
        self.catalog.property(id).map_or_else(|| id.to_string(), |p| p.name.clone())
    }

    /// "studios up to three bedrooms", from the unit sizes the buildings have.
    pub fn sizes(&self) -> String {
        let sizes = self.catalog.properties.iter().flat_map(|p| p.units.iter().map(|u| u.bedrooms));
        let (min, max) = sizes.fold((u8::MAX, 0), |(lo, hi), b| (lo.min(b), hi.max(b)));
        let smallest = if min == 0 { "studios".to_string() } else { format!("{} bedrooms", count_word(min)) };
        format!("{smallest} up to {} bedrooms", count_word(max))
    }

    /// "virtual tour of Hudson 360 on Friday, November 27 at 11:00 AM".
    pub fn tour_words(&self, tour: &Booking) -> String {
        format!(
            "{} tour of {} on {}",
            tour.tour_type.spoken(),
            self.property_name(&tour.property),
            spoken_time(tour.start)
        )
    }

    /// "a virtual tour of Hudson 360 on Friday, November 27 at 11:00 AM".
    pub fn a_tour(&self, tour: &Booking) -> String {
        format!("{} {}", if tour.tour_type == TourType::InPerson { "an" } else { "a" }, self.tour_words(tour))
    }

    /// The first words of a call to a new caller.
    pub fn hello(&self, name: Option<&str>) -> String {
        let office = &self.catalog.office.name;
        match name {
            Some(name) => format!("Thanks for calling {office}, {name}!"),
            None => format!("Thanks for calling {office}!"),
        }
    }

    /// The first words of a call to a returning caller: their name, their next tour, what is remembered.
    pub fn welcome_back(&self, name: Option<&str>, upcoming: Option<&Booking>, known: &[String]) -> String {
        let office = &self.catalog.office.name;
        let mut out = match name {
            Some(name) => format!("Welcome back to {office}, {name}!"),
            None => format!("Welcome back to {office}!"),
        };
        if let Some(tour) = upcoming {
            out.push_str(&format!(" You have {}.", self.a_tour(tour)));
        }
        if !known.is_empty() {
            out.push_str(&format!(" From your last call I have: {}.", known.join(", ")));
        }
        out
    }

    /// The question for a missing slot (not the tour time, which is an offer).
    pub fn ask(&self, slot: Slot, property: &str) -> String {
        match slot {
            Slot::Property => {
                let names: Vec<String> = self.catalog.properties.iter().map(|p| p.name.clone()).collect();
                format!("Which of our buildings are you interested in: {}?", either(&names))
            }
            Slot::Bedrooms => {
                format!("How many bedrooms are you looking for at {property}? We have {}.", self.sizes())
            }
            Slot::Pets => "Will any pets be moving in with you?".into(),
            Slot::MoveIn => "When are you hoping to move in?".into(),
            Slot::Budget => "What monthly budget do you have in mind?".into(),
            Slot::TourType => "Would you like an in-person tour or a virtual one?".into(),
            Slot::TourTime => "When would you like to come by?".into(),
            Slot::Name => "Great. May I have your name?".into(),
            Slot::Email => "What's the best email address for the confirmation?".into(),
            Slot::Phone => "And a phone number where we can reach you?".into(),
        }
    }

    /// Open times offered for a tour.
    pub fn offer(&self, tour: TourType, property: &str, times: &[NaiveDateTime]) -> String {
        let times: Vec<String> = times.iter().map(|t| spoken_time(*t)).collect();
        format!(
            "For {} tour of {property}, I can offer {}. Which works best?",
            tour.with_article(),
            times.join(", or ")
        )
    }

    /// No open times at all.
    pub fn no_times(&self, tour: TourType, property: &str) -> String {
        format!("I'm sorry, there are no open {} tours of {property} in the next three weeks.", tour.spoken())
    }

    /// The read-back before booking.
    pub fn read_back(&self, s: &PlannerState, property: &str) -> String {
        format!(
            "Let me confirm: {} tour of {property} on {}, for {}, email {}, phone {}. Shall I book it?",
            s.tour_type.map_or("a", |t| t.with_article()),
            s.tour_time.map(spoken_time).unwrap_or_default(),
            s.name.as_deref().unwrap_or_default(),
            s.email.as_deref().unwrap_or_default(),
            s.phone.as_deref().unwrap_or_default()
        )
    }

    /// The read-back before moving a tour.
    pub fn read_back_move(&self, from: &Booking, tour: Option<TourType>, to: NaiveDateTime) -> String {
        format!(
            "Let me confirm: move your {} tour of {} from {} to {}. Shall I move it?",
            tour.unwrap_or(from.tour_type).spoken(),
            self.property_name(&from.property),
            spoken_time(from.start),
            spoken_time(to)
        )
    }

    /// A requested time that is not open, with the nearest open ones.
    pub fn not_open(&self, wanted: NaiveDateTime, tour: TourType, property: &str, nearest: &[NaiveDateTime]) -> String {
        let alternatives: Vec<String> = nearest.iter().map(|s| spoken_time(*s)).collect();
        format!(
            "Sorry, {} isn't available for {} tour of {property}. The closest open times are {}.",
            spoken_time(wanted),
            tour.with_article(),
            alternatives.join(" or ")
        )
    }

    /// A requested day without open times.
    pub fn none_that_day(&self, tour: TourType, property: &str, day: NaiveDateTime) -> String {
        format!("There are no {} tours of {property} open on {}.", tour.spoken(), day.format("%A, %B %-d"))
    }

    /// Booked.
    pub fn booked(&self, b: &Booking) -> String {
        format!(
            "You're all set! Your {} tour of {} is booked for {}. Your confirmation code is {}.",
            b.tour_type.spoken(),
            self.property_name(&b.property),
            spoken_time(b.start),
            spelled(&b.confirmation),
        )
    }

    /// Moved.
    pub fn moved(&self, to: &Booking) -> String {
        format!(
            "Done: your {} tour of {} is now on {}. Your confirmation code stays {}.",
            to.tour_type.spoken(),
            self.property_name(&to.property),
            spoken_time(to.start),
            spelled(&to.confirmation),
        )
    }

    /// The answer to "when is my tour?".
    pub fn your_tour(&self, tour: Option<&Booking>) -> String {
        match tour {
            Some(t) => format!("You have {}. Your confirmation code is {}.", self.a_tour(t), spelled(&t.confirmation)),
            None => self.no_tour_here(),
        }
    }

    /// Asked about or for a change to a tour this number has not booked.
    pub fn no_tour_here(&self) -> String {
        "I don't see an upcoming tour booked for this number. If you booked from another phone, please read me your \
         confirmation code."
            .into()
    }

    /// A bedroom count beyond the catalog.
    pub fn no_such_size(&self, heard: &str) -> String {
        format!("We have {}, so {heard} bedrooms isn't something I can offer.", self.sizes())
    }

    /// A building that does not take dogs.
    pub fn no_dogs(&self, property: &str) -> String {
        format!("Just so you know, {property} is cats-only.")
    }

    /// A budget under a unit's lowest rent.
    pub fn over_budget(&self, bedrooms: u8, property: &str, rent_min: u32) -> String {
        format!("Just so you know, {}s at {property} start at {} a month.", unit_name(bedrooms), money(rent_min))
    }

    /// The goodbye.
    pub fn goodbye(&self) -> String {
        format!("Thanks for calling {}. Goodbye!", self.catalog.office.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_name_what_the_catalog_has() {
        let catalog = Catalog::builtin().unwrap();
        let say = Phrases::new(&catalog);
        let buildings = say.ask(Slot::Property, "");
        for p in &catalog.properties {
            assert!(buildings.contains(&p.name), "{buildings}");
        }
        assert_eq!(
            buildings,
            "Which of our buildings are you interested in: 21 West End, Hudson 360, or Riverview Lofts?"
        );
        assert_eq!(say.sizes(), "studios up to three bedrooms");
        assert_eq!(either(&["A".into(), "B".into()]), "A or B");
        assert_eq!(spelled("AB12"), "A B 1 2");
    }
}
