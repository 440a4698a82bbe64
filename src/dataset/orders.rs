//! The order sidecar of a version (`orders.bin` beside its Parquet): for each numeric, date and
//! datetime column of a large table, its rows sorted by value then by row — the values, as
//! order-preserving 8-byte keys, and the rows, 4 bytes each — with the rows without a value
//! last. A range filter on the column is then two binary searches (the exact total is their
//! difference) and a page sorted on it is a slice of the rows, read by range.
//!
//! Layout: sections one after the other, then the table of contents, then its length (u64). A
//! section holds blocks of [`STRIDE`] positions of the order, each written as its runs of equal
//! keys (the key's rise from the run before and the run's length, as varints; the rows without
//! a value last, as a run of their own) then each run's rows (the first, then the gaps, as
//! varints: rows ascend within a run). A date column of ten million rows takes 2–3 bytes a row,
//! where keys and rows in full would take 12. The table of contents: per column its name,
//! section start, rows, rows with a value, the stride, the fence (the first key of each block
//! with values), and each block's offset in the section (one more than blocks), so that a
//! binary search reads one block. Integers in the table are u64 little-endian.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Float64Type, Int64Type};

use super::postings::{put_varint, varint};
use crate::error::{Error, Result};

/// Name of the sidecar file in a version's directory.
pub const ORDERS_FILE: &str = "orders.bin";

/// Keys between two fence keys.
pub const STRIDE: u64 = 4096;

/// One column's entry in the table of contents.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub column: String,
    /// Offset of the column's section in the file.
    pub start: u64,
    pub rows: u64,
    /// Rows with a value: the keys stored, and where the rows without one start.
    pub valued: u64,
    pub stride: u64,
    /// The keys at positions 0, stride, 2·stride…
    pub fence: Vec<u64>,
    /// Where each block starts in the section, and where the last ends.
    pub blocks: Vec<u64>,
}

impl Entry {
    /// The blocks holding positions `from..to` (`to > from`), and their bytes in the file.
    pub fn blocks_of(&self, from: u64, to: u64) -> (Range<u64>, Range<u64>) {
        let blocks = from / self.stride..(to - 1) / self.stride + 1;
        let bytes = self.start + self.blocks[blocks.start as usize]
            ..self.start + self.blocks[blocks.end as usize];
        (blocks, bytes)
    }

    /// Positions with a value in block `b`.
    pub fn valued_in(&self, b: u64) -> usize {
        let start = b * self.stride;
        self.valued.clamp(start, start + self.stride) as usize - start as usize
    }

    /// The positions between which the first key not below `key` lies, from the fence.
    pub fn fenced(&self, key: u64, strict: bool) -> (u64, u64) {
        let passed = |f: &u64| if strict { *f <= key } else { *f < key };
        let i = self.fence.partition_point(passed) as u64;
        let from = i.saturating_sub(1) * self.stride;
        (from, (i * self.stride).min(self.valued))
    }
}

/// Whether a column of this type gets an order.
pub fn ordered(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int64 | DataType::Float64 | DataType::Date32 | DataType::Timestamp(_, _)
    )
}

/// Each value of an array as a key that orders as the values do (floats in their total order,
/// as Arrow sorts and compares them), with the array's nulls; `None` for other types.
pub fn keys(values: &ArrayRef) -> Result<Option<(Vec<u64>, Option<NullBuffer>)>> {
    const SIGN: u64 = 1 << 63;
    let nulls = values.logical_nulls();
    let keys = match values.data_type() {
        DataType::Float64 => values
            .as_primitive::<Float64Type>()
            .values()
            .iter()
            .map(|v| {
                let bits = v.to_bits();
                if bits & SIGN == 0 { bits | SIGN } else { !bits }
            })
            .collect(),
        t if ordered(t) => {
            let ints = arrow::compute::cast(values, &DataType::Int64)?;
            let ints = ints.as_primitive::<Int64Type>();
            ints.values().iter().map(|v| (*v as u64) ^ SIGN).collect()
        }
        _ => return Ok(None),
    };
    Ok(Some((keys, nulls)))
}

/// The value a key stands for, of the column's type.
pub fn value_of(key: u64, data_type: &DataType) -> Result<ArrayRef> {
    const SIGN: u64 = 1 << 63;
    if *data_type == DataType::Float64 {
        let bits = if key & SIGN != 0 { key & !SIGN } else { !key };
        return Ok(Arc::new(arrow::array::Float64Array::from(vec![
            f64::from_bits(bits),
        ])));
    }
    let int = arrow::array::Int64Array::from(vec![(key ^ SIGN) as i64]);
    Ok(arrow::compute::cast(&int, data_type)?)
}

/// The table of contents and its length, written after the sections.
pub fn contents(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&(e.column.len() as u32).to_le_bytes());
        out.extend_from_slice(e.column.as_bytes());
        let (fence_len, blocks_len) = (e.fence.len() as u64, e.blocks.len() as u64);
        for n in [e.start, e.rows, e.valued, e.stride, fence_len, blocks_len] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        (e.fence.iter().chain(&e.blocks)).for_each(|k| out.extend_from_slice(&k.to_le_bytes()));
    }
    let len = out.len() as u64;
    out.extend_from_slice(&len.to_le_bytes());
    out
}

/// Reads a table of contents (without its trailing length).
pub fn read_contents(bytes: &[u8]) -> Result<Vec<Entry>> {
    let mut at = 0;
    let mut take = |n: usize| -> Result<&[u8]> {
        let end = at + n;
        let s = bytes
            .get(at..end)
            .ok_or_else(|| Error::internal("the order sidecar is truncated"))?;
        at = end;
        Ok(s)
    };
    let mut entries = Vec::new();
    loop {
        let Ok(len) = take(4) else {
            break;
        };
        let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
        let column = String::from_utf8(take(len)?.to_vec())
            .map_err(|_| Error::internal("an order sidecar column name is not UTF-8"))?;
        let mut n = [0u64; 6];
        for slot in &mut n {
            *slot = u64s(take(8)?)[0];
        }
        let [start, rows, valued, stride, fence_len, blocks_len] = n;
        let fence = u64s(take(fence_len as usize * 8)?);
        let blocks = u64s(take(blocks_len as usize * 8)?);
        let expected = rows.div_ceil(stride.max(1)) + 1;
        if stride == 0 || blocks.len() as u64 != expected || valued > rows {
            return Err(Error::internal(
                "the order sidecar's table of contents is damaged",
            ));
        }
        entries.push(Entry {
            column,
            start,
            rows,
            valued,
            stride,
            fence,
            blocks,
        });
    }
    Ok(entries)
}

/// One block of the order: the keys of its first `keys.len()` positions (the rest have no
/// value) and the rows of all its positions.
pub fn encode_block(keys: &[u64], rows: &[u32], out: &mut Vec<u8>) {
    let mut runs: Vec<(Option<u64>, u64)> = Vec::new();
    for i in 0..rows.len() {
        let key = keys.get(i).copied();
        match runs.last_mut() {
            Some((k, len)) if *k == key => *len += 1,
            _ => runs.push((key, 1)),
        }
    }
    put_varint(out, runs.len() as u64);
    let mut last = 0;
    for (key, len) in &runs {
        let key = key.unwrap_or(last);
        put_varint(out, key - last);
        put_varint(out, *len);
        last = key;
    }
    let mut at = 0;
    for (_, len) in &runs {
        let run = &rows[at..at + *len as usize];
        put_varint(out, u64::from(run[0]));
        run.windows(2)
            .for_each(|w| put_varint(out, u64::from(w[1] - w[0])));
        at += *len as usize;
    }
}

/// A block's keys (meaningless past its positions with a value) and rows.
pub fn decode_block(bytes: &[u8]) -> Result<(Vec<u64>, Vec<u32>)> {
    let damaged = || Error::internal("an order sidecar block is damaged");
    let mut at = 0;
    let mut next = || -> Result<u64> {
        let (v, used) = varint(&bytes[at.min(bytes.len())..]).ok_or_else(damaged)?;
        at += used;
        Ok(v)
    };
    let runs = next()? as usize;
    let mut lens = Vec::with_capacity(runs.min(bytes.len()));
    let mut keys = Vec::new();
    let mut key = 0u64;
    for _ in 0..runs {
        key = key.checked_add(next()?).ok_or_else(damaged)?;
        let len = next()? as usize;
        if keys.len() + len > STRIDE as usize {
            return Err(damaged());
        }
        keys.extend(std::iter::repeat_n(key, len));
        lens.push(len);
    }
    let mut rows = Vec::with_capacity(keys.len());
    for len in lens {
        let mut row = u32::try_from(next()?).map_err(|_| damaged())?;
        rows.push(row);
        for _ in 1..len {
            let gap = u32::try_from(next()?).map_err(|_| damaged())?;
            row = row.checked_add(gap).ok_or_else(damaged)?;
            rows.push(row);
        }
    }
    Ok((keys, rows))
}

/// Little-endian u64s.
pub fn u64s(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, Float64Array, Int64Array};

    #[test]
    fn keys_order_as_values_do_and_turn_back_into_them() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![Some(-5), None, Some(0), Some(7)]));
        let (k, nulls) = keys(&ints).unwrap().unwrap();
        assert!(k[0] < k[2] && k[2] < k[3]);
        assert!(!nulls.unwrap().is_valid(1));
        let back = value_of(k[0], &DataType::Int64).unwrap();
        assert_eq!(back.as_primitive::<Int64Type>().value(0), -5);
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![-2.5, -0.0, 0.0, 1e300]));
        let (k, _) = keys(&floats).unwrap().unwrap();
        assert!(k.windows(2).all(|w| w[0] < w[1]), "{k:?}");
        let back = value_of(k[0], &DataType::Float64).unwrap();
        assert_eq!(back.as_primitive::<Float64Type>().value(0), -2.5);
        let dates: ArrayRef = Arc::new(Date32Array::from(vec![-1, 20_000]));
        let (k, _) = keys(&dates).unwrap().unwrap();
        assert!(k[0] < k[1]);
        assert_eq!(
            value_of(k[1], &DataType::Date32).unwrap().as_ref(),
            dates.slice(1, 1).as_ref()
        );
    }

    #[test]
    fn contents_read_back_and_the_fence_brackets_a_key() {
        let e = Entry {
            column: "date".into(),
            start: 16,
            rows: 10,
            valued: 9,
            stride: 4,
            fence: vec![10, 20, 30],
            blocks: vec![0, 5, 9, 12],
        };
        let toc = contents(std::slice::from_ref(&e));
        let len = u64::from_le_bytes(toc[toc.len() - 8..].try_into().unwrap()) as usize;
        assert_eq!(
            read_contents(&toc[..len]).unwrap(),
            std::slice::from_ref(&e)
        );
        // Keys at 0, 4, 8 are 10, 20, 30: the first key ≥ 20 is within 0..4 (it may be at 4).
        assert_eq!(e.fenced(20, false), (0, 4));
        assert_eq!(e.fenced(20, true), (4, 8));
        assert_eq!(e.fenced(5, false), (0, 0));
        assert_eq!(e.fenced(99, false), (8, 9));
        assert_eq!(e.blocks_of(3, 5), (0..2, 16..25));
        assert_eq!(e.blocks_of(8, 10), (2..3, 25..28));
        assert_eq!((e.valued_in(0), e.valued_in(2)), (4, 1));
    }

    #[test]
    fn a_block_reads_back_its_runs_and_rows() {
        let keys = [7, 7, 7, 9, u64::MAX];
        let rows = [3, 40, 70_000, 1, 12, 2, 5];
        let mut out = Vec::new();
        encode_block(&keys, &rows, &mut out);
        let (k, r) = decode_block(&out).unwrap();
        assert_eq!(k[..5], keys);
        assert_eq!(r, rows);
        // Runs of equal keys and small gaps take a few bytes a row.
        assert!(out.len() < 32, "{}", out.len());
        assert!(decode_block(&out[..out.len() - 1]).is_err());
    }
}
