//! Aggregations answered from memory: groups of coded columns, aggregated in a table indexed
//! by their codes, in the order DataFusion gives them.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow::compute::{SortColumn, SortOptions, cast, lexsort_to_indices, take};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};

use super::Resident;
use super::codes::{Codes, NULL_CODE, Postings};
use super::order::Matched;
use crate::error::{Error, Result};
use crate::query::Chunk;
use crate::query::request::{Agg, Aggregate, DataQuery};

/// Group combinations counted in a table by [`Resident::aggregate`].
const MAX_GROUP_SLOTS: usize = 1 << 20;

impl Resident {
    /// Whether an aggregation is answered here: groups of coded columns (few enough
    /// combinations to count in a table) with counts, integer or float sums and averages, and
    /// the minimum or maximum of integers, dates and datetimes.
    pub fn serves_aggregate(&self, q: &DataQuery) -> bool {
        let slots = q.group_by.iter().try_fold(1usize, |acc, g| {
            let c = self.codes.get(g)?;
            acc.checked_mul(c.values.len() + 1)
        });
        q.is_aggregate()
            && !q.group_by.is_empty()
            && slots.is_some_and(|s| s <= MAX_GROUP_SLOTS)
            && q.aggregates.iter().all(|a| self.output_type(a).is_some())
    }

    /// The type of an aggregate's result as DataFusion gives it, when it is computed here.
    fn output_type(&self, a: &Aggregate) -> Option<DataType> {
        let input = self.schema.field_with_name(&a.column).ok()?.data_type();
        match (a.agg, input) {
            (Agg::Count, _) => Some(DataType::Int64),
            (Agg::Sum, DataType::Int64 | DataType::Float64) => Some(input.clone()),
            (Agg::Avg, DataType::Int64 | DataType::Float64) => Some(DataType::Float64),
            (Agg::Min | Agg::Max, DataType::Int64 | DataType::Date32 | DataType::Timestamp(..)) => {
                Some(input.clone())
            }
            _ => None,
        }
    }

    /// Every group of an aggregation [`Self::serves_aggregate`] accepts, with its aggregates,
    /// in the order DataFusion would give: the requested sorts, then the group keys (nulls
    /// last). A row's group is its codes in mixed radix, so each aggregate is a pass over the
    /// matching rows adding into a table indexed by group.
    pub fn aggregate(&self, q: &DataQuery) -> Result<RecordBatch> {
        let groups: Vec<&Codes> = q
            .group_by
            .iter()
            .map(|g| {
                self.codes
                    .get(g)
                    .ok_or_else(|| Error::internal("not coded"))
            })
            .collect::<Result<_>>()?;
        // The null code takes each column's last digit.
        let radix: Vec<usize> = groups.iter().map(|c| c.values.len() + 1).collect();
        let slots: usize = radix.iter().product();
        let slot_of = match groups.as_slice() {
            [one] => Slots::One(&one.keys, one.values.len() as u32),
            _ => {
                let mut slot_of = vec![0u32; self.rows];
                for (c, r) in groups.iter().zip(&radix) {
                    let one = Slots::One(&c.keys, c.values.len() as u32);
                    for (row, s) in slot_of.iter_mut().enumerate() {
                        *s = *s * *r as u32 + one.of(row) as u32;
                    }
                }
                Slots::Many(slot_of)
            }
        };
        let filters = self.compile(q)?;
        let matched = self.matched(q, &filters)?;
        let rows_in: Vec<i64> = match (&matched, groups.as_slice()) {
            // Every row of one column: its posting lists' lengths.
            (Matched::All, [one]) => one
                .postings
                .starts
                .windows(2)
                .map(|w| i64::from(w[1] - w[0]))
                .collect(),
            _ => {
                let mut rows_in = vec![0i64; slots];
                for_rows(&matched, self.rows, |r| rows_in[slot_of.of(r)] += 1);
                rows_in
            }
        };
        // One output row per slot holding rows.
        let present: Vec<usize> = (0..slots).filter(|s| rows_in[*s] > 0).collect();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (g, c) in groups.iter().enumerate() {
            let below: usize = radix[g + 1..].iter().product();
            let values: StringArray = present
                .iter()
                .map(|s| c.values.get(s / below % radix[g]).map(String::as_str))
                .collect();
            columns.push(Arc::new(values));
        }
        let table = Table {
            slot_of: &slot_of,
            slots,
            present: &present,
            rows_in: &rows_in,
            matched: &matched,
            rows: self.rows,
            lists: match (&matched, groups.as_slice()) {
                (Matched::All, [one]) => Some(&one.postings),
                _ => None,
            },
        };
        for a in &q.aggregates {
            let column = self.all.column(self.schema.index_of(&a.column)?);
            // Over every row by one column, a number column's sums were added at load.
            let totals = match (&matched, q.group_by.as_slice()) {
                (Matched::All, [g]) => self.totals.get(g).and_then(|t| t.get(&a.column)),
                _ => None,
            };
            columns.push(table.compute(a.agg, column, totals)?);
        }
        let batch = RecordBatch::try_new(self.group_schema(q), columns)?;
        sort_groups(q, batch)
    }

    /// The columns of an aggregation, as DataFusion names and types them.
    fn group_schema(&self, q: &DataQuery) -> SchemaRef {
        let groups = q
            .group_by
            .iter()
            .map(|g| Field::new(g, DataType::Utf8, true));
        let aggregates = q.aggregates.iter().map(|a| {
            let kind = self.output_type(a).unwrap_or(DataType::Int64);
            Field::new(a.output_name(), kind, a.agg != Agg::Count)
        });
        Arc::new(Schema::new(groups.chain(aggregates).collect::<Vec<_>>()))
    }
}

/// Per-code sums and counts of a number column over every row, by one coded column: what a
/// group-by without filters adds up, summed once when the version is read in so that such a
/// group-by reads a row per group, not every row.
pub(super) struct Totals {
    /// Sums as floats, per code (the null code's last), added as a group-by adds them.
    floats: Vec<f64>,
    /// Wrapping integer sums, for an integer column.
    ints: Option<Vec<i64>>,
    /// Values (rows not null) per code.
    counts: Vec<i64>,
}

impl Totals {
    /// The totals of `column` by the codes `by`, or `None` for a column that is not a number.
    pub fn of(by: &Codes, column: &ArrayRef) -> Option<Self> {
        let rows = column.len();
        let slot_of = Slots::One(&by.keys, by.values.len() as u32);
        let table = Table {
            slot_of: &slot_of,
            slots: by.values.len() + 1,
            present: &[],
            rows_in: &[],
            matched: &Matched::All,
            rows,
            lists: Some(&by.postings),
        };
        let nulls = column.logical_nulls();
        let valid = |r: usize| nulls.as_ref().is_none_or(|n| n.is_valid(r));
        let (floats, counts, ints) = match column.data_type() {
            DataType::Int64 => {
                let values = column.as_primitive::<Int64Type>().values();
                let (floats, counts) = table.float_sums(valid, |r| values[r] as f64);
                (floats, counts, Some(table.int_sums(valid, values).0))
            }
            DataType::Float64 => {
                let values = column.as_primitive::<Float64Type>().values();
                let (floats, counts) = table.float_sums(valid, |r| values[r]);
                (floats, counts, None)
            }
            _ => return None,
        };
        Some(Totals {
            floats,
            ints,
            counts,
        })
    }

    pub fn bytes(&self) -> u64 {
        let ints = self.ints.as_ref().map_or(0, Vec::len);
        ((self.floats.len() + self.counts.len() + ints) * 8) as u64
    }
}

// `Slots::One` maps the null code to the last slot by taking a minimum.
const _: () = assert!(NULL_CODE == u16::MAX);

/// The group of each row: one column's codes, or the codes of several in mixed radix.
enum Slots<'a> {
    /// Codes and the null code's slot (the number of values).
    One(&'a [u16], u32),
    Many(Vec<u32>),
}

impl Slots<'_> {
    #[inline]
    fn of(&self, row: usize) -> usize {
        match self {
            // The null code is above every other: the minimum maps it to the last slot.
            Slots::One(keys, null_slot) => u32::from(keys[row]).min(*null_slot) as usize,
            Slots::Many(slots) => slots[row] as usize,
        }
    }
}

/// Calls `f` with each matching row, ascending; generic, so that the loops it drives compile
/// to straight code.
fn for_rows(matched: &Matched<'_>, rows: usize, mut f: impl FnMut(usize)) {
    match matched {
        Matched::All => (0..rows).for_each(f),
        Matched::List(list) => list.iter().for_each(|r| f(*r as usize)),
        Matched::Bits(bits) => bits.set_indices().for_each(f),
    }
}

/// The rows and groups of an aggregation, and what the aggregates add into.
struct Table<'a> {
    slot_of: &'a Slots<'a>,
    slots: usize,
    /// The groups holding rows, ascending.
    present: &'a [usize],
    rows_in: &'a [i64],
    matched: &'a Matched<'a>,
    rows: usize,
    /// Each group's rows, when every row is matched and one column groups them.
    lists: Option<&'a Postings>,
}

impl Table<'_> {
    /// One aggregate of a column, per group present, as DataFusion computes it: sums wrap
    /// like its integer sums, averages are float sums over counts, nulls are skipped and a
    /// group without a value gets null.
    fn compute(&self, agg: Agg, column: &ArrayRef, totals: Option<&Totals>) -> Result<ArrayRef> {
        let nulls = column.logical_nulls();
        let valid = |r: usize| nulls.as_ref().is_none_or(|n| n.is_valid(r));
        let per_group = |v: &[i64]| -> Int64Array {
            let out: Vec<i64> = self.present.iter().map(|s| v[*s]).collect();
            out.into()
        };
        // Totals summed at load stand for the pass over the rows.
        Ok(match (agg, column.data_type()) {
            (Agg::Count, _) if nulls.is_none() => Arc::new(per_group(self.rows_in)),
            (Agg::Count, _) => {
                let counts = match totals {
                    Some(t) => Cow::Borrowed(t.counts.as_slice()),
                    None => {
                        let mut counts = vec![0i64; self.slots];
                        self.each(|r, s| counts[s] += i64::from(valid(r)));
                        Cow::Owned(counts)
                    }
                };
                Arc::new(per_group(&counts))
            }
            (Agg::Sum, DataType::Int64) => {
                let (sums, counts) = match totals.and_then(|t| Some((t.ints.as_ref()?, &t.counts)))
                {
                    Some((s, c)) => (Cow::Borrowed(s.as_slice()), Cow::Borrowed(c.as_slice())),
                    None => {
                        let values = column.as_primitive::<Int64Type>().values();
                        let (s, c) = self.int_sums(valid, values);
                        (Cow::Owned(s), Cow::Owned(c))
                    }
                };
                let out = self
                    .present
                    .iter()
                    .map(|s| (counts[*s] > 0).then_some(sums[*s]));
                Arc::new(out.collect::<Int64Array>())
            }
            (Agg::Sum | Agg::Avg, kind) => {
                let (sums, counts) = match (totals, kind) {
                    (Some(t), _) => (
                        Cow::Borrowed(t.floats.as_slice()),
                        Cow::Borrowed(t.counts.as_slice()),
                    ),
                    (None, DataType::Int64) => {
                        let values = column.as_primitive::<Int64Type>().values();
                        let (s, c) = self.float_sums(valid, |r| values[r] as f64);
                        (Cow::Owned(s), Cow::Owned(c))
                    }
                    (None, _) => {
                        let values = column.as_primitive::<Float64Type>().values();
                        let (s, c) = self.float_sums(valid, |r| values[r]);
                        (Cow::Owned(s), Cow::Owned(c))
                    }
                };
                let avg = agg == Agg::Avg;
                let out = self.present.iter().map(|s| {
                    let n = counts[*s];
                    (n > 0).then(|| if avg { sums[*s] / n as f64 } else { sums[*s] })
                });
                Arc::new(out.collect::<Float64Array>())
            }
            (Agg::Min | Agg::Max, _) => {
                // The row holding each group's extreme, then those rows' values.
                let as_int = cast(column, &DataType::Int64)?;
                let values = as_int.as_primitive::<Int64Type>().values();
                let mut best: Vec<Option<u32>> = vec![None; self.slots];
                let better = |v: i64, b: i64| if agg == Agg::Min { v < b } else { v > b };
                self.each(|r, s| {
                    if valid(r) && best[s].is_none_or(|b| better(values[r], values[b as usize])) {
                        best[s] = Some(r as u32);
                    }
                });
                let rows: UInt32Array = self.present.iter().map(|s| best[*s]).collect();
                take(column.as_ref(), &rows, None)?
            }
        })
    }

    /// Wrapping integer sums of values, and the number of values, per group.
    fn int_sums(&self, valid: impl Fn(usize) -> bool, values: &[i64]) -> (Vec<i64>, Vec<i64>) {
        let mut sums = vec![0i64; self.slots];
        let mut counts = vec![0i64; self.slots];
        self.each(|r, s| {
            if valid(r) {
                sums[s] = sums[s].wrapping_add(values[r]);
                counts[s] += 1;
            }
        });
        (sums, counts)
    }

    /// Sums of values as floats, and the number of values, per group.
    fn float_sums(
        &self,
        valid: impl Fn(usize) -> bool,
        value: impl Fn(usize) -> f64,
    ) -> (Vec<f64>, Vec<i64>) {
        let mut sums = vec![0f64; self.slots];
        let mut counts = vec![0i64; self.slots];
        if let Some(lists) = self.lists {
            // Group by group, in four running sums: additions that do not wait on each other.
            for s in 0..self.slots {
                let rows = lists.of_slot(s);
                let mut acc = [0f64; 4];
                let mut n = 0;
                for four in rows.chunks(4) {
                    for (k, r) in four.iter().enumerate() {
                        let r = *r as usize;
                        if valid(r) {
                            acc[k] += value(r);
                            n += 1;
                        }
                    }
                }
                sums[s] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
                counts[s] = n;
            }
            return (sums, counts);
        }
        self.each(|r, s| {
            if valid(r) {
                sums[s] += value(r);
                counts[s] += 1;
            }
        });
        (sums, counts)
    }

    /// Calls `f` with each matching row and its group.
    #[inline]
    fn each(&self, mut f: impl FnMut(usize, usize)) {
        for_rows(self.matched, self.rows, |r| f(r, self.slot_of.of(r)));
    }
}

/// Groups in the order of `plan`: the requested sorts, then the group keys.
fn sort_groups(q: &DataQuery, batch: RecordBatch) -> Result<RecordBatch> {
    let mut keys: Vec<SortColumn> = Vec::new();
    let sort_col = |name: &str, descending: bool, nulls_first: bool| -> Result<SortColumn> {
        let i = batch.schema().index_of(name)?;
        Ok(SortColumn {
            values: Arc::clone(batch.column(i)),
            options: Some(SortOptions {
                descending,
                nulls_first,
            }),
        })
    };
    for s in &q.sorts {
        keys.push(sort_col(&s.key, s.descending, s.nulls_first)?);
    }
    for g in &q.group_by {
        keys.push(sort_col(g, false, false)?);
    }
    let order = lexsort_to_indices(&keys, None)?;
    let sorted = batch
        .columns()
        .iter()
        .map(|c| take(c, &order, None))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(batch.schema(), sorted)?)
}

/// A page of groups (all of them when the query is not paged), with the number of groups.
pub fn group_page(r: &Resident, q: &DataQuery, paged: bool) -> Result<(RecordBatch, u64)> {
    let all = r.aggregate(q)?;
    let n = all.num_rows();
    if !paged {
        return Ok((all, n as u64));
    }
    let from = q.offset()?.min(n);
    let len = (q.page_size as usize).min(n - from);
    Ok((all.slice(from, len), n as u64))
}

/// Streams a counted aggregation (an export) from a resident version.
pub async fn stream_groups(
    engine: &crate::query::Engine,
    resident: Arc<Resident>,
    q: DataQuery,
) -> Result<crate::query::BatchStream> {
    engine
        .stream_from(resident.group_schema(&q), move |tx| {
            let item = group_page(&resident, &q, q.paged).map(|(batch, _)| Chunk::Batch(batch));
            let _ = tx.blocking_send(item);
        })
        .await
}
