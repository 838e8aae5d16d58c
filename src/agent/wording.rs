//! Reply wording by the chat model: the planner's template reply (decided by the tools and the state) is rephrased
//! for the phone, and the rephrasing is used only if it keeps every fact of the template — numbers, times, prices,
//! names, addresses, codes — and arrives in time. Otherwise the template is spoken as it is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::inference::{ChatMessage, ChatModel, ChatRequest, Role};

const INSTRUCTIONS: &str = "You are the phone voice of a leasing office. Rewrite the draft reply so it sounds warm \
and natural when spoken. Keep every fact exactly as written: names, numbers, prices, dates, times, addresses, \
property names, emails and confirmation codes. Add no new information and no new offers. Keep the question at the \
end, if there is one. Answer with the reply only.";

/// Upper bound on the reworded reply, in tokens.
const MAX_TOKENS: usize = 120;

/// The chat model that words replies, and how long a turn may wait for it.
#[derive(Clone)]
pub struct Wording {
    model: Arc<dyn ChatModel>,
    timeout: Duration,
}

/// What happened to one reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Worded {
    /// The text to say.
    pub text: String,
    /// Whether it is the model's wording (false: the template).
    pub by_model: bool,
    /// Why the template was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Time spent on the model, milliseconds.
    pub ms: f64,
}

impl Wording {
    /// Words replies with `model`, waiting at most `timeout` per reply.
    pub fn new(model: Arc<dyn ChatModel>, timeout: Duration) -> Self {
        Self { model, timeout }
    }

    /// The model's id.
    pub fn model_id(&self) -> &str {
        self.model.model_id()
    }

    /// Rephrases `draft` (the reply to `caller_said`); `keep` are extra words that must survive (the caller's
    /// name, property names).
    pub async fn word(&self, caller_said: &str, draft: &str, keep: &[String]) -> Worded {
        let started = Instant::now();
        let template = |why: String| Worded {
            text: draft.to_string(),
            by_model: false,
            fallback: Some(why),
            ms: started.elapsed().as_secs_f64() * 1000.0,
        };
        if draft.trim().is_empty() {
            return template("empty draft".into());
        }
        let messages = vec![
            ChatMessage::new(Role::System, INSTRUCTIONS),
            ChatMessage::new(Role::User, format!("Caller said: {caller_said}\nDraft reply: {draft}")),
        ];
        let request = ChatRequest::new(messages, MAX_TOKENS);
        let answer = match tokio::time::timeout(self.timeout, self.model.complete(request)).await {
            Err(_) => return template(format!("no wording within {:?}", self.timeout)),
            Ok(Err(e)) => return template(format!("wording failed: {e}")),
            Ok(Ok(answer)) => answer,
        };
        let text = answer.text.trim().trim_matches('"').trim().to_string();
        if let Some(missing) = missing_fact(draft, &text, keep) {
            return template(format!("the wording dropped {missing:?}"));
        }
        Worded { text, by_model: true, fallback: None, ms: started.elapsed().as_secs_f64() * 1000.0 }
    }
}

/// The first fact of `draft` (a word with a digit or an `@`, or one of `keep` that the draft contains) that
/// `worded` lacks; also a question turned into a statement, or an empty answer.
fn missing_fact(draft: &str, worded: &str, keep: &[String]) -> Option<String> {
    if worded.is_empty() {
        return Some("everything".into());
    }
    let said = worded.to_lowercase();
    let facts = draft
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '$' && c != '@').trim_end_matches(['.', ',']))
        .filter(|w| w.chars().any(|c| c.is_ascii_digit() || c == '@'))
        .map(str::to_string)
        .chain(keep.iter().filter(|k| draft.contains(k.as_str())).cloned());
    for fact in facts {
        if !said.contains(&fact.to_lowercase()) {
            return Some(fact);
        }
    }
    if draft.trim_end().ends_with('?') && !worded.contains('?') {
        return Some("the question".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_must_keep_numbers_names_codes_and_the_question() {
        let draft = "Booked: Hudson 360, Friday Nov 27 at 10:00 am. Your code is TD-4821. Anything else, Dana?";
        let keep = vec!["Hudson 360".to_string(), "Dana".to_string()];
        let good = "You're all set at Hudson 360 on Friday Nov 27 at 10:00 am — code TD-4821. Anything else, Dana?";
        assert_eq!(missing_fact(draft, good, &keep), None);
        let dropped_code = "You're all set at Hudson 360 on Friday Nov 27 at 10:00 am. Anything else, Dana?";
        assert_eq!(missing_fact(draft, dropped_code, &keep), Some("TD-4821".into()));
        let no_name = "You're all set at Hudson 360 on Friday Nov 27 at 10:00 am, code TD-4821. Anything else?";
        assert_eq!(missing_fact(draft, no_name, &keep), Some("Dana".into()));
        let no_question = "All set at Hudson 360, Friday Nov 27 at 10:00 am, code TD-4821, Dana.";
        assert_eq!(missing_fact(draft, no_question, &keep), Some("the question".into()));
        assert_eq!(missing_fact("Rent is $3,200 a month.", "Rent runs $3,200 monthly.", &[]), None);
        assert_eq!(missing_fact("Rent is $3,200 a month.", "Rent is about 3 thousand.", &[]), Some("$3,200".into()));
        assert_eq!(missing_fact(draft, "", &keep), Some("everything".into()));
    }
}
