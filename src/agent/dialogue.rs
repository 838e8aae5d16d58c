//! The dialogue policy: one pure step per caller turn. It reads what the caller said (already parsed) against the
//! call's state and a snapshot of the bookings, and decides what to say and which single change to the bookings to
//! make (book, move, cancel). No I/O and no waiting: the call session ([`super::AgentPlanner`]) fetches the snapshot,
//! makes the change the step asks for, and hands the outcome back to be said.

use chrono::{NaiveDateTime, Timelike};

use super::bookings::{BookOutcome, Booking, MoveOutcome};
use super::catalog::Catalog;
use super::memory_service::preference_text;
use super::parser::{Parsed, TimeRequest, Topic};
use super::phrases::Phrases;
use super::state::{PlannerState, Slot, Stage, TourType};
use super::tools::{answer, TOUR_WINDOW_DAYS};

/// Slots offered at once.
const OFFER: usize = 3;
/// A past tour is asked about ("How was your tour?") for this many days after it.
const ASK_ABOUT_PAST_DAYS: i64 = 60;

/// The bookings as they stand this turn (from now on), the catalog and the clock.
#[derive(Clone, Copy)]
pub struct Calendar<'a> {
    catalog: &'a Catalog,
    tours: &'a [Booking],
    now: NaiveDateTime,
}

impl<'a> Calendar<'a> {
    /// A snapshot: `tours` must hold every booking starting after `now`.
    pub fn new(catalog: &'a Catalog, tours: &'a [Booking], now: NaiveDateTime) -> Self {
        Self { catalog, tours, now }
    }

    /// Open starts of a tour type at a property, soonest first, within the offer window.
    pub fn open(&self, property: &str, tour: TourType) -> Vec<NaiveDateTime> {
        let Some(p) = self.catalog.property(property) else { return Vec::new() };
        let taken = |s: &NaiveDateTime| {
            self.tours.iter().any(|b| b.property == property && b.tour_type == tour && b.start == *s)
        };
        p.tour_slots(tour, self.now, TOUR_WINDOW_DAYS).into_iter().filter(|s| !taken(s)).collect()
    }

    /// The upcoming tour with this confirmation code.
    pub fn by_code(&self, code: &str) -> Option<&'a Booking> {
        self.tours.iter().find(|b| b.confirmation.eq_ignore_ascii_case(code) && b.start > self.now)
    }

    /// The caller's next tour at a property.
    fn upcoming_at(&self, user_id: &str, property: &str) -> Option<&'a Booking> {
        self.tours
            .iter()
            .filter(|b| b.user_id == user_id && b.property == property && b.start > self.now)
            .min_by_key(|b| b.start)
    }
}

/// The one change to the bookings a turn asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// Book this tour.
    Book(Booking),
    /// Move this tour to a new start (and tour type).
    Move {
        /// The tour as booked.
        from: Booking,
        /// The new start.
        start: NaiveDateTime,
        /// The new tour type, when it changes.
        tour_type: Option<TourType>,
    },
    /// Cancel this tour.
    Cancel(Booking),
}

/// A change to a tour waiting for its confirmation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TourAction {
    Cancel,
    Move,
}

/// One turn in progress: what is said so far, the catalog answers given, the change to make.
#[derive(Debug)]
pub struct Step {
    parts: Vec<String>,
    /// Questions answered from the catalog, with their answers.
    pub answers: Vec<(Topic, String)>,
    /// The change to the bookings to make before the reply.
    pub commit: Option<Commit>,
    before: PlannerState,
    expected_before: Option<Slot>,
    understood: bool,
    no_answer: bool,
    asks_past: bool,
    was_asked_keep: bool,
    was_confirming_cancel: bool,
    cancel_asked: bool,
    was_awaiting: bool,
    goodbye: bool,
}

/// The call's conversation: the planner state and what the last reply asked or offered.
#[derive(Debug, Clone, Default)]
pub struct Dialogue {
    user_id: String,
    /// Everything known in this call.
    pub state: PlannerState,
    /// The slot the last reply asked for.
    expected: Option<Slot>,
    /// Slots the last reply offered, in the order said.
    offered: Vec<NaiveDateTime>,
    /// A time the caller gave before property and tour type were known.
    pending_time: Option<TimeRequest>,
    /// The caller said no to the read-back; wait for a change before reading it back again.
    awaiting_change: bool,
    /// The last reply asked whether to cancel the upcoming tour.
    confirming_cancel: bool,
    /// The tour being moved: the new time is being chosen or confirmed.
    moving: Option<Booking>,
    /// The next prompt asks whether to keep, move or cancel the upcoming tour.
    ask_keep: bool,
    /// The last reply asked whether to keep, move or cancel the upcoming tour.
    asked_keep: bool,
    /// The caller asked to cancel or move a tour that is not on this number: done once they give its code.
    pending: Option<TourAction>,
    /// The tour this call is about (the caller's next, or one found by its code).
    upcoming: Option<Booking>,
    /// The caller's most recent tour, when it is over and recent.
    past: Option<Booking>,
    /// The last reply asked how that tour went.
    asked_past: bool,
    /// The last reply was the goodbye: the call is over.
    over: bool,
}

fn is_phone_number(user_id: &str) -> bool {
    user_id.starts_with('+') && user_id.len() >= 11 && user_id[1..].chars().all(|c| c.is_ascii_digit())
}

impl Dialogue {
    /// A conversation with `user_id`.
    pub fn new(user_id: &str) -> Self {
        Self { user_id: user_id.to_string(), ..Self::default() }
    }

    /// The slot the last reply asked for (context for reading the next utterance).
    pub fn expected(&self) -> Option<Slot> {
        self.expected
    }

    /// The tour this call is about.
    pub fn upcoming(&self) -> Option<&Booking> {
        self.upcoming.as_ref()
    }

    /// Starts the call from what memory holds (`remembered`, with whether it holds more than the phone number)
    /// and the caller's own tours (past ones too). Returns whether the caller is known.
    pub fn begin(&mut self, remembered: Option<(PlannerState, bool)>, tours: &[Booking], now: NaiveDateTime) -> bool {
        let mut returning = false;
        if let Some((state, known)) = remembered {
            self.state = state;
            self.state.tour_time = None;
            returning = known;
        }
        if self.state.phone.is_none() && is_phone_number(&self.user_id) {
            self.state.phone = Some(self.user_id.clone());
        }
        self.state.stage = Stage::Qualifying;
        self.upcoming = tours.iter().filter(|b| b.start > now).min_by_key(|b| b.start).cloned();
        if let Some(tour) = self.upcoming.clone() {
            // The tour they have is where this call starts: no new slots are offered for it, and the first
            // question is whether to keep, move or cancel it.
            self.hold_tour(&tour);
            self.ask_keep = true;
            returning = true;
        } else {
            let recent = now - chrono::Duration::days(ASK_ABOUT_PAST_DAYS);
            self.past = tours.iter().filter(|b| b.start <= now && b.start > recent).max_by_key(|b| b.start).cloned();
            returning |= self.past.is_some();
        }
        returning
    }

    /// The greeting of a call opened before the caller speaks: a recent tour is asked about first, otherwise the
    /// first question follows.
    pub fn greet(&mut self, returning: bool, cal: &Calendar<'_>) -> String {
        match self.past.take() {
            Some(past) => {
                self.asked_past = true;
                let say = Phrases::new(cal.catalog);
                format!("{} How was your {}?", self.greeting(returning, cal.catalog), say.tour_words(&past))
            }
            None => format!("{} {}", self.greeting(returning, cal.catalog), self.next_prompt(cal)),
        }
    }

    /// The first words of a call: a returning caller hears what is remembered.
    fn greeting(&self, returning: bool, catalog: &Catalog) -> String {
        let say = Phrases::new(catalog);
        if !returning {
            return say.hello(self.state.name.as_deref());
        }
        let known: Vec<String> = [Slot::Bedrooms, Slot::Property, Slot::Pets]
            .iter()
            .filter_map(|s| preference_text(&self.state, *s, catalog))
            .map(|t| {
                let mut c = t.chars();
                c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
            })
            .collect();
        say.welcome_back(self.state.name.as_deref(), self.upcoming.as_ref(), &known)
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
    fn start_move(&mut self, tour: &Booking, parts: &mut Vec<String>, say: Phrases<'_>) {
        if self.moving.is_none() {
            parts.push(format!("Sure, let's find a new time for your {}.", say.tour_words(tour)));
        }
        let chosen_type = self.state.tour_type;
        self.hold_tour(tour);
        self.state.tour_type = chosen_type.or(Some(tour.tour_type));
        self.state.tour_time = None;
        self.state.stage = Stage::Scheduling;
        self.offered.clear();
        self.moving = Some(tour.clone());
    }

    /// Reads one parsed utterance. `greeting` is `Some(returning)` on a call's first turn when it was not greeted
    /// before the caller spoke. Returns the turn so far; make its [`Step::commit`], report the outcome, then
    /// [`Dialogue::finish`] it.
    pub fn step(&mut self, parsed: &Parsed, text: &str, greeting: Option<bool>, cal: &Calendar<'_>) -> Step {
        let say = Phrases::new(cal.catalog);
        let before = self.state.clone();
        let mut parts = Vec::new();
        let was_asked_keep = std::mem::take(&mut self.asked_keep);
        let mut wants_cancel = parsed.cancel_tour;
        let mut wants_move = parsed.move_tour;
        if let Some(code) = &parsed.code {
            match cal.by_code(code) {
                Some(tour) => {
                    if self.upcoming.as_ref() != Some(tour) {
                        parts.push(format!("Thanks, I found your {}.", say.tour_words(tour)));
                    }
                    self.hold_tour(tour);
                    self.upcoming = Some(tour.clone());
                    self.moving = None;
                    match self.pending.take() {
                        Some(TourAction::Cancel) => wants_cancel = true,
                        Some(TourAction::Move) => wants_move = true,
                        None => {}
                    }
                }
                None => parts
                    .push(format!("I couldn't find an upcoming tour with the code {}.", super::phrases::spelled(code))),
            }
        }
        if wants_cancel || wants_move || parsed.keep_tour || parsed.own_tour {
            self.ask_keep = false;
        }
        let booked_property = (self.state.stage == Stage::Booked).then(|| self.state.property.clone()).flatten();
        let asked_again = self.apply(parsed, &mut parts, cal.catalog);
        if booked_property.is_some() && self.state.property != booked_property {
            // Another building after a booking: a new booking for it (the one they have stays).
            self.state.stage = Stage::Qualifying;
            self.state.tour_time = None;
            self.state.confirmation = None;
        } else if let Some(tour) = self.upcoming.clone().filter(|_| booked_property.is_some()) {
            // A move asked for, or a different type or time for the tour they have: choose the new time.
            let asked_type = self.state.tour_type.is_some_and(|t| t != tour.tour_type);
            if (wants_move || asked_type || parsed.time.is_some()) && !wants_cancel {
                self.start_move(&tour, &mut parts, say);
            }
        } else if wants_move && self.upcoming.is_none() && mentions_own_tour(text) {
            parts.push(say.no_tour_here());
            self.pending = Some(TourAction::Move);
        }
        if std::mem::take(&mut self.asked_past) && (parsed.answer.is_some() || text.split_whitespace().count() > 2) {
            parts.push("Thank you for telling me.".into());
        }
        if let Some(returning) = greeting {
            parts.insert(0, self.greeting(returning, cal.catalog));
        }
        if parsed.own_tour {
            parts.push(say.your_tour(self.upcoming.as_ref()));
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
        let mut commit = None;
        if wants_cancel {
            match &self.upcoming {
                Some(tour) => {
                    parts.push(format!("Shall I cancel your {}?", say.tour_words(tour)));
                    self.confirming_cancel = true;
                    cancel_asked = true;
                }
                None => {
                    parts.push(say.no_tour_here());
                    self.pending = Some(TourAction::Cancel);
                }
            }
        } else if was_confirming_cancel {
            match parsed.answer {
                Some(true) => commit = self.upcoming.clone().map(Commit::Cancel),
                Some(false) => parts.push("Okay, your tour stays as booked.".into()),
                None => {}
            }
        }
        let mut answers = Vec::new();
        for topic in &parsed.questions {
            let text = answer(cal.catalog, *topic, self.state.property.as_deref(), self.state.bedrooms);
            parts.push(text.clone());
            answers.push((*topic, text));
        }
        self.choose_time(parsed, text, &mut parts, cal);
        let was_awaiting = self.awaiting_change;
        if self.state.stage == Stage::Confirming && commit.is_none() {
            commit = self.confirm(parsed, &mut parts, cal);
        }
        let understood = !parsed.questions.is_empty()
            || parsed.own_tour
            || parsed.code.is_some()
            || self.state != before
            || asked_again
            || parsed.keep_tour
            || (was_asked_keep && parsed.answer.is_some());
        // A first "hello" from a caller whose tour is recently over: ask how it went before anything else.
        let asks_past = greeting.is_some() && !understood && self.past.is_some();
        if asks_past {
            if let Some(past) = self.past.take() {
                parts.push(format!("How was your {}?", say.tour_words(&past)));
                self.asked_past = true;
            }
        }
        Step {
            parts,
            answers,
            commit,
            before,
            expected_before: self.expected,
            understood,
            no_answer: parsed.answer == Some(false),
            asks_past,
            was_asked_keep,
            was_confirming_cancel,
            cancel_asked,
            was_awaiting,
            goodbye: parsed.goodbye,
        }
    }

    /// Whether the call is over: the last reply said goodbye (the caller did, or had nothing more after a booking).
    pub fn is_over(&self) -> bool {
        self.over
    }

    /// A booking was made or refused; `emailed` says what happened to its confirmation email.
    pub fn booked(&mut self, step: &mut Step, outcome: &BookOutcome, emailed: String, catalog: &Catalog) {
        match outcome {
            BookOutcome::Booked(b) => {
                self.upcoming = Some(b.clone());
                step.parts.push(Phrases::new(catalog).booked(b));
                step.parts.push(emailed);
                self.state.confirmation = Some(b.confirmation.clone());
                self.state.stage = Stage::Booked;
            }
            BookOutcome::Taken => self.lost_slot(step),
        }
    }

    /// A move was made or refused.
    pub fn moved(&mut self, step: &mut Step, outcome: &MoveOutcome, emailed: String, catalog: &Catalog) {
        match outcome {
            MoveOutcome::Moved { to, .. } => {
                self.moving = None;
                step.parts.push(Phrases::new(catalog).moved(to));
                step.parts.push(emailed);
                self.hold_tour(to);
                self.upcoming = Some(to.clone());
            }
            MoveOutcome::Taken => self.lost_slot(step),
            MoveOutcome::NotFound => {
                self.moving = None;
                self.upcoming = None;
                self.state.confirmation = None;
                self.state.tour_time = None;
                self.state.stage = Stage::Qualifying;
                step.parts.push("I can't find that tour any more: it may have been cancelled.".into());
            }
        }
    }

    /// A cancellation was made (`Some`) or found the tour already gone.
    pub fn cancelled(&mut self, step: &mut Step, cancelled: Option<&Booking>, emailed: String, catalog: &Catalog) {
        self.upcoming = None;
        match cancelled {
            Some(b) => {
                step.parts.push(format!("Done: your {} is cancelled.", Phrases::new(catalog).tour_words(b)));
                step.parts.push(emailed);
                self.state.confirmation = None;
                self.state.tour_time = None;
                self.moving = None;
            }
            None => step.parts.push("That tour was already cancelled.".into()),
        }
    }

    fn lost_slot(&mut self, step: &mut Step) {
        step.parts.push("Sorry, that time was just taken by another caller.".into());
        self.state.tour_time = None;
        self.state.stage = Stage::Scheduling;
    }

    /// Ends the turn: the next question (or the goodbye), with `cal` as the bookings stand after the turn's change.
    /// Returns the reply and the slots the turn changed.
    pub fn finish(&mut self, mut step: Step, cal: &Calendar<'_>) -> (String, Vec<Slot>) {
        let reopened_now = self.awaiting_change && !step.was_awaiting;
        if !step.understood && step.expected_before.is_some() {
            step.parts.push("Sorry, I didn't catch that.".into());
        }
        // Asking the next question changes the stage, never a slot, so this is the turn's change.
        let changed = self.state.changed_slots(&step.before);
        let finished = self.state.stage == Stage::Booked
            && step.no_answer
            && changed.is_empty()
            && !step.was_confirming_cancel
            && !step.was_asked_keep;
        let asking = step.cancel_asked || self.asked_keep || step.asks_past;
        // The caller said goodbye, or "no, that's all" after a booking: the call is over.
        self.over = step.goodbye || (finished && !asking);
        let prompt = if self.over {
            Phrases::new(cal.catalog).goodbye()
        } else if asking {
            String::new()
        } else if self.awaiting_change && changed.is_empty() {
            if reopened_now {
                String::new()
            } else {
                "What would you like to change: the time, the tour type, or your contact details?".into()
            }
        } else {
            self.awaiting_change = false;
            self.next_prompt(cal)
        };
        step.parts.push(prompt);
        (step.parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" "), changed)
    }

    /// Applies parsed values to the state; invalid ones get a note and are asked again. Returns whether something
    /// was heard but refused.
    fn apply(&mut self, p: &Parsed, parts: &mut Vec<String>, catalog: &Catalog) -> bool {
        let say = Phrases::new(catalog);
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
                parts.push(say.no_such_size(heard));
                refused = true;
            }
            None => {}
        }
        if let Some(pets) = p.pets {
            self.state.pets = Some(pets);
            if let Some(prop) = self.state.property.as_deref().and_then(|id| catalog.property(id)) {
                if pets.dogs > 0 && !prop.pets.dogs {
                    parts.push(say.no_dogs(&prop.name));
                }
            }
        }
        if p.pet_friendly == Some(true) && self.state.pet_friendly != Some(true) {
            // A pet-friendly home asked for: say where pets are welcome.
            self.state.pet_friendly = Some(true);
            parts.push(match self.state.property.as_deref().filter(|id| catalog.property(id).is_some()) {
                Some(id) => answer(catalog, Topic::Pets, Some(id), None),
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
                parts.push(say.over_budget(b, &prop.name, u.rent_min));
            }
        }
        refused
    }

    /// Picks a tour time from what the caller said, refusing taken or unscheduled times with alternatives.
    fn choose_time(&mut self, p: &Parsed, text: &str, parts: &mut Vec<String>, cal: &Calendar<'_>) {
        let request = p.time.or(self.pending_time);
        let (Some(property), Some(tour)) = (self.state.property.clone(), self.state.tour_type) else {
            self.pending_time = request;
            return;
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
                return;
            }
        }
        let Some(request) = request else { return };
        let open = cal.open(&property, tour);
        let say = Phrases::new(cal.catalog);
        let name = say.property_name(&property);
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
                    parts.push(say.not_open(wanted, tour, &name, &nearest));
                    self.offered = nearest;
                    self.expected = Some(Slot::TourTime);
                }
            }
            (Some(date), None) => {
                let that_day: Vec<NaiveDateTime> =
                    open.iter().copied().filter(|s| s.date() == date).take(OFFER).collect();
                if that_day.is_empty() {
                    parts.push(say.none_that_day(tour, &name, date.and_time(chrono::NaiveTime::MIN)));
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
    }

    /// In the confirming stage: yes books (or moves the tour being moved), no reopens the details.
    fn confirm(&mut self, p: &Parsed, parts: &mut Vec<String>, cal: &Calendar<'_>) -> Option<Commit> {
        match p.answer {
            Some(true) => match self.moving.clone() {
                Some(from) => {
                    let start = self.state.tour_time?;
                    Some(Commit::Move { from, start, tour_type: self.state.tour_type })
                }
                None => self.book(parts, cal),
            },
            Some(false) => {
                if let Some(tour) = self.moving.take() {
                    self.hold_tour(&tour);
                    let say = Phrases::new(cal.catalog);
                    parts.push(format!("Okay, your tour stays as booked: {}.", say.a_tour(&tour)));
                    return None;
                }
                parts.push("No problem. What would you like to change?".into());
                self.state.stage = Stage::Qualifying;
                self.expected = None;
                self.awaiting_change = true;
                None
            }
            None => None,
        }
    }

    /// The booking read back, unless the caller already has an upcoming tour of the same building: that one is
    /// offered to be moved instead of booking a second.
    fn book(&mut self, parts: &mut Vec<String>, cal: &Calendar<'_>) -> Option<Commit> {
        let s = &self.state;
        let (Some(property), Some(tour_type), Some(start), Some(name), Some(email), Some(phone)) =
            (s.property.clone(), s.tour_type, s.tour_time, s.name.clone(), s.email.clone(), s.phone.clone())
        else {
            return None;
        };
        if let Some(existing) = cal.upcoming_at(&self.user_id, &property) {
            let say = Phrases::new(cal.catalog);
            parts.push(format!(
                "You already have {}. Shall I move it to {} instead?",
                say.a_tour(existing),
                super::tools::spoken_time(start)
            ));
            self.upcoming = Some(existing.clone());
            self.moving = Some(existing.clone());
            return None;
        }
        let code = uuid::Uuid::new_v4().simple().to_string()[..6].to_uppercase();
        Some(Commit::Book(Booking {
            confirmation: code,
            property,
            tour_type,
            start,
            user_id: self.user_id.clone(),
            name,
            email,
            phone,
            sequence: 0,
        }))
    }

    /// Asks for the first missing slot, offers slots, or reads the booking back.
    fn next_prompt(&mut self, cal: &Calendar<'_>) -> String {
        let say = Phrases::new(cal.catalog);
        if self.state.stage == Stage::Booked {
            self.expected = None;
            if std::mem::take(&mut self.ask_keep) && self.upcoming.is_some() {
                self.asked_keep = true;
                return "Would you like to keep it, move it, or cancel it?".into();
            }
            return "Is there anything else I can help you with?".into();
        }
        // Moving a tour needs only its new time.
        let missing = match &self.moving {
            Some(_) => (!self.state.has(Slot::TourTime)).then_some(Slot::TourTime),
            None => Slot::ALL.into_iter().find(|s| !self.state.has(*s)),
        };
        self.expected = missing;
        let name = say.property_name(self.state.property.as_deref().unwrap_or_default());
        match missing {
            Some(Slot::TourTime) => {
                self.state.stage = Stage::Scheduling;
                let tour = self.state.tour_type.unwrap_or(TourType::InPerson);
                if self.offered.is_empty() || self.offered.iter().any(|s| *s <= cal.now) {
                    let property = self.state.property.clone().unwrap_or_default();
                    self.offered = cal.open(&property, tour).into_iter().take(OFFER).collect();
                }
                if self.offered.is_empty() {
                    self.expected = None;
                    say.no_times(tour, &name)
                } else {
                    say.offer(tour, &name, &self.offered)
                }
            }
            Some(slot @ (Slot::Name | Slot::Email | Slot::Phone)) => {
                self.state.stage = Stage::Contact;
                say.ask(slot, &name)
            }
            Some(slot) => say.ask(slot, &name),
            None => {
                self.state.stage = Stage::Confirming;
                match &self.moving {
                    Some(from) => {
                        say.read_back_move(from, self.state.tour_type, self.state.tour_time.unwrap_or(cal.now))
                    }
                    None => say.read_back(&self.state, &name),
                }
            }
        }
    }

    /// Barge-in: the caller did not hear the whole last reply, so its offers and question are void.
    pub fn unheard(&mut self) {
        self.expected = None;
        self.offered.clear();
    }
}

/// Whether the caller speaks of a tour of their own ("my tour", "my appointment").
fn mentions_own_tour(text: &str) -> bool {
    let t = text.to_lowercase();
    ["my tour", "my appointment", "my booking", "my visit", "my showing", "my viewing"].iter().any(|w| t.contains(w))
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::agent::parse;

    const DANA: &str = "+15551230001";

    fn now() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap().and_hms_opt(9, 0, 0).unwrap()
    }

    fn friday_at(h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 27).unwrap().and_hms_opt(h, 0, 0).unwrap()
    }

    fn tour(user: &str, code: &str, start: NaiveDateTime) -> Booking {
        Booking {
            confirmation: code.into(),
            property: "hudson-360".into(),
            tour_type: TourType::Virtual,
            start,
            user_id: user.into(),
            name: "Dana".into(),
            email: "dana@example.com".into(),
            phone: DANA.into(),
            sequence: 0,
        }
    }

    /// One turn with no change to the bookings, or the change it asks for.
    fn turn(d: &mut Dialogue, text: &str, tours: &[Booking]) -> (String, Option<Commit>) {
        let catalog = Catalog::builtin().unwrap();
        let cal = Calendar::new(&catalog, tours, now());
        let parsed = parse(text, d.expected(), now().date(), &catalog);
        let step = d.step(&parsed, text, None, &cal);
        let commit = step.commit.clone();
        (d.finish(step, &cal).0, commit)
    }

    #[test]
    fn a_goodbye_ends_the_call_at_any_point_and_only_a_goodbye_does() {
        let mut d = Dialogue::new(DANA);
        d.begin(None, &[], now());
        let (reply, _) = turn(&mut d, "a two bedroom at Hudson 360", &[]);
        assert!(!d.is_over(), "{reply}");
        let (reply, commit) = turn(&mut d, "Actually I have to go, bye.", &[]);
        assert!(d.is_over() && reply.ends_with("Goodbye!") && commit.is_none(), "{reply}");
        let mut d = Dialogue::new(DANA);
        d.begin(None, &[], now());
        turn(&mut d, "Is the studio at Riverview furnished?", &[]);
        assert!(!d.is_over());
    }

    #[test]
    fn a_booking_is_read_back_then_asked_for_once() {
        let mut d = Dialogue::new(DANA);
        d.begin(None, &[], now());
        for line in [
            "I'm Dana, a two bedroom at Hudson 360",
            "a cat",
            "January 15th",
            "about four thousand a month",
            "virtual",
            "Friday at 11",
        ] {
            assert_eq!(turn(&mut d, line, &[]).1, None, "{line}");
        }
        let (read_back, _) = turn(&mut d, "dana at example dot com", &[]);
        assert!(read_back.starts_with("Let me confirm"), "{read_back}");
        let (_, commit) = turn(&mut d, "yes", &[]);
        let Some(Commit::Book(b)) = commit else { panic!("a booking: {commit:?}") };
        assert_eq!((b.start, b.phone.as_str(), b.user_id.as_str()), (friday_at(11), DANA, DANA));
    }

    #[test]
    fn a_returning_caller_moves_their_tour_to_an_open_slot() {
        let tours = [tour(DANA, "AB12CD", friday_at(11))];
        let mut d = Dialogue::new(DANA);
        assert!(d.begin(None, &tours, now()));
        let (offer, _) = turn(&mut d, "I'd like to move it", &tours);
        assert!(offer.contains("I can offer") && !offer.contains("Friday, November 27 at 11:00 AM, or"), "{offer}");
        let (read_back, _) = turn(&mut d, "Friday at 3", &tours);
        assert!(read_back.contains("from Friday, November 27 at 11:00 AM to Friday, November 27 at 3:00 PM"));
        let (_, commit) = turn(&mut d, "yes", &tours);
        assert_eq!(
            commit,
            Some(Commit::Move { from: tours[0].clone(), start: friday_at(15), tour_type: Some(TourType::Virtual) })
        );
    }

    #[test]
    fn another_number_needs_the_code_and_a_yes_to_cancel() {
        let tours = [tour(DANA, "AB12CD", friday_at(11))];
        let mut d = Dialogue::new("+15559870002");
        d.begin(None, &[], now());
        let (r, commit) = turn(&mut d, "Please cancel my tour", &tours);
        assert!(r.contains("confirmation code") && commit.is_none(), "{r}");
        let (r, commit) = turn(&mut d, "the code is A B 1 2 C D", &tours);
        assert!(r.contains("Shall I cancel your virtual tour of Hudson 360") && commit.is_none(), "{r}");
        let (_, commit) = turn(&mut d, "yes", &tours);
        assert_eq!(commit, Some(Commit::Cancel(tours[0].clone())));
    }

    #[test]
    fn a_recent_tour_is_asked_about_then_the_call_goes_on() {
        let past = tour(DANA, "AB12CD", now() - chrono::Duration::days(3));
        let mut d = Dialogue::new(DANA);
        assert!(d.begin(None, std::slice::from_ref(&past), now()), "a caller with a tour is known");
        let catalog = Catalog::builtin().unwrap();
        let cal = Calendar::new(&catalog, &[], now());
        let parsed = parse("Hi there", None, now().date(), &catalog);
        let step = d.step(&parsed, "Hi there", Some(true), &cal);
        let (hello, _) = d.finish(step, &cal);
        assert!(
            hello.ends_with("How was your virtual tour of Hudson 360 on Saturday, November 21 at 9:00 AM?"),
            "{hello}"
        );
        let (next, _) = turn(&mut d, "It was great, I loved the light", &[]);
        assert!(next.starts_with("Thank you for telling me.") && next.contains("Which of our buildings"), "{next}");
    }

    #[test]
    fn a_time_given_for_the_budget_is_a_time_not_a_budget() {
        let mut d = Dialogue::new(DANA);
        d.begin(None, &[], now());
        for line in ["a studio at Hudson 360", "no pets", "next month"] {
            turn(&mut d, line, &[]);
        }
        assert_eq!(d.expected(), Some(Slot::Budget));
        turn(&mut d, "the day after tomorrow at 2 pm", &[]);
        assert_eq!(d.state.budget, None);
        assert_eq!(d.pending_time.and_then(|t| t.date), NaiveDate::from_ymd_opt(2026, 11, 26));
    }
}
