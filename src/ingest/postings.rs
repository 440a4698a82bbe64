//! Writes a version's posting-list sidecar once its Parquet is complete: for each repetitive text
//! column of a large table, the rows of each value. Served from Parquet, an equality on such a
//! column then reads one list (its total is a count in the head) instead of scanning the column,
//! and a count by its values is the head alone. Columns are read back one at a time, their rows
//! sorted by value within the ingest's sort budget ([`super::spill`]).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::arrow::async_reader::{ParquetRecordBatchStream, ParquetRecordBatchStreamBuilder};
use tokio::io::AsyncWriteExt;

use super::spill::{Merged, Sorter, send_file, write_from};
use crate::dataset::manifest::ColumnProfile;
use crate::dataset::postings::{Entry, POSTINGS_FILE, contents, put_varint, section_head};
use crate::dataset::schema::{Column, ColumnType};
use crate::error::Result;
use crate::storage::{FileReader, Storage};

/// Tables smaller than this are scanned fast enough: no sidecar.
pub const MIN_ROWS: u64 = 200_000;
/// Columns with more distinct values than this get no lists (an identifier is pruned by the
/// Parquet statistics and bloom filters instead).
const MAX_VALUES: u64 = 65_536;

/// The columns a sidecar would index: text, with few values for the rows.
pub fn indexed<'a>(columns: &'a [Column], profile: &[ColumnProfile], rows: u64) -> Vec<&'a Column> {
    if rows < MIN_ROWS {
        return Vec::new();
    }
    columns
        .iter()
        .zip(profile)
        .filter(|(c, p)| {
            c.kind == ColumnType::String && p.distinct <= MAX_VALUES && p.distinct * 8 <= rows
        })
        .map(|(c, _)| c)
        .collect()
}

/// Builds and writes the sidecar of a written version, sorting within `budget` bytes; the
/// columns indexed, none for a small table.
pub(super) async fn write(
    written: super::sidecars::Version<'_>,
    columns: &[Column],
    profile: &[ColumnProfile],
    rows: u64,
    budget: usize,
) -> Result<Vec<String>> {
    let chosen = indexed(columns, profile, rows);
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let (dir, file, meta) = written.open().await?;
    // Written section by section: one column is sorted at a time.
    let mut out = Sections::new(written.storage, dir.join(POSTINGS_FILE));
    for column in &chosen {
        let (values, rows) = lists_of(file.clone(), meta.clone(), &column.name, budget).await?;
        out.add(&column.name, values, rows).await?;
    }
    out.finish().await
}

/// A sidecar in the posting-list format being written, a column's section after the other.
pub(super) struct Sections {
    out: BufWriter,
    at: u64,
    entries: Vec<Entry>,
}

impl Sections {
    pub(super) fn new(storage: &Storage, path: Path) -> Self {
        Sections {
            out: BufWriter::new(Arc::clone(&storage.store), path),
            at: 0,
            entries: Vec::new(),
        }
    }

    /// A column's section from its values, numbered as met, and its rows as `number << 32 |
    /// row`: the values in order, each with its rows ascending.
    pub(super) async fn add(
        &mut self,
        column: &str,
        values: Vec<String>,
        rows: Sorter<u64>,
    ) -> Result<()> {
        let mut order: Vec<u32> = (0..values.len() as u32).collect();
        order.sort_unstable_by(|a, b| values[*a as usize].cmp(&values[*b as usize]));
        let mut rank = vec![0u32; values.len()];
        for (r, number) in order.iter().enumerate() {
            rank[*number as usize] = r as u32;
        }
        // Renumbered by rank, the rows sort value by value in the head's order.
        let sorted = rows
            .finish_mapped(move |p| u64::from(rank[(p >> 32) as usize]) << 32 | (p & 0xFFFF_FFFF))
            .await?;
        let n = values.len();
        let (sizes, lists) = tokio::task::spawn_blocking(move || encode_lists(sorted, n)).await??;
        let mut values = values;
        let values: Vec<String> = (order.iter())
            .map(|number| std::mem::take(&mut values[*number as usize]))
            .collect();
        self.entries.push(Entry {
            column: column.to_string(),
            start: self.at,
            values: values.len() as u64,
            values_len: values.iter().map(|v| 4 + v.len() as u64).sum(),
        });
        let head = section_head(&values, &sizes);
        self.out.write_all(&head).await?;
        self.at += head.len() as u64;
        write_from(&mut self.out, move |sink| send_file(lists, &sink)).await?;
        self.at += sizes.iter().map(|(_, bytes)| bytes).sum::<u64>();
        Ok(())
    }

    /// The table of contents written and the file closed; the columns it holds.
    pub(super) async fn finish(mut self) -> Result<Vec<String>> {
        self.out.write_all(&contents(&self.entries)).await?;
        self.out.shutdown().await?;
        Ok(self.entries.into_iter().map(|e| e.column).collect())
    }
}

/// The lists of `values` values from rows sorted as `value << 32 | row`, encoded one after the
/// other in a temporary file; each one's count and length in bytes.
fn encode_lists(sorted: Merged<u64>, values: usize) -> Result<(Vec<(u64, u64)>, std::fs::File)> {
    let mut sizes = vec![(0u64, 0u64); values];
    let mut out = std::io::BufWriter::new(tempfile::tempfile()?);
    let mut bytes = Vec::new();
    let mut last: Option<(u32, u32)> = None;
    for pair in sorted {
        let pair = pair?;
        let (value, row) = ((pair >> 32) as u32, pair as u32);
        let gap = match last {
            Some((v, r)) if v == value && r == row => continue,
            Some((v, r)) if v == value => row - r,
            _ => row,
        };
        last = Some((value, row));
        let at = bytes.len();
        put_varint(&mut bytes, u64::from(gap));
        let size = sizes
            .get_mut(value as usize)
            .ok_or_else(|| crate::error::Error::internal("a list's value is out of range"))?;
        *size = (size.0 + 1, size.1 + (bytes.len() - at) as u64);
        if bytes.len() >= 1 << 16 {
            out.write_all(&bytes)?;
            bytes.clear();
        }
    }
    out.write_all(&bytes)?;
    Ok((sizes, out.into_inner().map_err(|e| e.into_error())?))
}

/// A column's distinct values, numbered as met, and its rows (nulls are in none) as `value <<
/// 32 | row`, gathered for sorting.
async fn lists_of(
    file: FileReader,
    meta: ArrowReaderMetadata,
    column: &str,
    budget: usize,
) -> Result<(Vec<String>, Sorter<u64>)> {
    let mut stream = column_stream(file, meta, column)?;
    let mut codes: HashMap<String, u32> = HashMap::new();
    let mut values: Vec<String> = Vec::new();
    let mut rows = Sorter::new(budget);
    let mut row = 0u32;
    while let Some(batch) = stream.try_next().await? {
        let cells = batch.column(0).as_string::<i32>();
        for i in 0..cells.len() {
            if cells.is_valid(i) {
                let v = cells.value(i);
                let code = match codes.get(v) {
                    Some(c) => *c,
                    None => {
                        let c = values.len() as u32;
                        codes.insert(v.to_string(), c);
                        values.push(v.to_string());
                        c
                    }
                };
                rows.push(u64::from(code) << 32 | u64::from(row));
            }
            row += 1;
        }
        rows.settle().await?;
    }
    Ok((values, rows))
}

/// One column of a written file, in file order, in large batches.
pub(super) fn column_stream(
    file: FileReader,
    meta: ArrowReaderMetadata,
    column: &str,
) -> Result<ParquetRecordBatchStream<FileReader>> {
    let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(file, meta);
    let index = builder.schema().index_of(column)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
    Ok(builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()?)
}
