//! A deterministic reader of callers' words: property, bedrooms, pets, budget, move-in date, tour type and time,
//! name, email and phone, yes/no, and the questions asked. Fast (microseconds) and predictable, so it can run on
//! every turn; the LLM, when configured, only words replies.

use std::sync::LazyLock;

use chrono::{Datelike, Days, Months, NaiveDate, NaiveTime, Weekday};
use regex::Regex;

use super::catalog::{contains_phrase, Catalog};
use super::state::{Pets, Slot, TourType};
use crate::memory::MONTHS;

/// What a caller asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// Rents.
    Pricing,
    /// Pet policy and fees.
    Pets,
    /// Parking.
    Parking,
    /// Open units and move-in dates.
    Availability,
    /// Application fee, deposit, monthly fees.
    Fees,
    /// Amenities.
    Amenities,
    /// Address.
    Address,
    /// Open tour times.
    TourTimes,
}

/// A tour time as said: a day, a time of day, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TimeRequest {
    /// The day, if said.
    pub date: Option<NaiveDate>,
    /// The time, if said.
    pub time: Option<NaiveTime>,
}

/// Everything read from one utterance. `Err` holds what was heard when a value was given but is not valid.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Parsed {
    /// Property id.
    pub property: Option<String>,
    /// Bedrooms (0 = studio).
    pub bedrooms: Option<Result<u8, String>>,
    /// Pets.
    pub pets: Option<Pets>,
    /// Wants a home that allows pets ("a pet-friendly apartment", "somewhere pets are allowed").
    pub pet_friendly: Option<bool>,
    /// Monthly budget.
    pub budget: Option<Result<u32, String>>,
    /// Move-in date.
    pub move_in: Option<NaiveDate>,
    /// Tour type.
    pub tour_type: Option<TourType>,
    /// Tour time.
    pub time: Option<TimeRequest>,
    /// Name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<Result<String, String>>,
    /// Phone in E.164.
    pub phone: Option<Result<String, String>>,
    /// Yes or no.
    pub answer: Option<bool>,
    /// Questions asked.
    pub questions: Vec<Topic>,
    /// Asked about their own tour ("when is my tour?", "do I have an appointment?").
    pub own_tour: bool,
    /// Asked to cancel their tour ("please cancel my tour").
    pub cancel_tour: bool,
    /// Asked to move their tour ("can I reschedule?", "move it to Friday").
    pub move_tour: bool,
    /// Asked to keep their tour as it is ("keep it", "leave it as is").
    pub keep_tour: bool,
    /// A confirmation code given ("my code is A 1 B 2 C 3"), upper-case.
    pub code: Option<String>,
    /// The caller is ending the call ("bye", "goodbye").
    pub goodbye: bool,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static regex")
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$"));
static EMAIL_IN_TEXT: LazyLock<Regex> = LazyLock::new(|| re(r"[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}"));
static BEDROOMS: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d+)\s*-?\s*(?:bed(?:\s?room)?s?|br|bd|b/r|rooms?)\b"));
static MONEY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\$\s?(\d[\d,]*(?:\.\d+)?)\s*(k\b)?|\b(\d[\d,]*(?:\.\d+)?)\s*(k\b)?\s*(?:dollars|bucks|a month|per month|/mo|monthly)|\b(\d+(?:\.\d+)?)\s*k\b",
    )
});
static LONE_NUMBER: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d[\d,]*)\b"));
static PET: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(a|an|one|\d+|some|my|our|two)\s+(?:\w+\s+)?(cats?|kittens?|dogs?|pupp(?:y|ies)|birds?|parrots?|rabbits?|hamsters?)\b",
    )
});
static NO_PETS: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\bno (?:pets|animals)\b|\b(?:don't|do not|dont) have (?:any )?(?:pets|animals)\b|\bpet[- ]free\b")
});
/// Animals, as callers name them.
const ANIMAL: &str = r"(?:pets?|dogs?|cats?|animals?|puppy|puppies|kittens?)";
/// Ways of saying a home allows pets.
static PET_FRIENDLY: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"\bpet[- ]?friendly\b".to_string(),
        format!(
            r"\b(?:allow|allows|allowed|allowing|accept|accepts|accepting|permit|permits|permitting|welcome|welcomes|take|takes|taking)\s+(?:my\s+|our\s+|the\s+)?{ANIMAL}\b"
        ),
        format!(
            r"\b{ANIMAL}\s+(?:(?:are|is|be|to be|should be|must be|need to be|needs to be|have to be|has to be|can be|should|being|must|are also|also)\s+)?(?:allowed|permitted|welcome|welcomed|ok|okay|accepted)\b"
        ),
        format!(r"\b{ANIMAL}\s+can\s+(?:be|live|stay|come)\b"),
        format!(r"\b(?:can|could)\s+(?:have|bring|keep)\s+(?:a\s+|my\s+|our\s+)?{ANIMAL}\b"),
        format!(r"\ballowed to have\s+{ANIMAL}"),
        format!(r"\bme and my\s+{ANIMAL}"),
        format!(r"\bwith\s+{ANIMAL}\s*,?\s*please\b"),
    ]
    .iter()
    .map(|p| re(p))
    .collect()
});
static ANIMAL_WORD: LazyLock<Regex> = LazyLock::new(|| re(&format!(r"\b{ANIMAL}\b")));
/// "…that allows them", after pets were named.
static ALLOWS_THEM: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:allow|allows|accept|accepts|permit|permits)\s+them\b"));
/// A question about one place the caller was told of ("do they allow pets?", "find out if pets are allowed"):
/// asking, not asking for.
static ASKS_ABOUT_IT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:whether|if|or not)\b|\b(?:are|would|will|do|does|can|is|could)\s+(?:pets?|they|it|dogs?|cats?|animals?|you|we)\b|^(?:and |also |so |ok |okay )?(?:is the|is this|is that|what about pets|how about pets)",
    )
});
/// Asking someone to check something about a place: "find out if", "search whether", "check if".
static CHECK_WHETHER: LazyLock<Regex> =
    LazyLock::new(|| re(r"\bfind out\b|\b(?:search|check|see|ask|look)\s+(?:if|whether)\b"));
/// Words of a search ("find me an apartment that…", "anything else that…"): the caller asks for homes like that.
static SEARCHING: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:find|finding|looking|look for|search|other|another|anything|else|somewhere|someplace|something|more|additional|options)\b|\bhow about (?:a|an|one)\b|\bget (?:me )?(?:a|an|one|some)\s+(?:\w+\s+){0,2}(?:apartment|place|unit|home)s?\b|\b(?:a|an|one)\s+(?:\w+\s+){0,3}(?:apartment|place|unit|home|bedroom|bed room)s?\s+(?:that|which|where|with)\b",
    )
});
static NAME: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\b(?:[Mm]y name is|[Mm]y name's|[Cc]all me|[Nn]ame is)\s+([A-Za-z][A-Za-z'-]+(?:\s+[A-Z][A-Za-z'-]+)?)")
});
/// "This is Dana": a name only when written as one ("this is all I need" is not).
static THIS_IS_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"\b[Tt]his is\s+([A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?)\b"));
static IM_NAME: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:I'm|I am|It's|it's|Im)\s+([A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?)"));
static TIME: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:at\s+)?(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?)?(?:\s+o'clock)?\b"));
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)?\s+of\s+(january|february|march|april|may|june|july|august|september|october|november|december)\b|\b(january|february|march|april|may|june|july|august|september|october|november|december)\s+(\d{1,2})(?:st|nd|rd|th)?\b",
    )
});

/// A day of the month without its month: "the 4th", "the 11th of this month", "on the 6th".
static DAY_OF_MONTH: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)\b(?:\s+of\s+(?:this|the|next)\s+month)?"));
/// Numbers that are parts of a time, a date, a phone number or a street address, never a count or an amount.
static NOT_A_QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b\d{1,2}(?::\d{2})?\s*(?:a\.?m\.?|p\.?m\.?)|\b\d{1,2}:\d{2}\b|\bat\s+\d{1,2}\b(?:\s+o'clock)?|\b\d{1,2}\s+o'clock\b|\b\d{1,2}(?:st|nd|rd|th)\b|\(?\b\d{3}\)?[-. ]\d{3}[-. ]\d{4}\b|\b\d{3}[-.]\d{4}\b|\b\d+\s+(?:\w+\s+){1,2}(?:street|st|avenue|ave|road|rd|boulevard|blvd|drive|dr|lane|ln|way|court|ct|terrace)\b|\b(?:january|february|march|april|may|june|july|august|september|october|november|december)\s+\d{1,2}\b|\b(?:half past|quarter past|quarter to)\s+\d{1,2}\b|\b\d{1,2}\s+in the (?:morning|afternoon|evening)\b|\b(?:morning|afternoon|evening)\s+\d{1,2}\b",
    )
});

/// "That will be all for today", "anything else today?": today as a figure of speech.
static ALL_FOR_TODAY: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(?:all|all i need|anything else|your help|everything|not)\b[^.?!]*\btoday\b"));

/// Words that follow "I'm" without being a name.
const NOT_NAMES: [&str; 32] = [
    "looking",
    "interested",
    "calling",
    "just",
    "not",
    "good",
    "fine",
    "here",
    "hoping",
    "moving",
    "wondering",
    "trying",
    "sorry",
    "sure",
    "thinking",
    "planning",
    "also",
    "still",
    "back",
    "great",
    "ok",
    "okay",
    "actually",
    "ready",
    "a",
    "an",
    "the",
    "my",
    "about",
    "for",
    "regarding",
    "is",
];

const ORDINALS: [(&str, u32); 31] = [
    ("first", 1),
    ("second", 2),
    ("third", 3),
    ("fourth", 4),
    ("fifth", 5),
    ("sixth", 6),
    ("seventh", 7),
    ("eighth", 8),
    ("ninth", 9),
    ("tenth", 10),
    ("eleventh", 11),
    ("twelfth", 12),
    ("thirteenth", 13),
    ("fourteenth", 14),
    ("fifteenth", 15),
    ("sixteenth", 16),
    ("seventeenth", 17),
    ("eighteenth", 18),
    ("nineteenth", 19),
    ("twentieth", 20),
    ("twenty first", 21),
    ("twenty second", 22),
    ("twenty third", 23),
    ("twenty fourth", 24),
    ("twenty fifth", 25),
    ("twenty sixth", 26),
    ("twenty seventh", 27),
    ("twenty eighth", 28),
    ("twenty ninth", 29),
    ("thirtieth", 30),
    ("thirty first", 31),
];

fn unit_value(w: &str) -> Option<u64> {
    Some(match w {
        "zero" => 0,
        "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "thirteen" => 13,
        "fourteen" => 14,
        "fifteen" => 15,
        "sixteen" => 16,
        "seventeen" => 17,
        "eighteen" => 18,
        "nineteen" => 19,
        "twenty" => 20,
        "thirty" => 30,
        "forty" => 40,
        "fifty" => 50,
        "sixty" => 60,
        "seventy" => 70,
        "eighty" => 80,
        "ninety" => 90,
        _ => return None,
    })
}

fn digit_value(w: &str) -> Option<char> {
    Some(match w {
        "zero" | "oh" | "o" => '0',
        "one" => '1',
        "two" => '2',
        "three" => '3',
        "four" => '4',
        "five" => '5',
        "six" => '6',
        "seven" => '7',
        "eight" => '8',
        "nine" => '9',
        _ if w.len() == 1 && w.as_bytes()[0].is_ascii_digit() => w.chars().next()?,
        _ => return None,
    })
}

/// Rewrites number words as digits: "twenty-five hundred" → "2500", "a two-bedroom" → "a 2-bedroom".
pub fn words_to_numbers(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let (mut total, mut current, mut in_number) = (0u64, 0u64, false);
    let flush = |out: &mut Vec<String>, total: &mut u64, current: &mut u64, in_number: &mut bool| {
        if *in_number {
            out.push((*total + *current).to_string());
        }
        (*total, *current, *in_number) = (0, 0, false);
    };
    for spoken in text.split(' ') {
        // "Just one." is a number followed by its sentence's end mark, which is kept after it.
        let raw = spoken.trim_end_matches(['.', ',', '!', '?']);
        let mark = &spoken[raw.len()..];
        // "twenty-five" is one number; "two-bedroom" keeps its suffix.
        let (word, suffix) = match raw.split_once('-') {
            Some((a, b)) if unit_value(a).is_some() && unit_value(b).is_none() => (a, Some(b)),
            _ => (raw, None),
        };
        let parts: Vec<&str> = word.split('-').collect();
        if parts.iter().all(|p| unit_value(p).is_some() || *p == "hundred" || *p == "thousand") && !word.is_empty() {
            for p in parts {
                match p {
                    "hundred" => current = current.max(1) * 100,
                    "thousand" => {
                        total += current.max(1) * 1000;
                        current = 0;
                    }
                    _ => current += unit_value(p).unwrap_or(0),
                }
                in_number = true;
            }
            if suffix.is_some() || !mark.is_empty() {
                flush(&mut out, &mut total, &mut current, &mut in_number);
                let last = out.pop().unwrap_or_default();
                out.push(match suffix {
                    Some(s) => format!("{last}-{s}{mark}"),
                    None => format!("{last}{mark}"),
                });
            }
            continue;
        }
        flush(&mut out, &mut total, &mut current, &mut in_number);
        out.push(spoken.to_string());
    }
    flush(&mut out, &mut total, &mut current, &mut in_number);
    out.join(" ")
}

/// Lower-cases, straightens quotes and keeps only characters the patterns use.
fn normalize(text: &str) -> String {
    let lowered = text.to_lowercase().replace(['’', '‘'], "'");
    let kept: String =
        lowered.chars().map(|c| if c.is_alphanumeric() || " @.$,:'/-?!".contains(c) { c } else { ' ' }).collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads one utterance. `expected` is the slot the agent just asked for (a bare "two" answers it); `today` anchors
/// relative dates.
pub fn parse(text: &str, expected: Option<Slot>, today: NaiveDate, catalog: &Catalog) -> Parsed {
    let t = normalize(text);
    let n = words_to_numbers(&t);
    let mut p = Parsed { questions: questions(&t), own_tour: asks_about_own_tour(&t), ..Parsed::default() };
    p.cancel_tour = asks_to_cancel(&t);
    p.move_tour = !p.cancel_tour && asks_to_move(&t);
    p.keep_tour = !p.cancel_tour && !p.move_tour && asks_to_keep(&t);
    p.goodbye = ["bye", "goodbye", "good bye", "bye bye"].iter().any(|w| contains_phrase(&t, w));
    if p.cancel_tour || p.move_tour {
        // "Cancel my tour" and "can I move my tour?" are not questions about it.
        p.own_tour = false;
    }
    if p.own_tour {
        // "When is my tour?" is not a request for open tour times.
        p.questions.retain(|q| *q != Topic::TourTimes && *q != Topic::Availability);
    }
    // Pets named in a question ("do you allow cats?") are not the caller's pets.
    let statements: Vec<&str> = sentences(&n).into_iter().filter(|s| !is_question(s)).collect();
    let statements = statements.join(" ");

    p.property = catalog.find_property(&t).map(|prop| prop.id.clone());
    p.email = email(&t, expected == Some(Slot::Email));
    p.phone = phone(&t, expected == Some(Slot::Phone));
    p.name = name(text, &t, expected == Some(Slot::Name));
    p.tour_type = tour_type(&t);
    p.answer = yes_no(&t);
    p.code = spoken_code(&t);
    // Numbers inside an email, a phone number or a confirmation code are not bedrooms, budgets or times.
    if p.email.is_some() || p.phone.is_some() || p.code.is_some() {
        return p;
    }
    // Counts and amounts are read with times, dates, phone numbers and addresses blanked out.
    let quantities = NOT_A_QUANTITY.replace_all(&n, " ");
    // "Is it furnished or a studio?" asks what an offered place is; the caller wants nothing by it.
    let sized: Vec<&str> = sentences(&t).into_iter().filter(|s| !asks_which_it_is(s)).collect();
    let sized = sized.join(" ");
    let size_quantities: Vec<&str> = sentences(&quantities).into_iter().filter(|s| !asks_which_it_is(s)).collect();
    p.bedrooms = bedrooms(&sized, &size_quantities.join(" "), expected == Some(Slot::Bedrooms));
    p.pets = pets(&statements, expected == Some(Slot::Pets));
    p.pet_friendly = pet_friendly(&t);
    p.budget = budget(&quantities, expected == Some(Slot::Budget));
    let dated = date(&t, &n, today);
    if expected == Some(Slot::MoveIn) || t.contains("move") || t.contains("moving") {
        p.move_in = dated.or_else(|| relative_move_in(&t, today));
    } else {
        p.time = time_request(&t, &n, dated, expected == Some(Slot::TourTime));
    }
    p
}

/// Whether the caller asks about a tour they already have.
fn asks_about_own_tour(t: &str) -> bool {
    let asked = sentences(t).into_iter().any(|s| is_question(s) || s.starts_with("remind me"));
    let mine = [
        "my tour",
        "my appointment",
        "my booking",
        "my visit",
        "my showing",
        "my viewing",
        "i booked",
        "a tour booked",
    ]
    .iter()
    .any(|w| t.contains(w));
    asked && mine
}

/// Whether the caller asks to cancel a tour they have.
fn asks_to_cancel(t: &str) -> bool {
    let cancel = ["cancel", "call off", "won't make it to my", "can't make it to my"].iter().any(|w| t.contains(w));
    let what = ["tour", "appointment", "booking", "visit", "showing", "viewing", " it"].iter().any(|w| t.contains(w));
    cancel && what && !t.contains("don't cancel") && !t.contains("not cancel")
}

/// Whether the caller asks to move a tour they have to another time.
fn asks_to_move(t: &str) -> bool {
    let tour = ["tour", "appointment", "booking", "visit", "showing", "viewing", " it"];
    let mentions = |w: &&str| t.contains(*w);
    t.contains("reschedule")
        || (["move ", "change ", "push ", "switch "].iter().any(mentions)
            && tour.iter().any(mentions)
            && !t.contains("move in")
            && !t.contains("moving in"))
        || ["different time", "different day", "another time", "another day", "later time", "earlier time"]
            .iter()
            .any(mentions)
}

/// Whether the caller wants to keep a tour as it is.
fn asks_to_keep(t: &str) -> bool {
    ["keep it", "keep my", "keep the", "leave it", "as it is", "as is", "stay as", "stays as", "that's fine"]
        .iter()
        .any(|w| t.contains(w))
}

/// A confirmation code after the word "code", as letters and digits are read out ("A 1 B 2 C 3", "a1b2c3",
/// "seven f three…"): 4 to 16 of them, upper-cased.
fn spoken_code(t: &str) -> Option<String> {
    let (before, rest) = t.split_once("code")?;
    // Other codes: a zip or area code is part of an address or a phone number.
    if ["zip", "area", "postal", "promo", "door", "access", "gate"].iter().any(|w| before.trim_end().ends_with(w)) {
        return None;
    }
    // The code ends with its clause: "…7f3a2b, I want to cancel".
    let rest = rest.split([',', '.', ';', '!', '?']).next().unwrap_or_default();
    let mut code = String::new();
    for w in rest.split(|c: char| c.is_whitespace() || ":-".contains(c)).filter(|w| !w.is_empty()) {
        if code.is_empty() && ["is", "it's", "its", "was", "number", "s"].contains(&w) {
            continue;
        }
        if let Some(d) = digit_value(w) {
            code.push(d);
        } else if w.chars().all(|c| c.is_ascii_alphanumeric())
            && (w.len() == 1 || w.chars().any(|c| c.is_ascii_digit()))
        {
            code.push_str(&w.to_ascii_uppercase());
        } else {
            break;
        }
    }
    (4..=16).contains(&code.len()).then_some(code)
}

/// Whether one sentence asks something.
fn is_question(sentence: &str) -> bool {
    let s = sentence.trim();
    s.ends_with('?')
        || ["what", "how", "is ", "are ", "do you", "does", "can ", "where", "when", "which", "any ", "tell me"]
            .iter()
            .any(|w| s.starts_with(w))
        || s.contains("wondering")
        || s.contains("i'd like to know")
}

/// Sentences with their end marks, so "I have a dog. Do you allow pets?" is a statement and a question.
fn sentences(t: &str) -> Vec<&str> {
    t.split_inclusive(['.', '?', '!']).map(str::trim).filter(|s| !s.is_empty()).collect()
}

fn questions(t: &str) -> Vec<Topic> {
    let asked: Vec<&str> = sentences(t).into_iter().filter(|s| is_question(s)).collect();
    if asked.is_empty() {
        return Vec::new();
    }
    let t = asked.join(" ");
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    let mut topics = Vec::new();
    if has(&["pet", "cat", "dog", "animal"]) {
        topics.push(Topic::Pets);
    }
    if has(&["parking", "park ", "garage", "car "]) {
        topics.push(Topic::Parking);
    }
    if has(&["fee", "deposit", "application"]) && !topics.contains(&Topic::Pets) {
        topics.push(Topic::Fees);
    }
    if has(&["how much", "price", "pricing", "rent", "cost", "rates"]) && !has(&["pet", "parking", "fee"]) {
        topics.push(Topic::Pricing);
    }
    if has(&["available", "availability", "vacanc", "openings", "move in", "when can i"]) {
        topics.push(Topic::Availability);
    }
    if has(&["amenit", "gym", "pool", "laundry", "doorman", "fitness", "roof"]) {
        topics.push(Topic::Amenities);
    }
    if has(&["address", "where is", "where's", "located", "location"]) {
        topics.push(Topic::Address);
    }
    if has(&["what times", "which times", "tour times", "when can i tour", "open slots", "what slots"]) {
        topics.push(Topic::TourTimes);
    }
    topics
}

fn email(t: &str, expected: bool) -> Option<Result<String, String>> {
    if let Some(m) = EMAIL_IN_TEXT.find(t) {
        let candidate = m.as_str().trim_end_matches('.').to_string();
        return Some(if EMAIL.is_match(&candidate) { Ok(candidate) } else { Err(candidate) });
    }
    let spoken = ["email address is", "email is", "e-mail is", "email:", "e-mail", "email"]
        .iter()
        .find_map(|k| t.find(k).map(|i| &t[i + k.len()..]))
        .or(expected.then_some(t))?;
    let mut s = format!(" {} ", spoken.trim().trim_end_matches(['.', '?', '!']));
    for (from, to) in
        [(" at ", "@"), (" dot ", "."), (" underscore ", "_"), (" dash ", "-"), (" hyphen ", "-"), (" period ", ".")]
    {
        s = s.replace(from, to);
    }
    let candidate: String = s.split_whitespace().collect();
    if candidate.is_empty() {
        return None;
    }
    Some(if EMAIL.is_match(&candidate) { Ok(candidate) } else { Err(spoken.trim().to_string()) })
}

fn phone(t: &str, expected: bool) -> Option<Result<String, String>> {
    let keyword = ["phone", "number is", "reach me", "call me at", "cell", "mobile"].iter().any(|k| t.contains(k));
    if !keyword && !expected {
        return None;
    }
    let mut digits = String::new();
    let mut double = false;
    for w in t.split(|c: char| c.is_whitespace() || c == '-' || c == '(' || c == ')' || c == '.' || c == ',') {
        if w == "double" {
            double = true;
            continue;
        }
        if w.chars().all(|c| c.is_ascii_digit() || c == '+') && !w.is_empty() {
            digits.extend(w.chars().filter(char::is_ascii_digit));
        } else if let Some(d) = digit_value(w) {
            digits.push(d);
            if double {
                digits.push(d);
            }
        }
        double = false;
    }
    match digits.len() {
        0 if !expected => None,
        0..=6 if keyword && !expected => None,
        10 => Some(Ok(format!("+1{digits}"))),
        11 if digits.starts_with('1') => Some(Ok(format!("+{digits}"))),
        _ => Some(Err(digits)),
    }
}

fn name(original: &str, t: &str, expected: bool) -> Option<String> {
    let original = &original.replace(['’', '‘'], "'");
    let accept = |raw: &str| {
        let first = raw.split_whitespace().next().unwrap_or_default().to_lowercase();
        (!NOT_NAMES.contains(&first.as_str())).then(|| title_case(raw))
    };
    if let Some(c) = NAME.captures(original) {
        return accept(&c[1]);
    }
    if let Some(c) = THIS_IS_NAME.captures(original) {
        if let Some(n) = accept(&c[1]) {
            return Some(n);
        }
    }
    if let Some(c) = IM_NAME.captures(original) {
        if let Some(n) = accept(&c[1]) {
            return Some(n);
        }
    }
    if expected {
        let words: Vec<&str> = t.trim_end_matches(['.', '!']).split_whitespace().collect();
        if (1..=3).contains(&words.len())
            && words.iter().all(|w| w.chars().all(|c| c.is_alphabetic() || c == '\'' || c == '-'))
        {
            return accept(&words.join(" "));
        }
    }
    None
}

fn title_case(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c.flat_map(char::to_lowercase)).collect()).unwrap_or_default()
        })
        .collect::<Vec<String>>()
        .join(" ")
}

fn bedrooms(t: &str, n: &str, expected: bool) -> Option<Result<u8, String>> {
    if contains_phrase(t, "studio") {
        return Some(Ok(0));
    }
    let value = BEDROOMS
        .captures(n)
        .map(|c| c[1].to_string())
        .or_else(|| expected.then(|| LONE_NUMBER.captures(n).map(|c| c[1].to_string())).flatten())?;
    match value.parse::<u8>() {
        Ok(b) if b <= 3 => Some(Ok(b)),
        _ => Some(Err(value)),
    }
}

/// More pets of one kind than any building allows; a bigger number is a mishearing, not a pet count.
const MAX_PETS_HEARD: u8 = 9;

/// Pets stated in `t` (number words already digits).
fn pets(t: &str, expected: bool) -> Option<Pets> {
    if NO_PETS.is_match(t)
        || (expected && matches!(yes_no(t), Some(false)))
        || (expected && t.trim_end_matches('.') == "none")
    {
        return Some(Pets::default());
    }
    let mut pets = Pets::default();
    let mut found = false;
    for c in PET.captures_iter(t) {
        let kind = &c[2];
        let plural = kind.ends_with('s') || kind.ends_with("ies");
        let count = match &c[1] {
            "a" | "an" | "one" => 1,
            // "my cats", "some dogs": more than one, number unknown.
            "some" | "my" | "our" if plural => 2,
            "my" | "our" => 1,
            num => match num.parse::<u8>() {
                Ok(n) if (1..=MAX_PETS_HEARD).contains(&n) => n,
                _ => continue,
            },
        };
        if kind.starts_with("cat") || kind.starts_with("kitten") {
            pets.cats = pets.cats.saturating_add(count);
        } else if kind.starts_with("dog") || kind.starts_with("pup") {
            pets.dogs = pets.dogs.saturating_add(count);
        } else {
            pets.other = pets.other.saturating_add(count);
        }
        found = true;
    }
    let implausible = [pets.cats, pets.dogs, pets.other].iter().any(|n| *n > MAX_PETS_HEARD);
    (found && !implausible).then_some(pets)
}

/// An alternative question about a place already named ("is the apartment furnished or studio?"): it asks which
/// the place is, and sets nothing.
fn asks_which_it_is(sentence: &str) -> bool {
    contains_phrase(sentence, "or")
        && (sentence.ends_with('?') || ASKS_ABOUT_IT.is_match(sentence))
        && !SEARCHING.is_match(sentence)
        && ["is the", "is it", "is this", "is that", "does it", "does the", "are they", "are the"]
            .iter()
            .any(|w| sentence.trim_start().starts_with(w) || sentence.contains(&format!(", {w}")))
}

/// Whether the caller asks for a home that allows pets. A question about a place already named ("are pets
/// allowed there?") asks about it and sets nothing; a request phrased as a question ("can you find one that allows
/// pets?") does.
fn pet_friendly(t: &str) -> Option<bool> {
    let named_pets = ANIMAL_WORD.is_match(t);
    sentences(t).into_iter().find_map(|s| {
        let says = PET_FRIENDLY.iter().any(|r| r.is_match(s)) || (named_pets && ALLOWS_THEM.is_match(s));
        // "Find out if…", "search whether…", "check if…" ask about a place; they search for nothing.
        let without_find_out = CHECK_WHETHER.replace_all(s, " ");
        let asks = s.ends_with('?') || ASKS_ABOUT_IT.is_match(s) || is_question(s);
        (says && (!asks || SEARCHING.is_match(&without_find_out))).then_some(true)
    })
}

fn budget(n: &str, expected: bool) -> Option<Result<u32, String>> {
    let (raw, thousands) = match MONEY.captures(n) {
        Some(c) => {
            let (value, k) = c
                .get(1)
                .map(|v| (v.as_str(), c.get(2).is_some()))
                .or_else(|| c.get(3).map(|v| (v.as_str(), c.get(4).is_some())))
                .or_else(|| c.get(5).map(|v| (v.as_str(), true)))?;
            (value.to_string(), k)
        }
        None if expected => (LONE_NUMBER.captures(n)?[1].to_string(), false),
        None => return None,
    };
    let value: f64 = raw.replace(',', "").parse().ok()?;
    let dollars = if thousands || value < 20.0 { value * 1000.0 } else { value };
    let dollars = dollars.round() as u32;
    Some(if (500..=25_000).contains(&dollars) { Ok(dollars) } else { Err(raw) })
}

fn tour_type(t: &str) -> Option<TourType> {
    if ["virtual", "video", "online", "facetime", "zoom", "remote"].iter().any(|w| t.contains(w)) {
        Some(TourType::Virtual)
    } else if ["in person", "in-person", "come by", "visit", "walk through", "see it myself", "stop by"]
        .iter()
        .any(|w| t.contains(w))
    {
        Some(TourType::InPerson)
    } else {
        None
    }
}

fn yes_no(t: &str) -> Option<bool> {
    let t = t.trim_end_matches(['.', '!']);
    let starts = |words: &[&str]| {
        words.iter().any(|w| t == *w || t.starts_with(&format!("{w} ")) || t.starts_with(&format!("{w},")))
    };
    if starts(&["no", "nope", "nah", "not really", "that's wrong", "wrong", "change"]) {
        Some(false)
    } else if starts(&[
        "yes",
        "yeah",
        "yep",
        "yup",
        "sure",
        "correct",
        "that's right",
        "right",
        "sounds good",
        "perfect",
        "ok",
        "okay",
        "book it",
        "please do",
        "that works",
        "great",
    ]) {
        Some(true)
    } else {
        None
    }
}

fn month_number(name: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == name).map(|i| i as u32 + 1)
}

/// The next date on or after `today` with this month and day.
fn upcoming(today: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    let this_year = NaiveDate::from_ymd_opt(today.year(), month, day)?;
    if this_year >= today {
        Some(this_year)
    } else {
        NaiveDate::from_ymd_opt(today.year() + 1, month, day)
    }
}

fn date(t: &str, n: &str, today: NaiveDate) -> Option<NaiveDate> {
    // Dates in digits; when several are named the last wins ("not the 4th… could we do the 8th?").
    let mut named: Vec<(usize, NaiveDate)> = Vec::new();
    let mut spans = Vec::new();
    for c in DATE.captures_iter(n) {
        let whole = c.get(0)?;
        spans.push(whole.range());
        let (day, month) = match (c.get(1), c.get(2)) {
            (Some(d), Some(m)) => (d.as_str(), m.as_str()),
            _ => (c.get(4)?.as_str(), c.get(3)?.as_str()),
        };
        if let Some(d) = upcoming(today, month_number(month)?, day.parse().ok()?) {
            named.push((whole.start(), d));
        }
    }
    for c in DAY_OF_MONTH.captures_iter(n) {
        let whole = c.get(0)?;
        if spans.iter().any(|s| s.start < whole.end() && whole.start() < s.end) {
            continue;
        }
        if let Some(d) = c[1].parse().ok().and_then(|day| day_in_month(whole.as_str(), day, today)) {
            named.push((whole.start(), d));
        }
    }
    if let Some((_, d)) = named.into_iter().max_by_key(|(at, _)| *at) {
        return Some(d);
    }
    for (word, day) in ORDINALS.iter().rev() {
        for month in MONTHS {
            if t.contains(&format!("{word} of {month}")) || t.contains(&format!("{month} {word}")) {
                return upcoming(today, month_number(month)?, *day);
            }
        }
    }
    // "That's all for today" closes a call; it names no day.
    if contains_phrase(t, "today") && !ALL_FOR_TODAY.is_match(t) {
        return Some(today);
    }
    if contains_phrase(t, "day after tomorrow") {
        return today.checked_add_days(Days::new(2));
    }
    if contains_phrase(t, "tomorrow") {
        return today.checked_add_days(Days::new(1));
    }
    for (i, day) in ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"].iter().enumerate() {
        if contains_phrase(t, day) {
            let target = Weekday::try_from(i as u8).ok()?;
            // "Wednesday next week": that day of next week; otherwise ("next Wednesday" too) the coming one.
            if t.contains(&format!("{day} next week")) || t.contains(&format!("next week {day}")) {
                let monday = today - chrono::Duration::days(today.weekday().num_days_from_monday() as i64);
                return monday.checked_add_days(Days::new(7 + target.num_days_from_monday() as u64));
            }
            let ahead = (7 + target.num_days_from_monday() as i64 - today.weekday().num_days_from_monday() as i64) % 7;
            let ahead = if ahead == 0 { 7 } else { ahead };
            return today.checked_add_days(Days::new(ahead as u64));
        }
    }
    day_of_month(t, today)
}

/// "On the sixth", "the sixth of this month": that day of this month, or of next month when it has passed.
fn day_of_month(t: &str, today: NaiveDate) -> Option<NaiveDate> {
    let day = ORDINALS.iter().rev().find_map(|(word, day)| {
        let said = [format!("the {word} of"), format!("on the {word}"), format!("for the {word}")];
        said.iter().any(|p| contains_phrase(t, p)).then_some(*day)
    })?;
    day_in_month(t, day, today)
}

/// Day `day` of this month, or of next month when it has passed or `said` names next month.
fn day_in_month(said: &str, day: u32, today: NaiveDate) -> Option<NaiveDate> {
    let this_month = today.with_day(1)?;
    let month = if said.contains("next month") || day < today.day() {
        this_month.checked_add_months(Months::new(1))?
    } else {
        this_month
    };
    month.with_day(day)
}

fn relative_move_in(t: &str, today: NaiveDate) -> Option<NaiveDate> {
    if ["asap", "as soon as possible", "right away", "immediately"].iter().any(|w| t.contains(w)) {
        return Some(today);
    }
    if t.contains("next month") {
        return today.with_day(1)?.checked_add_months(Months::new(1));
    }
    MONTHS.iter().enumerate().find(|(_, m)| contains_phrase(t, m)).and_then(|(i, _)| upcoming(today, i as u32 + 1, 1))
}

fn time_request(t: &str, n: &str, date: Option<NaiveDate>, expected: bool) -> Option<TimeRequest> {
    let mut time = None;
    if contains_phrase(t, "noon") {
        time = NaiveTime::from_hms_opt(12, 0, 0);
    }
    for c in TIME.captures_iter(n) {
        let whole = c.get(0).map_or("", |m| m.as_str());
        let marked = c.get(3).is_some() || whole.starts_with("at") || whole.contains(':') || whole.contains("o'clock");
        if !marked && !(expected && date.is_some()) {
            continue;
        }
        let mut hour: u32 = c[1].parse().ok()?;
        let minute: u32 = c.get(2).map_or(Some(0), |m| m.as_str().parse().ok())?;
        match c.get(3).map(|m| m.as_str().starts_with('p')) {
            Some(true) if hour < 12 => hour += 12,
            Some(false) if hour == 12 => hour = 0,
            // Tours run in business hours: a bare "at 4" is 4 pm.
            None if (1..=7).contains(&hour) => hour += 12,
            _ => {}
        }
        time = NaiveTime::from_hms_opt(hour, minute, 0);
        if time.is_some() {
            break;
        }
    }
    (date.is_some() || time.is_some()).then_some(TimeRequest { date, time })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap() // a Tuesday
    }

    fn p(text: &str) -> Parsed {
        parse(text, None, today(), &Catalog::builtin().unwrap())
    }

    fn ask(text: &str, slot: Slot) -> Parsed {
        parse(text, Some(slot), today(), &Catalog::builtin().unwrap())
    }

    #[test]
    fn a_goodbye_is_heard_but_not_inside_other_words() {
        for said in ["Bye!", "Okay, goodbye.", "thanks, bye bye", "Good bye then"] {
            assert!(p(said).goodbye, "{said}");
        }
        for said in ["I'd like to stop by on Friday", "a Byers Street apartment", "Abbey Road"] {
            assert!(!p(said).goodbye, "{said}");
        }
    }

    #[test]
    fn numbers_in_words_become_digits() {
        assert_eq!(words_to_numbers("around three thousand a month"), "around 3000 a month");
        assert_eq!(words_to_numbers("twenty-five hundred"), "2500");
        assert_eq!(words_to_numbers("a two-bedroom please"), "a 2-bedroom please");
        assert_eq!(words_to_numbers("thirty two hundred dollars"), "3200 dollars");
    }

    #[test]
    fn bedrooms_in_many_shapes() {
        for (text, want) in
            [("two-bedroom", 2), ("a 2BR", 2), ("a 2 br", 2), ("one bedroom", 1), ("a studio", 0), ("3 bed", 3)]
        {
            assert_eq!(p(text).bedrooms, Some(Ok(want)), "{text}");
        }
        assert_eq!(ask("two", Slot::Bedrooms).bedrooms, Some(Ok(2)));
        assert_eq!(p("a five bedroom house").bedrooms, Some(Err("5".into())));
        assert_eq!(p("I'd like a tour").bedrooms, None);
    }

    #[test]
    fn a_pet_friendly_home_is_asked_for_not_asked_about() {
        for wants in [
            "I'm looking for a two bedroom apartment that allows pets.",
            "Can you find me a pet friendly apartment?",
            "Pets need to be allowed. It should have one bedroom.",
            "Is there anything else that allows pets?",
            "I need a place where I can have a pet.",
            "I have pets with me too. So look for an apartment that allows them.",
        ] {
            assert_eq!(p(wants).pet_friendly, Some(true), "{wants}");
        }
        for asks in [
            "Do they allow pets?",
            "What's their number and are pets allowed?",
            "Find out if pets are allowed please.",
            "Pet-friendly?",
            "I have a cat",
        ] {
            assert_eq!(p(asks).pet_friendly, None, "{asks}");
        }
    }

    #[test]
    fn pets_budget_and_property() {
        assert_eq!(p("I've got a cat").pets, Some(Pets { cats: 1, ..Pets::default() }));
        assert_eq!(p("two dogs and a cat").pets, Some(Pets { cats: 1, dogs: 2, other: 0 }));
        assert_eq!(p("a 2BR for me and my dog").pets, Some(Pets { dogs: 1, ..Pets::default() }));
        assert_eq!(p(&"I have a cat ".repeat(50)).pets, None, "a runaway transcript is not fifty cats");
        assert_eq!(p("I have 300 dogs").pets, None);
        assert_eq!(p("no pets").pets, Some(Pets::default()));
        assert_eq!(ask("no", Slot::Pets).pets, Some(Pets::default()));
        assert_eq!(p("do you allow cats?").pets, None, "a question is not a statement");
        assert_eq!(p("What's the pet fee? I have a dog.").pets, Some(Pets { dogs: 1, ..Pets::default() }));
        assert_eq!(p("around three thousand a month").budget, Some(Ok(3000)));
        assert_eq!(p("my budget is $2,800").budget, Some(Ok(2800)));
        assert_eq!(p("about 3.5k").budget, Some(Ok(3500)));
        assert_eq!(ask("four thousand", Slot::Budget).budget, Some(Ok(4000)));
        assert_eq!(ask("I just want one.", Slot::Bedrooms).bedrooms, Some(Ok(1)));
        assert_eq!(ask("Just two.", Slot::Bedrooms).bedrooms, Some(Ok(2)));
        assert_eq!(p("hudson please").property.as_deref(), Some("hudson-360"));
    }

    #[test]
    fn dates_and_times() {
        let friday = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let r = p("next Friday at 10").time.unwrap();
        assert_eq!((r.date, r.time), (Some(friday), NaiveTime::from_hms_opt(10, 0, 0)));
        let r = p("tomorrow at 3pm").time.unwrap();
        assert_eq!(r.date, NaiveDate::from_ymd_opt(2026, 11, 25));
        assert_eq!(r.time, NaiveTime::from_hms_opt(15, 0, 0));
        assert_eq!(p("Friday at 4").time.unwrap().time, NaiveTime::from_hms_opt(16, 0, 0));
        assert_eq!(p("I want to move in on March 1st").move_in, NaiveDate::from_ymd_opt(2027, 3, 1));
        assert_eq!(p("we're moving in by the first of january").move_in, NaiveDate::from_ymd_opt(2027, 1, 1));
        assert_eq!(ask("next month", Slot::MoveIn).move_in, NaiveDate::from_ymd_opt(2026, 12, 1));
    }

    #[test]
    fn contact_details() {
        assert_eq!(p("my email is dana at example dot com").email, Some(Ok("dana@example.com".into())));
        assert_eq!(p("it's dana.r@mail.example.org").email, Some(Ok("dana.r@mail.example.org".into())));
        assert!(matches!(p("my email is dana at example").email, Some(Err(_))));
        assert_eq!(
            ask("five five five one two three four five six seven", Slot::Phone).phone,
            Some(Ok("+15551234567".into()))
        );
        assert_eq!(p("my phone number is (212) 555-0199").phone, Some(Ok("+12125550199".into())));
        assert!(matches!(ask("five five five", Slot::Phone).phone, Some(Err(_))));
        assert_eq!(p("Hi, my name is Dana Whitfield").name.as_deref(), Some("Dana Whitfield"));
        assert_eq!(p("Hi, I'm Dana.").name.as_deref(), Some("Dana"));
        assert_eq!(p("I'm looking for a two bedroom").name, None);
        assert_eq!(ask("dana", Slot::Name).name.as_deref(), Some("Dana"));
    }

    #[test]
    fn confirmation_codes_as_they_are_read_out() {
        assert_eq!(p("My code is A 1 B 2 C 3").code.as_deref(), Some("A1B2C3"));
        assert_eq!(p("confirmation code 7f3a2b, I want to cancel").code.as_deref(), Some("7F3A2B"));
        assert_eq!(p("the code is seven F three A two B.").code.as_deref(), Some("7F3A2B"));
        let given = p("My confirmation code is 4 0 9 1 C D");
        assert_eq!(given.code.as_deref(), Some("4091CD"));
        assert_eq!((given.bedrooms, given.budget, given.time), (None, None, None), "the code's digits are not slots");
        assert_eq!(p("I don't have the code").code, None);
        assert_eq!(p("Is the apartment furnished or studio?").bedrooms, None, "asks which the place is");
        assert_eq!(p("I'd like a studio or a one bedroom at Hudson 360.").bedrooms, Some(Ok(0)), "asks for one");
        let zip = p("a two bedroom, zip code 10023");
        assert_eq!((zip.code, zip.bedrooms), (None, Some(Ok(2))), "a zip code is not a confirmation code");
    }

    #[test]
    fn a_question_about_the_callers_own_tour() {
        for q in [
            "When is my tour?",
            "what time is my appointment",
            "Do I have a tour booked?",
            "remind me when my visit is",
        ] {
            let parsed = p(q);
            assert!(parsed.own_tour, "{q}");
            assert!(parsed.questions.is_empty(), "{q}: {:?}", parsed.questions);
        }
        assert!(!p("What tour times do you have?").own_tour);
        assert!(!p("I'd like to book a tour").own_tour);
    }

    #[test]
    fn a_request_to_cancel() {
        for q in ["Please cancel my tour.", "I need to cancel my appointment", "Can you cancel it?"] {
            assert!(p(q).cancel_tour, "{q}");
            assert!(!p(q).own_tour, "{q}");
        }
        assert!(!p("Don't cancel my tour").cancel_tour);
        for q in ["Can I reschedule my tour?", "I'd like to move my tour to Friday", "Could we do a different time?"] {
            assert!(p(q).move_tour, "{q}");
            assert!(!p(q).own_tour, "{q}");
        }
        assert!(!p("I want to move in next month").move_tour);
        assert!(p("Let's keep it").keep_tour);
        assert!(!p("What's your cancellation policy for leases?").cancel_tour);
    }

    #[test]
    fn questions_and_answers() {
        assert_eq!(p("What's the pet fee at Hudson?").questions, [Topic::Pets]);
        assert_eq!(p("Is there parking?").questions, [Topic::Parking]);
        assert_eq!(p("how much is a two bedroom").questions, [Topic::Pricing]);
        assert!(p("I have a cat").questions.is_empty());
        assert_eq!(p("Yes, that's right").answer, Some(true));
        assert_eq!(p("no, change it").answer, Some(false));
        assert_eq!(p("a virtual tour please").tour_type, Some(TourType::Virtual));
        assert_eq!(p("I'd rather come by in person").tour_type, Some(TourType::InPerson));
    }
}
