//! Pages in file order with no filter, read straight from a version's Parquet file by row-group
//! arithmetic: row numbers are positions in the file, so page `p` is rows `(p-1)·size ..`, found
//! in the row groups' row counts and read through a row selection that touches only the pages
//! holding them. The file's footer and page index are read once per version and kept; pages of
//! a few blocks go through the [`PageCache`] of decoded blocks.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array};
use arrow::compute::interleave;
use arrow::datatypes::Int64Type;
use arrow::datatypes::SchemaRef;
use datafusion::common::DFSchema;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::physical_expr::create_physical_expr;

use arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, RowSelection};
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use parquet::file::metadata::PageIndexPolicy;

use super::page_cache::{BLOCK_ROWS, MAX_BLOCKS, PageCache};
use super::plan::filter_expr;
use super::prune;
use super::request::Filter;
use super::resident::passes;
use crate::dataset::manifest::Manifest;
use crate::dataset::schema::ROW_COLUMN;
use crate::error::{Error, Result};
use crate::storage::{FileReader, Storage};

/// Rows per batch when reading many rows.
const READ_BATCH: usize = 8192;

/// A version's Parquet file, its metadata in memory.
pub struct FileRows {
    file: FileReader,
    meta: ArrowReaderMetadata,
    /// First row of each row group, and the total after the last.
    starts: Vec<u64>,
    /// Page statistics of the columns filtered so far.
    stats: prune::StatsCache,
    /// Decoded blocks, shared with every file; `id` is this file's identity there.
    cache: Arc<PageCache>,
    id: u64,
}

impl FileRows {
    /// Reads the footer and page index of a version stored as one file (`None` otherwise).
    pub async fn open(
        storage: &Storage,
        manifest: &Manifest,
        cache: &Arc<PageCache>,
    ) -> Result<Option<Self>> {
        let [file] = manifest.files.as_slice() else {
            return Ok(None);
        };
        let path = storage
            .version_dir(&manifest.id, &manifest.version)
            .clone()
            .join(file.as_str());
        let store = Arc::clone(&storage.store);
        let size = store.head(&path).await?.size;
        let mut file = FileReader { store, path, size };
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load_async(&mut file, options).await?;
        let mut starts = vec![0u64];
        for rg in meta.metadata().row_groups() {
            let last = *starts.last().unwrap_or(&0);
            starts.push(last + rg.num_rows() as u64);
        }
        if starts.last() != Some(&manifest.rows) {
            return Err(Error::internal(format!(
                "dataset `{}`: the Parquet file holds {} rows, the manifest says {}",
                manifest.id,
                starts.last().unwrap_or(&0),
                manifest.rows
            )));
        }
        Ok(Some(FileRows {
            file,
            meta,
            starts,
            stats: Default::default(),
            id: cache.file_id(),
            cache: Arc::clone(cache),
        }))
    }

    /// Rows `start .. start + len` (fewer at the end of the file) with the named columns in
    /// this order and the row number last; `None` when the file's row numbers are not its
    /// positions (then the caller plans the query instead).
    pub async fn rows(
        &self,
        start: u64,
        len: usize,
        columns: &[String],
    ) -> Result<Option<Vec<RecordBatch>>> {
        let total = *self.starts.last().unwrap_or(&0);
        let end = total.min(start.saturating_add(len as u64));
        if start >= end {
            return Ok(Some(Vec::new()));
        }
        let blocks = (end - 1) / BLOCK_ROWS - start / BLOCK_ROWS + 1;
        if let (Ok(last), true) = (u32::try_from(end - 1), blocks <= MAX_BLOCKS as u64) {
            let positions: Vec<u32> = (start as u32..=last).collect();
            match self.gather(&positions, columns).await? {
                Through::Cache(batch) => return Ok(Some(vec![batch])),
                Through::Unpositioned => return Ok(None),
                Through::Around => {}
            }
        }
        let batches = self
            .read(std::slice::from_ref(&(start..end)), columns, len)
            .await?;
        let first_row = batches.first().and_then(|b| row_at(b, 0));
        Ok((first_row == Some(start as i64)).then_some(batches))
    }

    /// The rows at these positions (strictly ascending, else `None`), as [`Self::rows`] gives
    /// them.
    pub async fn rows_at(
        &self,
        positions: &[u32],
        columns: &[String],
    ) -> Result<Option<Vec<RecordBatch>>> {
        let total = *self.starts.last().unwrap_or(&0);
        let ascending = positions.windows(2).all(|w| w[0] < w[1]);
        if !ascending || positions.iter().any(|p| u64::from(*p) >= total) {
            return Ok(None);
        }
        let ranges: Vec<std::ops::Range<u64>> = positions
            .iter()
            .map(|p| u64::from(*p)..u64::from(*p) + 1)
            .collect();
        if ranges.is_empty() {
            return Ok(Some(Vec::new()));
        }
        match self.gather(positions, columns).await? {
            Through::Cache(batch) => return Ok(Some(vec![batch])),
            Through::Unpositioned => return Ok(None),
            Through::Around => {}
        }
        let batches = self.read(&ranges, columns, positions.len()).await?;
        let mut read = Vec::with_capacity(positions.len());
        for b in &batches {
            read.extend((0..b.num_rows()).filter_map(|i| row_at(b, i)));
        }
        let same = read.len() == positions.len()
            && read.iter().zip(positions).all(|(r, p)| *r == i64::from(*p));
        Ok(same.then_some(batches))
    }

    /// Rows in the file.
    pub fn total(&self) -> u64 {
        *self.starts.last().unwrap_or(&0)
    }

    /// Rows whose pages may hold matches of the filters, by the page index (see
    /// [`prune::candidates`]).
    pub fn candidates(&self, filters: &[Filter]) -> Result<Option<Vec<Range<u64>>>> {
        prune::candidates(&self.meta, &self.starts, &self.stats, filters)
    }

    /// The positions of the rows in `ranges` (ascending, disjoint) passing every filter,
    /// ascending: only the filter columns are read, over those rows only.
    pub async fn matching(&self, ranges: &[Range<u64>], filters: &[Filter]) -> Result<Vec<u32>> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let mut columns: Vec<String> = filters.iter().map(|f| f.column.clone()).collect();
        columns.sort_unstable();
        columns.dedup();
        let batches = match self.filter_blocks(ranges, &columns).await? {
            Some(kept) => kept,
            None => self.read(ranges, &columns, READ_BATCH).await?,
        };
        let Some(first) = batches.first() else {
            return Ok(Vec::new());
        };
        let schema = DFSchema::try_from(first.schema().as_ref().clone())?;
        let props = ExecutionProps::new();
        let ctx = PhysicalPlanningContext::default();
        let tests = filters
            .iter()
            .map(|f| create_physical_expr(&filter_expr(f), &schema, &props, &ctx))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut positions = Vec::new();
        for b in &batches {
            let mut mask: Option<BooleanArray> = None;
            for t in &tests {
                let m = passes(t, b)?;
                mask = Some(match mask {
                    None => m,
                    Some(prev) => arrow::compute::and(&prev, &m)?,
                });
            }
            let rows = b.column(b.num_columns() - 1);
            let kept = match &mask {
                Some(m) => arrow::compute::filter(rows, m)?,
                None => Arc::clone(rows),
            };
            let kept = kept
                .as_primitive_opt::<Int64Type>()
                .ok_or_else(|| Error::internal("the row number column is not a 64-bit integer"))?;
            for r in kept.values() {
                positions.push(u32::try_from(*r).map_err(|_| {
                    Error::internal(format!("row number {r} beyond what positions hold"))
                })?);
            }
        }
        Ok(positions)
    }

    /// The rows at `positions` (ascending) gathered from decoded blocks, the blocks not kept
    /// read and kept, with the named columns and the row number last.
    async fn gather(&self, positions: &[u32], columns: &[String]) -> Result<Through<RecordBatch>> {
        let mut blocks: Vec<u32> = positions.iter().map(|p| p / BLOCK_ROWS as u32).collect();
        blocks.dedup();
        let (indices, projected) = self.projection(columns)?;
        let arrays = match self.blocks(&blocks, &indices).await? {
            Through::Cache(arrays) => arrays,
            Through::Around => return Ok(Through::Around),
            Through::Unpositioned => return Ok(Through::Unpositioned),
        };
        let mut at = Vec::with_capacity(positions.len());
        let mut b = 0;
        for p in positions {
            let block = p / BLOCK_ROWS as u32;
            while blocks[b] != block {
                b += 1;
            }
            at.push((b, (p - block * BLOCK_ROWS as u32) as usize));
        }
        let mut out = Vec::with_capacity(columns.len() + 1);
        for j in 0..indices.len() {
            let parts: Vec<&dyn Array> = arrays.iter().map(|block| block[j].as_ref()).collect();
            out.push(interleave(&parts, &at)?);
        }
        let rows = positions.iter().map(|p| i64::from(*p));
        out.push(Arc::new(Int64Array::from_iter_values(rows)));
        Ok(Through::Cache(RecordBatch::try_new(projected, out)?))
    }

    /// The filter columns over the blocks holding `ranges`, one batch per block with the row
    /// number last; `None` when they are too many to go through the cache. A block's rows
    /// outside the ranges are in pages the index ruled out, so no filter passes them.
    async fn filter_blocks(
        &self,
        ranges: &[Range<u64>],
        columns: &[String],
    ) -> Result<Option<Vec<RecordBatch>>> {
        let mut blocks: Vec<u32> = Vec::new();
        for r in ranges {
            for b in r.start / BLOCK_ROWS..=(r.end - 1) / BLOCK_ROWS {
                let Ok(b) = u32::try_from(b) else {
                    return Ok(None);
                };
                if blocks.last() != Some(&b) {
                    blocks.push(b);
                }
            }
            if blocks.len() > MAX_BLOCKS {
                return Ok(None);
            }
        }
        let (indices, projected) = self.projection(columns)?;
        let Through::Cache(arrays) = self.blocks(&blocks, &indices).await? else {
            return Ok(None);
        };
        let mut batches = Vec::with_capacity(blocks.len());
        for (b, mut columns) in blocks.iter().zip(arrays) {
            let r = self.block_range(*b);
            columns.push(Arc::new(Int64Array::from_iter_values(
                r.start as i64..r.end as i64,
            )));
            batches.push(RecordBatch::try_new(Arc::clone(&projected), columns)?);
        }
        Ok(Some(batches))
    }

    /// Whole blocks of the columns at schema positions `indices`, in that order per block: the
    /// kept ones from the cache, the others read in one pass and kept.
    async fn blocks(
        &self,
        blocks: &[u32],
        indices: &[usize],
    ) -> Result<Through<Vec<Vec<ArrayRef>>>> {
        // With no column read, nothing would show whether row numbers are positions.
        if !self.cache.enabled() || blocks.len() > MAX_BLOCKS || indices.is_empty() {
            return Ok(Through::Around);
        }
        let mut got: Vec<Vec<Option<ArrayRef>>> = blocks
            .iter()
            .map(|b| {
                indices
                    .iter()
                    .map(|c| self.cache.get(self.id, *c, *b))
                    .collect()
            })
            .collect();
        let short: Vec<usize> = (0..blocks.len())
            .filter(|i| got[*i].iter().any(Option::is_none))
            .collect();
        if !short.is_empty() {
            let lacking: Vec<usize> = (0..indices.len())
                .filter(|j| short.iter().any(|i| got[*i][*j].is_none()))
                .collect();
            let schema = self.meta.schema();
            let names: Vec<String> = lacking
                .iter()
                .map(|j| schema.field(indices[*j]).name().clone())
                .collect();
            let ranges: Vec<Range<u64>> =
                short.iter().map(|i| self.block_range(blocks[*i])).collect();
            let read = self.read(&ranges, &names, BLOCK_ROWS as usize).await?;
            let split = split(&read, ranges.iter().map(|r| (r.end - r.start) as usize))?;
            for ((i, r), arrays) in short.iter().zip(&ranges).zip(split) {
                let Some((row, values)) = arrays.split_last() else {
                    return Err(Error::internal("a block read without its row numbers"));
                };
                if !positioned(row, r) {
                    return Ok(Through::Unpositioned);
                }
                for (j, a) in lacking.iter().zip(values) {
                    self.cache
                        .put(self.id, indices[*j], blocks[*i], Arc::clone(a));
                    got[*i][*j] = Some(Arc::clone(a));
                }
            }
        }
        let all = got
            .into_iter()
            .map(|b| b.into_iter().collect::<Option<Vec<_>>>());
        Ok(Through::Cache(all.collect::<Option<Vec<_>>>().ok_or_else(
            || Error::internal("a block neither kept nor read"),
        )?))
    }

    /// The schema positions of the named columns, and the schema of those columns with the
    /// row number last (as [`Self::read`] gives them).
    fn projection(&self, columns: &[String]) -> Result<(Vec<usize>, SchemaRef)> {
        let schema = self.meta.schema();
        let indices = columns
            .iter()
            .map(|c| schema.index_of(c))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let with_row = [indices.as_slice(), &[schema.index_of(ROW_COLUMN)?]].concat();
        Ok((indices, Arc::new(schema.project(&with_row)?)))
    }

    /// The rows of block `b`.
    fn block_range(&self, b: u32) -> Range<u64> {
        let start = u64::from(b) * BLOCK_ROWS;
        start..(start + BLOCK_ROWS).min(self.total())
    }

    /// Reads ascending, disjoint row ranges: only the row groups holding them, and within
    /// those only their pages.
    async fn read(
        &self,
        ranges: &[std::ops::Range<u64>],
        columns: &[String],
        batch: usize,
    ) -> Result<Vec<RecordBatch>> {
        let group_of = |row: u64| self.starts.partition_point(|s| *s <= row) - 1;
        let mut groups: Vec<usize> = Vec::new();
        for r in ranges {
            for g in group_of(r.start)..=group_of(r.end - 1) {
                if groups.last() != Some(&g) {
                    groups.push(g);
                }
            }
        }
        // Rows are counted within the selected row groups laid end to end.
        let mut before = Vec::with_capacity(groups.len());
        let mut selected = 0u64;
        for g in &groups {
            before.push((self.starts[*g], selected));
            selected += self.starts[g + 1] - self.starts[*g];
        }
        let local = |row: u64| {
            let i = before.partition_point(|(start, _)| *start <= row) - 1;
            (row - before[i].0 + before[i].1) as usize
        };
        let wanted = ranges.iter().map(|r| local(r.start)..local(r.end - 1) + 1);
        let selection = RowSelection::from_consecutive_ranges(wanted, selected as usize);
        let schema = self.meta.schema();
        let mut indices = Vec::with_capacity(columns.len() + 1);
        for name in columns.iter().map(String::as_str).chain([ROW_COLUMN]) {
            indices.push(schema.index_of(name)?);
        }
        indices.sort_unstable();
        let mask =
            ProjectionMask::roots(self.meta.metadata().file_metadata().schema_descr(), indices);
        let stream = ParquetRecordBatchStreamBuilder::new_with_metadata(
            self.file.clone(),
            self.meta.clone(),
        )
        .with_row_groups(groups)
        .with_row_selection(selection)
        .with_projection(mask)
        .with_batch_size(batch.max(1))
        .build()?;
        let read: Vec<RecordBatch> = stream.try_collect().await?;
        // The mask reads columns in file order: put them back in the order asked.
        let Some(first) = read.first() else {
            return Ok(read);
        };
        let read_schema = first.schema();
        let order: Vec<usize> = (columns.iter().map(String::as_str).chain([ROW_COLUMN]))
            .map(|n| read_schema.index_of(n))
            .collect::<std::result::Result<_, _>>()?;
        Ok(read
            .iter()
            .map(|b| b.project(&order))
            .collect::<std::result::Result<_, _>>()?)
    }
}

/// How a read went through the page cache.
enum Through<T> {
    /// Gathered from decoded blocks.
    Cache(T),
    /// Too many blocks, or the cache is off: read around it.
    Around,
    /// The file's row numbers are not its positions (a sorted layout).
    Unpositioned,
}

/// The columns of `read` (batches in row order) cut into consecutive runs of `lens` rows; a
/// run that one batch holds is that batch's arrays, not a copy.
fn split(read: &[RecordBatch], lens: impl Iterator<Item = usize>) -> Result<Vec<Vec<ArrayRef>>> {
    let (mut b, mut offset) = (0, 0);
    let mut runs = Vec::new();
    for len in lens {
        let mut parts = Vec::new();
        let mut need = len;
        while need > 0 {
            let batch = read
                .get(b)
                .ok_or_else(|| Error::internal("a read gave fewer rows than its blocks hold"))?;
            let n = (batch.num_rows() - offset).min(need);
            parts.push(batch.slice(offset, n));
            (offset, need) = (offset + n, need - n);
            if offset == batch.num_rows() {
                (b, offset) = (b + 1, 0);
            }
        }
        let run = match parts.as_slice() {
            [one] => one.clone(),
            _ => arrow::compute::concat_batches(&read[0].schema(), &parts)?,
        };
        runs.push(run.columns().to_vec());
    }
    Ok(runs)
}

/// Whether a block's row numbers are its positions `r`.
fn positioned(row: &ArrayRef, r: &Range<u64>) -> bool {
    row.as_primitive_opt::<Int64Type>().is_some_and(|rows| {
        rows.null_count() == 0
            && rows.len() as u64 == r.end - r.start
            && rows
                .values()
                .iter()
                .zip(r.start..)
                .all(|(v, p)| *v == p as i64)
    })
}

/// The row number of row `i` of a batch whose last column holds them.
pub fn row_at(batch: &RecordBatch, i: usize) -> Option<i64> {
    use arrow::array::AsArray;
    let rows = batch
        .column(batch.num_columns().checked_sub(1)?)
        .as_primitive_opt::<arrow::datatypes::Int64Type>()?;
    (i < rows.len()).then(|| rows.value(i))
}
