//! A streamed body: batches written one after the other in a format, what opens and closes the
//! body included, with columns renamed on the way for APIs that key rows differently.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Int64Array};
use arrow::datatypes::{Field, Int64Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::binary::{Binary, Kind};
use super::{Format, csv, json_array, ndjson};
use crate::error::Result;

/// Output names for a result's columns, and the column that counts from 0 where its output
/// counts from 1 (the tabular API's `__id` over the stored row number).
#[derive(Debug, Clone, Default)]
pub struct Relabel {
    pub names: HashMap<String, String>,
    pub plus_one: Option<String>,
}

impl Relabel {
    /// Columns renamed from their API names to an API's keys, and the stored row number (which
    /// counts from 0) written as that API's 1-based row number.
    pub fn numbered(
        names: impl IntoIterator<Item = (String, String)>,
        row: &str,
        row_key: &str,
    ) -> Self {
        let mut names: HashMap<String, String> = names.into_iter().collect();
        names.insert(row.to_string(), row_key.to_string());
        Relabel {
            names,
            plus_one: Some(row.to_string()),
        }
    }

    /// The batch with its columns renamed (those without a new name keep theirs).
    pub fn apply(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let schema = batch.schema();
        let mut fields = Vec::with_capacity(schema.fields().len());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(fields.capacity());
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            let name = self.names.get(field.name()).unwrap_or(field.name());
            let shifted = self.plus_one.as_deref() == Some(field.name().as_str());
            let column = match column.as_primitive_opt::<Int64Type>() {
                Some(ints) if shifted => {
                    let plus: Int64Array = ints.unary(|v| v.saturating_add(1));
                    Arc::new(plus) as ArrayRef
                }
                _ => Arc::clone(column),
            };
            fields.push(Field::new(
                name,
                field.data_type().clone(),
                field.is_nullable(),
            ));
            columns.push(column);
        }
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?)
    }

    fn schema(&self, schema: &SchemaRef) -> Result<SchemaRef> {
        Ok(self
            .apply(&RecordBatch::new_empty(Arc::clone(schema)))?
            .schema())
    }
}

/// Writes one body from a stream of batches.
pub struct BodyWriter {
    format: Format,
    relabel: Option<Arc<Relabel>>,
    first: bool,
    /// What opens and closes a body of rows separated by commas.
    open: Vec<u8>,
    close: Vec<u8>,
    /// The Parquet or Arrow writer of a binary body.
    binary: Option<Binary>,
    /// The latitude and longitude columns of a GeoJSON body.
    points: Option<(String, String)>,
}

impl BodyWriter {
    pub fn new(format: Format, relabel: Option<Arc<Relabel>>) -> Self {
        BodyWriter {
            format,
            relabel,
            first: true,
            open: b"[".to_vec(),
            close: b"]\n".to_vec(),
            binary: match format {
                Format::Parquet => Some(Binary::new(Kind::Parquet)),
                Format::Arrow => Some(Binary::new(Kind::Arrow)),
                _ => None,
            },
            points: None,
        }
    }

    /// A writer of a GeoJSON FeatureCollection whose points are in these columns.
    pub fn geojson(lat: &str, lon: &str) -> Self {
        BodyWriter {
            points: Some((lat.to_string(), lon.to_string())),
            ..BodyWriter::framed(
                Format::GeoJson,
                None,
                super::geojson::OPEN.to_vec(),
                super::geojson::CLOSE.to_vec(),
            )
        }
    }

    /// A writer of comma-separated rows (JSON objects or lists) inside `open` … `close`.
    pub fn framed(
        format: Format,
        relabel: Option<Arc<Relabel>>,
        open: Vec<u8>,
        close: Vec<u8>,
    ) -> Self {
        BodyWriter {
            open,
            close,
            ..BodyWriter::new(format, relabel)
        }
    }

    /// The bytes of the next batch (the CSV header and the JSON array's opening before the
    /// first).
    pub fn batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>> {
        let relabeled;
        let batch = match &self.relabel {
            Some(r) => {
                relabeled = r.apply(batch)?;
                &relabeled
            }
            None => batch,
        };
        let first = std::mem::replace(&mut self.first, false);
        match self.format {
            Format::Parquet | Format::Arrow => match &mut self.binary {
                Some(w) => w.batch(batch),
                None => Err(crate::error::Error::internal(
                    "binary body without its writer",
                )),
            },
            Format::GeoJson => {
                let Some((lat, lon)) = &self.points else {
                    return Err(crate::error::Error::internal("GeoJSON without its points"));
                };
                let rows = super::geojson::features(batch, lat, lon)?;
                Ok(self.framed_rows(first, &rows))
            }
            Format::Csv => csv(batch, first),
            Format::Ndjson | Format::Json => ndjson(batch),
            Format::Tsv => super::delimited(batch, first, b'\t'),
            Format::JsonArray | Format::JsonLists => {
                let rows = match self.format {
                    Format::JsonLists => super::json_lists(batch)?,
                    _ => {
                        let array = json_array(std::slice::from_ref(batch))?;
                        // `[row,row]` without its brackets.
                        array[1..array.len() - 1].to_vec()
                    }
                };
                Ok(self.framed_rows(first, &rows))
            }
        }
    }

    /// The bytes of these rows of a table, written straight from it; `None` when this writer
    /// renames columns or a column has a type only Arrow's writers write (then the rows are
    /// gathered into a batch for [`Self::batch`]).
    pub fn rows(&mut self, table: &RecordBatch, rows: &[u32]) -> Option<Vec<u8>> {
        if self.relabel.is_some() || self.binary.is_some() {
            return None;
        }
        let each = rows.iter().map(|r| *r as usize);
        let first = self.first;
        let out = match self.format {
            Format::Csv => super::rows::delimited_rows(table, each, first, b',')?,
            Format::Tsv => super::rows::delimited_rows(table, each, first, b'\t')?,
            Format::Ndjson | Format::Json => {
                super::rows::json_rows(table, each, super::rows::Json::Objects, b"", b"\n")?
            }
            Format::Parquet | Format::Arrow | Format::GeoJson => return None,
            Format::JsonArray | Format::JsonLists => {
                let shape = match self.format {
                    Format::JsonLists => super::rows::Json::Lists,
                    _ => super::rows::Json::Objects,
                };
                let body = super::rows::json_rows(table, each, shape, b",", b"")?;
                self.framed_rows(first, &body)
            }
        };
        self.first = false;
        Some(out)
    }

    /// Comma-separated rows in their frame: after the opening, or after the previous rows, a
    /// comma.
    fn framed_rows(&self, first: bool, rows: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(rows.len() + self.open.len());
        if first {
            out.extend_from_slice(&self.open);
        } else if !rows.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(rows);
        out
    }

    /// The bytes that end the body: an empty result's CSV header, the JSON array's closing.
    pub fn finish(&mut self, schema: &SchemaRef) -> Result<Vec<u8>> {
        let first = std::mem::replace(&mut self.first, false);
        let schema = || match &self.relabel {
            Some(r) => r.schema(schema),
            None => Ok(Arc::clone(schema)),
        };
        match self.format {
            Format::Parquet | Format::Arrow => match &mut self.binary {
                Some(w) => w.finish(&schema()?),
                None => Ok(Vec::new()),
            },
            Format::Csv if first => csv(&RecordBatch::new_empty(schema()?), true),
            Format::Tsv if first => {
                super::delimited(&RecordBatch::new_empty(schema()?), true, b'\t')
            }
            Format::JsonArray | Format::JsonLists | Format::GeoJson => {
                let mut out = if first { self.open.clone() } else { Vec::new() };
                out.extend_from_slice(&self.close);
                Ok(out)
            }
            _ => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;
    use arrow::datatypes::DataType;

    fn batch(rows: &[(i64, &str)]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("__row", DataType::Int64, false),
            Field::new("nom", DataType::Utf8, true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            ],
        )
        .unwrap()
    }

    fn relabel() -> Option<Arc<Relabel>> {
        let names = [("__row", "__id"), ("nom", "Nom de la ville")];
        Some(Arc::new(Relabel {
            names: names
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            plus_one: Some("__row".into()),
        }))
    }

    #[test]
    fn a_json_array_spans_batches_and_renames_keys() {
        let mut w = BodyWriter::new(Format::JsonArray, relabel());
        let mut out = w.batch(&batch(&[(0, "Rabat")])).unwrap();
        out.extend(w.batch(&batch(&[])).unwrap());
        out.extend(w.batch(&batch(&[(1, "Fès"), (2, "Oujda")])).unwrap());
        out.extend(w.finish(&batch(&[]).schema()).unwrap());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v[0],
            serde_json::json!({"__id": 1, "Nom de la ville": "Rabat"})
        );
        assert_eq!(v[2]["__id"], 3);
        assert_eq!(v.as_array().unwrap().len(), 3);
        let mut empty = BodyWriter::new(Format::JsonArray, None);
        assert_eq!(empty.finish(&batch(&[]).schema()).unwrap(), b"[]\n");
    }

    #[test]
    fn an_empty_csv_still_has_its_renamed_header() {
        let mut w = BodyWriter::new(Format::Csv, relabel());
        let out = w.finish(&batch(&[]).schema()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "__id,Nom de la ville\n");
    }

    #[test]
    fn rows_named_by_index_are_written_as_their_gathered_batches() {
        let table = batch(&[(0, "Rabat"), (1, "Fès, \"centre\""), (2, ""), (3, "Oujda")]);
        let parts: [&[u32]; 3] = [&[3, 1], &[], &[0, 2]];
        for format in [
            Format::Csv,
            Format::Tsv,
            Format::Ndjson,
            Format::JsonArray,
            Format::JsonLists,
        ] {
            let (mut by_rows, mut by_batch) = (Vec::new(), Vec::new());
            let mut a = BodyWriter::new(format, None);
            let mut b = BodyWriter::new(format, None);
            for rows in parts {
                by_rows.extend(a.rows(&table, rows).unwrap());
                let indices = arrow::array::UInt32Array::from(rows.to_vec());
                let gathered = arrow::compute::take_record_batch(&table, &indices).unwrap();
                by_batch.extend(b.batch(&gathered).unwrap());
            }
            by_rows.extend(a.finish(&table.schema()).unwrap());
            by_batch.extend(b.finish(&table.schema()).unwrap());
            assert_eq!(
                String::from_utf8(by_rows).unwrap(),
                String::from_utf8(by_batch).unwrap(),
                "{format:?}"
            );
        }
        // A writer that renames columns leaves the rows to be gathered.
        assert!(
            BodyWriter::new(Format::Csv, relabel())
                .rows(&table, &[0])
                .is_none()
        );
    }
}
