//! The explorer: `GET /` (the catalog) and `GET /datasets/{id}` (a dataset's rows, filters,
//! facets, search, column charts and the API call behind what is shown), server-rendered HTML
//! over the same functions the API answers with, plus a little script and a stylesheet served
//! from the binary (no CDN: it works offline). Every value is escaped by the templates.
//!
//! The explorer's URL of a dataset carries the data route's query string as it is, so what a
//! page shows is always exactly `/api/datasets/{id}/data?` the same query.

mod query;
mod views;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{base_url, data, datasets};
use crate::error::Error;
use crate::state::AppState;
use query::Params;

const CSS: &str = include_str!("explorer.css");
const JS: &str = include_str!("explorer.js");

/// The explorer's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(catalog))
        .route("/datasets/{id}", get(dataset))
        .route("/assets/explorer.css", get(|| asset(CSS, "text/css")))
        .route("/assets/explorer.js", get(|| asset(JS, "text/javascript")))
}

/// A compiled-in asset, cached by browsers for a day.
async fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    resp
}

fn html(status: StatusCode, markup: maud::Markup) -> Response {
    let mut resp = (status, markup.into_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

/// The catalog: search, producers, keywords, the datasets with their rows and last update.
async fn catalog(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let base = base_url(&headers, &state.settings);
    let params = Params::parse(raw.as_deref().unwrap_or(""));
    let mut asked = params.clone();
    if asked.get("page_size").is_none() {
        asked.set("page_size", "50");
    }
    match datasets::catalog_page(&state, &asked.to_query(), &base).await {
        Ok(list) => {
            let facets = views::CatalogFacets::of(&state);
            html(StatusCode::OK, views::catalog(&list, &params, &facets))
        }
        Err(e) => error_page(&e),
    }
}

/// A dataset: metadata, the rows the query asks for, facets, charts, the API call.
async fn dataset(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let base = base_url(&headers, &state.settings);
    let detail = match datasets::detail(&state, &id, &base).await {
        Ok(d) => d,
        Err(e) => return error_page(&e),
    };
    let params = Params::parse(raw.as_deref().unwrap_or("")).cleaned();
    // The suggested facets, unless the query names its own.
    let mut asked = params.clone();
    if asked.get("facets").is_none() && !detail.suggested_facets.is_empty() && !asked.aggregates() {
        asked.set("facets", &detail.suggested_facets.join(","));
    }
    let query = asked.to_query();
    let profile = state
        .catalog
        .loaded(&id)
        .ok()
        .map(|l| l.manifest.profile.clone());
    let page = match data::page_for(&state, &id, &query, &base).await {
        Ok(body) => serde_json::from_slice(&body).map_err(Error::from),
        Err(e) => Err(e),
    };
    let view = views::DatasetView {
        base: &base,
        detail: &detail,
        profile: profile.as_deref().unwrap_or_default(),
        params: &params,
        query: &query,
    };
    match page {
        Ok(page) => html(StatusCode::OK, views::dataset(&view, Ok(&page))),
        Err(e) => {
            let status = e.status();
            if status.is_server_error() {
                return error_page(&e);
            }
            html(status, views::dataset(&view, Err(&e.public_detail())))
        }
    }
}

/// A readable error page: what was wrong, and the way back to the catalog.
fn error_page(e: &Error) -> Response {
    html(e.status(), views::error(e.status(), &e.public_detail()))
}
