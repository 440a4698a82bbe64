//! Serving a portal-sized catalog from one process: nothing is read per dataset before the
//! server listens but whether it has a version at all, so ten thousand datasets answer in
//! seconds. Versions are opened from Parquet when first asked for (or by the start-up pass that
//! follows, in the background), and become resident — decoded in memory, for the fast paths —
//! on demand: the first query of a dataset asks for it, and when the resident budget is full the
//! least recently queried datasets go back to Parquet to make room.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;

use super::{Catalog, Entry};
use crate::error::Result;
use crate::ingest::Outcome;
use crate::query::Loaded;
use crate::query::resident::Resident;

/// Datasets opened at once by the start-up pass.
const PARALLEL: usize = 16;

/// Sources checked (and, when changed, ingested) at once by the start-up pass: an ingest can
/// hold a large file's batches.
const PARALLEL_INGESTS: usize = 4;

impl Catalog {
    /// Serves versions on demand from now on: opened from Parquet, made resident when queried
    /// (what `serve` does; a catalog built for one command reads eagerly).
    pub fn serve_on_demand(&self) {
        self.on_demand.store(true, Ordering::Release);
    }

    /// The version a query of `id` runs on, opened now if the start-up pass has not reached it
    /// yet, and marked as used (a resident copy is asked for when there is none).
    pub async fn serving(self: &Arc<Self>, id: &str) -> Result<Arc<Loaded>> {
        let entry = self.entry(id)?;
        self.opened(&entry).await?;
        let loaded = self.loaded_of(&entry)?;
        self.touch(&entry);
        if loaded.resident.is_none() && self.wants_resident(&loaded) {
            self.promote(entry);
        }
        Ok(loaded)
    }

    /// Marks the entry as just used: the least recently used resident datasets make room first.
    pub(super) fn touch(&self, entry: &Entry) {
        entry.last_used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }

    /// Opens the entry's current version if nothing has yet (a metadata request reads it
    /// without asking for it in memory).
    pub async fn opened(&self, entry: &Entry) -> Result<()> {
        if entry.current().is_none() && entry.last_error().is_none() {
            self.load_current(entry).await?;
        }
        Ok(())
    }

    fn wants_resident(&self, loaded: &Loaded) -> bool {
        let budget = self.executor.budget();
        self.on_demand.load(Ordering::Acquire)
            && budget.limit() > 0
            && Resident::estimate(&loaded.manifest) <= budget.limit()
    }

    /// Reads the entry's version into memory in the background, making room first by sending
    /// the least recently used resident datasets back to Parquet.
    fn promote(self: &Arc<Self>, entry: Arc<Entry>) {
        if entry.promoting.swap(true, Ordering::AcqRel) {
            return;
        }
        let catalog = Arc::clone(self);
        let work = async move {
            let result = catalog.make_resident(&entry).await;
            entry.promoting.store(false, Ordering::Release);
            if let Err(e) = result {
                tracing::warn!(dataset = %entry.spec.id, error = %e, "could not be read into memory");
            }
        };
        let executor = Arc::clone(&self.executor);
        tokio::spawn(async move {
            let _ = executor.background(work).await;
        });
    }

    async fn make_resident(&self, entry: &Entry) -> Result<()> {
        let Some(current) = entry.current() else {
            return Ok(());
        };
        let budget = self.executor.budget();
        let need = Resident::estimate(&current.manifest);
        let mut evicted = 0;
        while budget.limit().saturating_sub(budget.used()) < need {
            let victim = self
                .entries()
                .into_iter()
                .filter(|e| e.spec.id != entry.spec.id)
                .filter(|e| e.current().is_some_and(|c| c.resident.is_some()))
                .min_by_key(|e| e.last_used.load(Ordering::Relaxed));
            let Some(victim) = victim else { break };
            self.reopen(&victim, false).await?;
            evicted += 1;
        }
        if evicted > 0 {
            tracing::info!(dataset = %entry.spec.id, evicted, "least recently used datasets sent back to Parquet");
        }
        self.reopen(entry, true).await
    }

    /// Opens the entry's current version again, in memory or from Parquet, and switches it in
    /// unless another version was published meanwhile.
    async fn reopen(&self, entry: &Entry, resident: bool) -> Result<()> {
        let Some(current) = entry.current() else {
            return Ok(());
        };
        let reopened = self
            .executor
            .open(
                &self.storage,
                current.manifest.clone(),
                current.versions.clone(),
                resident,
            )
            .await?;
        let same = entry
            .current()
            .is_some_and(|c| c.manifest.version == current.manifest.version);
        if same {
            entry.set_current(Arc::new(reopened));
        }
        Ok(())
    }

    /// Before `serve` listens: the first ingest of every dataset that has no version yet (there
    /// is nothing else to serve for it), the others only looked up.
    pub async fn ingest_missing(self: &Arc<Self>) -> Vec<(String, Result<Outcome>)> {
        // One listing of the storage (a few paged calls on S3 for ten thousand datasets); a
        // dataset it shows is looked up by the start-up pass.
        let stored = match self.storage.dataset_ids().await {
            Ok(ids) => ids,
            Err(e) => return vec![(String::new(), Err(e))],
        };
        let missing: Vec<String> = self
            .ids()
            .into_iter()
            .filter(|id| !stored.contains(id))
            .collect();
        // A remote feed's files are those of its stored version; one never ingested has none
        // to list yet: it is ingested now.
        self.list_stored_feeds(true).await;
        let mut results = Vec::new();
        if self.feeds().iter().any(|f| f.members.is_empty()) {
            match self.ingest_feeds_of(&[], true, false).await {
                Ok(r) => results.extend(r),
                Err(e) => results.push((String::new(), Err(e))),
            }
        }
        if !missing.is_empty() {
            match self.ingest_and_load(&missing, false).await {
                Ok(r) => results.extend(r),
                Err(e) => results.push((String::new(), Err(e))),
            }
        }
        results
    }

    /// After `serve` listens, in the background: each dataset's source checked (and ingested
    /// when it changed) and its current version opened, several at a time. Harvested datasets
    /// and those with a `refresh` interval are only opened: their harvest or refresher checks
    /// their sources.
    pub async fn start_up(self: &Arc<Self>) -> Vec<(String, Result<Outcome>)> {
        let catalog = Arc::clone(self);
        let ingests = Arc::new(tokio::sync::Semaphore::new(PARALLEL_INGESTS));
        let work = async move {
            futures::stream::iter(catalog.entries())
                .map(|entry| {
                    let catalog = Arc::clone(&catalog);
                    let ingests = Arc::clone(&ingests);
                    async move {
                        let id = entry.spec.id.clone();
                        if entry.current().is_some() {
                            return None;
                        }
                        // Harvested datasets and those with a `refresh` interval have their
                        // sources checked by their harvest or refresher: their version is opened.
                        if entry.spec.provenance.is_some() || entry.spec.refresh.is_some() {
                            match catalog.load_current(&entry).await {
                                Ok(true) => return None,
                                Ok(false) => {}
                                Err(e) => {
                                    entry.set_error(e);
                                    return None;
                                }
                            }
                        }
                        let _permit = ingests.acquire().await.ok()?;
                        match catalog.ingest_one(&entry, false).await {
                            Ok(outcome) => Some((id, outcome)),
                            Err(e) => Some((id, Err(e))),
                        }
                    }
                })
                .buffer_unordered(PARALLEL)
                .filter_map(|r| async move { r })
                .collect::<Vec<_>>()
                .await
        };
        let results = match self.executor.background(work).await {
            Ok(results) => results,
            Err(e) => vec![(String::new(), Err(e))],
        };
        for feed in self.feeds() {
            if feed.has_timetable() {
                self.warm_timetable(&feed.spec.id);
            }
        }
        results
    }
}
