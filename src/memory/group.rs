//! Group commit: writes that arrive while an earlier write holds the store's write gate are queued, and whoever
//! takes the gate next does everything queued as one piece of work. Under many callers at once each turn would
//! otherwise be its own LanceDB commit (a manifest, a version and a small fragment apiece, which every later scan
//! pays for), its own duplicate check and its own embedding pass; measured with `bench load`.
//!
//! Reads use it too, with a gate of their own: the first turns of many calls at once each read their caller's
//! memories, and one query for all the callers queued costs about what one query for a single caller does.
//!
//! Written here rather than taken from a crate: it is a queue and a lock, and it must share the store's write
//! gate with the store's other writes (merges, deletes, compaction).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use super::MemoryError;

/// Each queued write's own answer; a failure of the shared work is one message for all.
pub(crate) type Answer<R> = Result<R, Arc<str>>;

/// One queued write and who waits for it.
struct Queued<T, R> {
    item: T,
    done: oneshot::Sender<Answer<R>>,
}

/// Writes of one kind queued for the next holder of a write gate.
pub(crate) struct Group<T, R> {
    gate: Arc<tokio::sync::Mutex<()>>,
    queued: Mutex<Vec<Queued<T, R>>>,
    /// The error a caller gets when the shared work failed.
    failed: fn(String) -> MemoryError,
}

impl<T: Send + 'static, R: Send + 'static> Group<T, R> {
    /// Writes serialised with every other write that holds `gate`.
    pub(crate) fn new(gate: Arc<tokio::sync::Mutex<()>>) -> Self {
        Self { gate, queued: Mutex::default(), failed: MemoryError::Write }
    }

    /// Reads done together, one group at a time.
    pub(crate) fn reads() -> Self {
        Self { gate: Arc::default(), queued: Mutex::default(), failed: MemoryError::Read }
    }

    /// Queues `item` and waits for its answer. Whoever next holds the gate runs `work` on every queued item (in
    /// order) and `work` answers each, in the same order.
    pub(crate) async fn submit<W, F>(&self, item: T, work: W) -> Result<R, MemoryError>
    where
        W: FnOnce(Vec<T>) -> F + Send + 'static,
        F: Future<Output = Vec<Answer<R>>> + Send + 'static,
    {
        let (done, mut answer) = oneshot::channel();
        self.lock_queue().push(Queued { item, done });
        // Wait for the gate only while nobody has taken this write yet: a write done in someone else's group
        // leaves the line at once. (Waiting in line regardless made every holder lead a group of one.)
        let write = tokio::select! {
            biased;
            done = &mut answer => return self.answered(done),
            write = Arc::clone(&self.gate).lock_owned() => write,
        };
        // Empty when an earlier holder of the gate already did this write with its own.
        let queued = std::mem::take(&mut *self.lock_queue());
        if !queued.is_empty() {
            let (items, waiters): (Vec<_>, Vec<_>) = queued.into_iter().map(|q| (q.item, q.done)).unzip();
            // On a task of its own, so a caller that gives up (a closed HTTP request) cannot abandon the others.
            tokio::spawn(async move {
                let _write = write;
                tracing::debug!(writes = waiters.len(), "group commit");
                let mut answers = work(items).await.into_iter();
                for waiter in waiters {
                    let _ = waiter.send(answers.next().unwrap_or_else(|| Err("it got no answer".into())));
                }
            });
        }
        self.answered(answer.await)
    }

    fn answered(&self, done: Result<Answer<R>, oneshot::error::RecvError>) -> Result<R, MemoryError> {
        done.map_err(|_| (self.failed)("it was dropped before it was done".into()))?
            .map_err(|e| (self.failed)(e.to_string()))
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Vec<Queued<T, R>>> {
        // Only whole pushes and takes happen under this lock: a panic elsewhere cannot leave it half-changed.
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Appends to one LanceDB table in groups: each group is one commit.
pub(crate) struct Appends {
    table: lancedb::Table,
    group: Group<arrow_array::RecordBatch, ()>,
}

impl Appends {
    /// Appends to `table`, serialised with every other write that holds `gate`.
    pub(crate) fn new(table: lancedb::Table, gate: Arc<tokio::sync::Mutex<()>>) -> Self {
        Self { table, group: Group::new(gate) }
    }

    /// Appends `batch`; returns once it is committed, with whatever was queued with it.
    #[tracing::instrument(skip_all, name = "store.group_append", fields(rows = batch.num_rows()))]
    pub(crate) async fn append(&self, batch: arrow_array::RecordBatch) -> Result<(), MemoryError> {
        let table = self.table.clone();
        self.group
            .submit(batch, move |batches| async move {
                let n = batches.len();
                let result = table.add(batches).execute().await.map(drop).map_err(|e| Arc::from(e.to_string()));
                vec![result; n]
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Fifty writers at once, each write taking a while: every writer gets its own answer, and the writes are
    /// done in a handful of groups rather than one at a time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_done_in_a_few_groups_and_each_gets_its_answer() {
        let group = Arc::new(Group::<usize, usize>::new(Arc::default()));
        let rounds = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..50)
            .map(|i| {
                let (group, rounds) = (group.clone(), rounds.clone());
                tokio::spawn(async move {
                    group
                        .submit(i, move |items| async move {
                            rounds.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            items.into_iter().map(|i| Ok(i * 10)).collect()
                        })
                        .await
                })
            })
            .collect();
        for (i, writer) in writers.into_iter().enumerate() {
            assert_eq!(writer.await.unwrap().unwrap(), i * 10);
        }
        let rounds = rounds.load(Ordering::SeqCst);
        assert!((1..=5).contains(&rounds), "50 concurrent writes took {rounds} rounds");
    }

    #[tokio::test]
    async fn a_failed_group_fails_each_of_its_writes_with_the_reason() {
        let group = Group::<u8, ()>::new(Arc::default());
        let err = group.submit(1, |items| async move { items.iter().map(|_| Err("disk full".into())).collect() }).await;
        assert!(matches!(err, Err(MemoryError::Write(ref m)) if m == "disk full"), "{err:?}");
    }
}
