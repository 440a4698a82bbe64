//! One integration-test binary (faster to link than one per file), a module per feature.

mod blocks;
mod catalog;
mod ckan;
mod cli;
mod corpus;
mod differential;
mod errors;
mod failures;
mod harvest;
mod harvest_run;
mod ingest;
mod layout;
mod memory;
mod openapi;
mod orders;
mod page_cache;
mod paging;
mod publish;
mod query;
mod resident;
mod sheets;
mod sidecar;
mod socket;
mod sources;
mod support;
mod tabular;
