//! The posting-list sidecar of a version (`postings.bin` beside its Parquet): for each repetitive
//! text column of a large table, its distinct values in order, how many rows hold each, and
//! those rows, ascending, as delta varints. Written at ingest, read on demand by range: the
//! table of contents and a column's values once, then only the lists a query names.
//!
//! Layout: sections one after the other, then the table of contents, then its length (u64).
//! A section: the values (u32 length + bytes each), the count of each value (u64 each), the
//! byte offset of each list within the lists (u64 each, one more than values), then the lists.
//! The table of contents: per column its name, section start, number of values and the byte
//! length of its values. All integers little-endian.

use crate::error::{Error, Result};

/// Name of the sidecar file in a version's directory.
pub const POSTINGS_FILE: &str = "postings.bin";

/// One column's entry in the table of contents.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub column: String,
    /// Offset of the column's section in the file.
    pub start: u64,
    pub values: u64,
    /// Bytes of the values at the start of the section.
    pub values_len: u64,
}

impl Entry {
    /// Bytes of the section's head: values, counts and list offsets.
    pub fn head_len(&self) -> u64 {
        self.values_len + self.values * 8 + (self.values + 1) * 8
    }
}

/// A column's rows as one list is stored: the first row, then the gaps, as varints. Appended
/// row by row, so that a list is built without holding its rows.
#[derive(Default)]
pub struct ListWriter {
    pub bytes: Vec<u8>,
    pub count: u64,
    last: u32,
}

impl ListWriter {
    /// Adds a row, greater than the last one added.
    pub fn push(&mut self, row: u32) {
        let gap = if self.count == 0 {
            row
        } else {
            row - self.last
        };
        put_varint(&mut self.bytes, u64::from(gap));
        self.last = row;
        self.count += 1;
    }
}

/// The head of a column's section: its sorted distinct values, their counts and where each
/// list starts; the lists (`(count, bytes)` each) follow it, in the same order.
pub fn section_head(values: &[String], lists: &[(u64, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    for (count, _) in lists {
        out.extend_from_slice(&count.to_le_bytes());
    }
    let mut at = 0u64;
    for (_, bytes) in lists {
        out.extend_from_slice(&at.to_le_bytes());
        at += bytes;
    }
    out.extend_from_slice(&at.to_le_bytes());
    out
}

/// The table of contents and its length, written after the sections.
pub fn contents(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&(e.column.len() as u32).to_le_bytes());
        out.extend_from_slice(e.column.as_bytes());
        for n in [e.start, e.values, e.values_len] {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
    let len = out.len() as u64;
    out.extend_from_slice(&len.to_le_bytes());
    out
}

/// Reads a table of contents (without its trailing length).
pub fn read_contents(bytes: &[u8]) -> Result<Vec<Entry>> {
    let mut r = Cursor { bytes, at: 0 };
    let mut entries = Vec::new();
    while r.at < bytes.len() {
        let column = r.text()?;
        entries.push(Entry {
            column,
            start: r.u64()?,
            values: r.u64()?,
            values_len: r.u64()?,
        });
    }
    Ok(entries)
}

/// A column's head: its values, their counts, and where each list lies within the lists.
#[derive(Debug)]
pub struct Head {
    pub values: Vec<String>,
    pub counts: Vec<u64>,
    pub offsets: Vec<u64>,
}

impl Head {
    pub fn read(entry: &Entry, bytes: &[u8]) -> Result<Self> {
        let mut r = Cursor { bytes, at: 0 };
        let n = entry.values as usize;
        let values = (0..n).map(|_| r.text()).collect::<Result<Vec<_>>>()?;
        let counts = (0..n).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
        let offsets = (0..=n).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
        Ok(Head {
            values,
            counts,
            offsets,
        })
    }

    /// The index of a value, if any row holds it.
    pub fn find(&self, value: &str) -> Option<usize> {
        self.values.binary_search_by(|v| v.as_str().cmp(value)).ok()
    }
}

/// Decodes a list's rows from its bytes (or a prefix of them), at most `limit`.
pub fn decode(bytes: &[u8], limit: usize) -> Vec<u32> {
    let mut rows = Vec::with_capacity(limit.min(bytes.len()));
    let (mut at, mut last) = (0, 0u32);
    while rows.len() < limit {
        let Some((gap, used)) = varint(&bytes[at..]) else {
            break;
        };
        let Ok(gap) = u32::try_from(gap) else {
            break;
        };
        at += used;
        last = if rows.is_empty() { gap } else { last + gap };
        rows.push(last);
    }
    rows
}

/// Appends `n` as a LEB128 varint (7 bits a byte, low bits first).
pub fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A varint and the bytes it took; `None` when the bytes end inside it.
pub fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut n = 0u64;
    for (i, b) in bytes.iter().take(10).enumerate() {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| Error::internal("the postings sidecar is truncated"))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }

    fn text(&mut self) -> Result<String> {
        let b = self.take(4)?;
        let n = u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize;
        let s = self.take(n)?;
        String::from_utf8(s.to_vec()).map_err(|_| Error::internal("a sidecar value is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_reads_back_its_values_counts_and_rows() {
        let values = vec!["01053".to_string(), "2A004".to_string()];
        let lists: Vec<ListWriter> = [vec![0, 3, 300, 70_000], vec![1, 2]]
            .iter()
            .map(|rows| {
                let mut l = ListWriter::default();
                rows.iter().for_each(|r| l.push(*r));
                l
            })
            .collect();
        let sizes: Vec<(u64, u64)> = lists
            .iter()
            .map(|l| (l.count, l.bytes.len() as u64))
            .collect();
        let mut section = section_head(&values, &sizes);
        lists
            .iter()
            .for_each(|l| section.extend_from_slice(&l.bytes));
        let entry = Entry {
            column: "code".into(),
            start: 0,
            values: 2,
            values_len: values.iter().map(|v| 4 + v.len() as u64).sum(),
        };
        let head = Head::read(&entry, &section[..entry.head_len() as usize]).unwrap();
        assert_eq!(head.values, values);
        assert_eq!(head.counts, [4, 2]);
        assert_eq!(head.find("2A004"), Some(1));
        assert_eq!(head.find("75056"), None);
        let lists_at = entry.head_len() as usize;
        let list = |i: usize| {
            let (a, b) = (head.offsets[i] as usize, head.offsets[i + 1] as usize);
            &section[lists_at + a..lists_at + b]
        };
        assert_eq!(decode(list(0), 10), [0, 3, 300, 70_000]);
        assert_eq!(decode(list(0), 2), [0, 3]);
        assert_eq!(decode(list(1), 10), [1, 2]);
        // A prefix cut inside a varint gives the rows before it.
        assert_eq!(decode(&list(0)[..3], 10), [0, 3]);
        let toc = contents(std::slice::from_ref(&entry));
        let len = u64::from_le_bytes(toc[toc.len() - 8..].try_into().unwrap()) as usize;
        assert_eq!(read_contents(&toc[..len]).unwrap(), [entry]);
    }
}
