//! A local chat model: a quantized GGUF decoder (Qwen2.5, SmolLM2) with the ChatML template, greedy or sampled
//! decoding, and a cache of evaluated instruction prefixes, running on its own thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use candle_core::quantized::gguf_file;
use candle_core::Device;
use candle_transformers::generation::{LogitsProcessor, Sampling};
use tracing::{info_span, Instrument};

use super::chat::{ChatMessage, ChatModel, ChatRequest, Completion, JsonScan};
use super::decoder::{Decoder, DecoderOptions, KvCache, MAX_CONTEXT};
use super::gguf_tokenizer::GgufTokenizer;
use super::worker::{Lane, Worker};
use super::InferenceError;

/// Requests queued before callers wait.
const QUEUE: usize = 16;
/// Prompt prefixes whose attention state is kept (extraction and decision prompts, planner wording, spares).
const PREFIXES: usize = 4;

/// How the local model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalChatOptions {
    /// Keep the evaluated KV state of each distinct prompt prefix (see `ChatRequest::prefix_messages`) and start
    /// later prompts after it.
    pub prefix_cache: bool,
    /// How the decoder holds its weights.
    pub decoder: DecoderOptions,
}

impl Default for LocalChatOptions {
    fn default() -> Self {
        Self { prefix_cache: true, decoder: DecoderOptions::default() }
    }
}

/// Async access to a GGUF chat model running on a dedicated thread; requests are served one at a time, in order.
pub struct LocalChatModel {
    worker: Worker<ChatRequest, Completion>,
    model_id: Arc<str>,
    load_ms: f64,
}

impl LocalChatModel {
    /// Loads the GGUF file at `path` on a new thread and waits until it is ready. `model_id` names it in logs and
    /// in what it produces.
    pub async fn spawn(path: PathBuf, model_id: String, options: LocalChatOptions) -> Result<Self, InferenceError> {
        let id = model_id.clone();
        let load = move || {
            let started = Instant::now();
            Engine::load(&path, options).map(|engine| (engine, started.elapsed().as_secs_f64() * 1000.0))
        };
        let serve = move |engine: &mut Engine, request: ChatRequest| {
            info_span!("chat.generate", model = %id, max_tokens = request.max_tokens)
                .in_scope(|| engine.complete(&request))
        };
        let (worker, load_ms) = Worker::spawn_serial("chat", QUEUE, load, serve).await?;
        Ok(Self { worker, model_id: model_id.into(), load_ms })
    }

    /// How long loading the weights took, in milliseconds.
    pub fn load_ms(&self) -> f64 {
        self.load_ms
    }
}

#[async_trait]
impl ChatModel for LocalChatModel {
    async fn complete(&self, request: ChatRequest) -> Result<Completion, InferenceError> {
        self.worker.call(request, Lane::Now).instrument(info_span!("chat", model = %self.model_id)).await
    }

    fn model_id(&self) -> &str {
        &self.model_id
    }
}

/// The model and its tokenizer, owned by the model thread.
struct Engine {
    decoder: Decoder,
    tokenizer: GgufTokenizer,
    im_start: u32,
    im_end: u32,
    /// Tokens that end the assistant's turn.
    stops: Vec<u32>,
    /// Evaluated prompt prefixes, most recently used last.
    prefixes: Vec<(Vec<u32>, KvCache)>,
    options: LocalChatOptions,
}

impl Engine {
    fn load(path: &Path, options: LocalChatOptions) -> Result<Self, InferenceError> {
        let mut file = std::fs::File::open(path)
            .map_err(|e| InferenceError::Invalid(format!("cannot open {}: {e}", path.display())))?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| InferenceError::Invalid(format!("{} is not a readable GGUF file: {e}", path.display())))?;
        let tokenizer = GgufTokenizer::from_gguf(&content)?;
        let decoder = Decoder::from_gguf(&content, &mut file, &Device::Cpu, options.decoder)?;
        let im_start = tokenizer.control("<|im_start|>")?;
        let im_end = tokenizer.control("<|im_end|>")?;
        let mut stops = vec![im_end, tokenizer.eos];
        if let Ok(eot) = tokenizer.control("<|endoftext|>") {
            stops.push(eot);
        }
        Ok(Self { decoder, tokenizer, im_start, im_end, stops, prefixes: Vec::new(), options })
    }

    /// ChatML: `<|im_start|>role\ncontent<|im_end|>\n` per message. Built from per-message token runs so the
    /// prefix tokens are identical in every prompt that shares it.
    fn message_tokens(&self, m: &ChatMessage) -> Result<Vec<u32>, InferenceError> {
        let mut t = vec![self.im_start];
        t.extend(self.tokenizer.encode(&format!("{}\n{}", m.role.as_str(), m.content))?);
        t.push(self.im_end);
        t.extend(self.tokenizer.encode("\n")?);
        Ok(t)
    }

    /// The cache to start from: a stored prefix equal to the prompt's leading messages, or that prefix evaluated and
    /// stored now.
    /// Also returns how many prompt tokens were reused rather than evaluated now.
    fn start_cache(&mut self, prefix: &[u32]) -> Result<(KvCache, usize), InferenceError> {
        if !self.options.prefix_cache || prefix.is_empty() {
            return Ok((self.decoder.new_cache(), 0));
        }
        if let Some(i) = self.prefixes.iter().position(|(k, _)| k.as_slice() == prefix) {
            let entry = self.prefixes.remove(i);
            let cache = entry.1.clone();
            self.prefixes.push(entry);
            return Ok((cache, prefix.len()));
        }
        let mut cache = self.decoder.new_cache();
        self.decoder.forward(prefix, &mut cache)?;
        if self.prefixes.len() == PREFIXES {
            self.prefixes.remove(0);
        }
        self.prefixes.push((prefix.to_vec(), cache.clone()));
        Ok((cache, 0))
    }

    fn complete(&mut self, request: &ChatRequest) -> Result<Completion, InferenceError> {
        if request.messages.is_empty() {
            return Err(InferenceError::Invalid("a chat request needs at least one message".into()));
        }
        let started = Instant::now();
        let mut prefix = Vec::new();
        let mut rest = Vec::new();
        for (i, m) in request.messages.iter().enumerate() {
            let tokens = self.message_tokens(m)?;
            if i < request.prefix_messages.min(request.messages.len() - 1) {
                prefix.extend(tokens);
            } else {
                rest.extend(tokens);
            }
        }
        rest.push(self.im_start);
        rest.extend(self.tokenizer.encode("assistant\n")?);
        let mut text = String::new();
        let mut scan = JsonScan::default();
        if request.json {
            // Prefill the opening of the answer: an object from its first token, on the caller's schema if given.
            let prefill = request.prefill.as_deref().filter(|p| p.starts_with('{')).unwrap_or("{");
            rest.extend(self.tokenizer.encode(prefill)?);
            text.push_str(prefill);
            prefill.chars().for_each(|c| {
                scan.feed(c);
            });
        }
        let prompt_tokens = prefix.len() + rest.len();
        if prompt_tokens + request.max_tokens > MAX_CONTEXT {
            return Err(InferenceError::Invalid(format!(
                "prompt of {prompt_tokens} tokens plus {} to generate exceeds the {MAX_CONTEXT}-token context",
                request.max_tokens
            )));
        }
        let (mut cache, cached_tokens) = self.start_cache(&prefix)?;
        let todo: Vec<u32> = prefix[cache.len()..].iter().chain(&rest).copied().collect();
        let mut logits = self.decoder.forward(&todo, &mut cache)?;
        let prompt_ms = started.elapsed().as_secs_f64() * 1000.0;

        let sampling = if request.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            Sampling::All { temperature: request.temperature as f64 }
        };
        let mut sampler = LogitsProcessor::from_sampling(0x7d, sampling);
        let mut generated = Vec::new();
        while generated.len() < request.max_tokens {
            let next = sampler.sample(&logits)?;
            if self.stops.contains(&next) {
                break;
            }
            generated.push(next);
            if request.json && self.tokenizer.decode(&[next])?.chars().any(|c| scan.feed(c)) {
                break;
            }
            logits = self.decoder.forward(&[next], &mut cache)?;
        }
        text.push_str(&self.tokenizer.decode(&generated)?);
        if request.json {
            // A token can carry text past the closing brace ("}\n"); keep the object only.
            if let Some(end) = closing_index(&text) {
                text.truncate(end + 1);
            }
        }
        Ok(Completion {
            text: text.trim().to_string(),
            prompt_tokens,
            cached_tokens,
            completion_tokens: generated.len(),
            prompt_ms,
            generate_ms: started.elapsed().as_secs_f64() * 1000.0 - prompt_ms,
        })
    }
}

/// Byte index of the brace that closes the top-level object.
fn closing_index(text: &str) -> Option<usize> {
    let mut scan = JsonScan::default();
    text.char_indices().find(|(_, c)| scan.feed(*c)).map(|(i, _)| i)
}
