//! Harvests end to end against portals replayed on 127.0.0.1: real CKAN and udata answers
//! (`../shared/data/portals`) with their resources' URLs pointed at the loopback server, which
//! serves the files too. A first harvest; a second after the portal changed (one resource new,
//! one changed, one deleted); a third whose listing breaks (nothing retired).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use qanat::config::{HarvestSource, PortalKind, Settings};
use qanat::harvest::run::{Report, harvest};
use serde_json::{Value, json};

use crate::sheets::{figures, xlsx};
use crate::support::{Server, TestApp, repo_path, skipped};

/// What the replayed portal answers.
#[derive(Default)]
struct Portal {
    /// CKAN packages (or udata datasets), in `id` order.
    packages: Vec<Value>,
    /// Resource bodies by URL path.
    files: HashMap<String, Vec<u8>>,
    /// A listing page (by its `start`) that breaks, and how.
    broken_start: Option<(usize, Broken)>,
    /// Paths answered with a redirect to another path (uploads behind `/download/` links).
    redirects: HashMap<String, String>,
    status_show: Vec<u8>,
}

type Shared = Arc<Mutex<Portal>>;

/// How a listing page breaks.
#[derive(Clone, Copy)]
enum Broken {
    /// A firewall's page, with 200.
    Html,
    /// A server error.
    Status500,
    /// The JSON cut in the middle.
    Truncated,
}

fn fixture(path: &str) -> Option<Value> {
    let path = repo_path("../shared/data/portals").join(path);
    match std::fs::read(&path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).unwrap()),
        Err(_) if std::env::var_os("CI").is_some() => panic!("{} is missing", path.display()),
        Err(_) => {
            skipped("the portal fixtures need ../shared/data, which is not here");
            None
        }
    }
}

async fn action(
    State(portal): State<Shared>,
    Path(action): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let portal = portal.lock().unwrap();
    let q: HashMap<String, String> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    match action.as_str() {
        "status_show" => (
            [(header::CONTENT_TYPE, "application/json")],
            portal.status_show.clone(),
        )
            .into_response(),
        "package_search" => {
            assert_eq!(q["sort"], "id asc", "a stable order is asked for");
            let rows: usize = q["rows"].parse().unwrap();
            let start: usize = q["start"].parse().unwrap();
            let page: Vec<Value> = portal.packages.iter().skip(start).take(rows).cloned().collect();
            // `success: false` is for errors; a page is `{help, success, result}`.
            let body = json!({"help": "package_search", "success": true,
                "result": {"count": portal.packages.len(), "results": page}});
            match portal.broken_start {
                Some((at, how)) if at == start => match how {
                    Broken::Html => (
                        [(header::CONTENT_TYPE, "text/html")],
                        "<html><head><title>Request Rejected</title></head></html>",
                    )
                        .into_response(),
                    Broken::Status500 => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response()
                    }
                    Broken::Truncated => {
                        let text = body.to_string();
                        text[..text.len() / 2].to_string().into_response()
                    }
                },
                _ => axum::Json(body).into_response(),
            }
        }
        other => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"success": false, "error": {"message": format!("Action name not known: {other}"), "__type": "Bad request"}})),
        )
            .into_response(),
    }
}

async fn udata_page(State(portal): State<Shared>, uri: Uri, RawQuery(raw): RawQuery) -> Response {
    let portal = portal.lock().unwrap();
    let q: HashMap<String, String> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let size: usize = q["page_size"].parse().unwrap();
    let page: usize = q.get("page").map_or(1, |p| p.parse().unwrap());
    let data: Vec<Value> = portal
        .packages
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .cloned()
        .collect();
    let next = (page * size < portal.packages.len())
        .then(|| format!("{}?page={}&page_size={size}", uri.path(), page + 1));
    axum::Json(json!({"data": data, "page": page, "page_size": size,
        "total": portal.packages.len(), "next_page": next, "previous_page": null, "facets": null}))
    .into_response()
}

async fn file(State(portal): State<Shared>, uri: Uri) -> Response {
    let portal = portal.lock().unwrap();
    if let Some(to) = portal.redirects.get(uri.path()) {
        return (StatusCode::FOUND, [(header::LOCATION, to.clone())]).into_response();
    }
    match portal.files.get(uri.path()) {
        Some(body) => body.clone().into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// Starts the portal on 127.0.0.1; its base URL.
async fn start(portal: Shared) -> String {
    let router = axum::Router::new()
        .route("/api/3/action/{action}", axum::routing::get(action))
        .route(
            "/api/1/organizations/{org}/datasets/",
            axum::routing::get(udata_page),
        )
        .fallback(axum::routing::get(file))
        .with_state(portal);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// Points a resource at the loopback portal (same path), serving `body` there.
fn serve_resource(portal: &mut Portal, base: &str, resource: &mut Value, body: Vec<u8>) {
    let url = url::Url::parse(resource["url"].as_str().unwrap()).unwrap();
    let path = url.path().to_string();
    resource["url"] = json!(format!("{base}{path}"));
    portal.files.insert(path, body);
}

fn csv_rows(label: &str, n: usize) -> Vec<u8> {
    let mut s = String::from("code;libelle;valeur\n");
    for i in 0..n {
        s.push_str(&format!("{:05};{label} {i};{},5\n", i + 1, i * 3));
    }
    s.into_bytes()
}

fn settings(dir: &std::path::Path) -> Settings {
    let mut s = Settings::from_toml_str("[ingest]\nallow_private_sources = true\n").unwrap();
    s.datasets = dir.join("datasets");
    s.storage = dir.join("storage").display().to_string();
    s
}

fn ckan_source(base: &str, rows: usize) -> HarvestSource {
    HarvestSource {
        kind: PortalKind::Ckan,
        url: base.to_string(),
        organization: None,
        query: None,
        dataset: None,
        rows,
        ingest: true,
        interval: None,
    }
}

async fn run(settings: &Settings, source: &HarvestSource) -> Report {
    let report = harvest(settings, source, &|line| eprintln!("{line}"))
        .await
        .unwrap();
    for line in report.lines() {
        eprintln!("{line}");
    }
    report
}

/// The replayed CKAN portal: EnviDat's and Satu Data's package_search pages, data.gov.uk's
/// packages, a package with a URL that is not one, a resource that is a firewall's page and one
/// that answers 404.
fn ckan_portal(base: &str) -> Option<Portal> {
    let envidat = fixture("ckan/envidat_package_search_rows2.json")?;
    let satu = fixture("ckan/satudata-id_package_search_rows2.json")?;
    let ford = fixture("ckan/data-gov-uk_package_show_ford-crossings_csv.json")?;
    let empty = fixture("ckan/data-gov-uk_package_show_aggregates-levy_no-resources.json")?;
    let status = fixture("ckan/dados-sc-gov-br_status_show.json")?;
    let mut portal = Portal {
        status_show: serde_json::to_vec(&status).unwrap(),
        ..Portal::default()
    };
    let mut packages: Vec<Value> = envidat["result"]["results"].as_array().unwrap().clone();
    packages.extend(satu["result"]["results"].as_array().unwrap().clone());
    packages.push(ford["result"].clone());
    packages.push(empty["result"].clone());
    for (p, package) in packages.iter_mut().enumerate() {
        for (r, res) in package["resources"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let url = res["url"].as_str().unwrap_or("").to_lowercase();
            let body = if url.ends_with(".csv") || res["format"] == "CSV" {
                csv_rows(&format!("p{p}r{r}"), 5 + r)
            } else if url.ends_with(".xlsx") {
                xlsx(&[("AKI", figures("Angka Kematian Ibu", 2))], &["A1:D1"])
            } else {
                b"<html>not a table</html>".to_vec()
            };
            serve_resource(&mut portal, base, res, body);
        }
    }
    packages.push(json!({
        "id": "ffff0000-broken", "name": "broken-links", "title": "Broken links",
        "metadata_modified": "2026-01-01T00:00:00",
        "resources": [
            {"id": "b1000000-0000", "name": "no url", "format": "CSV", "url": "a file on the intranet"},
            {"id": "b2000000-0000", "name": "missing", "format": "CSV", "url": format!("{base}/gone/missing.csv")},
            {"id": "b3000000-0000", "name": "firewall", "format": "CSV", "url": format!("{base}/waf/rejected.csv")},
        ]
    }));
    portal.files.insert(
        "/waf/rejected.csv".into(),
        b"<html><head><title>Request Rejected</title></head><body>The requested URL was rejected.</body></html>".to_vec(),
    );
    // Leeds's upload is behind a `/download/` link that redirects to the file.
    let ford = packages
        .iter_mut()
        .find(|p| p["name"] == "ford-crossings")
        .unwrap();
    let file = ford["resources"][0]["url"].as_str().unwrap().to_string();
    let path = url::Url::parse(&file).unwrap().path().to_string();
    portal
        .redirects
        .insert("/dataset/ford-crossings/download/ford.csv".into(), path);
    ford["resources"][0]["url"] = json!(format!("{base}/dataset/ford-crossings/download/ford.csv"));
    packages.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    portal.packages = packages;
    Some(portal)
}

/// The replayed CKAN portal, started.
async fn ckan_replayed() -> Option<(Shared, String)> {
    let shared: Shared = Arc::default();
    let base = start(Arc::clone(&shared)).await;
    let portal = ckan_portal(&base)?;
    *shared.lock().unwrap() = portal;
    Some((shared, base))
}

/// Leeds publishes a second file in its ford-crossings package (7 rows).
fn publish_in_leeds(portal: &mut Portal, base: &str) {
    let leeds = portal
        .packages
        .iter_mut()
        .find(|x| x["name"] == "ford-crossings")
        .unwrap();
    leeds["metadata_modified"] = json!("2026-11-21T08:00:00");
    let mut added = leeds["resources"][0].clone();
    added["id"] = json!("c0ffee00-0000-4000-8000-000000000001");
    added["name"] = json!("Ford crossings 2026");
    added["url"] = json!(format!("{base}/leeds/ford-crossings-2026.csv"));
    leeds["resources"].as_array_mut().unwrap().push(added);
    portal
        .files
        .insert("/leeds/ford-crossings-2026.csv".into(), csv_rows("2026", 7));
}

fn ids_of(report: &Report) -> (Vec<String>, Vec<String>, Vec<String>) {
    (
        report.new.clone(),
        report.changed.clone(),
        report.retired.clone(),
    )
}

#[tokio::test]
async fn a_ckan_portal_is_harvested_then_kept_up_with() {
    let Some((shared, base)) = ckan_replayed().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    // Three packages a page: paging is exercised.
    let source = ckan_source(&format!("{base}/"), 3);

    // 1. The first harvest.
    let first = run(&settings, &source).await;
    assert_eq!(first.packages_seen, 7);
    assert_eq!(first.packages_unchanged, 0);
    // EnviDat's 4 CSVs, Satu Data's XLSX, Leeds's CSV, and the broken package's two URLs.
    assert_eq!(first.resources_kept, 8, "{first:#?}");
    assert_eq!(first.new.len(), 8);
    assert!(first.listing_errors.is_empty());
    let reasons: Vec<&str> = first.skipped.iter().map(|s| s.reason.as_str()).collect();
    assert!(
        reasons.contains(&"format `zip` is not a table"),
        "{reasons:?}"
    );
    assert!(reasons.contains(&"the package has no resources"));
    assert!(reasons.contains(&"format `html` is not a table"));
    assert!(
        first
            .skipped
            .iter()
            .any(|s| s.resource == "no url" && s.reason.contains("not an http(s) URL"))
    );
    // The two bad downloads are reported by name; the rest is published.
    assert_eq!(first.failed.len(), 2, "{:?}", first.failed);
    let failed: HashMap<&str, &str> = first
        .failed
        .iter()
        .map(|(id, why)| (id.as_str(), why.as_str()))
        .collect();
    assert!(failed["broken-links-b2000000"].contains("404"));
    assert!(failed["broken-links-b3000000"].contains("an HTML page titled \"Request Rejected\""));
    assert_eq!(first.ingested, 6);

    // The dataset files carry their provenance; the server serves what was harvested.
    let datasets = settings.datasets.clone();
    let ford_id = "ford-crossings-7be62a98";
    let text = std::fs::read_to_string(datasets.join(format!("{ford_id}.toml"))).unwrap();
    assert!(
        text.contains("[provenance]") && text.contains("kind = \"ckan\""),
        "{text}"
    );
    assert!(text.contains("resource_id = \"7be62a98-c4c1-4c7e-9bcd-a6a2202e1228\""));
    let app = app_over(dir.path()).await;
    let d = app.get(&format!("/api/datasets/{ford_id}")).await.json();
    assert_eq!(d["rows"], 5);
    assert!(d["title"].as_str().unwrap().starts_with("Ford"), "{d}");
    let rows = app
        .rows("/api/resources/7be62a98-c4c1-4c7e-9bcd-a6a2202e1228/data/?code__exact=00002")
        .await;
    assert_eq!(rows[0]["valeur"], 3.5);
    let aki = app
        .rows("/api/datasets/angka-kematian-ibu-aki14-dca96dfb/data?kode__sort=asc")
        .await;
    assert_eq!((aki.len(), aki[0]["kode"].clone()), (4, json!("0101")));

    // 2. The portal changes: in EnviDat's CSV package one resource is updated and another
    // removed; Leeds's package gains a resource.
    let (changed_rid, removed_rid) = {
        let mut p = shared.lock().unwrap();
        let envidat = p
            .packages
            .iter_mut()
            .find(|x| x["id"] == "19c270cb-d470-4bf6-b527-90c1b44040e8")
            .unwrap();
        envidat["metadata_modified"] = json!("2026-11-20T10:00:00.000000");
        let resources = envidat["resources"].as_array_mut().unwrap();
        let removed = resources.remove(3);
        resources[0]["last_modified"] = json!("2026-11-20T09:59:00");
        let changed = resources[0].clone();
        let path = url::Url::parse(changed["url"].as_str().unwrap())
            .unwrap()
            .path()
            .to_string();
        publish_in_leeds(&mut p, &base);
        p.files.insert(path, csv_rows("updated", 9));
        (
            changed["id"].as_str().unwrap()[..8].to_string(),
            removed["id"].as_str().unwrap()[..8].to_string(),
        )
    };
    let envidat_name = "dataset-for-canopy-scale-vpd-reduction-in-a-mature-forest-al";
    let second = run(&settings, &source).await;
    assert_eq!(
        ids_of(&second),
        (
            vec!["ford-crossings-c0ffee00".to_string()],
            vec![format!("{envidat_name}-{changed_rid}")],
            vec![format!("{envidat_name}-{removed_rid}")],
        ),
        "{second:#?}"
    );
    // Only the two edited packages were read again.
    assert_eq!(second.packages_seen, 7);
    assert_eq!(second.packages_unchanged, 5);
    // The broken package's downloads are tried again, and fail again.
    assert_eq!(second.failed.len(), 2);
    let app = app_over(dir.path()).await;
    assert_eq!(
        app.total(&format!("/api/datasets/{envidat_name}-{changed_rid}/data"))
            .await,
        9
    );
    assert_eq!(
        app.total("/api/datasets/ford-crossings-c0ffee00/data")
            .await,
        7
    );
    // The retired dataset is gone from the catalog and its data, but its version stays readable
    // by pinned URL.
    let retired = format!("{envidat_name}-{removed_rid}");
    let d = app.get(&format!("/api/datasets/{retired}")).await.json();
    let version = d["version"].as_str().unwrap().to_string();
    let detail = app
        .get(&format!("/api/datasets/{retired}/data"))
        .await
        .problem(410);
    assert!(detail.contains("retired"), "{detail}");
    assert_eq!(
        app.total(&format!("/api/datasets/{retired}@{version}/data"))
            .await,
        5 + 3
    );
    let listed = app.get("/api/datasets?page_size=100").await.json();
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&retired.as_str()) && ids.contains(&"ford-crossings-c0ffee00"));

    // 3. A listing page breaks (a firewall's page) while a package disappears: the harvest
    // says so and retires nothing, since the package may only be unread.
    {
        let mut p = shared.lock().unwrap();
        p.packages.retain(|x| x["name"] != "ford-crossings");
        p.broken_start = Some((3, Broken::Html));
    }
    let third = run(&settings, &source).await;
    assert_eq!(third.listing_errors.len(), 1, "{third:#?}");
    assert!(third.listing_errors[0].contains("an HTML page"));
    assert!(third.retired.is_empty());
    // Once the listing is whole again, the vanished package's datasets are retired.
    shared.lock().unwrap().broken_start = None;
    let fourth = run(&settings, &source).await;
    let mut retired = fourth.retired.clone();
    retired.sort();
    assert_eq!(
        retired,
        vec!["ford-crossings-7be62a98", "ford-crossings-c0ffee00"]
    );
}

#[tokio::test]
async fn a_failing_portal_is_reported_and_nothing_served_is_lost() {
    let Some((shared, base)) = ckan_replayed().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let source = ckan_source(&base, 3);
    let first = run(&settings, &source).await;
    assert_eq!(first.ingested, 6);
    let files = |d: &std::path::Path| std::fs::read_dir(d.join("datasets")).unwrap().count();
    let before = files(dir.path());
    // The first page fails: nothing can be listed, the harvest fails and says why.
    shared.lock().unwrap().broken_start = Some((0, Broken::Status500));
    let e = harvest(&settings, &source, &|_| {}).await.unwrap_err();
    assert!(e.to_string().contains("500"), "{e}");
    // A page cut short: reported, the rest read, nothing retired.
    shared.lock().unwrap().broken_start = Some((3, Broken::Truncated));
    let cut = run(&settings, &source).await;
    assert!(cut.listing_errors[0].contains("truncated JSON"), "{cut:?}");
    assert!(cut.retired.is_empty() && cut.packages_seen == 4);
    // A URL where no CKAN answers `status_show`: said so, with what each attempt got.
    let broken = HarvestSource {
        url: format!("{base}/elsewhere"),
        ..source.clone()
    };
    let e = harvest(&settings, &broken, &|_| {}).await.unwrap_err();
    assert!(e.to_string().contains("not a CKAN portal"), "{e}");
    // Every dataset is still there and served.
    assert_eq!(files(dir.path()), before);
    let app = app_over(dir.path()).await;
    assert_eq!(
        app.total("/api/datasets/ford-crossings-7be62a98/data")
            .await,
        5
    );
}

/// A server over a harvest's dataset files and storage, as `serve` would start on them.
async fn app_over(dir: &std::path::Path) -> TestApp {
    let storage = dir.join("storage").display().to_string();
    TestApp::with_settings(
        &dir.join("datasets"),
        &format!("storage = '{storage}'\n[ingest]\nallow_private_sources = true\n"),
    )
    .await
}

#[tokio::test]
async fn a_udata_organisation_is_harvested_with_its_resource_uuids() {
    let shared: Shared = Arc::default();
    let base = start(Arc::clone(&shared)).await;
    let Some(list) = fixture(
        "udata/www-data-gouv-fr-2017_organization_angers-loire-metropole_datasets_plain-list.json",
    ) else {
        return;
    };
    {
        let mut p = shared.lock().unwrap();
        let mut datasets = list.as_array().unwrap().clone();
        for (d, dataset) in datasets.iter_mut().enumerate() {
            for (r, res) in dataset["resources"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .enumerate()
            {
                let body = csv_rows(&format!("d{d}r{r}"), 3 + r);
                serve_resource(&mut p, &base, res, body);
            }
        }
        p.packages = datasets;
    }
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let source = HarvestSource {
        kind: PortalKind::Udata,
        organization: Some("angers-loire-metropole".into()),
        ..ckan_source(&base, 5)
    };
    let report = run(&settings, &source).await;
    // 18 datasets over pages of 5, followed by `next_page`.
    assert_eq!(report.packages_seen, 18);
    assert!(report.listing_errors.is_empty());
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    // Its five CSVs; JSON, zipped shapefiles and KML are not tables.
    assert_eq!(report.resources_kept, 5, "{report:#?}");
    assert_eq!(report.new.len(), 5);
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.reason == "format `json` is not a table")
    );
    // The nomenclature of waste, by its data.gouv.fr resource UUID, as the tabular API answers.
    let app = app_over(dir.path()).await;
    let r = app
        .get("/api/resources/c2a8cc5d-bc6b-43e2-9ae8-51d6ae2f3b3a/data/?page_size=2")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["meta"]["total"], 3);
    assert_eq!(v["data"][0]["code"], "00001");
    let d = app
        .get("/api/datasets/nomenclature-des-dechets-c2a8cc5d")
        .await
        .json();
    assert_eq!(d["producer"], "Angers Loire Métropole");
    assert_eq!(d["licence"], "odc-odbl");
    assert!(
        d["keywords"]
            .as_array()
            .unwrap()
            .contains(&json!("dechets"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_harvests_the_portals_of_its_configuration_on_their_interval() {
    let Some((shared, base)) = ckan_replayed().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("qanat.toml");
    std::fs::write(
        &config,
        format!(
            "datasets = '{0}/datasets'\nstorage = '{0}/storage'\n[ingest]\nallow_private_sources = true\nwatch_ms = 200\n\n[[harvest]]\nkind = 'ckan'\nurl = '{base}'\nrows = 3\ninterval = '1s'\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let qanat = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_qanat"));
        c.env_remove("QANAT_DATASETS")
            .env_remove("QANAT_STORAGE")
            .arg("--config")
            .arg(&config);
        c
    };
    let _server = Server(
        qanat()
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let total = |path: String| {
        let client = client.clone();
        let url = format!("http://127.0.0.1:{port}{path}");
        async move {
            let r = client.get(url).send().await.ok()?;
            let v: Value = serde_json::from_str(&r.text().await.ok()?).ok()?;
            v["meta"]["total"].as_u64()
        }
    };
    let wait_for = |path: &'static str, rows: u64| {
        let total = &total;
        async move {
            let started = std::time::Instant::now();
            while total(path.to_string()).await != Some(rows) {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(60),
                    "{path} never had {rows} rows"
                );
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };
    // The first harvest runs at start: the portal's resources are served by their ids.
    wait_for(
        "/api/resources/7be62a98-c4c1-4c7e-9bcd-a6a2202e1228/data/",
        5,
    )
    .await;
    // A resource published on the portal is served after the next harvest.
    publish_in_leeds(&mut shared.lock().unwrap(), &base);
    wait_for("/api/datasets/ford-crossings-c0ffee00/data", 7).await;

    // `qanat harvest` over the same files finds everything up to date, and says so as JSON.
    let out = qanat()
        .args(["harvest", "ckan", &base, "--rows", "3", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["packages_seen"], 7);
    assert_eq!(report["new"], json!([]));
    assert_eq!(report["resources_kept"], 9);
    assert_eq!(report["failed"].as_array().unwrap().len(), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("7 packages seen"), "{stderr}");
}

#[tokio::test]
async fn the_admin_route_harvests_the_configured_portals_now() {
    use sha2::{Digest, Sha256};
    let Some((_shared, base)) = ckan_replayed().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("datasets")).unwrap();
    let keys = dir.path().join("admin.keys");
    std::fs::write(&keys, hex::encode(Sha256::digest(b"harvest-key"))).unwrap();
    let mut settings = Settings::from_toml_str(&format!(
        "[ingest]\nallow_private_sources = true\n[server]\nadmin_keys = '{}'\n\n[[harvest]]\nkind = 'ckan'\nurl = '{base}'\nrows = 3\ninterval = '1d'\n",
        keys.display()
    ))
    .unwrap();
    settings.datasets = dir.path().join("datasets");
    settings.storage = dir.path().join("storage").display().to_string();
    let state = qanat::app::watched_state(settings, &[]).unwrap();
    let app = qanat::http::service(state);
    let post = |key: &'static str| {
        let app = app.clone();
        async move {
            let auth = format!("Bearer {key}");
            crate::support::send(
                &app,
                "POST",
                "/api/harvest",
                &[("authorization", &auth)],
                None,
                axum::body::Body::empty(),
            )
            .await
        }
    };
    assert_eq!(post("not-the-key").await.status, 403);
    let r = post("harvest-key").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["portals"][0]["portal"], base.as_str(), "{v}");
    assert_eq!(v["portals"][0]["ok"], true, "{v}");
    let summary = v["portals"][0]["report"][0].as_str().unwrap();
    assert!(summary.starts_with(&format!("harvest {base}")), "{summary}");
    // What the harvest found is served at once.
    let served = v["datasets"].as_u64().unwrap();
    assert!(served >= 5, "{v}");
    let list = crate::support::request(&app, "/api/datasets?page_size=100", &[]).await;
    assert_eq!(list.json()["meta"]["total"].as_u64(), Some(served));
}
