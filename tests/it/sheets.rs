//! Spreadsheets as sources: XLSX and ODS workbooks (written here, cell by cell, as the formats
//! lay them out) read from their first sheet with cells, typed like CSV, whatever the file is
//! called; a workbook without rows refused.

use std::io::Write;

use crate::support::{TestApp, toml_for};

/// A cell of a test workbook.
#[derive(Clone)]
pub enum Cell {
    Text(&'static str),
    Number(f64),
    /// An Excel date serial number shown with a date format (45583 is 2024-10-18).
    Date(f64),
    Empty,
}

fn zip_of(entries: &[(&str, String)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, body) in entries {
        // ODS wants its `mimetype` first and stored, as the format says.
        let method = if *name == "mimetype" {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        zip.start_file(*name, options).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

fn column_letter(n: usize) -> String {
    let mut n = n + 1;
    let mut s = String::new();
    while n > 0 {
        let r = (n - 1) % 26;
        s.insert(0, char::from(b'A' + r as u8));
        n = (n - 1) / 26;
    }
    s
}

/// An XLSX workbook: one sheet per `(name, rows)`, `merged` areas (`A1:C1`) on the first.
pub fn xlsx(sheets: &[(&str, Vec<Vec<Cell>>)], merged: &[&str]) -> Vec<u8> {
    const MAIN: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    const REL: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
    const PKG: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
    let mut types = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>"#,
    );
    let mut book = format!(r#"<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>"#);
    let mut rels = format!(
        r#"<Relationships xmlns="{PKG}"><Relationship Id="rIdS" Type="{REL}/styles" Target="styles.xml"/>"#
    );
    let mut entries = Vec::new();
    for (n, (name, rows)) in sheets.iter().enumerate() {
        let i = n + 1;
        types.push_str(&format!(r#"<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>"#));
        book.push_str(&format!(
            r#"<sheet name="{name}" sheetId="{i}" r:id="rId{i}"/>"#
        ));
        rels.push_str(&format!(
            r#"<Relationship Id="rId{i}" Type="{REL}/worksheet" Target="worksheets/sheet{i}.xml"/>"#
        ));
        let mut xml = format!(r#"<worksheet xmlns="{MAIN}"><sheetData>"#);
        for (r, row) in rows.iter().enumerate() {
            xml.push_str(&format!(r#"<row r="{}">"#, r + 1));
            for (c, cell) in row.iter().enumerate() {
                let at = format!("{}{}", column_letter(c), r + 1);
                xml.push_str(&match cell {
                    Cell::Text(t) => {
                        format!(r#"<c r="{at}" t="inlineStr"><is><t>{t}</t></is></c>"#)
                    }
                    Cell::Number(v) => format!(r#"<c r="{at}"><v>{v}</v></c>"#),
                    Cell::Date(v) => format!(r#"<c r="{at}" s="1"><v>{v}</v></c>"#),
                    Cell::Empty => String::new(),
                });
            }
            xml.push_str("</row>");
        }
        xml.push_str("</sheetData>");
        if n == 0 && !merged.is_empty() {
            xml.push_str(&format!(r#"<mergeCells count="{}">"#, merged.len()));
            for m in merged {
                xml.push_str(&format!(r#"<mergeCell ref="{m}"/>"#));
            }
            xml.push_str("</mergeCells>");
        }
        xml.push_str("</worksheet>");
        entries.push((format!("xl/worksheets/sheet{i}.xml"), xml));
    }
    types.push_str("</Types>");
    book.push_str("</sheets></workbook>");
    rels.push_str("</Relationships>");
    let mut all = vec![
        ("[Content_Types].xml".to_string(), types),
        (
            "_rels/.rels".to_string(),
            format!(
                r#"<Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>"#
            ),
        ),
        ("xl/workbook.xml".to_string(), book),
        ("xl/_rels/workbook.xml.rels".to_string(), rels),
        (
            "xl/styles.xml".to_string(),
            format!(
                r#"<styleSheet xmlns="{MAIN}"><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/></cellXfs></styleSheet>"#
            ),
        ),
    ];
    all.extend(entries);
    let refs: Vec<(&str, String)> = all.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    zip_of(&refs)
}

/// An ODS workbook of one sheet.
pub fn ods(name: &str, rows: &[Vec<Cell>]) -> Vec<u8> {
    let mut table = format!(r#"<table:table table:name="{name}">"#);
    for row in rows {
        table.push_str("<table:table-row>");
        for cell in row {
            table.push_str(&match cell {
                Cell::Text(t) => format!(
                    r#"<table:table-cell office:value-type="string"><text:p>{t}</text:p></table:table-cell>"#
                ),
                Cell::Number(v) => format!(
                    r#"<table:table-cell office:value-type="float" office:value="{v}"><text:p>{v}</text:p></table:table-cell>"#
                ),
                Cell::Date(_) | Cell::Empty => "<table:table-cell/>".to_string(),
            });
        }
        table.push_str("</table:table-row>");
    }
    table.push_str("</table:table>");
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet>{table}</office:spreadsheet></office:body></office:document-content>"#
    );
    let manifest = r#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#;
    zip_of(&[
        (
            "mimetype",
            "application/vnd.oasis.opendocument.spreadsheet".to_string(),
        ),
        ("META-INF/manifest.xml", manifest.to_string()),
        ("content.xml", content),
    ])
}

/// The rows of a small table of health figures, under a merged title row.
pub fn figures(title: &'static str, extra_rows: usize) -> Vec<Vec<Cell>> {
    use Cell::*;
    let mut rows = vec![
        vec![Text(title), Empty, Empty, Empty],
        vec![
            Text("kode"),
            Text("kabupaten"),
            Text("jumlah"),
            Text("tanggal"),
        ],
        vec![Text("0101"), Text("Kampar"), Number(42.0), Date(45583.0)],
        vec![Text("0102"), Text("Siak"), Number(3.5), Date(45584.0)],
    ];
    for n in 0..extra_rows {
        rows.push(vec![
            Text("0199"),
            Text("Lain"),
            Number(n as f64),
            Date(45585.0),
        ]);
    }
    rows
}

#[tokio::test]
async fn spreadsheets_are_read_from_their_first_sheet_with_cells() {
    use Cell::*;
    let book = xlsx(
        &[
            ("Kosong", vec![]),
            ("AKI 2024", figures("Angka Kematian Ibu", 0)),
            ("Catatan", vec![vec![Text("sumber: dinas")]]),
        ],
        &["A1:D1"],
    );
    let sheet = ods(
        "Feuille1",
        &[
            vec![Text("code_commune"), Text("taux")],
            vec![Text("01001"), Number(12.5)],
            vec![Text("01002"), Number(7.0)],
        ],
    );
    // Named `.csv`, as portals name them: the bytes say what they are.
    let app = TestApp::with_files(
        &[
            ("aki.csv", book.as_slice()),
            ("aki.toml", &toml_for("aki.csv", "")),
            ("taux.ods", sheet.as_slice()),
            ("taux.toml", &toml_for("taux.ods", "")),
        ],
        "",
    )
    .await;
    let rows = app.rows("/api/datasets/aki/data?kode__sort=asc").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    // The merged title row is a preamble; codes keep their zeros; numbers and dates are typed.
    assert_eq!(rows[0]["kode"], "0101");
    assert_eq!(rows[0]["kabupaten"], "Kampar");
    assert_eq!(rows[0]["jumlah"], 42.0);
    assert_eq!(rows[1]["jumlah"], 3.5);
    assert_eq!(rows[0]["tanggal"], "2024-10-18");
    let meta = app.get("/api/datasets/aki").await.json();
    let schema = meta["schema"].as_array().unwrap();
    let type_of = |name: &str| {
        schema
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["type"].clone())
            .unwrap()
    };
    assert_eq!(type_of("tanggal"), "date");
    assert_eq!(type_of("kode"), "string");
    let report = meta["report"].to_string();
    assert!(
        report.contains("sheet `AKI 2024`") && report.contains("Catatan"),
        "{report}"
    );

    let rows = app
        .rows("/api/datasets/taux/data?code_commune__sort=asc")
        .await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["code_commune"], "01001");
    assert_eq!(rows[0]["taux"], 12.5);
    assert_eq!(rows[1]["taux"], 7.0);

    // A workbook without a cell is refused, naming its sheets; nothing is published.
    let empty = xlsx(&[("Sheet1", vec![]), ("Sheet2", vec![])], &[]);
    let app = TestApp::with_files(
        &[
            ("vide.xlsx", empty.as_slice()),
            ("vide.toml", &toml_for("vide.xlsx", "")),
        ],
        "",
    )
    .await;
    let d = app.get("/api/datasets/vide").await.json();
    let err = d["last_error"].as_str().unwrap();
    assert!(
        err.contains("the workbook has no rows") && err.contains("Sheet1, Sheet2"),
        "{err}"
    );
    assert_eq!(d["version"], serde_json::Value::Null);
}
