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
        parquet.catalog.load_current(entry).await.unwrap();
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
    let loaded = app.state.catalog.loaded("prenoms-paris").unwrap();
    let r = loaded.resident.as_ref().unwrap();
    let parse = |raw: &str| {
        qanat::query::params::parse(raw, &loaded.manifest.schema, &app.state.settings.limits)
            .unwrap()
    };
    assert!(qanat::query::resident::Resident::serves(&parse(
        "sexe__exact=F&page=3"
    )));
    assert!(!qanat::query::resident::Resident::serves(&parse(
        "annee__sort=asc"
    )));
    assert!(r.serves_aggregate(&parse("prenoms__groupby&sexe__groupby&annee__count")));
    assert!(!r.serves_aggregate(&parse("sexe__groupby&nombre_prenoms_declares__sum")));
    assert!(!r.serves_aggregate(&parse("annee__groupby&sexe__count")));
    let parquet = qanat::http::router(parquet);

    let prenoms = "/api/datasets/prenoms-paris/data";
    let depts = "/api/datasets/departements/data";
    let gares = "/api/datasets/gares-oncf/data";
    let pluie = "/api/datasets/pluie-ardeche/data";
    let mut uris = vec![
        format!("{prenoms}"),
        format!("{prenoms}?page=7&page_size=13"),
        format!("{prenoms}?sexe__exact=F&page_size=50&page=3"),
        format!("{prenoms}?sexe__differs=F&prenoms__in=Adam,Louise,Nobody"),
        format!("{prenoms}?prenoms__notin=Adam,Louise&annee__greater=2018&columns=prenoms,annee"),
        format!("{prenoms}?prenoms__contains=ou&sexe__exact=M"),
        format!("{prenoms}?prenoms__notcontains=a&nombre_prenoms_declares__strictly_greater=100"),
        format!("{prenoms}?annee__less=2012&annee__strictly_less=2013&page_size=1000"),
        format!("{prenoms}?sexe__isnull"),
        format!("{prenoms}?sexe__isnotnull&page=999"),
        format!("{prenoms}.csv?sexe__exact=F&annee__exact=2019"),
        format!("{prenoms}.ndjson?prenoms__in=Adam,Louise"),
        format!("{prenoms}.csv?page=2&page_size=100&columns=annee,prenoms"),
        format!("{prenoms}.csv?prenoms__exact=Nobody"),
        format!("{depts}?code__in=01,2A,971"),
        format!("{depts}?region_id__greater=10&page_size=7&page=2&columns=code,nom"),
        format!("{depts}?nom__contains=%27"),
        format!("{gares}?parent_station__isnull&stop_lat__greater=34"),
        format!("{gares}?parent_station__differs=X&location_type__exact=1"),
        format!("{gares}.ndjson?stop_lon__strictly_less=-6"),
        format!("{pluie}?num_poste__exact=07005001&page_size=100&page=4"),
        format!("{pluie}?rr__greater=1.5&qrr__exact=9"),
        format!("{pluie}.csv?aaaammjjhhmn__greater=202501020000&num_poste__in=07005001"),
        // Sorted and aggregated queries run in DataFusion, over memory or over Parquet.
        format!("{prenoms}?nombre_prenoms_declares__sort=desc&page_size=5&page=3"),
        format!("{prenoms}?sexe__groupby&annee__groupby&nombre_prenoms_declares__sum"),
        // Counted groups of coded columns are answered from memory too.
        format!("{prenoms}?sexe__groupby&sexe__count"),
        format!(
            "{prenoms}?prenoms__groupby&annee__count&annee__count__sort=desc&page_size=50&page=2"
        ),
        format!(
            "{prenoms}?prenoms__groupby&sexe__groupby&prenoms__count&annee__greater=2015&prenoms__sort=desc&page_size=20&page=3"
        ),
        format!("{prenoms}.csv?sexe__groupby&annee__count&annee__strictly_greater=2020"),
        format!(
            "{prenoms}.ndjson?prenoms__groupby&sexe__count&sexe__count__sort=asc&page_size=7&page=4"
        ),
        format!("{prenoms}?sexe__groupby&prenoms__count&prenoms__exact=Nobody"),
        format!("{gares}?parent_station__groupby&stop_id__count"),
        format!("{pluie}?nom_usuel__groupby&rr__count&rr__count__sort=desc"),
    ];
    // Cursor walks: the second page of a few queries, through `links.next`.
    for first in [
        format!("{prenoms}?sexe__exact=F&page_size=25"),
        format!("{depts}?page_size=40"),
        format!("{pluie}?rr__greater=0&page_size=10"),
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
    let resident: Vec<bool> = [
        "departements",
        "gares-oncf",
        "pluie-ardeche",
        "prenoms-paris",
    ]
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
        app.total("/api/datasets/prenoms-paris/data?sexe__exact=F")
            .await
            > 0
    );
}
