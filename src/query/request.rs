//! A validated request of a data route: filters with typed values, sorts, groupings,
//! aggregates, columns and the position (page or cursor), and its canonical text, which keys the
//! result cache and the ETag and from which links are written.

use datafusion::scalar::ScalarValue;

use super::cursor::Cursor;
use super::facets::Facets;
use super::geo::Geo;
use super::search::Search;
use crate::error::{Error, Result};

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

pub(crate) const OPS: [(&str, Op); 12] = [
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

pub(crate) const AGGS: [(&str, Agg); 5] = [
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

impl Filter {
    /// The value of a one-value filter as request text. A `contains` split on the tabular API's
    /// `*` wildcard is written back with it.
    fn value_text(&self) -> String {
        let texts: Vec<String> = self.values.iter().map(value_text).collect();
        texts.join("*")
    }
}

/// A sort key: a column, or an aggregate's output name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub key: String,
    pub descending: bool,
    /// Nulls before values. Native routes put nulls last both ways; data.gouv.fr's tabular API
    /// (PostgreSQL's default) puts them first when descending.
    pub nulls_first: bool,
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

/// A boolean combination of conditions: an `or=(…)` group and the `and(…)`/`or(…)` it nests.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Filter(Filter),
    /// True when any of its conditions is.
    Any(Vec<Condition>),
    /// True when all of its conditions are.
    All(Vec<Condition>),
}

impl Condition {
    /// The condition as request text, in the form [`crate::query::params`] reads back:
    /// `or(col__op.value,and(…))`, a name or value in double quotes when it holds `.` `,` `(`
    /// `)` or `"` (a quote inside doubled).
    pub fn text(&self) -> String {
        let group = |word: &str, items: &[Condition]| {
            let inner: Vec<String> = items.iter().map(Condition::text).collect();
            format!("{word}({})", inner.join(","))
        };
        match self {
            Condition::Any(items) => group("or", items),
            Condition::All(items) => group("and", items),
            Condition::Filter(f) => {
                let key = format!("{}__{}", group_quote(&f.column), f.op.name());
                match f.op {
                    Op::IsNull | Op::IsNotNull => key,
                    Op::In | Op::NotIn => {
                        let items: Vec<String> = f
                            .values
                            .iter()
                            .map(|v| group_quote(&value_text(v)))
                            .collect();
                        format!("{key}.({})", items.join(","))
                    }
                    _ => format!("{key}.{}", group_quote(&f.value_text())),
                }
            }
        }
    }
}

/// Quotes a name or value of an `or=` group that holds a character of the group syntax.
fn group_quote(item: &str) -> String {
    if item.is_empty() || item.contains(['.', ',', '(', ')', '"']) {
        format!("\"{}\"", item.replace('"', "\"\""))
    } else {
        item.to_string()
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
    /// `or=(…)` groups, each true when any of its conditions is; ANDed with the filters.
    pub groups: Vec<Condition>,
    pub sorts: Vec<Sort>,
    pub group_by: Vec<String>,
    pub aggregates: Vec<Aggregate>,
    /// Where the page starts when the request carries a `cursor` (`page` then comes from it).
    pub cursor: Option<Cursor>,
    /// Rows skipped before the page when a request gives an offset instead of a page (CKAN's
    /// `offset`).
    pub start: Option<u64>,
    /// Columns whose values are counted beside the page.
    pub facets: Facets,
    /// Full-text search terms, and whether rows are ranked by relevance.
    pub search: Search,
    /// Rows near a point, or in a box.
    pub geo: Geo,
}

impl DataQuery {
    pub fn is_aggregate(&self) -> bool {
        !self.group_by.is_empty() || !self.aggregates.is_empty()
    }

    /// Where a page in file order starts: after a cursor's row, or past `offset` rows.
    pub fn start(&self) -> Result<(Option<i64>, usize)> {
        let after = (self.cursor.as_ref())
            .and_then(|c| c.after.as_ref())
            .map(|a| a.row);
        let offset = if after.is_some() { 0 } else { self.offset()? };
        Ok((after, offset))
    }

    /// Rows skipped before the page (checked: a huge page number is a 400, not an overflow).
    pub fn offset(&self) -> Result<usize> {
        let skip = match self.start {
            Some(start) => Some(start),
            None => (self.page - 1).checked_mul(self.page_size),
        };
        skip.and_then(|o| usize::try_from(o).ok())
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
        if let Some(start) = self.start {
            ser.append_pair("offset", &start.to_string());
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
                    _ => f.value_text(),
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
        for g in &self.groups {
            // A group's text is `or(…)`; the parameter is `or=(…)`.
            let text = g.text();
            ser.append_pair("or", text.strip_prefix("or").unwrap_or(&text));
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
        self.search.append_to(&mut ser);
        self.geo.append_to(&mut ser);
        self.facets.append_to(&mut ser);
        ser
    }
}

/// A typed value written back as request text (the form [`typed`] parses).
fn value_text(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Utf8(Some(s)) => s.clone(),
        ScalarValue::Date32(Some(days)) => crate::values::date_of_days(i64::from(*days))
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

/// Quotes a list item that holds a comma or a quote, as `params::split_list` reads it.
pub(crate) fn quote_item(item: &str) -> String {
    if item.contains(',') || item.contains('"') {
        format!("\"{}\"", item.replace('"', "\"\""))
    } else {
        item.to_string()
    }
}
