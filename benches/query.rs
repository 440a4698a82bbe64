//! Micro-benchmarks of the request path's parts: parsing the filter grammar, planning a query
//! with DataFusion, answering pages from resident rows and from Parquet (by position, the page
//! index and the sidecars), encoding results as JSON and CSV, and a cached page routed and
//! replayed. `cargo bench` runs them; end-to-end
//! figures against the peers come from `../shared/bench/serve`.

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use criterion::{Criterion, criterion_group, criterion_main};
use qanat::config::Limits;
use qanat::dataset::schema::{Column, ColumnType};
use qanat::query::params;

fn schema() -> Vec<Column> {
    vec![
        Column::new("trip_id", ColumnType::String),
        Column::new("stop_sequence", ColumnType::Integer),
        Column::new("stop_lat", ColumnType::Float),
        Column::new("category", ColumnType::String),
        Column::new("service_date", ColumnType::Date),
    ]
}

const QUERY: &str = "category__in=Tramway,Bus,%22Train,%20TGV%22&stop_sequence__greater=20\
&stop_sequence__strictly_less=25&stop_lat__less=34.5&service_date__greater=2030-06-11\
&trip_id__contains=CAS&stop_sequence__sort=desc&page=3&page_size=100";

fn batch(rows: usize) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("trip_id", DataType::Utf8, true),
        Field::new("stop_sequence", DataType::Int64, true),
        Field::new("stop_lat", DataType::Float64, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("CAS-T1-{i:07}-S")),
            )),
            Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|i| (i % 40) as i64),
            )),
            Arc::new(Float64Array::from_iter_values(
                (0..rows).map(|i| 33.5 + i as f64 * 1e-5),
            )),
        ],
    )
    .unwrap()
}

fn parse(c: &mut Criterion) {
    let schema = schema();
    let limits = Limits::default();
    c.bench_function("parse 8-parameter query", |b| {
        b.iter(|| params::parse(std::hint::black_box(QUERY), &schema, &limits).unwrap())
    });
    let q = params::parse(QUERY, &schema, &limits).unwrap();
    c.bench_function("canonical query string", |b| {
        b.iter(|| q.query_string(Some(3)))
    });
}

/// A server state serving one CSV, ingested into memory storage.
fn served(name: &str, text: &str) -> qanat::state::AppState {
    let defaults = qanat::config::Settings::default();
    served_with(
        name,
        text,
        defaults.resident_bytes,
        defaults.page_cache_bytes,
    )
}

/// The same, with these resident and page cache budgets (0 serves every version from Parquet;
/// 0 reads every page from the file).
fn served_with(
    name: &str,
    text: &str,
    resident_bytes: u64,
    page_cache_bytes: u64,
) -> qanat::state::AppState {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join(format!("{name}.csv"));
    std::fs::write(&csv, text).unwrap();
    let mut settings = qanat::config::Settings {
        storage: "memory://".into(),
        resident_bytes,
        page_cache_bytes,
        ..Default::default()
    };
    settings.datasets = dir.path().join("none");
    // One client asking millions of times: limited, it would be timing 429s.
    settings.server.rate_limit = 0;
    let specs = qanat::app::specs(&settings, std::slice::from_ref(&csv)).unwrap();
    let state = qanat::app::state(settings, specs).unwrap();
    rt.block_on(state.catalog.ingest_and_load(&[], false))
        .unwrap();
    state
}

fn plan(c: &mut Criterion) {
    let mut text = String::from("trip_id,stop_sequence,stop_lat,category,service_date\n");
    for i in 0..1000 {
        text.push_str(&format!(
            "CAS-{i},{},{},Tramway,2030-06-{:02}\n",
            i % 40,
            33.5 + i as f64 * 1e-3,
            i % 28 + 1
        ));
    }
    let state = served("stops", &text);
    let loaded = state.catalog.loaded("stops").unwrap();
    let q = params::parse(QUERY, &loaded.manifest.schema, &Limits::default()).unwrap();
    c.bench_function("plan and optimise a filtered page", |b| {
        b.iter(|| {
            let df = state.executor.engine().read(loaded.table.clone()).unwrap();
            let planned =
                qanat::query::plan::plan(df, &q, &loaded.manifest.schema, true, true).unwrap();
            planned.rows.into_optimized_plan().unwrap()
        })
    });
}

/// The resident path: a 200,000-row dataset held in memory, pages answered by one pass.
fn resident(c: &mut Criterion) {
    let mut text = String::from("trip_id,stop_sequence,category\n");
    let categories = ["Bus", "Tramway", "Train", "Ferry", "Metro"];
    for i in 0..200_000 {
        text.push_str(&format!("T{i:07},{},{}\n", i % 40, categories[i * 7 % 5]));
    }
    let state = served("trips", &text);
    let loaded = state.catalog.loaded("trips").unwrap();
    let resident = loaded.resident.clone().expect("held in memory");
    let schema = &loaded.manifest.schema;
    let limits = Limits::default();
    let eq = params::parse("category__exact=Tramway&page_size=100", schema, &limits).unwrap();
    c.bench_function(
        "resident page: equality on a coded column, 200k rows",
        |b| b.iter(|| resident.select(&eq, None, 0, Some(100)).unwrap()),
    );
    let range = params::parse(
        "stop_sequence__greater=20&stop_sequence__strictly_less=25&page_size=100",
        schema,
        &limits,
    )
    .unwrap();
    c.bench_function("resident page: integer range, 200k rows", |b| {
        b.iter(|| resident.select(&range, None, 0, Some(100)).unwrap())
    });
    let all = params::parse("page_size=100", schema, &limits).unwrap();
    c.bench_function("resident page after row 150,000 (cursor)", |b| {
        b.iter(|| resident.select(&all, Some(149_999), 0, Some(100)).unwrap())
    });
    c.bench_function("resident page 1,501 (offset)", |b| {
        b.iter(|| resident.select(&all, None, 150_000, Some(100)).unwrap())
    });
    // A range on one column, sorted on another: a walk along the sort column's order.
    for dir in ["asc", "desc"] {
        let sorted = params::parse(
            &format!(
                "stop_sequence__greater=20&stop_sequence__strictly_less=25&trip_id__sort={dir}&page_size=100"
            ),
            schema,
            &limits,
        )
        .unwrap();
        c.bench_function(
            &format!("resident page: range + sort {dir}, 200k rows"),
            |b| b.iter(|| resident.sorted(&sorted, 0, Some(100), |_| true).unwrap()),
        );
    }
    let groups = params::parse(
        "category__groupby&stop_sequence__sum&stop_sequence__avg",
        schema,
        &limits,
    )
    .unwrap();
    c.bench_function(
        "resident group-by: sum and average per category, 200k rows",
        |b| b.iter(|| resident.aggregate(&groups).unwrap()),
    );
}

fn encode(c: &mut Criterion) {
    let page = batch(100);
    c.bench_function("encode 100 rows as JSON", |b| {
        b.iter(|| qanat::encode::json_array(std::slice::from_ref(&page)).unwrap())
    });
    let big = batch(8192);
    c.bench_function("encode 8192 rows as CSV", |b| {
        b.iter(|| qanat::encode::csv(&big, false).unwrap())
    });
    c.bench_function("encode 8192 rows as NDJSON", |b| {
        b.iter(|| qanat::encode::ndjson(&big).unwrap())
    });
    // An export of rows in memory: every eighth row of a table, written by index.
    let table = batch(65_536);
    let rows: Vec<u32> = (0..65_536).step_by(8).collect();
    c.bench_function(
        "encode 8192 rows of a 65,536-row table by index as CSV",
        |b| {
            b.iter(|| {
                let mut w = qanat::encode::BodyWriter::new(qanat::encode::Format::Csv, None);
                w.rows(&table, &rows).unwrap()
            })
        },
    );
}

/// The Parquet path: a 250,000-row table beyond the resident budget, its pages read by position,
/// through the page index, the posting lists and the order sidecar.
fn parquet(c: &mut Criterion) {
    let mut text = String::from("id,commune,created,n\n");
    for i in 0..250_000u64 {
        let day = 1 + (i * 7_919) % 28;
        let commune = (i * 104_729) % 3_000;
        text.push_str(&format!(
            "S{i:09},{commune:05},2024-02-{day:02},{}\n",
            i % 97
        ));
    }
    // Pages gathered from the page cache of decoded blocks (as a page asked again is), and
    // read from the file each time.
    let cached = served_with("sirene", &text, 0, 64 * 1024 * 1024);
    let around = served_with("sirene", &text, 0, 0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let limits = Limits::default();
    let pages = [
        ("parquet first page, 250k rows", "page_size=20"),
        (
            "parquet lookup pruned by the page index, 250k rows",
            "id__exact=S000123456",
        ),
        (
            "parquet equality page from a posting list, 250k rows",
            "commune__exact=00042&page_size=20",
        ),
        (
            "parquet range + sort desc from the order sidecar, 250k rows",
            "created__greater=2024-02-20&created__sort=desc&page_size=20",
        ),
        (
            "parquet count by value from the posting lists, 250k rows",
            "commune__groupby&commune__count&page_size=20",
        ),
    ];
    for (state, cache) in [(&cached, "page cache"), (&around, "no page cache")] {
        let loaded = state.catalog.loaded("sirene").unwrap();
        assert!(loaded.resident.is_none(), "served from Parquet");
        for (name, query) in pages {
            let q = params::parse(query, &loaded.manifest.schema, &limits).unwrap();
            c.bench_function(&format!("{name}, {cache}"), |b| {
                b.iter(|| rt.block_on(state.executor.page(&loaded, &q)).unwrap())
            });
        }
    }
}

/// A page answered from the result cache: through the router (route, parse, ETag, cache) and
/// through the served application, where a repeated request is replayed before routing.
fn cached(c: &mut Criterion) {
    use tower::ServiceExt;
    let mut text = String::from("trip_id,stop_sequence,category\n");
    for i in 0..10_000 {
        text.push_str(&format!("CAS-{i},{},Tramway\n", i % 40));
    }
    let state = served("stops", &text);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let uri = "/api/datasets/stops/data?stop_sequence__greater=20&page_size=100";
    let get = || {
        axum::http::Request::builder()
            .uri(uri)
            .header("host", "qanat.test")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let router = qanat::http::router(state.clone());
    let service = qanat::http::service(state);
    for _ in 0..2 {
        let resp = rt.block_on(service.clone().oneshot(get())).unwrap();
        assert_eq!(resp.status(), 200);
    }
    c.bench_function("cached page of 100 rows, routed", |b| {
        b.iter(|| rt.block_on(router.clone().oneshot(get())).unwrap())
    });
    c.bench_function("cached page of 100 rows, replayed", |b| {
        b.iter(|| rt.block_on(service.clone().oneshot(get())).unwrap())
    });
}

/// An admin key checked: the right key and a wrong one cost the same (a hash, then every stored
/// hash compared in constant time).
fn admin_key(c: &mut Criterion) {
    use sha2::{Digest, Sha256};
    let hashes: String = ["first", "second", "the-key", "fourth"]
        .iter()
        .map(|k| format!("{}\n", hex::encode(Sha256::digest(k.as_bytes()))))
        .collect();
    let keys = qanat::keys::AdminKeys::parse(&hashes).unwrap();
    assert!(keys.accepts("the-key") && !keys.accepts("the-kez"));
    c.bench_function("admin key, accepted", |b| {
        b.iter(|| keys.accepts(std::hint::black_box("the-key")))
    });
    c.bench_function("admin key, refused", |b| {
        b.iter(|| keys.accepts(std::hint::black_box("the-kez")))
    });
}

criterion_group!(
    benches, parse, plan, resident, encode, parquet, cached, admin_key
);
criterion_main!(benches);
