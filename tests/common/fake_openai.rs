//! A small OpenAI-compatible server on 127.0.0.1 for the far side of the network: each test scripts its answers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Status and JSON body.
    Json(u16, Value),
    /// Status and a raw body.
    Raw(u16, String),
    /// A 429 with `Retry-After: 0`.
    TooMany,
    /// Wait, then answer.
    Slow(Duration, Box<Reply>),
    /// A chat completion whose message content is this text.
    Chat(String),
    /// Embeddings computed from the inputs (deterministic, 8-d).
    Embed,
    /// A chat completion that rephrases the draft in the last message ("Draft reply: …") by opening with
    /// "Sure thing!".
    Reword,
}

/// What the server saw and what it will answer next.
#[derive(Default)]
pub struct Script {
    /// Answers for /chat/completions, in order; the last one repeats.
    pub chat: VecDeque<Reply>,
    /// Answers for /embeddings, in order; `Embed` when empty.
    pub embeddings: VecDeque<Reply>,
    /// Every request: (path, authorization header, body).
    pub seen: Vec<(String, Option<String>, Value)>,
}

/// A running fake server.
pub struct FakeOpenAi {
    /// Base URL to give the client (`http://127.0.0.1:PORT/v1`).
    pub base_url: String,
    /// The script, shared with the server.
    pub script: Arc<Mutex<Script>>,
}

fn vector(text: &str) -> Vec<f32> {
    let mut v = vec![0.1f32; 8];
    for (i, b) in text.bytes().enumerate() {
        v[i % 8] += b as f32 / 255.0;
    }
    v
}

fn next(queue: &mut VecDeque<Reply>, default: Reply) -> Reply {
    match queue.len() {
        0 => default,
        1 => queue[0].clone(),
        _ => queue.pop_front().unwrap_or(default),
    }
}

async fn answer(reply: Reply, body: &Value) -> Response {
    let mut reply = reply;
    while let Reply::Slow(wait, inner) = reply {
        tokio::time::sleep(wait).await;
        reply = *inner;
    }
    match reply {
        Reply::Json(status, v) => (StatusCode::from_u16(status).unwrap(), Json(v)).into_response(),
        Reply::Raw(status, s) => (StatusCode::from_u16(status).unwrap(), s).into_response(),
        Reply::TooMany => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            Json(json!({"error": {"message": "Rate limit reached", "type": "requests"}})),
        )
            .into_response(),
        Reply::Chat(text) => Json(json!({
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
        }))
        .into_response(),
        Reply::Reword => {
            let last = body["messages"].as_array().and_then(|m| m.last()).and_then(|m| m["content"].as_str());
            let draft = last.and_then(|c| c.split_once("Draft reply: ")).map_or("", |(_, d)| d);
            Box::pin(answer(Reply::Chat(format!("Sure thing! {draft}")), body)).await
        }
        Reply::Embed => {
            let inputs: Vec<String> = match &body["input"] {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect(),
                _ => vec![],
            };
            // Out of order on purpose: clients must sort by index.
            let data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .rev()
                .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": vector(t)}))
                .collect();
            Json(json!({"object": "list", "data": data, "model": body["model"]})).into_response()
        }
        Reply::Slow(..) => unreachable!("unwrapped above"),
    }
}

async fn chat(State(s): State<Arc<Mutex<Script>>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let reply = {
        let mut s = s.lock().unwrap();
        s.seen.push(("chat".into(), auth(&headers), body.clone()));
        next(&mut s.chat, Reply::Chat("{}".into()))
    };
    answer(reply, &body).await
}

async fn embeddings(State(s): State<Arc<Mutex<Script>>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let reply = {
        let mut s = s.lock().unwrap();
        s.seen.push(("embeddings".into(), auth(&headers), body.clone()));
        next(&mut s.embeddings, Reply::Embed)
    };
    answer(reply, &body).await
}

fn auth(headers: &HeaderMap) -> Option<String> {
    headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string)
}

impl FakeOpenAi {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/embeddings", post(embeddings))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base_url: format!("http://{addr}/v1"), script }
    }

    /// Scripts the chat answers.
    pub fn chat(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().chat = replies.into_iter().collect();
    }

    /// Scripts the embeddings answers.
    pub fn embeddings(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script.lock().unwrap().embeddings = replies.into_iter().collect();
    }

    /// Requests seen so far on `path` ("chat" or "embeddings").
    pub fn seen(&self, path: &str) -> Vec<(Option<String>, Value)> {
        self.script
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|(p, ..)| p == path)
            .map(|(_, a, b)| (a.clone(), b.clone()))
            .collect()
    }
}
