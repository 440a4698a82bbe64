//! The crate's one error type and its mapping to HTTP statuses and RFC 9457 problem documents.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use datafusion::error::DataFusionError;
use serde::Serialize;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in qanat. Each variant's doc names the HTTP status it becomes;
/// [`Error::status`] is the one place that mapping lives.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `400`: the request is malformed; the message says what was wrong and what would be right.
    #[error("{0}")]
    BadRequest(String),
    /// `404`: no such dataset or route.
    #[error("{0}")]
    NotFound(String),
    /// `413`: the request asks for more than the configured limits allow.
    #[error("{0}")]
    TooLarge(String),
    /// `410`: a cursor or pinned URL names a version of the dataset that is no longer kept.
    #[error("{0}")]
    Gone(String),
    /// `503`: the query ran past its deadline or its memory budget; the server itself is fine.
    #[error("{0}")]
    Overloaded(String),
    /// `503`: the dataset exists but has no version to serve (never ingested, or its ingest failed).
    #[error("{0}")]
    Unavailable(String),
    /// `400` when met while parsing a dataset file or the configuration (never from HTTP input).
    #[error("{0}")]
    Config(String),
    /// `500` from a request; at the command line, a failed ingest with its reason.
    #[error("ingest of `{id}` failed: {reason}")]
    Ingest { id: String, reason: String },
    /// `500`: the query engine failed for a reason that is not the request's fault.
    #[error("query engine: {0}")]
    Engine(#[from] DataFusionError),
    /// `500`: object storage failed.
    #[error("storage: {0}")]
    Storage(#[from] object_store::Error),
    /// `500`: local I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// `500`: anything else internal.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }

    /// Classifies an engine error: resource exhaustion is the server's limit (503), plan and
    /// schema errors are the request's fault (400), everything else is ours (500).
    pub fn from_engine(err: DataFusionError) -> Self {
        match err.find_root() {
            DataFusionError::ResourcesExhausted(_) => Error::Overloaded(
                "the query needs more memory than its budget allows; add filters or select fewer columns".into(),
            ),
            DataFusionError::Plan(_) | DataFusionError::SchemaError(_, _) => {
                Error::BadRequest(format!("the query cannot be planned: {}", err.find_root()))
            }
            _ => Error::Engine(err),
        }
    }

    /// The one mapping from error to HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) | Error::Config(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Gone(_) => StatusCode::GONE,
            Error::Overloaded(_) | Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Ingest { .. }
            | Error::Engine(_)
            | Error::Storage(_)
            | Error::Io(_)
            | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn problem_type(&self) -> &'static str {
        match self {
            Error::BadRequest(_) | Error::Config(_) => "urn:qanat:problem:bad-request",
            Error::NotFound(_) => "urn:qanat:problem:not-found",
            Error::TooLarge(_) => "urn:qanat:problem:over-limit",
            Error::Gone(_) => "urn:qanat:problem:version-gone",
            Error::Overloaded(_) => "urn:qanat:problem:overloaded",
            Error::Unavailable(_) => "urn:qanat:problem:unavailable",
            _ => "urn:qanat:problem:internal",
        }
    }
}

/// The RFC 9457 body every error response carries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URN naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What was wrong, and what would be right.
    pub detail: String,
}

pub const PROBLEM_JSON: &str = "application/problem+json";

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = if status.is_server_error()
            && !matches!(self, Error::Overloaded(_) | Error::Unavailable(_))
        {
            // The detail of an internal failure goes to the log, never to the client.
            tracing::error!(error = %self, "request failed");
            "the server failed to answer this request; the failure was logged".to_string()
        } else {
            self.to_string()
        };
        problem_response(status, self.problem_type(), detail)
    }
}

/// Builds a problem+json response; also used for errors raised outside handlers (404 routes, panics).
pub fn problem_response(status: StatusCode, kind: &str, detail: String) -> Response {
    let body = Problem {
        kind: kind.to_string(),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail,
    };
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    resp
}
