//! `tourdesk bench infer`: for each local chat model, load time, prompt and generation speed, and the wall time of an
//! inferred add of one two-message exchange, with and without the instruction-prefix cache.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::percentile;
use crate::inference::{
    ChatModel, ChatRequest, Completion, EmbedderHandle, InferenceError, LocalChatModel, LocalChatOptions,
};
use crate::memory::{AddInput, AddRequest, Memory, MemoryConfig, MemoryError, Message, NewMemory, Scope};
use crate::models::ModelStore;

/// What one model measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInferReport {
    /// Manifest name.
    pub model: String,
    /// Loading the GGUF weights, milliseconds.
    pub load_ms: f64,
    /// Prompt evaluation speed over every uncached prompt token of the timed adds.
    pub prompt_tokens_per_s: f64,
    /// Generation speed over every generated token of the timed adds.
    pub generated_tokens_per_s: f64,
    /// Chat calls per inferred add (extraction + one decision per fact with neighbours).
    pub calls_per_add: f64,
    /// Inferred add with the prefix cache, milliseconds.
    pub add_p50_ms: f64,
    /// Slowest inferred add with the prefix cache, milliseconds.
    pub add_max_ms: f64,
    /// Inferred add without the prefix cache, milliseconds.
    pub add_uncached_p50_ms: f64,
    /// Events of the last timed add, to see what the model decided.
    pub last_events: Vec<String>,
}

/// Every model's numbers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InferBenchReport {
    /// Timed adds per model and cache setting.
    pub runs: usize,
    /// One entry per local chat model.
    pub models: Vec<ModelInferReport>,
}

impl std::fmt::Display for InferBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "inferred add of one two-message exchange, {} runs per setting", self.runs)?;
        writeln!(
            f,
            "{:<14} {:>9} {:>12} {:>11} {:>7} {:>12} {:>12} {:>14}",
            "model", "load ms", "prompt tok/s", "gen tok/s", "calls", "add p50 ms", "add max ms", "no-cache p50"
        )?;
        for m in &self.models {
            writeln!(
                f,
                "{:<14} {:>9.0} {:>12.1} {:>11.1} {:>7.1} {:>12.0} {:>12.0} {:>14.0}",
                m.model,
                m.load_ms,
                m.prompt_tokens_per_s,
                m.generated_tokens_per_s,
                m.calls_per_add,
                m.add_p50_ms,
                m.add_max_ms,
                m.add_uncached_p50_ms
            )?;
            writeln!(f, "  last add: {}", m.last_events.join(" | "))?;
        }
        Ok(())
    }
}

/// Records the cost of every call it passes on.
struct Metered {
    inner: LocalChatModel,
    calls: Mutex<Vec<Completion>>,
}

#[async_trait]
impl ChatModel for Metered {
    async fn complete(&self, request: ChatRequest) -> Result<Completion, InferenceError> {
        let c = self.inner.complete(request).await?;
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(c.clone());
        Ok(c)
    }

    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
}

fn exchange() -> AddInput {
    AddInput::Messages(vec![
        Message {
            role: "user".into(),
            content: "We had to rehome the dog last month, so I don't need a pet-friendly place anymore.".into(),
        },
        Message {
            role: "assistant".into(),
            content: "I'm sorry to hear that. I'll drop the pet requirement from your search.".into(),
        },
    ])
}

/// Times `runs` inferred adds, each in a fresh scope that already knows the caller's name and dog.
async fn timed_adds(
    memory: &Memory,
    chat: &Metered,
    runs: usize,
    tag: &str,
) -> Result<(Vec<Duration>, Vec<String>), MemoryError> {
    let mut times = Vec::with_capacity(runs);
    let mut last = Vec::new();
    for i in 0..runs {
        let scope = Scope::user(format!("bench-{tag}-{i}"));
        let known = ["Name is Dana", "Has a golden retriever", "Wants a two-bedroom apartment"];
        let records = known
            .iter()
            .map(|t| NewMemory { text: t.to_string(), scope: scope.clone(), ..Default::default() })
            .collect();
        memory.add_many(records, None).await?;
        let req = AddRequest { input: exchange(), scope, actor: Some("bench".into()), ..Default::default() };
        let t = Instant::now();
        let out = memory.add_inferred(req, chat).await?;
        times.push(t.elapsed());
        last = out.results.iter().map(|e| format!("{} {}", e.event.as_str(), e.memory)).collect();
    }
    times.sort();
    Ok((times, last))
}

/// Benchmarks each named local chat model against a fresh store in `uri` (one warm-up add, then `runs` timed adds
/// with the prefix cache and `runs` without).
pub async fn infer_bench(
    embedder: EmbedderHandle,
    models_dir: &Path,
    names: &[String],
    uri: &str,
    runs: usize,
) -> Result<InferBenchReport, MemoryError> {
    let memory = Memory::open(&MemoryConfig::new(uri), embedder).await?;
    let store = ModelStore::new(models_dir).map_err(InferenceError::from)?;
    let mut models = Vec::new();
    for name in names {
        let dir = store.resolve(name).map_err(InferenceError::from)?;
        let path = dir.gguf().ok_or_else(|| {
            MemoryError::Invalid(format!("model {name} has no GGUF file; bench infer takes chat models"))
        })?;
        let mut row = ModelInferReport {
            model: name.clone(),
            load_ms: 0.0,
            prompt_tokens_per_s: 0.0,
            generated_tokens_per_s: 0.0,
            calls_per_add: 0.0,
            add_p50_ms: 0.0,
            add_max_ms: 0.0,
            add_uncached_p50_ms: 0.0,
            last_events: Vec::new(),
        };
        for cached in [true, false] {
            let inner = LocalChatModel::spawn(
                path.clone(),
                name.clone(),
                LocalChatOptions { prefix_cache: cached, ..Default::default() },
            )
            .await?;
            let chat = Metered { inner, calls: Mutex::new(Vec::new()) };
            let tag = format!("{name}-{cached}");
            if cached {
                row.load_ms = chat.inner.load_ms();
                // Warm-up: fills the prefix cache, as the first add after start does.
                timed_adds(&memory, &chat, 1, &format!("{tag}-warm")).await?;
                chat.calls.lock().unwrap_or_else(|e| e.into_inner()).clear();
            }
            let (times, last) = timed_adds(&memory, &chat, runs, &tag).await?;
            let calls = std::mem::take(&mut *chat.calls.lock().unwrap_or_else(|e| e.into_inner()));
            if cached {
                row.add_p50_ms = percentile(&times, 50);
                row.add_max_ms = times.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
                row.calls_per_add = calls.len() as f64 / runs.max(1) as f64;
                row.last_events = last;
            } else {
                let sum = |f: &dyn Fn(&Completion) -> f64| calls.iter().map(f).sum::<f64>();
                row.prompt_tokens_per_s =
                    sum(&|c| (c.prompt_tokens - c.cached_tokens) as f64) / (sum(&|c| c.prompt_ms) / 1000.0).max(1e-9);
                row.generated_tokens_per_s =
                    sum(&|c| c.completion_tokens as f64) / (sum(&|c| c.generate_ms) / 1000.0).max(1e-9);
                row.add_uncached_p50_ms = percentile(&times, 50);
            }
        }
        models.push(row);
    }
    Ok(InferBenchReport { runs, models })
}
