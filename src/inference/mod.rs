//! The model seam: narrow, synchronous traits for each kind of model, their implementations, and the handles that
//! run a model on its own thread for async callers.

mod bert;
pub mod chat;
pub mod decoder;
mod embed_worker;
mod gelu;
mod gguf_tokenizer;
pub mod linear;
mod local_chat;
mod minilm;
pub mod onnx;
pub mod openai;
pub(crate) mod worker;

pub use chat::{complete_json, ChatMessage, ChatModel, ChatRequest, Completion, Role};
pub use embed_worker::EmbedderHandle;
pub use gguf_tokenizer::GgufTokenizer;
pub use linear::{Linear, Precision};
pub use local_chat::{LocalChatModel, LocalChatOptions};
pub use minilm::MiniLmEmbedder;
pub use openai::{ApiKey, OpenAiChat, OpenAiClient, OpenAiConfig, OpenAiEmbedder};

use crate::models::ModelError;

/// Turns texts into unit-length vectors. Implementations are synchronous and CPU-bound; async code reaches them
/// through an [`EmbedderHandle`], which owns the model on a dedicated thread.
pub trait Embedder: Send + 'static {
    /// One vector per text, in order, each of length [`Embedder::dim`].
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, InferenceError>;
    /// Length of every vector.
    fn dim(&self) -> usize;
    /// Stable identifier of the model; stores record it so vectors from different models never mix.
    fn model_id(&self) -> &str;
}

/// Everything that can go wrong running a model.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    /// The weights are missing or corrupt.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The tensor library failed.
    #[error("model computation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// The tokenizer could not be loaded or failed on the input.
    #[error("tokenizer failed: {0}")]
    Tokenizer(String),
    /// The input cannot be processed.
    #[error("invalid model input: {0}")]
    Invalid(String),
    /// The model answered, but not in the shape asked for (even after one retry).
    #[error("the chat model's answer was malformed: {0}")]
    BadOutput(String),
    /// A remote model server failed or could not be reached.
    #[error("{0}")]
    Remote(String),
    /// The model thread stopped (it panicked or was shut down).
    #[error("the {0} model thread has stopped; restart tourdesk")]
    WorkerGone(&'static str),
}
