//! Parquet and Arrow IPC downloads: the same rows as the text exports, with the columns' types,
//! by extension or by `Accept`, a valid file even when empty.

use crate::support::{TestApp, sample_records};

const QUERY: &str = "departement__in=2A,2B&population_municipale__greater=2000\
&population_municipale__sort=desc&columns=code_insee,nom_de_la_commune,population_municipale,latitude";

#[tokio::test]
async fn binary_downloads_hold_the_rows_of_the_query_with_their_types() {
    let app = TestApp::sample().await;
    let ndjson = app
        .get(&format!("/api/datasets/communes/data.ndjson?{QUERY}"))
        .await
        .text();
    // The reference: Corsican communes of more than 2,000 inhabitants, from the published file.
    let mut expected: Vec<(i64, String)> = sample_records("communes.csv", b';')
        .iter()
        .filter(|r| matches!(&r[2], "2A" | "2B"))
        .filter_map(|r| Some((r[3].parse::<i64>().ok()?, r[0].to_string())))
        .filter(|(p, _)| *p >= 2000)
        .collect();
    expected.sort_by_key(|a| std::cmp::Reverse(a.0));
    assert_eq!(ndjson.lines().count(), expected.len());
    assert!(expected.len() > 10, "{} communes", expected.len());
    for (ext, media) in [
        ("parquet", "application/vnd.apache.parquet"),
        ("arrow", "application/vnd.apache.arrow.stream"),
    ] {
        let r = app
            .get(&format!("/api/datasets/communes/data.{ext}?{QUERY}"))
            .await;
        assert_eq!(r.status, 200, "{ext}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.headers["content-type"], media);
        assert_eq!(
            r.headers["content-disposition"],
            format!("attachment; filename=\"communes.{ext}\"")
        );
        assert_eq!(r.decoded(), ndjson, "{ext}");
        let first: serde_json::Value =
            serde_json::from_str(r.decoded().lines().next().unwrap()).unwrap();
        assert_eq!(first["code_insee"], expected[0].1);
        assert_eq!(first["population_municipale"], expected[0].0);

        // By `Accept` on the page route: the same file, and the answer varies by it.
        let by_accept = app
            .get_with(
                &format!("/api/datasets/communes/data?{QUERY}"),
                &[("accept", media)],
            )
            .await;
        assert_eq!(by_accept.headers["content-type"], media);
        assert_eq!(by_accept.headers["vary"], "accept");
        assert_eq!(by_accept.body, r.body, "{ext} by Accept");
        // The page itself is still JSON afterwards (the replay keys by `Accept` too).
        let page = app
            .get(&format!("/api/datasets/communes/data?{QUERY}"))
            .await;
        assert_eq!(page.headers["content-type"], "application/json");
        assert_eq!(
            page.json()["meta"]["total"].as_u64(),
            Some(expected.len() as u64)
        );
    }
}

#[tokio::test]
async fn a_parquet_file_keeps_types_and_an_empty_result_is_still_a_file() {
    let app = TestApp::sample().await;
    let r = app
        .get("/api/datasets/departements/data.parquet?code__in=01,2A")
        .await;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(r.body.clone()),
    )
    .unwrap();
    let schema = reader.schema().clone();
    let code = schema.field_with_name("code").unwrap();
    assert_eq!(code.data_type(), &arrow::datatypes::DataType::Utf8);
    let region = schema.field_with_name("region_id").unwrap();
    assert_eq!(region.data_type(), &arrow::datatypes::DataType::Int64);
    assert_eq!(r.decoded().lines().count(), 2);
    assert!(
        r.decoded()
            .starts_with("{\"id\":0,\"code\":\"01\",\"nom\":\"Ain\"")
    );

    let empty = app
        .get("/api/datasets/departements/data.parquet?code__exact=ZZ&columns=code,nom")
        .await;
    assert_eq!(empty.status, 200);
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(empty.body),
    )
    .unwrap();
    assert_eq!(reader.metadata().file_metadata().num_rows(), 0);
    let names: Vec<&String> = reader.schema().fields().iter().map(|f| f.name()).collect();
    assert_eq!(names, ["code", "nom"]);

    // Bad input is still a problem, not a broken file.
    let bad = app
        .get("/api/datasets/departements/data.arrow?nope__exact=1")
        .await;
    assert!(bad.problem(400).contains("nope"));
}
