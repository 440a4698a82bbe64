//! Which rows of a Parquet file may match a query's filters, by the file's page index: each
//! data page's smallest and largest value rule it out for a comparison or an equality it cannot
//! pass. On a column laid out in value order (an identifier the publisher sorts by, a date of
//! an append-only log) an equality leaves one page of the whole file, and the matches are then
//! found by reading that page only.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, Datum, Scalar};
use arrow::compute::kernels::cmp;
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;

use super::request::{Filter, Op};
use crate::error::Result;

/// A column's page statistics, gathered once per version: each data page's rows, smallest and
/// largest value (null where unknown).
pub struct PageStats {
    rows: Vec<Range<u64>>,
    mins: ArrayRef,
    maxes: ArrayRef,
}

/// Each column's page statistics, `None` for a column without them, gathered on first use.
pub type StatsCache = std::sync::Mutex<HashMap<String, Option<Arc<PageStats>>>>;

/// Rows, ascending and disjoint, whose pages may hold rows passing every filter that the page
/// index can decide; `None` when none can (no page index, no comparison on a column with
/// statistics).
pub fn candidates(
    meta: &ArrowReaderMetadata,
    starts: &[u64],
    cache: &StatsCache,
    filters: &[Filter],
) -> Result<Option<Vec<Range<u64>>>> {
    let mut kept: Option<Vec<Range<u64>>> = None;
    for f in filters {
        let stats = {
            let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get(&f.column) {
                Some(stats) => stats.clone(),
                None => {
                    let stats = page_stats(meta, starts, &f.column)?.map(Arc::new);
                    cache.insert(f.column.clone(), stats.clone());
                    stats
                }
            }
        };
        let Some(stats) = stats else {
            continue;
        };
        let Some(pass) = may_pass(f, &stats.mins, &stats.maxes)? else {
            continue;
        };
        let mut ranges: Vec<Range<u64>> = Vec::new();
        for (page, rows) in stats.rows.iter().enumerate() {
            // Unknown statistics (a null) rule nothing out.
            if !pass.is_valid(page) || pass.value(page) {
                match ranges.last_mut() {
                    Some(last) if last.end == rows.start => last.end = rows.end,
                    _ => ranges.push(rows.clone()),
                }
            }
        }
        kept = Some(match kept {
            None => ranges,
            Some(before) => intersect(&before, &ranges),
        });
    }
    Ok(kept)
}

/// Rows in the ranges.
pub fn count(ranges: &[Range<u64>]) -> u64 {
    ranges.iter().map(|r| r.end - r.start).sum()
}

/// A column's page statistics from the page index; `None` without one, or for floats (their
/// statistics leave NaN out, so they cannot rule a page out for every comparison).
fn page_stats(
    meta: &ArrowReaderMetadata,
    starts: &[u64],
    column_name: &str,
) -> Result<Option<PageStats>> {
    let file = meta.metadata();
    let (Some(pages), Some(offsets)) = (file.column_index(), file.offset_index()) else {
        return Ok(None);
    };
    let schema = meta.schema();
    let Ok(field) = schema.field_with_name(column_name) else {
        return Ok(None);
    };
    if matches!(field.data_type(), DataType::Float32 | DataType::Float64) {
        return Ok(None);
    }
    let parquet_schema = file.file_metadata().schema_descr();
    let Ok(conv) = StatisticsConverter::try_new(column_name, schema, parquet_schema) else {
        return Ok(None);
    };
    let Some(column) = conv.parquet_column_index() else {
        return Ok(None);
    };
    let groups: Vec<usize> = (0..file.num_row_groups()).collect();
    let mins = conv.data_page_mins(pages, offsets, &groups)?;
    let maxes = conv.data_page_maxes(pages, offsets, &groups)?;
    let mut rows = Vec::with_capacity(mins.len());
    for g in groups {
        let locations = offsets[g][column].page_locations();
        for (i, loc) in locations.iter().enumerate() {
            let start = starts[g] + loc.first_row_index as u64;
            let end = match locations.get(i + 1) {
                Some(next) => starts[g] + next.first_row_index as u64,
                None => starts[g + 1],
            };
            rows.push(start..end);
        }
    }
    if rows.len() != mins.len() || rows.len() != maxes.len() {
        return Ok(None);
    }
    Ok(Some(PageStats { rows, mins, maxes }))
}

/// Whether each page, from its smallest and largest values, may hold a row passing `f`;
/// `None` for filters statistics cannot decide.
fn may_pass(f: &Filter, mins: &ArrayRef, maxes: &ArrayRef) -> Result<Option<BooleanArray>> {
    let mut probes = Vec::with_capacity(f.values.len());
    for v in &f.values {
        let probe = v.to_array()?;
        if v.is_null() || probe.data_type() != mins.data_type() {
            return Ok(None);
        }
        probes.push(Scalar::new(probe));
    }
    let within = |v: &dyn Datum| -> Result<BooleanArray> {
        Ok(arrow::compute::and(
            &cmp::lt_eq(mins, v)?,
            &cmp::gt_eq(maxes, v)?,
        )?)
    };
    let pass = match (f.op, probes.as_slice()) {
        (Op::Exact, [v]) => within(v)?,
        (Op::In, [first, rest @ ..]) => {
            let mut any = within(first)?;
            for v in rest {
                any = arrow::compute::or(&any, &within(v)?)?;
            }
            any
        }
        (Op::Less, [v]) => cmp::lt_eq(mins, v)?,
        (Op::StrictlyLess, [v]) => cmp::lt(mins, v)?,
        (Op::Greater, [v]) => cmp::gt_eq(maxes, v)?,
        (Op::StrictlyGreater, [v]) => cmp::gt(maxes, v)?,
        _ => return Ok(None),
    };
    Ok(Some(pass))
}

/// The rows in both lists of ascending, disjoint ranges.
fn intersect(a: &[Range<u64>], b: &[Range<u64>]) -> Vec<Range<u64>> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let start = a[i].start.max(b[j].start);
        let end = a[i].end.min(b[j].end);
        if start < end {
            out.push(start..end);
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersects_ranges() {
        let a = [0..10, 20..30, 40..50];
        let b = [5..25, 28..45];
        assert_eq!(intersect(&a, &b), vec![5..10, 20..25, 28..30, 40..45]);
        assert_eq!(intersect(&a, &[]), Vec::<Range<u64>>::new());
        assert_eq!(count(&intersect(&a, &b)), 17);
    }
}
