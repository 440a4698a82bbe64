//! A file of many blocks, typed on every core: rows stored in file order, rejected rows with
//! their exact lines, and a profile counted over every block.

use serde_json::{Value, json};

use crate::support::TestApp;

/// Rows of the generated file: several blocks of records whatever the block size.
const ROWS: usize = 70_000;

/// A CSV with multi-line quoted cells, rows with too many fields, a repeated header and a
/// footnote, with the lines the report must give.
fn messy_file() -> (String, Vec<(u64, String)>) {
    let mut csv = String::from("n,cat,note\n");
    let mut line = 2u64;
    let mut rejected = Vec::new();
    for n in 0..ROWS {
        if [5, 33_000, 69_000].contains(&n) {
            csv.push_str("x,y,z,extra\n");
            rejected.push((line, "4 fields where the header has 3".to_string()));
            line += 1;
        }
        if n == 40_000 {
            csv.push_str("n,cat,note\n");
            rejected.push((line, "repeats the header".to_string()));
            line += 1;
        }
        let cat = ["a", "b", "c"][n % 3];
        if n % 1000 == 7 {
            // A cell over two lines: the next record starts a line further.
            csv.push_str(&format!("{n},{cat},\"two\nlines\"\n"));
            line += 2;
        } else {
            csv.push_str(&format!("{n},{cat},plain\n"));
            line += 1;
        }
    }
    csv.push_str("Source : generated for the test\n");
    rejected.push((
        line,
        "footnote below the table: `Source : generated for the test`".to_string(),
    ));
    (csv, rejected)
}

#[tokio::test]
async fn a_file_of_many_blocks_keeps_its_order_its_lines_and_its_counts() {
    let (csv, rejected) = messy_file();
    let app = TestApp::with_csvs(&[("m", csv.as_bytes())], "").await;
    let d = app.get("/api/datasets/m").await.json();
    assert_eq!(d["rows"], ROWS);
    let report = &d["report"];
    assert_eq!(report["rows_read"], ROWS + rejected.len());
    assert_eq!(report["rows_rejected"], rejected.len());
    let want: Vec<Value> = (rejected.iter())
        .map(|(line, reason)| json!({"line": line, "reason": reason}))
        .collect();
    assert_eq!(report["rejected"], json!(want));
    // Stored in file order: the n-th row holds n, on every page.
    for page in [1, 17, 35] {
        let rows = app
            .rows(&format!("/api/datasets/m/data?page_size=1000&page={page}"))
            .await;
        let ns: Vec<u64> = rows.iter().map(|r| r["n"].as_u64().unwrap()).collect();
        let first = (page as u64 - 1) * 1000;
        assert_eq!(ns, (first..first + 1000).collect::<Vec<_>>());
    }
    assert_eq!(
        app.rows("/api/datasets/m/data?n__exact=16007").await,
        [json!({"n": 16007, "cat": "c", "note": "two\nlines"})]
    );
    // The profile counts every block: exact counts of a column with few values.
    let profile = app.get("/api/datasets/m/profile").await.json();
    let cat = &profile["columns"][1];
    assert_eq!(cat["distinct"], 3);
    let third = ROWS as u64 / 3;
    assert_eq!(
        cat["top"],
        json!([
            {"value": "a", "count": third + 1},
            {"value": "b", "count": third},
            {"value": "c", "count": third},
        ])
    );
    let n = &profile["columns"][0];
    assert_eq!(
        (n["min"].clone(), n["max"].clone()),
        (json!(0), json!(ROWS - 1))
    );
    let distinct = n["distinct"].as_f64().unwrap();
    assert!(
        (distinct - ROWS as f64).abs() / (ROWS as f64) < 0.05,
        "{distinct}"
    );
}
