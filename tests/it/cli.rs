//! The `qanat` binary: ingest reports and exit codes, `openapi`, and `serve` on a CSV that is in
//! no catalog.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::repo_path;

fn qanat(storage: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qanat"));
    c.env_remove("QANAT_CONFIG")
        .env("QANAT_DATASETS", repo_path("datasets"))
        .env("QANAT_STORAGE", storage);
    c
}

#[test]
fn ingest_reports_each_dataset_and_skips_unchanged_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = qanat(dir.path())
        .args(["ingest", "--all"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("communes: ingested version"), "{err}");
    assert!(
        err.contains("34875 rows read, 34875 stored, 0 rejected, 6 columns"),
        "{err}"
    );
    let again = qanat(dir.path())
        .args(["ingest", "villes-maroc"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.starts_with("villes-maroc: unchanged (version"), "{err}");
    assert!(
        !err.contains("departements"),
        "only the named dataset: {err}"
    );
    let forced = qanat(dir.path())
        .args(["ingest", "villes-maroc", "--force"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&forced.stderr).contains("villes-maroc: ingested version"));
}

#[test]
fn ingest_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = qanat(dir.path()).args(["ingest", "nope"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no dataset `nope`; known datasets: communes, departements"),
        "{err}"
    );
    let out = qanat(dir.path()).args(["ingest"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --all"));
    // A dataset whose source is missing fails the run, with its reason.
    let cat = tempfile::tempdir().unwrap();
    std::fs::write(cat.path().join("x.toml"), "source = 'missing.csv'\n").unwrap();
    let out = qanat(dir.path())
        .env("QANAT_DATASETS", cat.path())
        .args(["ingest", "--all"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingest of `x` failed: source file"));
}

#[test]
fn openapi_prints_the_committed_document() {
    let dir = tempfile::tempdir().unwrap();
    let out = qanat(dir.path()).arg("openapi").output().unwrap();
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo_path("openapi/openapi.json")).unwrap())
            .unwrap();
    assert!(
        printed == committed,
        "`qanat openapi` differs from openapi/openapi.json"
    );
}

/// Kills the server when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_a_csv_that_is_in_no_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("Arrêts de bus.csv");
    std::fs::write(&csv, "stop;ville\n001;Casablanca\n002;Marrakech\n").unwrap();
    let empty = dir.path().join("empty-catalog");
    std::fs::create_dir(&empty).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let _child = Child(
        qanat(&dir.path().join("store"))
            .env("QANAT_DATASETS", &empty)
            .args(["serve", "--addr", &addr])
            .arg(&csv)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    let body = loop {
        if let Ok(text) = http_get(
            &addr,
            "/api/datasets/arrets-de-bus/data?ville__exact=Marrakech",
        ) {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["data"],
        serde_json::json!([{"stop": "002", "ville": "Marrakech"}])
    );
    // The container's health check: 0 while it serves, 1 with what failed where nothing does.
    let health = |addr: &str| {
        qanat(&dir.path().join("store"))
            .args(["health", "--addr", addr])
            .output()
            .unwrap()
    };
    assert!(health(&addr).status.success());
    let closed = format!("127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let out = health(&closed);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("http://{closed}/health")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A minimal HTTP/1.1 GET, so this test needs no async runtime.
fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or(std::io::ErrorKind::InvalidData)?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::ErrorKind::Other.into());
    }
    Ok(body.to_string())
}

#[test]
fn settings_come_from_file_environment_and_flags_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    // A misspelt section key is refused, naming the variables that exist.
    let out = qanat(dir.path())
        .env("QANAT_LIMITS__MAX_PAGE_SIZ", "5")
        .args(["ingest", "--all"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("QANAT_LIMITS__MAX_PAGE_SIZ names no setting")
            && err.contains("QANAT_LIMITS__MAX_PAGE_SIZE"),
        "{err}"
    );
    // The file sets a limit, the environment another, the flag wins over both.
    let config = dir.path().join("qanat.toml");
    std::fs::write(&config, "[limits]\nmax_page_size = 0\n").unwrap();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut c = qanat(dir.path());
        c.env("QANAT_CONFIG", &config);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&[], &["ingest", "--all"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("limits.max_page_size must be at least 1"),
        "{err}"
    );
    // A maximum below the default page size lowers it, unless that was set too.
    let (code, err) = run(
        &[("QANAT_LIMITS__MAX_PAGE_SIZE", "5")],
        &["ingest", "departements"],
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = run(
        &[("QANAT_DEFAULT_PAGE_SIZE", "50")],
        &["ingest", "departements", "--max-page-size", "10"],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("limits.default_page_size must be between 1 and max_page_size (10)"),
        "{err}"
    );
    let (code, err) = run(
        &[("QANAT_LIMITS__MAX_PAGE_SIZE", "5")],
        &["ingest", "departements", "--max-page-size", "0"],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("limits.max_page_size must be at least 1"),
        "{err}"
    );
    let (code, err) = run(
        &[("QANAT_MAX_PAGE_SIZE", "0")],
        &["ingest", "departements", "--max-page-size", "30"],
    );
    assert_eq!(code, Some(0), "{err}");
}
