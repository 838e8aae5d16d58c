//! `tourdesk bench understanding`: how well the agent's parser reads renters speaking freely, on Schema-Guided
//! Dialogue's Homes domain (a JSON list of SGD dialogues). Every user turn of a Homes frame is read the way a call
//! reads it: with the slot the agent asked for last as context. For the slots the agent keeps (bedrooms, a
//! pet-friendly home, the tour date) it reports how often the reading equals the annotators' value, on a call's
//! first turn, right after the agent asked for that slot, and after it asked for something else; and every *false
//! fill*: a slot of the state set to a value the caller did not give in that turn.
//!
//! SGD's dates are phrases ("the 4th of this month", "next Wednesday"); a turn's date is right when it is the date
//! the annotated phrase itself reads as, against the same anchor day.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::agent::{parse, Catalog, Parsed, Slot};

/// The day relative dates are read against (SGD's dialogues are set in March 2019).
const ANCHOR: (i32, u32, u32) = (2019, 3, 1);
/// The service whose frames are read.
const HOMES: &str = "Homes_1";

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
#[error("dataset {path}: {why}")]
pub struct UnderstandingBenchError {
    path: String,
    why: String,
}

#[derive(Debug, Deserialize)]
struct Dialogue {
    dialogue_id: String,
    turns: Vec<Turn>,
}

#[derive(Debug, Deserialize)]
struct Turn {
    speaker: String,
    utterance: String,
    frames: Vec<Frame>,
}

#[derive(Debug, Deserialize)]
struct Frame {
    service: String,
    actions: Vec<Action>,
}

#[derive(Debug, Deserialize)]
struct Action {
    act: String,
    slot: String,
    values: Vec<String>,
}

/// Where in a call a turn was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Context {
    /// The call's first user turn.
    FirstTurn,
    /// Right after the agent asked for this slot.
    Asked,
    /// After the agent asked for another slot, or nothing.
    Other,
}

/// Hits out of tries.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Rate {
    /// Turns whose reading equals the annotation.
    pub hits: usize,
    /// Turns with an annotation.
    pub total: usize,
}

impl Rate {
    /// hits / total (1 when there is nothing to read).
    pub fn value(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.hits as f64 / self.total as f64
        }
    }
}

/// A turn read wrongly, for looking at.
#[derive(Debug, Clone, Serialize)]
pub struct Miss {
    /// Dialogue id.
    pub dialogue: String,
    /// What the caller said.
    pub utterance: String,
    /// The slot.
    pub slot: String,
    /// The annotation ("" for a false fill).
    pub gold: String,
    /// What the parser read.
    pub read: String,
}

/// The benchmark's result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UnderstandingReport {
    /// Dialogues read.
    pub dialogues: usize,
    /// User turns read.
    pub turns: usize,
    /// Per SGD slot and context.
    pub rates: BTreeMap<String, BTreeMap<Context, Rate>>,
    /// Per state slot: turns that set it to a value the caller did not give.
    pub false_fills: BTreeMap<String, usize>,
    /// Annotated dates the parser cannot read on their own (left out of the date rate).
    pub unreadable_gold_dates: usize,
    /// Wrong readings and false fills.
    pub misses: Vec<Miss>,
}

/// The slot the agent asks with for an SGD slot the system requested.
fn asked_slot(sgd: &str) -> Option<Slot> {
    match sgd {
        "number_of_beds" => Some(Slot::Bedrooms),
        "pets_allowed" => Some(Slot::Pets),
        "visit_date" => Some(Slot::TourTime),
        "area" => Some(Slot::Property),
        _ => None,
    }
}

fn homes(turn: &Turn) -> Option<&Frame> {
    turn.frames.iter().find(|f| f.service == HOMES)
}

/// Reads the dataset and scores every user turn of a Homes frame.
pub fn understanding_bench(path: &Path, catalog: &Catalog) -> Result<UnderstandingReport, UnderstandingBenchError> {
    let fail = |why: String| UnderstandingBenchError { path: path.display().to_string(), why };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let dialogues: Vec<Dialogue> =
        serde_json::from_str(&text).map_err(|e| fail(format!("not a list of SGD dialogues: {e}")))?;
    let today = NaiveDate::from_ymd_opt(ANCHOR.0, ANCHOR.1, ANCHOR.2).expect("valid anchor");
    let mut report = UnderstandingReport { dialogues: dialogues.len(), ..Default::default() };
    for dialogue in &dialogues {
        let mut asked: Option<Slot> = None;
        let mut first = true;
        for turn in &dialogue.turns {
            let Some(frame) = homes(turn) else {
                if turn.speaker == "USER" {
                    first = false;
                }
                continue;
            };
            if turn.speaker != "USER" {
                asked = frame.actions.iter().filter(|a| a.act == "REQUEST").find_map(|a| asked_slot(&a.slot));
                continue;
            }
            report.turns += 1;
            let parsed = parse(&turn.utterance, asked, today, catalog);
            score_turn(&mut report, dialogue, turn, frame, &parsed, asked, first, today, catalog);
            first = false;
            asked = None;
        }
    }
    Ok(report)
}

/// The annotated value of `slot` in this frame, if the caller gave it.
fn gold<'a>(frame: &'a Frame, slot: &str) -> Option<&'a str> {
    frame
        .actions
        .iter()
        .find(|a| a.act == "INFORM" && a.slot == slot)
        .and_then(|a| a.values.first())
        .map(String::as_str)
}

#[allow(clippy::too_many_arguments)]
fn score_turn(
    report: &mut UnderstandingReport,
    dialogue: &Dialogue,
    turn: &Turn,
    frame: &Frame,
    parsed: &Parsed,
    asked: Option<Slot>,
    first: bool,
    today: NaiveDate,
    catalog: &Catalog,
) {
    let context = |slot: Slot| {
        if first {
            Context::FirstTurn
        } else if asked == Some(slot) {
            Context::Asked
        } else {
            Context::Other
        }
    };
    let miss = |report: &mut UnderstandingReport, slot: &str, gold: &str, read: String| {
        report.misses.push(Miss {
            dialogue: dialogue.dialogue_id.clone(),
            utterance: turn.utterance.clone(),
            slot: slot.into(),
            gold: gold.into(),
            read,
        });
    };
    // A count heard but beyond the catalog (four bedrooms here) is read right; the agent then says it has none.
    let read_beds = match &parsed.bedrooms {
        Some(Ok(b)) => Some(*b),
        Some(Err(heard)) => heard.parse().ok(),
        None => None,
    };
    let read_date = parsed.time.and_then(|t| t.date);

    // Bedrooms.
    let gold_beds = gold(frame, "number_of_beds");
    if let Some(g) = gold_beds {
        let hit = g.parse::<u8>().ok() == read_beds;
        tally(report, "number_of_beds", context(Slot::Bedrooms), hit);
        if !hit {
            miss(report, "number_of_beds", g, format!("{read_beds:?}"));
        }
    } else if let Some(b) = read_beds {
        false_fill(report, "bedrooms");
        miss(report, "bedrooms", "", b.to_string());
    }

    // A pet-friendly home.
    let gold_pets = gold(frame, "pets_allowed");
    if let Some(g) = gold_pets {
        let hit = parsed.pet_friendly == Some(g == "True");
        tally(report, "pets_allowed", context(Slot::Pets), hit);
        if !hit {
            miss(report, "pets_allowed", g, format!("{:?}", parsed.pet_friendly));
        }
    } else if let Some(f) = parsed.pet_friendly {
        false_fill(report, "pet_friendly");
        miss(report, "pet_friendly", "", f.to_string());
    }

    // The tour's date, against what the annotated phrase itself reads as.
    match gold(frame, "visit_date") {
        Some(g) => match parse(g, Some(Slot::TourTime), today, catalog).time.and_then(|t| t.date) {
            Some(want) => {
                let hit = read_date == Some(want);
                tally(report, "visit_date", context(Slot::TourTime), hit);
                if !hit {
                    miss(report, "visit_date", &format!("{g} ({want})"), format!("{read_date:?}"));
                }
            }
            None => report.unreadable_gold_dates += 1,
        },
        None => {
            // A date the caller gave for another service in the same turn (their calendar, a car) was said.
            let said =
                turn.frames.iter().flat_map(|f| &f.actions).filter(|a| a.act == "INFORM" && a.slot.ends_with("_date"));
            let said: Vec<NaiveDate> = said
                .filter_map(|a| a.values.first())
                .filter_map(|v| parse(v, Some(Slot::TourTime), today, catalog).time.and_then(|t| t.date))
                .collect();
            if let Some(d) = read_date.filter(|d| !said.contains(d)) {
                false_fill(report, "tour_date");
                miss(report, "tour_date", "", d.to_string());
            }
        }
    }

    // Slots SGD's renters never give: anything read for them is a false fill.
    let never: [(&str, Option<String>); 7] = [
        ("budget", parsed.budget.as_ref().map(|b| format!("{b:?}"))),
        ("move_in", parsed.move_in.map(|d| d.to_string())),
        ("property", parsed.property.clone()),
        ("name", parsed.name.clone()),
        ("email", parsed.email.as_ref().map(|e| format!("{e:?}"))),
        ("phone", parsed.phone.as_ref().map(|p| format!("{p:?}"))),
        ("confirmation_code", parsed.code.clone()),
    ];
    for (slot, read) in never {
        if let Some(read) = read {
            false_fill(report, slot);
            miss(report, slot, "", read);
        }
    }
}

fn tally(report: &mut UnderstandingReport, slot: &str, context: Context, hit: bool) {
    let rate = report.rates.entry(slot.into()).or_default().entry(context).or_default();
    rate.total += 1;
    rate.hits += usize::from(hit);
}

fn false_fill(report: &mut UnderstandingReport, slot: &str) {
    *report.false_fills.entry(slot.into()).or_default() += 1;
}

impl fmt::Display for UnderstandingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "understanding: {} dialogues, {} user turns (Homes frames)", self.dialogues, self.turns)?;
        writeln!(
            f,
            "{:<16} {:>18} {:>18} {:>18} {:>18}",
            "slot", "first turn", "asked for it", "asked other", "in context"
        )?;
        for (slot, by_context) in &self.rates {
            let cell = |c: Context| {
                let r = by_context.get(&c).copied().unwrap_or_default();
                format!("{:.3} ({}/{})", r.value(), r.hits, r.total)
            };
            let mut context = Rate::default();
            for c in [Context::Asked, Context::Other] {
                let r = by_context.get(&c).copied().unwrap_or_default();
                context.hits += r.hits;
                context.total += r.total;
            }
            let in_context = format!("{:.3} ({}/{})", context.value(), context.hits, context.total);
            writeln!(
                f,
                "{slot:<16} {:>18} {:>18} {:>18} {:>18}",
                cell(Context::FirstTurn),
                cell(Context::Asked),
                cell(Context::Other),
                in_context
            )?;
        }
        let total: usize = self.false_fills.values().sum();
        write!(f, "false fills: {total}")?;
        for (slot, n) in &self.false_fills {
            write!(f, "  {slot} {n}")?;
        }
        writeln!(f)?;
        write!(f, "annotated dates the parser cannot read alone: {}", self.unreadable_gold_dates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(speaker: &str, utterance: &str, actions: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"speaker": speaker, "utterance": utterance,
            "frames": [{"service": HOMES, "actions": actions}]})
    }

    #[test]
    fn readings_are_scored_by_context_and_unasked_values_are_false_fills() {
        let inform = |slot: &str, v: &str| serde_json::json!({"act": "INFORM", "slot": slot, "values": [v]});
        let request = |slot: &str| serde_json::json!([{"act": "REQUEST", "slot": slot, "values": []}]);
        let dialogue = serde_json::json!([{"dialogue_id": "t1", "turns": [
            turn("USER", "I need a two bedroom apartment that allows pets.",
                serde_json::json!([inform("number_of_beds", "2"), inform("pets_allowed", "True")])),
            turn("SYSTEM", "When would you like to visit?", request("visit_date")),
            turn("USER", "How about the 4th of this month?", serde_json::json!([inform("visit_date", "4th of this month")])),
            turn("SYSTEM", "How many baths?", request("number_of_baths")),
            turn("USER", "Just two.", serde_json::json!([inform("number_of_baths", "2")])),
            turn("SYSTEM", "Anything else?", serde_json::json!([])),
            turn("USER", "Do they allow pets? That's all for today.", serde_json::json!([])),
            turn("SYSTEM", "How many bedrooms?", request("number_of_beds")),
            turn("USER", "Three, I'm calling from 510-797-1800.", serde_json::json!([inform("number_of_beds", "3")])),
        ]}]);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), dialogue.to_string()).unwrap();
        let report = understanding_bench(file.path(), &Catalog::builtin().unwrap()).unwrap();
        assert_eq!((report.dialogues, report.turns), (1, 5));
        let rate = |slot: &str, c: Context| report.rates[slot].get(&c).copied().unwrap_or_default();
        assert_eq!(
            (rate("number_of_beds", Context::FirstTurn).hits, rate("number_of_beds", Context::FirstTurn).total),
            (1, 1)
        );
        assert_eq!(rate("number_of_beds", Context::Asked).total, 1);
        assert_eq!(rate("number_of_beds", Context::Asked).hits, 1, "{:?}", report.misses);
        assert_eq!(rate("pets_allowed", Context::FirstTurn).hits, 1);
        assert_eq!(rate("visit_date", Context::Asked).hits, 1, "{:?}", report.misses);
        // "Just two" answered the baths question and "Do they allow pets?" asked about a place: nothing is
        // filled; the phone number is not a budget.
        assert!(report.false_fills.is_empty(), "{:?}", report.misses);
        let bad = serde_json::json!([{"dialogue_id": "t2", "turns": [turn("USER", "A studio please, my name is Ana.", serde_json::json!([]))]}]);
        std::fs::write(file.path(), bad.to_string()).unwrap();
        let report = understanding_bench(file.path(), &Catalog::builtin().unwrap()).unwrap();
        assert_eq!((report.false_fills.get("bedrooms"), report.false_fills.get("name")), (Some(&1), Some(&1)));
        assert!(understanding_bench(Path::new("/nonexistent.json"), &Catalog::builtin().unwrap()).is_err());
    }
}
