//! The composition root: builds the running parts from settings (for `serve`, the CLI, the benches and the tests
//! alike): verified model weights, the embedder thread, the memory store and the agent's tools.

use std::path::PathBuf;
use std::sync::Arc;

use crate::agent::{AgentConfig, AgentError, BookingStore, Catalog, MemoryService, Tools, Wording};
use crate::app::AppState;
use crate::config::{PartBackend, ReplyWording, Settings};
use crate::inference::{
    ChatModel, EmbedderHandle, InferenceError, LocalChatModel, LocalChatOptions, MiniLmEmbedder, OpenAiChat,
    OpenAiClient, OpenAiEmbedder,
};
use crate::memory::{Memory, MemoryError};
use crate::models::ModelStore;
use crate::notify::Mailer;
use crate::realtime::voice::STT_HINT;
use crate::speech::silero::SileroVad;
use crate::speech::smart_turn::SmartTurn;
use crate::speech::vad::VadConfig;
use crate::speech::Voice;
use crate::speech::{EspeakTts, PhraseCache, PiperTts, SttHandle, TextToSpeech, DEFAULT_PHRASE_CACHE_BYTES};

fn invalid(e: crate::config::ConfigError) -> InferenceError {
    InferenceError::Invalid(e.to_string())
}

/// Starts the configured embedder on its own thread: local weights (a clear error names `tourdesk models fetch`
/// when they are missing) or the OpenAI-compatible server (probed once, so a dead endpoint fails here).
pub async fn start_embedder(settings: &Settings) -> Result<EmbedderHandle, InferenceError> {
    match settings.embedder_backend().map_err(invalid)? {
        PartBackend::Remote(config) => EmbedderHandle::spawn(move || OpenAiEmbedder::connect(config)).await,
        PartBackend::Local(model) => {
            let dir = ModelStore::new(&settings.models)?.resolve(&model)?;
            EmbedderHandle::spawn(move || MiniLmEmbedder::load(&dir)).await
        }
    }
}

/// Starts the configured chat model: the local GGUF model on its own thread, or a client of the
/// OpenAI-compatible server.
pub async fn start_chat(settings: &Settings) -> Result<Arc<dyn ChatModel>, InferenceError> {
    let model = match settings.chat_backend().map_err(invalid)? {
        PartBackend::Remote(config) => return Ok(Arc::new(OpenAiChat::new(OpenAiClient::new(config)?))),
        PartBackend::Local(model) => model,
    };
    let dir = ModelStore::new(&settings.models)?.resolve(&model)?;
    let path = dir
        .gguf()
        .ok_or_else(|| InferenceError::Invalid(format!("model {model} has no GGUF file; pick a chat model")))?;
    Ok(Arc::new(LocalChatModel::spawn(path, model, LocalChatOptions::default()).await?))
}

/// Starts the embedder and opens the memory store the settings name.
pub async fn open_memory(settings: &Settings) -> Result<Memory, MemoryError> {
    let embedder = start_embedder(settings).await?;
    Memory::open(&settings.memory_config(), embedder).await
}

/// Everything the agent needs: the catalog, the bookings table next to the memories, memory (unless
/// `with_memory` is false), the recordings folder, and the chat model when replies are worded by it.
pub async fn agent_config(settings: &Settings, with_memory: bool) -> Result<AgentConfig, AgentError> {
    let bookings = BookingStore::open(&settings.data).await?;
    let memory = if with_memory { Some(MemoryService::new(open_memory(settings).await?)) } else { None };
    let wording = match settings.reply_wording {
        ReplyWording::Template => None,
        ReplyWording::Model => {
            let model = start_chat(settings).await.map_err(MemoryError::from)?;
            Some(Wording::new(model, std::time::Duration::from_secs_f64(settings.wording_timeout_secs)))
        }
    };
    Ok(AgentConfig {
        tools: Tools::new(Arc::new(Catalog::builtin()?), bookings),
        memory,
        recordings: Some(settings.recordings.clone()),
        now: None,
        wording,
        mailer: Some(mailer(settings)?),
    })
}

/// Tour confirmations: through the SMTP server the settings name, always kept in the outbox folder.
pub fn mailer(settings: &Settings) -> Result<Mailer, AgentError> {
    let timeout = std::time::Duration::from_secs_f64(settings.smtp_timeout_secs);
    let smtp = settings.smtp_url.as_ref().map(|u| u.0.as_str());
    Ok(Mailer::new(&settings.mail_from, &settings.outbox, smtp, timeout)?)
}

/// Speech for phone calls: the Whisper model the settings name on its own thread, the agent's voice, and the
/// voice-activity settings.
pub async fn start_voice(settings: &Settings) -> Result<Voice, InferenceError> {
    let store = ModelStore::new(&settings.models)?;
    let tts = agent_voice(settings, &store).await?;
    let stt = SttHandle::spawn(store.resolve(&settings.stt_model)?, STT_HINT.to_string()).await?;
    let silero = match load_silero(&store).await {
        Ok(vad) => Some(vad),
        Err(e) => {
            tracing::warn!(error = %e, "Silero VAD is unavailable; calls use the energy detector");
            None
        }
    };
    let turn = match settings.smart_turn {
        true => Some(load_smart_turn(&store).await?),
        false => None,
    };
    let turn_check = match &turn {
        Some(turn) => Some(turn.clone()),
        None => match load_smart_turn(&store).await {
            Ok(turn) => Some(turn),
            Err(e) => {
                tracing::warn!(error = %e, "Smart Turn is unavailable; a pause after \"move in\" ends the turn");
                None
            }
        },
    };
    let vad = VadConfig { silence_ms: settings.vad_silence_ms, ..VadConfig::default() };
    Ok(Voice { stt, tts, vad, silero, turn, turn_check })
}

/// Loads Smart Turn with the fetched ONNX Runtime.
pub async fn load_smart_turn(store: &ModelStore) -> Result<SmartTurn, InferenceError> {
    let (dir, library) = onnx_model(store, "smart-turn")?;
    SmartTurn::load(&dir, &library).await
}

/// Loads Silero VAD with the fetched ONNX Runtime.
pub async fn load_silero(store: &ModelStore) -> Result<SileroVad, InferenceError> {
    let (dir, library) = onnx_model(store, "silero-vad")?;
    SileroVad::load(&dir, &library).await
}

/// The voice `tts_voice` names: a Piper voice of the manifest (`piper-joe`), else an espeak-ng voice (`en-us`).
/// A Piper voice that cannot load (not fetched, no ONNX Runtime) falls back to espeak-ng's `en-us`, with a warning
/// that says how to get it. Either keeps the phrases it has spoken ([`PhraseCache`]).
pub async fn agent_voice(settings: &Settings, store: &ModelStore) -> Result<Arc<dyn TextToSpeech>, InferenceError> {
    let voice = bare_agent_voice(settings, store).await?;
    Ok(Arc::new(PhraseCache::new(voice, DEFAULT_PHRASE_CACHE_BYTES)))
}

/// [`agent_voice`] without its phrase cache.
async fn bare_agent_voice(settings: &Settings, store: &ModelStore) -> Result<Arc<dyn TextToSpeech>, InferenceError> {
    let piper = store.manifest().model(&settings.tts_voice).ok().filter(|spec| spec.role == "tts").cloned();
    let espeak_voice = match piper {
        Some(spec) => match load_piper(store, &spec.name).await {
            Ok(voice) => return Ok(Arc::new(voice)),
            Err(e) => {
                tracing::warn!(voice = %spec.name, error = %e, "the Piper voice is unavailable; speaking with espeak-ng");
                "en-us".to_string()
            }
        },
        None => settings.tts_voice.clone(),
    };
    let espeak = EspeakTts::new(espeak_voice, settings.tts_words_per_minute);
    espeak.check().await?;
    Ok(Arc::new(espeak))
}

/// Loads the Piper voice `name` with the fetched ONNX Runtime.
pub async fn load_piper(store: &ModelStore, name: &str) -> Result<PiperTts, InferenceError> {
    let (dir, library) = onnx_model(store, name)?;
    PiperTts::load(name, &dir, &library).await
}

/// The manifest entry of the ONNX Runtime library, and its file.
const ONNX_RUNTIME: &str = "onnxruntime";
const ONNX_RUNTIME_LIBRARY: &str = "libonnxruntime.so";

/// The folder of the ONNX model `name` and the ONNX Runtime library that runs it, both fetched and verified.
fn onnx_model(store: &ModelStore, name: &str) -> Result<(PathBuf, PathBuf), InferenceError> {
    let model = store.resolve(name)?;
    let runtime = store.resolve(ONNX_RUNTIME)?;
    Ok((model.dir, runtime.dir.join(ONNX_RUNTIME_LIBRARY)))
}

/// ONNX Runtime on the MiniLM export, for `bench memory` to compare with the embedder.
pub fn onnx_reference(settings: &Settings) -> Result<crate::bench::onnx_reference::OnnxMiniLm, InferenceError> {
    use crate::bench::onnx_reference::{OnnxMiniLm, MODEL};
    let store = ModelStore::new(&settings.models)?;
    let (dir, library) = onnx_model(&store, MODEL)?;
    let minilm = store.resolve("minilm")?;
    OnnxMiniLm::load(&crate::inference::onnx::ModelFile::new(MODEL, dir.join("model.onnx"), &library)?, &minilm)
}

/// What `tourdesk serve` runs beside the agent.
#[derive(Debug, Clone, Copy)]
pub struct ServeParts {
    /// Caller memory (and the memory API).
    pub memory: bool,
    /// Whisper and espeak-ng for phone calls.
    pub voice: bool,
    /// The chat model for inferred adds through the API.
    pub infer: bool,
}

/// The server's shared state: the agent, the parts asked for, the Twilio settings and the API key.
pub async fn app_state(settings: &Settings, parts: ServeParts) -> Result<AppState, AgentError> {
    let mut state = AppState::new(agent_config(settings, parts.memory).await?);
    if parts.voice {
        state.voice = Some(start_voice(settings).await.map_err(MemoryError::from)?);
    }
    if parts.infer && parts.memory {
        state.chat = Some(start_chat(settings).await.map_err(MemoryError::from)?);
    }
    state.api_key = settings.api_key.clone();
    state.public_url = settings.public_url.clone();
    state.twilio_auth_token = settings.twilio_auth_token.clone();
    state.office_phone = settings.office_phone.clone();
    state.twilio_api_url = settings.twilio_api_url.clone();
    if state.office_phone.is_some() && state.twilio_auth_token.is_none() {
        tracing::warn!("office_phone is set but twilio_auth_token is not: callers pressing 0 cannot be transferred");
    }
    Ok(state)
}

/// Deletes expired memories every `every` for as long as the runtime runs (the first pass right away), logging
/// what it did; a failed pass is logged and retried at the next tick.
pub fn spawn_expiry_cleanup(memory: Memory, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match memory.cleanup_expired(Some("cleanup")).await {
                Ok(deleted) if !deleted.is_empty() => tracing::info!(n = deleted.len(), "deleted expired memories"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "deleting expired memories failed; retried at the next interval"),
            }
        }
    })
}
