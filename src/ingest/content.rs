//! What a source is, from its first bytes, whatever its name or label says: portals and their
//! firewalls answer `200` with HTML pages ("Request Rejected"), and label PDFs, images, zip
//! archives and Word documents as CSV (spreadsheets are read before this check, see
//! [`super::sheet`]). Parsed as CSV, those become plausible-looking tables of garbage (an HTML
//! page as one column of markup, a zip as rows of binary) that would replace good data on a
//! refresh; they are refused before parsing, saying what they are.

use crate::error::{Error, Result};

/// Leading bytes of formats that are never delimited text, and what to call them.
const SIGNATURES: [(&[u8], &str); 12] = [
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\0", "a TIFF image"),
    (b"MM\0*", "a TIFF image"),
    (
        b"PK\x03\x04",
        "a zip archive that is not a spreadsheet (zipped files)",
    ),
    (b"PK\x05\x06", "an empty zip archive"),
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an OLE2 document that is not a readable .xls spreadsheet (a .doc?)",
    ),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
];

/// Markup that opens an HTML or XML document.
const MARKUP: [(&str, &str); 6] = [
    ("<!doctype html", "an HTML page"),
    ("<html", "an HTML page"),
    ("<head", "an HTML page"),
    ("<body", "an HTML page"),
    ("<?xml", "an XML document"),
    ("<!--", "an HTML or XML document"),
];

/// Refuses a source whose first bytes say it is not delimited text.
pub fn check_table(sample: &[u8]) -> Result<()> {
    match what_else(sample) {
        None => Ok(()),
        Some(what) => Err(Error::bad_request(format!(
            "the source is not a table: its content is {what}{}; nothing was published (check the URL, or whether the portal refused the download)",
            excerpt(sample, what)
        ))),
    }
}

/// What the bytes are when they are not a table.
fn what_else(sample: &[u8]) -> Option<&'static str> {
    let body = sample.strip_prefix(b"\xef\xbb\xbf").unwrap_or(sample);
    if let Some((_, what)) = SIGNATURES.iter().find(|(sig, _)| body.starts_with(sig)) {
        return Some(what);
    }
    if body.len() >= 12 && &body[..4] == b"RIFF" && &body[8..12] == b"WEBP" {
        return Some("a WebP image");
    }
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let head: Vec<u8> = body[start..body.len().min(start + 64)]
        .iter()
        .map(u8::to_ascii_lowercase)
        .collect();
    if let Some((_, what)) = MARKUP.iter().find(|(m, _)| head.starts_with(m.as_bytes())) {
        return Some(what);
    }
    // UTF-16 text has a byte order mark; NULs without one are binary data.
    let utf16 = body.starts_with(b"\xff\xfe") || body.starts_with(b"\xfe\xff");
    let nuls = body.iter().take(4096).filter(|b| **b == 0).count();
    (!utf16 && nuls > 0).then_some("binary data (it holds NUL bytes)")
}

/// The start of a text page, to show what the server actually sent.
fn excerpt(sample: &[u8], what: &str) -> String {
    if !what.contains("HTML") && !what.contains("XML") {
        return String::new();
    }
    let text = String::from_utf8_lossy(&sample[..sample.len().min(2048)]);
    let title = text
        .to_ascii_lowercase()
        .find("<title>")
        .and_then(|i| {
            let rest = &text[i + 7..];
            rest.find('<').map(|j| rest[..j].trim().to_string())
        })
        .filter(|t| !t.is_empty());
    match title {
        Some(t) => format!(" titled \"{}\"", t.chars().take(80).collect::<String>()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(bytes: &[u8]) -> String {
        check_table(bytes).unwrap_err().to_string()
    }

    #[test]
    fn what_is_not_a_table_is_named() {
        let page = b"\n  <!DOCTYPE html><html><head><title>Request Rejected</title></head><body>The requested URL was rejected.</body></html>";
        let msg = refused(page);
        assert!(
            msg.contains("an HTML page titled \"Request Rejected\""),
            "{msg}"
        );
        assert!(refused(b"<html>\n<body>x</body>").contains("an HTML page"));
        assert!(refused(b"%PDF-1.7\n%\xe2\xe3").contains("a PDF document"));
        assert!(refused(b"PK\x03\x04\x14\0\0\0").contains("a zip archive"));
        assert!(refused(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\0\0").contains("OLE2"));
        assert!(refused(b"\x89PNG\r\n\x1a\n\0\0").contains("PNG"));
        assert!(refused(b"<?xml version=\"1.0\"?><a/>").contains("XML"));
        assert!(refused(b"a,b\n1,\0\n").contains("binary data"));
    }

    #[test]
    fn tables_pass() {
        for ok in [
            &b"code;nom\n01;Ain\n"[..],
            b"\xef\xbb\xbfcode,nom\n",
            b"\xff\xfec\0o\0d\0e\0",
            b"",
            b"<note>,value\nx,1\n",
        ] {
            assert!(check_table(ok).is_ok(), "{ok:?}");
        }
    }
}
