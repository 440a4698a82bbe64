//! Column statistics gathered while writing: null count, extremes, an estimate of distinct values
//! (HyperLogLog) and the most frequent values (Misra–Gries), in bounded memory per column.

use std::collections::HashMap;

use xxhash_rust::xxh3::xxh3_64;

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
    fn key(&self) -> Key {
        match self {
            Scalar::Int(i) => Key::Int(*i),
            Scalar::Float(f) => Key::Float(f.to_bits()),
            Scalar::Bool(b) => Key::Bool(*b),
            Scalar::Text(s) => Key::Text(s.as_str().into()),
        }
    }
}

/// A value as a hash-map key (floats by their bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Int(i64),
    Float(u64),
    Bool(bool),
    Text(Box<str>),
}

impl Key {
    fn hash64(&self) -> u64 {
        match self {
            Key::Int(i) => xxh3_64(&i.to_le_bytes()),
            Key::Float(f) => xxh3_64(&f.to_le_bytes()),
            Key::Bool(b) => xxh3_64(&[u8::from(*b)]),
            Key::Text(s) => xxh3_64(s.as_bytes()),
        }
    }

    fn scalar(&self) -> Scalar {
        match self {
            Key::Int(i) => Scalar::Int(*i),
            Key::Float(f) => Scalar::Float(f64::from_bits(*f)),
            Key::Bool(b) => Scalar::Bool(*b),
            Key::Text(s) => Scalar::Text(s.to_string()),
        }
    }
}

/// Everything the profile says about one column.
pub struct Stats {
    pub nulls: u64,
    pub min: Option<Scalar>,
    pub max: Option<Scalar>,
    registers: Vec<u8>,
    top: HashMap<Key, u64>,
    /// Text values are counted by `str` so that a value already tracked costs no allocation.
    text_top: HashMap<Box<str>, u64>,
    /// Whether the frequent tables ever had to drop values (then counts are lower bounds and the
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
            top: HashMap::new(),
            text_top: HashMap::new(),
            overflowed: false,
        }
    }
}

impl Stats {
    pub fn see(&mut self, v: Scalar) {
        let key = v.key();
        self.count(key);
        if self.min.as_ref().is_none_or(|m| v < *m) {
            self.min = Some(v.clone());
        }
        if self.max.as_ref().is_none_or(|m| v > *m) {
            self.max = Some(v);
        }
    }

    /// A text value; compared in place, so it costs an allocation only when an extreme moves or
    /// a new value enters the frequent list.
    pub fn see_text(&mut self, s: &str) {
        if !matches!(&self.min, Some(Scalar::Text(m)) if s >= m.as_str()) {
            self.min = Some(Scalar::Text(s.to_string()));
        }
        if !matches!(&self.max, Some(Scalar::Text(m)) if s <= m.as_str()) {
            self.max = Some(Scalar::Text(s.to_string()));
        }
        self.register(xxh3_64(s.as_bytes()));
        if let Some(n) = self.text_top.get_mut(s) {
            *n += 1;
        } else if self.text_top.len() < TOP_CAPACITY {
            self.text_top.insert(s.into(), 1);
        } else {
            self.overflowed = true;
            decrement(&mut self.text_top);
        }
    }

    fn count(&mut self, key: Key) {
        self.register(key.hash64());
        self.frequent(key);
    }

    fn register(&mut self, hash: u64) {
        let idx = (hash >> (64 - HLL_BITS)) as usize;
        let rank = ((hash << HLL_BITS) | (1 << (HLL_BITS - 1))).leading_zeros() as u8 + 1;
        if rank > self.registers[idx] {
            self.registers[idx] = rank;
        }
    }

    fn frequent(&mut self, key: Key) {
        if let Some(n) = self.top.get_mut(&key) {
            *n += 1;
        } else if self.top.len() < TOP_CAPACITY {
            self.top.insert(key, 1);
        } else {
            self.overflowed = true;
            decrement(&mut self.top);
        }
    }

    /// Distinct non-null values: exact while the frequent table never overflowed, else the
    /// HyperLogLog estimate.
    pub fn distinct(&self) -> u64 {
        if !self.overflowed {
            return (self.top.len() + self.text_top.len()) as u64;
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
        let mut v: Vec<(Scalar, u64)> = self.top.iter().map(|(k, n)| (k.scalar(), *n)).collect();
        v.extend(
            self.text_top
                .iter()
                .map(|(k, n)| (Scalar::Text(k.to_string()), *n)),
        );
        v.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then(a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal))
        });
        v.truncate(TOP_LISTED);
        v
    }
}

/// Misra–Gries: a full table makes room by lowering every count by one.
fn decrement<K>(map: &mut HashMap<K, u64>) {
    map.retain(|_, n| {
        *n -= 1;
        *n > 0
    });
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
