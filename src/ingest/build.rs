//! The second ingest pass: records turned into Arrow batches of the decided types, with the
//! per-column profile gathered on the way.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde_json::Value;

use super::infer::row_problem;
use super::profile::{Scalar, Stats};
use super::reader::{Dialect, Progress, Records, text};
use super::values::{NumStyle, parse_any, parse_bool, parse_date, parse_datetime};
use crate::catalog::manifest::{ColumnProfile, TopValue};
use crate::catalog::schema::{Column, ColumnType, UTC, arrow_schema};
use crate::error::{Error, Result};

/// Rows per Arrow batch handed to the Parquet writer.
pub const BATCH_ROWS: usize = 64 * 1024;

enum Builder {
    Str(StringBuilder),
    Int(Int64Builder, Vec<NumStyle>),
    Float(Float64Builder, Vec<NumStyle>),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder, bool),
}

impl Builder {
    fn new(col: &Column, styles: &[NumStyle]) -> Self {
        let n = BATCH_ROWS;
        match col.kind {
            ColumnType::String => Builder::Str(StringBuilder::with_capacity(n, n * 16)),
            ColumnType::Integer => Builder::Int(Int64Builder::with_capacity(n), styles.to_vec()),
            ColumnType::Float => Builder::Float(Float64Builder::with_capacity(n), styles.to_vec()),
            ColumnType::Boolean => Builder::Bool(BooleanBuilder::with_capacity(n)),
            ColumnType::Date => Builder::Date(Date32Builder::with_capacity(n)),
            ColumnType::Datetime => Builder::Ts(
                TimestampMicrosecondBuilder::with_capacity(n),
                col.with_offset,
            ),
        }
    }

    /// Appends one cell; `false` when it does not parse (which the first pass rules out).
    fn append(&mut self, cell: Option<&str>, dialect: &Dialect, ext: &mut Stats) -> bool {
        let Some(cell) = cell else {
            self.append_null();
            ext.nulls += 1;
            return true;
        };
        if let Builder::Str(b) = self {
            if dialect.is_null_text(cell) {
                b.append_null();
                ext.nulls += 1;
            } else {
                b.append_value(cell);
                ext.see_text(cell);
            }
            return true;
        }
        if dialect.is_null_typed(cell) {
            self.append_null();
            ext.nulls += 1;
            return true;
        }
        match self {
            Builder::Str(_) => unreachable!("handled above"),
            Builder::Int(b, styles) => match parse_any(cell, styles).ok().and_then(|n| n.int) {
                Some(v) => {
                    b.append_value(v);
                    ext.see(Scalar::Int(v));
                }
                None => return false,
            },
            Builder::Float(b, styles) => match parse_any(cell, styles).map(|n| n.value) {
                Ok(v) => {
                    b.append_value(v);
                    ext.see(Scalar::Float(v));
                }
                Err(_) => return false,
            },
            Builder::Bool(b) => match parse_bool(cell) {
                Some(v) => {
                    b.append_value(v);
                    ext.see(Scalar::Bool(v));
                }
                None => return false,
            },
            Builder::Date(b) => match parse_date(cell) {
                Some((days, _)) => {
                    b.append_value(days);
                    ext.see(Scalar::Int(i64::from(days)));
                }
                None => return false,
            },
            Builder::Ts(b, offset) => match parse_datetime(cell) {
                Some(dt) if dt.with_offset == *offset => {
                    b.append_value(dt.micros);
                    ext.see(Scalar::Int(dt.micros));
                }
                _ => return false,
            },
        }
        true
    }

    fn append_null(&mut self) {
        match self {
            Builder::Str(b) => b.append_null(),
            Builder::Int(b, _) => b.append_null(),
            Builder::Float(b, _) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Ts(b, _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Int(b, _) => Arc::new(b.finish()),
            Builder::Float(b, _) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Ts(b, offset) => {
                let arr = b.finish();
                if *offset {
                    Arc::new(arr.with_timezone(UTC))
                } else {
                    Arc::new(arr)
                }
            }
        }
    }
}

/// What the second pass produced besides the batches.
pub struct Built {
    pub rows_stored: u64,
    pub profile: Vec<ColumnProfile>,
}

/// Reads the file again and hands batches of typed rows to `sink`, skipping the rows the first
/// pass rejected (the same checks decide, so both passes agree).
pub fn build(
    path: &Path,
    dialect: &Dialect,
    columns: &[Column],
    styles: &[Vec<NumStyle>],
    forced: &[Option<ColumnType>],
    progress: Progress,
    mut sink: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<Built> {
    let lenient = dialect.lenient_styles();
    let schema: SchemaRef = arrow_schema(columns);
    let mut records = Records::open_with_progress(path, dialect, progress)?;
    if dialect.header {
        records.next_record()?;
    }
    let mut builders: Vec<Builder> = columns
        .iter()
        .zip(styles)
        .map(|(c, s)| Builder::new(c, s))
        .collect();
    let mut extremes: Vec<Stats> = columns.iter().map(|_| Stats::default()).collect();
    let mut row_numbers = Int64Builder::with_capacity(BATCH_ROWS);
    let mut stored: u64 = 0;
    let mut in_batch = 0usize;
    let mut flush = |builders: &mut Vec<Builder>, rows: &mut Int64Builder| -> Result<()> {
        let mut arrays: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
        arrays.push(Arc::new(rows.finish()));
        let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(Error::internal)?;
        sink(batch)
    };
    while let Some((line, rec)) = records.next_record()? {
        if row_problem(rec, columns, forced, dialect, &lenient).is_some() {
            continue;
        }
        for (i, b) in builders.iter_mut().enumerate() {
            let field = rec.get(i).map(text);
            if !b.append(field.as_deref(), dialect, &mut extremes[i]) {
                return Err(Error::internal(format!(
                    "line {line}: column `{}` changed between passes; is the source being rewritten?",
                    columns[i].name
                )));
            }
        }
        row_numbers.append_value(stored as i64);
        stored += 1;
        in_batch += 1;
        if in_batch == BATCH_ROWS {
            flush(&mut builders, &mut row_numbers)?;
            in_batch = 0;
        }
    }
    if in_batch > 0 || stored == 0 {
        flush(&mut builders, &mut row_numbers)?;
    }
    let profile = columns
        .iter()
        .zip(extremes)
        .map(|(col, ext)| ColumnProfile {
            name: col.name.clone(),
            kind: col.kind,
            nulls: ext.nulls,
            distinct: ext.distinct(),
            top: ext
                .top()
                .into_iter()
                .map(|(v, count)| TopValue {
                    value: json_of(col, Some(v)),
                    count,
                })
                .collect(),
            min: json_of(col, ext.min.clone()),
            max: json_of(col, ext.max.clone()),
        })
        .collect();
    Ok(Built {
        rows_stored: stored,
        profile,
    })
}

/// A profile extreme in the column's JSON form (dates and datetimes as ISO text).
fn json_of(col: &Column, v: Option<Scalar>) -> Value {
    match (col.kind, v) {
        (_, None) => Value::Null,
        (ColumnType::Date, Some(Scalar::Int(days))) => {
            let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|e| e.checked_add_signed(chrono::Duration::days(days)));
            date.map_or(Value::Null, |d| {
                Value::String(d.format("%Y-%m-%d").to_string())
            })
        }
        (ColumnType::Datetime, Some(Scalar::Int(us))) => {
            match chrono::DateTime::from_timestamp_micros(us) {
                Some(dt) if col.with_offset => {
                    Value::String(dt.format("%Y-%m-%dT%H:%M:%S%.f+00:00").to_string())
                }
                Some(dt) => {
                    Value::String(dt.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string())
                }
                None => Value::Null,
            }
        }
        (_, Some(Scalar::Int(i))) => Value::from(i),
        (_, Some(Scalar::Float(f))) => {
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        (_, Some(Scalar::Bool(b))) => Value::Bool(b),
        (_, Some(Scalar::Text(s))) => Value::String(s),
    }
}
