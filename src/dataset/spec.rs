//! Dataset files (`datasets/<id>.toml`): what to ingest, from where, and how to read it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::names::{is_valid_id, slugify};
use super::schema::ColumnType;
use crate::error::{Error, Result};

/// A dataset as its file declares it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    #[serde(skip)]
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// A path relative to the dataset file, an `http(s)://` URL or an object-store URL.
    pub source: String,
    #[serde(default)]
    pub licence: Option<String>,
    #[serde(default)]
    pub producer: Option<String>,
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Where a harvested dataset comes from; its source is then an untrusted URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// The portal's id of the published file (data.gouv.fr's resource UUID, CKAN's resource
    /// id): `/api/resources/{resource_id}/…` and `datastore_search?resource_id=` answer by it.
    #[serde(default)]
    pub resource_id: Option<String>,
    /// How often the server checks the source for a new version (`30s`, `15m`, `6h`, `1d`).
    #[serde(default)]
    pub refresh: Option<String>,
    #[serde(default)]
    pub csv: CsvOptions,
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnOverride>,
    #[serde(default)]
    pub layout: LayoutOptions,
    /// `[geo]`: the columns holding the rows' points, when their names do not say it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<GeoOptions>,
    /// `gtfs` or `zip`: the source is an archive whose files are each served as a dataset
    /// `{id}-{file}`, versioned together (a `.zip` source is one without saying so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The feed (archive) this dataset is a file of: its versions are the feed's.
    #[serde(skip)]
    pub member: Option<Member>,
    /// Directory the relative `source` is resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Every column as text, exactly as published (`qanat export --text`).
    #[serde(skip)]
    pub all_text: bool,
}

/// A dataset that is one file of a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The feed's id: its pointer names the version of all its files.
    pub feed: String,
    /// The file's name in the archive.
    pub file: String,
}

/// `[provenance]` of a harvested dataset: the portal and what it published.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The portal's site or API base.
    pub portal: String,
    /// `ckan` or `udata`.
    pub kind: String,
    /// The package (CKAN) or dataset (udata) id.
    #[serde(default)]
    pub package: Option<String>,
    /// The resource's URL as the portal lists it.
    #[serde(default)]
    pub url: Option<String>,
    /// The resource's `last_modified`, checksum and size as the portal lists them.
    #[serde(default)]
    pub modified: Option<String>,
    #[serde(default)]
    pub checksum: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    /// The harvest that wrote the file (its portal and filters), which alone may retire it.
    #[serde(default)]
    pub harvest: Option<String>,
    /// When the resource disappeared from the portal (RFC 3339): the dataset is no longer
    /// served as current, and its versions stay readable by pinned URL until they expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<String>,
}

/// `[csv]`: every field overrides what detection would decide.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    pub delimiter: Option<String>,
    pub encoding: Option<String>,
    pub decimal: Option<String>,
    pub quote: Option<String>,
    /// A character escaping quotes inside quoted fields (`\\`), besides doubled quotes.
    pub escape: Option<String>,
    pub header: Option<bool>,
    /// Records above the header to skip (titles, notes).
    pub preamble: Option<usize>,
    pub null_values: Option<Vec<String>>,
}

/// `[layout]`: how the Parquet of a version is laid out for the queries expected.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct LayoutOptions {
    /// Columns the rows are stored in, which is then also the order of unsorted pages: `"col"`
    /// ascending, `"-col"` descending. Filters on the first column read few row groups.
    #[serde(default)]
    pub sort_by: Vec<String>,
    /// Columns given bloom filters, for equality lookups (default: identifier-like columns,
    /// whose values are mostly distinct).
    pub bloom_filters: Option<Vec<String>>,
    /// Rows per row group (default 131,072).
    pub row_group_rows: Option<usize>,
}

/// `[geo]`: which columns hold the latitude and the longitude (by API name), in degrees.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct GeoOptions {
    pub latitude: String,
    pub longitude: String,
}

/// `[columns.<name>]`: a column's forced type and its description.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct ColumnOverride {
    #[serde(rename = "type")]
    pub kind: Option<ColumnType>,
    pub description: Option<String>,
}

/// Where a dataset's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Local(PathBuf),
    Http(url::Url),
    Store(url::Url),
    /// An HTTP(S) URL a portal wrote (a harvested dataset): fetched from public hosts only.
    Untrusted(url::Url),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Local(p) => write!(f, "{}", p.display()),
            Source::Http(u) | Source::Store(u) | Source::Untrusted(u) => write!(f, "{u}"),
        }
    }
}

impl DatasetSpec {
    /// Reads `<dir>/<id>.toml`.
    pub fn load(path: &Path) -> Result<Self> {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        if !is_valid_id(stem) {
            return Err(Error::Config(format!(
                "{}: `{stem}` is not a valid dataset id (lowercase ASCII letters, digits and `-`, e.g. `{}`)",
                path.display(),
                slugify(stem)
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let mut spec: DatasetSpec =
            toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        spec.id = stem.to_string();
        spec.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        spec.validate()?;
        Ok(spec)
    }

    /// A dataset for a CSV given on the command line: id from the slugified stem.
    pub fn for_file(path: &Path) -> Result<Self> {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let id = slugify(stem);
        if !is_valid_id(&id) {
            return Err(Error::Config(format!(
                "{}: cannot derive a dataset id from this file name",
                path.display()
            )));
        }
        let abs = std::path::absolute(path)?;
        let mut spec = DatasetSpec::for_source(&id, &abs.display().to_string());
        spec.title = stem.to_string();
        spec.base_dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(spec)
    }

    /// A dataset of a source, with nothing else declared (a harvest fills the rest in).
    pub fn for_source(id: &str, source: &str) -> Self {
        DatasetSpec {
            id: id.to_string(),
            title: id.to_string(),
            description: String::new(),
            source: source.to_string(),
            licence: None,
            producer: None,
            keywords: Vec::new(),
            resource_id: None,
            provenance: None,
            refresh: None,
            csv: CsvOptions::default(),
            columns: BTreeMap::new(),
            layout: LayoutOptions::default(),
            geo: None,
            kind: None,
            member: None,
            base_dir: PathBuf::new(),
            all_text: false,
        }
    }

    fn validate(&self) -> Result<()> {
        let ctx = |msg: String| Error::Config(format!("dataset `{}`: {msg}", self.id));
        if let Some(d) = &self.csv.delimiter
            && (d.chars().count() != 1 || !d.is_ascii())
        {
            return Err(ctx(format!(
                "[csv] delimiter `{d}` must be one ASCII character, e.g. \";\""
            )));
        }
        if let Some(q) = &self.csv.quote
            && (q.chars().count() != 1 || !q.is_ascii())
        {
            return Err(ctx(format!(
                "[csv] quote `{q}` must be one ASCII character, e.g. '\"'"
            )));
        }
        if let Some(e) = &self.csv.escape
            && (e.chars().count() != 1 || !e.is_ascii())
        {
            return Err(ctx(format!(
                "[csv] escape `{e}` must be one ASCII character, e.g. '\\'"
            )));
        }
        if let Some(n) = self.layout.row_group_rows
            && !(1..=16 * 1024 * 1024).contains(&n)
        {
            return Err(ctx(format!(
                "[layout] row_group_rows = {n} must be from 1 to 16777216 (default 131072)"
            )));
        }
        if let Some(d) = &self.csv.decimal
            && d != "."
            && d != ","
        {
            return Err(ctx(format!("[csv] decimal `{d}` must be \".\" or \",\"")));
        }
        if let Some(e) = &self.csv.encoding
            && encoding_rs::Encoding::for_label(e.as_bytes()).is_none()
        {
            return Err(ctx(format!(
                "[csv] encoding `{e}` is unknown; use a WHATWG label such as \"utf-8\", \"windows-1252\" or \"iso-8859-1\""
            )));
        }
        if let Some(rid) = &self.resource_id {
            let ok = rid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if rid.is_empty() || rid.len() > 200 || !ok || rid.contains('@') {
                return Err(ctx(format!(
                    "resource_id `{rid}` must be 1 to 200 ASCII letters, digits, `-`, `_` or `.`, e.g. a UUID"
                )));
            }
        }
        if let Some(kind) = &self.kind
            && !FEED_KINDS.contains(&kind.as_str())
        {
            return Err(ctx(format!(
                "kind `{kind}` is unknown; use \"gtfs\" (a GTFS feed) or \"zip\" (a zip of CSV files), or leave it out for a table"
            )));
        }
        self.source()?;
        self.refresh_interval()?;
        Ok(())
    }

    /// Whether the source is an archive whose files are datasets: `kind` says so, or the
    /// source's name ends in `.zip`.
    pub fn is_feed(&self) -> bool {
        if self.member.is_some() {
            return false;
        }
        match &self.kind {
            Some(kind) => FEED_KINDS.contains(&kind.as_str()),
            None => {
                let path = self.source.split(['?', '#']).next().unwrap_or_default();
                path.to_ascii_lowercase().ends_with(".zip")
            }
        }
    }

    /// Whose pointer names this dataset's current version: its feed's, for a file of a feed.
    pub fn pointer_id(&self) -> &str {
        self.member.as_ref().map_or(&self.id, |m| &m.feed)
    }

    /// When a harvest retired the dataset (its resource left the portal), if it did.
    pub fn retired(&self) -> Option<&str> {
        self.provenance.as_ref()?.retired.as_deref()
    }

    /// The `refresh` interval, if one is set.
    pub fn refresh_interval(&self) -> Result<Option<std::time::Duration>> {
        let Some(text) = &self.refresh else {
            return Ok(None);
        };
        let bad = || {
            Error::Config(format!(
                "dataset `{}`: refresh `{text}` is not a duration; write a number and a unit: 500ms, 30s, 15m, 6h, 1d",
                self.id
            ))
        };
        crate::config::parse_duration(text)
            .ok_or_else(bad)
            .map(Some)
    }

    /// Resolves `source` against the dataset file's directory.
    pub fn source(&self) -> Result<Source> {
        let s = self.source.trim();
        if s.is_empty() {
            return Err(Error::Config(format!(
                "dataset `{}`: `source` is empty",
                self.id
            )));
        }
        if self.provenance.is_some() {
            // A portal may point at its own web, not at this server's files or stores.
            return match url::Url::parse(s) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Source::Untrusted(url)),
                _ => Err(Error::Config(format!(
                    "dataset `{}`: the harvested source `{s}` is not an http(s) URL",
                    self.id
                ))),
            };
        }
        if let Ok(url) = url::Url::parse(s) {
            match url.scheme() {
                "http" | "https" => return Ok(Source::Http(url)),
                "file" => {
                    let path = url.to_file_path().map_err(|_| {
                        Error::Config(format!(
                            "dataset `{}`: `{s}` is not a local file URL",
                            self.id
                        ))
                    })?;
                    return Ok(Source::Local(path));
                }
                "s3" | "memory" => return Ok(Source::Store(url)),
                // A Windows drive letter parses as a scheme; anything else is a path.
                other if other.len() > 1 => {
                    return Err(Error::Config(format!(
                        "dataset `{}`: source scheme `{other}` is not supported (use a path, http(s)://, file://, s3:// or memory://)",
                        self.id
                    )));
                }
                _ => {}
            }
        }
        let path = Path::new(s);
        Ok(Source::Local(if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }))
    }

    /// A digest of everything in the spec that changes how the source is read, so that editing
    /// `[csv]` or `[columns]` makes the stored version stale.
    pub fn read_options_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let text = serde_json::to_string(&(&self.csv, &self.columns, &self.layout, &self.geo))
            .unwrap_or_default();
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    }
}

/// The `kind`s of a feed.
const FEED_KINDS: [&str; 2] = ["gtfs", "zip"];

/// Loads every `*.toml` of a directory, sorted by id. A missing directory is an empty catalog.
pub fn load_dir(dir: &Path) -> Result<Vec<DatasetSpec>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Config(format!("{}: {e}", dir.display()))),
    };
    let mut specs = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            specs.push(DatasetSpec::load(&path)?);
        }
    }
    specs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn loads_a_dataset_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "hebergements.toml",
            "title = 'Hébergements'\nsource = 'h.csv'\nlicence = 'ODbL-1.0'\n[csv]\ndelimiter = ';'\n[columns.code_postal]\ntype = 'string'\n",
        );
        let spec = DatasetSpec::load(&p).unwrap();
        assert_eq!(spec.id, "hebergements");
        assert_eq!(
            spec.source().unwrap(),
            Source::Local(dir.path().join("h.csv"))
        );
        assert_eq!(spec.columns["code_postal"].kind, Some(ColumnType::String));
        assert_eq!(spec.csv.delimiter.as_deref(), Some(";"));
    }

    #[test]
    fn refuses_bad_files_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "x.toml", "source = 'a.csv'\ntitel = 'typo'\n");
        assert!(
            DatasetSpec::load(&p)
                .unwrap_err()
                .to_string()
                .contains("titel")
        );
        let p = write(dir.path(), "Bad_Name.toml", "source = 'a.csv'\n");
        assert!(
            DatasetSpec::load(&p)
                .unwrap_err()
                .to_string()
                .contains("`bad-name`")
        );
        let p = write(
            dir.path(),
            "y.toml",
            "source = 'a.csv'\n[csv]\ndecimal = ';'\n",
        );
        assert!(
            DatasetSpec::load(&p)
                .unwrap_err()
                .to_string()
                .contains("decimal")
        );
        let p = write(dir.path(), "z.toml", "source = 'ftp://host/a.csv'\n");
        assert!(
            DatasetSpec::load(&p)
                .unwrap_err()
                .to_string()
                .contains("ftp")
        );
    }
}
