//! CKAN's action API and DataStore dump: CKAN's envelope, arguments, errors and statuses, and
//! the same rows as the native and tabular routes.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::{TestApp, toml_for};

const RID: &str = "8bb98383-7043-4d2f-ae32-9377656e71ee";

const CSV: &str = "\
Code INSEE;Nom de la commune;Population;Date\n\
01001;L'Abergement;776;2020-01-31\n\
01002;Ambérieux;248;\n\
2A004;Ajaccio;71361;2021-06-01\n\
01004;Ambronay;;2019-12-31\n\
75056;Paris;2133111;2022-02-02\n";

async fn app() -> TestApp {
    let extra = format!(
        "resource_id = \"{RID}\"\nproducer = \"INSEE\"\nkeywords = [\"communes\"]\n[columns.population]\ndescription = \"Population municipale\"\n"
    );
    let toml = toml_for("communes.csv", &extra);
    TestApp::with_files(
        &[("communes.csv", CSV.as_bytes()), ("communes.toml", &toml)],
        "",
    )
    .await
}

/// `GET /api/3/action/{action}?{query}`: status and body.
async fn get(app: &TestApp, action: &str, query: &str) -> (u16, Value) {
    let r = app.get(&format!("/api/3/action/{action}?{query}")).await;
    (r.status.as_u16(), r.json())
}

async fn post(app: &TestApp, path: &str, body: &str) -> (u16, Value) {
    let req = Request::post(path)
        .header("host", "qanat.test")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn result(reply: (u16, Value)) -> Value {
    assert_eq!(reply.0, 200, "{}", reply.1);
    assert_eq!(reply.1["success"], true);
    reply.1["result"].clone()
}

fn column(records: &Value, key: &str) -> Vec<Value> {
    records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[key].clone())
        .collect()
}

#[tokio::test]
async fn datastore_search_reads_arguments_as_ckan_does() {
    let app = app().await;
    let (status, v) = get(&app, "datastore_search", &format!("resource_id={RID}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        v["help"],
        "http://qanat.test/api/3/action/help_show?name=datastore_search"
    );
    let r = &v["result"];
    assert_eq!(r["total"], 5);
    assert_eq!(r["limit"], 100);
    assert_eq!(
        r["records"][0],
        json!({"_id": 1, "Code INSEE": "01001", "Nom de la commune": "L'Abergement", "Population": 776, "Date": "2020-01-31"})
    );
    assert_eq!(
        r["fields"],
        json!([
            {"id": "_id", "type": "int"},
            {"id": "Code INSEE", "type": "text"},
            {"id": "Nom de la commune", "type": "text"},
            {"id": "Population", "type": "int8", "info": {"label": "Population", "notes": "Population municipale"}},
            {"id": "Date", "type": "date"},
        ])
    );
    assert_eq!(
        r["_links"],
        json!({"start": format!("/api/3/action/datastore_search?resource_id={RID}"), "next": format!("/api/3/action/datastore_search?resource_id={RID}&offset=100")})
    );
    // filters (a list is IN), sort as CKAN writes it, fields, limit, offset.
    let filters = "%7B%22Code%20INSEE%22%3A%5B%2201001%22%2C%2201002%22%2C%2275056%22%5D%7D";
    let r = result(get(&app, "datastore_search", &format!("id={RID}&filters={filters}&sort=Population%20desc&fields=_id,Code%20INSEE&limit=2&offset=1")).await);
    assert_eq!(
        r["records"],
        json!([{"_id": 1, "Code INSEE": "01001"}, {"_id": 2, "Code INSEE": "01002"}])
    );
    assert_eq!(r["total"], 3);
    assert_eq!(
        r["filters"],
        json!({"Code INSEE": ["01001", "01002", "75056"]})
    );
    assert_eq!(r["_links"]["prev"], Value::Null);
    // PostgreSQL's default puts nulls first when descending; `nulls last` says otherwise.
    let r = result(
        get(
            &app,
            "datastore_search",
            &format!("id={RID}&sort=Population%20desc&fields=Code%20INSEE&limit=2"),
        )
        .await,
    );
    assert_eq!(
        column(&r["records"], "Code INSEE"),
        [json!("01004"), json!("75056")]
    );
    let r = result(
        get(
            &app,
            "datastore_search",
            &format!("id={RID}&sort=Population%20desc%20nulls%20last&fields=Code%20INSEE&limit=1"),
        )
        .await,
    );
    assert_eq!(column(&r["records"], "Code INSEE"), [json!("75056")]);
    // q: every word in some text field, case-insensitively.
    let r = result(
        get(
            &app,
            "datastore_search",
            &format!("resource_id={RID}&q=AMB"),
        )
        .await,
    );
    assert_eq!(
        column(&r["records"], "Code INSEE"),
        [json!("01002"), json!("01004")]
    );
    let r = result(
        get(
            &app,
            "datastore_search",
            &format!("resource_id={RID}&q=%7B%22Nom%20de%20la%20commune%22%3A%22aj%22%7D"),
        )
        .await,
    );
    assert_eq!(column(&r["records"], "_id"), [json!(3)]);
    // limit is capped at 32,000; include_total=false leaves the total out.
    let r = result(
        get(
            &app,
            "datastore_search",
            &format!("resource_id={RID}&limit=99999&include_total=false"),
        )
        .await,
    );
    assert_eq!(r["limit"], 32000);
    assert!(r.get("total").is_none());
}

#[tokio::test]
async fn records_formats_distinct_and_post_bodies() {
    let app = app().await;
    let body = format!(
        r#"{{"resource_id": "{RID}", "filters": {{"_id": [2, 3]}}, "records_format": "lists", "fields": ["Code INSEE", "Population"]}}"#
    );
    let r = result(post(&app, "/api/action/datastore_search", &body).await);
    assert_eq!(r["records"], json!([["01002", 248], ["2A004", 71361]]));
    for (format, text) in [
        ("csv", "01002,248\n2A004,71361\n"),
        ("tsv", "01002\t248\n2A004\t71361\n"),
    ] {
        let body = body.replace("lists", format);
        let r = result(post(&app, "/api/3/action/datastore_search", &body).await);
        assert_eq!(r["records"], text, "{format}");
    }
    let r = result(get(&app, "datastore_search", &format!("resource_id={RID}&distinct=true&fields=Date&sort=Date&filters=%7B%22Date%22%3A%5B%222020-01-31%22%2C%222022-02-02%22%5D%7D")).await);
    assert_eq!(
        r["records"],
        json!([{"Date": "2020-01-31"}, {"Date": "2022-02-02"}])
    );
    assert_eq!(r["fields"], json!([{"id": "Date", "type": "date"}]));
}

#[tokio::test]
async fn errors_have_ckans_shapes_and_statuses() {
    let app = app().await;
    let cases = [
        ("filters=%7Bnope", "filters", "Cannot parse JSON"),
        (
            "filters=%7B%22nope%22%3A1%7D",
            "filters",
            "invalid value \"nope\"",
        ),
        ("fields=Code%20INSEE,zz", "fields", "invalid value \"zz\""),
        ("limit=-1", "limit", "Must be a natural number"),
        (
            "sort=Population%20upwards",
            "sort",
            "invalid value \"Population upwards\"",
        ),
        ("rows=5", "__junk", "The input field rows was not expected."),
    ];
    for (query, field, message) in cases {
        let (status, v) = get(
            &app,
            "datastore_search",
            &format!("resource_id={RID}&{query}"),
        )
        .await;
        assert_eq!(status, 409, "{query}: {v}");
        assert_eq!(v["success"], false);
        assert_eq!(v["error"]["__type"], "Validation Error");
        assert_eq!(v["error"][field], json!([message]), "{query}: {v}");
    }
    let (status, v) = get(&app, "datastore_search", "").await;
    assert_eq!(
        (status, &v["error"]["resource_id"]),
        (409, &json!(["Missing value"]))
    );
    let (status, v) = get(&app, "datastore_search", "resource_id=nope").await;
    assert_eq!(status, 404);
    assert_eq!(
        v["error"],
        json!({"__type": "Not Found Error", "message": "Not found: Resource \"nope\" was not found."})
    );
    let (status, v) = get(&app, "datastore_create", "").await;
    assert_eq!(
        (status, v),
        (
            400,
            json!("Bad request - Action name not known: datastore_create")
        )
    );
    let (status, v) = post(&app, "/api/3/action/datastore_search", "[1]").await;
    assert_eq!(status, 400);
    assert!(
        v.as_str().unwrap().contains("needs to be a dictionary"),
        "{v}"
    );
}

#[tokio::test]
async fn the_same_rows_through_three_apis() {
    let app = app().await;
    let ckan = result(get(&app, "datastore_search", &format!("resource_id={RID}&filters=%7B%22Population%22%3A%5B776%2C71361%5D%7D&sort=_id%20desc")).await);
    let tabular = app
        .get(&format!(
            "/api/resources/{RID}/data/?Population__in=776,71361&__id__sort=desc"
        ))
        .await
        .json();
    let native = app
        .rows("/api/datasets/communes/data?population__in=776,71361")
        .await;
    let mut native_codes = column(&Value::Array(native), "code_insee");
    native_codes.reverse();
    assert_eq!(column(&ckan["records"], "Code INSEE"), native_codes);
    assert_eq!(column(&tabular["data"], "Code INSEE"), native_codes);
    assert_eq!(
        column(&ckan["records"], "_id"),
        column(&tabular["data"], "__id")
    );
}

#[tokio::test]
async fn packages_resources_and_status() {
    let app = app().await;
    assert_eq!(
        result(get(&app, "package_list", "").await),
        json!(["communes"])
    );
    let p = result(get(&app, "package_show", "id=communes").await);
    assert_eq!(p["name"], "communes");
    assert_eq!(p["organization"]["title"], "INSEE");
    assert_eq!(p["tags"][0]["name"], "communes");
    assert_eq!(p["resources"][0]["id"], RID);
    assert_eq!(p["resources"][0]["datastore_active"], true);
    assert_eq!(
        p["resources"][0]["url"],
        format!("http://qanat.test/datastore/dump/{RID}")
    );
    let r = result(get(&app, "resource_show", &format!("id={RID}")).await);
    assert_eq!(r["package_id"], "communes");
    let s = result(get(&app, "package_search", "q=communes&rows=5").await);
    assert_eq!(s["count"], 1);
    assert_eq!(
        result(get(&app, "package_search", "q=absent").await)["count"],
        0
    );
    let (status, v) = get(&app, "package_show", "id=nope").await;
    assert_eq!(
        (status, &v["error"]["__type"]),
        (404, &json!("Not Found Error"))
    );
    let status = result(get(&app, "status_show", "").await);
    assert_eq!(status["extensions"], json!(["datastore", "qanat"]));
    let info = result(get(&app, "datastore_info", &format!("id={RID}")).await);
    assert_eq!(info["meta"]["count"], 5);
    assert_eq!(info["schema"]["Population"], "number");
}

#[tokio::test]
async fn dumps_stream_csv_tsv_and_json() {
    let app = app().await;
    let r = app.get(&format!("/datastore/dump/{RID}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["content-disposition"],
        format!("attachment; filename=\"{RID}.csv\"")
    );
    let text = r.text();
    assert_eq!(
        text.lines().next().unwrap(),
        "_id,Code INSEE,Nom de la commune,Population,Date"
    );
    assert_eq!(text.lines().count(), 6);
    let r = app
        .get(&format!(
            "/datastore/dump/{RID}?format=tsv&limit=1&fields=Code%20INSEE,Date"
        ))
        .await;
    assert_eq!(r.text(), "Code INSEE\tDate\n01001\t2020-01-31\n");
    let r = app
        .get(&format!(
            "/datastore/dump/{RID}?format=json&sort=_id%20desc&limit=2&fields=_id,Population"
        ))
        .await;
    assert_eq!(
        r.json(),
        json!({"fields": [{"id": "_id", "type": "int"}, {"id": "Population", "type": "int8", "info": {"label": "Population", "notes": "Population municipale"}}], "records": [[5, 2133111], [4, null]]})
    );
    let r = app.get(&format!("/datastore/dump/{RID}?format=xml")).await;
    r.problem(400);
}
