//! Spreadsheets (XLSX, XLS, ODS) read as tables: most of what data.gov.ma publishes is XLSX or
//! XLS. The workbook is read with calamine (format detected from the bytes, not the name) and
//! its first sheet holding a cell is written out as UTF-8 CSV, which the usual path then sniffs,
//! types and stores: one reader of tables, whatever the file. Numbers keep their value (an
//! integer-valued float as an integer), dates become ISO 8601, a merged area keeps its value in
//! its first cell (the others are empty), formula errors (`#DIV/0!`) are empty.

use std::path::Path;

use calamine::{Data, Reader};

use super::sniff::ByteFacts;
use super::source::Scanned;
use crate::error::{Error, Result};

/// Whether the first bytes are a container a spreadsheet comes in: a zip (XLSX, ODS) or an
/// OLE2 compound file (XLS).
pub fn may_be_workbook(sample: &[u8]) -> bool {
    sample.starts_with(b"PK\x03\x04") || sample.starts_with(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
}

/// A workbook converted: the CSV file, its byte facts, and a note for the ingest report.
pub struct Converted {
    pub csv: tempfile::TempPath,
    pub facts: ByteFacts,
    pub note: String,
}

/// Reads the workbook at `src` and writes its first non-empty sheet as CSV, within `limit`
/// bytes. `Ok(None)`: the file is not a workbook calamine reads (a plain zip archive), left to
/// the content check to name.
pub fn to_csv(src: &Path, limit: u64) -> Result<Option<Converted>> {
    // calamine wants a reader it can clone: the workbook, bounded by the download limit, is
    // read into memory.
    let file = std::io::Cursor::new(std::fs::read(src)?);
    let mut book = match calamine::open_workbook_auto_from_rs(file) {
        Ok(book) => book,
        Err(e) => {
            tracing::debug!(error = %e, "not a workbook");
            return Ok(None);
        }
    };
    let names = book.sheet_names();
    let mut chosen = None;
    for (n, name) in names.iter().enumerate() {
        let range = match book.worksheet_range_at(n) {
            Some(Ok(range)) => range,
            Some(Err(e)) => {
                return Err(Error::bad_request(format!(
                    "sheet `{name}` of the workbook cannot be read: {e}"
                )));
            }
            None => continue,
        };
        if range.used_cells().next().is_some() {
            chosen = Some((name.clone(), range));
            break;
        }
    }
    let Some((name, range)) = chosen else {
        return Err(Error::bad_request(format!(
            "the workbook has no rows: none of its {} sheets ({}) holds a cell",
            names.len(),
            names.join(", ")
        )));
    };
    let temp = tempfile::NamedTempFile::new()?;
    let mut out = Scanned::new(temp.as_file(), limit, "the spreadsheet as CSV");
    let written = (|| -> std::io::Result<()> {
        let mut w = csv::Writer::from_writer(&mut out);
        for row in range.rows() {
            w.write_record(row.iter().map(cell_text))?;
        }
        w.flush()
    })();
    written.map_err(|e| out.error(e))?;
    let facts = out.finish()?;
    let (rows, columns) = range.get_size();
    let others = if names.len() > 1 {
        format!(
            "; the other sheets ({}) are not read",
            names
                .iter()
                .filter(|n| **n != name)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        String::new()
    };
    Ok(Some(Converted {
        csv: temp.into_temp_path(),
        facts,
        note: format!(
            "read from sheet `{name}` of a spreadsheet ({rows} rows × {columns} columns){others}"
        ),
    }))
}

/// A cell as CSV text.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty | Data::Error(_) => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => b.to_string(),
        // Spreadsheets store every number as a float: 42 is 42.0, written back as 42.
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::DateTime(d) => match d.as_datetime() {
            Some(dt) if dt.time() == chrono::NaiveTime::MIN => dt.format("%Y-%m-%d").to_string(),
            Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S").to_string(),
            None => d.as_f64().to_string(),
        },
    }
}
