//! Object storage: the `--storage` URL turned into one object store, and the dataset layout on it
//! (`{root}/{id}/{version}/…parquet`, `manifest.json`, and the `{id}/current.json` pointer).

use std::sync::Arc;

use std::ops::Range;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use url::Url;

use datafusion::catalog::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};

use crate::dataset::feed::{FEED_MANIFEST, FeedManifest};
use crate::dataset::manifest::{Manifest, Pointer};
use crate::dataset::schema::{Column, arrow_schema, file_order};
use crate::error::{Error, Result};

mod lease;
pub use lease::{LEASE_FILE, Lease};

/// A dataset's pointer as read: what it names, and the validators to ask next time whether it
/// changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointerRead {
    /// It is what the validator given names.
    Unchanged,
    /// The dataset was never published.
    Missing,
    Current {
        version: String,
        e_tag: Option<String>,
    },
}

/// The store, the prefix under which datasets live, and the URL DataFusion reaches it by.
#[derive(Clone, Debug)]
pub struct Storage {
    pub store: Arc<dyn ObjectStore>,
    pub root: Path,
    /// The store's base URL as registered with DataFusion (`file:///`, `memory:///`, `s3://bucket/`).
    pub base_url: Url,
    /// The directory of a local store: what a killed write leaves there (staging files) is
    /// invisible to the store's listings and is found on the disk.
    local: Option<std::path::PathBuf>,
}

impl Storage {
    /// Opens the storage a URL names: a plain or `file://` path, `memory://` or `s3://bucket/prefix`
    /// (credentials, region and endpoint from the usual `AWS_*` environment variables).
    pub fn open(spec: &str) -> Result<Self> {
        Self::open_with(spec, &[])
    }

    /// [`Storage::open`], with S3 options laid over the environment's (`endpoint`,
    /// `allow_http`, `access_key_id`, …: object_store's `AmazonS3ConfigKey` names).
    pub fn open_with(spec: &str, s3_options: &[(&str, &str)]) -> Result<Self> {
        let bad = |why: String| Error::Config(format!("--storage `{spec}`: {why}"));
        let parsed = Url::parse(spec).ok().filter(|u| u.scheme().len() > 1);
        match parsed.as_ref().map(Url::scheme) {
            None | Some("file") => {
                let dir = match &parsed {
                    Some(u) => u
                        .to_file_path()
                        .map_err(|_| bad("not a local path".into()))?,
                    None => std::path::PathBuf::from(spec),
                };
                std::fs::create_dir_all(&dir).map_err(|e| bad(e.to_string()))?;
                let dir = std::fs::canonicalize(&dir).map_err(|e| bad(e.to_string()))?;
                let root = Path::from_absolute_path(&dir).map_err(|e| bad(e.to_string()))?;
                Ok(Storage {
                    // Cleanup removes the directories a deleted version leaves empty.
                    store: Arc::new(
                        object_store::local::LocalFileSystem::new().with_automatic_cleanup(true),
                    ),
                    root,
                    base_url: Url::parse("file:///").expect("static URL"),
                    local: Some(dir),
                })
            }
            Some("memory") => Ok(Storage {
                store: Arc::new(object_store::memory::InMemory::new()),
                root: Path::default(),
                base_url: Url::parse("memory:///").expect("static URL"),
                local: None,
            }),
            Some("s3") => {
                let url = parsed.expect("matched above");
                let bucket = url.host_str().ok_or_else(|| bad("no bucket name".into()))?;
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry_config());
                for (key, value) in s3_options {
                    let key = key
                        .parse()
                        .map_err(|e: object_store::Error| bad(e.to_string()))?;
                    builder = builder.with_config(key, *value);
                }
                let store = builder.build().map_err(|e| bad(e.to_string()))?;
                Ok(Storage {
                    store: Arc::new(store),
                    root: Path::from(url.path().trim_matches('/')),
                    base_url: Url::parse(&format!("s3://{bucket}/"))
                        .map_err(|e| bad(e.to_string()))?,
                    // An S3 upload a killed ingest left unfinished is the bucket's lifecycle
                    // rule's to abort (AbortIncompleteMultipartUpload).
                    local: None,
                })
            }
            Some(other) => Err(bad(format!(
                "scheme `{other}` is not supported (use a path, file://, memory:// or s3://bucket/prefix)"
            ))),
        }
    }

    /// Whether the store is reached over the network (S3), where reading a file back costs
    /// requests and transfer.
    pub fn is_remote(&self) -> bool {
        self.base_url.scheme() == "s3"
    }

    /// Checks at start that the storage answers, with a message that says what to fix: a
    /// bucket that does not exist, credentials it refuses, an endpoint that does not answer.
    pub async fn check(&self, spec: &str) -> Result<()> {
        let bucket = self.base_url.host_str().unwrap_or_default();
        let why = match self.store.list_with_delimiter(Some(&self.root)).await {
            Ok(_) => return Ok(()),
            Err(e) => {
                let text = e.to_string();
                if matches!(e, object_store::Error::NotFound { .. })
                    || text.contains("NoSuchBucket")
                {
                    format!(
                        "bucket `{bucket}` does not exist (create it, or name an existing bucket)"
                    )
                } else if matches!(
                    e,
                    object_store::Error::PermissionDenied { .. }
                        | object_store::Error::Unauthenticated { .. }
                ) || text.contains("status code: 401")
                    || text.contains("status code: 403")
                {
                    format!(
                        "the storage refused the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the role's): {text}"
                    )
                } else if crate::error::refused_request(&e) {
                    format!("the storage refused the request: {text}")
                } else {
                    format!("the storage did not answer: {text}")
                }
            }
        };
        Err(Error::Config(format!("--storage `{spec}`: {why}")))
    }

    pub fn dataset_dir(&self, id: &str) -> Path {
        self.root.clone().join(id)
    }

    pub fn version_dir(&self, id: &str, version: &str) -> Path {
        self.dataset_dir(id).clone().join(version)
    }

    /// The URL DataFusion lists a version's Parquet files under (ends in `/`).
    pub fn version_url(&self, id: &str, version: &str) -> String {
        format!("{}{}/", self.base_url, self.version_dir(id, version))
    }

    /// A DataFusion table over a version's Parquet files, in file order. The schema comes from
    /// the manifest, so nothing is inferred per request, and the declared order lets file-order
    /// pages skip sorting.
    pub fn version_table(
        &self,
        id: &str,
        version: &str,
        schema: &[Column],
    ) -> Result<Arc<dyn TableProvider>> {
        let url = ListingTableUrl::parse(self.version_url(id, version))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_file_sort_order(vec![vec![file_order()]]);
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(arrow_schema(schema));
        Ok(Arc::new(ListingTable::try_new(config)?))
    }

    fn pointer_path(&self, id: &str) -> Path {
        self.dataset_dir(id).clone().join("current.json")
    }

    /// The current version's manifest, if the dataset was ever published.
    pub async fn current_manifest(&self, id: &str) -> Result<Option<Manifest>> {
        self.current_manifest_via(id, id).await
    }

    /// The manifest of the version of dataset `id` that `pointer`'s pointer names: a file of a
    /// feed reads its feed's.
    pub async fn current_manifest_via(&self, pointer: &str, id: &str) -> Result<Option<Manifest>> {
        let Some(pointer) = self
            .get_json::<Pointer>(&self.pointer_path(pointer))
            .await?
        else {
            return Ok(None);
        };
        let path = self
            .version_dir(id, &pointer.version)
            .clone()
            .join("manifest.json");
        match self.get_json::<Manifest>(&path).await? {
            Some(m) => Ok(Some(m)),
            None => Err(Error::internal(format!(
                "dataset `{id}`: current version {} has no manifest",
                pointer.version
            ))),
        }
    }

    /// The manifest of one version, if that version is kept and complete.
    pub async fn manifest(&self, id: &str, version: &str) -> Result<Option<Manifest>> {
        let path = self.version_dir(id, version).clone().join("manifest.json");
        self.get_json::<Manifest>(&path).await
    }

    /// The manifests of the complete versions kept, newest first (a version still being written,
    /// or abandoned by a killed ingest, has none and is left out).
    pub async fn version_infos(
        &self,
        id: &str,
    ) -> Result<Vec<crate::dataset::manifest::VersionInfo>> {
        let mut infos = Vec::new();
        for v in self.versions(id).await?.iter().rev() {
            let path = self.version_dir(id, v).clone().join("manifest.json");
            if let Some(m) = self.get_json::<Manifest>(&path).await? {
                infos.push((&m).into());
            }
        }
        Ok(infos)
    }

    /// The manifest of a feed's current version, if the feed was ever published.
    pub async fn current_feed(&self, feed: &str) -> Result<Option<FeedManifest>> {
        let Some(pointer) = self.get_json::<Pointer>(&self.pointer_path(feed)).await? else {
            return Ok(None);
        };
        let path = self
            .version_dir(feed, &pointer.version)
            .clone()
            .join(FEED_MANIFEST);
        self.get_json(&path).await
    }

    pub async fn write_feed_manifest(&self, manifest: &FeedManifest) -> Result<()> {
        let path = self
            .version_dir(&manifest.id, &manifest.version)
            .clone()
            .join(FEED_MANIFEST);
        self.put_json(&path, manifest).await
    }

    pub async fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        let path = self
            .version_dir(&manifest.id, &manifest.version)
            .clone()
            .join("manifest.json");
        self.put_json(&path, manifest).await
    }

    /// Reads a dataset's pointer, conditionally: with the e-tag of the last read, an unchanged
    /// pointer costs a metadata check, not a read.
    pub async fn read_pointer(&self, id: &str, e_tag: Option<&str>) -> Result<PointerRead> {
        let options = GetOptions {
            if_none_match: e_tag.map(str::to_string),
            ..Default::default()
        };
        let path = self.pointer_path(id);
        let got = match self.store.get_opts(&path, options).await {
            Ok(got) => got,
            Err(object_store::Error::NotModified { .. }) => return Ok(PointerRead::Unchanged),
            Err(object_store::Error::NotFound { .. }) => return Ok(PointerRead::Missing),
            Err(e) => return Err(e.into()),
        };
        let e_tag = got.meta.e_tag.clone();
        let pointer: Pointer = serde_json::from_slice(&got.bytes().await?)
            .map_err(|e| Error::internal(format!("{path}: unreadable: {e}")))?;
        Ok(PointerRead::Current {
            version: pointer.version,
            e_tag,
        })
    }

    /// Publishes a version, after everything else of it is written, unless a newer one is
    /// already current (version ids sort by time): a slower ingest never moves a dataset back.
    /// A compare-and-swap on the pointer where the store has one (S3, memory); on a local
    /// filesystem, which has none, the check and an atomic rename. `false`: not published.
    pub async fn switch_current(&self, id: &str, version: &str) -> Result<bool> {
        let path = self.pointer_path(id);
        let body = serde_json::to_vec_pretty(&Pointer {
            version: version.to_string(),
        })?;
        loop {
            let (mode, current) = match self.store.get(&path).await {
                Ok(got) => {
                    let seen = UpdateVersion {
                        e_tag: got.meta.e_tag.clone(),
                        version: got.meta.version.clone(),
                    };
                    let pointer: Option<Pointer> = serde_json::from_slice(&got.bytes().await?).ok();
                    (PutMode::Update(seen), pointer.map(|p| p.version))
                }
                Err(object_store::Error::NotFound { .. }) => (PutMode::Create, None),
                Err(e) => return Err(e.into()),
            };
            if current.as_deref().is_some_and(|c| c >= version) {
                return Ok(current.as_deref() == Some(version));
            }
            let payload = PutPayload::from(Bytes::from(body.clone()));
            let options = PutOptions {
                mode,
                ..Default::default()
            };
            match self.store.put_opts(&path, payload.clone(), options).await {
                Ok(_) => return Ok(true),
                // Another writer got there first: look again.
                Err(object_store::Error::Precondition { .. })
                | Err(object_store::Error::AlreadyExists { .. }) => continue,
                Err(object_store::Error::NotImplemented { .. }) => {
                    self.store.put(&path, payload).await?;
                    return Ok(true);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The datasets the storage holds anything of: one listing (paged by the store), not a read
    /// per dataset.
    pub async fn dataset_ids(&self) -> Result<std::collections::BTreeSet<String>> {
        Ok(self.directories(&self.root).await?.into_iter().collect())
    }

    /// Version directories of a dataset, oldest first (version ids sort by time).
    pub async fn versions(&self, id: &str) -> Result<Vec<String>> {
        let mut versions = self.directories(&self.dataset_dir(id)).await?;
        versions.sort();
        Ok(versions)
    }

    /// The names of the directories right under a prefix.
    async fn directories(&self, prefix: &Path) -> Result<Vec<String>> {
        let listing = self.store.list_with_delimiter(Some(prefix)).await?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// Deletes every object under a version directory.
    pub async fn delete_version(&self, id: &str, version: &str) -> Result<()> {
        self.delete_under(&self.version_dir(id, version)).await
    }

    /// Deletes a partial version: what the store lists under it, then, in a local store, the
    /// staging files a killed write left (`part-00000.parquet#1`), which no listing shows.
    pub async fn delete_partial(&self, id: &str, version: &str) -> Result<()> {
        self.delete_version(id, version).await?;
        if let Some(dir) = &self.local
            && !version.is_empty()
            && !version.contains(['/', '\\', '.'])
        {
            match std::fs::remove_dir_all(dir.join(id).join(version)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Deletes every version of a dataset and its pointer (a retired dataset whose versions
    /// expired).
    pub async fn delete_dataset(&self, id: &str) -> Result<()> {
        self.delete_under(&self.dataset_dir(id)).await
    }

    /// Deletes every object under a prefix (whole path segments: `a/b` is not `a/bc`).
    async fn delete_under(&self, prefix: &Path) -> Result<()> {
        let paths: Vec<Path> = self
            .store
            .list(Some(prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        for p in paths {
            match self.store.delete(&p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &Path) -> Result<Option<T>> {
        let bytes = match self.store.get(path).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::internal(format!("{path}: unreadable: {e}")))
    }

    async fn put_json<T: serde::Serialize>(&self, path: &Path, value: &T) -> Result<()> {
        let body = serde_json::to_vec_pretty(value)?;
        self.store
            .put(path, PutPayload::from(Bytes::from(body)))
            .await?;
        Ok(())
    }
}

/// Retries of a failed S3 request (5xx, 429, a connection reset or refused): with backoff from
/// 100 ms, doubling, six times, within 15 s; then the error reaches the caller (a `503` for a
/// request, a failed ingest that publishes nothing). object_store's default waits up to 3
/// minutes, which a query's deadline would cut anyway.
fn retry_config() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig::default(),
        max_retries: 6,
        retry_timeout: std::time::Duration::from_secs(15),
    }
}

/// Byte ranges of one stored file, for the Parquet reader.
#[derive(Clone)]
pub struct FileReader {
    pub store: Arc<dyn ObjectStore>,
    pub path: Path,
    pub size: u64,
}

fn external(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for FileReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(external)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let meta = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(meta))
        }
        .boxed()
    }
}
