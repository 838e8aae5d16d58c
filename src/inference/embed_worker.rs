//! Runs an [`Embedder`] on its own thread behind a cloneable async handle, so embedding never blocks the reactor.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::{info_span, Instrument};

use super::{Embedder, InferenceError};

/// Queued requests before callers wait; bounded so a flood of writes slows its senders instead of growing memory.
const QUEUE: usize = 64;

/// One request to the embedding thread.
struct Job {
    texts: Vec<String>,
    /// The caller awaits this; the worker sends the vectors or the error.
    reply: oneshot::Sender<Result<Vec<Vec<f32>>, InferenceError>>,
}

/// Async, cloneable access to one embedding model running on a dedicated thread.
#[derive(Clone)]
pub struct EmbedderHandle {
    /// Callers send jobs; the model thread receives them in order.
    jobs: mpsc::Sender<Job>,
    dim: usize,
    model_id: Arc<str>,
}

impl std::fmt::Debug for EmbedderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedderHandle").field("model_id", &self.model_id).field("dim", &self.dim).finish()
    }
}

impl EmbedderHandle {
    /// Starts the model thread: `load` runs on it, then a warm-up pass; a failure in either is returned here,
    /// before anything is served.
    pub async fn spawn<E, F>(load: F) -> Result<Self, InferenceError>
    where
        E: Embedder,
        F: FnOnce() -> Result<E, InferenceError> + Send + 'static,
    {
        let (jobs, mut rx) = mpsc::channel::<Job>(QUEUE);
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("tourdesk-embedder".into())
            .spawn(move || {
                let model = match load().and_then(|m| m.embed(&["warm-up".to_string()]).map(|_| m)) {
                    Ok(model) => {
                        let _ = ready_tx.send(Ok((model.dim(), model.model_id().to_string())));
                        model
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Some(job) = rx.blocking_recv() {
                    // A caller that gave up (barge-in, timeout) has dropped its receiver: skip the work.
                    if job.reply.is_closed() {
                        continue;
                    }
                    let _ = job.reply.send(model.embed(&job.texts));
                }
            })
            .map_err(|e| InferenceError::Invalid(format!("cannot start the embedder thread: {e}")))?;
        let (dim, model_id) = ready_rx.await.map_err(|_| InferenceError::WorkerGone("embedding"))??;
        Ok(Self { jobs, dim, model_id: model_id.into() })
    }

    /// Embeds `texts` on the model thread.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, InferenceError> {
        let n = texts.len();
        async {
            let (reply, rx) = oneshot::channel();
            self.jobs.send(Job { texts, reply }).await.map_err(|_| InferenceError::WorkerGone("embedding"))?;
            rx.await.map_err(|_| InferenceError::WorkerGone("embedding"))?
        }
        .instrument(info_span!("embed", n, model = %self.model_id))
        .await
    }

    /// Embeds one text.
    pub async fn embed_one(&self, text: &str) -> Result<Vec<f32>, InferenceError> {
        let mut out = self.embed(vec![text.to_string()]).await?;
        out.pop().ok_or(InferenceError::WorkerGone("embedding"))
    }

    /// Length of every vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The model's identifier.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }
}
