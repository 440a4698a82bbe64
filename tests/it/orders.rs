//! A large table served from Parquet answers pages sorted on a numeric or date column, under
//! range filters on it, through its order sidecar: the same rows, ties and nulls in the same
//! places, the same totals and cursors as a plan gives.

use serde_json::{Value, json};

use crate::sidecar::{ns, pages_by, version_dir, walk};
use crate::support::TestApp;

/// Enough rows for a sidecar.
const ROWS: usize = 205_000;

/// `v`: an integer in 0..1000 in a scrambled order (many ties), null on every 101st row.
fn v_of(n: usize) -> Option<i64> {
    (n % 101 != 7).then(|| ((n * 7_919) % 1_000) as i64)
}

/// `x`: a float of either sign, a few hundred rows each.
fn x_of(n: usize) -> f64 {
    ((n * 31) % 701) as f64 / 4.0 - 80.0
}

async fn app() -> TestApp {
    let mut csv = String::from("n,v,x,day\n");
    for n in 0..ROWS {
        let v = v_of(n).map(|v| v.to_string()).unwrap_or_default();
        let day = 1 + (n * 13) % 28;
        csv.push_str(&format!("{n},{v},{},2024-02-{day:02}\n", x_of(n)));
    }
    TestApp::with_csvs(&[("big", csv.as_bytes())], "resident_bytes = 0\n").await
}

/// Rows sorted on `v` as every route sorts them: by value, ties in row order, nulls last.
fn by_v(descending: bool, keep: impl Fn(Option<i64>) -> bool) -> Vec<usize> {
    let mut valued: Vec<(i64, usize)> = (0..ROWS)
        .filter(|n| keep(v_of(*n)))
        .filter_map(|n| v_of(n).map(|v| (v, n)))
        .collect();
    valued.sort_by_key(|(v, n)| (if descending { -v } else { *v }, *n));
    let nulls = (0..ROWS).filter(|n| v_of(*n).is_none() && keep(None));
    valued.into_iter().map(|(_, n)| n).chain(nulls).collect()
}

#[tokio::test]
async fn sorted_pages_come_from_the_order_sidecar() {
    let app = app().await;
    let dir = version_dir(&app, "big").await;
    assert!(
        dir.join("orders.bin").is_file(),
        "no order sidecar in {dir:?}"
    );
    let d = "/api/datasets/big/data";

    // Whole-table sorts, ascending and descending: ties in row order, nulls last.
    for (dir, descending) in [("asc", false), ("desc", true)] {
        let want = by_v(descending, |_| true);
        let first = app
            .get(&format!("{d}?v__sort={dir}&page_size=30"))
            .await
            .json();
        assert_eq!(first["meta"]["total"], ROWS);
        assert_eq!(ns(first["data"].as_array().unwrap()), want[..30], "{dir}");
        let deep = app
            .rows(&format!(
                "{d}?v__sort={dir}&page_size=50&page=4000&columns=n,v"
            ))
            .await;
        assert_eq!(ns(&deep), want[199_950..200_000], "{dir}");
        let n = want[199_950];
        assert_eq!(deep[0], json!({"n": n, "v": v_of(n)}));
        // The last page holds rows without a value.
        let tail = app
            .rows(&format!("{d}?v__sort={dir}&page_size=100&page=2050"))
            .await;
        assert_eq!(ns(&tail), want[204_900..]);
        assert_eq!(tail.last().unwrap()["v"], Value::Null);
    }

    // Ranges on the sorted column, walked to the end by cursor, both ways.
    let keep = |v: Option<i64>| v.is_some_and(|v| (500..600).contains(&v));
    for (dir, descending) in [("desc", true), ("asc", false)] {
        let want = by_v(descending, keep);
        let base = format!("{d}?v__greater=500&v__strictly_less=600&v__sort={dir}");
        assert_eq!(
            app.total(&format!("{base}&page_size=1")).await,
            want.len() as u64
        );
        assert_eq!(
            walk(&app, &format!("{base}&page_size=997")).await,
            want,
            "{dir}"
        );
    }
    let exact = app
        .get(&format!("{d}?v__exact=7&v__sort=desc&page_size=5"))
        .await
        .json();
    let sevens = by_v(true, |v| v == Some(7));
    assert_eq!(exact["meta"]["total"], sevens.len());
    assert_eq!(ns(exact["data"].as_array().unwrap()), sevens[..5]);
    let none = app
        .get(&format!("{d}?v__greater=5000&v__sort=asc"))
        .await
        .json();
    assert_eq!(
        (none["meta"]["total"].clone(), none["data"].clone()),
        (json!(0), json!([]))
    );

    // Floats of either sign, and dates.
    let mut xs: Vec<(f64, usize)> = (0..ROWS).map(|n| (x_of(n), n)).collect();
    xs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let page = app
        .rows(&format!("{d}?x__sort=desc&x__less=-10&page_size=20&page=3"))
        .await;
    let below: Vec<usize> = xs
        .iter()
        .filter(|(x, _)| *x <= -10.0)
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(ns(&page), below[40..60]);
    let days = app
        .get(&format!(
            "{d}?day__exact=2024-02-09&day__sort=asc&page_size=3"
        ))
        .await
        .json();
    let ninth: Vec<usize> = (0..ROWS).filter(|n| 1 + (n * 13) % 28 == 9).collect();
    assert_eq!(days["meta"]["total"], ninth.len());
    assert_eq!(ns(days["data"].as_array().unwrap()), ninth[..3]);
    assert_eq!(days["data"][0]["day"], "2024-02-09");

    assert_eq!(pages_by(&app, "planned").await, 0);
    assert_eq!(pages_by(&app, "parquet_positioned").await, 0);
    assert!(pages_by(&app, "parquet_ordered").await >= 20);

    // A filter on another column is planned narrow, with the same order.
    let other = app
        .rows(&format!("{d}?n__less=1000&v__sort=desc&page_size=5"))
        .await;
    let want: Vec<usize> = by_v(true, |_| true)
        .into_iter()
        .filter(|n| *n <= 1000)
        .collect();
    assert_eq!(ns(&other), want[..5]);
    assert_eq!(pages_by(&app, "parquet_positioned").await, 1);
}

#[tokio::test]
async fn the_tabular_api_puts_rows_without_a_value_first_when_descending() {
    let app = app().await;
    let nulls = (0..ROWS).filter(|n| v_of(*n).is_none());
    let valued = by_v(true, |_| true)
        .into_iter()
        .filter(|n| v_of(*n).is_some());
    let want: Vec<usize> = nulls.chain(valued).collect();
    // The second page, and the one where the nulls end and the values begin.
    for page in [
        2,
        want.iter().position(|n| v_of(*n).is_some()).unwrap() / 10 + 1,
    ] {
        let got = app
            .get(&format!(
                "/api/resources/big/data/?v__sort=desc&page_size=10&page={page}"
            ))
            .await
            .json();
        assert_eq!(
            ns(got["data"].as_array().unwrap()),
            want[(page - 1) * 10..page * 10]
        );
    }
    assert_eq!(pages_by(&app, "parquet_ordered").await, 2);
}
