//! `GET /health`: answers while the process runs, whatever queries are doing.

use axum::Json;
use serde_json::{Value, json};

/// Liveness: `200` while the process runs.
#[utoipa::path(get, path = "/health", tag = "service",
    responses((status = 200, description = "The process is up", body = Object, example = json!({"status": "ok"}))))]
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
