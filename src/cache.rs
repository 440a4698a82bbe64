//! The result cache: response bodies keyed by dataset, version, normalised query and format,
//! weighted by their size; concurrent misses of one key are computed once.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct ResponseCache {
    inner: Option<moka::future::Cache<String, Bytes>>,
    counters: Arc<Counters>,
}

/// What `/metrics` reports about the cache.
#[derive(Default)]
pub struct Counters {
    lookups: AtomicU64,
    /// Lookups whose body had to be computed (a waiter on a computation under way is a hit).
    misses: AtomicU64,
    evictions: AtomicU64,
    /// Hits answered before routing, by URL and host (see `http::replay`).
    replays: AtomicU64,
}

/// A snapshot of the cache's counters and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub lookups: u64,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub replays: u64,
    pub entries: u64,
    pub bytes: u64,
    pub budget: u64,
}

impl ResponseCache {
    /// A cache holding at most `budget` bytes of bodies; `0` turns it off.
    pub fn new(budget: u64) -> Self {
        let counters = Arc::new(Counters::default());
        let evicted = Arc::clone(&counters);
        let inner = (budget > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(budget)
                .weigher(|k: &String, v: &Bytes| (k.len() + v.len()).try_into().unwrap_or(u32::MAX))
                .eviction_listener(move |_, _, cause| {
                    if cause.was_evicted() {
                        evicted.evictions.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .build()
        });
        ResponseCache { inner, counters }
    }

    pub async fn stats(&self) -> CacheStats {
        let c = &self.counters;
        let (lookups, misses) = (
            c.lookups.load(Ordering::Relaxed),
            c.misses.load(Ordering::Relaxed),
        );
        let (entries, bytes, budget) = match &self.inner {
            Some(cache) => {
                cache.run_pending_tasks().await;
                (
                    cache.entry_count(),
                    cache.weighted_size(),
                    cache.policy().max_capacity().unwrap_or(0),
                )
            }
            None => (0, 0, 0),
        };
        CacheStats {
            lookups,
            hits: lookups.saturating_sub(misses),
            misses,
            evictions: c.evictions.load(Ordering::Relaxed),
            replays: c.replays.load(Ordering::Relaxed),
            entries,
            bytes,
            budget,
        }
    }

    /// The largest body a streamed export may leave in the cache: an eighth of the budget, so a
    /// few big exports cannot push out every page (`0` when the cache is off).
    pub fn entry_limit(&self) -> usize {
        self.inner.as_ref().map_or(0, |c| {
            let budget = c.policy().max_capacity().unwrap_or(0) / 8;
            usize::try_from(budget.min(u64::from(u32::MAX))).unwrap_or(usize::MAX)
        })
    }

    /// The cached body for `key`, if any (a lookup; a miss is counted when the caller then
    /// computes the body and offers it with [`Self::insert`]).
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        let cache = self.inner.as_ref()?;
        self.counters.lookups.fetch_add(1, Ordering::Relaxed);
        let hit = cache.get(key).await;
        if hit.is_none() {
            self.counters.misses.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// The cached body for `key` if there is one, counted as a lookup and a hit; nothing is
    /// counted on a miss (the caller then asks through [`Self::get`] or
    /// [`Self::get_or_compute`], which counts it).
    pub async fn peek(&self, key: &str) -> Option<Bytes> {
        let hit = self.inner.as_ref()?.get(key).await;
        if hit.is_some() {
            self.counters.lookups.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Counts a hit answered before routing.
    pub fn count_replay(&self) {
        self.counters.replays.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether bodies are kept at all.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Stores a body computed after a [`Self::get`] miss.
    pub async fn insert(&self, key: String, body: Bytes) {
        if let Some(cache) = &self.inner {
            cache.insert(key, body).await;
        }
    }

    /// The cached body for `key`, or the one `compute` produces (stored on success).
    pub async fn get_or_compute<F>(&self, key: String, compute: F) -> Result<Bytes>
    where
        F: Future<Output = Result<Bytes>> + Send,
    {
        match &self.inner {
            None => compute.await,
            Some(cache) => {
                self.counters.lookups.fetch_add(1, Ordering::Relaxed);
                let counters = Arc::clone(&self.counters);
                let counted = async move {
                    counters.misses.fetch_add(1, Ordering::Relaxed);
                    compute.await
                };
                cache.try_get_with(key, counted).await.map_err(unshare)
            }
        }
    }
}

/// Errors of a shared computation arrive behind an `Arc`; the only waiter gets the error
/// itself, several share it (with its status and message).
fn unshare(e: Arc<Error>) -> Error {
    Arc::try_unwrap(e).unwrap_or_else(Error::Shared)
}
