//! Settings: built-in defaults, then `tourdesk.toml`, then environment variables and command-line flags.

use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::memory::MemoryConfig;

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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data: "data/db".into(),
            models: default_models_dir(),
            embedder: "minilm".into(),
            memory_table: None,
            recordings: PathBuf::from("data/recordings"),
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
}

/// A settings file that could not be read, or a value of the wrong type.
#[derive(Debug, thiserror::Error)]
#[error("invalid settings: {0}")]
pub struct ConfigError(#[from] Box<figment::Error>);

impl Settings {
    /// Defaults, then the TOML file at `file` (if it exists), then `overrides`.
    pub fn load(file: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(file))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError(Box::new(e)))
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
