//! data.gouv.fr's tabular API routes: published headers and `__id`, api-tabular's envelope,
//! links, errors and semantics, and the same rows as the native routes.

use serde_json::{Value, json};

use crate::support::{TestApp, toml_for};

const RID: &str = "5c1f0c3a-1b2e-4d5f-8a9b-0c1d2e3f4a5b";

/// Headers as portals publish them: accents, spaces, a dot, `__`, a blank; codes with leading
/// zeros, nulls in text and numbers, a date.
const CSV: &str = "\
Code INSEE;Nom de la commune;Part.ville;note__brute;Date de création;\n\
01001;L'Abergement;1,5;10;2020-01-31;a\n\
01002;Ambérieu*x;;20;2021-06-01;b\n\
2A004;Ajaccio;3,25;;;c\n\
01004;Ambronay;0,5;40;2019-12-31;\n\
75056;Paris;;5;2022-02-02;e\n";

async fn app() -> TestApp {
    let toml = toml_for("communes.csv", &format!("resource_id = \"{RID}\"\n"));
    TestApp::with_files(
        &[("communes.csv", CSV.as_bytes()), ("communes.toml", &toml)],
        "",
    )
    .await
}

fn data(v: &Value) -> Vec<Value> {
    v["data"].as_array().unwrap().clone()
}

fn column(rows: &[Value], key: &str) -> Vec<Value> {
    rows.iter().map(|r| r[key].clone()).collect()
}

#[tokio::test]
async fn rows_are_keyed_by_published_headers_with_a_one_based_id() {
    let app = app().await;
    for rid in [RID, "communes"] {
        let r = app
            .get(&format!("/api/resources/{rid}/data/?page_size=2"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.headers["access-control-allow-origin"], "*");
        let v = r.json();
        let first = &data(&v)[0];
        let keys: Vec<&str> = first
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "__id",
                "Code INSEE",
                "Nom de la commune",
                "Part.ville",
                "note__brute",
                "Date de création",
                "column_6"
            ]
        );
        assert_eq!(first["__id"], 1);
        assert_eq!(first["Code INSEE"], "01001");
        assert_eq!(first["Part.ville"], 1.5);
        assert_eq!(first["Date de création"], "2020-01-31");
        let base = format!("http://qanat.test/api/resources/{rid}");
        assert_eq!(
            v["links"],
            json!({
                "profile": format!("{base}/profile/"),
                "swagger": format!("{base}/swagger/"),
                "next": format!("{base}/data/?page=2&page_size=2"),
                "prev": null,
            })
        );
        assert_eq!(v["meta"], json!({"page": 1, "page_size": 2, "total": 5}));
    }
    // The last page: no next; links keep the other parameters, page and page_size last.
    let v = app
        .get(&format!(
            "/api/resources/{RID}/data/?page=3&Code%20INSEE__sort=asc&page_size=2"
        ))
        .await
        .json();
    assert_eq!(column(&data(&v), "Code INSEE"), [json!("75056")]);
    assert_eq!(v["links"]["next"], Value::Null);
    assert_eq!(
        v["links"]["prev"],
        format!(
            "http://qanat.test/api/resources/{RID}/data/?Code%20INSEE__sort=asc&page=2&page_size=2"
        )
    );
}

#[tokio::test]
async fn filters_take_the_header_or_the_api_name_and_match_the_native_route() {
    let app = app().await;
    let by_header = data(
        &app.get(&format!(
            "/api/resources/{RID}/data/?Part.ville__greater=1&Nom%20de%20la%20commune__sort=desc"
        ))
        .await
        .json(),
    );
    let by_name = data(
        &app.get(&format!(
            "/api/resources/{RID}/data/?part_ville__greater=1&nom_de_la_commune__sort=desc"
        ))
        .await
        .json(),
    );
    assert_eq!(by_header, by_name);
    assert_eq!(
        column(&by_header, "Nom de la commune"),
        [json!("L'Abergement"), json!("Ajaccio")]
    );
    assert_eq!(column(&by_header, "__id"), [json!(1), json!(3)]);
    let native = app
        .rows("/api/datasets/communes/data?part_ville__greater=1&nom_de_la_commune__sort=desc")
        .await;
    assert_eq!(
        column(&native, "code_insee"),
        column(&by_header, "Code INSEE")
    );
    // A header holding `__`: the operator is what follows the last one.
    let v = app
        .get(&format!("/api/resources/{RID}/data/?note__brute__less=10"))
        .await
        .json();
    assert_eq!(
        column(&data(&v), "Code INSEE"),
        [json!("01001"), json!("75056")]
    );
    // `__id` filters and sorts, counted from 1.
    let v = app
        .get(&format!(
            "/api/resources/{RID}/data/?__id__strictly_greater=2&__id__sort=desc&columns=__id,Code%20INSEE"
        ))
        .await
        .json();
    assert_eq!(
        data(&v),
        [
            json!({"__id": 5, "Code INSEE": "75056"}),
            json!({"__id": 4, "Code INSEE": "01004"}),
            json!({"__id": 3, "Code INSEE": "2A004"}),
        ]
    );
    let v = app
        .get(&format!("/api/resources/{RID}/data/?__id__exact=1"))
        .await
        .json();
    assert_eq!(column(&data(&v), "Code INSEE"), [json!("01001")]);
}

#[tokio::test]
async fn semantics_follow_postgresql_where_api_tabular_differs() {
    let app = app().await;
    let tab = |q: &str| {
        let app = &app;
        let uri = format!("/api/resources/{RID}/data/?{q}");
        async move { column(&data(&app.get(&uri).await.json()), "Code INSEE") }
    };
    let native = |q: &str| {
        let app = &app;
        let uri = format!("/api/datasets/communes/data?{q}");
        async move { column(&app.rows(&uri).await, "code_insee") }
    };
    let codes = |c: &[&str]| c.iter().map(|s| json!(s)).collect::<Vec<_>>();
    // notin and notcontains drop nulls on the tabular API, keep them natively.
    assert_eq!(
        tab("note__brute__notin=10,20").await,
        codes(&["01004", "75056"])
    );
    assert_eq!(
        native("note_brute__notin=10,20").await,
        codes(&["2A004", "01004", "75056"])
    );
    assert_eq!(
        tab("column_6__notcontains=a").await,
        codes(&["01002", "2A004", "75056"])
    );
    assert_eq!(
        native("column_6__notcontains=a").await,
        codes(&["01002", "2A004", "01004", "75056"])
    );
    // desc puts nulls first on the tabular API, last natively.
    assert_eq!(
        tab("Part.ville__sort=desc").await,
        codes(&["01002", "75056", "2A004", "01001", "01004"])
    );
    assert_eq!(
        native("part_ville__sort=desc").await,
        codes(&["2A004", "01001", "01004", "01002", "75056"])
    );
    // `*` is a wildcard in a tabular `contains`, a character natively.
    assert_eq!(
        tab("Nom%20de%20la%20commune__contains=a*b").await,
        codes(&["01001", "01002", "01004"])
    );
    assert_eq!(native("nom_de_la_commune__contains=a*b").await, codes(&[]));
    assert_eq!(
        native("nom_de_la_commune__contains=u*x").await,
        codes(&["01002"])
    );
    // or= groups, a header with a dot in double quotes.
    assert_eq!(
        tab("or=(%22Part.ville%22__greater.3,Code%20INSEE__exact.75056)").await,
        codes(&["2A004", "75056"])
    );
}

#[tokio::test]
async fn aggregations_are_keyed_by_header_and_carry_no_total() {
    let app = app().await;
    let v = app
        .get(&format!("/api/resources/{RID}/data/?column_6__isnotnull&Part.ville__groupby&note__brute__sum&Part.ville__sort=asc&page_size=2"))
        .await
        .json();
    assert_eq!(
        data(&v),
        [
            json!({"Part.ville": 1.5, "note__brute__sum": 10}),
            json!({"Part.ville": 3.25, "note__brute__sum": null}),
        ]
    );
    assert_eq!(v["meta"], json!({"page": 1, "page_size": 2}));
    assert!(
        v["links"]["next"]
            .as_str()
            .unwrap()
            .ends_with("&page=2&page_size=2")
    );
    let v = app
        .get(&format!("/api/resources/{RID}/data/?Part.ville__count"))
        .await
        .json();
    assert_eq!(data(&v), [json!({"Part.ville__count": 3})]);
}

#[tokio::test]
async fn exports_stream_every_row_with_id_first() {
    let app = app().await;
    let r = app
        .get(&format!("/api/resources/{RID}/data/csv/?page_size=1"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["content-disposition"],
        format!("attachment; filename=\"{RID}.csv\"")
    );
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "__id,Code INSEE,Nom de la commune,Part.ville,note__brute,Date de création,column_6"
    );
    assert_eq!(lines[1], "1,01001,L'Abergement,1.5,10,2020-01-31,a");
    assert_eq!(
        lines.len(),
        6,
        "page and page_size are not read by exports: {text}"
    );
    let r = app
        .get(&format!(
            "/api/resources/{RID}/data/json/?Code%20INSEE__in=01002,75056"
        ))
        .await;
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        r.headers["content-disposition"],
        format!("attachment; filename=\"{RID}.json\"")
    );
    let rows = r.json();
    assert_eq!(
        column(rows.as_array().unwrap(), "__id"),
        [json!(2), json!(5)]
    );
    assert_eq!(rows[0]["Nom de la commune"], "Ambérieu*x");
    let empty = app
        .get(&format!("/api/resources/{RID}/data/json/?__id__exact=99"))
        .await;
    assert_eq!(empty.json(), json!([]));
    let empty = app
        .get(&format!("/api/resources/{RID}/data/csv/?__id__exact=99"))
        .await;
    assert!(empty.text().starts_with("__id,Code INSEE,"));
}

#[tokio::test]
async fn errors_use_the_tabular_envelope() {
    let app = app().await;
    let r = app
        .get(&format!("/api/resources/{RID}/data/?limit=1"))
        .await;
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["errors"][0]["code"], Value::Null);
    assert_eq!(v["errors"][0]["title"], "Invalid query string");
    let detail = v["errors"][0]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("Malformed query: unknown parameter `limit`"),
        "{detail}"
    );
    for bad in [
        "nope__exact=1",
        "note__brute__exact=abc",
        "or=(Code%20INSEE__exact.1",
        "page=0",
        "cursor=x",
    ] {
        let r = app.get(&format!("/api/resources/{RID}/data/?{bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(
            r.json()["errors"][0]["title"],
            "Invalid query string",
            "{bad}"
        );
    }
    let r = app.get("/api/resources/unknown/data/").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["errors"][0]["title"], "Resource not found");
    assert!(
        r.json()["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("`unknown`")
    );
}

#[tokio::test]
async fn resource_profile_health_and_aggregation_routes() {
    let app = app().await;
    let v = app.get(&format!("/api/resources/{RID}/")).await.json();
    assert!(v["created_at"].as_str().unwrap().starts_with("20"));
    assert_eq!(v["url"], "http://qanat.test/api/datasets/communes/data.csv");
    let rels: Vec<&str> = v["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rel"].as_str().unwrap())
        .collect();
    assert_eq!(rels, ["profile", "data", "swagger"]);
    assert_eq!(
        v["links"][1]["href"],
        format!("http://qanat.test/api/resources/{RID}/data/")
    );

    let v = app
        .get(&format!("/api/resources/{RID}/profile/"))
        .await
        .json();
    assert_eq!(v["indexes"], Value::Null);
    let p = &v["profile"];
    assert_eq!(p["separator"], ";");
    assert_eq!(p["total_lines"], 5);
    assert_eq!(p["header"][0], "Code INSEE");
    assert_eq!(p["columns"]["Part.ville"]["python_type"], "float");
    assert_eq!(p["columns"]["Code INSEE"]["python_type"], "string");
    assert_eq!(p["columns"]["Date de création"]["python_type"], "date");
    assert_eq!(p["profile"]["note__brute"]["nb_missing_values"], 1);
    assert_eq!(p["profile"]["note__brute"]["min"], 5);
    assert_eq!(p["profile"]["note__brute"]["max"], 40);
    assert_eq!(p["formats"]["float"], json!(["Part.ville"]));

    let v = app.get("/health/").await.json();
    assert_eq!(v["status"], "ok");
    assert!(v["uptime_since"].as_str().unwrap().starts_with("20"));
    let v = app.get("/api/aggregation-exceptions/").await.json();
    assert_eq!(v, json!({"allowed": true, "exceptions": []}));
}
