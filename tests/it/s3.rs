//! Storage on a real S3 server (moto, on loopback): the pointer's compare-and-swap, versions
//! ingested, served, pinned and pruned, a killed ingest, the ingest lease, and the startup
//! errors of a storage that refuses.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use qanat::storage::Storage;

use crate::objects::{Moto, bucket_name, free_port, moto, s3_env, start_moto};
use crate::support::{Server, toml_for};

pub fn rows(n: usize) -> String {
    let mut s = String::from("code,valeur\n");
    for i in 0..n {
        s.push_str(&format!("{i:05},{i}\n"));
    }
    s
}

/// A catalog directory whose storage is a prefix of a bucket on the moto server.
pub struct Site {
    _dir: tempfile::TempDir,
    pub datasets: PathBuf,
    pub bucket: String,
    pub env: Vec<(&'static str, String)>,
}

impl Site {
    pub async fn new(moto: &Moto, test: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let datasets = dir.path().join("datasets");
        std::fs::create_dir(&datasets).unwrap();
        let bucket = moto.bucket(&bucket_name(test)).await;
        Site {
            _dir: dir,
            datasets,
            bucket,
            env: moto.env(),
        }
    }

    pub fn url(&self) -> String {
        format!("s3://{}/site", self.bucket)
    }

    pub fn write(&self, id: &str, csv: &str) {
        std::fs::write(self.datasets.join(format!("{id}.csv")), csv).unwrap();
        let toml = self.datasets.join(format!("{id}.toml"));
        if !toml.exists() {
            std::fs::write(toml, toml_for(&format!("{id}.csv"), "")).unwrap();
        }
    }

    pub fn qanat(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_qanat"));
        c.env_remove("QANAT_CONFIG")
            .env("QANAT_DATASETS", &self.datasets)
            .env("QANAT_STORAGE", self.url())
            .env("QANAT_WATCH_MS", "200")
            .env("QANAT_RATE_LIMIT", "0")
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(args);
        c
    }

    pub fn ingest(&self, id: &str, extra_env: &[(&str, &str)]) -> Output {
        self.qanat(&["ingest", id])
            .envs(extra_env.iter().copied())
            .output()
            .unwrap()
    }

    /// A `qanat serve` over the site on a free port, and its base URL, once it answers.
    pub async fn serve(&self, extra_args: &[&str]) -> (Server, String) {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut args = vec!["serve", "--addr", &addr];
        args.extend_from_slice(extra_args);
        let server = Server(
            self.qanat(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let base = format!("http://{addr}");
        wait_for(&format!("{base}/health"), |_| true).await;
        (server, base)
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asks `url` until its JSON answer satisfies `done` (60 s at most).
pub async fn wait_for(url: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(url).await
            && r.status() == 200
            && let Ok(text) = r.text().await
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && done(&v)
        {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{url} never answered as expected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

async fn objects_under(storage: &Storage, prefix: &str) -> Vec<String> {
    use futures::TryStreamExt;
    let prefix = prefix
        .split('/')
        .fold(storage.root.clone(), |p, part| p.join(part));
    let mut keys: Vec<String> = storage
        .store
        .list(Some(&prefix))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pointer_moves_by_conditional_writes_only_on_s3() {
    let Some(moto) = moto() else { return };
    let bucket = moto.bucket(&bucket_name("cas")).await;
    let storage = moto.storage(&bucket, "site");
    // The server honours the conditions the swap relies on (else the rest proves nothing).
    let path = ObjectPath::from("site/probe");
    let put = |mode| {
        let store = storage.store.clone();
        let path = path.clone();
        async move {
            let options = PutOptions {
                mode,
                ..Default::default()
            };
            store
                .put_opts(&path, PutPayload::from(Bytes::from("x")), options)
                .await
        }
    };
    let first = put(PutMode::Create).await.unwrap();
    assert!(matches!(
        put(PutMode::Create).await,
        Err(object_store::Error::AlreadyExists { .. })
    ));
    let stale = UpdateVersion {
        e_tag: Some("\"0123456789abcdef\"".into()),
        version: None,
    };
    assert!(matches!(
        put(PutMode::Update(stale)).await,
        Err(object_store::Error::Precondition { .. })
    ));
    let fresh = UpdateVersion {
        e_tag: first.e_tag,
        version: first.version,
    };
    put(PutMode::Update(fresh)).await.unwrap();

    // Sixteen writers at once, in no order: the newest version ends current, and each writer
    // says whether it published.
    let mut versions: Vec<String> = (0..16).map(|i| format!("20260101T0000{i:02}")).collect();
    versions.reverse();
    versions.swap(3, 11);
    let tasks: Vec<_> = versions
        .iter()
        .map(|v| {
            let (storage, v) = (storage.clone(), v.clone());
            tokio::spawn(async move { storage.switch_current("k", &v).await.unwrap() })
        })
        .collect();
    let mut published = 0;
    for t in tasks {
        published += t.await.unwrap() as usize;
    }
    assert!(published >= 1);
    let newest = versions.iter().max().unwrap();
    match storage.read_pointer("k", None).await.unwrap() {
        qanat::storage::PointerRead::Current { version, .. } => assert_eq!(&version, newest),
        other => panic!("{other:?}"),
    }
    // An older version never moves it back.
    assert!(
        !storage
            .switch_current("k", "20250101T000000")
            .await
            .unwrap()
    );
    assert!(storage.switch_current("k", newest).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_ingested_served_pinned_and_pruned_on_s3() {
    let Some(moto) = moto() else { return };
    let site = Site::new(moto, "versions").await;
    let keep = [
        ("QANAT_KEEP_VERSIONS", "2"),
        ("QANAT_KEEP_REPLACED_MS", "0"),
    ];
    site.write("k", &rows(10));
    let out = site.ingest("k", &keep);
    assert!(
        stderr(&out).contains("10 rows read, 10 stored, 0 rejected"),
        "{}",
        stderr(&out)
    );
    let storage = moto.storage(&site.bucket, "site");
    let v1 = storage
        .current_manifest("k")
        .await
        .unwrap()
        .unwrap()
        .version;

    let (_server, base) = site.serve(&[]).await;
    let first = wait_for(&format!("{base}/api/datasets/k/data?page_size=3"), |v| {
        v["meta"]["total"] == 10
    })
    .await;
    let next = first["links"]["next"].as_str().unwrap().to_string();

    // A version published by another process is served within the watch interval; the
    // cursor begun on the first goes on reading it, as does its pinned URL.
    site.write("k", &rows(25));
    assert!(site.ingest("k", &keep).status.success());
    wait_for(&format!("{base}/api/datasets/k/data"), |v| {
        v["meta"]["total"] == 25
    })
    .await;
    let (status, page) = get_json(&next).await;
    assert_eq!(status, 200, "{page}");
    let codes: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["00003", "00004", "00005"]);
    assert_eq!(page["meta"]["total"], 10);
    let (status, pinned) = get_json(&format!("{base}/api/datasets/k@{v1}/data")).await;
    assert_eq!(
        (status, &pinned["meta"]["total"]),
        (200, &serde_json::json!(10))
    );

    // A third version: two are kept, the first one's objects are gone from the bucket.
    site.write("k", &rows(40));
    assert!(site.ingest("k", &keep).status.success());
    let versions = storage.versions("k").await.unwrap();
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(!versions.contains(&v1));
    assert_eq!(
        objects_under(&storage, &format!("k/{v1}")).await,
        Vec::<String>::new()
    );
    let current = storage.current_manifest("k").await.unwrap().unwrap();
    assert_eq!(current.rows, 40);
    assert!(
        objects_under(&storage, &format!("k/{}", current.version))
            .await
            .iter()
            .any(|k| k.ends_with(".parquet"))
    );
    wait_for(&format!("{base}/api/datasets/k/data"), |v| {
        v["meta"]["total"] == 40
    })
    .await;
}

/// A CSV large enough that writing it to the bucket takes a while (a multipart upload).
fn big_csv(rows: usize) -> String {
    let mut s = String::with_capacity(rows * 60);
    s.push_str("id,label,value\n");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!(
            "{i},{x:016x}{:016x},{}.5\n",
            x.rotate_left(17),
            i % 977
        ));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_ingest_on_s3_publishes_nothing_and_the_next_completes() {
    let Some(moto) = moto() else { return };
    let site = Site::new(moto, "killed").await;
    site.write("k", "id,label,value\n1,a,1.5\n");
    assert!(site.ingest("k", &[]).status.success());
    let storage = moto.storage(&site.bucket, "site");
    let first = storage.current_manifest("k").await.unwrap().unwrap();

    // Killed while its Parquet is being uploaded (a multipart upload under way).
    site.write("k", &big_csv(1_000_000));
    // A flag before the command, as scripts write it: the lease still names the command.
    let mut child = site
        .qanat(&["--keep-versions", "3", "ingest", "k"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let killed_mid_upload = loop {
        if moto
            .uploads_in_progress(&site.bucket)
            .await
            .iter()
            .any(|k| k.starts_with("site/k/"))
        {
            child.kill().unwrap(); // SIGKILL
            break true;
        }
        if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(120) {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    child.wait().unwrap();
    assert!(
        killed_mid_upload,
        "the ingest finished before it could be killed"
    );
    let after = storage.current_manifest("k").await.unwrap().unwrap();
    assert_eq!(after.version, first.version, "nothing published");
    assert_eq!(after.rows, 1);
    let infos = storage.version_infos("k").await.unwrap();
    assert_eq!(infos.len(), 1, "only complete versions are listed");

    // The killed process's lease (same machine, process gone) does not hold the next one up.
    let out = site.ingest("k", &[("QANAT_KEEP_REPLACED_MS", "0")]);
    assert!(
        stderr(&out).contains("1000000 rows read, 1000000 stored"),
        "{}",
        stderr(&out)
    );
    let now = storage.current_manifest("k").await.unwrap().unwrap();
    assert_eq!(now.rows, 1_000_000);
    for v in storage.versions("k").await.unwrap() {
        assert!(
            storage.manifest("k", &v).await.unwrap().is_some(),
            "version {v} is partial"
        );
    }
    assert!(
        objects_under(&storage, "k/lease.json").await.is_empty(),
        "the lease is released"
    );
}

async fn read_object(storage: &Storage, path: &ObjectPath) -> Bytes {
    storage
        .store
        .get(path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

fn lease_json(host: &str, pid: u32, expires_ms: i64) -> String {
    serde_json::json!({
        "host": host, "pid": pid, "what": "qanat ingest", "token": "elsewhere",
        "expires_ms": expires_ms,
    })
    .to_string()
}

/// `qanat ingest k` started, once it holds its lease.
async fn ingest_holding_the_lease(
    site: &Site,
    storage: &Storage,
    lease: &ObjectPath,
) -> std::process::Child {
    // A flag before the command, as scripts write it: the lease still names the command.
    let mut child = site
        .qanat(&["--keep-versions", "3", "ingest", "k"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while storage.store.head(lease).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no lease taken"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the ingest ended early"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_ingests_a_dataset_at_a_time_on_s3() {
    let Some(moto) = moto() else { return };
    let site = Site::new(moto, "lease").await;
    site.write("k", &rows(10));
    let storage = moto.storage(&site.bucket, "site");
    let lease = storage.root.clone().join("k").join("lease.json");
    let now = chrono::Utc::now().timestamp_millis();

    // Held by a live process on another machine: refused, naming it; nothing published.
    let held = lease_json("replica-b", 4242, now + 3_600_000);
    storage
        .store
        .put(&lease, held.clone().into())
        .await
        .unwrap();
    let out = site.ingest("k", &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("is being ingested by qanat ingest (process 4242 on replica-b"),
        "{err}"
    );
    assert!(storage.current_manifest("k").await.unwrap().is_none());
    let kept = read_object(&storage, &lease).await;
    assert_eq!(kept, held.as_bytes(), "another's lease is left alone");

    // Expired: taken over (a conditional update), the ingest runs, the lease is let go.
    let expired = lease_json("replica-b", 4242, now - 1_000);
    storage.store.put(&lease, expired.into()).await.unwrap();
    let out = site.ingest("k", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        storage.current_manifest("k").await.unwrap().unwrap().rows,
        10
    );
    assert!(matches!(
        storage.store.head(&lease).await,
        Err(object_store::Error::NotFound { .. })
    ));

    // Two ingests at once: the second, started while the first holds the lease, is refused;
    // the first publishes.
    site.write("k", &rows(400_000));
    let first = ingest_holding_the_lease(&site, &storage, &lease).await;
    let second = site.ingest("k", &[]);
    assert!(!second.status.success());
    assert!(
        stderr(&second).contains(&format!(
            "is being ingested by qanat ingest (process {} on",
            first.id()
        )),
        "{}",
        stderr(&second)
    );
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(
        storage.current_manifest("k").await.unwrap().unwrap().rows,
        400_000
    );

    // A lease taken over while its holder writes (the holder stalled past its expiry): the
    // holder finds out before publishing, publishes nothing, and leaves the new holder's lease.
    site.write("k", &rows(300_000));
    let writer = ingest_holding_the_lease(&site, &storage, &lease).await;
    let theirs = lease_json(
        "replica-c",
        99,
        chrono::Utc::now().timestamp_millis() + 3_600_000,
    );
    storage
        .store
        .put(&lease, theirs.clone().into())
        .await
        .unwrap();
    let out = writer.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("another process took the dataset over"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        storage.current_manifest("k").await.unwrap().unwrap().rows,
        400_000
    );
    let kept = read_object(&storage, &lease).await;
    assert_eq!(kept, theirs.as_bytes());
}

fn fails_to_start(site_env: &[(&'static str, String)], storage: &str, dir: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_qanat"))
        .env_remove("QANAT_CONFIG")
        .env("QANAT_DATASETS", dir)
        .env("QANAT_STORAGE", storage)
        .envs(site_env.iter().map(|(k, v)| (*k, v.as_str())))
        .args(["serve", "--addr", &format!("127.0.0.1:{}", free_port())])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("it started over {storage}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "it started");
    stderr(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_that_refuses_is_a_clear_startup_error() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let err = fails_to_start(&moto.env(), "s3://no-such-bucket/site", dir.path());
    assert!(
        err.contains(
            "bucket `no-such-bucket` does not exist (create it, or name an existing bucket)"
        ),
        "{err}"
    );

    // A server that checks signatures (its first request, the bucket's creation, is let
    // through): the test's keys are unknown to it.
    let strict = start_moto(&[("INITIAL_NO_AUTH_ACTION_COUNT", "1")]).expect("moto starts");
    strict.bucket("strict-bucket").await;
    let err = fails_to_start(&strict.env(), "s3://strict-bucket/site", dir.path());
    assert!(err.contains("the storage refused the credentials"), "{err}");
    assert!(err.contains("InvalidAccessKeyId"), "{err}");

    // Nothing listening: retried with backoff, then said.
    let closed = s3_env(&format!("http://127.0.0.1:{}", free_port()));
    let err = fails_to_start(&closed, "s3://any-bucket/site", dir.path());
    assert!(err.contains("the storage did not answer"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_s3_outage_is_retried_then_a_503_and_nothing_partial_is_published() {
    let Some(moto) = moto() else { return };
    let proxy = crate::objects::FaultyProxy::start(moto.endpoint()).await;
    let mut site = Site::new(moto, "outage").await;
    site.env = s3_env(&proxy.endpoint());
    let storage = crate::objects::storage_at(&proxy.endpoint(), &site.bucket, "site");

    // A short outage (three 503s in a row) is retried with backoff: the ingest succeeds.
    site.write("k", &rows(10));
    proxy.fail_next(3);
    let out = site.ingest("k", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(proxy.failed.load(std::sync::atomic::Ordering::SeqCst), 3);

    // Served from the bucket on every request (nothing held in memory or cached).
    let (_server, base) = site
        .serve(&[
            "--resident-bytes",
            "0",
            "--cache-bytes",
            "0",
            "--page-cache-bytes",
            "0",
        ])
        .await;
    wait_for(&format!("{base}/api/datasets/k/data"), |v| {
        v["meta"]["total"] == 10
    })
    .await;

    // The storage down through every retry: a 503 that says so, in bounded time.
    proxy.set(crate::objects::Faults::All);
    let asked = Instant::now();
    let r = reqwest::get(format!(
        "{base}/api/datasets/k/data?page_size=7&code__exact=00003"
    ))
    .await
    .unwrap();
    let took = asked.elapsed();
    assert_eq!(r.status(), 503);
    let problem: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(problem["type"], "urn:qanat:problem:storage-unavailable");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("object storage did not answer (retried with backoff)"),
        "{problem}"
    );
    assert!(took < Duration::from_secs(30), "{took:?}");

    // Writes failing mid-ingest: the ingest fails, nothing is published, the version served
    // stays, and the next ingest, with the storage back, publishes.
    proxy.set(crate::objects::Faults::Writes);
    site.write("k", &rows(20));
    let out = site.ingest("k", &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("object storage unavailable"),
        "{}",
        stderr(&out)
    );
    proxy.set(crate::objects::Faults::None);
    assert_eq!(
        storage.current_manifest("k").await.unwrap().unwrap().rows,
        10
    );
    let (status, page) = get_json(&format!("{base}/api/datasets/k/data?page_size=9")).await;
    assert_eq!(
        (status, &page["meta"]["total"]),
        (200, &serde_json::json!(10))
    );
    let out = site.ingest("k", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        storage.current_manifest("k").await.unwrap().unwrap().rows,
        20
    );
}
