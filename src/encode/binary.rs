//! Parquet files and Arrow IPC streams written batch by batch into a body: each write hands
//! back the bytes the writer produced, so a download of any size holds at most one row group
//! (Parquet) or one batch (Arrow) in memory.

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::Result;

/// Rows a Parquet row group holds at most: readers get row groups they can skip and the writer
/// buffers one of them.
const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Encoded bytes past which a row group is flushed early (wide rows).
const ROW_GROUP_BYTES: usize = 16 * 1024 * 1024;

/// Which binary format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Parquet,
    Arrow,
}

/// A writer of one binary body, opened on the first batch's schema.
pub struct Binary {
    kind: Kind,
    open: Option<Open>,
}

enum Open {
    Parquet(Box<ArrowWriter<Vec<u8>>>, SchemaRef),
    Arrow(Box<StreamWriter<Vec<u8>>>, SchemaRef),
}

impl Binary {
    pub fn new(kind: Kind) -> Self {
        Binary { kind, open: None }
    }

    /// The bytes written for this batch (often none for Parquet until a row group fills).
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let open = self.open(&batch.schema())?;
        let out = match open {
            Open::Parquet(w, schema) => {
                w.write(&conform(batch, schema)?)?;
                if w.in_progress_size() > ROW_GROUP_BYTES {
                    w.flush()?;
                }
                // The writer counts the bytes it wrote itself; taking them out of its buffer
                // does not move the offsets the footer records.
                std::mem::take(w.inner_mut())
            }
            Open::Arrow(w, schema) => {
                w.write(&conform(batch, schema)?)?;
                std::mem::take(w.get_mut())
            }
        };
        Ok(out)
    }

    /// The bytes that end the body: the last row group and the footer, or the end-of-stream
    /// marker (a body with no rows is still a valid file of the result's columns).
    pub fn finish(&mut self, schema: &SchemaRef) -> Result<Vec<u8>> {
        let out = match self.open(schema)? {
            Open::Parquet(w, _) => {
                w.finish()?;
                std::mem::take(w.inner_mut())
            }
            Open::Arrow(w, _) => {
                w.finish()?;
                std::mem::take(w.get_mut())
            }
        };
        Ok(out)
    }

    fn open(&mut self, schema: &SchemaRef) -> Result<&mut Open> {
        if self.open.is_none() {
            // Every column nullable and no metadata: batches from different routes of the
            // executor then all fit the schema the file was opened with.
            let fields: Vec<Field> = (schema.fields().iter())
                .map(|f| Field::new(f.name(), f.data_type().clone(), true))
                .collect();
            let schema = Arc::new(Schema::new(fields));
            self.open = Some(match self.kind {
                Kind::Parquet => {
                    let props = WriterProperties::builder()
                        .set_compression(Compression::LZ4_RAW)
                        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                        .build();
                    let w = ArrowWriter::try_new(Vec::new(), Arc::clone(&schema), Some(props))?;
                    Open::Parquet(Box::new(w), schema)
                }
                Kind::Arrow => {
                    let w = StreamWriter::try_new(Vec::new(), &schema)?;
                    Open::Arrow(Box::new(w), schema)
                }
            });
        }
        Ok(self.open.as_mut().expect("opened above"))
    }
}

/// The batch under the writer's schema (same columns and types; nullability and metadata may
/// differ between the executor's routes).
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema_ref() == schema {
        return Ok(batch.clone());
    }
    Ok(RecordBatch::try_new(
        Arc::clone(schema),
        batch.columns().to_vec(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array, StringArray};
    use arrow::datatypes::DataType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn batch(from: i64, n: i64) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("nom", DataType::Utf8, true),
        ]);
        let names: Vec<Option<String>> = (from..from + n)
            .map(|i| (i % 3 != 0).then(|| format!("Fès {i}")))
            .collect();
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from_iter_values(from..from + n)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap()
    }

    fn write(kind: Kind, batches: &[RecordBatch]) -> Vec<u8> {
        let mut w = Binary::new(kind);
        let mut out = Vec::new();
        for b in batches {
            out.extend(w.batch(b).unwrap());
        }
        out.extend(w.finish(&batches[0].schema()).unwrap());
        out
    }

    #[test]
    fn parquet_written_in_pieces_reads_back_whole() {
        let batches = [batch(0, 70_000), batch(70_000, 0), batch(70_000, 100_000)];
        let bytes = write(Kind::Parquet, &batches);
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        // 170,000 rows in row groups of at most 65,536.
        assert_eq!(reader.metadata().num_row_groups(), 3);
        let read: Vec<RecordBatch> = reader.build().unwrap().map(|b| b.unwrap()).collect();
        let all = arrow::compute::concat_batches(&read[0].schema(), &read).unwrap();
        assert_eq!(all.num_rows(), 170_000);
        let n = all.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(n.value(123_456), 123_456);
        let nom = all
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(nom.value(100_001), "Fès 100001");
        assert!(nom.is_null(99_999));
    }

    #[test]
    fn an_arrow_stream_reads_back_and_an_empty_result_is_still_a_file() {
        let bytes = write(Kind::Arrow, &[batch(0, 5), batch(5, 2)]);
        let reader = arrow::ipc::reader::StreamReader::try_new(&bytes[..], None).unwrap();
        let read: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(read.iter().map(|b| b.num_rows()).sum::<usize>(), 7);
        assert_eq!(read[1].schema().field(1).name(), "nom");

        let schema = batch(0, 0).schema();
        let mut w = Binary::new(Kind::Parquet);
        let bytes = w.finish(&schema).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        assert_eq!(reader.schema().fields().len(), 2);
        assert_eq!(reader.metadata().file_metadata().num_rows(), 0);
    }
}
