//! Settings, declared once: each field of [`Settings`] (and of its sections [`Limits`] and
//! [`IngestSettings`]) is a key of the TOML file, an environment variable and a flag, with its
//! default in its `#[arg]` attribute and its help in its doc comment. Layers, later ones winning:
//! built-in defaults ← the `--config` TOML file ← environment (`QANAT_LIMITS__MAX_PAGE_SIZE`
//! for any key, `QANAT_ADDR` or `QANAT_MAX_PAGE_SIZE` where the key's last part is unique) ←
//! flags given on the command line; then validated. [figment] does the layering, so a bad value
//! is reported with the key and the layer it came from.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Parser};
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::{Figment, Provider};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};

/// Validated settings the whole process runs with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Directory of dataset files (`<id>.toml`)
    #[arg(long, global = true, value_name = "DIR", default_value = "datasets")]
    pub datasets: PathBuf,
    /// Where Parquet versions are stored: a path, file://, s3://bucket/prefix or memory://
    #[arg(long, global = true, value_name = "URL", default_value = "./data")]
    pub storage: String,
    /// Address to listen on
    #[arg(long, global = true, value_name = "HOST:PORT", default_value = "127.0.0.1:8080",
        value_parser = parse_addr)]
    #[serde(deserialize_with = "addr_text")]
    pub addr: SocketAddr,
    /// Base URL of the links in responses (default: from the request's Host)
    #[arg(long, global = true, value_name = "URL")]
    pub public_url: Option<String>,
    /// Byte budget of the result cache (0 turns it off)
    #[arg(long, global = true, value_name = "N", default_value_t = 64 * 1024 * 1024)]
    pub cache_bytes: u64,
    /// Byte budget of datasets held decoded in memory (0 serves every one from Parquet)
    #[arg(long, global = true, value_name = "N", default_value_t = 1024 * 1024 * 1024)]
    pub resident_bytes: u64,
    /// Byte budget of decoded Parquet blocks kept for the pages read again (0 turns it off)
    #[arg(long, global = true, value_name = "N", default_value_t = 64 * 1024 * 1024)]
    pub page_cache_bytes: u64,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub ingest: IngestSettings,
    #[command(flatten)]
    pub server: ServerSettings,
    /// `[[harvest]]` entries: portals `serve` harvests on their `interval` (file only).
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub harvest: Vec<HarvestSource>,
}

/// Bounds on what one request may ask for (the `[limits]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Rows a page when page_size is not given
    #[arg(long, global = true, value_name = "N", default_value_t = 20)]
    pub default_page_size: u64,
    /// Largest page_size a request may ask for (in /api/datasets too)
    #[arg(long, global = true, value_name = "N", default_value_t = 1000)]
    pub max_page_size: u64,
    /// Filter, sort and aggregation parameters one request may hold
    #[arg(long, global = true, value_name = "N", default_value_t = 50)]
    pub max_filters: usize,
    /// Values one `__in` list may hold
    #[arg(long, global = true, value_name = "N", default_value_t = 1000)]
    pub max_in_values: usize,
    /// Facets one request may ask for (`facets=a,b,…`)
    #[arg(long, global = true, value_name = "N", default_value_t = 10)]
    pub max_facets: usize,
    /// Time each facet of a page may take, in milliseconds; a facet past it is reported
    /// `truncated` and the page answers without its counts
    #[arg(long, global = true, value_name = "MS", default_value_t = 1000)]
    pub facet_timeout_ms: u64,
    /// Deadline of one query, in milliseconds
    #[arg(long, global = true, value_name = "MS", default_value_t = 10_000)]
    pub query_timeout_ms: u64,
    /// Memory the query engine may hold across all running queries, in bytes
    #[arg(long, global = true, value_name = "N", default_value_t = 1024 * 1024 * 1024)]
    pub memory_bytes: usize,
    /// Threads of the runtime that executes queries and ingests (the sockets have their own)
    #[arg(long, global = true, value_name = "N", default_value_t = cores())]
    pub query_threads: usize,
    /// Whether sorts and aggregations over the memory budget may spill to temporary files;
    /// without it they answer 503
    #[arg(long, global = true, value_name = "BOOL", default_value_t = true,
        action = clap::ArgAction::Set)]
    pub spill_to_disk: bool,
}

/// How sources are fetched and versions kept (the `[ingest]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// Deadline of one download, in milliseconds
    #[arg(long, global = true, value_name = "MS", default_value_t = 300_000)]
    pub http_timeout_ms: u64,
    /// Largest source a download may bring, in bytes
    #[arg(long, global = true, value_name = "N", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub max_download_bytes: u64,
    /// Versions kept per dataset, the current one included
    #[arg(long, global = true, value_name = "N", default_value_t = 3)]
    pub keep_versions: usize,
    /// How long a version stays kept after a newer one replaced it, in milliseconds, whatever
    /// the count: cursors and pinned URLs on it keep working that long
    #[arg(long, global = true, value_name = "MS", default_value_t = 600_000)]
    pub keep_replaced_ms: u64,
    /// Let harvested sources resolve to loopback, private or link-local addresses (refused by
    /// default: a portal's URLs are not the operator's)
    #[arg(long, global = true, action = clap::ArgAction::SetTrue)]
    pub allow_private_sources: bool,
    /// How often `serve` looks for versions other processes published (`qanat ingest`, another
    /// server over the same storage), in milliseconds; 0 never looks
    #[arg(long, global = true, value_name = "MS", default_value_t = 10_000)]
    pub watch_ms: u64,
    /// How long an ingest's lease on its dataset lasts unless renewed, in milliseconds (it is
    /// renewed every third of it): one process ingests a dataset at a time, and a killed one's
    /// lease is taken over once expired (at once on the same machine)
    #[arg(long, global = true, value_name = "MS", default_value_t = 60_000)]
    pub lease_ms: u64,
    /// Memory the indexes built after the Parquet file (orders, posting lists, words, the
    /// spatial grid) hold while they sort, in bytes; past it they sort in runs on the local disk
    /// (`TMPDIR`), so an ingest's memory stays flat in the table's size
    #[arg(long, global = true, value_name = "N", default_value_t = 512 * 1024 * 1024)]
    pub sort_bytes: usize,
}

/// How the server meets its clients: load, rates, request sizes, keys, shutdown, logs (the
/// `[server]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Queries computed at once (pages, the start of exports); the next ones wait
    /// queue_wait_ms for a turn, then answer 503 with Retry-After
    #[arg(long, global = true, value_name = "N", default_value_t = 4 * cores())]
    pub max_queries: usize,
    /// How long a query waits for a turn among max_queries before it is shed, in milliseconds
    #[arg(long, global = true, value_name = "MS", default_value_t = 30)]
    pub queue_wait_ms: u64,
    /// Requests a second one client may make, sustained (0 turns rate limits off)
    #[arg(long, global = true, value_name = "N", default_value_t = 50)]
    pub rate_limit: u32,
    /// Requests one client may make at once, above the sustained rate
    #[arg(long, global = true, value_name = "N", default_value_t = 500)]
    pub rate_burst: u32,
    /// Addresses or CIDR ranges of the reverse proxies whose `X-Forwarded-For` or `Forwarded`
    /// header names the client (comma-separated; none by default: the peer is the client)
    #[arg(long, global = true, value_name = "CIDRS", default_value = "")]
    #[serde(deserialize_with = "list_text")]
    pub trusted_proxies: String,
    /// Longest request target (path and query) in bytes; longer answers 414
    #[arg(long, global = true, value_name = "N", default_value_t = 8 * 1024)]
    pub max_uri_bytes: usize,
    /// Largest total of request header names and values in bytes; larger answers 431
    #[arg(long, global = true, value_name = "N", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,
    /// Largest request body in bytes (CKAN's action API, admin routes); larger answers 413
    #[arg(long, global = true, value_name = "N", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's head, in milliseconds; a slower
    /// connection is closed
    #[arg(long, global = true, value_name = "MS", default_value_t = 10_000)]
    pub header_timeout_ms: u64,
    /// On SIGTERM, how long running requests and exports may go on before the server closes,
    /// in milliseconds
    #[arg(long, global = true, value_name = "MS", default_value_t = 30_000)]
    pub drain_ms: u64,
    /// A file of SHA-256 hashes (hex, one a line) of the keys the admin routes accept; without
    /// it the admin routes are off
    #[arg(long, global = true, value_name = "FILE")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_keys: Option<PathBuf>,
    /// Log lines as text or as JSON objects (one a line)
    #[arg(long, global = true, value_name = "FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The API a portal speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PortalKind {
    Ckan,
    Udata,
}

/// A portal to harvest (`qanat harvest`, or a `[[harvest]]` entry that `serve` runs on its
/// `interval`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarvestSource {
    pub kind: PortalKind,
    /// The portal's site or API base.
    pub url: String,
    /// Only this organisation's packages (CKAN `organization:` filter; udata organisation slug
    /// or id).
    #[serde(default)]
    pub organization: Option<String>,
    /// CKAN: a `package_search` query.
    #[serde(default)]
    pub query: Option<String>,
    /// udata: this dataset only (slug or id).
    #[serde(default)]
    pub dataset: Option<String>,
    /// Packages (CKAN) or datasets (udata) a listing page asks for.
    #[serde(default = "default_rows")]
    pub rows: usize,
    /// Ingest what the harvest finds new or changed (else only the dataset files are written).
    #[serde(default = "yes")]
    pub ingest: bool,
    /// How often `serve` harvests it (`30m`, `6h`, `1d`); unset in `qanat harvest`.
    #[serde(default)]
    pub interval: Option<String>,
}

fn default_rows() -> usize {
    1000
}

fn yes() -> bool {
    true
}

/// A duration written as a number and a unit: `500ms`, `30s`, `15m`, `6h`, `1d` (not zero).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let n: u64 = t[..split].parse().ok()?;
    let ms = match &t[split..] {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    (ms > 0).then(|| Duration::from_millis(ms))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The settings alone as a command line, to read the defaults declared on them.
#[derive(Parser)]
#[command(no_binary_name = true)]
struct Defaults {
    #[command(flatten)]
    settings: Settings,
}

impl Default for Settings {
    fn default() -> Self {
        Defaults::parse_from(std::iter::empty::<String>()).settings
    }
}

impl Limits {
    pub fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.query_timeout_ms)
    }

    pub fn facet_timeout(&self) -> Duration {
        Duration::from_millis(self.facet_timeout_ms)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Settings::default().limits
    }
}

impl ServerSettings {
    /// The trusted proxies' ranges; [`Settings::validate`] refused any that does not parse.
    pub fn proxies(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .filter_map(|t| parse_net(t).ok())
            .collect()
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Settings::default().server
    }
}

/// An address (`10.0.0.1`, one host) or a range (`10.0.0.0/8`).
fn parse_net(text: &str) -> std::result::Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{text}` is not an address or a CIDR range such as 10.0.0.0/8"))
}

/// A list setting written as one comma-separated text or as a TOML array of texts.
fn list_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Either::deserialize(d)? {
        Either::One(text) => text,
        Either::Many(list) => list.join(","),
    })
}

impl IngestSettings {
    pub fn http_timeout(&self) -> Duration {
        Duration::from_millis(self.http_timeout_ms)
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        Settings::default().ingest
    }
}

/// The layers above the defaults.
#[derive(Default)]
pub struct Layers<'a> {
    /// The TOML file's text and where it came from (for messages).
    pub file: Option<(String, String)>,
    /// `QANAT_*` environment variables (others are ignored).
    pub env: Vec<(String, String)>,
    /// The settings parsed from the command line, with the matches that say which were given.
    pub flags: Option<(&'a Settings, &'a ArgMatches)>,
}

impl Layers<'_> {
    /// The file at `path`, read now; a file that cannot be read is an error naming it.
    pub fn file_at(path: &Path) -> Result<(String, String)> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("--config {}: {e}", path.display())))?;
        Ok((text, format!("--config {}", path.display())))
    }
}

impl Settings {
    /// Settings from a TOML text laid over the defaults (tests use this directly).
    pub fn from_toml_str(text: &str) -> Result<Self> {
        Settings::layered(Layers {
            file: Some((text.to_string(), "configuration".into())),
            ..Layers::default()
        })
    }

    /// Defaults ← file ← environment ← flags, validated.
    pub fn layered(layers: Layers<'_>) -> Result<Self> {
        let keys = leaf_keys();
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some((text, origin)) = &layers.file {
            // Parsed here first, so that a syntax error names the file and the line.
            toml::from_str::<toml::Table>(text)
                .map_err(|e| Error::Config(format!("{origin}: {e}")))?;
            figment = figment.merge(Toml::string(text));
        }
        for (path, value) in env_overrides(&layers.env, &keys)? {
            figment = figment.merge(Serialized::default(&path, value));
        }
        if let Some((parsed, matches)) = layers.flags {
            let given = Figment::from(Serialized::defaults(parsed));
            for (path, id) in &keys {
                if matches.value_source(id) == Some(ValueSource::CommandLine)
                    && let Ok(value) = given.find_value(path)
                {
                    figment = figment.merge(Serialized::default(path, value));
                }
            }
        }
        let mut settings: Settings = figment
            .extract()
            .map_err(|e| Error::Config(format!("configuration: {e}")))?;
        // A maximum page size set below the built-in default page size lowers that default
        // too, unless the default page size was set as well (then both must agree).
        let default_set = figment
            .find_metadata("limits.default_page_size")
            .is_some_and(|m| m.name != std::any::type_name::<Settings>());
        let l = &mut settings.limits;
        if !default_set && l.max_page_size > 0 {
            l.default_page_size = l.default_page_size.min(l.max_page_size);
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Refuses settings that cannot work, naming the key and the valid range.
    pub fn validate(&self) -> Result<()> {
        let l = &self.limits;
        let bad = |msg: String| Err(Error::Config(msg));
        if l.max_page_size == 0 {
            return bad("limits.max_page_size must be at least 1".into());
        }
        if l.default_page_size == 0 || l.default_page_size > l.max_page_size {
            return bad(format!(
                "limits.default_page_size must be between 1 and max_page_size ({})",
                l.max_page_size
            ));
        }
        if l.query_threads == 0 {
            return bad("limits.query_threads must be at least 1".into());
        }
        if l.query_timeout_ms == 0 {
            return bad("limits.query_timeout_ms must be at least 1".into());
        }
        if l.memory_bytes < 16 * 1024 * 1024 {
            return bad("limits.memory_bytes must be at least 16 MiB".into());
        }
        if self.ingest.keep_versions == 0 {
            return bad("ingest.keep_versions must be at least 1".into());
        }
        let server = &self.server;
        if server.header_timeout_ms == 0 {
            return bad("server.header_timeout_ms must be at least 1".into());
        }
        if server.max_queries == 0 {
            return bad("server.max_queries must be at least 1".into());
        }
        if server.rate_limit > 0 && server.rate_burst == 0 {
            return bad("server.rate_burst must be at least 1 when rate_limit is set".into());
        }
        if server.max_uri_bytes < 256 || server.max_header_bytes < 1024 {
            return bad(
                "server.max_uri_bytes must be at least 256 and max_header_bytes at least 1024"
                    .into(),
            );
        }
        for net in server.trusted_proxies.split(',').map(str::trim) {
            if !net.is_empty()
                && let Err(e) = parse_net(net)
            {
                return bad(format!("server.trusted_proxies: {e}"));
            }
        }
        for (n, h) in self.harvest.iter().enumerate() {
            if h.interval.as_deref().and_then(parse_duration).is_none() {
                return bad(format!(
                    "[[harvest]] entry {} ({}): interval = {:?} must be a duration such as \"6h\" or \"1d\"",
                    n + 1,
                    h.url,
                    h.interval.as_deref().unwrap_or("")
                ));
            }
        }
        Ok(())
    }
}

/// Every setting's key path (`limits.max_page_size`) and its flag's id (its last part), read
/// from the serialised defaults, so that the list can never miss a setting.
fn leaf_keys() -> BTreeMap<String, String> {
    fn walk(prefix: &str, dict: &Dict, out: &mut BTreeMap<String, String>) {
        for (k, v) in dict {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Value::Dict(_, inner) => walk(&path, inner, out),
                _ => {
                    out.insert(path, k.clone());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    // `public_url` is unset by default, and absent from the serialised form: added by name.
    out.insert("public_url".into(), "public_url".into());
    out.insert("server.admin_keys".into(), "admin_keys".into());
    if let Ok(dict) = Figment::from(Serialized::defaults(Settings::default())).data()
        && let Some(root) = dict.values().next()
    {
        walk("", root, &mut out);
    }
    out
}

/// The environment's settings as key paths and values. `QANAT_SECTION__KEY` names any key and
/// must name one that exists; `QANAT_KEY` names a top-level key or a key whose last part is
/// unique; other `QANAT_*` variables (`QANAT_LOG`, `QANAT_CONFIG`) are not settings.
fn env_overrides(
    env: &[(String, String)],
    keys: &BTreeMap<String, String>,
) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for (name, text) in env {
        let Some(rest) = name.strip_prefix("QANAT_") else {
            continue;
        };
        let key = rest.to_ascii_lowercase();
        let path = if key.contains("__") {
            let path = key.replace("__", ".");
            if !keys.contains_key(&path) {
                let known: Vec<String> = keys
                    .keys()
                    .map(|k| format!("QANAT_{}", k.replace('.', "__").to_ascii_uppercase()))
                    .collect();
                return Err(Error::Config(format!(
                    "environment variable {name} names no setting; settings are {}",
                    known.join(", ")
                )));
            }
            path
        } else {
            let mut by_leaf = keys.iter().filter(|(_, leaf)| **leaf == key);
            match (by_leaf.next(), by_leaf.next()) {
                (Some((path, _)), None) => path.clone(),
                _ => continue,
            }
        };
        // Read as figment reads environment values: numbers and booleans by their form.
        let value: Value = text.parse().unwrap_or_else(|never| match never {});
        out.push((path, value));
    }
    Ok(out)
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

/// An address as text, with a host name resolved (`localhost:8080`).
fn addr_text<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    parse_addr(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn toml_overrides_defaults() {
        let s = Settings::from_toml_str(
            "storage = 'memory://'\ncache_bytes = 0\n[limits]\nmax_page_size = 50\nquery_timeout_ms = 1500\n",
        )
        .unwrap();
        assert_eq!(s.storage, "memory://");
        assert_eq!(s.cache_bytes, 0);
        assert_eq!(s.limits.max_page_size, 50);
        assert_eq!(s.limits.query_timeout(), Duration::from_millis(1500));
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

    #[test]
    fn every_key_is_a_flag_and_an_environment_variable() {
        let keys = leaf_keys();
        assert_eq!(keys.len(), 37, "{keys:?}");
        assert_eq!(keys["limits.max_page_size"], "max_page_size");
        let cmd = <Defaults as clap::CommandFactory>::command();
        for id in keys.values() {
            assert!(
                cmd.get_arguments().any(|a| a.get_id() == id.as_str()),
                "no flag for {id}"
            );
        }
    }

    #[test]
    fn layers_apply_in_order_file_env_flags() {
        let file = "storage = 'from-file'\n[limits]\nmax_page_size = 50\nmax_filters = 7\n";
        let vars = env(&[
            ("QANAT_LIMITS__MAX_PAGE_SIZE", "40"),
            ("QANAT_STORAGE", "from-env"),
            ("QANAT_INGEST__KEEP_VERSIONS", "5"),
            ("QANAT_QUERY_TIMEOUT_MS", "1234"),
            ("QANAT_LOG", "debug"),
        ]);
        let cli = Defaults::try_parse_from(["--max-page-size", "30", "--spill-to-disk", "false"])
            .unwrap();
        let matches = <Defaults as clap::CommandFactory>::command().get_matches_from([
            "--max-page-size",
            "30",
            "--spill-to-disk",
            "false",
        ]);
        let s = Settings::layered(Layers {
            file: Some((file.into(), "test".into())),
            env: vars,
            flags: Some((&cli.settings, &matches)),
        })
        .unwrap();
        assert_eq!(s.limits.max_page_size, 30, "flag over environment");
        assert_eq!(s.storage, "from-env", "environment over file");
        assert_eq!(s.limits.max_filters, 7, "file over defaults");
        assert_eq!(s.ingest.keep_versions, 5);
        assert_eq!(s.limits.query_timeout_ms, 1234, "unique last part");
        assert!(!s.limits.spill_to_disk);
        assert_eq!(s.cache_bytes, 64 * 1024 * 1024, "defaults");

        let e = Settings::layered(Layers {
            env: env(&[("QANAT_LIMITS__MAX_PAGE_SIZ", "3")]),
            ..Layers::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("QANAT_LIMITS__MAX_PAGE_SIZ names no setting"),
            "{e}"
        );
        assert!(e.contains("QANAT_LIMITS__MAX_PAGE_SIZE"), "{e}");
        let e = Settings::layered(Layers {
            env: env(&[("QANAT_CACHE_BYTES", "lots")]),
            ..Layers::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("cache_bytes"), "{e}");
    }

    #[test]
    fn trusted_proxies_are_a_list_or_a_text_and_must_parse() {
        let s = Settings::from_toml_str(
            "[server]\ntrusted_proxies = ['10.0.0.0/8', '::1']\nrate_limit = 5\n",
        )
        .unwrap();
        assert_eq!(s.server.trusted_proxies, "10.0.0.0/8,::1");
        let nets: Vec<String> = s.server.proxies().iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["10.0.0.0/8", "::1/128"]);
        let s = Settings::layered(Layers {
            env: env(&[("QANAT_TRUSTED_PROXIES", "192.0.2.1, 198.51.100.0/24")]),
            ..Layers::default()
        })
        .unwrap();
        assert_eq!(s.server.proxies().len(), 2);
        let e = Settings::from_toml_str("[server]\ntrusted_proxies = '10.0.0.0/33'\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("server.trusted_proxies: `10.0.0.0/33` is not"),
            "{e}"
        );
        let e = Settings::from_toml_str("[server]\nmax_queries = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.max_queries must be at least 1"), "{e}");
    }
}
