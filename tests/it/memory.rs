//! Streaming keeps memory bounded: a real `qanat serve` exports a 3,000,000-row dataset (about
//! 200 MB of NDJSON) to a client that stalls, and its resident memory stays a fraction of that.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROWS: usize = 3_000_000;

/// Resident and peak resident memory of a process, in bytes (Linux).
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_stream_with_bounded_memory() {
    if !std::path::Path::new("/proc/self/status").exists() {
        crate::support::skipped("no /proc to read the server's memory from");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let datasets = dir.path().join("datasets");
    std::fs::create_dir_all(&datasets).unwrap();
    let mut csv = std::io::BufWriter::new(std::fs::File::create(datasets.join("big.csv")).unwrap());
    writeln!(csv, "id,name,score,day").unwrap();
    for i in 0..ROWS {
        writeln!(
            csv,
            "{i},name-{},{}.{:02},2024-{:02}-{:02}",
            i % 1000,
            i / 3,
            i % 100,
            i % 12 + 1,
            i % 28 + 1
        )
        .unwrap();
    }
    csv.into_inner().unwrap().sync_all().unwrap();
    std::fs::write(
        datasets.join("big.toml"),
        crate::support::toml_for("big.csv", ""),
    )
    .unwrap();
    let storage = dir.path().join("storage");
    let qanat = |args: &[&str]| -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_qanat"));
        c.arg("--storage")
            .arg(&storage)
            .arg("--datasets")
            .arg(&datasets)
            .args(args);
        c
    };
    let ingested = qanat(&["ingest", "--all"]).output().unwrap();
    assert!(ingested.status.success(), "{ingested:?}");

    // From Parquet, then from memory (where the idle server already holds the rows).
    for resident in ["0", "1000000000"] {
        let (bytes, idle, stalled, peak) = export(&qanat, resident).await;
        let mib = |b: u64| b >> 20;
        eprintln!(
            "resident budget {resident}: export {} MiB; server idle {} MiB, stalled {} MiB, peak {} MiB",
            mib(bytes),
            mib(idle),
            mib(stalled),
            mib(peak)
        );
        assert!(bytes > 150 << 20, "{bytes} bytes exported");
        assert!(
            stalled < idle + (64 << 20),
            "stalled client: {} MiB resident, idle {} MiB",
            mib(stalled),
            mib(idle)
        );
        assert!(
            peak < idle + bytes / 3,
            "peak {} MiB (idle {} MiB) for an export of {} MiB",
            mib(peak),
            mib(idle),
            mib(bytes)
        );
    }
}

/// Runs a server, exports the dataset as NDJSON with a stall after the first MiB, and returns
/// the bytes exported and the server's memory: idle, while stalled, peak.
async fn export(qanat: &dyn Fn(&[&str]) -> Command, resident: &str) -> (u64, u64, u64, u64) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let server = Server(
        qanat(&[
            "--addr",
            &addr,
            "--cache-bytes",
            "0",
            "--resident-bytes",
            resident,
            "serve",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let pid = server.0.id();
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A first query asks for the dataset in memory (within the budget): the server is idle
    // once it holds it.
    let url = format!("http://{addr}/api/datasets/big/data?page_size=1");
    assert_eq!(client.get(url).send().await.unwrap().status(), 200);
    let want = if resident == "0" { 0 } else { 1 };
    let metric = format!("qanat_datasets_resident {want}\n");
    while !client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains(&metric)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the dataset never became resident"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (idle, _) = memory(pid);
    let mut resp = client
        .get(format!("http://{addr}/api/datasets/big/data.ndjson"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut stalled_at = None;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        if stalled_at.is_none() && bytes > 1 << 20 {
            // The client stops reading: the server must wait, not buffer the rest.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stalled_at = Some(memory(pid).0);
        }
    }
    let (_, peak) = memory(pid);
    assert_eq!(lines, ROWS as u64);
    (bytes, idle, stalled_at.unwrap(), peak)
}
