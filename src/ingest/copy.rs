//! A version's Parquet file written to remote object storage and, as it goes, to a local
//! temporary file: the indexes built next read their columns from the local copy, where each
//! would otherwise fetch the file back (on S3, twice its size over the network).

use std::path::Path;

use bytes::Bytes;
use futures::future::BoxFuture;
use object_store::buffered::BufWriter;
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::errors::ParquetError;
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

use crate::error::Result;

/// The Parquet writer's output: the object, and the local copy when there is one.
pub struct Tee {
    remote: BufWriter,
    local: Option<tokio::io::BufWriter<tokio::fs::File>>,
}

/// The local copy of a written file, removed when dropped.
pub struct LocalCopy(TempPath);

impl LocalCopy {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Tee {
    /// Writes to `remote`, and to a local copy when `copy` is set.
    pub fn new(remote: BufWriter, copy: bool) -> Result<(Self, Option<LocalCopy>)> {
        if !copy {
            return Ok((
                Tee {
                    remote,
                    local: None,
                },
                None,
            ));
        }
        let temp = tempfile::NamedTempFile::new()
            .map_err(|e| crate::error::Error::internal(local_failed(e).to_string()))?;
        let (file, path) = temp.into_parts();
        let local = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
        Ok((
            Tee {
                remote,
                local: Some(local),
            },
            Some(LocalCopy(path)),
        ))
    }

    /// Abandons the object being written.
    pub async fn abort(mut self) -> Result<()> {
        Ok(self.remote.abort().await?)
    }
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> ParquetError {
    ParquetError::External(Box::new(e))
}

/// A failure of the local copy, with where it was and what would fix it.
fn local_failed(e: std::io::Error) -> ParquetError {
    ParquetError::General(format!(
        "the local copy of the Parquet file in `{}`: {e}; free space there or point TMPDIR \
         elsewhere",
        std::env::temp_dir().display()
    ))
}

impl AsyncFileWriter for Tee {
    fn write(&mut self, bytes: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        Box::pin(async move {
            if let Some(local) = &mut self.local {
                local.write_all(&bytes).await.map_err(local_failed)?;
            }
            self.remote.write_all(&bytes).await.map_err(external)
        })
    }

    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        Box::pin(async move {
            if let Some(local) = &mut self.local {
                local.flush().await.map_err(local_failed)?;
            }
            self.remote.shutdown().await.map_err(external)
        })
    }
}
