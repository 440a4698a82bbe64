//! The explorer's HTML, read as a browser would get it: the catalog, a dataset's rows with the
//! query's count, facets and links, values escaped, readable error pages (the same pages are
//! driven in headless Chromium by `tests/clients/explorer_check.mjs` in `.ci/contract`).

use crate::support::{TestApp, sample_records, toml_for};

#[tokio::test]
async fn the_catalog_lists_the_datasets_with_rows_and_links() {
    let app = TestApp::sample().await;
    let r = app.get("/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    assert!(
        r.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let page = r.text();
    for (id, rows) in [
        ("communes", 34875),
        ("departements", 101),
        ("villes-maroc", 180),
    ] {
        assert!(page.contains(&format!("href=\"/datasets/{id}\"")), "{id}");
        assert!(page.contains(&format!("{rows} rows")), "{id}: {rows} rows");
    }
    assert!(page.contains("Datasets 1–3 of 3"));
    // Searching the catalog, and a producer's datasets.
    let maroc = app.get("/?q=maroc").await.text();
    assert!(maroc.contains("Datasets 1–1 of 1") && maroc.contains("/datasets/villes-maroc"));
    let assets = app.get("/assets/explorer.js").await;
    assert_eq!(assets.headers["content-type"], "text/javascript");
    assert!(
        app.get("/assets/explorer.css")
            .await
            .text()
            .contains(".layout")
    );
}

#[tokio::test]
async fn a_dataset_page_shows_the_rows_of_its_query_and_the_api_behind_them() {
    let app = TestApp::sample().await;
    let region_14 = sample_records("departements.csv", b',')
        .iter()
        .filter(|r| &r[5] == "14")
        .count();
    // An empty field of the filter form is no filter.
    let page = app
        .get("/datasets/departements?nom__contains=&region_id__exact=14")
        .await;
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(
        html.contains(&format!("of <strong>{region_14}</strong>")),
        "{region_14} rows"
    );
    // The suggested facets in the sidebar, the chosen value marked and removable.
    assert!(html.contains("<h2>region_id</h2>") && html.contains("<h2>type_nom</h2>"));
    assert!(html.contains("class=\"chosen\""));
    // Sortable headers, and the exact API call, as a URL and a download.
    assert!(html.contains("href=\"/datasets/departements?region_id__exact=14&amp;nom__sort=asc\""));
    assert!(html.contains(
        "http://qanat.test/api/datasets/departements/data?region_id__exact=14&amp;facets=type_nom%2Cregion_id"
    ));
    assert!(html.contains("/api/datasets/departements/data.parquet?region_id__exact=14"));
    // A query the API refuses is said on the page, as a 400.
    let bad = app.get("/datasets/departements?nope__exact=1").await;
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("unknown column `nope`"));
    // An unknown dataset: a readable 404 page.
    let missing = app.get("/datasets/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.headers["content-type"], "text/html; charset=utf-8");
    assert!(missing.text().contains("no dataset `nope`"));
}

#[tokio::test]
async fn values_are_escaped_everywhere_and_arabic_reads_right_to_left() {
    let csv = "id,nom,ville\n\
        1,\"<script>window.pwned=1</script>\",\"\"\"><img src=x onerror=alert(1)>\"\n\
        2,فاس,Fès\n";
    let toml = toml_for(
        "x.csv",
        "keywords = [\"<b>mot</b>\"]\ndescription = \"<i>desc</i>\"",
    );
    let app = TestApp::with_files(&[("x.csv", csv.as_bytes()), ("x.toml", &toml)], "").await;
    for uri in [
        "/datasets/x",
        "/datasets/x?q=%3Cscript%3E",
        "/",
        "/datasets/x?nom__exact=%3Cscript%3E",
    ] {
        let html = app.get(uri).await.text();
        assert!(!html.contains("<script>window"), "{uri}");
        assert!(!html.contains("<img src=x"), "{uri}");
        assert!(!html.contains("<i>desc"), "{uri}");
        assert!(!html.contains("<b>mot"), "{uri}");
    }
    let html = app.get("/datasets/x").await.text();
    assert!(html.contains("&lt;script&gt;window.pwned=1&lt;/script&gt;"));
    assert!(html.contains("<td dir=\"auto\">فاس</td>"));
}
