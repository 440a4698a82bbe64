//! Pages answered from a version's Parquet file without a full plan: rows by position (file
//! order, or the positions a narrow plan gives), the matches of a page-index pruned read, the
//! rows of a posting list, and counts from the lists' lengths. Each answers `None` when the
//! file cannot answer that way, and the executor then plans the query.

use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use super::cursor::After;
use super::direct::{FileRows, row_at};
use super::executor::{
    Executor, Loaded, RowsPage, counted, equality, last_position, listed, output_columns, rows_page,
};
use super::ordered::Orders;
use super::plan::hidden_columns;
use super::prune;
use super::request::DataQuery;
use super::sidecar::Postings;
use crate::dataset::manifest::Manifest;
use crate::error::{Error, Result};
use crate::storage::Storage;
use datafusion::scalar::ScalarValue;

/// A pruned read answers when the page index leaves at most this share of the rows (one in
/// so many); above it, reading the filter columns over those rows costs about a scan.
const PRUNED_SHARE: u64 = 16;

impl Executor {
    /// A page of every row in file order, read from the Parquet file by position: the total is
    /// the manifest's, a page past the end reads nothing. `None` when the file cannot be read
    /// that way (several files, row numbers that are not positions).
    pub(super) async fn direct_page(&self, v: &Loaded, q: &DataQuery) -> Result<Option<RowsPage>> {
        let total = v.manifest.rows;
        let start = match q.start()? {
            (Some(row), _) => u64::try_from(row.saturating_add(1)).unwrap_or(0),
            (None, offset) => offset as u64,
        };
        if start >= total {
            return Ok(Some((Vec::new(), total, None)));
        }
        let Some(file) = self.file_rows(v).await? else {
            return Ok(None);
        };
        let columns = output_columns(v, q);
        let size = q.page_size as usize;
        let read = async move { file.rows(start, size, &columns).await };
        let batches = self.engine.run_async(read).await?;
        batches.map(|b| rows_page(b, total)).transpose()
    }

    /// A page in file order under filters the page index decides well: the filter columns
    /// are read over the pages it leaves, which gives every match and so the exact total, then
    /// the page's rows are read at their positions. `None` when the index leaves more than a
    /// [`PRUNED_SHARE`]th of the rows (or cannot decide).
    pub(super) async fn pruned_page(&self, v: &Loaded, q: &DataQuery) -> Result<Option<RowsPage>> {
        let Some(file) = self.file_rows(v).await? else {
            return Ok(None);
        };
        let Some(ranges) = file.candidates(&q.filters)? else {
            return Ok(None);
        };
        if prune::count(&ranges).saturating_mul(PRUNED_SHARE) > file.total() {
            return Ok(None);
        }
        let (after, skip) = q.start()?;
        let (filters, columns) = (q.filters.clone(), output_columns(v, q));
        let size = q.page_size as usize;
        let read = async move {
            let matches = file.matching(&ranges, &filters).await?;
            let from = after.map_or(0, |row| matches.partition_point(|p| i64::from(*p) <= row));
            let page: Vec<u32> = matches[from..]
                .iter()
                .skip(skip)
                .take(size)
                .copied()
                .collect();
            let batches = file.rows_at(&page, &columns).await?;
            Ok::<_, Error>(batches.map(|b| (b, matches.len() as u64)))
        };
        match self.engine.run_async(read).await? {
            Some((batches, total)) => rows_page(batches, total).map(Some),
            None => Ok(None),
        }
    }

    /// A page in file order under one equality or `in` on a text column with posting lists: the
    /// total is the list's count, the rows are read from Parquet by position. `None` when the
    /// version has no lists for the column.
    pub(super) async fn listed_page(&self, v: &Loaded, q: &DataQuery) -> Result<Option<RowsPage>> {
        let Some((column, values)) = listed(q) else {
            return Ok(None);
        };
        let postings = self.postings(v).await?;
        let Some(postings) = postings.filter(|p| p.has(column)) else {
            return Ok(None);
        };
        let Some(file) = self.file_rows(v).await? else {
            return Ok(None);
        };
        let (after, skip) = q.start()?;
        let column = column.to_string();
        let values: Vec<String> = values.into_iter().map(str::to_string).collect();
        let (columns, size) = (output_columns(v, q), q.page_size as usize);
        let read = async move {
            let Some(m) = postings
                .matches(&column, &values, after, skip, size)
                .await?
            else {
                return Ok(None);
            };
            let batches = file.rows_at(&m.rows, &columns).await?;
            Ok(batches.map(|b| (b, m.total)))
        };
        match self.engine.run_async(read).await? {
            Some((batches, total)) => rows_page(batches, total).map(Some),
            None => Ok(None),
        }
    }

    /// Counts by the values of a column with posting lists, from the sidecar's head alone, in
    /// the order and shape DataFusion gives them (values ascending, the null group last with a
    /// count of 0, as `count` skips nulls).
    pub(super) async fn counted_page(&self, v: &Loaded, q: &DataQuery) -> Result<Option<RowsPage>> {
        let Some(column) = counted(q) else {
            return Ok(None);
        };
        let Some(postings) = self.postings(v).await? else {
            return Ok(None);
        };
        let column = column.to_string();
        let counts = self
            .engine
            .run_async(async move { postings.counts(&column).await })
            .await?;
        let Some((mut values, mut counts)) = counts else {
            return Ok(None);
        };
        let listed: u64 = counts.iter().sum();
        let mut values: Vec<Option<String>> = values.drain(..).map(Some).collect();
        if listed < v.manifest.rows {
            values.push(None);
            counts.push(0);
        }
        let groups = values.len();
        let from = q.offset()?.min(groups);
        let len = (q.page_size as usize).min(groups - from);
        let a = &q.aggregates[0];
        let schema = Arc::new(Schema::new(vec![
            Field::new(&a.column, DataType::Utf8, true),
            Field::new(a.output_name(), DataType::Int64, false),
        ]));
        let keys = StringArray::from(values[from..from + len].to_vec());
        let counts =
            Int64Array::from_iter_values(counts[from..from + len].iter().map(|c| *c as i64));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(keys), Arc::new(counts)])?;
        Ok(Some((vec![batch], groups as u64, None)))
    }

    /// The version's posting-list sidecar, read once.
    pub(super) async fn postings(&self, v: &Loaded) -> Result<Option<Arc<Postings>>> {
        let ranges = Arc::clone(&self.ranges);
        self.read_once(&v.postings, v, |storage, manifest| async move {
            Postings::open(&storage, &manifest, ranges).await
        })
        .await
    }

    /// The version's order sidecar, read once.
    async fn orders(&self, v: &Loaded) -> Result<Option<Arc<Orders>>> {
        let ranges = Arc::clone(&self.ranges);
        self.read_once(&v.orders, v, |storage, manifest| async move {
            Orders::open(&storage, &manifest, ranges).await
        })
        .await
    }

    /// The version's Parquet file with its metadata, read once.
    pub(super) async fn file_rows(&self, v: &Loaded) -> Result<Option<Arc<FileRows>>> {
        let cache = Arc::clone(&self.page_cache);
        self.read_once(&v.file, v, |storage, manifest| async move {
            FileRows::open(&storage, &manifest, &cache).await
        })
        .await
    }

    /// What `open` reads of a version, on the query runtime, kept in `cell` for the next query.
    pub(super) async fn read_once<T, F, Fut>(
        &self,
        cell: &tokio::sync::OnceCell<Option<Arc<T>>>,
        v: &Loaded,
        open: F,
    ) -> Result<Option<Arc<T>>>
    where
        T: Send + Sync + 'static,
        F: FnOnce(Storage, Manifest) -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>>> + Send + 'static,
    {
        let read = cell
            .get_or_try_init(|| async {
                let open = open(self.storage.clone(), v.manifest.clone());
                Ok::<_, Error>(self.engine.run_async(open).await?.map(Arc::new))
            })
            .await?;
        Ok(read.clone())
    }

    /// A page of rows planned from Parquet in two steps: the plan reads only the filter and
    /// sort columns with the row numbers and gives the page's positions (and the total), then
    /// the page's rows are read at those positions. A sort over many matching rows then never
    /// decodes the other columns of every match. `None` when the file cannot be read by
    /// position.
    pub(super) async fn positioned_page(
        &self,
        v: &Loaded,
        q: &DataQuery,
    ) -> Result<Option<RowsPage>> {
        let Some(file) = self.file_rows(v).await? else {
            return Ok(None);
        };
        let narrow = DataQuery {
            columns: Some(Vec::new()),
            ..q.clone()
        };
        let (keys, total) = self.planned_rows(v, &narrow).await?;
        let after = match keys.iter().rev().find(|b| b.num_rows() > 0) {
            Some(last) => Some(last_position(last, hidden_columns(q))?),
            None => None,
        };
        let mut positions = Vec::new();
        for b in &keys {
            positions.extend((0..b.num_rows()).map(|i| row_at(b, i)));
        }
        let Some(positions) = positions
            .into_iter()
            .map(|p| p.and_then(|p| u32::try_from(p).ok()))
            .collect::<Option<Vec<u32>>>()
        else {
            return Ok(None);
        };
        let columns = output_columns(v, q);
        let read = async move { in_order(&file, &positions, &columns).await };
        let page = self.engine.run_async(read).await?;
        Ok(page.map(|page| (page, total, after)))
    }

    /// A page sorted on a column with an order, under filters on that column only: the order
    /// gives the page's positions and the total, then the page's rows are read at them. `None`
    /// when the version has no order for the column or the query is of another shape.
    pub(super) async fn ordered_page(&self, v: &Loaded, q: &DataQuery) -> Result<Option<RowsPage>> {
        let [sort] = q.sorts.as_slice() else {
            return Ok(None);
        };
        if !q.groups.is_empty() || q.filters.iter().any(|f| f.column != sort.key) {
            return Ok(None);
        }
        let Some(orders) = self.orders(v).await?.filter(|o| o.has(&sort.key)) else {
            return Ok(None);
        };
        let Some(file) = self.file_rows(v).await? else {
            return Ok(None);
        };
        // The column's type, as the filter values were typed to it.
        let column = v.manifest.schema.iter().find(|c| c.name == sort.key);
        let Some(data_type) = column.map(|c| c.arrow_type()) else {
            return Ok(None);
        };
        let after = q.cursor.as_ref().and_then(|c| c.after.clone());
        let (_, skip) = q.start()?;
        let (q, columns) = (q.clone(), output_columns(v, q));
        let read = async move {
            let sort = &q.sorts[0];
            let limit = q.page_size as usize;
            let page = orders.page(sort, &data_type, &q.filters, after.as_ref(), skip, limit);
            let Some(page) = page.await? else {
                return Ok(None);
            };
            let Some(batches) = in_order(&file, &page.rows, &columns).await? else {
                return Ok(None);
            };
            let after = page_cursor(page.last, &data_type)?;
            Ok::<_, Error>(Some((batches, page.total, after)))
        };
        self.engine.run_async(read).await
    }
}

/// Rows a posting list may give a sorted page: their sort keys are read at their positions and
/// sorted in memory. Above it, the plan's scan of the two columns is the cheaper way.
const LISTED_SORT_ROWS: u64 = 200_000;

impl Executor {
    /// A page sorted on one column under one equality or `in` on a column with posting lists
    /// (a commune's establishments, newest first): the lists give every matching row, the sort
    /// column is read at those rows alone and sorted with the row as tie-break (the plan's
    /// order), and the page's rows are read at their positions. `None` when the query is of
    /// another shape, the column has no lists, or more than [`LISTED_SORT_ROWS`] rows match.
    pub(super) async fn listed_sorted_page(
        &self,
        v: &Loaded,
        q: &DataQuery,
    ) -> Result<Option<RowsPage>> {
        let [sort] = q.sorts.as_slice() else {
            return Ok(None);
        };
        if q.is_aggregate() || !q.groups.is_empty() {
            return Ok(None);
        }
        let Some((column, values)) = equality(q) else {
            return Ok(None);
        };
        let Some(postings) = self.postings(v).await?.filter(|p| p.has(column)) else {
            return Ok(None);
        };
        let Some(file) = self.file_rows(v).await? else {
            return Ok(None);
        };
        let orders = self.orders(v).await?.filter(|o| o.has(&sort.key));
        let data_type = v.manifest.schema.iter().find(|c| c.name == sort.key);
        let Some(data_type) = data_type.map(|c| c.arrow_type()) else {
            return Ok(None);
        };
        let (column, sort) = (column.to_string(), sort.clone());
        let values: Vec<String> = values.into_iter().map(str::to_string).collect();
        let after = q.cursor.as_ref().and_then(|c| c.after.clone());
        let (_, skip) = q.start()?;
        let (columns, size, rows) = (output_columns(v, q), q.page_size as usize, v.manifest.rows);
        let read = async move {
            let Some(m) = postings
                .matches(&column, &values, None, 0, usize::MAX)
                .await?
            else {
                return Ok(None);
            };
            // Walking the sort column's order for members costs about a position per
            // `rows / matches` for each row kept; reading the keys of every match costs a
            // random read each. The cheaper one answers.
            let kept = (skip + size).max(1) as u64;
            let walked = kept.saturating_mul(rows) / m.total.max(1);
            let by_order = match &orders {
                Some(o) if walked < 4 * m.total => {
                    o.page_of(&sort, &data_type, &m.rows, after.as_ref(), skip, size)
                        .await?
                }
                _ => None,
            };
            let (positions, last) = match by_order {
                Some(page) => (page.rows, page_cursor(page.last, &data_type)?),
                None if m.total <= LISTED_SORT_ROWS => {
                    let key = std::slice::from_ref(&sort.key);
                    let Some(keys) = file.rows_at(&m.rows, key).await? else {
                        return Ok(None);
                    };
                    match sorted_slice(&keys, &sort, after.as_ref(), skip, size)? {
                        Some(slice) => slice,
                        None => return Ok(None),
                    }
                }
                None => return Ok(None),
            };
            let Some(batches) = in_order(&file, &positions, &columns).await? else {
                return Ok(None);
            };
            Ok::<_, Error>(Some((batches, m.total, last)))
        };
        self.engine.run_async(read).await
    }
}

/// The cursor of an ordered page's last row (a row without a value keyed by a typed null).
fn page_cursor(
    last: Option<(Option<ScalarValue>, u32)>,
    data_type: &DataType,
) -> Result<Option<After>> {
    Ok(match last {
        Some((key, row)) => Some(After {
            keys: vec![match key {
                Some(k) => k,
                None => ScalarValue::try_from(data_type)?,
            }],
            row: i64::from(row),
        }),
        None => None,
    })
}

/// The positions of a page of rows whose sort keys these batches hold (with their row numbers):
/// ordered by the key as `sort` says, then by row; starting after the cursor's key and row, or
/// past `skip`; with the cursor of the page's last row. `None` when a batch lacks a column.
fn sorted_slice(
    keys: &[RecordBatch],
    sort: &super::request::Sort,
    after: Option<&After>,
    skip: usize,
    size: usize,
) -> Result<Option<(Vec<u32>, Option<After>)>> {
    use arrow::compute::{SortColumn, SortOptions, lexsort_to_indices};
    let Some(first) = keys.first() else {
        return Ok(Some((Vec::new(), None)));
    };
    let all = arrow::compute::concat_batches(&first.schema(), keys)?;
    let (Some(key), Some(rows)) = (
        all.column_by_name(&sort.key),
        all.column_by_name(crate::dataset::schema::ROW_COLUMN),
    ) else {
        return Ok(None);
    };
    let rows = arrow::compute::cast(rows, &DataType::Int64)?;
    let rows = rows.as_any().downcast_ref::<Int64Array>().expect("cast");
    let options = SortOptions {
        descending: sort.descending,
        nulls_first: sort.nulls_first,
    };
    let order = lexsort_to_indices(
        &[
            SortColumn {
                values: Arc::clone(key),
                options: Some(options),
            },
            SortColumn {
                values: Arc::new(rows.clone()),
                options: None,
            },
        ],
        None,
    )?;
    let at = |i: u32| -> Result<(ScalarValue, i64)> {
        Ok((
            ScalarValue::try_from_array(key, i as usize)?,
            rows.value(i as usize),
        ))
    };
    // The first row past the cursor, in the sort's order (keys compared as the sort compares
    // them: nulls where `nulls_first` puts them, values reversed when descending).
    let start = match after {
        Some(a) => {
            let cursor = (a.keys.first().cloned().unwrap_or(ScalarValue::Null), a.row);
            let mut lo = 0;
            let mut hi = order.len();
            while lo < hi {
                let mid = (lo + hi) / 2;
                let here = at(order.value(mid))?;
                if compare(&here, &cursor, &options).is_le() {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            lo
        }
        None => skip.min(order.len()),
    };
    let page: Vec<u32> = order.values()[start..].iter().take(size).copied().collect();
    let last = match page.last() {
        Some(i) => {
            let (k, row) = at(*i)?;
            Some(After { keys: vec![k], row })
        }
        None => None,
    };
    let positions = page
        .iter()
        .map(|i| rows.value(*i as usize) as u32)
        .collect();
    Ok(Some((positions, last)))
}

/// Two (key, row) pairs in a sort's order.
fn compare(
    a: &(ScalarValue, i64),
    b: &(ScalarValue, i64),
    options: &arrow::compute::SortOptions,
) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let keys = match (a.0.is_null(), b.0.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) if options.nulls_first => Ordering::Less,
        (true, false) => Ordering::Greater,
        (false, true) if options.nulls_first => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            let o = a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal);
            if options.descending { o.reverse() } else { o }
        }
    };
    keys.then(a.1.cmp(&b.1))
}

/// The rows at these positions, in this order (read ascending, then put back), without their
/// row numbers; `None` when the file cannot be read by position.
async fn in_order(
    file: &FileRows,
    positions: &[u32],
    columns: &[String],
) -> Result<Option<Vec<RecordBatch>>> {
    let mut ascending = positions.to_vec();
    ascending.sort_unstable();
    let Some(read) = file.rows_at(&ascending, columns).await? else {
        return Ok(None);
    };
    let (batches, _, _) = rows_page(read, 0)?;
    let Some(first) = batches.first() else {
        return Ok(Some(batches));
    };
    // Back in the page's order: each position's place among the ascending ones.
    let all = arrow::compute::concat_batches(&first.schema(), &batches)?;
    let order: arrow::array::UInt32Array = positions
        .iter()
        .map(|p| ascending.binary_search(p).ok().map(|i| i as u32))
        .collect();
    Ok(Some(vec![arrow::compute::take_record_batch(&all, &order)?]))
}
