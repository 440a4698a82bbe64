//! Every error status and message a client can meet, and the limits that keep one request from
//! hurting the server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{TestApp, request, toml_for};

#[tokio::test]
async fn bad_requests_say_what_is_wrong_and_what_is_right() {
    let app = TestApp::sample().await;
    let d = "/api/datasets/departements/data";
    let cases: &[(&str, &str)] = &[
        (
            "nope__exact=1",
            "unknown column `nope` in `nope__exact`; known columns: id, code, nom, type_nom, chef_lieu_id, region_id",
        ),
        (
            "code__like=1",
            "unknown operator `like` in `code__like`; valid operators: exact, differs, in, notin, contains",
        ),
        (
            "limit=10",
            "unknown parameter `limit`; valid parameters are columns, page, page_size",
        ),
        (
            "id__greater=abc",
            "`abc` in `id__greater` is not a valid integer for column `id` (e.g. 42)",
        ),
        (
            "id__contains=1",
            "`contains` applies to string columns; `id` is integer",
        ),
        (
            "page=0",
            "page `0` must be a whole number from 1 to 4294967296",
        ),
        (
            "page=-3",
            "page `-3` must be a whole number from 1 to 4294967296",
        ),
        (
            "page_size=1001",
            "page_size `1001` must be a whole number from 1 to 1000",
        ),
        (
            "page_size=0",
            "page_size `0` must be a whole number from 1 to 1000",
        ),
        ("nom__sort=up", "`nom__sort=up`: a sort is `asc` or `desc`"),
        (
            "columns=nom,nom",
            "column `nom` is listed twice in `columns`",
        ),
        ("nom__sum", "`sum` needs a numeric column; `nom` is string"),
        (
            "code__in=%2201,02",
            "`code__in`: a quoted value is not closed",
        ),
        (
            "page=18446744073709551615&page_size=1000",
            "must be a whole number from 1 to 4294967296",
        ),
    ];
    for (query, expected) in cases {
        for suffix in ["", ".csv", ".ndjson"] {
            let r = app.get(&format!("{d}{suffix}?{query}")).await;
            let detail = r.problem(400);
            assert!(detail.contains(expected), "{query}: {detail}");
        }
    }
}

#[tokio::test]
async fn limits_on_filters_and_lists() {
    let app = TestApp::sample().await;
    let many: Vec<String> = (0..51).map(|i| format!("id__differs={i}")).collect();
    let detail = app
        .get(&format!(
            "/api/datasets/departements/data?{}",
            many.join("&")
        ))
        .await
        .problem(400);
    assert!(detail.contains("more than 50 filter"), "{detail}");
    let list: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
    let detail = app
        .get(&format!(
            "/api/datasets/departements/data?id__in={}",
            list.join(",")
        ))
        .await
        .problem(400);
    assert!(
        detail.contains("lists 1001 values; at most 1000"),
        "{detail}"
    );
    // 1,000 values is fine and does not build a deep expression.
    let ok: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    assert_eq!(
        app.total(&format!(
            "/api/datasets/departements/data?id__in={}",
            ok.join(",")
        ))
        .await,
        101
    );
    assert_eq!(
        app.total(&format!(
            "/api/datasets/departements/data?id__notin={}",
            ok.join(",")
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn unknown_things_are_404_and_other_methods_405() {
    let app = TestApp::sample().await;
    let detail = app.get("/api/datasets/nope/data").await.problem(404);
    assert_eq!(
        detail,
        "no dataset `nope`; known datasets: communes, departements, villes-maroc"
    );
    assert!(
        app.get("/api/datasets/nope")
            .await
            .problem(404)
            .contains("no dataset `nope`")
    );
    assert!(
        app.get("/api/datasets/nope/profile")
            .await
            .problem(404)
            .contains("no dataset `nope`")
    );
    assert!(
        app.get("/api/datasets/nope/data.csv")
            .await
            .problem(404)
            .contains("no dataset `nope`")
    );
    assert!(
        app.get("/api/nothing")
            .await
            .problem(404)
            .contains("no route `/api/nothing`")
    );
    let req = axum::http::Request::post("/api/datasets")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(app.router.clone(), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert!(
        app.get("/api/datasets?foo=1")
            .await
            .problem(400)
            .contains("unknown parameter `foo`")
    );
    assert!(
        app.get("/api/datasets?page=0")
            .await
            .problem(400)
            .contains("page `0`")
    );
}

fn big_csv(rows: usize) -> Vec<u8> {
    let mut s = String::from("k,label,n\n");
    for i in 0..rows {
        // Distinct, long-ish strings so that a full sort needs real memory.
        s.push_str(&format!(
            "{i},label-{:016x}-{:016x}-{i},{}\n",
            (i as u64).wrapping_mul(0x9E3779B97F4A7C15),
            i * 7,
            i % 1000
        ));
    }
    s.into_bytes()
}

#[tokio::test]
async fn over_the_deadline_or_the_memory_budget_is_503_and_the_server_stays_up() {
    let csv = big_csv(200_000);
    let toml = toml_for("big.csv", "");
    let files: &[(&str, &[u8])] = &[("big.csv", &csv), ("big.toml", &toml)];
    let app = TestApp::with_files(files, "[limits]\nquery_timeout_ms = 1\n").await;
    // Two sort keys: a sort DataFusion runs (one key walks the column's order in memory).
    let detail = app
        .get("/api/datasets/big/data.csv?label__sort=desc&n__sort=asc")
        .await
        .problem(503);
    assert!(detail.contains("ran past its deadline of 1 ms"), "{detail}");
    assert_eq!(app.get("/health").await.status, 200);

    let tight = TestApp::with_files(
        files,
        "[limits]\nmemory_bytes = 16777216\nspill_to_disk = false\n",
    )
    .await;
    let detail = tight
        .get("/api/datasets/big/data.csv?label__sort=desc&n__sort=asc")
        .await
        .problem(503);
    assert!(
        detail.contains("needs more memory than its budget"),
        "{detail}"
    );
    // The process survives and still answers smaller queries.
    assert_eq!(tight.get("/health").await.status, 200);
    assert_eq!(tight.total("/api/datasets/big/data?n__exact=7").await, 200);
}

#[tokio::test]
async fn health_answers_while_a_heavy_query_runs() {
    let csv = big_csv(200_000);
    let toml = toml_for("big.csv", "");
    let app = TestApp::with_files(
        &[("big.csv", &csv), ("big.toml", &toml)],
        "[limits]\nquery_threads = 1\n",
    )
    .await;
    let router = app.router.clone();
    let heavy = tokio::spawn(async move {
        request(
            &router,
            "/api/datasets/big/data.csv?label__sort=desc&n__sort=asc",
            &[],
        )
        .await
    });
    let health = tokio::time::timeout(Duration::from_secs(5), app.get("/health"))
        .await
        .expect("health answered");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let done = heavy.await.unwrap();
    assert_eq!(done.status, 200);
    assert_eq!(done.text().lines().count(), 200_001);
}

/// Ingests run on the background runtime, never on the threads that serve sockets: while a forced
/// re-ingest parses, encodes, profiles and sorts 300,000 rows, the test's own single-threaded
/// runtime (standing for the socket runtime) stays nearly idle and `/health` answers at once.
/// With the ingest put back on the calling runtime, that runtime is busy for most of the
/// ingest (seen: 77 %, against 4 %), and this fails.
#[tokio::test]
async fn ingest_work_stays_off_the_socket_runtime() {
    let csv = big_csv(300_000);
    let toml = toml_for("big.csv", "[layout]\nsort_by = [\"label\"]\n");
    let app = TestApp::with_files(
        &[("big.csv", &csv), ("big.toml", &toml)],
        "resident_bytes = 0\n",
    )
    .await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let busy_before = metrics.worker_total_busy_duration(0);
    let started = Instant::now();
    let catalog = Arc::clone(&app.state.catalog);
    let ingest = tokio::spawn(async move { catalog.ingest_and_load(&["big".into()], true).await });
    let (mut answers, mut slowest) = (0u32, Duration::ZERO);
    let mut probes = tokio::time::interval(Duration::from_millis(2));
    while !ingest.is_finished() {
        probes.tick().await;
        let asked = Instant::now();
        assert_eq!(app.get("/health").await.status, 200);
        slowest = slowest.max(asked.elapsed());
        answers += 1;
    }
    let results = ingest.await.unwrap().unwrap();
    let wall = started.elapsed();
    let busy = metrics.worker_total_busy_duration(0) - busy_before;
    assert!(
        matches!(results[0].1, Ok(qanat::ingest::Outcome::Ingested(_))),
        "{:?}",
        results[0].1
    );
    assert!(answers >= 20, "only {answers} answers during the ingest");
    assert!(
        busy < wall / 5,
        "the socket runtime was busy {busy:?} of the ingest's {wall:?}"
    );
    assert!(
        slowest < Duration::from_millis(150),
        "the slowest /health answer took {slowest:?} while the ingest ran"
    );
}

#[tokio::test]
async fn the_catalog_pages_within_the_configured_limits() {
    let app = TestApp::with_settings(
        &crate::support::repo_path("datasets"),
        "[limits]\nmax_page_size = 2\ndefault_page_size = 1\n",
    )
    .await;
    let list = app.get("/api/datasets").await.json();
    assert_eq!(list["meta"]["page_size"], 1);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(app.get("/api/datasets?page_size=2").await.status, 200);
    let detail = app.get("/api/datasets?page_size=3").await.problem(400);
    assert_eq!(detail, "page_size `3` must be a whole number from 1 to 2");
}

#[tokio::test]
async fn every_route_may_be_read_from_any_origin() {
    let app = TestApp::sample().await;
    let origin = [("origin", "https://reuser.example")];
    for uri in [
        "/api/datasets",
        "/api/datasets/departements/data?code__exact=2A",
        "/api/datasets/departements/data.csv",
        "/api/datasets/nope/data",
        "/openapi.json",
    ] {
        let r = app.get_with(uri, &origin).await;
        assert_eq!(r.headers["access-control-allow-origin"], "*", "{uri}");
    }
    let csv = app
        .get_with("/api/datasets/departements/data.csv", &origin)
        .await;
    let exposed = csv.headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("content-disposition"),
        "{exposed}"
    );
    // A preflight is answered without reaching the routes.
    let req = axum::http::Request::builder()
        .method("OPTIONS")
        .uri("/api/datasets/departements/data")
        .header("origin", "https://reuser.example")
        .header("access-control-request-method", "GET")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(app.router.clone(), req)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert!(
        resp.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("GET")
    );
}
