//! Sources that are not what they say: pages, documents and archives named `.csv` are refused
//! by their content, and a new version that collapses against the one served is held back.

use serde_json::Value;

use crate::support::TestApp;

async fn reingest(app: &TestApp, id: &str, force: bool) -> Result<(), String> {
    let r = app
        .state
        .catalog
        .ingest_and_load(&[id.to_string()], force)
        .await
        .unwrap();
    r[0].1.as_ref().map(|_| ()).map_err(|e| e.to_string())
}

fn csv_of(rows: usize) -> String {
    let mut s = String::from("code;nom\n");
    for i in 0..rows {
        s.push_str(&format!("{i:05};commune {i}\n"));
    }
    s
}

#[tokio::test]
async fn what_is_not_a_table_is_refused_and_never_replaces_good_data() {
    let good = csv_of(120);
    let app = TestApp::with_csvs(&[("t", good.as_bytes())], "").await;
    let version = app.get("/api/datasets/t").await.json()["version"].clone();
    let path = app.dir.path().join("datasets/t.csv");
    let cases: [(&[u8], &str); 5] = [
        (
            b"<html><head><title>Request Rejected</title></head><body>The requested URL was rejected.</body></html>",
            "an HTML page titled \"Request Rejected\"",
        ),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "a PDF document"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", "a zip archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00\x00\x00", "not a readable .xls"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"),
    ];
    for (bytes, what) in cases {
        std::fs::write(&path, bytes).unwrap();
        let err = reingest(&app, "t", false).await.unwrap_err();
        assert!(
            err.contains("the source is not a table") && err.contains(what),
            "{err}"
        );
        let d = app.get("/api/datasets/t").await.json();
        assert_eq!(d["version"], version, "nothing published for {what}");
        assert!(d["last_error"].as_str().unwrap().contains(what));
        assert_eq!(app.total("/api/datasets/t/data").await, 120);
    }
    // A first ingest of a page is refused too: no version at all.
    let app = TestApp::with_csvs(
        &[(
            "p",
            b"<!DOCTYPE html>\n<html lang=\"fr\"><body>Erreur</body></html>",
        )],
        "",
    )
    .await;
    let detail = app.get("/api/datasets/p/data").await.problem(503);
    assert!(detail.contains("an HTML page"), "{detail}");
    assert_eq!(
        app.get("/api/datasets/p").await.json()["version"],
        Value::Null
    );
}

#[tokio::test]
async fn a_collapsed_version_is_held_back_unless_forced() {
    let app = TestApp::with_csvs(&[("c", csv_of(200).as_bytes())], "").await;
    let version = app.get("/api/datasets/c").await.json()["version"].clone();
    let path = app.dir.path().join("datasets/c.csv");
    // Under a tenth of the rows.
    std::fs::write(&path, csv_of(12)).unwrap();
    let err = reingest(&app, "c", false).await.unwrap_err();
    assert!(
        err.contains("held back") && err.contains("12 rows against 200 served"),
        "{err}"
    );
    assert_eq!(app.get("/api/datasets/c").await.json()["version"], version);
    assert_eq!(app.total("/api/datasets/c/data").await, 200);
    // No column in common.
    std::fs::write(&path, format!("a,b\n{}", "1,2\n".repeat(300))).unwrap();
    let err = reingest(&app, "c", false).await.unwrap_err();
    assert!(err.contains("no column in common"), "{err}");
    assert_eq!(app.total("/api/datasets/c/data").await, 200);
    // Forced, the operator's word wins; a normal change is never held.
    std::fs::write(&path, csv_of(12)).unwrap();
    reingest(&app, "c", true).await.unwrap();
    assert_eq!(app.total("/api/datasets/c/data").await, 12);
    std::fs::write(&path, csv_of(15)).unwrap();
    reingest(&app, "c", false).await.unwrap();
    assert_eq!(app.total("/api/datasets/c/data").await, 15);
}

/// A portal-like server on 127.0.0.1: `/data.csv`, and `/hop/N` redirecting N times to it.
async fn redirecting_server() -> String {
    use axum::extract::Path;
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::get;
    let router = axum::Router::new()
        .route("/data.csv", get(|| async { csv_of(5) }))
        .route(
            "/hop/{n}",
            get(|Path(n): Path<u32>| async move {
                if n == 0 {
                    Redirect::temporary("/data.csv").into_response()
                } else {
                    Redirect::temporary(&format!("/hop/{}", n - 1)).into_response()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn harvested(source: &str) -> Vec<u8> {
    format!(
        "title = \"h\"\nsource = \"{source}\"\n[provenance]\nportal = \"{source}\"\nkind = \"ckan\"\npackage = \"p\"\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn harvested_sources_are_fetched_from_public_hosts_only() {
    let base = redirecting_server().await;
    let port = base.rsplit(':').next().unwrap().to_string();
    let cases = [
        (
            format!("{base}/data.csv"),
            "`127.0.0.1` is not a public address",
        ),
        (
            format!("http://localhost:{port}/data.csv"),
            "`localhost` is not a public address",
        ),
        (
            format!("http://[::1]:{port}/data.csv"),
            "`::1` is not a public address",
        ),
    ];
    for (source, why) in &cases {
        let app = TestApp::with_files(&[("h.toml", &harvested(source))], "").await;
        let r = app.get("/api/datasets/h/data").await;
        assert_eq!(r.status, 503, "{source} was fetched");
        let detail = r.problem(503);
        assert!(
            detail.contains(why) && detail.contains("--allow-private-sources"),
            "{detail}"
        );
    }
    // The operator may allow them (the tests, which serve from 127.0.0.1, must).
    let allow = "[ingest]\nallow_private_sources = true\n";
    let app = TestApp::with_files(&[("h.toml", &harvested(&format!("{base}/hop/4")))], allow).await;
    assert_eq!(
        app.total("/api/datasets/h/data").await,
        5,
        "5 redirects are followed"
    );
    let app = TestApp::with_files(&[("h.toml", &harvested(&format!("{base}/hop/5")))], allow).await;
    let detail = app.get("/api/datasets/h/data").await.problem(503);
    assert!(detail.contains("more than 5 redirects"), "{detail}");
    // A portal never points at this server's files, allowed or not: refused when read.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("h.toml");
    std::fs::write(&file, harvested("file:///tmp/h.csv")).unwrap();
    let err = qanat::dataset::spec::DatasetSpec::load(&file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("is not an http(s) URL"), "{err}");
}
