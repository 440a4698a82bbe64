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
    let executor = Arc::new(Executor::new(
        &storage,
        &settings.limits,
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
        settings: Arc::new(settings),
        started_at: chrono::Utc::now(),
        openapi: Arc::default(),
    }))
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let service = crate::http::service(state);
    axum::serve(listener, axum::ServiceExt::into_make_service(service))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Runs each `[[harvest]]` entry of the settings on its `interval` (the first run at
/// start), on the query runtime, then reads the dataset files again: the new datasets are
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
    let (settings, catalog, source) = (
        Arc::clone(&state.settings),
        Arc::clone(&state.catalog),
        source.clone(),
    );
    let url = source.url.clone();
    let work = async move {
        let progress = |line: &str| tracing::info!(portal = %source.url, "{line}");
        let report = crate::harvest::run::harvest(&settings, &source, &progress).await;
        (report, catalog.reload().await)
    };
    match state.executor.background(work).await {
        Ok((Ok(report), reloaded)) => {
            for line in report.lines() {
                tracing::info!(portal = %url, "{line}");
            }
            if let Err(e) = reloaded {
                tracing::warn!(portal = %url, error = %e, "the harvested dataset files could not be read");
            }
        }
        Ok((Err(e), _)) => tracing::warn!(portal = %url, error = %e, "harvest failed"),
        Err(e) => tracing::warn!(portal = %url, error = %e, "harvest task failed"),
    }
}
