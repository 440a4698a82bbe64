//! Rows in a column's value order: a permutation of the row numbers built once per sortable
//! column (posting lists stand in for it on coded columns), by value then by row, the rows
//! without a value last. A range filter on the column is two binary searches in it, and a page
//! sorted on the column is a walk along it keeping the rows that match the filters — or, when
//! few rows match, a sort of those rows — never a sort of the table.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::array::{Array, ArrayRef, BooleanBufferBuilder, RecordBatch, make_comparator};
use arrow::buffer::BooleanBuffer;
use arrow::compute::{SortOptions, sort_to_indices};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type};
use datafusion::scalar::ScalarValue;

use super::{BATCH, Compiled, Driver, Resident, Source};
use crate::error::{Error, Result};
use crate::query::Chunk;
use crate::query::cursor::After;
use crate::query::request::{DataQuery, Filter, Op, Sort};

/// A column's rows by value, then by row, nulls last; and where each run of equal values
/// starts.
pub(super) struct Sorted {
    pub perm: Vec<u32>,
    /// A bit per position in `perm`, set where a run of equal values starts (a new value).
    pub runs: Vec<u64>,
}

impl Sorted {
    /// Arrow's sort, then equal values put back in row order.
    pub fn build(values: &ArrayRef) -> Option<Self> {
        let nulls_last = SortOptions {
            descending: false,
            nulls_first: false,
        };
        let sorted = sort_to_indices(values, Some(nulls_last), None).ok()?;
        let mut perm = sorted.values().to_vec();
        let valued = values.len() - values.null_count();
        let same = make_comparator(values.as_ref(), values.as_ref(), nulls_last).ok()?;
        let mut runs = vec![0u64; perm.len().div_ceil(64)];
        let mut start = 0;
        while start < valued {
            runs[start / 64] |= 1 << (start % 64);
            let mut end = start + 1;
            while end < valued && same(perm[start] as usize, perm[end] as usize).is_eq() {
                end += 1;
            }
            if end - start > 1 {
                perm[start..end].sort_unstable();
            }
            start = end;
        }
        perm[valued..].sort_unstable();
        Some(Sorted { perm, runs })
    }

    pub fn bytes(&self) -> u64 {
        self.perm.len() as u64 * 4 + self.runs.len() as u64 * 8
    }
}

/// Where runs of equal values start in an order.
#[derive(Clone, Copy)]
pub(super) enum Runs<'a> {
    /// A bit per position.
    Bits(&'a [u64]),
    /// The first position of each run, ascending (posting lists' starts).
    Starts(&'a [u32]),
}

impl Runs<'_> {
    /// The start of the run holding position `p`.
    fn start_of(self, p: usize) -> usize {
        match self {
            Runs::Starts(starts) => {
                let i = starts.partition_point(|s| *s as usize <= p);
                starts[i.saturating_sub(1)] as usize
            }
            Runs::Bits(words) => {
                let (mut w, bit) = (p / 64, p % 64);
                let mut word = words[w] & (u64::MAX >> (63 - bit));
                while word == 0 && w > 0 {
                    w -= 1;
                    word = words[w];
                }
                if word == 0 {
                    0
                } else {
                    w * 64 + 63 - word.leading_zeros() as usize
                }
            }
        }
    }
}

/// A column's rows in value order: the first `valued` have a value, the rest are null.
pub(super) struct Order<'a> {
    perm: &'a [u32],
    valued: usize,
    runs: Runs<'a>,
    values: &'a ArrayRef,
}

impl<'a> Order<'a> {
    pub fn new(perm: &'a [u32], valued: usize, runs: Runs<'a>, values: &'a ArrayRef) -> Self {
        Order {
            perm,
            valued,
            runs,
            values,
        }
    }

    pub fn valued(&self) -> usize {
        self.valued
    }

    pub fn rows(&self) -> &'a [u32] {
        self.perm
    }

    /// The positions whose values pass a comparison filter; `None` for other filters.
    pub fn span(&self, f: &Filter) -> Option<Range<usize>> {
        let [v] = f.values.as_slice() else {
            return None;
        };
        if v.is_null() {
            return None;
        }
        let (lo, hi) = self.bounds(v)?;
        Some(match f.op {
            Op::Exact => lo..hi,
            Op::Greater => lo..self.valued,
            Op::StrictlyGreater => hi..self.valued,
            Op::Less => 0..hi,
            Op::StrictlyLess => 0..lo,
            _ => return None,
        })
    }

    /// The position of the first value not below `v`, and of the first above it; `None` when
    /// `v` is not of the column's type.
    fn bounds(&self, v: &ScalarValue) -> Option<(usize, usize)> {
        let probe = v.to_array().ok()?;
        if probe.data_type() != self.values.data_type() {
            return None;
        }
        let options = SortOptions::default();
        let cmp = make_comparator(self.values.as_ref(), probe.as_ref(), options).ok()?;
        let valued = &self.perm[..self.valued];
        let lo = valued.partition_point(|r| cmp(*r as usize, 0).is_lt());
        let hi = lo + valued[lo..].partition_point(|r| cmp(*r as usize, 0).is_le());
        Some((lo, hi))
    }

    /// The rows in a sort's order, ties in row order, from the start or after a cursor.
    fn walk(&self, s: &Sort, after: Option<&After>) -> Result<Box<dyn Iterator<Item = u32> + 'a>> {
        let perm = self.perm;
        let nulls = &perm[self.valued..];
        let from_null = |row: i64| nulls.partition_point(|r| i64::from(*r) <= row);
        let (valued, null_from) = match after.map(|a| (&a.keys[0], a.row)) {
            None => (Some(self.valued_walk(s.descending, None)?), 0),
            Some((key, row)) if key.is_null() => {
                let rest = s.nulls_first.then(|| self.valued_walk(s.descending, None));
                (rest.transpose()?, from_null(row))
            }
            Some((key, row)) => {
                let (lo, hi) = self.bounds(key).ok_or_else(bad_cursor)?;
                let at = lo + perm[lo..hi].partition_point(|r| i64::from(*r) <= row);
                let walk = self.valued_walk(s.descending, Some((lo, at, hi)))?;
                (Some(walk), if s.nulls_first { nulls.len() } else { 0 })
            }
        };
        let nulls = nulls[null_from..].iter().copied();
        let valued = valued.into_iter().flatten();
        Ok(if s.nulls_first {
            Box::new(nulls.chain(valued))
        } else {
            Box::new(valued.chain(nulls))
        })
    }

    /// The rows with a value, ascending or descending (ties in row order either way), from
    /// the start or from a position `at` within the run `lo..hi` of equal values.
    fn valued_walk(
        &self,
        descending: bool,
        at: Option<(usize, usize, usize)>,
    ) -> Result<Box<dyn Iterator<Item = u32> + 'a>> {
        let valued = &self.perm[..self.valued];
        if !descending {
            let from = at.map_or(0, |(_, at, _)| at);
            return Ok(Box::new(valued[from..].iter().copied()));
        }
        Ok(Box::new(DescendingRuns {
            perm: valued,
            runs: self.runs,
            run: at.map_or(0..0, |(_, at, hi)| at..hi),
            rest: at.map_or(valued.len(), |(lo, _, _)| lo),
        }))
    }
}

fn bad_cursor() -> Error {
    Error::bad_request("cursor: its sort key is not a value of the sorted column")
}

/// The runs of equal values from the last to the first, each run in row order.
struct DescendingRuns<'a> {
    perm: &'a [u32],
    runs: Runs<'a>,
    run: Range<usize>,
    /// Positions before this are still to walk.
    rest: usize,
}

impl Iterator for DescendingRuns<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if let Some(p) = self.run.next() {
            return Some(self.perm[p]);
        }
        if self.rest == 0 {
            return None;
        }
        let start = self.runs.start_of(self.rest - 1);
        self.run = start..self.rest;
        self.rest = start;
        self.run.next().map(|p| self.perm[p])
    }
}

/// The rows matching a query's filters.
pub(super) enum Matched<'s> {
    All,
    /// Ascending.
    List(std::borrow::Cow<'s, [u32]>),
    Bits(BooleanBuffer),
}

impl Resident {
    /// The rows of a query sorted on one column with an order, past `offset` (or after the
    /// cursor), at most `limit`, handed to `emit` a batch at a time; returns the number of
    /// rows matching and the position of the last row emitted.
    pub fn sorted(
        &self,
        q: &DataQuery,
        offset: usize,
        limit: Option<usize>,
        emit: impl FnMut(Chunk) -> bool,
    ) -> Result<(u64, Option<After>)> {
        let sort = &q.sorts[0];
        let order = self
            .order(&sort.key)
            .ok_or_else(|| Error::internal(format!("{} has no order", sort.key)))?;
        let after = q.cursor.as_ref().and_then(|c| c.after.as_ref());
        let projection = self.projection(q)?;
        let filters = self.compile(q)?;
        let limit = limit.unwrap_or(usize::MAX);
        if let Some((total, test)) = self.dense_test(q, &filters)? {
            let walk = order.walk(sort, after)?;
            let picked: Vec<u32> = walk
                .filter(|r| test(*r as usize))
                .skip(offset)
                .take(limit)
                .collect();
            return self.sorted_out(&picked, &order, &projection, total, emit);
        }
        let matched = self.matched(q, &filters)?;
        let (total, picked) = match matched {
            Matched::List(rows) if sorting_is_cheaper(rows.len(), offset, limit, self.rows) => {
                let picked = self.sort_rows(&rows, &order, sort, after, offset, limit)?;
                (rows.len(), picked)
            }
            matched => {
                let (total, bits) = match matched {
                    Matched::All => (self.rows, None),
                    Matched::List(rows) => (rows.len(), Some(bitmap(rows.iter(), self.rows))),
                    Matched::Bits(bits) => (bits.count_set_bits(), Some(bits)),
                };
                let walk = order.walk(sort, after)?;
                let kept = walk.filter(|r| bits.as_ref().is_none_or(|b| b.value(*r as usize)));
                (total, kept.skip(offset).take(limit).collect())
            }
        };
        self.sorted_out(&picked, &order, &projection, total, emit)
    }

    /// Emits a sorted page's rows; the count matching, and where the page ends.
    fn sorted_out(
        &self,
        picked: &[u32],
        order: &Order<'_>,
        projection: &[usize],
        total: usize,
        emit: impl FnMut(Chunk) -> bool,
    ) -> Result<(u64, Option<After>)> {
        self.emit_chunks(picked, projection, emit)?;
        let after = match picked.last().copied() {
            Some(r) => Some(After {
                keys: vec![ScalarValue::try_from_array(order.values, r as usize)?],
                row: i64::from(r),
            }),
            None => None,
        };
        Ok((total as u64, after))
    }

    /// The index that answers every filter alone, when it holds at least a [`DENSE`]th of the
    /// rows.
    fn dense_driver<'s>(&'s self, q: &DataQuery, filters: &[Compiled<'s>]) -> Option<Driver<'s>> {
        let d = self.driver(q, filters)?;
        let dense = !filters.is_empty()
            && d.covers.len() == filters.len()
            && d.rows.saturating_mul(DENSE) >= self.rows;
        dense.then_some(d)
    }

    /// When one index answers every filter and holds many rows, a test of a row against it —
    /// its code among the passing ones, or its value within the span's first and last — and
    /// the number of rows it holds: a sorted walk then tests the rows it meets, with no list
    /// or bitmap of the matches made first.
    #[allow(clippy::type_complexity)]
    fn dense_test<'s>(
        &'s self,
        q: &DataQuery,
        filters: &[Compiled<'s>],
    ) -> Result<Option<(usize, Box<dyn Fn(usize) -> bool + 's>)>> {
        let Some(d) = self.dense_driver(q, filters).filter(|d| d.rows > 0) else {
            return Ok(None);
        };
        let test: Box<dyn Fn(usize) -> bool + 's> = match d.source {
            Source::Slots(codes, slots) => {
                let null_slot = codes.values.len();
                let mut pass = vec![false; null_slot + 1];
                slots.iter().for_each(|s| pass[*s] = true);
                Box::new(move |r| pass[usize::from(codes.keys[r]).min(null_slot)])
            }
            Source::Span(order, span) => {
                let values = order.values;
                let (first, last) = (
                    order.perm[span.start] as usize,
                    order.perm[span.end - 1] as usize,
                );
                let nulls = values.logical_nulls();
                let valid = move |r: usize| nulls.as_ref().is_none_or(|n| n.is_valid(r));
                // Numbers compared as numbers; other types through Arrow's comparator.
                match values.data_type() {
                    DataType::Int64 => {
                        let v = values.as_primitive::<Int64Type>().values().clone();
                        let (lo, hi) = (v[first], v[last]);
                        Box::new(move |r| valid(r) && (lo..=hi).contains(&v[r]))
                    }
                    DataType::Date32 => {
                        let v = values.as_primitive::<Date32Type>().values().clone();
                        let (lo, hi) = (v[first], v[last]);
                        Box::new(move |r| valid(r) && (lo..=hi).contains(&v[r]))
                    }
                    DataType::Float64 => {
                        // Arrow orders floats by their total order.
                        let v = values.as_primitive::<Float64Type>().values().clone();
                        let (lo, hi) = (v[first], v[last]);
                        Box::new(move |r| {
                            valid(r) && lo.total_cmp(&v[r]).is_le() && v[r].total_cmp(&hi).is_le()
                        })
                    }
                    _ => {
                        let cmp = make_comparator(
                            values.as_ref(),
                            values.as_ref(),
                            SortOptions::default(),
                        )?;
                        Box::new(move |r| valid(r) && cmp(r, first).is_ge() && cmp(r, last).is_le())
                    }
                }
            }
        };
        Ok(Some((d.rows, test)))
    }

    /// The rows passing every filter: an index's row list, or a bitmap from one pass.
    pub(super) fn matched<'s>(
        &'s self,
        q: &DataQuery,
        filters: &[Compiled<'s>],
    ) -> Result<Matched<'s>> {
        if filters.is_empty() {
            return Ok(Matched::All);
        }
        // An index that answers every filter alone and holds many rows: its rows as a bitmap,
        // with no sorted list made on the way.
        if let Some(d) = self.dense_driver(q, filters) {
            let bits = match &d.source {
                Source::Slots(codes, slots) => bitmap(
                    slots.iter().flat_map(|s| codes.postings.of_slot(*s)),
                    self.rows,
                ),
                Source::Span(order, span) => bitmap(order.rows()[span.clone()].iter(), self.rows),
            };
            return Ok(Matched::Bits(bits));
        }
        if let Some(rows) = self.by_index(q, filters)? {
            return Ok(Matched::List(rows));
        }
        let mut bits = BooleanBufferBuilder::new(self.rows);
        for (b, batch) in self.batches.iter().enumerate() {
            match self.mask(filters, batch, b * BATCH)? {
                Some(m) => bits.append_buffer(m.values()),
                None => bits.append_n(batch.num_rows(), true),
            }
        }
        Ok(Matched::Bits(bits.finish()))
    }

    /// Few matching rows put in the sort's order directly, then cut to the page.
    fn sort_rows(
        &self,
        rows: &[u32],
        order: &Order<'_>,
        sort: &Sort,
        after: Option<&After>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<u32>> {
        let options = SortOptions {
            descending: sort.descending,
            nulls_first: sort.nulls_first,
        };
        let values = order.values.as_ref();
        let cmp = make_comparator(values, values, options)?;
        let mut sorted = rows.to_vec();
        sorted.sort_unstable_by(|a, b| cmp(*a as usize, *b as usize).then(a.cmp(b)));
        let from = match after {
            None => 0,
            Some(a) => {
                let probe = a.keys[0].to_array()?;
                if probe.data_type() != values.data_type() {
                    return Err(bad_cursor());
                }
                let cmp = make_comparator(values, probe.as_ref(), options)?;
                let past = |r: &u32| cmp(*r as usize, 0).then(i64::from(*r).cmp(&a.row));
                sorted.partition_point(|r| past(r).is_le())
            }
        };
        Ok(sorted.into_iter().skip(from + offset).take(limit).collect())
    }

    /// The rows at these indexes, in their order, as one batch.
    pub(super) fn take(&self, rows: &[u32]) -> Result<RecordBatch> {
        let indices = arrow::array::UInt32Array::from(rows.to_vec());
        Ok(arrow::compute::take_record_batch(&self.all, &indices)?)
    }
}

/// Whether sorting the `matches` rows costs less than walking the order until the page is
/// full (about `rows / matches` steps per row kept).
fn sorting_is_cheaper(matches: usize, offset: usize, limit: usize, rows: usize) -> bool {
    if matches == 0 {
        return true;
    }
    let wanted = offset.saturating_add(limit).min(matches) as f64;
    let walk = (wanted * rows as f64 / matches as f64).min(rows as f64);
    let sort = matches as f64 * (matches as f64).log2().max(1.0) * 4.0;
    sort < walk
}

/// A bitmap of the table with these rows set.
fn bitmap<'r>(rows: impl Iterator<Item = &'r u32>, table_rows: usize) -> BooleanBuffer {
    let mut words = vec![0u64; table_rows.div_ceil(64)];
    for r in rows {
        words[*r as usize / 64] |= 1 << (*r % 64);
    }
    BooleanBuffer::new(arrow::buffer::Buffer::from_vec(words), 0, table_rows)
}

/// An index's rows are taken as a bitmap when at least this share of the table (one in
/// `DENSE`): a sorted page then finds its rows within a few thousand steps of its order.
const DENSE: usize = 64;

/// Streams the rows of a query sorted on one column with an order (an export or a page).
pub async fn stream_sorted(
    engine: &crate::query::Engine,
    resident: Arc<Resident>,
    q: DataQuery,
) -> Result<crate::query::BatchStream> {
    let projection = resident.projection(&q)?;
    let schema = Arc::new(resident.schema.project(&projection)?);
    let (offset, limit) = match (q.paged, q.cursor.as_ref().and_then(|c| c.after.as_ref())) {
        (false, _) => (0, None),
        (true, Some(_)) => (0, Some(q.page_size as usize)),
        (true, None) => (q.offset()?, Some(q.page_size as usize)),
    };
    engine
        .stream_from(schema, move |tx| {
            let walked = resident.sorted(&q, offset, limit, |b| tx.blocking_send(Ok(b)).is_ok());
            if let Err(e) = walked {
                let _ = tx.blocking_send(Err(e));
            }
        })
        .await
}
