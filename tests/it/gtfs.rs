//! GTFS feeds and zips of CSV files as one source: the real feeds of `../shared/data/transport`
//! (NYC subway, SNCF TGV, the community ONCF feed) served file by file with the reference's
//! types, versioned as one, and their timetables (departures, arrivals, a route's stops).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::corpus::corpus;
use crate::support::TestApp;

/// A zip of every file of a directory of the corpus, written to `out`.
fn zip_dir(dir: &Path, out: &Path, leave_out: &[&str]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".txt") && !leave_out.contains(&n.as_str()))
        .collect();
    names.sort();
    for name in names {
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file(name.as_str(), options).unwrap();
        zip.write_all(&std::fs::read(dir.join(&name)).unwrap())
            .unwrap();
    }
    zip.finish().unwrap();
}

/// A catalog of one feed `id` whose source is `zip`.
async fn feed_app(id: &str, zip: &Path, extra: &str) -> TestApp {
    let toml = format!(
        "title = \"{id}\"\nsource = \"{}\"\nlicence = \"ODbL-1.0\"\n{extra}",
        zip.display()
    );
    TestApp::with_files(&[(&format!("{id}.toml"), toml.as_bytes())], "").await
}

fn records(path: &Path) -> Vec<csv::StringRecord> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader.records().map(|r| r.unwrap()).collect()
}

fn transport(corpus: &Path, feed: &str) -> PathBuf {
    corpus.join("transport").join(feed)
}

#[tokio::test]
async fn a_gtfs_feed_is_served_file_by_file_with_the_reference_types() {
    let Some(corpus) = corpus() else { return };
    let dir = transport(&corpus, "gtfs_us_nyc_subway_2024");
    let app = feed_app("nyc", &dir.join("nyc_subway.zip"), "").await;
    let list = app.get("/api/datasets?page_size=100").await.json();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "nyc-agency",
            "nyc-calendar",
            "nyc-calendar-dates",
            "nyc-routes",
            "nyc-shapes",
            "nyc-stop-times",
            "nyc-stops",
            "nyc-transfers",
            "nyc-trips"
        ]
    );
    // Every row of every file, counted from the published files themselves.
    let mut versions = std::collections::BTreeSet::new();
    for (file, id) in [
        ("stop_times.txt", "nyc-stop-times"),
        ("trips.txt", "nyc-trips"),
        ("stops.txt", "nyc-stops"),
        ("calendar_dates.txt", "nyc-calendar-dates"),
    ] {
        let meta = app.get(&format!("/api/datasets/{id}")).await.json();
        assert_eq!(meta["rows"], records(&dir.join(file)).len(), "{id}");
        versions.insert(meta["version"].as_str().unwrap().to_string());
    }
    assert_eq!(
        versions.len(),
        1,
        "one version for the whole feed: {versions:?}"
    );

    let schema = app.get("/api/datasets/nyc-stop-times").await.json()["schema"].clone();
    let kind = |name: &str| {
        schema
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["type"].as_str().unwrap().to_string())
    };
    assert_eq!(kind("trip_id").as_deref(), Some("string"));
    assert_eq!(kind("arrival_time").as_deref(), Some("string"));
    assert_eq!(kind("arrival_seconds").as_deref(), Some("integer"));
    assert_eq!(kind("pickup_type").as_deref(), Some("integer"));
    let calendar = app.get("/api/datasets/nyc-calendar").await.json();
    assert!(
        calendar["schema"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "start_date" && c["type"] == "date")
    );
    let routes = app.get("/api/datasets/nyc-routes").await.json();
    let route_type = routes["schema"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "route_type")
        .unwrap()
        .clone();
    assert!(
        route_type["description"]
            .as_str()
            .unwrap()
            .contains("1 subway")
    );

    // Times past midnight, kept as published and as seconds that sort and filter right.
    let stop_times = records(&dir.join("stop_times.txt"));
    let secs = |t: &str| {
        let p: Vec<u32> = t.split(':').map(|x| x.parse().unwrap()).collect();
        p[0] * 3600 + p[1] * 60 + p[2]
    };
    let past = stop_times.iter().filter(|r| secs(&r[1]) >= 86_400).count();
    assert!(past > 10_000, "{past}");
    let uri = "/api/datasets/nyc-stop-times/data?arrival_seconds__greater=86400";
    assert_eq!(app.total(uri).await, past as u64);
    let latest = stop_times.iter().map(|r| secs(&r[1])).max().unwrap();
    let top = app
        .rows("/api/datasets/nyc-stop-times/data?arrival_seconds__sort=desc&page_size=1")
        .await;
    assert_eq!(top[0]["arrival_seconds"], latest);
    let published = stop_times.iter().find(|r| secs(&r[1]) == latest).unwrap();
    assert_eq!(top[0]["arrival_time"], published[1]);
    // `YYYYMMDD` dates are dates.
    let holidays = app
        .total("/api/datasets/nyc-calendar-dates/data?date__exact=2018-09-03")
        .await;
    let expected = records(&dir.join("calendar_dates.txt"))
        .iter()
        .filter(|r| &r[1] == "20180903")
        .count();
    assert_eq!(holidays, expected as u64);
    assert!(expected > 0);

    // The feed has one pointer; its files have none of their own.
    let storage = app.storage_dir();
    assert!(storage.join("nyc").join("current.json").is_file());
    assert!(!storage.join("nyc-stops").join("current.json").exists());
}

#[tokio::test]
async fn departures_and_arrivals_follow_the_calendar_past_midnight_included() {
    let Some(corpus) = corpus() else { return };
    let dir = transport(&corpus, "gtfs_us_nyc_subway_2024");
    let app = feed_app("nyc", &dir.join("nyc_subway.zip"), "").await;
    // Van Cortlandt Park - 242 St (station 101, platforms 101N and 101S), a Monday night:
    // one more weekday train to South Ferry before midnight.
    let board = app
        .get("/api/gtfs/nyc/stops/101/departures?date=2018-07-02&after=23:50&limit=5")
        .await
        .json();
    let calls = board["data"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{board}");
    assert_eq!(
        calls[0]["trip_id"],
        "ASP18GEN-1087-Weekday-00_143250_1..S03R"
    );
    assert_eq!(calls[0]["stop_id"], "101S");
    assert_eq!(calls[0]["scheduled"], "23:52:30");
    assert_eq!(calls[0]["route_short_name"], "1");
    assert_eq!(calls[0]["route_color"], "EE352E");
    assert_eq!(calls[0]["headsign"], "South Ferry");
    assert_eq!(board["meta"]["stop_name"], "Van Cortlandt Park - 242 St");
    assert_eq!(board["meta"]["first_date"], "2018-06-24");

    // Sunday's last 1 train reaches 139S at 24:00:00: on Monday's board at midnight, as a trip
    // of the day before.
    let monday = app
        .get("/api/gtfs/nyc/stops/139/departures?date=2018-07-02&after=00:00&limit=50")
        .await
        .json();
    let sunday_trip = monday["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["trip_id"] == "ASP18GEN-1037-Sunday-00_138550_1..S03R")
        .unwrap_or_else(|| panic!("{monday}"))
        .clone();
    assert_eq!(sunday_trip["service_date"], "2018-07-01");
    assert_eq!(sunday_trip["scheduled"], "24:00:00");
    assert_eq!(sunday_trip["at"], "2018-07-02T00:00:00");
    // In time order.
    let times: Vec<&str> = monday["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // Sunday trips do not run on Monday: none of Monday's own calls is a Sunday trip.
    assert!(monday["data"].as_array().unwrap().iter().all(|c| {
        c["service_date"] == "2018-07-01" || !c["trip_id"].as_str().unwrap().contains("Sunday")
    }));

    // Labor Day (Monday 2018-09-03): calendar_dates.txt removes the weekday services and
    // adds the Sunday ones.
    let holiday = app
        .get("/api/gtfs/nyc/stops/101/departures?date=2018-09-03&after=08:00&limit=10")
        .await
        .json();
    let trips: Vec<&str> = holiday["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["trip_id"].as_str().unwrap())
        .collect();
    assert_eq!(trips.len(), 10);
    assert!(trips.iter().all(|t| t.contains("-Sunday-")), "{trips:?}");

    // Arrivals at a terminal: trips ending there, none starting there.
    let arrivals = app
        .get("/api/gtfs/nyc/stops/101/arrivals?date=2018-07-03&after=08:00&limit=5")
        .await
        .json();
    let calls = arrivals["data"].as_array().unwrap();
    assert_eq!(calls.len(), 5);
    assert!(calls.iter().all(|c| c["stop_id"] == "101N"), "{arrivals}");
}

#[tokio::test]
async fn the_stops_of_a_route_in_order() {
    let Some(corpus) = corpus() else { return };
    let dir = transport(&corpus, "gtfs_ma_oncf_community");
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("oncf.zip");
    zip_dir(&dir, &zip, &[]);
    let app = feed_app("oncf", &zip, "kind = \"gtfs\"").await;
    let r = app
        .get("/api/gtfs/oncf/routes/AL_BORAQ_TNG_CASA/stops")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["meta"]["route_short_name"], "Al Boraq");
    assert_eq!(body["meta"]["route_type"], 2);
    // The stops of the route's trips, from the published files.
    let trips: Vec<String> = records(&dir.join("trips.txt"))
        .iter()
        .filter(|t| &t[0] == "AL_BORAQ_TNG_CASA" && &t[4] == "0")
        .map(|t| t[2].to_string())
        .collect();
    let mut calls: Vec<(u32, String)> = records(&dir.join("stop_times.txt"))
        .iter()
        .filter(|c| c[0] == trips[0])
        .map(|c| (c[4].parse().unwrap(), c[3].to_string()))
        .collect();
    calls.sort();
    let direction = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["direction_id"] == 0)
        .unwrap()
        .clone();
    let served: Vec<&str> = direction["stops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stop_id"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = calls.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(served, expected);
    assert_eq!(direction["trips"], trips.len());
    assert_eq!(direction["stops"][0]["stop_name"], "Tanger-Ville");
}

#[tokio::test]
async fn french_ids_with_spaces_and_leading_zeros_stay_as_published() {
    let Some(corpus) = corpus() else { return };
    let dir = transport(&corpus, "gtfs_fr_sncf_tgv_2025");
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("tgv.zip");
    zip_dir(&dir, &zip, &[]);
    let app = feed_app("tgv", &zip, "").await;
    let expected = records(&dir.join("calendar_dates.txt"))
        .iter()
        .filter(|r| &r[0] == "000001")
        .count();
    assert!(expected > 0);
    let uri = "/api/datasets/tgv-calendar-dates/data?service_id__exact=000001";
    assert_eq!(app.total(uri).await, expected as u64);
    // A header-only file is a dataset with no rows.
    assert_eq!(
        app.get("/api/datasets/tgv-transfers").await.json()["rows"],
        0
    );
    // A stop id with a space and a colon, in the path.
    let board = app
        .get("/api/gtfs/tgv/stops/StopPoint%3AOCETGV%20INOUI-87391003/departures?date=2025-09-15&after=06:00&limit=3")
        .await;
    assert_eq!(board.status, 200, "{}", board.text());
    let calls = board.json()["data"].as_array().unwrap().clone();
    assert_eq!(calls.len(), 3);
    assert!(
        calls
            .iter()
            .all(|c| c["stop_id"] == "StopPoint:OCETGV INOUI-87391003")
    );
}

#[tokio::test]
async fn a_feed_switches_as_one_version() {
    let Some(corpus) = corpus() else { return };
    let dir = transport(&corpus, "gtfs_ma_oncf_community");
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("oncf.zip");
    zip_dir(&dir, &zip, &["shapes.txt"]);
    let app = feed_app("oncf", &zip, "").await;
    let before = app.get("/api/datasets/oncf-trips").await.json()["version"].clone();
    assert!(app.get("/api/datasets/oncf-shapes").await.status == 404);
    // A new feed with one file more: every file switches, the new one appears.
    zip_dir(&dir, &zip, &[]);
    let results = app
        .state
        .catalog
        .ingest_and_load(&["oncf-trips".into()], false)
        .await
        .unwrap();
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    let mut versions = std::collections::BTreeSet::new();
    for id in ["oncf-trips", "oncf-stops", "oncf-stop-times", "oncf-shapes"] {
        let meta = app.get(&format!("/api/datasets/{id}")).await.json();
        versions.insert(meta["version"].as_str().unwrap().to_string());
    }
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_ne!(versions.first().unwrap(), before.as_str().unwrap());
    let shapes = records(&dir.join("shapes.txt")).len() as u64;
    assert_eq!(app.total("/api/datasets/oncf-shapes/data").await, shapes);
    // The timetable follows the new version.
    let board = app
        .get("/api/gtfs/oncf/stops/KENITRA/departures?date=2025-03-03")
        .await
        .json();
    assert_eq!(board["meta"]["version"], versions.first().unwrap().as_str());
}

#[tokio::test]
async fn bad_feeds_and_bad_board_requests_say_what_is_wrong() {
    let Some(corpus) = corpus() else { return };
    let dir = transport(&corpus, "gtfs_ma_oncf_community");
    let tmp = tempfile::tempdir().unwrap();
    // A zip of CSV files that is not GTFS: each file a dataset, no timetable.
    let plain = tmp.path().join("plain.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&plain).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("villes.csv", options).unwrap();
        zip.write_all(b"ville;population\nFes;1150131\nRabat;577827\n")
            .unwrap();
        zip.start_file("notes/readme.pdf", options).unwrap();
        zip.write_all(b"%PDF-1.4").unwrap();
        zip.start_file("copie/villes.csv", options).unwrap();
        zip.write_all(b"ville;population\nOujda;494252\n").unwrap();
        zip.finish().unwrap();
    }
    let app = feed_app("plain", &plain, "").await;
    assert_eq!(app.total("/api/datasets/plain-villes/data").await, 2);
    // The same name in another folder is the same dataset: the first is served, the other said.
    let warnings = app.get("/api/datasets/plain-villes").await.json()["report"]["warnings"].clone();
    let text = warnings.to_string();
    assert!(
        text.contains("copie/villes.csv") && text.contains("readme.pdf"),
        "{text}"
    );
    let r = app
        .get("/api/gtfs/plain/stops/x/departures?date=2024-01-01")
        .await;
    assert!(r.problem(400).contains("not a GTFS feed"), "{}", r.text());
    let r = app
        .get("/api/gtfs/nope/stops/x/departures?date=2024-01-01")
        .await;
    assert!(r.problem(404).contains("no feed `nope`"), "{}", r.text());

    // Declared GTFS but not one: the ingest says what the archive holds.
    let app = feed_app("wrong", &plain, "kind = \"gtfs\"").await;
    let err = app.state.catalog.ingest_and_load(&[], true).await.unwrap();
    let text = format!("{:?}", err[0].1.as_ref().unwrap_err().to_string());
    assert!(
        text.contains("not a GTFS feed") && text.contains("villes.csv"),
        "{text}"
    );

    // A feed without calendars.
    let nocal = tmp.path().join("nocal.zip");
    zip_dir(&dir, &nocal, &["calendar.txt"]);
    let app = feed_app("nocal", &nocal, "").await;
    let results = app.state.catalog.ingest_and_load(&[], true).await.unwrap();
    let err = results[0].1.as_ref().unwrap_err().to_string();
    assert!(
        err.contains("neither calendar.txt nor calendar_dates.txt"),
        "{err}"
    );

    // Bad board requests on a good feed.
    let good = tmp.path().join("oncf.zip");
    zip_dir(&dir, &good, &[]);
    let app = feed_app("oncf", &good, "").await;
    let base = "/api/gtfs/oncf/stops";
    for (uri, status, says) in [
        (
            format!("{base}/NOWHERE/departures?date=2025-03-03"),
            404,
            "no stop `NOWHERE`",
        ),
        (
            format!("{base}/KENITRA/departures?date=2031-01-01"),
            400,
            "covers 2024-01-01 to 2025-12-31",
        ),
        (
            format!("{base}/KENITRA/departures"),
            400,
            "date is required",
        ),
        (
            format!("{base}/KENITRA/departures?date=03/03/2025"),
            400,
            "YYYY-MM-DD",
        ),
        (
            format!("{base}/KENITRA/arrivals?date=2025-03-03&after=8h"),
            400,
            "HH:MM",
        ),
        (
            format!("{base}/KENITRA/departures?date=2025-03-03&limit=0"),
            400,
            "from 1 to 1000",
        ),
        (
            format!("{base}/KENITRA/departures?date=2025-03-03&when=now"),
            400,
            "unknown parameter `when`",
        ),
        (
            "/api/gtfs/oncf/routes/NOPE/stops".to_string(),
            404,
            "no route `NOPE`",
        ),
    ] {
        let r = app.get(&uri).await;
        assert!(r.problem(status).contains(says), "{uri}: {}", r.text());
    }
}

#[tokio::test]
async fn a_feed_at_a_url_is_fetched_once_and_its_files_listed_after() {
    let Some(corpus) = corpus() else { return };
    let dir = transport(&corpus, "gtfs_ma_oncf_community");
    let tmp = tempfile::tempdir().unwrap();
    let zip = tmp.path().join("oncf.zip");
    zip_dir(&dir, &zip, &[]);
    let bytes = std::fs::read(&zip).unwrap();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&hits);
    let router = axum::Router::new().route(
        "/gtfs/oncf.zip",
        axum::routing::get(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let body = bytes.clone();
            async move { body }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let toml = format!("title = \"ONCF\"\nsource = \"http://{addr}/gtfs/oncf.zip\"\n");
    let app = TestApp::with_files(&[("oncf.toml", toml.as_bytes())], "").await;
    // Nothing was known of the remote archive before its first ingest: its files are listed now.
    let trips = records(&dir.join("trips.txt")).len() as u64;
    assert_eq!(app.total("/api/datasets/oncf-trips/data").await, trips);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let meta = app.get("/api/datasets/oncf-stops").await.json();
    assert_eq!(
        meta["source"],
        format!("http://{addr}/gtfs/oncf.zip#stops.txt")
    );
    let board = app
        .get("/api/gtfs/oncf/stops/KENITRA/departures?date=2025-03-03&limit=1")
        .await;
    assert_eq!(board.status, 200, "{}", board.text());
}

#[tokio::test]
async fn a_server_follows_a_feed_another_process_publishes() {
    let Some(corpus) = corpus() else { return };
    let dir = transport(&corpus, "gtfs_ma_oncf_community");
    let tmp = tempfile::tempdir().unwrap();
    let datasets = tmp.path().join("datasets");
    std::fs::create_dir(&datasets).unwrap();
    let zip = tmp.path().join("oncf.zip");
    zip_dir(&dir, &zip, &["shapes.txt"]);
    let toml = format!("title = \"ONCF\"\nsource = \"{}\"\n", zip.display());
    std::fs::write(datasets.join("oncf.toml"), toml).unwrap();
    let server = crate::support::build_state(tmp.path(), &datasets, "");
    server.catalog.ingest_and_load(&[], false).await.unwrap();
    assert!(server.catalog.entry("oncf-shapes").is_err());
    // `qanat ingest` in another process, over the same storage, of a feed with a file more.
    zip_dir(&dir, &zip, &[]);
    let other = crate::support::build_state(tmp.path(), &datasets, "");
    let results = other.catalog.ingest_and_load(&[], false).await.unwrap();
    let published = results[0].1.as_ref().unwrap().manifest().version.clone();
    server.catalog.watch_once().await;
    for id in ["oncf-trips", "oncf-stops", "oncf-shapes"] {
        let served = server.catalog.loaded(id).unwrap();
        assert_eq!(served.manifest.version, published, "{id}");
    }
    let shapes = records(&dir.join("shapes.txt")).len() as u64;
    assert_eq!(
        server.catalog.loaded("oncf-shapes").unwrap().manifest.rows,
        shapes
    );
}
