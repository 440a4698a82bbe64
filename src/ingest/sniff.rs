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
    /// chardetng's guess among legacy encodings, used when the bytes are not UTF-8.
    pub guessed: &'static Encoding,
    /// The first bytes, for delimiter sniffing.
    pub sample: Vec<u8>,
}

/// The encoding to read with: the dataset file's choice, else a BOM, else UTF-8 when every byte
/// sequence is valid UTF-8, else chardetng's guess from the non-ASCII text (Windows-1252 for
/// Western European text, which decodes every ISO-8859-1 file the same).
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
            facts.guessed,
            format!(
                "{} (byte {at} is not valid UTF-8; detected from the text)",
                facts.guessed.name()
            ),
        ),
    }
}

/// What the first records of a file say about its layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub delimiter: u8,
    pub quote: u8,
    /// A character that escapes quotes inside quoted fields (`\"`), besides doubling them.
    pub escape: Option<u8>,
    /// Records above the header (titles, blank lines).
    pub preamble: usize,
    /// The usual number of fields a record.
    pub fields: usize,
    pub note: String,
}

fn records(text: &[u8], delim: u8, quote: u8, escape: Option<u8>) -> Vec<Vec<bool>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delim)
        .quote(quote)
        .escape(escape)
        .from_reader(text);
    let mut out = Vec::new();
    let mut record = csv::ByteRecord::new();
    while out.len() < SNIFF_RECORDS {
        match reader.read_byte_record(&mut record) {
            // Which fields hold something: enough to tell a title line from a header.
            Ok(true) => out.push(
                record
                    .iter()
                    .map(|f| !f.iter().all(u8::is_ascii_whitespace))
                    .collect(),
            ),
            _ => break,
        }
    }
    out
}

/// A delimiter, quote and escape, how consistently they split the sample, and the split.
struct Split {
    d: u8,
    q: u8,
    e: Option<u8>,
    consistency: f64,
    fields: usize,
    recs: Vec<Vec<bool>>,
}

/// Chooses the delimiter and quote that split the sample into the most consistent number of
/// fields (at least two), then finds the header: the first record filled in at least half,
/// below any title or blank lines. Forced choices from the dataset file are kept.
pub fn detect_layout(sample: &str, delimiter: Option<u8>, quote: Option<u8>) -> Layout {
    // Only whole lines: the last one may be cut in the middle.
    let end = sample.rfind('\n').map_or(sample.len(), |i| i + 1);
    let text = &sample.as_bytes()[..end];
    let quotes: Vec<u8> = quote.map_or(vec![b'"', b'\''], |q| vec![q]);
    let mut best = best_split(text, delimiter, &quotes);
    // A space splits prose too, so it is taken only when every record, header included, splits
    // into the same number of fields (three or more) and no usual delimiter does as well.
    if delimiter.is_none() && best.as_ref().is_none_or(|b| b.consistency < 1.0 - 1e-9) {
        best = space_split(text, &quotes).or(best);
    }
    match best {
        Some(split) => layout_of(split, delimiter.is_some()),
        None => {
            let d = delimiter.unwrap_or(b',');
            let q = quote.unwrap_or(b'"');
            let preamble = records(text, d, q, None)
                .iter()
                .take_while(|r| !r.iter().any(|f| *f))
                .count();
            Layout {
                delimiter: d,
                quote: q,
                escape: None,
                preamble,
                fields: 1,
                note: format!("{} (one column)", describe(d)),
            }
        }
    }
}

/// The candidate reading that splits most consistently (ties to the earlier candidate: `,`
/// before `;`…, `"` before `'`, then to more fields).
fn best_split(text: &[u8], delimiter: Option<u8>, quotes: &[u8]) -> Option<Split> {
    let delims: Vec<u8> = delimiter.map_or(CANDIDATES.to_vec(), |d| vec![d]);
    // A backslash escape is tried only where the sample has one before a quote, and kept only
    // when it splits strictly better (ties go to the plain reading).
    let escaped = (text.windows(2)).any(|w| w[0] == b'\\' && (w[1] == b'"' || w[1] == b'\''));
    let escapes: &[Option<u8>] = if escaped {
        &[None, Some(b'\\')]
    } else {
        &[None]
    };
    let mut best: Option<Split> = None;
    for &d in &delims {
        for (&q, &e) in quotes
            .iter()
            .flat_map(|q| escapes.iter().map(move |e| (q, e)))
        {
            let recs = records(text, d, q, e);
            let counts: Vec<usize> = recs.iter().map(Vec::len).collect();
            let Some((fields, freq)) = modal(&counts) else {
                continue;
            };
            if fields < 2 && delimiter.is_none() {
                continue;
            }
            let consistency = freq as f64 / counts.len() as f64;
            let better = best.as_ref().is_none_or(|b| {
                consistency > b.consistency + 1e-9
                    || ((consistency - b.consistency).abs() <= 1e-9 && fields > b.fields)
            });
            if better {
                best = Some(Split {
                    d,
                    q,
                    e,
                    consistency,
                    fields,
                    recs,
                });
            }
        }
    }
    best
}

/// A space-separated reading, when every record splits into the same three or more fields.
fn space_split(text: &[u8], quotes: &[u8]) -> Option<Split> {
    quotes.iter().find_map(|&q| {
        let recs = records(text, b' ', q, None);
        let counts: Vec<usize> = recs.iter().map(Vec::len).collect();
        let (fields, freq) = modal(&counts)?;
        (fields >= 3 && freq == counts.len() && counts.len() >= 2).then_some(Split {
            d: b' ',
            q,
            e: None,
            consistency: 1.0,
            fields,
            recs,
        })
    })
}

/// The layout a split gives: the header is the first record filled in at least half.
fn layout_of(split: Split, forced: bool) -> Layout {
    let Split {
        d,
        q,
        e,
        consistency,
        fields,
        recs,
    } = split;
    let needed = fields.div_ceil(2).max(if fields > 1 { 2 } else { 1 });
    let preamble = recs
        .iter()
        .take(50)
        .position(|r| r.iter().filter(|f| **f).count() >= needed)
        .unwrap_or(0);
    let how = if forced {
        "set in the dataset file".to_string()
    } else {
        format!(
            "{fields} fields in {:.0}% of the first records",
            consistency * 100.0
        )
    };
    let mut quote_note = if q == b'"' {
        String::new()
    } else {
        format!(", quote `{}`", q as char)
    };
    if let Some(e) = e {
        quote_note.push_str(&format!(", escape `{}`", e as char));
    }
    Layout {
        delimiter: d,
        quote: q,
        escape: e,
        preamble,
        fields,
        note: format!("{} ({how}){quote_note}", describe(d)),
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
        b' ' => "space",
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

    fn delim(text: &str) -> u8 {
        detect_layout(text, None, None).delimiter
    }

    #[test]
    fn picks_the_consistent_delimiter() {
        assert_eq!(
            delim("nom;ville;note\n\"Dupont, Jean\";Rabat;12,5\nAli;Fès;9\n"),
            b';'
        );
        assert_eq!(delim("a,b,c\n1,2,3\n4,5,6\n"), b',');
        assert_eq!(delim("a\tb\n1\t2\n"), b'\t');
        assert_eq!(delim("a|b|c\n1|x,y|3\n"), b'|');
        assert_eq!(delim("just one column\nvalue\n"), b',');
        assert_eq!(
            delim("date time qty\n28/01/2018 00:00 2\n29/01/2018 00:15 \"0 or 1\"\n"),
            b' '
        );
        // Values with spaces in a one-column file are not split.
        assert_eq!(delim("stop_name\nCasa Port\nRabat Ville\n"), b',');
    }

    #[test]
    fn finds_the_quote_and_the_header_below_a_preamble() {
        let l = detect_layout("a,b,c\n1,'x, y',3\n2,'z, w',4\n", None, None);
        assert_eq!((l.delimiter, l.quote), (b',', b'\''));
        let l = detect_layout(
            "Invoices over £500\n\nDate,Supplier,Amount\n01/10/2011,ACME,\"1,200.00\"\n",
            None,
            None,
        );
        // The blank line is no record: one title record is skipped.
        assert_eq!(
            (l.delimiter, l.quote, l.preamble, l.fields),
            (b',', b'"', 1, 3)
        );
        let l = detect_layout("PREAMBLE,,,\n,,,\nA,B,C,D\n1,2,3,4\n", None, None);
        assert_eq!(l.preamble, 2);
        let l = detect_layout("a,b\n1,\"say \\\"hi\\\", then go\"\n2,\"x\"\n", None, None);
        assert_eq!((l.delimiter, l.escape), (b',', Some(b'\\')));
        let l = detect_layout("A;B\n1;2\n", Some(b';'), None);
        assert_eq!((l.delimiter, l.preamble), (b';', 0));
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

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A table of text cells: a header of distinct names, then rows of words that may hold
        /// the delimiter, the quote and line breaks (then quoted, the quote doubled).
        fn table() -> impl Strategy<Value = (Vec<String>, Vec<Vec<String>>)> {
            (2usize..7, 4usize..30).prop_flat_map(|(cols, rows)| {
                let header = Just((0..cols).map(|i| format!("col{i}")).collect::<Vec<_>>());
                let cell = "[a-zA-Z0-9é ]{0,8}(@|#|\n)?[a-z0-9]{0,4}";
                let body = proptest::collection::vec(proptest::collection::vec(cell, cols), rows);
                (header, body)
            })
        }

        /// Writes a table in a dialect; `@` in a cell stands for the delimiter, `#` for the quote.
        fn write(
            header: &[String],
            rows: &[Vec<String>],
            d: u8,
            q: u8,
            titles: usize,
        ) -> (String, bool) {
            let (d, q) = (d as char, q as char);
            let mut quoted_any = false;
            let mut out = String::new();
            for t in 0..titles {
                out.push_str(&format!("Title-{t}\n"));
            }
            for record in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
                let cells: Vec<String> = record
                    .iter()
                    .map(|c| {
                        let c = c.replace('@', &d.to_string()).replace('#', &q.to_string());
                        if c.contains(d) || c.contains(q) || c.contains('\n') {
                            // Only these make the quote observable in how lines split.
                            quoted_any |= c.contains(d) || c.contains('\n');
                            let doubled = c.replace(q, &format!("{q}{q}"));
                            format!("{q}{doubled}{q}")
                        } else {
                            c
                        }
                    })
                    .collect();
                out.push_str(&cells.join(&d.to_string()));
                out.push('\n');
            }
            (out, quoted_any)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            /// Files written in a generated dialect are read back in it: the delimiter, the
            /// quote when a quoted field holds the delimiter or a line break, and the title
            /// lines above the header.
            #[test]
            fn generated_dialects_are_detected(
                (header, rows) in table(),
                d in proptest::sample::select(CANDIDATES.to_vec()),
                q in proptest::sample::select(vec![b'"', b'\'']),
                titles in 0usize..3,
            ) {
                let (text, quoted) = write(&header, &rows, d, q, titles);
                let l = detect_layout(&text, None, None);
                prop_assert_eq!(l.delimiter, d, "{}", text);
                prop_assert_eq!(l.fields, header.len(), "{}", text);
                prop_assert_eq!(l.preamble, titles, "{}", text);
                if quoted {
                    prop_assert_eq!(l.quote, q, "{}", text);
                }
                // Whatever is forced is kept.
                let forced = detect_layout(&text, Some(b';'), Some(b'"'));
                prop_assert_eq!((forced.delimiter, forced.quote), (b';', b'"'));
            }
        }
    }
}
