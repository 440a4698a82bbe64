//! Assembling the application: settings → storage, executor, catalog → router → serve.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::cache::ResponseCache;
use crate::catalog::{Catalog, SpecSource};
use crate::config::Settings;
use crate::dataset::spec::{DatasetSpec, load_dir};
use crate::error::{Error, Result};
use crate::query::Executor;
use crate::state::{AppState, Shared};
use crate::storage::Storage;

/// The catalog's dataset files plus CSV files named on the command line.
pub fn specs(settings: &Settings, files: &[PathBuf]) -> Result<Vec<DatasetSpec>> {
    let mut specs = load_dir(&settings.datasets)?;
    specs.extend(file_specs(files)?);
    Ok(specs)
}

/// Datasets for CSV files named on the command line.
fn file_specs(files: &[PathBuf]) -> Result<Vec<DatasetSpec>> {
    files
        .iter()
        .map(|f| {
            if !f.is_file() {
                return Err(Error::Config(format!("{}: no such file", f.display())));
            }
            DatasetSpec::for_file(f)
        })
        .collect()
}

/// State with nothing loaded yet, over a fixed catalog.
pub fn state(settings: Settings, specs: Vec<DatasetSpec>) -> Result<AppState> {
    build(settings, specs, None)
}

/// State with nothing loaded yet, over the catalog's dataset files (read again when they
/// change: a harvest writes some) and CSV files named on the command line.
pub fn watched_state(settings: Settings, files: &[PathBuf]) -> Result<AppState> {
    let extra = file_specs(files)?;
    let mut specs = load_dir(&settings.datasets)?;
    specs.extend(extra.iter().cloned());
    let source = SpecSource {
        dir: settings.datasets.clone(),
        extra,
    };
    build(settings, specs, Some(source))
}

fn build(
    settings: Settings,
    specs: Vec<DatasetSpec>,
    source: Option<SpecSource>,
) -> Result<AppState> {
    let storage = Storage::open(&settings.storage)?;
    let gate = crate::query::gate::Gate::new(
        settings.server.max_queries,
        std::time::Duration::from_millis(settings.server.queue_wait_ms),
    );
    let executor = Arc::new(Executor::new(
        &storage,
        &settings.limits,
        gate,
        settings.resident_bytes,
        settings.page_cache_bytes,
    )?);
    let catalog = Catalog::new(
        specs,
        source,
        storage.clone(),
        Arc::clone(&executor),
        settings.ingest.clone(),
    )?;
    Ok(AppState::new(Shared {
        catalog: Arc::new(catalog),
        executor,
        storage,
        cache: ResponseCache::new(settings.cache_bytes),
        rates: crate::rates::Rates::new(&settings.server).map(Arc::new),
        admin: match &settings.server.admin_keys {
            Some(path) => Some(Arc::new(crate::keys::AdminKeys::load(path)?)),
            None => None,
        },
        settings: Arc::new(settings),
        started_at: chrono::Utc::now(),
        openapi: Arc::default(),
    }))
}

/// Serves until `shutdown` completes, then lets running requests finish within
/// `server.drain_ms`.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let server = state.settings.server.clone();
    let service = crate::http::service(state);
    crate::http::listen::serve(listener, service, &server, shutdown).await?;
    Ok(())
}

/// Runs each `[[harvest]]` entry of the settings on its `interval` (the first run at
/// start), on the background runtime, then reads the dataset files again: the new datasets are
/// served, the changed ones switched, the retired ones answer 410.
pub fn spawn_harvests(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    state
        .settings
        .harvest
        .iter()
        .cloned()
        .map(|source| {
            let every = source
                .interval
                .as_deref()
                .and_then(crate::config::parse_duration)
                .unwrap_or(std::time::Duration::from_secs(86_400));
            let state = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    harvest_once(&state, &source).await;
                }
            })
        })
        .collect()
}

async fn harvest_once(state: &AppState, source: &crate::config::HarvestSource) {
    if let Err(e) = state.catalog.harvest(&state.settings, source).await {
        tracing::warn!(portal = %source.url, error = %e, "harvest failed");
    }
}
