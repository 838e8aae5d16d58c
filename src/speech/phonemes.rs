//! Text to Piper's phoneme ids: espeak-ng (the command-line program the project's setup installs) writes IPA one
//! clause per line; each clause gets back the punctuation that ended it, and every codepoint is looked up in the
//! voice's phoneme map, as Piper does (`^`, then each phoneme followed by the pad `_`, then `$`).
//!
//! Written here rather than taken from a crate: Piper's phonemizer is a C++ library over libespeak-ng, and the
//! command-line program gives the same phonemes (checked against the `piper-tts` package) without linking C.

use std::collections::HashMap;

use serde::Deserialize;

use super::espeak;
use crate::inference::InferenceError;

/// What a Piper voice's `.onnx.json` says about turning text into its input.
#[derive(Debug, Clone, Deserialize)]
pub struct VoiceConfig {
    /// Output sample rate and such.
    pub audio: AudioConfig,
    /// The espeak-ng voice that phonemizes for this voice.
    pub espeak: EspeakConfig,
    /// Default noise and length scales.
    pub inference: InferenceConfig,
    /// Each phoneme (one codepoint) and its id(s).
    pub phoneme_id_map: HashMap<String, Vec<i64>>,
}

/// `audio` of a voice config.
#[derive(Debug, Clone, Deserialize)]
pub struct AudioConfig {
    /// Samples per second of the voice's output.
    pub sample_rate: u32,
}

/// `espeak` of a voice config.
#[derive(Debug, Clone, Deserialize)]
pub struct EspeakConfig {
    /// espeak-ng voice name (`en-us`).
    pub voice: String,
}

/// `inference` of a voice config.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct InferenceConfig {
    /// Variation in the voice.
    pub noise_scale: f32,
    /// Speed: above 1 is slower.
    pub length_scale: f32,
    /// Variation in phoneme durations.
    pub noise_w: f32,
}

/// Piper's special symbols.
const PAD: &str = "_";
const BOS: &str = "^";
const EOS: &str = "$";

/// Punctuation that ends a clause, as espeak-ng reports it to Piper.
fn ends_clause(c: char) -> bool {
    matches!(c, '.' | ',' | '?' | '!' | ':' | ';')
}

/// Splits text into clauses, each with the punctuation that ended it: a run of `. , ? ! : ;` followed by a blank
/// or the end ends a clause (its last mark counts), except a single `.` before a lower-case word (an
/// abbreviation, as espeak-ng reads it).
pub fn clauses(text: &str) -> Vec<(String, Option<char>)> {
    let chars: Vec<char> = text.chars().map(|c| if c == '…' { '.' } else { c }).collect();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if ends_clause(c) {
            let mut end = i;
            while end + 1 < chars.len() && ends_clause(chars[end + 1]) {
                end += 1;
            }
            let next = chars.get(end + 1);
            let at_break = next.is_none_or(|c| c.is_whitespace());
            let abbreviation = c == '.' && end == i && {
                let word = chars[end + 1..].iter().find(|c| !c.is_whitespace());
                word.is_some_and(|c| c.is_lowercase())
            };
            if at_break && !abbreviation {
                let clause = current.trim().to_string();
                if !clause.is_empty() {
                    out.push((clause, Some(chars[end])));
                }
                current.clear();
                i = end + 1;
                continue;
            }
            current.extend(&chars[i..=end]);
            i = end + 1;
            continue;
        }
        current.push(c);
        i += 1;
    }
    let rest = current.trim();
    if !rest.is_empty() {
        out.push((rest.to_string(), None));
    }
    out
}

/// Phonemizes with the espeak-ng program.
#[derive(Debug, Clone)]
pub struct Phonemizer {
    program: String,
    voice: String,
}

impl Phonemizer {
    /// espeak-ng with `voice` (`en-us`).
    pub fn new(voice: impl Into<String>) -> Self {
        Self { program: "espeak-ng".into(), voice: voice.into() }
    }

    /// IPA of each clause of `text`, with the clause's closing punctuation put back (and a blank after a comma,
    /// colon or semicolon), split into sentences at `.`, `?` and `!`.
    pub async fn sentences(&self, text: &str) -> Result<Vec<String>, InferenceError> {
        let clauses = clauses(text);
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let mut lines = self.ipa(text).await?;
        if lines.len() != clauses.len() {
            // espeak-ng split differently: ask clause by clause.
            lines = Vec::with_capacity(clauses.len());
            for (clause, _) in &clauses {
                lines.push(self.ipa(clause).await?.join(" "));
            }
        }
        let mut sentences = Vec::new();
        let mut sentence = String::new();
        for (ipa, (_, end)) in lines.iter().zip(&clauses) {
            sentence.push_str(ipa);
            match end {
                Some(c @ ('.' | '?' | '!')) => {
                    sentence.push(*c);
                    sentences.push(std::mem::take(&mut sentence));
                }
                Some(c) => {
                    sentence.push(*c);
                    sentence.push(' ');
                }
                None => sentence.push(' '),
            }
        }
        if !sentence.trim().is_empty() {
            sentences.push(sentence.trim_end().to_string());
        }
        Ok(sentences)
    }

    /// espeak-ng's IPA lines for `text` (language-switch marks such as `(fr)` removed).
    async fn ipa(&self, text: &str) -> Result<Vec<String>, InferenceError> {
        let out = espeak::run(&self.program, &["-q", "--ipa", "-v", &self.voice], None, text).await?;
        let text = String::from_utf8_lossy(&out);
        Ok(text.lines().map(strip_language_marks).filter(|l| !l.is_empty()).collect())
    }
}

/// Removes espeak-ng's `(en)`-style language switch marks and surrounding blanks.
fn strip_language_marks(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_mark = false;
    for c in line.chars() {
        match c {
            '(' => in_mark = true,
            ')' if in_mark => in_mark = false,
            _ if !in_mark => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

/// Piper's input ids for one sentence's phonemes: `^ _`, each known phoneme followed by `_`, then `$`. Phonemes
/// the voice does not know are left out, as Piper does.
pub fn phoneme_ids(phonemes: &str, map: &HashMap<String, Vec<i64>>) -> Vec<i64> {
    let id = |s: &str| map.get(s).cloned().unwrap_or_default();
    let mut ids = id(BOS);
    ids.extend(id(PAD));
    let mut buf = [0u8; 4];
    for c in phonemes.chars() {
        if let Some(found) = map.get(c.encode_utf8(&mut buf) as &str) {
            ids.extend(found);
            ids.extend(id(PAD));
        }
    }
    ids.extend(id(EOS));
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_end_at_punctuation_before_a_blank_but_not_at_abbreviations_or_decimals() {
        let got = clauses("Hello, I can book a tour for you on Friday. It costs $3.50 a month, e.g. nothing!");
        let want = [
            ("Hello", Some(',')),
            ("I can book a tour for you on Friday", Some('.')),
            ("It costs $3.50 a month", Some(',')),
            ("e.g. nothing", Some('!')),
        ];
        let got: Vec<(&str, Option<char>)> = got.iter().map(|(c, e)| (c.as_str(), *e)).collect();
        assert_eq!(got, want);
        assert_eq!(clauses("Really?! Yes"), [("Really".to_string(), Some('!')), ("Yes".to_string(), None)]);
        assert!(clauses("  ").is_empty());
    }

    #[test]
    fn ids_interleave_the_pad_and_skip_unknown_phonemes() {
        let map: HashMap<String, Vec<i64>> = [("_", 0), ("^", 1), ("$", 2), (" ", 3), ("h", 20), ("ə", 59)]
            .map(|(k, v)| (k.to_string(), vec![v]))
            .into();
        assert_eq!(phoneme_ids("hə ☃h", &map), [1, 0, 20, 0, 59, 0, 3, 0, 20, 0, 2]);
    }

    #[test]
    fn language_marks_are_removed() {
        assert_eq!(strip_language_marks(" bɔ̃ʒˈuʁ (fr)kafe(en) "), "bɔ̃ʒˈuʁ kafe");
    }
}
