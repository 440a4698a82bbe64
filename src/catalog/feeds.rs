//! Feeds in the catalog: a dataset file whose source is an archive (a GTFS feed, a zip of CSV
//! files) stands for one dataset per file of it, `{feed}-{file}`. They are ingested together
//! (one fetch, one version id, one pointer) and serve their timetable from the version all of
//! them read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Catalog, Index};
use crate::dataset::feed::{local_tables, member_id, member_spec};
use crate::dataset::spec::{DatasetSpec, Source};
use crate::error::{Error, Result};
use crate::ingest::{self, Outcome};
use crate::query::timetable::{Tables, Timetable};

/// A feed: its dataset file, the datasets of its files, and its timetable once built.
pub struct Feed {
    pub spec: DatasetSpec,
    /// The datasets of its files, in archive order.
    pub members: Vec<String>,
    /// One ingest of the feed at a time: a second waits, then finds it unchanged.
    ingesting: tokio::sync::Mutex<()>,
    /// The timetable of the version last asked for (built once per version).
    pub(crate) timetable: tokio::sync::Mutex<Option<Arc<Timetable>>>,
}

impl Feed {
    /// Whether the feed has what a timetable is built from: stops, trips and stop times.
    pub fn has_timetable(&self) -> bool {
        ["stops.txt", "trips.txt", "stop_times.txt"]
            .iter()
            .all(|f| self.members.contains(&member_id(&self.spec.id, f)))
    }
}

/// The dataset files with each feed replaced by its files' datasets, and the feeds by id. A
/// feed's files are those of its stored current version (`known`), else those of its local
/// archive; a remote feed never ingested has none until its first ingest. A feed whose file
/// and files are unchanged keeps its entry (and timetable).
pub(super) fn expand(
    specs: Vec<DatasetSpec>,
    previous: Option<&Index>,
    known: &BTreeMap<String, Vec<String>>,
    feeds: &mut BTreeMap<String, Arc<Feed>>,
) -> Vec<DatasetSpec> {
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        if !spec.is_feed() {
            out.push(spec);
            continue;
        }
        let files = match (known.get(&spec.id), spec.source()) {
            (Some(files), _) => files.clone(),
            (None, Ok(Source::Local(path))) => local_tables(&path),
            (None, _) => Vec::new(),
        };
        let members: Vec<DatasetSpec> = files.iter().map(|f| member_spec(&spec, f)).collect();
        let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
        let feed = match previous.and_then(|p| p.feeds.get(&spec.id)) {
            Some(old) if old.spec == spec && old.members == ids => Arc::clone(old),
            _ => Arc::new(Feed {
                spec: spec.clone(),
                members: ids,
                ingesting: Default::default(),
                timetable: Default::default(),
            }),
        };
        feeds.insert(spec.id.clone(), feed);
        out.extend(members);
    }
    out
}

impl Catalog {
    /// The feeds, in id order.
    pub fn feeds(&self) -> Vec<Arc<Feed>> {
        self.index().feeds.values().cloned().collect()
    }

    /// The feed `id`, or a 404 that lists the feeds there are.
    pub fn feed(&self, id: &str) -> Result<Arc<Feed>> {
        let index = self.index();
        if let Some(feed) = index.feeds.get(id) {
            return Ok(Arc::clone(feed));
        }
        let known: Vec<&str> = index.feeds.keys().map(String::as_str).take(20).collect();
        Err(Error::NotFound(format!(
            "no feed `{id}`; feeds: {}",
            if known.is_empty() {
                "none (a feed is a dataset whose source is a GTFS .zip)".to_string()
            } else {
                known.join(", ")
            }
        )))
    }

    /// Ingests a feed, then serves its files' stored current versions: each file's dataset
    /// gets the feed's outcome (a failure is every file's last error; the previous version
    /// stays served). A feed whose files changed rebuilds the index.
    pub(super) async fn ingest_feed(
        self: &Arc<Self>,
        feed: &Feed,
        force: bool,
    ) -> Vec<(String, Result<Outcome>)> {
        let _one = feed.ingesting.lock().await;
        let id = &feed.spec.id;
        if let Err(e) = self.refuse_ingest(id) {
            return vec![(id.clone(), Err(e))];
        }
        let _running = self.start(id, if force { "forced" } else { "ingest" });
        let outcome =
            ingest::feed::ingest_feed(&feed.spec, &self.storage, &self.ingest, force).await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                let e = Arc::new(e);
                let ids = if feed.members.is_empty() {
                    vec![id.clone()]
                } else {
                    feed.members.clone()
                };
                return ids
                    .into_iter()
                    .map(|m| {
                        if let Ok(entry) = self.entry(&m) {
                            entry.set_shared_error(Arc::clone(&e));
                        }
                        (m, Err(Error::Shared(Arc::clone(&e))))
                    })
                    .collect();
            }
        };
        let outcome_gtfs = outcome.manifest.gtfs;
        let files: Vec<String> = outcome
            .manifest
            .members
            .iter()
            .map(|f| f.file.clone())
            .collect();
        let ids: Vec<String> = outcome
            .manifest
            .members
            .iter()
            .map(|f| f.dataset.clone())
            .collect();
        self.feed_files.lock().insert(id.clone(), files);
        if ids != feed.members {
            // Files came or went, and their datasets with them; the new ones are served below.
            let specs = self.specs.lock().clone();
            if let Err(e) = self.swap(specs) {
                tracing::warn!(feed = %id, error = %e, "the catalog could not take the feed's new files");
            }
        }
        let mut results = Vec::new();
        for (member, outcome) in ids.into_iter().zip(outcome.members) {
            let loaded = match self.entry(&member) {
                Ok(entry) => self.load_current(&entry).await.map(|_| entry.clear_error()),
                Err(e) => Err(e),
            };
            results.push((member, loaded.map(|()| outcome)));
        }
        if outcome_gtfs {
            self.warm_timetable(id);
        }
        results
    }

    /// Builds a GTFS feed's timetable in the background, so that the first board asked for
    /// does not wait for it.
    pub(super) fn warm_timetable(self: &Arc<Self>, id: &str) {
        if !self.feed(id).is_ok_and(|f| f.has_timetable()) {
            return;
        }
        let (catalog, id) = (Arc::clone(self), id.to_string());
        let executor = Arc::clone(&self.executor);
        tokio::spawn(async move {
            let work = async move {
                if let Err(e) = catalog.timetable(&id).await {
                    tracing::warn!(feed = %id, error = %e, "the timetable could not be built");
                }
            };
            let _ = executor.background(work).await;
        });
    }

    /// Lists each feed's files from its stored current version (`only_unlisted`: the feeds
    /// whose files are not known yet, such as a remote feed at start, which then fetches
    /// nothing to know them), and serves the index again when a feed's files changed (another
    /// process published a version with a file more or less).
    pub(super) async fn list_stored_feeds(self: &Arc<Self>, only_unlisted: bool) {
        let mut changed = false;
        let feeds = self.feeds().into_iter();
        for feed in feeds.filter(|f| !only_unlisted || f.members.is_empty()) {
            let id = &feed.spec.id;
            let Ok(Some(m)) = self.storage.current_feed(id).await else {
                continue;
            };
            let ids: Vec<String> = m.members.iter().map(|f| f.dataset.clone()).collect();
            if ids != feed.members {
                let files = m.members.iter().map(|f| f.file.clone()).collect();
                self.feed_files.lock().insert(id.clone(), files);
                changed = true;
            }
        }
        if changed {
            let specs = self.specs.lock().clone();
            match self.swap(specs) {
                Ok((_, fresh)) => self.serve_fresh(fresh).await,
                Err(e) => tracing::warn!(error = %e, "stored feeds could not be listed"),
            }
        }
    }

    /// Ingests the feeds of these entries once each (an entry of a feed stands for all of
    /// them), and the feeds whose files are not known yet when `all`.
    pub(super) async fn ingest_feeds_of(
        self: &Arc<Self>,
        members: &[String],
        all: bool,
        force: bool,
    ) -> Result<Vec<(String, Result<Outcome>)>> {
        let mut ids = BTreeSet::new();
        for m in members {
            if let Some(member) = &self.entry(m)?.spec.member {
                ids.insert(member.feed.clone());
            }
        }
        if all {
            ids.extend(
                self.feeds()
                    .into_iter()
                    .filter(|f| f.members.is_empty())
                    .map(|f| f.spec.id.clone()),
            );
        }
        let mut results = Vec::new();
        for id in ids {
            let feed = self.feed(&id)?;
            let catalog = Arc::clone(self);
            let work = async move { catalog.ingest_feed(&feed, force).await };
            results.extend(self.executor.background(work).await?);
        }
        Ok(results)
    }
}

impl Catalog {
    /// The timetable of a GTFS feed's current version, built on first use of each version
    /// (requests that come meanwhile wait for it rather than build it again).
    pub async fn timetable(self: &Arc<Self>, id: &str) -> Result<Arc<Timetable>> {
        let feed = self.feed(id)?;
        let member = |file: &str| member_id(id, file);
        let has = |file: &str| feed.members.contains(&member(file));
        if !feed.has_timetable() {
            return Err(Error::bad_request(format!(
                "feed `{id}` is not a GTFS feed with stops, trips and stop times: it has no timetable (its files are served as datasets: {})",
                feed.members.join(", ")
            )));
        }
        let stop_times = self.serving(&member("stop_times.txt")).await?;
        let version = stop_times.manifest.version.clone();
        let mut slot = feed.timetable.lock().await;
        if let Some(t) = slot.as_ref()
            && t.version == version
        {
            return Ok(Arc::clone(t));
        }
        // Every file read at the version stop_times.txt is served at: one feed version.
        let at = |file: &'static str| {
            let catalog = Arc::clone(self);
            let (present, dataset, version) = (has(file), member(file), version.clone());
            async move {
                match present {
                    true => catalog.version(&dataset, &version).await.map(Some),
                    false => Ok(None),
                }
            }
        };
        let tables = Tables {
            stops: at("stops.txt")
                .await?
                .ok_or_else(|| Error::internal("no stops"))?,
            routes: at("routes.txt").await?,
            trips: at("trips.txt")
                .await?
                .ok_or_else(|| Error::internal("no trips"))?,
            stop_times,
            calendar: at("calendar.txt").await?,
            calendar_dates: at("calendar_dates.txt").await?,
        };
        let engine = self.executor.engine();
        let built = Arc::new(Timetable::build(engine, &version, tables).await?);
        *slot = Some(Arc::clone(&built));
        Ok(built)
    }
}
