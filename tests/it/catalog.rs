//! The catalog route at portal scale's needs: search over producer and keywords, filters by
//! producer and keyword, without reading data.

use crate::support::{TestApp, toml_for};

#[tokio::test]
async fn the_catalog_is_searched_and_filtered_by_producer_and_keyword() {
    let a = toml_for(
        "a.csv",
        "producer = \"Ministère du Tourisme\"\nkeywords = [\"Hébergement\", \"tourisme\"]\n",
    );
    let b = toml_for("b.csv", "producer = \"HCP\"\nkeywords = [\"population\"]\n");
    let c = toml_for(
        "c.csv",
        "producer = \"ministere du tourisme\"\nkeywords = [\"transport\"]\n",
    );
    let csv: &[u8] = b"x\n1\n";
    let app = TestApp::with_files(
        &[
            ("a.toml", &a),
            ("a.csv", csv),
            ("b.toml", &b),
            ("b.csv", csv),
            ("c.toml", &c),
            ("c.csv", csv),
        ],
        "",
    )
    .await;
    let ids = |uri: &str| {
        let app = &app;
        let uri = uri.to_string();
        async move {
            let v = app.get(&uri).await.json();
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids("/api/datasets?producer=Minist%C3%A8re%20du%20tourisme").await,
        ["a", "c"]
    );
    assert_eq!(ids("/api/datasets?keyword=hebergement").await, ["a"]);
    assert_eq!(
        ids("/api/datasets?q=tourisme&keyword=transport").await,
        ["c"]
    );
    assert_eq!(
        ids("/api/datasets?q=HCP").await,
        ["b"],
        "q reads the producer"
    );
    assert_eq!(
        ids("/api/datasets?q=population").await,
        ["b"],
        "and the keywords"
    );
    let v = app
        .get("/api/datasets?producer=HCP&page_size=1")
        .await
        .json();
    assert_eq!(
        v["links"]["self"],
        "http://qanat.test/api/datasets?page=1&page_size=1&producer=HCP"
    );
    let detail = app.get("/api/datasets?owner=x").await.problem(400);
    assert!(detail.contains("producer and keyword"), "{detail}");
}
