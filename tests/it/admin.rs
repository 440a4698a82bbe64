//! The admin routes: off without keys, `401`/`403` without the right key, a refresh that ingests
//! now and reports, the status of what runs and what failed.

use axum::body::Body;
use sha2::{Digest, Sha256};

use crate::support::{TestApp, send, toml_for};

async fn app_with_keys(dir: &std::path::Path) -> TestApp {
    let keys = dir.join("admin.keys");
    let hash = hex::encode(Sha256::digest(b"s3cret-key"));
    std::fs::write(&keys, format!("# the operators\n{hash}\n")).unwrap();
    TestApp::with_files(
        &[
            ("t.csv", b"id,name\n1,a\n2,b\n"),
            ("t.toml", &toml_for("t.csv", "")),
            ("broken.toml", &toml_for("missing.csv", "")),
        ],
        &format!("[server]\nadmin_keys = '{}'\n", keys.display()),
    )
    .await
}

async fn post(app: &TestApp, uri: &str, key: Option<&str>) -> crate::support::Reply {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    send(&app.router, "POST", uri, &headers, None, Body::empty()).await
}

#[tokio::test]
async fn admin_routes_are_off_without_keys() {
    let app = TestApp::with_files(
        &[("t.csv", b"id\n1\n"), ("t.toml", &toml_for("t.csv", ""))],
        "",
    )
    .await;
    let r = post(&app, "/api/datasets/t/refresh", Some("anything")).await;
    assert!(r.problem(404).contains("no route"), "{}", r.text());
    assert_eq!(app.get("/api/admin/status").await.status, 404);
}

#[tokio::test]
async fn a_refresh_needs_the_key_then_ingests_and_reports() {
    let keys_dir = tempfile::tempdir().unwrap();
    let app = app_with_keys(keys_dir.path()).await;
    let r = post(&app, "/api/datasets/t/refresh", None).await;
    assert!(r.problem(401).contains("Authorization: Bearer"));
    assert_eq!(
        r.headers["www-authenticate"],
        "Bearer realm=\"qanat admin\""
    );
    let r = post(&app, "/api/datasets/t/refresh", Some("wrong")).await;
    assert!(r.problem(403).contains("not one of the admin keys"));
    let r = post(&app, "/api/datasets/nope/refresh", Some("s3cret-key")).await;
    assert_eq!(r.status, 404);

    let r = post(&app, "/api/datasets/t/refresh", Some("s3cret-key")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["outcome"], "unchanged");
    let before = r.json()["version"].as_str().unwrap().to_string();
    // The source changes: the refresh publishes it and the next page reads it.
    std::fs::write(
        app.dir.path().join("datasets/t.csv"),
        "id,name\n1,a\n2,b\n3,c\n",
    )
    .unwrap();
    let r = post(&app, "/api/datasets/t/refresh", Some("s3cret-key")).await;
    let v = r.json();
    assert_eq!(v["outcome"], "ingested", "{v}");
    assert_ne!(v["version"], before.as_str());
    assert_eq!(v["report"]["rows_read"], 3);
    assert_eq!(v["report"]["rows_stored"], 3);
    assert_eq!(app.total("/api/datasets/t/data").await, 3);
    // A bare key, as CKAN's clients send it, is accepted too; force ingests an unchanged source.
    let r = send(
        &app.router,
        "POST",
        "/api/datasets/t/refresh?force=true",
        &[("authorization", "s3cret-key")],
        None,
        Body::empty(),
    )
    .await;
    assert_eq!(r.json()["outcome"], "ingested", "{}", r.text());
    // Harvest without portals configured says so.
    let r = post(&app, "/api/harvest", Some("s3cret-key")).await;
    assert!(r.problem(404).contains("[[harvest]]"));
}

#[tokio::test]
async fn the_status_lists_failed_ingests_and_a_failed_refresh_says_why() {
    let keys_dir = tempfile::tempdir().unwrap();
    let app = app_with_keys(keys_dir.path()).await;
    let r = app.get("/api/admin/status").await;
    assert_eq!(r.status, 401);
    let r = app
        .get_with(
            "/api/admin/status",
            &[("authorization", "Bearer s3cret-key")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["datasets"], 2);
    assert_eq!(v["serving"], 1);
    assert_eq!(v["ingests_running"], serde_json::json!([]));
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{v}");
    assert_eq!(errors[0]["dataset"], "broken");
    assert!(
        errors[0]["error"].as_str().unwrap().contains("missing.csv"),
        "{v}"
    );
    assert_eq!(v["queries"]["shed"], 0);
    let r = post(&app, "/api/datasets/broken/refresh", Some("s3cret-key")).await;
    let v = r.json();
    assert_eq!(v["outcome"], "failed", "{v}");
    assert!(v["error"].as_str().unwrap().contains("missing.csv"), "{v}");
    assert_eq!(v["version"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_refresh_while_another_process_ingests_is_a_409_that_names_it() {
    let keys_dir = tempfile::tempdir().unwrap();
    let app = app_with_keys(keys_dir.path()).await;
    let served = app
        .state
        .catalog
        .loaded("t")
        .unwrap()
        .manifest
        .version
        .clone();
    let lease = app.storage_dir().join("t").join("lease.json");
    let until = chrono::Utc::now().timestamp_millis() + 3_600_000;
    std::fs::write(
        &lease,
        serde_json::json!({"host": "replica-b", "pid": 4242, "what": "qanat ingest",
            "token": "theirs", "expires_ms": until})
        .to_string(),
    )
    .unwrap();
    let r = post(
        &app,
        "/api/datasets/t/refresh?force=true",
        Some("s3cret-key"),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    let v = r.json();
    assert_eq!(v["outcome"], "busy");
    assert_eq!(v["version"], served.as_str());
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("is being ingested by qanat ingest (process 4242 on replica-b"),
        "{v}"
    );
    // Let go: the refresh runs.
    std::fs::remove_file(&lease).unwrap();
    let r = post(
        &app,
        "/api/datasets/t/refresh?force=true",
        Some("s3cret-key"),
    )
    .await;
    assert_eq!(r.json()["outcome"], "ingested", "{}", r.text());
}
