//! The catalog: the datasets being served, each with the version currently published, the
//! older versions still kept that requests name, and the last ingest error. A request takes an
//! `Arc` of the version it starts on, so a switch never changes a query in flight.
//!
//! [`versions`] resolves the version a request reads (the `410` for one no longer kept) and
//! publishes stored versions; [`refresh`] ingests sources and keeps them fresh.

pub mod feeds;
pub mod refresh;
pub mod serving;
pub mod versions;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

// Locks that cannot be poisoned: a panicking request leaves the catalog usable.
use parking_lot::{Mutex, RwLock};

use crate::config::IngestSettings;
use crate::dataset::spec::{DatasetSpec, load_dir};
use crate::error::{Error, Result};
use crate::query::{Executor, Loaded};
use crate::storage::Storage;

/// One dataset of the catalog.
pub struct Entry {
    pub spec: DatasetSpec,
    /// What the catalog search reads, folded once (case and accents ignored).
    pub search: SearchText,
    current: RwLock<Option<Arc<Loaded>>>,
    /// Older versions still kept in storage that a cursor or pinned URL asked for.
    older: Mutex<Vec<Arc<Loaded>>>,
    last_error: RwLock<Option<Arc<Error>>>,
    /// The e-tag of the pointer last read by the watcher, to ask whether it changed.
    pointer_tag: Mutex<Option<String>>,
    /// When the dataset was last queried, on the catalog's clock (least recently used datasets
    /// leave memory first).
    last_used: std::sync::atomic::AtomicU64,
    /// Whether its version is being read into memory.
    promoting: std::sync::atomic::AtomicBool,
}

/// A dataset's words as the catalog route searches them: `_`-separated folded words of its id,
/// title, description, producer and keywords between `_`, its producer and its keywords.
pub struct SearchText {
    pub words: String,
    pub producer: Option<String>,
    pub keywords: Vec<String>,
}

impl SearchText {
    fn of(spec: &DatasetSpec) -> Self {
        use crate::dataset::names::normalize;
        let words = normalize(&format!(
            "{} {} {} {} {}",
            spec.id,
            spec.title,
            spec.description,
            spec.producer.as_deref().unwrap_or(""),
            spec.keywords.join(" ")
        ));
        SearchText {
            words: format!("_{words}_"),
            producer: spec.producer.as_deref().map(normalize),
            keywords: spec.keywords.iter().map(|k| normalize(k)).collect(),
        }
    }
}

impl Entry {
    fn new(spec: DatasetSpec) -> Self {
        Entry {
            search: SearchText::of(&spec),
            spec,
            current: RwLock::new(None),
            older: Mutex::new(Vec::new()),
            last_error: RwLock::new(None),
            pointer_tag: Mutex::new(None),
            last_used: Default::default(),
            promoting: Default::default(),
        }
    }

    /// The entry of an edited dataset file: the versions loaded for the old one stay served
    /// until the next ingest of the new one replaces them.
    fn succeeding(spec: DatasetSpec, old: &Entry) -> Self {
        Entry {
            current: RwLock::new(old.current()),
            older: Mutex::new(old.older.lock().clone()),
            pointer_tag: Mutex::new(old.pointer_tag.lock().clone()),
            last_used: old
                .last_used
                .load(std::sync::atomic::Ordering::Relaxed)
                .into(),
            ..Entry::new(spec)
        }
    }

    pub fn current(&self) -> Option<Arc<Loaded>> {
        self.current.read().clone()
    }

    /// Publishes a version, and forgets the older ones opened before that are no longer kept.
    pub fn set_current(&self, loaded: Arc<Loaded>) {
        let kept = |v: &str| loaded.versions.iter().any(|k| k.version == v);
        self.older.lock().retain(|o| kept(&o.manifest.version));
        *self.current.write() = Some(loaded);
    }

    /// An older version opened before, if any.
    pub fn older(&self, version: &str) -> Option<Arc<Loaded>> {
        let older = self.older.lock();
        older
            .iter()
            .find(|o| o.manifest.version == version)
            .cloned()
    }

    /// Remembers an older version opened for a request.
    pub fn remember(&self, loaded: Arc<Loaded>) {
        let mut older = self.older.lock();
        if !older
            .iter()
            .any(|o| o.manifest.version == loaded.manifest.version)
        {
            older.push(loaded);
        }
    }

    /// Why the last ingest or refresh failed, if it did (the served version is then older).
    pub fn last_error(&self) -> Option<Arc<Error>> {
        self.last_error.read().clone()
    }

    pub fn clear_error(&self) {
        *self.last_error.write() = None;
    }

    /// Records why the last ingest or refresh failed, and hands the error back shared.
    pub fn set_error(&self, err: Error) -> Arc<Error> {
        let err = Arc::new(err);
        self.set_shared_error(Arc::clone(&err));
        err
    }

    /// Records an error shared with other datasets (a feed's, for each of its files).
    pub fn set_shared_error(&self, err: Arc<Error>) {
        *self.last_error.write() = Some(err);
    }
}

/// The datasets served at one moment, by id and by declared resource id. A reload builds a
/// new index and swaps it in whole: a request holds the one it started with.
#[derive(Default)]
pub struct Index {
    entries: BTreeMap<String, Arc<Entry>>,
    /// Dataset ids by the `resource_id` their files declare.
    resources: BTreeMap<String, String>,
    /// Feeds by id: archives whose files are the datasets `{feed}-{file}`.
    feeds: BTreeMap<String, Arc<feeds::Feed>>,
}

impl Index {
    /// An index of these specs; two with the same id or resource id are refused. An entry of
    /// `previous` whose spec is unchanged is kept as it is; one whose spec changed keeps its
    /// loaded versions (the files say how to read the source, not which version is current).
    fn build(
        specs: Vec<DatasetSpec>,
        previous: Option<&Index>,
        known: &BTreeMap<String, Vec<String>>,
    ) -> Result<(Self, Vec<Arc<Entry>>)> {
        let mut index = Index::default();
        let mut fresh = Vec::new();
        let specs = feeds::expand(specs, previous, known, &mut index.feeds);
        for spec in specs {
            let id = spec.id.clone();
            if let Some(rid) = &spec.resource_id
                && let Some(other) = index.resources.insert(rid.clone(), id.clone())
            {
                return Err(Error::Config(format!(
                    "datasets `{other}` and `{id}` both declare resource_id `{rid}`"
                )));
            }
            let entry = match previous.and_then(|p| p.entries.get(&id)) {
                Some(old) if old.spec == spec => Arc::clone(old),
                old => {
                    let entry = Arc::new(match old {
                        Some(old) => Entry::succeeding(spec, old),
                        None => Entry::new(spec),
                    });
                    fresh.push(Arc::clone(&entry));
                    entry
                }
            };
            if index.entries.insert(id.clone(), entry).is_some() {
                return Err(Error::Config(format!(
                    "two datasets have the id `{id}`; rename one of the files"
                )));
            }
        }
        Ok((index, fresh))
    }
}

/// Where a catalog's dataset files are read again from: the directory, and the datasets given
/// besides it (CSV files named on the command line).
pub struct SpecSource {
    pub dir: PathBuf,
    pub extra: Vec<DatasetSpec>,
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

/// The datasets served, with the storage their versions live in and the executor that opens
/// them.
pub struct Catalog {
    index: RwLock<Arc<Index>>,
    /// How many times the index was replaced: what was derived from it (the OpenAPI document)
    /// is stale when this moved.
    generation: std::sync::atomic::AtomicU64,
    source: Option<SpecSource>,
    /// What the dataset files looked like at the last reload (names, sizes, times).
    files_seen: Mutex<Option<Vec<(PathBuf, u64, std::time::SystemTime)>>>,
    storage: Storage,
    executor: Arc<Executor>,
    ingest: IngestSettings,
    /// Versions opened from Parquet and made resident when queried ([`serving`]), rather than
    /// read into memory when published.
    on_demand: std::sync::atomic::AtomicBool,
    /// Ticks once per query, to order datasets by last use.
    clock: std::sync::atomic::AtomicU64,
    /// Ingests under way: dataset, what started it, since when.
    running: Mutex<BTreeMap<String, (&'static str, chrono::DateTime<chrono::Utc>)>>,
    /// The dataset files as last read, feeds unexpanded: the index is built again from them
    /// when a feed's files change.
    specs: Mutex<Vec<DatasetSpec>>,
    /// The files of each feed's stored current version, as last published.
    feed_files: Mutex<BTreeMap<String, Vec<String>>>,
    /// A replica that never ingests (`serve --read-only`): it serves what others publish.
    read_only: std::sync::atomic::AtomicBool,
}

impl Catalog {
    /// A catalog of these specs; two with the same id are refused. With a `source`, the
    /// catalog can be read again from its files ([`Catalog::reload`]).
    pub fn new(
        specs: Vec<DatasetSpec>,
        source: Option<SpecSource>,
        storage: Storage,
        executor: Arc<Executor>,
        ingest: IngestSettings,
    ) -> Result<Self> {
        let (index, _) = Index::build(specs.clone(), None, &BTreeMap::new())?;
        let files_seen = source.as_ref().map(|s| files_of(&s.dir));
        Ok(Catalog {
            index: RwLock::new(Arc::new(index)),
            generation: std::sync::atomic::AtomicU64::new(0),
            source,
            files_seen: Mutex::new(files_seen),
            storage,
            executor,
            ingest,
            on_demand: Default::default(),
            clock: Default::default(),
            running: Default::default(),
            specs: Mutex::new(specs),
            feed_files: Default::default(),
            read_only: Default::default(),
        })
    }

    /// Makes this catalog a replica that never ingests: every ingest (a first one, a refresh,
    /// an admin's) is refused, and a dataset without a published version says who publishes.
    pub fn set_read_only(&self) {
        self.read_only
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// The refusal of an ingest on a read-only replica, if this is one.
    pub(super) fn refuse_ingest(&self, id: &str) -> Result<()> {
        if !self.read_only.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        Err(Error::Unavailable(format!(
            "dataset `{id}`: this server is a read-only replica (serve --read-only) and never ingests; `qanat ingest {id}`, or a server that ingests, publishes its versions, which this one then serves"
        )))
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn index(&self) -> Arc<Index> {
        Arc::clone(&self.index.read())
    }

    pub fn ids(&self) -> Vec<String> {
        self.index().entries.keys().cloned().collect()
    }

    /// Every id `/api/resources/{rid}/` answers to: declared resource ids, then dataset ids.
    pub fn resource_ids(&self) -> Vec<String> {
        let index = self.index();
        let declared = index.resources.keys().cloned();
        declared.chain(index.entries.keys().cloned()).collect()
    }

    /// The datasets, in id order.
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        self.index().entries.values().cloned().collect()
    }

    /// The entry for `id`, or a 404 that lists the ids that exist.
    pub fn entry(&self, id: &str) -> Result<Arc<Entry>> {
        let index = self.index();
        if let Some(entry) = index.entries.get(id) {
            return Ok(Arc::clone(entry));
        }
        let known: Vec<&str> = index.entries.keys().map(String::as_str).take(20).collect();
        let more = if index.entries.len() > known.len() {
            ", …"
        } else {
            ""
        };
        Err(Error::NotFound(format!(
            "no dataset `{id}`; known datasets: {}{more}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )))
    }

    /// The dataset a portal's resource id names: the one whose file declares it as its
    /// `resource_id`, else the dataset with that id.
    pub fn resource(&self, rid: &str) -> Result<Arc<Entry>> {
        let declared = self.index().resources.get(rid).cloned();
        match declared {
            Some(id) => self.entry(&id),
            None => self.entry(rid).map_err(|_| {
                Error::NotFound(format!(
                    "no resource `{rid}`: no dataset has this id or declares it as its resource_id"
                ))
            }),
        }
    }

    /// Reads the dataset files again if they changed since the last look (a harvest or an
    /// operator wrote some), swaps the new catalog in, and serves what the new and changed
    /// datasets have in storage (a dataset with no version yet is ingested). Files that do not
    /// load leave the catalog as it was, and say why.
    pub async fn reload(self: &Arc<Self>) -> Result<Reloaded> {
        let Some(source) = &self.source else {
            return Ok(Reloaded::default());
        };
        let files = files_of(&source.dir);
        if self.files_seen.lock().as_ref() == Some(&files) {
            return Ok(Reloaded::default());
        }
        let mut specs = load_dir(&source.dir)?;
        specs.extend(source.extra.iter().cloned());
        let (changes, fresh) = self.swap(specs)?;
        *self.files_seen.lock() = Some(files);
        self.serve_fresh(fresh).await;
        Ok(changes)
    }

    /// Builds the index of these dataset files (entries whose files are unchanged kept as they
    /// are) and swaps it in; the entries that are new or changed.
    fn swap(&self, specs: Vec<DatasetSpec>) -> Result<(Reloaded, Vec<Arc<Entry>>)> {
        let before = self.index();
        let known = self.feed_files.lock().clone();
        let (index, fresh) = Index::build(specs.clone(), Some(&before), &known)?;
        *self.specs.lock() = specs;
        let mut changes = Reloaded::default();
        for entry in &fresh {
            let id = entry.spec.id.clone();
            if before.entries.contains_key(&id) {
                changes.changed.push(id);
            } else {
                changes.added.push(id);
            }
        }
        changes.removed = before
            .entries
            .keys()
            .filter(|id| !index.entries.contains_key(*id))
            .cloned()
            .collect();
        *self.index.write() = Arc::new(index);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok((changes, fresh))
    }

    /// Serves what new and changed entries have in storage; one with no version yet is
    /// ingested.
    async fn serve_fresh(self: &Arc<Self>, fresh: Vec<Arc<Entry>>) {
        for entry in fresh {
            match self.load_current(&entry).await {
                Ok(true) => {}
                Ok(false) => {
                    let _ = self.ingest_one(&entry, false).await;
                }
                Err(e) => {
                    entry.set_error(e);
                }
            }
        }
    }

    /// The version a query of `id` runs on.
    pub fn loaded(&self, id: &str) -> Result<Arc<Loaded>> {
        let entry = self.entry(id)?;
        self.loaded_of(&entry)
    }

    /// The version a query of this entry runs on.
    pub(super) fn loaded_of(&self, entry: &Entry) -> Result<Arc<Loaded>> {
        let id = &entry.spec.id;
        if let Some(when) = entry.spec.retired() {
            let pinned = entry.current().map_or(String::new(), |c| {
                format!(
                    "; its versions stay readable for a while by pinned URL, such as /api/datasets/{id}@{}/data",
                    c.manifest.version
                )
            });
            return Err(Error::Gone(format!(
                "dataset `{id}` was retired on {when}: its resource is no longer published by the portal{pinned}"
            )));
        }
        entry.current().ok_or_else(|| {
            Error::Unavailable(match entry.last_error() {
                Some(e) => format!("dataset `{id}` has no data yet: its ingest failed ({e})"),
                None => format!("dataset `{id}` has no data yet: it has not been ingested"),
            })
        })
    }
}

/// The dataset files of a directory with their sizes and modification times, to tell whether
/// any was written, added or removed since the last look without reading them.
fn files_of(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.path(), meta.len(), meta.modified().ok()?))
        })
        .collect();
    files.sort();
    files
}
