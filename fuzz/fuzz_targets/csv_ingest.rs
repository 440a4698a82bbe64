//! The whole reading of a published file: encoding and dialect sniffing, type inference, the
//! reader, Parquet writing, then the stored table read back as CSV. Any bytes either ingest,
//! with every row read either stored or rejected, or fail with an error; never a panic, an abort
//! or a hang.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use qanat::config::Settings;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("fuzzed.csv");
    std::fs::write(&file, data).expect("the input written");
    let mut settings = Settings {
        cache_bytes: 0,
        ..Settings::default()
    };
    // One query thread: a runtime is built for every input.
    settings.limits.query_threads = 1;
    let out: Box<dyn std::io::Write + Send> = Box::new(std::io::sink());
    let outcome = runtime().block_on(qanat::cli::export(settings, &file, false, false, out));
    if let Ok(outcome) = outcome {
        let r = &outcome.manifest().report;
        assert_eq!(
            r.rows_read,
            r.rows_stored + r.rows_rejected,
            "rows read = rows stored + rows rejected"
        );
    }
});
