//! A tokio `JoinSet` that holds at most N tasks: the "spawn while there is
//! room, else collect one" loop of pre-warm, bulk resolve and fetch, once.

use std::future::Future;

use tokio::task::{JoinError, JoinSet};

/// At most `limit` tasks running at once; results collected as they finish.
#[derive(Debug)]
pub struct BoundedSet<T> {
    tasks: JoinSet<T>,
    limit: usize,
}

impl<T: Send + 'static> BoundedSet<T> {
    /// A set that holds at most `limit` tasks (at least one).
    pub fn new(limit: usize) -> Self {
        Self {
            tasks: JoinSet::new(),
            limit: limit.max(1),
        }
    }

    /// Waits until there is room for one more task: when full, waits for one
    /// to finish and returns its result.
    pub async fn make_room(&mut self) -> Option<Result<T, JoinError>> {
        if self.tasks.len() >= self.limit {
            self.tasks.join_next().await
        } else {
            None
        }
    }

    /// Spawns `task` once there is room; returns the result of the task that
    /// finished to make that room, if one had to.
    pub async fn spawn<F>(&mut self, task: F) -> Option<Result<T, JoinError>>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let finished = self.make_room().await;
        self.tasks.spawn(task);
        finished
    }

    /// The next task to finish; `None` when none is left.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.tasks.join_next().await
    }

    /// A task already finished, without waiting.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.tasks.try_join_next()
    }

    /// Tasks not yet collected.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// No task left to collect.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_and_every_result_collected() {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut set = BoundedSet::new(3);
        let mut results = Vec::new();
        for i in 0..10u64 {
            let (running, peak) = (running.clone(), peak.clone());
            let task = async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(10 - i)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                i
            };
            if let Some(done) = set.spawn(task).await {
                results.push(done.unwrap());
            }
            assert!(set.len() <= 3);
        }
        while let Some(done) = set.join_next().await {
            results.push(done.unwrap());
        }
        results.sort_unstable();
        assert_eq!(results, (0..10).collect::<Vec<_>>());
        assert_eq!(peak.load(Ordering::SeqCst), 3);
        assert!(set.is_empty());
    }
}
