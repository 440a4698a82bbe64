//! Ingestion: dialect and type detection, column naming, row accounting, and the version switch
//! that never shows a partial or failed version.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::support::{TestApp, toml_for};

/// The columns' types, in order.
fn types_of(detail: &Value) -> Vec<String> {
    schema_of(detail).into_iter().map(|c| c.2).collect()
}

fn schema_of(detail: &Value) -> Vec<(String, String, String)> {
    detail["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["label"].as_str().unwrap().into(),
                c["type"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[tokio::test]
async fn sample_catalog_types_and_names() {
    let app = TestApp::sample().await;
    let d = app.get("/api/datasets/communes").await.json();
    let text = |name: &str, label: &str, kind: &str| (name.into(), label.into(), kind.into());
    assert_eq!(
        schema_of(&d),
        [
            text("code_insee", "Code INSEE", "string"),
            text("nom_de_la_commune", "Nom de la commune", "string"),
            text("departement", "Département", "string"),
            text("population_municipale", "Population municipale", "integer"),
            text("latitude", "Latitude", "float"),
            text("longitude", "Longitude", "float"),
        ]
    );
    assert_eq!(d["rows"], 34875);
    assert_eq!(d["report"]["rows_read"], 34875);
    assert!(
        d["report"]["delimiter"]
            .as_str()
            .unwrap()
            .starts_with("semicolon"),
        "{}",
        d["report"]["delimiter"]
    );
    assert!(
        d["report"]["encoding"]
            .as_str()
            .unwrap()
            .contains("windows-1252"),
        "{}",
        d["report"]["encoding"]
    );
    assert_eq!(d["schema"][0]["description"], "Code INSEE de la commune");
    // Codes with leading zeros stay text, and the report says why.
    assert_eq!(d["schema"][0]["type"], "string");
    let why = d["report"]["columns"][0]["reason"].as_str().unwrap();
    assert!(
        why.contains("`01001` (line 2)") && why.contains("leading zero"),
        "{why}"
    );
    let why = d["report"]["columns"][4]["reason"].as_str().unwrap();
    assert!(why.contains("decimal comma"), "{why}");
    let dep = app.get("/api/datasets/departements").await.json();
    assert_eq!(dep["schema"][1]["type"], "string");
    assert!(
        dep["report"]["columns"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("`01`")
    );
    // The catalog lists every dataset with its row count.
    let list = app.get("/api/datasets").await.json();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["communes", "departements", "villes-maroc"]);
    assert_eq!(list["meta"]["total"], 3);
    let found = app
        .get("/api/datasets?q=communes%20Francaises")
        .await
        .json();
    assert_eq!(found["meta"]["total"], 1);
    assert_eq!(found["data"][0]["id"], "communes");
    // The profile against reference counts of the published file.
    let profile = app.get("/api/datasets/villes-maroc/profile").await.json();
    let recs = crate::support::sample_records("villes-maroc.csv", b',');
    let lat = &profile["columns"][3];
    assert_eq!(lat["name"], "latitude");
    assert_eq!(
        (lat["type"].clone(), lat["nulls"].clone()),
        (json!("float"), json!(0))
    );
    let lats: Vec<f64> = recs.iter().map(|r| r[3].parse().unwrap()).collect();
    let (min, max) = lats
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), l| (lo.min(*l), hi.max(*l)));
    assert_eq!(
        (lat["min"].clone(), lat["max"].clone()),
        (json!(min), json!(max))
    );
    let no_arabic = recs.iter().filter(|r| r[2].is_empty()).count();
    assert_eq!(profile["columns"][2]["nulls"], no_arabic);
    // Region codes: text with leading zeros, counted exactly, most frequent first.
    let region = &profile["columns"][6];
    assert_eq!(region["type"], "string");
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for r in &recs {
        *counts.entry(r.get(6).unwrap()).or_default() += 1;
    }
    assert_eq!(region["distinct"], counts.len());
    let mut by_count: Vec<(&str, usize)> = counts.into_iter().collect();
    by_count.sort_by_key(|c| std::cmp::Reverse(c.1));
    assert!(by_count[0].1 > by_count[1].1 && by_count[1].1 > by_count[2].1);
    assert_eq!(
        region["top"].as_array().unwrap()[..2],
        [
            json!({"value": by_count[0].0, "count": by_count[0].1}),
            json!({"value": by_count[1].0, "count": by_count[1].1})
        ]
    );
    assert!(by_count[0].0.starts_with('0'));
}

#[tokio::test]
async fn inference_reads_the_whole_file_and_null_markers() {
    // The late `2A004` turns the column into text instead of being lost.
    let mut csv = String::from("\u{feff}Code commune;Population;Ratio;Ouvert;Date;Heure;Note\n");
    for i in 0..3000 {
        csv.push_str(&format!(
            "{};{};{}.5;true;2024-01-{:02};2024-01-01T10:00:00+02:00;{}\n",
            10000 + i,
            i,
            i,
            i % 28 + 1,
            if i % 2 == 0 { "NA" } else { "x" }
        ));
    }
    csv.push_str("2A004;;-;false;;2024-01-01T08:00:00Z;N/A\n");
    let app = TestApp::with_csvs(&[("c", csv.as_bytes())], "").await;
    let d = app.get("/api/datasets/c").await.json();
    let types = types_of(&d);
    assert_eq!(
        types,
        [
            "string", "integer", "float", "boolean", "date", "datetime", "string"
        ]
    );
    assert_eq!(
        d["schema"][0]["label"], "Code commune",
        "BOM removed from the first label"
    );
    assert_eq!(d["schema"][1]["nullable"], true);
    assert_eq!(d["schema"][5]["with_offset"], true);
    assert!(
        d["report"]["columns"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("`2A004` (line 3002)")
    );
    let last = app.rows("/api/datasets/c/data?page=3001&page_size=1").await;
    assert_eq!(
        last[0],
        json!({"code_commune": "2A004", "population": null, "ratio": null, "ouvert": false, "date": null,
               "heure": "2024-01-01T08:00:00+00:00", "note": "N/A"})
    );
    let first = app.rows("/api/datasets/c/data?page_size=1").await;
    assert_eq!(
        first[0]["heure"], "2024-01-01T08:00:00+00:00",
        "+02:00 stored in UTC"
    );
    assert_eq!(
        first[0]["note"], "NA",
        "a null marker stays text in a string column"
    );
    assert_eq!(app.total("/api/datasets/c/data?note__exact=NA").await, 1500);
}

#[tokio::test]
async fn ragged_rows_are_padded_or_rejected_and_counted() {
    let csv = "a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n\"x\ny\",13,14\n15,16,17,18,19\n";
    let app = TestApp::with_csvs(&[("r", csv.as_bytes())], "").await;
    let d = app.get("/api/datasets/r").await.json();
    let report = &d["report"];
    assert_eq!(
        (
            report["rows_read"].clone(),
            report["rows_stored"].clone(),
            report["rows_rejected"].clone()
        ),
        (json!(6), json!(4), json!(2))
    );
    assert_eq!(
        report["rejected"],
        json!([
            {"line": 4, "reason": "4 fields where the header has 3"},
            {"line": 8, "reason": "5 fields where the header has 3"},
        ])
    );
    let rows = app.rows("/api/datasets/r/data").await;
    assert_eq!(rows[1], json!({"a": "4", "b": 5, "c": null}));
    assert_eq!(rows[3]["a"], "x\ny");
    assert_eq!(d["rows"], 4);
}

#[tokio::test]
async fn headers_become_unique_valid_names_with_labels_kept() {
    let csv = "col,col,,\"Prix (€)\",select,stop.lat,اسم\n1,2,3,4,5,6,7\n";
    let app = TestApp::with_csvs(&[("h", csv.as_bytes())], "").await;
    let d = app.get("/api/datasets/h").await.json();
    let names: Vec<(String, String)> = schema_of(&d).into_iter().map(|c| (c.0, c.1)).collect();
    assert_eq!(
        names,
        [
            ("col".into(), "col".into()),
            ("col_2".into(), "col".into()),
            ("column_3".into(), "".into()),
            ("prix".into(), "Prix (€)".into()),
            ("select".into(), "select".into()),
            ("stop_lat".into(), "stop.lat".into()),
            ("column_7".into(), "اسم".into()),
        ]
    );
    assert_eq!(
        app.total("/api/datasets/h/data?select__exact=5&stop_lat__exact=6")
            .await,
        1
    );
}

#[tokio::test]
async fn windows_1252_and_overrides_from_the_dataset_file() {
    // "Fès;12,5" in Windows-1252 with a decimal comma, and a column forced to text.
    let mut csv = b"ville;note;code\n".to_vec();
    csv.extend_from_slice(b"F\xe8s;12,5;123\nRabat;9;456\n");
    let toml = toml_for(
        "w.csv",
        "[csv]\ndecimal = \",\"\n[columns.code]\ntype = \"string\"\ndescription = \"Code\"\n",
    );
    let app = TestApp::with_files(&[("w.csv", &csv), ("w.toml", &toml)], "").await;
    let d = app.get("/api/datasets/w").await.json();
    assert!(
        d["report"]["encoding"]
            .as_str()
            .unwrap()
            .starts_with("windows-1252")
    );
    assert_eq!(schema_of(&d)[1].2, "float");
    assert_eq!(schema_of(&d)[2].2, "string");
    assert_eq!(
        d["report"]["columns"][2]["reason"],
        "set in the dataset file"
    );
    let rows = app.rows("/api/datasets/w/data").await;
    assert_eq!(
        rows[0],
        json!({"ville": "Fès", "note": 12.5, "code": "123"})
    );
}

#[tokio::test]
async fn a_forced_type_rejects_rows_that_do_not_fit() {
    let toml = toml_for("f.csv", "[columns.n]\ntype = \"integer\"\n");
    let app = TestApp::with_files(
        &[("f.csv", b"n,m\n1,a\nabc,b\n3,c\n"), ("f.toml", &toml)],
        "",
    )
    .await;
    let d = app.get("/api/datasets/f").await.json();
    assert_eq!(d["report"]["rows_rejected"], 1);
    assert_eq!(d["report"]["rejected"][0]["line"], 3);
    assert!(
        d["report"]["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("`abc` is not a integer")
    );
    assert_eq!(d["rows"], 2);
}

#[tokio::test]
async fn versions_switch_only_when_complete_and_unchanged_sources_do_no_work() {
    let app = TestApp::with_csvs(
        &[("v", b"k,n\na,1\nb,2\n")],
        "[ingest]\nkeep_replaced_ms = 0\n",
    )
    .await;
    let v1 = app.get("/api/datasets/v").await.json()["version"]
        .as_str()
        .unwrap()
        .to_string();
    let tag1 = app.get("/api/datasets/v/data").await.headers["etag"].clone();
    // A query that started on v1 keeps its version after the switch.
    let held = app.state.catalog.loaded("v").unwrap();

    // Unchanged: nothing is written.
    let again = app
        .state
        .catalog
        .ingest_and_load(&["v".into()], false)
        .await
        .unwrap();
    assert!(matches!(
        again[0].1,
        Ok(qanat::ingest::Outcome::Unchanged(_))
    ));
    // The version served stays as it was, not read again.
    assert!(std::sync::Arc::ptr_eq(
        &held,
        &app.state.catalog.loaded("v").unwrap()
    ));
    assert_eq!(
        std::fs::read_dir(app.storage_dir().join("v"))
            .unwrap()
            .count(),
        2,
        "one version and the pointer"
    );

    // Changed source: a new version, new ETags, and the old version still readable by its holder.
    std::fs::write(
        app.dir.path().join("datasets/v.csv"),
        "k,n\na,1\nb,2\nc,3\n",
    )
    .unwrap();
    let changed = app
        .state
        .catalog
        .ingest_and_load(&["v".into()], false)
        .await
        .unwrap();
    assert!(matches!(
        changed[0].1,
        Ok(qanat::ingest::Outcome::Ingested(_))
    ));
    let v2 = app.get("/api/datasets/v").await.json()["version"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(v1, v2);
    assert!(v2 > v1, "version ids sort by time");
    let listed = app.get("/api/datasets/v").await.json()["versions"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(
        (listed[0]["version"].as_str(), listed[0]["rows"].as_u64()),
        (Some(v2.as_str()), Some(3))
    );
    assert_eq!(
        (listed[1]["version"].as_str(), listed[1]["rows"].as_u64()),
        (Some(v1.as_str()), Some(2))
    );
    assert_eq!(app.total("/api/datasets/v/data").await, 3);
    assert_ne!(app.get("/api/datasets/v/data").await.headers["etag"], tag1);
    let old = app
        .state
        .executor
        .engine()
        .read(Arc::clone(&held.table))
        .unwrap();
    assert_eq!(app.state.executor.engine().count(old).await.unwrap(), 2);

    // Forced: a new version although nothing changed; only the last 3 are kept.
    for _ in 0..3 {
        let forced = app
            .state
            .catalog
            .ingest_and_load(&["v".into()], true)
            .await
            .unwrap();
        assert!(matches!(
            forced[0].1,
            Ok(qanat::ingest::Outcome::Ingested(_))
        ));
    }
    let kept = std::fs::read_dir(app.storage_dir().join("v"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(kept, 3);
}

#[tokio::test]
async fn a_failed_ingest_leaves_the_previous_version_served() {
    let app = TestApp::with_csvs(&[("g", b"k\na\nb\n")], "").await;
    let before = app.get("/api/datasets/g").await.json()["version"].clone();
    std::fs::remove_file(app.dir.path().join("datasets/g.csv")).unwrap();
    let r = app
        .state
        .catalog
        .ingest_and_load(&["g".into()], true)
        .await
        .unwrap();
    let err = r[0].1.as_ref().unwrap_err().to_string();
    assert!(
        err.contains("ingest of `g` failed") && err.contains("does not exist"),
        "{err}"
    );
    let d = app.get("/api/datasets/g").await.json();
    assert_eq!(d["version"], before);
    assert!(d["last_error"].as_str().unwrap().contains("does not exist"));
    assert_eq!(app.total("/api/datasets/g/data").await, 2);
    // An empty source is refused the same way.
    std::fs::write(app.dir.path().join("datasets/g.csv"), "").unwrap();
    let r = app
        .state
        .catalog
        .ingest_and_load(&["g".into()], true)
        .await
        .unwrap();
    assert!(
        r[0].1
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("the source is empty")
    );
    assert_eq!(app.total("/api/datasets/g/data").await, 2);
}

#[tokio::test]
async fn a_dataset_never_ingested_answers_503_with_the_reason() {
    let app = TestApp::with_files(&[("m.toml", &toml_for("missing.csv", ""))], "").await;
    let detail = app.get("/api/datasets/m/data").await.problem(503);
    assert!(
        detail.contains("dataset `m` has no data yet") && detail.contains("does not exist"),
        "{detail}"
    );
    let d = app.get("/api/datasets/m").await.json();
    assert_eq!(d["version"], Value::Null);
}

/// Serves files on 127.0.0.1 the way a portal would: 200 with a length, 404 otherwise.
async fn file_server(files: Vec<(&'static str, Vec<u8>)>) -> String {
    use axum::routing::get;
    let mut router = axum::Router::new();
    for (path, body) in files {
        router = router.route(path, get(move || async move { body.clone() }));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn http_sources_are_downloaded_and_a_404_is_a_clear_failure() {
    let base = file_server(vec![(
        "/data/stops.csv",
        b"stop_id;name\n001;Casa Port\n002;Rabat Ville\n".to_vec(),
    )])
    .await;
    let good = format!("title = \"Stops\"\nsource = \"{base}/data/stops.csv\"\n");
    let bad = format!("title = \"Gone\"\nsource = \"{base}/data/gone.csv\"\n");
    let app = TestApp::with_files(
        &[
            ("stops.toml", good.as_bytes()),
            ("gone.toml", bad.as_bytes()),
        ],
        "",
    )
    .await;
    let rows = app.rows("/api/datasets/stops/data").await;
    assert_eq!(
        rows,
        [
            json!({"stop_id": "001", "name": "Casa Port"}),
            json!({"stop_id": "002", "name": "Rabat Ville"})
        ]
    );
    assert_eq!(
        app.get("/api/datasets/stops").await.json()["source"],
        format!("{base}/data/stops.csv")
    );
    let detail = app.get("/api/datasets/gone/data").await.problem(503);
    assert!(detail.contains("404"), "{detail}");
}

#[tokio::test]
async fn numbers_and_booleans_as_portals_write_them() {
    let fr = "montant;surface;effectif;ouvert\n1 234,50;346,5;1\u{a0}200;oui\n-12,00;12;3\u{202f}000;Non\n0,5;1.234,5;12;VRAI\n";
    let en = "amount,count\n\"43,774.58\",\"1,200\"\n15.5,7\n\"-1,000.25\",\"12,345\"\n";
    let app = TestApp::with_csvs(&[("fr", fr.as_bytes()), ("en", en.as_bytes())], "").await;
    let d = app.get("/api/datasets/fr").await.json();
    let types = types_of(&d);
    assert_eq!(types, ["float", "float", "integer", "boolean"]);
    assert_eq!(
        d["report"]["columns"][0]["reason"],
        "all 3 values are numbers with a decimal comma"
    );
    let rows = app.rows("/api/datasets/fr/data").await;
    assert_eq!(
        rows[0],
        json!({"montant": 1234.5, "surface": 346.5, "effectif": 1200, "ouvert": true})
    );
    assert_eq!(
        rows[2],
        json!({"montant": 0.5, "surface": 1234.5, "effectif": 12, "ouvert": true})
    );
    assert_eq!(
        app.total("/api/datasets/fr/data?effectif__greater=1000")
            .await,
        2
    );
    let e = app.get("/api/datasets/en").await.json();
    let types = types_of(&e);
    assert_eq!(types, ["float", "integer"]);
    let rows = app.rows("/api/datasets/en/data").await;
    assert_eq!(rows[0], json!({"amount": 43774.58, "count": 1200}));
    assert_eq!(rows[2], json!({"amount": -1000.25, "count": 12345}));
}

#[tokio::test]
async fn titles_above_the_header_and_repeated_headers_are_not_rows() {
    // As councils publish: a title, a blank line, the header, and the header again after it.
    let csv = "Invoices over \u{a3}500 paid in October 2011,,\n,,\nSupplier,Amount,Date\nSupplier,Amount,Date\n\
               ACME,\"1,200.50\",03/10/2011\nBETA,99.99,04/10/2011\n";
    let quoted = "name,note\nA,'x, y'\nB,'it''s'\n";
    let app = TestApp::with_csvs(&[("p", csv.as_bytes()), ("q", quoted.as_bytes())], "").await;
    let d = app.get("/api/datasets/p").await.json();
    assert_eq!(d["report"]["header_line"], 3);
    assert_eq!(schema_of(&d)[0].1, "Supplier");
    assert_eq!(d["report"]["rows_read"], 3);
    assert_eq!(d["report"]["rows_rejected"], 1);
    assert_eq!(
        d["report"]["rejected"][0],
        json!({"line": 4, "reason": "repeats the header"})
    );
    assert!(
        d["report"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("2 records above the header")
    );
    let rows = app.rows("/api/datasets/p/data").await;
    assert_eq!(
        rows[0],
        json!({"supplier": "ACME", "amount": 1200.5, "date": "2011-10-03"})
    );
    let q = app.get("/api/datasets/q").await.json();
    assert!(
        q["report"]["delimiter"]
            .as_str()
            .unwrap()
            .contains("quote `'`"),
        "{}",
        q["report"]["delimiter"]
    );
    let rows = app.rows("/api/datasets/q/data").await;
    assert_eq!(rows[0]["note"], "x, y");
    assert_eq!(rows[1]["note"], "it's");
}

#[tokio::test]
async fn a_late_value_widens_a_type_decided_from_the_first_rows() {
    // Types come from the first 100,000 rows; a contradiction further down abandons that
    // version and reads every row, so nothing is lost.
    let mut widen = String::from("code,n\n");
    // A column empty in those rows is decided from the whole file.
    let mut empty = String::from("late,n\n");
    for i in 0..100_020 {
        widen.push_str(&format!("{},{i}\n", 10_000 + i));
        let late = if i >= 100_010 {
            (i % 7).to_string()
        } else {
            String::new()
        };
        empty.push_str(&format!("{late},{i}\n"));
    }
    widen.push_str("2A004,7\n");
    let files: &[(&str, &[u8])] = &[
        ("w.csv", widen.as_bytes()),
        ("w.toml", &toml_for("w.csv", "")),
        ("e.csv", empty.as_bytes()),
        ("e.toml", &toml_for("e.csv", "")),
    ];
    let app = TestApp::with_files(files, "").await;
    let d = app.get("/api/datasets/w").await.json();
    let types = types_of(&d);
    assert_eq!(types, ["string", "integer"]);
    assert_eq!(d["rows"], 100_021);
    assert_eq!(
        d["report"]["columns"][1]["reason"],
        "all 100021 values are integers"
    );
    assert!(
        d["report"]["columns"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("`2A004` (line 100022)")
    );
    assert_eq!(
        app.rows("/api/datasets/w/data?code__exact=2A004").await,
        [json!({"code": "2A004", "n": 7})]
    );
    assert_eq!(
        app.rows("/api/datasets/w/data?page_size=1").await[0]["code"],
        "10000"
    );
    // Only the finished version is kept: the abandoned one left nothing behind.
    assert_eq!(d["versions"].as_array().unwrap().len(), 1);
    let dirs = std::fs::read_dir(app.storage_dir().join("w"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(dirs, 1);
    let e = app.get("/api/datasets/e").await.json();
    assert_eq!(schema_of(&e)[0].2, "integer");
    assert_eq!(app.total("/api/datasets/e/data?late__isnotnull").await, 10);
}

/// A portal that answers conditional requests: `304` while the ETag matches.
#[derive(Default)]
struct Portal {
    body: std::sync::Mutex<(String, String)>,
    not_modified: std::sync::atomic::AtomicUsize,
    /// Told of every `304` answered, so that a test waits for them rather than for a guess.
    answered: tokio::sync::Notify,
}

async fn portal_server(portal: Arc<Portal>) -> String {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::get;
    let router = axum::Router::new().route(
        "/gares.csv",
        get(move |headers: HeaderMap| {
            let portal = Arc::clone(&portal);
            async move {
                let (body, etag) = portal.body.lock().unwrap().clone();
                if headers
                    .get(header::IF_NONE_MATCH)
                    .and_then(|v| v.to_str().ok())
                    == Some(etag.as_str())
                {
                    portal
                        .not_modified
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    portal.answered.notify_one();
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                ([(header::ETAG, etag)], body).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn refresh_asks_whether_the_source_changed_and_switches_versions() {
    let portal = Arc::new(Portal::default());
    *portal.body.lock().unwrap() = ("gare;ville\nCasa-Port;Casablanca\n".into(), "\"v1\"".into());
    let base = portal_server(Arc::clone(&portal)).await;
    let toml = format!("title = \"Gares\"\nsource = \"{base}/gares.csv\"\nrefresh = \"100ms\"\n");
    let app = TestApp::with_files(&[("gares.toml", toml.as_bytes())], "").await;
    let v1 = app.get("/api/datasets/gares").await.json()["version"].clone();
    let held = app.state.catalog.loaded("gares").unwrap();
    let _refreshers = app.state.catalog.spawn_refreshers();

    // Unchanged: the portal answers 304 (twice, on two ticks) and nothing is downloaded or
    // written.
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while portal
            .not_modified
            .load(std::sync::atomic::Ordering::SeqCst)
            < 2
        {
            portal.answered.notified().await;
        }
    })
    .await
    .expect("two conditional requests within 10 s");
    assert_eq!(app.get("/api/datasets/gares").await.json()["version"], v1);

    // Changed: a new version is switched in without a restart.
    *portal.body.lock().unwrap() = (
        "gare;ville\nCasa-Port;Casablanca\nRabat-Ville;Rabat\n".into(),
        "\"v2\"".into(),
    );
    let started = std::time::Instant::now();
    while app.get("/api/datasets/gares").await.json()["version"] == v1 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no refresh happened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(app.total("/api/datasets/gares/data").await, 2);
    let d = app.get("/api/datasets/gares").await.json();
    assert_eq!(d["versions"].as_array().unwrap().len(), 2);
    // A query that started on the old version still reads it.
    let old = app
        .state
        .executor
        .engine()
        .read(Arc::clone(&held.table))
        .unwrap();
    assert_eq!(app.state.executor.engine().count(old).await.unwrap(), 1);
    // A bad interval is refused with the forms that work.
    let path = app.dir.path().join("datasets/x.toml");
    std::fs::write(&path, "source = 'x.csv'\nrefresh = 'often'\n").unwrap();
    let err = qanat::dataset::spec::DatasetSpec::load(&path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("refresh `often` is not a duration; write a number and a unit: 500ms, 30s"),
        "{err}"
    );
}

#[tokio::test]
async fn a_file_without_header_keeps_its_first_row() {
    // As W3C CSVW test 19: the first line is a row like the others.
    let csv =
        "1,ADDISON AV,Celtis australis,10/18/2010\n2,EMERSON ST,Liquidambar styraciflua,6/2/2010\n";
    let headed = "id,street\n1,ADDISON AV\n";
    let app = TestApp::with_csvs(&[("n", csv.as_bytes()), ("h", headed.as_bytes())], "").await;
    let d = app.get("/api/datasets/n").await.json();
    let names: Vec<String> = schema_of(&d).into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["column_1", "column_2", "column_3", "column_4"]);
    assert_eq!(d["rows"], 2);
    assert!(
        d["report"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("the first line holds values, not names")
    );
    let rows = app.rows("/api/datasets/n/data").await;
    assert_eq!(
        rows[0],
        json!({"column_1": 1, "column_2": "ADDISON AV", "column_3": "Celtis australis", "column_4": "10/18/2010"})
    );
    // A header of names is kept as one.
    let h = app.get("/api/datasets/h").await.json();
    assert_eq!(
        schema_of(&h)[0],
        ("id".to_string(), "id".to_string(), "integer".to_string())
    );
    assert_eq!(h["rows"], 1);
}

#[tokio::test]
async fn footnotes_below_the_table_are_reported_not_stored() {
    let csv = "code;montant\n01;12,5\nSource : INSEE, recensement 2021;\n02;7\n\
               Total;19,5\n* Données provisoires;\nSource : DGFiP;\n";
    let app = TestApp::with_csvs(&[("f", csv.as_bytes())], "").await;
    let d = app.get("/api/datasets/f").await.json();
    // A note between rows is a row; the notes after the last row are footnotes, and they do not
    // turn `montant` into text.
    assert_eq!(schema_of(&d)[1].2, "float");
    assert_eq!(d["rows"], 4);
    assert_eq!(d["report"]["rows_read"], 6);
    assert_eq!(
        d["report"]["rejected"],
        json!([
            {"line": 6, "reason": "footnote below the table: `* Données provisoires`"},
            {"line": 7, "reason": "footnote below the table: `Source : DGFiP`"},
        ])
    );
    let rows = app.rows("/api/datasets/f/data").await;
    assert_eq!(
        rows[1],
        json!({"code": "Source : INSEE, recensement 2021", "montant": null})
    );
    assert_eq!(rows[3], json!({"code": "Total", "montant": 19.5}));
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn gzip_files_and_gzip_transfers_are_read() {
    use axum::http::header;
    use axum::routing::get;
    let csv = b"code;commune\n01001;L'Abergement-Cl\xc3\xa9menciat\n2A004;Ajaccio\n";
    let body = gzip(csv);
    let router = axum::Router::new().route(
        "/communes.csv",
        get(move || {
            let body = body.clone();
            async move {
                (
                    [
                        (header::CONTENT_ENCODING, "gzip"),
                        (header::CONTENT_TYPE, "text/csv"),
                    ],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let remote = format!("title = \"Communes\"\nsource = \"http://{addr}/communes.csv\"\n");
    let app = TestApp::with_files(
        &[
            ("local.csv.gz", &gzip(csv)),
            ("local.toml", &toml_for("local.csv.gz", "")),
            ("remote.toml", remote.as_bytes()),
        ],
        "",
    )
    .await;
    for id in ["local", "remote"] {
        let rows = app.rows(&format!("/api/datasets/{id}/data")).await;
        assert_eq!(
            rows,
            [
                json!({"code": "01001", "commune": "L'Abergement-Clémenciat"}),
                json!({"code": "2A004", "commune": "Ajaccio"})
            ],
            "{id}"
        );
    }
    // The compressed file's own size is what the staleness check compares: no work the second time.
    let again = app
        .state
        .catalog
        .ingest_and_load(&["local".into()], false)
        .await
        .unwrap();
    assert!(matches!(
        again[0].1,
        Ok(qanat::ingest::Outcome::Unchanged(_))
    ));
}

#[tokio::test]
async fn every_detected_choice_can_be_set_in_the_dataset_file() {
    // Two title lines filled like rows would fool detection; the file says where the header is,
    // and how quotes are escaped.
    let csv = "Rapport,annuel,2024\nEdition,finale,v2\nnom|note|ville\nA|\"dit \\\"oui\\\"\"|Fès\n";
    let toml = toml_for(
        "o.csv",
        "[csv]\ndelimiter = \"|\"\nquote = '\"'\nescape = '\\'\npreamble = 2\nheader = true\nencoding = \"utf-8\"\n",
    );
    let app = TestApp::with_files(&[("o.csv", csv.as_bytes()), ("o.toml", &toml)], "").await;
    let d = app.get("/api/datasets/o").await.json();
    assert_eq!(d["report"]["header_line"], 3);
    assert_eq!(
        app.rows("/api/datasets/o/data").await,
        [json!({"nom": "A", "note": "dit \"oui\"", "ville": "Fès"})]
    );
}

#[tokio::test]
async fn a_latin1_byte_after_the_first_64_kib_still_decides_the_encoding() {
    // The encoding is chosen from the first bytes while the whole file is checked beside the
    // parsing; a disagreement reads the file again.
    let mut csv = b"ville;n\n".to_vec();
    for i in 0..10_000 {
        csv.extend_from_slice(format!("Rabat;{i}\n").as_bytes());
    }
    csv.extend_from_slice(b"F\xe8s;10000\n");
    assert!(csv.len() > 64 * 1024);
    let app = TestApp::with_csvs(&[("l", &csv)], "").await;
    let d = app.get("/api/datasets/l").await.json();
    assert!(
        d["report"]["encoding"]
            .as_str()
            .unwrap()
            .starts_with("windows-1252"),
        "{}",
        d["report"]["encoding"]
    );
    assert_eq!(
        app.rows("/api/datasets/l/data?n__exact=10000").await,
        [json!({"ville": "Fès", "n": 10000})]
    );
    assert_eq!(d["rows"], 10_001);
    assert_eq!(
        d["versions"].as_array().unwrap().len(),
        1,
        "the abandoned UTF-8 version is gone"
    );
    assert_eq!(
        d["versions"][0]["source_sha256"].as_str().unwrap().len(),
        64
    );
    // The hash recorded is the whole file's: the next ingest sees no change.
    let again = app
        .state
        .catalog
        .ingest_and_load(&["l".into()], false)
        .await
        .unwrap();
    assert!(matches!(
        again[0].1,
        Ok(qanat::ingest::Outcome::Unchanged(_))
    ));
}

#[tokio::test]
async fn utf16_redirects_and_the_download_limit() {
    use axum::response::Redirect;
    use axum::routing::get;
    // UTF-16LE with its byte order mark, as some spreadsheet exports write it.
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in "ville;n\nFès;1\nMeknès;2\n".encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let big = "k\n".to_string() + &"0123456789\n".repeat(2000);
    let router = axum::Router::new()
        .route(
            "/old.csv",
            get(|| async { Redirect::permanent("/new.csv") }),
        )
        .route("/new.csv", get(|| async { "k;v\n1;a\n" }))
        .route("/big.csv", get(move || async move { big }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let moved = format!("source = \"http://{addr}/old.csv\"\n");
    let big = format!("source = \"http://{addr}/big.csv\"\n");
    let app = TestApp::with_files(
        &[
            ("u.csv", &utf16),
            ("u.toml", &toml_for("u.csv", "")),
            ("moved.toml", moved.as_bytes()),
            ("big.toml", big.as_bytes()),
        ],
        "[ingest]\nmax_download_bytes = 10000\n",
    )
    .await;
    let d = app.get("/api/datasets/u").await.json();
    assert!(
        d["report"]["encoding"]
            .as_str()
            .unwrap()
            .starts_with("UTF-16LE (byte order mark)"),
        "{}",
        d["report"]["encoding"]
    );
    assert_eq!(
        app.rows("/api/datasets/u/data").await,
        [
            json!({"ville": "Fès", "n": 1}),
            json!({"ville": "Meknès", "n": 2})
        ]
    );
    assert_eq!(
        app.rows("/api/datasets/moved/data").await,
        [json!({"k": 1, "v": "a"})]
    );
    let detail = app.get("/api/datasets/big/data").await.problem(503);
    assert!(
        detail.contains("larger than the download limit of 10000 bytes"),
        "{detail}"
    );
    // The failure keeps its kind: over a limit (413), in the dataset's last error and in what
    // an ingest returns, not a generic failure.
    let entry = app.state.catalog.entry("big").unwrap();
    let last = entry.last_error().unwrap();
    assert_eq!(last.status(), 413);
    assert_eq!(last.problem_type(), "urn:qanat:problem:over-limit");
    assert!(
        app.get("/api/datasets/big").await.json()["last_error"]
            .as_str()
            .unwrap()
            .contains("larger than the download limit")
    );
    let ids = ["big".to_string()];
    let again = app.state.catalog.ingest_and_load(&ids, true).await;
    let (_, outcome) = again.unwrap().pop().unwrap();
    let err = outcome.unwrap_err();
    assert_eq!(err.status(), 413);
    assert!(std::error::Error::source(&err).is_some());
}
