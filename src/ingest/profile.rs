//! Column statistics gathered while writing: null count, extremes, an estimate of distinct values
//! (HyperLogLog) and the most frequent values (Misra–Gries), in bounded memory per column.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use serde_json::Value;
use xxhash_rust::xxh3::xxh3_64;

use crate::dataset::manifest::{ColumnProfile, TopValue};
use crate::dataset::schema::{Column, ColumnType};

/// HyperLogLog precision: 2^12 registers, about 1.6 % standard error, 4 KiB a column.
const HLL_BITS: u32 = 12;
/// Values tracked for the most-frequent list; counts are exact for columns with at most this many
/// distinct values, lower bounds otherwise.
const TOP_CAPACITY: usize = 128;
/// Values listed in a profile.
pub const TOP_LISTED: usize = 10;

/// A value as the statistics see it, in the column's type.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl Scalar {
    fn hash64(&self) -> u64 {
        match self {
            Scalar::Int(i) => xxh3_64(&i.to_le_bytes()),
            Scalar::Float(f) => xxh3_64(&f.to_bits().to_le_bytes()),
            Scalar::Bool(b) => xxh3_64(&[u8::from(*b)]),
            Scalar::Text(s) => xxh3_64(s.as_bytes()),
        }
    }
}

/// The values are already hashed (xxh3, 64 bits): the map uses that hash as is.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else so the hasher stays correct.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type ByHash<V> = HashMap<u64, V, BuildHasherDefault<PassThrough>>;

/// Everything the profile says about one column.
pub struct Stats {
    pub nulls: u64,
    pub min: Option<Scalar>,
    pub max: Option<Scalar>,
    registers: Vec<u8>,
    /// Misra–Gries counters by value hash, with the value they count.
    top: ByHash<(u64, Scalar)>,
    /// Whether the frequent table ever had to drop values (then counts are lower bounds and the
    /// distinct count is an estimate).
    overflowed: bool,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            nulls: 0,
            min: None,
            max: None,
            registers: vec![0; 1 << HLL_BITS],
            top: ByHash::default(),
            overflowed: false,
        }
    }
}

impl Stats {
    pub fn see(&mut self, v: Scalar) {
        let hash = v.hash64();
        self.register(hash);
        if self.min.as_ref().is_none_or(|m| v < *m) {
            self.min = Some(v.clone());
        }
        if self.max.as_ref().is_none_or(|m| v > *m) {
            self.max = Some(v.clone());
        }
        self.frequent(hash, || v);
    }

    /// A text value; compared in place, so it costs an allocation only when an extreme moves or
    /// a new value enters the frequent table.
    pub fn see_text(&mut self, s: &str) {
        if !matches!(&self.min, Some(Scalar::Text(m)) if s >= m.as_str()) {
            self.min = Some(Scalar::Text(s.to_string()));
        }
        if !matches!(&self.max, Some(Scalar::Text(m)) if s <= m.as_str()) {
            self.max = Some(Scalar::Text(s.to_string()));
        }
        let hash = xxh3_64(s.as_bytes());
        self.register(hash);
        self.frequent(hash, || Scalar::Text(s.to_string()));
    }

    fn register(&mut self, hash: u64) {
        let idx = (hash >> (64 - HLL_BITS)) as usize;
        let rank = ((hash << HLL_BITS) | (1 << (HLL_BITS - 1))).leading_zeros() as u8 + 1;
        if rank > self.registers[idx] {
            self.registers[idx] = rank;
        }
    }

    /// Misra–Gries: a full table makes room by lowering every count by one.
    fn frequent(&mut self, hash: u64, value: impl FnOnce() -> Scalar) {
        if let Some((n, _)) = self.top.get_mut(&hash) {
            *n += 1;
        } else if self.top.len() < TOP_CAPACITY {
            self.top.insert(hash, (1, value()));
        } else {
            self.overflowed = true;
            self.top.retain(|_, (n, _)| {
                *n -= 1;
                *n > 0
            });
        }
    }

    /// Distinct non-null values: exact while the frequent table never overflowed, else the
    /// HyperLogLog estimate.
    pub fn distinct(&self) -> u64 {
        if !self.overflowed {
            return self.top.len() as u64;
        }
        let m = (1u64 << HLL_BITS) as f64;
        let sum: f64 = self
            .registers
            .iter()
            .map(|r| 2f64.powi(-i32::from(*r)))
            .sum();
        let zeros = self.registers.iter().filter(|r| **r == 0).count() as f64;
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let estimate = if raw <= 2.5 * m && zeros > 0.0 {
            m * (m / zeros).ln()
        } else {
            raw
        };
        estimate.round() as u64
    }

    /// The most frequent values, most frequent first (ties by value), with their counts.
    pub fn top(&self) -> Vec<(Scalar, u64)> {
        let mut v: Vec<(Scalar, u64)> = self.top.values().map(|(n, s)| (s.clone(), *n)).collect();
        v.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then(a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal))
        });
        v.truncate(TOP_LISTED);
        v
    }
}

/// Statistics of every column of a version, fed batch by batch as the batches are written.
pub struct Profiler {
    columns: Vec<Column>,
    stats: Vec<Stats>,
}

impl Profiler {
    pub fn new(columns: &[Column]) -> Self {
        Profiler {
            columns: columns.to_vec(),
            stats: columns.iter().map(|_| Stats::default()).collect(),
        }
    }

    /// Counts a batch laid out as [`crate::dataset::schema::arrow_schema`] (the columns, then
    /// the row number, which is not profiled).
    pub fn see(&mut self, batch: &RecordBatch) {
        for (stats, array) in self.stats.iter_mut().zip(batch.columns()) {
            stats.see_array(array.as_ref());
        }
    }

    pub fn finish(self) -> Vec<ColumnProfile> {
        self.columns
            .iter()
            .zip(self.stats)
            .map(|(col, st)| ColumnProfile {
                name: col.name.clone(),
                kind: col.kind,
                nulls: st.nulls,
                distinct: st.distinct(),
                top: st
                    .top()
                    .into_iter()
                    .map(|(v, count)| TopValue {
                        value: json_of(col, Some(v)),
                        count,
                    })
                    .collect(),
                min: json_of(col, st.min.clone()),
                max: json_of(col, st.max.clone()),
            })
            .collect()
    }
}

impl Stats {
    /// Counts every value of an array of one of the stored types.
    pub fn see_array(&mut self, array: &dyn Array) {
        self.nulls += array.null_count() as u64;
        macro_rules! each {
            ($ty:ty, $wrap:expr) => {
                for v in array.as_primitive::<$ty>().iter().flatten() {
                    self.see($wrap(v));
                }
            };
        }
        match array.data_type() {
            DataType::Utf8 => {
                for v in array.as_string::<i32>().iter().flatten() {
                    self.see_text(v);
                }
            }
            DataType::Int64 => each!(Int64Type, Scalar::Int),
            DataType::Float64 => each!(Float64Type, Scalar::Float),
            DataType::Date32 => each!(Date32Type, |d: i32| Scalar::Int(i64::from(d))),
            DataType::Timestamp(_, _) => each!(TimestampMicrosecondType, Scalar::Int),
            DataType::Boolean => {
                for v in array.as_boolean().iter().flatten() {
                    self.see(Scalar::Bool(v));
                }
            }
            _ => {}
        }
    }
}

/// A profile extreme in the column's JSON form (dates and datetimes as ISO text).
fn json_of(col: &Column, v: Option<Scalar>) -> Value {
    match (col.kind, v) {
        (_, None) => Value::Null,
        (ColumnType::Date, Some(Scalar::Int(days))) => {
            let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|e| e.checked_add_signed(chrono::Duration::days(days)));
            date.map_or(Value::Null, |d| {
                Value::String(d.format("%Y-%m-%d").to_string())
            })
        }
        (ColumnType::Datetime, Some(Scalar::Int(us))) => {
            match chrono::DateTime::from_timestamp_micros(us) {
                Some(dt) if col.with_offset => {
                    Value::String(dt.format("%Y-%m-%dT%H:%M:%S%.f+00:00").to_string())
                }
                Some(dt) => {
                    Value::String(dt.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string())
                }
                None => Value::Null,
            }
        }
        (_, Some(Scalar::Int(i))) => Value::from(i),
        (_, Some(Scalar::Float(f))) => {
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        (_, Some(Scalar::Bool(b))) => Value::Bool(b),
        (_, Some(Scalar::Text(s))) => Value::String(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_estimates() {
        let mut s = Stats::default();
        for i in 0..10_000 {
            s.see(Scalar::Int(i % 3));
        }
        assert_eq!(s.distinct(), 3);
        assert_eq!(
            s.top(),
            vec![
                (Scalar::Int(0), 3334),
                (Scalar::Int(1), 3333),
                (Scalar::Int(2), 3333)
            ]
        );
        let mut t = Stats::default();
        for i in 0..100_000 {
            t.see_text(&format!("value-{i}"));
            if i % 10 == 0 {
                t.see_text("frequent");
            }
        }
        let d = t.distinct() as f64;
        assert!((d - 100_001.0).abs() / 100_001.0 < 0.05, "{d}");
        assert_eq!(t.top()[0].0, Scalar::Text("frequent".into()));
        assert_eq!(
            (t.min.clone(), t.max.clone()),
            (
                Some(Scalar::Text("frequent".into())),
                Some(Scalar::Text("value-99999".into()))
            )
        );
    }
}
