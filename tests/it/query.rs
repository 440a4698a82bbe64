//! The query grammar on the sample catalog: every operator, sorts, pages, links, exports,
//! aggregation, each checked against a reference computed from the published CSV.

use serde_json::{Value, json};

use crate::support::{TestApp, sample_records};

const DEPTS: &str = "/api/datasets/departements/data";
const PRENOMS: &str = "/api/datasets/prenoms-paris/data";
const GARES: &str = "/api/datasets/gares-oncf/data";

fn prenoms() -> Vec<csv::StringRecord> {
    sample_records("prenoms-paris.csv", b';')
}

#[tokio::test]
async fn equality_and_lists_keep_codes_as_published() {
    let app = TestApp::sample().await;
    let rows = app.rows(&format!("{DEPTS}?code__in=01,2A,971")).await;
    let got: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["code"].as_str().unwrap(), r["nom"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [("01", "Ain"), ("2A", "Corse-du-Sud"), ("971", "Guadeloupe")]
    );
    let rows = app.rows(&format!("{DEPTS}?code__exact=2B")).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["nom"], "Haute-Corse");
    assert_eq!(rows[0]["id"], 29);
    assert_eq!(app.total(&format!("{DEPTS}?code__differs=2B")).await, 100);
    assert_eq!(
        app.total(&format!("{DEPTS}?code__notin=01,02,2A")).await,
        98
    );
    // Typed integer literal: `region_id` is an integer column.
    let reference = sample_records("departements.csv", b',')
        .iter()
        .filter(|r| &r[5] == "84")
        .count() as u64;
    assert_eq!(
        app.total(&format!("{DEPTS}?region_id__exact=84")).await,
        reference
    );
}

#[tokio::test]
async fn contains_is_case_insensitive_and_negations_complete_it() {
    let app = TestApp::sample().await;
    let all = prenoms();
    let with = all
        .iter()
        .filter(|r| r[3].to_lowercase().contains("yas"))
        .count() as u64;
    assert!(with > 10);
    assert_eq!(
        app.total(&format!("{PRENOMS}?prenoms__contains=YaS")).await,
        with
    );
    assert_eq!(
        app.total(&format!("{PRENOMS}?prenoms__notcontains=yas"))
            .await,
        all.len() as u64 - with
    );
    // Accented values match as published.
    let accented = all
        .iter()
        .filter(|r| r[3].to_lowercase().contains("é"))
        .count() as u64;
    assert_eq!(
        app.total(&format!("{PRENOMS}?prenoms__contains=%C3%A9"))
            .await,
        accented
    );
}

#[tokio::test]
async fn range_operators_are_inclusive_or_strict() {
    let app = TestApp::sample().await;
    let lats: Vec<f64> = sample_records("gares-oncf.csv", b',')
        .iter()
        .map(|r| r[2].parse().unwrap())
        .collect();
    let count = |f: &dyn Fn(f64) -> bool| lats.iter().filter(|l| f(**l)).count() as u64;
    let edge = 35.7643; // Tanger-Ville's latitude, present in the data
    assert_eq!(
        app.total(&format!("{GARES}?stop_lat__greater={edge}"))
            .await,
        count(&|l| l >= edge)
    );
    assert_eq!(
        app.total(&format!("{GARES}?stop_lat__strictly_greater={edge}"))
            .await,
        count(&|l| l > edge)
    );
    assert_eq!(
        app.total(&format!("{GARES}?stop_lat__less={edge}")).await,
        count(&|l| l <= edge)
    );
    assert_eq!(
        app.total(&format!("{GARES}?stop_lat__strictly_less={edge}"))
            .await,
        count(&|l| l < edge)
    );
    assert_eq!(
        app.total(&format!(
            "{GARES}?stop_lat__greater=33&stop_lat__strictly_less=34.1"
        ))
        .await,
        count(&|l| (33.0..34.1).contains(&l))
    );
}

#[tokio::test]
async fn null_tests() {
    let app = TestApp::sample().await;
    let recs = sample_records("gares-oncf.csv", b',');
    let empty = recs.iter().filter(|r| r[5].is_empty()).count() as u64;
    assert_eq!(
        app.total(&format!("{GARES}?parent_station__isnull")).await,
        empty
    );
    assert_eq!(
        app.total(&format!("{GARES}?parent_station__isnotnull"))
            .await,
        recs.len() as u64 - empty
    );
    let rows = app
        .rows(&format!("{GARES}?parent_station__isnull&page_size=1"))
        .await;
    assert_eq!(rows[0]["parent_station"], Value::Null);
}

#[tokio::test]
async fn sorts_apply_in_order_with_file_order_breaking_ties() {
    let app = TestApp::sample().await;
    let mut reference: Vec<(i64, i64, usize, String)> = prenoms()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                r[2].parse().unwrap(),
                r[0].parse().unwrap(),
                i,
                r[3].to_string(),
            )
        })
        .collect();
    // annee asc, then nombre desc, then file order.
    reference.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let rows = app
        .rows(&format!(
            "{PRENOMS}?annee__sort=asc&nombre_prenoms_declares__sort=desc&page=3&page_size=7"
        ))
        .await;
    let got: Vec<String> = rows
        .iter()
        .map(|r| r["prenoms"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = reference[14..21].iter().map(|r| r.3.clone()).collect();
    assert_eq!(got, want);
    // Descending on one column; without a sort, file order.
    let first = app
        .rows(&format!(
            "{PRENOMS}?nombre_prenoms_declares__sort=desc&page_size=1"
        ))
        .await;
    let max = reference.iter().map(|r| r.1).max().unwrap();
    assert_eq!(first[0]["nombre_prenoms_declares"], max);
    let unsorted = app.rows(&format!("{PRENOMS}?page_size=3")).await;
    let names: Vec<&str> = unsorted
        .iter()
        .map(|r| r["prenoms"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Yacine", "Youssef", "Abigail"]);
}

#[tokio::test]
async fn sorting_puts_nulls_last_both_ways_and_strings_by_code_point() {
    let csv = "name,score\nb,2\n,1\nÉmile,\na,3\nB,\n";
    let app = TestApp::with_csvs(&[("t", csv.as_bytes())], "").await;
    let names = |rows: Vec<Value>| rows.iter().map(|r| r["name"].clone()).collect::<Vec<_>>();
    let asc = app.rows("/api/datasets/t/data?name__sort=asc").await;
    assert_eq!(
        names(asc),
        [
            json!("B"),
            json!("a"),
            json!("b"),
            json!("Émile"),
            Value::Null
        ]
    );
    let desc = app.rows("/api/datasets/t/data?name__sort=desc").await;
    assert_eq!(
        names(desc),
        [
            json!("Émile"),
            json!("b"),
            json!("a"),
            json!("B"),
            Value::Null
        ]
    );
    let by_score = app.rows("/api/datasets/t/data?score__sort=desc").await;
    let scores: Vec<Value> = by_score.iter().map(|r| r["score"].clone()).collect();
    assert_eq!(
        scores,
        [json!(3), json!(2), json!(1), Value::Null, Value::Null]
    );
}

#[tokio::test]
async fn pages_links_and_totals() {
    let app = TestApp::sample().await;
    let r = app
        .get(&format!(
            "{DEPTS}?region_id__greater=10&page=2&page_size=10&columns=code,nom"
        ))
        .await;
    let v = r.json();
    let reference: Vec<csv::StringRecord> = sample_records("departements.csv", b',')
        .into_iter()
        .filter(|r| r[5].parse::<i64>().unwrap() >= 10)
        .collect();
    assert_eq!(v["meta"]["total"], reference.len() as u64);
    assert_eq!(v["meta"]["page"], 2);
    assert_eq!(v["meta"]["page_size"], 10);
    let codes: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = reference[10..20]
        .iter()
        .map(|r| r.get(1).unwrap())
        .collect();
    assert_eq!(codes, want);
    // Only the asked columns, in the asked order.
    let keys: Vec<&String> = v["data"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["code", "nom"]);
    let base = "http://qanat.test/api/datasets/departements/data?";
    assert_eq!(
        v["links"]["self"],
        format!("{base}columns=code%2Cnom&region_id__greater=10&page_size=10&page=2")
    );
    // `next` carries a cursor; it leads to what `page=3` shows.
    let next = v["links"]["next"].as_str().unwrap();
    assert!(
        next.starts_with(&format!(
            "{base}columns=code%2Cnom&region_id__greater=10&page_size=10&cursor="
        )),
        "{next}"
    );
    let third = app
        .get(next.strip_prefix("http://qanat.test").unwrap())
        .await
        .json();
    let page3 = app
        .get(&format!(
            "{DEPTS}?region_id__greater=10&page=3&page_size=10&columns=code,nom"
        ))
        .await
        .json();
    assert_eq!(third["data"], page3["data"]);
    assert_eq!(third["meta"], page3["meta"]);
    assert_eq!(
        v["links"]["prev"],
        format!("{base}columns=code%2Cnom&region_id__greater=10&page_size=10&page=1")
    );
    assert_eq!(
        v["links"]["profile"],
        "http://qanat.test/api/datasets/departements/profile"
    );
    assert_eq!(v["links"]["openapi"], "http://qanat.test/openapi.json");
    assert!(v["meta"]["version"].as_str().unwrap().len() > 10);
    // Following `next` to the end: the last page has no next; past the end is empty.
    let last_page = reference.len().div_ceil(10);
    let last = app
        .get(&format!(
            "{DEPTS}?region_id__greater=10&page={last_page}&page_size=10"
        ))
        .await
        .json();
    assert_eq!(last["links"]["next"], Value::Null);
    assert_eq!(
        last["data"].as_array().unwrap().len(),
        reference.len() - (last_page - 1) * 10
    );
    let past = app.get(&format!("{DEPTS}?page=999&page_size=10")).await;
    assert_eq!(past.status, 200);
    assert_eq!(past.json()["data"], json!([]));
    assert_eq!(past.json()["links"]["next"], Value::Null);
    assert_eq!(past.json()["meta"]["total"], 101);
    // Page 1 of an empty result.
    let none = app.get(&format!("{DEPTS}?code__exact=99")).await.json();
    assert_eq!(
        (
            none["data"].clone(),
            none["meta"]["total"].clone(),
            none["links"]["next"].clone()
        ),
        (json!([]), json!(0), Value::Null)
    );
    // Default page size.
    assert_eq!(app.rows(DEPTS).await.len(), 20);
}

#[tokio::test]
async fn csv_and_ndjson_stream_the_whole_filtered_result() {
    let app = TestApp::sample().await;
    let filter = "sexe__exact=F&annee__greater=2015&nombre_prenoms_declares__sort=desc";
    let expected: Vec<csv::StringRecord> = prenoms()
        .into_iter()
        .filter(|r| &r[1] == "F" && r[2].parse::<i64>().unwrap() >= 2015)
        .collect();
    assert!(
        expected.len() > 1000,
        "more rows than the largest page: {}",
        expected.len()
    );
    let r = app.get(&format!("{PRENOMS}.csv?{filter}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    let mut reader = csv::Reader::from_reader(r.body.as_slice());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "nombre_prenoms_declares",
            "sexe",
            "annee",
            "prenoms",
            "nombre_total_cumule_par_annee"
        ]
    );
    let back: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(back.len(), expected.len());
    let mut counts: Vec<i64> = expected.iter().map(|r| r[0].parse().unwrap()).collect();
    counts.sort_by(|a, b| b.cmp(a));
    let got: Vec<i64> = back.iter().map(|r| r[0].parse().unwrap()).collect();
    assert_eq!(got, counts);
    // The same rows as the JSON pages.
    let page = app.rows(&format!("{PRENOMS}?{filter}&page_size=5")).await;
    for (row, rec) in page.iter().zip(&back) {
        assert_eq!(row["prenoms"], rec[3]);
    }
    let nd = app
        .get(&format!("{PRENOMS}.ndjson?{filter}&columns=prenoms"))
        .await;
    assert_eq!(nd.headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = nd
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), expected.len());
    assert_eq!(lines[0], json!({"prenoms": back[0][3]}));
    // Paged export, and an empty one still has its header.
    let paged = app
        .get(&format!("{PRENOMS}.csv?{filter}&page=2&page_size=3"))
        .await
        .text();
    assert_eq!(paged.lines().count(), 4);
    let empty = app
        .get(&format!("{PRENOMS}.csv?annee__exact=1800"))
        .await
        .text();
    assert_eq!(
        empty,
        "nombre_prenoms_declares,sexe,annee,prenoms,nombre_total_cumule_par_annee\n"
    );
}

#[tokio::test]
async fn values_with_quotes_and_wildcards_filter_literally() {
    let csv = "name,note\nO'Brien,100%\nOBrien,1000\nA_B,a%b\nAxB,50 %\n\"Fès, centre\",x\n";
    let app = TestApp::with_csvs(&[("t", csv.as_bytes())], "").await;
    let names = |rows: Vec<Value>| {
        rows.iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(app.rows("/api/datasets/t/data?name__exact=O%27Brien").await),
        ["O'Brien"]
    );
    assert_eq!(
        names(app.rows("/api/datasets/t/data?note__contains=100%25").await),
        ["O'Brien"]
    );
    assert_eq!(
        names(app.rows("/api/datasets/t/data?name__contains=_").await),
        ["A_B"]
    );
    assert_eq!(
        names(app.rows("/api/datasets/t/data?note__contains=%25").await),
        ["O'Brien", "A_B", "AxB"]
    );
    assert_eq!(
        names(
            app.rows("/api/datasets/t/data?name__in=%22F%C3%A8s,%20centre%22,OBrien")
                .await
        ),
        ["OBrien", "Fès, centre"]
    );
}

#[tokio::test]
async fn typed_filters_on_dates_datetimes_and_booleans() {
    let csv = "day,fr_day,at,open,score\n2024-06-30,30/06/2024,2024-06-30T10:00:00,true,1.5\n\
               2024-07-01,01/07/2024,2024-07-01T09:30:00,false,NA\n2023-12-31,31/12/2023,2023-12-31T23:59:59,TRUE,-2\n";
    let app = TestApp::with_csvs(&[("t", csv.as_bytes())], "").await;
    let base = "/api/datasets/t/data";
    assert_eq!(
        app.total(&format!("{base}?day__greater=2024-01-01")).await,
        2
    );
    assert_eq!(
        app.total(&format!("{base}?fr_day__strictly_less=2024-07-01"))
            .await,
        2
    );
    assert_eq!(
        app.total(&format!("{base}?at__greater=2024-06-30T10:00:00"))
            .await,
        2
    );
    assert_eq!(app.total(&format!("{base}?open__exact=true")).await, 2);
    assert_eq!(app.total(&format!("{base}?score__isnull")).await, 1);
    let rows = app.rows(&format!("{base}?day__sort=asc&page_size=1")).await;
    assert_eq!(
        rows[0],
        json!({"day": "2023-12-31", "fr_day": "2023-12-31", "at": "2023-12-31T23:59:59", "open": true, "score": -2.0})
    );
}

#[tokio::test]
async fn aggregation_groups_and_counts_like_a_reference() {
    let app = TestApp::sample().await;
    let mut reference = std::collections::BTreeMap::<i64, (u64, i64)>::new();
    for r in sample_records("departements.csv", b',') {
        let e = reference.entry(r[5].parse().unwrap()).or_default();
        e.0 += 1;
        e.1 += r[4].parse::<i64>().unwrap();
    }
    let r = app
        .get(&format!(
            "{DEPTS}?region_id__groupby&id__count&chef_lieu_id__sum&page_size=100"
        ))
        .await
        .json();
    assert_eq!(r["meta"]["total"], reference.len() as u64);
    let got: Vec<(i64, u64, i64)> = r["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["region_id"].as_i64().unwrap(),
                g["id__count"].as_u64().unwrap(),
                g["chef_lieu_id__sum"].as_i64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(i64, u64, i64)> = reference.iter().map(|(k, (n, s))| (*k, *n, *s)).collect();
    assert_eq!(got, want);
    let top = app
        .rows(&format!(
            "{DEPTS}?region_id__groupby&id__count&id__count__sort=desc&page_size=1"
        ))
        .await;
    let max = reference.values().map(|v| v.0).max().unwrap();
    assert_eq!(top[0]["id__count"], max);
    let csv = app
        .get(&format!("{DEPTS}.csv?region_id__groupby&id__count"))
        .await
        .text();
    assert_eq!(csv.lines().next(), Some("region_id,id__count"));
    assert_eq!(csv.lines().count(), reference.len() + 1);
}

#[tokio::test]
async fn aggregates_filter_sort_and_page_alike_in_every_format() {
    let app = TestApp::sample().await;
    // Reference: girls' names per year, with count, sum, average, minimum and maximum.
    let mut by_year = std::collections::BTreeMap::<i64, Vec<i64>>::new();
    for r in prenoms().iter().filter(|r| &r[1] == "F") {
        by_year
            .entry(r[2].parse().unwrap())
            .or_default()
            .push(r[0].parse().unwrap());
    }
    let mut want: Vec<(i64, u64, i64, f64, i64, i64)> = by_year
        .iter()
        .map(|(y, v)| {
            let sum: i64 = v.iter().sum();
            let (min, max) = (*v.iter().min().unwrap(), *v.iter().max().unwrap());
            (
                *y,
                v.len() as u64,
                sum,
                sum as f64 / v.len() as f64,
                min,
                max,
            )
        })
        .collect();
    want.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let n = "nombre_prenoms_declares";
    let query = format!(
        "sexe__exact=F&annee__groupby&prenoms__count&{n}__sum&{n}__avg&{n}__min&{n}__max&{n}__sum__sort=desc"
    );
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.abs().max(1.0);
    let check = |got: Vec<(i64, u64, i64, f64, i64, i64)>, what: &str| {
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g.0 == w.0
                    && g.1 == w.1
                    && g.2 == w.2
                    && close(g.3, w.3)
                    && g.4 == w.4
                    && g.5 == w.5,
                "{what}: {g:?} != {w:?}"
            );
        }
    };
    let row = |g: &Value| {
        (
            g["annee"].as_i64().unwrap(),
            g["prenoms__count"].as_u64().unwrap(),
            g[format!("{n}__sum")].as_i64().unwrap(),
            g[format!("{n}__avg")].as_f64().unwrap(),
            g[format!("{n}__min")].as_i64().unwrap(),
            g[format!("{n}__max")].as_i64().unwrap(),
        )
    };
    // JSON, three groups a page, following `links.next`.
    let mut got = Vec::new();
    let mut uri = format!("{PRENOMS}?{query}&page_size=3");
    loop {
        let v = app.get(&uri).await.json();
        assert_eq!(v["meta"]["total"], want.len() as u64);
        got.extend(v["data"].as_array().unwrap().iter().map(row));
        match v["links"]["next"].as_str() {
            Some(next) => uri = next.strip_prefix("http://qanat.test").unwrap().to_string(),
            None => break,
        }
    }
    check(got, "JSON pages");
    // NDJSON, whole result.
    let nd = app.get(&format!("{PRENOMS}.ndjson?{query}")).await.text();
    let got = nd
        .lines()
        .map(|l| row(&serde_json::from_str::<Value>(l).unwrap()))
        .collect();
    check(got, "NDJSON");
    // CSV, whole result, header first.
    let csv = app.get(&format!("{PRENOMS}.csv?{query}")).await.text();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(format!("annee,prenoms__count,{n}__sum,{n}__avg,{n}__min,{n}__max").as_str())
    );
    let got = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
                f[5].parse().unwrap(),
            )
        })
        .collect();
    check(got, "CSV");
    // A page of the CSV equals the same JSON page.
    let page2 = app
        .get(&format!("{PRENOMS}.csv?{query}&page_size=3&page=2"))
        .await
        .text();
    assert_eq!(page2.lines().count(), 4);
    assert!(
        page2
            .lines()
            .nth(1)
            .unwrap()
            .starts_with(&format!("{},", want[3].0))
    );
}

#[tokio::test]
async fn etags_are_stable_and_answer_304() {
    let app = TestApp::sample().await;
    let uri = format!("{DEPTS}?code__exact=01");
    let a = app.get(&uri).await;
    let etag = a.headers["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    // The same query written differently has the same ETag.
    let b = app.get(&format!("{DEPTS}?page=1&code__exact=01")).await;
    assert_eq!(b.headers["etag"], etag.as_str());
    let c = app.get_with(&uri, &[("if-none-match", &etag)]).await;
    assert_eq!(c.status, 304);
    assert!(c.body.is_empty());
    let d = app.get_with(&uri, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(d.status, 200);
    assert_ne!(
        app.get(&format!("{DEPTS}?code__exact=02")).await.headers["etag"],
        etag.as_str()
    );
    let csv = app.get(&format!("{DEPTS}.csv?code__exact=01")).await;
    let csv_tag = csv.headers["etag"].to_str().unwrap().to_string();
    assert_ne!(csv_tag, etag);
    assert_eq!(
        app.get_with(
            &format!("{DEPTS}.csv?code__exact=01"),
            &[("if-none-match", &csv_tag)]
        )
        .await
        .status,
        304
    );
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_count_cache_hits_misses_and_evictions() {
    let app = TestApp::sample().await;
    for _ in 0..3 {
        assert_eq!(
            app.get(&format!("{DEPTS}?code__exact=01")).await.status,
            200
        );
    }
    // The same query written differently is the same cache entry.
    assert_eq!(
        app.get(&format!("{DEPTS}?page=1&code__exact=01"))
            .await
            .status,
        200
    );
    let r = app.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text();
    assert_eq!(metric(&text, "qanat_cache_lookups_total"), 4);
    assert_eq!(metric(&text, "qanat_cache_misses_total"), 1);
    assert_eq!(metric(&text, "qanat_cache_hits_total"), 3);
    assert_eq!(metric(&text, "qanat_cache_entries"), 1);
    assert_eq!(metric(&text, "qanat_datasets_loaded"), 4);
    assert!(text.contains("# TYPE qanat_cache_hits_total counter"));

    // A budget smaller than two pages evicts.
    let tiny = crate::support::TestApp::with_settings(
        &crate::support::repo_path("datasets"),
        "cache_bytes = 20000\n",
    )
    .await;
    for page in 1..=6 {
        tiny.get(&format!("{PRENOMS}?page={page}&page_size=50"))
            .await;
    }
    let text = tiny.get("/metrics").await.text();
    assert_eq!(metric(&text, "qanat_cache_misses_total"), 6);
    assert!(metric(&text, "qanat_cache_evictions_total") >= 1, "{text}");
    assert!(metric(&text, "qanat_cache_bytes") <= 20000);
}

#[tokio::test]
async fn exports_are_kept_once_streamed_when_small_enough() {
    let app = TestApp::sample().await;
    let uri = format!("{PRENOMS}.csv?sexe__exact=F&annee__exact=2019");
    let first = app.get(&uri).await;
    let second = app.get(&uri).await;
    assert_eq!((first.status.as_u16(), second.status.as_u16()), (200, 200));
    assert_eq!(first.body, second.body);
    assert_eq!(first.headers["etag"], second.headers["etag"]);
    assert_eq!(second.headers["content-type"], "text/csv; charset=utf-8");
    let nd = app
        .get(&format!("{PRENOMS}.ndjson?sexe__exact=F&annee__exact=2019"))
        .await;
    assert_eq!(nd.text().lines().count() + 1, first.text().lines().count());
    let text = app.get("/metrics").await.text();
    // CSV: a miss, then a hit served from memory; NDJSON is another entry.
    assert_eq!(metric(&text, "qanat_cache_lookups_total"), 3);
    assert_eq!(metric(&text, "qanat_cache_hits_total"), 1);
    assert_eq!(metric(&text, "qanat_cache_entries"), 2);

    // An export larger than an eighth of the budget streams every time and is not kept.
    let tiny = TestApp::with_settings(
        &crate::support::repo_path("datasets"),
        "cache_bytes = 20000\n",
    )
    .await;
    let a = tiny.get(&format!("{PRENOMS}.csv")).await;
    let b = tiny.get(&format!("{PRENOMS}.csv")).await;
    assert_eq!(a.body, b.body);
    assert!(a.body.len() > 2_500);
    let text = tiny.get("/metrics").await.text();
    assert_eq!(metric(&text, "qanat_cache_misses_total"), 2);
    assert_eq!(metric(&text, "qanat_cache_entries"), 0);
}

#[tokio::test]
async fn identical_concurrent_misses_are_computed_once() {
    let app = TestApp::sample().await;
    let uri = format!("{PRENOMS}?sexe__exact=M&nombre_prenoms_declares__sort=desc&page_size=30");
    let replies = futures::future::join_all((0..8).map(|_| app.get(&uri))).await;
    assert!(
        replies
            .iter()
            .all(|r| r.status == 200 && r.body == replies[0].body)
    );
    let text = app.get("/metrics").await.text();
    assert_eq!(metric(&text, "qanat_cache_lookups_total"), 8);
    assert_eq!(metric(&text, "qanat_cache_misses_total"), 1, "{text}");
}
