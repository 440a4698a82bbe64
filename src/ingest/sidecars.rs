//! The indexes written beside a version's Parquet file once it is complete, each reading the
//! file back column by column: posting lists ([`super::postings`]), orders ([`super::orders`]),
//! word lists ([`super::words`]) and the spatial grid ([`super::geo`]), sorted within the
//! ingest's sort budget ([`super::spill`]).

use std::sync::Arc;
use std::time::Instant;

use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

use super::{geo, orders, postings, words};
use crate::dataset::manifest::ColumnProfile;
use crate::dataset::schema::Column;
use crate::error::{Error, Result};
use crate::storage::{FileReader, Storage};

/// A version whose Parquet file is written: the sidecars are built from it and written beside
/// it.
#[derive(Clone, Copy)]
pub(super) struct Version<'a> {
    pub storage: &'a Storage,
    pub id: &'a str,
    pub version: &'a str,
    /// A local copy of the file, read instead of the object.
    pub local: Option<&'a super::copy::LocalCopy>,
}

impl Version<'_> {
    /// The version's directory, its Parquet file and the file's footer, read once for every
    /// column a sidecar reads.
    pub(super) async fn open(&self) -> Result<(Path, FileReader, ArrowReaderMetadata)> {
        let dir = self.storage.version_dir(self.id, self.version).clone();
        let mut file = match self.local {
            Some(copy) => FileReader {
                store: Arc::new(object_store::local::LocalFileSystem::new()),
                path: Path::from_absolute_path(copy.path())
                    .map_err(|e| Error::internal(format!("the local copy: {e}")))?,
                size: std::fs::metadata(copy.path())?.len(),
            },
            None => {
                let data = dir.clone().join(super::DATA_FILE);
                let size = self.storage.store.head(&data).await?.size;
                FileReader {
                    store: Arc::clone(&self.storage.store),
                    path: data,
                    size,
                }
            }
        };
        let meta = ArrowReaderMetadata::load_async(&mut file, ArrowReaderOptions::new()).await?;
        Ok((dir, file, meta))
    }
}

/// Builds and writes every sidecar of a written version of `rows` rows, the spatial grid over
/// `points` (its latitude and longitude columns) when it has them, within `budget` bytes.
pub(super) async fn build(
    written: Version<'_>,
    columns: &[Column],
    profile: &[ColumnProfile],
    rows: u64,
    points: Option<(&str, &str)>,
    budget: usize,
) -> Result<()> {
    // The orders' sorts overlap the lists. The budget is shared: a quarter each to the lists
    // and the orders, half to the words (folded a column a core); the spatial grid, built
    // last, has all of it.
    let id = written.id;
    let started = Instant::now();
    let (indexed, ordered, worded) = tokio::try_join!(
        postings::write(written, columns, profile, rows, budget / 4),
        orders::write(written, columns, rows, budget / 4),
        words::write(written, columns, rows, budget / 2),
    )?;
    if let Some((lat, lon)) = points {
        let points = geo::write(written, (lat, lon), budget).await?;
        tracing::info!(dataset = %id, %lat, %lon, points, "spatial index written");
    }
    if !worded.is_empty() {
        tracing::info!(dataset = %id, columns = ?worded, "word index written");
    }
    tracing::info!(dataset = %id, ms = started.elapsed().as_millis() as u64, "sidecars written");
    if !indexed.is_empty() {
        tracing::info!(dataset = %id, columns = ?indexed, "posting lists written");
    }
    if !ordered.is_empty() {
        tracing::info!(dataset = %id, columns = ?ordered, "orders written");
    }
    Ok(())
}
