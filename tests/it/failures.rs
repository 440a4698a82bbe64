//! A failed, cut-off or killed ingest leaves the previous version served and no partial version
//! visible.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{TestApp, build_state, toml_for};

/// Serves a response that announces `declared` bytes but sends `body` and hangs up.
async fn truncating_server(body: &'static [u8], declared: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\nContent-Type: text/csv\r\n\r\n"
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body).await;
            let _ = sock.shutdown().await;
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_truncated_download_or_undecodable_bytes_keep_the_previous_version() {
    let app = TestApp::with_files(
        &[
            ("t.csv", b"k,v\na,1\nb,2\n"),
            ("t.toml", &toml_for("t.csv", "")),
            ("u.csv", b"k\nRabat\n"),
            (
                "u.toml",
                &toml_for("u.csv", "[csv]\nencoding = \"utf-8\"\n"),
            ),
        ],
        "",
    )
    .await;
    let before = app.get("/api/datasets/t").await.json()["version"].clone();
    // Point the dataset at a server that cuts the file short.
    let base = truncating_server(b"k,v\nc,3\nd,", 40).await;
    std::fs::write(
        app.dir.path().join("datasets/t.toml"),
        format!("source = \"{base}/t.csv\"\n"),
    )
    .unwrap();
    let spec =
        qanat::dataset::spec::DatasetSpec::load(&app.dir.path().join("datasets/t.toml")).unwrap();
    let err = qanat::ingest::ingest(&spec, &app.state.storage, &app.state.settings.ingest, false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("truncated") || err.to_string().contains("broke off"),
        "{err}"
    );
    assert_eq!(
        app.state
            .storage
            .current_manifest("t")
            .await
            .unwrap()
            .unwrap()
            .version,
        before.as_str().unwrap()
    );
    assert_eq!(app.total("/api/datasets/t/data").await, 2);

    // Bytes that are not UTF-8 in a file declared UTF-8.
    std::fs::write(app.dir.path().join("datasets/u.csv"), b"k\nF\xe8s\n").unwrap();
    let r = app
        .state
        .catalog
        .ingest_and_load(&["u".into()], false)
        .await
        .unwrap();
    let err = r[0].1.as_ref().unwrap_err().to_string();
    assert!(
        err.contains("byte 3 is not valid UTF-8") && err.contains("windows-1252"),
        "{err}"
    );
    assert_eq!(
        app.rows("/api/datasets/u/data").await,
        [json!({"k": "Rabat"})]
    );
}

/// Rows of hard-to-compress text, so that the Parquet output passes the object store's 10 MB
/// buffer and is uploaded in parts while the ingest is still reading.
fn big_csv(rows: usize) -> String {
    let mut s = String::with_capacity(rows * 80);
    s.push_str("id,label,value,day\n");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let y = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        s.push_str(&format!(
            "{i},{x:016x}{y:016x},{}.5,2024-01-{:02}\n",
            i % 977,
            i % 28 + 1
        ));
    }
    s
}

#[tokio::test]
async fn a_killed_ingest_leaves_the_previous_version_served() {
    let dir = tempfile::tempdir().unwrap();
    let datasets = dir.path().join("datasets");
    std::fs::create_dir(&datasets).unwrap();
    std::fs::write(
        datasets.join("k.csv"),
        "id,label,value,day\n1,a,1.5,2024-01-01\n",
    )
    .unwrap();
    std::fs::write(datasets.join("k.toml"), toml_for("k.csv", "")).unwrap();
    let storage = dir.path().join("storage");
    let qanat = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_qanat"));
        c.env_remove("QANAT_CONFIG")
            .env("QANAT_DATASETS", &datasets)
            .env("QANAT_STORAGE", &storage)
            .args(args);
        c
    };
    assert!(qanat(&["ingest", "k"]).output().unwrap().status.success());
    let first = std::fs::read_to_string(storage.join("k/current.json")).unwrap();

    // A source large enough that writing takes a while; kill the process once its new version
    // directory exists, i.e. in the middle of writing.
    std::fs::write(datasets.join("k.csv"), big_csv(1_000_000)).unwrap();
    let mut child = qanat(&["ingest", "k"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let killed_mid_write = loop {
        let versions = std::fs::read_dir(storage.join("k"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count();
        if versions >= 2 {
            child.kill().unwrap(); // SIGKILL
            break true;
        }
        if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(60) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    child.wait().unwrap();
    assert!(
        killed_mid_write,
        "the ingest finished before it could be killed; make the file larger"
    );
    assert_eq!(
        std::fs::read_to_string(storage.join("k/current.json")).unwrap(),
        first,
        "pointer unchanged"
    );

    // A server started now serves the previous version, and lists only complete versions.
    let state = build_state(
        dir.path(),
        &datasets,
        &format!("storage = '{}'", storage.display()),
    );
    let entry = state.catalog.entry("k").unwrap();
    assert!(state.catalog.load_current(&entry).await.unwrap());
    let loaded = state.catalog.loaded("k").unwrap();
    assert_eq!(loaded.manifest.rows, 1);
    assert_eq!(loaded.versions.len(), 1);
    // The next ingest completes and switches, and deletes the partial version the killed one
    // left (older than keep_replaced_ms, here 0); the previous complete version is kept.
    let out = qanat(&["ingest", "k"])
        .env("QANAT_INGEST__KEEP_REPLACED_MS", "0")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1000000 rows read, 1000000 stored"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut dirs: Vec<String> = std::fs::read_dir(storage.join("k"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    for d in &dirs {
        assert!(
            storage.join("k").join(d).join("manifest.json").is_file(),
            "{d} is partial"
        );
    }
}
