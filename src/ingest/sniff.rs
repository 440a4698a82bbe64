//! Dialect detection: the encoding from the bytes, the delimiter from how consistently each
//! candidate splits the first records.

use encoding_rs::Encoding;

/// Delimiters tried, in order of preference when they score the same.
pub const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];

/// Records examined to choose a delimiter.
const SNIFF_RECORDS: usize = 200;

/// What a pass over the raw bytes found.
#[derive(Debug, Clone)]
pub struct ByteFacts {
    pub sha256: String,
    pub bytes: u64,
    /// `None`: valid UTF-8 throughout.
    pub first_invalid_utf8: Option<u64>,
    pub bom: Option<&'static Encoding>,
    /// The first bytes, for delimiter sniffing.
    pub sample: Vec<u8>,
}

/// The encoding to read with: the dataset file's choice, else a BOM, else UTF-8 when every byte
/// sequence is valid UTF-8, else Windows-1252 (which decodes every ISO-8859-1 file the same).
pub fn choose_encoding(facts: &ByteFacts, forced: Option<&str>) -> (&'static Encoding, String) {
    if let Some(label) = forced
        && let Some(enc) = Encoding::for_label(label.as_bytes())
    {
        return (enc, format!("{} (set in the dataset file)", enc.name()));
    }
    if let Some(enc) = facts.bom {
        return (enc, format!("{} (byte order mark)", enc.name()));
    }
    match facts.first_invalid_utf8 {
        None => (
            encoding_rs::UTF_8,
            "UTF-8 (every byte sequence is valid UTF-8)".into(),
        ),
        Some(at) => (
            encoding_rs::WINDOWS_1252,
            format!("windows-1252 (byte {at} is not valid UTF-8)"),
        ),
    }
}

/// The delimiter that splits the sample into the most consistent number of fields (at least
/// two); `,` when no candidate does.
pub fn detect_delimiter(sample: &str, quote: u8) -> (u8, String) {
    // Only whole lines: the last one may be cut in the middle.
    let end = sample.rfind('\n').map_or(sample.len(), |i| i + 1);
    let text = &sample.as_bytes()[..end];
    let mut best: Option<(u8, f64, usize)> = None;
    for &delim in &CANDIDATES {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delim)
            .quote(quote)
            .from_reader(text);
        let mut counts: Vec<usize> = Vec::new();
        let mut record = csv::ByteRecord::new();
        while counts.len() < SNIFF_RECORDS {
            match reader.read_byte_record(&mut record) {
                Ok(true) => counts.push(record.len()),
                _ => break,
            }
        }
        let Some((fields, freq)) = modal(&counts) else {
            continue;
        };
        if fields < 2 {
            continue;
        }
        let consistency = freq as f64 / counts.len() as f64;
        let better = match best {
            None => true,
            Some((_, c, f)) => {
                consistency > c + 1e-9 || ((consistency - c).abs() <= 1e-9 && fields > f)
            }
        };
        if better {
            best = Some((delim, consistency, fields));
        }
    }
    match best {
        Some((d, c, f)) => (
            d,
            format!(
                "{} ({} fields in {:.0}% of the first records)",
                describe(d),
                f,
                c * 100.0
            ),
        ),
        None => (
            b',',
            "comma (no candidate splits the records; one column)".into(),
        ),
    }
}

fn modal(counts: &[usize]) -> Option<(usize, usize)> {
    let mut freq = std::collections::BTreeMap::new();
    for &c in counts {
        *freq.entry(c).or_insert(0usize) += 1;
    }
    freq.into_iter().max_by_key(|&(fields, n)| (n, fields))
}

pub fn describe(delim: u8) -> &'static str {
    match delim {
        b',' => "comma",
        b';' => "semicolon",
        b'\t' => "tab",
        b'|' => "pipe",
        _ => "custom",
    }
}

/// Incremental UTF-8 check across chunk boundaries.
#[derive(Default)]
pub struct Utf8Check {
    carry: Vec<u8>,
    offset: u64,
    pub first_invalid: Option<u64>,
}

impl Utf8Check {
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.first_invalid.is_some() {
            return;
        }
        let mut buf;
        let data = if self.carry.is_empty() {
            chunk
        } else {
            buf = std::mem::take(&mut self.carry);
            buf.extend_from_slice(chunk);
            &buf[..]
        };
        match std::str::from_utf8(data) {
            Ok(_) => self.offset += data.len() as u64,
            Err(e) => match e.error_len() {
                // An incomplete sequence at the end: wait for the next chunk.
                None => {
                    let valid = e.valid_up_to();
                    self.carry = data[valid..].to_vec();
                    self.offset += valid as u64;
                }
                Some(_) => self.first_invalid = Some(self.offset + e.valid_up_to() as u64),
            },
        }
    }

    pub fn finish(&mut self) {
        if self.first_invalid.is_none() && !self.carry.is_empty() {
            self.first_invalid = Some(self.offset);
        }
    }
}

pub fn bom_of(sample: &[u8]) -> Option<&'static Encoding> {
    Encoding::for_bom(sample).map(|(enc, _)| enc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_consistent_delimiter() {
        let text = "nom;ville;note\n\"Dupont, Jean\";Rabat;12,5\nAli;Fès;9\n";
        assert_eq!(detect_delimiter(text, b'"').0, b';');
        let text = "a,b,c\n1,2,3\n4,5,6\n";
        assert_eq!(detect_delimiter(text, b'"').0, b',');
        let text = "a\tb\n1\t2\n";
        assert_eq!(detect_delimiter(text, b'"').0, b'\t');
        let text = "a|b|c\n1|x,y|3\n";
        assert_eq!(detect_delimiter(text, b'"').0, b'|');
        assert_eq!(detect_delimiter("just one column\nvalue\n", b'"').0, b',');
    }

    #[test]
    fn utf8_check_spans_chunks() {
        let text = "prénom".as_bytes();
        let mut c = Utf8Check::default();
        c.feed(&text[..3]);
        c.feed(&text[3..]);
        c.finish();
        assert_eq!(c.first_invalid, None);
        let mut c = Utf8Check::default();
        c.feed(b"abc\xe9def");
        c.finish();
        assert_eq!(c.first_invalid, Some(3));
    }
}
