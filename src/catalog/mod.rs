//! The catalog: the datasets being served, each with the version currently published. A
//! request takes an `Arc` of the version it starts on, so a switch never changes a query
//! in flight.

pub mod manifest;
pub mod names;
pub mod schema;
pub mod spec;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use datafusion::catalog::TableProvider;

use crate::error::{Error, Result};
use manifest::Manifest;
use schema::Column;
use spec::DatasetSpec;

/// A published version, ready to query.
pub struct Loaded {
    pub manifest: Manifest,
    pub table: Arc<dyn TableProvider>,
    /// The rows in memory, when the version fits the resident budget (`table` then reads them).
    pub resident: Option<Arc<crate::query::resident::Resident>>,
    /// The versions kept in storage when this one was loaded, newest first.
    pub versions: Vec<manifest::VersionInfo>,
}

impl Loaded {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.manifest.schema.iter().find(|c| c.name == name)
    }
}

/// One dataset of the catalog.
pub struct Entry {
    pub spec: DatasetSpec,
    current: RwLock<Option<Arc<Loaded>>>,
    /// Older versions still kept in storage that a cursor or pinned URL asked for.
    older: Mutex<Vec<Arc<Loaded>>>,
    last_error: RwLock<Option<String>>,
}

impl Entry {
    pub fn current(&self) -> Option<Arc<Loaded>> {
        self.current.read().expect("lock poisoned").clone()
    }

    /// Publishes a version, and forgets the older ones opened before that are no longer kept.
    pub fn set_current(&self, loaded: Arc<Loaded>) {
        let kept = |v: &str| loaded.versions.iter().any(|k| k.version == v);
        self.older
            .lock()
            .expect("lock poisoned")
            .retain(|o| kept(&o.manifest.version));
        *self.current.write().expect("lock poisoned") = Some(loaded);
    }

    /// An older version opened before, if any.
    pub fn older(&self, version: &str) -> Option<Arc<Loaded>> {
        let older = self.older.lock().expect("lock poisoned");
        older
            .iter()
            .find(|o| o.manifest.version == version)
            .cloned()
    }

    /// Remembers an older version opened for a request.
    pub fn remember(&self, loaded: Arc<Loaded>) {
        let mut older = self.older.lock().expect("lock poisoned");
        if !older
            .iter()
            .any(|o| o.manifest.version == loaded.manifest.version)
        {
            older.push(loaded);
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.read().expect("lock poisoned").clone()
    }

    pub fn clear_error(&self) {
        *self.last_error.write().expect("lock poisoned") = None;
    }

    pub fn set_error(&self, err: String) {
        *self.last_error.write().expect("lock poisoned") = Some(err);
    }
}

/// The datasets served, by id.
#[derive(Default)]
pub struct Catalog {
    entries: BTreeMap<String, Arc<Entry>>,
}

impl Catalog {
    /// A catalog of these specs; two with the same id are refused.
    pub fn new(specs: Vec<DatasetSpec>) -> Result<Self> {
        let mut entries = BTreeMap::new();
        for spec in specs {
            let id = spec.id.clone();
            let entry = Arc::new(Entry {
                spec,
                current: RwLock::new(None),
                older: Mutex::new(Vec::new()),
                last_error: RwLock::new(None),
            });
            if entries.insert(id.clone(), entry).is_some() {
                return Err(Error::Config(format!(
                    "two datasets have the id `{id}`; rename one of the files"
                )));
            }
        }
        Ok(Catalog { entries })
    }

    pub fn ids(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
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
