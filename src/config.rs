//! Settings: built-in defaults, then a TOML file, then `QANAT_*` environment variables and flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Validated settings the whole process runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Directory of `<id>.toml` dataset files.
    pub datasets_dir: PathBuf,
    /// Where Parquet versions live: a path, `file://`, `s3://bucket/prefix` or `memory://`.
    pub storage: String,
    pub addr: SocketAddr,
    /// Base of the absolute URLs in `links`; by default taken from the request's `Host`.
    pub public_url: Option<String>,
    /// Byte budget of the result cache; `0` turns it off.
    pub cache_bytes: u64,
    /// Byte budget of the datasets held decoded in memory; `0` serves every one from Parquet.
    pub resident_bytes: u64,
    pub limits: Limits,
    pub ingest: IngestSettings,
}

/// Bounds on what one request may ask for.
#[derive(Debug, Clone)]
pub struct Limits {
    pub default_page_size: u64,
    pub max_page_size: u64,
    pub max_filters: usize,
    pub max_in_values: usize,
    pub query_timeout: Duration,
    /// Memory the query engine may hold across all running queries.
    pub memory_bytes: usize,
    /// Threads of the runtime that executes queries (the sockets have their own).
    pub query_threads: usize,
    /// Whether sorts and aggregations over the memory budget may spill to temporary files;
    /// without it they answer 503.
    pub spill_to_disk: bool,
}

#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub http_timeout: Duration,
    pub max_download_bytes: u64,
    /// Versions kept per dataset, the current one included.
    pub keep_versions: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            datasets_dir: PathBuf::from("datasets"),
            storage: "./data".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            cache_bytes: 64 * 1024 * 1024,
            resident_bytes: 1024 * 1024 * 1024,
            limits: Limits::default(),
            ingest: IngestSettings::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_page_size: 20,
            max_page_size: 1000,
            max_filters: 50,
            max_in_values: 1000,
            query_timeout: Duration::from_secs(10),
            memory_bytes: 1024 * 1024 * 1024,
            query_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            spill_to_disk: true,
        }
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            http_timeout: Duration::from_secs(300),
            max_download_bytes: 4 * 1024 * 1024 * 1024,
            keep_versions: 3,
        }
    }
}

/// The TOML file's shape: every key optional, unknown keys refused so that typos are caught.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub datasets: Option<PathBuf>,
    pub storage: Option<String>,
    pub addr: Option<String>,
    pub public_url: Option<String>,
    pub cache_bytes: Option<u64>,
    pub resident_bytes: Option<u64>,
    #[serde(default)]
    pub limits: FileLimits,
    #[serde(default)]
    pub ingest: FileIngest,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    pub default_page_size: Option<u64>,
    pub max_page_size: Option<u64>,
    pub max_filters: Option<usize>,
    pub max_in_values: Option<usize>,
    pub query_timeout_ms: Option<u64>,
    pub memory_bytes: Option<usize>,
    pub query_threads: Option<usize>,
    pub spill_to_disk: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileIngest {
    pub http_timeout_ms: Option<u64>,
    pub max_download_bytes: Option<u64>,
    pub keep_versions: Option<usize>,
}

impl Settings {
    /// Settings from a TOML text laid over the defaults (tests use this directly).
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let file: FileSettings =
            toml::from_str(text).map_err(|e| Error::Config(format!("configuration: {e}")))?;
        let mut s = Settings::default();
        s.apply_file(file)?;
        s.validate()?;
        Ok(s)
    }

    pub fn apply_file(&mut self, f: FileSettings) -> Result<()> {
        if let Some(v) = f.datasets {
            self.datasets_dir = v;
        }
        if let Some(v) = f.storage {
            self.storage = v;
        }
        if let Some(v) = f.addr {
            self.addr = parse_addr(&v)?;
        }
        if f.public_url.is_some() {
            self.public_url = f.public_url;
        }
        if let Some(v) = f.cache_bytes {
            self.cache_bytes = v;
        }
        if let Some(v) = f.resident_bytes {
            self.resident_bytes = v;
        }
        let l = &mut self.limits;
        set(&mut l.default_page_size, f.limits.default_page_size);
        set(&mut l.max_page_size, f.limits.max_page_size);
        set(&mut l.max_filters, f.limits.max_filters);
        set(&mut l.max_in_values, f.limits.max_in_values);
        set(&mut l.memory_bytes, f.limits.memory_bytes);
        set(&mut l.query_threads, f.limits.query_threads);
        set(&mut l.spill_to_disk, f.limits.spill_to_disk);
        if let Some(ms) = f.limits.query_timeout_ms {
            l.query_timeout = Duration::from_millis(ms);
        }
        let i = &mut self.ingest;
        set(&mut i.max_download_bytes, f.ingest.max_download_bytes);
        set(&mut i.keep_versions, f.ingest.keep_versions);
        if let Some(ms) = f.ingest.http_timeout_ms {
            i.http_timeout = Duration::from_millis(ms);
        }
        Ok(())
    }

    /// Refuses settings that cannot work, naming the key and the valid range.
    pub fn validate(&self) -> Result<()> {
        let l = &self.limits;
        if l.max_page_size == 0 {
            return Err(Error::Config(
                "limits.max_page_size must be at least 1".into(),
            ));
        }
        if l.default_page_size == 0 || l.default_page_size > l.max_page_size {
            return Err(Error::Config(format!(
                "limits.default_page_size must be between 1 and max_page_size ({})",
                l.max_page_size
            )));
        }
        if l.query_threads == 0 {
            return Err(Error::Config(
                "limits.query_threads must be at least 1".into(),
            ));
        }
        if l.query_timeout.is_zero() {
            return Err(Error::Config(
                "limits.query_timeout_ms must be at least 1".into(),
            ));
        }
        if l.memory_bytes < 16 * 1024 * 1024 {
            return Err(Error::Config(
                "limits.memory_bytes must be at least 16 MiB".into(),
            ));
        }
        if self.ingest.keep_versions == 0 {
            return Err(Error::Config(
                "ingest.keep_versions must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

pub fn parse_addr(text: &str) -> Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    text.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            Error::Config(format!(
                "`{text}` is not a HOST:PORT address (e.g. 127.0.0.1:8080)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults() {
        let s = Settings::from_toml_str(
            "storage = 'memory://'\ncache_bytes = 0\n[limits]\nmax_page_size = 50\nquery_timeout_ms = 1500\n",
        )
        .unwrap();
        assert_eq!(s.storage, "memory://");
        assert_eq!(s.cache_bytes, 0);
        assert_eq!(s.limits.max_page_size, 50);
        assert_eq!(s.limits.query_timeout, Duration::from_millis(1500));
        assert_eq!(s.limits.default_page_size, 20);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let e = Settings::from_toml_str("storgae = 'x'")
            .unwrap_err()
            .to_string();
        assert!(e.contains("storgae"), "{e}");
        let e = Settings::from_toml_str("[limits]\nmax_page_size = 10\ndefault_page_size = 20")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("default_page_size must be between 1 and max_page_size (10)"),
            "{e}"
        );
    }
}
