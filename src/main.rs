//! The `qanat` binary: parse the command line, start tracing, hand over to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = qanat::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("QANAT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match qanat::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("qanat: {e}");
            ExitCode::from(2)
        }
    }
}
