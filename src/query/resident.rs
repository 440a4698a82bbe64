//! Datasets held in memory. A version that fits the resident budget is decoded once, when it is
//! published; its repetitive string columns also get dictionary codes. The common request — a
//! page in file order under filters — is then answered without planning anything: one pass over
//! the filter columns gives the exact total and the page's rows together, equality on a coded
//! column is a comparison of small integers, and a cursor seeks to its row directly. Sorted and
//! aggregated queries run in DataFusion over the same batches (a `MemTable`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow::buffer::BooleanBuffer;
use arrow::compute::{SortColumn, SortOptions, lexsort_to_indices, take};
use arrow::datatypes::SchemaRef;
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::common::DFSchema;
use datafusion::datasource::MemTable;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::physical_expr::{PhysicalExpr, create_physical_expr};
use datafusion::scalar::ScalarValue;

use super::budget::{Budget, Reservation, ReservationTicket};
use super::plan::{condition_expr, filter_expr};
use super::request::{Agg, DataQuery, Filter, Op};
use crate::dataset::manifest::Manifest;
use crate::dataset::schema::{ColumnType, file_order};
use crate::error::{Error, Result};

/// A code for each distinct value fits in 16 bits; this one stands for null.
const NULL_CODE: u16 = u16::MAX;

/// Group combinations counted in a table by [`Resident::aggregate`].
const MAX_GROUP_SLOTS: usize = 1 << 20;

/// Dictionary codes of a string column: one per row, over the whole version.
struct Codes {
    lookup: HashMap<String, u16>,
    /// The value of each code.
    values: Vec<String>,
    keys: Vec<u16>,
    /// The rows of each code, ascending (the null code's last): a posting list per value, so
    /// that a selective equality reads its rows instead of testing every row.
    postings: Postings,
}

/// Row lists by code, in one array: the rows of code `c` are `rows[starts[c]..starts[c + 1]]`,
/// the null code's in the last slot.
struct Postings {
    starts: Vec<u32>,
    rows: Vec<u32>,
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

    fn of_slot(&self, slot: usize) -> &[u32] {
        &self.rows[self.starts[slot] as usize..self.starts[slot + 1] as usize]
    }

    fn bytes(&self) -> u64 {
        (self.starts.len() + self.rows.len()) as u64 * 4
    }
}

/// The rows a selective filter's posting lists give are read when there are fewer than the
/// table's rows divided by this; above, one pass over the codes is as fast.
const POSTINGS_SELECTIVITY: usize = 8;

/// A version's rows in memory, in file order (`__row` is the row's index).
pub struct Resident {
    pub schema: SchemaRef,
    batches: Vec<RecordBatch>,
    /// Index of each batch's first row.
    starts: Vec<usize>,
    rows: usize,
    codes: HashMap<String, Codes>,
    _reservation: Reservation,
}

/// What a page needs from a resident version.
pub struct Selection {
    /// The page's rows, with the query's columns.
    pub batches: Vec<RecordBatch>,
    /// Rows matching the filters.
    pub total: u64,
    /// Row number of the page's last row.
    pub last_row: Option<i64>,
}

impl Resident {
    /// The memory a version is expected to take decoded, from its source's size and rows.
    pub fn estimate(manifest: &Manifest) -> u64 {
        // Arrow holds text much as the CSV does, plus offsets; numbers take 8 bytes.
        let gz = manifest.source.uri.ends_with(".gz");
        manifest.source.bytes * if gz { 12 } else { 2 } + manifest.rows * 16
    }

    /// Reserves a version's estimate before it is read, so that a dataset far too big for the
    /// budget is never decoded.
    pub fn reserve(budget: &Arc<Budget>, manifest: &Manifest) -> Option<ReservationTicket> {
        budget
            .reserve(Self::estimate(manifest))
            .map(ReservationTicket)
    }

    /// Builds the resident form of a version from its batches, holding `ticket`'s budget
    /// (adjusted to the real size, or refused when that does not fit).
    pub fn build(
        batches: Vec<RecordBatch>,
        schema: SchemaRef,
        manifest: &Manifest,
        ticket: ReservationTicket,
    ) -> Option<Self> {
        let mut starts = Vec::with_capacity(batches.len());
        let mut rows = 0;
        for b in &batches {
            starts.push(rows);
            rows += b.num_rows();
        }
        let mut codes = HashMap::new();
        for (i, col) in manifest.schema.iter().enumerate() {
            let repetitive = manifest
                .profile
                .get(i)
                .is_some_and(|p| p.distinct < u64::from(NULL_CODE) / 2);
            if col.kind != ColumnType::String || !repetitive {
                continue;
            }
            if let Some(c) = encode(&batches, i, rows) {
                codes.insert(col.name.clone(), c);
            }
        }
        let bytes = batches
            .iter()
            .map(|b| b.get_array_memory_size() as u64)
            .sum::<u64>()
            + codes
                .values()
                .map(|c| c.keys.len() as u64 * 2 + c.postings.bytes())
                .sum::<u64>();
        let ReservationTicket(mut reservation) = ticket;
        reservation.resize(bytes)?;
        Some(Resident {
            schema,
            batches,
            starts,
            rows,
            codes,
            _reservation: reservation,
        })
    }

    /// The same rows as a DataFusion table, split into `partitions` runs of consecutive
    /// batches, each in file order.
    pub fn table(&self, partitions: usize) -> Result<Arc<dyn TableProvider>> {
        let per = self.batches.len().div_ceil(partitions.max(1)).max(1);
        let parts: Vec<Vec<RecordBatch>> = self.batches.chunks(per).map(<[_]>::to_vec).collect();
        let parts = if parts.is_empty() {
            vec![Vec::new()]
        } else {
            parts
        };
        let table = MemTable::try_new(Arc::clone(&self.schema), parts)?
            .with_sort_order(vec![vec![file_order()]]);
        Ok(Arc::new(table))
    }

    /// Whether a query is answered here: rows in file order (no sort, no aggregation).
    pub fn serves(q: &DataQuery) -> bool {
        !q.is_aggregate() && q.sorts.is_empty()
    }

    /// The rows of a query in file order: those after `after_row` (a cursor's row), skipping
    /// `offset` matches, at most `limit` (all when `None`), with the exact total.
    pub fn select(
        &self,
        q: &DataQuery,
        after_row: Option<i64>,
        offset: usize,
        limit: Option<usize>,
    ) -> Result<Selection> {
        let mut batches = Vec::new();
        let (total, last_row) = self.scan(q, after_row, offset, limit, true, |b| {
            batches.push(b);
            true
        })?;
        Ok(Selection {
            batches,
            total: total.unwrap_or_default(),
            last_row,
        })
    }

    /// Walks the matching rows in file order, handing each batch of them to `emit` (which may
    /// stop the walk by answering `false`). With `count`, every batch is tested to the end and
    /// the exact total returned; otherwise the walk stops once `limit` rows were emitted.
    pub fn scan(
        &self,
        q: &DataQuery,
        after_row: Option<i64>,
        offset: usize,
        limit: Option<usize>,
        count: bool,
        mut emit: impl FnMut(RecordBatch) -> bool,
    ) -> Result<(Option<u64>, Option<i64>)> {
        let projection = self.projection(q)?;
        let filters = self.compile(q)?;
        let first_row = after_row.map_or(0, |r| usize::try_from(r + 1).unwrap_or(0));
        if let Some(rows) = self.by_postings(&filters)? {
            return self.emit_rows(&rows, &projection, first_row, offset, limit, count, emit);
        }
        let mut total = 0u64;
        let mut to_skip = offset;
        let mut wanted = limit.unwrap_or(usize::MAX);
        let mut last_row = None;
        for (b, batch) in self.batches.iter().enumerate() {
            let start = self.starts[b];
            let n = batch.num_rows();
            let done = wanted == 0;
            if done && !count {
                break;
            }
            // Batches before the cursor only count.
            let before = start + n <= first_row;
            if !count && before {
                continue;
            }
            // A batch that only counts, under one coded filter: count codes, build no mask.
            if (done || before)
                && let [Compiled::Codes(codes, test)] = filters.as_slice()
            {
                total += test.count(&codes.keys[start..start + n]) as u64;
                continue;
            }
            let mask = self.mask(&filters, batch, start)?;
            total += mask.as_ref().map_or(n, |m| m.true_count()) as u64;
            if done || before {
                continue;
            }
            let from = first_row.saturating_sub(start);
            let rows = batch.slice(from, n - from);
            let mut picked = match &mask {
                Some(m) => {
                    let m = m.slice(from, n - from);
                    arrow::compute::filter_record_batch(&rows, &m)?
                }
                None => rows,
            };
            let skip = to_skip.min(picked.num_rows());
            to_skip -= skip;
            let take = wanted.min(picked.num_rows() - skip);
            if take == 0 {
                continue;
            }
            picked = picked.slice(skip, take);
            wanted -= take;
            last_row = picked
                .column(picked.num_columns() - 1)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .last()
                .copied();
            if !emit(picked.project(&projection)?) {
                break;
            }
        }
        Ok((count.then_some(total), last_row))
    }

    /// Indexes of the columns a query returns (all but the row number by default).
    fn projection(&self, q: &DataQuery) -> Result<Vec<usize>> {
        match &q.columns {
            Some(cols) => cols.iter().map(|c| Ok(self.schema.index_of(c)?)).collect(),
            None => Ok((0..self.schema.fields().len() - 1).collect()),
        }
    }

    /// Each filter as a test on codes, where its column has them and the operator is one of
    /// equality, or as a DataFusion expression evaluated on the batch; each `or=` group as an
    /// expression too.
    fn compile(&self, q: &DataQuery) -> Result<Vec<Compiled<'_>>> {
        let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
        let props = ExecutionProps::new();
        let physical = |e: &Expr| -> Result<Compiled<'_>> {
            let ctx = PhysicalPlanningContext::default();
            Ok(Compiled::Expr(create_physical_expr(
                e, &df_schema, &props, &ctx,
            )?))
        };
        let mut compiled = Vec::with_capacity(q.filters.len() + q.groups.len());
        for f in &q.filters {
            if let Some(codes) = self.codes.get(&f.column)
                && let Some(test) = CodeTest::of(f, codes)
            {
                compiled.push(Compiled::Codes(codes, test));
            } else {
                compiled.push(physical(&filter_expr(f))?);
            }
        }
        for g in &q.groups {
            compiled.push(physical(&condition_expr(g))?);
        }
        Ok(compiled)
    }

    /// Rows of one batch passing every filter (`None`: no filters, all pass).
    fn mask(
        &self,
        filters: &[Compiled<'_>],
        batch: &RecordBatch,
        start: usize,
    ) -> Result<Option<BooleanArray>> {
        let mut mask: Option<BooleanArray> = None;
        for f in filters {
            let m = match f {
                Compiled::Codes(codes, test) => {
                    let keys = &codes.keys[start..start + batch.num_rows()];
                    BooleanArray::new(
                        BooleanBuffer::collect_bool(keys.len(), |i| test.pass(keys[i])),
                        None,
                    )
                }
                Compiled::Expr(e) => passes(e, batch)?,
            };
            mask = Some(match mask {
                None => m,
                Some(prev) => arrow::compute::and(&prev, &m)?,
            });
        }
        Ok(mask)
    }

    /// The rows matching every filter, read from the posting lists of the most selective
    /// coded filter and tested against the others, when that reads under a
    /// [`POSTINGS_SELECTIVITY`]th of the table; `None` when a pass over the table is as cheap.
    fn by_postings<'s>(
        &'s self,
        filters: &[Compiled<'s>],
    ) -> Result<Option<std::borrow::Cow<'s, [u32]>>> {
        let slots = |codes: &Codes, test: &CodeTest| -> (Vec<usize>, usize) {
            let slots: Vec<usize> = (0..test.pass.len()).filter(|s| test.pass[*s]).collect();
            let n = slots.iter().map(|s| codes.postings.of_slot(*s).len()).sum();
            (slots, n)
        };
        let driver = filters
            .iter()
            .enumerate()
            .filter_map(|(i, f)| match f {
                Compiled::Codes(codes, test) => Some((i, codes, slots(codes, test))),
                Compiled::Expr(_) => None,
            })
            .min_by_key(|(_, _, (_, n))| *n);
        let Some((d, codes, (slots, n))) = driver else {
            return Ok(None);
        };
        if n.saturating_mul(POSTINGS_SELECTIVITY) > self.rows {
            return Ok(None);
        }
        // One value and no other filter, the common case: its posting list as it is.
        if let ([slot], 1) = (slots.as_slice(), filters.len()) {
            return Ok(Some(std::borrow::Cow::Borrowed(
                codes.postings.of_slot(*slot),
            )));
        }
        let mut rows: Vec<u32> = Vec::with_capacity(n);
        for s in &slots {
            rows.extend_from_slice(codes.postings.of_slot(*s));
        }
        if slots.len() > 1 {
            rows.sort_unstable();
        }
        let mut exprs = Vec::new();
        for (i, f) in filters.iter().enumerate() {
            match f {
                _ if i == d => {}
                // Another coded filter: a look at each row's code.
                Compiled::Codes(c, t) => rows.retain(|r| t.pass(c.keys[*r as usize])),
                Compiled::Expr(e) => exprs.push(e),
            }
        }
        if exprs.is_empty() || rows.is_empty() {
            return Ok(Some(rows.into()));
        }
        // Expressions are evaluated on the rows gathered, not on the table.
        let mut kept = Vec::with_capacity(rows.len());
        for (range, batch) in self.gather(&rows)? {
            let mut mask: Option<BooleanArray> = None;
            for e in &exprs {
                let m = passes(e, &batch)?;
                mask = Some(match mask {
                    None => m,
                    Some(prev) => arrow::compute::and(&prev, &m)?,
                });
            }
            let mask = mask.expect("an expression was evaluated");
            kept.extend(
                rows[range]
                    .iter()
                    .zip(mask.values().iter())
                    .filter(|(_, pass)| *pass)
                    .map(|(r, _)| *r),
            );
        }
        Ok(Some(kept.into()))
    }

    /// The rows at these ascending indexes, a batch per batch of the table they come from, with
    /// the range of `rows` each holds.
    fn gather(&self, rows: &[u32]) -> Result<Vec<(std::ops::Range<usize>, RecordBatch)>> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < rows.len() {
            let row = rows[at] as usize;
            let b = self.starts.partition_point(|s| *s <= row) - 1;
            let (start, n) = (self.starts[b], self.batches[b].num_rows());
            let end = at + rows[at..].partition_point(|r| (*r as usize) < start + n);
            let local = arrow::array::UInt32Array::from_iter_values(
                rows[at..end].iter().map(|r| r - start as u32),
            );
            out.push((
                at..end,
                arrow::compute::take_record_batch(&self.batches[b], &local)?,
            ));
            at = end;
        }
        Ok(out)
    }

    /// Hands the matching `rows` after the cursor's, past `offset`, at most `limit`, to `emit`.
    #[allow(clippy::too_many_arguments)]
    fn emit_rows(
        &self,
        rows: &[u32],
        projection: &[usize],
        first_row: usize,
        offset: usize,
        limit: Option<usize>,
        count: bool,
        mut emit: impl FnMut(RecordBatch) -> bool,
    ) -> Result<(Option<u64>, Option<i64>)> {
        let from = rows.partition_point(|r| (*r as usize) < first_row);
        let after = &rows[from..];
        let skip = offset.min(after.len());
        let take = limit.unwrap_or(usize::MAX).min(after.len() - skip);
        let picked = &after[skip..skip + take];
        let mut last_row = None;
        for (_, batch) in self.gather(picked)? {
            last_row = batch
                .column(batch.num_columns() - 1)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .last()
                .copied();
            if !emit(batch.project(projection)?) {
                break;
            }
        }
        Ok((count.then_some(rows.len() as u64), last_row))
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Whether an aggregation is answered here: groups of coded columns (few enough
    /// combinations to count in a table), counts only. Sums and averages go to DataFusion,
    /// whose floating-point results they must equal to the last digit.
    pub fn serves_aggregate(&self, q: &DataQuery) -> bool {
        let slots = q.group_by.iter().try_fold(1usize, |acc, g| {
            let c = self.codes.get(g)?;
            acc.checked_mul(c.values.len() + 1)
        });
        q.is_aggregate()
            && !q.group_by.is_empty()
            && slots.is_some_and(|s| s <= MAX_GROUP_SLOTS)
            && q.aggregates.iter().all(|a| a.agg == Agg::Count)
    }

    /// Every group of an aggregation [`Self::serves_aggregate`] accepts, with its counts, in
    /// the order DataFusion would give: the requested sorts, then the group keys (nulls last).
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
        // Slot of a row: its codes in mixed radix, the null code taking the last digit.
        let radix: Vec<usize> = groups.iter().map(|c| c.values.len() + 1).collect();
        let slots: usize = radix.iter().product();
        let digit = |c: &Codes, row: usize| match c.keys[row] {
            NULL_CODE => c.values.len(),
            k => k as usize,
        };
        let counted: Vec<usize> = q
            .aggregates
            .iter()
            .map(|a| Ok(self.schema.index_of(&a.column)?))
            .collect::<Result<_>>()?;
        let filters = self.compile(q)?;
        let mut rows_in = vec![0u64; slots];
        let mut counts = vec![vec![0i64; slots]; counted.len()];
        for (b, batch) in self.batches.iter().enumerate() {
            let start = self.starts[b];
            let mask = self.mask(&filters, batch, start)?;
            for i in 0..batch.num_rows() {
                if mask.as_ref().is_some_and(|m| !m.value(i)) {
                    continue;
                }
                let row = start + i;
                let slot = groups
                    .iter()
                    .zip(&radix)
                    .fold(0, |acc, (c, r)| acc * r + digit(c, row));
                rows_in[slot] += 1;
                for (k, col) in counted.iter().enumerate() {
                    if batch.column(*col).is_valid(i) {
                        counts[k][slot] += 1;
                    }
                }
            }
        }
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
        for per_slot in &counts {
            let values = Int64Array::from_iter_values(present.iter().map(|s| per_slot[*s]));
            columns.push(Arc::new(values));
        }
        let batch = RecordBatch::try_new(group_schema(q), columns)?;
        // Sorts, then group keys: the order of `plan`.
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
}

enum Compiled<'a> {
    Codes(&'a Codes, CodeTest),
    Expr(Arc<dyn PhysicalExpr>),
}

/// Which codes pass: a table indexed by code (the null code included), and the one code that
/// passes when there is only one (a plain equality, counted by comparing integers, which the
/// compiler turns into vector instructions).
struct CodeTest {
    pass: Vec<bool>,
    only: Option<u16>,
}

impl CodeTest {
    fn of(f: &Filter, codes: &Codes) -> Option<Self> {
        let size = codes.lookup.len();
        let code_of = |v: &ScalarValue| match v {
            ScalarValue::Utf8(Some(s)) => Some(codes.lookup.get(s).copied()),
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
    fn count(&self, keys: &[u16]) -> usize {
        match self.only {
            Some(code) => keys.iter().filter(|k| **k == code).count(),
            None => keys.iter().filter(|k| self.pass(**k)).count(),
        }
    }

    #[inline]
    fn pass(&self, key: u16) -> bool {
        let slot = if key == NULL_CODE {
            self.pass.len() - 1
        } else {
            key as usize
        };
        self.pass[slot]
    }
}

/// The rows of a batch an expression passes: a null outcome does not pass, as in a WHERE clause.
fn passes(e: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<BooleanArray> {
    let v = e.evaluate(batch)?.into_array(batch.num_rows())?;
    let b = v.as_boolean();
    Ok(match b.nulls() {
        Some(nulls) => BooleanArray::new(b.values() & nulls.inner(), None),
        None => b.clone(),
    })
}

/// Codes for a string column, or `None` when it has too many distinct values.
fn encode(batches: &[RecordBatch], col: usize, rows: usize) -> Option<Codes> {
    let mut lookup: HashMap<String, u16> = HashMap::new();
    let mut values = Vec::new();
    let mut keys = Vec::with_capacity(rows);
    for b in batches {
        let arr = b.column(col).as_any().downcast_ref::<StringArray>()?;
        for v in arr.iter() {
            keys.push(match v {
                None => NULL_CODE,
                Some(s) => match lookup.get(s) {
                    Some(c) => *c,
                    None => {
                        let c = u16::try_from(lookup.len())
                            .ok()
                            .filter(|c| *c < NULL_CODE)?;
                        lookup.insert(s.to_string(), c);
                        values.push(s.to_string());
                        c
                    }
                },
            });
        }
    }
    let postings = Postings::of(&keys, values.len())?;
    Some(Codes {
        lookup,
        values,
        keys,
        postings,
    })
}

/// Streams the rows of a file-order query (an export) from a resident version.
pub async fn stream(
    engine: &super::Engine,
    resident: Arc<Resident>,
    q: DataQuery,
) -> Result<super::BatchStream> {
    let projection = resident.projection(&q)?;
    let schema = Arc::new(resident.schema.project(&projection)?);
    let after_row = q
        .cursor
        .as_ref()
        .and_then(|c| c.after.as_ref())
        .map(|a| a.row);
    let (offset, limit) = match (q.paged, after_row) {
        (false, _) => (0, None),
        (true, Some(_)) => (0, Some(q.page_size as usize)),
        (true, None) => (q.offset()?, Some(q.page_size as usize)),
    };
    engine
        .stream_from(schema, move |tx| {
            let walked = resident.scan(&q, after_row, offset, limit, false, |b| {
                tx.blocking_send(Ok(b)).is_ok()
            });
            if let Err(e) = walked {
                let _ = tx.blocking_send(Err(e));
            }
        })
        .await
}

/// The columns of a counted aggregation, as DataFusion names and types them.
fn group_schema(q: &DataQuery) -> SchemaRef {
    let groups = q
        .group_by
        .iter()
        .map(|g| Field::new(g, DataType::Utf8, true));
    let counts = q
        .aggregates
        .iter()
        .map(|a| Field::new(a.output_name(), DataType::Int64, false));
    Arc::new(Schema::new(groups.chain(counts).collect::<Vec<_>>()))
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
    engine: &super::Engine,
    resident: Arc<Resident>,
    q: DataQuery,
) -> Result<super::BatchStream> {
    engine
        .stream_from(group_schema(&q), move |tx| {
            let item = group_page(&resident, &q, q.paged).map(|(batch, _)| batch);
            let _ = tx.blocking_send(item);
        })
        .await
}
