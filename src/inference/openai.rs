//! OpenAI, or any OpenAI-compatible server (Ollama, vLLM, llama.cpp), over HTTP: chat completions and embeddings,
//! with a timeout per attempt, retries with exponential backoff on 429 and 5xx, and errors that say what happened.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{info_span, warn, Instrument};

use super::chat::{ChatModel, ChatRequest, Completion};
use super::{Embedder, InferenceError};

/// Longest wait honoured from a `Retry-After` header.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);
/// Inputs per embeddings request (OpenAI accepts up to 2,048; smaller batches keep each request short).
const EMBED_BATCH: usize = 256;

/// An API key that never shows up in logs or debug output.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ApiKey(pub String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Where the server is and how patiently to talk to it.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`.
    pub base_url: String,
    /// Sent as a bearer token when set (local servers often need none).
    pub api_key: Option<ApiKey>,
    /// Chat model name.
    pub chat_model: String,
    /// Embedding model name.
    pub embedding_model: String,
    /// Limit for one attempt.
    pub timeout: Duration,
    /// Further attempts after a 429, a 5xx, a timeout or a refused connection.
    pub retries: u32,
    /// Wait before the first retry; doubled for each later one.
    pub backoff: Duration,
}

/// The HTTP side shared by chat and embeddings.
#[derive(Clone)]
pub struct OpenAiClient {
    http: reqwest::Client,
    config: Arc<OpenAiConfig>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: String,
}

/// The server's own error message when it sent one, else the start of the body.
fn server_message(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(b) => b.error.message,
        Err(_) => body.chars().take(200).collect(),
    }
}

impl OpenAiClient {
    /// A client for `config`; no request is made yet.
    pub fn new(config: OpenAiConfig) -> Result<Self, InferenceError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("tourdesk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| InferenceError::Remote(format!("cannot create an HTTP client: {e}")))?;
        Ok(Self { http, config: Arc::new(config) })
    }

    /// The configuration in use.
    pub fn config(&self) -> &OpenAiConfig {
        &self.config
    }

    /// POSTs `body` to `path` under the base URL and returns the JSON answer, retrying what may pass.
    async fn post(&self, path: &str, body: &Value) -> Result<Value, InferenceError> {
        let c = &self.config;
        let url = format!("{}/{path}", c.base_url.trim_end_matches('/'));
        let mut last = String::new();
        for attempt in 0..=c.retries {
            let mut wait = c.backoff * 2u32.saturating_pow(attempt);
            let mut request = self.http.post(&url).timeout(c.timeout).json(body);
            if let Some(key) = &c.api_key {
                request = request.bearer_auth(&key.0);
            }
            match request.send().await {
                Err(e) if e.is_timeout() => last = format!("{url} did not answer within {:?}", c.timeout),
                Err(e) if e.is_connect() => last = format!("cannot connect to {url}: {e}"),
                Err(e) => return Err(InferenceError::Remote(format!("request to {url} failed: {e}"))),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .map(|s| Duration::from_secs_f64(s.clamp(0.0, MAX_RETRY_AFTER.as_secs_f64())));
                    let text = match response.text().await {
                        Ok(text) => text,
                        Err(e) if e.is_timeout() => {
                            last = format!("{url} did not finish its answer within {:?}", c.timeout);
                            continue;
                        }
                        Err(e) => {
                            return Err(InferenceError::Remote(format!("reading the answer of {url} failed: {e}")))
                        }
                    };
                    if status.is_success() {
                        return serde_json::from_str(&text).map_err(|e| {
                            InferenceError::Remote(format!(
                                "{url} answered {status} with a body that is not JSON ({e}): {:?}",
                                text.chars().take(120).collect::<String>()
                            ))
                        });
                    }
                    let message = server_message(&text);
                    if status.as_u16() == 429 || status.is_server_error() {
                        last = format!("{url} answered {status}: {message}");
                        wait = retry_after.unwrap_or(wait);
                    } else {
                        let hint = match status.as_u16() {
                            401 | 403 => " (check OPENAI_API_KEY)",
                            404 => " (check OPENAI_BASE_URL and the model name)",
                            _ => "",
                        };
                        return Err(InferenceError::Remote(format!("{url} answered {status}: {message}{hint}")));
                    }
                }
            }
            if attempt < c.retries {
                warn!(attempt = attempt + 1, wait_ms = wait.as_millis() as u64, error = %last, "retrying");
                tokio::time::sleep(wait).await;
            }
        }
        Err(InferenceError::Remote(format!("{last} (gave up after {} attempts)", c.retries + 1)))
    }
}

fn shape_error(what: &str, value: &Value) -> InferenceError {
    let body = value.to_string();
    InferenceError::Remote(format!("unexpected {what} response: {}", body.chars().take(200).collect::<String>()))
}

/// Chat completions (`POST /chat/completions`).
pub struct OpenAiChat {
    client: OpenAiClient,
    model_id: String,
}

impl OpenAiChat {
    /// Chat through `client` with its configured chat model.
    pub fn new(client: OpenAiClient) -> Self {
        let model_id = format!("openai:{}", client.config.chat_model);
        Self { client, model_id }
    }
}

#[async_trait]
impl ChatModel for OpenAiChat {
    async fn complete(&self, request: ChatRequest) -> Result<Completion, InferenceError> {
        let started = std::time::Instant::now();
        let mut body = json!({
            "model": self.client.config.chat_model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        });
        if request.json {
            body["response_format"] = json!({ "type": "json_object" });
        }
        let answer =
            self.client.post("chat/completions", &body).instrument(info_span!("chat", model = %self.model_id)).await?;
        let text = answer
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .ok_or_else(|| shape_error("chat completion", &answer))?;
        let count = |p: &str| answer.pointer(p).and_then(Value::as_u64).unwrap_or(0) as usize;
        Ok(Completion {
            text: text.trim().to_string(),
            prompt_tokens: count("/usage/prompt_tokens"),
            cached_tokens: count("/usage/prompt_tokens_details/cached_tokens"),
            completion_tokens: count("/usage/completion_tokens"),
            prompt_ms: started.elapsed().as_secs_f64() * 1000.0,
            generate_ms: 0.0,
        })
    }

    fn model_id(&self) -> &str {
        &self.model_id
    }
}

/// Embeddings (`POST /embeddings`) behind the synchronous [`Embedder`] trait. It owns a small runtime of its own,
/// so run it where blocking is fine — on an [`super::EmbedderHandle`]'s thread, never on the reactor.
pub struct OpenAiEmbedder {
    runtime: tokio::runtime::Runtime,
    client: OpenAiClient,
    model_id: String,
    dim: usize,
}

impl OpenAiEmbedder {
    /// Connects and embeds one probe text to learn the vector length; a dead endpoint fails here, at start-up.
    pub fn connect(config: OpenAiConfig) -> Result<Self, InferenceError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| InferenceError::Remote(format!("cannot start the HTTP runtime: {e}")))?;
        let client = OpenAiClient::new(config)?;
        let model_id = format!("openai:{}", client.config.embedding_model);
        let mut embedder = Self { runtime, client, model_id, dim: 0 };
        let probe = embedder.request(&["dimension probe".to_string()])?;
        embedder.dim = probe[0].len();
        Ok(embedder)
    }

    fn request(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, InferenceError> {
        #[derive(Deserialize)]
        struct Item {
            index: usize,
            embedding: Vec<f32>,
        }
        #[derive(Deserialize)]
        struct Answer {
            data: Vec<Item>,
        }
        let body = json!({ "model": self.client.config.embedding_model, "input": texts });
        let value = self.runtime.block_on(self.client.post("embeddings", &body))?;
        let mut answer: Answer =
            serde_json::from_value(value.clone()).map_err(|_| shape_error("embeddings", &value))?;
        answer.data.sort_by_key(|i| i.index);
        if answer.data.len() != texts.len() || answer.data.iter().enumerate().any(|(i, item)| item.index != i) {
            return Err(InferenceError::Remote(format!(
                "asked for {} embeddings, the server returned {}",
                texts.len(),
                answer.data.len()
            )));
        }
        answer
            .data
            .into_iter()
            .map(|item| {
                let mut v = item.embedding;
                if v.is_empty() || (self.dim != 0 && v.len() != self.dim) {
                    return Err(InferenceError::Remote(format!(
                        "the server returned a {}-d embedding, expected {}",
                        v.len(),
                        self.dim
                    )));
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.iter_mut().for_each(|x| *x /= norm);
                Ok(v)
            })
            .collect()
    }
}

impl Embedder for OpenAiEmbedder {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, InferenceError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(EMBED_BATCH) {
            out.extend(self.request(chunk)?);
        }
        Ok(out)
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn model_id(&self) -> &str {
        &self.model_id
    }
}
