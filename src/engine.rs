//! Builds the running parts from settings: verified model weights, the embedder thread, the memory store.

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
