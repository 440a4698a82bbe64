//! Pages in file order with no filter, read straight from a version's Parquet file by row-group
//! arithmetic: row numbers are positions in the file, so page `p` is rows `(p-1)·size ..`, found
//! in the row groups' row counts and read through a row selection that touches only the pages
//! holding them. The file's footer and page index are read once per version and kept.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{AsArray, BooleanArray};
use arrow::datatypes::Int64Type;
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
}

impl FileRows {
    /// Reads the footer and page index of a version stored as one file (`None` otherwise).
    pub async fn open(storage: &Storage, manifest: &Manifest) -> Result<Option<Self>> {
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
        let batches = self.read(ranges, &columns, READ_BATCH).await?;
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

/// The row number of row `i` of a batch whose last column holds them.
pub fn row_at(batch: &RecordBatch, i: usize) -> Option<i64> {
    use arrow::array::AsArray;
    let rows = batch
        .column(batch.num_columns().checked_sub(1)?)
        .as_primitive_opt::<arrow::datatypes::Int64Type>()?;
    (i < rows.len()).then(|| rows.value(i))
}
