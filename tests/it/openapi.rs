//! The OpenAPI document: the committed `openapi/openapi.json` is what the code generates, every
//! `$ref` resolves, and `/docs` works with no internet.

use serde_json::Value;

use crate::support::{TestApp, repo_path};

fn generated() -> Value {
    let settings = qanat::config::Settings {
        datasets: repo_path("datasets"),
        ..Default::default()
    };
    let ids: Vec<String> = qanat::app::specs(&settings, &[])
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    serde_json::from_str(
        &qanat::http::openapi_document(&ids, &ids, &settings.limits)
            .to_pretty_json()
            .unwrap(),
    )
    .unwrap()
}

/// Set `QANAT_UPDATE_OPENAPI=1` to rewrite the committed document after an intended change.
#[test]
fn committed_document_matches_the_code() {
    let path = repo_path("openapi/openapi.json");
    let doc = generated();
    if std::env::var_os("QANAT_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    }
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(
        committed == doc,
        "openapi/openapi.json is stale: run `QANAT_UPDATE_OPENAPI=1 cargo test openapi` and commit it"
    );
    assert_eq!(doc["openapi"], "3.1.0");
    // What clients may send is what the server accepts: pages and page sizes from 1.
    for path in [
        "/api/datasets",
        "/api/datasets/{id}/data",
        "/api/datasets/{id}/data.csv",
    ] {
        let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        for name in ["page", "page_size"] {
            let p = params.iter().find(|p| p["name"] == name).unwrap();
            assert_eq!(p["schema"]["minimum"], 1, "{path} {name}");
        }
    }
    // Profile values are typed as what they are, not as objects.
    let profile = &doc["components"]["schemas"]["ColumnProfile"]["properties"];
    assert_eq!(
        profile["min"]["type"],
        serde_json::json!(["string", "number", "boolean", "null"])
    );
    let ids = &doc["paths"]["/api/datasets/{id}/data"]["get"]["parameters"][0]["schema"]["enum"];
    assert_eq!(ids[0], "communes");
    assert_eq!(ids.as_array().unwrap().len(), 3);
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    out.push(v.as_str().unwrap().to_string());
                }
                refs(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn no_dangling_refs() {
    let doc = generated();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 5);
    for r in found {
        let pointer = r.strip_prefix('#').expect("local ref");
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
}

#[tokio::test]
async fn served_document_and_offline_docs_page() {
    let app = TestApp::sample().await;
    let r = app.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), generated());
    let page = app.get("/docs/").await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("swagger-ui-bundle.js"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN links: {html}"
    );
    let init = app.get("/docs/swagger-initializer.js").await.text();
    assert!(init.contains("/openapi.json"), "{init}");
    // A reader can switch to each dataset's own document.
    for id in ["communes", "departements", "villes-maroc"] {
        assert!(
            init.contains(&format!("/api/datasets/{id}/openapi.json")),
            "{init}"
        );
    }
    let bundle = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status, 200);
    assert!(
        bundle.body.len() > 100_000,
        "the UI is vendored in the binary"
    );
}

/// A value the parameter's schema accepts, as a client would send it.
fn valid_value(doc: &Value, schema: &Value) -> String {
    if let Some(r) = schema["$ref"].as_str() {
        return valid_value(doc, doc.pointer(r.strip_prefix('#').unwrap()).unwrap());
    }
    if let Some(values) = schema["enum"].as_array() {
        return values.last().unwrap().as_str().unwrap().to_string();
    }
    match (schema["type"].as_str(), schema["pattern"].as_str()) {
        (Some("integer"), _) => "5".into(),
        (Some("number"), _) => "1.5".into(),
        (Some("boolean"), _) => "true".into(),
        (Some("string"), Some(p)) if p.starts_with("^-?[0-9]{1,18}") => "1,2".into(),
        (Some("string"), Some(p)) if p.starts_with("^-?[0-9]{1,15}") => "1.5,2".into(),
        (Some("string"), Some(p)) if p.starts_with("^([^\",]") => "a,%22b,c%22".into(),
        (Some("string"), Some(r"^\(.+\)$")) => "(nom__exact.Rabat)".into(),
        // `near` (latitude first) and `bbox` (longitude first).
        (Some("string"), Some(p)) if p.starts_with("^-?(90") => "34.02,-6.84,5000".into(),
        (Some("string"), Some(p)) if p.starts_with("^-?(180") => "-7.7,33.5,-7.5,33.7".into(),
        (Some("string"), Some(p)) if p.starts_with("^(") => {
            // `columns`: the first name the pattern lists.
            let first = p[2..].split(['|', ')']).next().unwrap();
            first.replace('\\', "")
        }
        _ => "x".into(),
    }
}

#[tokio::test]
async fn a_datasets_document_types_its_rows_and_every_parameter() {
    let app = TestApp::sample().await;
    let r = app.get("/api/datasets/villes-maroc/openapi.json").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let swagger = app.get("/api/resources/villes-maroc/swagger/").await.json();
    assert_eq!(
        swagger, doc,
        "the tabular API's swagger/ serves the same document"
    );
    let row = &doc["components"]["schemas"]["Row"]["properties"];
    // Codes stay text; integers and floats are numbers with their measured bounds; a column
    // with nulls admits null; a column of one value is an enum.
    assert_eq!(row["region"]["type"], "string");
    assert_eq!(row["population"]["type"], "integer");
    assert_eq!(row["population"]["minimum"], 15480);
    assert_eq!(row["latitude"]["type"], "number");
    assert_eq!(row["nom_ar"]["type"], serde_json::json!(["string", "null"]));
    assert_eq!(
        row["fuseau_horaire"]["enum"],
        serde_json::json!(["Africa/Casablanca"])
    );
    let tab = &doc["components"]["schemas"]["ResourceRow"]["properties"];
    assert_eq!(tab["__id"]["minimum"], 1);
    let group = &doc["components"]["schemas"]["Group"]["properties"];
    assert_eq!(
        group["population__sum"]["type"],
        serde_json::json!(["integer", "null"])
    );
    assert!(group.get("nom__sum").is_none(), "no sum of text");
    let mut found = Vec::new();
    refs(&doc, &mut found);
    for r in &found {
        assert!(
            doc.pointer(r.strip_prefix('#').unwrap()).is_some(),
            "dangling $ref {r}"
        );
    }
    // Every declared parameter, given alone a value its schema allows, is accepted.
    for (path, op) in doc["paths"].as_object().unwrap() {
        let params = op["get"]["parameters"].as_array().unwrap();
        let names: Vec<&str> = params.iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"page_size"), "{path}");
        for p in params {
            let name = p["name"].as_str().unwrap();
            let value = valid_value(&doc, &p["schema"]);
            let uri = format!("{path}?{}={value}", name.replace(' ', "%20"));
            let r = app.get(&uri).await;
            assert_eq!(r.status, 200, "{uri}: {}", r.text());
        }
    }
    let params = doc["paths"]["/api/datasets/villes-maroc/data"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let find = |n: &str| params.iter().find(|p| p["name"] == n).cloned();
    assert_eq!(
        find("population__greater").unwrap()["schema"]["type"],
        "integer"
    );
    assert_eq!(find("page_size").unwrap()["schema"]["maximum"], 1000);
    assert!(
        find("population__contains").is_none(),
        "contains is for text"
    );
    assert!(find("nom__sum").is_none());
    // The dataset and the catalog link to it.
    let v = app.get("/api/datasets/villes-maroc").await.json();
    assert_eq!(
        v["links"]["openapi"],
        "http://qanat.test/api/datasets/villes-maroc/openapi.json"
    );
    let r = app.get("/api/datasets/nope/openapi.json").await;
    r.problem(404);
}
