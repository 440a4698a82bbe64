//! The crate's one error type and its mapping to HTTP statuses and RFC 9457 problem documents.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use datafusion::error::DataFusionError;
use serde::Serialize;
use std::sync::Arc;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in qanat. Each variant's doc names the HTTP status it becomes;
/// [`Error::status`] is the one place that mapping lives. Errors of other crates are kept as
/// sources, never flattened into text, so the log shows the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `400`: the request is malformed; the message says what was wrong and what would be right.
    #[error("{0}")]
    BadRequest(String),
    /// `400` (`409` on CKAN's action API, which names the field): one field of a request is
    /// invalid.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// `404`: no such dataset or route.
    #[error("{0}")]
    NotFound(String),
    /// `413`: more than the configured limits allow (a request, or a source over
    /// `ingest.max_download_bytes`).
    #[error("{0}")]
    TooLarge(String),
    /// `410`: a cursor or pinned URL names a version of the dataset that is no longer kept.
    #[error("{0}")]
    Gone(String),
    /// `503`: the query ran past its deadline or its memory budget; the server itself is fine.
    #[error("{0}")]
    Overloaded(String),
    /// `503` with `Retry-After`: the server is computing as many queries as it may at once and
    /// none finished within the wait; this one was shed.
    #[error("{0}")]
    Shed(String),
    /// `429` with `Retry-After`: the client made more requests than its rate allows.
    #[error("{detail}")]
    RateLimited { detail: String, retry_after: u64 },
    /// `401`: an admin route asked without a key.
    #[error("{0}")]
    Unauthorized(String),
    /// `403`: an admin route asked with a key that is not one of the configured keys.
    #[error("{0}")]
    Forbidden(String),
    /// `414`: the request target is longer than `server.max_uri_bytes`.
    #[error("{0}")]
    UriTooLong(String),
    /// `431`: the request headers are larger than `server.max_header_bytes`.
    #[error("{0}")]
    HeadersTooLarge(String),
    /// `409`: another process holds the dataset's ingest lease (it is ingesting it now).
    #[error("{0}")]
    Busy(String),
    /// `503`: object storage did not answer, or answered with server errors, through every
    /// retry (the description, for the log; clients are told the storage is unavailable).
    #[error("object storage unavailable: {0}")]
    StorageUnavailable(String),
    /// `503`: the dataset exists but has no version to serve (never ingested, or its ingest failed).
    #[error("{0}")]
    Unavailable(String),
    /// `400` when met while parsing a dataset file or the configuration (never from HTTP input).
    #[error("{0}")]
    Config(String),
    /// The status of its source: an ingest that failed, with the dataset it was for.
    #[error("ingest of `{id}` failed: {source}")]
    Ingest {
        id: String,
        #[source]
        source: Box<Error>,
    },
    /// `500`: the query engine failed for a reason that is not the request's fault. Engine
    /// errors reach this variant only through [`Error::from_engine`] (which `?` calls), so
    /// those that are the request's fault or a resource limit get their own status.
    #[error("query engine: {0}")]
    Engine(#[source] DataFusionError),
    /// `500`: Arrow failed on data it was given.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// `500`: the Parquet writer or reader failed.
    #[error("parquet: {0}")]
    Parquet(parquet::errors::ParquetError),
    /// `500`: object storage failed (other than by being unavailable).
    #[error("storage: {0}")]
    Storage(object_store::Error),
    /// `500`: local I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// `500`: the CSV reader or writer failed (I/O underneath; malformed rows are reported, not
    /// raised).
    #[error("reading the CSV: {0}")]
    Csv(#[from] csv::Error),
    /// `500`: a document could not be written or read as JSON.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// `500`: an HTTP client could not be set up.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    /// `500`: a task on another thread panicked or was cancelled.
    #[error("task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The status of the error it shares: one failure handed to every caller that waited on the
    /// same computation (identical requests computed once).
    #[error(transparent)]
    Shared(Arc<Error>),
    /// `500`: a broken invariant, described.
    #[error("{0}")]
    Internal(String),
}

impl From<DataFusionError> for Error {
    fn from(err: DataFusionError) -> Self {
        Error::from_engine(err)
    }
}

impl From<object_store::Error> for Error {
    fn from(err: object_store::Error) -> Self {
        match err {
            // What the S3 client raises once its retries with backoff are spent: a server error,
            // a connection refused or reset, a timeout.
            object_store::Error::Generic { .. } if !refused_request(&err) => {
                Error::StorageUnavailable(err.to_string())
            }
            other => Error::Storage(other),
        }
    }
}

/// Whether the store answered the request with a 4xx (a missing bucket, refused credentials):
/// the request's or the set-up's fault, not an outage, and not retried. object_store keeps the
/// status in a type it does not export, so it is read from the error's text, which its
/// `RetryError` writes as `… non-2xx status code: 404 Not Found: <body>`.
pub fn refused_request(err: &object_store::Error) -> bool {
    err.to_string().contains("status code: 4")
}

impl From<parquet::errors::ParquetError> for Error {
    fn from(err: parquet::errors::ParquetError) -> Self {
        match storage_failure(&err) {
            Some(why) => Error::StorageUnavailable(why),
            None => Error::Parquet(err),
        }
    }
}

/// The description of an unavailable object store somewhere in an error's chain of sources
/// (a Parquet read or a query that failed because the storage did not answer).
fn storage_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(e @ object_store::Error::Generic { .. }) =
            e.downcast_ref::<object_store::Error>()
            && !refused_request(e)
        {
            return Some(e.to_string());
        }
        next = e.source();
    }
    None
}

impl Error {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }

    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Error::Internal(msg.to_string())
    }

    /// Classifies an engine error: resource exhaustion is the server's limit (503), plan and
    /// schema errors are the request's fault (400), an error of ours that travelled through the
    /// engine is itself again, everything else is the engine's (500).
    pub fn from_engine(err: DataFusionError) -> Self {
        if let Some(why) = storage_failure(&err) {
            return Error::StorageUnavailable(why);
        }
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

    /// Whether another process holds the ingest lease this error met.
    pub fn is_busy(&self) -> bool {
        matches!(self.kind(), Error::Busy(_))
    }

    /// The error itself, looking through the wrappers that keep a status of their source.
    fn kind(&self) -> &Error {
        match self {
            Error::Ingest { source, .. } => source.kind(),
            Error::Shared(shared) => shared.kind(),
            other => other,
        }
    }

    /// The one mapping from error to HTTP status.
    pub fn status(&self) -> StatusCode {
        match self.kind() {
            Error::BadRequest(_) | Error::Config(_) | Error::Invalid { .. } => {
                StatusCode::BAD_REQUEST
            }
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Shed(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            Error::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Error::Gone(_) => StatusCode::GONE,
            Error::Busy(_) => StatusCode::CONFLICT,
            Error::Overloaded(_) | Error::Unavailable(_) | Error::StorageUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The URN naming the kind of problem, as problem+json bodies carry it.
    pub fn problem_type(&self) -> &'static str {
        match self.kind() {
            Error::BadRequest(_) | Error::Config(_) | Error::Invalid { .. } => {
                "urn:qanat:problem:bad-request"
            }
            Error::NotFound(_) => "urn:qanat:problem:not-found",
            Error::TooLarge(_) | Error::UriTooLong(_) | Error::HeadersTooLarge(_) => {
                "urn:qanat:problem:over-limit"
            }
            Error::Shed(_) => "urn:qanat:problem:shed",
            Error::RateLimited { .. } => "urn:qanat:problem:rate-limited",
            Error::Unauthorized(_) => "urn:qanat:problem:unauthorized",
            Error::Forbidden(_) => "urn:qanat:problem:forbidden",
            Error::Gone(_) => "urn:qanat:problem:version-gone",
            Error::Overloaded(_) => "urn:qanat:problem:overloaded",
            Error::Unavailable(_) => "urn:qanat:problem:unavailable",
            Error::Busy(_) => "urn:qanat:problem:busy",
            Error::StorageUnavailable(_) => "urn:qanat:problem:storage-unavailable",
            _ => "urn:qanat:problem:internal",
        }
    }

    /// What a client is told: the message, except for internal failures, whose detail goes to
    /// the log only.
    pub fn public_detail(&self) -> String {
        if let Error::StorageUnavailable(why) = self.kind() {
            tracing::error!(error = %why, "object storage unavailable");
            return "object storage did not answer (retried with backoff); nothing was changed; try again shortly".to_string();
        }
        if self.is_public() {
            self.to_string()
        } else {
            tracing::error!(error = %self, "request failed");
            "the server failed to answer this request; the failure was logged".to_string()
        }
    }

    /// Whether the message may be shown to a client: everything but internal failures.
    fn is_public(&self) -> bool {
        !self.status().is_server_error()
            || matches!(
                self.kind(),
                Error::Overloaded(_)
                    | Error::Unavailable(_)
                    | Error::Shed(_)
                    | Error::StorageUnavailable(_)
            )
    }

    /// `Retry-After` on a response, for the errors that say when to ask again (whatever the
    /// shape of the body: problem+json, api-tabular's or CKAN's).
    pub fn set_retry_after(&self, headers: &mut axum::http::HeaderMap) {
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }

    /// Seconds a client should wait before asking again, for the errors that say so.
    pub fn retry_after(&self) -> Option<u64> {
        match self.kind() {
            Error::Shed(_) => Some(1),
            Error::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
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
        let mut resp = problem_response(self.status(), self.problem_type(), self.public_detail());
        self.set_retry_after(resp.headers_mut());
        if matches!(self.kind(), Error::Unauthorized(_)) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"qanat admin\""),
            );
        }
        resp
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
