//! What a dataset is, independent of serving it: its dataset file ([`spec`]), the feeds whose
//! files are datasets ([`feed`], read with the [`gtfs`] reference), the API names of
//! its columns ([`names`]), its stored schema ([`schema`]) and the manifest of a stored version
//! with its ingest report and profile ([`manifest`]), and the sidecars' formats ([`postings`],
//! [`orders`], and [`words`], which also folds text as full-text search compares it).

pub mod feed;
pub mod geo;
pub mod gtfs;
pub mod manifest;
pub mod names;
pub mod orders;
pub mod postings;
pub mod schema;
pub mod spec;
pub mod words;
