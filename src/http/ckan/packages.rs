//! The catalog as CKAN packages: one package a dataset, with one resource.

use serde_json::{Value, json};

use super::{Call, Failure, Outcome};
use crate::catalog::Entry;
use crate::dataset::names::slugify;
use crate::error::Error;

impl Call<'_> {
    /// `package_list`: dataset ids, `limit`/`offset` optional.
    pub(super) fn package_list(&self) -> Outcome {
        let ids = self.state.catalog.ids();
        let offset = self.number("offset", 0, u64::MAX)? as usize;
        let limit = self.number("limit", u64::MAX, u64::MAX)?;
        let page: Vec<Value> = ids
            .into_iter()
            .skip(offset)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(Value::from)
            .collect();
        Ok(Value::Array(page))
    }

    /// `package_search`: `q` (words in id, title, description), `rows` (default 10, at most
    /// 1000), `start`.
    pub(super) async fn package_search(&self) -> Outcome {
        let words = super::super::datasets::search_words(&self.text("q").unwrap_or_default());
        let matching = super::super::datasets::matching(self.state, &words);
        let rows = self.number("rows", 10, 1000)? as usize;
        let start = self.number("start", 0, u64::MAX)? as usize;
        let page: Vec<_> = matching.iter().skip(start).take(rows).collect();
        for e in &page {
            // What cannot be opened has no creation date; its error is the dataset's.
            let _ = self.state.catalog.opened(e).await;
        }
        let results: Vec<Value> = page.into_iter().map(|e| self.package(e)).collect();
        Ok(json!({
            "count": matching.len(),
            "results": results,
            "sort": "name asc",
            "facets": {},
            "search_facets": {},
        }))
    }

    /// `package_show`: `id` is the dataset id.
    pub(super) async fn package_show(&self) -> Outcome {
        let id = self.required(&["id", "name_or_id"])?;
        let entry = self
            .state
            .catalog
            .entry(&id)
            .map_err(|_| Failure::Action(Error::NotFound(format!("package `{id}`"))))?;
        let _ = self.state.catalog.opened(&entry).await;
        Ok(self.package(&entry))
    }

    /// `resource_show`: `id` is the resource id (or the dataset id).
    pub(super) async fn resource_show(&self) -> Outcome {
        let id = self.required(&["id"])?;
        let entry = self.state.catalog.resource(&id).map_err(|_| {
            Failure::Action(Error::NotFound(format!("Resource was not found: `{id}`")))
        })?;
        let _ = self.state.catalog.opened(&entry).await;
        Ok(self.resource(&entry))
    }

    /// A dataset as a CKAN package.
    pub(super) fn package(&self, entry: &Entry) -> Value {
        let spec = &entry.spec;
        let created = entry.current().map(|l| l.manifest.created_at.clone());
        let organization = spec.producer.as_ref().map(|p| {
            json!({"name": slugify(p), "title": p, "type": "organization", "is_organization": true, "state": "active"})
        });
        let tags: Vec<Value> = spec
            .keywords
            .iter()
            .map(|k| json!({"name": k, "display_name": k, "state": "active"}))
            .collect();
        json!({
            "id": spec.id,
            "name": spec.id,
            "title": spec.title,
            "notes": spec.description,
            "license_id": spec.licence,
            "license_title": spec.licence,
            "author": spec.producer,
            "maintainer": null,
            "organization": organization,
            "owner_org": organization.as_ref().map(|o| o["name"].clone()),
            "tags": tags,
            "num_tags": spec.keywords.len(),
            "resources": [self.resource(entry)],
            "num_resources": 1,
            "metadata_created": created,
            "metadata_modified": created,
            "state": "active",
            "type": "dataset",
            "private": false,
            "isopen": true,
            "url": "",
            "version": entry.current().map(|l| l.manifest.version.clone()),
            "extras": [],
        })
    }

    /// A dataset's one resource: its data, in the DataStore.
    pub(super) fn resource(&self, entry: &Entry) -> Value {
        let spec = &entry.spec;
        let rid = spec.resource_id.as_deref().unwrap_or(&spec.id);
        let current = entry.current();
        let m = current.as_ref().map(|l| &l.manifest);
        let url = if spec.source.contains("://") {
            spec.source.clone()
        } else {
            format!("{}/datastore/dump/{rid}", self.base)
        };
        json!({
            "id": rid,
            "package_id": spec.id,
            "name": spec.title,
            "description": spec.description,
            "url": url,
            "format": "CSV",
            "mimetype": "text/csv",
            "url_type": null,
            "datastore_active": current.is_some(),
            "created": m.map(|m| m.created_at.clone()),
            "last_modified": m.map(|m| m.created_at.clone()),
            "size": m.map(|m| m.source.bytes),
            "hash": m.map(|m| format!("sha256:{}", m.source.sha256)),
            "position": 0,
            "state": "active",
        })
    }
}
