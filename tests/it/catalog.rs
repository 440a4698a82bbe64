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

#[tokio::test]
async fn dataset_files_written_while_serving_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let datasets = dir.path().join("datasets");
    std::fs::create_dir(&datasets).unwrap();
    std::fs::write(datasets.join("a.csv"), "x\n1\n2\n").unwrap();
    std::fs::write(datasets.join("a.toml"), toml_for("a.csv", "")).unwrap();
    let mut settings = qanat::config::Settings::from_toml_str("").unwrap();
    settings.datasets = datasets.clone();
    settings.storage = dir.path().join("storage").display().to_string();
    let state = qanat::app::watched_state(settings, &[]).unwrap();
    state.catalog.ingest_and_load(&[], false).await.unwrap();
    let router = qanat::http::router(state.clone());
    let get = |uri: &'static str| crate::support::request(&router, uri, &[]);
    let enum_of = |doc: serde_json::Value| doc.to_string().contains("\"b\"");
    assert!(!enum_of(get("/openapi.json").await.json()));
    // Nothing changed: nothing is read again.
    assert_eq!(state.catalog.watch_once().await, 0);

    // A harvest (or an operator) writes a dataset file and edits another.
    std::fs::write(datasets.join("b.csv"), "y\n7\n8\n9\n").unwrap();
    std::fs::write(datasets.join("b.toml"), toml_for("b.csv", "")).unwrap();
    std::fs::write(
        datasets.join("a.toml"),
        toml_for("a.csv", "producer = \"HCP\"\n"),
    )
    .unwrap();
    state.catalog.watch_once().await;
    let b = get("/api/datasets/b/data").await.json();
    assert_eq!(b["meta"]["total"], 3);
    let a = get("/api/datasets/a").await.json();
    assert_eq!(
        (a["producer"].clone(), a["rows"].clone()),
        ("HCP".into(), 2.into())
    );
    assert!(
        enum_of(get("/openapi.json").await.json()),
        "the document lists b"
    );

    // A removed file removes the dataset.
    std::fs::remove_file(datasets.join("b.toml")).unwrap();
    state.catalog.watch_once().await;
    get("/api/datasets/b/data").await.problem(404);
    assert!(!enum_of(get("/openapi.json").await.json()));
}

#[tokio::test]
async fn a_read_only_replica_serves_what_others_publish_and_never_ingests() {
    let dir = tempfile::tempdir().unwrap();
    let datasets = dir.path().join("datasets");
    std::fs::create_dir(&datasets).unwrap();
    std::fs::write(datasets.join("a.csv"), "x\n1\n2\n").unwrap();
    std::fs::write(datasets.join("a.toml"), toml_for("a.csv", "")).unwrap();
    std::fs::write(datasets.join("b.csv"), "y\n7\n").unwrap();
    std::fs::write(datasets.join("b.toml"), toml_for("b.csv", "")).unwrap();
    // `qanat ingest a` in another process.
    let writer = crate::support::build_state(dir.path(), &datasets, "");
    writer
        .catalog
        .ingest_and_load(&["a".into()], false)
        .await
        .unwrap();
    let replica = crate::support::build_state(dir.path(), &datasets, "");
    replica.catalog.set_read_only();
    replica.catalog.start_up().await;
    let router = qanat::http::router(replica.clone());
    let get = |uri: &'static str| crate::support::request(&router, uri, &[]);
    assert_eq!(get("/api/datasets/a/data").await.json()["meta"]["total"], 2);
    assert!(get("/api/datasets/a").await.json()["last_error"].is_null());
    // b was never published: the replica does not ingest it, and says who would.
    let detail = get("/api/datasets/b/data").await.problem(503);
    assert!(
        detail.contains("read-only replica") && detail.contains("qanat ingest b"),
        "{detail}"
    );
    let versions =
        |id: &str| std::fs::read_dir(dir.path().join("storage").join(id)).map_or(0, |d| d.count());
    assert_eq!(versions("b"), 0);
    let forced = replica
        .catalog
        .ingest_and_load(&["a".into()], true)
        .await
        .unwrap();
    assert!(
        forced[0].1.is_ok(),
        "an ingest asked of a replica serves what is published"
    );
    assert_eq!(
        versions("a"),
        2,
        "one version and its pointer, nothing more"
    );
    // The writer publishes a new version: the replica follows.
    std::fs::write(datasets.join("a.csv"), "x\n1\n2\n3\n").unwrap();
    writer
        .catalog
        .ingest_and_load(&["a".into()], false)
        .await
        .unwrap();
    replica.catalog.watch_once().await;
    assert_eq!(get("/api/datasets/a/data").await.json()["meta"]["total"], 3);
}
