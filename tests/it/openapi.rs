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
        &qanat::http::openapi_document(&ids)
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
    let bundle = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status, 200);
    assert!(
        bundle.body.len() > 100_000,
        "the UI is vendored in the binary"
    );
}
