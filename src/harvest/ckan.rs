//! CKAN's action API as real portals answer it: `{help, success, result}`, but also
//! `success: false` with HTTP 200, a proxy's `{status, message, result}` with no `success`, a
//! bare JSON string for an unknown action, an HTML page from a firewall. Packages are read into
//! tabular [`Resource`]s and [`Skipped`] ones.

use serde_json::Value;

use super::portal::{Portal, join, parse};
use super::{Filters, Listing, MAX_FAILED_PAGES, Package, Resource, Skipped, classify, text};

/// The `result` of an action's answer, or what went wrong, in words.
pub fn result(body: &[u8]) -> Result<Value, String> {
    let v = parse(body)?;
    match &v {
        Value::String(s) => Err(format!("the portal refused the call: {s}")),
        Value::Object(m) if m.get("success") == Some(&Value::Bool(false)) => {
            let error = m.get("error").cloned().unwrap_or(Value::Null);
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| error.to_string());
            Err(format!("the portal answered success: false: {message}"))
        }
        Value::Object(m) => m
            .get("result")
            .cloned()
            .ok_or_else(|| "the portal's answer has no `result`".to_string()),
        _ => Err("the portal's answer is not a JSON object".into()),
    }
}

/// The action API of a portal named by its site (`https://data.gov.ma/data`) or by its API
/// base (`…/api/3/action`): the first of them where `status_show` answers.
pub async fn api_base(portal: &Portal, url: &url::Url) -> Result<url::Url, String> {
    let path = url.path().trim_end_matches('/');
    let candidates: Vec<url::Url> = if path.ends_with("/action") {
        vec![url.clone()]
    } else {
        vec![join(url, "api/3/action"), join(url, "api/action")]
    };
    let mut why = Vec::new();
    for base in candidates {
        let status = join(&base, "status_show");
        match portal.get(&status).await.and_then(|b| result(&b)) {
            Ok(v) if v.is_object() => return Ok(base),
            Ok(_) => why.push(format!("{status}: not a CKAN status")),
            Err(e) => why.push(format!("{status}: {e}")),
        }
    }
    Err(format!(
        "{url} is not a CKAN portal or its action API ({})",
        why.join("; ")
    ))
}

/// Every package `package_search` lists for these filters, `rows` at a time in a stable order
/// (`id asc`: the default order moves as packages are edited). A page that fails is reported
/// and the next one asked for; the listing is then incomplete.
pub async fn list(
    portal: &Portal,
    api: &url::Url,
    site: &str,
    filters: &Filters,
    rows: usize,
) -> Listing {
    let mut listing = Listing::default();
    let mut start = 0usize;
    let mut count: Option<usize> = None;
    loop {
        let mut url = join(api, "package_search");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("rows", &rows.to_string())
                .append_pair("start", &start.to_string())
                .append_pair("sort", "id asc");
            if let Some(org) = &filters.organization {
                q.append_pair("fq", &format!("organization:\"{org}\""));
            }
            if let Some(text) = &filters.query {
                q.append_pair("q", text);
            }
        }
        let page = portal.get(&url).await.and_then(|b| result(&b));
        let results = page.as_ref().ok().and_then(|p| {
            let n = p.get("count").and_then(Value::as_u64)?;
            Some((n as usize, p.get("results")?.as_array()?.clone()))
        });
        match (page, results) {
            (Ok(_), Some((n, packages))) => {
                count = Some(n);
                let empty = packages.is_empty();
                for p in &packages {
                    listing.packages.push(package(p, site));
                }
                if empty {
                    break;
                }
            }
            (Ok(_), None) => {
                listing.fail(format!("{url}: the answer has no `count` and `results`"));
            }
            (Err(e), _) => listing.fail(e),
        }
        start += rows;
        // Without a first page there is no count to page up to.
        if count.is_none_or(|n| start >= n) || listing.errors.len() > MAX_FAILED_PAGES {
            break;
        }
    }
    listing
}

/// One package read into a [`Package`]: its tabular resources and the others, skipped.
pub fn package(value: &Value, portal: &str) -> Package {
    let (resources, skipped) = resources(value, portal);
    let id = text(value, "id").unwrap_or_default();
    Package {
        name: text(value, "name").unwrap_or_else(|| id.clone()),
        modified: text(value, "metadata_modified"),
        id,
        resources,
        skipped,
    }
}

/// A text field, or else its translations (ckanext-fluent, as on data.gov.ma: `title_translated`
/// = `{"fr": …, "ar": …}`), French first, then English, then any.
fn translated(v: &Value, key: &str) -> Option<String> {
    text(v, key).or_else(|| {
        let t = v.get(format!("{key}_translated"))?;
        ["fr", "en"]
            .iter()
            .find_map(|lang| text(t, lang))
            .or_else(|| t.as_object()?.keys().find_map(|lang| text(t, lang)))
    })
}

/// The tabular resources of one package (from `package_search` or `package_show`), and the
/// ones left out with the reason.
pub fn resources(package: &Value, portal: &str) -> (Vec<Resource>, Vec<Skipped>) {
    let package_id = text(package, "id").unwrap_or_default();
    let package_name = text(package, "name").unwrap_or_else(|| package_id.clone());
    let producer = package
        .get("organization")
        .and_then(|o| text(o, "title").or_else(|| text(o, "name")))
        .or_else(|| text(package, "author"));
    let keywords: Vec<String> = package
        .get("tags")
        .and_then(Value::as_array)
        .map(|tags| tags.iter().filter_map(|t| text(t, "name")).collect())
        .unwrap_or_default();
    let (mut kept, mut skipped) = (Vec::new(), Vec::new());
    let listed = package.get("resources").and_then(Value::as_array);
    if listed.is_none_or(|r| r.is_empty()) {
        skipped.push(Skipped {
            package: package_name.clone(),
            resource: String::new(),
            reason: "the package has no resources".into(),
        });
    }
    for r in listed.into_iter().flatten() {
        let resource_id = text(r, "id").unwrap_or_default();
        let url = text(r, "url").unwrap_or_default();
        let format = text(r, "format");
        let mimetype = text(r, "mimetype");
        let kind = match classify(format.as_deref(), mimetype.as_deref(), &url) {
            Ok(kind) => kind,
            Err(reason) => {
                skipped.push(Skipped {
                    package: package_name.clone(),
                    resource: translated(r, "name").unwrap_or(resource_id),
                    reason,
                });
                continue;
            }
        };
        kept.push(Resource {
            kind,
            portal: portal.to_string(),
            portal_kind: "ckan",
            package_id: package_id.clone(),
            package_name: package_name.clone(),
            package_title: translated(package, "title").unwrap_or_default(),
            name: translated(r, "name").unwrap_or_default(),
            description: translated(r, "description")
                .or_else(|| translated(package, "notes"))
                .unwrap_or_default(),
            licence: text(package, "license_id"),
            producer: producer.clone(),
            keywords: keywords.clone(),
            // `last_modified` is often null: the package's date stands in.
            modified: text(r, "last_modified")
                .or_else(|| text(r, "metadata_modified"))
                .or_else(|| text(package, "metadata_modified")),
            checksum: text(r, "hash"),
            size: r.get("size").and_then(Value::as_u64),
            resource_id,
            url,
        });
    }
    (kept, skipped)
}
