//! CKAN DataStore's `datastore_search` arguments (and `/datastore/dump`'s) read into a
//! [`DataQuery`], as CKAN 2.9 reads them: `filters` as JSON (a list is `IN`), `q` (words, in any
//! text column or per column), `fields`, `sort` as CKAN writes it (`"a desc, b nulls first"`),
//! `limit` (default 100, at most 32,000), `offset`, `distinct`, `include_total` and
//! `records_format`. Fields are the published headers, and `_id`, the 1-based row number. A bad
//! argument is an [`Error::Invalid`] naming it, which CKAN answers `409`.

use datafusion::scalar::ScalarValue;
use serde_json::{Map, Value};

use super::params::typed;
use super::request::{Condition, DataQuery, Filter, Op, Sort};
use crate::config::Limits;
use crate::dataset::schema::{Column, ColumnType, DATASTORE_ID, ROW_COLUMN, published_keys_beside};
use crate::error::{Error, Result};
use crate::values::json_text as text;

/// CKAN's default page, and its ceiling (`ckan.datastore.search.rows_max`).
pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 32_000;

/// How records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordsFormat {
    Objects,
    Lists,
    Csv,
    Tsv,
}

impl RecordsFormat {
    pub fn name(self) -> &'static str {
        match self {
            RecordsFormat::Objects => "objects",
            RecordsFormat::Lists => "lists",
            RecordsFormat::Csv => "csv",
            RecordsFormat::Tsv => "tsv",
        }
    }
}

/// A search, read.
#[derive(Debug, Clone)]
pub struct Search {
    pub query: DataQuery,
    pub records_format: RecordsFormat,
    pub include_total: bool,
    /// Rows asked for (`None`: all, for a dump).
    pub limit: Option<u64>,
    pub offset: u64,
    /// The fields returned, by their DataStore names, in order.
    pub fields: Vec<String>,
    /// The arguments CKAN echoes in its result (`filters`, `q`, `sort`, `distinct`, …), parsed.
    pub echo: Map<String, Value>,
}

const SEARCH_ARGS: [&str; 14] = [
    "resource_id",
    "id",
    "q",
    "plain",
    "filters",
    "language",
    "limit",
    "offset",
    "fields",
    "sort",
    "distinct",
    "include_total",
    "total_estimation_threshold",
    "records_format",
];

fn invalid(field: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// The `_id` column: the stored row number, which counts from 0.
fn id_column() -> Column {
    Column {
        nullable: false,
        ..Column::new(ROW_COLUMN, ColumnType::Integer)
    }
}

/// The DataStore names of a schema's columns (published headers, never `_id`).
pub fn field_names(schema: &[Column]) -> Vec<String> {
    published_keys_beside(schema, DATASTORE_ID)
}

/// Reads `datastore_search` arguments (`dump`: `/datastore/dump`'s, whose default is every row
/// and whose `format`/`bom` are read by the caller).
pub fn search(
    args: &Map<String, Value>,
    schema: &[Column],
    limits: &Limits,
    dump: bool,
) -> Result<Search> {
    for key in args.keys() {
        let dump_arg = dump && matches!(key.as_str(), "format" | "bom");
        if !SEARCH_ARGS.contains(&key.as_str()) && !dump_arg {
            return Err(invalid(
                "__junk",
                format!("The input field {key} was not expected."),
            ));
        }
    }
    let names = field_names(schema);
    let id = id_column();
    let column = |name: &str| -> Option<Column> {
        if name == DATASTORE_ID {
            return Some(id.clone());
        }
        let i = names.iter().position(|n| n == name)?;
        Some(schema[i].clone())
    };
    let mut echo = Map::new();
    let mut filters = Vec::new();
    let mut groups = Vec::new();
    if let Some(raw) = args.get("filters") {
        let parsed = json_arg("filters", raw)?;
        filters = read_filters(&parsed, &column, limits)?;
        echo.insert("filters".into(), parsed);
    }
    if let Some(raw) = args.get("q") {
        groups = read_q(raw, schema, &names, &column)?;
        echo.insert("q".into(), raw.clone());
    }
    let fields = match args.get("fields") {
        Some(raw) => {
            let listed = list_arg(raw);
            for f in &listed {
                if column(f).is_none() {
                    return Err(invalid("fields", format!("invalid value \"{f}\"")));
                }
            }
            listed
        }
        None => std::iter::once(DATASTORE_ID.to_string())
            .chain(names.iter().cloned())
            .collect(),
    };
    let mut sorts = Vec::new();
    if let Some(raw) = args.get("sort") {
        for clause in list_arg(raw) {
            let sort = parse_sort(&clause, &column)
                .ok_or_else(|| invalid("sort", format!("invalid value \"{clause}\"")))?;
            sorts.push(sort);
        }
        echo.insert("sort".into(), raw.clone());
    }
    let Paging {
        limit,
        offset,
        include_total,
        distinct,
        records_format,
    } = paging(args, dump)?;
    if distinct {
        echo.insert("distinct".into(), Value::Bool(true));
    }
    let real = |f: &String| column(f).map(|c| c.name).unwrap_or_default();
    let mut columns: Vec<String> = fields.iter().map(real).collect();
    let mut group_by = Vec::new();
    if distinct {
        // Distinct rows are the groups of every field returned.
        columns.retain(|c| c != ROW_COLUMN);
        group_by = std::mem::take(&mut columns);
    }
    let conditions = filters.len() + groups.len() + sorts.len();
    if conditions > limits.max_filters {
        return Err(invalid(
            "filters",
            format!(
                "more than {} conditions; narrow the query",
                limits.max_filters
            ),
        ));
    }
    let query = DataQuery {
        columns: (!distinct).then_some(columns),
        page: 1,
        page_size: limit.unwrap_or(u64::MAX),
        paged: limit.is_some(),
        filters,
        groups,
        sorts,
        group_by,
        aggregates: Vec::new(),
        cursor: None,
        start: Some(offset),
        facets: Default::default(),
        search: Default::default(),
        geo: Default::default(),
    };
    Ok(Search {
        query,
        records_format,
        include_total,
        limit,
        offset,
        fields,
        echo,
    })
}

/// The arguments that shape the answer rather than select rows.
struct Paging {
    limit: Option<u64>,
    offset: u64,
    include_total: bool,
    distinct: bool,
    records_format: RecordsFormat,
}

fn paging(args: &Map<String, Value>, dump: bool) -> Result<Paging> {
    let limit = match args.get("limit") {
        Some(raw) => Some(natural("limit", raw)?.min(MAX_LIMIT)),
        None if dump => None,
        None => Some(DEFAULT_LIMIT),
    };
    let offset = match args.get("offset") {
        Some(raw) => natural("offset", raw)?,
        None => 0,
    };
    let include_total = args.get("include_total").is_none_or(boolean);
    let distinct = args.get("distinct").is_some_and(boolean);
    let records_format = match args.get("records_format").map(text) {
        None => RecordsFormat::Objects,
        Some(f) => [
            RecordsFormat::Objects,
            RecordsFormat::Lists,
            RecordsFormat::Csv,
            RecordsFormat::Tsv,
        ]
        .into_iter()
        .find(|r| r.name() == f)
        .ok_or_else(|| {
            invalid(
                "records_format",
                "Value must be one of ['objects', 'lists', 'csv', 'tsv']",
            )
        })?,
    };
    Ok(Paging {
        limit,
        offset,
        include_total,
        distinct,
        records_format,
    })
}

/// A JSON argument: given as JSON in a POST body, or as JSON text in a query string.
fn json_arg(field: &str, raw: &Value) -> Result<Value> {
    match raw {
        Value::String(s) => {
            serde_json::from_str(s).map_err(|_| invalid(field, "Cannot parse JSON"))
        }
        other => Ok(other.clone()),
    }
}

/// A list argument: a JSON list, or comma-separated text.
fn list_arg(raw: &Value) -> Vec<String> {
    match raw {
        Value::Array(items) => items.iter().map(text).collect(),
        other => text(other)
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    }
}

/// CKAN's boolean validator: `true`, `yes`, `t`, `y`, `1` (any case) are true, anything else
/// false.
fn boolean(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        other => matches!(
            text(other).to_ascii_lowercase().as_str(),
            "true" | "yes" | "t" | "y" | "1"
        ),
    }
}

/// CKAN's natural-number validator: `Invalid integer`, `Must be a natural number`.
pub fn natural(field: &str, raw: &Value) -> Result<u64> {
    let t = text(raw);
    let n: i64 = t
        .trim()
        .parse()
        .map_err(|_| invalid(field, "Invalid integer"))?;
    u64::try_from(n).map_err(|_| invalid(field, "Must be a natural number"))
}

/// `filters`: `{"field": value}` is equality, `{"field": [v1, v2]}` is `IN`, a null value is
/// `IS NULL`; values are typed as the field.
fn read_filters(
    parsed: &Value,
    column: &dyn Fn(&str) -> Option<Column>,
    limits: &Limits,
) -> Result<Vec<Filter>> {
    let Value::Object(map) = parsed else {
        return Err(invalid("filters", "Not a JSON object"));
    };
    let mut out = Vec::new();
    for (field, value) in map {
        let col = column(field)
            .ok_or_else(|| invalid("filters", format!("invalid value \"{field}\"")))?;
        let typed_value = |v: &Value| -> Result<ScalarValue> {
            let t = text(v);
            let value = typed(&col, &t, field).map_err(|e| invalid("filters", e.to_string()))?;
            Ok(value)
        };
        let (op, values) = match value {
            Value::Null => (Op::IsNull, Vec::new()),
            Value::Array(items) => {
                if items.len() > limits.max_in_values {
                    return Err(invalid(
                        "filters",
                        format!(
                            "`{field}` lists {} values; at most {} are allowed",
                            items.len(),
                            limits.max_in_values
                        ),
                    ));
                }
                (
                    Op::In,
                    items.iter().map(typed_value).collect::<Result<_>>()?,
                )
            }
            v => (Op::Exact, vec![typed_value(v)?]),
        };
        out.push(Filter {
            column: col.name.clone(),
            op,
            values,
        });
    }
    Ok(out)
}

/// `q`: text whose every word appears in some text field, or `{"field": "words"}` whose words
/// appear in that field; case-insensitive substrings (CKAN matches stemmed words).
fn read_q(
    raw: &Value,
    schema: &[Column],
    names: &[String],
    column: &dyn Fn(&str) -> Option<Column>,
) -> Result<Vec<Condition>> {
    let contains = |col: &str, word: &str| {
        Condition::Filter(Filter {
            column: col.to_string(),
            op: Op::Contains,
            values: vec![ScalarValue::Utf8(Some(word.to_string()))],
        })
    };
    let per_field = match raw {
        Value::Object(m) => Some(m.clone()),
        Value::String(s) if s.trim_start().starts_with('{') => match json_arg("q", raw)? {
            Value::Object(m) => Some(m),
            _ => return Err(invalid("q", "Not a JSON object")),
        },
        _ => None,
    };
    let mut out = Vec::new();
    match per_field {
        Some(map) => {
            for (field, words) in &map {
                let col = column(field)
                    .filter(|c| c.kind == ColumnType::String)
                    .ok_or_else(|| invalid("q", format!("invalid value \"{field}\"")))?;
                for word in text(words).split_whitespace() {
                    out.push(contains(&col.name, word));
                }
            }
        }
        None => {
            let text_columns: Vec<&str> = schema
                .iter()
                .zip(names)
                .filter(|(c, _)| c.kind == ColumnType::String)
                .map(|(c, _)| c.name.as_str())
                .collect();
            for word in text(raw).split_whitespace() {
                let any = text_columns.iter().map(|c| contains(c, word)).collect();
                out.push(Condition::Any(any));
            }
        }
    }
    Ok(out)
}

/// One sort clause as CKAN reads it: `field`, `"quoted field"`, then `asc`/`desc`, then
/// `nulls first`/`nulls last` (PostgreSQL's default: nulls last ascending, first descending).
fn parse_sort(clause: &str, column: &dyn Fn(&str) -> Option<Column>) -> Option<Sort> {
    let mut words: Vec<&str> = clause.split(' ').filter(|w| !w.is_empty()).collect();
    let lower = |w: &str| w.to_ascii_lowercase();
    let mut nulls = None;
    if words.len() >= 2 && lower(words[words.len() - 2]) == "nulls" {
        nulls = match lower(words[words.len() - 1]).as_str() {
            "first" => Some(true),
            "last" => Some(false),
            _ => return None,
        };
        words.truncate(words.len() - 2);
    }
    let mut descending = false;
    if let Some(last) = words.last()
        && words.len() >= 2
    {
        match lower(last).as_str() {
            "asc" => {
                words.pop();
            }
            "desc" => {
                descending = true;
                words.pop();
            }
            _ => {}
        }
    }
    let field = words.join(" ");
    let field = field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or(&field);
    let col = column(field)?;
    Some(Sort {
        key: col.name,
        descending,
        nulls_first: nulls.unwrap_or(descending),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Vec<Column> {
        let mut code = Column::new("code_insee", ColumnType::String);
        code.label = "Code INSEE".into();
        let mut pop = Column::new("population", ColumnType::Integer);
        pop.label = "Population".into();
        vec![code, pop, Column::new("nom", ColumnType::String)]
    }

    fn read(args: Value) -> Result<Search> {
        let Value::Object(map) = args else { panic!() };
        search(&map, &schema(), &Limits::default(), false)
    }

    #[test]
    fn arguments_read_as_ckan_reads_them() {
        let s = read(json!({
            "resource_id": "x",
            "filters": "{\"Code INSEE\": [\"01001\", \"2A004\"], \"Population\": 5}",
            "q": "saint mer",
            "fields": "_id, nom",
            "sort": "Population desc, \"Code INSEE\" nulls first",
            "limit": "50000",
            "offset": 7,
            "include_total": "no",
        }))
        .unwrap();
        assert_eq!(s.query.filters[0].op, Op::In);
        assert_eq!(s.query.filters[1].values, vec![ScalarValue::Int64(Some(5))]);
        assert_eq!(s.query.groups.len(), 2, "one group a word");
        assert_eq!(s.fields, ["_id", "nom"]);
        assert_eq!(s.query.columns.as_ref().unwrap(), &[ROW_COLUMN, "nom"]);
        assert_eq!(s.query.sorts[0].key, "population");
        assert!(s.query.sorts[0].descending && s.query.sorts[0].nulls_first);
        assert!(!s.query.sorts[1].descending && s.query.sorts[1].nulls_first);
        assert_eq!(
            (s.limit, s.offset, s.include_total),
            (Some(MAX_LIMIT), 7, false)
        );
        assert_eq!(s.query.offset().unwrap(), 7);
        let s = read(
            json!({"resource_id": "x", "filters": {"_id": 3}, "distinct": true, "fields": ["nom"]}),
        )
        .unwrap();
        assert_eq!(s.query.filters[0].values, vec![ScalarValue::Int64(Some(2))]);
        assert_eq!(s.query.group_by, ["nom"]);
    }

    #[test]
    fn bad_arguments_name_their_field() {
        let field = |args: Value| match read(args).unwrap_err() {
            Error::Invalid { field, message } => format!("{field}: {message}"),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(json!({"filters": "{nope"})),
            "filters: Cannot parse JSON"
        );
        assert_eq!(
            field(json!({"filters": {"x": 1}})),
            "filters: invalid value \"x\""
        );
        assert!(field(json!({"filters": {"Population": "abc"}})).starts_with("filters: `abc`"));
        assert_eq!(
            field(json!({"fields": "nom,zz"})),
            "fields: invalid value \"zz\""
        );
        assert_eq!(
            field(json!({"sort": "nom sideways"})),
            "sort: invalid value \"nom sideways\""
        );
        assert_eq!(
            field(json!({"limit": "-1"})),
            "limit: Must be a natural number"
        );
        assert_eq!(field(json!({"limit": "ten"})), "limit: Invalid integer");
        assert!(
            field(json!({"records_format": "xml"}))
                .starts_with("records_format: Value must be one of")
        );
        assert_eq!(
            field(json!({"rows": 5})),
            "__junk: The input field rows was not expected."
        );
    }
}
