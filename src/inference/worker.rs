//! One model on one dedicated thread, fed through a bounded queue: the mechanism behind the embedder handle and
//! the local chat model, so CPU-bound inference never runs on the async reactor.

use tokio::sync::{mpsc, oneshot};

use super::InferenceError;

/// One request and where its answer goes.
struct Job<Req, Resp> {
    request: Req,
    /// The caller awaits this; a caller that gave up (barge-in, timeout) has dropped it.
    reply: oneshot::Sender<Result<Resp, InferenceError>>,
}

/// Cloneable async access to the model thread; requests are served one at a time, in order.
pub(crate) struct Worker<Req, Resp> {
    jobs: mpsc::Sender<Job<Req, Resp>>,
    /// What the model does, for error messages ("embedding", "chat").
    kind: &'static str,
}

impl<Req, Resp> Clone for Worker<Req, Resp> {
    fn clone(&self) -> Self {
        Self { jobs: self.jobs.clone(), kind: self.kind }
    }
}

impl<Req: Send + 'static, Resp: Send + 'static> Worker<Req, Resp> {
    /// Starts thread `tourdesk-<kind>`: `load` runs on it and its second value is returned here once it succeeded
    /// (a failure is returned instead, before anything is served); then `serve` answers each queued request.
    pub(crate) async fn spawn<M, Ready>(
        kind: &'static str,
        queue: usize,
        load: impl FnOnce() -> Result<(M, Ready), InferenceError> + Send + 'static,
        mut serve: impl FnMut(&mut M, Req) -> Result<Resp, InferenceError> + Send + 'static,
    ) -> Result<(Self, Ready), InferenceError>
    where
        Ready: Send + 'static,
    {
        let (jobs, mut rx) = mpsc::channel::<Job<Req, Resp>>(queue);
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name(format!("tourdesk-{kind}"))
            .spawn(move || {
                let mut model = match load() {
                    Ok((model, ready)) => {
                        let _ = ready_tx.send(Ok(ready));
                        model
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Some(job) = rx.blocking_recv() {
                    // Skip work nobody waits for any more.
                    if job.reply.is_closed() {
                        continue;
                    }
                    let _ = job.reply.send(serve(&mut model, job.request));
                }
            })
            .map_err(|e| InferenceError::Invalid(format!("cannot start the {kind} model thread: {e}")))?;
        let ready = ready_rx.await.map_err(|_| InferenceError::WorkerGone(kind))??;
        Ok((Self { jobs, kind }, ready))
    }

    /// Queues `request` and waits for its answer.
    pub(crate) async fn call(&self, request: Req) -> Result<Resp, InferenceError> {
        let (reply, rx) = oneshot::channel();
        self.jobs.send(Job { request, reply }).await.map_err(|_| InferenceError::WorkerGone(self.kind))?;
        rx.await.map_err(|_| InferenceError::WorkerGone(self.kind))?
    }
}
