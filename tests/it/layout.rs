//! The Parquet layout prunes: DataFusion's execution metrics show selective filters reading a
//! fraction of the row groups (statistics, bloom filters) and pages (page index), and
//! `[layout] sort_by` stores and serves rows in that order.

use qanat::query::engine::ScanReport;

use crate::support::{TestApp, toml_for};

const ROWS: usize = 20_000;

/// `seq` ascending in the file, `id` a permutation of it, `code` a unique code in no order,
/// `cat` three values.
fn table() -> Vec<u8> {
    let mut csv = String::from("seq,id,code,cat\n");
    for i in 0..ROWS {
        let id = (i * 7_919) % ROWS;
        let code = format!("C{:07}", (i * 4_001 + 17) % ROWS);
        let cat = ["x", "y", "z"][i % 3];
        csv.push_str(&format!("{i},{id},{code},{cat}\n"));
    }
    csv.into_bytes()
}

async fn app() -> TestApp {
    let csv = table();
    let grouped = toml_for(
        "grouped.csv",
        "[layout]\nrow_group_rows = 2000\nbloom_filters = [\"code\"]\n",
    );
    let sorted = toml_for("sorted.csv", "[layout]\nsort_by = [\"id\"]\n");
    let files: Vec<(&str, &[u8])> = vec![
        ("grouped.csv", &csv),
        ("grouped.toml", &grouped),
        ("sorted.csv", &csv),
        ("sorted.toml", &sorted),
    ];
    // Read from Parquet, not from memory, so that the scans show.
    TestApp::with_files(&files, "resident_bytes = 0\n").await
}

/// Runs the filtered (unpaged) query of `raw` on the current version and reports its scans.
async fn scan(app: &TestApp, id: &str, raw: &str) -> ScanReport {
    let state = &app.state;
    let loaded = state.catalog.loaded(id).unwrap();
    let q =
        qanat::query::params::parse(raw, &loaded.manifest.schema, &state.settings.limits).unwrap();
    let df = state.executor.engine().read(loaded.table.clone()).unwrap();
    let planned = qanat::query::plan::plan(df, &q, &loaded.manifest.schema, false, false).unwrap();
    state
        .executor
        .engine()
        .scan_report(planned.rows)
        .await
        .unwrap()
}

#[tokio::test]
async fn selective_filters_read_a_fraction_of_the_row_groups() {
    let app = app().await;
    // Statistics: `seq` grows through the file, so a range touches the last row group only.
    let r = scan(&app, "grouped", "seq__greater=18500").await;
    assert_eq!(r.rows, 1_500);
    assert_eq!(r.row_groups, 10);
    assert_eq!(r.row_groups_pruned_by_statistics, 9, "{r:?}");
    assert_eq!(r.row_groups_read(), 1);

    // Bloom filters: a code in no order is in every row group's min..max, but the filters
    // rule out nearly all of them (1 % false positives).
    let r = scan(&app, "grouped", "code__exact=C0012345").await;
    assert_eq!(r.rows, 1);
    assert_eq!(r.row_groups_pruned_by_statistics, 0, "{r:?}");
    assert!(r.row_groups_pruned_by_bloom_filter >= 8, "{r:?}");
    assert!(r.row_groups_read() <= 2, "{r:?}");
    // A code that does not exist reads (nearly) nothing.
    let r = scan(&app, "grouped", "code__in=Z1,Z2").await;
    assert_eq!(r.rows, 0);
    assert!(r.row_groups_read() <= 1, "{r:?}");

    // Without a useful filter everything is read.
    let r = scan(&app, "grouped", "cat__exact=x").await;
    assert_eq!((r.rows, r.row_groups_read()), (6_667, 10), "{r:?}");

    // The page index: one row group of 20,000 rows in pages of 1,024; a range on the sorted
    // `id` skips the first sixteen pages (rows up to 16,383).
    let r = scan(&app, "sorted", "id__greater=17000").await;
    assert_eq!(r.rows, 3_000);
    assert_eq!(r.pages_pruned, 16, "{r:?}");
    // Each file's footer and page index were read once and are kept for the next requests.
    assert_eq!(app.state.executor.engine().cached_footers(), 2);
}

#[tokio::test]
async fn sort_by_stores_and_serves_rows_in_that_order() {
    let app = app().await;
    let v = app
        .get("/api/datasets/sorted/data?page_size=5&columns=id,seq")
        .await
        .json();
    let ids: Vec<i64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [0, 1, 2, 3, 4]);
    assert_eq!(v["meta"]["total"], ROWS);
    // The row with id 1 is the one the source had: seq · 7919 ≡ 1 (mod 20000).
    let seq = v["data"][1]["seq"].as_i64().unwrap() as usize;
    assert_eq!(seq * 7_919 % ROWS, 1);
    // Cursor pages follow the stored order too.
    let next = v["links"]["next"].as_str().unwrap();
    let next = app
        .get(next.strip_prefix("http://qanat.test").unwrap())
        .await
        .json();
    assert_eq!(next["data"][0]["id"], 5);
    // Nothing lost: every id once, the grouped copy unchanged.
    let csv = app
        .get("/api/datasets/sorted/data.csv?columns=id")
        .await
        .text();
    let got: Vec<usize> = csv.lines().skip(1).map(|l| l.parse().unwrap()).collect();
    assert_eq!(got, (0..ROWS).collect::<Vec<_>>());
    let first = app.rows("/api/datasets/grouped/data?page_size=2").await;
    assert_eq!(
        (first[0]["seq"].as_i64(), first[1]["seq"].as_i64()),
        (Some(0), Some(1))
    );
}

#[tokio::test]
async fn layout_names_only_columns_that_exist() {
    let toml = toml_for("t.csv", "[layout]\nsort_by = [\"nope\"]\n");
    let files: Vec<(&str, &[u8])> = vec![("t.csv", b"a,b\n1,2\n"), ("t.toml", &toml)];
    let app = TestApp::with_files(&files, "").await;
    let detail = app.get("/api/datasets/t/data").await.problem(503);
    assert!(
        detail.contains("[layout] sort_by names no column `nope`; the columns are: a, b"),
        "{detail}"
    );
}

#[tokio::test]
async fn pages_of_every_row_are_read_from_parquet_by_position() {
    let app = app().await;
    let state = &app.state;
    let loaded = state.catalog.loaded("grouped").unwrap();
    // Straight from the file: rows 1,990 .. 2,010 straddle two row groups of 2,000.
    // With decoded blocks kept (block 1 holds rows of both groups) and with none.
    for budget in [1 << 20, 0] {
        let cache = qanat::query::page_cache::PageCache::new(budget);
        let file = qanat::query::direct::FileRows::open(&state.storage, &loaded.manifest, &cache)
            .await
            .unwrap()
            .expect("one file");
        let columns = ["cat".to_string(), "seq".to_string()];
        let batches = file
            .rows(1_990, 20, &columns)
            .await
            .unwrap()
            .expect("rows by position");
        let seqs: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                let seq = b
                    .column(1)
                    .as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .unwrap();
                seq.values().to_vec()
            })
            .collect();
        assert_eq!(seqs, (1_990..2_010).collect::<Vec<_>>());
        assert_eq!(batches[0].schema().field(0).name(), "cat");
    }
    // Over HTTP: pages by number, the last one short, one past the end empty, cursors.
    let seq_of = |rows: &[serde_json::Value]| -> Vec<i64> {
        rows.iter().map(|r| r["seq"].as_i64().unwrap()).collect()
    };
    let page = app
        .rows("/api/datasets/grouped/data?page=7&page_size=300&columns=seq,id")
        .await;
    assert_eq!(seq_of(&page), (1_800..2_100).collect::<Vec<_>>());
    assert_eq!(
        page[0],
        serde_json::json!({"seq": 1_800, "id": 1_800 * 7_919 % ROWS})
    );
    let last = app
        .get("/api/datasets/grouped/data?page=67&page_size=300")
        .await
        .json();
    assert_eq!(
        seq_of(last["data"].as_array().unwrap()),
        (19_800..20_000).collect::<Vec<_>>()
    );
    assert!(last["links"]["next"].is_null());
    let past = app
        .get("/api/datasets/grouped/data?page=70&page_size=300")
        .await
        .json();
    assert_eq!(past["data"], serde_json::json!([]));
    assert_eq!(past["meta"]["total"], ROWS);
    let mut uri = "/api/datasets/grouped/data?page_size=900&columns=seq".to_string();
    let mut seen = Vec::new();
    while seen.len() < 5_000 {
        let v = app.get(&uri).await.json();
        seen.extend(seq_of(v["data"].as_array().unwrap()));
        let next = v["links"]["next"].as_str().unwrap();
        uri = next.strip_prefix("http://qanat.test").unwrap().to_string();
    }
    assert_eq!(seen, (0..5_400).collect::<Vec<_>>());
    // Every page of every row was read by position, none planned.
    assert_eq!(crate::sidecar::pages_by(&app, "planned").await, 0);
    assert!(crate::sidecar::pages_by(&app, "parquet_position").await >= 9);
}

#[tokio::test]
async fn sorted_and_filtered_pages_from_parquet_read_their_rows_by_position() {
    let app = app().await;
    let ids = |rows: &[serde_json::Value], key: &str| -> Vec<i64> {
        rows.iter().map(|r| r[key].as_i64().unwrap()).collect()
    };
    // `id` is a permutation spread over every row group: the plan finds the page's positions
    // from `id` alone, then reads those rows.
    let v = app
        .get(
            "/api/datasets/grouped/data?id__greater=15000&id__sort=desc&page_size=7&columns=seq,id",
        )
        .await
        .json();
    assert_eq!(v["meta"]["total"], 5_000);
    let rows = v["data"].as_array().unwrap();
    assert_eq!(ids(rows, "id"), (19_993..20_000).rev().collect::<Vec<_>>());
    for r in rows {
        let (seq, id) = (
            r["seq"].as_i64().unwrap() as usize,
            r["id"].as_i64().unwrap(),
        );
        assert_eq!((seq * 7_919 % ROWS) as i64, id, "{r}");
    }
    let next = v["links"]["next"].as_str().unwrap();
    let next = app
        .rows(next.strip_prefix("http://qanat.test").unwrap())
        .await;
    assert_eq!(ids(&next, "id"), (19_986..19_993).rev().collect::<Vec<_>>());
    let y = app
        .rows("/api/datasets/grouped/data?cat__exact=y&seq__sort=desc&page_size=4&page=2")
        .await;
    assert_eq!(ids(&y, "seq"), [19_987, 19_984, 19_981, 19_978]);
    assert_eq!(y[0]["cat"], "y");
    assert_eq!(crate::sidecar::pages_by(&app, "planned").await, 0);
    assert_eq!(
        crate::sidecar::pages_by(&app, "parquet_positioned").await,
        3
    );
}
