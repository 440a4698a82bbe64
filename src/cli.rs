//! The command line: `serve`, `ingest`, `harvest`, `openapi` and `export`, with the options of
//! [`Settings`] (also `QANAT_*` environment variables and keys of the `--config` file).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::app;
use crate::config::{HarvestSource, Layers, PortalKind, Settings};
use crate::dataset::spec::DatasetSpec;
use crate::encode;
use crate::error::{Error, Result};
use crate::harvest;
use crate::ingest::Outcome;
use crate::query::params;

#[derive(Debug, Parser)]
#[command(
    name = "qanat",
    version,
    about = "Serve published CSV files as a queryable API",
    after_help = "Every option is also a key of the --config file and an environment variable: \
QANAT_LIMITS__MAX_PAGE_SIZE for [limits] max_page_size, QANAT_ADDR or QANAT_MAX_PAGE_SIZE where \
the name is unique. Flags win over the environment, which wins over the file."
)]
pub struct Cli {
    /// TOML configuration file (environment and flags override it)
    #[arg(long, global = true, env = "QANAT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest what is missing or stale, then serve the catalog (and any CSV files given)
    Serve {
        /// CSV files to serve too, each as a dataset named after its file
        files: Vec<PathBuf>,
        /// A replica that never ingests: it serves the versions other processes publish
        /// (`qanat ingest`, a server that ingests) and follows them; no refreshes, no harvests
        #[arg(long, env = "QANAT_READ_ONLY")]
        read_only: bool,
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
    /// Harvest a portal's catalog: a dataset file per tabular resource (CSV, gzipped CSV,
    /// XLSX, XLS, ODS), the new and changed ones ingested, the vanished ones retired, a report
    Harvest {
        /// The portal's API: ckan or udata (data.gouv.fr)
        #[arg(value_enum)]
        kind: PortalKind,
        /// The portal's site or API base (https://data.gov.ma/data, https://www.data.gouv.fr)
        url: String,
        /// Only this organisation's packages (its name or id)
        #[arg(long)]
        organization: Option<String>,
        /// CKAN: only the packages `package_search` finds for this query
        #[arg(long)]
        query: Option<String>,
        /// udata: only this dataset (its slug or id)
        #[arg(long)]
        dataset: Option<String>,
        /// Packages (CKAN) or datasets (udata) asked for a listing page
        #[arg(long, default_value_t = 1000)]
        rows: usize,
        /// Write the dataset files only; `qanat ingest` or `serve` ingests them later
        #[arg(long)]
        no_ingest: bool,
        /// Print the report as JSON on standard output (the lines go to standard error)
        #[arg(long)]
        json: bool,
    },
    /// Print the OpenAPI document of the current catalog
    Openapi,
    /// Ask the server at `--addr` (or URL) for `/health`: exit 0 when it answers 200, 1
    /// otherwise (a container's health check; the image has no curl)
    Health {
        /// Base URL of the server (default: http:// and `--addr`, with 127.0.0.1 for 0.0.0.0)
        url: Option<String>,
    },
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
    /// Parses the process's arguments, keeping the matches that say which flags were given.
    pub fn parse_args() -> (Self, ArgMatches) {
        let matches = Cli::command().get_matches();
        match Cli::from_arg_matches(&matches) {
            Ok(cli) => (cli, matches),
            Err(e) => e.exit(),
        }
    }

    /// Defaults ← config file ← environment ← flags given, validated.
    pub fn settings(&self, matches: &ArgMatches) -> Result<Settings> {
        let file = match &self.config {
            Some(path) => Some(Layers::file_at(path)?),
            None => None,
        };
        Settings::layered(Layers {
            file,
            env: std::env::vars().collect(),
            flags: Some((&self.settings, matches)),
        })
    }
}

/// Runs a parsed command line with its settings.
pub async fn run(cli: Cli, settings: Settings) -> Result<ExitCode> {
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
            let outcome = export(settings, file, *names, *text, out).await?;
            eprintln!("{}", outcome.summary());
            Ok(ExitCode::SUCCESS)
        }
        Command::Harvest {
            kind,
            url,
            organization,
            query,
            dataset,
            rows,
            no_ingest,
            json,
        } => {
            let source = HarvestSource {
                kind: *kind,
                url: url.clone(),
                organization: organization.clone(),
                query: query.clone(),
                dataset: dataset.clone(),
                rows: *rows,
                ingest: !no_ingest,
                interval: None,
            };
            let report =
                harvest::run::harvest(&settings, &source, &|line| eprintln!("{line}")).await?;
            for line in report.lines() {
                eprintln!("{line}");
            }
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            // An incomplete listing is a failed harvest; a portal's broken resources are not.
            Ok(if report.listing_errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Openapi => {
            let specs = app::specs(&settings, &[])?;
            let ids: Vec<String> = specs.iter().map(|s| s.id.clone()).collect();
            let mut rids: Vec<String> =
                specs.iter().filter_map(|s| s.resource_id.clone()).collect();
            rids.sort();
            rids.extend(ids.iter().cloned());
            let doc = crate::http::openapi_document(&ids, &rids, &settings.limits);
            println!("{}", doc.to_pretty_json()?);
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
                page_cache_bytes: 0,
                ..settings
            };
            let state = app::state(settings, specs)?;
            state.storage.check(&state.settings.storage).await?;
            let results = state.catalog.ingest_and_load(ids, *force).await?;
            Ok(report(&results))
        }
        Command::Serve { files, read_only } => serve(settings, files, *read_only).await,
        Command::Health { url } => health(&settings, url.as_deref()).await,
    }
}

/// One `GET /health`, within 3 seconds.
async fn health(settings: &Settings, url: Option<&str>) -> Result<ExitCode> {
    let base = match url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let mut addr = settings.addr;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?;
    match client.get(format!("{base}/health")).send().await {
        Ok(r) if r.status().is_success() => Ok(ExitCode::SUCCESS),
        Ok(r) => {
            eprintln!("{base}/health answered {}", r.status());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("{base}/health: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Serves the catalog: the first ingests of datasets without a version, then the socket, with
/// the other datasets checked and opened in the background, refreshers, harvests and the
/// watcher running beside.
async fn serve(settings: Settings, files: &[PathBuf], read_only: bool) -> Result<ExitCode> {
    for source in &settings.harvest {
        source.check()?;
    }
    let addr = settings.addr;
    let state = app::watched_state(settings, files)?;
    state.storage.check(&state.settings.storage).await?;
    state.catalog.serve_on_demand();
    if read_only {
        state.catalog.set_read_only();
    } else {
        // A dataset without a version has nothing to serve: its first ingest comes first.
        report(&state.catalog.ingest_missing().await);
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
    // The other sources are checked, and their versions opened, while the server
    // answers (a request opens the version it needs first).
    let catalog = std::sync::Arc::clone(&state.catalog);
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let results = catalog.start_up().await;
        let changed: Vec<_> = results
            .into_iter()
            .filter(|(_, r)| !matches!(r, Ok(Outcome::Unchanged(_))))
            .collect();
        report(&changed);
        tracing::info!(
            seconds = started.elapsed().as_secs_f64(),
            "every dataset checked and opened"
        );
    });
    let (_refreshers, _harvests) = match read_only {
        true => (Vec::new(), Vec::new()),
        false => (
            state.catalog.spawn_refreshers(),
            app::spawn_harvests(&state),
        ),
    };
    let watch = state.settings.ingest.watch_ms;
    let _watcher = (watch > 0).then(|| {
        state
            .catalog
            .spawn_watcher(std::time::Duration::from_millis(watch))
    });
    eprintln!(
        "qanat: serving {} datasets on http://{addr} (documentation: http://{addr}/docs)",
        state.catalog.ids().len()
    );
    app::serve(listener, state, shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Ingests one file into memory, as `serve` would read it, and writes the stored table as CSV
/// in file order, headed by the published labels (or the API names).
pub async fn export(
    mut settings: Settings,
    file: &std::path::Path,
    names: bool,
    text: bool,
    mut out: Box<dyn std::io::Write + Send>,
) -> Result<Outcome> {
    settings.storage = "memory://".into();
    let mut spec = DatasetSpec::for_file(file)?;
    spec.all_text = text;
    let id = spec.id.clone();
    let state = app::state(settings, vec![spec])?;
    let mut results = state.catalog.ingest_and_load(&[], true).await?;
    let (_, outcome) = results
        .pop()
        .ok_or_else(|| Error::internal("nothing was ingested"))?;
    let outcome = outcome?;
    let loaded = state.catalog.loaded(&id)?;
    let schema = &loaded.manifest.schema;
    let headerless = schema.iter().all(|c| c.label.is_empty());
    // A file without a header is headed by the column names.
    let header = schema.iter().map(|c| {
        if names || headerless {
            c.name.as_str()
        } else {
            c.label.as_str()
        }
    });
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(|e| Error::Io(e.into()))?;
    out.write_all(&w.into_inner().map_err(|e| Error::Io(e.into_error()))?)?;
    let query = params::parse("", schema, &state.settings.limits)?;
    let mut stream = state.executor.stream(&loaded, &query).await?;
    while let Some(batch) = stream.next().await {
        out.write_all(&encode::csv(&batch?, false)?)?;
    }
    out.flush()?;
    Ok(outcome)
}

/// Prints one line per dataset; failure if any ingest failed.
fn report(results: &[(String, Result<Outcome>)]) -> ExitCode {
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
