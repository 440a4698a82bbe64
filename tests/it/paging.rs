//! Cursor pagination and version-pinned URLs: pages reached through `links.next` equal the
//! offset pages, stay on their version across a refresh, and a version no longer kept is a 410.

use serde_json::Value;

use crate::support::TestApp;

const HOST: &str = "http://qanat.test";

/// 61 rows with ties and nulls in every sort key.
fn table() -> Vec<u8> {
    let mut csv = String::from("id,grp,score,day\n");
    for i in 0..61 {
        let grp = ["b", "a", "", "c", "a"][i % 5];
        let score = if i % 7 == 0 {
            String::new()
        } else {
            format!("{:.1}", (i * 37 % 11) as f64 / 2.0)
        };
        let day = if i % 6 == 0 {
            String::new()
        } else {
            format!("2024-01-{:02}", i % 9 + 1)
        };
        csv.push_str(&format!("{i},{grp},{score},{day}\n"));
    }
    csv.into_bytes()
}

/// Every page of a query, following `links.next` from the first.
async fn walk(app: &TestApp, first: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut uri = first.to_string();
    loop {
        let r = app.get(&uri).await;
        assert_eq!(r.status, 200, "{uri}: {}", r.text());
        let v = r.json();
        pages.push(v.clone());
        match v["links"]["next"].as_str() {
            Some(next) => uri = next.strip_prefix(HOST).unwrap().to_string(),
            None => return pages,
        }
        assert!(pages.len() < 100, "the walk does not end");
    }
}

#[tokio::test]
async fn cursor_pages_equal_offset_pages() {
    let app = TestApp::with_csvs(&[("t", &table())], "").await;
    for query in [
        "",
        "grp__sort=asc",
        "score__sort=desc&grp__sort=asc",
        "day__sort=desc&grp__differs=a",
        "columns=id&score__sort=asc&day__sort=asc",
        "grp__groupby&score__avg&score__avg__sort=desc",
    ] {
        let size = if query.contains("groupby") { 2 } else { 7 };
        let pages = walk(
            &app,
            &format!("/api/datasets/t/data?{query}&page_size={size}"),
        )
        .await;
        let total = pages[0]["meta"]["total"].as_u64().unwrap();
        assert_eq!(pages.len() as u64, total.div_ceil(size), "{query}");
        let mut seen = 0;
        for (i, page) in pages.iter().enumerate() {
            let n = i + 1;
            let offset = app
                .get(&format!(
                    "/api/datasets/t/data?{query}&page_size={size}&page={n}"
                ))
                .await
                .json();
            assert_eq!(page["data"], offset["data"], "{query}, page {n}");
            assert_eq!(page["meta"], offset["meta"], "{query}, page {n}");
            seen += page["data"].as_array().unwrap().len() as u64;
            if n > 1 {
                assert!(
                    page["links"]["self"].as_str().unwrap().contains("cursor="),
                    "{query}"
                );
            }
        }
        assert_eq!(seen, total, "{query}");
    }
    // Every row once in a sorted walk with nulls and ties.
    let pages = walk(
        &app,
        "/api/datasets/t/data?grp__sort=desc&score__sort=asc&page_size=5",
    )
    .await;
    let mut ids: Vec<i64> = pages
        .iter()
        .flat_map(|p| p["data"].as_array().unwrap().clone())
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, (0..61).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_walk_stays_on_its_version_across_a_refresh() {
    let app = TestApp::with_csvs(&[("t", &table())], "").await;
    let first = app
        .get("/api/datasets/t/data?grp__sort=asc&page_size=7")
        .await;
    assert_eq!(first.headers["cache-control"], "public, no-cache");
    let first = first.json();
    let v1 = first["meta"]["version"].as_str().unwrap().to_string();
    let page2 = app
        .get("/api/datasets/t/data?grp__sort=asc&page_size=7&page=2")
        .await
        .json();
    let next = first["links"]["next"].as_str().unwrap();

    // A refresh publishes a version where every row changed.
    let changed = String::from_utf8(table()).unwrap().replace(",a,", ",z,");
    std::fs::write(app.dir.path().join("datasets/t.csv"), changed).unwrap();
    app.state
        .catalog
        .ingest_and_load(&["t".into()], false)
        .await
        .unwrap();
    let now = app
        .get("/api/datasets/t/data?grp__sort=asc&page_size=7&page=2")
        .await
        .json();
    assert_ne!(now["meta"]["version"], v1);
    assert_ne!(now["data"], page2["data"]);

    // The cursor still reads the version it was written on, and says so to caches.
    let r = app.get(next.strip_prefix(HOST).unwrap()).await;
    assert_eq!(
        r.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let followed = r.json();
    assert_eq!(followed["data"], page2["data"]);
    assert_eq!(followed["meta"]["version"], v1.as_str());
    // Its links stay on that version too.
    let prev = followed["links"]["prev"].as_str().unwrap();
    assert!(
        prev.contains(&format!("/api/datasets/t@{v1}/data?")),
        "{prev}"
    );
    assert_eq!(
        app.get(prev.strip_prefix(HOST).unwrap()).await.json()["data"],
        first["data"]
    );

    // A pinned URL reads the old version, in every format, and is immutable.
    let pinned = app
        .get(&format!(
            "/api/datasets/t@{v1}/data?grp__sort=asc&page_size=7&page=2"
        ))
        .await;
    assert_eq!(pinned.status, 200);
    assert_eq!(
        pinned.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(pinned.json()["data"], page2["data"]);
    let tag = pinned.headers["etag"].to_str().unwrap().to_string();
    let again = app
        .get_with(
            &format!("/api/datasets/t@{v1}/data?grp__sort=asc&page_size=7&page=2"),
            &[("if-none-match", &tag)],
        )
        .await;
    assert_eq!(again.status, 304);
    assert_eq!(
        again.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let csv = app
        .get(&format!("/api/datasets/t@{v1}/data.csv?grp__exact=a"))
        .await
        .text();
    assert_eq!(csv.lines().count(), 1 + 24, "{csv}");
    let csv_now = app
        .get("/api/datasets/t/data.csv?grp__exact=a")
        .await
        .text();
    assert_eq!(csv_now.lines().count(), 1, "{csv_now}");
}

#[tokio::test]
async fn a_version_no_longer_kept_is_gone() {
    let app = TestApp::with_csvs(
        &[("t", &table())],
        "[ingest]\nkeep_versions = 1\nkeep_replaced_ms = 0\n",
    )
    .await;
    let first = app.get("/api/datasets/t/data?page_size=10").await.json();
    let v1 = first["meta"]["version"].as_str().unwrap().to_string();
    let next = first["links"]["next"].as_str().unwrap().to_string();
    let cursor = next.split("cursor=").nth(1).unwrap();
    let both = app
        .get(&format!("/api/datasets/t/data?page=2&cursor={cursor}"))
        .await
        .problem(400);
    assert!(both.contains("cannot be combined"), "{both}");
    std::fs::write(app.dir.path().join("datasets/t.csv"), b"id,grp\n1,a\n").unwrap();
    app.state
        .catalog
        .ingest_and_load(&["t".into()], false)
        .await
        .unwrap();
    let gone = app.get(next.strip_prefix(HOST).unwrap()).await.problem(410);
    assert!(
        gone.contains(&format!("version {v1} of dataset `t` is no longer kept"))
            && gone.contains("start again from the first page"),
        "{gone}"
    );
    let pinned = app
        .get(&format!("/api/datasets/t@{v1}/data"))
        .await
        .problem(410);
    assert!(pinned.contains("no longer kept"), "{pinned}");
    // Malformed positions are 400s that say what to do.
    let bad = app
        .get("/api/datasets/t/data?cursor=abc")
        .await
        .problem(400);
    assert!(bad.contains("follow `links.next`"), "{bad}");
    let odd = app.get("/api/datasets/t@..%2Fx/data").await.problem(400);
    assert!(odd.contains("is not a version id"), "{odd}");
}
