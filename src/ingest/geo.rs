//! Writes a version's spatial index (`geo.bin`) once its Parquet is complete: the row number
//! and point of every row that has one, bucketed by [`GridIndex`]. The points are read twice,
//! for the grid's extent then for their cells, which are sorted within the ingest's sort budget
//! ([`super::spill`]): the index is never held whole.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::arrow::async_reader::{ParquetRecordBatchStream, ParquetRecordBatchStreamBuilder};
use tokio::io::AsyncWriteExt;

use super::sidecars::Version;
use super::spill::{Merged, Sink, Sorter, send_file, write_from};
use crate::dataset::geo::{Extent, GEO_FILE, GridIndex};
use crate::dataset::schema::ROW_COLUMN;
use crate::error::Result;
use crate::storage::FileReader;

/// Builds and writes the spatial index of a written version over its `(lat, lon)` columns,
/// sorting within `budget` bytes; the number of rows with a point.
pub async fn write(written: Version<'_>, (lat, lon): (&str, &str), budget: usize) -> Result<usize> {
    let (dir, file, meta) = written.open().await?;
    let mut extent = Extent::default();
    let read = (file, meta, lat, lon);
    let mut batches = Points::open(read.clone())?;
    while let Some(points) = batches.next().await? {
        points.iter().for_each(|p| extent.add(p.0, p.1));
    }
    let grid = GridIndex::frame(&extent);
    let mut cells = Sorter::new(budget);
    let mut batches = Points::open(read)?;
    while let Some(points) = batches.next().await? {
        for &(lat, lon, row) in &points {
            cells.push(u64::from(grid.cell(lat, lon)) << 32 | u64::from(row));
        }
        cells.settle().await?;
    }
    let n = extent.points;
    let head = grid.head(n);
    let sorted = cells.finish().await?;
    let mut out = BufWriter::new(Arc::clone(&written.storage.store), dir.join(GEO_FILE));
    out.write_all(&head).await?;
    write_from(&mut out, move |sink| entries(sorted, &sink)).await?;
    out.shutdown().await?;
    Ok(n)
}

/// Sends the cells of the sorted entries, and then their rows (held in a temporary file
/// meanwhile).
fn entries(sorted: Merged<u64>, sink: &Sink) -> Result<()> {
    let mut rows = std::io::BufWriter::new(tempfile::tempfile()?);
    let mut cells = Vec::with_capacity(1 << 16);
    for entry in sorted {
        let entry = entry?;
        cells.extend_from_slice(&((entry >> 32) as u32).to_le_bytes());
        rows.write_all(&(entry as u32).to_le_bytes())?;
        if cells.len() >= 1 << 16 {
            sink.send(std::mem::replace(&mut cells, Vec::with_capacity(1 << 16)))?;
        }
    }
    sink.send(cells)?;
    send_file(rows.into_inner().map_err(|e| e.into_error())?, sink)
}

/// The points of a file's rows (`lat`, `lon`, row number), a batch at a time, rows without
/// one (a coordinate missing, or off the globe) left out.
struct Points {
    stream: ParquetRecordBatchStream<FileReader>,
    lat: String,
    lon: String,
}

impl Points {
    fn open((file, meta, lat, lon): (FileReader, ArrowReaderMetadata, &str, &str)) -> Result<Self> {
        let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(file, meta);
        let schema = builder.schema().clone();
        let indices = [
            schema.index_of(ROW_COLUMN)?,
            schema.index_of(lat)?,
            schema.index_of(lon)?,
        ];
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        let stream = builder
            .with_projection(mask)
            .with_batch_size(64 * 1024)
            .build()?;
        Ok(Points {
            stream,
            lat: lat.to_string(),
            lon: lon.to_string(),
        })
    }

    async fn next(&mut self) -> Result<Option<Vec<(f64, f64, u32)>>> {
        let Some(batch) = self.stream.try_next().await? else {
            return Ok(None);
        };
        let mut points = Vec::new();
        let (Some(rows), Some(lats), Some(lons)) = (
            batch.column_by_name(ROW_COLUMN),
            batch.column_by_name(&self.lat),
            batch.column_by_name(&self.lon),
        ) else {
            return Ok(Some(points));
        };
        let rows = rows.as_primitive::<Int64Type>();
        // Integer degrees are points too.
        let (lats, lons) = (
            cast(lats, &DataType::Float64)?,
            cast(lons, &DataType::Float64)?,
        );
        let (lats, lons) = (
            lats.as_primitive::<Float64Type>(),
            lons.as_primitive::<Float64Type>(),
        );
        for i in 0..rows.len() {
            if lats.is_valid(i) && lons.is_valid(i) {
                let (y, x) = (lats.value(i), lons.value(i));
                if (-90.0..=90.0).contains(&y) && (-180.0..=180.0).contains(&x) {
                    points.push((y, x, rows.value(i) as u32));
                }
            }
        }
        Ok(Some(points))
    }
}
