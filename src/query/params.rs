//! The query grammar of the data routes (data.gouv.fr's tabular API): raw query-string pairs
//! checked against a dataset's schema into a typed [`DataQuery`], or a 400 saying what is wrong.

use std::sync::Arc;

use datafusion::scalar::ScalarValue;

use super::cursor::Cursor;
use super::groups::{self, Leaf, Node};
use super::request::{
    AGGS, Agg, Aggregate, Condition, DataQuery, Filter, OPS, Op, Sort, quote_item,
};
use crate::config::Limits;
use crate::dataset::schema::{Column, ColumnType, UTC};
use crate::error::{Error, Result};
use crate::values::{DateLayout, parse_date, parse_datetime};

const RESERVED: [&str; 5] = ["columns", "page", "page_size", "cursor", "or"];

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
    let mut parser = Parser::new(schema, limits);
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if !key.is_empty() {
            parser.pair(&key, &value)?;
        }
    }
    parser.finish()
}

/// The state of a parse: the query so far, and what can only be checked once every pair is
/// read (sorts may name aggregates given later; a cursor is read against the final sorts).
struct Parser<'a> {
    schema: &'a [Column],
    limits: &'a Limits,
    q: DataQuery,
    cursor: Option<String>,
    page_given: bool,
    conditions: usize,
    /// Sort key, direction as written, and the parameter, for the error message.
    sorts: Vec<(String, String, String)>,
}

impl<'a> Parser<'a> {
    fn new(schema: &'a [Column], limits: &'a Limits) -> Self {
        Parser {
            schema,
            limits,
            q: DataQuery {
                columns: None,
                page: 1,
                page_size: limits.default_page_size,
                paged: false,
                filters: Vec::new(),
                groups: Vec::new(),
                sorts: Vec::new(),
                group_by: Vec::new(),
                aggregates: Vec::new(),
                cursor: None,
            },
            cursor: None,
            page_given: false,
            conditions: 0,
            sorts: Vec::new(),
        }
    }

    fn known(&self) -> String {
        let names: Vec<&str> = self.schema.iter().map(|c| c.name.as_str()).collect();
        names.join(", ")
    }

    /// The column `name`, or a 400 naming the parameter and the known columns.
    fn find(&self, name: &str, key: &str) -> Result<&'a Column> {
        self.schema.iter().find(|c| c.name == name).ok_or_else(|| {
            Error::bad_request(format!(
                "unknown column `{name}` in `{key}`; known columns: {}",
                self.known()
            ))
        })
    }

    fn pair(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "page" => self.page(value),
            "cursor" => {
                self.cursor = Some(value.to_string());
                self.q.paged = true;
                Ok(())
            }
            "page_size" => self.page_size(value),
            "columns" => self.columns(value),
            "or" => self.group(value),
            _ => self.condition(key, value),
        }
    }

    fn page(&mut self, value: &str) -> Result<()> {
        self.q.page = page_number(value)?;
        self.q.paged = true;
        self.page_given = true;
        Ok(())
    }

    fn page_size(&mut self, value: &str) -> Result<()> {
        self.q.page_size = page_size(value, self.limits.max_page_size)?;
        self.q.paged = true;
        Ok(())
    }

    fn columns(&mut self, value: &str) -> Result<()> {
        let mut cols = Vec::new();
        for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            self.find(name, "columns")?;
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
                self.known()
            )));
        }
        self.q.columns = Some(cols);
        Ok(())
    }

    /// A `column__operator` parameter: a filter, a sort, a grouping or an aggregate.
    fn condition(&mut self, key: &str, value: &str) -> Result<()> {
        let Some((name, op_text)) = key.split_once("__") else {
            return Err(Error::bad_request(format!(
                "unknown parameter `{key}`; valid parameters are {}, and filters written column__operator",
                RESERVED.join(", ")
            )));
        };
        self.conditions += 1;
        if self.conditions > self.limits.max_filters {
            return Err(Error::bad_request(format!(
                "more than {} filter, sort and aggregation parameters; narrow the query",
                self.limits.max_filters
            )));
        }
        // A sort on an aggregate's output: `score__avg__sort=desc`.
        if let Some((agg_text, "sort")) = op_text.split_once("__")
            && AGGS.iter().any(|(n, _)| *n == agg_text)
        {
            self.find(name, key)?;
            let output = format!("{name}__{agg_text}");
            self.sorts
                .push((output, value.to_string(), key.to_string()));
            return Ok(());
        }
        let col = self.find(name, key)?;
        match op_text {
            "sort" => {
                let sort = (name.to_string(), value.to_string(), key.to_string());
                self.sorts.push(sort);
            }
            "groupby" => {
                if !self.q.group_by.iter().any(|g| g == name) {
                    self.q.group_by.push(name.to_string());
                }
            }
            _ => match AGGS.iter().find(|(n, _)| *n == op_text) {
                Some((_, agg)) => self.aggregate(col, *agg)?,
                None => {
                    let f = filter(col, op_of(op_text, key)?, value, key, self.limits)?;
                    self.q.filters.push(f);
                }
            },
        }
        Ok(())
    }

    /// An `or=(…)` group: its terms count against the same limit as other conditions.
    fn group(&mut self, value: &str) -> Result<()> {
        let tree = groups::parse(value, self.limits.max_filters)?;
        self.conditions += leaves(&tree);
        if self.conditions > self.limits.max_filters {
            return Err(Error::bad_request(format!(
                "more than {} filter, sort and aggregation parameters; narrow the query",
                self.limits.max_filters
            )));
        }
        let condition = self.typed_node(&tree, value)?;
        self.q.groups.push(condition);
        Ok(())
    }

    /// A group's terms with their columns checked and their values typed.
    fn typed_node(&self, node: &Node, text: &str) -> Result<Condition> {
        let all = |items: &[Node]| -> Result<Vec<Condition>> {
            items.iter().map(|n| self.typed_node(n, text)).collect()
        };
        Ok(match node {
            Node::Any(items) => Condition::Any(all(items)?),
            Node::All(items) => Condition::All(all(items)?),
            Node::Leaf(leaf) => Condition::Filter(self.typed_leaf(leaf, text)?),
        })
    }

    fn typed_leaf(&self, leaf: &Leaf, text: &str) -> Result<Filter> {
        let key = format!("{}__{}", leaf.name, leaf.op);
        let within = format!("`{key}` in `or={text}`");
        let col = self.find(&leaf.name, &format!("or={text}"))?;
        let op = op_of(&leaf.op, &key).map_err(|_| {
            Error::bad_request(format!(
                "{within}: `{}` is not a filter operator; inside or= the filters are: {}",
                leaf.op,
                OPS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ))
        })?;
        let needs_value = !matches!(op, Op::IsNull | Op::IsNotNull);
        let list = matches!(op, Op::In | Op::NotIn);
        let value = match (&leaf.values, needs_value) {
            (None, false) => String::new(),
            (Some(values), true) if list => {
                let items: Vec<String> = values.iter().map(|v| quote_item(v)).collect();
                items.join(",")
            }
            (Some(values), true) if values.len() == 1 && !leaf.list => values[0].clone(),
            (Some(_), true) => {
                return Err(Error::bad_request(format!(
                    "{within}: a list of values is for `in` and `notin` only"
                )));
            }
            (None, true) => {
                return Err(Error::bad_request(format!(
                    "{within} needs a value: write `{key}.value`"
                )));
            }
            (Some(_), false) => {
                return Err(Error::bad_request(format!(
                    "{within} takes no value: write `{key}`"
                )));
            }
        };
        filter(col, op, &value, &key, self.limits)
    }

    fn aggregate(&mut self, col: &Column, agg: Agg) -> Result<()> {
        let numeric = matches!(col.kind, ColumnType::Integer | ColumnType::Float);
        if matches!(agg, Agg::Sum | Agg::Avg) && !numeric {
            return Err(Error::bad_request(format!(
                "`{}` needs a numeric column; `{}` is {}",
                agg.name(),
                col.name,
                col.kind.as_str()
            )));
        }
        let a = Aggregate {
            column: col.name.clone(),
            agg,
        };
        if !self.q.aggregates.contains(&a) {
            self.q.aggregates.push(a);
        }
        Ok(())
    }

    /// Checks what needs the whole query: sort directions and keys, aggregation, the cursor.
    fn finish(mut self) -> Result<DataQuery> {
        for (key, dir, param) in std::mem::take(&mut self.sorts) {
            let descending = match dir.as_str() {
                "asc" => false,
                "desc" => true,
                other => {
                    return Err(Error::bad_request(format!(
                        "`{param}={other}`: a sort is `asc` or `desc`"
                    )));
                }
            };
            self.q.sorts.push(Sort { key, descending });
        }
        check_aggregation(&self.q)?;
        if let Some(text) = self.cursor.take() {
            if self.page_given {
                return Err(Error::bad_request(
                    "`cursor` and `page` cannot be combined: a cursor already says which page it leads to",
                ));
            }
            let cursor = Cursor::decode(&text, self.cursor_keys().as_deref())?;
            self.q.page = cursor.page;
            self.q.cursor = Some(cursor);
        }
        Ok(self.q)
    }

    /// The columns a cursor of this query holds values of: its sort keys (`None` for an
    /// aggregation, whose cursors hold a page number only).
    fn cursor_keys(&self) -> Option<Vec<&'a Column>> {
        if self.q.is_aggregate() {
            return None;
        }
        let keys = self.q.sorts.iter();
        Some(keys.filter_map(|s| self.find(&s.key, "").ok()).collect())
    }
}

/// A `page` value: a whole number of at least 1 (data routes and the catalog alike).
pub fn page_number(value: &str) -> Result<u64> {
    value.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
        Error::bad_request(format!(
            "page `{value}` must be a whole number of at least 1"
        ))
    })
}

/// A `page_size` value, from 1 to the configured maximum.
pub fn page_size(value: &str, max: u64) -> Result<u64> {
    value
        .parse()
        .ok()
        .filter(|s| (1..=max).contains(s))
        .ok_or_else(|| {
            Error::bad_request(format!(
                "page_size `{value}` must be a whole number from 1 to {max}"
            ))
        })
}

/// The conditions of a group tree.
fn leaves(node: &Node) -> usize {
    match node {
        Node::Leaf(_) => 1,
        Node::Any(items) | Node::All(items) => items.iter().map(leaves).sum(),
    }
}

fn op_of(text: &str, key: &str) -> Result<Op> {
    OPS.iter()
        .find(|(n, _)| *n == text)
        .map(|(_, op)| *op)
        .ok_or_else(|| {
            Error::bad_request(format!(
                "unknown operator `{text}` in `{key}`; valid operators: {}",
                op_list()
            ))
        })
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
        fn canonical_text_parses_back_to_the_same_query(raw in "(city__in=[a-z,\"]{0,8}|pop__greater=-?[0-9]{1,5}|lat__less=[0-9]{1,3}\\.[0-9]{1,3}|city__sort=asc|page=[1-9])(&(city__contains=[a-z%]{1,4}|day__exact=2024-0[1-9]-1[0-9]|open__exact=true|or=\\((city__exact\\.[a-z]{0,3}|lat__less\\.[0-9]\\.[0-9]|and\\(pop__isnull,city__in\\.\\([a-z,]{1,5}\\)\\)),day__isnotnull\\))){0,3}") {
            if let Ok(q) = p(&raw) {
                let again = p(&q.query_string(Some(q.page))).unwrap();
                prop_assert_eq!(again.query_string(Some(again.page)), q.query_string(Some(q.page)));
            }
        }
    }

    #[test]
    fn or_groups_type_their_values_and_read_back_from_their_text() {
        let q = p(r#"or=(city__exact.Rabat,city__exact."Fes, centre",and(pop__greater.10,lat__less.33.5),day__isnull)&pop__differs=3"#).unwrap();
        assert_eq!(q.filters.len(), 1);
        let Condition::Any(items) = &q.groups[0] else {
            panic!("{:?}", q.groups)
        };
        assert_eq!(items.len(), 4);
        let Condition::All(inner) = &items[2] else {
            panic!("{items:?}")
        };
        assert_eq!(
            inner[1],
            Condition::Filter(Filter {
                column: "lat".into(),
                op: Op::Less,
                values: vec![ScalarValue::Float64(Some(33.5))]
            })
        );
        let text = q.query_string(None);
        assert_eq!(
            text,
            "pop__differs=3&or=%28city__exact.Rabat%2Ccity__exact.%22Fes%2C+centre%22%2Cand%28pop__greater.10%2Clat__less.%2233.5%22%29%2Cday__isnull%29"
        );
        assert_eq!(p(&text).unwrap(), q);
        let list = p("or=(city__in.(a,%22b,c%22),open__exact.true)").unwrap();
        assert_eq!(p(&list.query_string(None)).unwrap(), list);
    }

    #[test]
    fn malformed_or_groups_say_what_is_wrong() {
        assert!(
            err("or=(nope__exact.1)").contains("unknown column `nope` in `or=(nope__exact.1)`")
        );
        assert!(
            err("or=(pop__exact.abc)").contains("`abc` in `pop__exact` is not a valid integer")
        );
        assert!(err("or=(pop__sort.asc)").contains("`sort` is not a filter operator"));
        assert!(err("or=(pop__exact)").contains("needs a value: write `pop__exact.value`"));
        assert!(err("or=(pop__isnull.1)").contains("takes no value"));
        assert!(err("or=(pop__exact.(1,2))").contains("for `in` and `notin` only"));
        assert!(err("or=(pop__exact.1").contains("`)` expected"));
        let many: Vec<String> = (0..51).map(|i| format!("pop__exact.{i}")).collect();
        assert!(err(&format!("or=({})", many.join(","))).contains("more than 50"));
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

        /// Any text after `or=` is a group or a 400, never a panic or a deep recursion.
        #[test]
        fn any_or_group_parses_or_is_a_400(raw in r#"[()a-z_.,"0-9]{0,60}"#) {
            let query = format!("or={}", raw.replace('"', "%22"));
            match p(&query) {
                Ok(q) => {
                    let again = p(&q.query_string(None)).unwrap();
                    prop_assert_eq!(again, q);
                }
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
