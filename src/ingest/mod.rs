//! Ingestion: fetch → sniff → infer → write → publish. A source becomes an immutable Parquet
//! version that is switched in only once completely written.

mod blocks;
pub mod build;
pub mod content;
mod copy;
pub mod feed;
mod geo;
pub mod guard;
pub mod infer;
pub mod layout;
mod orders;
pub mod postings;
pub mod profile;
pub mod reader;
pub mod sheet;
mod sidecars;
pub mod sniff;
pub mod source;
mod spill;
mod words;

use std::sync::Arc;
use std::time::Instant;

use parquet::arrow::AsyncArrowWriter;

use crate::config::IngestSettings;
use crate::dataset::geo::GeoRole;
use crate::dataset::manifest::{ColumnProfile, IngestReport, LAYOUT_VERSION, Manifest};
use crate::dataset::schema::arrow_schema;
use crate::dataset::spec::{DatasetSpec, Source};
use crate::error::{Error, Result};
use crate::storage::Storage;
use reader::Dialect;

/// The single Parquet file of a version.
pub const DATA_FILE: &str = "part-00000.parquet";

/// What an ingest run did for one dataset.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// A new version was written and is now current.
    Ingested(Box<Manifest>),
    /// The source and the dataset file are unchanged since the current version.
    Unchanged(Box<Manifest>),
}

impl Outcome {
    pub fn manifest(&self) -> &Manifest {
        match self {
            Outcome::Ingested(m) | Outcome::Unchanged(m) => m,
        }
    }

    /// One line for the terminal.
    pub fn summary(&self) -> String {
        match self {
            Outcome::Ingested(m) => {
                let r = &m.report;
                format!(
                    "{}: ingested version {} — {} rows read, {} stored, {} rejected, {} columns, {:.2} s",
                    m.id,
                    m.version,
                    r.rows_read,
                    r.rows_stored,
                    r.rows_rejected,
                    m.schema.len(),
                    r.duration_ms as f64 / 1000.0
                )
            }
            Outcome::Unchanged(m) => format!(
                "{}: unchanged (version {}, {} rows)",
                m.id, m.version, m.rows
            ),
        }
    }
}

/// Ingests one dataset unless its current version is up to date (`force` re-ingests anyway).
pub async fn ingest(
    spec: &DatasetSpec,
    storage: &Storage,
    settings: &IngestSettings,
    force: bool,
) -> Result<Outcome> {
    leased(storage, &spec.id, settings, async |lease| {
        run(spec, storage, settings, force, lease).await
    })
    .await
}

/// Runs `work` holding the ingest lease of dataset (or feed) `id`: one process ingests a
/// dataset at a time, whatever the number of servers and `qanat ingest` runs over the storage.
/// Its errors are the ingest's of `id`.
pub(crate) async fn leased<T>(
    storage: &Storage,
    id: &str,
    settings: &IngestSettings,
    work: impl AsyncFnOnce(&crate::storage::Lease) -> Result<T>,
) -> Result<T> {
    let wrap = |e: Error| match e {
        Error::Ingest { .. } => e,
        other => Error::Ingest {
            id: id.to_string(),
            source: Box::new(other),
        },
    };
    // Who holds it, for the message another process shows: the command this one runs.
    let what = std::env::args()
        .skip(1)
        .find(|a| ["serve", "ingest", "harvest"].contains(&a.as_str()))
        .map(|command| format!("qanat {command}"))
        .unwrap_or_else(|| "qanat".into());
    let ttl = std::time::Duration::from_millis(settings.lease_ms.max(1_000));
    let lease = storage.take_lease(id, ttl, &what).await.map_err(wrap)?;
    let outcome = work(&lease).await.map_err(wrap);
    lease.release().await;
    outcome
}

async fn run(
    spec: &DatasetSpec,
    storage: &Storage,
    settings: &IngestSettings,
    force: bool,
    lease: &crate::storage::Lease,
) -> Result<Outcome> {
    let started = Instant::now();
    let options_digest = spec.read_options_digest();
    let current = storage.current_manifest(&spec.id).await?;
    // The current version, when what it was read with still holds: then an unchanged source
    // keeps it.
    let reusable = current
        .clone()
        .filter(|m| !force && m.layout == LAYOUT_VERSION && m.options_digest == options_digest);
    let (fetched, pending) = match fetch_if_changed(spec, settings, reusable).await? {
        Fetch::Unchanged(m) => return Ok(Outcome::Unchanged(m)),
        Fetch::Changed(fetched, pending) => (fetched, pending),
    };
    content::check_table(&fetched.facts.sample)?;
    let w = write_checked(spec, storage, settings, *fetched, pending, None).await?;
    let b = &w.typed.built;
    if b.rows_read != b.rows_stored + b.rows_rejected {
        let _ = storage.delete_version(&spec.id, &w.typed.version).await;
        return Err(Error::internal(format!(
            "row accounting failed: {} read, {} stored, {} rejected",
            b.rows_read, b.rows_stored, b.rows_rejected
        )));
    }
    let manifest = manifest_of(spec, w, options_digest, started);
    if let (false, Some(served)) = (force, &current)
        && let Some(why) = collapse(served, &manifest)
    {
        let _ = storage.delete_version(&spec.id, &manifest.version).await;
        return Err(Error::bad_request(format!(
            "the new version was held back: {why}; version {} stays served (`qanat ingest {} --force` publishes the new one)",
            served.version, spec.id
        )));
    }
    storage.write_manifest(&manifest).await?;
    if let Err(e) = lease.confirm().await {
        let _ = storage.delete_version(&spec.id, &manifest.version).await;
        return Err(e);
    }
    if !storage.switch_current(&spec.id, &manifest.version).await? {
        // Another process published a newer version while this one was written: it stays.
        let _ = storage.delete_version(&spec.id, &manifest.version).await;
        tracing::info!(dataset = %spec.id, version = %manifest.version,
            "not published: a newer version was published meanwhile");
        return match storage.current_manifest(&spec.id).await? {
            Some(newer) => Ok(Outcome::Unchanged(Box::new(newer))),
            None => Err(Error::internal("the newer version has no manifest")),
        };
    }
    prune(storage, &spec.id, &manifest.version, settings).await;
    Ok(Outcome::Ingested(Box::new(manifest)))
}

/// Writes one file of a feed as `version` of its dataset, with its manifest, unpublished: the
/// feed's pointer publishes it with the feed's other files.
async fn write_member(
    spec: &DatasetSpec,
    storage: &Storage,
    settings: &IngestSettings,
    fetched: source::Fetched,
    version: &str,
) -> Result<Manifest> {
    let started = Instant::now();
    content::check_table(&fetched.facts.sample)?;
    let w = write_checked(spec, storage, settings, fetched, None, Some(version)).await?;
    let b = &w.typed.built;
    if b.rows_read != b.rows_stored + b.rows_rejected {
        let _ = storage.delete_version(&spec.id, version).await;
        return Err(Error::internal(format!(
            "row accounting failed: {} read, {} stored, {} rejected",
            b.rows_read, b.rows_stored, b.rows_rejected
        )));
    }
    let manifest = manifest_of(spec, w, spec.read_options_digest(), started);
    storage.write_manifest(&manifest).await?;
    Ok(manifest)
}

/// Why a new version looks like a broken source rather than new data: it keeps under a tenth
/// of the rows served (of a version of 100 rows or more), or no column of it.
fn collapse(served: &Manifest, new: &Manifest) -> Option<String> {
    if served.rows >= 100 && new.rows.saturating_mul(10) < served.rows {
        return Some(format!(
            "it has {} rows against {} served (under 10 %)",
            new.rows, served.rows
        ));
    }
    let common = new
        .schema
        .iter()
        .any(|c| served.schema.iter().any(|s| s.name == c.name));
    (!common && !served.schema.is_empty()).then(|| {
        let names: Vec<&str> = new.schema.iter().map(|c| c.name.as_str()).take(5).collect();
        format!(
            "it has no column in common with the version served (its columns: {})",
            names.join(", ")
        )
    })
}

/// Whether the source changed since the version that can be kept.
enum Fetch {
    Unchanged(Box<Manifest>),
    /// The source, fetched, and for a local file the full byte pass still running beside the
    /// parsing (its facts replace the first bytes' once it ends).
    Changed(Box<source::Fetched>, Option<source::FullPass>),
}

/// Fetches the source unless it is known unchanged: a local file by size and modification
/// time, a remote one by a conditional request, either by its SHA-256.
async fn fetch_if_changed(
    spec: &DatasetSpec,
    settings: &IngestSettings,
    reusable: Option<Manifest>,
) -> Result<Fetch> {
    let source = spec.source()?;
    if let (Some(m), Source::Local(path)) = (&reusable, &source)
        && let Some(modified) = m.source.modified
        && source::local_stamp(path) == Some((m.source.bytes, modified))
    {
        return Ok(Fetch::Unchanged(Box::new(m.clone())));
    }
    // A first or forced ingest of a local file needs no hash up front: the full byte pass (hash,
    // UTF-8 check) runs beside the parsing, which starts from the first 64 KiB.
    if let (None, Source::Local(path)) = (&reusable, &source)
        && let Some((fetched, full)) = source::fetch_local_early(path)?
    {
        return Ok(Fetch::Changed(Box::new(fetched), Some(full)));
    }
    // A remote source is asked whether it changed since the version served.
    let validators = reusable
        .as_ref()
        .map(|m| (&m.source.etag, &m.source.last_modified))
        .filter(|(e, l)| e.is_some() || l.is_some());
    let fetched = source::fetch(&source, settings, validators).await?;
    tracing::info!(dataset = %spec.id, changed = fetched.is_some(), "source fingerprinted");
    match (fetched, reusable) {
        (None, Some(m)) => Ok(Fetch::Unchanged(Box::new(m))),
        (None, None) => Err(Error::internal(
            "the source answered `not modified` to a request that named no version",
        )),
        (Some(f), Some(m)) if m.source.sha256 == f.facts.sha256 => {
            Ok(Fetch::Unchanged(Box::new(m)))
        }
        (Some(f), _) => Ok(Fetch::Changed(Box::new(f), None)),
    }
}

/// A version written with the types decided for it.
struct Typed {
    version: String,
    /// The dialect as finally read (a header found to be data turns `header` off).
    dialect: Dialect,
    inferred: infer::Inferred,
    built: build::Built,
    profile: Vec<ColumnProfile>,
}

/// A version written and checked, with what its manifest reports.
struct WrittenVersion {
    typed: Typed,
    fetched: source::Fetched,
    encoding_note: String,
    delimiter_note: String,
}

/// Writes a version in the dialect detected from the first bytes; if the full byte pass then
/// says the encoding differs (a Latin-1 byte deep down), that version is abandoned and the file
/// read again.
async fn write_checked(
    spec: &DatasetSpec,
    storage: &Storage,
    settings: &IngestSettings,
    mut fetched: source::Fetched,
    mut pending: Option<source::FullPass>,
    version: Option<&str>,
) -> Result<WrittenVersion> {
    loop {
        let (dialect, encoding_note, delimiter_note) = detect_dialect(spec, &fetched.facts);
        if dialect.encoding == encoding_rs::UTF_8
            && let Some(at) = fetched.facts.first_invalid_utf8
            && fetched.facts.bom.is_none()
        {
            // Declared UTF-8 but not UTF-8: reading on would replace bytes silently.
            return Err(Error::bad_request(format!(
                "byte {at} is not valid UTF-8 although the dataset file says `encoding = \"utf-8\"`; \
             remove the setting to detect the encoding, or name the right one (e.g. \"windows-1252\")"
            )));
        }
        let typed = write_typed(spec, storage, settings, dialect, &fetched, version).await?;
        if let Some(full) = pending.take() {
            let full = full.await??;
            let differs =
                full.first_invalid_utf8.is_some() != fetched.facts.first_invalid_utf8.is_some();
            fetched.facts = full;
            if differs {
                let _ = storage.delete_version(&spec.id, &typed.version).await;
                continue;
            }
        }
        return Ok(WrittenVersion {
            typed,
            fetched,
            encoding_note,
            delimiter_note,
        });
    }
}

/// Decides the types from the first rows and writes the file in one pass; a later value that
/// does not fit (rare) abandons that version and decides the types from every row.
async fn write_typed(
    spec: &DatasetSpec,
    storage: &Storage,
    settings: &IngestSettings,
    mut dialect: Dialect,
    fetched: &source::Fetched,
    version: Option<&str>,
) -> Result<Typed> {
    let mut limit = Some(SAMPLE_ROWS);
    loop {
        let inferred = infer_blocking(spec, &dialect, fetched, limit).await?;
        if inferred.header_is_data {
            // Read again with the first line as a row and positional names.
            dialect.header = false;
            continue;
        }
        if !inferred.complete && inferred.empty_columns {
            // A column empty in the first rows could be anything below them.
            limit = None;
            continue;
        }
        tracing::info!(dataset = %spec.id, complete = inferred.complete, "types decided");
        let version = version.map_or_else(|| new_version_id(&fetched.facts.sample), str::to_string);
        let written = write_laid_out(
            storage, spec, settings, &version, fetched, &dialect, &inferred,
        )
        .await;
        match written {
            Ok(Written::Built(built, profile, _)) => {
                return Ok(Typed {
                    version,
                    dialect,
                    inferred,
                    built,
                    profile,
                });
            }
            Ok(Written::Widen(w)) if limit.is_some() => {
                tracing::info!(dataset = %spec.id, column = %w.column, line = w.line, value = %w.value,
                    "a value does not fit the type decided from the first rows; reading every row");
                let _ = storage.delete_version(&spec.id, &version).await;
                limit = None;
            }
            Ok(Written::Widen(w)) => {
                let _ = storage.delete_version(&spec.id, &version).await;
                return Err(Error::internal(format!(
                    "line {}: column `{}` changed between passes (`{}`); is the source being rewritten?",
                    w.line, w.column, w.value
                )));
            }
            Err(e) => {
                // Nothing points at a partial version; removing it only saves space.
                let _ = storage.delete_version(&spec.id, &version).await;
                return Err(e);
            }
        }
    }
}

/// Writes a version in the layout decided for it, sorted by `[layout] sort_by` when set.
async fn write_laid_out(
    storage: &Storage,
    spec: &DatasetSpec,
    settings: &IngestSettings,
    version: &str,
    fetched: &source::Fetched,
    dialect: &Dialect,
    inferred: &infer::Inferred,
) -> Result<Written> {
    let layout = layout::Layout::decide(
        &spec.layout,
        &spec.id,
        &inferred.columns,
        &inferred.distinct_share,
        inferred.complete,
    )?;
    let written = write_version(
        storage,
        &spec.id,
        version,
        &fetched.path,
        dialect,
        inferred,
        &layout,
    )
    .await?;
    if let Written::Built(..) = &written
        && !layout.sort_by.is_empty()
    {
        let columns = &inferred.columns;
        layout::sort_version(storage, &spec.id, version, columns, &layout, DATA_FILE).await?;
        tracing::info!(dataset = %spec.id, "rows sorted");
    }
    if let Written::Built(built, profile, local) = &written {
        let columns = &inferred.columns;
        let points = coordinates(spec, columns, profile)?
            .map(|(lat, lon)| (columns[lat].name.as_str(), columns[lon].name.as_str()));
        let version = sidecars::Version {
            storage,
            id: &spec.id,
            version,
            local: local.as_ref(),
        };
        let (rows, budget) = (built.rows_stored, settings.sort_bytes);
        sidecars::build(version, columns, profile, rows, points, budget).await?;
    }
    Ok(written)
}

/// The manifest of a written version: schema with nullability from the profile, the report with
/// each column's decision recounted over the stored rows, and the warnings a reader should see.
fn manifest_of(
    spec: &DatasetSpec,
    w: WrittenVersion,
    options_digest: String,
    started: Instant,
) -> Manifest {
    let WrittenVersion {
        typed,
        fetched,
        encoding_note,
        delimiter_note,
    } = w;
    // A spreadsheet's delimiter is qanat's own: the note says which sheet was read instead.
    let delimiter_note = fetched.note.clone().unwrap_or(delimiter_note);
    let Typed {
        version,
        dialect,
        inferred,
        built,
        profile,
    } = typed;
    let mut columns = inferred.columns;
    for (col, prof) in columns.iter_mut().zip(&profile) {
        col.nullable = prof.nulls > 0;
    }
    if let Ok(Some((lat, lon))) = coordinates(spec, &columns, &profile) {
        columns[lat].geo = Some(GeoRole::Latitude);
        columns[lon].geo = Some(GeoRole::Longitude);
    }
    // Reasons count the values of the whole stored column, not of the rows the types came from.
    let decisions: Vec<_> = inferred
        .decisions
        .into_iter()
        .zip(&profile)
        .map(|(mut d, p)| {
            d.reason = recount(&d.reason, built.rows_stored - p.nulls);
            d
        })
        .collect();
    let warnings = warnings(spec, &dialect, inferred.header_line, &built);
    Manifest {
        id: spec.id.clone(),
        version,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        layout: LAYOUT_VERSION,
        source: fetched.info(spec.source.clone()),
        options_digest,
        rows: built.rows_stored,
        files: vec![DATA_FILE.to_string()],
        schema: columns,
        report: IngestReport {
            encoding: encoding_note,
            delimiter: delimiter_note,
            separator: char::from(dialect.delimiter).to_string(),
            header_line: inferred.header_line,
            rows_read: built.rows_read,
            rows_stored: built.rows_stored,
            rows_rejected: built.rows_rejected,
            rejected: built.rejected,
            columns: decisions,
            warnings,
            duration_ms: started.elapsed().as_millis() as u64,
        },
        profile,
    }
}

/// The columns (by position) holding the rows' points: the dataset file's `[geo]` (which must
/// name two numeric columns), else a pair detected by name and range.
fn coordinates(
    spec: &DatasetSpec,
    columns: &[crate::dataset::schema::Column],
    profile: &[ColumnProfile],
) -> Result<Option<(usize, usize)>> {
    use crate::dataset::schema::ColumnType;
    let Some(g) = &spec.geo else {
        return Ok(crate::dataset::geo::detect(columns, profile, None));
    };
    let find = |name: &str, what: &str| {
        let i = columns.iter().position(|c| c.name == name).ok_or_else(|| {
            let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            Error::Config(format!(
                "dataset `{}`: [geo] {what} `{name}` names no column; the columns are: {}",
                spec.id,
                names.join(", ")
            ))
        })?;
        match columns[i].kind {
            ColumnType::Float | ColumnType::Integer => Ok(i),
            other => Err(Error::Config(format!(
                "dataset `{}`: [geo] {what} `{name}` is a {other:?} column, not degrees; set its type to float in [columns.{name}]",
                spec.id
            ))),
        }
    };
    Ok(Some((
        find(&g.latitude, "latitude")?,
        find(&g.longitude, "longitude")?,
    )))
}

/// What a reader of the report should know about how the file was read.
fn warnings(
    spec: &DatasetSpec,
    dialect: &Dialect,
    header_line: u64,
    built: &build::Built,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if !dialect.header && spec.csv.header.is_none() {
        warnings.push(
            "the first line holds values, not names: it is read as a row and the columns are named column_1, column_2, …; set `[csv] header = true` if it is a header".into(),
        );
    }
    if dialect.preamble > 0 {
        warnings.push(format!(
            "{} records above the header (titles or blank lines) were skipped; the header is on line {}",
            dialect.preamble, header_line
        ));
    }
    if built.rows_rejected > 0 {
        warnings.push(format!(
            "{} rows rejected; the first {} are listed with their line numbers",
            built.rows_rejected,
            built.rejected.len()
        ));
    }
    warnings
}

fn detect_dialect(spec: &DatasetSpec, facts: &sniff::ByteFacts) -> (Dialect, String, String) {
    let (encoding, encoding_note) = sniff::choose_encoding(facts, spec.csv.encoding.as_deref());
    let (sample, _, _) = encoding.decode(&facts.sample);
    let layout = sniff::detect_layout(
        &sample,
        spec.csv.delimiter.as_ref().map(|d| d.as_bytes()[0]),
        spec.csv.quote.as_ref().map(|q| q.as_bytes()[0]),
    );
    let (delimiter, quote, delimiter_note) = (layout.delimiter, layout.quote, layout.note);
    let dialect = Dialect {
        encoding,
        delimiter,
        quote,
        escape: spec
            .csv
            .escape
            .as_ref()
            .map(|e| e.as_bytes()[0])
            .or(layout.escape),
        grouped: Dialect::grouped_styles(
            delimiter,
            spec.csv.decimal.as_ref().map(|d| d.as_bytes()[0]),
        ),
        header: spec.csv.header.unwrap_or(true),
        preamble: spec.csv.preamble.unwrap_or(layout.preamble),
        null_values: spec.csv.null_values.clone(),
    };
    (dialect, encoding_note, delimiter_note)
}

/// Version ids sort by creation time; the suffix tells versions of one instant apart.
fn new_version_id(sample: &[u8]) -> String {
    let now = chrono::Utc::now();
    let seed = now.timestamp_nanos_opt().unwrap_or_default() as u64;
    let salt = xxhash_rust::xxh3::xxh3_64_with_seed(sample, seed) as u32;
    format!("{}-{salt:08x}", now.format(VERSION_TIME))
}

/// Parses the file into batches on a blocking thread while this task writes them as Parquet,
/// so that memory holds a couple of batches whatever the file's size.
async fn write_version(
    storage: &Storage,
    id: &str,
    version: &str,
    path: &std::path::Path,
    dialect: &Dialect,
    inferred: &infer::Inferred,
    layout: &layout::Layout,
) -> Result<Written> {
    let forced = inferred.forced.clone();
    let schema = arrow_schema(&inferred.columns);
    let props = layout.writer_properties()?;
    let object = storage.version_dir(id, version).clone().join(DATA_FILE);
    let out = object_store::buffered::BufWriter::new(Arc::clone(&storage.store), object);
    // Kept locally too when the store is remote, for the indexes to read; not when a
    // `sort_by` layout rewrites the file, whose indexes read the sorted rows from the store.
    let copy = storage.is_remote() && layout.sort_by.is_empty();
    let (out, local) = copy::Tee::new(out, copy)?;
    let mut writer = AsyncArrowWriter::try_new(out, schema, Some(props))?;

    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let (path, dialect) = (path.to_path_buf(), dialect.clone());
    let progress = reader::Progress {
        label: format!("{id}: writing Parquet (pass 2 of 2)"),
        total: std::fs::metadata(&path).map_or(0, |m| m.len()),
    };
    let (columns, styles) = (inferred.columns.clone(), inferred.styles.clone());
    let producer = tokio::task::spawn_blocking(move || {
        build::build(
            &path,
            &dialect,
            &columns,
            &styles,
            &forced,
            progress,
            |batch| {
                tx.blocking_send(batch)
                    .map_err(|_| Error::internal("the Parquet writer stopped"))
            },
        )
    });
    let mut write_error = None;
    while let Some(batch) = rx.recv().await {
        if let Err(e) = writer.write(&batch).await {
            write_error = Some(Error::Parquet(e));
            break;
        }
    }
    drop(rx);
    let built = producer.await?;
    if let Some(e) = write_error {
        return Err(e);
    }
    match built? {
        build::BuildOutcome::Built(mut built) => {
            writer.close().await?;
            let profile = std::mem::take(&mut built.profile);
            Ok(Written::Built(built, profile, local))
        }
        build::BuildOutcome::Widen(w) => {
            let _ = writer.into_inner().abort().await;
            Ok(Written::Widen(w))
        }
    }
}

/// A version written with its profile, or abandoned for a value that did not fit.
enum Written {
    /// With the local copy of the file when the store is remote.
    Built(build::Built, Vec<ColumnProfile>, Option<copy::LocalCopy>),
    Widen(build::Widen),
}

/// Rows read to decide the types before writing (the rest of the file is checked as it is
/// written).
const SAMPLE_ROWS: u64 = 100_000;

async fn infer_blocking(
    spec: &DatasetSpec,
    dialect: &Dialect,
    fetched: &source::Fetched,
    limit: Option<u64>,
) -> Result<infer::Inferred> {
    let (spec, dialect, path) = (spec.clone(), dialect.clone(), fetched.path.clone());
    let total = fetched.facts.bytes;
    tokio::task::spawn_blocking(move || infer::infer(&path, &dialect, &spec, total, limit)).await?
}

/// `all 1000 values are …` with the count of the whole column.
fn recount(reason: &str, n: u64) -> String {
    match reason
        .strip_prefix("all ")
        .and_then(|r| r.split_once(" values"))
    {
        Some((_, rest)) => format!("all {n} values{rest}"),
        None => reason.to_string(),
    }
}

/// Keeps the current version and the `keep - 1` complete ones before it; older ones are
/// deleted, and so are the partial versions of ingests that were killed (no manifest) once they
/// are older than `keep_replaced_ms`: an ingest still writing one in another process would be
/// younger. Failures here cost only space, so they are logged, not raised.
async fn prune(storage: &Storage, id: &str, current: &str, settings: &IngestSettings) {
    let Ok(versions) = storage.versions(id).await else {
        return;
    };
    let now = chrono::Utc::now();
    let keep_for = chrono::Duration::milliseconds(
        i64::try_from(settings.keep_replaced_ms).unwrap_or(i64::MAX),
    );
    let expired = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.is_some_and(|t| now.signed_duration_since(t) >= keep_for)
    };
    let mut older = Vec::new();
    for v in versions.iter().filter(|v| v.as_str() != current) {
        match storage.manifest(id, v).await {
            Ok(Some(_)) if v.as_str() < current => older.push(v),
            Ok(Some(_)) => {}
            Ok(None) if expired(version_time(v)) => {
                tracing::info!(dataset = id, version = %v, "deleting a partial version an interrupted ingest left");
                if let Err(e) = storage.delete_partial(id, v).await {
                    tracing::warn!(dataset = id, version = %v, error = %e, "could not delete a partial version");
                }
            }
            Ok(None) | Err(_) => {}
        }
    }
    let excess = older
        .len()
        .saturating_sub(settings.keep_versions.saturating_sub(1));
    for (i, v) in older.iter().enumerate().take(excess) {
        // A version was replaced when the next one was written; readers may still ask for it
        // for a while after that.
        let next = older.get(i + 1).map_or(current, |n| n.as_str());
        if expired(version_time(next))
            && let Err(e) = storage.delete_version(id, v).await
        {
            tracing::warn!(dataset = id, version = %v, error = %e, "could not delete an old version");
        }
    }
}

/// Keeps a feed's manifests as its files' versions are kept: the current one and the
/// `keep - 1` before it, once replaced for `keep_replaced_ms`.
async fn prune_feed(storage: &Storage, id: &str, current: &str, settings: &IngestSettings) {
    let Ok(versions) = storage.versions(id).await else {
        return;
    };
    let older: Vec<&String> = versions.iter().filter(|v| v.as_str() < current).collect();
    let excess = older
        .len()
        .saturating_sub(settings.keep_versions.saturating_sub(1));
    let keep_for = chrono::Duration::milliseconds(
        i64::try_from(settings.keep_replaced_ms).unwrap_or(i64::MAX),
    );
    let now = chrono::Utc::now();
    for (i, v) in older.iter().enumerate().take(excess) {
        let next = older.get(i + 1).map_or(current, |n| n.as_str());
        let expired = version_time(next).is_some_and(|t| now.signed_duration_since(t) >= keep_for);
        if expired && let Err(e) = storage.delete_version(id, v).await {
            tracing::warn!(feed = id, version = %v, error = %e, "could not delete an old feed version");
        }
    }
}

/// How a version id starts: when it was written, to the millisecond.
const VERSION_TIME: &str = "%Y%m%dT%H%M%S%3f";

/// When a version was written, from its id (`YYYYMMDDTHHMMSSmmm-…`).
fn version_time(version: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let stamp = version.get(..18)?;
    chrono::NaiveDateTime::parse_from_str(stamp, VERSION_TIME)
        .ok()
        .map(|t| t.and_utc())
}
