//! The catalog: the datasets being served, each with the version currently published, the
//! older versions still kept that requests name, and the last ingest error. A request takes an
//! `Arc` of the version it starts on, so a switch never changes a query in flight.
//!
//! [`versions`] resolves the version a request reads (the `410` for one no longer kept) and
//! publishes stored versions; [`refresh`] ingests sources and keeps them fresh.

pub mod refresh;
pub mod versions;

use std::collections::BTreeMap;
use std::sync::Arc;

// Locks that cannot be poisoned: a panicking request leaves the catalog usable.
use parking_lot::{Mutex, RwLock};

use crate::config::IngestSettings;
use crate::dataset::spec::DatasetSpec;
use crate::error::{Error, Result};
use crate::query::{Executor, Loaded};
use crate::storage::Storage;

/// One dataset of the catalog.
pub struct Entry {
    pub spec: DatasetSpec,
    current: RwLock<Option<Arc<Loaded>>>,
    /// Older versions still kept in storage that a cursor or pinned URL asked for.
    older: Mutex<Vec<Arc<Loaded>>>,
    last_error: RwLock<Option<Arc<Error>>>,
    /// The e-tag of the pointer last read by the watcher, to ask whether it changed.
    pointer_tag: Mutex<Option<String>>,
}

impl Entry {
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
        *self.last_error.write() = Some(Arc::clone(&err));
        err
    }
}

/// The datasets served, by id, with the storage their versions live in and the executor that
/// opens them.
pub struct Catalog {
    entries: BTreeMap<String, Arc<Entry>>,
    /// Dataset ids by the `resource_id` their files declare.
    resources: BTreeMap<String, String>,
    storage: Storage,
    executor: Arc<Executor>,
    ingest: IngestSettings,
}

impl Catalog {
    /// A catalog of these specs; two with the same id are refused.
    pub fn new(
        specs: Vec<DatasetSpec>,
        storage: Storage,
        executor: Arc<Executor>,
        ingest: IngestSettings,
    ) -> Result<Self> {
        let mut entries = BTreeMap::new();
        let mut resources = BTreeMap::new();
        for spec in specs {
            let id = spec.id.clone();
            if let Some(rid) = &spec.resource_id
                && let Some(other) = resources.insert(rid.clone(), id.clone())
            {
                return Err(Error::Config(format!(
                    "datasets `{other}` and `{id}` both declare resource_id `{rid}`"
                )));
            }
            let entry = Arc::new(Entry {
                spec,
                current: RwLock::new(None),
                older: Mutex::new(Vec::new()),
                last_error: RwLock::new(None),
                pointer_tag: Mutex::new(None),
            });
            if entries.insert(id.clone(), entry).is_some() {
                return Err(Error::Config(format!(
                    "two datasets have the id `{id}`; rename one of the files"
                )));
            }
        }
        Ok(Catalog {
            entries,
            resources,
            storage,
            executor,
            ingest,
        })
    }

    pub fn ids(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// Every id `/api/resources/{rid}/` answers to: declared resource ids, then dataset ids.
    pub fn resource_ids(&self) -> Vec<String> {
        let declared = self.resources.keys().cloned();
        declared.chain(self.entries.keys().cloned()).collect()
    }

    pub fn entries(&self) -> impl Iterator<Item = &Arc<Entry>> {
        self.entries.values()
    }

    /// The entry for `id`, or a 404 that lists the ids that exist.
    pub fn entry(&self, id: &str) -> Result<&Arc<Entry>> {
        self.entries.get(id).ok_or_else(|| {
            let known: Vec<&str> = self.entries.keys().map(String::as_str).take(20).collect();
            let more = if self.entries.len() > known.len() {
                ", …"
            } else {
                ""
            };
            Error::NotFound(format!(
                "no dataset `{id}`; known datasets: {}{more}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
    }

    /// The dataset a portal's resource id names: the one whose file declares it as its
    /// `resource_id`, else the dataset with that id.
    pub fn resource(&self, rid: &str) -> Result<&Arc<Entry>> {
        match self.resources.get(rid) {
            Some(id) => self.entry(id),
            None => self.entry(rid).map_err(|_| {
                Error::NotFound(format!(
                    "no resource `{rid}`: no dataset has this id or declares it as its resource_id"
                ))
            }),
        }
    }

    /// The version a query of `id` runs on.
    pub fn loaded(&self, id: &str) -> Result<Arc<Loaded>> {
        let entry = self.entry(id)?;
        entry.current().ok_or_else(|| {
            Error::Unavailable(match entry.last_error() {
                Some(e) => format!("dataset `{id}` has no data yet: its ingest failed ({e})"),
                None => format!("dataset `{id}` has no data yet: it has not been ingested"),
            })
        })
    }
}
