//! A dataset's own OpenAPI 3.1 document, typed from its current version's schema and profile:
//! a row schema with each column's JSON type (`enum` for text columns of few values, `minimum`
//! and `maximum` from the profile, `null` where nulls were measured), one query parameter per
//! column and operator its type allows, typed as the parser reads it, aggregated rows, and
//! every error. It covers the native data routes and the tabular API's, so that a client
//! generated from it gets typed rows from either. Query parameters declare exactly what the
//! parser accepts; what no schema can say (a sort key an aggregation does not output, `columns`
//! with an aggregation, more than the allowed number of conditions) is in the descriptions.

use serde_json::{Map, Value, json};

use crate::config::Limits;
use crate::dataset::manifest::{ColumnProfile, Manifest};
use crate::dataset::schema::{Column, ColumnType, TABULAR_ID, published_keys};
use crate::query::facets;
use crate::query::geo::{DISTANCE, has_coordinates};
use crate::query::params::{KEY_ONLY_VALUES, MAX_PAGE};
use crate::query::request::{AGGS, Agg, OPS, Op};

/// What a dataset's document is written from.
pub struct Subject<'a> {
    pub id: &'a str,
    /// The id `/api/resources/{rid}/` answers to (the declared `resource_id`, else the id).
    pub rid: &'a str,
    pub title: &'a str,
    pub manifest: &'a Manifest,
    pub limits: &'a Limits,
}

/// Text columns with at most this many distinct values, each seen twice on average, get an
/// `enum` (the profile keeps the ten most frequent values, so it knows them all).
const ENUM_MAX: u64 = 10;

/// The two APIs a dataset's rows are read through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Native,
    Tabular,
}

impl Api {
    fn prefix(self) -> &'static str {
        match self {
            Api::Native => "",
            Api::Tabular => "Resource",
        }
    }
}

/// The document.
pub fn document(s: &Subject) -> Value {
    let m = s.manifest;
    let native_keys: Vec<String> = m.schema.iter().map(|c| c.name.clone()).collect();
    let tabular_keys = published_keys(&m.schema);
    let mut schemas = Map::new();
    for (api, keys) in [(Api::Native, &native_keys), (Api::Tabular, &tabular_keys)] {
        let p = api.prefix();
        schemas.insert(format!("{p}Row"), row_schema(m, keys, api));
        schemas.insert(format!("{p}Group"), group_schema(m, keys));
        schemas.insert(format!("{p}Page"), page_schema(api));
    }
    schemas.insert("Problem".into(), problem_schema());
    schemas.insert("Facet".into(), facet_schema());
    schemas.insert(
        "Flag".into(),
        json!({"type": "string", "enum": KEY_ONLY_VALUES, "description": "Written without a value, or `true`"}),
    );
    schemas.insert(
        "SortOrder".into(),
        json!({"type": "string", "enum": ["asc", "desc"]}),
    );
    schemas.insert("TabularErrors".into(), tabular_errors_schema());
    let native = params(m, &native_keys, Api::Native, s.limits);
    let tabular = params(m, &tabular_keys, Api::Tabular, s.limits);
    let (id, rid) = (s.id, s.rid);
    let mut paths = Map::new();
    let mut native_page = native.clone();
    native_page.extend(facet_params(m));
    paths.insert(
        format!("/api/datasets/{id}/data"),
        operation(
            "get_rows",
            "A page of rows, filtered, sorted or aggregated",
            &native_page,
            page_responses(Api::Native),
        ),
    );
    export_paths(m, id, &native, &mut paths);
    paths.insert(
        format!("/api/resources/{rid}/data/"),
        operation(
            "get_resource_rows",
            "A page of rows in data.gouv.fr's tabular API envelope, keyed by published header",
            &tabular,
            page_responses(Api::Tabular),
        ),
    );
    paths.insert(
        format!("/api/resources/{rid}/data/csv/"),
        operation(
            "get_resource_csv",
            "The whole filtered result as CSV",
            &tabular,
            text_responses("text/csv", "The rows as CSV", Api::Tabular),
        ),
    );
    paths.insert(
        format!("/api/resources/{rid}/data/json/"),
        operation(
            "get_resource_json",
            "The whole filtered result as one JSON array",
            &tabular,
            json_export_responses(),
        ),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": format!("{} — qanat", if s.title.is_empty() { id } else { s.title }),
            "version": m.version,
            "description": format!(
                "Dataset `{id}`, version {} ({} rows). Rows of the native routes are keyed by API column name; \
    those of data.gouv.fr's tabular API (`/api/resources/{rid}/…`) by published header, with `__id`. \
    Conditions hold together; several sorts apply in the order given. With an aggregation, sorts name \
    its outputs and `columns` is not allowed; at most {} conditions a request.",
                m.version, m.rows, s.limits.max_filters
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

fn operation(id: &str, summary: &str, params: &[Value], responses: Value) -> Value {
    json!({"get": {
        "operationId": id,
        "summary": summary,
        "parameters": params,
        "responses": responses,
    }})
}

/// A column's value in a response, as the profile measured it.
fn value_schema(col: &Column, p: Option<&ColumnProfile>, rows: u64) -> Value {
    let mut s = base_schema(col);
    let nullable = col.nullable || p.is_some_and(|p| p.nulls > 0);
    if let Some(p) = p {
        match col.kind {
            // Few values, each repeated: categories, not identifiers.
            ColumnType::String
                if p.distinct <= ENUM_MAX
                    && p.top.len() as u64 == p.distinct
                    && p.distinct * 2 <= rows =>
            {
                let mut values: Vec<Value> = p.top.iter().map(|t| t.value.clone()).collect();
                if nullable {
                    values.push(Value::Null);
                }
                s["enum"] = Value::Array(values);
            }
            ColumnType::Integer | ColumnType::Float if !p.min.is_null() => {
                s["minimum"] = p.min.clone();
                s["maximum"] = p.max.clone();
            }
            _ => {}
        }
    }
    if nullable { or_null(s) } else { s }
}

fn base_schema(col: &Column) -> Value {
    match col.kind {
        ColumnType::String => json!({"type": "string"}),
        ColumnType::Integer => json!({"type": "integer", "format": "int64"}),
        ColumnType::Float => json!({"type": "number", "format": "double"}),
        ColumnType::Boolean => json!({"type": "boolean"}),
        ColumnType::Date => json!({"type": "string", "format": "date"}),
        ColumnType::Datetime if col.with_offset => json!({"type": "string", "format": "date-time"}),
        // A local time has no offset, which `date-time` requires.
        ColumnType::Datetime => json!({
            "type": "string",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?$",
            "description": "Local date and time, no offset",
        }),
    }
}

/// `type: [t, "null"]` (an `enum` admits null too).
fn or_null(mut s: Value) -> Value {
    match s.get("type").cloned() {
        Some(Value::String(t)) => s["type"] = json!([t, "null"]),
        Some(Value::Array(mut ts)) if !ts.contains(&json!("null")) => {
            ts.push(json!("null"));
            s["type"] = Value::Array(ts);
        }
        _ => {}
    }
    if let Some(values) = s.get_mut("enum").and_then(Value::as_array_mut)
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
    s
}

fn row_schema(m: &Manifest, keys: &[String], api: Api) -> Value {
    let mut props = Map::new();
    if api == Api::Tabular {
        props.insert(
            TABULAR_ID.into(),
            json!({"type": "integer", "minimum": 1, "description": "1-based row number in file order"}),
        );
    }
    for (i, (col, key)) in m.schema.iter().zip(keys).enumerate() {
        let mut s = value_schema(col, m.profile.get(i), m.rows);
        if let Some(d) = &col.description {
            s["description"] = Value::from(d.clone());
        } else if api == Api::Native && col.label != col.name {
            s["description"] = Value::from(format!("Published as `{}`", col.label));
        }
        props.insert(key.clone(), s);
    }
    if api == Api::Native && has_coordinates(&m.schema) {
        props.insert(
            DISTANCE.into(),
            json!({"type": "number", "minimum": 0, "description": "With `near`: the row's distance from the point, in metres"}),
        );
    }
    json!({
        "type": "object",
        "description": "A row; every column unless `columns` picks some",
        "properties": props,
        "additionalProperties": false,
    })
}

/// An aggregated row: the grouped columns and each aggregate, named `{column}__{aggregate}`.
fn group_schema(m: &Manifest, keys: &[String]) -> Value {
    let mut props = Map::new();
    for (i, (col, key)) in m.schema.iter().zip(keys).enumerate() {
        let value = value_schema(col, m.profile.get(i), m.rows);
        props.insert(key.clone(), value.clone());
        for agg in aggs_for(col.kind) {
            let s = match agg {
                Agg::Count => json!({"type": "integer", "minimum": 0}),
                Agg::Avg => json!({"type": ["number", "null"]}),
                Agg::Sum => or_null(base_schema(col)),
                Agg::Min | Agg::Max => or_null(value.clone()),
            };
            props.insert(format!("{key}__{}", agg.name()), s);
        }
    }
    json!({
        "type": "object",
        "description": "A group of an aggregation: its `__groupby` columns and its aggregates",
        "properties": props,
        "additionalProperties": false,
    })
}

fn page_schema(api: Api) -> Value {
    let p = api.prefix();
    let rows = json!({"type": "array", "items": {"anyOf": [
        {"$ref": format!("#/components/schemas/{p}Row")},
        {"$ref": format!("#/components/schemas/{p}Group")},
    ]}});
    let link = json!({"type": "string"});
    let maybe = json!({"type": ["string", "null"]});
    let count = json!({"type": "integer", "minimum": 0});
    match api {
        Api::Native => json!({
            "type": "object",
            "required": ["data", "links", "meta"],
            "properties": {
                "data": rows,
                "links": {"type": "object", "required": ["self", "next", "prev", "profile", "openapi"], "properties": {
                    "self": link, "next": maybe, "prev": maybe, "profile": link, "openapi": link,
                }},
                "meta": {"type": "object", "required": ["page", "page_size", "total", "version"], "properties": {
                    "page": {"type": "integer", "minimum": 1},
                    "page_size": {"type": "integer", "minimum": 1},
                    "total": count,
                    "version": {"type": "string"},
                    "facets": {"type": "object", "description": "With `facets=`: each facet's counts, keyed as asked",
                        "additionalProperties": {"$ref": "#/components/schemas/Facet"}},
                }},
            },
        }),
        Api::Tabular => json!({
            "type": "object",
            "required": ["data", "links", "meta"],
            "properties": {
                "data": rows,
                "links": {"type": "object", "required": ["profile", "swagger", "next", "prev"], "properties": {
                    "profile": link, "swagger": link, "next": maybe, "prev": maybe,
                }},
                "meta": {"type": "object", "required": ["page", "page_size"], "properties": {
                    "page": {"type": "integer", "minimum": 1},
                    "page_size": {"type": "integer", "minimum": 1},
                    "total": {"type": "integer", "minimum": 0, "description": "Absent for aggregations"},
                }},
            },
        }),
    }
}

fn problem_schema() -> Value {
    json!({"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
    }})
}

fn tabular_errors_schema() -> Value {
    json!({"type": "object", "required": ["errors"], "properties": {"errors": {"type": "array", "items": {
    "type": "object", "required": ["code", "title", "detail"], "properties": {
        "code": {"type": ["string", "null"]}, "title": {"type": "string"}, "detail": {"type": "string"},
    }}}}})
}

/// The error responses of a data route, in each API's shape.
fn errors(api: Api, into: &mut Map<String, Value>) {
    let (media, schema) = match api {
        Api::Native => ("application/problem+json", "Problem"),
        Api::Tabular => ("application/json", "TabularErrors"),
    };
    let body = json!({media: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}});
    for (status, why) in [
        (
            "400",
            "A parameter that cannot be read, or a combination the query does not allow",
        ),
        ("404", "No such dataset"),
        ("410", "The version named is no longer kept"),
        (
            "503",
            "Over the deadline or the memory budget, or no data yet",
        ),
    ] {
        into.insert(status.into(), json!({"description": why, "content": body}));
    }
    into.insert(
        "304".into(),
        json!({"description": "Not modified (If-None-Match matched the ETag)"}),
    );
    // Answered in front of every route, whatever its API, as problem+json.
    let problem =
        json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}});
    let seconds = json!({"schema": {"type": "integer"}});
    into.insert(
        "429".into(),
        json!({"description": "Over the client's rate: Retry-After says when to ask again",
            "content": problem, "headers": {"Retry-After": seconds, "RateLimit-Limit": seconds,
            "RateLimit-Remaining": seconds, "RateLimit-Reset": seconds}}),
    );
    into.insert(
        "414".into(),
        json!({"description": "The request target is longer than the server accepts", "content": problem}),
    );
}

fn page_responses(api: Api) -> Value {
    let mut r = Map::new();
    let page = format!("#/components/schemas/{}Page", api.prefix());
    r.insert(
        "200".into(),
        json!({"description": "A page of rows or groups", "content": {
        "application/json": {"schema": {"$ref": page}}}}),
    );
    errors(api, &mut r);
    Value::Object(r)
}

fn text_responses(media: &str, what: &str, api: Api) -> Value {
    let mut r = Map::new();
    r.insert(
        "200".into(),
        json!({"description": what, "content": {media: {"schema": {"type": "string"}}}}),
    );
    errors(api, &mut r);
    Value::Object(r)
}

/// The download routes of the dataset (GeoJSON when it has coordinates), with the native
/// parameters (GeoJSON's without groupings or aggregates: it holds rows with their points).
fn export_paths(m: &Manifest, id: &str, native: &[Value], paths: &mut Map<String, Value>) {
    for (ext, media, what) in [
        ("csv", "text/csv", "The rows as CSV with a header line"),
        ("ndjson", "application/x-ndjson", "One JSON object a line"),
        (
            "parquet",
            "application/vnd.apache.parquet",
            "The rows as a Parquet file",
        ),
        (
            "arrow",
            "application/vnd.apache.arrow.stream",
            "The rows as an Arrow IPC stream",
        ),
        (
            "geojson",
            "application/geo+json",
            "The rows as a GeoJSON FeatureCollection: each a Feature with its point, its other columns as properties",
        ),
    ] {
        if ext == "geojson" && !has_coordinates(&m.schema) {
            continue;
        }
        // GeoJSON holds rows with their points: no groupings or aggregates.
        let aggregating = |p: &Value| {
            let name = p["name"].as_str().unwrap_or_default();
            let op = name.rsplit_once("__").map_or("", |(_, op)| op);
            op == "groupby" || AGGS.iter().any(|(a, _)| *a == op)
        };
        let params: Vec<Value> = match ext {
            "geojson" => native.iter().filter(|p| !aggregating(p)).cloned().collect(),
            _ => native.to_vec(),
        };
        paths.insert(
            format!("/api/datasets/{id}/data.{ext}"),
            operation(
                &format!("get_rows_{ext}"),
                what,
                &params,
                match ext {
                    "geojson" => geojson_responses(what),
                    _ => text_responses(media, what, Api::Native),
                },
            ),
        );
    }
}

/// A GeoJSON FeatureCollection of points (RFC 7946).
fn geojson_responses(what: &str) -> Value {
    let point = json!({"type": "object", "required": ["type", "coordinates"], "properties": {
        "type": {"const": "Point"},
        "coordinates": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"},
            "description": "[longitude, latitude]"},
    }});
    let feature = json!({"type": "object", "required": ["type", "geometry", "properties"], "properties": {
        "type": {"const": "Feature"},
        "geometry": {"oneOf": [{"type": "null"}, point]},
        "properties": {"type": "object", "description": "The row's other columns"},
    }});
    let mut r = Map::new();
    r.insert(
        "200".into(),
        json!({"description": what, "content": {"application/geo+json": {"schema": {
        "type": "object", "required": ["type", "features"], "properties": {
            "type": {"const": "FeatureCollection"},
            "features": {"type": "array", "items": feature},
        }}}}}),
    );
    errors(Api::Native, &mut r);
    Value::Object(r)
}

fn json_export_responses() -> Value {
    let mut r = Map::new();
    r.insert(
        "200".into(),
        json!({"description": "The rows", "content": {"application/json": {"schema": {
        "type": "array", "items": {"anyOf": [
            {"$ref": "#/components/schemas/ResourceRow"},
            {"$ref": "#/components/schemas/ResourceGroup"},
        ]}}}}}),
    );
    errors(Api::Tabular, &mut r);
    Value::Object(r)
}

/// The filter operators a column of this type takes.
fn ops_for(kind: ColumnType) -> impl Iterator<Item = Op> {
    OPS.iter().map(|(_, op)| *op).filter(move |op| {
        kind == ColumnType::String || !matches!(op, Op::Contains | Op::NotContains)
    })
}

/// The aggregates a column of this type takes.
fn aggs_for(kind: ColumnType) -> impl Iterator<Item = Agg> {
    let numeric = matches!(kind, ColumnType::Integer | ColumnType::Float);
    AGGS.iter()
        .map(|(_, a)| *a)
        .filter(move |a| numeric || !matches!(a, Agg::Sum | Agg::Avg))
}

/// A request value of this type, as the parser reads it.
fn request_schema(kind: ColumnType, with_offset: bool) -> Value {
    match kind {
        ColumnType::String => json!({"type": "string"}),
        ColumnType::Integer => {
            json!({"type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX})
        }
        ColumnType::Float => json!({"type": "number", "format": "double"}),
        ColumnType::Boolean => json!({"type": "boolean"}),
        ColumnType::Date => json!({"type": "string", "format": "date"}),
        ColumnType::Datetime if with_offset => json!({"type": "string", "format": "date-time"}),
        ColumnType::Datetime => {
            json!({"type": "string", "pattern": format!("^{DATE}T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}$")})
        }
    }
}

const DATE: &str = "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])";

/// A comma-separated list of this type, as `__in` reads it (text items holding a comma or a
/// quote in double quotes, a quote inside doubled).
fn list_schema(kind: ColumnType) -> Value {
    let item = match kind {
        ColumnType::String => r#"([^",]*|"([^"]|"")*")"#.to_string(),
        ColumnType::Integer => "-?[0-9]{1,18}".into(),
        ColumnType::Float => r"-?[0-9]{1,15}(\.[0-9]{1,15})?".into(),
        ColumnType::Boolean => "(true|false)".into(),
        ColumnType::Date => DATE.into(),
        ColumnType::Datetime => format!("{DATE}T[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}"),
    };
    json!({"type": "string", "pattern": format!("^{item}(,{item})*$")})
}

fn param(name: &str, description: String, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

/// A parameter written without a value (`col__isnull`), or with `true`.
fn key_only(name: &str, description: String) -> Value {
    let mut p = param(
        name,
        description,
        json!({"$ref": "#/components/schemas/Flag"}),
    );
    p["allowEmptyValue"] = Value::Bool(true);
    p
}

/// Every query parameter of a data route in one API: paging, `columns`, `or`, then per column
/// each operator, the sort, the grouping and each aggregate its type takes.
/// `facets` (this dataset's columns, dates and datetimes also by `:month` or `:year`) and
/// `facet_size`, on the JSON page only.
fn facet_params(m: &Manifest) -> Vec<Value> {
    let mut names = Vec::new();
    for c in &m.schema {
        names.push(regex_escape(&c.name));
        if matches!(c.kind, ColumnType::Date | ColumnType::Datetime) {
            names.push(format!("{}:(month|year)", regex_escape(&c.name)));
        }
    }
    let one = format!("({})", names.join("|"));
    vec![
        param(
            "facets",
            "Columns whose most frequent values among the filtered rows are counted in `meta.facets`, comma-separated; a date or datetime column by `:month` or `:year`".into(),
            json!({"type": "string", "pattern": format!("^{one}(,{one})*$")}),
        ),
        param(
            "facet_size",
            format!("Values each facet lists (default {})", facets::DEFAULT_SIZE),
            json!({"type": "integer", "minimum": 1, "maximum": facets::MAX_SIZE}),
        ),
    ]
}

/// `near`, `bbox` and `distance_m__sort`, on datasets with coordinates. The patterns take
/// degrees in range and a radius from 1 metre to 9,999 km.
fn geo_params() -> Vec<Value> {
    let lat = r"-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?)";
    let lon = r"-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?)";
    let metres = r"[1-9][0-9]{0,6}(\.[0-9]+)?";
    vec![
        param(
            "near",
            "`latitude,longitude,metres`: rows within that distance of the point, nearest first unless another sort is asked, each with its distance as `distance_m`".into(),
            json!({"type": "string", "pattern": format!("^{lat},{lon},{metres}$")}),
        ),
        param(
            "bbox",
            "`min_lon,min_lat,max_lon,max_lat`: rows whose point is in the box (a minimum above its maximum is a 400)".into(),
            json!({"type": "string", "pattern": format!("^{lon},{lat},{lon},{lat}$")}),
        ),
        param(
            &format!("{DISTANCE}__sort"),
            "With `near`: sort by the distance".into(),
            json!({"$ref": "#/components/schemas/SortOrder"}),
        ),
    ]
}

/// A search's words (a value with no letter or digit is a 400).
fn search_schema() -> Value {
    json!({"type": "string", "minLength": 1})
}

/// What one facet found (`meta.facets.{facet}`).
fn facet_schema() -> Value {
    let count = json!({"type": "integer", "minimum": 0});
    json!({
        "type": "object",
        "required": ["values", "others", "nulls", "truncated"],
        "properties": {
            "values": {"type": "array", "description": "The most frequent values, most frequent first, then by value",
                "items": {"type": "object", "required": ["value", "count"], "properties": {
                    "value": {"description": "A value of the column (a month `YYYY-MM` or a year `YYYY` when counted so)"},
                    "count": count,
                }}},
            "others": {"type": ["integer", "null"], "minimum": 0, "description": "Rows whose value is not listed (null when truncated)"},
            "nulls": {"type": ["integer", "null"], "minimum": 0, "description": "Rows with no value (null when truncated)"},
            "truncated": {"type": "boolean", "description": "The count ran past its time budget; nothing is listed"},
        },
    })
}

fn params(m: &Manifest, keys: &[String], api: Api, limits: &Limits) -> Vec<Value> {
    let mut out = vec![
        param(
            "page",
            "1-based page (default 1)".into(),
            json!({"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
        ),
        param(
            "page_size",
            format!("Rows a page (default {})", limits.default_page_size),
            json!({"type": "integer", "minimum": 1, "maximum": limits.max_page_size}),
        ),
    ];
    let mut names: Vec<&str> = keys.iter().map(String::as_str).collect();
    if api == Api::Tabular {
        names.insert(0, TABULAR_ID);
    }
    let listed: Vec<String> = names
        .iter()
        .filter(|k| !k.contains(','))
        .map(|k| regex_escape(k))
        .collect();
    let one = format!("({})", listed.join("|"));
    out.push(param(
        "columns",
        "Columns to return, comma-separated, in this order".into(),
        json!({"type": "string", "pattern": format!("^{one}(,{one})*$")}),
    ));
    if api == Api::Native {
        out.push(param(
            "q",
            "Every word somewhere in the row's text columns (case, accents and Arabic diacritics ignored)".into(),
            search_schema(),
        ));
        out.push(param(
            "q_sort",
            "`relevance`: rows that hold the words most, in the least text, first (with `q` or `__search`; not with sorts)".into(),
            json!({"type": "string", "enum": ["relevance"]}),
        ));
    }
    if api == Api::Native && has_coordinates(&m.schema) {
        out.extend(geo_params());
    }
    out.push(param(
        "or",
        "Conditions of which any must hold: `(col__op.value,col2__isnull,and(a__greater.1,b__less.5))`".into(),
        json!({"type": "string", "pattern": r"^\(.+\)$"}),
    ));
    let id_col = (api == Api::Tabular).then(|| Column {
        nullable: false,
        ..Column::new(TABULAR_ID, ColumnType::Integer)
    });
    let columns = id_col
        .iter()
        .map(|c| (c, TABULAR_ID))
        .chain(m.schema.iter().zip(keys.iter().map(String::as_str)));
    for (col, key) in columns {
        let is_id = key == TABULAR_ID;
        for op in ops_for(col.kind) {
            let name = format!("{key}__{}", op.name());
            let what = op_words(op, api);
            out.push(match op {
                Op::IsNull | Op::IsNotNull => key_only(&name, format!("`{key}` {what}")),
                Op::In | Op::NotIn => {
                    param(&name, format!("`{key}` {what}"), list_schema(col.kind))
                }
                _ => {
                    let mut s = request_schema(col.kind, col.with_offset);
                    if is_id {
                        s["minimum"] = json!(i64::MIN + 1);
                    }
                    param(&name, format!("`{key}` {what}"), s)
                }
            });
        }
        let order = match api {
            Api::Native => "nulls last",
            Api::Tabular => "nulls first when descending",
        };
        out.push(param(
            &format!("{key}__sort"),
            format!("Sort by `{key}` ({order})"),
            json!({"$ref": "#/components/schemas/SortOrder"}),
        ));
        if api == Api::Native && col.kind == ColumnType::String {
            out.push(param(
                &format!("{key}__search"),
                format!("Every word in `{key}` (case, accents and Arabic diacritics ignored)"),
                search_schema(),
            ));
        }
        if is_id {
            continue;
        }
        out.push(key_only(
            &format!("{key}__groupby"),
            format!("Group rows by `{key}`"),
        ));
        for agg in aggs_for(col.kind) {
            out.push(key_only(
                &format!("{key}__{}", agg.name()),
                format!(
                    "Aggregate `{key}`: {}, output as `{key}__{}`",
                    agg.name(),
                    agg.name()
                ),
            ));
        }
    }
    out
}

fn op_words(op: Op, api: Api) -> &'static str {
    match (op, api) {
        (Op::Exact, _) => "equals the value",
        (Op::Differs, _) => "differs from the value (nulls included)",
        (Op::In, _) => "is one of the comma-separated values",
        (Op::NotIn, Api::Native) => "is none of the values (nulls included)",
        (Op::NotIn, Api::Tabular) => "is none of the values (nulls left out)",
        (Op::Contains, Api::Native) => "contains the text, case-insensitively",
        (Op::Contains, Api::Tabular) => {
            "contains the text, case-insensitively, `*` matching anything"
        }
        (Op::NotContains, Api::Native) => "does not contain the text (nulls included)",
        (Op::NotContains, Api::Tabular) => "does not contain the text (nulls left out)",
        (Op::Less, _) => "is at most the value",
        (Op::Greater, _) => "is at least the value",
        (Op::StrictlyLess, _) => "is below the value",
        (Op::StrictlyGreater, _) => "is above the value",
        (Op::IsNull, _) => "is null",
        (Op::IsNotNull, _) => "is not null",
    }
}

/// A name as a regular expression that matches it literally.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
