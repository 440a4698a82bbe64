//! udata's API (data.gouv.fr) as it answers: no envelope, pages of `{data, next_page, …}` (an
//! organisation's datasets were a plain array in 2017), resources with UUIDs (kept as the
//! datasets' `resource_id`, so that `/api/resources/{uuid}/…` answers as data.gouv.fr's tabular
//! API does), `checksum` objects, `filesize`, and naive or zoned timestamps.

use serde_json::Value;

use super::portal::{Portal, join};
use super::{Listing, MAX_FAILED_PAGES, Package, Resource, Skipped, classify, text};

/// Pages followed at most through `next_page`.
const MAX_PAGES: usize = 10_000;

/// The API base of a portal named by its site (`https://www.data.gouv.fr`) or its API base
/// (`…/api/1`).
pub fn api_base(url: &url::Url) -> url::Url {
    if url.path().trim_end_matches('/').ends_with("/api/1") {
        url.clone()
    } else {
        join(url, "api/1")
    }
}

/// What a udata harvest reads: an organisation's datasets, or one dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Organization(String),
    Dataset(String),
}

/// The datasets of the selection, `page_size` a page (data.gouv.fr answers 1,000; 10,000 gives
/// a 502).
pub async fn list(
    portal: &Portal,
    api: &url::Url,
    site: &str,
    selection: &Selection,
    page_size: usize,
) -> Listing {
    let mut listing = Listing::default();
    let first = match selection {
        Selection::Dataset(id) => {
            let url = join(api, &format!("datasets/{id}/"));
            match portal.json(&url).await.and_then(|v| not_an_error(v, &url)) {
                Ok(dataset) => listing.packages.push(package(&dataset, site)),
                Err(e) => listing.fail(e),
            }
            return listing;
        }
        Selection::Organization(org) => {
            let mut url = join(api, &format!("organizations/{org}/datasets/"));
            url.query_pairs_mut()
                .append_pair("page_size", &page_size.to_string());
            url
        }
    };
    let mut next = Some(first);
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        match portal.json(&url).await.and_then(|v| not_an_error(v, &url)) {
            Ok(Value::Array(datasets)) => {
                for d in &datasets {
                    listing.packages.push(package(d, site));
                }
            }
            Ok(page) => match page.get("data").and_then(Value::as_array) {
                Some(datasets) => {
                    for d in datasets {
                        listing.packages.push(package(d, site));
                    }
                    next = page
                        .get("next_page")
                        .and_then(Value::as_str)
                        .and_then(|n| url.join(n).ok());
                }
                None => listing.fail(format!("{url}: the answer has no `data` list")),
            },
            // A page that failed cannot say where the next one is.
            Err(e) => listing.fail(e),
        }
        if pages >= MAX_PAGES || listing.errors.len() > MAX_FAILED_PAGES {
            if next.is_some() {
                listing.fail(format!("stopped after {pages} pages"));
            }
            break;
        }
    }
    listing
}

/// udata's errors are `{"message": …}` objects (with a 404 status).
fn not_an_error(v: Value, url: &url::Url) -> Result<Value, String> {
    match v.get("message").and_then(Value::as_str) {
        Some(m) if v.get("id").is_none() && v.get("data").is_none() => {
            Err(format!("{url}: the portal answered: {m}"))
        }
        _ => Ok(v),
    }
}

/// One dataset read into a [`Package`].
pub fn package(dataset: &Value, site: &str) -> Package {
    let id = text(dataset, "id").unwrap_or_default();
    let name = text(dataset, "slug").unwrap_or_else(|| id.clone());
    let modified = text(dataset, "last_update").or_else(|| text(dataset, "last_modified"));
    let mut package = Package {
        id: id.clone(),
        name: name.clone(),
        modified,
        resources: Vec::new(),
        skipped: Vec::new(),
    };
    let skip = |resource: String, reason: String| Skipped {
        package: name.clone(),
        resource,
        reason,
    };
    if !dataset.is_object() {
        package.skipped.push(skip(
            String::new(),
            "the dataset is not a JSON object".into(),
        ));
        return package;
    }
    if dataset.get("deleted").is_some_and(|d| !d.is_null()) {
        package
            .skipped
            .push(skip(String::new(), "the dataset is deleted".into()));
        return package;
    }
    let producer = dataset
        .get("organization")
        .and_then(|o| text(o, "name").or_else(|| text(o, "slug")))
        .or_else(|| {
            let owner = dataset.get("owner")?;
            let first = text(owner, "first_name").unwrap_or_default();
            let last = text(owner, "last_name").unwrap_or_default();
            Some(format!("{first} {last}").trim().to_string()).filter(|s| !s.is_empty())
        });
    let keywords: Vec<String> = dataset
        .get("tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let listed = dataset.get("resources").and_then(Value::as_array);
    if listed.is_none_or(|r| r.is_empty()) {
        package
            .skipped
            .push(skip(String::new(), "the dataset has no resources".into()));
    }
    for r in listed.into_iter().flatten() {
        let resource_id = text(r, "id").unwrap_or_default();
        let title = text(r, "title").unwrap_or_default();
        let url = text(r, "url").unwrap_or_default();
        let kind = match classify(
            text(r, "format").as_deref(),
            text(r, "mime").as_deref(),
            &url,
        ) {
            Ok(kind) => kind,
            Err(reason) => {
                let named = if title.is_empty() { resource_id } else { title };
                package.skipped.push(skip(named, reason));
                continue;
            }
        };
        package.resources.push(Resource {
            kind,
            portal: site.to_string(),
            portal_kind: "udata",
            package_id: id.clone(),
            package_name: name.clone(),
            package_title: text(dataset, "title").unwrap_or_default(),
            name: title,
            description: text(r, "description")
                .or_else(|| text(dataset, "description"))
                .unwrap_or_default(),
            licence: text(dataset, "license"),
            producer: producer.clone(),
            keywords: keywords.clone(),
            modified: text(r, "last_modified").or_else(|| text(r, "created_at")),
            checksum: r.get("checksum").and_then(|c| text(c, "value")),
            size: r.get("filesize").and_then(Value::as_u64),
            resource_id,
            url,
        });
    }
    package
}
