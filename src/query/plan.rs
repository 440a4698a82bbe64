//! A validated [`DataQuery`] turned into DataFusion plans: typed-literal `Expr`s, never SQL text.

use datafusion::common::Column as DfColumn;
use datafusion::dataframe::DataFrame;
use datafusion::functions_aggregate::expr_fn::{avg, count, max, min, sum};
use datafusion::logical_expr::expr::Like;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, SortExpr, lit};
use datafusion::scalar::ScalarValue;

use super::params::{Agg, DataQuery, Filter, Op};
use crate::catalog::schema::{Column, ROW_COLUMN};
use crate::error::{Error, Result};

/// A column reference by exact name (no parsing of dots or case folding).
pub fn column(name: &str) -> Expr {
    Expr::Column(DfColumn::new_unqualified(name))
}

/// Escapes `%`, `_` and the escape character so that a `contains` value matches literally.
fn like_pattern(value: &str) -> String {
    let mut p = String::with_capacity(value.len() + 2);
    p.push('%');
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// One filter as an expression. Negative filters (`differs`, `notin`, `notcontains`) keep rows
/// where the column is null: a missing value differs from any given one.
pub fn filter_expr(f: &Filter) -> Expr {
    let c = column(&f.column);
    let first = || lit(f.values.first().cloned().unwrap_or(ScalarValue::Null));
    let contains = |negated| {
        let pattern = ScalarValue::Utf8(Some(like_pattern(match f.values.first() {
            Some(ScalarValue::Utf8(Some(s))) => s,
            _ => "",
        })));
        Expr::Like(Like::new(
            negated,
            Box::new(c.clone()),
            Box::new(lit(pattern)),
            Some('\\'),
            true,
        ))
    };
    match f.op {
        Op::Exact => c.eq(first()),
        Op::Differs => Expr::BinaryExpr(BinaryExpr::new(
            Box::new(c),
            Operator::IsDistinctFrom,
            Box::new(first()),
        )),
        Op::In => c.in_list(f.values.iter().cloned().map(lit).collect(), false),
        Op::NotIn => c
            .clone()
            .in_list(f.values.iter().cloned().map(lit).collect(), true)
            .or(c.is_null()),
        Op::Contains => contains(false),
        Op::NotContains => contains(true).or(c.is_null()),
        Op::Less => c.lt_eq(first()),
        Op::Greater => c.gt_eq(first()),
        Op::StrictlyLess => c.lt(first()),
        Op::StrictlyGreater => c.gt(first()),
        Op::IsNull => c.is_null(),
        Op::IsNotNull => c.is_not_null(),
    }
}

/// The plans one request needs.
pub struct Planned {
    /// The rows to return: filtered, sorted, paged (when paged) and projected.
    pub rows: DataFrame,
    /// The filtered (and aggregated) result before paging, for `meta.total`; `None` when the
    /// total is the dataset's row count.
    pub total: Option<DataFrame>,
}

/// Names of the hidden columns a keyed plan appends: the sort keys, then the row number.
pub fn key_column(i: usize) -> String {
    format!("\u{1}key{i}")
}

/// Builds the plans. `paginate` is false for whole-result exports; `keys` appends the sort
/// keys and row number of each row of a row query (see [`key_column`]), from which the next
/// page's cursor is written.
pub fn plan(
    df: DataFrame,
    q: &DataQuery,
    schema: &[Column],
    paginate: bool,
    keys: bool,
) -> Result<Planned> {
    let mut df = df;
    let filtered = !q.filters.is_empty();
    if let Some(pred) = conjunction(q.filters.iter().map(filter_expr)) {
        df = df.filter(pred).map_err(Error::from_engine)?;
    }
    let (df, total) = if q.is_aggregate() {
        let groups: Vec<Expr> = q.group_by.iter().map(|g| column(g)).collect();
        let aggs: Vec<Expr> = q
            .aggregates
            .iter()
            .map(|a| {
                let c = column(&a.column);
                let e = match a.agg {
                    Agg::Count => count(c),
                    Agg::Sum => sum(c),
                    Agg::Avg => avg(c),
                    Agg::Min => min(c),
                    Agg::Max => max(c),
                };
                e.alias(a.output_name())
            })
            .collect();
        let df = df.aggregate(groups, aggs).map_err(Error::from_engine)?;
        // Groups come in group-key order unless sorted otherwise, so pages are stable.
        let mut sorts: Vec<SortExpr> = q
            .sorts
            .iter()
            .map(|s| column(&s.key).sort(!s.descending, false))
            .collect();
        sorts.extend(q.group_by.iter().map(|g| column(g).sort(true, false)));
        let df = if sorts.is_empty() {
            df
        } else {
            df.sort(sorts).map_err(Error::from_engine)?
        };
        (df.clone(), Some(df))
    } else {
        let total = filtered.then(|| df.clone());
        // A cursor seeks past the last row shown instead of skipping rows.
        let after = q.cursor.as_ref().and_then(|c| c.after.as_ref());
        let df = match after {
            Some(a) => df
                .filter(a.predicate(&q.sorts))
                .map_err(Error::from_engine)?,
            None => df,
        };
        // The row number breaks ties, so that pages of a sorted result never overlap.
        let mut sorts: Vec<SortExpr> = q
            .sorts
            .iter()
            .map(|s| column(&s.key).sort(!s.descending, false))
            .collect();
        sorts.push(column(ROW_COLUMN).sort(true, false));
        let df = df.sort(sorts).map_err(Error::from_engine)?;
        let names: Vec<&str> = match &q.columns {
            Some(cols) => cols.iter().map(String::as_str).collect(),
            None => schema.iter().map(|c| c.name.as_str()).collect(),
        };
        let mut projected = names.iter().map(|n| column(n)).collect::<Vec<_>>();
        if keys {
            let hidden = q.sorts.iter().map(|s| s.key.as_str()).chain([ROW_COLUMN]);
            projected.extend(
                hidden
                    .enumerate()
                    .map(|(i, k)| column(k).alias(key_column(i))),
            );
        }
        let skip = if after.is_some() { 0 } else { q.offset()? };
        let df = if paginate {
            df.limit(skip, Some(q.page_size as usize))
                .map_err(Error::from_engine)?
        } else {
            df
        };
        (df.select(projected).map_err(Error::from_engine)?, total)
    };
    let rows = if q.is_aggregate() && paginate {
        df.limit(q.offset()?, Some(q.page_size as usize))
            .map_err(Error::from_engine)?
    } else {
        df
    };
    Ok(Planned { rows, total })
}
