//! The indexes built after the Parquet file (orders, posting lists, words, the spatial grid)
//! come out the same bytes whether their sorts fit the ingest's sort budget or ran on disk in
//! many runs, and the table is served the same from them.

use std::collections::BTreeMap;

use object_store::ObjectStoreExt;

use crate::sidecar::version_dir;
use crate::support::TestApp;

/// Enough rows for every sidecar.
const ROWS: usize = 210_000;
const WORDS: [&str; 7] = ["saint", "étienne", "bois", "haut", "Val", "mont", "rive"];

fn code_of(n: usize) -> Option<String> {
    (n % 89 != 3).then(|| format!("K{:03}", (n * 7_919) % 500))
}

fn csv() -> String {
    let mut csv = String::from("n,code,v,name,lat,lon\n");
    for n in 0..ROWS {
        let code = code_of(n).unwrap_or_default();
        // Many ties and some rows without a value.
        let v = if n % 101 == 7 {
            String::new()
        } else {
            (((n * 104_729) % 100_003) as i64 - 50_000).to_string()
        };
        let name = format!("{} {} {}", WORDS[n * 31 % 7], WORDS[n * 17 % 5], n % 1_000);
        let (lat, lon) = if n % 53 == 0 {
            (String::new(), String::new())
        } else {
            let lat = 30.0 + ((n * 7) % 1_000) as f64 / 100.0;
            let lon = -9.0 + ((n * 13) % 1_100) as f64 / 100.0;
            (lat.to_string(), lon.to_string())
        };
        csv.push_str(&format!("{n},{code},{v},{name},{lat},{lon}\n"));
    }
    csv
}

#[tokio::test]
async fn sidecars_sorted_on_disk_are_the_bytes_sorted_in_memory() {
    let csv = csv();
    let mut built: Vec<BTreeMap<&str, Vec<u8>>> = Vec::new();
    let mut apps = Vec::new();
    // The default budget holds every sort; one byte holds the fewest records a run may have,
    // so that each sort spills a dozen runs and merges them.
    for settings in ["", "[ingest]\nsort_bytes = 1\n"] {
        let app = TestApp::with_csvs(&[("big", csv.as_bytes())], settings).await;
        let dir = version_dir(&app, "big").await;
        let mut files = BTreeMap::new();
        for name in ["orders.bin", "postings.bin", "words.bin", "geo.bin"] {
            let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(bytes.len() > 10_000, "{name}: {} bytes", bytes.len());
            files.insert(name, bytes);
        }
        built.push(files);
        apps.push(app);
    }
    for (name, bytes) in &built[0] {
        assert!(
            built[1][name] == *bytes,
            "{name} differs once sorted on disk"
        );
    }
    // Served from the spilled indexes: a count by list and a page by order.
    let spilled = &apps[1];
    let want = (0..ROWS)
        .filter(|n| code_of(*n).as_deref() == Some("K007"))
        .count();
    let page = spilled
        .get("/api/datasets/big/data?code__exact=K007&page_size=1")
        .await
        .json();
    assert_eq!(page["meta"]["total"], want);
    let page = spilled
        .get("/api/datasets/big/data?v__sort=asc&page_size=1&columns=n,v")
        .await
        .json();
    let n = (0..ROWS)
        .filter(|n| n % 101 != 7)
        .min_by_key(|n| (((n * 104_729) % 100_003) as i64, *n))
        .unwrap();
    assert_eq!(page["data"][0]["n"], n);
}

/// On S3 the indexes are built from a local copy of the Parquet file, written as the object is:
/// the same bytes as on the local disk, without reading the object back column by column.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_s3_sidecars_come_from_a_local_copy_with_the_same_bytes() {
    let Some(moto) = crate::objects::moto() else {
        return;
    };
    let proxy = crate::objects::FaultyProxy::start(moto.endpoint()).await;
    let mut site = crate::s3::Site::new(moto, "copy").await;
    site.env = crate::objects::s3_env(&proxy.endpoint());
    let csv = csv();
    site.write("big", &csv);
    let out = site.ingest("big", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reads = proxy
        .parquet_reads
        .load(std::sync::atomic::Ordering::SeqCst);
    // Not once read back: the sidecars' column reads (30 here without the copy) are the
    // copy's.
    assert_eq!(reads, 0, "reads of the Parquet object");

    let local = TestApp::with_csvs(&[("big", csv.as_bytes())], "").await;
    let dir = version_dir(&local, "big").await;
    let storage = moto.storage(&site.bucket, "site");
    let version = storage
        .current_manifest("big")
        .await
        .unwrap()
        .unwrap()
        .version;
    let remote = storage.version_dir("big", &version).clone();
    for name in ["orders.bin", "postings.bin", "words.bin", "geo.bin"] {
        let got = storage.store.get(&remote.clone().join(name)).await.unwrap();
        let got = got.bytes().await.unwrap();
        assert!(
            got == std::fs::read(dir.join(name)).unwrap(),
            "{name} differs on S3"
        );
    }
}

/// The columns of a word index (`words.bin`), from its table of contents.
fn indexed_columns(words: &[u8]) -> Vec<String> {
    let len = u64::from_le_bytes(words[words.len() - 8..].try_into().unwrap()) as usize;
    let contents = &words[words.len() - 8 - len..words.len() - 8];
    let entries = qanat::dataset::postings::read_contents(contents).unwrap();
    entries.into_iter().map(|e| e.column).collect()
}

/// A column whose distinct words pass what its share of the sort budget may hold is left out of
/// the word index, and searches naming it fold its cells: the same rows.
#[tokio::test]
async fn a_column_of_too_many_words_is_searched_by_folding() {
    // 80,000 distinct references: over the 4 MiB a column's words may always hold.
    let mut csv = String::from("reference,parity\n");
    for n in 0..80_000 {
        let parity = if n % 2 == 0 { "pair" } else { "impair" };
        csv.push_str(&format!("R-{n:06},{parity}\n"));
    }
    for (settings, indexed) in [("", true), ("[ingest]\nsort_bytes = 1\n", false)] {
        let app = TestApp::with_csvs(&[("refs", csv.as_bytes())], settings).await;
        let words = std::fs::read(version_dir(&app, "refs").await.join("words.bin")).unwrap();
        let columns = indexed_columns(&words);
        assert_eq!(
            columns.contains(&"reference".to_string()),
            indexed,
            "{columns:?}"
        );
        assert!(columns.contains(&"parity".to_string()), "{columns:?}");
        let d = "/api/datasets/refs/data";
        let page = app.get(&format!("{d}?q=r%20012345")).await.json();
        assert_eq!(page["meta"]["total"], 1, "{settings}");
        assert_eq!(page["data"][0]["reference"], "R-012345");
        let page = app
            .get(&format!("{d}?reference__search=012346&parity__search=pair"))
            .await
            .json();
        assert_eq!(page["meta"]["total"], 1, "{settings}");
    }
}

/// A local disk that cannot take the sorts' runs fails the ingest with a message that says
/// where and what would do, and publishes nothing.
#[test]
fn a_sort_that_cannot_spill_says_where_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let datasets = dir.path().join("datasets");
    std::fs::create_dir(&datasets).unwrap();
    std::fs::write(datasets.join("big.csv"), csv()).unwrap();
    std::fs::write(datasets.join("big.toml"), "source = \"big.csv\"\n").unwrap();
    let storage = dir.path().join("storage");
    let gone = dir.path().join("no-such-dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qanat"))
        .env_remove("QANAT_CONFIG")
        .env("QANAT_DATASETS", &datasets)
        .env("QANAT_STORAGE", &storage)
        .env("QANAT_SORT_BYTES", "1")
        .env("TMPDIR", &gone)
        .args(["ingest", "big"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("on the local disk (`{}`)", gone.display())),
        "{err}"
    );
    assert!(err.contains("point TMPDIR elsewhere"), "{err}");
    assert!(!storage.join("big").join("current.json").exists());
}
