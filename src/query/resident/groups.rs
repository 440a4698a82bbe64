//! Aggregations answered from memory: groups of coded columns, aggregated in a table indexed
//! by their codes, in the order DataFusion gives them.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array,
};
use arrow::compute::{SortColumn, SortOptions, cast, lexsort_to_indices, take};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};

use super::Resident;
use super::codes::{Codes, NULL_CODE};
use super::order::Matched;
use crate::error::{Error, Result};
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
        let mut slot_of = vec![0u32; self.rows];
        for (c, r) in groups.iter().zip(&radix) {
            let null_digit = c.values.len() as u32;
            for (s, k) in slot_of.iter_mut().zip(&c.keys) {
                let digit = if *k == NULL_CODE {
                    null_digit
                } else {
                    u32::from(*k)
                };
                *s = *s * *r as u32 + digit;
            }
        }
        let filters = self.compile(q)?;
        let matched = self.matched(q, &filters)?;
        let each = |f: &mut dyn FnMut(usize)| match &matched {
            Matched::All => (0..self.rows).for_each(f),
            Matched::List(rows) => rows.iter().for_each(|r| f(*r as usize)),
            Matched::Bits(bits) => bits.set_indices().for_each(f),
        };
        let mut rows_in = vec![0i64; slots];
        each(&mut |r| rows_in[slot_of[r] as usize] += 1);
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
        };
        for a in &q.aggregates {
            let column = self.all.column(self.schema.index_of(&a.column)?);
            columns.push(table.compute(a.agg, column, &each)?);
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

/// The group of each row, and what the aggregates add into.
struct Table<'a> {
    slot_of: &'a [u32],
    slots: usize,
    /// The groups holding rows, ascending.
    present: &'a [usize],
    rows_in: &'a [i64],
}

type EachRow<'e> = dyn Fn(&mut dyn FnMut(usize)) + 'e;

impl Table<'_> {
    /// One aggregate of a column, per group present, as DataFusion computes it: sums wrap
    /// like its integer sums, averages are float sums over counts, nulls are skipped and a
    /// group without a value gets null.
    fn compute(&self, agg: Agg, column: &ArrayRef, each: &EachRow<'_>) -> Result<ArrayRef> {
        let slot = |r: usize| self.slot_of[r] as usize;
        let nulls = column.logical_nulls();
        let valid = |r: usize| nulls.as_ref().is_none_or(|n| n.is_valid(r));
        let mut counts = vec![0i64; self.slots];
        let counted = |counts: &[i64]| -> Int64Array {
            self.present
                .iter()
                .map(|s| counts[*s])
                .collect::<Vec<_>>()
                .into()
        };
        Ok(match agg {
            Agg::Count if nulls.is_none() => Arc::new(counted(self.rows_in)),
            Agg::Count => {
                each(&mut |r| counts[slot(r)] += i64::from(valid(r)));
                Arc::new(counted(&counts))
            }
            Agg::Sum if column.data_type() == &DataType::Int64 => {
                let values = column.as_primitive::<Int64Type>().values();
                let mut sums = vec![0i64; self.slots];
                each(&mut |r| {
                    if valid(r) {
                        sums[slot(r)] = sums[slot(r)].wrapping_add(values[r]);
                        counts[slot(r)] += 1;
                    }
                });
                let out = self
                    .present
                    .iter()
                    .map(|s| (counts[*s] > 0).then_some(sums[*s]));
                Arc::new(out.collect::<Int64Array>())
            }
            Agg::Sum | Agg::Avg => {
                let as_float = cast(column, &DataType::Float64)?;
                let values = as_float.as_primitive::<Float64Type>().values();
                let mut sums = vec![0f64; self.slots];
                each(&mut |r| {
                    if valid(r) {
                        sums[slot(r)] += values[r];
                        counts[slot(r)] += 1;
                    }
                });
                let avg = agg == Agg::Avg;
                let out = self.present.iter().map(|s| {
                    let n = counts[*s];
                    (n > 0).then(|| if avg { sums[*s] / n as f64 } else { sums[*s] })
                });
                Arc::new(out.collect::<Float64Array>())
            }
            Agg::Min | Agg::Max => {
                // The row holding each group's extreme, then those rows' values.
                let as_int = cast(column, &DataType::Int64)?;
                let values = as_int.as_primitive::<Int64Type>().values();
                let mut best: Vec<Option<u32>> = vec![None; self.slots];
                let better = |v: i64, b: i64| if agg == Agg::Min { v < b } else { v > b };
                each(&mut |r| {
                    if valid(r) {
                        let b = &mut best[slot(r)];
                        if b.is_none_or(|b| better(values[r], values[b as usize])) {
                            *b = Some(r as u32);
                        }
                    }
                });
                let rows: UInt32Array = self.present.iter().map(|s| best[*s]).collect();
                take(column.as_ref(), &rows, None)?
            }
        })
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
            let item = group_page(&resident, &q, q.paged).map(|(batch, _)| batch);
            let _ = tx.blocking_send(item);
        })
        .await
}
