//! The CSV record stream both ingest passes read: decoded to UTF-8 while streaming, split by the
//! detected dialect, each record with its line number.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use std::collections::VecDeque;
use std::sync::Arc;

use encoding_rs::Encoding;
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::values::{DEFAULT_NULL_MARKERS, NumStyle};

/// How to read one source file.
#[derive(Debug, Clone)]
pub struct Dialect {
    pub encoding: &'static Encoding,
    pub delimiter: u8,
    pub quote: u8,
    pub escape: Option<u8>,
    /// Grouped number styles a column may be read in, preferred first (the dataset file's
    /// `decimal` allows one; otherwise the delimiter decides which comes first).
    pub grouped: Vec<NumStyle>,
    pub header: bool,
    /// Records above the header, skipped.
    pub preamble: usize,
    /// Set in the dataset file: these cells are null in every column, strings included.
    pub null_values: Option<Vec<String>>,
}

impl Dialect {
    /// The grouped styles for a delimiter and an optional decimal mark from the dataset file.
    pub fn grouped_styles(delimiter: u8, decimal: Option<u8>) -> Vec<NumStyle> {
        match decimal {
            Some(b',') => vec![NumStyle::Comma],
            Some(_) => vec![NumStyle::English],
            // With commas between fields, a comma inside a number more likely groups thousands.
            None if delimiter == b',' => vec![NumStyle::English, NumStyle::Comma],
            None => vec![NumStyle::Comma, NumStyle::English],
        }
    }

    /// Styles tried, in order, on a column whose type the dataset file sets.
    pub fn lenient_styles(&self) -> Vec<NumStyle> {
        if self.grouped == [NumStyle::Comma] {
            // A decimal comma set in the file: `1.5` is not one of its numbers.
            return self.grouped.clone();
        }
        std::iter::once(NumStyle::Plain)
            .chain(self.grouped.iter().copied())
            .collect()
    }

    /// Whether a cell is null in a string column.
    pub fn is_null_text(&self, cell: &str) -> bool {
        cell.is_empty()
            || self
                .null_values
                .as_ref()
                .is_some_and(|n| n.iter().any(|v| v == cell))
    }

    /// Whether a cell is null in a typed column.
    pub fn is_null_typed(&self, cell: &str) -> bool {
        cell.is_empty()
            || match &self.null_values {
                Some(n) => n.iter().any(|v| v == cell),
                // Most cells are longer than any marker.
                None => cell.len() <= 4 && DEFAULT_NULL_MARKERS.contains(&cell),
            }
    }
}

/// Progress of a long read, shown on a terminal (or logged when stderr is not one).
pub struct Progress {
    pub label: String,
    /// Size of the source in bytes.
    pub total: u64,
}

struct Shown {
    progress: Progress,
    started: Instant,
    last: Instant,
    terminal: bool,
    drawn: bool,
}

/// Records of a file, header included, as byte records of UTF-8 text.
pub struct Records {
    reader: csv::Reader<LineBreaks>,
    record: csv::ByteRecord,
    count: u64,
    shown: Option<Shown>,
    /// Line breaks the reader passed, by offset, not yet taken here.
    breaks: Arc<Mutex<VecDeque<u64>>>,
    /// Line breaks taken from `breaks`, not yet behind the current record.
    local: VecDeque<u64>,
    /// Line breaks behind the current record.
    lines_before: u64,
}

/// The decoded text on its way to the CSV reader, noting where each line break is: `\n`,
/// `\r\n` (at its `\r`) or a lone `\r`. The `csv` crate counts `\n` only, and puts the start of
/// a record after a `\r\n` on the line before, so line numbers are counted here.
struct LineBreaks {
    inner: Box<dyn Read + Send>,
    breaks: Arc<Mutex<VecDeque<u64>>>,
    offset: u64,
    /// Offset of the last `\r` seen, whose `\n` then belongs to it.
    last_cr: Option<u64>,
}

impl Read for LineBreaks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut breaks = self.breaks.lock();
        for i in memchr::memchr2_iter(b'\n', b'\r', &buf[..n]) {
            let at = self.offset + i as u64;
            if buf[i] == b'\r' {
                self.last_cr = Some(at);
                breaks.push_back(at);
            } else if self.last_cr.is_none_or(|cr| cr + 1 != at) {
                breaks.push_back(at);
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

impl Records {
    /// Opens the file with progress reports for files that take more than a moment.
    pub fn open_with_progress(path: &Path, dialect: &Dialect, progress: Progress) -> Result<Self> {
        let mut records = Self::open(path, dialect)?;
        let now = Instant::now();
        records.shown = Some(Shown {
            progress,
            started: now,
            last: now,
            terminal: std::io::stderr().is_terminal(),
            drawn: false,
        });
        Ok(records)
    }

    pub fn open(path: &Path, dialect: &Dialect) -> Result<Self> {
        let file = BufReader::with_capacity(256 * 1024, File::open(path)?);
        let decoded: Box<dyn Read + Send> = Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(dialect.encoding))
                .utf8_passthru(true)
                .strip_bom(true)
                .build(file),
        );
        let breaks = Arc::new(Mutex::new(VecDeque::new()));
        let decoded = LineBreaks {
            inner: decoded,
            breaks: Arc::clone(&breaks),
            offset: 0,
            last_cr: None,
        };
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(dialect.delimiter)
            .quote(dialect.quote)
            .escape(dialect.escape)
            .buffer_capacity(256 * 1024)
            .from_reader(decoded);
        let mut records = Records {
            reader,
            record: csv::ByteRecord::new(),
            count: 0,
            shown: None,
            breaks,
            local: VecDeque::new(),
            lines_before: 0,
        };
        for _ in 0..dialect.preamble {
            records.next_record()?;
        }
        Ok(records)
    }

    /// The next record and the 1-based line it starts on.
    pub fn next_record(&mut self) -> Result<Option<(u64, &csv::ByteRecord)>> {
        self.count += 1;
        if self.count.is_multiple_of(65_536) {
            self.report();
        }
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {
                let start = self.record.position().map_or(0, |p| p.byte());
                Ok(Some((self.line_at(start), &self.record)))
            }
            Ok(false) => Ok(None),
            Err(e) => Err(Error::Csv(e)),
        }
    }

    /// The line a record starting at byte `start` is on. The breaks the reader passed are
    /// taken from the shared queue only when those at hand run out, about once a buffer, so
    /// that a record costs no lock.
    fn line_at(&mut self, start: u64) -> u64 {
        loop {
            while let Some(&b) = self.local.front() {
                if b >= start {
                    return self.lines_before + 1;
                }
                self.local.pop_front();
                self.lines_before += 1;
            }
            let mut shared = self.breaks.lock();
            if shared.is_empty() {
                return self.lines_before + 1;
            }
            std::mem::swap(&mut self.local, &mut *shared);
        }
    }

    /// Bytes of decoded text consumed so far.
    pub fn position(&self) -> u64 {
        self.reader.position().byte()
    }

    fn report(&mut self) {
        let position = self.position();
        let Some(s) = self.shown.as_mut() else { return };
        let now = Instant::now();
        let every = if s.terminal {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(10)
        };
        if now.duration_since(s.last) < every
            || now.duration_since(s.started) < Duration::from_secs(1)
        {
            return;
        }
        s.last = now;
        // Decoded text may be longer than the source: a percentage, never past 99 until done.
        let pct = (position * 100)
            .checked_div(s.progress.total)
            .unwrap_or(0)
            .min(99);
        let line = format!(
            "{}: {pct}% ({} of {} MB, {} records)",
            s.progress.label,
            position / 1_000_000,
            s.progress.total / 1_000_000,
            self.count
        );
        if s.terminal {
            eprint!("\r\x1b[2K{line}");
            s.drawn = true;
        } else {
            tracing::info!("{line}");
        }
    }
}

impl Drop for Records {
    fn drop(&mut self) {
        if self.shown.as_ref().is_some_and(|s| s.drawn) {
            // Clears the progress line for what is printed next.
            eprint!("\r\x1b[2K");
        }
    }
}

/// A field as text. The stream is UTF-8 (checked, or transcoded), so the fallback only guards
/// against a file that changed between passes.
pub fn text(field: &[u8]) -> Cow<'_, str> {
    // Checking is much faster than the lossy conversion, which walks the bytes by chunks.
    match std::str::from_utf8(field) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(field),
    }
}

/// Rows held back while they look like notes (only their first field filled, in a table of
/// several columns, on a short line or as a sentence). A row of data after them makes them ordinary rows again; the ones still held
/// at the end of the file are footnotes below the table.
#[derive(Default)]
pub struct Notes {
    held: Vec<(u64, csv::ByteRecord)>,
}

/// Notes held at most; a longer run is data (a sparse column), released as rows.
const MAX_NOTES: usize = 20;

impl Notes {
    /// Holds `rec` if it looks like a note; `false` means it is a row (release the held ones first).
    pub fn hold(&mut self, line: u64, rec: &csv::ByteRecord, columns: usize) -> bool {
        let first = rec.get(0).unwrap_or_default();
        // Only the first field filled, and either a line shorter than the header ("Source: …"
        // on its own) or a sentence rather than a value: a last row with empty cells stays a row.
        let note = columns > 1
            && !first.iter().all(u8::is_ascii_whitespace)
            && rec
                .iter()
                .skip(1)
                .all(|f| f.iter().all(u8::is_ascii_whitespace))
            && (rec.len() < columns || first.iter().filter(|b| **b == b' ').count() >= 2);
        if note && self.held.len() < MAX_NOTES {
            self.held.push((line, rec.clone()));
            true
        } else {
            false
        }
    }

    pub fn release(&mut self) -> std::vec::Drain<'_, (u64, csv::ByteRecord)> {
        self.held.drain(..)
    }
}

/// The start of a long value, for messages.
pub fn clip(v: &str) -> String {
    match v.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &v[..i]),
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line each record starts on, as an editor numbers lines.
    fn lines_of(text: &[u8], encoding: &'static Encoding) -> Vec<u64> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        let dialect = Dialect {
            encoding,
            delimiter: b';',
            quote: b'"',
            escape: None,
            grouped: Dialect::grouped_styles(b';', None),
            header: true,
            preamble: 0,
            null_values: None,
        };
        let mut records = Records::open(file.path(), &dialect).unwrap();
        let mut lines = Vec::new();
        while let Some((line, _)) = records.next_record().unwrap() {
            lines.push(line);
        }
        lines
    }

    // Regression: the `csv` crate put each record after a CRLF on the line before, and every
    // record of a CR-only file on line 1, so reasons and rejected rows named the wrong lines.
    #[test]
    fn records_start_on_their_lines_whatever_the_line_ends() {
        let utf8 = encoding_rs::UTF_8;
        for end in ["\n", "\r\n", "\r"] {
            let text = ["a;b", "01;x", "02;\"y", "z\"", "03;w", ""].join(end);
            assert_eq!(lines_of(text.as_bytes(), utf8), [1, 2, 3, 5], "{end:?}");
        }
        // Decoded from Windows-1252, the offsets are the decoded text's.
        let latin = b"a;b\r\n\xe9;x\r\n\xe8\xe9;y\r\n";
        assert_eq!(lines_of(latin, encoding_rs::WINDOWS_1252), [1, 2, 3]);
    }
}
