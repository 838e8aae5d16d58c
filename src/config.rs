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

/// Every setting tourdesk reads. `tourdesk --help` lists the flag and environment variable for each.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    /// LanceDB location for memories: a folder or an object-store URI.
    pub data: String,
    /// Folder holding model weights.
    pub models: PathBuf,
    /// Embedding model, by manifest name.
    pub embedder: String,
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
    /// espeak-ng voice.
    pub tts_voice: String,
    /// Speaking speed, words per minute.
    pub tts_words_per_minute: u32,
    /// Silence that ends a caller's utterance, milliseconds.
    pub vad_silence_ms: u32,
    /// The server's public https URL as Twilio reaches it (a tunnel such as ngrok); used for the media-stream URL
    /// and to check webhook signatures. Derived from the request's Host header when unset.
    pub public_url: Option<String>,
    /// Twilio auth token: when set, webhooks and media streams must carry a valid `X-Twilio-Signature`.
    pub twilio_auth_token: Option<ApiKey>,
    /// Key the memory API and `/ws/chat` require; without one the server listens on loopback only.
    pub api_key: Option<ApiKey>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data: "data/db".into(),
            models: default_models_dir(),
            embedder: "minilm".into(),
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
            stt_model: "whisper-tiny-en".into(),
            tts_voice: "en-us".into(),
            tts_words_per_minute: 165,
            vad_silence_ms: 400,
            public_url: None,
            twilio_auth_token: None,
            api_key: None,
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
    /// Embedding model from the manifest [default: minilm]
    #[arg(long, global = true, env = "TOURDESK_EMBEDDER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedder: Option<String>,
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
    /// Speech-to-text model for calls: whisper-tiny-en (fastest) or whisper-base [default: whisper-tiny-en]
    #[arg(long, global = true, env = "TOURDESK_STT_MODEL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stt_model: Option<String>,
    /// espeak-ng voice for the agent [default: en-us]
    #[arg(long, global = true, env = "TOURDESK_TTS_VOICE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tts_voice: Option<String>,
    /// Agent's speaking speed in words per minute [default: 165]
    #[arg(long, global = true, env = "TOURDESK_TTS_WPM")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tts_words_per_minute: Option<u32>,
    /// Silence that ends a caller's utterance, in milliseconds [default: 400]
    #[arg(long, global = true, env = "TOURDESK_VAD_SILENCE_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vad_silence_ms: Option<u32>,
    /// Public https URL Twilio uses to reach this server (e.g. an ngrok tunnel) [default: from the Host header]
    #[arg(long, global = true, env = "TOURDESK_PUBLIC_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Twilio auth token; when set, requests without a valid X-Twilio-Signature are refused
    #[arg(long, global = true, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twilio_auth_token: Option<String>,
    /// API key for the memory REST API and /ws/chat (Bearer or X-API-Key); without it the server binds loopback only
    #[arg(long, global = true, env = "TOURDESK_API_KEY", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
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
    /// Defaults, then the TOML file at `file` (if it exists), then `overrides`.
    pub fn load(file: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError::Read(Box::new(e)))
    }

    /// The backend in force: `auto` resolved by whether an API key is set. `openai` against api.openai.com with no
    /// key is an error that says which variable to set.
    pub fn resolved_backend(&self) -> Result<Backend, ConfigError> {
        let key = self.openai_api_key.as_ref().is_some_and(|k| !k.0.trim().is_empty());
        match self.backend {
            Backend::Auto if key => Ok(Backend::Openai),
            Backend::Auto => Ok(Backend::Local),
            Backend::Openai if !key && self.openai_base_url.contains("api.openai.com") => Err(ConfigError::Invalid(
                "the openai backend needs OPENAI_API_KEY (or OPENAI_BASE_URL pointing at a server that needs no key)"
                    .into(),
            )),
            other => Ok(other),
        }
    }

    /// How to reach the OpenAI-compatible server.
    pub fn openai_config(&self) -> Result<OpenAiConfig, ConfigError> {
        if !(self.openai_timeout_secs.is_finite() && self.openai_timeout_secs > 0.0) {
            return Err(ConfigError::Invalid(format!(
                "openai_timeout_secs must be a positive number of seconds, not {}",
                self.openai_timeout_secs
            )));
        }
        Ok(OpenAiConfig {
            base_url: self.openai_base_url.clone(),
            api_key: self.openai_api_key.clone().filter(|k| !k.0.trim().is_empty()),
            chat_model: self.openai_model.clone(),
            embedding_model: self.openai_embedding_model.clone(),
            timeout: std::time::Duration::from_secs_f64(self.openai_timeout_secs),
            retries: self.openai_retries,
            backoff: std::time::Duration::from_millis(500),
        })
    }

    /// Where the memory engine keeps its tables.
    pub fn memory_config(&self) -> MemoryConfig {
        MemoryConfig { table: self.memory_table.clone(), ..MemoryConfig::new(self.data.clone()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tourdesk.toml");
        std::fs::write(&file, "data = \"/srv/db\"\nembedder = \"other\"\n").unwrap();
        let s = Settings::load(&file, &Overrides { embedder: Some("minilm".into()), ..Default::default() }).unwrap();
        assert_eq!(s.data, "/srv/db");
        assert_eq!(s.embedder, "minilm");
        assert_eq!(
            Settings::load(&dir.path().join("absent.toml"), &Overrides::default()).unwrap(),
            Settings::default()
        );
        std::fs::write(&file, "data = 3\n").unwrap();
        assert!(Settings::load(&file, &Overrides::default()).is_err());
    }
}
