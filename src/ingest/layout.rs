//! The Parquet layout of a version, chosen for selective reads: row groups and pages small enough
//! for statistics and the page index to skip most of a file, dictionaries where values repeat,
//! bloom filters on identifier-like columns, and an optional physical order (`[layout] sort_by`).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array};
use arrow::record_batch::RecordBatch;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::ident;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::dataset::schema::{Column, ColumnType, ROW_COLUMN, arrow_schema, file_order};
use crate::dataset::spec::LayoutOptions;
use crate::error::{Error, Result};
use crate::storage::Storage;

/// Rows per row group unless the dataset file says otherwise.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Rows per data page: the unit the page index skips and the least a read of one row decodes.
/// Pages of 1,024 rows keep a point read (a lookup, a page of rows at scattered positions) near
/// the cost of its rows, while the page index stays a few megabytes for ten million rows: on the
/// Sirene-shaped table they served 2.3× the lookups and 1.4× the first pages of pages of 8,192
/// (benches/sirene.sh).
const PAGE_ROWS: usize = 1024;

/// The share of distinct values (in the rows types were read from) above which a column is
/// taken as an identifier worth a bloom filter.
const IDENTIFIER_SHARE: f64 = 0.5;

/// The share of distinct values above which a column is written without a dictionary: its
/// dictionary would hold more than one value in twenty of a row group, and a read of any page
/// decodes it whole first.
const DICTIONARY_SHARE: f64 = 0.05;

/// False-positive rate of the bloom filters: 1 % costs about 1.2 bytes a distinct value.
const BLOOM_FPP: f64 = 0.01;

/// Memory the sort of `sort_by` holds before spilling to disk.
const SORT_MEMORY: usize = 256 * 1024 * 1024;

/// What the writer is told about a version's columns.
pub struct Layout {
    pub row_group_rows: usize,
    /// Columns with a bloom filter, with the distinct values a row group is expected to hold.
    pub bloom: Vec<(String, u64)>,
    /// Physical order: column, descending.
    pub sort_by: Vec<(String, bool)>,
    /// Columns written without a dictionary: many distinct values, whose dictionary would be
    /// large in every row group and read whole by any read of one of its pages.
    pub plain: Vec<String>,
}

impl Layout {
    /// Decides the layout from the dataset file and what reading the types saw. Names a column
    /// that does not exist: a 400 listing the columns.
    pub fn decide(
        opts: &LayoutOptions,
        id: &str,
        columns: &[Column],
        distinct_share: &[f64],
        sample_complete: bool,
    ) -> Result<Self> {
        let row_group_rows = opts.row_group_rows.unwrap_or(ROW_GROUP_ROWS);
        let known = |name: &str, key: &str| -> Result<()> {
            if columns.iter().any(|c| c.name == name) {
                Ok(())
            } else {
                Err(Error::Config(format!(
                    "dataset `{id}`: [layout] {key} names no column `{name}`; the columns are: {}",
                    columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        };
        let mut sort_by = Vec::new();
        for s in &opts.sort_by {
            let (name, descending) = match s.strip_prefix('-') {
                Some(n) => (n, true),
                None => (s.as_str(), false),
            };
            known(name, "sort_by")?;
            sort_by.push((name.to_string(), descending));
        }
        let bloom = match &opts.bloom_filters {
            Some(names) => names
                .iter()
                .map(|n| {
                    known(n, "bloom_filters")?;
                    Ok((n.clone(), row_group_rows as u64))
                })
                .collect::<Result<Vec<_>>>()?,
            // A file read whole while typing fits in a row group or two: statistics suffice.
            None if sample_complete && distinct_share.len() == columns.len() => Vec::new(),
            None => columns
                .iter()
                .zip(distinct_share)
                .filter(|(c, share)| {
                    matches!(c.kind, ColumnType::String | ColumnType::Integer)
                        && **share >= IDENTIFIER_SHARE
                })
                .map(|(c, share)| (c.name.clone(), (row_group_rows as f64 * share) as u64 + 1))
                .collect(),
        };
        let plain = columns
            .iter()
            .zip(distinct_share)
            .filter(|(c, share)| c.kind != ColumnType::Boolean && **share >= DICTIONARY_SHARE)
            .map(|(c, _)| c.name.clone())
            .collect();
        Ok(Layout {
            row_group_rows,
            bloom,
            sort_by,
            plain,
        })
    }

    /// Writer properties: LZ4 (raw), page statistics (the column and offset indexes), row groups and
    /// pages sized for pruning, delta-encoded row numbers, bloom filters as decided.
    pub fn writer_properties(&self) -> Result<WriterProperties> {
        // LZ4 decodes several times faster than zstd, and every page a query touches is
        // decoded whole: on the Sirene-shaped table it served 1.6× the lookups and 2.5× the
        // first pages of zstd for a file a third larger.
        let mut b = WriterProperties::builder()
            .set_compression(Compression::LZ4_RAW)
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_data_page_row_count_limit(PAGE_ROWS)
            .set_write_batch_size(PAGE_ROWS)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_created_by(concat!("qanat ", env!("CARGO_PKG_VERSION")).to_string())
            // Row numbers are sequential: delta encoding stores them in a few bytes a page,
            // where a dictionary would be tried, grow and be abandoned.
            .set_column_dictionary_enabled(ROW_COLUMN.into(), false)
            .set_column_encoding(ROW_COLUMN.into(), Encoding::DELTA_BINARY_PACKED);
        for name in &self.plain {
            b = b.set_column_dictionary_enabled(name.as_str().into(), false);
        }
        for (name, ndv) in &self.bloom {
            let col = parquet::schema::types::ColumnPath::from(name.as_str());
            b = b
                .set_column_bloom_filter_enabled(col.clone(), true)
                .set_column_bloom_filter_fpp(col.clone(), BLOOM_FPP)
                .set_column_bloom_filter_max_ndv(col, *ndv);
        }
        Ok(b.build())
    }
}

/// Rewrites a version's Parquet in `sort_by` order (ties in file order), numbering the rows
/// anew so that file order is the sorted order. The sort runs under a memory budget and spills
/// to disk beyond it; the sorted file replaces the first only once complete.
pub async fn sort_version(
    storage: &Storage,
    id: &str,
    version: &str,
    columns: &[Column],
    layout: &Layout,
    data_file: &str,
) -> Result<()> {
    let env = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(SORT_MEMORY)))
        .build_arc()?;
    let ctx =
        SessionContext::new_with_config_rt(SessionConfig::new().with_target_partitions(1), env);
    ctx.register_object_store(&storage.base_url, Arc::clone(&storage.store));
    let table = storage.version_table(id, version, columns)?;
    let mut order: Vec<_> = layout
        .sort_by
        .iter()
        .map(|(name, desc)| ident(name).sort(!desc, false))
        .collect();
    order.push(file_order());
    let mut stream = ctx.read_table(table)?.sort(order)?.execute_stream().await?;

    let schema = arrow_schema(columns);
    let row_index = schema.fields().len() - 1;
    let dir = storage.version_dir(id, version);
    let temp = dir.clone().join("sorted.tmp");
    let out = object_store::buffered::BufWriter::new(Arc::clone(&storage.store), temp.clone());
    let mut writer =
        AsyncArrowWriter::try_new(out, Arc::clone(&schema), Some(layout.writer_properties()?))?;
    let mut next: i64 = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let n = batch.num_rows() as i64;
        let numbers: ArrayRef = Arc::new(Int64Array::from_iter_values(next..next + n));
        next += n;
        let mut cols = batch.columns().to_vec();
        cols[row_index] = numbers;
        let batch = RecordBatch::try_new(Arc::clone(&schema), cols)?;
        writer.write(&batch).await?;
    }
    writer.close().await?;
    storage
        .store
        .rename(&temp, &dir.clone().join(data_file))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_like_columns_get_bloom_filters() {
        let columns = vec![
            Column::new("code", ColumnType::String),
            Column::new("n", ColumnType::Integer),
            Column::new("cat", ColumnType::String),
            Column::new("x", ColumnType::Float),
        ];
        let shares = [1.0, 0.6, 0.001, 1.0];
        let opts = LayoutOptions::default();
        let big = Layout::decide(&opts, "t", &columns, &shares, false).unwrap();
        assert_eq!(
            big.bloom,
            [
                ("code".to_string(), ROW_GROUP_ROWS as u64 + 1),
                ("n".to_string(), (ROW_GROUP_ROWS as f64 * 0.6) as u64 + 1)
            ]
        );
        // A file read whole while typing needs none; a dataset file's list is taken as is.
        let small = Layout::decide(&opts, "t", &columns, &shares, true).unwrap();
        assert!(small.bloom.is_empty());
        let listed = LayoutOptions {
            bloom_filters: Some(vec!["cat".into()]),
            sort_by: vec!["-n".into()],
            row_group_rows: Some(500),
        };
        let l = Layout::decide(&listed, "t", &columns, &shares, false).unwrap();
        assert_eq!(l.bloom, [("cat".to_string(), 500)]);
        assert_eq!(l.sort_by, [("n".to_string(), true)]);
        assert!(l.writer_properties().is_ok());
    }
}
