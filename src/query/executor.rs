//! The one way a query runs. [`Executor::page`] and [`Executor::stream`] decide whether the rows
//! held in memory answer it without a plan (file-order rows, counted groups of coded columns) or
//! DataFusion plans it (everything else, over the same rows or over Parquet), own the hidden
//! sort-key and row-number columns of keyed plans, and write the cursor of the next page. A new
//! operator therefore needs only its `Expr`: where the resident path does not cover it, the
//! query falls back to DataFusion.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::scalar::ScalarValue;

use super::budget::Budget;
use super::cursor::{After, Cursor};
use super::direct::{FileRows, row_at};
use super::engine::{BatchStream, Chunk, Engine};
use super::gate::Gate;
use super::ordered::Orders;
use super::page_cache::PageCache;
use super::plan::{hidden_columns, plan};
use super::request::DataQuery;
use super::request::{Agg, Op};
use super::resident::{self, Resident};
use super::sidecar::Postings;
use crate::config::Limits;
use crate::dataset::manifest::{Manifest, VersionInfo};
use crate::dataset::schema::{arrow_schema, file_order};
use crate::error::{Error, Result};
use crate::storage::Storage;

/// A published version, ready to query.
pub struct Loaded {
    pub manifest: Manifest,
    pub table: Arc<dyn TableProvider>,
    /// The rows in memory, when the version fits the resident budget (`table` then reads them).
    pub resident: Option<Arc<Resident>>,
    /// The versions kept in storage when this one was loaded, newest first.
    pub versions: Vec<VersionInfo>,
    /// The Parquet file's metadata, read on the first page answered from it directly.
    pub(super) file: tokio::sync::OnceCell<Option<Arc<FileRows>>>,
    /// The posting-list sidecar, read on the first query one could answer.
    pub(super) postings: tokio::sync::OnceCell<Option<Arc<Postings>>>,
    /// The order sidecar, read on the first sorted query one could answer.
    pub(super) orders: tokio::sync::OnceCell<Option<Arc<Orders>>>,
    /// The word index, read on the first search.
    pub(super) words: tokio::sync::OnceCell<Option<Arc<Postings>>>,
    /// The spatial index, read on the first `near` or `bbox`.
    pub(super) geo: tokio::sync::OnceCell<Option<Arc<crate::dataset::geo::GridIndex>>>,
}

/// A page of a query's result.
pub struct Page {
    /// The rows (or groups), with the query's columns only.
    pub batches: Vec<RecordBatch>,
    /// Rows (or groups) matching the filters, exactly.
    pub total: u64,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
}

/// A page's rows, the exact total, and where the next page starts.
pub(super) type RowsPage = (Vec<RecordBatch>, u64, Option<After>);

/// How one query is answered.
enum Route {
    /// File-order rows from memory: one pass gives the total and the page.
    Rows(Arc<Resident>),
    /// Rows sorted on one column, from memory along that column's order.
    Sorted(Arc<Resident>),
    /// Counts of groups of coded columns, from memory.
    Groups(Arc<Resident>),
    /// File-order rows with no filter, read from Parquet by row-group arithmetic.
    Direct,
    /// File-order rows under filters, from Parquet: the pages the page index leaves, else a
    /// posting list's rows for one equality on text.
    Filtered,
    /// Counts by the values of one text column with posting lists: their lengths.
    Counted,
    /// Sorted rows from Parquet: positions from the sort column's order when it has one and
    /// the filters are on it, else from a narrow plan; then the rows at them.
    Positioned,
    /// A DataFusion plan over the version's table (in memory or Parquet).
    Planned,
}

impl Route {
    /// The route's name, as `/metrics` counts pages by route.
    fn name(&self) -> &'static str {
        match self {
            Route::Rows(_) | Route::Sorted(_) | Route::Groups(_) => "memory",
            Route::Direct => "parquet_position",
            Route::Filtered => "parquet_postings",
            Route::Counted => "postings_counts",
            Route::Positioned => "parquet_positioned",
            Route::Planned => "planned",
        }
    }
}

/// Route names, in the order [`Executor::pages_by_route`] gives their counts.
pub const ROUTES: [&str; 8] = [
    "memory",
    "parquet_position",
    "parquet_pruned",
    "parquet_postings",
    "postings_counts",
    "parquet_ordered",
    "parquet_positioned",
    "planned",
];

fn route(v: &Loaded, q: &DataQuery) -> Route {
    // A search, a distance or a box is an expression only plans evaluate.
    if !q.search.is_empty() || !q.geo.is_empty() {
        return Route::Planned;
    }
    match &v.resident {
        Some(r) if Resident::serves(q) => Route::Rows(Arc::clone(r)),
        Some(r) if r.serves_sorted(q) => Route::Sorted(Arc::clone(r)),
        Some(r) if r.serves_aggregate(q) => Route::Groups(Arc::clone(r)),
        Some(_) => Route::Planned,
        None if direct(q) => Route::Direct,
        None if filtered(q) => Route::Filtered,
        None if counted(q).is_some() => Route::Counted,
        // Unsorted, the plan's limit already stops the scan at the page.
        None if !q.is_aggregate() && !q.sorts.is_empty() => Route::Positioned,
        None => Route::Planned,
    }
}

/// The column of a count of its own values by its values, over every row.
pub(super) fn counted(q: &DataQuery) -> Option<&str> {
    let plain = q.filters.is_empty() && q.groups.is_empty() && q.sorts.is_empty();
    match (q.group_by.as_slice(), q.aggregates.as_slice()) {
        ([g], [a]) if plain && a.agg == Agg::Count && a.column == *g => Some(g.as_str()),
        _ => None,
    }
}

/// The column and values of a page in file order filtered by one equality or `in` on text.
pub(super) fn listed(q: &DataQuery) -> Option<(&str, Vec<&str>)> {
    if !Resident::serves(q) || !q.groups.is_empty() {
        return None;
    }
    equality(q)
}

/// The column and values of a query's one filter when it is an equality or `in` on text.
pub(super) fn equality(q: &DataQuery) -> Option<(&str, Vec<&str>)> {
    let [f] = q.filters.as_slice() else {
        return None;
    };
    if !matches!(f.op, Op::Exact | Op::In) {
        return None;
    }
    let values = f.values.iter().map(|v| match v {
        ScalarValue::Utf8(Some(v)) => Some(v.as_str()),
        _ => None,
    });
    Some((f.column.as_str(), values.collect::<Option<Vec<_>>>()?))
}

/// Whether a query is a page of rows in file order under filters (no `or=` groups).
fn filtered(q: &DataQuery) -> bool {
    Resident::serves(q) && !q.filters.is_empty() && q.groups.is_empty()
}

/// Whether a query is a page of rows in file order over every row.
pub(super) fn direct(q: &DataQuery) -> bool {
    Resident::serves(q) && q.filters.is_empty() && q.groups.is_empty()
}

/// Runs queries on the engine, with the memory budget of resident versions.
pub struct Executor {
    pub(super) engine: Engine,
    pub(super) storage: Storage,
    /// Pages answered by each route (a fallback to a plan counts as planned).
    pages: [std::sync::atomic::AtomicU64; ROUTES.len()],
    budget: Arc<Budget>,
    partitions: usize,
    /// Decoded blocks of the Parquet files pages are read from.
    pub(super) page_cache: Arc<PageCache>,
    /// Ranges of sidecar files read (posting lists, order blocks), kept within a quarter of the
    /// page cache's budget.
    pub(super) ranges: Arc<super::ranges::RangeCache>,
    /// Turns for the queries computed at once.
    gate: Gate,
}

impl Executor {
    /// An executor holding `resident_bytes` of versions decoded and `page_cache_bytes` of
    /// decoded blocks of the others, computing as many queries at once as `gate` lets through.
    pub fn new(
        storage: &Storage,
        limits: &Limits,
        gate: Gate,
        resident_bytes: u64,
        page_cache_bytes: u64,
    ) -> Result<Self> {
        Ok(Executor {
            engine: Engine::new(storage, limits)?,
            storage: storage.clone(),
            pages: Default::default(),
            budget: Budget::new(resident_bytes),
            partitions: limits.query_threads,
            page_cache: PageCache::new(page_cache_bytes),
            ranges: super::ranges::RangeCache::new(page_cache_bytes / 4),
            gate,
        })
    }

    /// The bound on queries computed at once.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The DataFusion engine underneath (its runtime, metrics and caches).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Pages answered by each route of [`ROUTES`].
    pub fn pages_by_route(&self) -> [u64; ROUTES.len()] {
        std::array::from_fn(|i| self.pages[i].load(std::sync::atomic::Ordering::Relaxed))
    }

    fn count_page(&self, route: &str) {
        if let Some(i) = ROUTES.iter().position(|r| *r == route) {
            self.pages[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub fn page_cache(&self) -> &PageCache {
        &self.page_cache
    }

    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Opens a stored version: read into memory when `resident` is asked and the version fits
    /// what is left of the budget, else read from Parquet in place.
    pub async fn open(
        &self,
        storage: &Storage,
        manifest: Manifest,
        versions: Vec<VersionInfo>,
        resident: bool,
    ) -> Result<Loaded> {
        let table = storage.version_table(&manifest.id, &manifest.version, &manifest.schema)?;
        let resident = match resident {
            true => self.make_resident(&manifest, &table).await?,
            false => None,
        };
        let table = match &resident {
            Some(r) => r.table(self.partitions)?,
            None => table,
        };
        Ok(Loaded {
            manifest,
            table,
            resident,
            versions,
            file: tokio::sync::OnceCell::new(),
            postings: tokio::sync::OnceCell::new(),
            orders: tokio::sync::OnceCell::new(),
            words: tokio::sync::OnceCell::new(),
            geo: tokio::sync::OnceCell::new(),
        })
    }

    /// Reads a version into memory when it fits what is left of the resident budget.
    async fn make_resident(
        &self,
        manifest: &Manifest,
        table: &Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<Resident>>> {
        let Some(ticket) = Resident::reserve(&self.budget, manifest) else {
            tracing::info!(dataset = %manifest.id, estimate = Resident::estimate(manifest),
                free = self.budget.limit() - self.budget.used(),
                "served from Parquet: over the resident budget");
            return Ok(None);
        };
        let df = self
            .engine
            .read(Arc::clone(table))?
            .sort(vec![file_order()])?;
        let batches = self.engine.collect_all(df).await?;
        let schema = arrow_schema(&manifest.schema);
        let manifest = manifest.clone();
        let build = move || Resident::build(batches, schema, &manifest, ticket);
        let resident = tokio::task::spawn_blocking(build).await?;
        Ok(resident.map(Arc::new))
    }

    /// A page of the query's result, its exact total, and the cursor of the next page.
    pub async fn page(&self, v: &Loaded, q: &DataQuery) -> Result<Page> {
        let _turn = self.gate.enter().await?;
        let q = &*self.resolve(v, q).await?;
        let route = route(v, q);
        let mut answered = route.name();
        let (batches, total, after) = match route {
            Route::Rows(r) => self.resident_page(r, q).await?,
            Route::Sorted(r) => {
                let (_, offset) = q.start()?;
                let (q, size) = (q.clone(), q.page_size as usize);
                let work = move || {
                    let mut chunks = Vec::new();
                    let (total, after) = r.sorted(&q, offset, Some(size), |c| {
                        chunks.push(c);
                        true
                    })?;
                    let batches = chunks.into_iter().map(Chunk::into_batch);
                    Ok((batches.collect::<Result<_>>()?, total, after))
                };
                self.engine.run(work).await?
            }
            Route::Groups(r) => {
                let q = q.clone();
                let work = move || resident::group_page(&r, &q, true);
                let (page, groups) = self.engine.run(work).await?;
                (vec![page], groups, None)
            }
            Route::Planned => self.planned_page(v, q).await?,
            // Read from the file, or planned when the file cannot answer this way.
            Route::Direct | Route::Filtered | Route::Counted | Route::Positioned => {
                let read = match route {
                    Route::Direct => self.direct_page(v, q).await?,
                    Route::Filtered => match self.pruned_page(v, q).await? {
                        Some(page) => {
                            answered = "parquet_pruned";
                            Some(page)
                        }
                        None => self.listed_page(v, q).await?,
                    },
                    Route::Counted => self.counted_page(v, q).await?,
                    _ => match self.ordered_page(v, q).await? {
                        Some(page) => {
                            answered = "parquet_ordered";
                            Some(page)
                        }
                        None => match self.listed_sorted_page(v, q).await? {
                            Some(page) => {
                                answered = "parquet_postings";
                                Some(page)
                            }
                            None => self.positioned_page(v, q).await?,
                        },
                    },
                };
                match read {
                    Some(page) => page,
                    None => {
                        answered = "planned";
                        self.planned_page(v, q).await?
                    }
                }
            }
        };
        self.count_page(answered);
        // Row pages continue after their last row; aggregations and rows ranked by relevance
        // (a score, not a column a cursor could hold) by page number, on the same version.
        let after = after.filter(|_| !q.search.ranked);
        let shown = q.page.saturating_mul(q.page_size);
        let continues = after.is_some() || q.is_aggregate() || q.search.ranked;
        let next = (shown < total && continues).then(|| Cursor {
            version: v.manifest.version.clone(),
            page: q.page + 1,
            after,
        });
        Ok(Page {
            batches,
            total,
            next,
        })
    }

    /// The query's result as a stream of batches: the whole result, or one page when the query
    /// names one. The first batch has arrived (within the deadline) when this returns.
    ///
    /// The query holds a turn of the gate until then: sorting, grouping and planning happen
    /// before the first batch, and the later batches are paced by the client reading them, so
    /// that a few slow downloads cannot shed everyone else's queries.
    pub async fn stream(&self, v: &Loaded, q: &DataQuery) -> Result<BatchStream> {
        let _turn = self.gate.enter().await?;
        let q = &*self.resolve(v, q).await?;
        match route(v, q) {
            Route::Rows(r) => resident::stream(&self.engine, r, q.clone()).await,
            Route::Sorted(r) => resident::stream_sorted(&self.engine, r, q.clone()).await,
            Route::Groups(r) => resident::stream_groups(&self.engine, r, q.clone()).await,
            Route::Direct
            | Route::Filtered
            | Route::Counted
            | Route::Positioned
            | Route::Planned => {
                let df = self.engine.read(super::geo::table_for(v, q))?;
                let planned = plan(df, q, &v.manifest.schema, q.paged, false)?;
                self.engine.stream(planned.rows).await
            }
        }
    }

    /// A page in file order from rows held in memory: total and rows in one pass, no plan.
    async fn resident_page(&self, r: Arc<Resident>, q: &DataQuery) -> Result<RowsPage> {
        let (after_row, offset) = q.start()?;
        let (q, size) = (q.clone(), q.page_size as usize);
        let sel = self
            .engine
            .run(move || r.select(&q, after_row, offset, Some(size)))
            .await?;
        let after = sel.last_row.map(|row| After {
            keys: Vec::new(),
            row,
        });
        Ok((sel.batches, sel.total, after))
    }

    /// A page planned in DataFusion, its total counted alongside. Row pages carry their sort
    /// keys and row numbers in hidden last columns, read here for the cursor and cut off.
    async fn planned_page(&self, v: &Loaded, q: &DataQuery) -> Result<RowsPage> {
        let (mut batches, total) = self.planned_rows(v, q).await?;
        let mut after = None;
        if !q.is_aggregate() {
            let hidden = hidden_columns(q);
            if let Some(last) = batches.iter().rev().find(|b| b.num_rows() > 0) {
                after = Some(last_position(last, hidden)?);
            }
            for b in &mut batches {
                let visible: Vec<usize> = (0..b.num_columns() - hidden).collect();
                *b = b.project(&visible)?;
            }
        }
        Ok((batches, total, after))
    }

    /// A planned page's batches, row pages with their hidden key columns, and the total.
    pub(super) async fn planned_rows(
        &self,
        v: &Loaded,
        q: &DataQuery,
    ) -> Result<(Vec<RecordBatch>, u64)> {
        let df = self.engine.read(super::geo::table_for(v, q))?;
        let planned = plan(df, q, &v.manifest.schema, true, !q.is_aggregate())?;
        let rows = self.engine.collect(planned.rows);
        let total = async {
            match planned.total {
                Some(df) => self.engine.count(df).await,
                None => Ok(v.manifest.rows),
            }
        };
        tokio::try_join!(rows, total)
    }

    /// Runs work that must stay off the threads serving sockets on the background runtime
    /// (ingests, refreshes, harvests, at a lower priority than queries).
    pub async fn background<F>(&self, work: F) -> Result<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.engine.background(work).await
    }
}

/// The columns a query returns, in order.
pub(super) fn output_columns(v: &Loaded, q: &DataQuery) -> Vec<String> {
    match &q.columns {
        Some(c) => c.clone(),
        None => v.manifest.schema.iter().map(|c| c.name.clone()).collect(),
    }
}

/// A page from batches read with their row numbers last: the cursor from the last row, the row
/// numbers cut off.
pub(super) fn rows_page(mut batches: Vec<RecordBatch>, total: u64) -> Result<RowsPage> {
    let last = batches.iter().rev().find(|b| b.num_rows() > 0);
    let after = last
        .and_then(|b| row_at(b, b.num_rows() - 1))
        .map(|row| After {
            keys: Vec::new(),
            row,
        });
    for b in &mut batches {
        let visible: Vec<usize> = (0..b.num_columns() - 1).collect();
        *b = b.project(&visible)?;
    }
    Ok((batches, total, after))
}

/// The position of a batch's last row, from its `hidden` last columns (sort keys, row number).
pub(super) fn last_position(batch: &RecordBatch, hidden: usize) -> Result<After> {
    let last = batch.num_rows() - 1;
    let first_hidden = batch.num_columns() - hidden;
    let value = |i: usize| ScalarValue::try_from_array(batch.column(i), last);
    let keys = (first_hidden..batch.num_columns() - 1)
        .map(value)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let row = match value(batch.num_columns() - 1)? {
        ScalarValue::Int64(Some(r)) => r,
        other => return Err(Error::internal(format!("row number read as {other:?}"))),
    };
    Ok(After { keys, row })
}
