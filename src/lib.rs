//! qanat: published CSV files served as a queryable API.
//!
//! The layers, each using only those listed before it (no module imports one after it):
//!
//! - [`error`]: the one error type and its statuses; [`config`]: the settings tree.
//! - [`values`]: typed values from published text (numbers, dates, datetimes, booleans).
//! - [`dataset`]: what a dataset is: its dataset file, column names, schema, manifest.
//! - [`storage`]: the object store, the dataset layout on it, tables over stored versions.
//! - [`ingest`]: fetch → sniff → infer → write Parquet → switch the current version.
//! - [`harvest`]: a portal's catalog (CKAN, udata) into dataset files, ingested and retired.
//! - [`query`]: request parameters → validated query → the executor (memory or DataFusion).
//! - [`catalog`]: the datasets served, their versions, ingests and refreshes.
//! - [`encode`]: JSON, NDJSON and CSV writers; [`cache`]: the result cache; [`rates`]: the
//!   requests each client may make; [`keys`]: the keys of the admin routes.
//! - [`openapi`]: the frame of the OpenAPI document; [`http`]: the routes, one file per feature,
//!   which complete it.
//! - [`state`], [`app`]: assembling and running the server; [`cli`]: the commands.

pub mod app;
pub mod cache;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod encode;
pub mod error;
pub mod harvest;
pub mod http;
pub mod ingest;
pub mod keys;
pub mod openapi;
pub mod query;
pub mod rates;
pub mod state;
pub mod storage;
pub mod values;

pub use error::{Error, Result};
