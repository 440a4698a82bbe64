//! Decoded blocks of Parquet columns kept for the next request. A page read from a file decodes
//! whole Parquet pages however few of their rows it needs, so a page whose rows are scattered
//! (a commune's establishments, a date range's newest rows) decodes one page per column per row;
//! keeping each block of [`BLOCK_ROWS`] rows decoded lets the next request that touches it
//! gather its rows without reading, as a database's buffer pool does. Byte-bounded, least
//! recently used blocks go first; keyed by the file's identity, so a new version never sees an
//! old one's blocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::ArrayRef;

/// Rows per cached block: one Parquet page of the layout (see `ingest::layout`), so a block
/// read decodes the pages it needs and no others.
pub const BLOCK_ROWS: u64 = 1024;

/// Blocks one read may go through the cache with: a larger read is an export or a scan, which
/// would push out the blocks that pages share, so it reads around the cache.
pub const MAX_BLOCKS: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    file: u64,
    column: u32,
    block: u32,
}

/// The cache, shared by every version's file.
pub struct PageCache {
    blocks: Option<moka::sync::Cache<Key, ArrayRef>>,
    files: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What `/metrics` reports about the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCacheStats {
    pub hits: u64,
    pub misses: u64,
    pub bytes: u64,
    pub budget: u64,
}

impl PageCache {
    /// A cache of at most `budget` bytes of decoded arrays; `0` turns it off.
    pub fn new(budget: u64) -> Arc<Self> {
        let blocks = (budget > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(budget)
                .weigher(|_: &Key, a: &ArrayRef| {
                    u32::try_from(a.get_array_memory_size()).unwrap_or(u32::MAX)
                })
                .build()
        });
        Arc::new(PageCache {
            blocks,
            files: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    pub fn enabled(&self) -> bool {
        self.blocks.is_some()
    }

    /// A new identity for a file opened for reading.
    pub fn file_id(&self) -> u64 {
        self.files.fetch_add(1, Ordering::Relaxed)
    }

    /// Block `block` of column `column` of file `file`, when kept.
    pub fn get(&self, file: u64, column: usize, block: u32) -> Option<ArrayRef> {
        let key = Key {
            file,
            column: u32::try_from(column).ok()?,
            block,
        };
        let found = self.blocks.as_ref()?.get(&key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps a block just read.
    pub fn put(&self, file: u64, column: usize, block: u32, array: ArrayRef) {
        if let (Some(blocks), Ok(column)) = (&self.blocks, u32::try_from(column)) {
            blocks.insert(
                Key {
                    file,
                    column,
                    block,
                },
                array,
            );
        }
    }

    pub fn stats(&self) -> PageCacheStats {
        let (bytes, budget) = match &self.blocks {
            Some(b) => {
                b.run_pending_tasks();
                (b.weighted_size(), b.policy().max_capacity().unwrap_or(0))
            }
            None => (0, 0),
        };
        PageCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes,
            budget,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;

    #[test]
    fn keeps_blocks_within_its_budget_and_apart_by_file() {
        let cache = PageCache::new(64 * 1024);
        let (a, b) = (cache.file_id(), cache.file_id());
        assert_ne!(a, b);
        let block: ArrayRef = Arc::new(Int64Array::from_iter_values(0..1024));
        cache.put(a, 3, 7, Arc::clone(&block));
        assert!(cache.get(a, 3, 7).is_some());
        assert!(cache.get(b, 3, 7).is_none(), "another file's block");
        assert!(cache.get(a, 2, 7).is_none(), "another column's block");
        for i in 0..40 {
            cache.put(b, 0, i, Arc::clone(&block));
        }
        let stats = cache.stats();
        assert!(stats.bytes <= 64 * 1024, "{stats:?}");
        assert_eq!((stats.hits, stats.misses), (1, 2));
        assert!(!PageCache::new(0).enabled());
    }
}
