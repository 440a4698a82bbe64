//! Writes a version's word index (`words.bin`) once its Parquet is complete: for each text column,
//! every word its cells hold, folded as search compares words ([`crate::dataset::words`]), and
//! the rows (by row number, `__row`) holding it. A full-text query then reads one list a word and
//! column instead of folding every cell of the table. The format is the posting-list sidecar's
//! ([`crate::dataset::postings`]); columns are read back one at a time, so memory holds one
//! column's lists.

use ahash::AHashMap;
use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use futures::{StreamExt, TryStreamExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;

use super::postings::{Sections, open_written};
use crate::dataset::postings::ListWriter;
use crate::dataset::schema::{Column, ColumnType, ROW_COLUMN};
use crate::dataset::words::{WORDS_FILE, for_each_word};
use crate::error::{Error, Result};
use crate::storage::{FileReader, Storage};

/// A column with more distinct words than this is left out of the index (searches that name it
/// fold its cells instead): its lists would cost more memory at ingest than the scan costs.
const MAX_WORDS: usize = 4_000_000;

/// Distinct cells whose words are kept while a column is read (beyond, cells are folded each
/// time they come).
const MAX_CELLS_KEPT: usize = 200_000;

/// Builds and writes the word index of a written version; the columns indexed.
pub async fn write(
    storage: &Storage,
    id: &str,
    version: &str,
    data_file: &str,
    columns: &[Column],
    rows: u64,
) -> Result<Vec<String>> {
    let names: Vec<String> = (columns.iter())
        .filter(|c| c.kind == ColumnType::String)
        .map(|c| c.name.clone())
        .collect();
    if names.is_empty() || rows > u64::from(u32::MAX) {
        return Ok(Vec::new());
    }
    let dir = storage.version_dir(id, version).clone();
    let (file, meta) = open_written(storage, &dir, data_file).await?;
    let mut out = Sections::new(storage, dir.join(WORDS_FILE));
    // Columns are folded on every core at once, in order: memory holds as many columns' lists
    // as there are cores.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let tasks = names.clone().into_iter().map(move |name| {
        let (file, meta) = (file.clone(), meta.clone());
        tokio::spawn(async move { lists_of(file, meta, &name).await })
    });
    let mut folded = futures::stream::iter(tasks).buffered(cores);
    for name in &names {
        let lists = folded
            .next()
            .await
            .ok_or_else(|| Error::internal("a column was not indexed"))?;
        let Some((words, lists)) = lists?? else {
            tracing::info!(dataset = %id, column = %name,
                "not in the word index: over {MAX_WORDS} distinct words");
            continue;
        };
        out.add(name, &words, lists).await?;
    }
    out.finish().await
}

/// A column's words, in order, and the rows holding each (ascending, each row once); `None`
/// past [`MAX_WORDS`].
async fn lists_of(
    file: FileReader,
    meta: ArrowReaderMetadata,
    column: &str,
) -> Result<Option<(Vec<String>, Vec<ListWriter>)>> {
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
    let mut rows_of: Vec<Vec<u32>> = Vec::new();
    let mut cells_seen: AHashMap<String, Vec<u32>> = AHashMap::new();
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
            let words = match cells_seen.get(text) {
                Some(words) => words.as_slice(),
                None => {
                    of_cell.clear();
                    for_each_word(text, &mut folded, |w| {
                        let n = match numbers_of.get(w) {
                            Some(n) => *n,
                            None => {
                                let n = rows_of.len() as u32;
                                numbers_of.insert(w.to_string(), n);
                                rows_of.push(Vec::new());
                                n
                            }
                        };
                        // A word twice in a cell is one row.
                        if !of_cell.contains(&n) {
                            of_cell.push(n);
                        }
                    });
                    if cells_seen.len() < MAX_CELLS_KEPT {
                        cells_seen.insert(text.to_string(), of_cell.clone());
                    }
                    of_cell.as_slice()
                }
            };
            for n in words {
                rows_of[*n as usize].push(row);
            }
        }
        if rows_of.len() > MAX_WORDS {
            return Ok(None);
        }
    }
    let mut words: Vec<(String, Vec<u32>)> = numbers_of
        .into_iter()
        .map(|(w, n)| (w, std::mem::take(&mut rows_of[n as usize])))
        .collect();
    words.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut lists = Vec::with_capacity(words.len());
    for (_, rows) in &mut words {
        // Rows come in file order unless the layout sorted the file.
        if !rows.is_sorted() {
            rows.sort_unstable();
            rows.dedup();
        }
        let mut list = ListWriter::default();
        for r in rows.iter() {
            list.push(*r);
        }
        lists.push(list);
    }
    Ok(Some((words.into_iter().map(|(w, _)| w).collect(), lists)))
}
