//! Rows written straight from Arrow arrays: each column typed once per batch, each value
//! formatted into the output buffer with no allocation — integers by `itoa`, floats by
//! `ryu`/`lexical-core` (the crates Arrow's own writers use, so the bytes are the same), text
//! quoted or escaped in place, dates and datetimes from their numbers. Columns of other types
//! return `None`, and the caller uses Arrow's writers.

use arrow::array::{
    Array, AsArray, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type, TimeUnit};
use chrono::{Datelike, NaiveDate, Timelike};
use serde::Serializer as _;

use super::decimal::Decimals;

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// One column of a batch, typed.
enum Col<'a> {
    Text(&'a StringArray),
    Int(&'a Int64Array),
    Float(&'a Float64Array),
    Bool(&'a BooleanArray),
    Date(&'a Date32Array),
    /// Microseconds, and whether the column carries the UTC offset.
    Stamp(&'a TimestampMicrosecondArray, bool),
}

/// A column as the writers read it: typed, its nulls at hand, and the text of its recent
/// floats and dates remembered (open data repeats them: coordinates of the same stops, the
/// same service days), since formatting a float is most of the cost of writing it.
struct Column<'a> {
    col: Col<'a>,
    nulls: Option<&'a NullBuffer>,
    memo: Memo,
    /// How the column's floats were last written as delimited text.
    decimals: Decimals,
}

impl Column<'_> {
    #[inline]
    fn is_null(&self, row: usize) -> bool {
        self.nulls.is_some_and(|n| n.is_null(row))
    }
}

/// The batch's columns typed, or `None` when one has a type written by Arrow's writers only.
fn columns(batch: &RecordBatch) -> Option<Vec<Column<'_>>> {
    batch
        .columns()
        .iter()
        .map(|a| {
            let col = match a.data_type() {
                DataType::Utf8 => Col::Text(a.as_string::<i32>()),
                DataType::Int64 => Col::Int(a.as_primitive::<Int64Type>()),
                DataType::Float64 => Col::Float(a.as_primitive::<Float64Type>()),
                DataType::Boolean => Col::Bool(a.as_boolean()),
                DataType::Date32 => Col::Date(a.as_primitive::<Date32Type>()),
                DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                    let utc = match tz.as_deref() {
                        None => false,
                        Some("+00:00" | "UTC" | "Z") => true,
                        Some(_) => return None,
                    };
                    Col::Stamp(a.as_primitive(), utc)
                }
                _ => return None,
            };
            let memo = Memo::new(matches!(col, Col::Float(_) | Col::Date(_)));
            Some(Column {
                col,
                nulls: a.nulls(),
                memo,
                decimals: Decimals::default(),
            })
        })
        .collect()
}

/// About how many bytes a row of these columns takes written out.
fn row_bytes(cols: &[Column<'_>]) -> usize {
    let each = |c: &Column<'_>| match c.col {
        Col::Text(a) if !a.is_empty() => {
            let offsets = a.value_offsets();
            (offsets[offsets.len() - 1] - offsets[0]) as usize / a.len() + 3
        }
        Col::Text(_) | Col::Bool(_) => 6,
        Col::Int(_) => 8,
        Col::Float(_) | Col::Date(_) => 14,
        Col::Stamp(..) => 28,
    };
    cols.iter().map(each).sum::<usize>() + cols.len() * 2 + 2
}

/// Rows as delimited text: `"` quoting where a value holds the delimiter, a quote or a line
/// break (quotes doubled), empty for null, `\n` after each row; the header first when asked.
/// As the `csv` crate writes it, a row of one empty field is `""`.
pub fn delimited(batch: &RecordBatch, header: bool, delimiter: u8) -> Option<Vec<u8>> {
    delimited_rows(batch, 0..batch.num_rows(), header, delimiter)
}

/// [`delimited`] for these rows of a table, in this order.
pub fn delimited_rows(
    batch: &RecordBatch,
    rows: impl ExactSizeIterator<Item = usize>,
    header: bool,
    delimiter: u8,
) -> Option<Vec<u8>> {
    let mut cols = columns(batch)?;
    let mut out = Vec::with_capacity(rows.len() * row_bytes(&cols) + 256);
    let special = Special::new(delimiter);
    let lone = cols.len() == 1;
    if header {
        for (i, f) in batch.schema().fields().iter().enumerate() {
            if i > 0 {
                out.push(delimiter);
            }
            field(&mut out, f.name().as_bytes(), &special, lone);
        }
        out.push(b'\n');
    }
    for row in rows {
        for (i, c) in cols.iter_mut().enumerate() {
            if i > 0 {
                out.push(delimiter);
            }
            if c.is_null(row) {
                if lone {
                    out.extend_from_slice(b"\"\"");
                }
                continue;
            }
            match &c.col {
                Col::Text(a) => field(&mut out, a.value(row).as_bytes(), &special, lone),
                Col::Float(a) => {
                    let v = a.value(row);
                    let decimals = &mut c.decimals;
                    c.memo
                        .write(&mut out, v.to_bits(), |out| decimals.write(out, v));
                }
                _ => scalar(&mut out, c, row),
            }
        }
        out.push(b'\n');
    }
    Some(out)
}

/// Longest text a [`Memo`] keeps.
const MEMO_TEXT: usize = 32;
/// Entries of a [`Memo`]: a power of two.
const MEMO_SLOTS: usize = 256;

/// The text of recently written values of one column, by the value's bits, in a small
/// direct-mapped table (a miss formats the value and takes the slot).
struct Memo {
    slots: Vec<(u64, u8, [u8; MEMO_TEXT])>,
}

impl Memo {
    fn new(used: bool) -> Self {
        let slots = if used { MEMO_SLOTS } else { 0 };
        Memo {
            slots: vec![(0, 0, [0; MEMO_TEXT]); slots],
        }
    }

    /// Writes the text of the value with these bits: remembered, or written by `format` and
    /// remembered when it fits.
    #[inline]
    fn write(&mut self, out: &mut Vec<u8>, bits: u64, format: impl FnOnce(&mut Vec<u8>)) {
        let at = (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % MEMO_SLOTS;
        let (key, len, text) = &mut self.slots[at];
        if *len != 0 && *key == bits {
            out.extend_from_slice(&text[..*len as usize]);
            return;
        }
        let start = out.len();
        format(out);
        let written = &out[start..];
        *len = 0;
        if let Some(slot) = text.get_mut(..written.len()) {
            slot.copy_from_slice(written);
            *key = bits;
            *len = written.len() as u8;
        }
    }
}

/// The bytes that make a delimited field quoted: the delimiter, the quote and line breaks.
struct Special {
    delimiter: u8,
    table: [bool; 256],
}

impl Special {
    fn new(delimiter: u8) -> Self {
        let mut table = [false; 256];
        for b in [delimiter, b'"', b'\r', b'\n'] {
            table[b as usize] = true;
        }
        Special { delimiter, table }
    }

    /// Whether a value holds one: a look-up per byte in short values, a search with vector
    /// instructions in long ones.
    #[inline]
    fn within(&self, value: &[u8]) -> bool {
        if value.len() < 32 {
            return value.iter().any(|b| self.table[*b as usize]);
        }
        memchr::memchr3(self.delimiter, b'"', b'\n', value).is_some()
            || memchr::memchr(b'\r', value).is_some()
    }
}

/// A text field, quoted when it holds a special byte (or is a lone empty field).
fn field(out: &mut Vec<u8>, value: &[u8], special: &Special, lone: bool) {
    let quote = special.within(value) || (lone && value.is_empty());
    if !quote {
        out.extend_from_slice(value);
        return;
    }
    out.push(b'"');
    for part in value.split_inclusive(|b| *b == b'"') {
        out.extend_from_slice(part);
        if part.last() == Some(&b'"') {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

/// How rows are framed in JSON.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Json {
    /// `{"column":value,…}` objects, nulls written out.
    Objects,
    /// `[value,…]` lists in column order.
    Lists,
}

/// Rows as JSON, each followed by `after` and preceded by `between` from the second on: an
/// array's rows are `between = ","`, NDJSON's `after = "\n"`. Floats are written as Arrow's
/// JSON writer writes them in objects (`lexical-core`, non-finite as null) and as serde_json
/// writes them in lists.
pub fn json(batch: &RecordBatch, shape: Json, between: &[u8], after: &[u8]) -> Option<Vec<u8>> {
    json_rows(batch, 0..batch.num_rows(), shape, between, after)
}

/// [`json`] for these rows of a table, in this order.
pub fn json_rows(
    batch: &RecordBatch,
    rows: impl ExactSizeIterator<Item = usize>,
    shape: Json,
    between: &[u8],
    after: &[u8],
) -> Option<Vec<u8>> {
    let mut cols = columns(batch)?;
    let key_bytes: usize = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().len() + 4)
        .sum();
    let mut out = Vec::with_capacity(rows.len() * (row_bytes(&cols) + key_bytes) + 64);
    let keys: Vec<Vec<u8>> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut k = Vec::with_capacity(f.name().len() + 4);
            if i > 0 {
                k.push(b',');
            }
            if shape == Json::Objects {
                quoted(&mut k, f.name());
                k.push(b':');
            }
            k
        })
        .collect();
    let (open, close) = match shape {
        Json::Objects => (b'{', b'}'),
        Json::Lists => (b'[', b']'),
    };
    for (i, row) in rows.enumerate() {
        if i > 0 {
            out.extend_from_slice(between);
        }
        out.push(open);
        for (c, key) in cols.iter_mut().zip(&keys) {
            out.extend_from_slice(key);
            if c.is_null(row) {
                out.extend_from_slice(b"null");
                continue;
            }
            match &c.col {
                Col::Text(a) => quoted(&mut out, a.value(row)),
                Col::Float(a) => {
                    let v = a.value(row);
                    c.memo
                        .write(&mut out, v.to_bits(), |out| float_json(out, v, shape));
                }
                Col::Date(_) | Col::Stamp(..) => {
                    out.push(b'"');
                    scalar(&mut out, c, row);
                    out.push(b'"');
                }
                _ => scalar(&mut out, c, row),
            }
        }
        out.push(close);
        out.extend_from_slice(after);
    }
    Some(out)
}

/// A JSON string, escaped as serde_json escapes it.
fn quoted(out: &mut Vec<u8>, s: &str) {
    let mut ser = serde_json::Serializer::new(out);
    // Writing into a vector cannot fail.
    let _ = ser.serialize_str(s);
}

fn float_json(out: &mut Vec<u8>, v: f64, shape: Json) {
    if !v.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    match shape {
        Json::Objects => {
            let mut buf = [0u8; lexical_core::BUFFER_SIZE];
            out.extend_from_slice(lexical_core::write(v, &mut buf));
        }
        Json::Lists => {
            let _ = serde_json::Serializer::new(out).serialize_f64(v);
        }
    }
}

/// A value written the same in every format: integers, booleans, dates and datetimes (their
/// text without quotes).
fn scalar(out: &mut Vec<u8>, c: &mut Column<'_>, row: usize) {
    match &c.col {
        Col::Int(a) => out.extend_from_slice(itoa::Buffer::new().format(a.value(row)).as_bytes()),
        Col::Bool(a) => out.extend_from_slice(if a.value(row) { b"true" } else { b"false" }),
        Col::Date(a) => {
            let days = a.value(row);
            c.memo.write(out, days as u64, |out| date(out, days));
        }
        Col::Stamp(a, utc) => stamp(out, a.value(row), *utc),
        Col::Text(a) => out.extend_from_slice(a.value(row).as_bytes()),
        Col::Float(a) => out.extend_from_slice(ryu::Buffer::new().format(a.value(row)).as_bytes()),
    }
}

/// `YYYY-MM-DD`, as chrono's `%Y-%m-%d` writes it.
fn date(out: &mut Vec<u8>, days: i32) {
    let Some(d) = days
        .checked_add(EPOCH_DAYS_FROM_CE)
        .and_then(NaiveDate::from_num_days_from_ce_opt)
    else {
        out.extend_from_slice(days.to_string().as_bytes());
        return;
    };
    ymd(out, d);
}

fn ymd(out: &mut Vec<u8>, d: NaiveDate) {
    if (0..=9999).contains(&d.year()) {
        digits(out, d.year() as u32, 4);
        out.push(b'-');
        digits(out, d.month(), 2);
        out.push(b'-');
        digits(out, d.day(), 2);
    } else {
        // Years chrono writes with a sign.
        out.extend_from_slice(d.format("%Y-%m-%d").to_string().as_bytes());
    }
}

/// `YYYY-MM-DDTHH:MM:SS`, fractional seconds only when present (3, 6 or 9 digits, as chrono's
/// `%.f`), `+00:00` on a column with an offset.
fn stamp(out: &mut Vec<u8>, micros: i64, utc: bool) {
    let Some(t) = chrono::DateTime::from_timestamp_micros(micros) else {
        out.extend_from_slice(micros.to_string().as_bytes());
        return;
    };
    let t = t.naive_utc();
    ymd(out, t.date());
    out.push(b'T');
    digits(out, t.hour(), 2);
    out.push(b':');
    digits(out, t.minute(), 2);
    out.push(b':');
    digits(out, t.second(), 2);
    let nanos = t.nanosecond();
    if nanos != 0 {
        out.push(b'.');
        if nanos % 1_000_000 == 0 {
            digits(out, nanos / 1_000_000, 3);
        } else if nanos % 1_000 == 0 {
            digits(out, nanos / 1_000, 6);
        } else {
            digits(out, nanos, 9);
        }
    }
    if utc {
        out.extend_from_slice(b"+00:00");
    }
}

/// `n` in exactly `width` decimal digits (it has no more).
fn digits(out: &mut Vec<u8>, mut n: u32, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for i in (0..width).rev() {
        out[start + i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

#[cfg(test)]
mod tests {
    //! The same bytes as Arrow's writers, on every type and the awkward values.
    use super::*;
    use arrow::array::ArrayRef;
    use arrow::datatypes::{Field, Schema};
    use proptest::prelude::*;
    use std::sync::Arc;

    fn arrow_delimited(batch: &RecordBatch, header: bool, delimiter: u8) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = arrow::csv::WriterBuilder::new()
                .with_header(header)
                .with_delimiter(delimiter)
                .with_timestamp_format(super::super::TIMESTAMP.into())
                .with_timestamp_tz_format(super::super::TIMESTAMP_TZ.into())
                .with_date_format("%Y-%m-%d".into())
                .build(&mut out);
            w.write(batch).unwrap();
        }
        out
    }

    fn arrow_ndjson(batch: &RecordBatch) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .with_timestamp_format(super::super::TIMESTAMP.into())
                .with_timestamp_tz_format(super::super::TIMESTAMP_TZ.into())
                .build::<_, arrow::json::writer::LineDelimited>(&mut out);
            w.write(batch).unwrap();
            w.finish().unwrap();
        }
        out
    }

    /// Each row as a list of serde_json values built from the arrays (dates and datetimes as
    /// Arrow displays them), written by serde_json.
    fn serde_lists(batch: &RecordBatch) -> Vec<u8> {
        use arrow::util::display::{ArrayFormatter, FormatOptions};
        let options = FormatOptions::default()
            .with_date_format(Some("%Y-%m-%d"))
            .with_timestamp_format(Some(super::super::TIMESTAMP))
            .with_timestamp_tz_format(Some(super::super::TIMESTAMP_TZ));
        let mut out = Vec::new();
        for row in 0..batch.num_rows() {
            if row > 0 {
                out.push(b',');
            }
            let values: Vec<serde_json::Value> = batch
                .columns()
                .iter()
                .map(|a| {
                    if a.is_null(row) {
                        return serde_json::Value::Null;
                    }
                    match a.data_type() {
                        DataType::Utf8 => a.as_string::<i32>().value(row).into(),
                        DataType::Int64 => a.as_primitive::<Int64Type>().value(row).into(),
                        DataType::Float64 => a.as_primitive::<Float64Type>().value(row).into(),
                        DataType::Boolean => a.as_boolean().value(row).into(),
                        _ => {
                            let f = ArrayFormatter::try_new(a.as_ref(), &options).unwrap();
                            f.value(row).to_string().into()
                        }
                    }
                })
                .collect();
            serde_json::to_writer(&mut out, &values).unwrap();
        }
        out
    }

    fn batch_of(
        text: Vec<Option<String>>,
        ints: Vec<Option<i64>>,
        floats: Vec<Option<f64>>,
        days: Vec<Option<i32>>,
        micros: Vec<Option<i64>>,
    ) -> RecordBatch {
        let n = text.len();
        let bools: Vec<Option<bool>> = (0..n).map(|i| (i % 3 != 2).then_some(i % 2 == 0)).collect();
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("name, \"quoted\"", Arc::new(StringArray::from(text))),
            ("n", Arc::new(Int64Array::from(ints))),
            ("x", Arc::new(Float64Array::from(floats))),
            ("flag", Arc::new(BooleanArray::from(bools))),
            ("day", Arc::new(Date32Array::from(days))),
            (
                "t",
                Arc::new(TimestampMicrosecondArray::from(micros.clone())),
            ),
            (
                "tz",
                Arc::new(TimestampMicrosecondArray::from(micros).with_timezone("+00:00")),
            ),
        ];
        let schema = Schema::new(
            columns
                .iter()
                .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
                .collect::<Vec<_>>(),
        );
        RecordBatch::try_new(
            Arc::new(schema),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap()
    }

    fn same_everywhere(batch: &RecordBatch) -> Result<(), TestCaseError> {
        for (header, delimiter) in [(true, b','), (false, b','), (true, b'\t')] {
            prop_assert_eq!(
                String::from_utf8(delimited(batch, header, delimiter).unwrap()).unwrap(),
                String::from_utf8(arrow_delimited(batch, header, delimiter)).unwrap()
            );
        }
        prop_assert_eq!(
            String::from_utf8(json(batch, Json::Objects, b"", b"\n").unwrap()).unwrap(),
            String::from_utf8(arrow_ndjson(batch)).unwrap()
        );
        prop_assert_eq!(
            String::from_utf8(json(batch, Json::Lists, b",", b"").unwrap()).unwrap(),
            String::from_utf8(serde_lists(batch)).unwrap()
        );
        // Each column alone: a lone empty field is quoted in CSV.
        for i in 0..batch.num_columns() {
            let one = batch.project(&[i]).unwrap();
            prop_assert_eq!(
                String::from_utf8(delimited(&one, true, b',').unwrap()).unwrap(),
                String::from_utf8(arrow_delimited(&one, true, b',')).unwrap()
            );
        }
        Ok(())
    }

    #[test]
    fn repeated_values_are_written_from_memory_as_formatted() {
        // More distinct floats and dates than a memo has slots, each seen many times.
        let n = 20_000usize;
        let floats = (0..n)
            .map(|i| (i % 997 != 0).then(|| (i * 7919 % 1500) as f64 / 7.0 - 100.0))
            .collect();
        let days = (0..n).map(|i| Some((i * 31 % 900) as i32 - 300)).collect();
        let text = (0..n).map(|i| Some(format!("v{}", i % 13))).collect();
        let ints = (0..n).map(|i| Some(i as i64)).collect();
        let micros = (0..n).map(|i| Some(i as i64 * 1_000_003)).collect();
        same_everywhere(&batch_of(text, ints, floats, days, micros)).unwrap();
    }

    fn text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof![
            Just(String::new()),
            "[a-z ]{0,8}",
            "[,;\"\t\r\n\\\\a-zé\u{0}-\u{1f}فاس]{0,10}",
            // Over a word, and over the length searched with vector instructions.
            "[a-z0-9]{0,40}[,;\"\r\n]?[a-z]{0,12}",
        ])
    }

    fn float() -> impl Strategy<Value = Option<f64>> {
        proptest::option::of(prop_oneof![
            any::<f64>(),
            -1e6f64..1e6,
            Just(0.1 + 0.2),
            Just(-0.0),
            Just(1e21),
            Just(f64::NAN),
            Just(f64::INFINITY),
        ])
    }

    proptest! {
        #[test]
        fn rows_are_written_as_arrow_writes_them(
            rows in proptest::collection::vec(
                (
                    text(),
                    proptest::option::of(any::<i64>()),
                    float(),
                    proptest::option::of(prop_oneof![-800_000i32..3_000_000, Just(0)]),
                    proptest::option::of(prop_oneof![
                        -60_000_000_000_000_000i64..250_000_000_000_000_000,
                        Just(1_500_000),
                        Just(1_000),
                        Just(0)
                    ]),
                ),
                0..12,
            )
        ) {
            let mut cols = (vec![], vec![], vec![], vec![], vec![]);
            for (t, i, f, d, m) in rows {
                cols.0.push(t);
                cols.1.push(i);
                cols.2.push(f);
                cols.3.push(d);
                cols.4.push(m);
            }
            same_everywhere(&batch_of(cols.0, cols.1, cols.2, cols.3, cols.4))?;
        }
    }
}
