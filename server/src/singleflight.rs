//! Deduplicates concurrent work by key: the first caller starts the work on its own
//! task, later callers with the same key wait for that result. The work runs to the
//! end even if every caller gives up, so a cancelled client cannot leave a half-done
//! download behind.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};

/// In-flight work by key.
pub struct SingleFlight<K, V: Clone> {
    // Cancelled at shutdown: work still running then is dropped, and its callers get
    // `on_cancel`'s value. Work that must survive a restart is durable elsewhere (the
    // check queue); downloads restart from scratch.
    cancel: tokio_util::sync::CancellationToken,
    // Who inserts: `run`, for the first caller of a key. Who removes: the spawned task,
    // when the work is done. Callers hold clones of the `Shared` future; dropping all
    // of them does not cancel the spawned task.
    in_flight: Arc<Mutex<HashMap<K, Shared<BoxFuture<'static, V>>>>>,
}

impl<K, V> Default for SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        SingleFlight::new(tokio_util::sync::CancellationToken::new())
    }
}

impl<K, V> SingleFlight<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A new map whose work stops when `cancel` is cancelled.
    pub fn new(cancel: tokio_util::sync::CancellationToken) -> Self {
        SingleFlight { cancel, in_flight: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// Runs `work` unless work for `key` is already in flight, and returns its result.
    /// `on_panic` produces the value callers see if the work panicked or was cancelled
    /// by shutdown.
    pub async fn run<F>(&self, key: K, work: impl FnOnce() -> F, on_panic: fn() -> V) -> V
    where
        F: Future<Output = V> + Send + 'static,
    {
        let shared = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(existing) = in_flight.get(&key) {
                existing.clone()
            } else {
                let future = work();
                let registry = Arc::clone(&self.in_flight);
                let task_key = key.clone();
                let cancel = self.cancel.clone();
                let handle = tokio::spawn(async move {
                    // Removes the key even if the work panics, so the key is never stuck.
                    let _remove = RemoveOnDrop { registry, key: Some(task_key) };
                    tokio::select! {
                        value = future => Some(value),
                        () = cancel.cancelled() => None,
                    }
                });
                let shared = async move { handle.await.ok().flatten().unwrap_or_else(on_panic) }.boxed().shared();
                in_flight.insert(key, shared.clone());
                shared
            }
        };
        shared.await
    }

    /// Number of keys in flight (for metrics).
    pub fn in_flight(&self) -> usize {
        self.in_flight.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }
}

/// Removes a key from the in-flight map when dropped.
struct RemoveOnDrop<K: Eq + Hash, V: Clone> {
    registry: Arc<Mutex<HashMap<K, Shared<BoxFuture<'static, V>>>>>,
    key: Option<K>,
}

impl<K: Eq + Hash, V: Clone> Drop for RemoveOnDrop<K, V> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&key);
        }
    }
}
