//! One harvest: list the portal's packages, read again only those modified since the last run,
//! write a dataset file per tabular resource, ingest the new and changed ones (and any without a
//! version yet), retire the datasets whose resource disappeared, and report all of it.
//!
//! The dataset files are the harvest's record: each carries its `[provenance]` (the resource's
//! URL, `last_modified`, checksum and size as the portal listed them), which the next run
//! compares. A small state file per harvest (`<datasets>/.harvest/<key>.json`) remembers each
//! package's modification date and datasets, so an unchanged package is not read again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::portal::Portal;
use super::udata::Selection;
use super::{Filters, Listing, Package, Skipped, ckan, udata};
use crate::config::{HarvestSource, PortalKind as Kind, Settings};
use crate::dataset::names::slugify;
use crate::dataset::spec::{DatasetSpec, load_dir};
use crate::error::{Error, Result};
use crate::ingest;
use crate::storage::{PointerRead, Storage};

impl HarvestSource {
    /// The name of this harvest: its kind, portal and filters, as one slug. Only datasets written
    /// by the same harvest are compared with it and retired by it.
    pub fn key(&self) -> String {
        let url = url::Url::parse(self.url.trim());
        let place = url.as_ref().map_or(self.url.clone(), |u| {
            format!("{}{}", u.host_str().unwrap_or(""), u.path())
        });
        let mut key = format!("{:?} {place}", self.kind);
        for part in [&self.organization, &self.query, &self.dataset]
            .into_iter()
            .flatten()
        {
            key.push(' ');
            key.push_str(part);
        }
        slugify(&key).chars().take(100).collect()
    }

    /// The portal's URL, once the options are checked to make sense together.
    pub fn check(&self) -> Result<url::Url> {
        let url = url::Url::parse(self.url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                Error::Config(format!(
                    "harvest: `{}` is not an http(s) URL of a portal (e.g. https://data.gov.ma/data)",
                    self.url
                ))
            })?;
        if self.kind == Kind::Udata && self.organization.is_none() && self.dataset.is_none() {
            return Err(Error::Config(
                "harvest udata: name an organisation (--organization) or a dataset (--dataset)"
                    .into(),
            ));
        }
        if self.kind == Kind::Ckan && self.dataset.is_some() {
            return Err(Error::Config(
                "harvest ckan: --dataset is for udata; select CKAN packages with --organization or --query"
                    .into(),
            ));
        }
        if !(1..=1000).contains(&self.rows) {
            return Err(Error::Config(format!(
                "harvest: rows = {} must be from 1 to 1000 (CKAN's own maximum)",
                self.rows
            )));
        }
        Ok(url)
    }
}

/// What a harvest did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub portal: String,
    pub packages_seen: usize,
    /// Packages unchanged since the last run, not read again.
    pub packages_unchanged: usize,
    /// Tabular resources in the portal's packages (those of unchanged packages included).
    pub resources_kept: usize,
    pub new: Vec<String>,
    /// Datasets whose resource the portal lists as changed and whose bytes did change (without
    /// ingesting, as the portal lists them).
    pub changed: Vec<String>,
    pub unchanged: usize,
    pub retired: Vec<String>,
    /// Retired datasets whose versions expired: their files and versions are deleted.
    pub removed: Vec<String>,
    pub skipped: Vec<Skipped>,
    /// Datasets whose ingest failed, and why (their files stay, the next run tries again).
    pub failed: Vec<(String, String)>,
    /// Listing pages that failed: nothing is retired then.
    pub listing_errors: Vec<String>,
    /// Datasets ingested (new versions published).
    pub ingested: usize,
}

impl Report {
    /// The report as lines for a terminal.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "harvest {}: {} packages seen ({} unchanged since the last run), {} tabular resources kept: {} new, {} changed, {} unchanged; {} retired, {} removed, {} skipped, {} failed; {} versions published",
            self.portal,
            self.packages_seen,
            self.packages_unchanged,
            self.resources_kept,
            self.new.len(),
            self.changed.len(),
            self.unchanged,
            self.retired.len(),
            self.removed.len(),
            self.skipped.len(),
            self.failed.len(),
            self.ingested,
        )];
        out.extend(self.new.iter().map(|id| format!("  new      {id}")));
        out.extend(self.changed.iter().map(|id| format!("  changed  {id}")));
        out.extend(self.retired.iter().map(|id| format!("  retired  {id}")));
        out.extend(self.removed.iter().map(|id| format!("  removed  {id}")));
        out.extend(self.skipped.iter().map(|s| {
            let what = if s.resource.is_empty() {
                s.package.clone()
            } else {
                format!("{} / {}", s.package, s.resource)
            };
            format!("  skipped  {what}: {}", s.reason)
        }));
        out.extend(
            self.failed
                .iter()
                .map(|(id, why)| format!("  failed   {id}: {why}")),
        );
        out.extend(
            self.listing_errors
                .iter()
                .map(|e| format!("  listing  {e} (nothing retired this run)")),
        );
        out
    }
}

/// What the last run of a harvest saw of each package.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    packages: BTreeMap<String, PackageState>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PackageState {
    modified: Option<String>,
    datasets: Vec<String>,
}

/// Runs one harvest with these settings: dataset files go to `settings.datasets`, versions to
/// `settings.storage`. `progress` hears one line per step of the long parts.
pub async fn harvest(
    settings: &Settings,
    options: &HarvestSource,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Report> {
    let url = options.check()?;
    let key = options.key();
    let portal = Portal::new(settings.ingest.http_timeout()).map_err(Error::Config)?;
    let site = url.as_str().trim_end_matches('/').to_string();
    progress(&format!("harvest {site}: listing packages"));
    let listing = match options.kind {
        Kind::Ckan => {
            let api = ckan::api_base(&portal, &url)
                .await
                .map_err(Error::bad_request)?;
            let filters = Filters {
                organization: options.organization.clone(),
                query: options.query.clone(),
            };
            ckan::list(&portal, &api, &site, &filters, options.rows).await
        }
        Kind::Udata => {
            let api = udata::api_base(&url);
            let selection = match (&options.dataset, &options.organization) {
                (Some(d), _) => Selection::Dataset(d.clone()),
                (None, Some(o)) => Selection::Organization(o.clone()),
                (None, None) => unreachable!("validated"),
            };
            udata::list(&portal, &api, &site, &selection, options.rows).await
        }
    };
    if listing.packages.is_empty() && !listing.complete() {
        return Err(Error::bad_request(format!(
            "harvest {site}: nothing could be listed: {}",
            listing.errors.join("; ")
        )));
    }
    let dir = &settings.datasets;
    let mut plan = Plan::new(dir, &key, site.clone())?;
    plan.compare(listing, settings.ingest.max_download_bytes)?;
    let storage = Storage::open(&settings.storage)?;
    storage.check(&settings.storage).await?;
    plan.retire(&storage, settings.ingest.keep_replaced_ms)
        .await?;
    if options.ingest {
        plan.ingest(&storage, settings, progress).await;
    }
    plan.save_state()?;
    Ok(plan.report)
}

/// A harvest under way: what exists, what the portal lists, and the report.
struct Plan {
    dir: PathBuf,
    key: String,
    /// This harvest's datasets as their files say, by id.
    existing: BTreeMap<String, DatasetSpec>,
    state: State,
    next_state: State,
    /// Datasets the portal still lists.
    seen: BTreeSet<String>,
    /// Datasets to ingest.
    to_ingest: BTreeSet<String>,
    listing_complete: bool,
    report: Report,
}

impl Plan {
    fn new(dir: &Path, key: &str, portal: String) -> Result<Self> {
        let existing = load_dir(dir)?
            .into_iter()
            .filter(|s| {
                s.provenance
                    .as_ref()
                    .is_some_and(|p| p.harvest.as_deref() == Some(key))
            })
            .map(|s| (s.id.clone(), s))
            .collect();
        let state = std::fs::read(state_path(dir, key))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(Plan {
            dir: dir.to_path_buf(),
            key: key.to_string(),
            existing,
            state,
            next_state: State::default(),
            seen: BTreeSet::new(),
            to_ingest: BTreeSet::new(),
            listing_complete: true,
            report: Report {
                portal,
                ..Report::default()
            },
        })
    }

    /// Compares the listing with the datasets written before, and writes the new and changed
    /// dataset files.
    fn compare(&mut self, listing: Listing, max_bytes: u64) -> Result<()> {
        self.listing_complete = listing.complete();
        self.report.listing_errors = listing.errors;
        let mut ids_seen_in_listing = BTreeSet::new();
        for package in listing.packages {
            self.report.packages_seen += 1;
            if !ids_seen_in_listing.insert(package.id.clone()) {
                continue; // listed twice (pages shifted under an edit): read once
            }
            if self.carry_over(&package) {
                continue;
            }
            self.read_package(package, max_bytes)?;
        }
        Ok(())
    }

    /// Keeps an unchanged package's datasets as they are: its modification date is the one
    /// seen last time and its dataset files are all there.
    fn carry_over(&mut self, package: &Package) -> bool {
        let Some(before) = self.state.packages.get(&package.id) else {
            return false;
        };
        let same = package.modified.is_some() && before.modified == package.modified;
        let intact = before.datasets.iter().all(|id| {
            self.existing
                .get(id)
                .is_some_and(|s| s.provenance.as_ref().is_some_and(|p| p.retired.is_none()))
        });
        if !same || !intact {
            return false;
        }
        self.report.packages_unchanged += 1;
        self.report.resources_kept += before.datasets.len();
        self.report.unchanged += before.datasets.len();
        for id in &before.datasets {
            self.seen.insert(id.clone());
        }
        self.next_state.packages.insert(
            package.id.clone(),
            PackageState {
                modified: package.modified.clone(),
                datasets: before.datasets.clone(),
            },
        );
        true
    }

    fn read_package(&mut self, package: Package, max_bytes: u64) -> Result<()> {
        self.report.skipped.extend(package.skipped);
        let mut datasets = Vec::new();
        for resource in package.resources {
            if let Some(size) = resource.size.filter(|s| *s > max_bytes) {
                // A resource too large now is still published: what is served of it stays.
                let id = resource.dataset_id();
                if self.existing.contains_key(&id) {
                    self.seen.insert(id.clone());
                    datasets.push(id);
                }
                self.report.skipped.push(Skipped {
                    package: resource.package_name.clone(),
                    resource: resource.name.clone(),
                    reason: format!(
                        "its size, {size} bytes, is over ingest.max_download_bytes ({max_bytes})"
                    ),
                });
                continue;
            }
            let mut spec = resource.spec();
            if let Some(p) = spec.provenance.as_mut() {
                p.harvest = Some(self.key.clone());
            }
            let id = spec.id.clone();
            if !self.seen.insert(id.clone()) {
                continue; // the same resource listed twice in a package
            }
            self.report.resources_kept += 1;
            datasets.push(id.clone());
            match self.existing.get(&id) {
                None => {
                    self.report.new.push(id.clone());
                    self.to_ingest.insert(id.clone());
                    write_spec(&self.dir, &spec)?;
                }
                Some(old) => {
                    let was_retired = old.provenance.as_ref().is_some_and(|p| p.retired.is_some());
                    // What the operator set on the file (how to read it) is kept.
                    spec.csv = old.csv.clone();
                    spec.columns = old.columns.clone();
                    spec.layout = old.layout.clone();
                    spec.refresh = old.refresh.clone();
                    if source_changed(old, &spec) || was_retired {
                        self.report.changed.push(id.clone());
                        self.to_ingest.insert(id.clone());
                    } else {
                        self.report.unchanged += 1;
                    }
                    if without_paths(old) != without_paths(&spec) {
                        write_spec(&self.dir, &spec)?;
                    }
                }
            }
            self.existing.insert(id, spec);
        }
        self.next_state.packages.insert(
            package.id,
            PackageState {
                modified: package.modified,
                datasets,
            },
        );
        Ok(())
    }

    /// Retires this harvest's datasets the portal no longer lists (when the listing is
    /// complete), and removes the retired ones whose versions have expired.
    async fn retire(&mut self, storage: &Storage, keep_ms: u64) -> Result<()> {
        let now = chrono::Utc::now();
        let ids: Vec<String> = self.existing.keys().cloned().collect();
        for id in ids {
            if self.seen.contains(&id) {
                continue;
            }
            let Some(mut spec) = self.existing.get(&id).cloned() else {
                continue;
            };
            let Some(p) = spec.provenance.as_mut() else {
                continue;
            };
            match p
                .retired
                .as_deref()
                .map(chrono::DateTime::parse_from_rfc3339)
            {
                None if self.listing_complete => {
                    p.retired = Some(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                    write_spec(&self.dir, &spec)?;
                    self.report.retired.push(id.clone());
                    self.existing.insert(id, spec);
                }
                Some(Ok(at)) if (now - at.to_utc()).num_milliseconds() >= keep_ms as i64 => {
                    std::fs::remove_file(self.dir.join(format!("{id}.toml")))?;
                    storage.delete_dataset(&id).await?;
                    self.report.removed.push(id.clone());
                    self.existing.remove(&id);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Ingests the new and changed datasets, and those still without a version (a failed
    /// ingest is tried again on the next run).
    async fn ingest(
        &mut self,
        storage: &Storage,
        settings: &Settings,
        progress: &(dyn Fn(&str) + Sync),
    ) {
        for id in &self.seen {
            if !self.to_ingest.contains(id)
                && matches!(
                    storage.read_pointer(id, None).await,
                    Ok(PointerRead::Missing)
                )
            {
                self.to_ingest.insert(id.clone());
            }
        }
        let total = self.to_ingest.len();
        for (n, id) in self.to_ingest.iter().enumerate() {
            let Some(spec) = self.existing.get(id) else {
                continue;
            };
            progress(&format!(
                "[{}/{total}] ingesting {id} from {}",
                n + 1,
                spec.source
            ));
            match ingest::ingest(spec, storage, &settings.ingest, false).await {
                Ok(outcome) => {
                    match outcome {
                        ingest::Outcome::Ingested(_) => self.report.ingested += 1,
                        // The portal's dates moved (a package edit stands in for a resource's
                        // null `last_modified`), but the bytes are the same: not a change.
                        ingest::Outcome::Unchanged(_) => {
                            if let Some(at) = self.report.changed.iter().position(|c| c == id) {
                                self.report.changed.remove(at);
                                self.report.unchanged += 1;
                            }
                        }
                    }
                    progress(&format!("[{}/{total}] {}", n + 1, outcome.summary()));
                }
                Err(e) => {
                    let why = match e {
                        Error::Ingest { source, .. } => source.to_string(),
                        other => other.to_string(),
                    };
                    progress(&format!("[{}/{total}] {id} failed: {why}", n + 1));
                    self.report.failed.push((id.clone(), why));
                }
            }
        }
    }

    fn save_state(&mut self) -> Result<()> {
        // Packages not listed this time (an incomplete listing) keep what was known of them.
        for (id, before) in std::mem::take(&mut self.state.packages) {
            self.next_state.packages.entry(id).or_insert(before);
        }
        let path = state_path(&self.dir, &self.key);
        let body = serde_json::to_vec_pretty(&self.next_state)?;
        write_atomically(&path, &body)
    }
}

/// Whether what the portal says of the resource changed: its URL, date, checksum or size.
fn source_changed(old: &DatasetSpec, new: &DatasetSpec) -> bool {
    let facts = |s: &DatasetSpec| {
        s.provenance.as_ref().map(|p| {
            (
                p.url.clone(),
                p.modified.clone(),
                p.checksum.clone(),
                p.size,
            )
        })
    };
    old.source != new.source || facts(old) != facts(new)
}

/// A spec without what loading it adds, to compare a file with what would be written.
fn without_paths(spec: &DatasetSpec) -> DatasetSpec {
    DatasetSpec {
        base_dir: PathBuf::new(),
        ..spec.clone()
    }
}

fn state_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(".harvest").join(format!("{key}.json"))
}

/// Writes a dataset file, whole or not at all (a reader never sees half a file).
fn write_spec(dir: &Path, spec: &DatasetSpec) -> Result<()> {
    let text = toml::to_string(spec)
        .map_err(|e| Error::internal(format!("dataset `{}` cannot be written: {e}", spec.id)))?;
    let header = format!(
        "# Written by `qanat harvest`; [csv], [columns], [layout] and refresh set here are kept.\n{text}"
    );
    write_atomically(&dir.join(format!("{}.toml", spec.id)), header.as_bytes())
}

fn write_atomically(path: &Path, body: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temp, body)?;
    temp.persist(path).map_err(|e| Error::Io(e.error))?;
    Ok(())
}
