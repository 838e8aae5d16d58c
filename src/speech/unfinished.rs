//! Whether a transcript stops mid-phrase: the words a caller's pause left hanging ("My budget is", "I have a cat
//! and", "Can I bring my"). The acoustic end-of-turn models judge a pause by its sound; on a synthetic or flat voice
//! they call such a pause the end (Smart Turn gives "I'd like a tour on the" 0.92), while the words say plainly that
//! more is coming. A short closed list of English function words is enough for that, and it errs on the side of
//! waiting a little longer, never of answering too soon. Some words may end a sentence or go on ("I'd like to move
//! in" / "… in January"); for those ([`may_go_on`]) the words cannot tell, and how they sounded is asked instead.

/// Words after which an English sentence goes on: articles and possessives, prepositions that do not end a phrasal
/// verb ("move in", "come over" can end one), conjunctions, and hesitations.
const GOES_ON_AFTER: &[&str] = &[
    "a", "an", "the", "my", "your", "our", "their", "its", "every", "of", "to", "for", "with", "at", "from", "into",
    "onto", "than", "per", "between", "during", "until", "till", "via", "and", "or", "but", "nor", "because", "cause",
    "although", "unless", "whereas", "whether", "if", "um", "uh", "er", "erm", "uhm",
];

/// Forms of "be" that go on unless they close an ellipsis after a pronoun ("yes, it is", "here you are").
const BE: &[&str] = &["is", "are", "am", "was", "were", "be", "been"];

/// Words before a form of "be" that let it end the sentence.
const CLOSES_BE: &[&str] = &[
    "it", "that", "this", "there", "here", "he", "she", "they", "we", "you", "i", "who", "what", "which", "where",
    "how",
];

/// Words that may end a sentence or go on, as a particle or a preposition ("I'd like to move in" / "… in
/// January"): the words cannot tell, how they sounded can.
const MAY_GO_ON_AFTER: &[&str] =
    &["in", "on", "up", "out", "off", "over", "down", "by", "around", "back", "through", "about", "like", "along"];

/// Whether `transcript` ends on a word after which a sentence may as well go on as end ([`MAY_GO_ON_AFTER`]), and
/// not with a question mark or exclamation mark.
pub fn may_go_on(transcript: &str) -> bool {
    let text = transcript.trim();
    !text.ends_with(['?', '!']) && plain_words(text).last().is_some_and(|last| MAY_GO_ON_AFTER.contains(&last.as_str()))
}

/// Lower-case words without punctuation (apostrophes kept).
fn plain_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether `transcript` (Whisper's text of what the caller said so far) stops where a sentence cannot: after a
/// comma, dash or ellipsis, or on a word from [`GOES_ON_AFTER`], or on a form of "be" after anything but a pronoun.
/// A question mark or exclamation mark is a finished sentence whatever word precedes it ("Who do I talk to?").
pub fn sounds_unfinished(transcript: &str) -> bool {
    let text = transcript.trim();
    if text.ends_with(['?', '!']) {
        return false;
    }
    if text.ends_with([',', ';', ':', '-', '—', '…']) || text.ends_with("..") {
        return true;
    }
    match plain_words(text).as_slice() {
        [.., before, last] if BE.contains(&last.as_str()) => !CLOSES_BE.contains(&before.as_str()),
        [last] if BE.contains(&last.as_str()) => false,
        [.., last] => GOES_ON_AFTER.contains(&last.as_str()),
        [] => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{may_go_on, sounds_unfinished};

    #[test]
    fn a_phrase_left_hanging_is_told_from_a_finished_sentence() {
        for text in [
            "My budget is",
            "My budget is.",
            "I have a cat and",
            "Can I bring my...",
            "I'd like a tour on the",
            "We want to move in at the.",
            "I'd like to see the two bedroom and um",
            "My name is Maria and,",
            "Um, I was thinking -",
        ] {
            assert!(sounds_unfinished(text), "{text}");
        }
        for text in [
            "My budget is about four thousand.",
            "I'd like to move in.",
            "Yes, it is.",
            "Here you are.",
            "Who do I talk to?",
            "What is it for?",
            "I have a cat.",
            "Is",
            "",
        ] {
            assert!(!sounds_unfinished(text), "{text}");
        }
    }

    #[test]
    fn a_word_that_may_end_a_sentence_or_go_on_is_left_to_how_it_sounded() {
        for text in ["I'd like to move in.", "Can we drop by", "I was thinking about"] {
            assert!(may_go_on(text) && !sounds_unfinished(text), "{text}");
        }
        for text in ["Can I move in?", "I have one cat.", "My budget is", ""] {
            assert!(!may_go_on(text), "{text}");
        }
    }
}
