//! Dictionary codes of a resident string column: a small integer per row, numbered in the
//! values' sort order, with the rows of each code (posting lists) — so that equality is a
//! comparison of integers, a selective equality reads its rows, and the rows in value order are
//! the posting lists one after the other.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, StringArray};
use datafusion::scalar::ScalarValue;

use crate::query::request::{Filter, Op};

/// A code for each distinct value fits in 16 bits; this one stands for null.
pub(super) const NULL_CODE: u16 = u16::MAX;

/// Dictionary codes of a string column: one per row, over the whole version.
pub(super) struct Codes {
    /// The value of each code, ascending: code order is value order, so a value's code is
    /// found by binary search.
    pub values: Vec<String>,
    pub keys: Vec<u16>,
    /// The rows of each code, ascending (the null code's last): a posting list per value, so
    /// that a selective equality reads its rows instead of testing every row.
    pub postings: Postings,
}

impl Codes {
    /// Codes for a string column, or `None` when it is not text or has too many distinct
    /// values.
    pub fn of(column: &dyn arrow::array::Array) -> Option<Self> {
        let arr: &StringArray = column.as_string_opt()?;
        let mut lookup: HashMap<&str, u16> = HashMap::new();
        let mut keys = Vec::with_capacity(arr.len());
        for v in arr.iter() {
            keys.push(match v {
                None => NULL_CODE,
                Some(s) => match lookup.get(s) {
                    Some(c) => *c,
                    None => {
                        let c = u16::try_from(lookup.len())
                            .ok()
                            .filter(|c| *c < NULL_CODE)?;
                        lookup.insert(s, c);
                        c
                    }
                },
            });
        }
        // Renumbered in value order (bytewise, as Arrow sorts text).
        let mut values: Vec<(&str, u16)> = lookup.into_iter().collect();
        values.sort_unstable();
        let mut renumber = vec![0u16; values.len()];
        for (new, (_, old)) in values.iter().enumerate() {
            renumber[*old as usize] = new as u16;
        }
        for k in keys.iter_mut().filter(|k| **k != NULL_CODE) {
            *k = renumber[*k as usize];
        }
        let values: Vec<String> = values.into_iter().map(|(v, _)| v.to_string()).collect();
        let postings = Postings::of(&keys, values.len())?;
        Some(Codes {
            values,
            keys,
            postings,
        })
    }

    pub fn bytes(&self) -> u64 {
        self.keys.len() as u64 * 2
            + self.postings.bytes()
            + self.values.iter().map(|v| v.len() as u64 + 32).sum::<u64>()
    }
}

/// Row lists by code, in one array: the rows of code `c` are `rows[starts[c]..starts[c + 1]]`,
/// the null code's in the last slot. As codes follow value order, `rows` lists the rows by
/// value, then by row.
pub(super) struct Postings {
    pub starts: Vec<u32>,
    pub rows: Vec<u32>,
}

impl Postings {
    /// Built by a counting sort of the keys: two passes, no comparison.
    fn of(keys: &[u16], codes: usize) -> Option<Self> {
        let slot = |k: u16| if k == NULL_CODE { codes } else { k as usize };
        let mut starts = vec![0u32; codes + 2];
        for k in keys {
            starts[slot(*k) + 1] += 1;
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut next = starts.clone();
        let mut rows = vec![0u32; keys.len()];
        for (row, k) in keys.iter().enumerate() {
            let at = &mut next[slot(*k)];
            rows[*at as usize] = u32::try_from(row).ok()?;
            *at += 1;
        }
        Some(Postings { starts, rows })
    }

    pub fn of_slot(&self, slot: usize) -> &[u32] {
        &self.rows[self.starts[slot] as usize..self.starts[slot + 1] as usize]
    }

    fn bytes(&self) -> u64 {
        (self.starts.len() + self.rows.len()) as u64 * 4
    }
}

/// Which codes pass: a table indexed by code (the null code included), and the one code that
/// passes when there is only one (a plain equality, counted by comparing integers, which the
/// compiler turns into vector instructions).
pub(super) struct CodeTest {
    pub pass: Vec<bool>,
    only: Option<u16>,
}

impl CodeTest {
    pub fn of(f: &Filter, codes: &Codes) -> Option<Self> {
        let size = codes.values.len();
        let code_of = |v: &ScalarValue| match v {
            ScalarValue::Utf8(Some(s)) => Some(
                codes
                    .values
                    .binary_search_by(|v| v.as_str().cmp(s))
                    .ok()
                    .map(|c| c as u16),
            ),
            _ => None,
        };
        let mut pass = vec![false; size + 1];
        let null_slot = size;
        let listed = |pass: &mut Vec<bool>, value: bool| -> Option<()> {
            for v in &f.values {
                if let Some(c) = code_of(v)? {
                    pass[c as usize] = value;
                }
            }
            Some(())
        };
        match f.op {
            Op::Exact | Op::In => listed(&mut pass, true)?,
            // Negatives keep nulls: a missing value differs from any given one.
            Op::Differs | Op::NotIn => {
                pass.iter_mut().for_each(|p| *p = true);
                listed(&mut pass, false)?;
            }
            Op::IsNull => pass[null_slot] = true,
            Op::IsNotNull => {
                pass.iter_mut().for_each(|p| *p = true);
                pass[null_slot] = false;
            }
            _ => return None,
        }
        let mut passing = pass.iter().enumerate().filter(|(_, p)| **p).map(|(c, _)| c);
        let only = match (passing.next(), passing.next()) {
            (Some(c), None) if c != null_slot => u16::try_from(c).ok(),
            _ => None,
        };
        Some(CodeTest { pass, only })
    }

    /// How many of these codes pass.
    pub fn count(&self, keys: &[u16]) -> usize {
        match self.only {
            Some(code) => keys.iter().filter(|k| **k == code).count(),
            None => keys.iter().filter(|k| self.pass(**k)).count(),
        }
    }

    #[inline]
    pub fn pass(&self, key: u16) -> bool {
        let slot = if key == NULL_CODE {
            self.pass.len() - 1
        } else {
            key as usize
        };
        self.pass[slot]
    }
}
