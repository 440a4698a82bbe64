//! Pages in file order with no filter, read straight from a version's Parquet file by row-group
//! arithmetic: row numbers are positions in the file, so page `p` is rows `(p-1)·size ..`, found
//! in the row groups' row counts and read through a row selection that touches only the pages
//! holding them. The file's footer and page index are read once per version and kept.

use std::sync::Arc;

use std::ops::Range;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, RowSelection};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};

use crate::dataset::manifest::Manifest;
use crate::dataset::schema::ROW_COLUMN;
use crate::error::{Error, Result};
use crate::storage::Storage;

/// A version's Parquet file, its metadata in memory.
pub struct FileRows {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    meta: ArrowReaderMetadata,
    /// First row of each row group, and the total after the last.
    starts: Vec<u64>,
}

impl FileRows {
    /// Reads the footer and page index of a version stored as one file (`None` otherwise).
    pub async fn open(storage: &Storage, manifest: &Manifest) -> Result<Option<Self>> {
        let [file] = manifest.files.as_slice() else {
            return Ok(None);
        };
        let path = storage
            .version_dir(&manifest.id, &manifest.version)
            .clone()
            .join(file.as_str());
        let store = Arc::clone(&storage.store);
        let size = store.head(&path).await?.size;
        let mut reader = Reader {
            store: Arc::clone(&store),
            path: path.clone(),
            size,
        };
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load_async(&mut reader, options).await?;
        let mut starts = vec![0u64];
        for rg in meta.metadata().row_groups() {
            let last = *starts.last().unwrap_or(&0);
            starts.push(last + rg.num_rows() as u64);
        }
        if starts.last() != Some(&manifest.rows) {
            return Err(Error::internal(format!(
                "dataset `{}`: the Parquet file holds {} rows, the manifest says {}",
                manifest.id,
                starts.last().unwrap_or(&0),
                manifest.rows
            )));
        }
        Ok(Some(FileRows {
            store,
            path,
            size,
            meta,
            starts,
        }))
    }

    /// Rows `start .. start + len` (fewer at the end of the file) with the named columns in
    /// this order and the row number last; `None` when the file's row numbers are not its
    /// positions (then the caller plans the query instead).
    pub async fn rows(
        &self,
        start: u64,
        len: usize,
        columns: &[String],
    ) -> Result<Option<Vec<RecordBatch>>> {
        let total = *self.starts.last().unwrap_or(&0);
        let end = total.min(start.saturating_add(len as u64));
        if start >= end {
            return Ok(Some(Vec::new()));
        }
        // The row groups holding the rows, then which of their rows to read.
        let first = self.starts.partition_point(|s| *s <= start) - 1;
        let last = self.starts.partition_point(|s| *s < end) - 1;
        let base = self.starts[first];
        let wanted = (start - base) as usize..(end - base) as usize;
        let selection = RowSelection::from_consecutive_ranges(
            std::iter::once(wanted),
            (self.starts[last + 1] - base) as usize,
        );
        let schema = self.meta.schema();
        let mut indices = Vec::with_capacity(columns.len() + 1);
        for name in columns.iter().map(String::as_str).chain([ROW_COLUMN]) {
            indices.push(schema.index_of(name)?);
        }
        let mask = ProjectionMask::roots(self.meta.metadata().file_metadata().schema_descr(), {
            let mut sorted = indices.clone();
            sorted.sort_unstable();
            sorted
        });
        let reader = Reader {
            store: Arc::clone(&self.store),
            path: self.path.clone(),
            size: self.size,
        };
        let stream = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, self.meta.clone())
            .with_row_groups((first..=last).collect())
            .with_row_selection(selection)
            .with_projection(mask)
            .with_batch_size(len.max(1))
            .build()?;
        let read: Vec<RecordBatch> = stream.try_collect().await?;
        // The mask reads columns in file order: put them back in the order asked.
        let mut batches = Vec::with_capacity(read.len());
        for b in read {
            let order: Vec<usize> = (columns.iter().map(String::as_str).chain([ROW_COLUMN]))
                .map(|n| b.schema().index_of(n))
                .collect::<std::result::Result<_, _>>()?;
            batches.push(b.project(&order)?);
        }
        let first_row = batches.first().and_then(|b| row_at(b, 0));
        Ok((first_row == Some(start as i64)).then_some(batches))
    }
}

/// Byte ranges of one stored file, for the Parquet reader.
struct Reader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

fn external(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for Reader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let meta = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(meta))
        }
        .boxed()
    }
}

/// The row number of row `i` of a batch whose last column holds them.
pub fn row_at(batch: &RecordBatch, i: usize) -> Option<i64> {
    use arrow::array::AsArray;
    let rows = batch
        .column(batch.num_columns().checked_sub(1)?)
        .as_primitive_opt::<arrow::datatypes::Int64Type>()?;
    (i < rows.len()).then(|| rows.value(i))
}
