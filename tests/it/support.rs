//! Test helpers: a catalog in a temporary directory, ingested into temporary storage, driven
//! through the router with `oneshot`.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use qanat::config::Settings;
use qanat::state::AppState;
use serde_json::Value;
use tower::ServiceExt;

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A catalog directory with its storage, both removed when dropped.
pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    /// The application as `serve` runs it: the router behind the replay of repeated requests.
    pub router: App,
}

/// What `qanat::http::service` builds.
pub type App = qanat::http::App;

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    /// The rows of a Parquet file or an Arrow IPC stream body, by its content type, as the
    /// NDJSON text the server writes for the same batches.
    pub fn decoded(&self) -> String {
        let kind = self.headers["content-type"].to_str().unwrap();
        let bytes = bytes::Bytes::from(self.body.clone());
        let batches: Vec<arrow::record_batch::RecordBatch> = match kind {
            "application/vnd.apache.parquet" => {
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .unwrap()
                    .build()
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            "application/vnd.apache.arrow.stream" => {
                arrow::ipc::reader::StreamReader::try_new(&bytes[..], None)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            other => panic!("not a binary body: {other}"),
        };
        let mut text = Vec::new();
        for b in &batches {
            text.extend(qanat::encode::ndjson(b).unwrap());
        }
        String::from_utf8(text).unwrap()
    }

    /// The `detail` of a problem+json body, after checking its shape.
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.headers["content-type"], "application/problem+json");
        let v = self.json();
        assert_eq!(v["status"], status);
        assert!(
            v["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:qanat:problem:")
        );
        assert!(v["title"].is_string());
        v["detail"].as_str().unwrap().to_string()
    }
}

impl TestApp {
    /// The shipped sample catalog (`datasets/`), ingested into fresh storage.
    pub async fn sample() -> Self {
        Self::with_settings(&repo_path("datasets"), "").await
    }

    /// A catalog of `(file name, contents)` pairs written to a temporary directory.
    pub async fn with_files(files: &[(&str, &[u8])], extra_settings: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let datasets = dir.path().join("datasets");
        std::fs::create_dir_all(&datasets).unwrap();
        for (name, contents) in files {
            std::fs::write(datasets.join(name), contents).unwrap();
        }
        Self::in_dir(dir, &datasets, extra_settings).await
    }

    /// A catalog of CSVs, `(id, contents)`, each with a plain dataset file of its own.
    pub async fn with_csvs(csvs: &[(&str, &[u8])], extra_settings: &str) -> Self {
        let tomls: Vec<(String, Vec<u8>)> = csvs
            .iter()
            .map(|(id, _)| (format!("{id}.toml"), toml_for(&format!("{id}.csv"), "")))
            .collect();
        let names: Vec<String> = csvs.iter().map(|(id, _)| format!("{id}.csv")).collect();
        let mut files: Vec<(&str, &[u8])> = Vec::new();
        for ((name, (_, csv)), (toml_name, toml)) in names.iter().zip(csvs).zip(&tomls) {
            files.push((name, csv));
            files.push((toml_name, toml));
        }
        Self::with_files(&files, extra_settings).await
    }

    pub async fn with_settings(datasets: &Path, extra_settings: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::in_dir(dir, datasets, extra_settings).await
    }

    async fn in_dir(dir: tempfile::TempDir, datasets: &Path, extra_settings: &str) -> Self {
        let state = build_state(dir.path(), datasets, extra_settings);
        for (id, r) in state.catalog.ingest_and_load(&[], false).await.unwrap() {
            if let Err(e) = r {
                eprintln!("ingest of {id} failed: {e}");
            }
        }
        let router = qanat::http::service(state.clone());
        TestApp { dir, state, router }
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.get_with(uri, &[]).await
    }

    pub async fn get_with(&self, uri: &str, headers: &[(&str, &str)]) -> Reply {
        request(&self.router, uri, headers).await
    }

    /// `data` of a JSON page, as objects.
    pub async fn rows(&self, uri: &str) -> Vec<Value> {
        let r = self.get(uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text());
        r.json()["data"].as_array().unwrap().clone()
    }

    pub async fn total(&self, uri: &str) -> u64 {
        let r = self.get(uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.text());
        r.json()["meta"]["total"].as_u64().unwrap()
    }

    /// Writes `text` as the CSV of dataset `id` and publishes it as a new version.
    pub async fn republish(&self, id: &str, text: &str) {
        let path = self.dir.path().join("datasets").join(format!("{id}.csv"));
        std::fs::write(&path, text).unwrap();
        let results = self
            .state
            .catalog
            .ingest_and_load(&[id.into()], true)
            .await
            .unwrap();
        assert!(results[0].1.is_ok(), "{:?}", results[0].1);
    }

    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
}

pub fn build_state(root: &Path, datasets: &Path, extra_settings: &str) -> AppState {
    let mut settings = Settings::from_toml_str(extra_settings).unwrap();
    // The suite is one client asking thousands of times: rate limits are tested on their own.
    if !extra_settings.contains("rate_limit") {
        settings.server.rate_limit = 0;
    }
    settings.datasets = datasets.to_path_buf();
    if !extra_settings.contains("storage") {
        settings.storage = root.join("storage").display().to_string();
    }
    let specs = qanat::app::specs(&settings, &[]).unwrap();
    qanat::app::state(settings, specs).unwrap()
}

pub async fn request<S>(router: &S, uri: &str, headers: &[(&str, &str)]) -> Reply
where
    S: tower::Service<
            Request<Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone,
{
    send(router, "GET", uri, headers, None, Body::empty()).await
}

/// A request with any method and body, from `peer` when given (as the socket would say).
pub async fn send<S>(
    router: &S,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    peer: Option<std::net::SocketAddr>,
    body: Body,
) -> Reply
where
    S: tower::Service<
            Request<Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone,
{
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(peer) = peer {
        req = req.extension(axum::extract::ConnectInfo(peer));
    }
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req = req.header("host", "qanat.test");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// Records of one of the sample CSVs, read with the `csv` crate, for reference computations:
/// UTF-8, or Windows-1252 as French portals publish.
pub fn sample_records(file: &str, delimiter: u8) -> Vec<csv::StringRecord> {
    let bytes = std::fs::read(repo_path(&format!("datasets/{file}"))).unwrap();
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => encoding_rs::WINDOWS_1252
            .decode(e.as_bytes())
            .0
            .into_owned(),
    };
    let mut r = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    r.records().map(Result::unwrap).collect()
}

/// A toml dataset file for a CSV next to it.
pub fn toml_for(csv_name: &str, extra: &str) -> Vec<u8> {
    format!("title = \"{csv_name}\"\nsource = \"{csv_name}\"\nlicence = \"CC0-1.0\"\n{extra}")
        .into_bytes()
}

/// Says that a test skipped its checks, on the terminal itself: the test harness captures what
/// tests print with `eprintln!`, and a skip must not look like a pass.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// A server process, killed when the test ends, passed or not.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
