//! Builds the running parts from settings: verified model weights, the embedder thread, the memory store and
//! the agent's tools.

use std::sync::Arc;

use crate::agent::{AgentConfig, AgentError, BookingStore, Catalog, MemoryService, Tools};
use crate::config::Settings;
use crate::inference::{EmbedderHandle, InferenceError, MiniLmEmbedder};
use crate::memory::{Memory, MemoryError};
use crate::models::ModelStore;

/// Resolves the configured embedder's weights (a clear error names `tourdesk models fetch` when they are missing)
/// and starts it on its own thread.
pub async fn start_embedder(settings: &Settings) -> Result<EmbedderHandle, InferenceError> {
    let dir = ModelStore::new(&settings.models)?.resolve(&settings.embedder)?;
    EmbedderHandle::spawn(move || MiniLmEmbedder::load(&dir)).await
}

/// Starts the embedder and opens the memory store the settings name.
pub async fn open_memory(settings: &Settings) -> Result<Memory, MemoryError> {
    let embedder = start_embedder(settings).await?;
    Memory::open(&settings.memory_config(), embedder).await
}

/// Everything the agent needs: the catalog, the bookings table next to the memories, memory (unless
/// `with_memory` is false) and the recordings folder.
pub async fn agent_config(settings: &Settings, with_memory: bool) -> Result<AgentConfig, AgentError> {
    let bookings = BookingStore::open(&settings.data).await?;
    let memory = if with_memory { Some(MemoryService::new(open_memory(settings).await?)) } else { None };
    Ok(AgentConfig {
        tools: Tools::new(Arc::new(Catalog::builtin()?), bookings),
        memory,
        recordings: Some(settings.recordings.clone()),
        now: None,
    })
}
