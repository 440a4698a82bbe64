//! A version's posting-list sidecar, read on demand: its table of contents when first needed,
//! a column's values and counts when that column is first filtered, then only the lists asked.

use std::collections::HashMap;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use crate::dataset::manifest::Manifest;
use crate::dataset::postings::{Entry, Head, POSTINGS_FILE, decode, read_contents};
use crate::error::{Error, Result};
use crate::storage::Storage;

use super::ranges::RangeCache;

/// The sidecar of one version.
pub struct Postings {
    store: Arc<dyn ObjectStore>,
    path: Path,
    ranges: Arc<RangeCache>,
    entries: Vec<Entry>,
    heads: tokio::sync::Mutex<HashMap<String, Arc<Head>>>,
}

/// Rows of one value: how many hold it, and the ones asked for.
pub struct Matches {
    pub total: u64,
    pub rows: Vec<u32>,
}

impl Postings {
    /// The sidecar of a version, `None` when it has none (a small table, or written before
    /// sidecars were).
    pub async fn open(
        storage: &Storage,
        manifest: &Manifest,
        ranges: Arc<RangeCache>,
    ) -> Result<Option<Self>> {
        Self::open_named(storage, manifest, POSTINGS_FILE, ranges).await
    }

    /// A sidecar of the same format under another name (the word index).
    pub async fn open_named(
        storage: &Storage,
        manifest: &Manifest,
        name: &str,
        ranges: Arc<RangeCache>,
    ) -> Result<Option<Self>> {
        let Some((store, path, toc)) = contents_of(storage, manifest, name).await? else {
            return Ok(None);
        };
        Ok(Some(Postings {
            store,
            path,
            ranges,
            entries: read_contents(&toc)?,
            heads: tokio::sync::Mutex::new(HashMap::new()),
        }))
    }

    pub fn has(&self, column: &str) -> bool {
        self.entries.iter().any(|e| e.column == column)
    }

    async fn head(&self, entry: &Entry) -> Result<Arc<Head>> {
        let mut heads = self.heads.lock().await;
        if let Some(h) = heads.get(&entry.column) {
            return Ok(Arc::clone(h));
        }
        let head = entry.start..entry.start + entry.head_len();
        let bytes = self.ranges.get(&self.store, &self.path, head).await?;
        let head = Arc::new(Head::read(entry, &bytes)?);
        heads.insert(entry.column.clone(), Arc::clone(&head));
        Ok(head)
    }

    /// The values of a column with lists, ascending, and how many rows hold each.
    pub async fn counts(&self, column: &str) -> Result<Option<(Vec<String>, Vec<u64>)>> {
        let Some(entry) = self.entries.iter().find(|e| e.column == column) else {
            return Ok(None);
        };
        let head = self.head(entry).await?;
        Ok(Some((head.values.clone(), head.counts.clone())))
    }

    /// The rows holding any of `values` in `column`: the total, and the rows (ascending)
    /// after `after` (a cursor's row) or past the first `skip`, at most `take`. `None` when the
    /// column has no lists.
    pub async fn matches(
        &self,
        column: &str,
        values: &[String],
        after: Option<i64>,
        skip: usize,
        take: usize,
    ) -> Result<Option<Matches>> {
        let Some(entry) = self.entries.iter().find(|e| e.column == column) else {
            return Ok(None);
        };
        let head = self.head(entry).await?;
        let mut found: Vec<usize> = values.iter().filter_map(|v| head.find(v)).collect();
        found.sort_unstable();
        found.dedup();
        let total = found.iter().map(|i| head.counts[*i]).sum();
        // A row takes at most 5 bytes: read no more of each list than the page needs (all of
        // it after a cursor, whose position in the list is not known).
        let needed = match after {
            Some(_) => usize::MAX,
            None => skip.saturating_add(take),
        };
        let lists = entry.start + entry.head_len();
        let mut rows = Vec::new();
        for i in found {
            let (from, to) = (lists + head.offsets[i], lists + head.offsets[i + 1]);
            let end = to.min(from.saturating_add((needed as u64).saturating_mul(5)));
            let bytes = self.ranges.get(&self.store, &self.path, from..end).await?;
            rows.extend(decode(&bytes, needed));
        }
        // The values' rows are disjoint: their union in order is their sort.
        rows.sort_unstable();
        let first = match after {
            Some(row) => rows.partition_point(|r| i64::from(*r) <= row),
            None => skip.min(rows.len()),
        };
        let rows = rows[first..].iter().take(take).copied().collect();
        Ok(Some(Matches { total, rows }))
    }
}

/// A version's sidecar file and its table of contents (written last, its length in the last 8
/// bytes); `None` when the version has no such file (a small table, or written before it was).
pub async fn contents_of(
    storage: &Storage,
    manifest: &Manifest,
    name: &str,
) -> Result<Option<(Arc<dyn ObjectStore>, Path, bytes::Bytes)>> {
    let path = storage
        .version_dir(&manifest.id, &manifest.version)
        .clone()
        .join(name);
    let store = Arc::clone(&storage.store);
    let tail = GetOptions {
        range: Some(GetRange::Suffix(8)),
        ..Default::default()
    };
    // The answer to the suffix read carries the object's size too.
    let (tail, size) = match store.get_opts(&path, tail).await {
        Ok(got) => {
            let size = got.meta.size;
            (got.bytes().await?, size)
        }
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let truncated = || Error::internal(format!("the sidecar {name} is truncated"));
    let len = u64::from_le_bytes(tail.as_ref().try_into().map_err(|_| truncated())?);
    let start = size.checked_sub(8 + len).ok_or_else(truncated)?;
    let toc = store.get_range(&path, start..size - 8).await?;
    Ok(Some((store, path, toc)))
}
