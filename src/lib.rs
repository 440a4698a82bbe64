//! qanat: published CSV files served as a queryable API.
//!
//! - [`config`]: settings from defaults, a TOML file, the environment and flags.
//! - [`cli`]: the `serve`, `ingest` and `openapi` commands.
//! - [`catalog`]: dataset files, column naming, schemas, manifests, the served versions.
//! - [`storage`]: the object store and the dataset layout on it.
//! - [`ingest`]: fetch → sniff → infer → write Parquet → publish.
//! - [`query`]: request parameters → typed filters → DataFusion plans → batches.
//! - [`encode`]: JSON, NDJSON and CSV writers.
//! - [`cache`]: the result cache.
//! - [`http`]: the routes, one file per feature; [`openapi`]: the document they generate.
//! - [`app`], [`state`]: assembling and running the server; [`error`]: the one error type.

pub mod app;
pub mod cache;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod encode;
pub mod error;
pub mod http;
pub mod ingest;
pub mod openapi;
pub mod query;
pub mod state;
pub mod storage;

pub use error::{Error, Result};
