//! Byte ranges of a version's sidecar files (posting lists, word lists, blocks of an order)
//! kept in memory once read, weighted by their size within a budget: on object storage each
//! read is a request, and a sorted or filtered page asks for the same few ranges again and
//! again. Versions are immutable, so a range once read stays true.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::Result;

/// The shared cache of sidecar ranges, keyed by file and range.
pub struct RangeCache {
    ranges: moka::sync::Cache<(Path, u64, u64), Bytes>,
}

impl RangeCache {
    /// A cache of at most `budget` bytes (0 keeps nothing).
    pub fn new(budget: u64) -> Arc<Self> {
        let ranges = moka::sync::Cache::builder()
            .max_capacity(budget)
            .weigher(|_, b: &Bytes| u32::try_from(b.len()).unwrap_or(u32::MAX))
            .build();
        Arc::new(RangeCache { ranges })
    }

    /// The bytes of `range` of the file at `path`, read from `store` unless kept.
    pub async fn get(
        &self,
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        range: Range<u64>,
    ) -> Result<Bytes> {
        let key = (path.clone(), range.start, range.end);
        if let Some(bytes) = self.ranges.get(&key) {
            return Ok(bytes);
        }
        let bytes = store.get_range(path, range).await?;
        self.ranges.insert(key, bytes.clone());
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_range_read_once_is_not_asked_of_the_store_again() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let path = Path::from("v/postings.bin");
        store
            .put(&path, Bytes::from("0123456789").into())
            .await
            .unwrap();
        let kept = RangeCache::new(1 << 20);
        let none = RangeCache::new(0);
        assert_eq!(kept.get(&store, &path, 2..5).await.unwrap(), "234");
        assert_eq!(none.get(&store, &path, 2..5).await.unwrap(), "234");
        // Gone from the store: the kept range still answers, the other asks and fails.
        store.delete(&path).await.unwrap();
        assert_eq!(kept.get(&store, &path, 2..5).await.unwrap(), "234");
        none.ranges.run_pending_tasks();
        assert!(none.get(&store, &path, 2..5).await.is_err());
        assert!(
            kept.get(&store, &path, 0..1).await.is_err(),
            "another range is read"
        );
    }
}
