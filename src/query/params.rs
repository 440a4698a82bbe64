//! The query grammar of the data routes (data.gouv.fr's tabular API): raw query-string pairs
//! checked against a dataset's schema into a typed [`DataQuery`], or a 400 saying what is wrong.

use std::sync::Arc;

use datafusion::scalar::ScalarValue;

use super::cursor::Cursor;
use crate::catalog::schema::{Column, ColumnType, UTC};
use crate::config::Limits;
use crate::error::{Error, Result};
use crate::ingest::values::{DateLayout, parse_date, parse_datetime};

/// Filter operators, by their name in `column__operator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Exact,
    Differs,
    In,
    NotIn,
    Contains,
    NotContains,
    Less,
    Greater,
    StrictlyLess,
    StrictlyGreater,
    IsNull,
    IsNotNull,
}

/// Aggregates, named `column__aggregate` in requests and in results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Agg {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

const OPS: [(&str, Op); 12] = [
    ("exact", Op::Exact),
    ("differs", Op::Differs),
    ("in", Op::In),
    ("notin", Op::NotIn),
    ("contains", Op::Contains),
    ("notcontains", Op::NotContains),
    ("less", Op::Less),
    ("greater", Op::Greater),
    ("strictly_less", Op::StrictlyLess),
    ("strictly_greater", Op::StrictlyGreater),
    ("isnull", Op::IsNull),
    ("isnotnull", Op::IsNotNull),
];

const AGGS: [(&str, Agg); 5] = [
    ("count", Agg::Count),
    ("sum", Agg::Sum),
    ("avg", Agg::Avg),
    ("min", Agg::Min),
    ("max", Agg::Max),
];

impl Op {
    pub fn name(self) -> &'static str {
        OPS.iter().find(|(_, o)| *o == self).map_or("", |(n, _)| n)
    }
}

impl Agg {
    pub fn name(self) -> &'static str {
        AGGS.iter().find(|(_, a)| *a == self).map_or("", |(n, _)| n)
    }
}

/// One `column__operator=value` condition, its values already typed.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: String,
    pub op: Op,
    pub values: Vec<ScalarValue>,
}

/// A sort key: a column, or an aggregate's output name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub key: String,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    pub column: String,
    pub agg: Agg,
}

impl Aggregate {
    pub fn output_name(&self) -> String {
        format!("{}__{}", self.column, self.agg.name())
    }
}

/// A validated request of a data route.
#[derive(Debug, Clone, PartialEq)]
pub struct DataQuery {
    /// Columns to return, in this order (`None`: all).
    pub columns: Option<Vec<String>>,
    pub page: u64,
    pub page_size: u64,
    /// Whether `page` or `page_size` was given (exports are whole results otherwise).
    pub paged: bool,
    pub filters: Vec<Filter>,
    pub sorts: Vec<Sort>,
    pub group_by: Vec<String>,
    pub aggregates: Vec<Aggregate>,
    /// Where the page starts when the request carries a `cursor` (`page` then comes from it).
    pub cursor: Option<Cursor>,
}

impl DataQuery {
    pub fn is_aggregate(&self) -> bool {
        !self.group_by.is_empty() || !self.aggregates.is_empty()
    }

    /// Rows skipped before the page (checked: a huge page number is a 400, not an overflow).
    pub fn offset(&self) -> Result<usize> {
        (self.page - 1)
            .checked_mul(self.page_size)
            .and_then(|o| usize::try_from(o).ok())
            .ok_or_else(|| Error::bad_request(format!("page {} is beyond any result", self.page)))
    }

    /// The query in canonical form, as a query string: filters sorted, values written back
    /// from their typed form, then groupings, aggregates and sorts in the order given, then the
    /// page when `page` is given. Two requests that mean the same thing get the same text, so it
    /// keys the cache and the ETag, and the links are built from it (so that the bodies of two
    /// such requests are identical too).
    pub fn query_string(&self, page: Option<u64>) -> String {
        let mut ser = self.conditions();
        if let Some(page) = page {
            ser.append_pair("page_size", &self.page_size.to_string());
            ser.append_pair("page", &page.to_string());
        }
        ser.finish()
    }

    /// The canonical query with a cursor in place of the page number.
    pub fn cursor_string(&self, cursor: &Cursor) -> String {
        let mut ser = self.conditions();
        ser.append_pair("page_size", &self.page_size.to_string());
        ser.append_pair("cursor", &cursor.encode());
        ser.finish()
    }

    /// The canonical text of the request itself: its cursor, or its page when `paged`.
    pub fn canonical(&self, paged: bool) -> String {
        match &self.cursor {
            Some(c) => self.cursor_string(c),
            None => self.query_string(paged.then_some(self.page)),
        }
    }

    /// Everything but the position: columns, filters, groupings, aggregates, sorts.
    fn conditions(&self) -> url::form_urlencoded::Serializer<'static, String> {
        let mut filters: Vec<(String, String)> = self
            .filters
            .iter()
            .map(|f| {
                let text = match f.op {
                    Op::In | Op::NotIn => f
                        .values
                        .iter()
                        .map(|v| quote_item(&value_text(v)))
                        .collect::<Vec<_>>()
                        .join(","),
                    _ => f.values.first().map(value_text).unwrap_or_default(),
                };
                (format!("{}__{}", f.column, f.op.name()), text)
            })
            .collect();
        filters.sort();
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        if let Some(cols) = &self.columns {
            ser.append_pair("columns", &cols.join(","));
        }
        for (k, v) in &filters {
            ser.append_pair(k, v);
        }
        for g in &self.group_by {
            ser.append_key_only(&format!("{g}__groupby"));
        }
        for a in &self.aggregates {
            ser.append_key_only(&a.output_name());
        }
        for s in &self.sorts {
            ser.append_pair(
                &format!("{}__sort", s.key),
                if s.descending { "desc" } else { "asc" },
            );
        }
        ser
    }
}

/// A typed value written back as request text (the form [`typed`] parses).
fn value_text(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Utf8(Some(s)) => s.clone(),
        ScalarValue::Date32(Some(days)) => chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
            .and_then(|e| e.checked_add_signed(chrono::Duration::days(i64::from(*days))))
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        ScalarValue::TimestampMicrosecond(Some(us), tz) => {
            chrono::DateTime::from_timestamp_micros(*us)
                .map(|d| {
                    let text = d.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string();
                    if tz.is_some() { text + "+00:00" } else { text }
                })
                .unwrap_or_default()
        }
        other => other.to_string(),
    }
}

/// Quotes a list item that holds a comma or a quote, as [`split_list`] reads it.
fn quote_item(item: &str) -> String {
    if item.contains(',') || item.contains('"') {
        format!("\"{}\"", item.replace('"', "\"\""))
    } else {
        item.to_string()
    }
}

const RESERVED: [&str; 4] = ["columns", "page", "page_size", "cursor"];

fn op_list() -> String {
    OPS.iter()
        .map(|(n, _)| *n)
        .chain(["sort", "groupby"])
        .chain(AGGS.iter().map(|(n, _)| *n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses and validates a raw query string against a schema.
pub fn parse(raw: &str, schema: &[Column], limits: &Limits) -> Result<DataQuery> {
    let mut q = DataQuery {
        columns: None,
        page: 1,
        page_size: limits.default_page_size,
        paged: false,
        filters: Vec::new(),
        sorts: Vec::new(),
        group_by: Vec::new(),
        aggregates: Vec::new(),
        cursor: None,
    };
    let mut cursor_text: Option<String> = None;
    let mut page_given = false;
    let known = || {
        schema
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let find = |name: &str, key: &str| -> Result<&Column> {
        schema.iter().find(|c| c.name == name).ok_or_else(|| {
            Error::bad_request(format!(
                "unknown column `{name}` in `{key}`; known columns: {}",
                known()
            ))
        })
    };
    let mut conditions = 0usize;
    let mut pending_sorts: Vec<(String, String, String)> = Vec::new();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let (key, value) = (key.as_ref(), value.as_ref());
        if key.is_empty() {
            continue;
        }
        match key {
            "page" => {
                q.page = value.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
                    Error::bad_request(format!(
                        "page `{value}` must be a whole number of at least 1"
                    ))
                })?;
                q.paged = true;
                page_given = true;
                continue;
            }
            "cursor" => {
                cursor_text = Some(value.to_string());
                q.paged = true;
                continue;
            }
            "page_size" => {
                let max = limits.max_page_size;
                q.page_size = value
                    .parse()
                    .ok()
                    .filter(|s| (1..=max).contains(s))
                    .ok_or_else(|| {
                        Error::bad_request(format!(
                            "page_size `{value}` must be a whole number from 1 to {max}"
                        ))
                    })?;
                q.paged = true;
                continue;
            }
            "columns" => {
                let mut cols = Vec::new();
                for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    find(name, "columns")?;
                    if cols.iter().any(|c| c == name) {
                        return Err(Error::bad_request(format!(
                            "column `{name}` is listed twice in `columns`"
                        )));
                    }
                    cols.push(name.to_string());
                }
                if cols.is_empty() {
                    return Err(Error::bad_request(format!(
                        "`columns` is empty; list column names separated by commas, from: {}",
                        known()
                    )));
                }
                q.columns = Some(cols);
                continue;
            }
            _ => {}
        }
        let Some((name, op_text)) = key.split_once("__") else {
            return Err(Error::bad_request(format!(
                "unknown parameter `{key}`; valid parameters are {}, and filters written column__operator",
                RESERVED.join(", ")
            )));
        };
        conditions += 1;
        if conditions > limits.max_filters {
            return Err(Error::bad_request(format!(
                "more than {} filter, sort and aggregation parameters; narrow the query",
                limits.max_filters
            )));
        }
        // A sort on an aggregate's output: `score__avg__sort=desc`.
        if let Some((agg_text, "sort")) = op_text.split_once("__")
            && AGGS.iter().any(|(n, _)| *n == agg_text)
        {
            find(name, key)?;
            pending_sorts.push((
                format!("{name}__{agg_text}"),
                value.to_string(),
                key.to_string(),
            ));
            continue;
        }
        let col = find(name, key)?;
        if op_text == "sort" {
            pending_sorts.push((name.to_string(), value.to_string(), key.to_string()));
            continue;
        }
        if op_text == "groupby" {
            if !q.group_by.iter().any(|g| g == name) {
                q.group_by.push(name.to_string());
            }
            continue;
        }
        if let Some((_, agg)) = AGGS.iter().find(|(n, _)| *n == op_text) {
            if matches!(agg, Agg::Sum | Agg::Avg)
                && !matches!(col.kind, ColumnType::Integer | ColumnType::Float)
            {
                return Err(Error::bad_request(format!(
                    "`{op_text}` needs a numeric column; `{name}` is {}",
                    col.kind.as_str()
                )));
            }
            let a = Aggregate {
                column: name.to_string(),
                agg: *agg,
            };
            if !q.aggregates.contains(&a) {
                q.aggregates.push(a);
            }
            continue;
        }
        let Some((_, op)) = OPS.iter().find(|(n, _)| *n == op_text) else {
            return Err(Error::bad_request(format!(
                "unknown operator `{op_text}` in `{key}`; valid operators: {}",
                op_list()
            )));
        };
        q.filters.push(filter(col, *op, value, key, limits)?);
    }
    for (k, dir, key) in pending_sorts {
        let descending = match dir.as_str() {
            "asc" => false,
            "desc" => true,
            other => {
                return Err(Error::bad_request(format!(
                    "`{key}={other}`: a sort is `asc` or `desc`"
                )));
            }
        };
        q.sorts.push(Sort { key: k, descending });
    }
    check_aggregation(&q)?;
    if let Some(text) = cursor_text {
        if page_given {
            return Err(Error::bad_request(
                "`cursor` and `page` cannot be combined: a cursor already says which page it leads to",
            ));
        }
        let sorts = (!q.is_aggregate()).then_some(q.sorts.as_slice());
        let cursor = Cursor::decode(&text, sorts, schema)?;
        q.page = cursor.page;
        q.cursor = Some(cursor);
    }
    Ok(q)
}

fn check_aggregation(q: &DataQuery) -> Result<()> {
    let outputs: Vec<String> = q
        .group_by
        .iter()
        .cloned()
        .chain(q.aggregates.iter().map(Aggregate::output_name))
        .collect();
    if q.is_aggregate() {
        if q.columns.is_some() {
            return Err(Error::bad_request(
                "`columns` cannot be combined with aggregation; the result has the groupby columns and the aggregates",
            ));
        }
        for s in &q.sorts {
            if !outputs.contains(&s.key) {
                return Err(Error::bad_request(format!(
                    "cannot sort an aggregated result by `{}`; sort by one of: {}",
                    s.key,
                    outputs.join(", ")
                )));
            }
        }
    } else if let Some(s) = q.sorts.iter().find(|s| s.key.contains("__")) {
        return Err(Error::bad_request(format!(
            "`{}` is an aggregate; sorting by it needs aggregation (e.g. a __groupby)",
            s.key
        )));
    }
    Ok(())
}

fn filter(col: &Column, op: Op, value: &str, key: &str, limits: &Limits) -> Result<Filter> {
    let values = match op {
        Op::IsNull | Op::IsNotNull => Vec::new(),
        Op::Contains | Op::NotContains => {
            if col.kind != ColumnType::String {
                return Err(Error::bad_request(format!(
                    "`{}` applies to string columns; `{}` is {} (use exact, in, less or greater)",
                    op.name(),
                    col.name,
                    col.kind.as_str()
                )));
            }
            vec![ScalarValue::Utf8(Some(value.to_string()))]
        }
        Op::In | Op::NotIn => {
            let items =
                split_list(value).map_err(|e| Error::bad_request(format!("`{key}`: {e}")))?;
            if items.len() > limits.max_in_values {
                return Err(Error::bad_request(format!(
                    "`{key}` lists {} values; at most {} are allowed",
                    items.len(),
                    limits.max_in_values
                )));
            }
            items
                .iter()
                .map(|v| typed(col, v, key))
                .collect::<Result<_>>()?
        }
        _ => vec![typed(col, value, key)?],
    };
    Ok(Filter {
        column: col.name.clone(),
        op,
        values,
    })
}

/// Splits an `__in` list on commas; a value holding a comma is written in double quotes, a
/// quote inside quotes is doubled.
pub fn split_list(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut items = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut item = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(
                            "a quoted value is not closed; write \"a,b\" with both quotes".into(),
                        );
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        item.push('"');
                    }
                    Some('"') => break,
                    Some(c) => item.push(c),
                }
            }
            match chars.next() {
                None => {
                    items.push(item);
                    return Ok(items);
                }
                Some(',') => {}
                Some(c) => {
                    return Err(format!(
                        "`{c}` after a closing quote; separate values with commas"
                    ));
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        items.push(item);
                        return Ok(items);
                    }
                    Some(',') => break,
                    Some(c) => item.push(c),
                }
            }
        }
        items.push(item);
    }
}

/// A request value parsed as the column's type, as a typed literal.
pub fn typed(col: &Column, value: &str, key: &str) -> Result<ScalarValue> {
    let bad = || {
        Error::bad_request(format!(
            "`{value}` in `{key}` is not a valid {} for column `{}` (e.g. {})",
            col.kind.as_str(),
            col.name,
            col.kind.example()
        ))
    };
    Ok(match col.kind {
        ColumnType::String => ScalarValue::Utf8(Some(value.to_string())),
        ColumnType::Integer => ScalarValue::Int64(Some(value.trim().parse().map_err(|_| bad())?)),
        ColumnType::Float => {
            let v: f64 = value.trim().parse().map_err(|_| bad())?;
            let plain = value
                .trim()
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
            if !v.is_finite() || !plain {
                return Err(bad());
            }
            ScalarValue::Float64(Some(v))
        }
        ColumnType::Boolean => match value.trim().to_ascii_lowercase().as_str() {
            "true" => ScalarValue::Boolean(Some(true)),
            "false" => ScalarValue::Boolean(Some(false)),
            _ => return Err(bad()),
        },
        ColumnType::Date => match parse_date(value.trim()) {
            Some((days, DateLayout::Iso)) => ScalarValue::Date32(Some(days)),
            _ => return Err(bad()),
        },
        ColumnType::Datetime => {
            let dt = parse_datetime(value.trim())
                .filter(|d| d.layout == DateLayout::Iso)
                .ok_or_else(bad)?;
            if col.with_offset {
                // A value without offset is read as UTC, the zone the column is stored in.
                ScalarValue::TimestampMicrosecond(Some(dt.micros), Some(Arc::from(UTC)))
            } else if dt.with_offset {
                return Err(Error::bad_request(format!(
                    "`{value}` in `{key}` has a UTC offset but column `{}` holds local times without one (e.g. {})",
                    col.name,
                    ColumnType::Datetime.example()
                )));
            } else {
                ScalarValue::TimestampMicrosecond(Some(dt.micros), None)
            }
        }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A schema with a column of each type (also used by the cursor tests).
    pub(crate) fn schema() -> Vec<Column> {
        vec![
            Column::new("city", ColumnType::String),
            Column::new("pop", ColumnType::Integer),
            Column::new("lat", ColumnType::Float),
            Column::new("open", ColumnType::Boolean),
            Column::new("day", ColumnType::Date),
            Column::new("at", ColumnType::Datetime),
        ]
    }

    fn p(raw: &str) -> Result<DataQuery> {
        parse(raw, &schema(), &Limits::default())
    }

    fn err(raw: &str) -> String {
        p(raw).unwrap_err().to_string()
    }

    #[test]
    fn parses_every_operator_into_typed_values() {
        let q = p("city__exact=O%27Brien&pop__greater=10&lat__strictly_less=1.5&open__exact=true&day__less=2024-06-30&at__greater=2024-06-30T10:00:00&city__isnull").unwrap();
        assert_eq!(q.filters.len(), 7);
        assert_eq!(
            q.filters[0].values,
            vec![ScalarValue::Utf8(Some("O'Brien".into()))]
        );
        assert_eq!(q.filters[1].values, vec![ScalarValue::Int64(Some(10))]);
        assert_eq!(q.filters[2].values, vec![ScalarValue::Float64(Some(1.5))]);
        assert_eq!(q.filters[3].values, vec![ScalarValue::Boolean(Some(true))]);
        assert_eq!(q.filters[4].values, vec![ScalarValue::Date32(Some(19904))]);
        assert_eq!(q.filters[6].op, Op::IsNull);
        let q = p("city__in=Rabat,%22Fes,%20Meknes%22,Oujda&pop__sort=desc&city__sort=asc&page=2&page_size=5").unwrap();
        assert_eq!(q.filters[0].values.len(), 3);
        assert_eq!(
            q.filters[0].values[1],
            ScalarValue::Utf8(Some("Fes, Meknes".into()))
        );
        assert_eq!(
            q.sorts,
            vec![
                Sort {
                    key: "pop".into(),
                    descending: true
                },
                Sort {
                    key: "city".into(),
                    descending: false
                }
            ]
        );
        assert_eq!((q.page, q.page_size, q.offset().unwrap()), (2, 5, 5));
    }

    #[test]
    fn bad_requests_name_the_problem_and_the_fix() {
        assert!(err("nope__exact=1").contains("unknown column `nope`"));
        assert!(err("nope__exact=1").contains("known columns: city, pop"));
        assert!(err("city__like=a").contains("unknown operator `like`"));
        assert!(err("city__like=a").contains("valid operators: exact"));
        assert!(err("limit=5").contains("unknown parameter `limit`"));
        assert!(
            err("pop__exact=abc").contains(
                "`abc` in `pop__exact` is not a valid integer for column `pop` (e.g. 42)"
            )
        );
        assert!(err("lat__less=inf").contains("not a valid float"));
        assert!(err("day__exact=30/06/2024").contains("not a valid date"));
        assert!(err("pop__contains=1").contains("applies to string columns"));
        assert!(err("page=0").contains("at least 1"));
        assert!(err("page_size=1001").contains("from 1 to 1000"));
        assert!(err("city__sort=up").contains("`asc` or `desc`"));
        assert!(err("city__sum").contains("needs a numeric column"));
        assert!(err("columns=city,nope").contains("unknown column `nope` in `columns`"));
        assert!(err("city__in=%22a,b").contains("not closed"));
        let many: Vec<String> = (0..51).map(|i| format!("pop__differs={i}")).collect();
        assert!(err(&many.join("&")).contains("more than 50"));
        let list: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
        assert!(err(&format!("pop__in={}", list.join(","))).contains("at most 1000"));
        let deep = p("page=99999999999999999&page_size=1000").unwrap();
        assert!(
            deep.offset()
                .unwrap_err()
                .to_string()
                .contains("beyond any result")
        );
    }

    #[test]
    fn canonical_text_ignores_filter_order_but_not_sort_order() {
        let a = p("pop__greater=1&city__exact=x&page=1")
            .unwrap()
            .query_string(Some(1));
        let b = p("city__exact=x&pop__greater=01")
            .unwrap()
            .query_string(Some(1));
        assert_eq!(a, b);
        assert_eq!(a, "city__exact=x&pop__greater=1&page_size=20&page=1");
        let c = p("pop__sort=asc&city__sort=asc")
            .unwrap()
            .query_string(None);
        let d = p("city__sort=asc&pop__sort=asc")
            .unwrap()
            .query_string(None);
        assert_ne!(c, d);
        let e = p("city__in=%22a,b%22,c&day__less=2024-06-30&at__greater=2024-06-30T10:00:00.5&lat__exact=1.50")
            .unwrap()
            .query_string(None);
        assert_eq!(
            e,
            "at__greater=2024-06-30T10%3A00%3A00.500&city__in=%22a%2Cb%22%2Cc&day__less=2024-06-30&lat__exact=1.5"
        );
    }

    proptest! {
        #[test]
        fn canonical_text_parses_back_to_the_same_query(raw in "(city__in=[a-z,\"]{0,8}|pop__greater=-?[0-9]{1,5}|lat__less=[0-9]{1,3}\\.[0-9]{1,3}|city__sort=asc|page=[1-9])(&(city__contains=[a-z%]{1,4}|day__exact=2024-0[1-9]-1[0-9]|open__exact=true)){0,3}") {
            if let Ok(q) = p(&raw) {
                let again = p(&q.query_string(Some(q.page))).unwrap();
                prop_assert_eq!(again.query_string(Some(again.page)), q.query_string(Some(q.page)));
            }
        }
    }

    #[test]
    fn aggregation_grammar() {
        let q = p("city__groupby&pop__sum&pop__avg&pop__avg__sort=desc").unwrap();
        assert_eq!(q.group_by, vec!["city"]);
        assert_eq!(q.aggregates[0].output_name(), "pop__sum");
        assert_eq!(q.sorts[0].key, "pop__avg");
        assert!(
            err("city__groupby&pop__sort=asc")
                .contains("cannot sort an aggregated result by `pop`")
        );
    }

    proptest! {
        #[test]
        fn any_query_string_parses_or_is_a_400(raw in ".{0,80}") {
            match p(&raw) {
                Ok(_) => {}
                Err(Error::BadRequest(msg)) => prop_assert!(!msg.is_empty()),
                Err(other) => prop_assert!(false, "not a 400: {other:?}"),
            }
        }

        #[test]
        fn quoted_lists_round_trip(items in proptest::collection::vec("[a-z,\" ]{0,6}", 1..6)) {
            let text: Vec<String> = items.iter().map(|i| format!("\"{}\"", i.replace('"', "\"\""))).collect();
            prop_assert_eq!(split_list(&text.join(",")).unwrap(), items);
        }
    }
}
