//! Runs an [`Embedder`] on its own thread behind a cloneable async handle, so embedding never blocks the reactor.

use std::sync::Arc;

use tracing::{info_span, Instrument};

use super::worker::{Lane, Worker};
use super::{Embedder, InferenceError};

/// Queued requests before callers wait; bounded so a flood of writes slows its senders instead of growing memory.
const QUEUE: usize = 64;
/// Background requests (mostly one short text each) embedded in one forward pass: enough to share the pass,
/// few enough that a search arriving meanwhile waits one short batch, not a queue of them.
const BATCH: usize = 16;

/// Async, cloneable access to one embedding model running on a dedicated thread.
#[derive(Clone)]
pub struct EmbedderHandle {
    worker: Worker<Vec<String>, Vec<Vec<f32>>>,
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
        let load = move || {
            let model = load()?;
            model.embed(&["warm-up".to_string()])?;
            let ready = (model.dim(), model.model_id().to_string());
            Ok((model, ready))
        };
        // One text (a search query) runs on a one-thread pool: its small matrices gain almost nothing from the
        // second core (7.8 vs 7.3 ms), which meanwhile serves the store read running beside it; measured with
        // `bench memory`: search p95 10.6 ms instead of 12.7 at 20,000 memories. Batches keep every core (background
        // batches on the one thread made `bench load` at 200 sessions no faster to answer, and its writes slower).
        let single = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "embedding-1".into())
            .build()
            .map_err(|e| InferenceError::Invalid(format!("cannot start the query embedding thread: {e}")))?;
        let serve = move |model: &mut E, requests: Vec<Vec<String>>| {
            let one_thread = requests.iter().map(Vec::len).sum::<usize>() == 1;
            // Moved in as `&mut` (Send for a Send model), not shared as `&`.
            let model: &mut E = model;
            let mut run = move || embed_requests(model, &requests);
            if one_thread {
                single.install(run)
            } else {
                run()
            }
        };
        let (worker, (dim, model_id)) = Worker::spawn("embedding", QUEUE, BATCH, load, serve).await?;
        Ok(Self { worker, dim, model_id: model_id.into() })
    }

    /// Embeds `texts` on the model thread, before any background work queued there: for what a reply waits on.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, InferenceError> {
        self.call(texts, Lane::Now).await
    }

    /// Embeds `texts` when nothing more urgent is queued, in one forward pass with other background requests: for
    /// writes nobody is waiting on to answer a caller.
    pub async fn embed_background(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, InferenceError> {
        self.call(texts, Lane::Background).await
    }

    /// Embeds one text, for a reply ([`EmbedderHandle::embed`]).
    pub async fn embed_one(&self, text: &str) -> Result<Vec<f32>, InferenceError> {
        self.call_one(text, Lane::Now).await
    }

    /// Embeds one text in the background ([`EmbedderHandle::embed_background`]).
    pub async fn embed_one_background(&self, text: &str) -> Result<Vec<f32>, InferenceError> {
        self.call_one(text, Lane::Background).await
    }

    async fn call(&self, texts: Vec<String>, lane: Lane) -> Result<Vec<Vec<f32>>, InferenceError> {
        let span = info_span!("embed", n = texts.len(), model = %self.model_id, lane = ?lane);
        self.worker.call(texts, lane).instrument(span).await
    }

    async fn call_one(&self, text: &str, lane: Lane) -> Result<Vec<f32>, InferenceError> {
        self.call(vec![text.to_string()], lane).await?.pop().ok_or(InferenceError::WorkerGone("embedding"))
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

/// Embeds several requests in one forward pass and splits the vectors back per request. Should the pass fail,
/// each request is tried alone so that each gets its own answer.
fn embed_requests<E: Embedder>(model: &mut E, requests: &[Vec<String>]) -> Vec<Result<Vec<Vec<f32>>, InferenceError>> {
    if let [texts] = requests {
        return vec![model.embed(texts)];
    }
    match model.embed(&requests.concat()) {
        Ok(vectors) => {
            let mut vectors = vectors.into_iter();
            requests.iter().map(|texts| Ok(vectors.by_ref().take(texts.len()).collect())).collect()
        }
        Err(_) => requests.iter().map(|texts| model.embed(texts)).collect(),
    }
}
