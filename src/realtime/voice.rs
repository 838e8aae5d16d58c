//! The audio conversions between speech ([`crate::speech::Voice`]) and Twilio's 8 kHz μ-law frames, and what
//! Whisper should expect callers to say.

use base64::Engine;

use crate::inference::InferenceError;
use crate::speech::audio::resample;
use crate::speech::{mulaw, TextToSpeech};

/// Twilio's rate.
pub const PHONE_RATE: u32 = 8_000;
/// Whisper's rate.
pub const STT_RATE: u32 = 16_000;
/// Samples in one 20 ms phone frame.
pub const FRAME: usize = 160;

/// What callers to a leasing office say, for Whisper to expect (its previous-text prompt): the building names,
/// unit types, pets and common questions, phrased as a caller would. Measured on telephone-band espeak speech:
/// with a bare list of names, "I'd like to tour Hudson 360" came out as "I'd like to turn 360" and "I have one cat"
/// as "I have one care"; phrased like this, both are word for word.
pub const STT_HINT: &str =
    "I'd like to tour Hudson 360, 21 West End or Riverview Lofts: a studio, a one bedroom, a two \
     bedroom or a three bedroom. I have a cat and a dog. What is the rent, the pet policy and the parking?";

/// Decodes one Twilio media payload (base64 μ-law) to samples.
pub fn decode_payload(payload: &str) -> Result<Vec<f32>, base64::DecodeError> {
    Ok(mulaw::decode(&base64::engine::general_purpose::STANDARD.decode(payload)?))
}

/// `text` spoken by `tts`, at the phone line's rate: the agent's replies, and the benchmark's and tests' callers.
pub async fn phone_audio(tts: &dyn TextToSpeech, text: &str) -> Result<Vec<f32>, InferenceError> {
    let pcm = tts.synthesize(text).await?;
    Ok(resample(&pcm.samples, pcm.rate, PHONE_RATE))
}

/// Speaks `text` and cuts it into base64 μ-law 20 ms frames at 8 kHz (the last one padded with silence).
pub async fn speak_frames(tts: &dyn TextToSpeech, text: &str) -> Result<Vec<String>, InferenceError> {
    let mut bytes = mulaw::encode(&phone_audio(tts, text).await?);
    bytes.resize(bytes.len().next_multiple_of(FRAME), mulaw::encode_sample(0));
    Ok(bytes.chunks(FRAME).map(|f| base64::engine::general_purpose::STANDARD.encode(f)).collect())
}

/// Splits a reply into sentences, so the first can be spoken while the rest are synthesized and a barge-in can
/// tell which ones were heard.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        if matches!(c, '.' | '!' | '?') && chars.peek().is_none_or(|n| n.is_whitespace()) {
            let s = current.trim();
            if !s.is_empty() {
                out.push(s.to_string());
            }
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// Words a clause needs before the first sentence is split after it, and the words that must follow it.
const FIRST_CLAUSE_WORDS: (usize, usize) = (2, 3);

/// The pieces a reply is spoken in: its [`sentences`], the first split after its first clause ("Got it," then "a
/// two-bedroom at Hudson 360.") when both sides are a few words long. The first piece is what the caller waits for
/// after they stop, and a short clause is synthesized in a fraction of a sentence's time; the rest is synthesized
/// while it plays.
pub fn speech_pieces(text: &str) -> Vec<String> {
    let mut out = sentences(text);
    let Some(first) = out.first() else { return out };
    let words = |s: &str| s.split_whitespace().count();
    let split = first.match_indices([',', ';', ':']).map(|(i, _)| i + 1).find(|&end| {
        first[end..].starts_with(' ')
            && words(&first[..end]) >= FIRST_CLAUSE_WORDS.0
            && words(&first[end..]) >= FIRST_CLAUSE_WORDS.1
    });
    if let Some(end) = split {
        let (clause, rest) = first.split_at(end);
        let pieces = [clause.trim().to_string(), rest.trim().to_string()];
        out.splice(0..1, pieces);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sentence_is_spoken_from_its_first_clause() {
        assert_eq!(
            speech_pieces("Got it, a two-bedroom at Hudson 360. Will any pets be moving in with you?"),
            ["Got it,", "a two-bedroom at Hudson 360.", "Will any pets be moving in with you?"]
        );
        // Too short a clause, or too little after it, stays whole; later sentences are never split.
        assert_eq!(speech_pieces("Sure, that works, see you then."), ["Sure, that works,", "see you then."]);
        assert_eq!(
            speech_pieces("Welcome back to Harborline Leasing, Maria! At Hudson 360, cats are welcome."),
            ["Welcome back to Harborline Leasing, Maria!", "At Hudson 360, cats are welcome."]
        );
        assert_eq!(speech_pieces("Yes, at 4."), ["Yes, at 4."]);
        assert!(speech_pieces("").is_empty());
    }

    #[test]
    fn replies_split_into_sentences() {
        assert_eq!(
            sentences("Thanks for calling! Which building: Hudson 360, or 21 West End? We open at 9.30 a.m. daily"),
            vec!["Thanks for calling!", "Which building: Hudson 360, or 21 West End?", "We open at 9.30 a.m.", "daily"]
        );
        assert!(sentences("  ").is_empty());
    }
}
