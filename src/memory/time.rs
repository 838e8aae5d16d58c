//! What a search knows about time: when a memory happened (a `timestamp` or date in its metadata, else when it was
//! stored) and which period a query asks about ("in May 2023", "last May", "yesterday", "in 2022").

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value};

/// Metadata keys holding when a memory happened, in order of preference.
const TIME_KEYS: [&str; 3] = ["timestamp", "date", "time"];

/// Month names, lower case, January first (shared with the agent's parser).
pub(crate) const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// When a memory happened: the first of its metadata's `timestamp` / `date` / `time` that parses (Unix seconds,
/// RFC 3339, `2023-05-08`, `8 May 2023`, `May 8, 2023`, LoCoMo's `1:56 pm on 8 May, 2023`), else `stored`.
pub(crate) fn memory_time(metadata: &Map<String, Value>, stored: DateTime<Utc>) -> DateTime<Utc> {
    TIME_KEYS.iter().filter_map(|k| metadata.get(*k)).find_map(parse_time_value).unwrap_or(stored)
}

fn parse_time_value(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => n.as_f64().and_then(unix),
        Value::String(s) => parse_time(s),
        _ => None,
    }
}

fn unix(secs: f64) -> Option<DateTime<Utc>> {
    // Milliseconds when too large to be seconds (year > 5138).
    let secs = if secs.abs() > 1e11 { secs / 1000.0 } else { secs };
    Utc.timestamp_opt(secs.trunc() as i64, 0).single()
}

/// Parses the date formats people and datasets write; `None` when no full date is found.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(secs) = s.parse::<f64>() {
        return unix(secs);
    }
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    // Free text: a day, a month name and a four-digit year in any order ("8 May, 2023", "May 8 2023").
    let words = words(s);
    let month = words.iter().find_map(|w| month_number(w))?;
    let year = words.iter().find_map(|w| w.parse::<i32>().ok().filter(|y| (1000..=9999).contains(y)))?;
    let day = words.iter().find_map(|w| ordinal_day(w)).unwrap_or(1);
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let (hour, minute) = clock(s).unwrap_or((0, 0));
    date.and_hms_opt(hour, minute, 0).map(|t| t.and_utc())
}

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric() && c != ':').filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// `may`, `May.`, `sept`, `december` → the month's number.
fn month_number(word: &str) -> Option<u32> {
    let word = word.trim_end_matches('.');
    MONTHS
        .iter()
        .position(|m| *m == word || ((3..=4).contains(&word.len()) && m.starts_with(word)))
        .map(|i| i as u32 + 1)
}

fn ordinal_day(word: &str) -> Option<u32> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    if !(suffix.is_empty() || ["st", "nd", "rd", "th"].contains(&suffix)) || digits.len() > 2 {
        return None;
    }
    digits.parse::<u32>().ok().filter(|d| (1..=31).contains(d))
}

/// `1:56 pm` → (13, 56).
fn clock(s: &str) -> Option<(u32, u32)> {
    let lower = s.to_lowercase();
    let (h, rest) = lower.split_once(':')?;
    let hour: u32 = h.rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
    let minute: u32 = rest.get(..2)?.parse().ok()?;
    let pm = rest[2..].trim_start().starts_with("pm");
    let hour = match (hour, pm) {
        (12, false) if rest[2..].trim_start().starts_with("am") => 0,
        (h, true) if h < 12 => h + 12,
        (h, _) => h,
    };
    (hour < 24 && minute < 60).then_some((hour, minute))
}

/// A period a query asks about: `[start, end)`, or a month of any year ("in May" without a year or "last").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeCue {
    /// A day, a month, a year, a week.
    Span { start: DateTime<Utc>, end: DateTime<Utc> },
    /// A month in whichever year.
    Month(u32),
}

/// How far after a named period a memory still half-matches it: people say "in May" of what happened in the first
/// days of June, and a day named is often a day or two off.
const NEAR_DAYS: i64 = 7;

impl TimeCue {
    /// How well a memory from `t` matches: 1 inside the period, 0.5 within a week after it (or around a day named),
    /// 0 otherwise.
    pub fn affinity(&self, t: DateTime<Utc>) -> f32 {
        match *self {
            Self::Span { start, end } => {
                let near = Duration::days(NEAR_DAYS);
                let single_day = end - start <= Duration::days(1);
                if start <= t && t < end {
                    1.0
                } else if (t >= end && t < end + near) || (single_day && t < start && t >= start - near) {
                    0.5
                } else {
                    0.0
                }
            }
            Self::Month(m) => {
                if t.month() == m {
                    1.0
                } else if t.month() == m % 12 + 1 && t.day() as i64 <= NEAR_DAYS {
                    0.5
                } else {
                    0.0
                }
            }
        }
    }

    fn day(d: NaiveDate) -> Option<Self> {
        Self::between(d, d.succ_opt()?)
    }

    fn month(year: i32, month: u32) -> Option<Self> {
        let start = NaiveDate::from_ymd_opt(year, month, 1)?;
        let end = if month == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)?
        } else {
            NaiveDate::from_ymd_opt(year, month + 1, 1)?
        };
        Self::between(start, end)
    }

    fn year(year: i32) -> Option<Self> {
        Self::between(NaiveDate::from_ymd_opt(year, 1, 1)?, NaiveDate::from_ymd_opt(year + 1, 1, 1)?)
    }

    fn between(start: NaiveDate, end: NaiveDate) -> Option<Self> {
        Some(Self::Span { start: start.and_hms_opt(0, 0, 0)?.and_utc(), end: end.and_hms_opt(0, 0, 0)?.and_utc() })
    }
}

/// The period a query names, if any: a full date, a month and year, a month alone (any year; "last May" is the most
/// recent May before `now`), a year, or a day, week, month or year relative to `now` ("yesterday", "last week").
pub(crate) fn query_time(query: &str, now: DateTime<Utc>) -> Option<TimeCue> {
    let words = words(query);
    let today = now.date_naive();
    let year = words.iter().find_map(|w| w.parse::<i32>().ok().filter(|y| (1900..=2999).contains(y)));
    let at = (0..words.len()).find(|&i| month_word(&words, i).is_some());
    let month = at.and_then(|i| month_word(&words, i));
    // A day counts only next to its month ("8 May", "May 8th").
    let day = at.and_then(|i| {
        let before = i.checked_sub(1).and_then(|j| words.get(j));
        before.and_then(|w| ordinal_day(w)).or_else(|| words.get(i + 1).and_then(|w| ordinal_day(w)))
    });
    let last = at.is_some_and(|i| i > 0 && words[i - 1] == "last");
    match (year, month, day) {
        (Some(y), Some(m), Some(d)) => return NaiveDate::from_ymd_opt(y, m, d).and_then(TimeCue::day),
        (Some(y), Some(m), None) => return TimeCue::month(y, m),
        (None, Some(m), _) if last => {
            let y = if m < today.month() { today.year() } else { today.year() - 1 };
            return TimeCue::month(y, m);
        }
        (None, Some(m), _) => return Some(TimeCue::Month(m)),
        (Some(y), None, _) => return TimeCue::year(y),
        (None, None, _) => {}
    }
    let has = |pair: &str| words.windows(2).any(|w| format!("{} {}", w[0], w[1]) == pair);
    if words.iter().any(|w| w == "yesterday") {
        return TimeCue::day(today.pred_opt()?);
    }
    if words.iter().any(|w| w == "today") {
        return TimeCue::day(today);
    }
    if has("last week") {
        let start = today - Duration::days(today.weekday().num_days_from_monday() as i64 + 7);
        return TimeCue::between(start, start + Duration::days(7));
    }
    if has("last month") {
        let (y, m) = if today.month() == 1 { (today.year() - 1, 12) } else { (today.year(), today.month() - 1) };
        return TimeCue::month(y, m);
    }
    if has("last year") {
        return TimeCue::year(today.year() - 1);
    }
    None
}

/// The month `words[i]` names, but not the verb "may" unless a year or "last"/"in"/"of"/… stands next to it.
fn month_word(words: &[String], i: usize) -> Option<u32> {
    let m = month_number(&words[i])?;
    if words[i] == "may" {
        let before = i.checked_sub(1).and_then(|j| words.get(j)).map(String::as_str);
        let after = words.get(i + 1);
        let dated = matches!(before, Some("last" | "in" | "of" | "early" | "late" | "since" | "during"))
            || after.is_some_and(|w| w.parse::<i32>().is_ok() || ordinal_day(w).is_some());
        if !dated {
            return None;
        }
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn dates_in_the_formats_people_write() {
        let t = parse_time("1:56 pm on 8 May, 2023").unwrap();
        assert_eq!(t, Utc.with_ymd_and_hms(2023, 5, 8, 13, 56, 0).unwrap());
        assert_eq!(parse_time("2023-05-08").unwrap(), at(2023, 5, 8));
        assert_eq!(parse_time("May 8th 2023").unwrap(), at(2023, 5, 8));
        assert_eq!(
            parse_time("10:37 am on 27 June, 2023").unwrap(),
            Utc.with_ymd_and_hms(2023, 6, 27, 10, 37, 0).unwrap()
        );
        assert_eq!(parse_time("1683550560").unwrap(), Utc.with_ymd_and_hms(2023, 5, 8, 12, 56, 0).unwrap());
        assert!(parse_time("sometime soon").is_none());
    }

    #[test]
    fn memory_time_prefers_metadata_then_storage_time() {
        let stored = at(2026, 1, 1);
        let meta = serde_json::json!({"date": "8 May, 2023"});
        assert_eq!(memory_time(meta.as_object().unwrap(), stored), at(2023, 5, 8));
        let meta = serde_json::json!({"timestamp": 1_683_504_000, "date": "1 Jan 2020"});
        assert_eq!(memory_time(meta.as_object().unwrap(), stored), at(2023, 5, 8));
        assert_eq!(memory_time(&Map::new(), stored), stored);
    }

    #[test]
    fn periods_named_in_questions() {
        let now = at(2023, 11, 15);
        let p = |q: &str| query_time(q, now);
        assert_eq!(p("What did she do in May 2023?"), TimeCue::month(2023, 5));
        assert_eq!(p("What happened last May?"), TimeCue::month(2023, 5));
        assert_eq!(p("Where did he go in December?"), Some(TimeCue::Month(12)));
        assert_eq!(p("What did they paint in 2022?"), TimeCue::year(2022));
        assert_eq!(p("What did I say yesterday?"), TimeCue::day(NaiveDate::from_ymd_opt(2023, 11, 14).unwrap()));
        assert_eq!(p("Who called on 8 May 2023?"), TimeCue::day(NaiveDate::from_ymd_opt(2023, 5, 8).unwrap()));
        assert_eq!(p("May I book a tour?"), None);
        assert_eq!(p("What is the pet policy?"), None);
    }

    #[test]
    fn affinity_is_full_inside_and_half_just_after() {
        let may = TimeCue::month(2023, 5).unwrap();
        assert_eq!(may.affinity(at(2023, 5, 31)), 1.0);
        assert_eq!(may.affinity(at(2023, 6, 3)), 0.5);
        assert_eq!(may.affinity(at(2023, 6, 20)), 0.0);
        let day = TimeCue::day(NaiveDate::from_ymd_opt(2023, 5, 8).unwrap()).unwrap();
        assert_eq!((day.affinity(at(2023, 5, 8)), day.affinity(at(2023, 5, 5))), (1.0, 0.5));
        assert_eq!(TimeCue::Month(12).affinity(at(2019, 12, 24)), 1.0);
        assert_eq!(TimeCue::Month(12).affinity(at(2020, 1, 2)), 0.5);
    }
}
