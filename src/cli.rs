//! The command line: `serve`, `ingest` and `openapi`, with options that are also `QANAT_*`
//! environment variables and keys of the `--config` file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app;
use crate::config::{FileSettings, Settings, parse_addr};
use crate::error::{Error, Result};

#[derive(Debug, Parser)]
#[command(
    name = "qanat",
    version,
    about = "Serve published CSV files as a queryable API"
)]
pub struct Cli {
    /// Directory of dataset files (`<id>.toml`)
    #[arg(long, global = true, env = "QANAT_DATASETS", value_name = "DIR")]
    pub datasets: Option<PathBuf>,
    /// Where Parquet versions are stored: a path, file://, s3://bucket/prefix or memory://
    #[arg(long, global = true, env = "QANAT_STORAGE", value_name = "URL")]
    pub storage: Option<String>,
    /// Address to listen on
    #[arg(long, global = true, env = "QANAT_ADDR", value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// Byte budget of the result cache (0 turns it off)
    #[arg(long, global = true, env = "QANAT_CACHE_BYTES", value_name = "N")]
    pub cache_bytes: Option<u64>,
    /// Byte budget of datasets held decoded in memory (0 serves every one from Parquet)
    #[arg(long, global = true, env = "QANAT_RESIDENT_BYTES", value_name = "N")]
    pub resident_bytes: Option<u64>,
    /// Base URL of the links in responses (default: from the request's Host)
    #[arg(long, global = true, env = "QANAT_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Largest page_size a request may ask for
    #[arg(long, global = true, env = "QANAT_MAX_PAGE_SIZE", value_name = "N")]
    pub max_page_size: Option<u64>,
    /// Deadline of one query, in milliseconds
    #[arg(long, global = true, env = "QANAT_QUERY_TIMEOUT_MS", value_name = "MS")]
    pub query_timeout_ms: Option<u64>,
    /// Memory the query engine may use, in bytes
    #[arg(long, global = true, env = "QANAT_MEMORY_BYTES", value_name = "N")]
    pub memory_bytes: Option<usize>,
    /// Threads that execute queries
    #[arg(long, global = true, env = "QANAT_QUERY_THREADS", value_name = "N")]
    pub query_threads: Option<usize>,
    /// TOML configuration file (flags and environment override it)
    #[arg(long, global = true, env = "QANAT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest what is missing or stale, then serve the catalog (and any CSV files given)
    Serve {
        /// CSV files to serve too, each as a dataset named after its file
        files: Vec<PathBuf>,
    },
    /// Ingest datasets now and print a report for each
    Ingest {
        /// Dataset ids
        ids: Vec<String>,
        /// Every dataset of the catalog
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Re-ingest even when the source is unchanged
        #[arg(long)]
        force: bool,
    },
    /// Print the OpenAPI document of the current catalog
    Openapi,
    /// Read a CSV file as ingest would (nothing is stored) and write the resulting table as CSV,
    /// to see how qanat reads a file: the report goes to stderr
    Export {
        /// The CSV file
        file: PathBuf,
        /// Where to write the table (default: standard output)
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Head the columns with their API names instead of the published labels
        #[arg(long)]
        names: bool,
        /// Keep every value as published text (no typing), to check the dialect alone
        #[arg(long)]
        text: bool,
    },
}

impl Cli {
    /// Defaults ← config file ← environment and flags (clap already put flags over env).
    pub fn settings(&self) -> Result<Settings> {
        let mut s = Settings::default();
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("--config {}: {e}", path.display())))?;
            let file: FileSettings = toml::from_str(&text)
                .map_err(|e| Error::Config(format!("--config {}: {e}", path.display())))?;
            s.apply_file(file)?;
        }
        if let Some(v) = &self.datasets {
            s.datasets_dir = v.clone();
        }
        if let Some(v) = &self.storage {
            s.storage = v.clone();
        }
        if let Some(v) = &self.addr {
            s.addr = parse_addr(v)?;
        }
        if let Some(v) = self.cache_bytes {
            s.cache_bytes = v;
        }
        if let Some(v) = self.resident_bytes {
            s.resident_bytes = v;
        }
        if let Some(v) = &self.public_url {
            s.public_url = Some(v.clone());
        }
        if let Some(v) = self.max_page_size {
            s.limits.max_page_size = v;
            s.limits.default_page_size = s.limits.default_page_size.min(v);
        }
        if let Some(v) = self.query_timeout_ms {
            s.limits.query_timeout = std::time::Duration::from_millis(v);
        }
        if let Some(v) = self.memory_bytes {
            s.limits.memory_bytes = v;
        }
        if let Some(v) = self.query_threads {
            s.limits.query_threads = v;
        }
        s.validate()?;
        Ok(s)
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let settings = cli.settings()?;
    match &cli.command {
        Command::Export {
            file,
            output,
            names,
            text,
        } => {
            let out: Box<dyn std::io::Write + Send> = match output {
                Some(p) => Box::new(
                    std::fs::File::create(p)
                        .map_err(|e| Error::Config(format!("{}: {e}", p.display())))?,
                ),
                None => Box::new(std::io::BufWriter::new(std::io::stdout())),
            };
            let outcome = app::export(settings, file, *names, *text, out).await?;
            eprintln!("{}", outcome.summary());
            Ok(ExitCode::SUCCESS)
        }
        Command::Openapi => {
            let specs = app::specs(&settings, &[])?;
            let ids: Vec<String> = specs.into_iter().map(|s| s.id).collect();
            let doc = crate::openapi::document(&ids);
            println!("{}", doc.to_pretty_json().map_err(Error::internal)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest { ids, all, force } => {
            if ids.is_empty() && !all {
                return Err(Error::Config(
                    "name the datasets to ingest, or pass --all for every dataset".into(),
                ));
            }
            let specs = app::specs(&settings, &[])?;
            // Nothing is served from this process: versions are not read into memory.
            let settings = Settings {
                resident_bytes: 0,
                ..settings
            };
            let state = app::state(settings, specs)?;
            let results = app::ingest_and_load(&state, ids, *force).await?;
            Ok(report(&results))
        }
        Command::Serve { files } => {
            let specs = app::specs(&settings, files)?;
            let addr = settings.addr;
            let state = app::state(settings, specs)?;
            let results = app::ingest_and_load(&state, &[], false).await?;
            report(&results);
            let _refreshers = app::spawn_refreshers(&state);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
            eprintln!(
                "qanat: serving {} datasets on http://{addr} (documentation: http://{addr}/docs)",
                state.catalog.ids().len()
            );
            app::serve(listener, state, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints one line per dataset; failure if any ingest failed.
fn report(results: &[(String, Result<crate::ingest::Outcome>)]) -> ExitCode {
    let mut failed = false;
    for (_, r) in results {
        match r {
            Ok(o) => eprintln!("{}", o.summary()),
            Err(e) => {
                failed = true;
                eprintln!("{e}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
