//! Assembling the application: settings → catalog, storage, engine → ingest → router → serve.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::cache::ResponseCache;
use crate::catalog::manifest::Manifest;
use crate::catalog::schema::{ROW_COLUMN, arrow_schema};
use crate::catalog::spec::{DatasetSpec, load_dir};
use crate::catalog::{Catalog, Entry, Loaded};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::ingest::{self, Outcome};
use crate::query::Engine;
use crate::query::plan::column;
use crate::query::resident::{Budget, Resident};
use crate::state::AppState;
use crate::storage::Storage;
use datafusion::catalog::TableProvider;

/// The catalog's dataset files plus CSV files named on the command line.
pub fn specs(settings: &Settings, files: &[PathBuf]) -> Result<Vec<DatasetSpec>> {
    let mut specs = load_dir(&settings.datasets_dir)?;
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
    let engine = Engine::new(&storage, &settings.limits)?;
    Ok(AppState {
        catalog: Arc::new(Catalog::new(specs)?),
        engine: Arc::new(engine),
        storage,
        cache: ResponseCache::new(settings.cache_bytes),
        resident: Budget::new(settings.resident_bytes),
        settings: Arc::new(settings),
    })
}

/// Makes the stored current version of a dataset the one served (no-op when there is none).
pub async fn load_current(state: &AppState, entry: &Entry) -> Result<bool> {
    let Some(manifest) = state.storage.current_manifest(&entry.spec.id).await? else {
        return Ok(false);
    };
    // Already served (an unchanged source, a failed refresh): nothing to read again.
    if entry
        .current()
        .is_some_and(|c| c.manifest.version == manifest.version)
    {
        return Ok(true);
    }
    let table = state.engine.table(&state.storage, &manifest)?;
    let versions = state.storage.version_infos(&entry.spec.id).await?;
    let resident = make_resident(state, &manifest, &table).await?;
    let table = match &resident {
        Some(r) => r.table(state.settings.limits.query_threads)?,
        None => table,
    };
    entry.set_current(Arc::new(Loaded {
        manifest,
        table,
        resident,
        versions,
    }));
    Ok(true)
}

/// Reads a version into memory when it fits what is left of the resident budget.
async fn make_resident(
    state: &AppState,
    manifest: &Manifest,
    table: &Arc<dyn TableProvider>,
) -> Result<Option<Arc<Resident>>> {
    let Some(ticket) = Resident::reserve(&state.resident, manifest) else {
        tracing::info!(dataset = %manifest.id, estimate = Resident::estimate(manifest),
            free = state.resident.limit() - state.resident.used(),
            "served from Parquet: over the resident budget");
        return Ok(None);
    };
    let df = state
        .engine
        .read(Arc::clone(table))?
        .sort(vec![column(ROW_COLUMN).sort(true, false)])?;
    let batches = state.engine.collect_all(df).await?;
    let schema = arrow_schema(&manifest.schema);
    let manifest = manifest.clone();
    let resident =
        tokio::task::spawn_blocking(move || Resident::build(batches, schema, &manifest, ticket))
            .await
            .map_err(Error::internal)?;
    Ok(resident.map(Arc::new))
}

/// A version of a dataset: the current one, or an older one still kept in storage (opened once,
/// then remembered while it is kept). One no longer kept is a 410 that says what to do.
pub async fn loaded_version(state: &AppState, id: &str, version: &str) -> Result<Arc<Loaded>> {
    let entry = state.catalog.entry(id)?;
    let current = entry.current();
    if let Some(cur) = &current
        && cur.manifest.version == version
    {
        return Ok(Arc::clone(cur));
    }
    if let Some(older) = entry.older(version) {
        return Ok(older);
    }
    let well_formed = !version.is_empty()
        && version.len() <= 64
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !well_formed {
        return Err(Error::bad_request(format!(
            "`{version}` is not a version id; versions are listed by GET /api/datasets/{id}"
        )));
    }
    let Some(manifest) = state.storage.manifest(id, version).await? else {
        let kept: Vec<String> = current
            .map(|c| c.versions.iter().map(|v| v.version.clone()).collect())
            .unwrap_or_default();
        return Err(Error::Gone(format!(
            "version {version} of dataset `{id}` is no longer kept (kept: {}); start again from the first page",
            if kept.is_empty() {
                "none".to_string()
            } else {
                kept.join(", ")
            }
        )));
    };
    let table = state.engine.table(&state.storage, &manifest)?;
    // Older versions are read from Parquet: memory goes to the versions most asked for.
    let loaded = Arc::new(Loaded {
        manifest,
        table,
        resident: None,
        versions: Vec::new(),
    });
    entry.remember(Arc::clone(&loaded));
    Ok(loaded)
}

/// Ingests the named datasets (all when `ids` is empty) one after another, then serves what
/// each has: a failed ingest leaves the previous version served and records the error.
pub async fn ingest_and_load(
    state: &AppState,
    ids: &[String],
    force: bool,
) -> Result<Vec<(String, Result<Outcome>)>> {
    let targets: Vec<&Arc<Entry>> = if ids.is_empty() {
        state.catalog.entries().collect()
    } else {
        ids.iter()
            .map(|id| state.catalog.entry(id))
            .collect::<Result<_>>()?
    };
    let mut results = Vec::new();
    for entry in targets {
        let outcome =
            ingest::ingest(&entry.spec, &state.storage, &state.settings.ingest, force).await;
        // Whatever happened, the stored current version is the one served.
        load_current(state, entry).await?;
        match &outcome {
            Ok(_) => entry.clear_error(),
            Err(e) => entry.set_error(e.to_string()),
        }
        results.push((entry.spec.id.clone(), outcome));
    }
    Ok(results)
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
    let state = state(settings, vec![spec])?;
    let mut results = ingest_and_load(&state, &[], true).await?;
    let (_, outcome) = results
        .pop()
        .ok_or_else(|| Error::internal("nothing was ingested"))?;
    let outcome = outcome?;
    let loaded = state.catalog.loaded(&id)?;
    let schema = &loaded.manifest.schema;
    let headerless = schema.iter().all(|c| c.label.is_empty());
    let mut header = csv::Writer::from_writer(Vec::new());
    header
        // A file without a header is headed by the column names.
        .write_record(schema.iter().map(|c| {
            if names || headerless {
                &c.name
            } else {
                &c.label
            }
        }))
        .map_err(Error::internal)?;
    out.write_all(&header.into_inner().map_err(Error::internal)?)?;
    let query = crate::query::params::parse("", schema, &state.settings.limits)?;
    let df = state.engine.read(loaded.table.clone())?;
    let planned = crate::query::plan::plan(df, &query, schema, false, false)?;
    let mut stream = state.engine.stream(planned.rows).await?;
    while let Some(batch) = stream.next().await {
        out.write_all(&crate::encode::csv(&batch?, false)?)?;
    }
    out.flush()?;
    Ok(outcome)
}

/// Re-checks, on each dataset's `refresh` interval, whether its source changed (a conditional
/// request for HTTP sources), and switches a new version in for the requests that follow; queries
/// in flight finish on the version they started with.
pub fn spawn_refreshers(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    state
        .catalog
        .entries()
        .filter_map(|entry| {
            let interval = entry.spec.refresh_interval().ok().flatten()?;
            let (state, id) = (state.clone(), entry.spec.id.clone());
            Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    refresh(&state, &id).await;
                }
            }))
        })
        .collect()
}

async fn refresh(state: &AppState, id: &str) {
    let Ok(entry) = state.catalog.entry(id) else {
        return;
    };
    match ingest::ingest(&entry.spec, &state.storage, &state.settings.ingest, false).await {
        Ok(Outcome::Unchanged(_)) => {}
        Ok(outcome @ Outcome::Ingested(_)) => {
            tracing::info!("{}", outcome.summary());
            match load_current(state, entry).await {
                Ok(_) => entry.clear_error(),
                Err(e) => {
                    tracing::warn!(dataset = id, error = %e, "refreshed version could not be loaded");
                    entry.set_error(e.to_string());
                }
            }
        }
        Err(e) => {
            // The previous version stays served; the dataset's metadata says why it is stale.
            tracing::warn!(dataset = id, error = %e, "refresh failed");
            entry.set_error(e.to_string());
        }
    }
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
