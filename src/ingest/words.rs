//! Writes a version's word index (`words.bin`) once its Parquet is complete: for each text column,
//! every word its cells hold, folded as search compares words ([`crate::dataset::words`]), and
//! the rows (by row number, `__row`) holding it. A full-text query then reads one list a word and
//! column instead of folding every cell of the table. The format is the posting-list sidecar's
//! ([`crate::dataset::postings`]); columns are read back one at a time, so memory holds one
//! column's lists.

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use futures::TryStreamExt;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;

use super::postings::{Sections, open_written};
use crate::dataset::postings::ListWriter;
use crate::dataset::schema::{Column, ColumnType, ROW_COLUMN};
use crate::dataset::words::{WORDS_FILE, for_each_word};
use crate::error::Result;
use crate::storage::{FileReader, Storage};

/// A column with more distinct words than this is left out of the index (searches that name it
/// fold its cells instead): its lists would cost more memory at ingest than the scan costs.
const MAX_WORDS: usize = 4_000_000;

/// Builds and writes the word index of a written version; the columns indexed.
pub async fn write(
    storage: &Storage,
    id: &str,
    version: &str,
    data_file: &str,
    columns: &[Column],
    rows: u64,
) -> Result<Vec<String>> {
    let text: Vec<&Column> = columns
        .iter()
        .filter(|c| c.kind == ColumnType::String)
        .collect();
    if text.is_empty() || rows > u64::from(u32::MAX) {
        return Ok(Vec::new());
    }
    let dir = storage.version_dir(id, version).clone();
    let (file, meta) = open_written(storage, &dir, data_file).await?;
    let mut out = Sections::new(storage, dir.join(WORDS_FILE));
    for column in text {
        let Some((words, lists)) = lists_of(file.clone(), meta.clone(), &column.name).await? else {
            tracing::info!(dataset = %id, column = %column.name,
                "not in the word index: over {MAX_WORDS} distinct words");
            continue;
        };
        out.add(&column.name, &words, lists).await?;
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
    let mut rows_of: HashMap<String, Vec<u32>> = HashMap::new();
    let mut folded = String::new();
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
            let row = numbers.value(i) as u32;
            for_each_word(cells.value(i), &mut folded, |w| match rows_of.get_mut(w) {
                // A word twice in a cell is one row.
                Some(rows) if rows.last() == Some(&row) => {}
                Some(rows) => rows.push(row),
                None => {
                    rows_of.insert(w.to_string(), vec![row]);
                }
            });
        }
        if rows_of.len() > MAX_WORDS {
            return Ok(None);
        }
    }
    let mut words: Vec<(String, Vec<u32>)> = rows_of.into_iter().collect();
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
