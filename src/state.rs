//! The state every request handler shares.

use std::sync::Arc;

use crate::cache::ResponseCache;
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::query::Executor;
use crate::storage::Storage;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub catalog: Arc<Catalog>,
    pub executor: Arc<Executor>,
    pub storage: Storage,
    pub cache: ResponseCache,
    /// When the state was built: the tabular API's `/health/` reports it.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// `/openapi.json` as last written, and the catalog generation it describes.
    pub openapi: Arc<parking_lot::Mutex<Option<(u64, bytes::Bytes)>>>,
}
