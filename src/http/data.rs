//! The data routes: a page of rows as JSON, and the whole (or paged) result streamed as CSV or
//! NDJSON.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{base_url, etag, not_modified, not_modified_response, set_cache_headers};
use crate::catalog::Loaded;
use crate::encode::{self, Format};
use crate::error::{Error, Problem, Result};
use crate::query::BatchStream;
use crate::query::params::{self, DataQuery};
use crate::query::plan::plan;
use crate::state::AppState;

/// A page of rows (documentation of the body the handler writes directly).
#[derive(Debug, Serialize, ToSchema)]
pub struct DataPage {
    /// Rows as objects keyed by column name.
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<Value>,
    pub links: PageLinks,
    pub meta: PageMeta,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PageLinks {
    #[serde(rename = "self")]
    pub self_: String,
    pub next: Option<String>,
    pub prev: Option<String>,
    pub profile: String,
    pub openapi: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PageMeta {
    pub page: u64,
    pub page_size: u64,
    /// Rows (or groups) matching the filters, exactly.
    pub total: u64,
    pub version: String,
}

/// What the data routes share: the version, the parsed query, the ETag.
struct Prepared {
    loaded: std::sync::Arc<Loaded>,
    query: DataQuery,
    etag: String,
}

fn prepare(state: &AppState, id: &str, raw: &str, format: Format, base: &str) -> Result<Prepared> {
    let loaded = state.catalog.loaded(id)?;
    let query = params::parse(raw, &loaded.manifest.schema, &state.settings.limits)?;
    let page = (format == Format::Json || query.paged).then_some(query.page);
    let canonical = query.query_string(page);
    // JSON bodies carry absolute links, so the base URL is part of what they depend on.
    let etag = etag(&[
        id,
        &loaded.manifest.version,
        format.name(),
        &canonical,
        base,
    ]);
    Ok(Prepared {
        loaded,
        query,
        etag,
    })
}

/// A page of rows as JSON, with exact `meta.total` and links that repeat the filters.
#[utoipa::path(get, path = "/api/datasets/{id}/data", tag = "data",
    params(
        ("id" = String, Path, description = "Dataset id"),
        ("page" = Option<u64>, Query, description = "1-based page (default 1)"),
        ("page_size" = Option<u64>, Query, description = "Rows a page (default 20, at most 1000 unless configured)"),
        ("columns" = Option<String>, Query, description = "Columns to return, comma-separated, in this order"),
        ("filters" = Option<Object>, Query, style = Form, explode, description = FILTERS_DOC),
    ),
    responses(
        (status = 200, description = "A page of rows", body = DataPage),
        (status = 304, description = "Not modified (If-None-Match matched the ETag)"),
        (status = 400, description = "Unknown column, operator or parameter, or a value that does not parse", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dataset", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The query ran past its deadline or memory budget", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let raw = raw.unwrap_or_default();
    let base = base_url(&headers, &state.settings);
    let p = prepare(&state, &id, &raw, Format::Json, &base)?;
    if not_modified(&headers, &p.etag) {
        return Ok(not_modified_response(&p.etag));
    }
    let key = p.etag.clone();
    let body = state
        .cache
        .get_or_compute(key, render_page(&state, &id, &base, &p))
        .await?;
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_cache_headers(resp.headers_mut(), &p.etag);
    Ok(resp)
}

async fn render_page(state: &AppState, id: &str, base: &str, p: &Prepared) -> Result<Bytes> {
    let m = &p.loaded.manifest;
    let q = &p.query;
    let df = state.engine.read(p.loaded.table.clone())?;
    let planned = plan(df, q, &m.schema, true)?;
    let rows = state.engine.collect(planned.rows);
    let total = async {
        match planned.total {
            Some(df) => state.engine.count(df).await,
            None => Ok(m.rows),
        }
    };
    let (batches, total) = tokio::try_join!(rows, total)?;
    let data = encode::json_array(&batches)?;
    let path = format!("{base}/api/datasets/{id}/data");
    let shown = q.offset()? as u64 + q.page_size;
    // Links are written from the canonical query, so equal ETags always mean equal bodies.
    let link = |page: u64| format!("{path}?{}", q.query_string(Some(page)));
    let links = json!({
        "self": link(q.page),
        "next": (shown < total).then(|| link(q.page + 1)),
        "prev": (q.page > 1).then(|| link(q.page - 1)),
        "profile": format!("{base}/api/datasets/{id}/profile"),
        "openapi": format!("{base}/openapi.json"),
    });
    let meta =
        json!({"page": q.page, "page_size": q.page_size, "total": total, "version": m.version});
    let mut out = Vec::with_capacity(data.len() + 512);
    out.extend_from_slice(b"{\"data\":");
    out.extend_from_slice(&data);
    out.extend_from_slice(b",\"links\":");
    serde_json::to_writer(&mut out, &links).map_err(Error::internal)?;
    out.extend_from_slice(b",\"meta\":");
    serde_json::to_writer(&mut out, &meta).map_err(Error::internal)?;
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// The filtered result as CSV, streamed; the whole result unless `page`/`page_size` is given.
#[utoipa::path(get, path = "/api/datasets/{id}/data.csv", tag = "data",
    params(
        ("id" = String, Path, description = "Dataset id"),
        ("page" = Option<u64>, Query, description = "1-based page; without page or page_size the whole result"),
        ("page_size" = Option<u64>, Query, description = "Rows a page"),
        ("columns" = Option<String>, Query, description = "Columns to return, comma-separated, in this order"),
        ("filters" = Option<Object>, Query, style = Form, explode, description = FILTERS_DOC),
    ),
    responses(
        (status = 200, description = "Rows as CSV with a header line", content_type = "text/csv", body = String),
        (status = 304, description = "Not modified"),
        (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dataset", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Over the deadline or memory budget", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn csv(
    state: State<AppState>,
    id: Path<String>,
    raw: RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    export(state, id, raw, headers, Format::Csv).await
}

/// The filtered result as newline-delimited JSON, streamed.
#[utoipa::path(get, path = "/api/datasets/{id}/data.ndjson", tag = "data",
    params(
        ("id" = String, Path, description = "Dataset id"),
        ("page" = Option<u64>, Query, description = "1-based page; without page or page_size the whole result"),
        ("page_size" = Option<u64>, Query, description = "Rows a page"),
        ("columns" = Option<String>, Query, description = "Columns to return, comma-separated, in this order"),
        ("filters" = Option<Object>, Query, style = Form, explode, description = FILTERS_DOC),
    ),
    responses(
        (status = 200, description = "One JSON object a line", content_type = "application/x-ndjson", body = String),
        (status = 304, description = "Not modified"),
        (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dataset", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Over the deadline or memory budget", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ndjson(
    state: State<AppState>,
    id: Path<String>,
    raw: RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    export(state, id, raw, headers, Format::Ndjson).await
}

async fn export(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    format: Format,
) -> Result<Response> {
    let raw = raw.unwrap_or_default();
    // Exports carry no links, so their ETag does not depend on the host asked.
    let p = prepare(&state, &id, &raw, format, "")?;
    if not_modified(&headers, &p.etag) {
        return Ok(not_modified_response(&p.etag));
    }
    let df = state.engine.read(p.loaded.table.clone())?;
    let planned = plan(df, &p.query, &p.loaded.manifest.schema, p.query.paged)?;
    let stream = state.engine.stream(planned.rows).await?;
    let body = Body::from_stream(encoded(stream, format));
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) =
        HeaderValue::from_str(&format!("attachment; filename=\"{id}.{}\"", format.name()))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    set_cache_headers(h, &p.etag);
    Ok(resp)
}

/// Encodes batches as they arrive. An error after the status line was sent can only cut the
/// body short; it is logged and the stream ends with an error so the client sees a broken
/// transfer, not a complete-looking file.
fn encoded(
    stream: BatchStream,
    format: Format,
) -> impl futures::Stream<Item = Result<Bytes>> + Send {
    futures::stream::unfold(
        (stream, true, false),
        move |(mut stream, first, failed)| async move {
            if failed {
                return None;
            }
            let chunk = match stream.next().await {
                None if first && format == Format::Csv => {
                    // An empty result still gets its header line.
                    let empty = arrow::record_batch::RecordBatch::new_empty(stream.schema.clone());
                    encode::csv(&empty, true)
                }
                None => return None,
                Some(Err(e)) => {
                    tracing::error!(error = %e, "export failed mid-stream");
                    Err(e)
                }
                Some(Ok(batch)) => match format {
                    Format::Csv => encode::csv(&batch, first),
                    _ => encode::ndjson(&batch),
                },
            };
            let failed = chunk.is_err();
            Some((chunk.map(Bytes::from), (stream, false, failed)))
        },
    )
}

const FILTERS_DOC: &str = "Filters, sorts and aggregations, each `column__operator=value`: \
`exact`, `differs`, `in` and `notin` (comma-separated; quote a value holding a comma), \
`contains` and `notcontains` (case-insensitive, string columns), `less` and `greater` (inclusive), \
`strictly_less` and `strictly_greater`, `isnull` and `isnotnull` (no value), `sort=asc|desc` \
(several apply in order; nulls last), `groupby` (no value) and `count`, `sum`, `avg`, `min`, `max` \
(output named `column__aggregate`). Values parse as the column's type: numbers with `.`, dates \
`YYYY-MM-DD`, datetimes `YYYY-MM-DDTHH:MM:SS`, booleans `true`/`false`. Negative filters keep \
rows whose value is null.";
