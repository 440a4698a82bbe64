//! The query grammar of the data routes (data.gouv.fr's tabular API): raw query-string pairs
//! checked against a dataset's schema into a typed [`DataQuery`], or a 400 saying what is wrong.

use std::sync::Arc;

use datafusion::scalar::ScalarValue;

use super::cursor::Cursor;
use super::facets::Facets;
use super::geo::{DISTANCE, Geo, distance_column};
use super::groups::{self, Leaf, Node};
use super::request::{
    AGGS, Agg, Aggregate, Condition, DataQuery, Filter, OPS, Op, Sort, quote_item,
};
use super::search::Search;
use crate::config::Limits;
use crate::dataset::schema::{Column, ColumnType, ROW_COLUMN, TABULAR_ID, UTC, published_keys};
use crate::error::{Error, Result};
use crate::values::{DateLayout, parse_date, parse_datetime};

const RESERVED: [&str; 9] = [
    "columns",
    "page",
    "page_size",
    "cursor",
    "or",
    "facets",
    "facet_size",
    "q",
    "q_sort",
];

/// The values a parameter written without one may carry: none (`col__isnull`), or `true`
/// (what clients generated from api-tabular's documents send).
pub const KEY_ONLY_VALUES: [&str; 2] = ["", "true"];

/// The largest page number: past it a request is a 400, not an empty page, so that page
/// offsets stay far from overflowing.
pub const MAX_PAGE: u64 = 1 << 32;

fn op_list() -> String {
    OPS.iter()
        .map(|(n, _)| *n)
        .chain(["sort", "groupby", "search"])
        .chain(AGGS.iter().map(|(n, _)| *n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which API's conventions a request follows. The grammar is the same; names and a few
/// semantics differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// qanat's routes: API column names, nulls last both ways, `contains` literal, negative
    /// filters keep nulls.
    Native,
    /// data.gouv.fr's tabular API, as api-tabular answers over PostgREST: columns by published
    /// header (or API name) and `__id`, the 1-based row number; `desc` puts nulls first;
    /// `contains` takes `*` as a wildcard; `notin` and `notcontains` drop nulls; no cursors.
    Tabular,
}

/// `__id` on the tabular API: the stored row number, which counts from 0.
static TABULAR_ROW: std::sync::LazyLock<Column> = std::sync::LazyLock::new(|| Column {
    nullable: false,
    label: TABULAR_ID.into(),
    ..Column::new(ROW_COLUMN, ColumnType::Integer)
});

/// Parses and validates a raw query string of a native route against a schema.
pub fn parse(raw: &str, schema: &[Column], limits: &Limits) -> Result<DataQuery> {
    parse_in(Dialect::Native, raw, schema, limits)
}

/// Parses and validates a raw query string in a dialect.
pub fn parse_in(
    dialect: Dialect,
    raw: &str,
    schema: &[Column],
    limits: &Limits,
) -> Result<DataQuery> {
    let mut parser = Parser::new(schema, limits, dialect);
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
    dialect: Dialect,
    /// Each column's name in requests: its API name, or on the tabular API its published key.
    keys: Vec<String>,
    q: DataQuery,
    cursor: Option<String>,
    /// `facets` and `facet_size` as given, read once the query is whole.
    facets: Option<String>,
    facet_size: Option<String>,
    page_given: bool,
    conditions: usize,
    /// Sort key, direction as written, and the parameter, for the error message.
    sorts: Vec<(String, String, String)>,
}

impl<'a> Parser<'a> {
    fn new(schema: &'a [Column], limits: &'a Limits, dialect: Dialect) -> Self {
        let keys = match dialect {
            Dialect::Native => schema.iter().map(|c| c.name.clone()).collect(),
            Dialect::Tabular => published_keys(schema),
        };
        Parser {
            schema,
            limits,
            dialect,
            keys,
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
                start: None,
                facets: Facets::default(),
                search: Search::default(),
                geo: Geo::default(),
            },
            facets: None,
            facet_size: None,
            cursor: None,
            page_given: false,
            conditions: 0,
            sorts: Vec::new(),
        }
    }

    fn known(&self) -> String {
        let id = (self.dialect == Dialect::Tabular).then_some(TABULAR_ID);
        let names: Vec<&str> = id
            .into_iter()
            .chain(self.keys.iter().map(String::as_str))
            .collect();
        names.join(", ")
    }

    /// The column `name`, or a 400 naming the parameter and the known columns. The tabular API
    /// also knows `__id`, and API names where they differ from the published keys.
    fn find(&self, name: &str, key: &str) -> Result<&'a Column> {
        let by_key = self.keys.iter().position(|k| k == name);
        let found = match self.dialect {
            Dialect::Native => by_key.map(|i| &self.schema[i]),
            Dialect::Tabular if name == TABULAR_ID => Some(&*TABULAR_ROW),
            Dialect::Tabular => by_key
                .map(|i| &self.schema[i])
                .or_else(|| self.schema.iter().find(|c| c.name == name)),
        };
        found.ok_or_else(|| {
            Error::bad_request(format!(
                "unknown column `{name}` in `{key}`; known columns: {}",
                self.known()
            ))
        })
    }

    fn pair(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "page" => self.page(value),
            "cursor" if self.dialect == Dialect::Native => {
                self.cursor = Some(value.to_string());
                self.q.paged = true;
                Ok(())
            }
            "page_size" => self.page_size(value),
            "facets" if self.dialect == Dialect::Native => {
                self.facets = Some(value.to_string());
                Ok(())
            }
            "facet_size" if self.dialect == Dialect::Native => {
                self.facet_size = Some(value.to_string());
                Ok(())
            }
            "q" if self.dialect == Dialect::Native => {
                self.q.search.add(None, value, key, self.schema)
            }
            "q_sort" if self.dialect == Dialect::Native => self.q.search.rank(value),
            "near" if self.dialect == Dialect::Native => self.q.geo.set_near(value, self.schema),
            "bbox" if self.dialect == Dialect::Native => self.q.geo.set_bbox(value, self.schema),
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
        for name in value.split(',') {
            if name.is_empty() {
                return Err(Error::bad_request(format!(
                    "`columns={value}` has an empty name; list column names separated by single commas, from: {}",
                    self.known()
                )));
            }
            let col = self.find(name, "columns")?;
            if cols.contains(&col.name) {
                return Err(Error::bad_request(format!(
                    "column `{name}` is listed twice in `columns`"
                )));
            }
            cols.push(col.name.clone());
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
        // Published headers may hold `__`: on the tabular API the operator is what follows the
        // last one.
        let split = match self.dialect {
            Dialect::Native => key.split_once("__"),
            Dialect::Tabular => key.rsplit_once("__"),
        };
        let Some((name, op_text)) = split else {
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
        // `distance_m__sort`: the order of `near`'s distances (checked once the query is whole).
        let own = self.schema.iter().any(|c| c.name == DISTANCE);
        if self.dialect == Dialect::Native && name == DISTANCE && op_text == "sort" && !own {
            self.sorts
                .push((DISTANCE.into(), value.to_string(), key.to_string()));
            return Ok(());
        }
        let col = self.find(name, key)?;
        if takes_no_value(op_text) && !KEY_ONLY_VALUES.contains(&value) {
            return Err(Error::bad_request(format!(
                "`{key}` takes no value: write `{key}` alone (or `{key}=true`), not `{key}={value}`"
            )));
        }
        match op_text {
            "search" if self.dialect == Dialect::Native => {
                self.q.search.add(Some(col), value, key, self.schema)?;
            }
            "sort" => {
                let sort = (col.name.clone(), value.to_string(), key.to_string());
                self.sorts.push(sort);
            }
            "groupby" => {
                if !self.q.group_by.contains(&col.name) {
                    self.q.group_by.push(col.name.clone());
                }
            }
            _ => match AGGS.iter().find(|(n, _)| *n == op_text) {
                Some((_, agg)) => self.aggregate(col, *agg)?,
                None => {
                    let op = op_of(op_text, key)?;
                    let f = self.filter(col, op, value, key)?;
                    if let Some(not_null) = self.drops_nulls(&f) {
                        self.q.filters.push(not_null);
                    }
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
            Node::Leaf(leaf) => {
                let f = self.typed_leaf(leaf, text)?;
                match self.drops_nulls(&f) {
                    Some(not_null) => {
                        Condition::All(vec![Condition::Filter(f), Condition::Filter(not_null)])
                    }
                    None => Condition::Filter(f),
                }
            }
        })
    }

    /// The tabular API's `notin` and `notcontains` are PostgreSQL's `NOT IN` and `NOT ILIKE`,
    /// which a null never passes: the condition that drops nulls alongside such a filter.
    fn drops_nulls(&self, f: &Filter) -> Option<Filter> {
        let negative = matches!(f.op, Op::NotIn | Op::NotContains);
        (self.dialect == Dialect::Tabular && negative).then(|| Filter {
            column: f.column.clone(),
            op: Op::IsNotNull,
            values: Vec::new(),
        })
    }

    /// A filter in this dialect: the tabular API's `contains` splits on its `*` wildcard.
    fn filter(&self, col: &Column, op: Op, value: &str, key: &str) -> Result<Filter> {
        let mut f = filter(col, op, value, key, self.limits)?;
        if self.dialect == Dialect::Tabular && matches!(op, Op::Contains | Op::NotContains) {
            f.values = value
                .split('*')
                .map(|piece| ScalarValue::Utf8(Some(piece.to_string())))
                .collect();
        }
        Ok(f)
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
        self.filter(col, op, &value, &key)
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
            // Without `near` there is no distance to sort by: ignored, as `q_sort` without a
            // search is.
            let computed = key == DISTANCE && !self.schema.iter().any(|c| c.name == DISTANCE);
            if computed && self.q.geo.near.is_none() {
                continue;
            }
            let nulls_first = descending && self.dialect == Dialect::Tabular;
            self.q.sorts.push(Sort {
                key,
                descending,
                nulls_first,
            });
        }
        // Tabular rows start with `__id`, unless `columns` picks.
        if self.dialect == Dialect::Tabular && self.q.columns.is_none() && !self.q.is_aggregate() {
            let all = self.schema.iter().map(|c| c.name.clone());
            self.q.columns = Some(std::iter::once(ROW_COLUMN.to_string()).chain(all).collect());
        }
        check_aggregation(&self.q)?;
        (self.q.search).check(!self.q.sorts.is_empty(), self.q.is_aggregate())?;
        // Nearest first, unless another order is asked.
        let ordered = !self.q.sorts.is_empty() || self.q.search.ranked || self.q.is_aggregate();
        if self.q.geo.near.is_some() && !ordered {
            self.q.sorts.push(Sort {
                key: DISTANCE.to_string(),
                descending: false,
                nulls_first: false,
            });
        }
        self.q.facets = Facets::parse(
            self.facets.as_deref(),
            self.facet_size.as_deref(),
            self.schema,
            self.limits.max_facets,
        )?;
        if !self.q.facets.is_empty() && self.q.is_aggregate() {
            return Err(Error::bad_request(
                "`facets` count rows, and this request aggregates them: ask for facets without `__groupby` or aggregates",
            ));
        }
        if let Some(text) = self.cursor.take() {
            if self.page_given {
                return Err(Error::bad_request(
                    "`cursor` and `page` cannot be combined: a cursor already says which page it leads to",
                ));
            }
            let keys = self.cursor_keys();
            let keys: Option<Vec<&Column>> = keys.as_ref().map(|k| k.iter().collect());
            let cursor = Cursor::decode(&text, keys.as_deref())?;
            self.q.page = cursor.page;
            self.q.cursor = Some(cursor);
        }
        Ok(self.q)
    }

    /// The columns a cursor of this query holds values of: its sort keys (`None` for an
    /// aggregation or a ranking, whose cursors hold a page number only).
    fn cursor_keys(&self) -> Option<Vec<Column>> {
        if self.q.is_aggregate() || self.q.search.ranked {
            return None;
        }
        let keys = self.q.sorts.iter().filter_map(|s| match s.key.as_str() {
            DISTANCE if self.q.geo.near.is_some() => Some(distance_column()),
            key => self.find(key, "").ok().cloned(),
        });
        Some(keys.collect())
    }
}

/// Whether `column__op` is written without a value: groupings, aggregates, null tests.
pub fn takes_no_value(op: &str) -> bool {
    matches!(op, "groupby" | "isnull" | "isnotnull") || AGGS.iter().any(|(n, _)| *n == op)
}

/// A `page` value: a whole number of at least 1 (data routes and the catalog alike).
pub fn page_number(value: &str) -> Result<u64> {
    value
        .parse()
        .ok()
        .filter(|p| (1..=MAX_PAGE).contains(p) && !value.starts_with('+'))
        .ok_or_else(|| {
            Error::bad_request(format!(
                "page `{value}` must be a whole number from 1 to {MAX_PAGE}"
            ))
        })
}

/// A `page_size` value, from 1 to the configured maximum.
pub fn page_size(value: &str, max: u64) -> Result<u64> {
    value
        .parse()
        .ok()
        .filter(|s| (1..=max).contains(s) && !value.starts_with('+'))
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
    } else if let Some(s) = q
        .sorts
        .iter()
        .find(|s| s.key.contains("__") && s.key != ROW_COLUMN)
    {
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
                    Some('"') => {
                        return Err(format!(
                            "a quote inside `{item}…`: write a value holding a quote in double quotes, the quote doubled (\"a\"\"b\")"
                        ));
                    }
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
    // Values are read exactly as written (no spaces around, no `+`): what the typed OpenAPI
    // documents declare is what is accepted.
    let integer = || -> Result<i64> {
        if value.starts_with('+') {
            return Err(bad());
        }
        value.parse().map_err(|_| bad())
    };
    if col.name == ROW_COLUMN {
        // The tabular API's `__id` counts from 1, the stored row number from 0.
        return Ok(ScalarValue::Int64(Some(
            integer()?.checked_sub(1).ok_or_else(bad)?,
        )));
    }
    Ok(match col.kind {
        ColumnType::String => ScalarValue::Utf8(Some(value.to_string())),
        ColumnType::Integer => ScalarValue::Int64(Some(integer()?)),
        ColumnType::Float => {
            let v: f64 = value.parse().map_err(|_| bad())?;
            let plain = value
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
            if !v.is_finite() || !plain {
                return Err(bad());
            }
            ScalarValue::Float64(Some(v))
        }
        ColumnType::Boolean => match value {
            "true" => ScalarValue::Boolean(Some(true)),
            "false" => ScalarValue::Boolean(Some(false)),
            _ => return Err(bad()),
        },
        ColumnType::Date => match parse_date(value) {
            Some((days, DateLayout::Iso)) => ScalarValue::Date32(Some(days)),
            _ => return Err(bad()),
        },
        ColumnType::Datetime => {
            let dt = parse_datetime(value)
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
#[path = "params_tests.rs"]
pub(crate) mod tests;
