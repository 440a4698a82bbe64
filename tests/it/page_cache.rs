//! Pages read from Parquet go through the cache of decoded blocks: the same answers as with the
//! cache off, a page asked again read from the cache alone, and a new version never given an old
//! version's blocks.

use crate::query::metric;
use crate::support::TestApp;

const ROWS: usize = 40_000;

/// `n` is the row, `word` a scrambled label, `day` a date cycling through a year.
fn csv(tag: &str) -> String {
    let mut csv = String::from("n,word,day\n");
    for n in 0..ROWS {
        let day = 1 + n % 28;
        let month = 1 + (n / 28) % 12;
        csv.push_str(&format!(
            "{n},{tag}{},2024-{month:02}-{day:02}\n",
            (n * 7_919) % 613
        ));
    }
    csv
}

/// Hits and misses of the page cache so far.
async fn counts(app: &TestApp) -> (u64, u64) {
    let text = app.get("/metrics").await.text();
    (
        metric(&text, "qanat_page_cache_hits_total"),
        metric(&text, "qanat_page_cache_misses_total"),
    )
}

const QUERIES: [&str; 4] = [
    // File order by position, over a block boundary.
    "/api/datasets/t/data?page=11&page_size=100",
    // Pruned by the page index: the filter column over the pages left, then the rows.
    "/api/datasets/t/data?n__greater=3000&n__less=3100&page_size=20&page=2",
    // Sorted: positions scattered over every block.
    "/api/datasets/t/data?word__sort=desc&page_size=30",
    "/api/datasets/t/data?day__sort=asc&n__less=4500&columns=day,n&page_size=25",
];

#[tokio::test]
async fn pages_from_parquet_are_gathered_from_kept_blocks() {
    let text = csv("w");
    let cached = TestApp::with_csvs(
        &[("t", text.as_bytes())],
        "resident_bytes = 0\ncache_bytes = 0\n",
    )
    .await;
    let off = TestApp::with_csvs(
        &[("t", text.as_bytes())],
        "resident_bytes = 0\npage_cache_bytes = 0\n",
    )
    .await;
    // The two apps' versions differ, so their pages differ in version and cursors only.
    let answer = |v: serde_json::Value| (v["data"].clone(), v["meta"]["total"].clone());
    for q in QUERIES {
        let want = off.get(q).await;
        assert_eq!(want.status, 200, "{q}");
        let want = answer(want.json());
        assert!(
            want.0.as_array().is_some_and(|rows| rows.len() >= 20),
            "{q}"
        );
        let first = answer(cached.get(q).await.json());
        assert_eq!(first, want, "{q}: first read");
        let before = counts(&cached).await;
        let again = answer(cached.get(q).await.json());
        assert_eq!(again, want, "{q}: from the cache");
        let after = counts(&cached).await;
        assert!(after.0 > before.0, "{q}: no hits ({before:?} → {after:?})");
        assert_eq!(after.1, before.1, "{q}: blocks read again");
    }
    assert_eq!(counts(&off).await, (0, 0));
    let rows = cached.rows(QUERIES[0]).await;
    assert_eq!(rows[0]["n"], 1_000);
    assert_eq!(rows[99]["n"], 1_099);
    assert_eq!(rows[99]["word"], format!("w{}", (1_099 * 7_919) % 613));

    // A new version of the dataset: its pages, not the old version's kept blocks.
    cached.republish("t", &csv("v")).await;
    let rows = cached.rows(QUERIES[0]).await;
    assert_eq!(rows[99]["word"], format!("v{}", (1_099 * 7_919) % 613));
}
