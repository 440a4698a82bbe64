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

use super::infer::{MAX_LISTED_REJECTS, row_problem};
use super::reader::{Dialect, Notes, Progress, Records, clip, text};
use crate::dataset::manifest::RejectedRow;
use crate::dataset::schema::{Column, ColumnType, UTC, arrow_schema};
use crate::error::Result;
use crate::values::{NumStyle, parse_any, parse_bool, parse_date, parse_datetime};

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
    fn append(&mut self, cell: Option<&str>, dialect: &Dialect) -> bool {
        let Some(cell) = cell else {
            self.append_null();
            return true;
        };
        if let Builder::Str(b) = self {
            if dialect.is_null_text(cell) {
                b.append_null();
            } else {
                b.append_value(cell);
            }
            return true;
        }
        if dialect.is_null_typed(cell) {
            self.append_null();
            return true;
        }
        match self {
            Builder::Str(_) => unreachable!("handled above"),
            Builder::Int(b, styles) => match parse_any(cell, styles).ok().and_then(|n| n.int) {
                Some(v) => {
                    b.append_value(v);
                }
                None => return false,
            },
            Builder::Float(b, styles) => match parse_any(cell, styles).map(|n| n.value) {
                Ok(v) => {
                    b.append_value(v);
                }
                Err(_) => return false,
            },
            Builder::Bool(b) => match parse_bool(cell) {
                Some(v) => {
                    b.append_value(v);
                }
                None => return false,
            },
            Builder::Date(b) => match parse_date(cell) {
                Some((days, _)) => {
                    b.append_value(days);
                }
                None => return false,
            },
            Builder::Ts(b, offset) => match parse_datetime(cell) {
                Some(dt) if dt.with_offset == *offset => {
                    b.append_value(dt.micros);
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
    pub rows_read: u64,
    pub rows_stored: u64,
    pub rows_rejected: u64,
    /// The first rejected rows, with their reasons.
    pub rejected: Vec<RejectedRow>,
}

/// A value that does not fit the type its column was given from a sample of the file: the
/// version being written is abandoned and the types are decided from the whole file.
#[derive(Debug)]
pub struct Widen {
    pub column: String,
    pub line: u64,
    pub value: String,
}

pub enum BuildOutcome {
    Built(Built),
    Widen(Widen),
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
) -> Result<BuildOutcome> {
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
    let mut row_numbers = Int64Builder::with_capacity(BATCH_ROWS);
    let mut stored: u64 = 0;
    let mut in_batch = 0usize;
    let mut flush = |builders: &mut Vec<Builder>, rows: &mut Int64Builder| -> Result<()> {
        let mut arrays: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
        arrays.push(Arc::new(rows.finish()));
        let batch = RecordBatch::try_new(schema.clone(), arrays)?;
        sink(batch)
    };
    let (mut read, mut rejected_count, mut rejected) = (0u64, 0u64, Vec::new());
    let mut reject = |line: u64, reason: String| {
        rejected_count += 1;
        if rejected.len() < MAX_LISTED_REJECTS {
            rejected.push(RejectedRow { line, reason });
        }
    };
    // One row into the builders (a macro, so that a misfit can return from `build`).
    macro_rules! store {
        ($line:expr, $rec:expr) => {{
            let (line, rec): (u64, &csv::ByteRecord) = ($line, $rec);
            read += 1;
            if let Some(reason) = row_problem(rec, columns, forced, dialect, &lenient) {
                reject(line, reason);
            } else {
                for (i, b) in builders.iter_mut().enumerate() {
                    let field = rec.get(i).map(text);
                    if !b.append(field.as_deref(), dialect) {
                        return Ok(BuildOutcome::Widen(Widen {
                            column: columns[i].name.clone(),
                            line,
                            value: field.map(|f| f.into_owned()).unwrap_or_default(),
                        }));
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
        }};
    }
    let mut notes = Notes::default();
    while let Some((line, rec)) = records.next_record()? {
        if notes.hold(line, rec, columns.len()) {
            continue;
        }
        for (l, r) in notes.release() {
            store!(l, &r);
        }
        store!(line, rec);
    }
    for (line, rec) in notes.release() {
        read += 1;
        let note = rec.get(0).map(text).unwrap_or_default();
        reject(line, format!("footnote below the table: `{}`", clip(&note)));
    }
    if in_batch > 0 || stored == 0 {
        flush(&mut builders, &mut row_numbers)?;
    }
    Ok(BuildOutcome::Built(Built {
        rows_read: read,
        rows_stored: stored,
        rows_rejected: rejected_count,
        rejected,
    }))
}
