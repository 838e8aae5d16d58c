//! Inferred adds, as mem0 does them: a chat model extracts short facts about the user from an exchange; each fact is
//! compared with the nearest memories in the same scope; the chat model decides ADD / UPDATE / DELETE / NONE, seeing
//! memory ids only as small numbers that are mapped back here (an id it invents is rejected). When the model fails,
//! the exchange is stored as it is: nothing the user said is lost.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info_span, warn, Instrument};

use super::{AddInput, AddRequest, Memory, MemoryError, MemoryEvent, NewMemory, SearchRequest};
use crate::inference::{complete_json, ChatMessage, ChatModel, ChatRequest, InferenceError, Role};

/// Facts kept from one exchange.
const MAX_FACTS: usize = 8;
/// Longest fact kept, in characters.
const MAX_FACT_CHARS: usize = 300;
/// Existing memories shown to the model per fact.
const NEIGHBOURS: usize = 5;
/// Least cosine similarity (MiniLM) for an existing memory to be shown with a fact. Unrelated memories score
/// below ~0.25 and related ones above ~0.45 ("Rehomed the dog" / "Has a golden retriever": 0.46); a small model
/// shown unrelated memories tends to "update" one of them, so they are left out, and a fact with no related
/// memory is added without asking the model at all.
const NEIGHBOUR_MIN_SCORE: f32 = 0.3;
/// Conversation text given to the extractor (the most recent part), in characters.
const MAX_CONVERSATION_CHARS: usize = 4000;
const EXTRACT_TOKENS: usize = 120;
const DECIDE_TOKENS: usize = 80;

const EXTRACT_PROMPT: &str = "You extract facts about the user from a conversation with a leasing office, for the \
office's memory of that user. Answer with a JSON object {\"facts\": [...]}: each fact is a short, self-contained \
statement about the user in the third person. Keep names, contact details, household, pets, preferences, budget, \
dates and plans, and changes to any of them. Ignore greetings and questions, and what the assistant said unless the \
user confirmed it. With nothing worth remembering, answer {\"facts\": []}. Every message is a new, separate conversation about a \
different user: answer about that message alone.";

/// Worked examples for the extractor: (conversation, answer). They cover the leasing office's common cases —
/// who the caller is, a household change that undoes an earlier fact, and small talk with nothing to keep.
const EXTRACT_EXAMPLES: [(&str, &str); 4] = [
    ("user: Hi, I'm Priya Nair. It's me and my two cats.", r#"{"facts": ["Name is Priya Nair", "Has two cats"]}"#),
    (
        "user: Our cat passed away in the spring, so pets aren't a concern now.",
        r#"{"facts": ["No longer has a cat", "Does not need a pet-friendly apartment"]}"#,
    ),
    (
        "assistant: Will you need a parking space?\nuser: No, we sold our car, so parking doesn't matter anymore.",
        r#"{"facts": ["No longer owns a car", "Does not need parking"]}"#,
    ),
    ("user: Hello, what time is it?", r#"{"facts": []}"#),
];

const DECIDE_PROMPT: &str = "You keep a memory of facts about one user up to date. Compare a new fact with the \
user's numbered memories and choose one event. ADD: the fact is new information. UPDATE: the fact changes or adds \
detail to memory \"id\"; \"text\" is the corrected memory. DELETE: the fact means memory \"id\" is no longer \
true. NONE: the memories already say this. Answer with JSON: {\"event\": \"ADD\" or \"UPDATE\" or \"DELETE\" or \
\"NONE\", \"id\": memory number or null, \"text\": \"memory text\"}.";

/// Worked examples for the decision: (memories and fact, answer).
const DECIDE_EXAMPLES: [(&str, &str); 6] = [
    (
        "Memories:\n0: Lives in Boston\n1: Likes tennis\nNew fact: Moved to Denver",
        r#"{"event": "UPDATE", "id": 0, "text": "Lives in Denver"}"#,
    ),
    ("Memories:\n0: Name is Sam\n1: Owns a car\nNew fact: Sold the car", r#"{"event": "DELETE", "id": 1, "text": ""}"#),
    (
        "Memories:\n0: Has a cat named Miso\n1: Wants a pet-friendly building\nNew fact: No longer has a cat",
        r#"{"event": "DELETE", "id": 0, "text": ""}"#,
    ),
    ("Memories:\n0: Name is Sam\nNew fact: Is called Sam", r#"{"event": "NONE", "id": 0, "text": ""}"#),
    (
        "Memories:\n0: Name is Sam\nNew fact: Works as a nurse",
        r#"{"event": "ADD", "id": null, "text": "Works as a nurse"}"#,
    ),
    (
        "Memories:\n0: Name is Sam\nNew fact: Email is sam@example.com",
        r#"{"event": "ADD", "id": null, "text": "Email is sam@example.com"}"#,
    ),
];

/// Instructions, then the worked examples as earlier turns, then the question: the shared part is a fixed prefix.
fn few_shot(instructions: &str, examples: &[(&str, &str)], question: String) -> Vec<ChatMessage> {
    let mut messages = vec![ChatMessage::new(Role::System, instructions)];
    for (q, a) in examples {
        messages.push(ChatMessage::new(Role::User, *q));
        messages.push(ChatMessage::new(Role::Assistant, *a));
    }
    messages.push(ChatMessage::new(Role::User, question));
    messages
}

/// A JSON request whose every message but the last is a reusable prefix.
fn json_request(messages: Vec<ChatMessage>, max_tokens: usize, prefill: &str) -> ChatRequest {
    let prefix_messages = messages.len() - 1;
    ChatRequest { prefix_messages, prefill: Some(prefill.into()), ..ChatRequest::new(messages, max_tokens) }
}

/// The extractor's answer.
#[derive(Debug, Deserialize)]
struct Facts {
    facts: Vec<Value>,
}

/// The decision for one fact, as the model wrote it.
#[derive(Debug, Deserialize)]
struct Decision {
    event: String,
    #[serde(default)]
    id: Value,
    #[serde(default)]
    text: Option<String>,
}

/// What an add did, in mem0's response shape (`{"results": [...]}`, plus the facts and any fallback of an inferred
/// add).
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct InferredAdd {
    /// Facts the model extracted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<String>,
    /// Changes made, in order (mem0's `results`).
    pub results: Vec<MemoryEvent>,
    /// Memory numbers the model named that were never shown to it; each such fact was added instead.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected_ids: Vec<String>,
    /// Set when the model failed and the exchange was stored as it is; says why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// "role: content" lines of the exchange, the most recent part when long. System messages are left out, and so is
/// whatever the assistant said after the user's last message: the user cannot have confirmed it, and a small model
/// reads facts into it.
fn conversation(input: &AddInput) -> String {
    let text = match input {
        AddInput::Text(t) => format!("user: {t}"),
        AddInput::Messages(ms) => {
            let last_user = ms.iter().rposition(|m| m.role == "user").map_or(ms.len(), |i| i + 1);
            ms[..last_user]
                .iter()
                .filter(|m| m.role != "system")
                .map(|m| format!("{}: {}", m.role, m.content.trim()))
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let chars = text.chars().count();
    if chars <= MAX_CONVERSATION_CHARS {
        text
    } else {
        text.chars().skip(chars - MAX_CONVERSATION_CHARS).collect()
    }
}

/// Usable facts: strings, trimmed, clipped, without duplicates, at most [`MAX_FACTS`].
fn clean_facts(raw: Vec<Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in raw {
        let Some(s) = v.as_str() else { continue };
        let s: String = s.trim().chars().take(MAX_FACT_CHARS).collect();
        if !s.is_empty() && !out.iter().any(|f| f.eq_ignore_ascii_case(&s)) {
            out.push(s);
        }
        if out.len() == MAX_FACTS {
            break;
        }
    }
    out
}

/// Whether every name and number in `fact` occurs in the conversation. A small model sometimes copies a worked
/// example's facts ("Name is Priya Nair") into its answer; such a fact names someone the caller never mentioned.
fn grounded(fact: &str, conversation: &str) -> bool {
    let said = conversation.to_lowercase();
    fact.split(|c: char| !(c.is_alphanumeric() || c == '@' || c == '.' || c == '\''))
        .map(|w| w.trim_matches(|c: char| c == '.' || c == '\''))
        .enumerate()
        .filter(|(i, w)| {
            let proper = *i > 0 && w.chars().next().is_some_and(char::is_uppercase);
            !w.is_empty() && (proper || w.chars().any(|c| c.is_ascii_digit()))
        })
        .all(|(_, w)| said.contains(&w.to_lowercase()))
}

/// The memory number the model named: an integer or a numeric string.
fn memory_number(id: &Value) -> Option<Result<usize, String>> {
    match id {
        Value::Null => None,
        Value::Number(n) => Some(n.as_u64().map(|n| n as usize).ok_or_else(|| n.to_string())),
        Value::String(s) if s.trim().is_empty() || s.eq_ignore_ascii_case("null") => None,
        Value::String(s) => Some(s.trim().parse::<usize>().map_err(|_| s.clone())),
        other => Some(Err(other.to_string())),
    }
}

/// A model decision checked against the memories it was shown.
#[derive(Debug, PartialEq)]
enum Action {
    Add(String),
    Update {
        index: usize,
        text: String,
    },
    Delete(usize),
    None,
    /// The model named a memory it was not shown (or an unusable event); the fact is added instead.
    Rejected {
        named: String,
    },
}

fn check(decision: &Decision, fact: &str, shown: usize) -> Action {
    let text = decision.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let index = match memory_number(&decision.id) {
        Some(Ok(i)) if i < shown => Some(i),
        Some(Ok(i)) => return reject_unless_add(decision, fact, i.to_string()),
        Some(Err(named)) => return reject_unless_add(decision, fact, named),
        None => None,
    };
    match (decision.event.trim().to_ascii_uppercase().as_str(), index) {
        ("ADD", _) => Action::Add(text.unwrap_or(fact).to_string()),
        ("UPDATE", Some(index)) => Action::Update { index, text: text.unwrap_or(fact).to_string() },
        ("DELETE", Some(index)) => Action::Delete(index),
        ("NONE", _) => Action::None,
        (event, _) => Action::Rejected { named: format!("{event} without a memory number") },
    }
}

/// An ADD needs no id, so a stray one is ignored; any other event with an unknown id is rejected.
fn reject_unless_add(decision: &Decision, fact: &str, named: String) -> Action {
    if decision.event.trim().eq_ignore_ascii_case("ADD") {
        let text = decision.text.as_deref().map(str::trim).filter(|t| !t.is_empty()).unwrap_or(fact);
        Action::Add(text.to_string())
    } else {
        Action::Rejected { named }
    }
}

impl Memory {
    /// `add` with `infer=true`: extract facts with `chat`, reconcile each with the nearest memories in scope, apply
    /// the decisions and write history. On a model failure the exchange is stored as plain `add` would, and
    /// [`InferredAdd::fallback`] says why.
    pub async fn add_inferred(&self, req: AddRequest, chat: &dyn ChatModel) -> Result<InferredAdd, MemoryError> {
        req.scope.validate()?;
        let span = info_span!("memory.add_inferred", model = chat.model_id());
        async {
            let text = conversation(&req.input);
            if text.trim().is_empty() {
                return Err(MemoryError::Invalid("nothing to remember: no text and no user message".into()));
            }
            let facts = match self.extract(&text, chat).await {
                Ok(facts) => {
                    let (kept, dropped): (Vec<String>, Vec<String>) =
                        facts.into_iter().partition(|f| grounded(f, &text));
                    if !dropped.is_empty() {
                        warn!(?dropped, "dropped extracted facts that name things the conversation does not");
                    }
                    kept
                }
                Err(e) => return self.store_raw(req, format!("fact extraction failed: {e}")).await,
            };
            let mut out = InferredAdd { facts: facts.clone(), ..Default::default() };
            let mut warnings = Vec::new();
            for fact in facts {
                match self.reconcile(&fact, &req, chat, &mut out).await {
                    Ok(()) => {}
                    Err(MemoryError::Inference(e)) => {
                        warnings.push(format!("deciding on {fact:?} failed ({e}); added it as new"));
                        out.results.extend(self.add_fact(&fact, &req).await?);
                    }
                    Err(e) => return Err(e),
                }
            }
            if !warnings.is_empty() {
                warn!(warnings = ?warnings, "inferred add fell back for some facts");
                out.fallback = Some(warnings.join("; "));
            }
            Ok(out)
        }
        .instrument(span)
        .await
    }

    async fn extract(&self, conversation: &str, chat: &dyn ChatModel) -> Result<Vec<String>, InferenceError> {
        let messages = few_shot(EXTRACT_PROMPT, &EXTRACT_EXAMPLES, conversation.to_string());
        let (facts, _) = complete_json::<Facts>(chat, json_request(messages, EXTRACT_TOKENS, r#"{"facts":"#)).await?;
        Ok(clean_facts(facts.facts))
    }

    /// Decides and applies one fact.
    async fn reconcile(
        &self,
        fact: &str,
        req: &AddRequest,
        chat: &dyn ChatModel,
        out: &mut InferredAdd,
    ) -> Result<(), MemoryError> {
        let search = SearchRequest {
            limit: NEIGHBOURS,
            threshold: Some(NEIGHBOUR_MIN_SCORE),
            ..SearchRequest::new(fact, req.scope.clone())
        };
        let shown: Vec<_> = self.search(&search).await?.into_iter().map(|h| h.item).collect();
        if shown.is_empty() {
            out.results.extend(self.add_fact(fact, req).await?);
            return Ok(());
        }
        if let Some(same) = shown.iter().find(|m| m.memory.trim().eq_ignore_ascii_case(fact)) {
            out.results.push(MemoryEvent::unchanged(&same.id, &same.memory));
            return Ok(());
        }
        let listing: Vec<String> = shown.iter().enumerate().map(|(i, m)| format!("{i}: {}", m.memory)).collect();
        let question = format!("Memories:\n{}\nNew fact: {fact}", listing.join("\n"));
        let messages = few_shot(DECIDE_PROMPT, &DECIDE_EXAMPLES, question);
        let (decision, _) =
            complete_json::<Decision>(chat, json_request(messages, DECIDE_TOKENS, r#"{"event":"#)).await?;
        let actor = req.actor.as_deref();
        match check(&decision, fact, shown.len()) {
            Action::Add(text) => out.results.extend(self.add_fact(&text, req).await?),
            Action::Update { index, text } => {
                let target = &shown[index];
                if target.memory.trim() == text.trim() {
                    out.results.push(MemoryEvent::unchanged(&target.id, &target.memory));
                } else {
                    out.results.push(self.update(&target.id, &text, None, actor).await?);
                }
            }
            Action::Delete(index) => out.results.push(self.delete(&shown[index].id, actor).await?),
            Action::None => out.results.push(MemoryEvent::unchanged(&shown[0].id, &shown[0].memory)),
            Action::Rejected { named } => {
                warn!(fact, named = %named, event = %decision.event, "the model named a memory it was not shown; adding the fact instead");
                out.rejected_ids.push(named);
                out.results.extend(self.add_fact(fact, req).await?);
            }
        }
        Ok(())
    }

    async fn add_fact(&self, fact: &str, req: &AddRequest) -> Result<Vec<MemoryEvent>, MemoryError> {
        let record = NewMemory {
            text: fact.to_string(),
            scope: req.scope.clone(),
            metadata: req.metadata.clone(),
            timestamp: req.timestamp,
            expiration_date: req.expiration_date,
            ..Default::default()
        };
        self.add_many(vec![record], req.actor.as_deref()).await
    }

    /// Stores the exchange as plain `add` does, recording why inference was skipped.
    async fn store_raw(&self, req: AddRequest, why: String) -> Result<InferredAdd, MemoryError> {
        warn!(reason = %why, "inferred add failed; storing the exchange as it is");
        let results = self.add(req).await?;
        Ok(InferredAdd { results, fallback: Some(why), ..Default::default() })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decision(v: Value) -> Decision {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ids_the_model_invents_are_rejected() {
        let fact = "Rehomed the dog";
        let d = |v| check(&decision(v), fact, 2);
        assert_eq!(d(json!({"event": "DELETE", "id": 1})), Action::Delete(1));
        assert_eq!(
            d(json!({"event": "update", "id": "0", "text": "No dog"})),
            Action::Update { index: 0, text: "No dog".into() }
        );
        assert_eq!(d(json!({"event": "DELETE", "id": 7})), Action::Rejected { named: "7".into() });
        assert_eq!(
            d(json!({"event": "UPDATE", "id": "3f2a-uuid", "text": "x"})),
            Action::Rejected { named: "3f2a-uuid".into() }
        );
        assert_eq!(d(json!({"event": "UPDATE", "id": -1, "text": "x"})), Action::Rejected { named: "-1".into() });
        assert_eq!(
            d(json!({"event": "DELETE", "id": null})),
            Action::Rejected { named: "DELETE without a memory number".into() }
        );
        assert_eq!(
            d(json!({"event": "MERGE", "id": 0})),
            Action::Rejected { named: "MERGE without a memory number".into() }
        );
        // An ADD needs no id: a stray or invented one does not matter.
        assert_eq!(d(json!({"event": "ADD", "id": 99, "text": ""})), Action::Add(fact.into()));
        assert_eq!(d(json!({"event": "NONE", "id": 0})), Action::None);
    }

    #[test]
    fn facts_must_be_grounded_in_the_conversation() {
        let said = "user: Hi, I'm Dana O'Neil, dana@example.com, budget 3,200. We had to rehome the dog.";
        assert!(grounded("Name is Dana O'Neil", said));
        assert!(grounded("Email is dana@example.com", said));
        assert!(grounded("No longer has a dog", said));
        assert!(!grounded("Name is Priya Nair", said));
        assert!(!grounded("Budget is 4000 a month", said));
        assert!(!grounded("Lives in Denver", said));
    }

    #[test]
    fn facts_are_cleaned() {
        let raw = vec![json!(" Has a dog "), json!(3), json!("has a dog"), json!(""), json!("x".repeat(1000))];
        let facts = clean_facts(raw);
        assert_eq!(facts.len(), 2);
        assert_eq!(facts[0], "Has a dog");
        assert_eq!(facts[1].chars().count(), MAX_FACT_CHARS);
    }

    #[test]
    fn conversation_skips_system_and_keeps_the_recent_part() {
        let input = AddInput::Messages(vec![
            super::super::Message { role: "system".into(), content: "secret".into() },
            super::super::Message { role: "user".into(), content: "I have a cat".into() },
        ]);
        assert_eq!(conversation(&input), "user: I have a cat");
        let answer = AddInput::Messages(vec![
            super::super::Message { role: "assistant".into(), content: "Which building?".into() },
            super::super::Message { role: "user".into(), content: "Hudson".into() },
            super::super::Message { role: "assistant".into(), content: "Great, Hudson 360 it is.".into() },
        ]);
        assert_eq!(conversation(&answer), "assistant: Which building?\nuser: Hudson");
        let long = conversation(&AddInput::Text(format!("{}END", "a".repeat(10_000))));
        assert!(long.ends_with("END") && long.chars().count() == MAX_CONVERSATION_CHARS);
    }
}
