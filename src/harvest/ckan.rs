//! CKAN's action API as real portals answer it: `{help, success, result}`, but also
//! `success: false` with HTTP 200, a proxy's `{status, message, result}` with no `success`, a
//! bare JSON string for an unknown action, an HTML page from a firewall. Packages are read into
//! tabular [`Resource`]s and [`Skipped`] ones.

use serde_json::Value;

use super::{Resource, Skipped, classify};

/// The `result` of an action's answer, or what went wrong, in words.
pub fn result(body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        let start = String::from_utf8_lossy(&body[..body.len().min(80)])
            .trim()
            .to_string();
        if start.starts_with('<') {
            format!("the portal answered an HTML page, not JSON: `{start}`")
        } else {
            format!("the portal's answer is not JSON (truncated?): `{start}`")
        }
    })?;
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

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
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
                    resource: text(r, "name").unwrap_or(resource_id),
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
            package_title: text(package, "title").unwrap_or_default(),
            name: text(r, "name").unwrap_or_default(),
            description: text(r, "description")
                .or_else(|| text(package, "notes"))
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
