//! Column statistics gathered while writing: null count, extremes, an estimate of distinct values
//! (HyperLogLog) and the most frequent values (Misra–Gries), in bounded memory per column.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::{max, min};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use serde_json::Value;
use xxhash_rust::xxh3::xxh3_64;

use crate::dataset::manifest::{ColumnProfile, TopValue};
use crate::dataset::schema::{Column, ColumnType};

/// HyperLogLog precision: 2^12 registers, about 1.6 % standard error, 4 KiB a column.
const HLL_BITS: u32 = 12;
/// Values the most-frequent list keeps track of (twice as many between reductions); counts are
/// exact for columns with at most twice this many distinct values, lower bounds otherwise.
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
    /// Misra–Gries counters by value hash, with the value they count: up to twice
    /// [`TOP_CAPACITY`], reduced to it when full.
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
        self.extremes(&v);
        self.count(v);
    }

    fn extremes(&mut self, v: &Scalar) {
        if self.min.as_ref().is_none_or(|m| v < m) {
            self.min = Some(v.clone());
        }
        if self.max.as_ref().is_none_or(|m| v > m) {
            self.max = Some(v.clone());
        }
    }

    /// Counts a value in the distinct estimate and the frequent table.
    fn count(&mut self, v: Scalar) {
        let hash = v.hash64();
        self.register(hash);
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

    /// Misra–Gries with room to spare: a new value enters the table, and a full table is
    /// reduced by the count just past [`TOP_CAPACITY`] (every count lowered by it, the values
    /// at zero leaving). Each reduction frees half the table, so a value costs O(1) on average
    /// where lowering by one on every miss costs a sweep each time; the guarantee is the same
    /// (a value seen more than n / (capacity + 1) times is kept).
    fn frequent(&mut self, hash: u64, value: impl FnOnce() -> Scalar) {
        if let Some((n, _)) = self.top.get_mut(&hash) {
            *n += 1;
        } else {
            self.top.insert(hash, (1, value()));
            if self.top.len() > 2 * TOP_CAPACITY {
                self.reduce();
            }
        }
    }

    fn reduce(&mut self) {
        if self.top.len() <= TOP_CAPACITY {
            return;
        }
        self.overflowed = true;
        let mut counts: Vec<u64> = self.top.values().map(|(n, _)| *n).collect();
        let (_, cut, _) = counts.select_nth_unstable_by(TOP_CAPACITY, |a, b| b.cmp(a));
        let cut = *cut;
        self.top.retain(|_, (n, _)| *n > cut);
        self.top.values_mut().for_each(|(n, _)| *n -= cut);
    }

    /// Adds what another part of the same column saw (Misra–Gries summaries merge: sum the
    /// counts, then lower them all by the count just past the table's capacity).
    pub fn merge(&mut self, other: Stats) {
        self.nulls += other.nulls;
        for v in [&other.min, &other.max].into_iter().flatten() {
            self.extremes(v);
        }
        for (mine, theirs) in self.registers.iter_mut().zip(&other.registers) {
            *mine = (*mine).max(*theirs);
        }
        self.overflowed |= other.overflowed;
        for (hash, (n, v)) in other.top {
            self.top.entry(hash).or_insert((0, v)).0 += n;
        }
        if self.top.len() > 2 * TOP_CAPACITY {
            self.reduce();
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
        self.see_arrays(batch.columns());
    }

    /// Counts the columns of a batch (a trailing row-number column is left out).
    pub fn see_arrays(&mut self, arrays: &[ArrayRef]) {
        for (stats, array) in self.stats.iter_mut().zip(arrays) {
            stats.see_array(array.as_ref());
        }
    }

    /// Adds the statistics another profiler gathered over other rows of the same columns.
    pub fn merge(&mut self, other: Profiler) {
        for (mine, theirs) in self.stats.iter_mut().zip(other.stats) {
            mine.merge(theirs);
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
        // Integers, dates and datetimes: extremes by Arrow's kernels, counts value by value.
        macro_rules! each {
            ($ty:ty, $wrap:expr) => {{
                let values = array.as_primitive::<$ty>();
                if let (Some(lo), Some(hi)) = (min(values), max(values)) {
                    self.extremes(&$wrap(lo));
                    self.extremes(&$wrap(hi));
                }
                for v in values.iter().flatten() {
                    self.count($wrap(v));
                }
            }};
        }
        match array.data_type() {
            DataType::Utf8 => {
                for v in array.as_string::<i32>().iter().flatten() {
                    self.see_text(v);
                }
            }
            DataType::Int64 => each!(Int64Type, Scalar::Int),
            // Floats one by one: a NaN must not become an extreme, as it would in the kernels.
            DataType::Float64 => {
                for v in array.as_primitive::<Float64Type>().iter().flatten() {
                    self.see(Scalar::Float(v));
                }
            }
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
        (ColumnType::Date, Some(Scalar::Int(days))) => crate::values::date_of_days(days)
            .map_or(Value::Null, |d| {
                Value::String(d.format("%Y-%m-%d").to_string())
            }),
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

    #[test]
    fn parts_merge_into_the_counts_of_the_whole() {
        let (mut a, mut b) = (Stats::default(), Stats::default());
        for i in 0..50_000 {
            // Few values in `a`, a heavy hitter among many values in `b`.
            a.see(Scalar::Int(i % 4));
            b.see(Scalar::Int(if i % 5 == 0 { 2 } else { 1_000 + i }));
        }
        a.merge(b);
        let top = a.top();
        // Value 2 is the most frequent over both parts: 12,500 + 10,000 times, within the
        // Misra–Gries bound (n / 129 ≈ 775) of its count.
        assert_eq!(top[0].0, Scalar::Int(2));
        assert!(top[0].1 <= 22_500 && top[0].1 >= 22_500 - 775, "{top:?}");
        assert_eq!(
            (a.min.clone(), a.max.clone()),
            (Some(Scalar::Int(0)), Some(Scalar::Int(50_999)))
        );
        let d = a.distinct() as f64;
        assert!((d - 40_004.0).abs() / 40_004.0 < 0.05, "{d}");
        let (mut c, mut d) = (Stats::default(), Stats::default());
        for i in 0..1_000 {
            c.see_text(["x", "y"][i % 2]);
            d.see_text(["y", "z"][i % 2]);
        }
        c.merge(d);
        assert_eq!(c.distinct(), 3);
        assert_eq!(
            c.top(),
            vec![
                (Scalar::Text("y".into()), 1_000),
                (Scalar::Text("x".into()), 500),
                (Scalar::Text("z".into()), 500)
            ]
        );
    }
}
