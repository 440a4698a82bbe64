//! Writes a version's spatial index (`geo.bin`) once its Parquet is complete: the row number
//! and point of every row that has one, bucketed by [`GridIndex`].

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ProjectionMask;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;

use super::postings::open_written;
use crate::dataset::geo::{GEO_FILE, GridIndex};
use crate::dataset::schema::ROW_COLUMN;
use crate::error::Result;
use crate::storage::Storage;

/// Builds and writes the spatial index of a written version over its `lat` and `lon` columns;
/// the number of rows with a point.
pub async fn write(
    storage: &Storage,
    id: &str,
    version: &str,
    data_file: &str,
    lat: &str,
    lon: &str,
) -> Result<usize> {
    let dir = storage.version_dir(id, version).clone();
    let (file, meta) = open_written(storage, &dir, data_file).await?;
    let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(file, meta);
    let schema = builder.schema().clone();
    let indices = [
        schema.index_of(ROW_COLUMN)?,
        schema.index_of(lat)?,
        schema.index_of(lon)?,
    ];
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    let mut stream = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()?;
    let mut points = Vec::new();
    while let Some(batch) = stream.try_next().await? {
        let (Some(rows), Some(lats), Some(lons)) = (
            batch.column_by_name(ROW_COLUMN),
            batch.column_by_name(lat),
            batch.column_by_name(lon),
        ) else {
            continue;
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
    }
    let index = GridIndex::build(points);
    let n = index.len();
    let bytes = Bytes::from(index.to_bytes());
    storage
        .store
        .put(&dir.join(GEO_FILE), PutPayload::from(bytes))
        .await?;
    Ok(n)
}
