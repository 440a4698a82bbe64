//! The operator's routes, behind keys ([`crate::keys`]): refresh a dataset now, harvest the
//! configured portals now, and see what is running and what failed. They exist only when
//! `server.admin_keys` is set; otherwise they are unknown routes like any other.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::ingest::Outcome;
use crate::state::AppState;

/// The admin routes, to merge into the application when keys are configured.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/datasets/{id}/refresh", post(refresh))
        .route("/api/harvest", post(harvest))
        .route("/api/admin/status", get(status))
}

/// The key of a request (`Authorization: Bearer KEY`, or the bare key as CKAN's clients send
/// it) checked against the configured hashes: `401` without one, `403` with a wrong one.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<()> {
    let Some(keys) = &state.admin else {
        return Err(Error::NotFound("admin routes are off".into()));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim())
        .map(|v| v.strip_prefix("Bearer ").map_or(v, str::trim))
        .filter(|v| !v.is_empty());
    let Some(key) = presented else {
        return Err(Error::Unauthorized(
            "admin routes need a key: send `Authorization: Bearer KEY`".into(),
        ));
    };
    if keys.accepts(key) {
        Ok(())
    } else {
        tracing::warn!("an admin request with a key that is not accepted");
        Err(Error::Forbidden(
            "this key is not one of the admin keys (server.admin_keys)".into(),
        ))
    }
}

#[derive(Deserialize)]
struct RefreshParams {
    /// Ingest even when the source and dataset file are unchanged.
    #[serde(default)]
    force: bool,
}

/// `POST /api/datasets/{id}/refresh[?force=true]`: ingests the dataset now and answers with the
/// report. A failed ingest leaves the previous version served, and says why.
async fn refresh(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<RefreshParams>,
    headers: HeaderMap,
) -> Result<Response> {
    authorize(&state, &headers)?;
    state.catalog.entry(&id)?;
    let results = state
        .catalog
        .ingest_and_load(std::slice::from_ref(&id), params.force)
        .await?;
    let (_, outcome) = results
        .into_iter()
        .find(|(d, _)| *d == id)
        .ok_or_else(|| Error::internal("an ingest of one dataset reported nothing"))?;
    let version = state
        .catalog
        .loaded(&id)
        .ok()
        .map(|l| l.manifest.version.clone());
    let body = match outcome {
        // Another process is ingesting it: its version is served once published.
        Err(e) if e.is_busy() => {
            let body = json!({
                "dataset": id,
                "outcome": "busy",
                "version": version,
                "error": e.to_string(),
            });
            return Ok((axum::http::StatusCode::CONFLICT, Json(body)).into_response());
        }
        Ok(o) => {
            let m = o.manifest();
            json!({
                "dataset": id,
                "outcome": match o { Outcome::Ingested(_) => "ingested", Outcome::Unchanged(_) => "unchanged" },
                "version": m.version,
                "rows": m.rows,
                "report": m.report,
                "summary": o.summary(),
            })
        }
        Err(e) => json!({
            "dataset": id,
            "outcome": "failed",
            "version": version,
            "error": e.to_string(),
        }),
    };
    Ok(Json(body).into_response())
}

/// `POST /api/harvest`: harvests every configured portal now, one after another.
async fn harvest(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    authorize(&state, &headers)?;
    if state.settings.harvest.is_empty() {
        return Err(Error::NotFound(
            "no portal to harvest: the configuration has no [[harvest]] entries".into(),
        ));
    }
    let mut portals = Vec::new();
    for source in &state.settings.harvest {
        portals.push(match state.catalog.harvest(&state.settings, source).await {
            Ok(lines) => json!({"portal": source.url, "ok": true, "report": lines}),
            Err(e) => json!({"portal": source.url, "ok": false, "error": e.to_string()}),
        });
    }
    Ok(Json(json!({"portals": portals, "datasets": state.catalog.ids().len()})).into_response())
}

/// `GET /api/admin/status`: ingests running, datasets whose last ingest failed, queries and
/// clients held back.
async fn status(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    authorize(&state, &headers)?;
    let running: Vec<Value> = state
        .catalog
        .running()
        .into_iter()
        .map(|(id, why, since)| json!({"dataset": id, "kind": why, "since": since.to_rfc3339()}))
        .collect();
    let entries = state.catalog.entries();
    let errors: Vec<Value> = entries
        .iter()
        .filter_map(|e| {
            let err = e.last_error()?;
            Some(json!({
                "dataset": e.spec.id,
                "error": err.to_string(),
                "serving": e.current().map(|l| l.manifest.version.clone()),
            }))
        })
        .collect();
    let gate = state.executor.gate();
    let (waited, shed) = gate.counts();
    Ok(Json(json!({
        "started_at": state.started_at.to_rfc3339(),
        "datasets": entries.len(),
        "serving": entries.iter().filter(|e| e.current().is_some()).count(),
        "ingests_running": running,
        "errors": errors,
        "queries": {"running": gate.running(), "waited": waited, "shed": shed},
        "rate_limited": state.rates.as_ref().map_or(0, |r| r.limited()),
    }))
    .into_response())
}
