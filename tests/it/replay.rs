//! Repeated requests answered from the result cache before routing: the same body and headers
//! as the full path, never another host's links, never an old version's rows, and a
//! conditional request still answered `304`.

use axum::http::StatusCode;

use crate::query::metric;
use crate::support::{TestApp, request};

fn csv(tag: &str) -> String {
    let mut csv = String::from("n,word\n");
    for n in 0..500 {
        csv.push_str(&format!("{n},{tag}{}\n", n % 7));
    }
    csv
}

async fn replays(app: &TestApp) -> u64 {
    metric(
        &app.get("/metrics").await.text(),
        "qanat_cache_replays_total",
    )
}

/// Status, headers without `date`, body.
async fn fetch(
    app: &TestApp,
    uri: &str,
    host: &str,
) -> (StatusCode, Vec<(String, String)>, Vec<u8>) {
    let r = request(&app.router, uri, &[("host", host)]).await;
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    headers.sort();
    (r.status, headers, r.body)
}

const PAGE: &str = "/api/datasets/t/data?word__exact=a3&n__sort=desc&page_size=5";
const EXPORT: &str = "/api/datasets/t/data.csv?word__exact=a3";

#[tokio::test]
async fn repeated_requests_get_the_full_paths_answer_for_their_host_and_version() {
    let app = TestApp::with_csvs(&[("t", csv("a").as_bytes())], "").await;
    for uri in [PAGE, EXPORT] {
        let first = fetch(&app, uri, "one.test").await;
        assert_eq!(first.0, StatusCode::OK, "{uri}");
        let before = replays(&app).await;
        let again = fetch(&app, uri, "one.test").await;
        assert_eq!(again, first, "{uri}: replayed");
        assert_eq!(replays(&app).await, before + 1, "{uri}: not replayed");
    }
    let page: serde_json::Value =
        serde_json::from_slice(&fetch(&app, PAGE, "one.test").await.2).unwrap();
    assert_eq!(page["data"][0]["n"], 493);
    assert!(
        page["links"]["self"]
            .as_str()
            .unwrap()
            .starts_with("http://one.test/")
    );

    // Another host: links name it, not the host of the answer kept.
    let other = fetch(&app, PAGE, "two.test").await;
    let other: serde_json::Value = serde_json::from_slice(&other.2).unwrap();
    assert!(
        other["links"]["self"]
            .as_str()
            .unwrap()
            .starts_with("http://two.test/"),
        "{other}"
    );

    // A conditional request is still answered by the handler.
    let seen = app.get(PAGE).await;
    let etag = seen.headers["etag"].to_str().unwrap().to_string();
    assert_eq!(app.get(PAGE).await.body, seen.body);
    let r = app.get_with(PAGE, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);

    // A new version: its rows, not the answer kept for the old one.
    app.republish("t", &csv("b")).await;
    let before = replays(&app).await;
    let uri = PAGE.replace("a3", "b3");
    assert_eq!(app.rows(&uri).await[0]["n"], 493);
    assert_eq!(
        app.total(PAGE).await,
        0,
        "the old version's page was replayed"
    );
    let export = fetch(&app, EXPORT, "one.test").await;
    assert_eq!(String::from_utf8(export.2).unwrap(), "n,word\n");
    assert_eq!(replays(&app).await, before);
}

#[tokio::test]
async fn nothing_is_replayed_with_the_result_cache_off() {
    let app = TestApp::with_csvs(&[("t", csv("a").as_bytes())], "cache_bytes = 0\n").await;
    let first = fetch(&app, PAGE, "one.test").await;
    assert_eq!(fetch(&app, PAGE, "one.test").await, first);
    assert_eq!(replays(&app).await, 0);
}
