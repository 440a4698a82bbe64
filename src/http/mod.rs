//! The HTTP surface, one file per feature, and the router that joins them.

pub mod admin;
pub mod ckan;
pub mod data;
pub mod datasets;
pub mod explorer;
pub mod gtfs;
pub mod guard;
pub mod health;
pub mod listen;
pub mod metrics;
pub mod replay;
pub mod tabular;

use axum::Router;
use axum::http::Method;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{Any, CorsLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::{Config, SwaggerUi, Url};

use crate::config::Settings;
use crate::error::problem_response;
use crate::openapi;
use crate::state::AppState;

/// The routes and the OpenAPI operations, from the same handlers.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(datasets::list))
        .routes(routes!(datasets::get))
        .routes(routes!(datasets::profile))
        .routes(routes!(datasets::openapi))
        .routes(routes!(data::page))
        .routes(routes!(data::csv))
        .routes(routes!(data::ndjson))
        .routes(routes!(data::parquet))
        .routes(routes!(data::arrow))
        .routes(routes!(data::geojson))
        .routes(routes!(gtfs::departures))
        .routes(routes!(gtfs::arrivals))
        .routes(routes!(gtfs::route_stops))
        .routes(routes!(health::health))
        .routes(routes!(metrics::metrics))
        .routes(routes!(tabular::meta))
        .routes(routes!(tabular::profile))
        .routes(routes!(tabular::swagger))
        .routes(routes!(tabular::data))
        .routes(routes!(tabular::csv))
        .routes(routes!(tabular::json_export))
        .routes(routes!(tabular::aggregation_exceptions))
        .routes(routes!(tabular::health))
}

/// The OpenAPI document of a catalog with these dataset and resource ids, as `qanat openapi`
/// prints it and `/openapi.json` serves it.
pub fn openapi_document(
    ids: &[String],
    rids: &[String],
    limits: &crate::config::Limits,
) -> utoipa::openapi::OpenApi {
    let (_, api) = api_router().split_for_parts();
    openapi::finish(api, ids, rids, limits)
}

/// The whole application: API routes, `/openapi.json`, `/docs` (with every dataset's own
/// document to switch to), problem+json for unknown routes and for panics.
pub fn router(state: AppState) -> Router {
    let (mut routes, _) = api_router().split_for_parts();
    let ids = state.catalog.ids();
    if state.admin.is_some() {
        routes = routes.merge(admin::routes());
    }
    routes
        .merge(ckan_routes())
        .merge(explorer::routes())
        .route("/openapi.json", axum::routing::get(openapi_json))
        .merge(docs(&ids))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(panicked))
        .layer(cors())
        .layer(axum::extract::DefaultBodyLimit::max(
            state.settings.server.max_body_bytes,
        ))
        .with_state(state)
}

/// The application as it is served: [`router`] behind the replay of repeated requests from the
/// result cache, behind the guard (request ids, size and rate limits, security headers), which
/// must stay outermost: a replayed answer is limited and marked like any other.
pub type App = guard::Guard<replay::Replay<Router>>;

pub fn service(state: AppState) -> App {
    let replay = replay::Replay::new(router(state.clone()), state.clone());
    guard::Guard::new(replay, &state)
}

/// CKAN's action API and DataStore dump, which follow CKAN's documentation rather than this
/// API's OpenAPI document.
fn ckan_routes() -> Router<AppState> {
    use axum::routing::get;
    let action = get(ckan::action).post(ckan::action);
    Router::new()
        .route("/api/3/action/{action}", action.clone())
        .route("/api/action/{action}", action)
        .route("/datastore/dump/{rid}", get(ckan::dump))
}

/// The OpenAPI document of the catalog as it is now (its dataset and resource ids are enums),
/// written again only after the dataset files were read again.
async fn openapi_json(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let generation = state.catalog.generation();
    let cached = state.openapi.lock().clone();
    let body = match cached {
        Some((g, body)) if g == generation => body,
        _ => {
            let doc = openapi_document(
                &state.catalog.ids(),
                &state.catalog.resource_ids(),
                &state.settings.limits,
            );
            let body = match doc.to_json() {
                Ok(text) => bytes::Bytes::from(text),
                Err(e) => return crate::error::Error::from(e).into_response(),
            };
            *state.openapi.lock() = Some((generation, body.clone()));
            body
        }
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Datasets listed by name in the `/docs` menu; the others' documents are at
/// `/api/datasets/{id}/openapi.json` all the same.
const DOCS_MENU_DATASETS: usize = 100;

/// Swagger UI at `/docs`, offline (its files are compiled in), with a menu of the global
/// document and the first datasets' own.
fn docs(ids: &[String]) -> SwaggerUi {
    // Swagger UI's configuration borrows its names for the life of the process; the router is
    // built once per process, so these few strings are leaked once.
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut urls = vec![Url::with_primary(
        "qanat: every dataset",
        "/openapi.json",
        true,
    )];
    for id in ids.iter().take(DOCS_MENU_DATASETS) {
        urls.push(Url::new(
            leak(format!("dataset {id}")),
            leak(format!("/api/datasets/{id}/openapi.json")),
        ));
    }
    SwaggerUi::new("/docs").config(Config::new(urls))
}

/// Every route is public and read-only: any origin may read it from a browser, validators and
/// export file names included, and preflights are answered here.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        // POST for CKAN's action API, whose clients send JSON bodies.
        .allow_methods([Method::GET, Method::HEAD, Method::POST])
        .allow_headers([header::IF_NONE_MATCH, header::ACCEPT, header::CONTENT_TYPE])
        .expose_headers([header::ETAG, header::CONTENT_DISPOSITION])
        .max_age(std::time::Duration::from_secs(86_400))
}

async fn not_found(uri: axum::http::Uri) -> Response {
    problem_response(
        StatusCode::NOT_FOUND,
        "urn:qanat:problem:not-found",
        format!(
            "no route `{}`; the API is described at /openapi.json and /docs",
            uri.path()
        ),
    )
}

async fn method_not_allowed() -> Response {
    problem_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "urn:qanat:problem:method-not-allowed",
        "this route answers GET only (CKAN's action API also POST)".into(),
    )
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    problem_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "urn:qanat:problem:internal",
        "the server failed to answer this request; the failure was logged".into(),
    )
}

/// The scheme and host links are built on: the configured public URL, else the request's
/// `Host` (when it looks like a host), else the listening address.
pub fn base_url(headers: &HeaderMap, settings: &Settings) -> String {
    if let Some(url) = &settings.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    match host {
        Some(h) => format!("http://{h}"),
        None => format!("http://{}", settings.addr),
    }
}

/// A strong ETag from everything that determines a body.
pub fn etag(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    format!("\"{}\"", hex::encode(&h.finalize()[..16]))
}

/// Whether `If-None-Match` names this ETag (or `*`).
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
}

/// `304 Not Modified` with the validator repeated.
pub fn not_modified_response(etag: &str, pinned: bool) -> Response {
    let mut resp = StatusCode::NOT_MODIFIED.into_response();
    set_cache_headers(resp.headers_mut(), etag, pinned);
    resp
}

/// A response that names its version (pinned path or cursor) can never change: caches may keep
/// it for a year without asking. Others may be stored but are revalidated, which costs a `304`
/// until a new version changes the ETag.
pub fn set_cache_headers(headers: &mut HeaderMap, etag: &str, pinned: bool) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if pinned {
            "public, max-age=31536000, immutable"
        } else {
            "public, no-cache"
        }),
    );
}
