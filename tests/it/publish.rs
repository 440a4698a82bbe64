//! Versions published by another process: a running server picks them up within its watch
//! interval, with no failed request, and a slower writer never moves a dataset back.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Server, toml_for};

fn rows(n: usize) -> String {
    let mut s = String::from("code,valeur\n");
    for i in 0..n {
        s.push_str(&format!("{i:03},{i}\n"));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_ingested_by_another_process_is_served_within_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let datasets = dir.path().join("datasets");
    std::fs::create_dir(&datasets).unwrap();
    std::fs::write(datasets.join("k.csv"), rows(10)).unwrap();
    std::fs::write(datasets.join("k.toml"), toml_for("k.csv", "")).unwrap();
    let storage = dir.path().join("storage");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let qanat = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_qanat"));
        c.env_remove("QANAT_CONFIG")
            .env("QANAT_DATASETS", &datasets)
            .env("QANAT_STORAGE", &storage)
            .env("QANAT_WATCH_MS", "200")
            // A request loop from one client, on purpose.
            .env("QANAT_RATE_LIMIT", "0")
            .args(args);
        c
    };
    let _server = Server(
        qanat(&["serve", "--addr", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let total = |client: reqwest::Client, base: String| async move {
        let r = client
            .get(format!("{base}/api/datasets/k/data"))
            .send()
            .await
            .ok()?;
        if r.status() != 200 {
            return Some(Err(r.status().as_u16()));
        }
        let v: serde_json::Value = serde_json::from_str(&r.text().await.ok()?).ok()?;
        Some(Ok(v["meta"]["total"].as_u64().unwrap()))
    };
    let started = Instant::now();
    while total(client.clone(), base.clone()).await != Some(Ok(10)) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Requests all along, while another process publishes.
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, failed, answered) = (stop.clone(), failed.clone(), answered.clone());
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match total(client.clone(), base.clone()).await {
                    Some(Ok(_)) => answered.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    std::fs::write(datasets.join("k.csv"), rows(25)).unwrap();
    let out = qanat(&["ingest", "k"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let published = Instant::now();
    while total(client.clone(), base.clone()).await != Some(Ok(25)) {
        assert!(
            published.elapsed() < Duration::from_secs(5),
            "the new version was not served within the interval"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = published.elapsed();
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request failed");
    assert!(answered.load(Ordering::Relaxed) > 10);
    assert!(
        took < Duration::from_secs(2),
        "served after {took:?}, interval 200 ms"
    );
}

#[tokio::test]
async fn a_slower_writer_never_moves_a_dataset_back() {
    for url in ["memory://", "local"] {
        let dir = tempfile::tempdir().unwrap();
        let url = if url == "local" {
            dir.path().display().to_string()
        } else {
            url.to_string()
        };
        let storage = qanat::storage::Storage::open(&url).unwrap();
        let (older, newer) = ("20261126T100000000-aaaaaaaa", "20261126T100001000-bbbbbbbb");
        assert!(storage.switch_current("d", newer).await.unwrap(), "{url}");
        // The older version, finished later, is not published.
        assert!(!storage.switch_current("d", older).await.unwrap(), "{url}");
        let read = storage.read_pointer("d", None).await.unwrap();
        let qanat::storage::PointerRead::Current { version, e_tag } = read else {
            panic!("{read:?}")
        };
        assert_eq!(version, newer);
        // An unchanged pointer is answered from its e-tag.
        assert_eq!(
            storage.read_pointer("d", e_tag.as_deref()).await.unwrap(),
            qanat::storage::PointerRead::Unchanged,
            "{url}"
        );
        let newest = "20261126T100002000-cccccccc";
        assert!(storage.switch_current("d", newest).await.unwrap());
        assert!(matches!(
            storage.read_pointer("d", e_tag.as_deref()).await.unwrap(),
            qanat::storage::PointerRead::Current { version, .. } if version == newest
        ));
    }
}

#[tokio::test]
async fn a_replaced_version_stays_readable_for_a_while_whatever_the_count() {
    let app = crate::support::TestApp::with_csvs(
        &[("t", rows(30).as_bytes())],
        "[ingest]\nkeep_versions = 1\n",
    )
    .await;
    let first = app.get("/api/datasets/t/data?page_size=10").await.json();
    let v1 = first["meta"]["version"].as_str().unwrap().to_string();
    let next = first["links"]["next"].as_str().unwrap().to_string();
    std::fs::write(app.dir.path().join("datasets/t.csv"), rows(40)).unwrap();
    let r = app
        .state
        .catalog
        .ingest_and_load(&["t".into()], false)
        .await
        .unwrap();
    assert!(r[0].1.is_ok());
    assert_eq!(app.total("/api/datasets/t/data").await, 40);
    // Beyond keep_versions, but replaced a moment ago: the walk that started on it goes on.
    let path = next.split_once("qanat.test").unwrap().1;
    let page = app.get(path).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.json()["meta"]["version"], v1);
    assert_eq!(page.json()["meta"]["total"], 30);
}
