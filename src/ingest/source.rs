//! Fetching a source to a local file (local paths are read in place) and fingerprinting it:
//! its SHA-256, size, UTF-8 validity and first bytes, in one streaming pass.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::sniff::{ByteFacts, Utf8Check, bom_of};
use crate::config::IngestSettings;
use crate::dataset::spec::Source;
use crate::error::{Error, Result};

const SAMPLE_BYTES: usize = 64 * 1024;

/// A source available as a local file, with what the byte pass learnt about it.
pub struct Fetched {
    pub path: PathBuf,
    pub facts: ByteFacts,
    /// Size of the source as fetched (compressed, for a gzip file).
    pub source_bytes: u64,
    /// Modification time of a local source, nanoseconds since the epoch.
    pub modified: Option<i64>,
    /// HTTP validators of the response, to ask next time whether the source changed.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// How the table was read out of the source, when it is not delimited text (a spreadsheet).
    pub note: Option<String>,
    /// Keeps a downloaded copy alive until ingest ends.
    _temp: Option<tempfile::TempPath>,
}

impl Fetched {
    /// What a manifest records of the source, named `uri` as the dataset file wrote it (a path
    /// relative to the catalog, not this machine's).
    pub fn info(&self, uri: String) -> crate::dataset::manifest::SourceInfo {
        crate::dataset::manifest::SourceInfo {
            uri,
            sha256: self.facts.sha256.clone(),
            bytes: self.source_bytes,
            modified: self.modified,
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
        }
    }
}

/// Size and modification time of a local source, for the cheap "unchanged" check.
pub fn local_stamp(path: &Path) -> Option<(u64, i64)> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some((meta.len(), i64::try_from(modified.as_nanos()).ok()?))
}

/// Fetches a source. For an HTTP source, `previous` holds the validators (ETag, Last-Modified)
/// of the version being served: a `304 Not Modified` answers `None` without downloading.
pub async fn fetch(
    source: &Source,
    settings: &IngestSettings,
    previous: Option<(&Option<String>, &Option<String>)>,
) -> Result<Option<Fetched>> {
    let fetched = match fetch_raw(source, settings, previous).await? {
        Some(f) => f,
        None => return Ok(None),
    };
    let limit = settings.max_download_bytes;
    let fetched = if fetched.facts.sample.starts_with(&[0x1f, 0x8b]) {
        // A gzip file (`.csv.gz`): decompressed to a temporary file, streaming, within the size
        // limit.
        let src = fetched.path.clone();
        let (temp, facts) = tokio::task::spawn_blocking(move || gunzip(&src, limit)).await??;
        // The size recorded stays the source's own, which the staleness check compares.
        let source_bytes = fetched.facts.bytes;
        Fetched {
            path: temp.to_path_buf(),
            facts,
            source_bytes,
            note: None,
            _temp: Some(temp),
            ..fetched
        }
    } else {
        fetched
    };
    if !super::sheet::may_be_workbook(&fetched.facts.sample) {
        return Ok(Some(fetched));
    }
    // A spreadsheet: its first sheet with cells, as CSV. Another zip is left to the content
    // check, which names it.
    let src = fetched.path.clone();
    let converted =
        tokio::task::spawn_blocking(move || super::sheet::to_csv(&src, limit)).await??;
    Ok(Some(match converted {
        None => fetched,
        Some(c) => Fetched {
            path: c.csv.to_path_buf(),
            facts: c.facts,
            note: Some(c.note),
            _temp: Some(c.csv),
            ..fetched
        },
    }))
}

fn gunzip(src: &Path, limit: u64) -> Result<(tempfile::TempPath, ByteFacts)> {
    let temp = tempfile::NamedTempFile::new()?;
    let mut decoder =
        flate2::read::MultiGzDecoder::new(std::io::BufReader::new(std::fs::File::open(src)?));
    let mut out = Scanned::new(temp.as_file(), limit, "the decompressed source");
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = decoder.read(&mut buf).map_err(|e| {
            Error::bad_request(format!("the gzip source cannot be decompressed: {e}"))
        })?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| out.error(e))?;
    }
    let facts = out.finish()?;
    Ok((temp.into_temp_path(), facts))
}

/// A file being written with the bytes fingerprinted on the way ([`Scanner`]), refused past
/// `limit` bytes: a source decompressed or converted to CSV is bounded as a download is.
pub struct Scanned<W: std::io::Write> {
    inner: std::io::BufWriter<W>,
    scan: Scanner,
    limit: u64,
    /// Whether a write was refused for passing the limit.
    over: bool,
    /// What is written, for the refusal (`the decompressed source`).
    what: &'static str,
}

impl<W: std::io::Write> Scanned<W> {
    pub fn new(inner: W, limit: u64, what: &'static str) -> Self {
        Scanned {
            inner: std::io::BufWriter::new(inner),
            scan: Scanner::default(),
            limit,
            over: false,
            what,
        }
    }

    /// A failed write as the error to report: over the limit, or the disk's.
    pub fn error(&self, e: std::io::Error) -> Error {
        if self.over {
            Error::TooLarge(format!(
                "{} is larger than {} bytes (ingest.max_download_bytes)",
                self.what, self.limit
            ))
        } else {
            Error::Io(e)
        }
    }

    /// Flushes the file and hands back what the pass learnt.
    pub fn finish(mut self) -> Result<ByteFacts> {
        std::io::Write::flush(&mut self.inner)?;
        Ok(self.scan.finish())
    }
}

impl<W: std::io::Write> std::io::Write for Scanned<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.scan.bytes + buf.len() as u64 > self.limit {
            self.over = true;
            return Err(std::io::Error::other("over the size limit"));
        }
        let n = self.inner.write(buf)?;
        self.scan.feed(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

async fn fetch_raw(
    source: &Source,
    settings: &IngestSettings,
    previous: Option<(&Option<String>, &Option<String>)>,
) -> Result<Option<Fetched>> {
    match source {
        Source::Local(path) => {
            let path = path.clone();
            if !path.is_file() {
                return Err(Error::bad_request(format!(
                    "source file {} does not exist",
                    path.display()
                )));
            }
            let modified = local_stamp(&path).map(|(_, m)| m);
            let p = path.clone();
            let facts = tokio::task::spawn_blocking(move || scan_file(&p)).await??;
            Ok(Some(Fetched {
                path,
                source_bytes: facts.bytes,
                facts,
                modified,
                etag: None,
                last_modified: None,
                note: None,
                _temp: None,
            }))
        }
        Source::Http(url) => download_http(url, settings, previous, None).await,
        Source::Untrusted(url) => {
            let public_only = !settings.allow_private_sources;
            download_http(url, settings, previous, Some(public_only)).await
        }
        Source::Store(url) => download_store(url, settings).await.map(Some),
    }
}

/// The full byte pass over a local source (hash, UTF-8 check), running on a blocking thread.
pub type FullPass = tokio::task::JoinHandle<Result<ByteFacts>>;

/// A local file read for its first bytes only, with the full byte pass (hash, UTF-8 check)
/// running beside whatever comes next. `None` for a gzip file or a spreadsheet, which are read
/// the usual way.
pub fn fetch_local_early(path: &Path) -> Result<Option<(Fetched, FullPass)>> {
    if !path.is_file() {
        return Err(Error::bad_request(format!(
            "source file {} does not exist",
            path.display()
        )));
    }
    let mut sample = vec![0u8; SAMPLE_BYTES];
    let mut file = std::fs::File::open(path)?;
    let mut n = 0;
    while n < SAMPLE_BYTES {
        match file.read(&mut sample[n..])? {
            0 => break,
            k => n += k,
        }
    }
    sample.truncate(n);
    if sample.starts_with(&[0x1f, 0x8b]) || super::sheet::may_be_workbook(&sample) {
        return Ok(None);
    }
    let mut utf8 = Utf8Check::default();
    // A character cut at the end of the sample is not an error: no `finish`.
    utf8.feed(&sample);
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(&sample, true);
    let (bytes, modified) = local_stamp(path).unwrap_or_default();
    let facts = ByteFacts {
        sha256: String::new(),
        bytes,
        first_invalid_utf8: utf8.first_invalid,
        bom: bom_of(&sample),
        guessed: detector.guess(None, false),
        sample,
    };
    let p = path.to_path_buf();
    let full = tokio::task::spawn_blocking(move || scan_file(&p));
    let fetched = Fetched {
        path: path.to_path_buf(),
        source_bytes: bytes,
        facts,
        modified: Some(modified),
        etag: None,
        last_modified: None,
        note: None,
        _temp: None,
    };
    Ok(Some((fetched, full)))
}

/// The byte pass over a local file.
fn scan_file(path: &Path) -> Result<ByteFacts> {
    let mut file = std::fs::File::open(path)?;
    let mut scan = Scanner::default();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        scan.feed(&buf[..n]);
    }
    Ok(scan.finish())
}

/// Non-ASCII bytes shown to the encoding detector at most; enough for a verdict, bounded time.
const DETECTOR_BYTES: u64 = 4 * 1024 * 1024;

/// One streaming pass over bytes: their SHA-256, size, UTF-8 validity, first bytes and likely
/// encoding.
struct Scanner {
    hash: Sha256,
    utf8: Utf8Check,
    bytes: u64,
    sample: Vec<u8>,
    detector: chardetng::EncodingDetector,
    detector_fed: u64,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            hash: Sha256::default(),
            utf8: Utf8Check::default(),
            bytes: 0,
            sample: Vec::new(),
            detector: chardetng::EncodingDetector::new(),
            detector_fed: 0,
        }
    }
}

impl Scanner {
    fn feed(&mut self, chunk: &[u8]) {
        self.hash.update(chunk);
        self.utf8.feed(chunk);
        self.bytes += chunk.len() as u64;
        // Only text with non-ASCII bytes tells encodings apart.
        if self.detector_fed < DETECTOR_BYTES && !chunk.is_ascii() {
            self.detector.feed(chunk, false);
            self.detector_fed += chunk.len() as u64;
        }
        if self.sample.len() < SAMPLE_BYTES {
            let take = (SAMPLE_BYTES - self.sample.len()).min(chunk.len());
            self.sample.extend_from_slice(&chunk[..take]);
        }
    }

    fn finish(mut self) -> ByteFacts {
        self.utf8.finish();
        self.detector.feed(&[], true);
        ByteFacts {
            guessed: self.detector.guess(None, false),
            sha256: hex::encode(self.hash.finalize()),
            bytes: self.bytes,
            first_invalid_utf8: self.utf8.first_invalid,
            bom: bom_of(&self.sample),
            sample: self.sample,
        }
    }
}

/// Streams a chunked download to a temporary file, fingerprinting it on the way.
async fn spool<S, E>(mut chunks: S, settings: &IngestSettings, what: &str) -> Result<Fetched>
where
    S: futures::Stream<Item = std::result::Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let temp = tempfile::NamedTempFile::new()?.into_temp_path();
    let mut file = tokio::fs::File::create(&temp).await?;
    let mut scan = Scanner::default();
    while let Some(chunk) = chunks.next().await {
        let chunk =
            chunk.map_err(|e| Error::bad_request(format!("download of {what} broke off: {e}")))?;
        scan.feed(&chunk);
        if scan.bytes > settings.max_download_bytes {
            return Err(Error::TooLarge(format!(
                "{what} is larger than the download limit of {} bytes (ingest.max_download_bytes)",
                settings.max_download_bytes
            )));
        }
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    let facts = scan.finish();
    Ok(Fetched {
        path: temp.to_path_buf(),
        source_bytes: facts.bytes,
        facts,
        modified: None,
        etag: None,
        last_modified: None,
        note: None,
        _temp: Some(temp),
    })
}

/// An error and its causes, one after the other: the client's own words alone
/// ("error sending request") hide why (a refused address, a refused connection).
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        next = cause.source();
    }
    text
}

/// Downloads an HTTP source. `untrusted`: a harvested URL, followed through at most 5
/// redirects, and with `Some(true)` fetched from public addresses only (see [`super::guard`]).
async fn download_http(
    url: &url::Url,
    settings: &IngestSettings,
    previous: Option<(&Option<String>, &Option<String>)>,
    untrusted: Option<bool>,
) -> Result<Option<Fetched>> {
    let mut builder = reqwest::Client::builder()
        .timeout(settings.http_timeout())
        .user_agent(concat!("qanat/", env!("CARGO_PKG_VERSION")));
    builder = match untrusted {
        Some(public_only) => {
            if public_only {
                super::guard::check_literal(url).map_err(Error::bad_request)?;
                builder = builder.dns_resolver(std::sync::Arc::new(super::guard::PublicOnly));
            }
            builder.redirect(super::guard::redirects(public_only))
        }
        None => builder.redirect(reqwest::redirect::Policy::limited(10)),
    };
    let client = builder.build()?;
    let mut request = client.get(url.clone());
    if let Some((etag, last_modified)) = previous {
        if let Some(v) = etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, v);
        }
        if let Some(v) = last_modified {
            request = request.header(reqwest::header::IF_MODIFIED_SINCE, v);
        }
    }
    let resp = request
        .send()
        .await
        .map_err(|e| Error::bad_request(format!("cannot fetch {url}: {}", causes(&e))))?;
    if resp.status() == reqwest::StatusCode::NOT_MODIFIED && previous.is_some() {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(Error::bad_request(format!(
            "{url} answered HTTP {}",
            resp.status()
        )));
    }
    let declared = resp.content_length();
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (etag, last_modified) = (
        header(reqwest::header::ETAG),
        header(reqwest::header::LAST_MODIFIED),
    );
    let mut fetched = spool(resp.bytes_stream(), settings, url.as_str()).await?;
    fetched.etag = etag;
    fetched.last_modified = last_modified;
    if let Some(n) = declared
        && n != fetched.facts.bytes
    {
        return Err(Error::bad_request(format!(
            "download of {url} is truncated: {} of {n} bytes",
            fetched.facts.bytes
        )));
    }
    Ok(Some(fetched))
}

async fn download_store(url: &url::Url, settings: &IngestSettings) -> Result<Fetched> {
    let cannot = |e: &dyn std::fmt::Display| Error::bad_request(format!("cannot open {url}: {e}"));
    // S3 credentials and region come from the usual AWS_* environment variables.
    let store: std::sync::Arc<dyn object_store::ObjectStore> = match url.scheme() {
        "s3" => std::sync::Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(url.as_str())
                .build()
                .map_err(|e| cannot(&e))?,
        ),
        _ => object_store::parse_url(url)
            .map_err(|e| cannot(&e))?
            .0
            .into(),
    };
    let path = object_store::path::Path::from_url_path(url.path()).map_err(|e| cannot(&e))?;
    let get = object_store::ObjectStoreExt::get(&store, &path)
        .await
        .map_err(|e| Error::bad_request(format!("cannot read {url}: {e}")))?;
    spool(get.into_stream(), settings, url.as_str()).await
}
