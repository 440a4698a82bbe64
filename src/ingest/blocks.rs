//! The file cut into blocks of whole records, in order, each with the line of every record, for
//! the typing threads: one thread reads (decoding, splitting by the dialect and counting lines is
//! sequential by nature), the others type.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender};

use super::reader::{Dialect, Notes, Progress, Records, clip, text};
use crate::error::Result;

/// Records a block holds (the last one may hold up to the notes held back before it more):
/// enough that handing blocks between threads costs nothing, few enough that the blocks in
/// flight hold a few megabytes.
pub const BLOCK_ROWS: usize = 16 * 1024;

/// Records cut from the file, their fields laid end to end.
pub struct Block {
    /// Position of the block in the file: blocks are handed on in this order.
    pub seq: u64,
    bytes: Vec<u8>,
    /// `bytes` as text once the block is complete (see [`Block::seal`]).
    text: String,
    /// End of each field in `bytes`.
    ends: Vec<u32>,
    /// Each record's line and the index of its first field in `ends`.
    records: Vec<(u64, u32)>,
}

impl Block {
    fn new(seq: u64) -> Self {
        Block {
            seq,
            bytes: Vec::with_capacity(1 << 20),
            text: String::new(),
            ends: Vec::with_capacity(BLOCK_ROWS * 8),
            records: Vec::with_capacity(BLOCK_ROWS),
        }
    }

    fn push(&mut self, line: u64, record: &csv::ByteRecord) {
        self.records.push((line, self.ends.len() as u32));
        for field in record {
            self.bytes.extend_from_slice(field);
            self.ends.push(self.bytes.len() as u32);
        }
    }

    /// Whether the block holds its records, or so many bytes that another record could make a
    /// field end past what `u32` offsets reach.
    fn is_full(&self) -> bool {
        self.records.len() >= BLOCK_ROWS || self.bytes.len() > (u32::MAX as usize) / 2
    }

    /// Turns the bytes into text, checked once for the whole block rather than field by field.
    /// The stream is UTF-8 already (transcoded, or checked by the byte pass); a field that is
    /// not (a file changed between passes) is replaced lossily, as it alone would be.
    fn seal(&mut self) {
        let bytes = std::mem::take(&mut self.bytes);
        self.text = match String::from_utf8(bytes) {
            Ok(text) if self.ends.iter().all(|e| text.is_char_boundary(*e as usize)) => text,
            Ok(text) => self.lossy(text.into_bytes()),
            Err(e) => self.lossy(e.into_bytes()),
        };
    }

    fn lossy(&mut self, bytes: Vec<u8>) -> String {
        let mut text = String::with_capacity(bytes.len());
        let mut start = 0;
        for end in &mut self.ends {
            text.push_str(&String::from_utf8_lossy(&bytes[start..*end as usize]));
            start = *end as usize;
            *end = text.len() as u32;
        }
        text
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Puts the fields of record `r` in `fields` and returns its line.
    pub fn fields<'a>(&'a self, r: usize, fields: &mut Vec<&'a str>) -> u64 {
        let (line, first) = self.records[r];
        let last = self
            .records
            .get(r + 1)
            .map_or(self.ends.len(), |(_, f)| *f as usize);
        fields.clear();
        let mut start = match first {
            0 => 0,
            f => self.ends[f as usize - 1] as usize,
        };
        for &end in &self.ends[first as usize..last] {
            // Every end is a character boundary (checked when sealed).
            fields.push(self.text.get(start..end as usize).unwrap_or_default());
            start = end as usize;
        }
        line
    }
}

/// What the reader found past the blocks.
pub struct Tail {
    /// Blocks handed to the typing threads.
    pub blocks: u64,
    /// Rows below the table that look like notes, with their lines: rejected as footnotes.
    pub footnotes: Vec<(u64, String)>,
}

/// Reads the records (after the header) into blocks sent to `blocks`, each taking a slot from
/// `slots` first so that only so many are in memory; stops early when `stop` is set.
pub fn split(
    path: &Path,
    dialect: &Dialect,
    columns: usize,
    progress: Progress,
    blocks: Sender<Block>,
    slots: Receiver<()>,
    stop: &AtomicBool,
) -> Result<Tail> {
    let mut records = Records::open_with_progress(path, dialect, progress)?;
    if dialect.header {
        records.next_record()?;
    }
    let mut sent = 0u64;
    let mut block = Block::new(0);
    let mut notes = Notes::default();
    // `false` when the pass stopped: the typing threads are gone or said to stop.
    let send = |mut block: Block, sent: &mut u64| {
        let go = !stop.load(Ordering::Relaxed) && slots.recv().is_ok() && {
            block.seal();
            blocks.send(block).is_ok()
        };
        *sent += u64::from(go);
        go
    };
    while let Some((line, rec)) = records.next_record()? {
        if notes.hold(line, rec, columns) {
            continue;
        }
        for (l, r) in notes.release() {
            block.push(l, &r);
        }
        block.push(line, rec);
        if block.is_full() {
            let next = Block::new(sent + 1);
            if !send(std::mem::replace(&mut block, next), &mut sent) {
                return Ok(Tail {
                    blocks: sent,
                    footnotes: Vec::new(),
                });
            }
        }
    }
    if block.len() > 0 {
        send(block, &mut sent);
    }
    let footnotes = notes
        .release()
        .map(|(line, rec)| (line, clip(&rec.get(0).map(text).unwrap_or_default())))
        .collect();
    Ok(Tail {
        blocks: sent,
        footnotes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_gives_back_each_record_with_its_line() {
        let mut block = Block::new(0);
        let records = [
            (2, vec!["a", "", "c"]),
            (3, vec![""]),
            (5, vec!["x\ny", "z"]),
        ];
        for (line, fields) in &records {
            block.push(*line, &csv::ByteRecord::from(fields.clone()));
        }
        block.seal();
        let mut fields = Vec::new();
        for (r, (line, want)) in records.iter().enumerate() {
            assert_eq!(block.fields(r, &mut fields), *line);
            assert_eq!(&fields, want);
        }
    }

    #[test]
    fn a_field_that_is_not_utf8_is_replaced_alone() {
        let mut block = Block::new(0);
        // `é` cut in two by a delimiter: the block's bytes are valid UTF-8, its fields are not.
        let split = csv::ByteRecord::from(vec![&b"a\xC3"[..], &b"\xA9b"[..]]);
        block.push(1, &split);
        block.push(2, &csv::ByteRecord::from(vec!["été", "x"]));
        block.seal();
        let mut fields = Vec::new();
        block.fields(0, &mut fields);
        assert_eq!(fields, ["a\u{FFFD}", "\u{FFFD}b"]);
        block.fields(1, &mut fields);
        assert_eq!(fields, ["été", "x"]);
    }
}
