//! Writes a version's order sidecar once its Parquet is complete (see [`crate::dataset::orders`]):
//! for each numeric, date and datetime column of a large table, its rows by value then by row.
//! Served from Parquet, a range on such a column is then counted by two binary searches, and a
//! page sorted on it reads the page's rows only, where a plan would decode the column in every
//! row to sort it. Columns are read back one at a time and sorted within the ingest's sort
//! budget ([`super::spill`]): 16 bytes a row while held, on disk beyond it.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use tokio::io::AsyncWriteExt;

use super::postings::{MIN_ROWS, column_stream};
use super::sidecars::Version;
use super::spill::{Merged, Sink, Sorter, write_from};
use crate::dataset::orders::{self, Entry, ORDERS_FILE, STRIDE, contents, encode_block};
use crate::dataset::schema::Column;
use crate::error::{Error, Result};
use crate::storage::FileReader;

/// A row without a value, as a sort record: after every key (keys take bits 32 to 95).
const NULL: u128 = 1 << 96;

/// Builds and writes the order sidecar of a written version, sorting within `budget` bytes; the
/// columns ordered, none for a small table.
pub async fn write(
    written: Version<'_>,
    columns: &[Column],
    rows: u64,
    budget: usize,
) -> Result<Vec<String>> {
    if rows < MIN_ROWS || rows > u64::from(u32::MAX) {
        return Ok(Vec::new());
    }
    let (dir, file, meta) = written.open().await?;
    let schema = meta.schema().clone();
    let chosen: Vec<&Column> = columns
        .iter()
        .filter(|c| {
            schema
                .field_with_name(&c.name)
                .is_ok_and(|f| orders::ordered(f.data_type()))
        })
        .collect();
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = BufWriter::new(Arc::clone(&written.storage.store), dir.join(ORDERS_FILE));
    let mut at = 0u64;
    let mut entries = Vec::new();
    for column in chosen {
        let (sorted, valued) = read_keys(file.clone(), meta.clone(), &column.name, budget).await?;
        if sorted.len() != rows {
            return Err(Error::internal(format!(
                "{}: {} rows read back for the order, {rows} stored",
                column.name,
                sorted.len()
            )));
        }
        if sorted.runs() > 0 {
            tracing::debug!(column = %column.name, runs = sorted.runs(), "order sorted on disk");
        }
        let merged = sorted.finish().await?;
        let (fence, blocks) =
            write_from(&mut out, move |sink| section(merged, rows, &sink)).await?;
        let section = blocks.last().copied().unwrap_or(0);
        entries.push(Entry {
            column: column.name.clone(),
            start: at,
            rows,
            valued,
            stride: STRIDE,
            fence,
            blocks,
        });
        at += section;
    }
    out.write_all(&contents(&entries)).await?;
    out.shutdown().await?;
    Ok(entries.into_iter().map(|e| e.column).collect())
}

/// Encodes a column's section from its sorted records, a block of [`STRIDE`] rows at a time:
/// the fence (each block's first key) and where each block ends.
fn section(mut sorted: Merged<u128>, rows: u64, sink: &Sink) -> Result<(Vec<u64>, Vec<u64>)> {
    let mut fence = Vec::new();
    let mut blocks = vec![0u64];
    let (mut keys, mut block_rows) = (Vec::new(), Vec::new());
    for from in (0..rows).step_by(STRIDE as usize) {
        keys.clear();
        block_rows.clear();
        for _ in from..(from + STRIDE).min(rows) {
            let record = sorted
                .next()
                .ok_or_else(|| Error::internal("the order ended early"))??;
            // Valued rows come first: a block's keys are those of its first rows.
            if record < NULL {
                keys.push((record >> 32) as u64);
            }
            block_rows.push(record as u32);
        }
        fence.extend(keys.first().copied());
        let mut bytes = Vec::new();
        encode_block(&keys, &block_rows, &mut bytes);
        blocks.push(blocks.last().copied().unwrap_or(0) + bytes.len() as u64);
        sink.send(bytes)?;
    }
    Ok((fence, blocks))
}

/// A column's rows gathered for sorting, as `key << 32 | row` (rows without a value after
/// every key, in row order), and how many have a value.
async fn read_keys(
    file: FileReader,
    meta: ArrowReaderMetadata,
    column: &str,
    budget: usize,
) -> Result<(Sorter<u128>, u64)> {
    let mut sorter = Sorter::new(budget);
    let mut stream = column_stream(file, meta, column)?;
    let (mut row, mut valued) = (0u32, 0u64);
    while let Some(batch) = stream.try_next().await? {
        let values = batch.column(0);
        let Some((batch_keys, null)) = orders::keys(values)? else {
            return Err(Error::internal(format!("{column} cannot be ordered")));
        };
        for (i, k) in batch_keys.iter().enumerate() {
            if null.as_ref().is_none_or(|n| n.is_valid(i)) {
                sorter.push(u128::from(*k) << 32 | u128::from(row));
                valued += 1;
            } else {
                sorter.push(NULL | u128::from(row));
            }
            row += 1;
        }
        sorter.settle().await?;
    }
    Ok((sorter, valued))
}
