//! Queries: request parameters → validated [`DataQuery`] → the [`Executor`], which answers from
//! rows held in memory or plans in DataFusion → batches.
//!
//! - [`request`]: the validated query and its canonical text; [`params`]: the grammar that
//!   parses it, with [`groups`] for the syntax of `or=` groups; [`cursor`]: the opaque position
//!   of the next page.
//! - [`executor`]: the one place a query is routed and run; [`plan`]: DataFusion plans of a
//!   query; [`resident`]: versions held in memory, within the [`budget`]; [`engine`]: the
//!   DataFusion session and the runtime queries execute on; [`gate`]: the bound on queries
//!   computed at once, beyond which they are shed; [`facets`]: value counts beside a page; [`search`]: full-text
//!   search terms, resolved against the word index.

pub mod budget;
pub mod cursor;
pub mod datastore;
pub mod direct;
pub mod engine;
pub mod executor;
pub mod facets;
mod file_pages;
pub mod gate;
pub mod geo;
pub mod groups;
mod ordered;
pub mod page_cache;
pub mod params;
pub mod plan;
mod prune;
pub mod ranges;
pub mod request;
pub mod resident;
pub mod search;
pub mod sidecar;
pub mod timetable;

pub use engine::{BatchStream, Chunk, Engine};
pub use executor::{Executor, Loaded, Page};
pub use request::DataQuery;
