//! The `qanat` binary: parse the command line, start tracing, hand over to the library.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let (cli, matches) = qanat::cli::Cli::parse_args();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("QANAT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match qanat::cli::run(cli, matches).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("qanat: {e}");
            ExitCode::from(2)
        }
    }
}
