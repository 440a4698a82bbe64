//! The state every request handler shares.

use std::sync::Arc;

use crate::cache::ResponseCache;
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::keys::AdminKeys;
use crate::query::Executor;
use crate::rates::Rates;
use crate::storage::Storage;

/// A handle on the shared state: cloned for every request, so one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub settings: Arc<Settings>,
    pub catalog: Arc<Catalog>,
    pub executor: Arc<Executor>,
    pub storage: Storage,
    pub cache: ResponseCache,
    /// The requests each client may make; `None` when rate limits are off.
    pub rates: Option<Arc<Rates>>,
    /// The keys of the admin routes; `None` turns them off.
    pub admin: Option<Arc<AdminKeys>>,
    /// When the state was built: the tabular API's `/health/` reports it.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// `/openapi.json` as last written, and the catalog generation it describes.
    pub openapi: Arc<parking_lot::Mutex<Option<(u64, bytes::Bytes)>>>,
}
