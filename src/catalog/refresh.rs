//! Ingesting the catalog's sources and keeping them fresh. Every ingest (first ingests, forced
//! ones and scheduled refreshes) runs on the background runtime (threads of their own, at a
//! lower priority than queries), never on the threads that serve sockets: reading files,
//! encoding Parquet, profiling and sorting are long CPU and I/O work.

use std::sync::Arc;

use super::{Catalog, Entry};
use crate::error::{Error, Result};
use crate::ingest::{self, Outcome};
use crate::storage::PointerRead;

/// An ingest under way, listed by [`Catalog::running`] until dropped.
pub struct Running<'a> {
    catalog: &'a Catalog,
    id: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.catalog.running.lock().remove(&self.id);
    }
}

impl Catalog {
    /// Notes that an ingest of `id` started, for `why`.
    pub(super) fn start(&self, id: &str, why: &'static str) -> Running<'_> {
        self.running
            .lock()
            .insert(id.to_string(), (why, chrono::Utc::now()));
        Running {
            catalog: self,
            id: id.to_string(),
        }
    }

    /// The ingests under way: dataset, what started it (`ingest`, `forced`, `refresh`), since
    /// when.
    pub fn running(&self) -> Vec<(String, &'static str, chrono::DateTime<chrono::Utc>)> {
        self.running
            .lock()
            .iter()
            .map(|(id, (why, since))| (id.clone(), *why, *since))
            .collect()
    }

    /// Ingests the named datasets (all when `ids` is empty) one after another, then serves what
    /// each has: a failed ingest leaves the previous version served and records the error.
    pub async fn ingest_and_load(
        self: &Arc<Self>,
        ids: &[String],
        force: bool,
    ) -> Result<Vec<(String, Result<Outcome>)>> {
        let targets: Vec<Arc<Entry>> = if ids.is_empty() {
            self.entries()
        } else {
            ids.iter().map(|id| self.entry(id)).collect::<Result<_>>()?
        };
        // The files of a feed are ingested together, once.
        let (members, targets): (Vec<_>, Vec<_>) =
            targets.into_iter().partition(|e| e.spec.member.is_some());
        let members: Vec<String> = members.iter().map(|e| e.spec.id.clone()).collect();
        let mut results = self
            .ingest_feeds_of(&members, ids.is_empty(), force)
            .await?;
        for entry in targets {
            let id = entry.spec.id.clone();
            let catalog = Arc::clone(self);
            let outcome = self
                .executor
                .background(async move { catalog.ingest_one(&entry, force).await })
                .await??;
            results.push((id, outcome));
        }
        Ok(results)
    }

    /// Ingests one dataset, then serves the stored current version, whatever happened: the
    /// outer error is a failure to serve, the inner one the ingest's.
    pub(super) async fn ingest_one(
        self: &Arc<Self>,
        entry: &Entry,
        force: bool,
    ) -> Result<Result<Outcome>> {
        if let Err(e) = self.refuse_ingest(&entry.spec.id) {
            // A replica serves what is published; with nothing yet, the dataset says who
            // publishes it.
            if self.load_current(entry).await?
                && let Some(current) = entry.current()
            {
                return Ok(Ok(Outcome::Unchanged(Box::new(current.manifest.clone()))));
            }
            return Ok(Err(Error::Shared(entry.set_error(e))));
        }
        if let Some(member) = &entry.spec.member {
            let feed = self.feed(&member.feed)?;
            let results = self.ingest_feed(&feed, force).await;
            let id = &entry.spec.id;
            return Ok(match results.into_iter().find(|(m, _)| m == id) {
                Some((_, outcome)) => outcome,
                None => Err(Error::NotFound(format!(
                    "the current version of feed `{}` has no file for dataset `{id}`",
                    member.feed
                ))),
            });
        }
        let _running = self.start(&entry.spec.id, if force { "forced" } else { "ingest" });
        let outcome = ingest::ingest(&entry.spec, &self.storage, &self.ingest, force).await;
        self.load_current(entry).await?;
        Ok(match outcome {
            Ok(o) => {
                entry.clear_error();
                Ok(o)
            }
            // The same error is reported to the caller and kept as the dataset's last error.
            Err(e) => Err(Error::Shared(entry.set_error(e))),
        })
    }

    /// Re-checks, on each dataset's `refresh` interval, whether its source changed (a
    /// conditional request for HTTP sources), and switches a new version in for the requests
    /// that follow; queries in flight finish on the version they started with.
    pub fn spawn_refreshers(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        // A feed's files are refreshed together, by its first file's refresher.
        let mut feeds = std::collections::BTreeSet::new();
        self.entries()
            .into_iter()
            .filter(|e| {
                e.spec
                    .member
                    .as_ref()
                    .is_none_or(|m| feeds.insert(m.feed.clone()))
            })
            .filter_map(|entry| {
                let interval = entry.spec.refresh_interval().ok().flatten()?;
                Some(self.spawn_refresher(entry.spec.id.clone(), interval))
            })
            .collect()
    }

    /// The refresher of one dataset, by id: a reload that edits the dataset's file is followed,
    /// and one that removes it ends the task.
    pub(super) fn spawn_refresher(
        self: &Arc<Self>,
        id: String,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let catalog = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Ok(entry) = catalog.entry(&id) else {
                    return;
                };
                let c = Arc::clone(&catalog);
                // The timer lives here; the work on the background runtime.
                if let Err(err) = catalog
                    .executor
                    .background(async move { c.refresh(&entry).await })
                    .await
                {
                    tracing::warn!(dataset = %id, error = %err, "refresh task failed");
                }
            }
        })
    }

    /// One refresh of one dataset.
    pub async fn refresh(self: &Arc<Self>, entry: &Entry) {
        let id = &entry.spec.id;
        if self.refuse_ingest(id).is_err() {
            return;
        }
        if let Some(member) = &entry.spec.member {
            let Ok(feed) = self.feed(&member.feed) else {
                return;
            };
            for (id, outcome) in self.ingest_feed(&feed, false).await {
                match outcome {
                    Ok(o @ Outcome::Ingested(_)) => tracing::info!("{}", o.summary()),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(dataset = %id, error = %e, "refresh failed"),
                }
            }
            return;
        }
        let _running = self.start(id, "refresh");
        match ingest::ingest(&entry.spec, &self.storage, &self.ingest, false).await {
            // An unchanged source may still have a version newer than the one served, published
            // by another process: the stored current version is what is served either way.
            Ok(outcome) => {
                if matches!(outcome, Outcome::Ingested(_)) {
                    tracing::info!("{}", outcome.summary());
                }
                match self.load_current(entry).await {
                    Ok(_) => entry.clear_error(),
                    Err(e) => {
                        tracing::warn!(dataset = %id, error = %e, "refreshed version could not be loaded");
                        entry.set_error(e);
                    }
                }
            }
            // Another process is ingesting it: the watcher serves what it publishes.
            Err(e) if e.is_busy() => tracing::info!(dataset = %id, "{e}"),
            Err(e) => {
                // The previous version stays served; the dataset's metadata says why it is stale.
                tracing::warn!(dataset = %id, error = %e, "refresh failed");
                entry.set_error(e);
            }
        }
    }

    /// Serves the versions other processes publish (`qanat ingest`, `qanat harvest`, another
    /// server over the same storage): every `every`, a conditional read of each dataset's
    /// pointer, and a changed one loaded and switched in. Requests and cursors that pinned the
    /// version it replaces keep reading it.
    pub fn spawn_watcher(
        self: &Arc<Self>,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let catalog = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let c = Arc::clone(&catalog);
                if let Err(err) = catalog
                    .executor
                    .background(async move { c.watch_once().await })
                    .await
                {
                    tracing::warn!(error = %err, "watching the storage failed");
                }
            }
        })
    }

    /// One look at the dataset files (read again if any changed) and at every pointer; the
    /// number of datasets switched to a version published elsewhere.
    pub async fn watch_once(self: &Arc<Self>) -> usize {
        match self.reload().await {
            Ok(changes) if changes != super::Reloaded::default() => {
                tracing::info!(added = ?changes.added, changed = ?changes.changed,
                    removed = ?changes.removed, "dataset files read again");
                for id in &changes.added {
                    if let Ok(entry) = self.entry(id)
                        && let Ok(Some(every)) = entry.spec.refresh_interval()
                    {
                        self.spawn_refresher(id.clone(), every);
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the dataset files could not be read again"),
        }
        // A feed published elsewhere may have files more or fewer.
        self.list_stored_feeds(false).await;
        let mut switched = 0;
        for entry in self.entries() {
            let id = &entry.spec.id;
            let tag = entry.pointer_tag.lock().clone();
            let pointer = entry.spec.pointer_id();
            let version = match self.storage.read_pointer(pointer, tag.as_deref()).await {
                Ok(PointerRead::Current { version, e_tag }) => {
                    *entry.pointer_tag.lock() = e_tag;
                    version
                }
                Ok(PointerRead::Unchanged | PointerRead::Missing) => continue,
                Err(e) => {
                    tracing::warn!(dataset = %id, error = %e, "could not read the current version");
                    continue;
                }
            };
            if entry
                .current()
                .is_some_and(|c| c.manifest.version == version)
            {
                continue;
            }
            match self.load_current(&entry).await {
                Ok(true) => {
                    tracing::info!(dataset = %id, version = %version, "serving a version published elsewhere");
                    entry.clear_error();
                    switched += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(dataset = %id, error = %e, "a version published elsewhere could not be loaded");
                    // Read again next time.
                    *entry.pointer_tag.lock() = None;
                }
            }
        }
        switched
    }
}

impl Catalog {
    /// Harvests one portal on the background runtime, then reads the dataset files again: the new
    /// datasets are served, the changed ones switched, the retired ones answer 410. The report's
    /// lines, each also logged.
    pub async fn harvest(
        self: &Arc<Self>,
        settings: &Arc<crate::config::Settings>,
        source: &crate::config::HarvestSource,
    ) -> Result<Vec<String>> {
        let (settings, catalog, source) = (Arc::clone(settings), Arc::clone(self), source.clone());
        let url = source.url.clone();
        let work = async move {
            let progress = |line: &str| tracing::info!(portal = %source.url, "{line}");
            let report = crate::harvest::run::harvest(&settings, &source, &progress).await;
            (report, catalog.reload().await)
        };
        let (report, reloaded) = self.executor.background(work).await?;
        let lines = report?.lines();
        for line in &lines {
            tracing::info!(portal = %url, "{line}");
        }
        if let Err(e) = reloaded {
            tracing::warn!(portal = %url, error = %e, "the harvested dataset files could not be read");
            return Err(e);
        }
        Ok(lines)
    }
}
