//! The data routes: a page of rows as JSON, and the whole (or paged) result streamed as CSV,
//! NDJSON, Parquet or an Arrow IPC stream (by the route's extension, or by `Accept` on the page
//! route).

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::replay::Replayable;
use super::{base_url, etag, not_modified, not_modified_response, set_cache_headers};
use crate::encode::{self, BodyWriter, Format};
use crate::error::{Error, Problem, Result};
use crate::query::facets::Counted;
use crate::query::params;
use crate::query::{BatchStream, Chunk, DataQuery, Loaded, Page};
use crate::state::AppState;
use std::sync::Arc;

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
    /// With `facets=`: each facet's counts, keyed as asked (`col`, `col:month`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facets: Option<std::collections::HashMap<String, FacetCounts>>,
}

/// What one facet found among the filtered rows.
#[derive(Debug, Serialize, ToSchema)]
pub struct FacetCounts {
    /// The most frequent values, most frequent first, then by value.
    pub values: Vec<FacetValue>,
    /// Rows whose value is not listed (null when truncated).
    pub others: Option<u64>,
    /// Rows with no value (null when truncated).
    pub nulls: Option<u64>,
    /// The count ran past its time budget (`limits.facet_timeout_ms`); nothing is listed.
    pub truncated: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FacetValue {
    /// A value of the column, or a month `YYYY-MM` or year `YYYY` when counted so.
    #[schema(value_type = Object)]
    pub value: Value,
    pub count: u64,
}

/// What the data routes share: the version, the parsed query, the ETag.
struct Prepared {
    id: String,
    loaded: Arc<Loaded>,
    query: DataQuery,
    etag: String,
    /// Whether the request names its version (`{id}@{version}` or a cursor): its body can
    /// then never change.
    pinned: bool,
}

/// Resolves the version (`{id}@{version}` in the path, the cursor's, or the current one), then
/// parses the query against that version's schema.
async fn prepare(
    state: &AppState,
    path_id: &str,
    raw: &str,
    format: Format,
    base: &str,
) -> Result<Prepared> {
    let v = state.catalog.resolve(path_id, raw).await?;
    let query = params::parse(raw, &v.loaded.manifest.schema, &state.settings.limits)?;
    let canonical = query.canonical(format == Format::Json || query.paged);
    // JSON bodies carry absolute links, so the base URL is part of what they depend on.
    let etag = etag(&[
        &v.id,
        &v.loaded.manifest.version,
        format.name(),
        &canonical,
        base,
        if v.in_path { "@" } else { "" },
    ]);
    Ok(Prepared {
        id: v.id,
        loaded: v.loaded,
        query,
        etag,
        pinned: v.pinned,
    })
}

/// A page of rows as JSON, with exact `meta.total` and links that repeat the filters.
#[utoipa::path(get, path = "/api/datasets/{id}/data", tag = "data",
    params(
        ("id" = String, Path, description = "Dataset id; `id@version` pins a version (see `GET /api/datasets/{id}` for those kept), and the response is then immutable"),
        ("page" = Option<u64>, Query, minimum = 1, description = "1-based page (default 1)"),
        ("page_size" = Option<u64>, Query, minimum = 1, description = "Rows a page (default 20, at most 1000 unless configured)"),
        ("cursor" = Option<String>, Query, description = "Opaque position written in `links.next`: the next page of the same query, on the same version, at the cost of a first page"),
        ("columns" = Option<String>, Query, description = "Columns to return, comma-separated, in this order"),
        ("or" = Option<String>, Query, description = OR_DOC),
        ("q" = Option<String>, Query, description = Q_DOC),
        ("q_sort" = Option<String>, Query, description = "`relevance` orders the rows a search found by relevance (not with sorts)"),
        ("near" = Option<String>, Query, description = NEAR_DOC),
        ("bbox" = Option<String>, Query, description = BBOX_DOC),
        ("facets" = Option<String>, Query, description = "Columns whose most frequent values among the filtered rows are counted in `meta.facets`, comma-separated; a date or datetime column by `col:month` or `col:year`; at most 10 unless configured"),
        ("facet_size" = Option<u64>, Query, minimum = 1, maximum = 100, description = "Values each facet lists (default 30)"),
        ("filters" = Option<Object>, Query, style = Form, explode, description = FILTERS_DOC),
    ),
    responses(
        (status = 200, description = "A page of rows", body = DataPage),
        (status = 304, description = "Not modified (If-None-Match matched the ETag)"),
        (status = 400, description = "Unknown column, operator or parameter, or a value that does not parse", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dataset", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The version named by the cursor or the path is no longer kept", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The query ran past its deadline or memory budget", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response> {
    let asked = headers.get(header::ACCEPT).and_then(|a| a.to_str().ok());
    if let Some(format) = asked.and_then(Format::accepted) {
        let mut resp = export(State(state), Path(id), RawQuery(raw), headers, format).await?;
        resp.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept"));
        return Ok(resp);
    }
    let raw = raw.unwrap_or_default();
    let base = base_url(&headers, &state.settings);
    let p = prepare(&state, &id, &raw, Format::Json, &base).await?;
    if not_modified(&headers, &p.etag) {
        return Ok(not_modified_response(&p.etag, p.pinned));
    }
    let key = p.etag.clone();
    let body = state
        .cache
        .get_or_compute(key, render_page(&state, &base, &p))
        .await?;
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    set_cache_headers(resp.headers_mut(), &p.etag, p.pinned);
    Replayable::new(&state, &p.etag, &p.loaded, p.pinned).mark(&mut resp);
    Ok(resp)
}

/// The JSON body of a page for a raw query string, as the page route answers it (cached the
/// same way): the rows the explorer shows.
pub(super) async fn page_for(state: &AppState, id: &str, raw: &str, base: &str) -> Result<Bytes> {
    let p = prepare(state, id, raw, Format::Json, base).await?;
    let key = p.etag.clone();
    state
        .cache
        .get_or_compute(key, render_page(state, base, &p))
        .await
}

/// The page and its facets, counted at the same time, the search resolved once for both.
async fn render_page(state: &AppState, base: &str, p: &Prepared) -> Result<Bytes> {
    let (executor, budget) = (&state.executor, state.settings.limits.facet_timeout());
    let q = executor.resolve(&p.loaded, &p.query).await?;
    let (page, facets) = tokio::join!(
        executor.page(&p.loaded, &q),
        executor.facets(&p.loaded, &q, budget)
    );
    page_body(base, p, page?, &facets)
}

/// `meta.facets`: for each facet, in the order asked, its values with their counts, the rows
/// with other values and with none, and whether it ran out of time.
fn facets_meta(facets: &[Counted], total: u64) -> Result<Value> {
    let mut meta = serde_json::Map::new();
    for f in facets {
        let values: Value = serde_json::from_slice(&encode::json_array(&f.values)?)?;
        let entry = match f.truncated {
            true => json!({"values": values, "others": null, "nulls": null, "truncated": true}),
            false => json!({
                "values": values,
                "others": f.others(total),
                "nulls": f.nulls,
                "truncated": false,
            }),
        };
        meta.insert(f.facet.text(), entry);
    }
    Ok(Value::Object(meta))
}

/// The JSON body of a page: rows, links that repeat the query, meta.
fn page_body(base: &str, p: &Prepared, page: Page, facets: &[Counted]) -> Result<Bytes> {
    let (m, q, id) = (&p.loaded.manifest, &p.query, &p.id);
    let data = encode::json_array(&page.batches)?;
    // A walk that started on a version stays on it: links of a pinned request name it.
    let path = if p.pinned {
        format!("{base}/api/datasets/{id}@{}/data", m.version)
    } else {
        format!("{base}/api/datasets/{id}/data")
    };
    // Links are written from the canonical query, so equal ETags always mean equal bodies.
    let link = |page: u64| format!("{path}?{}", q.query_string(Some(page)));
    let links = json!({
        "self": format!("{path}?{}", q.canonical(true)),
        "next": page.next.map(|c| format!("{base}/api/datasets/{id}/data?{}", q.cursor_string(&c))),
        "prev": (q.page > 1).then(|| link(q.page - 1)),
        "profile": format!("{base}/api/datasets/{id}/profile"),
        "openapi": format!("{base}/api/datasets/{id}/openapi.json"),
    });
    let mut meta = json!({"page": q.page, "page_size": q.page_size, "total": page.total, "version": m.version});
    if !facets.is_empty() {
        meta["facets"] = facets_meta(facets, page.total)?;
    }
    Ok(Bytes::from(encode::page(&data, &links, &meta)?))
}

/// A route streaming the filtered result in one format: its OpenAPI operation and handler.
macro_rules! export_route {
    ($(#[doc = $doc:literal])* $name:ident, $path:literal, $format:expr, $media:literal, $what:literal, $body:ty) => {
        $(#[doc = $doc])*
        #[utoipa::path(get, path = $path, tag = "data",
            params(
                ("id" = String, Path, description = "Dataset id; `id@version` pins a version (see `GET /api/datasets/{id}` for those kept), and the response is then immutable"),
                ("page" = Option<u64>, Query, minimum = 1, description = "1-based page; without page or page_size the whole result"),
                ("page_size" = Option<u64>, Query, minimum = 1, description = "Rows a page"),
                ("cursor" = Option<String>, Query, description = "Opaque position written in `links.next`: the next page of the same query, on the same version, at the cost of a first page"),
                ("columns" = Option<String>, Query, description = "Columns to return, comma-separated, in this order"),
                ("or" = Option<String>, Query, description = OR_DOC),
                ("q" = Option<String>, Query, description = Q_DOC),
                ("near" = Option<String>, Query, description = NEAR_DOC),
                ("bbox" = Option<String>, Query, description = BBOX_DOC),
                ("filters" = Option<Object>, Query, style = Form, explode, description = FILTERS_DOC),
            ),
            responses(
                (status = 200, description = $what, content_type = $media, body = $body),
                (status = 304, description = "Not modified"),
                (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
                (status = 404, description = "No such dataset", body = Problem, content_type = "application/problem+json"),
                (status = 410, description = "The version named by the cursor or the path is no longer kept", body = Problem, content_type = "application/problem+json"),
                (status = 503, description = "Over the deadline or memory budget", body = Problem, content_type = "application/problem+json"),
            ))]
        pub async fn $name(
            state: State<AppState>,
            id: Path<String>,
            raw: RawQuery,
            headers: HeaderMap,
        ) -> Result<Response> {
            export(state, id, raw, headers, $format).await
        }
    };
}

export_route!(
    /// The filtered result as CSV, streamed; the whole result unless `page`/`page_size` is given.
    csv, "/api/datasets/{id}/data.csv", Format::Csv, "text/csv",
    "Rows as CSV with a header line", String
);
export_route!(
    /// The filtered result as newline-delimited JSON, streamed.
    ndjson, "/api/datasets/{id}/data.ndjson", Format::Ndjson, "application/x-ndjson",
    "One JSON object a line", String
);
export_route!(
    /// The filtered result as a Parquet file, streamed a row group at a time.
    parquet, "/api/datasets/{id}/data.parquet", Format::Parquet, "application/vnd.apache.parquet",
    "A Parquet file of the rows (the columns' types kept; row groups of at most 65,536 rows, LZ4)",
    Vec<u8>
);
export_route!(
    /// The filtered result as a GeoJSON FeatureCollection, streamed: each row a Feature with its
    /// point, its other columns as properties.
    geojson, "/api/datasets/{id}/data.geojson", Format::GeoJson, "application/geo+json",
    "A GeoJSON FeatureCollection (RFC 7946): each row a Feature whose geometry is its point (null where it has none) and whose properties are its other columns; on datasets with coordinates",
    Object
);
export_route!(
    /// The filtered result as an Arrow IPC stream, streamed a batch at a time.
    arrow, "/api/datasets/{id}/data.arrow", Format::Arrow, "application/vnd.apache.arrow.stream",
    "The rows as an Arrow IPC stream (the columns' types kept)", Vec<u8>
);

async fn export(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    format: Format,
) -> Result<Response> {
    let raw = raw.unwrap_or_default();
    // Exports carry no links, so their ETag does not depend on the host asked.
    let p = prepare(&state, &id, &raw, format, "").await?;
    if not_modified(&headers, &p.etag) {
        return Ok(not_modified_response(&p.etag, p.pinned));
    }
    let download = Download {
        etag: &p.etag,
        pinned: p.pinned,
        content_type: format.content_type(),
        filename: format!("{}.{}", p.id, format.name()),
    };
    if format == Format::GeoJson {
        let (writer, query) = geojson_of(&p)?;
        return download.respond(&state, &p.loaded, &query, writer).await;
    }
    download
        .respond(&state, &p.loaded, &p.query, BodyWriter::new(format, None))
        .await
}

/// A GeoJSON writer over the dataset's point columns, and the query reading them whatever
/// `columns` asks (they become the geometry, not properties); a 400 for a dataset without.
fn geojson_of(p: &Prepared) -> Result<(BodyWriter, DataQuery)> {
    use crate::dataset::geo::GeoRole;
    let schema = &p.loaded.manifest.schema;
    let find = |role| schema.iter().find(|c| c.geo == Some(role));
    let (Some(lat), Some(lon)) = (find(GeoRole::Latitude), find(GeoRole::Longitude)) else {
        return Err(Error::bad_request(
            "this dataset has no coordinates, so no GeoJSON: no latitude and longitude columns were detected (name them in the dataset file's [geo] section); download it as CSV, NDJSON, Parquet or Arrow",
        ));
    };
    if p.query.is_aggregate() {
        return Err(Error::bad_request(
            "GeoJSON holds rows with their points, and this request aggregates them: drop `__groupby` and the aggregates, or ask for data.csv",
        ));
    }
    let mut query = p.query.clone();
    if let Some(columns) = &mut query.columns {
        for c in [&lat.name, &lon.name] {
            if !columns.contains(c) {
                columns.push(c.clone());
            }
        }
    }
    Ok((BodyWriter::geojson(&lat.name, &lon.name), query))
}

/// A streamed download: its validator and the headers it goes out with.
pub(super) struct Download<'a> {
    pub etag: &'a str,
    pub pinned: bool,
    pub content_type: &'static str,
    pub filename: String,
}

impl Download<'_> {
    /// The result streamed through `writer`, or the bytes kept from an earlier identical
    /// export: exports small enough are kept whole once streamed, and served from memory after.
    pub(super) async fn respond(
        self,
        state: &AppState,
        loaded: &Loaded,
        query: &DataQuery,
        writer: BodyWriter,
    ) -> Result<Response> {
        let body = match state.cache.get(self.etag).await {
            Some(bytes) => Body::from(bytes),
            None => {
                let stream = state.executor.stream(loaded, query).await?;
                let keep = Keep::new(&state.cache, self.etag);
                Body::from_stream(encoded(stream, writer, keep))
            }
        };
        let mut resp = (StatusCode::OK, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        let disposition = format!("attachment; filename=\"{}\"", self.filename);
        if let Ok(v) = HeaderValue::from_str(&disposition) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        set_cache_headers(h, self.etag, self.pinned);
        Replayable::new(state, self.etag, loaded, self.pinned).mark(&mut resp);
        Ok(resp)
    }
}

/// A copy of an export's bytes as they are sent, stored in the result cache once the export
/// completes, unless it grew past `limit` (then the copy is dropped at once).
struct Keep {
    cache: crate::cache::ResponseCache,
    key: String,
    limit: usize,
    kept: Vec<u8>,
}

impl Keep {
    fn new(cache: &crate::cache::ResponseCache, key: &str) -> Self {
        Keep {
            cache: cache.clone(),
            key: key.to_string(),
            limit: cache.entry_limit(),
            kept: Vec::new(),
        }
    }

    fn add(&mut self, chunk: &[u8]) {
        if self.limit == 0 {
            return;
        }
        if self.kept.len() + chunk.len() > self.limit {
            self.limit = 0;
            self.kept = Vec::new();
        } else {
            self.kept.extend_from_slice(chunk);
        }
    }

    async fn finish(self) {
        if self.limit > 0 {
            self.cache.insert(self.key, Bytes::from(self.kept)).await;
        }
    }
}

/// Encodes batches as they arrive. An error after the status line was sent can only cut the
/// body short; it is logged and the stream ends with an error so the client sees a broken
/// transfer, not a complete-looking file.
fn encoded(
    stream: BatchStream,
    writer: BodyWriter,
    keep: Keep,
) -> impl futures::Stream<Item = Result<Bytes>> + Send {
    futures::stream::unfold(
        (stream, Some(writer), Some(keep)),
        move |(mut stream, mut writer, mut keep)| async move {
            let w = writer.as_mut()?;
            let chunk = match stream.next_chunk().await {
                // Rows of a table in memory are written from it, not gathered first.
                Some(Ok(Chunk::Rows { table, rows })) => match w.rows(&table, &rows) {
                    Some(bytes) => Ok(bytes),
                    None => Chunk::Rows { table, rows }
                        .into_batch()
                        .and_then(|b| w.batch(&b)),
                },
                Some(Ok(Chunk::Batch(batch))) => w.batch(&batch),
                Some(Err(e)) => {
                    tracing::error!(error = %e, "export failed mid-stream");
                    Err(e)
                }
                None => {
                    let end = w.finish(&stream.schema);
                    if let (Ok(bytes), Some(k)) = (&end, keep.as_mut()) {
                        k.add(bytes);
                    }
                    if let (Ok(_), Some(k)) = (&end, keep.take()) {
                        k.finish().await;
                    }
                    return Some((end.map(Bytes::from), (stream, None, None)));
                }
            };
            match (&chunk, keep.as_mut()) {
                (Ok(bytes), Some(k)) => k.add(bytes),
                // A failed export is never kept, and ends here.
                _ => {
                    keep = None;
                    writer = None;
                }
            }
            Some((chunk.map(Bytes::from), (stream, writer, keep)))
        },
    )
}

const OR_DOC: &str = "A group of conditions of which any must hold, data.gouv.fr's syntax: \
`(col__op.value,col2__isnull,and(a__greater.1,b__less.5))`, with `and(…)` and `or(…)` nested (8 \
levels at most), lists as `col__in.(a,b)`, and a name or value holding `.` `,` `(` `)` or `\"` in \
double quotes (a quote inside doubled). Several `or` parameters, and the other filters, all hold \
together. Its conditions count toward the limit on filters.";

const NEAR_DOC: &str = "`latitude,longitude,metres` (datasets with coordinates): rows within that distance of the point, nearest first unless another sort is asked, each with its distance as `distance_m` (sortable by `distance_m__sort`)";
const BBOX_DOC: &str =
    "`min_lon,min_lat,max_lon,max_lat` (datasets with coordinates): rows whose point is in the box";
const Q_DOC: &str = "Full-text search: every word somewhere in the row's text columns, case, \
accents and Arabic diacritics ignored, Arabic alef forms, ta marbuta and alef maqsura as one; \
`col__search=words` for one column";

const FILTERS_DOC: &str = "Filters, sorts and aggregations, each `column__operator=value`: \
`exact`, `differs`, `in` and `notin` (comma-separated; quote a value holding a comma), \
`contains` and `notcontains` (case-insensitive, string columns), `less` and `greater` (inclusive), \
`strictly_less` and `strictly_greater`, `isnull` and `isnotnull` (no value), `sort=asc|desc` \
(several apply in order; nulls last), `search` (every word in that text column, as `q`), `groupby` (no value) and `count`, `sum`, `avg`, `min`, `max` \
(output named `column__aggregate`). Values parse as the column's type: numbers with `.`, dates \
`YYYY-MM-DD`, datetimes `YYYY-MM-DDTHH:MM:SS`, booleans `true`/`false`. Negative filters keep \
rows whose value is null.";
