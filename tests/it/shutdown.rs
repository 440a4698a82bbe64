//! The socket under hostile clients and redeploys: a client trickling its headers is cut off,
//! and a SIGTERM lets a running export finish (within the drain time, and no longer).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Server, build_state, repo_path, toml_for};

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let state = build_state(
        dir.path(),
        &repo_path("datasets"),
        "[server]\nheader_timeout_ms = 300\n",
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(qanat::app::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let slow = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
        let started = Instant::now();
        // A byte every 50 ms: never a whole head.
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(50));
            if s.write_all(b"X").is_err() {
                break;
            }
        }
        let mut buf = Vec::new();
        let closed = match s.read_to_end(&mut buf) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        (closed, started.elapsed(), buf)
    });
    // Meanwhile others are answered.
    let ok = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert_eq!(ok.status(), 200);
    let (closed, took, buf) = slow.await.unwrap();
    assert!(closed, "the connection was not closed");
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert!(
        !String::from_utf8_lossy(&buf).contains("200 OK"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

fn big_csv(rows: usize) -> String {
    let mut s = String::with_capacity(rows * 70);
    s.push_str("id,label,amount\n");
    for i in 0..rows {
        s.push_str(&format!(
            "{i},label number {i} of the export that is long,{}.25\n",
            i % 1000
        ));
    }
    s
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `qanat serve` and waits until it answers.
fn start(dir: &std::path::Path, port: u16, drain_ms: u64) -> Server {
    start_with(
        dir,
        port,
        &["--drain-ms", &drain_ms.to_string()],
        Stdio::null(),
    )
}

fn start_with(dir: &std::path::Path, port: u16, flags: &[&str], stderr: Stdio) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_qanat"))
        .env_remove("QANAT_CONFIG")
        // An access line for every request.
        .env("QANAT_LOG", "info")
        .env("QANAT_DATASETS", dir.join("datasets"))
        .env("QANAT_STORAGE", dir.join("storage"))
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .args(flags)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let server = Server(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(120), "no server");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn sigterm(server: &Server) {
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits (at most 10 s) for the server to exit, successfully; how long that took.
fn exits_cleanly(server: &mut Server) -> Duration {
    let started = Instant::now();
    let status = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the server did not exit within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    started.elapsed()
}

/// A raw HTTP/1.1 request for the export whose response is read a chunk at a time.
fn open_export(port: u16) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /api/datasets/big/data.csv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 4096];
    let n = s.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    s
}

#[test]
fn sigterm_lets_a_running_export_finish_within_the_drain_time() {
    let dir = tempfile::tempdir().unwrap();
    let datasets = dir.path().join("datasets");
    std::fs::create_dir(&datasets).unwrap();
    // Larger than the socket buffers: the server is still writing when the signal comes.
    let rows = 400_000;
    std::fs::write(datasets.join("big.csv"), big_csv(rows)).unwrap();
    std::fs::write(datasets.join("big.toml"), toml_for("big.csv", "")).unwrap();

    let port = free_port();
    let mut server = start(dir.path(), port, 30_000);
    let mut export = open_export(port);
    sigterm(&server);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "the server exited while an export was running"
    );
    // No new connections once the signal came.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    // The rest of the export arrives, whole.
    let mut rest = Vec::new();
    export.read_to_end(&mut rest).unwrap();
    let text = String::from_utf8_lossy(&rest);
    let last = format!(
        "\n{},label number {} of the export that is long,",
        rows - 1,
        rows - 1
    );
    assert!(text.contains(&last), "the export was cut short");
    exits_cleanly(&mut server);

    // With a short drain time, a client that stops reading does not keep the server.
    let port = free_port();
    let mut server = start(dir.path(), port, 300);
    let _stalled = open_export(port);
    sigterm(&server);
    let took = exits_cleanly(&mut server);
    assert!(took >= Duration::from_millis(300), "{took:?}");
}

#[test]
fn json_logs_carry_each_requests_id() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("datasets")).unwrap();
    let port = free_port();
    let mut server = start_with(dir.path(), port, &["--log-format", "json"], Stdio::piped());
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /a/failing/route HTTP/1.1\r\nHost: x\r\nX-Request-Id: trace-77\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-request-id: trace-77")
    );
    sigterm(&server);
    exits_cleanly(&mut server);
    let mut logs = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    // Every line is a JSON object; the 404's line names the request it was written for.
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty(), "{logs}");
    let answered = lines
        .iter()
        .find(|v| v["fields"]["message"] == "answered")
        .unwrap_or_else(|| panic!("no `answered` line: {logs}"));
    assert_eq!(answered["span"]["id"], "trace-77", "{answered}");
    assert_eq!(answered["fields"]["status"], 404);
}
