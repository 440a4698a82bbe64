//! Harvesting a portal's catalog: its packages read into tabular resources (CSV, gzipped CSV,
//! spreadsheets) with their provenance, whatever the free-text `format` says, and the others
//! skipped with a reason; each kept resource becomes a dataset file. [`ckan`] and [`udata`] read
//! the two portals' APIs as real portals answer them (through [`portal`]); [`run`] is one
//! harvest: list, compare with the last run, write dataset files, ingest, retire, report.

pub mod ckan;
pub mod portal;
pub mod run;
pub mod udata;

use crate::dataset::names::slugify;
use crate::dataset::spec::{DatasetSpec, Provenance};

/// The tabular kinds a harvest keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tabular {
    Csv,
    CsvGz,
    Xlsx,
    Xls,
    Ods,
}

/// A resource the harvest keeps, with what the portal says of it and of its package.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub kind: Tabular,
    pub portal: String,
    pub portal_kind: &'static str,
    pub package_id: String,
    pub package_name: String,
    pub package_title: String,
    pub resource_id: String,
    pub name: String,
    pub url: String,
    pub description: String,
    pub licence: Option<String>,
    pub producer: Option<String>,
    pub keywords: Vec<String>,
    pub modified: Option<String>,
    pub checksum: Option<String>,
    pub size: Option<u64>,
}

/// A resource left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub package: String,
    pub resource: String,
    pub reason: String,
}

/// What a CKAN listing selects (`package_search`'s `fq` and `q`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub organization: Option<String>,
    pub query: Option<String>,
}

/// A package (CKAN) or dataset (udata) as listed: its tabular resources and the others.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub id: String,
    pub name: String,
    /// When the portal says the package last changed (`metadata_modified`, `last_update`).
    pub modified: Option<String>,
    pub resources: Vec<Resource>,
    pub skipped: Vec<Skipped>,
}

/// Listing pages that may fail before a harvest stops asking.
pub const MAX_FAILED_PAGES: usize = 10;

/// A portal's packages as listed, and the pages that failed: a listing with failed pages is
/// incomplete, and then nothing is retired (a package missing from it may just be unread).
#[derive(Debug, Default)]
pub struct Listing {
    pub packages: Vec<Package>,
    pub errors: Vec<String>,
}

impl Listing {
    pub fn fail(&mut self, error: String) {
        self.errors.push(error);
    }

    pub fn complete(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A string field, trimmed; `None` when missing, not a string or blank.
fn text(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Normalises a declared format: trimmed, lower case, without a leading dot, the first of a
/// list (`csv,dbase`), mimetypes mapped (`text/csv`).
fn normalise(format: &str) -> String {
    let f = format.trim().to_ascii_lowercase();
    let f = f
        .split([',', ' '])
        .next()
        .unwrap_or("")
        .trim_start_matches('.');
    match f {
        "text/csv" | "application/csv" => "csv".into(),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx".into(),
        "application/vnd.ms-excel" => "xls".into(),
        "application/vnd.oasis.opendocument.spreadsheet" => "ods".into(),
        other => other.to_string(),
    }
}

fn tabular_of(word: &str) -> Option<Tabular> {
    match word {
        "csv" | "tsv" | "txt" => Some(Tabular::Csv),
        "csv.gz" | "gz" => Some(Tabular::CsvGz),
        "xlsx" => Some(Tabular::Xlsx),
        "xls" => Some(Tabular::Xls),
        "ods" => Some(Tabular::Ods),
        _ => None,
    }
}

/// The suffix of a URL's path (`csv`, `csv.gz`, `xlsx`), lower case.
fn suffix(url: &str) -> Option<String> {
    let path = url::Url::parse(url).ok()?.path().to_ascii_lowercase();
    let file = path.rsplit('/').next()?.to_string();
    if file.ends_with(".csv.gz") {
        return Some("csv.gz".into());
    }
    file.rsplit_once('.').map(|(_, ext)| ext.to_string())
}

/// Whether a resource is a table qanat reads: its URL's suffix first (portals mislabel
/// formats: an `XLS` that is `.xlsx`, a `WFS` link that downloads `.csv`), then its declared
/// format, then its mimetype; else why not.
pub fn classify(
    format: Option<&str>,
    mimetype: Option<&str>,
    url: &str,
) -> Result<Tabular, String> {
    if url::Url::parse(url).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
        return Err(format!("its URL `{url}` is not an http(s) URL"));
    }
    if let Some(kind) = suffix(url).as_deref().and_then(tabular_of) {
        return Ok(kind);
    }
    let declared = format.map(normalise).unwrap_or_default();
    if let Some(kind) = tabular_of(&declared) {
        return Ok(kind);
    }
    if let Some(kind) = mimetype.map(normalise).as_deref().and_then(tabular_of) {
        return Ok(kind);
    }
    Err(if declared.is_empty() {
        "no format, and its URL names none".to_string()
    } else {
        format!("format `{declared}` is not a table")
    })
}

impl Resource {
    /// The dataset id: the package's name and the start of the resource id, slugified, so that
    /// it is stable across harvests and unique in a portal.
    pub fn dataset_id(&self) -> String {
        let rid: String = self
            .resource_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
        let name: String = slugify(&self.package_name).chars().take(60).collect();
        let name = name.trim_matches('-');
        format!("{name}-{}", rid.to_ascii_lowercase())
    }

    /// The dataset file of this resource.
    pub fn spec(&self) -> DatasetSpec {
        let title = match (self.package_title.is_empty(), self.name.is_empty()) {
            (false, false) => format!("{} — {}", self.package_title, self.name),
            (false, true) => self.package_title.clone(),
            _ => self.name.clone(),
        };
        let mut spec = DatasetSpec::for_source(&self.dataset_id(), &self.url);
        spec.title = title;
        spec.description = self.description.clone();
        spec.licence = self.licence.clone();
        spec.producer = self.producer.clone();
        spec.keywords = self.keywords.clone();
        spec.resource_id = Some(self.resource_id.clone()).filter(|r| {
            r.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
        spec.provenance = Some(Provenance {
            portal: self.portal.clone(),
            kind: self.portal_kind.to_string(),
            package: Some(self.package_id.clone()),
            url: Some(self.url.clone()),
            modified: self.modified.clone(),
            checksum: self.checksum.clone(),
            size: self.size,
            ..Provenance::default()
        });
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_read_as_portals_write_them() {
        let u = "http://127.0.0.1/dataset/x/resource/y/download";
        assert_eq!(classify(Some(" CSV "), None, u), Ok(Tabular::Csv));
        assert_eq!(classify(Some(".csv"), None, u), Ok(Tabular::Csv));
        assert_eq!(classify(Some("csv,dbase"), None, u), Ok(Tabular::Csv));
        assert_eq!(classify(Some("text/csv"), None, u), Ok(Tabular::Csv));
        assert_eq!(classify(Some(""), Some("text/csv"), u), Ok(Tabular::Csv));
        // The URL's suffix wins over a mislabelled format.
        assert_eq!(
            classify(Some("XLS"), None, "http://127.0.0.1/a/b.xlsx"),
            Ok(Tabular::Xlsx)
        );
        assert_eq!(
            classify(Some("WFS"), None, "http://127.0.0.1/f.csv"),
            Ok(Tabular::Csv)
        );
        assert_eq!(
            classify(None, None, "http://127.0.0.1/f.CSV.GZ"),
            Ok(Tabular::CsvGz)
        );
        assert_eq!(
            classify(Some("ZIP"), None, "http://127.0.0.1/a.zip"),
            Err("format `zip` is not a table".into())
        );
        assert!(classify(Some("csv"), None, "ftp://127.0.0.1/a.csv").is_err());
        assert!(classify(Some("csv"), None, "not a url").is_err());
    }
}
