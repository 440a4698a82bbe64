//! Writers that turn Arrow batches into JSON, NDJSON, CSV, Parquet and Arrow IPC bytes, one batch
//! at a time.

mod binary;
mod body;
mod decimal;
pub mod geojson;
mod rows;

pub use body::{BodyWriter, Relabel};

use arrow::record_batch::RecordBatch;

use crate::error::Result;

/// Datetimes as API.md specifies: `YYYY-MM-DDTHH:MM:SS`, fractional seconds only when present,
/// an offset only on columns whose source had one.
const TIMESTAMP: &str = "%Y-%m-%dT%H:%M:%S%.f";
const TIMESTAMP_TZ: &str = "%Y-%m-%dT%H:%M:%S%.f%:z";

/// Output formats of the data routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// A page: the rows inside an envelope with links and meta.
    Json,
    Csv,
    Ndjson,
    /// The whole result as one JSON array of row objects (the tabular API's JSON export).
    JsonArray,
    /// Tab-separated values (CKAN's `tsv`).
    Tsv,
    /// Rows as JSON arrays of values, comma-separated, inside a frame the caller gives (CKAN's
    /// `lists` records and JSON dumps).
    JsonLists,
    /// A Parquet file.
    Parquet,
    /// An Arrow IPC stream.
    Arrow,
    /// A GeoJSON FeatureCollection of the rows' points.
    GeoJson,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json | Format::JsonArray | Format::JsonLists => "application/json",
            Format::Tsv => "text/tab-separated-values; charset=utf-8",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::GeoJson => "application/geo+json",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::JsonArray => "json-array",
            Format::Tsv => "tsv",
            Format::JsonLists => "json-lists",
            Format::Parquet => "parquet",
            Format::Arrow => "arrow",
            Format::GeoJson => "geojson",
        }
    }

    /// The download format a request's `Accept` header prefers (highest `q`, then first listed)
    /// among the formats the data routes stream; `None` when it prefers JSON, any type, or none
    /// it knows (the route's own format then).
    pub fn accepted(accept: &str) -> Option<Format> {
        let mut best: Option<(f32, Option<Format>)> = None;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let format = match media.as_str() {
                "application/vnd.apache.parquet" | "application/x-parquet" => Some(Format::Parquet),
                "application/vnd.apache.arrow.stream" => Some(Format::Arrow),
                "text/csv" => Some(Format::Csv),
                "application/x-ndjson" | "application/ndjson" => Some(Format::Ndjson),
                "application/geo+json" => Some(Format::GeoJson),
                "application/json" | "*/*" | "application/*" => None,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, format));
            }
        }
        best.and_then(|(_, f)| f)
    }
}

/// Rows as a JSON array of objects, nulls written out.
pub fn json_array(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    out.push(b'[');
    for b in batches.iter().filter(|b| b.num_rows() > 0) {
        let Some(rows) = rows::json(b, rows::Json::Objects, b",", b"") else {
            return arrow_json_array(batches);
        };
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(&rows);
    }
    out.push(b']');
    Ok(out)
}

/// [`json_array`] by Arrow's writer, for columns of types [`rows`] does not write.
fn arrow_json_array(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    {
        let mut w = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .with_timestamp_format(TIMESTAMP.into())
            .with_timestamp_tz_format(TIMESTAMP_TZ.into())
            .build::<_, arrow::json::writer::JsonArray>(&mut out);
        for b in batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    if out.is_empty() {
        out.extend_from_slice(b"[]");
    }
    Ok(out)
}

/// Rows as JSON arrays of their values, in column order, separated by commas (no brackets
/// around them all).
pub fn json_lists(batch: &RecordBatch) -> Result<Vec<u8>> {
    if let Some(out) = rows::json(batch, rows::Json::Lists, b",", b"") {
        return Ok(out);
    }
    let objects: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(&json_array(std::slice::from_ref(batch))?)?;
    let mut out = Vec::with_capacity(batch.num_rows() * 48);
    for (i, row) in objects.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let values: Vec<serde_json::Value> = row.into_iter().map(|(_, v)| v).collect();
        serde_json::to_writer(&mut out, &values)?;
    }
    Ok(out)
}

/// A page body: `{"data": rows, "links": …, "meta": …}`, the rows already encoded.
pub fn page(data: &[u8], links: &serde_json::Value, meta: &serde_json::Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() + 512);
    out.extend_from_slice(b"{\"data\":");
    out.extend_from_slice(data);
    out.extend_from_slice(b",\"links\":");
    serde_json::to_writer(&mut out, links)?;
    out.extend_from_slice(b",\"meta\":");
    serde_json::to_writer(&mut out, meta)?;
    out.push(b'}');
    Ok(out)
}

/// Rows as newline-delimited JSON objects.
pub fn ndjson(batch: &RecordBatch) -> Result<Vec<u8>> {
    if let Some(out) = rows::json(batch, rows::Json::Objects, b"", b"\n") {
        return Ok(out);
    }
    let mut out = Vec::with_capacity(batch.num_rows() * 64);
    {
        let mut w = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .with_timestamp_format(TIMESTAMP.into())
            .with_timestamp_tz_format(TIMESTAMP_TZ.into())
            .build::<_, arrow::json::writer::LineDelimited>(&mut out);
        w.write(batch)?;
        w.finish()?;
    }
    Ok(out)
}

/// Rows as CSV (comma, `"` quoting, empty for null), with the header when asked.
pub fn csv(batch: &RecordBatch, header: bool) -> Result<Vec<u8>> {
    delimited(batch, header, b',')
}

/// Rows as delimited text, `"` quoting, empty for null, with the header when asked.
pub fn delimited(batch: &RecordBatch, header: bool, delimiter: u8) -> Result<Vec<u8>> {
    if let Some(out) = rows::delimited(batch, header, delimiter) {
        return Ok(out);
    }
    let mut out = Vec::with_capacity(batch.num_rows() * 64);
    {
        let mut w = arrow::csv::WriterBuilder::new()
            .with_header(header)
            .with_delimiter(delimiter)
            .with_timestamp_format(TIMESTAMP.into())
            .with_timestamp_tz_format(TIMESTAMP_TZ.into())
            .with_date_format("%Y-%m-%d".into())
            .build(&mut out);
        w.write(batch)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        Date32Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("x", DataType::Float64, true),
            Field::new("d", DataType::Date32, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new(
                "tz",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![Some("Fès, \"centre\""), None])),
                Arc::new(Int64Array::from(vec![Some(7), None])),
                Arc::new(Float64Array::from(vec![Some(1.5), None])),
                Arc::new(Date32Array::from(vec![Some(19904), None])),
                Arc::new(TimestampMicrosecondArray::from(vec![Some(1_500_000), None])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(0), None]).with_timezone("+00:00"),
                ),
            ],
        )
        .unwrap()
    }

    #[test]
    fn json_writes_types_as_the_contract_says() {
        let out = String::from_utf8(json_array(&[batch()]).unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["name"], "Fès, \"centre\"");
        assert_eq!(v[0]["n"], 7);
        assert_eq!(v[0]["x"], 1.5);
        assert_eq!(v[0]["d"], "2024-06-30");
        assert_eq!(v[0]["t"], "1970-01-01T00:00:01.500");
        assert_eq!(v[0]["tz"], "1970-01-01T00:00:00+00:00");
        assert_eq!(v[1]["n"], serde_json::Value::Null);
        assert_eq!(json_array(&[]).unwrap(), b"[]");
    }

    #[test]
    fn accept_picks_the_preferred_download_format() {
        let f = Format::accepted;
        assert_eq!(f("application/vnd.apache.parquet"), Some(Format::Parquet));
        assert_eq!(
            f("application/json;q=0.5, application/vnd.apache.arrow.stream"),
            Some(Format::Arrow)
        );
        assert_eq!(f("application/json, text/csv"), None);
        assert_eq!(
            f("text/csv;q=0, application/x-ndjson;q=0.2"),
            Some(Format::Ndjson)
        );
        assert_eq!(f("text/html,application/xhtml+xml,*/*;q=0.8"), None);
        assert_eq!(f("image/png"), None);
        assert_eq!(f(""), None);
    }

    #[test]
    fn csv_quotes_and_leaves_nulls_empty() {
        let out = String::from_utf8(csv(&batch(), true).unwrap()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "name,n,x,d,t,tz");
        assert_eq!(
            lines[1],
            "\"Fès, \"\"centre\"\"\",7,1.5,2024-06-30,1970-01-01T00:00:01.500,1970-01-01T00:00:00+00:00"
        );
        assert_eq!(lines[2], ",,,,,");
    }
}
