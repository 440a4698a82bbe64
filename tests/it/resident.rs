//! Datasets held in memory answer exactly as the same versions read from Parquet: two servers
//! over one storage, one with the resident budget and one without, give byte-identical bodies.

use crate::support::{TestApp, build_state, repo_path, request};

#[tokio::test]
async fn resident_and_parquet_answers_are_identical() {
    let app = TestApp::sample().await;
    let parquet = build_state(
        app.dir.path(),
        &repo_path("datasets"),
        "resident_bytes = 0\n",
    );
    for entry in parquet.catalog.entries() {
        parquet.catalog.load_current(&entry).await.unwrap();
        let resident = app.state.catalog.loaded(&entry.spec.id).unwrap();
        assert!(resident.resident.is_some(), "{} in memory", entry.spec.id);
        assert!(
            parquet
                .catalog
                .loaded(&entry.spec.id)
                .unwrap()
                .resident
                .is_none()
        );
    }
    assert!(app.state.executor.budget().used() > 0);
    // Which queries the in-memory paths take (the others run in DataFusion).
    let loaded = app.state.catalog.loaded("communes").unwrap();
    let r = loaded.resident.as_ref().unwrap();
    let parse = |raw: &str| {
        qanat::query::params::parse(raw, &loaded.manifest.schema, &app.state.settings.limits)
            .unwrap()
    };
    assert!(qanat::query::resident::Resident::serves(&parse(
        "departement__exact=13&page=3"
    )));
    assert!(!qanat::query::resident::Resident::serves(&parse(
        "population_municipale__sort=asc"
    )));
    // One sort on an ordered column walks that order; two sorts are planned.
    assert!(r.serves_sorted(&parse(
        "population_municipale__sort=desc&departement__exact=13"
    )));
    assert!(r.serves_sorted(&parse("departement__sort=asc")));
    assert!(!r.serves_sorted(&parse(
        "departement__sort=asc&population_municipale__sort=desc"
    )));
    assert!(r.serves_aggregate(&parse("departement__groupby&code_insee__count")));
    assert!(r.serves_aggregate(&parse(
        "departement__groupby&population_municipale__sum&population_municipale__avg&population_municipale__max"
    )));
    // A float's minimum is DataFusion's (its order of NaN and -0), and so is text's.
    assert!(!r.serves_aggregate(&parse("departement__groupby&nom_de_la_commune__max")));
    assert!(!r.serves_aggregate(&parse("departement__groupby&latitude__min")));
    assert!(!r.serves_aggregate(&parse("population_municipale__groupby&departement__count")));
    // INSEE codes are too many for 16-bit codes: grouping by them runs in DataFusion.
    assert!(!r.serves_aggregate(&parse("code_insee__groupby&departement__count")));
    let parquet = qanat::http::router(parquet);

    let communes = "/api/datasets/communes/data";
    let depts = "/api/datasets/departements/data";
    let villes = "/api/datasets/villes-maroc/data";
    let mut uris = vec![
        format!("{communes}"),
        format!("{communes}?page=7&page_size=13"),
        format!("{communes}?departement__exact=2A&page_size=50&page=2"),
        format!("{communes}?departement__differs=01&nom_de_la_commune__in=Paris,Lyon,Nulle-Part"),
        format!(
            "{communes}?nom_de_la_commune__notin=Paris,Lyon&population_municipale__greater=20000&columns=nom_de_la_commune,population_municipale"
        ),
        format!("{communes}?nom_de_la_commune__contains=sur&departement__exact=69"),
        format!(
            "{communes}?nom_de_la_commune__notcontains=a&population_municipale__strictly_greater=10000"
        ),
        format!("{communes}?latitude__less=43&latitude__strictly_less=43.5&page_size=1000"),
        format!("{communes}?population_municipale__isnull"),
        format!("{communes}?departement__isnotnull&page=999"),
        format!("{communes}.csv?departement__exact=13&population_municipale__greater=5000"),
        format!("{communes}.ndjson?nom_de_la_commune__in=Paris,Lyon"),
        format!("{communes}.csv?page=2&page_size=100&columns=departement,nom_de_la_commune"),
        format!("{communes}.csv?nom_de_la_commune__exact=Nulle-Part"),
        format!("{depts}?code__in=01,2A,971"),
        format!("{depts}?region_id__greater=10&page_size=7&page=2&columns=code,nom"),
        format!("{depts}?nom__contains=%27"),
        format!("{villes}?nom_ar__isnull&latitude__greater=34"),
        format!("{villes}?nom_ar__differs=X&region__exact=04"),
        format!("{villes}.ndjson?longitude__strictly_less=-6"),
        format!("{villes}?region__in=01,02&page_size=10&page=2"),
        // Sorted and aggregated queries run in DataFusion, over memory or over Parquet.
        format!("{communes}?population_municipale__sort=desc&page_size=5&page=3"),
        format!("{communes}?departement__groupby&population_municipale__sum"),
        format!(
            "{communes}?nom_de_la_commune__groupby&code_insee__count&code_insee__count__sort=desc&page_size=50&page=2"
        ),
        // Counted groups of coded columns are answered from memory too.
        format!("{communes}?departement__groupby&departement__count"),
        format!(
            "{communes}?departement__groupby&code_insee__count&population_municipale__greater=10000&departement__sort=desc&page_size=20&page=2"
        ),
        format!(
            "{communes}.csv?departement__groupby&nom_de_la_commune__count&latitude__strictly_greater=48"
        ),
        format!(
            "{communes}.ndjson?departement__groupby&code_insee__count&code_insee__count__sort=asc&page_size=7&page=4"
        ),
        format!(
            "{communes}?departement__groupby&code_insee__count&nom_de_la_commune__exact=Nulle-Part"
        ),
        format!("{villes}?region__groupby&geonameid__count"),
        format!("{communes}?departement__groupby&population_municipale__avg&page_size=200"),
        format!(
            "{communes}?departement__groupby&population_municipale__sum&population_municipale__avg&population_municipale__min&population_municipale__max&population_municipale__greater=2000&population_municipale__sum__sort=desc"
        ),
        format!(
            "{villes}?fuseau_horaire__groupby&region__groupby&nom__count&nom__count__sort=desc"
        ),
    ];
    // Cursor walks: the second page of a few queries, through `links.next`.
    for first in [
        format!("{communes}?departement__exact=2A&page_size=25"),
        format!("{depts}?page_size=40"),
        format!("{villes}?latitude__greater=30&page_size=10"),
        format!("{communes}?population_municipale__sort=desc&page_size=30"),
        format!("{communes}?departement__sort=desc&departement__greater=90&page_size=30"),
        format!(
            "{communes}?population_municipale__sort=asc&population_municipale__greater=1000&population_municipale__strictly_less=1200&page_size=20"
        ),
        format!("{villes}?latitude__sort=asc&region__exact=04&page_size=5"),
    ] {
        let v = request(&app.router, &first, &[]).await.json();
        let next = v["links"]["next"].as_str().unwrap();
        uris.push(next.strip_prefix("http://qanat.test").unwrap().to_string());
    }
    for uri in &uris {
        let a = request(&app.router, uri, &[]).await;
        let b = request(&parquet, uri, &[]).await;
        assert_eq!(a.status, 200, "{uri}: {}", a.text());
        assert_eq!(
            a.text(),
            b.text(),
            "{uri}: memory and Parquet answers differ"
        );
        assert_eq!(a.headers["etag"], b.headers["etag"], "{uri}");
    }
}

#[tokio::test]
async fn datasets_over_the_budget_are_read_from_parquet() {
    // A budget that holds the small datasets only.
    let app = TestApp::with_settings(&repo_path("datasets"), "resident_bytes = 400000\n").await;
    let resident: Vec<bool> = ["communes", "departements", "villes-maroc"]
        .iter()
        .map(|id| app.state.catalog.loaded(id).unwrap().resident.is_some())
        .collect();
    assert!(
        resident.iter().any(|r| *r) && resident.iter().any(|r| !*r),
        "{resident:?}"
    );
    assert!(app.state.executor.budget().used() <= 400_000);
    // Both kinds answer.
    assert_eq!(
        app.total("/api/datasets/departements/data?code__exact=2A")
            .await,
        1
    );
    assert!(
        app.total("/api/datasets/communes/data?departement__exact=13")
            .await
            > 0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_on_demand_datasets_enter_memory_when_queried_least_recently_used_out_first() {
    let csv = |n: usize| {
        let mut s = String::from("code,valeur\n");
        for i in 0..n {
            s.push_str(&format!("{i:05},{}\n", i * 7));
        }
        s.into_bytes()
    };
    let (a, b) = (csv(1000), csv(1000));
    // A budget for one of the two (each is estimated at twice its bytes plus 24 a row, and
    // takes about 36 KB indexed).
    let app = TestApp::with_csvs(&[("a", &a), ("b", &b)], "resident_bytes = 60000\n").await;
    // Built by a command, the catalog read `a` into memory when it was published; served,
    // versions are opened from Parquet and read into memory on demand.
    let state = build_state(
        app.dir.path(),
        &app.dir.path().join("datasets"),
        "resident_bytes = 60000\n",
    );
    state.catalog.serve_on_demand();
    let resident = |id: &'static str| {
        let catalog = std::sync::Arc::clone(&state.catalog);
        async move {
            let started = std::time::Instant::now();
            loop {
                let l = catalog.loaded(id).unwrap();
                if l.resident.is_some() {
                    return true;
                }
                if started.elapsed() > std::time::Duration::from_secs(10) {
                    return false;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    let first = state.catalog.serving("a").await.unwrap();
    assert!(first.resident.is_none(), "the first query reads Parquet");
    assert!(resident("a").await, "then `a` is read into memory");
    assert!(state.catalog.loaded("b").is_err(), "`b` is not even opened");
    // `b` is queried: there is room for one, so `a`, least recently used, goes back to Parquet.
    state.catalog.serving("b").await.unwrap();
    assert!(resident("b").await);
    assert!(state.catalog.loaded("a").unwrap().resident.is_none());
    // Answers are the same either way.
    let router = qanat::http::router(state.clone());
    let body = request(&router, "/api/datasets/a/data?code__exact=00042", &[])
        .await
        .json();
    assert_eq!(body["data"][0]["valeur"], 294);
}

#[tokio::test]
async fn selective_filters_read_posting_lists_and_answer_as_parquet_does() {
    // 5,000 rows: `code` nearly unique (a posting list of one or two rows), `cat` of four
    // values and nulls, `n` a number.
    let mut csv = String::from("code,cat,n\n");
    for i in 0..5000 {
        let cat = if i % 97 == 0 {
            ""
        } else {
            ["bus", "tram", "train", "ferry"][i % 4]
        };
        csv.push_str(&format!("K{:04},{cat},{}\n", i % 4000, i % 50));
    }
    let app = TestApp::with_csvs(&[("p", csv.as_bytes())], "").await;
    let parquet = build_state(
        app.dir.path(),
        &app.dir.path().join("datasets"),
        "resident_bytes = 0\n",
    );
    let entry = parquet.catalog.entry("p").unwrap();
    assert!(parquet.catalog.load_current(&entry).await.unwrap());
    assert!(app.state.catalog.loaded("p").unwrap().resident.is_some());
    let parquet = qanat::http::router(parquet);
    // K0001 is on rows 1 (tram) and 4001 (tram); K0004 on rows 4 (bus) and 4004 (bus).
    let cases: [(&str, u64); 9] = [
        ("code__exact=K0001", 2),
        ("code__exact=K0001&cat__exact=tram", 2),
        ("code__exact=K0001&cat__exact=bus", 0),
        ("code__in=K0001,K0004,K3999&cat__in=bus,ferry", 3),
        ("code__in=K0001,K0004&n__greater=3", 2),
        ("code__exact=K0004&n__less=3", 0),
        ("cat__isnull", 52),
        ("cat__isnull&n__strictly_greater=40", 10),
        ("code__in=K0001,K0002,K0003,K0004,K0005&page_size=2", 10),
    ];
    for (query, total) in cases {
        let mut uri = Some(format!("/api/datasets/p/data?{query}"));
        let mut first = true;
        while let Some(u) = uri.take() {
            let a = request(&app.router, &u, &[]).await;
            let b = request(&parquet, &u, &[]).await;
            assert_eq!(a.status, 200, "{u}: {}", a.text());
            let (va, vb) = (a.json(), b.json());
            assert_eq!(va["data"], vb["data"], "{u}");
            assert_eq!(va["meta"]["total"], vb["meta"]["total"], "{u}");
            if first {
                assert_eq!(va["meta"]["total"], total, "{u}");
                first = false;
            }
            // Cursors walk on through the posting lists alike.
            uri = va["links"]["next"]
                .as_str()
                .map(|l| l.strip_prefix("http://qanat.test").unwrap().to_string());
        }
    }
}
