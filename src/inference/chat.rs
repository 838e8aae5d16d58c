//! The chat-model seam: messages in, text out, and a JSON mode whose answer is parsed and checked against a Rust type.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::InferenceError;

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The person (or the program) asking.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// Lower-case name, as chat templates and the OpenAI API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a conversation with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Speaker.
    pub role: Role,
    /// Text.
    pub content: String,
}

impl ChatMessage {
    /// A message with `role` and `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
    }
}

/// What to ask the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// How many leading messages are the same from call to call (instructions, worked examples). A local model
    /// keeps their evaluated state and starts the next such prompt after them.
    pub prefix_messages: usize,
    /// JSON mode, local models: text the answer is made to begin with (e.g. `{"facts": [`), which keeps a small
    /// model on the schema. Remote models ignore it.
    pub prefill: Option<String>,
    /// Upper bound on generated tokens.
    pub max_tokens: usize,
    /// 0 = greedy (deterministic).
    pub temperature: f32,
    /// Ask for one JSON object and stop when it closes.
    pub json: bool,
}

impl ChatRequest {
    /// A greedy request for at most `max_tokens` of plain text; a leading system message is the reusable prefix.
    pub fn new(messages: Vec<ChatMessage>, max_tokens: usize) -> Self {
        let prefix_messages = usize::from(messages.first().is_some_and(|m| m.role == Role::System));
        Self { messages, prefix_messages, prefill: None, max_tokens, temperature: 0.0, json: false }
    }
}

/// The model's answer and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Completion {
    /// Generated text (in JSON mode, the JSON object).
    pub text: String,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens whose attention state was reused from an earlier call (local models).
    pub cached_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
    /// Time to evaluate the prompt (local) or to the whole response (remote), in milliseconds.
    pub prompt_ms: f64,
    /// Time spent generating after the prompt, in milliseconds (0 for remote models).
    pub generate_ms: f64,
}

/// A chat model, local or remote. Implementations never block the async reactor.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// Generates the assistant's next message.
    async fn complete(&self, request: ChatRequest) -> Result<Completion, InferenceError>;
    /// Stable identifier of the model (recorded with what it produced).
    fn model_id(&self) -> &str;
}

/// Asks `model` for a JSON object and deserialises it into `T` (the type is the schema). Fenced or chatty output is
/// repaired when the JSON inside is intact; otherwise the model is asked once more, shown its mistake.
pub async fn complete_json<T: DeserializeOwned>(
    model: &dyn ChatModel,
    mut request: ChatRequest,
) -> Result<(T, Completion), InferenceError> {
    request.json = true;
    let first = model.complete(request.clone()).await?;
    let error = match parse_json::<T>(&first.text) {
        Ok(value) => return Ok((value, first)),
        Err(e) => e,
    };
    tracing::warn!(model = model.model_id(), %error, "malformed JSON from the chat model; asking again");
    request.messages.push(ChatMessage::new(Role::Assistant, first.text.clone()));
    request.messages.push(ChatMessage::new(
        Role::User,
        format!("That answer was not valid: {error}. Reply with the corrected JSON object only."),
    ));
    let second = model.complete(request).await?;
    match parse_json::<T>(&second.text) {
        Ok(value) => Ok((value, second)),
        Err(e) => Err(InferenceError::BadOutput(format!("{e}; the model answered {:?}", clip(&second.text, 200)))),
    }
}

fn clip(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Parses the first JSON object in `text` as `T`, tolerating code fences and prose around it.
pub fn parse_json<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let object = first_object(text).ok_or_else(|| "no JSON object in the answer".to_string())?;
    serde_json::from_str(object).map_err(|e| format!("JSON does not match the expected shape: {e}"))
}

/// The first balanced `{…}` in `text` (braces inside strings ignored).
fn first_object(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let mut scan = JsonScan::default();
    for (i, c) in text[start..].char_indices() {
        if scan.feed(c) {
            return Some(&text[start..start + i + 1]);
        }
    }
    None
}

/// Tracks JSON nesting character by character, so generation can stop the moment the top-level value closes.
#[derive(Debug, Default, Clone)]
pub struct JsonScan {
    depth: u32,
    in_string: bool,
    escaped: bool,
    started: bool,
}

impl JsonScan {
    /// Feeds one character; true when it closes the top-level object or array.
    pub fn feed(&mut self, c: char) -> bool {
        if self.in_string {
            match (self.escaped, c) {
                (true, _) => self.escaped = false,
                (false, '\\') => self.escaped = true,
                (false, '"') => self.in_string = false,
                _ => {}
            }
            return false;
        }
        match c {
            '"' => self.in_string = true,
            '{' | '[' => {
                self.depth += 1;
                self.started = true;
            }
            '}' | ']' if self.depth > 0 => {
                self.depth -= 1;
                return self.started && self.depth == 0;
            }
            _ => {}
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Facts {
        facts: Vec<String>,
    }

    #[test]
    fn repairs_fenced_and_chatty_json() {
        let want = Facts { facts: vec!["Likes } braces".into()] };
        assert_eq!(parse_json::<Facts>(r#"{"facts": ["Likes } braces"]}"#).unwrap(), want);
        assert_eq!(parse_json::<Facts>("```json\n{\"facts\": [\"Likes } braces\"]}\n```").unwrap(), want);
        assert_eq!(parse_json::<Facts>("Sure! {\"facts\": [\"Likes } braces\"]} Hope it helps {").unwrap(), want);
        assert!(parse_json::<Facts>("{\"facts\": \"not a list\"}").unwrap_err().contains("expected shape"));
        assert!(parse_json::<Facts>("no json").unwrap_err().contains("no JSON"));
        assert!(parse_json::<Facts>("{\"facts\": [").is_err());
    }

    #[test]
    fn scan_stops_at_the_closing_brace() {
        let mut scan = JsonScan::default();
        let text = r#"{"a": "x\"}", "b": [1, {"c": 2}]}"#;
        let closed: Vec<usize> = text.chars().enumerate().filter(|(_, c)| scan.feed(*c)).map(|(i, _)| i).collect();
        assert_eq!(closed, vec![text.chars().count() - 1]);
    }
}
