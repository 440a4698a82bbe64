//! Writes a version's order sidecar once its Parquet is complete (see [`crate::dataset::orders`]):
//! for each numeric, date and datetime column of a large table, its rows by value then by row.
//! Served from Parquet, a range on such a column is then counted by two binary searches, and a
//! page sorted on it reads the page's rows only, where a plan would decode the column in every
//! row to sort it. Columns are read back one at a time: memory holds one column's keys and rows
//! while it is sorted (8 bytes a row when its values span less than 2³², as dates and most
//! integers do; 16 otherwise).

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use tokio::io::AsyncWriteExt;

use super::postings::{MIN_ROWS, column_stream, open_written};
use crate::dataset::orders::{self, Entry, ORDERS_FILE, STRIDE, contents, encode_block};
use crate::dataset::schema::Column;
use crate::error::{Error, Result};
use crate::storage::{FileReader, Storage};

/// Builds and writes the order sidecar of a written version; the columns ordered, none for a
/// small table.
pub async fn write(
    storage: &Storage,
    id: &str,
    version: &str,
    data_file: &str,
    columns: &[Column],
    rows: u64,
) -> Result<Vec<String>> {
    if rows < MIN_ROWS || rows > u64::from(u32::MAX) {
        return Ok(Vec::new());
    }
    let dir = storage.version_dir(id, version).clone();
    let (file, meta) = open_written(storage, &dir, data_file).await?;
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
    let mut out = BufWriter::new(Arc::clone(&storage.store), dir.join(ORDERS_FILE));
    let mut at = 0u64;
    let mut entries = Vec::new();
    for column in chosen {
        let (mut pairs, nulls) = read_keys(file.clone(), meta.clone(), &column.name, rows).await?;
        let valued = pairs.len() as u64;
        if valued + nulls.len() as u64 != rows {
            return Err(Error::internal(format!(
                "{}: {} rows read back for the order, {rows} stored",
                column.name,
                valued + nulls.len() as u64
            )));
        }
        // Key then row: ties stay in row order.
        pairs = tokio::task::spawn_blocking(move || {
            pairs.sort();
            pairs
        })
        .await?;
        let mut fence = Vec::new();
        // Written a block at a time as the sorted pairs come.
        let (mut blocks, mut bytes) = (vec![0u64], Vec::new());
        let (mut keys, mut block_rows) = (Vec::new(), Vec::new());
        let mut nulls = nulls.into_iter();
        for from in (0..rows).step_by(STRIDE as usize) {
            let to = (from + STRIDE).min(rows);
            keys.clear();
            block_rows.clear();
            for p in from..to {
                if p < valued {
                    keys.push(pairs.key(p as usize));
                    block_rows.push(pairs.row(p as usize));
                } else {
                    block_rows.extend(nulls.next());
                }
            }
            fence.extend(keys.first().copied());
            encode_block(&keys, &block_rows, &mut bytes);
            blocks.push(*blocks.last().unwrap_or(&0) + bytes.len() as u64);
            out.write_all(&bytes).await?;
            bytes.clear();
        }
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

/// A column's rows with a value, with their keys, and the rows without one, in row order.
async fn read_keys(
    file: FileReader,
    meta: ArrowReaderMetadata,
    column: &str,
    rows: u64,
) -> Result<(Pairs, Vec<u32>)> {
    // Sized once: a vector grown by doubling would hold up to three times the pairs.
    let mut pairs = match key_range(&meta, column)? {
        Some((low, high)) if high - low <= u64::from(u32::MAX) => {
            Pairs::Narrow(low, Vec::with_capacity(rows as usize))
        }
        _ => Pairs::Wide(Vec::with_capacity(rows as usize)),
    };
    let mut stream = column_stream(file, meta, column)?;
    let mut nulls = Vec::new();
    let mut row = 0u32;
    while let Some(batch) = stream.try_next().await? {
        let values = batch.column(0);
        let Some((keys, null)) = orders::keys(values)? else {
            return Err(Error::internal(format!("{column} cannot be ordered")));
        };
        for (i, k) in keys.iter().enumerate() {
            if null.as_ref().is_none_or(|n| n.is_valid(i)) {
                pairs.push(*k, row)?;
            } else {
                nulls.push(row);
            }
            row += 1;
        }
    }
    Ok((pairs, nulls))
}

/// The smallest and largest key of a column, from its row groups' statistics; `None` when they
/// do not say (or for floats, whose statistics leave NaN out).
fn key_range(meta: &ArrowReaderMetadata, column: &str) -> Result<Option<(u64, u64)>> {
    let schema = meta.schema();
    let file = meta.metadata();
    if schema.field_with_name(column)?.data_type() == &arrow::datatypes::DataType::Float64 {
        return Ok(None);
    }
    let parquet_schema = file.file_metadata().schema_descr();
    let conv = StatisticsConverter::try_new(column, schema, parquet_schema)?;
    let mins = conv.row_group_mins(file.row_groups().iter())?;
    let maxes = conv.row_group_maxes(file.row_groups().iter())?;
    let known = |a: &arrow::array::ArrayRef| a.null_count() == 0;
    if !known(&mins) || !known(&maxes) {
        return Ok(None);
    }
    let (Some((mins, _)), Some((maxes, _))) = (orders::keys(&mins)?, orders::keys(&maxes)?) else {
        return Ok(None);
    };
    Ok(mins.iter().min().copied().zip(maxes.iter().max().copied()))
}

/// A column's keys paired with their rows, sorted by key then row: packed in 8 bytes a row when
/// the keys span less than 2³² (dates, most integers), else 16.
enum Pairs {
    /// `(key - base) << 32 | row`.
    Narrow(u64, Vec<u64>),
    /// `key << 32 | row`.
    Wide(Vec<u128>),
}

impl Pairs {
    fn push(&mut self, key: u64, row: u32) -> Result<()> {
        match self {
            Pairs::Narrow(base, v) => {
                let offset = key.checked_sub(*base).filter(|o| *o <= u64::from(u32::MAX));
                let offset = offset.ok_or_else(|| {
                    Error::internal("a value beyond the column's statistics while ordering it")
                })?;
                v.push(offset << 32 | u64::from(row));
            }
            Pairs::Wide(v) => v.push(u128::from(key) << 32 | u128::from(row)),
        }
        Ok(())
    }

    fn len(&self) -> usize {
        match self {
            Pairs::Narrow(_, v) => v.len(),
            Pairs::Wide(v) => v.len(),
        }
    }

    fn sort(&mut self) {
        match self {
            Pairs::Narrow(_, v) => v.sort_unstable(),
            Pairs::Wide(v) => v.sort_unstable(),
        }
    }

    fn key(&self, i: usize) -> u64 {
        match self {
            Pairs::Narrow(base, v) => base + (v[i] >> 32),
            Pairs::Wide(v) => (v[i] >> 32) as u64,
        }
    }

    fn row(&self, i: usize) -> u32 {
        match self {
            Pairs::Narrow(_, v) => v[i] as u32,
            Pairs::Wide(v) => v[i] as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_sort_by_key_then_row_either_way() {
        let keys = [(1u64 << 40) + 5, (1 << 40) + 2, (1 << 40) + 5, 1 << 40];
        for mut pairs in [Pairs::Narrow(1 << 40, Vec::new()), Pairs::Wide(Vec::new())] {
            for (row, k) in keys.iter().enumerate().rev() {
                pairs.push(*k, row as u32).unwrap();
            }
            pairs.sort();
            let got: Vec<(u64, u32)> = (0..pairs.len())
                .map(|i| (pairs.key(i), pairs.row(i)))
                .collect();
            let k = 1u64 << 40;
            assert_eq!(got, [(k, 3), (k + 2, 1), (k + 5, 0), (k + 5, 2)]);
        }
        assert!(Pairs::Narrow(10, Vec::new()).push(9, 0).is_err());
    }
}
