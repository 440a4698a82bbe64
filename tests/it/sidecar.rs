//! A large table served from Parquet answers equality-filtered pages and counts by value through
//! its posting-list sidecar, and filters on an ordered column through the page index, with the
//! same answers as a scan would give.

use serde_json::{Value, json};

use crate::support::TestApp;

/// Enough rows for a sidecar.
const ROWS: usize = 210_000;
const CODES: usize = 1_000;

/// `code` is `C0000`…`C0999` in a scrambled order, null on every 97th row; `n` is the row.
fn code_of(n: usize) -> Option<String> {
    (n % 97 != 5).then(|| format!("C{:04}", (n * 7_919) % CODES))
}

async fn app() -> TestApp {
    let mut csv = String::from("code,n\n");
    for n in 0..ROWS {
        csv.push_str(&format!("{},{n}\n", code_of(n).unwrap_or_default()));
    }
    TestApp::with_csvs(&[("big", csv.as_bytes())], "resident_bytes = 0\n").await
}

pub fn ns(rows: &[Value]) -> Vec<usize> {
    rows.iter()
        .map(|r| r["n"].as_u64().unwrap() as usize)
        .collect()
}

/// `n` of every row of a query, page after page by the `next` links.
pub async fn walk(app: &TestApp, first: &str) -> Vec<usize> {
    let mut uri = first.to_string();
    let mut seen = Vec::new();
    loop {
        let v = app.get(&uri).await.json();
        seen.extend(ns(v["data"].as_array().unwrap()));
        match v["links"]["next"].as_str() {
            Some(next) => uri = next.strip_prefix("http://qanat.test").unwrap().to_string(),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn equality_pages_and_counts_come_from_the_posting_lists() {
    let app = app().await;
    let dir = version_dir(&app, "big").await;
    assert!(dir.join("postings.bin").is_file(), "no sidecar in {dir:?}");

    let want: Vec<usize> = (0..ROWS)
        .filter(|n| code_of(*n).as_deref() == Some("C0007"))
        .collect();
    let page = app
        .get("/api/datasets/big/data?code__exact=C0007&page_size=50")
        .await
        .json();
    assert_eq!(page["meta"]["total"], want.len());
    assert_eq!(ns(page["data"].as_array().unwrap()), want[..50]);
    assert_eq!(page["data"][0], json!({"code": "C0007", "n": want[0]}));
    let third = app
        .rows("/api/datasets/big/data?code__exact=C0007&page=3&page_size=50&columns=n")
        .await;
    assert_eq!(ns(&third), want[100..150]);
    assert_eq!(third[0], json!({"n": want[100]}));
    // Cursors walk the whole list.
    let seen = walk(
        &app,
        "/api/datasets/big/data?code__exact=C0007&page_size=90",
    )
    .await;
    assert_eq!(seen, want);
    let none = app
        .get("/api/datasets/big/data?code__exact=C9999")
        .await
        .json();
    assert_eq!(
        (none["meta"]["total"].clone(), none["data"].clone()),
        (json!(0), json!([]))
    );

    // `in` merges the values' lists in file order; a value no row holds adds nothing.
    let two: Vec<usize> = (0..ROWS)
        .filter(|n| matches!(code_of(*n).as_deref(), Some("C0007" | "C0011")))
        .collect();
    let base = "/api/datasets/big/data?code__in=C0011,C9999,C0007";
    let second = app.get(&format!("{base}&page=2&page_size=50")).await.json();
    assert_eq!(second["meta"]["total"], two.len());
    assert_eq!(ns(second["data"].as_array().unwrap()), two[50..100]);
    assert_eq!(walk(&app, &format!("{base}&page_size=111")).await, two);

    // Counts by value: ascending, the null group last with a count of 0.
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for n in 0..ROWS {
        if let Some(c) = code_of(n) {
            *counts.entry(c).or_default() += 1;
        }
    }
    let groups = app
        .get("/api/datasets/big/data?code__groupby&code__count&page_size=3")
        .await
        .json();
    assert_eq!(groups["meta"]["total"], CODES + 1);
    let first: Vec<Value> = (counts.iter().take(3))
        .map(|(c, n)| json!({"code": c, "code__count": n}))
        .collect();
    assert_eq!(groups["data"], json!(first));
    let last = app
        .rows(&format!(
            "/api/datasets/big/data?code__groupby&code__count&page_size=3&page={}",
            CODES / 3 + 1
        ))
        .await;
    let (c, n) = counts.iter().next_back().unwrap();
    assert_eq!(
        last,
        [
            json!({"code": c, "code__count": n}),
            json!({"code": null, "code__count": 0})
        ]
    );
    // None of these pages was planned: lists and counts answered them all.
    assert_eq!(pages_by(&app, "planned").await, 0);
    assert_eq!(pages_by(&app, "postings_counts").await, 2);
    assert!(pages_by(&app, "parquet_postings").await >= 5);
}

#[tokio::test]
async fn filters_on_an_ordered_column_read_only_the_pages_that_can_match() {
    let app = app().await;
    // `n` ascends through the file: the page index leaves one page for an equality.
    let one = app
        .get("/api/datasets/big/data?n__exact=123456")
        .await
        .json();
    assert_eq!(one["meta"]["total"], 1);
    assert_eq!(
        one["data"],
        json!([{"code": code_of(123_456), "n": 123_456}])
    );
    let none = app.get("/api/datasets/big/data?n__exact=-4").await.json();
    assert_eq!(
        (none["meta"]["total"].clone(), none["data"].clone()),
        (json!(0), json!([]))
    );
    // A range with a second filter on a column the index cannot decide, paged and walked by
    // cursor: exactly the rows a scan gives.
    let want: Vec<usize> = (200_000..ROWS)
        .filter(|n| code_of(*n).is_some_and(|c| c.as_str() <= "C0100"))
        .collect();
    let base = "/api/datasets/big/data?n__strictly_greater=199999&code__less=C0100";
    let second = app.get(&format!("{base}&page_size=40&page=2")).await.json();
    assert_eq!(second["meta"]["total"], want.len());
    assert_eq!(ns(second["data"].as_array().unwrap()), want[40..80]);
    assert_eq!(walk(&app, &format!("{base}&page_size=300")).await, want);
    let low = app.rows("/api/datasets/big/data?n__less=2&columns=n").await;
    assert_eq!(low, [json!({"n": 0}), json!({"n": 1}), json!({"n": 2})]);
    assert_eq!(pages_by(&app, "planned").await, 0);
    assert!(pages_by(&app, "parquet_pruned").await >= 6);
    // A range the index cannot narrow enough is answered another way, and still exactly.
    let wide = app
        .get("/api/datasets/big/data?n__greater=1000&page_size=1")
        .await
        .json();
    assert_eq!(wide["meta"]["total"], ROWS - 1000);
    assert_eq!(wide["data"], json!([{"code": code_of(1000), "n": 1000}]));
}

/// The directory of a dataset's current version.
pub async fn version_dir(app: &TestApp, id: &str) -> std::path::PathBuf {
    let version = app.get(&format!("/api/datasets/{id}")).await.json()["version"].clone();
    app.storage_dir().join(id).join(version.as_str().unwrap())
}

/// Pages answered by a route since the server started.
pub async fn pages_by(app: &TestApp, route: &str) -> u64 {
    let metrics = app.get("/metrics").await.text();
    let line = format!("qanat_pages_total{{route=\"{route}\"}} ");
    let found = metrics.lines().find_map(|l| l.strip_prefix(line.as_str()));
    found
        .unwrap_or_else(|| panic!("{line} in {metrics}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn sorted_pages_under_an_equality_sort_only_the_listed_rows() {
    // `k` repeats (ties broken by row) and is null on every 13th row.
    let k_of = |n: usize| (!n.is_multiple_of(13)).then_some((n * 31) % 50);
    let mut csv = String::from("code,n,k\n");
    for n in 0..ROWS {
        let k = k_of(n).map(|k| k.to_string()).unwrap_or_default();
        csv.push_str(&format!("{},{n},{k}\n", code_of(n).unwrap_or_default()));
    }
    let app = TestApp::with_csvs(&[("big", csv.as_bytes())], "resident_bytes = 0\n").await;
    // Few matches (their keys read and sorted), and a tenth of the rows (the key's order
    // walked, keeping the matches).
    let few = ["C0007", "C0011"].map(String::from).to_vec();
    let many: Vec<String> = (0..100).map(|c| format!("C{c:04}")).collect();
    let planned = pages_by(&app, "planned").await;
    let by_lists = pages_by(&app, "parquet_postings").await;
    for codes in [few, many] {
        let listed: Vec<usize> = (0..ROWS)
            .filter(|n| code_of(*n).is_some_and(|c| codes.contains(&c)))
            .collect();
        check_sorted_pages(&app, &codes.join(","), &listed, k_of).await;
    }
    assert_eq!(pages_by(&app, "planned").await, planned, "nothing planned");
    assert!(pages_by(&app, "parquet_postings").await >= by_lists + 20);
}

/// Sorted pages by `k` under `code__in=codes`, both ways, page by page and by cursors, against
/// the listed rows sorted here.
async fn check_sorted_pages(
    app: &TestApp,
    codes: &str,
    listed: &[usize],
    k_of: impl Fn(usize) -> Option<usize>,
) {
    // Nulls last both ways on the native routes; ties in file order.
    let sorted = |descending: bool| {
        let mut rows = listed.to_vec();
        rows.sort_by(|a, b| match (k_of(*a), k_of(*b)) {
            (None, None) => a.cmp(b),
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (Some(x), Some(y)) if descending => y.cmp(&x).then(a.cmp(b)),
            (Some(x), Some(y)) => x.cmp(&y).then(a.cmp(b)),
        });
        rows
    };
    for (dir, descending) in [("desc", true), ("asc", false)] {
        let want = sorted(descending);
        let base = format!("/api/datasets/big/data?code__in={codes}&k__sort={dir}");
        let page = app.get(&format!("{base}&page_size=50")).await.json();
        assert_eq!(page["meta"]["total"], want.len());
        assert_eq!(ns(page["data"].as_array().unwrap()), want[..50], "{dir}");
        let third = app.rows(&format!("{base}&page=3&page_size=50")).await;
        assert_eq!(ns(&third), want[100..150], "{dir}");
        // Cursors through the first thousand rows, then the list's last page.
        let mut uri = format!("{base}&page_size=77");
        let mut seen = Vec::new();
        while seen.len() < want.len().min(1_000) {
            let v = app.get(&uri).await.json();
            seen.extend(ns(v["data"].as_array().unwrap()));
            match v["links"]["next"].as_str() {
                Some(next) => uri = next.strip_prefix("http://qanat.test").unwrap().to_string(),
                None => break,
            }
        }
        assert_eq!(seen, want[..seen.len()], "{dir}");
        let pages = want.len().div_ceil(50);
        let last = app.rows(&format!("{base}&page={pages}&page_size=50")).await;
        assert_eq!(ns(&last), want[(pages - 1) * 50..], "{dir}");
    }
}
