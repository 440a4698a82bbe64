//! What every request meets before the application: ids, size limits as problem+json, rate
//! limits per client (trusted proxies only), security headers, and shedding when every query
//! turn is taken.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::StatusCode;

use crate::support::{TestApp, repo_path, send};

fn peer(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

#[tokio::test]
async fn every_response_has_an_id_nosniff_and_html_a_policy() {
    let app = TestApp::with_settings(&repo_path("datasets"), "").await;
    let a = app.get("/api/datasets/villes-maroc/data?page_size=1").await;
    let b = app.get("/api/datasets/villes-maroc/data?page_size=1").await;
    let id = |r: &crate::support::Reply| r.headers["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(a.status, 200);
    assert_eq!(id(&a).len(), 16);
    assert!(id(&a).bytes().all(|c| c.is_ascii_hexdigit()));
    // The second is replayed from the first's headers, yet has its own id.
    assert_ne!(id(&a), id(&b));
    assert_eq!(b.headers["x-content-type-options"], "nosniff");
    assert!(!a.headers.contains_key("content-security-policy"));
    // A proxy's id is kept; a strange one is replaced.
    let kept = app
        .get_with("/health", &[("x-request-id", "edge-42.a_b")])
        .await;
    assert_eq!(kept.headers["x-request-id"], "edge-42.a_b");
    let replaced = app.get_with("/health", &[("x-request-id", "a b")]).await;
    assert_ne!(replaced.headers["x-request-id"], "a b");
    // Errors too.
    let missing = app.get("/nowhere").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.headers["x-content-type-options"], "nosniff");
    assert!(missing.headers.contains_key("x-request-id"));
    // HTML pages get a Content-Security-Policy.
    let docs = app.get("/docs/").await;
    assert_eq!(docs.status, 200, "{}", docs.text());
    let csp = docs.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn oversized_targets_headers_and_bodies_are_problems() {
    let app = TestApp::with_settings(
        &repo_path("datasets"),
        "[server]\nmax_uri_bytes = 300\nmax_header_bytes = 2000\nmax_body_bytes = 100\n",
    )
    .await;
    let long = format!(
        "/api/datasets/villes-maroc/data?nom__in={}",
        "x,".repeat(200)
    );
    let r = app.get(&long).await;
    assert_eq!(r.status, StatusCode::URI_TOO_LONG);
    assert!(
        r.problem(414).contains("over the limit of 300"),
        "{}",
        r.text()
    );
    let big = "v".repeat(2500);
    let r = app.get_with("/health", &[("x-padding", &big)]).await;
    assert_eq!(r.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(r.problem(431).contains("server.max_header_bytes"));
    // A body declared too large, and one that only turns out too large (no length given).
    let body = format!("{{\"resource_id\": \"{}\"}}", "r".repeat(200));
    let r = send(
        &app.router,
        "POST",
        "/api/3/action/datastore_search",
        &[
            ("content-type", "application/json"),
            ("content-length", &body.len().to_string()),
        ],
        None,
        Body::from(body.clone()),
    )
    .await;
    assert!(
        r.problem(413).contains("server.max_body_bytes"),
        "{}",
        r.text()
    );
    let stream = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(body))]);
    let r = send(
        &app.router,
        "POST",
        "/api/3/action/datastore_search",
        &[("content-type", "application/json")],
        None,
        Body::from_stream(stream),
    )
    .await;
    assert!(r.problem(413).contains("100 bytes"), "{}", r.text());
}

#[tokio::test]
async fn clients_over_their_rate_get_429_and_proxies_speak_only_when_trusted() {
    let app = TestApp::with_settings(
        &repo_path("datasets"),
        "[server]\nrate_limit = 1\nrate_burst = 3\ntrusted_proxies = ['10.0.0.0/8']\n",
    )
    .await;
    let uri = "/api/datasets/villes-maroc/data?page_size=1";
    let get = |from: &'static str, headers: &'static [(&'static str, &'static str)]| {
        let router = app.router.clone();
        async move { send(&router, "GET", uri, headers, peer(from), Body::empty()).await }
    };
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = get("198.51.100.7:1000", &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["ratelimit-limit"], "3");
        remaining.push(
            r.headers["ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let r = get("198.51.100.7:1001", &[]).await;
    assert!(r.problem(429).contains("198.51.100.7"), "{}", r.text());
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(r.headers["ratelimit-remaining"], "0");
    assert_eq!(r.headers["ratelimit-reset"], "1");
    // The monitor's routes are never limited.
    let r = send(
        &app.router,
        "GET",
        "/health",
        &[],
        peer("198.51.100.7:1"),
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, 200);
    // Another client has its own bucket.
    assert_eq!(get("198.51.100.8:1000", &[]).await.status, 200);
    // An untrusted peer cannot claim to be someone else...
    let spoof: &[(&str, &str)] = &[("x-forwarded-for", "203.0.113.50")];
    assert_eq!(get("198.51.100.7:1002", spoof).await.status, 429);
    // ...but a trusted proxy speaks for its clients, each with its own bucket.
    for _ in 0..3 {
        assert_eq!(get("10.1.1.1:80", spoof).await.status, 200);
    }
    assert_eq!(get("10.1.1.1:80", spoof).await.status, 429);
    let other: &[(&str, &str)] = &[("forwarded", "for=203.0.113.51")];
    assert_eq!(get("10.1.1.1:80", other).await.status, 200);
    let metrics = app.get("/metrics").await.text();
    assert!(
        metrics.contains("\nqanat_rate_limited_total 3\n"),
        "{metrics}"
    );
    // After a second, one more request's worth has come back.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get("198.51.100.7:1003", &[]).await.status, 200);
}

#[tokio::test]
async fn queries_are_shed_quickly_when_every_turn_is_taken_and_health_answers() {
    let app = TestApp::with_settings(
        &repo_path("datasets"),
        "[server]\nmax_queries = 1\nqueue_wait_ms = 40\n",
    )
    .await;
    let turn = app.state.executor.gate().enter().await.unwrap();
    let started = Instant::now();
    let r = app
        .get("/api/datasets/villes-maroc/data?nom__contains=a")
        .await;
    let took = started.elapsed();
    assert!(r.problem(503).contains("try again shortly"), "{}", r.text());
    assert_eq!(r.headers["retry-after"], "1");
    assert!(
        took >= Duration::from_millis(40) && took < Duration::from_secs(1),
        "{took:?}"
    );
    // The tabular API and CKAN say it in their own shapes, with the same header.
    let r = app
        .get("/api/resources/villes-maroc/data/?nom__contains=b")
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers["retry-after"], "1");
    assert!(
        r.json()["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("queries")
    );
    let r = app
        .get("/api/datasets/villes-maroc/data.csv?nom__contains=c")
        .await;
    assert_eq!(r.status, 503);
    // What does not compute a query answers at once.
    let started = Instant::now();
    assert_eq!(app.get("/health").await.status, 200);
    let metrics = app.get("/metrics").await.text();
    assert!(started.elapsed() < Duration::from_millis(200));
    assert!(
        metrics.contains("\nqanat_queries_shed_total 3\n"),
        "{metrics}"
    );
    assert!(metrics.contains("\nqanat_queries_running 1\n"), "{metrics}");
    // A turn given back: the same query answers.
    drop(turn);
    let r = app
        .get("/api/datasets/villes-maroc/data?nom__contains=a")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}
