//! Facets beside a page: counts checked against the published rows, by value and by month and
//! year, nulls and others, cached with the page, truncated past their budget, and the 400s.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::differential::{CATEGORIES, ROWS, table};
use crate::support::{TestApp, sample_records, toml_for};

/// The reference: values and their counts, most frequent first, then by value.
fn top(values: impl Iterator<Item = String>) -> Vec<(String, u64)> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let mut sorted: Vec<(String, u64)> = counts.into_iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    sorted
}

fn listed(facet: &Value) -> Vec<(String, u64)> {
    let values = facet["values"].as_array().unwrap();
    values
        .iter()
        .map(|v| {
            let value = match &v["value"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (value, v["count"].as_u64().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn facets_count_the_filtered_rows_as_the_published_file_does() {
    let app = TestApp::sample().await;
    let communes = sample_records("communes.csv", b';');
    // Communes of 1,000 inhabitants or more, by département: the 30 largest counts.
    let kept: Vec<&csv::StringRecord> = communes
        .iter()
        .filter(|r| r[3].parse::<i64>().is_ok_and(|p| p >= 1000))
        .collect();
    let reference = top(kept.iter().map(|r| r[2].to_string()));
    let page = app
        .get("/api/datasets/communes/data?population_municipale__greater=1000&facets=departement&page_size=2")
        .await
        .json();
    let meta = &page["meta"];
    assert_eq!(meta["total"], kept.len() as u64);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let facet = &meta["facets"]["departement"];
    assert_eq!(listed(facet), reference[..30].to_vec());
    let others: u64 = reference[30..].iter().map(|(_, n)| n).sum();
    assert_eq!(facet["others"], others);
    assert_eq!(facet["nulls"], 0);
    assert_eq!(facet["truncated"], false);

    // Nulls apart: Moroccan cities with and without an Arabic name, by region, 5 listed.
    let villes = sample_records("villes-maroc.csv", b',');
    let page = app
        .get("/api/datasets/villes-maroc/data?facets=region,nom_ar&facet_size=5")
        .await
        .json();
    let regions = top(villes.iter().map(|r| r[6].to_string()));
    assert_eq!(
        listed(&page["meta"]["facets"]["region"]),
        regions[..5].to_vec()
    );
    let nulls = villes.iter().filter(|r| r[2].is_empty()).count() as u64;
    assert!(nulls > 0, "the sample has cities without an Arabic name");
    let by_name = &page["meta"]["facets"]["nom_ar"];
    assert_eq!(by_name["nulls"], nulls);
    let shown: u64 = listed(by_name).iter().map(|(_, n)| n).sum();
    assert_eq!(
        shown + by_name["others"].as_u64().unwrap() + nulls,
        villes.len() as u64
    );
}

/// Suggested facets come from the profile: columns whose values repeat with few distinct ones,
/// dates spanning several months; the counts themselves are never computed unasked.
#[tokio::test]
async fn suggested_facets_are_the_columns_with_few_repeated_values() {
    let app = TestApp::sample().await;
    let departements = sample_records("departements.csv", b',');
    let distinct = |i: usize| {
        let values: std::collections::HashSet<&str> = departements.iter().map(|r| &r[i]).collect();
        values.len()
    };
    // type_nom and region_id repeat with at most 30 values; codes, names and chefs-lieux don't.
    assert!(distinct(3) <= 30 && distinct(5) <= 30);
    assert!(distinct(1) > 30 && distinct(4) > 30);
    let d = app.get("/api/datasets/departements").await.json();
    assert_eq!(d["suggested_facets"], json!(["type_nom", "region_id"]));
    let v = app.get("/api/datasets/villes-maroc").await.json();
    assert_eq!(v["suggested_facets"], json!(["region"]));

    let csv = table();
    let toml = toml_for("t.csv", "");
    let app = TestApp::with_files(&[("t.csv", &csv), ("t.toml", &toml)], "").await;
    let t = app.get("/api/datasets/t").await.json();
    // Dates over the twelve months of 2024: by month, not by year.
    assert_eq!(
        t["suggested_facets"],
        json!(["cat", "city", "flag", "day:month"])
    );
}

#[tokio::test]
async fn dates_are_counted_by_month_and_year_and_links_keep_the_facets() {
    let csv = table();
    let toml = toml_for("t.csv", "");
    let app = TestApp::with_files(&[("t.csv", &csv), ("t.toml", &toml)], "").await;
    // Rows of the Bus category, by month: row i is in month i % 12 + 1 of 2024.
    let bus = |i: &usize| !i.is_multiple_of(17) && CATEGORIES[i * 7 % 4] == "Bus";
    let months = top((0..ROWS)
        .filter(bus)
        .map(|i| format!("2024-{:02}", i % 12 + 1)));
    let uri = "/api/datasets/t/data?cat__exact=Bus&facets=day:month,day:year,cat&facet_size=12";
    let page = app.get(uri).await.json();
    let facets = &page["meta"]["facets"];
    let keys: Vec<&String> = facets.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["day:month", "day:year", "cat"]);
    assert_eq!(listed(&facets["day:month"]), months);
    let count = (0..ROWS).filter(bus).count() as u64;
    assert_eq!(listed(&facets["day:year"]), [("2024".to_string(), count)]);
    assert_eq!(listed(&facets["cat"]), [("Bus".to_string(), count)]);
    // The next page's link asks for the same facets.
    let next = page["links"]["next"].as_str().unwrap();
    assert!(
        next.contains("facets=day%3Amonth%2Cday%3Ayear%2Ccat&facet_size=12"),
        "{next}"
    );
    // Cached with the page: the same body again, and an ETag of its own.
    let again = app.get(uri).await;
    assert_eq!(again.json(), page);
    let plain = app.get("/api/datasets/t/data?cat__exact=Bus").await;
    assert_ne!(again.headers["etag"], plain.headers["etag"]);
    assert!(plain.json()["meta"].get("facets").is_none());
}

#[tokio::test]
async fn a_facet_past_its_budget_is_truncated_and_the_page_still_answers() {
    // 200,000 distinct values: far more than a millisecond's counting, even in release builds.
    let mut csv = String::from("code,n\n");
    for i in 0..200_000 {
        csv.push_str(&format!("K{:07},{}\n", i * 7919 % 1_000_003, i % 7));
    }
    let toml = toml_for("t.csv", "");
    let app = TestApp::with_files(
        &[("t.csv", csv.as_bytes()), ("t.toml", &toml)],
        "[limits]\nfacet_timeout_ms = 1\n",
    )
    .await;
    let r = app
        .get("/api/datasets/t/data?facets=code&page_size=3")
        .await;
    assert_eq!(r.status, 200);
    let page = r.json();
    assert_eq!(page["data"].as_array().unwrap().len(), 3);
    assert_eq!(page["meta"]["total"], 200_000);
    assert_eq!(
        page["meta"]["facets"]["code"],
        json!({"values": [], "others": null, "nulls": null, "truncated": true})
    );
}

#[tokio::test]
async fn bad_facets_are_400s_that_say_what_would_do() {
    let datasets = crate::support::repo_path("datasets");
    let app = TestApp::with_settings(&datasets, "[limits]\nmax_facets = 2\n").await;
    let d = "/api/datasets/departements/data";
    for (query, says) in [
        ("facets=nope", "unknown column `nope`"),
        // What would be right: the columns there are.
        ("facets=nope", "region_id"),
        ("facets=code,", "an empty name"),
        ("facets=code:month", "only date and datetime"),
        ("facets=code&facet_size=500", "from 1 to 100"),
        ("facets=code&facet_size=ten", "from 1 to 100"),
        ("facets=code,code", "twice"),
        ("facets=code,nom,region_id", "at most 2"),
        ("facets=code&region_id__groupby", "without `__groupby`"),
    ] {
        let detail = app.get(&format!("{d}?{query}")).await.problem(400);
        assert!(detail.contains(says), "{query}: {detail}");
    }
    // The tabular API's routes have no facets: an unknown parameter there.
    let rid = app.state.catalog.resource_ids()[0].clone();
    let r = app
        .get(&format!("/api/resources/{rid}/data/?facets=code"))
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}
