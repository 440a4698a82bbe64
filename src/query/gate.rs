//! The bound on queries computed at once: a query waits a short while for a turn, then is shed
//! with `503` and `Retry-After`, so that overload is refused quickly instead of queued until
//! every request is late. Answers from the result cache never take a turn, nor do `/health`
//! and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// Turns for queries: `max` at once, a wait of `wait` for one.
pub struct Gate {
    turns: Arc<Semaphore>,
    max: usize,
    wait: Duration,
    shed: AtomicU64,
    waited: AtomicU64,
}

/// A query's turn, given back when dropped.
pub type Turn = OwnedSemaphorePermit;

impl Gate {
    pub fn new(max: usize, wait: Duration) -> Self {
        Gate {
            turns: Arc::new(Semaphore::new(max.max(1))),
            max: max.max(1),
            wait,
            shed: AtomicU64::new(0),
            waited: AtomicU64::new(0),
        }
    }

    /// A turn now, or within the wait; else the query is shed.
    pub async fn enter(&self) -> Result<Turn> {
        if let Ok(turn) = Arc::clone(&self.turns).try_acquire_owned() {
            return Ok(turn);
        }
        self.waited.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(self.wait, Arc::clone(&self.turns).acquire_owned()).await {
            Ok(Ok(turn)) => Ok(turn),
            // The semaphore is never closed; a timeout is the only way here.
            _ => {
                self.shed.fetch_add(1, Ordering::Relaxed);
                Err(Error::Shed(format!(
                    "the server is computing {} queries, its most at once, and none finished within {} ms; try again shortly",
                    self.max,
                    self.wait.as_millis()
                )))
            }
        }
    }

    /// Queries computing now.
    pub fn running(&self) -> usize {
        self.max - self.turns.available_permits()
    }

    /// Queries that had to wait for a turn, and queries shed, since the start.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.waited.load(Ordering::Relaxed),
            self.shed.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_briefly_then_sheds_and_frees_turns_when_dropped() {
        let gate = Arc::new(Gate::new(2, Duration::from_millis(20)));
        let a = gate.enter().await.unwrap();
        let _b = gate.enter().await.unwrap();
        assert_eq!(gate.running(), 2);
        let started = std::time::Instant::now();
        let e = gate.enter().await.unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(e.status(), axum::http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.retry_after(), Some(1));
        assert_eq!(gate.counts(), (1, 1));
        // A turn given back within the wait goes to the one waiting.
        let g = Arc::clone(&gate);
        let waiting = tokio::spawn(async move { g.enter().await.map(drop).is_ok() });
        while gate.counts().0 < 2 {
            tokio::task::yield_now().await;
        }
        drop(a);
        assert!(waiting.await.unwrap());
        assert_eq!(gate.counts(), (2, 1));
    }
}
