//! The socket: connections accepted and served by hyper's HTTP/1, with a deadline on reading a
//! request's head (a client trickling its headers cannot keep a connection forever), the peer's
//! address handed to the application (rate limits are per client), and a graceful shutdown that
//! stops accepting, lets running requests and exports finish within the drain time, then
//! closes what is left.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

use crate::config::ServerSettings;

/// Headers one request may carry: above hyper's default of 100, so that a request with many
/// small headers meets `server.max_header_bytes` (a problem+json `431`) before hyper's own limit
/// (a bare `431`).
const MAX_HEADERS: usize = 256;

/// Serves `service` on `listener` until `shutdown` completes, then drains.
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    settings: &ServerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(settings.header_timeout_ms))
        // hyper's buffer stays at its default (about 400 KiB), far above the guard's limits:
        // a head over those gets the guard's problem+json, not hyper's bare status.
        .max_headers(MAX_HEADERS);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was taken:
                    // the listener is fine, the next accept may work.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let per_request = hyper::service::service_fn(move |req: Request<Incoming>| {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            service.clone().oneshot(req)
        });
        let conn = builder.serve_connection(TokioIo::new(stream), per_request);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    drain(graceful, Duration::from_millis(settings.drain_ms)).await;
    Ok(())
}

/// Waits for the open connections to finish their requests, at most `within`.
async fn drain(graceful: GracefulShutdown, within: Duration) {
    let started = std::time::Instant::now();
    tracing::info!(
        drain_ms = within.as_millis() as u64,
        "stopped accepting; letting running requests finish"
    );
    match tokio::time::timeout(within, graceful.shutdown()).await {
        Ok(()) => tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "every connection closed"
        ),
        Err(_) => tracing::warn!(
            drain_ms = within.as_millis() as u64,
            "the drain time passed with requests still running; closing them"
        ),
    }
}

/// The address of the peer a request came from, when it came through [`serve`].
pub fn peer(req: &Request<Body>) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}
