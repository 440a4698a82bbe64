//! `GET /metrics`: the result cache's and the catalog's counters in the Prometheus text format.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// The series `/metrics` gives besides the pages by route: name, type and help, in the order of
/// their values in [`metrics`].
const SERIES: [(&str, &str, &str); 21] = [
    (
        "qanat_cache_lookups_total",
        "counter",
        "Result cache lookups.",
    ),
    (
        "qanat_cache_hits_total",
        "counter",
        "Lookups answered from the cache (or a computation under way).",
    ),
    (
        "qanat_cache_misses_total",
        "counter",
        "Lookups whose body was computed.",
    ),
    (
        "qanat_cache_evictions_total",
        "counter",
        "Bodies evicted to stay within the budget.",
    ),
    (
        "qanat_cache_replays_total",
        "counter",
        "Hits answered before routing: the URL and host of an earlier answer, on a version still served.",
    ),
    ("qanat_cache_entries", "gauge", "Bodies in the cache."),
    (
        "qanat_cache_bytes",
        "gauge",
        "Bytes the cached bodies weigh.",
    ),
    (
        "qanat_cache_budget_bytes",
        "gauge",
        "The cache's byte budget (0: off).",
    ),
    ("qanat_datasets", "gauge", "Datasets in the catalog."),
    (
        "qanat_datasets_loaded",
        "gauge",
        "Datasets with a version being served.",
    ),
    (
        "qanat_datasets_resident",
        "gauge",
        "Datasets whose version is held decoded in memory.",
    ),
    (
        "qanat_resident_bytes",
        "gauge",
        "Bytes of the resident budget in use.",
    ),
    (
        "qanat_page_cache_hits_total",
        "counter",
        "Decoded Parquet blocks found in the page cache.",
    ),
    (
        "qanat_page_cache_misses_total",
        "counter",
        "Decoded Parquet blocks read because the page cache did not hold them.",
    ),
    (
        "qanat_page_cache_bytes",
        "gauge",
        "Bytes the page cache's decoded blocks weigh.",
    ),
    (
        "qanat_page_cache_budget_bytes",
        "gauge",
        "The page cache's byte budget (0: off).",
    ),
    (
        "qanat_queries_running",
        "gauge",
        "Queries computing now (at most server.max_queries).",
    ),
    (
        "qanat_queries_waited_total",
        "counter",
        "Queries that waited for a turn among server.max_queries.",
    ),
    (
        "qanat_queries_shed_total",
        "counter",
        "Queries answered 503 because no turn came within server.queue_wait_ms.",
    ),
    (
        "qanat_rate_limited_total",
        "counter",
        "Requests answered 429: over their client's rate.",
    ),
    (
        "qanat_rate_limited_clients",
        "gauge",
        "Clients with a rate-limit bucket (those not seen lately are forgotten).",
    ),
];

/// Counters in the Prometheus text exposition format (version 0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let c = state.cache.stats().await;
    let currents: Vec<_> = state
        .catalog
        .entries()
        .iter()
        .filter_map(|e| e.current())
        .collect();
    let loaded = currents.len();
    let resident = currents.iter().filter(|l| l.resident.is_some()).count();
    let pc = state.executor.page_cache().stats();
    let gate = state.executor.gate();
    let (waited, shed) = gate.counts();
    let values: [u64; SERIES.len()] = [
        c.lookups,
        c.hits,
        c.misses,
        c.evictions,
        c.replays,
        c.entries,
        c.bytes,
        c.budget,
        state.catalog.ids().len() as u64,
        loaded as u64,
        resident as u64,
        state.executor.budget().used(),
        pc.hits,
        pc.misses,
        pc.bytes,
        pc.budget,
        gate.running() as u64,
        waited,
        shed,
        state.rates.as_ref().map_or(0, |r| r.limited()),
        state.rates.as_ref().map_or(0, |r| r.clients() as u64),
    ];
    let mut out = String::new();
    for ((name, kind, help), value) in SERIES.iter().zip(values) {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP qanat_pages_total JSON pages answered, by how they ran.\n# TYPE qanat_pages_total counter"
    );
    let pages = state.executor.pages_by_route();
    for (route, n) in crate::query::executor::ROUTES.iter().zip(pages) {
        let _ = writeln!(out, "qanat_pages_total{{route=\"{route}\"}} {n}");
    }
    let mut resp = out.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
