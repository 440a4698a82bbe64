//! The result cache: response bodies keyed by dataset, version, normalised query and format,
//! weighted by their size; concurrent misses of one key are computed once.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct ResponseCache {
    inner: Option<moka::future::Cache<String, Bytes>>,
}

impl ResponseCache {
    /// A cache holding at most `budget` bytes of bodies; `0` turns it off.
    pub fn new(budget: u64) -> Self {
        let inner = (budget > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(budget)
                .weigher(|k: &String, v: &Bytes| (k.len() + v.len()).try_into().unwrap_or(u32::MAX))
                .build()
        });
        ResponseCache { inner }
    }

    /// The cached body for `key`, or the one `compute` produces (stored on success).
    pub async fn get_or_compute<F>(&self, key: String, compute: F) -> Result<Bytes>
    where
        F: Future<Output = Result<Bytes>> + Send,
    {
        match &self.inner {
            None => compute.await,
            Some(cache) => cache.try_get_with(key, compute).await.map_err(unshare),
        }
    }
}

/// Errors of a shared computation arrive behind an `Arc`; each waiter gets its own copy with
/// the same status and message.
fn unshare(e: Arc<Error>) -> Error {
    match Arc::try_unwrap(e) {
        Ok(e) => e,
        Err(shared) => match &*shared {
            Error::BadRequest(m) => Error::BadRequest(m.clone()),
            Error::NotFound(m) => Error::NotFound(m.clone()),
            Error::TooLarge(m) => Error::TooLarge(m.clone()),
            Error::Overloaded(m) => Error::Overloaded(m.clone()),
            Error::Unavailable(m) => Error::Unavailable(m.clone()),
            other => Error::Internal(other.to_string()),
        },
    }
}
