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
    // Sized once: a vector grown by doubling would hold up to three times the keys.
    let mut keys: Vec<u64> = Vec::with_capacity(rows as usize);
    // The rows of the keys, kept only once a row without a value made them differ from the
    // keys' positions.
    let mut rows_of: Option<Vec<u32>> = None;
    let mut stream = column_stream(file, meta, column)?;
    let mut nulls = Vec::new();
    let mut row = 0u32;
    while let Some(batch) = stream.try_next().await? {
        let values = batch.column(0);
        let Some((batch_keys, null)) = orders::keys(values)? else {
            return Err(Error::internal(format!("{column} cannot be ordered")));
        };
        for (i, k) in batch_keys.iter().enumerate() {
            if null.as_ref().is_none_or(|n| n.is_valid(i)) {
                keys.push(*k);
                if let Some(r) = rows_of.as_mut() {
                    r.push(row);
                }
            } else {
                rows_of.get_or_insert_with(|| (0..row - nulls.len() as u32).collect());
                nulls.push(row);
            }
            row += 1;
        }
    }
    Ok((Pairs::of(keys, rows_of), nulls))
}

/// Distinct keys up to which a sort counts rather than compares (4 MiB of counts).
const BUCKETS: u64 = 1 << 19;

/// A column's keys paired with their rows, sorted by key then row: packed in 8 bytes a row
/// when the keys, less the smallest and divided by their greatest common step, fit in 32 bits
/// (dates, most integers, datetimes to the second or minute), else 16.
enum Pairs {
    /// `(key - base) / step << 32 | row`: `(base, step, pairs)`.
    Narrow(u64, u64, Vec<u64>),
    /// `key << 32 | row`.
    Wide(Vec<u128>),
}

impl Pairs {
    /// Pairs of keys with their rows (their positions when `rows` is `None`), packed in the
    /// keys' own vector when they fit.
    fn of(mut keys: Vec<u64>, rows: Option<Vec<u32>>) -> Self {
        let row = |i: usize| rows.as_ref().map_or(i as u32, |r| r[i]);
        let low = keys.iter().min().copied().unwrap_or(0);
        let high = keys.iter().max().copied().unwrap_or(0);
        let mut step = 0u64;
        for k in &keys {
            step = gcd(step, k - low);
            if step == 1 {
                break;
            }
        }
        let step = step.max(1);
        if (high - low) / step <= u64::from(u32::MAX) {
            for (i, k) in keys.iter_mut().enumerate() {
                *k = ((*k - low) / step) << 32 | u64::from(row(i));
            }
            return Pairs::Narrow(low, step, keys);
        }
        let wide = keys.iter().enumerate();
        Pairs::Wide(
            wide.map(|(i, k)| u128::from(*k) << 32 | u128::from(row(i)))
                .collect(),
        )
    }

    fn len(&self) -> usize {
        match self {
            Pairs::Narrow(_, _, v) => v.len(),
            Pairs::Wide(v) => v.len(),
        }
    }

    /// Sorts by key, then row. Keys within [`BUCKETS`] of each other (dates, small integers)
    /// are placed by counting: pairs were pushed in row order, so each key's rows stay in it.
    fn sort(&mut self) {
        match self {
            Pairs::Narrow(_, _, v) => {
                let span = v.iter().map(|p| p >> 32).max().map_or(0, |m| m + 1);
                if span > BUCKETS {
                    v.sort_unstable();
                    return;
                }
                let mut starts = vec![0usize; span as usize + 1];
                v.iter().for_each(|p| starts[(p >> 32) as usize + 1] += 1);
                for i in 1..starts.len() {
                    starts[i] += starts[i - 1];
                }
                let mut sorted = vec![0u64; v.len()];
                for p in v.iter() {
                    let at = &mut starts[(p >> 32) as usize];
                    sorted[*at] = *p;
                    *at += 1;
                }
                *v = sorted;
            }
            Pairs::Wide(v) => v.sort_unstable(),
        }
    }

    fn key(&self, i: usize) -> u64 {
        match self {
            Pairs::Narrow(base, step, v) => base + (v[i] >> 32) * step,
            Pairs::Wide(v) => (v[i] >> 32) as u64,
        }
    }

    fn row(&self, i: usize) -> u32 {
        match self {
            Pairs::Narrow(_, _, v) => v[i] as u32,
            Pairs::Wide(v) => v[i] as u32,
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_sort_by_key_then_row_either_way() {
        let k = 1u64 << 40;
        // Keys a minute apart in microseconds pack narrow; one off the step makes them wide.
        let minute = 60_000_000;
        let narrow = vec![k + 5 * minute, k + 2 * minute, k + 5 * minute, k];
        let mut wide = narrow.clone();
        wide[3] += 1;
        wide[0] += u64::from(u32::MAX) * 2;
        for (keys, packed) in [(narrow, true), (wide, false)] {
            let mut pairs = Pairs::of(keys.clone(), None);
            assert_eq!(matches!(pairs, Pairs::Narrow(..)), packed);
            pairs.sort();
            let got: Vec<(u64, u32)> = (0..4).map(|i| (pairs.key(i), pairs.row(i))).collect();
            let mut want: Vec<(u64, u32)> = keys.iter().zip(0..).map(|(k, r)| (*k, r)).collect();
            want.sort_unstable();
            assert_eq!(got, want);
        }
        // Rows given apart from positions (a row without a value came before).
        let pairs = Pairs::of(vec![9, 3], Some(vec![4, 7]));
        assert_eq!((pairs.key(1), pairs.row(1)), (3, 7));
        // Counted and compared sorts agree.
        let keys: Vec<u64> = (0..10_000u64).map(|r| r * 7_919 % 301).collect();
        let mut counted = Pairs::of(keys.clone(), None);
        counted.sort();
        let mut compared: Vec<(u64, u32)> = keys.iter().zip(0..).map(|(k, r)| (*k, r)).collect();
        compared.sort_unstable();
        let got: Vec<(u64, u32)> = (0..10_000)
            .map(|i| (counted.key(i), counted.row(i)))
            .collect();
        assert_eq!(got, compared);
    }
}
