//! A real S3 server for the tests: moto's server mode on 127.0.0.1 (`moto_server`, installed by
//! `.ci/run` from PyPI; found through `QANAT_MOTO_SERVER` or on the `PATH`), one per test binary,
//! a bucket per test. Without it the S3 tests print `SKIPPED` (and fail under `CI`).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use qanat::storage::Storage;

use crate::support::skipped;

/// A moto server process. It dies with the test binary: it runs under a shell that waits on
/// the binary's end of a pipe, then kills it.
pub struct Moto {
    pub port: u16,
    _child: Mutex<Child>,
}

/// The moto server shared by the tests, started at first use; `None` where none can be.
pub fn moto() -> Option<&'static Moto> {
    static MOTO: OnceLock<Option<Moto>> = OnceLock::new();
    let shared = MOTO.get_or_init(|| start_moto(&[]));
    if shared.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "moto_server is missing, and CI must run the S3 tests (.ci/run installs it)"
        );
        skipped("no moto_server (pip install 'moto[server]'): the S3 tests did not run");
    }
    shared.as_ref()
}

fn moto_program() -> Option<String> {
    if let Some(p) = std::env::var_os("QANAT_MOTO_SERVER") {
        return Some(p.to_string_lossy().into_owned());
    }
    let found = Command::new("sh")
        .args(["-c", "command -v moto_server"])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
    (found.status.success() && !path.is_empty()).then_some(path)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a moto server with these extra environment variables, and waits until it answers.
pub fn start_moto(env: &[(&str, &str)]) -> Option<Moto> {
    let program = moto_program()?;
    let port = free_port();
    let mut child = Command::new("sh")
        .args([
            "-c",
            "\"$0\" -H 127.0.0.1 -p \"$1\" >/dev/null 2>&1 & m=$!; read _; kill $m",
            &program,
            &port.to_string(),
        ])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .spawn()
        .ok()?;
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(60) || child.try_wait().ok().flatten().is_some()
        {
            let _ = child.stdin.take().map(|mut s| s.write_all(b"\n"));
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Moto {
        port,
        _child: Mutex::new(child),
    })
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Ok(mut child) = self._child.lock() {
            let _ = child.stdin.take().map(|mut s| s.write_all(b"\n"));
            let _ = child.wait();
        }
    }
}

impl Moto {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket of its own for a test (moto's server checks no signature by default).
    pub async fn bucket(&self, name: &str) -> String {
        let r = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint()))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "bucket {name}: {}", r.status());
        name.to_string()
    }

    /// The environment a `qanat` process reaches this server with.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        s3_env(&self.endpoint())
    }

    /// The storage at `s3://{bucket}/{prefix}`, opened in the test as a server opens it.
    pub fn storage(&self, bucket: &str, prefix: &str) -> Storage {
        storage_at(&self.endpoint(), bucket, prefix)
    }

    /// Keys of the multipart uploads begun and not finished in a bucket.
    pub async fn uploads_in_progress(&self, bucket: &str) -> Vec<String> {
        let text = reqwest::get(format!("{}/{bucket}?uploads", self.endpoint()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

pub fn s3_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT", endpoint.to_string()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "qanat-test".into()),
        ("AWS_SECRET_ACCESS_KEY", "qanat-test".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

pub fn storage_at(endpoint: &str, bucket: &str, prefix: &str) -> Storage {
    let options = [
        ("endpoint", endpoint),
        ("allow_http", "true"),
        ("access_key_id", "qanat-test"),
        ("secret_access_key", "qanat-test"),
        ("region", "us-east-1"),
    ];
    Storage::open_with(&format!("s3://{bucket}/{prefix}"), &options).unwrap()
}

/// A unique bucket name for a test (S3 names: 3–63 lower-case letters, digits and hyphens).
pub fn bucket_name(test: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "qanat-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// What the faulty proxy does to the requests it gets.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Faults {
    /// Every request forwarded.
    None = 0,
    /// Every request answered `503 Service Unavailable`, as S3 does when it sheds load.
    All = 1,
    /// Writes (`PUT`, `POST`, `DELETE`) answered `503`; reads forwarded.
    Writes = 2,
}

/// A proxy on loopback in front of the moto server that fails requests on demand: the S3
/// outages a server and an ingest must survive or report.
pub struct FaultyProxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
    /// Requests still to fail, whatever the mode (a transient outage).
    next_failures: Arc<AtomicUsize>,
    /// Requests answered with a 503 so far.
    pub failed: Arc<AtomicUsize>,
    /// Reads of a part of a Parquet file forwarded so far.
    pub parquet_reads: Arc<AtomicUsize>,
}

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

impl FaultyProxy {
    pub async fn start(target: String) -> FaultyProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = FaultyProxy {
            port,
            mode: Arc::new(AtomicU8::new(Faults::None as u8)),
            next_failures: Arc::new(AtomicUsize::new(0)),
            failed: Arc::new(AtomicUsize::new(0)),
            parquet_reads: Arc::new(AtomicUsize::new(0)),
        };
        let (mode, next, failed, reads) = (
            proxy.mode.clone(),
            proxy.next_failures.clone(),
            proxy.failed.clone(),
            proxy.parquet_reads.clone(),
        );
        let client = reqwest::Client::new();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let (mode, next, failed, reads, client, target) = (
                mode.clone(),
                next.clone(),
                failed.clone(),
                reads.clone(),
                client.clone(),
                target.clone(),
            );
            async move {
                let write = !matches!(req.method().as_str(), "GET" | "HEAD");
                let transient = next
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let m = mode.load(Ordering::SeqCst);
                if transient || m == Faults::All as u8 || (m == Faults::Writes as u8 && write) {
                    failed.fetch_add(1, Ordering::SeqCst);
                    return axum::http::Response::builder()
                        .status(503)
                        .body(axum::body::Body::from(
                            "<Error><Code>ServiceUnavailable</Code><Message>Please reduce your request rate.</Message></Error>",
                        ))
                        .unwrap();
                }
                if req.method() == "GET" && req.uri().path().ends_with(".parquet") {
                    reads.fetch_add(1, Ordering::SeqCst);
                }
                forward(&client, &target, req).await
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        proxy
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, faults: Faults) {
        self.mode.store(faults as u8, Ordering::SeqCst);
    }

    pub fn fail_next(&self, n: usize) {
        self.next_failures.store(n, Ordering::SeqCst);
    }
}

async fn forward(
    client: &reqwest::Client,
    target: &str,
    req: axum::extract::Request,
) -> axum::http::Response<axum::body::Body> {
    let (parts, body) = req.into_parts();
    let url = format!(
        "{target}{}",
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let mut headers = parts.headers.clone();
    headers.remove(axum::http::header::HOST);
    let answer = client
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let Ok(answer) = answer else {
        return axum::http::Response::builder()
            .status(502)
            .body(axum::body::Body::empty())
            .unwrap();
    };
    let mut out = axum::http::Response::builder().status(answer.status());
    for (k, v) in answer.headers() {
        out = out.header(k, v);
    }
    out.body(axum::body::Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}
