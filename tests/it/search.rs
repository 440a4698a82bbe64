//! Full-text search on the sample catalog: French words whatever their case and accents,
//! Arabic whatever its alef, ta marbuta, tashkeel or tatweel, Tifinagh as written; one column or
//! all; ranked by relevance; with filters, facets, aggregations and exports; the same answers
//! with the word index as by folding cells; and the 400s.

use serde_json::Value;

use crate::support::{TestApp, build_state, request, sample_records, toml_for};

const VILLES: &str = "/api/datasets/villes-maroc/data";
const COMMUNES: &str = "/api/datasets/communes/data";

fn names(rows: &[Value], key: &str) -> Vec<String> {
    rows.iter()
        .map(|r| r[key].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn french_words_match_whatever_their_case_and_accents() {
    let app = TestApp::sample().await;
    for q in ["fes", "FÈS", "Fès", "fès"] {
        let rows = app
            .rows(&format!("{VILLES}?q={}&columns=nom", urlencode(q)))
            .await;
        assert_eq!(
            names(&rows, "nom"),
            ["Fes", "Fès al Bali", "New Fes"],
            "{q}"
        );
    }
    // Every word, in any text column: the communes named Saint-Étienne-…, against the file.
    let reference: Vec<String> = sample_records("communes.csv", b';')
        .iter()
        .filter(|r| {
            let name = r[1].to_lowercase();
            let words: Vec<&str> = name.split(|c: char| !c.is_alphanumeric()).collect();
            words.contains(&"saint") && words.contains(&"étienne")
        })
        .map(|r| r[0].to_string())
        .collect();
    assert!(reference.len() > 20, "{} communes", reference.len());
    let uri = format!("{COMMUNES}?q=SAINT%20etienne&columns=code_insee&page_size=1000");
    let r = app.get(&uri).await.json();
    assert_eq!(r["meta"]["total"], reference.len() as u64);
    assert_eq!(
        names(r["data"].as_array().unwrap(), "code_insee"),
        reference
    );
    // Words, not substrings: `saint` is not in `Saintes`.
    let saintes = app
        .rows(&format!("{COMMUNES}?q=saintes&columns=nom_de_la_commune"))
        .await;
    assert!(names(&saintes, "nom_de_la_commune").contains(&"Saintes".to_string()));
    assert!(
        !names(&saintes, "nom_de_la_commune")
            .iter()
            .any(|n| n == "Saint-Étienne")
    );
}

#[tokio::test]
async fn arabic_matches_whatever_the_way_it_is_written() {
    let app = TestApp::sample().await;
    for (query, city) in [
        // أغادير written with a bare alef, آسفي without its madda, إفران without the hamza.
        ("اغادير", "Agadir"),
        ("أغادير", "Agadir"),
        ("اسفي", "Safi"),
        ("افران", "Ifrane"),
        // وجدة with ha for its ta marbuta, with tashkeel, stretched by tatweel.
        ("وجده", "Oujda"),
        ("وَجْدَة", "Oujda"),
        ("وجـــدة", "Oujda"),
    ] {
        let rows = app
            .rows(&format!("{VILLES}?q={}&columns=nom", urlencode(query)))
            .await;
        assert_eq!(names(&rows, "nom"), [city], "{query}");
    }
    // One column only: the Arabic name holds no Latin word.
    let uri = format!("{VILLES}?nom_ar__search=fes");
    assert_eq!(app.total(&uri).await, 0);
    let uri = format!("{VILLES}?nom__search=fes");
    assert_eq!(app.total(&uri).await, 3);
}

#[tokio::test]
async fn tifinagh_matches_as_written_and_ranking_puts_the_best_rows_first() {
    let csv = "id,nom,note\n\
        1,ⵜⴰⵎⴰⵣⵉⵖⵜ,langue\n\
        2,ⴰⵎⴰⵣⵉⵖ,ⵜⴰⵎⴰⵣⵉⵖⵜ ⵜⴰⵎⴰⵣⵉⵖⵜ\n\
        3,Le bus de nuit qui passe tard par la gare,bus\n\
        4,bus,express\n\
        5,train,bus bus bus\n\
        6,train,rien\n";
    let toml = toml_for("t.csv", "");
    let app = TestApp::with_files(&[("t.csv", csv.as_bytes()), ("t.toml", &toml)], "").await;
    let ids =
        |rows: Vec<Value>| -> Vec<i64> { rows.iter().map(|r| r["id"].as_i64().unwrap()).collect() };
    let uri = format!("/api/datasets/t/data?q={}", urlencode("ⵜⴰⵎⴰⵣⵉⵖⵜ"));
    assert_eq!(ids(app.rows(&uri).await), [1, 2]);
    let uri = format!("/api/datasets/t/data?q={}", urlencode("ⴰⵎⴰⵣⵉⵖ"));
    assert_eq!(ids(app.rows(&uri).await), [2]);

    // File order without a ranking; with one, the rows where `bus` weighs most first: three
    // times in a short row, then once in a short row, then once in a long one.
    assert_eq!(ids(app.rows("/api/datasets/t/data?q=bus").await), [3, 4, 5]);
    let ranked = "/api/datasets/t/data?q=bus&q_sort=relevance";
    assert_eq!(ids(app.rows(ranked).await), [5, 4, 3]);
    // Pages of a ranking follow on by page number.
    let page = app.get(&format!("{ranked}&page_size=2")).await.json();
    assert_eq!(ids(page["data"].as_array().unwrap().clone()), [5, 4]);
    let next = page["links"]["next"].as_str().unwrap();
    let next = next.strip_prefix("http://qanat.test").unwrap();
    assert_eq!(ids(app.rows(next).await), [3]);
    // Without a search there is nothing to rank: file order.
    let all = app.rows("/api/datasets/t/data?q_sort=relevance").await;
    assert_eq!(ids(all), [1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn search_holds_with_filters_facets_aggregations_and_exports() {
    let app = TestApp::sample().await;
    let communes = sample_records("communes.csv", b';');
    let saint = |r: &&csv::StringRecord| {
        r[1].to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w == "saint")
    };
    let in_ain: Vec<&csv::StringRecord> = communes
        .iter()
        .filter(saint)
        .filter(|r| &r[2] == "01")
        .collect();
    let page = app
        .get(&format!(
            "{COMMUNES}?q=saint&departement__exact=01&facets=departement"
        ))
        .await
        .json();
    assert_eq!(page["meta"]["total"], in_ain.len() as u64);
    let facet = &page["meta"]["facets"]["departement"]["values"][0];
    assert_eq!(facet["count"], in_ain.len() as u64);
    // Counted per département: the Ain's group holds the same rows.
    let groups = app
        .rows(&format!(
            "{COMMUNES}?q=saint&departement__groupby&code_insee__count&page_size=200"
        ))
        .await;
    let ain = groups.iter().find(|g| g["departement"] == "01").unwrap();
    assert_eq!(ain["code_insee__count"], in_ain.len() as u64);
    let total: u64 = groups
        .iter()
        .map(|g| g["code_insee__count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, communes.iter().filter(saint).count() as u64);
    // Exported: the same rows.
    let csv = app
        .get(&format!("{COMMUNES}.csv?q=saint&departement__exact=01"))
        .await
        .text();
    assert_eq!(csv.lines().count(), in_ain.len() + 1);
}

/// A version written before the word index (or whose index is gone) is searched by folding its
/// cells: the same answers.
#[tokio::test]
async fn without_the_word_index_cells_are_folded_with_the_same_answers() {
    let app = TestApp::sample().await;
    let mut removed = 0;
    for entry in walk(&app.storage_dir()) {
        if entry.file_name().is_some_and(|n| n == "words.bin") {
            std::fs::remove_file(&entry).unwrap();
            removed += 1;
        }
    }
    assert!(removed >= 3, "{removed} word indexes");
    let datasets = crate::support::repo_path("datasets");
    let scan = build_state(app.dir.path(), &datasets, "resident_bytes = 0\n");
    for id in ["communes", "villes-maroc"] {
        let entry = scan.catalog.entry(id).unwrap();
        assert!(scan.catalog.load_current(&entry).await.unwrap());
    }
    let scan = qanat::http::router(scan);
    for uri in [
        format!("{COMMUNES}?q=saint%20etienne&page_size=50"),
        format!("{COMMUNES}?q=SAINT&departement__in=01,2A&facets=departement"),
        format!("{COMMUNES}?q=saint&q_sort=relevance&page_size=30&columns=nom_de_la_commune"),
        format!("{VILLES}?q={}", urlencode("وجده")),
        format!("{VILLES}?nom__search=fes&columns=nom"),
    ] {
        let (a, b) = (app.get(&uri).await, request(&scan, &uri, &[]).await);
        assert_eq!(a.status, 200, "{uri}: {}", a.text());
        assert_eq!(a.json()["data"], b.json()["data"], "{uri}");
        assert_eq!(a.json()["meta"], b.json()["meta"], "{uri}");
    }
}

#[tokio::test]
async fn bad_searches_are_400s_that_say_what_would_do() {
    let app = TestApp::sample().await;
    for (query, says) in [
        ("q=%20-%2C", "no word to search for"),
        (
            "population_municipale__search=12",
            "`population_municipale` is integer",
        ),
        ("q=saint&q_sort=population", "`relevance`"),
        (
            "q=saint&q_sort=relevance&population_municipale__sort=desc",
            "drop the `__sort`",
        ),
        (
            "q=a%20b%20c%20d%20e%20f%20g%20h%20i%20j%20k%20l%20m%20n%20o%20p%20q",
            "at most 16",
        ),
    ] {
        let detail = app.get(&format!("{COMMUNES}?{query}")).await.problem(400);
        assert!(detail.contains(says), "{query}: {detail}");
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
