//! Queries: request parameters → validated query → DataFusion plan → batches.

pub mod cursor;
pub mod engine;
pub mod params;
pub mod plan;
pub mod resident;

pub use engine::{BatchStream, Engine};
pub use params::DataQuery;
