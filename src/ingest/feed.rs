//! Ingesting a feed (a GTFS feed, any zip of CSV files) as one unit: the archive is fetched
//! once, each table in it is written as a version of its own dataset under one version id, and
//! the feed's pointer switches them all at once after the last is complete. A GTFS file is read
//! with the reference's types: its `YYYYMMDD` dates become ISO dates, and each service-day time
//! gets a column of seconds beside it.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use super::{Outcome, source};
use crate::config::IngestSettings;
use crate::dataset::feed::{FeedFile, FeedManifest, is_table, member_spec, served_tables};
use crate::dataset::gtfs::{self, Field};
use crate::dataset::manifest::{LAYOUT_VERSION, Manifest};
use crate::dataset::names::column_names;
use crate::dataset::spec::{ColumnOverride, DatasetSpec, Source};
use crate::error::{Error, Result};
use crate::storage::Storage;

/// What ingesting a feed did: its manifest, and each file's outcome.
pub struct FeedOutcome {
    pub manifest: FeedManifest,
    pub members: Vec<Outcome>,
}

/// Ingests a feed unless its current version is up to date (`force` re-ingests anyway).
pub async fn ingest_feed(
    spec: &DatasetSpec,
    storage: &Storage,
    settings: &IngestSettings,
    force: bool,
) -> Result<FeedOutcome> {
    // One lease for the feed: its files are written and published together.
    super::leased(storage, &spec.id, settings, async |lease| {
        run(spec, storage, settings, force, lease).await
    })
    .await
}

/// What decides whether a stored feed version still holds: the dataset file's reading options
/// and the layout.
fn digest(spec: &DatasetSpec) -> String {
    format!(
        "{}-{}-{LAYOUT_VERSION}",
        spec.read_options_digest(),
        spec.kind.as_deref().unwrap_or("auto")
    )
}

async fn run(
    spec: &DatasetSpec,
    storage: &Storage,
    settings: &IngestSettings,
    force: bool,
    lease: &crate::storage::Lease,
) -> Result<FeedOutcome> {
    let started = Instant::now();
    let options_digest = digest(spec);
    let reusable = storage
        .current_feed(&spec.id)
        .await?
        .filter(|m| !force && m.options_digest == options_digest);
    let source = spec.source()?;
    if let (Some(m), Source::Local(path)) = (&reusable, &source)
        && let Some(modified) = m.source.modified
        && source::local_stamp(path) == Some((m.source.bytes, modified))
    {
        return unchanged(storage, m.clone()).await;
    }
    let validators = reusable
        .as_ref()
        .map(|m| (&m.source.etag, &m.source.last_modified))
        .filter(|(e, l)| e.is_some() || l.is_some());
    let fetched = match (
        source::fetch(&source, settings, validators).await?,
        reusable,
    ) {
        (None, Some(m)) => return unchanged(storage, m).await,
        (None, None) => {
            return Err(Error::internal(
                "`not modified` to an unconditional request",
            ));
        }
        (Some(f), Some(m)) if f.facts.sha256 == m.source.sha256 => {
            return unchanged(storage, m).await;
        }
        (Some(f), _) => f,
    };
    let archive_path = fetched.path.clone();
    let kind = spec.kind.clone();
    let contents =
        tokio::task::spawn_blocking(move || Contents::read(&archive_path, kind.as_deref()))
            .await??;
    let version = super::new_version_id(&fetched.facts.sample);
    let mut members = Vec::new();
    let mut warnings = contents.warnings.clone();
    for file in &contents.tables {
        let unit = Unit {
            feed: spec,
            storage,
            settings,
            archive: &fetched.path,
            gtfs: contents.gtfs,
            version: &version,
            warnings: &contents.warnings,
        };
        match write_file(&unit, file).await {
            Ok(Some(m)) => members.push(m),
            Ok(None) => warnings.push(format!("{file} is empty (not even a header): not served")),
            Err(e) => {
                for m in &members {
                    let _ = storage.delete_version(&m.id, &version).await;
                }
                return Err(Error::bad_request(format!("{file}: {e}")));
            }
        }
    }
    let manifest = FeedManifest {
        id: spec.id.clone(),
        version: version.clone(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        source: fetched.info(spec.source.clone()),
        options_digest,
        gtfs: contents.gtfs,
        members: members
            .iter()
            .zip(&contents.tables)
            .map(|(m, file)| FeedFile {
                file: file.clone(),
                dataset: m.id.clone(),
            })
            .collect(),
        warnings,
    };
    storage.write_feed_manifest(&manifest).await?;
    let confirmed = lease.confirm().await;
    if confirmed.is_err() || !storage.switch_current(&spec.id, &version).await? {
        for m in &members {
            let _ = storage.delete_version(&m.id, &version).await;
        }
        let _ = storage.delete_version(&spec.id, &version).await;
        confirmed?;
        return match storage.current_feed(&spec.id).await? {
            Some(newer) => unchanged(storage, newer).await,
            None => Err(Error::internal("the newer feed version has no manifest")),
        };
    }
    for m in &members {
        super::prune(storage, &m.id, &version, settings).await;
    }
    super::prune_feed(storage, &spec.id, &version, settings).await;
    tracing::info!(feed = %spec.id, version = %version, files = members.len(),
        ms = started.elapsed().as_millis() as u64, "feed ingested");
    Ok(FeedOutcome {
        manifest,
        members: members
            .into_iter()
            .map(|m| Outcome::Ingested(Box::new(m)))
            .collect(),
    })
}

/// The outcome of a feed whose current version holds: its files' manifests as stored.
async fn unchanged(storage: &Storage, manifest: FeedManifest) -> Result<FeedOutcome> {
    let mut members = Vec::new();
    for f in &manifest.members {
        let m = storage
            .manifest(&f.dataset, &manifest.version)
            .await?
            .ok_or_else(|| {
                Error::internal(format!(
                    "feed `{}` version {}: {} has no manifest",
                    manifest.id, manifest.version, f.file
                ))
            })?;
        members.push(Outcome::Unchanged(Box::new(m)));
    }
    Ok(FeedOutcome { manifest, members })
}

/// What every file of one feed version is written with.
struct Unit<'a> {
    feed: &'a DatasetSpec,
    storage: &'a Storage,
    settings: &'a IngestSettings,
    archive: &'a Path,
    gtfs: bool,
    version: &'a str,
    /// What the archive's reader should know, repeated in each file's report.
    warnings: &'a [String],
}

/// Writes one file of the archive as the unit's version of its dataset (not yet published);
/// `None` for a file with nothing in it.
async fn write_file(u: &Unit<'_>, file: &str) -> Result<Option<Manifest>> {
    let (archive, name, gtfs) = (u.archive.to_path_buf(), file.to_string(), u.gtfs);
    let limit = u.settings.max_download_bytes;
    let extracted =
        tokio::task::spawn_blocking(move || extract(&archive, &name, gtfs, limit)).await??;
    let Some((temp, names)) = extracted else {
        return Ok(None);
    };
    let mut spec = member_spec(u.feed, file);
    if gtfs {
        spec.columns = overrides(file, &names);
    }
    let fetched = source::fetch(&Source::Local(temp.to_path_buf()), u.settings, None)
        .await?
        .ok_or_else(|| Error::internal("a local file answered `not modified`"))?;
    let mut manifest =
        super::write_member(&spec, u.storage, u.settings, fetched, u.version).await?;
    manifest.source.uri = format!("{}#{file}", u.feed.source);
    manifest.report.warnings.extend(u.warnings.iter().cloned());
    u.storage.write_manifest(&manifest).await?;
    drop(temp);
    Ok(Some(manifest))
}

/// The GTFS reference's types and descriptions for the columns a file has.
fn overrides(file: &str, names: &[String]) -> std::collections::BTreeMap<String, ColumnOverride> {
    let reference = gtfs::file(file);
    let mut columns = std::collections::BTreeMap::new();
    for name in names {
        let field = gtfs::field(reference, name);
        if let Some(field) = field {
            columns.insert(
                name.clone(),
                ColumnOverride {
                    kind: Some(field.column_type()),
                    description: field.description(),
                },
            );
        }
        if let Some(Field::Time { seconds }) = field {
            columns.insert(
                seconds.to_string(),
                ColumnOverride {
                    kind: Some(crate::dataset::schema::ColumnType::Integer),
                    description: Some(format!(
                        "`{name}` in seconds since the service day's start (noon minus 12 hours), for sorting and ranges"
                    )),
                },
            );
        }
    }
    columns
}

/// What an archive holds: the tables to serve, whether it is a GTFS feed, and what a reader
/// should know.
struct Contents {
    tables: Vec<String>,
    gtfs: bool,
    warnings: Vec<String>,
}

impl Contents {
    fn read(path: &Path, kind: Option<&str>) -> Result<Contents> {
        let file = std::fs::File::open(path)?;
        let archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| {
            Error::bad_request(format!(
                "the source is not a readable zip archive ({e}); a feed's source is a .zip of CSV files"
            ))
        })?;
        let names: Vec<String> = archive
            .file_names()
            .map(|n| n.map(|n| n.into_owned()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| {
                Error::bad_request(format!(
                    "an entry of the archive has an unreadable name: {e}"
                ))
            })?;
        let (tables, repeated) = served_tables(names.iter().map(String::as_str));
        let skipped: Vec<&String> = names
            .iter()
            .filter(|n| !is_table(n) && !n.ends_with('/'))
            .collect();
        let base = |n: &str| n.rsplit('/').next().unwrap_or(n).to_ascii_lowercase();
        let has = |f: &str| tables.iter().any(|t| base(t) == f);
        let gtfs = has("stops.txt") && has("stop_times.txt");
        if kind == Some("gtfs") && !gtfs {
            let held: Vec<&str> = names.iter().map(String::as_str).take(12).collect();
            return Err(Error::bad_request(format!(
                "the archive is not a GTFS feed: a feed has stops.txt and stop_times.txt, this one holds {}; set `kind = \"zip\"` to serve its files as plain tables",
                if held.is_empty() {
                    "nothing".to_string()
                } else {
                    held.join(", ")
                }
            )));
        }
        if gtfs && !has("calendar.txt") && !has("calendar_dates.txt") {
            return Err(Error::bad_request(
                "the GTFS feed has neither calendar.txt nor calendar_dates.txt: nothing says on which days its trips run",
            ));
        }
        if tables.is_empty() {
            return Err(Error::bad_request(format!(
                "the archive holds no .txt, .csv or .tsv file to serve ({} entries)",
                names.len()
            )));
        }
        let mut warnings = Vec::new();
        if !repeated.is_empty() {
            warnings.push(format!(
                "{} entries repeat the name of an earlier one in another folder and are not served: {}",
                repeated.len(),
                repeated.join(", ")
            ));
        }
        if !skipped.is_empty() {
            let list: Vec<&str> = skipped.iter().map(|s| s.as_str()).take(10).collect();
            warnings.push(format!(
                "{} entries are not tables and are not served: {}",
                skipped.len(),
                list.join(", ")
            ));
        }
        Ok(Contents {
            tables,
            gtfs,
            warnings,
        })
    }
}

/// Extracts one file to a temporary file, within `limit` bytes; a GTFS file with dates or
/// times is rewritten on the way (dates as ISO dates, seconds columns added). Returns the file
/// and its columns' API names; `None` when it is empty.
fn extract(
    archive: &Path,
    name: &str,
    gtfs: bool,
    limit: u64,
) -> Result<Option<(tempfile::TempPath, Vec<String>)>> {
    let file = std::fs::File::open(archive)?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| Error::bad_request(format!("the archive cannot be read: {e}")))?;
    let mut entry = archive
        .by_name(name)
        .map_err(|e| Error::bad_request(format!("cannot be read from the archive: {e}")))?;
    if entry.size() > limit {
        return Err(too_large(limit));
    }
    // Bounded whatever the entry claims: a zip's sizes can lie.
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader((&mut entry).take(limit + 1));
    let mut header = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut header).map_err(bad_csv)? {
        return Ok(None);
    }
    let labels: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let f = match i {
                0 => f.strip_prefix(b"\xef\xbb\xbf").unwrap_or(f),
                _ => f,
            };
            String::from_utf8_lossy(f).trim().to_string()
        })
        .collect();
    let mut names = column_names(&labels);
    let reference = gtfs::file(name);
    let fields: Vec<Option<Field>> = names
        .iter()
        .map(|n| gtfs.then(|| gtfs::field(reference, n)).flatten())
        .collect();
    let rewrite = fields
        .iter()
        .any(|f| matches!(f, Some(Field::Date | Field::Time { .. })));
    let temp = tempfile::NamedTempFile::new()?;
    let mut out = std::io::BufWriter::new(temp.as_file());
    if rewrite {
        let added = rewrite_rows(&mut csv, header, &fields, &mut out)?;
        if csv.position().byte() > limit {
            return Err(too_large(limit));
        }
        names.extend(added);
    } else {
        drop(csv);
        drop(entry);
        // Copied as published, bytes for bytes.
        let mut entry = archive
            .by_name(name)
            .map_err(|e| Error::bad_request(format!("cannot be read from the archive: {e}")))?;
        let copied = std::io::copy(&mut (&mut entry).take(limit + 1), &mut out)?;
        if copied > limit {
            return Err(too_large(limit));
        }
    }
    out.flush()?;
    drop(out);
    Ok(Some((temp.into_temp_path(), names)))
}

/// Writes the rows of a GTFS file with its dates as ISO dates and a seconds column after the
/// others for each time column; the names of the columns added.
fn rewrite_rows(
    csv: &mut csv::Reader<impl Read>,
    mut header: csv::ByteRecord,
    fields: &[Option<Field>],
    out: &mut impl Write,
) -> Result<Vec<String>> {
    let added: Vec<&str> = fields
        .iter()
        .filter_map(|f| match f {
            Some(Field::Time { seconds }) => Some(*seconds),
            _ => None,
        })
        .collect();
    let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(out);
    for a in &added {
        header.push_field(a.as_bytes());
    }
    writer.write_byte_record(&header).map_err(io_csv)?;
    let (mut record, mut row) = (csv::ByteRecord::new(), csv::ByteRecord::new());
    let mut seconds: Vec<Option<u32>> = Vec::with_capacity(added.len());
    while csv.read_byte_record(&mut record).map_err(bad_csv)? {
        row.clear();
        seconds.clear();
        for (i, field) in fields.iter().enumerate() {
            let cell = record.get(i);
            match (field, cell) {
                (Some(Field::Date), Some(cell)) => {
                    match std::str::from_utf8(cell).ok().and_then(gtfs::iso_date) {
                        Some(iso) => row.push_field(iso.as_bytes()),
                        None => row.push_field(cell),
                    }
                }
                (Some(Field::Time { .. }), cell) => {
                    let text = cell.and_then(|c| std::str::from_utf8(c).ok());
                    seconds.push(text.and_then(gtfs::seconds));
                    row.push_field(cell.unwrap_or_default());
                }
                (_, Some(cell)) => row.push_field(cell),
                // A short row is padded, as the ingest would, so the added columns align.
                (_, None) => row.push_field(b""),
            }
        }
        if record.len() > fields.len() {
            // A row with more fields than the header is left as it is, for the ingest to
            // reject and report with its line.
            writer.write_byte_record(&record).map_err(io_csv)?;
            continue;
        }
        for s in &seconds {
            match s {
                Some(s) => row.push_field(s.to_string().as_bytes()),
                None => row.push_field(b""),
            }
        }
        writer.write_byte_record(&row).map_err(io_csv)?;
    }
    writer.flush()?;
    Ok(added.iter().map(|a| a.to_string()).collect())
}

fn too_large(limit: u64) -> Error {
    Error::TooLarge(format!(
        "it is over the limit of {limit} bytes uncompressed (ingest.max_download_bytes)"
    ))
}

fn bad_csv(e: csv::Error) -> Error {
    Error::bad_request(format!("it cannot be read as CSV: {e}"))
}

fn io_csv(e: csv::Error) -> Error {
    Error::internal(format!("writing the extracted file: {e}"))
}
