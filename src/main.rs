//! The `qanat` binary: parse the command line and the settings, start logging, hand over to
//! the library.

use std::process::ExitCode;

use qanat::config::LogFormat;

/// jemalloc instead of the system's allocator: glibc keeps what the ingest's threads free in
/// per-thread arenas, and the resident size grew with the table's rows (Cargo.toml has the
/// figures).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let (cli, matches) = qanat::cli::Cli::parse_args();
    let settings = match cli.settings(&matches) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("qanat: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("QANAT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.server.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.init(),
    }
    match qanat::cli::run(cli, settings).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("qanat: {e}");
            ExitCode::from(2)
        }
    }
}
