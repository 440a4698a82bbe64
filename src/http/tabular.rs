//! data.gouv.fr's tabular API (api-tabular) as it answers: `/api/resources/{rid}/…` with rows
//! keyed by the published headers plus `__id`, its envelope, links and `{"errors": […]}`
//! bodies, so that code written for it runs against qanat by changing the base URL. Queries go
//! through the same parser (in its tabular dialect) and executor as the native routes.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::data::Download;
use super::{base_url, etag, not_modified, not_modified_response, set_cache_headers};
use crate::catalog::Entry;
use crate::dataset::manifest::Manifest;
use crate::dataset::schema::{ColumnType, ROW_COLUMN, TABULAR_ID, published_keys};
use crate::encode::{self, BodyWriter, Format, Relabel};
use crate::error::Error;
use crate::query::params::{self, Dialect};
use crate::query::{DataQuery, Loaded};
use crate::state::AppState;

/// The tabular API's error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct TabularErrors {
    pub errors: Vec<TabularError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TabularError {
    /// Always null here (api-tabular puts a Sentry event id there).
    #[schema(value_type = Option<String>)]
    pub code: Option<String>,
    pub title: String,
    pub detail: String,
}

/// An error answered in the tabular API's shape, with the status qanat gives it everywhere.
pub struct Failure(Error);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let (title, detail) = match status {
            // api-tabular's words for a query it cannot read.
            StatusCode::BAD_REQUEST => (
                "Invalid query string",
                format!("Malformed query: {}", self.0.public_detail()),
            ),
            StatusCode::NOT_FOUND => ("Resource not found", self.0.public_detail()),
            _ => (
                status.canonical_reason().unwrap_or("Error"),
                self.0.public_detail(),
            ),
        };
        let body = TabularErrors {
            errors: vec![TabularError {
                code: None,
                title: title.to_string(),
                detail,
            }],
        };
        let mut resp = (status, Json(body)).into_response();
        self.0.set_retry_after(resp.headers_mut());
        resp
    }
}

type Answer<T> = std::result::Result<T, Failure>;

/// The dataset a resource id names, and the version requests read now.
async fn resource(state: &AppState, rid: &str) -> Answer<(Arc<Entry>, Arc<Loaded>)> {
    let entry = state.catalog.resource(rid)?;
    let loaded = state.catalog.serving(&entry.spec.id).await?;
    Ok((entry, loaded))
}

/// A route of a resource. Resource and dataset ids are checked URL-safe when the catalog is read.
fn resource_url(base: &str, rid: &str, tail: &str) -> String {
    format!("{base}/api/resources/{rid}/{tail}")
}

/// A resource: when its data was loaded, where it comes from, and its routes.
#[utoipa::path(get, path = "/api/resources/{rid}/", tag = "tabular",
    params(("rid" = String, Path, description = "The portal's resource id a dataset file declares, or the dataset id")),
    responses(
        (status = 200, description = "The resource", body = Object, example = json!({"created_at": "2026-11-26T10:00:00Z", "url": "https://…/communes.csv", "links": [{"href": "…/profile/", "type": "GET", "rel": "profile"}]})),
        (status = 404, description = "No such resource", body = TabularErrors),
        (status = 503, description = "The resource has no data yet", body = TabularErrors),
    ))]
pub async fn meta(
    State(state): State<AppState>,
    Path(rid): Path<String>,
    headers: HeaderMap,
) -> Answer<Json<Value>> {
    let (entry, loaded) = resource(&state, &rid).await?;
    let base = base_url(&headers, &state.settings);
    let source = &entry.spec.source;
    // A published URL as it is; a file on this server is offered as its export instead.
    let url = if source.contains("://") {
        source.clone()
    } else {
        format!("{base}/api/datasets/{}/data.csv", entry.spec.id)
    };
    let link = |rel: &str, tail: &str| json!({"href": resource_url(&base, &rid, tail), "type": "GET", "rel": rel});
    Ok(Json(json!({
        "created_at": loaded.manifest.created_at,
        "url": url,
        "links": [link("profile", "profile/"), link("data", "data/"), link("swagger", "swagger/")],
    })))
}

/// The profile in csv-detective's shape, as data.gouv.fr publishes it.
#[utoipa::path(get, path = "/api/resources/{rid}/profile/", tag = "tabular",
    params(("rid" = String, Path, description = "The portal's resource id a dataset file declares, or the dataset id")),
    responses(
        (status = 200, description = "`{\"profile\": {header, columns, formats, profile, …}, \"indexes\": null}`", body = Object),
        (status = 404, description = "No such resource", body = TabularErrors),
        (status = 503, description = "The resource has no data yet", body = TabularErrors),
    ))]
pub async fn profile(
    State(state): State<AppState>,
    Path(rid): Path<String>,
) -> Answer<Json<Value>> {
    let (_, loaded) = resource(&state, &rid).await?;
    Ok(Json(json!({
        "profile": detection(&loaded.manifest),
        // Every column may be filtered, sorted and grouped: no index restricts them.
        "indexes": null,
    })))
}

/// csv-detective's names of a column type.
fn python_type(kind: ColumnType) -> (&'static str, &'static str) {
    match kind {
        ColumnType::String => ("string", "string"),
        ColumnType::Integer => ("int", "int"),
        ColumnType::Float => ("float", "float"),
        ColumnType::Boolean => ("bool", "booleen"),
        ColumnType::Date => ("date", "date"),
        ColumnType::Datetime => ("datetime", "datetime_aware"),
    }
}

/// A version's detection and profile in csv-detective's shape, keyed by published header.
fn detection(m: &Manifest) -> Value {
    let keys = published_keys(&m.schema);
    let mut columns = serde_json::Map::new();
    let mut formats = serde_json::Map::new();
    let mut profile = serde_json::Map::new();
    let mut categorical = Vec::new();
    for ((key, col), p) in keys.iter().zip(&m.schema).zip(&m.profile) {
        let (python, format) = python_type(col.kind);
        columns.insert(
            key.clone(),
            json!({"python_type": python, "format": format, "score": 1.0}),
        );
        if let Some(list) = formats
            .entry(format)
            .or_insert_with(|| json!([]))
            .as_array_mut()
        {
            list.push(Value::from(key.clone()));
        }
        // csv-detective's rule of thumb for a column of categories.
        if p.distinct > 0 && p.distinct <= 25 && p.distinct < m.rows {
            categorical.push(key.clone());
        }
        let tops: Vec<Value> = p
            .top
            .iter()
            .map(|t| json!({"value": t.value, "count": t.count}))
            .collect();
        let mut entry = json!({
            "tops": tops,
            "nb_distinct": p.distinct,
            "nb_missing_values": p.nulls,
        });
        if matches!(col.kind, ColumnType::Integer | ColumnType::Float) {
            entry["min"] = p.min.clone();
            entry["max"] = p.max.clone();
        }
        profile.insert(key.clone(), entry);
    }
    json!({
        // The report says why; csv-detective gives the name only.
        "encoding": m.report.encoding.split(" (").next().unwrap_or_default(),
        "separator": m.report.separator,
        "header_row_idx": m.report.header_line.saturating_sub(1),
        "header": m.schema.iter().map(|c| c.label.clone()).collect::<Vec<_>>(),
        "total_lines": m.rows,
        "heading_columns": 0,
        "trailing_columns": 0,
        "categorical": categorical,
        "columns": columns,
        "formats": formats,
        "profile": profile,
    })
}

/// What a data route of a resource needs: its version, the parsed query, the ETag.
struct Prepared {
    rid: String,
    loaded: Arc<Loaded>,
    query: DataQuery,
    etag: String,
}

async fn prepare(
    state: &AppState,
    rid: &str,
    raw: &str,
    format: Format,
    base: &str,
) -> Answer<Prepared> {
    let (_, loaded) = resource(state, rid).await?;
    let schema = &loaded.manifest.schema;
    let mut query = params::parse_in(Dialect::Tabular, raw, schema, &state.settings.limits)?;
    if format != Format::Json {
        // api-tabular's exports are whole results: page and page_size are not read there.
        query.paged = false;
    }
    let m = &loaded.manifest;
    // Links repeat the request's own text, so the raw query is part of what the body depends on.
    let etag = etag(&[&m.id, &m.version, "tabular", format.name(), raw, base, rid]);
    Ok(Prepared {
        rid: rid.to_string(),
        loaded,
        query,
        etag,
    })
}

/// Output names on the tabular API: published keys, `__id` for the row number, and
/// `{key}__{aggregate}` for aggregates.
fn relabel(m: &Manifest, q: &DataQuery) -> Relabel {
    let names = m.schema.iter().map(|c| c.name.clone());
    let mut relabel =
        Relabel::numbered(names.zip(published_keys(&m.schema)), ROW_COLUMN, TABULAR_ID);
    for a in &q.aggregates {
        let key = relabel
            .names
            .get(&a.column)
            .cloned()
            .unwrap_or(a.column.clone());
        relabel
            .names
            .insert(a.output_name(), format!("{key}__{}", a.agg.name()));
    }
    relabel
}

const DATA_DOC: &str = "Rows keyed by the published headers, each with `__id` (its 1-based row \
number in file order, the default order). Filters, sorts and aggregations are \
`header__operator=value` as on data.gouv.fr (`exact`, `differs`, `in`, `notin`, `contains` with \
`*` as a wildcard, `notcontains`, `less`, `greater`, `strictly_less`, `strictly_greater`, \
`isnull`, `isnotnull`, `sort=asc|desc` with nulls first when descending, `groupby`, `count`, \
`sum`, `avg`, `min`, `max`); the API name of a column is accepted too. `notin` and \
`notcontains` leave out nulls, as PostgreSQL does.";

/// The query parameters of every tabular data route (documentation only: the handlers read
/// the raw query string).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ExportParams {
    /// Columns to return, comma-separated
    columns: Option<String>,
    /// OR groups: `(col__op.value,and(a__greater.1,b__less.5))`
    or: Option<String>,
    /// `header__operator=value` filters, sorts and aggregations
    #[param(style = Form, explode, value_type = Option<Object>)]
    filters: Option<String>,
}

/// A page of rows in api-tabular's envelope.
#[utoipa::path(get, path = "/api/resources/{rid}/data/", tag = "tabular", description = DATA_DOC,
    params(
        ("rid" = String, Path, description = "The portal's resource id a dataset file declares, or the dataset id"),
        ("page" = Option<u64>, Query, minimum = 1, description = "1-based page (default 1)"),
        ("page_size" = Option<u64>, Query, minimum = 1, description = "Rows a page (default 20; api-tabular stops at 50, qanat at its configured maximum, 1000 by default)"),
        ExportParams,
    ),
    responses(
        (status = 200, description = "`{\"data\": [rows], \"links\": {profile, swagger, next, prev}, \"meta\": {page, page_size, total}}`; no `total` for aggregations", body = Object),
        (status = 304, description = "Not modified"),
        (status = 400, description = "A parameter that cannot be read", body = TabularErrors),
        (status = 404, description = "No such resource", body = TabularErrors),
        (status = 503, description = "Over the deadline or memory budget, or no data yet", body = TabularErrors),
    ))]
pub async fn data(
    State(state): State<AppState>,
    Path(rid): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Answer<Response> {
    let raw = raw.unwrap_or_default();
    let base = base_url(&headers, &state.settings);
    let p = prepare(&state, &rid, &raw, Format::Json, &base).await?;
    if not_modified(&headers, &p.etag) {
        return Ok(not_modified_response(&p.etag, false));
    }
    let work = async {
        let page = state.executor.page(&p.loaded, &p.query).await?;
        page_body(&base, &raw, &p, page)
    };
    let body = state.cache.get_or_compute(p.etag.clone(), work).await?;
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_cache_headers(resp.headers_mut(), &p.etag, false);
    super::replay::Replayable::new(&state, &p.etag, &p.loaded, false).mark(&mut resp);
    Ok(resp)
}

/// `{"data", "links", "meta"}` as api-tabular writes it: links repeat the request's parameters
/// with `page` and `page_size` last.
fn page_body(
    base: &str,
    raw: &str,
    p: &Prepared,
    page: crate::query::Page,
) -> crate::error::Result<Bytes> {
    let q = &p.query;
    let relabel = relabel(&p.loaded.manifest, q);
    let batches = page
        .batches
        .iter()
        .map(|b| relabel.apply(b))
        .collect::<crate::error::Result<Vec<_>>>()?;
    let data = encode::json_array(&batches)?;
    let kept: Vec<&str> = raw
        .split('&')
        .filter(|a| {
            let key = a.split('=').next().unwrap_or_default();
            !a.is_empty() && key != "page" && key != "page_size"
        })
        .collect();
    let link = |n: u64| {
        let mut args = kept.clone();
        let position = format!("page={n}&page_size={}", q.page_size);
        args.push(&position);
        format!("{}?{}", resource_url(base, &p.rid, "data/"), args.join("&"))
    };
    let shown = q.page.saturating_mul(q.page_size);
    let mut meta = json!({"page": q.page, "page_size": q.page_size});
    if !q.is_aggregate() {
        meta["total"] = json!(page.total);
    }
    let links = json!({
        "profile": resource_url(base, &p.rid, "profile/"),
        "swagger": resource_url(base, &p.rid, "swagger/"),
        "next": (shown < page.total).then(|| link(q.page + 1)),
        "prev": (q.page > 1).then(|| link(q.page - 1)),
    });
    Ok(Bytes::from(encode::page(&data, &links, &meta)?))
}

/// The whole filtered result as CSV, `__id` first, headers as published.
#[utoipa::path(get, path = "/api/resources/{rid}/data/csv/", tag = "tabular", description = DATA_DOC,
    params(
        ("rid" = String, Path, description = "The portal's resource id a dataset file declares, or the dataset id"),
        ExportParams,
    ),
    responses(
        (status = 200, description = "The rows as CSV (api-tabular refuses more than 50,000 rows; qanat streams them all)", content_type = "text/csv", body = String),
        (status = 304, description = "Not modified"),
        (status = 400, description = "A parameter that cannot be read", body = TabularErrors),
        (status = 404, description = "No such resource", body = TabularErrors),
        (status = 503, description = "Over the deadline or memory budget, or no data yet", body = TabularErrors),
    ))]
pub async fn csv(
    state: State<AppState>,
    rid: Path<String>,
    raw: RawQuery,
    headers: HeaderMap,
) -> Answer<Response> {
    export(state, rid, raw, headers, Format::Csv).await
}

/// The whole filtered result as one JSON array of rows.
#[utoipa::path(get, path = "/api/resources/{rid}/data/json/", tag = "tabular", description = DATA_DOC,
    params(
        ("rid" = String, Path, description = "The portal's resource id a dataset file declares, or the dataset id"),
        ExportParams,
    ),
    responses(
        (status = 200, description = "The rows as a JSON array of objects", body = Vec<Object>),
        (status = 304, description = "Not modified"),
        (status = 400, description = "A parameter that cannot be read", body = TabularErrors),
        (status = 404, description = "No such resource", body = TabularErrors),
        (status = 503, description = "Over the deadline or memory budget, or no data yet", body = TabularErrors),
    ))]
pub async fn json_export(
    state: State<AppState>,
    rid: Path<String>,
    raw: RawQuery,
    headers: HeaderMap,
) -> Answer<Response> {
    export(state, rid, raw, headers, Format::JsonArray).await
}

async fn export(
    State(state): State<AppState>,
    Path(rid): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    format: Format,
) -> Answer<Response> {
    let raw = raw.unwrap_or_default();
    let p = prepare(&state, &rid, &raw, format, "").await?;
    if not_modified(&headers, &p.etag) {
        return Ok(not_modified_response(&p.etag, false));
    }
    let (content_type, ext) = match format {
        Format::Csv => ("text/csv", "csv"),
        _ => ("application/json", "json"),
    };
    let download = Download {
        etag: &p.etag,
        pinned: false,
        content_type,
        filename: format!("{rid}.{ext}"),
    };
    let relabel = Arc::new(relabel(&p.loaded.manifest, &p.query));
    let writer = BodyWriter::new(format, Some(relabel));
    Ok(download
        .respond(&state, &p.loaded, &p.query, writer)
        .await?)
}

/// The dataset's typed OpenAPI document (api-tabular serves its own as YAML; JSON is YAML too).
#[utoipa::path(get, path = "/api/resources/{rid}/swagger/", tag = "tabular",
    params(("rid" = String, Path, description = "The portal's resource id a dataset file declares, or the dataset id")),
    responses(
        (status = 200, description = "An OpenAPI 3.1 document", body = Object),
        (status = 404, description = "No such resource", body = TabularErrors),
        (status = 503, description = "The resource has no data yet", body = TabularErrors),
    ))]
pub async fn swagger(
    State(state): State<AppState>,
    Path(rid): Path<String>,
) -> Answer<Json<Value>> {
    let entry = state.catalog.resource(&rid)?;
    state.catalog.opened(&entry).await?;
    Ok(Json(super::datasets::dataset_document(&state, &entry)?))
}

/// Which resources accept aggregations: all of them here.
#[utoipa::path(get, path = "/api/aggregation-exceptions/", tag = "tabular",
    responses((status = 200, description = "`allowed` is true: every resource may be aggregated", body = Object,
        example = json!({"allowed": true, "exceptions": []}))))]
pub async fn aggregation_exceptions() -> Json<Value> {
    Json(json!({"allowed": true, "exceptions": []}))
}

/// api-tabular's health answer.
#[utoipa::path(get, path = "/health/", tag = "tabular",
    responses((status = 200, description = "The process is up", body = Object,
        example = json!({"status": "ok", "version": "0.1.0", "uptime_since": "2026-11-26T10:00:00+00:00"}))))]
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_since": state.started_at.to_rfc3339(),
    }))
}
