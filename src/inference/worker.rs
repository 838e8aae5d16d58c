//! One model on one dedicated thread, fed through a bounded queue with two lanes: the mechanism behind the
//! embedder handle and the local chat model, so CPU-bound inference never runs on the async reactor.
//!
//! A request someone is waiting on now (a search for the reply being composed) is served before any background
//! request (storing what was said), and queued background requests are handed to the model together, so a
//! model that is faster per item in batches (the embedder) can be. Measured with `bench load`.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::InferenceError;

/// How soon an answer is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Someone waits for it (a reply): served before anything in the background lane.
    Now,
    /// Nobody waits for it right now (a memory write): served when the now lane is empty, several at once.
    Background,
}

/// One request and where its answer goes.
struct Job<Req, Resp> {
    request: Req,
    /// The caller awaits this; a caller that gave up (barge-in, timeout) has dropped it.
    reply: oneshot::Sender<Result<Resp, InferenceError>>,
    /// Its place in the bounded queue, given back once it is served.
    room: OwnedSemaphorePermit,
}

/// The two lanes and whether anyone can still send.
struct Lanes<Req, Resp> {
    now: VecDeque<Job<Req, Resp>>,
    background: VecDeque<Job<Req, Resp>>,
    open: bool,
}

/// What the handles and the model thread share.
struct Queue<Req, Resp> {
    lanes: Mutex<Lanes<Req, Resp>>,
    /// Signalled when a job arrives or the last handle goes.
    arrived: Condvar,
    /// Room in the queue: a sender waits (asynchronously) for a permit when it is full.
    room: Arc<Semaphore>,
}

impl<Req, Resp> Queue<Req, Resp> {
    fn lanes(&self) -> MutexGuard<'_, Lanes<Req, Resp>> {
        // The lock guards two queues and a flag, changed only by whole push/pop operations.
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Blocks until there is work: one job from the now lane, else up to `batch` from the background lane;
    /// `None` once every handle is gone and nothing is left.
    fn next(&self, batch: usize) -> Option<Vec<Job<Req, Resp>>> {
        let mut lanes = self.lanes();
        loop {
            if let Some(job) = lanes.now.pop_front() {
                return Some(vec![job]);
            }
            if !lanes.background.is_empty() {
                let n = batch.min(lanes.background.len());
                return Some(lanes.background.drain(..n).collect());
            }
            if !lanes.open {
                return None;
            }
            lanes = self.arrived.wait(lanes).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Closes the queue when the last [`Worker`] clone is dropped, so the model thread ends.
struct Closer<Req, Resp>(Arc<Queue<Req, Resp>>);

impl<Req, Resp> Drop for Closer<Req, Resp> {
    fn drop(&mut self) {
        self.0.lanes().open = false;
        self.0.arrived.notify_all();
    }
}

/// Held by the model thread: when it ends, even by a panic, the queue closes and every waiting caller is told
/// the model is gone instead of waiting forever.
struct Drain<Req, Resp>(Arc<Queue<Req, Resp>>);

impl<Req, Resp> Drop for Drain<Req, Resp> {
    fn drop(&mut self) {
        let mut lanes = self.0.lanes();
        lanes.open = false;
        lanes.now.clear();
        lanes.background.clear();
    }
}

/// Cloneable async access to the model thread.
pub(crate) struct Worker<Req, Resp> {
    queue: Arc<Closer<Req, Resp>>,
    /// What the model does, for error messages ("embedding", "chat").
    kind: &'static str,
}

impl<Req, Resp> Clone for Worker<Req, Resp> {
    fn clone(&self) -> Self {
        Self { queue: self.queue.clone(), kind: self.kind }
    }
}

impl<Req: Send + 'static, Resp: Send + 'static> Worker<Req, Resp> {
    /// Starts thread `tourdesk-<kind>`: `load` runs on it and its second value is returned here once it succeeded
    /// (a failure is returned instead, before anything is served); then `serve` answers the queued requests it is
    /// given, one answer per request in order: a single request from the now lane, or up to `batch` from the
    /// background lane. At most `queue` requests wait at once.
    pub(crate) async fn spawn<M, Ready>(
        kind: &'static str,
        queue: usize,
        batch: usize,
        load: impl FnOnce() -> Result<(M, Ready), InferenceError> + Send + 'static,
        mut serve: impl FnMut(&mut M, Vec<Req>) -> Vec<Result<Resp, InferenceError>> + Send + 'static,
    ) -> Result<(Self, Ready), InferenceError>
    where
        Ready: Send + 'static,
    {
        let shared = Arc::new(Queue {
            lanes: Mutex::new(Lanes { now: VecDeque::new(), background: VecDeque::new(), open: true }),
            arrived: Condvar::new(),
            room: Arc::new(Semaphore::new(queue)),
        });
        let (ready_tx, ready_rx) = oneshot::channel();
        let thread_queue = shared.clone();
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
                let queue = Drain(thread_queue);
                while let Some(mut jobs) = queue.0.next(batch.max(1)) {
                    // Skip work nobody waits for any more.
                    jobs.retain(|job| !job.reply.is_closed());
                    if jobs.is_empty() {
                        continue;
                    }
                    let (requests, replies): (Vec<_>, Vec<_>) =
                        jobs.into_iter().map(|job| (job.request, (job.reply, job.room))).unzip();
                    let mut answers = serve(&mut model, requests).into_iter();
                    for (reply, _room) in replies {
                        let answer = answers.next().unwrap_or(Err(InferenceError::WorkerGone(kind)));
                        let _ = reply.send(answer);
                    }
                }
            })
            .map_err(|e| InferenceError::Invalid(format!("cannot start the {kind} model thread: {e}")))?;
        let ready = ready_rx.await.map_err(|_| InferenceError::WorkerGone(kind))??;
        Ok((Self { queue: Arc::new(Closer(shared)), kind }, ready))
    }

    /// [`Worker::spawn`] for a model that answers one request at a time (generation, transcription).
    pub(crate) async fn spawn_serial<M, Ready>(
        kind: &'static str,
        queue: usize,
        load: impl FnOnce() -> Result<(M, Ready), InferenceError> + Send + 'static,
        mut serve: impl FnMut(&mut M, Req) -> Result<Resp, InferenceError> + Send + 'static,
    ) -> Result<(Self, Ready), InferenceError>
    where
        Ready: Send + 'static,
    {
        let serve = move |model: &mut M, requests: Vec<Req>| requests.into_iter().map(|r| serve(model, r)).collect();
        Self::spawn(kind, queue, 1, load, serve).await
    }

    /// Queues `request` in `lane` (waiting for room when the queue is full) and waits for its answer.
    pub(crate) async fn call(&self, request: Req, lane: Lane) -> Result<Resp, InferenceError> {
        let queue = &self.queue.0;
        let room = queue.room.clone().acquire_owned().await.map_err(|_| InferenceError::WorkerGone(self.kind))?;
        let (reply, answer) = oneshot::channel();
        {
            let mut lanes = queue.lanes();
            if !lanes.open {
                return Err(InferenceError::WorkerGone(self.kind));
            }
            let job = Job { request, reply, room };
            match lane {
                Lane::Now => lanes.now.push_back(job),
                Lane::Background => lanes.background.push_back(job),
            }
        }
        queue.arrived.notify_one();
        answer.await.map_err(|_| InferenceError::WorkerGone(self.kind))?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// The model records each call's requests; the first call waits until the test has queued everything.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_in_the_now_lane_overtakes_queued_background_work_which_is_served_together() {
        let (release, gate) = mpsc::channel::<()>();
        let (busy_tx, busy) = tokio::sync::oneshot::channel::<()>();
        let mut busy_tx = Some(busy_tx);
        let (seen_tx, seen) = mpsc::channel::<Vec<&'static str>>();
        let serve = move |_: &mut (), requests: Vec<&'static str>| {
            if requests == ["first"] {
                busy_tx.take().unwrap().send(()).unwrap();
                gate.recv().unwrap();
            }
            seen_tx.send(requests.clone()).unwrap();
            requests.into_iter().map(Ok).collect()
        };
        let (worker, ()) = Worker::spawn("test", 16, 8, || Ok(((), ())), serve).await.unwrap();
        let first = tokio::spawn({
            let w = worker.clone();
            async move { w.call("first", Lane::Background).await }
        });
        busy.await.unwrap();
        let mut later = Vec::new();
        for (queued, name) in ["b1", "b2", "b3"].into_iter().enumerate() {
            let w = worker.clone();
            later.push(tokio::spawn(async move { w.call(name, Lane::Background).await }));
            // One at a time, so the queue's order is known.
            while worker.queue.0.lanes().background.len() <= queued {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let urgent = tokio::spawn({
            let w = worker.clone();
            async move { w.call("now", Lane::Now).await }
        });
        while worker.queue.0.lanes().now.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), "first");
        assert_eq!(urgent.await.unwrap().unwrap(), "now");
        for (task, name) in later.into_iter().zip(["b1", "b2", "b3"]) {
            assert_eq!(task.await.unwrap().unwrap(), name, "each caller gets its own answer");
        }
        let calls: Vec<Vec<&str>> = seen.try_iter().collect();
        assert_eq!(calls, vec![vec!["first"], vec!["now"], vec!["b1", "b2", "b3"]]);
    }

    #[tokio::test]
    async fn callers_are_told_when_the_model_thread_is_gone() {
        let serve = |_: &mut (), _: Vec<u8>| -> Vec<Result<u8, InferenceError>> { panic!("model crashed") };
        let (worker, ()) = Worker::spawn("test", 4, 1, || Ok(((), ())), serve).await.unwrap();
        assert!(matches!(worker.call(1, Lane::Now).await, Err(InferenceError::WorkerGone("test"))));
        assert!(matches!(worker.call(2, Lane::Background).await, Err(InferenceError::WorkerGone("test"))));
    }
}
