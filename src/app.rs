//! Assembling the application: settings → storage, executor, catalog → router → serve.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::cache::ResponseCache;
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::dataset::spec::{DatasetSpec, load_dir};
use crate::error::{Error, Result};
use crate::query::Executor;
use crate::state::AppState;
use crate::storage::Storage;

/// The catalog's dataset files plus CSV files named on the command line.
pub fn specs(settings: &Settings, files: &[PathBuf]) -> Result<Vec<DatasetSpec>> {
    let mut specs = load_dir(&settings.datasets)?;
    for f in files {
        if !f.is_file() {
            return Err(Error::Config(format!("{}: no such file", f.display())));
        }
        specs.push(DatasetSpec::for_file(f)?);
    }
    Ok(specs)
}

/// State with nothing loaded yet.
pub fn state(settings: Settings, specs: Vec<DatasetSpec>) -> Result<AppState> {
    let storage = Storage::open(&settings.storage)?;
    let executor = Arc::new(Executor::new(
        &storage,
        &settings.limits,
        settings.resident_bytes,
    )?);
    let catalog = Catalog::new(
        specs,
        storage.clone(),
        Arc::clone(&executor),
        settings.ingest.clone(),
    )?;
    Ok(AppState {
        catalog: Arc::new(catalog),
        executor,
        storage,
        cache: ResponseCache::new(settings.cache_bytes),
        settings: Arc::new(settings),
        started_at: chrono::Utc::now(),
    })
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let router = crate::http::router(state);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}
