//! Datasets held in memory. A version that fits the resident budget is decoded once, when it is
//! opened, into one contiguous array per column, and indexed: its repetitive string columns get
//! dictionary codes with posting lists ([`codes`]), its other sortable columns a permutation of
//! the rows in value order ([`order`]). A page in file order under filters is then answered
//! without planning anything: an index turns a selective filter into a row list, or one pass
//! over the filter columns gives the exact total and the page's rows together, and a cursor
//! seeks to its row directly. A page sorted on one column walks that column's order; counted
//! groups of coded columns are counted by code ([`groups`]), and over every row read from sums
//! and counts by code added up at load. Everything else runs in DataFusion
//! over the same rows (a `MemTable`).

mod codes;
mod groups;
mod order;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::DFSchema;
use datafusion::datasource::MemTable;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::physical_expr::{PhysicalExpr, create_physical_expr};

use super::budget::{Budget, Reservation, ReservationTicket};
use super::engine::Chunk;
use super::plan::{condition_expr, filter_expr};
use super::request::DataQuery;
use crate::dataset::manifest::Manifest;
use crate::dataset::schema::{ColumnType, ROW_COLUMN, file_order};
use crate::error::Result;
use codes::{CodeTest, Codes, NULL_CODE};
use groups::Totals;
pub use groups::{group_page, stream_groups};
pub use order::stream_sorted;
use order::{Order, Runs, Sorted};

/// Rows an index gives are read when there are fewer than the table's rows divided by this;
/// above, one pass over the filter columns is as fast.
const INDEX_SELECTIVITY: usize = 8;

/// Rows per batch of the scans, of DataFusion's table and of the batches emitted.
const BATCH: usize = 8192;

/// A version's rows in memory, in file order (`__row` is the row's index).
pub struct Resident {
    pub schema: SchemaRef,
    /// The schema as DataFusion plans against it, made once.
    df_schema: DFSchema,
    /// Every row, one contiguous array per column.
    all: RecordBatch,
    /// The same rows in slices of [`BATCH`] rows (no copy), for vectorised passes.
    batches: Vec<RecordBatch>,
    rows: usize,
    codes: HashMap<String, Codes>,
    /// Rows in value order, for sortable columns without codes (coded columns' posting lists
    /// are their order).
    orders: HashMap<String, Sorted>,
    /// Sums and counts of each number column by the codes of each coded column with few
    /// enough values: `totals[group column][number column]`.
    totals: HashMap<String, HashMap<String, Totals>>,
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
    /// The memory a version is expected to take decoded and indexed, from its source's size
    /// and rows.
    pub fn estimate(manifest: &Manifest) -> u64 {
        // Arrow holds text much as the CSV does, plus offsets; numbers take 8 bytes; an order
        // or a posting list 4 bytes a row.
        let gz = manifest.source.uri.ends_with(".gz");
        let indexed = manifest.schema.len() as u64;
        manifest.source.bytes * if gz { 12 } else { 2 } + manifest.rows * (16 + 4 * indexed)
    }

    /// Reserves a version's estimate before it is read, so that a dataset far too big for the
    /// budget is never decoded.
    pub fn reserve(budget: &Arc<Budget>, manifest: &Manifest) -> Option<ReservationTicket> {
        budget
            .reserve(Self::estimate(manifest))
            .map(ReservationTicket)
    }

    /// Builds the resident form of a version from its batches, holding `ticket`'s budget
    /// (adjusted to the real size, or refused when that does not fit). The columns are indexed
    /// on every core, one column a thread.
    pub fn build(
        batches: Vec<RecordBatch>,
        schema: SchemaRef,
        manifest: &Manifest,
        ticket: ReservationTicket,
    ) -> Option<Self> {
        let all = contiguous(batches, &schema)?;
        let rows = all.num_rows();
        u32::try_from(rows).ok()?;
        let batches = (0..rows)
            .step_by(BATCH)
            .map(|s| all.slice(s, BATCH.min(rows - s)))
            .collect();
        let wanted: Vec<(usize, Want)> = manifest
            .schema
            .iter()
            .enumerate()
            .filter_map(|(i, col)| {
                let distinct = manifest.profile.get(i).map_or(0, |p| p.distinct);
                let want = match col.kind {
                    ColumnType::Boolean => return None,
                    _ if distinct < 2 => return None,
                    // Codes pay where values repeat; a near-unique column gets an order.
                    ColumnType::String
                        if distinct < u64::from(NULL_CODE) / 2
                            && distinct.saturating_mul(2) <= manifest.rows =>
                    {
                        Want::Codes
                    }
                    _ => Want::Order,
                };
                Some((i, want))
            })
            .collect();
        let built = on_every_core(&wanted, |(i, want)| {
            let column = all.column(*i);
            match want {
                Want::Codes => match Codes::of(column.as_ref()) {
                    Some(c) => Built::Codes(c),
                    None => Built::Order(Sorted::build(column)),
                },
                Want::Order => Built::Order(Sorted::build(column)),
            }
        });
        let mut codes = HashMap::new();
        let mut orders = HashMap::new();
        let mut bytes = all.get_array_memory_size() as u64;
        for ((i, _), b) in wanted.iter().zip(built) {
            let name = manifest.schema[*i].name.clone();
            match b {
                Built::Codes(c) => {
                    bytes += c.bytes();
                    codes.insert(name, c);
                }
                Built::Order(Some(o)) => {
                    bytes += o.bytes();
                    orders.insert(name, o);
                }
                Built::Order(None) => {}
            }
        }
        let totals = group_totals(&all, &schema, &codes);
        bytes += totals
            .values()
            .flat_map(|t| t.values())
            .map(Totals::bytes)
            .sum::<u64>();
        let ReservationTicket(mut reservation) = ticket;
        reservation.resize(bytes)?;
        Some(Resident {
            df_schema: DFSchema::try_from(schema.as_ref().clone()).ok()?,
            schema,
            all,
            batches,
            rows,
            codes,
            orders,
            totals,
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

    /// A column's rows in value order, when it has an index that gives them.
    fn order(&self, column: &str) -> Option<Order<'_>> {
        let i = self.schema.index_of(column).ok()?;
        let values = self.all.column(i);
        if let Some(c) = self.codes.get(column) {
            let valued = c.postings.starts[c.values.len()] as usize;
            let runs = Runs::Starts(&c.postings.starts[..c.values.len()]);
            return Some(Order::new(&c.postings.rows, valued, runs, values));
        }
        let o = self.orders.get(column)?;
        let valued = values.len() - values.null_count();
        Some(Order::new(&o.perm, valued, Runs::Bits(&o.runs), values))
    }

    /// The rows whose numbers are these, in that order; `None` when the rows are not held in
    /// row-number order (a version sorted at ingest).
    pub fn rows_numbered(&self, rows: &[u32]) -> Result<Option<RecordBatch>> {
        if rows.iter().any(|r| *r as usize >= self.all.num_rows()) {
            return Ok(None);
        }
        let taken = self.take(rows)?;
        let numbers = taken
            .column_by_name(crate::dataset::schema::ROW_COLUMN)
            .and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>().cloned());
        let aligned = numbers.is_some_and(|n| {
            n.values()
                .iter()
                .zip(rows)
                .all(|(a, b)| *a == i64::from(*b))
        });
        Ok(aligned.then_some(taken))
    }

    /// Whether a query is answered here: rows in file order (no sort, no aggregation).
    pub fn serves(q: &DataQuery) -> bool {
        !q.is_aggregate() && q.sorts.is_empty()
    }

    /// Whether a sorted query is answered here: rows sorted on one column that has an order,
    /// from the start or from a cursor on that sort.
    pub fn serves_sorted(&self, q: &DataQuery) -> bool {
        let cursor_fits = q
            .cursor
            .as_ref()
            .and_then(|c| c.after.as_ref())
            .is_none_or(|a| a.keys.len() == 1);
        match q.sorts.as_slice() {
            [s] => !q.is_aggregate() && cursor_fits && self.order(&s.key).is_some(),
            _ => false,
        }
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
        let mut chunks = Vec::new();
        let (total, last_row) = self.scan(q, after_row, offset, limit, true, |c| {
            chunks.push(c);
            true
        })?;
        let batches = chunks
            .into_iter()
            .map(Chunk::into_batch)
            .collect::<Result<_>>()?;
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
        mut emit: impl FnMut(Chunk) -> bool,
    ) -> Result<(Option<u64>, Option<i64>)> {
        let projection = self.projection(q)?;
        let filters = self.compile(q)?;
        let first_row = after_row.map_or(0, |r| usize::try_from(r + 1).unwrap_or(0));
        if let Some(rows) = self.by_index(q, &filters)? {
            return self.emit_rows(&rows, &projection, first_row, offset, limit, count, emit);
        }
        let mut total = 0u64;
        let mut to_skip = offset;
        let mut wanted = limit.unwrap_or(usize::MAX);
        let mut last_row = None;
        for (b, batch) in self.batches.iter().enumerate() {
            let start = b * BATCH;
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
            if !emit(Chunk::Batch(picked.project(&projection)?)) {
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
        let props = ExecutionProps::new();
        let physical = |e: &Expr| -> Result<Compiled<'_>> {
            let ctx = PhysicalPlanningContext::default();
            Ok(Compiled::Expr(create_physical_expr(
                e,
                &self.df_schema,
                &props,
                &ctx,
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

    /// The best index for a query's filters: the posting lists of a coded filter, or the span
    /// of an ordered column its range filters leave, whichever reads the fewest rows.
    fn driver<'s>(&'s self, q: &DataQuery, filters: &[Compiled<'s>]) -> Option<Driver<'s>> {
        let mut best: Option<Driver<'s>> = None;
        let mut consider = |d: Driver<'s>| {
            if best.as_ref().is_none_or(|b| d.rows < b.rows) {
                best = Some(d);
            }
        };
        for (i, f) in filters.iter().enumerate() {
            if let Compiled::Codes(codes, test) = f {
                let slots: Vec<usize> = (0..test.pass.len()).filter(|s| test.pass[*s]).collect();
                let rows = slots.iter().map(|s| codes.postings.of_slot(*s).len()).sum();
                let covers = vec![i];
                let source = Source::Slots(codes, slots);
                consider(Driver {
                    rows,
                    source,
                    covers,
                });
            }
        }
        let mut columns: Vec<&str> = q.filters.iter().map(|f| f.column.as_str()).collect();
        columns.sort_unstable();
        columns.dedup();
        for column in columns {
            let Some(order) = self.order(column) else {
                continue;
            };
            let mut span = 0..order.valued();
            let mut covers = Vec::new();
            for (i, f) in q.filters.iter().enumerate() {
                if f.column == column
                    && let Some(s) = order.span(f)
                {
                    let start = span.start.max(s.start);
                    span = start..span.end.min(s.end).max(start);
                    covers.push(i);
                }
            }
            if !covers.is_empty() {
                let rows = span.len();
                consider(Driver {
                    rows,
                    source: Source::Span(order, span),
                    covers,
                });
            }
        }
        best
    }

    /// The rows matching every filter, ascending, read through the [`Self::driver`] index and
    /// tested against the filters it does not answer; `None` when that reads over an
    /// [`INDEX_SELECTIVITY`]th of the table, where one pass over it is as cheap — unless one
    /// posting list answers every filter, when it is the answer as it stands.
    fn by_index<'s>(
        &'s self,
        q: &DataQuery,
        filters: &[Compiled<'s>],
    ) -> Result<Option<Cow<'s, [u32]>>> {
        let Some(driver) = self.driver(q, filters) else {
            return Ok(None);
        };
        let alone = driver.covers.len() == filters.len();
        if let (Source::Slots(codes, slots), true) = (&driver.source, alone)
            && let [slot] = slots.as_slice()
        {
            return Ok(Some(Cow::Borrowed(codes.postings.of_slot(*slot))));
        }
        if driver.rows.saturating_mul(INDEX_SELECTIVITY) > self.rows {
            return Ok(None);
        }
        let mut rows = match &driver.source {
            Source::Slots(codes, slots) => {
                let lists = slots.iter().map(|s| codes.postings.of_slot(*s));
                ascending(lists, driver.rows, self.rows)
            }
            Source::Span(order, span) => ascending(
                [&order.rows()[span.clone()]].into_iter(),
                span.len(),
                self.rows,
            ),
        };
        let mut exprs = Vec::new();
        for (i, f) in filters.iter().enumerate() {
            match f {
                _ if driver.covers.contains(&i) => {}
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
        for gathered in self.gather(&rows) {
            let (range, batch) = gathered?;
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

    /// The rows at these indexes, in their order, [`BATCH`] at a time, with the range of
    /// `rows` each batch holds.
    fn gather<'r>(
        &'r self,
        rows: &'r [u32],
    ) -> impl Iterator<Item = Result<(std::ops::Range<usize>, RecordBatch)>> + 'r {
        rows.chunks(BATCH).enumerate().map(|(k, chunk)| {
            let range = k * BATCH..k * BATCH + chunk.len();
            Ok((range, self.take(chunk)?))
        })
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
        emit: impl FnMut(Chunk) -> bool,
    ) -> Result<(Option<u64>, Option<i64>)> {
        let from = rows.partition_point(|r| (*r as usize) < first_row);
        let after = &rows[from..];
        let skip = offset.min(after.len());
        let take = limit.unwrap_or(usize::MAX).min(after.len() - skip);
        let picked = &after[skip..skip + take];
        let last_row = picked.last().map(|r| i64::from(*r));
        self.emit_chunks(picked, projection, emit)?;
        Ok((count.then_some(rows.len() as u64), last_row))
    }

    /// Hands these rows to `emit` by their indexes, [`BATCH`] at a time, with the table's
    /// columns in `projection`; stops when `emit` answers `false`.
    fn emit_chunks(
        &self,
        rows: &[u32],
        projection: &[usize],
        mut emit: impl FnMut(Chunk) -> bool,
    ) -> Result<()> {
        let table = self.all.project(projection)?;
        for chunk in rows.chunks(BATCH) {
            let rows = chunk.to_vec();
            if !emit(Chunk::Rows {
                table: table.clone(),
                rows,
            }) {
                break;
            }
        }
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// What an index is asked for at build time.
#[derive(Clone, Copy)]
enum Want {
    Codes,
    Order,
}

/// An index built.
enum Built {
    Codes(Codes),
    Order(Option<Sorted>),
}

/// The index that reads a query's candidate rows, the number it reads, and the filters it
/// answers exactly.
struct Driver<'s> {
    rows: usize,
    source: Source<'s>,
    covers: Vec<usize>,
}

enum Source<'s> {
    /// The posting lists of these code slots.
    Slots(&'s Codes, Vec<usize>),
    /// Positions in a column's order.
    Span(Order<'s>, std::ops::Range<usize>),
}

enum Compiled<'a> {
    Codes(&'a Codes, CodeTest),
    Expr(Arc<dyn PhysicalExpr>),
}

/// The rows of a batch an expression passes: a null outcome does not pass, as in a WHERE clause.
pub(super) fn passes(e: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<BooleanArray> {
    let v = e.evaluate(batch)?.into_array(batch.num_rows())?;
    let b = v.as_boolean();
    Ok(match b.nulls() {
        Some(nulls) => BooleanArray::new(b.values() & nulls.inner(), None),
        None => b.clone(),
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
            let walked = resident.scan(&q, after_row, offset, limit, false, |c| {
                tx.blocking_send(Ok(c)).is_ok()
            });
            if let Err(e) = walked {
                let _ = tx.blocking_send(Err(e));
            }
        })
        .await
}

/// Row lists merged into one ascending list: sorted when short, through a bitmap of the table
/// when long (setting bits and reading them back beats sorting there).
fn ascending<'a>(lists: impl Iterator<Item = &'a [u32]>, n: usize, table_rows: usize) -> Vec<u32> {
    let lists: Vec<&[u32]> = lists.collect();
    if let [one] = lists.as_slice()
        && one.is_sorted()
    {
        return one.to_vec();
    }
    if n.saturating_mul(32) < table_rows {
        let mut rows: Vec<u32> = Vec::with_capacity(n);
        lists.iter().for_each(|l| rows.extend_from_slice(l));
        rows.sort_unstable();
        return rows;
    }
    let mut bits = vec![0u64; table_rows.div_ceil(64)];
    for r in lists.iter().flat_map(|l| l.iter()) {
        bits[*r as usize / 64] |= 1 << (*r % 64);
    }
    let mut rows = Vec::with_capacity(n);
    for (w, word) in bits.iter().enumerate() {
        let mut word = *word;
        while word != 0 {
            rows.push((w * 64) as u32 + word.trailing_zeros());
            word &= word - 1;
        }
    }
    rows
}

/// Batches joined into one contiguous array per column, each column freed from the batches as
/// it is copied (so the peak is the table and one column); `None` when a column is too big for
/// one array.
fn contiguous(batches: Vec<RecordBatch>, schema: &SchemaRef) -> Option<RecordBatch> {
    let mut parts: Vec<Vec<ArrayRef>> = batches.into_iter().map(|b| b.into_parts().1).collect();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let empty: ArrayRef = Arc::new(arrow::array::NullArray::new(0));
        let pieces: Vec<ArrayRef> = parts
            .iter_mut()
            .map(|p| std::mem::replace(&mut p[i], Arc::clone(&empty)))
            .collect();
        let column = match pieces.as_slice() {
            [] => arrow::array::new_empty_array(field.data_type()),
            [one] => Arc::clone(one),
            _ => {
                let refs: Vec<&dyn Array> = pieces.iter().map(AsRef::as_ref).collect();
                match arrow::compute::concat(&refs) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::info!(column = %field.name(), error = %e, "not held in memory");
                        return None;
                    }
                }
            }
        };
        columns.push(column);
    }
    RecordBatch::try_new(Arc::clone(schema), columns).ok()
}

/// Coded columns with at most this many values get [`Totals`] of the number columns.
const TOTALS_CODES: usize = 4096;

/// The [`Totals`] of every number column by every coded column with few enough values, on
/// every core.
fn group_totals(
    all: &RecordBatch,
    schema: &SchemaRef,
    codes: &HashMap<String, Codes>,
) -> HashMap<String, HashMap<String, Totals>> {
    let numbers = schema.fields().iter().enumerate().filter(|(_, f)| {
        matches!(f.data_type(), DataType::Int64 | DataType::Float64) && f.name() != ROW_COLUMN
    });
    let numbers: Vec<(usize, &String)> = numbers.map(|(i, f)| (i, f.name())).collect();
    let pairs: Vec<(&String, &Codes, usize, &String)> = codes
        .iter()
        .filter(|(_, c)| c.values.len() <= TOTALS_CODES)
        .flat_map(|(g, c)| numbers.iter().map(move |(i, n)| (g, c, *i, *n)))
        .collect();
    let built = on_every_core(&pairs, |(_, c, i, _)| Totals::of(c, all.column(*i)));
    let mut totals: HashMap<String, HashMap<String, Totals>> = HashMap::new();
    for ((g, _, _, n), t) in pairs.iter().zip(built) {
        if let Some(t) = t {
            totals
                .entry((*g).clone())
                .or_default()
                .insert((*n).clone(), t);
        }
    }
    totals
}

/// Runs `work` on each item, on every core, keeping the items' order.
fn on_every_core<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.min(items.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break out };
                        out.push((i, work(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("an index builder panicked"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}
