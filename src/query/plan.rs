//! A validated [`DataQuery`] turned into DataFusion plans: typed-literal `Expr`s, never SQL text.

use datafusion::dataframe::DataFrame;
use datafusion::functions_aggregate::expr_fn::{avg, count, max, min, sum};
use datafusion::logical_expr::expr::Like;
use datafusion::logical_expr::utils::{conjunction, disjunction};
// `ident` names a column exactly (no parsing of dots, no case folding).
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, SortExpr, ident, lit};
use datafusion::scalar::ScalarValue;

use super::cursor::After;
use super::geo::DISTANCE;
use super::request::{Agg, Condition, DataQuery, Filter, Op, Sort};
use crate::dataset::schema::{Column, ROW_COLUMN, file_order};
use crate::error::Result;

/// The `LIKE` pattern of a `contains` filter: its pieces in this order, anything around and
/// between them. Native routes give one piece; the tabular API splits its value on `*`, its
/// wildcard. `%`, `_` and the escape character match literally.
fn like_pattern(pieces: &[ScalarValue]) -> String {
    let escaped: Vec<String> = pieces
        .iter()
        .map(|piece| {
            let text = match piece {
                ScalarValue::Utf8(Some(text)) => text.as_str(),
                _ => "",
            };
            let mut e = String::with_capacity(text.len());
            for c in text.chars() {
                if matches!(c, '%' | '_' | '\\') {
                    e.push('\\');
                }
                e.push(c);
            }
            e
        })
        .collect();
    format!("%{}%", escaped.join("%"))
}

/// One filter as an expression. Negative filters (`differs`, `notin`, `notcontains`) keep rows
/// where the column is null: a missing value differs from any given one.
pub fn filter_expr(f: &Filter) -> Expr {
    let c = ident(&f.column);
    let first = || lit(f.values.first().cloned().unwrap_or(ScalarValue::Null));
    let contains = |negated| {
        let pattern = ScalarValue::Utf8(Some(like_pattern(&f.values)));
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

/// A group as one expression. Equalities on one column under an `or` become one `IN` list, so
/// that a long chain of them stays a flat test instead of a deep tree of `OR`s.
pub fn condition_expr(c: &Condition) -> Expr {
    match c {
        Condition::Filter(f) => filter_expr(f),
        Condition::All(items) => conjunction(items.iter().map(condition_expr)).unwrap_or(lit(true)),
        Condition::Any(items) => {
            let mut lists: Vec<(&str, Vec<Expr>)> = Vec::new();
            let mut others = Vec::new();
            for item in items {
                match item {
                    Condition::Filter(f) if f.op == Op::Exact => {
                        let values = f.values.iter().cloned().map(lit);
                        match lists.iter_mut().find(|(c, _)| *c == f.column) {
                            Some((_, v)) => v.extend(values),
                            None => lists.push((&f.column, values.collect())),
                        }
                    }
                    other => others.push(condition_expr(other)),
                }
            }
            let lists = lists.into_iter().map(|(c, values)| match values.len() {
                1 => ident(c).eq(values.into_iter().next().unwrap_or(lit(true))),
                _ => ident(c).in_list(values, false),
            });
            disjunction(lists.chain(others)).unwrap_or(lit(false))
        }
    }
}

/// Every condition of a query (filters and groups) as one predicate, if there is any.
pub fn predicate(q: &DataQuery) -> Option<Expr> {
    let filters = q.filters.iter().map(filter_expr);
    let groups = q.groups.iter().map(condition_expr);
    let conditions = filters.chain(groups).chain(q.search.exprs());
    conjunction(conditions.chain(q.geo.exprs()))
}

/// The plans one request needs.
pub struct Planned {
    /// The rows to return: filtered, sorted, paged (when paged) and projected.
    pub rows: DataFrame,
    /// The filtered (and aggregated) result before paging, for `meta.total`; `None` when the
    /// total is the dataset's row count.
    pub total: Option<DataFrame>,
}

/// Rows strictly after a cursor's position in the order `sorts` then row number, nulls last in
/// both directions: for the first key where a row differs, it is beyond the value (or null,
/// which sorts after every value), all earlier keys being equal.
pub fn seek(after: &After, sorts: &[Sort]) -> Expr {
    let mut equal_so_far: Vec<Expr> = Vec::new();
    let mut branches: Vec<Expr> = Vec::new();
    for (s, v) in sorts.iter().zip(&after.keys) {
        let c = ident(&s.key);
        if v.is_null() {
            // Nothing sorts after a null but other nulls, which tie.
            equal_so_far.push(c.is_null());
            continue;
        }
        let beyond = if s.descending {
            c.clone().lt(lit(v.clone()))
        } else {
            c.clone().gt(lit(v.clone()))
        };
        let mut branch = equal_so_far.clone();
        branch.push(beyond.or(c.clone().is_null()));
        branches.extend(conjunction(branch));
        equal_so_far.push(c.eq(lit(v.clone())));
    }
    equal_so_far.push(ident(ROW_COLUMN).gt(lit(after.row)));
    branches.extend(conjunction(equal_so_far));
    disjunction(branches).unwrap_or_else(|| lit(true))
}

/// Names of the hidden columns a keyed plan appends: the sort keys, then the row number.
fn key_column(i: usize) -> String {
    format!("\u{1}key{i}")
}

/// How many hidden columns a keyed plan of `q` appends after the visible ones.
pub fn hidden_columns(q: &DataQuery) -> usize {
    q.sorts.len() + 1
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
    let filtered = match predicate(q) {
        Some(pred) => df.filter(pred)?,
        None => df,
    };
    if q.is_aggregate() {
        let groups = aggregated(filtered, q)?;
        let rows = if paginate {
            groups
                .clone()
                .limit(q.offset()?, Some(q.page_size as usize))?
        } else {
            groups.clone()
        };
        return Ok(Planned {
            rows,
            total: Some(groups),
        });
    }
    let conditions =
        !q.filters.is_empty() || !q.groups.is_empty() || !q.search.is_empty() || !q.geo.is_empty();
    let total = conditions.then(|| filtered.clone());
    let rows = ordered_rows(filtered, q, schema, paginate, keys)?;
    Ok(Planned { rows, total })
}

/// The groups of an aggregation, in the requested order, then in group-key order so that pages
/// are stable.
fn aggregated(df: DataFrame, q: &DataQuery) -> Result<DataFrame> {
    let groups: Vec<Expr> = q.group_by.iter().map(ident).collect();
    let aggs: Vec<Expr> = q
        .aggregates
        .iter()
        .map(|a| {
            let c = ident(&a.column);
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
    let df = df.aggregate(groups, aggs)?;
    let mut sorts = requested_order(q);
    sorts.extend(q.group_by.iter().map(|g| ident(g).sort(true, false)));
    Ok(if sorts.is_empty() {
        df
    } else {
        df.sort(sorts)?
    })
}

/// The sorts a request asks for.
fn requested_order(q: &DataQuery) -> Vec<SortExpr> {
    let relevance = q.search.relevance().map(|r| r.sort(false, false));
    let sorts = q.sorts.iter();
    let sorts = sorts.map(|s| ident(&s.key).sort(!s.descending, s.nulls_first));
    relevance.into_iter().chain(sorts).collect()
}

/// Filtered rows in the requested order (file order breaking ties, so that pages never
/// overlap), from the cursor's position or the page's offset, projected to the columns asked.
fn ordered_rows(
    df: DataFrame,
    q: &DataQuery,
    schema: &[Column],
    paginate: bool,
    keys: bool,
) -> Result<DataFrame> {
    // `near` adds each row's distance, which its order and cursors may use.
    let distance = q.geo.distance();
    let df = match &distance {
        Some(d) => df.with_column(DISTANCE, d.clone())?,
        None => df,
    };
    // A cursor seeks past the last row shown instead of skipping rows.
    let after = q.cursor.as_ref().and_then(|c| c.after.as_ref());
    let df = match after {
        Some(a) => df.filter(seek(a, &q.sorts))?,
        None => df,
    };
    let mut sorts = requested_order(q);
    sorts.push(file_order());
    let df = df.sort(sorts)?;
    let names: Vec<&str> = match &q.columns {
        Some(cols) => cols.iter().map(String::as_str).collect(),
        None => schema.iter().map(|c| c.name.as_str()).collect(),
    };
    let mut projected = names.iter().map(|n| ident(*n)).collect::<Vec<_>>();
    if distance.is_some() {
        projected.push(ident(DISTANCE));
    }
    if keys {
        let hidden = q.sorts.iter().map(|s| s.key.as_str()).chain([ROW_COLUMN]);
        let hidden = hidden
            .enumerate()
            .map(|(i, k)| ident(k).alias(key_column(i)));
        projected.extend(hidden);
    }
    let df = if paginate {
        let skip = if after.is_some() { 0 } else { q.offset()? };
        df.limit(skip, Some(q.page_size as usize))?
    } else {
        df
    };
    Ok(df.select(projected)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::scalar::ScalarValue;

    #[test]
    fn the_seek_predicate_orders_nulls_last() {
        let sorts = vec![Sort {
            key: "pop".into(),
            descending: false,
            nulls_first: false,
        }];
        let after = After {
            keys: vec![ScalarValue::Int64(Some(5))],
            row: 9,
        };
        assert_eq!(
            seek(&after, &sorts).to_string(),
            "pop > Int64(5) OR pop IS NULL OR pop = Int64(5) AND __row > Int64(9)"
        );
        let after_null = After {
            keys: vec![ScalarValue::Int64(None)],
            row: 9,
        };
        assert_eq!(
            seek(&after_null, &sorts).to_string(),
            "pop IS NULL AND __row > Int64(9)"
        );
    }
}
