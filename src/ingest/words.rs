//! Writes a version's word index (`words.bin`) once its Parquet is complete: for each text column,
//! every word its cells hold, folded as search compares words ([`crate::dataset::words`]), and
//! the rows (by row number, `__row`) holding it. A full-text query then reads one list a word and
//! column instead of folding every cell of the table. The format is the posting-list sidecar's
//! ([`crate::dataset::postings`]); columns are read back a core at a time, each column's rows
//! sorted by word within its share of the ingest's sort budget ([`super::spill`]).

use ahash::AHashMap;
use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;

use super::postings::Sections;
use super::sidecars::Version;
use super::spill::Sorter;
use crate::dataset::schema::{Column, ColumnType, ROW_COLUMN};
use crate::dataset::words::{WORDS_FILE, for_each_word};
use crate::error::{Error, Result};
use crate::storage::FileReader;

/// Bytes of distinct words a column may always hold, whatever the budget: an index of a few
/// thousand words is cheap at any size.
const MIN_WORDS_BYTES: usize = 4 << 20;

/// What a distinct word costs in memory while a column is read beyond its letters: its entry in
/// the table numbering the words and its string's allocation.
const WORD_COST: usize = 64;

/// Builds and writes the word index of a written version, sorting within `budget` bytes; the
/// columns indexed.
pub async fn write(
    written: Version<'_>,
    columns: &[Column],
    rows: u64,
    budget: usize,
) -> Result<Vec<String>> {
    let names: Vec<String> = (columns.iter())
        .filter(|c| c.kind == ColumnType::String)
        .map(|c| c.name.clone())
        .collect();
    if names.is_empty() || rows > u64::from(u32::MAX) {
        return Ok(Vec::new());
    }
    let (dir, file, meta) = written.open().await?;
    let mut out = Sections::new(written.storage, dir.join(WORDS_FILE));
    // Columns are folded on every core at once, in order, each within a share of the budget:
    // half for its words, half for sorting its rows.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let share = (budget / cores / 2).max(MIN_WORDS_BYTES);
    let tasks = names.clone().into_iter().map(move |name| {
        let (file, meta) = (file.clone(), meta.clone());
        tokio::spawn(async move { lists_of(file, meta, &name, share).await })
    });
    let mut folded = futures::stream::iter(tasks).buffered(cores);
    for name in &names {
        let lists = folded
            .next()
            .await
            .ok_or_else(|| Error::internal("a column was not indexed"))?;
        let Some((words, lists)) = lists?? else {
            tracing::info!(dataset = %written.id, column = %name, bytes = share,
                "not in the word index: its distinct words pass their share of ingest.sort_bytes");
            continue;
        };
        out.add(name, words, lists).await?;
    }
    out.finish().await
}

/// A column's words, numbered as met, and the rows holding each as `word << 32 | row`, gathered
/// for sorting (each row once a word); `None` once its distinct words would hold more than
/// `budget` bytes (an identifier of millions of rows: searches naming it fold its cells, and
/// an equality finds it by the Parquet statistics). The rows are sorted within `budget` too.
async fn lists_of(
    file: FileReader,
    meta: ArrowReaderMetadata,
    column: &str,
    budget: usize,
) -> Result<Option<(Vec<String>, Sorter<u64>)>> {
    let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(file, meta);
    let schema = builder.schema().clone();
    let indices = [schema.index_of(ROW_COLUMN)?, schema.index_of(column)?];
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    let mut stream = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()?;
    // Words are numbered as met; each cell's text is folded once and its word numbers kept, since
    // open data repeats cells (a stop's description on every passage, a category on every row).
    // Hashed with aHash: a cell is looked up once per row, SipHash's cost there shows.
    let mut numbers_of: AHashMap<String, u32> = AHashMap::new();
    let mut rows = Sorter::new(budget);
    let mut cells_seen: AHashMap<String, Vec<u32>> = AHashMap::new();
    // Bytes the words and the cells kept hold; the cells keep an eighth of the budget at most.
    let (mut words_bytes, mut cells_bytes) = (0usize, 0usize);
    let mut folded = String::new();
    let mut of_cell: Vec<u32> = Vec::new();
    while let Some(batch) = stream.try_next().await? {
        let (Some(numbers), Some(cells)) = (
            batch.column_by_name(ROW_COLUMN),
            batch.column_by_name(column),
        ) else {
            continue;
        };
        let numbers = numbers.as_primitive::<Int64Type>();
        let cells = cells.as_string::<i32>();
        for i in 0..cells.len() {
            if cells.is_null(i) {
                continue;
            }
            let (row, text) = (numbers.value(i) as u32, cells.value(i));
            let of_row = match cells_seen.get(text) {
                Some(words) => words.as_slice(),
                None => {
                    of_cell.clear();
                    for_each_word(text, &mut folded, |w| {
                        let n = match numbers_of.get(w) {
                            Some(n) => *n,
                            None => {
                                let n = numbers_of.len() as u32;
                                numbers_of.insert(w.to_string(), n);
                                words_bytes += w.len() + WORD_COST;
                                n
                            }
                        };
                        // A word twice in a cell is one row.
                        if !of_cell.contains(&n) {
                            of_cell.push(n);
                        }
                    });
                    if cells_bytes < budget / 8 {
                        cells_bytes += text.len() + 4 * of_cell.len() + 2 * WORD_COST;
                        cells_seen.insert(text.to_string(), of_cell.clone());
                    }
                    of_cell.as_slice()
                }
            };
            for n in of_row {
                rows.push(u64::from(*n) << 32 | u64::from(row));
            }
        }
        if words_bytes > budget {
            return Ok(None);
        }
        rows.settle().await?;
    }
    let mut words = vec![String::new(); numbers_of.len()];
    for (word, n) in numbers_of {
        words[n as usize] = word;
    }
    Ok(Some((words, rows)))
}
