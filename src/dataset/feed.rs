//! Feeds: an archive (a GTFS feed, any zip of CSV files) whose files are each served as a
//! dataset `{feed}-{file}`, all versioned as one. A feed version writes every file's version
//! under the same version id, then its manifest, then switches the feed's one pointer: the
//! files' datasets read their current version from it, so they switch together.

use serde::{Deserialize, Serialize};

use super::manifest::SourceInfo;
use super::names::slugify;
use super::spec::{DatasetSpec, Member};

/// The manifest of a feed version, written after every file's version, before the pointer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeedManifest {
    pub id: String,
    pub version: String,
    pub created_at: String,
    pub source: SourceInfo,
    pub options_digest: String,
    /// Whether the archive is a GTFS feed (read with the GTFS reference's types).
    pub gtfs: bool,
    /// The files served, in archive order.
    pub members: Vec<FeedFile>,
    /// What a reader should know: files left out and why, references that lead nowhere.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// One file of a feed and the dataset serving it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FeedFile {
    pub file: String,
    pub dataset: String,
}

/// The name of a feed version's manifest, in the feed's version directory.
pub const FEED_MANIFEST: &str = "feed.json";

/// The dataset id of a feed's file: `stop_times.txt` of `nyc-subway` is `nyc-subway-stop-times`.
pub fn member_id(feed: &str, file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let stem = base.rsplit_once('.').map_or(base, |(s, _)| s);
    format!("{feed}-{}", slugify(stem))
}

/// Whether an archive entry is a table to serve: a `.txt`, `.csv` or `.tsv` file, not a
/// folder, not the metadata macOS adds to archives.
pub fn is_table(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let base = lower.rsplit('/').next().unwrap_or(&lower);
    !lower.starts_with("__macosx/")
        && !base.starts_with('.')
        && [".txt", ".csv", ".tsv"].iter().any(|x| base.ends_with(x))
}

/// The entries of an archive that are served, in archive order, and those left out because an
/// earlier one has the same dataset id (`a/stops.txt` and `b/stops.txt`).
pub fn served_tables<'a>(names: impl IntoIterator<Item = &'a str>) -> (Vec<String>, Vec<String>) {
    let (mut served, mut repeated) = (Vec::new(), Vec::new());
    let mut ids = std::collections::BTreeSet::new();
    for name in names.into_iter().filter(|n| is_table(n)) {
        if ids.insert(member_id("", name)) {
            served.push(name.to_string());
        } else {
            repeated.push(name.to_string());
        }
    }
    (served, repeated)
}

/// The dataset serving one file of a feed: the feed's metadata, its own id and title, the
/// GTFS reference's description of the file.
pub fn member_spec(feed: &DatasetSpec, file: &str) -> DatasetSpec {
    let mut spec = feed.clone();
    spec.id = member_id(&feed.id, file);
    let base = file.rsplit('/').next().unwrap_or(file);
    let title = if feed.title.is_empty() {
        feed.id.clone()
    } else {
        feed.title.clone()
    };
    spec.title = format!("{title}: {base}");
    let about = super::gtfs::file(file).map(|f| f.about);
    spec.description = match (about, feed.description.is_empty()) {
        (Some(about), true) => about.to_string(),
        (Some(about), false) => format!("{about}. {}", feed.description),
        (None, _) => feed.description.clone(),
    };
    // A feed's `resource_id` names the feed; a file has none of its own.
    spec.resource_id = None;
    spec.columns = Default::default();
    spec.kind = None;
    spec.member = Some(Member {
        feed: feed.id.clone(),
        file: file.to_string(),
    });
    spec
}

/// The files of a local archive that would be served, in archive order (none when it cannot
/// be read: its ingest then says why).
pub fn local_tables(path: &std::path::Path) -> Vec<String> {
    let Ok(file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let Ok(archive) = zip::ZipArchive::new(std::io::BufReader::new(file)) else {
        return Vec::new();
    };
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok())
        .map(|n| n.into_owned())
        .collect();
    served_tables(names.iter().map(String::as_str)).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_become_datasets() {
        assert_eq!(
            member_id("nyc-subway", "stop_times.txt"),
            "nyc-subway-stop-times"
        );
        assert_eq!(
            member_id("f", "gtfs/Calendar_Dates.TXT"),
            "f-calendar-dates"
        );
        assert!(is_table("gtfs/stops.txt"));
        assert!(!is_table("__MACOSX/._stops.txt"));
        assert!(!is_table("shapes.geojson"));
        let (served, repeated) =
            served_tables(["a/stops.txt", "readme.pdf", "b/stops.txt", "b/trips.txt"]);
        assert_eq!(
            (served, repeated),
            (
                vec!["a/stops.txt".to_string(), "b/trips.txt".into()],
                vec!["b/stops.txt".to_string()]
            )
        );
        let mut feed = DatasetSpec::for_source("nyc", "nyc.zip");
        feed.title = "NYC subway".into();
        feed.resource_id = Some("r1".into());
        let m = member_spec(&feed, "stops.txt");
        assert_eq!(m.id, "nyc-stops");
        assert_eq!(m.title, "NYC subway: stops.txt");
        assert!(m.description.starts_with("Stops, stations"));
        assert_eq!(m.pointer_id(), "nyc");
        assert_eq!(m.resource_id, None);
        assert!(feed.is_feed() && !m.is_feed());
    }
}
