//! What every request meets before the application, and every response leaves with. In: an id
//! (the client's `X-Request-Id` when it is a sane one, else a new one), the size limits on the
//! target, the headers and a declared body (`414`/`431`/`413` as problem+json), and the
//! client's rate (`429`). Out: `X-Request-Id`, `X-Content-Type-Options: nosniff`, a
//! Content-Security-Policy on HTML pages, `RateLimit-*` on limited routes; and one log line,
//! within the request's span, so that every line logged while answering carries its id.

use std::convert::Infallible;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use futures::future::BoxFuture;
use tower::Service;
use tracing::Instrument;

use super::listen;
use crate::error::{Error, PROBLEM_JSON};
use crate::rates::{self, Rates, Standing};
use crate::state::AppState;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Pages the explorer and the documentation serve: their own scripts, styles and images only
/// (inline styles for Swagger UI), never framed, no plugins.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The application behind the guard.
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    shared: Arc<Shared>,
}

struct Shared {
    max_uri: usize,
    max_headers: usize,
    max_body: usize,
    rates: Option<Arc<Rates>>,
    ids: Ids,
}

impl<S> Guard<S> {
    pub fn new(inner: S, state: &AppState) -> Self {
        let settings = &state.settings.server;
        Guard {
            inner,
            shared: Arc::new(Shared {
                max_uri: settings.max_uri_bytes,
                max_headers: settings.max_header_bytes,
                max_body: settings.max_body_bytes,
                rates: state.rates.clone(),
                ids: Ids::new(),
            }),
        }
    }
}

impl<S> Service<Request<Body>> for Guard<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        let id = shared.ids.of(req.headers());
        let span = tracing::info_span!("request", id = id.to_str().unwrap_or_default(),
            method = %req.method(), path = %req.uri().path());
        let admitted = shared.admit(&req);
        // The clone that was made ready is the one called; the fresh clone waits its turn.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let started = std::time::Instant::now();
        Box::pin(async move {
            let mut resp = match admitted {
                Ok(standing) => {
                    let mut resp = inner.call(req).instrument(span.clone()).await?;
                    if let Some(s) = standing {
                        s.write(resp.headers_mut());
                    }
                    resp
                }
                Err(e) => {
                    let standing = match (&e, &shared.rates) {
                        (Error::RateLimited { retry_after, .. }, Some(rates)) => {
                            Some(rates.exhausted(*retry_after))
                        }
                        _ => None,
                    };
                    let mut resp = e.into_response();
                    if let Some(s) = standing {
                        s.write(resp.headers_mut());
                    }
                    resp
                }
            };
            if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
                problem_body(&mut resp, shared.max_body);
            }
            finish(resp.headers_mut(), &id);
            let _enter = span.enter();
            let status = resp.status().as_u16();
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if resp.status().is_server_error() {
                tracing::warn!(status, ms, "answered");
            } else {
                tracing::info!(status, ms, "answered");
            }
            Ok(resp)
        })
    }
}

impl Shared {
    /// The request's size and the client's rate: where the client stands (on limited routes),
    /// or the error that answers instead.
    fn admit(&self, req: &Request<Body>) -> Result<Option<Standing>, Error> {
        let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
        if target > self.max_uri {
            return Err(Error::UriTooLong(format!(
                "the request target is {target} bytes, over the limit of {} (server.max_uri_bytes); send fewer or shorter parameters",
                self.max_uri
            )));
        }
        let headers: usize = req
            .headers()
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len())
            .sum();
        if headers > self.max_headers {
            return Err(Error::HeadersTooLarge(format!(
                "the request headers are {headers} bytes, over the limit of {} (server.max_header_bytes)",
                self.max_headers
            )));
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body as u64) {
            return Err(body_too_large(self.max_body));
        }
        let Some(rates) = &self.rates else {
            return Ok(None);
        };
        if rates::unlimited(req.uri().path()) {
            return Ok(None);
        }
        let client = rates.client(listen::peer(req), req.headers());
        rates.check(client).map(Some)
    }
}

fn body_too_large(max: usize) -> Error {
    Error::TooLarge(format!(
        "the request body is over the limit of {max} bytes (server.max_body_bytes)"
    ))
}

/// A `413` from a body extractor (plain text) told as problem+json.
fn problem_body(resp: &mut Response<Body>, max: usize) {
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() != PROBLEM_JSON.as_bytes());
    if plain {
        *resp = body_too_large(max).into_response();
    }
}

/// The headers every response leaves with.
fn finish(headers: &mut HeaderMap, id: &HeaderValue) {
    headers.insert(X_REQUEST_ID.clone(), id.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let html = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if html {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
}

/// Request ids: the client's own when it is short and plain (a proxy's id follows the request
/// through), else 16 hex digits, unique in the process and unlikely to repeat across processes.
struct Ids {
    seed: RandomState,
    next: AtomicU64,
}

impl Ids {
    fn new() -> Self {
        Ids {
            seed: RandomState::new(),
            next: AtomicU64::new(0),
        }
    }

    fn of(&self, headers: &HeaderMap) -> HeaderValue {
        if let Some(v) = headers.get(&X_REQUEST_ID)
            && (1..=64).contains(&v.len())
            && v.as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
        {
            return v.clone();
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // A keyed hash of a counter: distinct for distinct counters within the process (the
        // low half is the counter itself), random-looking across processes.
        let high = self.seed.hash_one(n) >> 32;
        let id = format!("{:08x}{:08x}", high, n as u32);
        HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("0"))
    }
}
