//! Settings: built-in defaults, then `tourdesk.toml`, then environment variables and command-line flags.

use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::inference::{ApiKey, OpenAiConfig};
use crate::memory::MemoryConfig;

/// Who words the agent's replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReplyWording {
    /// The planner's templates, as they are (instant).
    #[default]
    Template,
    /// The chat model rephrases each template reply, keeping its facts (falls back to the template).
    Model,
}

/// Which models serve embeddings and chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// candle models from the models folder.
    #[default]
    Local,
    /// An OpenAI-compatible server (`openai_base_url`).
    Openai,
    /// OpenAI when an API key is set, local otherwise.
    Auto,
}

/// Where one model-backed part (the embedder, the chat model) runs: `[embedder]` and `[chat]` in `tourdesk.toml`, as
/// mem0 configures its `embedder` and `llm` apart. Every field is optional; an unset one falls back to the shared
/// settings (`backend`, `openai_base_url`, `openai_api_key`, and the part's model setting).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PartSettings {
    /// `local`, `openai` or `auto` for this part alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// The model: a manifest name when local, the server's model name when remote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// This part's OpenAI-compatible server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// This part's API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKey>,
}

impl PartSettings {
    /// `embedder = "minilm"` (the model alone, as before sections existed) or an `[embedder]` table.
    fn model_or_table<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Model(String),
            Table(PartSettings),
        }
        Ok(match Either::deserialize(d)? {
            Either::Model(model) => PartSettings { model: Some(model), ..Default::default() },
            Either::Table(table) => table,
        })
    }
}

/// One part's backend, resolved.
#[derive(Debug, Clone)]
pub enum PartBackend {
    /// candle weights from the models folder: the manifest name.
    Local(String),
    /// An OpenAI-compatible server.
    Remote(OpenAiConfig),
}

/// Every setting tourdesk reads. `tourdesk --help` lists the flag and environment variable for each.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    /// LanceDB location for memories: a folder or an object-store URI.
    pub data: String,
    /// Folder holding model weights.
    pub models: PathBuf,
    /// The embedder: where it runs and which model (`[embedder]`; `embedder = "minilm"` names the model alone).
    #[serde(deserialize_with = "PartSettings::model_or_table")]
    pub embedder: PartSettings,
    /// The chat model's backend, server and key, when they differ from the shared ones (`[chat]`).
    pub chat: PartSettings,
    /// Memories table; by default named after the embedder.
    pub memory_table: Option<String>,
    /// Folder for the flight recorder's per-call JSONL files.
    pub recordings: PathBuf,
    /// Model backend for embeddings and chat.
    pub backend: Backend,
    /// Local chat model, by manifest name.
    pub chat_model: String,
    /// OpenAI-compatible server.
    pub openai_base_url: String,
    /// API key for it (optional for local servers such as Ollama).
    pub openai_api_key: Option<ApiKey>,
    /// Chat model on the server.
    pub openai_model: String,
    /// Embedding model on the server.
    pub openai_embedding_model: String,
    /// Seconds one request may take.
    pub openai_timeout_secs: f64,
    /// Retries after a 429, a 5xx, a timeout or a refused connection.
    pub openai_retries: u32,
    /// Who words the agent's replies.
    pub reply_wording: ReplyWording,
    /// Seconds a turn waits for the model's wording before speaking the template.
    pub wording_timeout_secs: f64,
    /// Speech-to-text model for phone calls, by manifest name.
    pub stt_model: String,
    /// The agent's voice: a Piper voice from the model manifest (`piper-joe`) or an espeak-ng voice (`en-us`).
    pub tts_voice: String,
    /// Speaking speed, words per minute.
    pub tts_words_per_minute: u32,
    /// Silence that ends a caller's utterance, milliseconds.
    pub vad_silence_ms: u32,
    /// Let Pipecat's Smart Turn model decide whether a pause ends the caller's turn (asked after 200 ms of
    /// silence; an unfinished turn waits up to 1.2 s) instead of a fixed `vad_silence_ms`.
    pub smart_turn: bool,
    /// The server's public https URL as Twilio reaches it (a tunnel such as ngrok); used for the media-stream URL
    /// and to check webhook signatures. Derived from the request's Host header when unset.
    pub public_url: Option<String>,
    /// Twilio auth token: when set, webhooks and media streams must carry a valid `X-Twilio-Signature`.
    pub twilio_auth_token: Option<ApiKey>,
    /// The office's phone number (E.164, `+15551234567`): a caller who presses 0 is transferred to it through
    /// Twilio's call-update API (needs `twilio_auth_token`). Unset, the caller is told transfers are not set up.
    pub office_phone: Option<String>,
    /// Twilio's REST API, for transfers.
    pub twilio_api_url: String,
    /// Key the memory API and `/ws/chat` require; without one the server listens on loopback only.
    pub api_key: Option<ApiKey>,
    /// Seconds between the server's deletions of expired memories; 0 turns them off.
    pub cleanup_interval_secs: u64,
    /// Largest scope searched exactly (every memory scored); larger ones go through LanceDB's indexes.
    pub exact_search_rows: usize,
    /// SMTP server for tour confirmations: `smtps://user:password@host` (TLS), `smtp://host:587?tls=required`
    /// (STARTTLS), or plain `smtp://host:port` (a relay on this machine); unset, confirmations are written to
    /// `outbox` only.
    pub smtp_url: Option<ApiKey>,
    /// Sender of tour confirmations.
    pub mail_from: String,
    /// Folder where every confirmation is also written as an `.eml` file (and the only place without SMTP).
    pub outbox: PathBuf,
    /// Seconds a confirmation may take to send before the call goes on without claiming it was sent.
    pub smtp_timeout_secs: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data: "data/db".into(),
            models: default_models_dir(),
            embedder: PartSettings::default(),
            chat: PartSettings::default(),
            memory_table: None,
            recordings: PathBuf::from("data/recordings"),
            backend: Backend::Local,
            chat_model: "qwen2.5-0.5b".into(),
            openai_base_url: "https://api.openai.com/v1".into(),
            openai_api_key: None,
            openai_model: "gpt-4o-mini".into(),
            openai_embedding_model: "text-embedding-3-small".into(),
            openai_timeout_secs: 30.0,
            openai_retries: 3,
            reply_wording: ReplyWording::Template,
            wording_timeout_secs: 5.0,
            stt_model: "whisper-base".into(),
            tts_voice: "piper-joe".into(),
            tts_words_per_minute: 165,
            vad_silence_ms: 400,
            smart_turn: false,
            public_url: None,
            twilio_auth_token: None,
            office_phone: None,
            twilio_api_url: "https://api.twilio.com".into(),
            api_key: None,
            cleanup_interval_secs: 3600,
            exact_search_rows: crate::memory::DEFAULT_EXACT_SEARCH_ROWS,
            smtp_url: None,
            mail_from: "Harborline Leasing <tours@localhost>".into(),
            outbox: PathBuf::from("data/outbox"),
            smtp_timeout_secs: 5.0,
        }
    }
}

/// `$XDG_CACHE_HOME/tourdesk/models` (or `~/.cache/…`), shared by every checkout and by CI on the same machine.
pub fn default_models_dir() -> PathBuf {
    dirs::cache_dir().unwrap_or_else(|| PathBuf::from(".cache")).join("tourdesk").join("models")
}

/// Values given on the command line or in the environment; `None` leaves the file or default in force.
#[derive(Debug, Clone, Default, Serialize, clap::Args)]
pub struct Overrides {
    /// LanceDB location for memories (folder or s3://… URI) [default: data/db]
    #[arg(long, global = true, env = "TOURDESK_DATA")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Folder holding model weights [default: ~/.cache/tourdesk/models]
    #[arg(long, global = true, env = "TOURDESK_MODELS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models: Option<PathBuf>,
    /// The embedder's own settings.
    #[command(flatten)]
    #[serde(skip_serializing_if = "EmbedderOverrides::is_empty")]
    pub embedder: EmbedderOverrides,
    /// The chat model's own settings.
    #[command(flatten)]
    #[serde(skip_serializing_if = "ChatOverrides::is_empty")]
    pub chat: ChatOverrides,
    /// Memories table name [default: named after the embedder]
    #[arg(long, global = true, env = "TOURDESK_MEMORY_TABLE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_table: Option<String>,
    /// Folder for per-call flight-recorder files [default: data/recordings]
    #[arg(long, global = true, env = "TOURDESK_RECORDINGS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recordings: Option<PathBuf>,
    /// Model backend: local, openai, or auto (openai when an API key is set) [default: local]
    #[arg(long, global = true, env = "TOURDESK_BACKEND", value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// Local chat model from the manifest: qwen2.5-0.5b or smollm2-135m [default: qwen2.5-0.5b]
    #[arg(long, global = true, env = "TOURDESK_CHAT_MODEL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_model: Option<String>,
    /// OpenAI-compatible base URL (Ollama: http://localhost:11434/v1) [default: https://api.openai.com/v1]
    #[arg(long, global = true, env = "OPENAI_BASE_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openai_base_url: Option<String>,
    /// API key for the OpenAI-compatible server
    #[arg(long, global = true, env = "OPENAI_API_KEY", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openai_api_key: Option<String>,
    /// Chat model on the server [default: gpt-4o-mini]
    #[arg(long, global = true, env = "OPENAI_MODEL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openai_model: Option<String>,
    /// Embedding model on the server [default: text-embedding-3-small]
    #[arg(long, global = true, env = "OPENAI_EMBEDDING_MODEL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openai_embedding_model: Option<String>,
    /// Seconds one request to the server may take [default: 30]
    #[arg(long, global = true, env = "OPENAI_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openai_timeout_secs: Option<f64>,
    /// Retries after a 429, a 5xx or a timeout [default: 3]
    #[arg(long, global = true, env = "OPENAI_RETRIES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openai_retries: Option<u32>,
    /// Who words the agent's replies: template, or model (the chat model rephrases them) [default: template]
    #[arg(long, global = true, env = "TOURDESK_REPLY_WORDING", value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_wording: Option<ReplyWording>,
    /// Seconds a turn waits for the model's wording before speaking the template [default: 5]
    #[arg(long, global = true, env = "TOURDESK_WORDING_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wording_timeout_secs: Option<f64>,
    /// Speech-to-text model for calls: whisper-base (accurate) or whisper-tiny-en (fastest) [default: whisper-base]
    #[arg(long, global = true, env = "TOURDESK_STT_MODEL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stt_model: Option<String>,
    /// The agent's voice: piper-joe (neural, Piper) or an espeak-ng voice such as en-us [default: piper-joe]
    #[arg(long, global = true, env = "TOURDESK_TTS_VOICE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tts_voice: Option<String>,
    /// Speaking speed of an espeak-ng voice, words per minute [default: 165]
    #[arg(long, global = true, env = "TOURDESK_TTS_WPM")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tts_words_per_minute: Option<u32>,
    /// Silence that ends a caller's utterance, in milliseconds [default: 400]
    #[arg(long, global = true, env = "TOURDESK_VAD_SILENCE_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vad_silence_ms: Option<u32>,
    /// End of turn by Smart Turn (true) or by `vad_silence_ms` of silence (false) [default: false]
    #[arg(long, global = true, env = "TOURDESK_SMART_TURN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smart_turn: Option<bool>,
    /// Public https URL Twilio uses to reach this server (e.g. an ngrok tunnel) [default: from the Host header]
    #[arg(long, global = true, env = "TOURDESK_PUBLIC_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Twilio auth token; when set, requests without a valid X-Twilio-Signature are refused
    #[arg(long, global = true, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twilio_auth_token: Option<String>,
    /// The office's number (E.164) a caller pressing 0 is transferred to [default: none, no transfers]
    #[arg(long, global = true, env = "TOURDESK_OFFICE_PHONE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub office_phone: Option<String>,
    /// Twilio's REST API base URL, for transfers [default: https://api.twilio.com]
    #[arg(long, global = true, env = "TWILIO_API_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twilio_api_url: Option<String>,
    /// API key for the memory REST API and /ws/chat (Bearer or X-API-Key); without it the server binds loopback only
    #[arg(long, global = true, env = "TOURDESK_API_KEY", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Seconds between deletions of expired memories while serving; 0 turns them off [default: 3600]
    #[arg(long, global = true, env = "TOURDESK_CLEANUP_INTERVAL_SECS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleanup_interval_secs: Option<u64>,
    /// Largest scope searched exactly, every memory scored; larger ones use LanceDB's indexes [default: 2048]
    #[arg(long, global = true, env = "TOURDESK_EXACT_SEARCH_ROWS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_search_rows: Option<usize>,
    /// SMTP server for confirmations: smtps://user:password@host (TLS), smtp://host:587?tls=required (STARTTLS) or
    /// smtp://host:port (plain, for a local relay) [default: none, confirmations go to the outbox folder only]
    #[arg(long, global = true, env = "TOURDESK_SMTP_URL", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_url: Option<String>,
    /// Sender of tour confirmations [default: Harborline Leasing <tours@localhost>]
    #[arg(long, global = true, env = "TOURDESK_MAIL_FROM")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_from: Option<String>,
    /// Folder that keeps every confirmation as an .eml file [default: data/outbox]
    #[arg(long, global = true, env = "TOURDESK_OUTBOX")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox: Option<PathBuf>,
    /// Seconds a confirmation may take to send [default: 5]
    #[arg(long, global = true, env = "TOURDESK_SMTP_TIMEOUT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_timeout_secs: Option<f64>,
}

/// `[embedder]` from the command line or the environment.
#[derive(Debug, Clone, Default, Serialize, clap::Args)]
pub struct EmbedderOverrides {
    /// Embedding model: a manifest name when local, the server's model when remote [default: minilm, or
    /// openai_embedding_model on a server]
    #[arg(id = "embedder_model", long = "embedder", global = true, env = "TOURDESK_EMBEDDER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Backend for embeddings alone: local, openai or auto [default: backend]
    #[arg(
        id = "embedder_backend",
        long = "embedder-backend",
        global = true,
        env = "TOURDESK_EMBEDDER_BACKEND",
        value_enum
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// OpenAI-compatible server for embeddings [default: openai_base_url]
    #[arg(id = "embedder_base_url", long = "embedder-base-url", global = true, env = "TOURDESK_EMBEDDER_BASE_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// API key of that server [default: openai_api_key]
    #[arg(
        id = "embedder_api_key",
        long = "embedder-api-key",
        global = true,
        env = "TOURDESK_EMBEDDER_API_KEY",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

impl EmbedderOverrides {
    fn is_empty(&self) -> bool {
        self.model.is_none() && self.backend.is_none() && self.base_url.is_none() && self.api_key.is_none()
    }
}

/// `[chat]` from the command line or the environment.
#[derive(Debug, Clone, Default, Serialize, clap::Args)]
pub struct ChatOverrides {
    /// Backend for the chat model alone: local, openai or auto [default: backend]
    #[arg(id = "chat_backend", long = "chat-backend", global = true, env = "TOURDESK_CHAT_BACKEND", value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    /// OpenAI-compatible server for chat [default: openai_base_url]
    #[arg(id = "chat_base_url", long = "chat-base-url", global = true, env = "TOURDESK_CHAT_BASE_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// API key of that server [default: openai_api_key]
    #[arg(
        id = "chat_api_key",
        long = "chat-api-key",
        global = true,
        env = "TOURDESK_CHAT_API_KEY",
        hide_env_values = true
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

impl ChatOverrides {
    fn is_empty(&self) -> bool {
        self.backend.is_none() && self.base_url.is_none() && self.api_key.is_none()
    }
}

/// A settings file that could not be read, a value of the wrong type, or settings that do not fit together.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or a value could not be read.
    #[error("invalid settings: {0}")]
    Read(#[from] Box<figment::Error>),
    /// The values cannot work together.
    #[error("invalid settings: {0}")]
    Invalid(String),
}

impl Settings {
    /// Defaults, then the TOML file at `file` (if it exists), then `overrides`; then normalised (a blank secret
    /// or URL is unset) and checked, so a bad value is reported here, naming the setting, and nowhere else.
    pub fn load(file: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError::Read(Box::new(e)))?;
        settings.normalised()
    }

    /// Blank secrets and URLs unset; numbers checked against their ranges.
    pub fn normalised(mut self) -> Result<Self, ConfigError> {
        let blank_key = |k: &mut Option<ApiKey>| {
            if k.as_ref().is_some_and(|k| k.0.trim().is_empty()) {
                *k = None;
            }
        };
        for key in [
            &mut self.openai_api_key,
            &mut self.api_key,
            &mut self.twilio_auth_token,
            &mut self.embedder.api_key,
            &mut self.chat.api_key,
            &mut self.smtp_url,
        ] {
            blank_key(key);
        }
        for text in [&mut self.public_url, &mut self.embedder.base_url, &mut self.chat.base_url, &mut self.office_phone]
        {
            if text.as_ref().is_some_and(|t| t.trim().is_empty()) {
                *text = None;
            }
        }
        if let Some(phone) = &self.office_phone {
            self.office_phone = Some(crate::realtime::twilio::normalize_caller(phone).ok_or_else(|| {
                ConfigError::Invalid(format!("office_phone must be a phone number such as +15551234567, not {phone:?}"))
            })?);
        }
        let api = self.twilio_api_url.trim().trim_end_matches('/');
        if !(api.starts_with("https://") || api.starts_with("http://")) {
            return Err(ConfigError::Invalid(format!(
                "twilio_api_url must be an http(s) URL such as https://api.twilio.com, not {:?}",
                self.twilio_api_url
            )));
        }
        self.twilio_api_url = api.to_string();
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(ConfigError::Invalid(format!("{name} must be a positive number of seconds, not {v}")))
            }
        };
        positive("openai_timeout_secs", self.openai_timeout_secs)?;
        positive("wording_timeout_secs", self.wording_timeout_secs)?;
        positive("smtp_timeout_secs", self.smtp_timeout_secs)?;
        if !(100..=5_000).contains(&self.vad_silence_ms) {
            return Err(ConfigError::Invalid(format!(
                "vad_silence_ms must be between 100 and 5000, not {}",
                self.vad_silence_ms
            )));
        }
        if !(80..=450).contains(&self.tts_words_per_minute) {
            return Err(ConfigError::Invalid(format!(
                "tts_words_per_minute must be between 80 and 450, not {}",
                self.tts_words_per_minute
            )));
        }
        Ok(self)
    }

    /// The shared backend in force (`auto` resolved by whether `openai_api_key` is set).
    pub fn resolved_backend(&self) -> Result<Backend, ConfigError> {
        resolve(self.backend, self.openai_api_key.is_some(), &self.openai_base_url)
    }

    /// How to reach the shared OpenAI-compatible server.
    pub fn openai_config(&self) -> Result<OpenAiConfig, ConfigError> {
        Ok(OpenAiConfig {
            base_url: self.openai_base_url.clone(),
            api_key: self.openai_api_key.clone(),
            chat_model: self.openai_model.clone(),
            embedding_model: self.openai_embedding_model.clone(),
            timeout: std::time::Duration::from_secs_f64(self.openai_timeout_secs),
            retries: self.openai_retries,
            backoff: std::time::Duration::from_millis(500),
        })
    }

    /// Where the embedder runs: `[embedder]`, falling back to the shared settings.
    pub fn embedder_backend(&self) -> Result<PartBackend, ConfigError> {
        let (backend, mut config) = self.part(&self.embedder)?;
        Ok(match backend {
            Backend::Openai => {
                config.embedding_model = self.embedder.model.clone().unwrap_or(config.embedding_model);
                PartBackend::Remote(config)
            }
            _ => PartBackend::Local(self.embedder.model.clone().unwrap_or_else(|| DEFAULT_EMBEDDER.into())),
        })
    }

    /// Where the chat model runs: `[chat]`, falling back to the shared settings (`chat_model` locally,
    /// `openai_model` on a server).
    pub fn chat_backend(&self) -> Result<PartBackend, ConfigError> {
        let (backend, mut config) = self.part(&self.chat)?;
        Ok(match backend {
            Backend::Openai => {
                config.chat_model = self.chat.model.clone().unwrap_or(config.chat_model);
                PartBackend::Remote(config)
            }
            _ => PartBackend::Local(self.chat.model.clone().unwrap_or_else(|| self.chat_model.clone())),
        })
    }

    /// A part's resolved backend and its server settings.
    fn part(&self, part: &PartSettings) -> Result<(Backend, OpenAiConfig), ConfigError> {
        let mut config = self.openai_config()?;
        if let Some(url) = &part.base_url {
            config.base_url = url.clone();
        }
        if part.api_key.is_some() {
            config.api_key = part.api_key.clone();
        }
        let backend = resolve(part.backend.unwrap_or(self.backend), config.api_key.is_some(), &config.base_url)?;
        Ok((backend, config))
    }

    /// Where the memory engine keeps its tables.
    pub fn memory_config(&self) -> MemoryConfig {
        MemoryConfig {
            table: self.memory_table.clone(),
            exact_search_rows: self.exact_search_rows,
            ..MemoryConfig::new(self.data.clone())
        }
    }
}

/// The embedder used when none is named.
pub const DEFAULT_EMBEDDER: &str = "minilm";

/// `auto` becomes `openai` when a key is set; `openai` against api.openai.com without a key is an error that says
/// what to set.
fn resolve(backend: Backend, key: bool, base_url: &str) -> Result<Backend, ConfigError> {
    match backend {
        Backend::Auto if key => Ok(Backend::Openai),
        Backend::Auto => Ok(Backend::Local),
        Backend::Openai if !key && base_url.contains("api.openai.com") => Err(ConfigError::Invalid(
            "the openai backend needs OPENAI_API_KEY (or OPENAI_BASE_URL pointing at a server that needs no key)"
                .into(),
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn office_phone_is_normalised_and_bad_twilio_settings_are_errors() {
        let s = Settings { office_phone: Some("(555) 123-4567".into()), ..Default::default() }.normalised().unwrap();
        assert_eq!(s.office_phone.as_deref(), Some("+15551234567"));
        let blank = Settings { office_phone: Some(" ".into()), ..Default::default() }.normalised().unwrap();
        assert_eq!(blank.office_phone, None);
        let e = Settings { office_phone: Some("front desk".into()), ..Default::default() }.normalised().unwrap_err();
        assert!(e.to_string().contains("office_phone"), "{e}");
        let e = Settings { twilio_api_url: "api.twilio.com".into(), ..Default::default() }.normalised().unwrap_err();
        assert!(e.to_string().contains("twilio_api_url"), "{e}");
    }

    #[test]
    fn file_then_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tourdesk.toml");
        std::fs::write(&file, "data = \"/srv/db\"\nembedder = \"other\"\n").unwrap();
        let over = Overrides {
            embedder: EmbedderOverrides { model: Some("minilm".into()), ..Default::default() },
            ..Default::default()
        };
        let s = Settings::load(&file, &over).unwrap();
        assert_eq!(s.data, "/srv/db");
        assert_eq!(s.embedder.model.as_deref(), Some("minilm"));
        assert_eq!(Settings::load(&file, &Overrides::default()).unwrap().embedder.model.as_deref(), Some("other"));
        assert_eq!(
            Settings::load(&dir.path().join("absent.toml"), &Overrides::default()).unwrap(),
            Settings::default()
        );
        std::fs::write(&file, "data = 3\n").unwrap();
        assert!(Settings::load(&file, &Overrides::default()).is_err());
    }

    #[test]
    fn each_part_runs_where_its_section_says() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tourdesk.toml");
        // Local embeddings beside a remote chat model, and the reverse.
        std::fs::write(
            &file,
            "openai_api_key = \"  \"\n[chat]\nbackend = \"openai\"\nbase_url = \"http://127.0.0.1:8081/v1\"\n\
             model = \"qwen\"\n[embedder]\nmodel = \"minilm\"\n",
        )
        .unwrap();
        let s = Settings::load(&file, &Overrides::default()).unwrap();
        assert!(s.openai_api_key.is_none(), "a blank key is no key");
        assert!(matches!(s.embedder_backend().unwrap(), PartBackend::Local(m) if m == "minilm"));
        match s.chat_backend().unwrap() {
            PartBackend::Remote(c) => {
                assert_eq!((c.base_url.as_str(), c.chat_model.as_str()), ("http://127.0.0.1:8081/v1", "qwen"));
                assert!(c.api_key.is_none());
            }
            other => panic!("{other:?}"),
        }
        let over = Overrides {
            backend: Some(Backend::Openai),
            openai_base_url: Some("http://127.0.0.1:9/v1".into()),
            embedder: EmbedderOverrides { backend: Some(Backend::Local), ..Default::default() },
            ..Default::default()
        };
        let s = Settings::load(&dir.path().join("none.toml"), &over).unwrap();
        assert!(matches!(s.embedder_backend().unwrap(), PartBackend::Local(m) if m == "minilm"));
        assert!(matches!(s.chat_backend().unwrap(), PartBackend::Remote(c) if c.chat_model == "gpt-4o-mini"));
    }

    #[test]
    fn bad_values_are_refused_where_settings_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tourdesk.toml");
        for (toml, named) in [
            ("wording_timeout_secs = -1.0", "wording_timeout_secs"),
            ("openai_timeout_secs = 0.0", "openai_timeout_secs"),
            ("vad_silence_ms = 20", "vad_silence_ms"),
            ("tts_words_per_minute = 9000", "tts_words_per_minute"),
        ] {
            std::fs::write(&file, toml).unwrap();
            let err = Settings::load(&file, &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(named), "{toml}: {err}");
        }
    }
}
