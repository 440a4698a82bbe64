//! Writes a version's posting-list sidecar once its Parquet is complete: for each repetitive text
//! column of a large table, the rows of each value. Served from Parquet, an equality on such a
//! column then reads one list (its total is a count in the head) instead of scanning the column,
//! and a count by its values is the head alone. Columns are read back one at a time, so memory
//! holds one column's codes and lists.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::{ParquetRecordBatchStream, ParquetRecordBatchStreamBuilder};
use tokio::io::AsyncWriteExt;

use crate::dataset::manifest::ColumnProfile;
use crate::dataset::postings::{Entry, ListWriter, POSTINGS_FILE, contents, section_head};
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

/// Builds and writes the sidecar of a written version; the columns indexed, none for a small
/// table.
pub async fn write(
    storage: &Storage,
    id: &str,
    version: &str,
    data_file: &str,
    columns: &[Column],
    profile: &[ColumnProfile],
    rows: u64,
) -> Result<Vec<String>> {
    let chosen = indexed(columns, profile, rows);
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let dir = storage.version_dir(id, version).clone();
    let (file, meta) = open_written(storage, &dir, data_file).await?;
    // Written section by section: memory holds one column's lists at a time.
    let mut out = Sections::new(storage, dir.join(POSTINGS_FILE));
    for column in &chosen {
        let (values, lists) = lists_of(file.clone(), meta.clone(), &column.name).await?;
        out.add(&column.name, &values, lists).await?;
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

    /// A column's section: its values, in order, and each one's list.
    pub(super) async fn add(
        &mut self,
        column: &str,
        values: &[String],
        lists: Vec<ListWriter>,
    ) -> Result<()> {
        self.entries.push(Entry {
            column: column.to_string(),
            start: self.at,
            values: values.len() as u64,
            values_len: values.iter().map(|v| 4 + v.len() as u64).sum(),
        });
        let head = section_head(values, &lists);
        self.out.write_all(&head).await?;
        self.at += head.len() as u64;
        for l in lists {
            self.out.write_all(&l.bytes).await?;
            self.at += l.bytes.len() as u64;
        }
        Ok(())
    }

    /// The table of contents written and the file closed; the columns it holds.
    pub(super) async fn finish(mut self) -> Result<Vec<String>> {
        self.out.write_all(&contents(&self.entries)).await?;
        self.out.shutdown().await?;
        Ok(self.entries.into_iter().map(|e| e.column).collect())
    }
}

/// A column's distinct values, in order, and each one's list (nulls are in none).
async fn lists_of(
    file: FileReader,
    meta: ArrowReaderMetadata,
    column: &str,
) -> Result<(Vec<String>, Vec<ListWriter>)> {
    let mut stream = column_stream(file, meta, column)?;
    let mut codes: HashMap<String, u32> = HashMap::new();
    let mut lists: Vec<ListWriter> = Vec::new();
    let mut row = 0u32;
    while let Some(batch) = stream.try_next().await? {
        let values = batch.column(0).as_string::<i32>();
        for i in 0..values.len() {
            if values.is_valid(i) {
                let v = values.value(i);
                let code = match codes.get(v) {
                    Some(c) => *c,
                    None => {
                        let c = lists.len() as u32;
                        codes.insert(v.to_string(), c);
                        lists.push(ListWriter::default());
                        c
                    }
                };
                lists[code as usize].push(row);
            }
            row += 1;
        }
    }
    let mut order: Vec<(String, u32)> = codes.into_iter().collect();
    order.sort_unstable();
    let lists = order
        .iter()
        .map(|(_, c)| std::mem::take(&mut lists[*c as usize]))
        .collect();
    Ok((order.into_iter().map(|(v, _)| v).collect(), lists))
}

/// A written version's Parquet file and its footer, read once for every column a sidecar reads.
pub(super) async fn open_written(
    storage: &Storage,
    dir: &Path,
    data_file: &str,
) -> Result<(FileReader, ArrowReaderMetadata)> {
    let data = dir.clone().join(data_file);
    let size = storage.store.head(&data).await?.size;
    let mut file = FileReader {
        store: Arc::clone(&storage.store),
        path: data,
        size,
    };
    let meta = ArrowReaderMetadata::load_async(&mut file, ArrowReaderOptions::new()).await?;
    Ok((file, meta))
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
