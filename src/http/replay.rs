//! Repeated requests answered before routing: a `GET` whose exact URL and host were answered
//! before with a body of the result cache gets that body again, with the headers it had, as
//! long as the version it was read from is still the one the request would read.
//!
//! A cached page otherwise costs a route match, the query's parse, its canonical form and a
//! SHA-256 for its ETag before the cache is even asked; here it costs two map lookups. Anything
//! unusual (a conditional request, a switched version, a body no longer cached) goes the full
//! way, which is always right.
//!
//! The key is the host, the path with its query and `Accept` (which picks a download format on
//! the data route) because the marked handlers read nothing else of a request but
//! `If-None-Match` (which bypasses this). A layer or handler whose answer comes to depend on
//! another header (`Accept-Encoding`, credentials) must add it to [`key_of`] or bypass the replay.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, header};
use futures::future::BoxFuture;
use tower::Service;

use crate::query::Loaded;
use crate::state::AppState;

/// Put by a handler into a response whose body is the result cache's entry `key` (or becomes it
/// once streamed): what a later identical request needs to be answered without the handler.
#[derive(Clone, Debug)]
pub struct Replayable {
    key: String,
    dataset: String,
    version: String,
    pinned: bool,
    generation: u64,
}

impl Replayable {
    /// The body cached under `key`, read from `loaded`; `pinned` when the request named its
    /// version (an older version still kept then answers too).
    pub fn new(state: &AppState, key: &str, loaded: &Loaded, pinned: bool) -> Self {
        Replayable {
            key: key.to_string(),
            dataset: loaded.manifest.id.clone(),
            version: loaded.manifest.version.clone(),
            pinned,
            generation: state.catalog.generation(),
        }
    }

    /// Marks `resp` as replayable.
    pub fn mark(self, resp: &mut Response<Body>) {
        resp.extensions_mut().insert(self);
    }
}

/// A response seen once: where its body is kept and the headers it went out with.
struct Seen {
    replayable: Replayable,
    headers: HeaderMap,
}

/// Requests seen, by host and path with query, weighed by what they hold.
type SeenMap = moka::sync::Cache<String, Arc<Seen>>;

/// The application behind the replay of repeated requests.
#[derive(Clone)]
pub struct Replay<S> {
    inner: S,
    state: AppState,
    /// `None` when the result cache is off: there is then nothing to replay.
    seen: Option<SeenMap>,
}

/// Bytes of requests remembered for each byte of the result cache's budget.
const SEEN_SHARE: u64 = 16;

impl<S> Replay<S> {
    pub fn new(inner: S, state: AppState) -> Self {
        let seen = state.cache.enabled().then(|| {
            let budget = (state.settings.cache_bytes / SEEN_SHARE).max(1 << 20);
            moka::sync::Cache::builder()
                .max_capacity(budget)
                .weigher(|k: &String, v: &Arc<Seen>| weight(k, v))
                .build()
        });
        Replay { inner, state, seen }
    }
}

fn weight(key: &str, seen: &Seen) -> u32 {
    let headers: usize = seen
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 32)
        .sum();
    let r = &seen.replayable;
    let bytes = key.len() + headers + r.key.len() + r.dataset.len() + r.version.len() + 64;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// The key of a request that may be replayed: a `GET` of the API without validators. The host
/// is part of it because JSON bodies carry absolute links built from it.
fn key_of(req: &Request<Body>) -> Option<String> {
    if req.method() != Method::GET
        || !req.uri().path().starts_with("/api/")
        || req.headers().contains_key(header::IF_NONE_MATCH)
    {
        return None;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .map_or(&b""[..], |h| h.as_bytes());
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .map_or(&b""[..], |h| h.as_bytes());
    let target = req.uri().path_and_query()?.as_str();
    let mut key = String::with_capacity(host.len() + target.len() + accept.len() + 2);
    key.push_str(&String::from_utf8_lossy(host));
    key.push('\n');
    key.push_str(target);
    key.push('\n');
    key.push_str(&String::from_utf8_lossy(accept));
    Some(key)
}

/// The answer kept for `key`, if its version still answers and its body is still cached.
async fn replayed(state: &AppState, seen: &SeenMap, key: &str) -> Option<Response<Body>> {
    let hit = seen.get(key)?;
    let r = &hit.replayable;
    if !state
        .catalog
        .answers(&r.dataset, &r.version, r.pinned, r.generation)
    {
        return None;
    }
    let body = state.cache.peek(&r.key).await?;
    state.cache.count_replay();
    let mut resp = Response::new(Body::from(body));
    *resp.headers_mut() = hit.headers.clone();
    Some(resp)
}

impl<S> Service<Request<Body>> for Replay<S>
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
        // The service polled ready is the one that must be called: keep it, leave a clone.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(seen) = self.seen.clone() else {
            return Box::pin(inner.call(req));
        };
        let state = self.state.clone();
        let key = key_of(&req);
        Box::pin(async move {
            if let Some(key) = &key
                && let Some(resp) = replayed(&state, &seen, key).await
            {
                return Ok(resp);
            }
            let resp = inner.call(req).await?;
            if let Some(key) = key
                && resp.status() == StatusCode::OK
                && let Some(r) = resp.extensions().get::<Replayable>()
            {
                let headers = resp.headers().clone();
                let replayable = r.clone();
                seen.insert(
                    key,
                    Arc::new(Seen {
                        replayable,
                        headers,
                    }),
                );
            }
            Ok(resp)
        })
    }
}
