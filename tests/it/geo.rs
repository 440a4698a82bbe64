//! Points near a place, points in a box, GeoJSON: checked against the sample cities of Morocco
//! (`datasets/villes-maroc.csv`) with distances computed here from the published file.

use std::collections::BTreeSet;

use crate::support::{TestApp, sample_records};

/// A city of the published file: name, latitude, longitude, population.
struct City {
    name: String,
    lat: f64,
    lon: f64,
    population: i64,
}

fn cities() -> Vec<City> {
    sample_records("villes-maroc.csv", b',')
        .iter()
        .map(|r| City {
            name: r[1].to_string(),
            lat: r[3].parse().unwrap(),
            lon: r[4].parse().unwrap(),
            population: r[5].parse().unwrap(),
        })
        .collect()
}

/// Haversine on the mean Earth radius, written again here from the formula.
fn metres(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (a, b) = (lat1.to_radians(), lat2.to_radians());
    let h = ((b - a) / 2.0).sin().powi(2)
        + a.cos() * b.cos() * ((lon2 - lon1).to_radians() / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * h.sqrt().asin()
}

/// Every row of a query, following `links.next`.
async fn walk(app: &TestApp, uri: &str) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    let mut next = Some(uri.to_string());
    while let Some(uri) = next {
        let r = app.get(&uri).await;
        assert_eq!(r.status, 200, "{uri}: {}", r.text());
        let page = r.json();
        rows.extend(page["data"].as_array().unwrap().iter().cloned());
        next = page["links"]["next"].as_str().map(|n| {
            n.split_once("/api/")
                .map(|(_, p)| format!("/api/{p}"))
                .unwrap()
        });
    }
    rows
}

#[tokio::test]
async fn coordinates_are_detected_and_recorded_in_the_schema() {
    let app = TestApp::sample().await;
    let schema = app.get("/api/datasets/villes-maroc").await.json()["schema"].clone();
    let role = |name: &str| {
        schema
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["geo"]
            .clone()
    };
    assert_eq!(role("latitude"), "latitude");
    assert_eq!(role("longitude"), "longitude");
    assert!(role("population").is_null());
    // Latitude and Longitude with decimal commas, in a Latin-1 file.
    let communes = app.get("/api/datasets/communes").await.json()["schema"].clone();
    let marked: Vec<&str> = communes
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["geo"].is_null())
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(marked, ["latitude", "longitude"]);
    let r = app
        .get("/api/datasets/departements/data?near=34,-6,1000")
        .await;
    assert!(r.problem(400).contains("no coordinates"), "{}", r.text());
}

#[tokio::test]
async fn near_orders_by_distance_pages_by_cursor_and_combines_with_filters() {
    let app = TestApp::sample().await;
    // Rabat's Bab el Had, 60 km around.
    let (lat, lon, radius) = (34.0209, -6.8416, 60_000.0);
    let mut expected: Vec<(f64, String)> = cities()
        .iter()
        .map(|c| (metres(lat, lon, c.lat, c.lon), c.name.clone()))
        .filter(|(d, _)| *d <= radius)
        .collect();
    expected.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(expected.len() > 10, "{}", expected.len());
    let uri = format!(
        "/api/datasets/villes-maroc/data?near={lat},{lon},{radius}&columns=nom&page_size=4"
    );
    let rows = walk(&app, &uri).await;
    let got: Vec<(f64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["distance_m"].as_f64().unwrap(),
                r["nom"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g.1, e.1);
        assert!((g.0 - e.0).abs() <= 0.01, "{g:?} {e:?}");
    }
    assert_eq!(rows[0].as_object().unwrap().len(), 2, "nom and distance_m");

    // With a filter and another order: the cities of more than 100,000 inhabitants in range,
    // largest first.
    let mut big: Vec<(i64, String)> = cities()
        .iter()
        .filter(|c| c.population > 100_000 && metres(lat, lon, c.lat, c.lon) <= radius)
        .map(|c| (c.population, c.name.clone()))
        .collect();
    big.sort_by_key(|b| std::cmp::Reverse(b.0));
    let uri = format!(
        "/api/datasets/villes-maroc/data?near={lat},{lon},{radius}&population__greater=100001&population__sort=desc&page_size=2"
    );
    let rows = walk(&app, &uri).await;
    let names: Vec<&str> = rows.iter().map(|r| r["nom"].as_str().unwrap()).collect();
    let want: Vec<&str> = big.iter().map(|b| b.1.as_str()).collect();
    assert_eq!(names, want);
    assert!(
        rows.iter()
            .all(|r| r["distance_m"].as_f64().unwrap() <= radius)
    );
    // The farthest first, by the distance's own sort.
    let far = app
        .rows(&format!("/api/datasets/villes-maroc/data?near={lat},{lon},{radius}&distance_m__sort=desc&page_size=1"))
        .await;
    assert_eq!(far[0]["nom"], expected.last().unwrap().1.as_str());
    // The total, and an aggregation over the rows in range.
    let total = app
        .total(&format!(
            "/api/datasets/villes-maroc/data?near={lat},{lon},{radius}"
        ))
        .await;
    assert_eq!(total, expected.len() as u64);
}

#[tokio::test]
async fn bbox_keeps_the_rows_in_the_box_in_file_order() {
    let app = TestApp::sample().await;
    // Greater Casablanca.
    let (w, s, e, n) = (-7.75, 33.40, -7.35, 33.70);
    let expected: Vec<String> = cities()
        .iter()
        .filter(|c| c.lon >= w && c.lon <= e && c.lat >= s && c.lat <= n)
        .map(|c| c.name.clone())
        .collect();
    assert!(expected.len() >= 4, "{expected:?}");
    let uri = format!("/api/datasets/villes-maroc/data?bbox={w},{s},{e},{n}&page_size=2");
    let rows = walk(&app, &uri).await;
    let names: Vec<String> = rows
        .iter()
        .map(|r| r["nom"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, expected);
    assert!(rows[0].get("distance_m").is_none());
    // A box and a point together: both hold.
    let both = app
        .total(&format!(
            "/api/datasets/villes-maroc/data?bbox={w},{s},{e},{n}&near=33.5883,-7.6114,15000"
        ))
        .await;
    let want = cities()
        .iter()
        .filter(|c| c.lon >= w && c.lon <= e && c.lat >= s && c.lat <= n)
        .filter(|c| metres(33.5883, -7.6114, c.lat, c.lon) <= 15_000.0)
        .count();
    assert_eq!(both, want as u64);
    // Facets count the rows in the box.
    let faceted = app
        .get(&format!(
            "/api/datasets/villes-maroc/data?bbox={w},{s},{e},{n}&facets=region"
        ))
        .await
        .json();
    let counted: u64 = faceted["meta"]["facets"]["region"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, expected.len() as u64);
    // The spatial index was written beside the Parquet.
    let version = app.get("/api/datasets/villes-maroc").await.json()["version"].clone();
    let dir = app
        .storage_dir()
        .join("villes-maroc")
        .join(version.as_str().unwrap());
    assert!(dir.join("geo.bin").is_file());
}

#[tokio::test]
async fn geojson_holds_each_row_as_a_point_feature() {
    let app = TestApp::sample().await;
    let uri = "/api/datasets/villes-maroc/data.geojson?population__greater=500000";
    let r = app.get(uri).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "application/geo+json");
    let doc = r.json();
    assert_eq!(doc["type"], "FeatureCollection");
    let features = doc["features"].as_array().unwrap();
    let big: Vec<City> = cities()
        .into_iter()
        .filter(|c| c.population >= 500_000)
        .collect();
    assert_eq!(features.len(), big.len());
    for (f, c) in features.iter().zip(&big) {
        assert_eq!(f["type"], "Feature");
        assert_eq!(f["geometry"]["type"], "Point");
        assert_eq!(
            f["geometry"]["coordinates"],
            serde_json::json!([c.lon, c.lat])
        );
        assert_eq!(f["properties"]["nom"], c.name.as_str());
        assert!(f["properties"].get("latitude").is_none());
    }
    let names: BTreeSet<&str> = features
        .iter()
        .map(|f| f["properties"]["nom"].as_str().unwrap())
        .collect();
    assert!(
        names.contains("Casablanca") && names.contains("Fes"),
        "{names:?}"
    );
    // By Accept, `columns` still reads the points; an empty result is an empty collection.
    let by_accept = app
        .get_with(
            "/api/datasets/villes-maroc/data?columns=nom&near=33.5883,-7.6114,2000",
            &[("accept", "application/geo+json")],
        )
        .await
        .json();
    let one = &by_accept["features"][0];
    assert_eq!(one["properties"]["nom"], "Casablanca");
    assert!(one["properties"]["distance_m"].as_f64().unwrap() < 2000.0);
    assert_eq!(one["geometry"]["coordinates"][1], 33.58831);
    let empty = app
        .get("/api/datasets/villes-maroc/data.geojson?population__greater=99999999")
        .await
        .json();
    assert_eq!(
        empty,
        serde_json::json!({"type": "FeatureCollection", "features": []})
    );
    let r = app.get("/api/datasets/departements/data.geojson").await;
    assert!(r.problem(400).contains("no coordinates"), "{}", r.text());
}

#[tokio::test]
async fn bad_points_and_boxes_say_what_is_wrong() {
    let app = TestApp::sample().await;
    let base = "/api/datasets/villes-maroc/data";
    for (q, says) in [
        ("near=200,-7,1000", "latitude 200 is out of range"),
        ("near=33,-7,-5", "more than 0"),
        ("near=33,-200,10", "longitude -200 is out of range"),
        ("near=33,-7", "3 numbers"),
        ("bbox=-7.5,33.7,-7.7,33.5", "minimum is above the maximum"),
        ("bbox=-7.5,33.7", "4 numbers"),
        ("bbox=-7.7,91,-7.5,92", "latitude 91 is out of range"),
        ("near=33,-7,10&near=34,-7,10", "given twice"),
    ] {
        let r = app.get(&format!("{base}?{q}")).await;
        assert!(r.problem(400).contains(says), "{q}: {}", r.text());
    }
}
