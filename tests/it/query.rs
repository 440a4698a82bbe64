//! The query grammar on the sample catalog: every operator, sorts, pages, links, exports,
//! aggregation, each checked against a reference computed from the published CSV.

use serde_json::{Value, json};

use crate::support::{TestApp, sample_records};

const DEPTS: &str = "/api/datasets/departements/data";
const COMMUNES: &str = "/api/datasets/communes/data";
const VILLES: &str = "/api/datasets/villes-maroc/data";

/// The communes as published (Windows-1252, semicolons, decimal commas).
fn communes() -> Vec<csv::StringRecord> {
    sample_records("communes.csv", b';')
}

/// A population as published: a whole number, or empty.
fn population(r: &csv::StringRecord) -> Option<i64> {
    r[3].parse().ok()
}

/// A coordinate as published, with a decimal comma (empty when the town hall has none).
fn decimal(text: &str) -> Option<f64> {
    (!text.is_empty()).then(|| text.replace(',', ".").parse().unwrap())
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
    let all = communes();
    let with = all
        .iter()
        .filter(|r| r[1].to_lowercase().contains("sur"))
        .count() as u64;
    assert!(with > 10);
    assert_eq!(
        app.total(&format!("{COMMUNES}?nom_de_la_commune__contains=SuR"))
            .await,
        with
    );
    assert_eq!(
        app.total(&format!("{COMMUNES}?nom_de_la_commune__notcontains=sur"))
            .await,
        all.len() as u64 - with
    );
    // Accented values match as published (the file is Windows-1252; the API speaks UTF-8).
    let accented = all
        .iter()
        .filter(|r| r[1].to_lowercase().contains("é"))
        .count() as u64;
    assert!(accented > 10);
    assert_eq!(
        app.total(&format!("{COMMUNES}?nom_de_la_commune__contains=%C3%A9"))
            .await,
        accented
    );
}

#[tokio::test]
async fn range_operators_are_inclusive_or_strict() {
    let app = TestApp::sample().await;
    let lats: Vec<f64> = sample_records("villes-maroc.csv", b',')
        .iter()
        .map(|r| r[3].parse().unwrap())
        .collect();
    let count = |f: &dyn Fn(f64) -> bool| lats.iter().filter(|l| f(**l)).count() as u64;
    let edge = 34.01325; // Rabat's latitude, present in the data
    assert_eq!(
        app.total(&format!("{VILLES}?latitude__greater={edge}"))
            .await,
        count(&|l| l >= edge)
    );
    assert_eq!(
        app.total(&format!("{VILLES}?latitude__strictly_greater={edge}"))
            .await,
        count(&|l| l > edge)
    );
    assert_eq!(
        app.total(&format!("{VILLES}?latitude__less={edge}")).await,
        count(&|l| l <= edge)
    );
    assert_eq!(
        app.total(&format!("{VILLES}?latitude__strictly_less={edge}"))
            .await,
        count(&|l| l < edge)
    );
    assert_eq!(
        app.total(&format!(
            "{VILLES}?latitude__greater=33&latitude__strictly_less=34.1"
        ))
        .await,
        count(&|l| (33.0..34.1).contains(&l))
    );
}

#[tokio::test]
async fn null_tests() {
    let app = TestApp::sample().await;
    let recs = sample_records("villes-maroc.csv", b',');
    let empty = recs.iter().filter(|r| r[2].is_empty()).count() as u64;
    assert!(empty > 0 && empty < recs.len() as u64);
    assert_eq!(app.total(&format!("{VILLES}?nom_ar__isnull")).await, empty);
    assert_eq!(
        app.total(&format!("{VILLES}?nom_ar__isnotnull")).await,
        recs.len() as u64 - empty
    );
    let rows = app
        .rows(&format!("{VILLES}?nom_ar__isnull&page_size=1"))
        .await;
    assert_eq!(rows[0]["nom_ar"], Value::Null);
}

#[tokio::test]
async fn sorts_apply_in_order_with_file_order_breaking_ties() {
    let app = TestApp::sample().await;
    let records = communes();
    let mut reference: Vec<(String, Option<i64>, usize, String)> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r[2].to_string(), population(r), i, r[1].to_string()))
        .collect();
    // departement asc (by code point), then population desc with nulls last, then file order.
    let desc_nulls_last = |a: &Option<i64>, b: &Option<i64>| match (a, b) {
        (Some(a), Some(b)) => b.cmp(a),
        (a, b) => b.is_none().cmp(&a.is_none()).reverse(),
    };
    reference.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(desc_nulls_last(&a.1, &b.1))
            .then(a.2.cmp(&b.2))
    });
    let rows = app
        .rows(&format!(
            "{COMMUNES}?departement__sort=asc&population_municipale__sort=desc&page=3&page_size=7"
        ))
        .await;
    let got: Vec<String> = rows
        .iter()
        .map(|r| r["nom_de_la_commune"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = reference[14..21].iter().map(|r| r.3.clone()).collect();
    assert_eq!(got, want);
    // Nulls last in a descending sort too: the last page ends with the communes without one.
    let nulls = records.iter().filter(|r| population(r).is_none()).count();
    assert!(nulls > 0);
    let tail = app
        .rows(&format!(
            "{COMMUNES}?population_municipale__sort=desc&page_size={nulls}&page={}",
            records.len().div_ceil(nulls)
        ))
        .await;
    assert!(tail.iter().all(|r| r["population_municipale"].is_null()));
    // Descending on one column; without a sort, file order.
    let first = app
        .rows(&format!(
            "{COMMUNES}?population_municipale__sort=desc&page_size=1"
        ))
        .await;
    let max = records.iter().filter_map(population).max().unwrap();
    assert_eq!(first[0]["population_municipale"], max);
    let unsorted = app.rows(&format!("{COMMUNES}?page_size=3")).await;
    let names: Vec<&str> = unsorted
        .iter()
        .map(|r| r["nom_de_la_commune"].as_str().unwrap())
        .collect();
    let published: Vec<&str> = records[..3].iter().map(|r| &r[1]).collect();
    assert_eq!(names, published);
    assert_eq!(names[0], "Abergement-Clémenciat");
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
    assert_eq!(
        v["links"]["openapi"],
        "http://qanat.test/api/datasets/departements/openapi.json"
    );
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
    let filter =
        "latitude__greater=45&population_municipale__greater=1000&population_municipale__sort=desc";
    let expected: Vec<csv::StringRecord> = communes()
        .into_iter()
        .filter(|r| {
            decimal(&r[4]).is_some_and(|l| l >= 45.0) && population(r).is_some_and(|p| p >= 1000)
        })
        .collect();
    assert!(
        expected.len() > 1000,
        "more rows than the largest page: {}",
        expected.len()
    );
    let r = app.get(&format!("{COMMUNES}.csv?{filter}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    let mut reader = csv::Reader::from_reader(r.body.as_slice());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "code_insee",
            "nom_de_la_commune",
            "departement",
            "population_municipale",
            "latitude",
            "longitude"
        ]
    );
    let back: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(back.len(), expected.len());
    let mut counts: Vec<i64> = expected.iter().filter_map(population).collect();
    counts.sort_by(|a, b| b.cmp(a));
    let got: Vec<i64> = back.iter().map(|r| r[3].parse().unwrap()).collect();
    assert_eq!(got, counts);
    // Codes keep their leading zeros, coordinates come back with a decimal point.
    let lyon = back.iter().find(|r| &r[0] == "69123").unwrap();
    let published = expected.iter().find(|r| &r[0] == "69123").unwrap();
    assert_eq!(lyon[4].parse::<f64>().ok(), decimal(&published[4]));
    // The same rows as the JSON pages.
    let page = app.rows(&format!("{COMMUNES}?{filter}&page_size=5")).await;
    for (row, rec) in page.iter().zip(&back) {
        assert_eq!(row["nom_de_la_commune"], rec[1]);
    }
    let nd = app
        .get(&format!(
            "{COMMUNES}.ndjson?{filter}&columns=nom_de_la_commune"
        ))
        .await;
    assert_eq!(nd.headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = nd
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), expected.len());
    assert_eq!(lines[0], json!({"nom_de_la_commune": back[0][1]}));
    // Paged export, and an empty one still has its header.
    let paged = app
        .get(&format!("{COMMUNES}.csv?{filter}&page=2&page_size=3"))
        .await
        .text();
    assert_eq!(paged.lines().count(), 4);
    let empty = app
        .get(&format!("{COMMUNES}.csv?population_municipale__exact=-1"))
        .await
        .text();
    assert_eq!(
        empty,
        "code_insee,nom_de_la_commune,departement,population_municipale,latitude,longitude\n"
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
    // Reference: communes north of 45°N per département, with count, sum, average, minimum
    // and maximum of their population (nulls left out, as SQL does).
    let mut by_dep = std::collections::BTreeMap::<String, (u64, Vec<i64>)>::new();
    for r in communes()
        .iter()
        .filter(|r| decimal(&r[4]).is_some_and(|l| l >= 45.0))
    {
        let e = by_dep.entry(r[2].to_string()).or_default();
        e.0 += 1;
        e.1.extend(population(r));
    }
    let mut want: Vec<(String, u64, i64, f64, i64, i64)> = by_dep
        .iter()
        .map(|(d, (n, v))| {
            let sum: i64 = v.iter().sum();
            let (min, max) = (*v.iter().min().unwrap(), *v.iter().max().unwrap());
            (d.clone(), *n, sum, sum as f64 / v.len() as f64, min, max)
        })
        .collect();
    want.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    let n = "population_municipale";
    let query = format!(
        "latitude__greater=45&departement__groupby&nom_de_la_commune__count&{n}__sum&{n}__avg&{n}__min&{n}__max&{n}__sum__sort=desc"
    );
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.abs().max(1.0);
    let check = |got: Vec<(String, u64, i64, f64, i64, i64)>, what: &str| {
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
            g["departement"].as_str().unwrap().to_string(),
            g["nom_de_la_commune__count"].as_u64().unwrap(),
            g[format!("{n}__sum")].as_i64().unwrap(),
            g[format!("{n}__avg")].as_f64().unwrap(),
            g[format!("{n}__min")].as_i64().unwrap(),
            g[format!("{n}__max")].as_i64().unwrap(),
        )
    };
    // JSON, three groups a page, following `links.next`.
    let mut got = Vec::new();
    let mut uri = format!("{COMMUNES}?{query}&page_size=3");
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
    let nd = app.get(&format!("{COMMUNES}.ndjson?{query}")).await.text();
    let got = nd
        .lines()
        .map(|l| row(&serde_json::from_str::<Value>(l).unwrap()))
        .collect();
    check(got, "NDJSON");
    // CSV, whole result, header first.
    let csv = app.get(&format!("{COMMUNES}.csv?{query}")).await.text();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            format!("departement,nom_de_la_commune__count,{n}__sum,{n}__avg,{n}__min,{n}__max")
                .as_str()
        )
    );
    let got = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_string(),
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
        .get(&format!("{COMMUNES}.csv?{query}&page_size=3&page=2"))
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

pub fn metric(text: &str, name: &str) -> u64 {
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
    assert_eq!(metric(&text, "qanat_datasets_loaded"), 3);
    assert!(text.contains("# TYPE qanat_cache_hits_total counter"));

    // A budget smaller than two pages evicts.
    let tiny = crate::support::TestApp::with_settings(
        &crate::support::repo_path("datasets"),
        "cache_bytes = 20000\n",
    )
    .await;
    for page in 1..=6 {
        tiny.get(&format!("{COMMUNES}?page={page}&page_size=50"))
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
    let uri = format!("{COMMUNES}.csv?departement__exact=2A");
    let first = app.get(&uri).await;
    let second = app.get(&uri).await;
    assert_eq!((first.status.as_u16(), second.status.as_u16()), (200, 200));
    assert_eq!(first.body, second.body);
    assert_eq!(first.headers["etag"], second.headers["etag"]);
    assert_eq!(second.headers["content-type"], "text/csv; charset=utf-8");
    let nd = app
        .get(&format!("{COMMUNES}.ndjson?departement__exact=2A"))
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
    let a = tiny.get(&format!("{COMMUNES}.csv")).await;
    let b = tiny.get(&format!("{COMMUNES}.csv")).await;
    assert_eq!(a.body, b.body);
    assert!(a.body.len() > 2_500);
    let text = tiny.get("/metrics").await.text();
    assert_eq!(metric(&text, "qanat_cache_misses_total"), 2);
    assert_eq!(metric(&text, "qanat_cache_entries"), 0);
}

#[tokio::test]
async fn identical_concurrent_misses_are_computed_once() {
    let app = TestApp::sample().await;
    let uri =
        format!("{COMMUNES}?departement__exact=13&population_municipale__sort=desc&page_size=30");
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

#[tokio::test]
async fn or_groups_match_any_of_their_conditions() {
    let app = TestApp::sample().await;
    let recs = sample_records("departements.csv", b',');
    // Codes 01 or 2A, or (région 15 and a name holding "loire"), within régions over 10.
    let want: Vec<&str> = recs
        .iter()
        .filter(|r| {
            let any = &r[1] == "01"
                || &r[1] == "2A"
                || (&r[5] == "15" && r[2].to_lowercase().contains("loire"));
            any && r[5].parse::<i64>().unwrap() >= 10
        })
        .map(|r| r.get(1).unwrap())
        .collect();
    assert!(want.len() >= 3, "{want:?}");
    let uri = format!(
        "{DEPTS}?or=(code__exact.01,code__exact.2A,and(region_id__exact.15,nom__contains.loire))&region_id__greater=10&columns=code&page_size=50"
    );
    let got: Vec<String> = app
        .rows(&uri)
        .await
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, want);
    // Several groups are ANDed; the CSV export answers the same rows.
    let csv = app
        .get(&format!(
            "{DEPTS}.csv?or=(code__in.(01,02,03))&or=(code__exact.03,nom__exact.Ain)&columns=code"
        ))
        .await
        .text();
    assert_eq!(csv, "code\n01\n03\n");
    // A malformed group says what is wrong, where.
    let detail = app
        .get(&format!("{DEPTS}?or=(code__exact.01,and(nom__isnull)"))
        .await
        .problem(400);
    assert!(detail.contains("`)` expected at character"), "{detail}");
}
