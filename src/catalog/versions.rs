//! Which version a request reads, and publishing stored versions: the current one (read into
//! memory when it fits), older ones still kept (opened from Parquet when a cursor or a pinned
//! URL names them), and a `410` that says what to do for one no longer kept.

use std::sync::Arc;

use super::{Catalog, Entry};
use crate::error::{Error, Result};
use crate::query::Loaded;
use crate::query::cursor;

/// The version a data request reads.
pub struct Resolved {
    /// The dataset id, without a version.
    pub id: String,
    pub loaded: Arc<Loaded>,
    /// Whether the path names the version (`{id}@{version}`).
    pub in_path: bool,
    /// Whether the request names its version, by path or by cursor: its body can then never
    /// change.
    pub pinned: bool,
}

impl Catalog {
    /// The version a data request at `path_id` (`id` or `id@version`) with this raw query
    /// string reads: the one the path names, else the cursor's, else the current one. A path and
    /// a cursor that disagree are a 400.
    pub async fn resolve(self: &Arc<Self>, path_id: &str, raw: &str) -> Result<Resolved> {
        let (id, in_path) = match path_id.split_once('@') {
            Some((id, v)) => (id, Some(v)),
            None => (path_id, None),
        };
        let in_cursor = cursor::version_in(raw);
        if let (Some(p), Some(c)) = (in_path, &in_cursor)
            && p != c
        {
            return Err(Error::bad_request(format!(
                "the cursor belongs to version {c}, not to version {p} named in the path"
            )));
        }
        let named = in_path.map(str::to_string).or(in_cursor);
        let loaded = match &named {
            Some(v) => self.version(id, v).await?,
            None => self.serving(id).await?,
        };
        Ok(Resolved {
            id: id.to_string(),
            loaded,
            in_path: in_path.is_some(),
            pinned: named.is_some(),
        })
    }

    /// A version of a dataset: the current one, or an older one still kept in storage (opened
    /// once, then remembered while it is kept). One no longer kept is a 410 that says what to do.
    pub async fn version(&self, id: &str, version: &str) -> Result<Arc<Loaded>> {
        let entry = self.entry(id)?;
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
        let Some(manifest) = self.storage.manifest(id, version).await? else {
            let kept: Vec<String> = current
                .map(|c| c.versions.iter().map(|v| v.version.clone()).collect())
                .unwrap_or_default();
            let kept = if kept.is_empty() {
                "none".to_string()
            } else {
                kept.join(", ")
            };
            return Err(Error::Gone(format!(
                "version {version} of dataset `{id}` is no longer kept (kept: {kept}); start again from the first page"
            )));
        };
        // Older versions are read from Parquet: memory goes to the versions most asked for.
        let loaded = self
            .executor
            .open(&self.storage, manifest, Vec::new(), false)
            .await?;
        let loaded = Arc::new(loaded);
        entry.remember(Arc::clone(&loaded));
        Ok(loaded)
    }

    /// Makes the stored current version of a dataset the one served (`false` when there is
    /// none). A version already served is kept as it is, not read again.
    pub async fn load_current(&self, entry: &Entry) -> Result<bool> {
        let spec = &entry.spec;
        let current = self
            .storage
            .current_manifest_via(spec.pointer_id(), &spec.id);
        let Some(manifest) = current.await? else {
            return Ok(false);
        };
        if entry
            .current()
            .is_some_and(|c| c.manifest.version == manifest.version)
        {
            return Ok(true);
        }
        let versions = self.storage.version_infos(&entry.spec.id).await?;
        // Served on demand, a version is read into memory when queried, unless the one it
        // replaces was (a dataset in use stays in memory across its refreshes).
        let resident = !self.on_demand.load(std::sync::atomic::Ordering::Acquire)
            || entry.current().is_some_and(|c| c.resident.is_some());
        let loaded = self
            .executor
            .open(&self.storage, manifest, versions, resident)
            .await?;
        entry.set_current(Arc::new(loaded));
        Ok(true)
    }
}

impl Catalog {
    /// Whether a request for `version` of dataset `id` would read that version now, known
    /// without waiting: it is the current one (or, for a request that names its version, an
    /// older one opened and still kept), the dataset is not retired, and the dataset files
    /// were not read again since `generation`. Counts as a use of the dataset, as a request
    /// does. `false` only means "ask the full path", never an error.
    pub fn answers(&self, id: &str, version: &str, pinned: bool, generation: u64) -> bool {
        if self.generation() != generation {
            return false;
        }
        let Ok(entry) = self.entry(id) else {
            return false;
        };
        if entry.spec.retired().is_some() {
            return false;
        }
        let current = entry
            .current()
            .is_some_and(|c| c.manifest.version == version);
        if current {
            self.touch(&entry);
        }
        current || (pinned && entry.older(version).is_some())
    }
}
