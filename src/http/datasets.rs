//! `GET /api/datasets`, `/api/datasets/{id}` and `/api/datasets/{id}/profile`: the catalog and
//! each dataset's metadata, ingest report and profile.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::base_url;
use crate::catalog::Entry;
use crate::config::Limits;
use crate::dataset::manifest::{ColumnProfile, IngestReport, VersionInfo};
use crate::dataset::schema::Column;
use crate::error::{Error, Problem, Result};
use crate::query::{facets, params};
use crate::state::AppState;

/// A dataset in the catalog listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetSummary {
    pub id: String,
    pub title: String,
    pub description: String,
    pub licence: Option<String>,
    pub producer: Option<String>,
    pub keywords: Vec<String>,
    /// The portal's resource id the dataset file declares: `/api/resources/{resource_id}/`
    /// and CKAN's `datastore_search?resource_id=` answer by it (as by the dataset id).
    pub resource_id: Option<String>,
    /// Rows of the current version; null before the first successful ingest.
    pub rows: Option<u64>,
    pub version: Option<String>,
    #[schema(value_type = Object)]
    pub links: Value,
}

/// `GET /api/datasets`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetList {
    pub data: Vec<DatasetSummary>,
    #[schema(value_type = Object)]
    pub links: Value,
    pub meta: ListMeta,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListMeta {
    pub page: u64,
    pub page_size: u64,
    pub total: u64,
}

/// `GET /api/datasets/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatasetDetail {
    #[serde(flatten)]
    pub summary: DatasetSummary,
    pub source: String,
    pub created_at: Option<String>,
    pub schema: Vec<Column>,
    pub report: Option<IngestReport>,
    /// The versions kept, newest first; the current one is `version`.
    pub versions: Vec<VersionInfo>,
    /// Why the last ingest failed, while the previous version (if any) is still served.
    pub last_error: Option<String>,
    /// Facets worth asking for (`facets=` on the data route), from the profile: columns with
    /// few distinct values that repeat, dates by `:month` or `:year`. Never computed unasked.
    pub suggested_facets: Vec<String>,
}

/// `GET /api/datasets/{id}/profile`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub id: String,
    pub version: String,
    pub rows: u64,
    pub columns: Vec<ColumnProfile>,
}

fn summary(entry: &Entry, base: &str) -> DatasetSummary {
    let spec = &entry.spec;
    let current = entry.current();
    let id = &spec.id;
    DatasetSummary {
        id: id.clone(),
        title: spec.title.clone(),
        description: spec.description.clone(),
        licence: spec.licence.clone(),
        producer: spec.producer.clone(),
        keywords: spec.keywords.clone(),
        resource_id: spec.resource_id.clone(),
        rows: current.as_ref().map(|l| l.manifest.rows),
        version: current.as_ref().map(|l| l.manifest.version.clone()),
        links: json!({
            "self": format!("{base}/api/datasets/{id}"),
            "data": format!("{base}/api/datasets/{id}/data"),
            "csv": format!("{base}/api/datasets/{id}/data.csv"),
            "profile": format!("{base}/api/datasets/{id}/profile"),
            "openapi": format!("{base}/api/datasets/{id}/openapi.json"),
        }),
    }
}

/// Words of a catalog search, folded as API names are (case and accents ignored).
pub fn search_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(crate::dataset::names::normalize)
        .filter(|w| !w.is_empty())
        .collect()
}

/// The datasets whose id, title, description, producer or keywords hold every word.
pub fn matching(state: &AppState, words: &[String]) -> Vec<std::sync::Arc<Entry>> {
    filtered(state, words, None, None)
}

/// The datasets holding every word, of this producer, with this keyword (case and accents
/// ignored); none of it reads data.
fn filtered(
    state: &AppState,
    words: &[String],
    producer: Option<&str>,
    keyword: Option<&str>,
) -> Vec<std::sync::Arc<Entry>> {
    use crate::dataset::names::normalize;
    let producer = producer.map(normalize);
    let keyword = keyword.map(normalize);
    state
        .catalog
        .entries()
        .into_iter()
        .filter(|e| e.spec.retired().is_none())
        .filter(|e| {
            let s = &e.search;
            let of_producer = producer.is_none() || s.producer == producer;
            let with_keyword = keyword.as_ref().is_none_or(|k| s.keywords.contains(k));
            of_producer && with_keyword && words.iter().all(|w| s.words.contains(w.as_str()))
        })
        .collect()
}

/// A request of the catalog: the page, and the words searched.
struct ListQuery {
    page: u64,
    page_size: u64,
    words: Vec<String>,
    producer: Option<String>,
    keyword: Option<String>,
}

impl ListQuery {
    /// Parses a raw query string; page sizes follow the configured limits, as on data routes.
    fn parse(raw: &str, limits: &Limits) -> Result<Self> {
        let mut q = ListQuery {
            page: 1,
            page_size: limits.default_page_size,
            words: Vec::new(),
            producer: None,
            keyword: None,
        };
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            match k.as_ref() {
                "page" => q.page = params::page_number(&v)?,
                "page_size" => q.page_size = params::page_size(&v, limits.max_page_size)?,
                "q" => q.words = search_words(&v),
                "producer" => q.producer = Some(v.into_owned()),
                "keyword" => q.keyword = Some(v.into_owned()),
                "" => {}
                other => {
                    return Err(Error::bad_request(format!(
                        "unknown parameter `{other}`; valid parameters are page, page_size, q, producer and keyword"
                    )));
                }
            }
        }
        Ok(q)
    }
}

/// The catalog, paged and searchable.
#[utoipa::path(get, path = "/api/datasets", tag = "datasets",
    params(
        ("page" = Option<u64>, Query, minimum = 1, description = "1-based page (default 1)"),
        ("page_size" = Option<u64>, Query, minimum = 1, description = "datasets a page (default 20, at most 1000 unless configured)"),
        ("q" = Option<String>, Query, description = "words that must all appear in the id, title, description, producer or keywords (case and accents ignored)"),
        ("producer" = Option<String>, Query, description = "only this producer's datasets (case and accents ignored)"),
        ("keyword" = Option<String>, Query, description = "only datasets with this keyword (case and accents ignored)"),
    ),
    responses(
        (status = 200, description = "A page of the catalog", body = DatasetList),
        (status = 400, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<DatasetList>> {
    let base = base_url(&headers, &state.settings);
    Ok(Json(
        catalog_page(&state, &raw.unwrap_or_default(), &base).await?,
    ))
}

/// A page of the catalog for a raw query string (the API's and the explorer's).
pub async fn catalog_page(state: &AppState, raw: &str, base: &str) -> Result<DatasetList> {
    let ListQuery {
        page,
        page_size,
        words,
        producer,
        keyword,
    } = ListQuery::parse(raw, &state.settings.limits)?;
    let matching = filtered(state, &words, producer.as_deref(), keyword.as_deref());
    let total = matching.len() as u64;
    let skip = (page - 1).saturating_mul(page_size);
    let listed: Vec<_> = matching
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(page_size as usize)
        .collect();
    // The page's versions are opened if they were not yet (a catalog of thousands is opened
    // as it is asked for); what cannot be opened shows no rows.
    futures::future::join_all(listed.iter().map(|e| state.catalog.opened(e))).await;
    let data: Vec<DatasetSummary> = listed.iter().map(|e| summary(e, base)).collect();
    let link = |p: u64| {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        ser.append_pair("page", &p.to_string())
            .append_pair("page_size", &page_size.to_string());
        if !words.is_empty() {
            ser.append_pair("q", &words.join(" "));
        }
        for (key, value) in [("producer", &producer), ("keyword", &keyword)] {
            if let Some(v) = value {
                ser.append_pair(key, v);
            }
        }
        format!("{base}/api/datasets?{}", ser.finish())
    };
    let links = json!({
        "self": link(page),
        "next": (skip.saturating_add(page_size) < total).then(|| link(page + 1)),
        "prev": (page > 1).then(|| link(page - 1)),
        "openapi": format!("{base}/openapi.json"),
    });
    Ok(DatasetList {
        data,
        links,
        meta: ListMeta {
            page,
            page_size,
            total,
        },
    })
}

/// A dataset's metadata: schema, row count, version, source and ingest report.
#[utoipa::path(get, path = "/api/datasets/{id}", tag = "datasets",
    params(("id" = String, Path, description = "Dataset id")),
    responses(
        (status = 200, description = "The dataset", body = DatasetDetail),
        (status = 404, description = "No such dataset", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<DatasetDetail>> {
    let base = base_url(&headers, &state.settings);
    Ok(Json(detail(&state, &id, &base).await?))
}

/// A dataset's metadata (the API's and the explorer's).
pub async fn detail(state: &AppState, id: &str, base: &str) -> Result<DatasetDetail> {
    let entry = state.catalog.entry(id)?;
    // What cannot be opened is said in `last_error`.
    let _ = state.catalog.opened(&entry).await;
    let current = entry.current();
    let m = current.as_ref().map(|l| &l.manifest);
    Ok(DatasetDetail {
        summary: summary(&entry, base),
        source: m.map_or_else(|| entry.spec.source.clone(), |m| m.source.uri.clone()),
        created_at: m.map(|m| m.created_at.clone()),
        schema: m.map(|m| m.schema.clone()).unwrap_or_default(),
        report: m.map(|m| m.report.clone()),
        versions: current
            .as_ref()
            .map(|l| l.versions.clone())
            .unwrap_or_default(),
        last_error: entry.last_error().map(|e| e.to_string()),
        suggested_facets: m.map(facets::suggested).unwrap_or_default(),
    })
}

/// Per column: type, null count, minimum and maximum, computed at ingest.
#[utoipa::path(get, path = "/api/datasets/{id}/profile", tag = "datasets",
    params(("id" = String, Path, description = "Dataset id")),
    responses(
        (status = 200, description = "The profile of the current version", body = Profile),
        (status = 404, description = "No such dataset", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The dataset has no data yet", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn profile(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Profile>> {
    let loaded = state.catalog.serving(&id).await?;
    let m = &loaded.manifest;
    Ok(Json(Profile {
        id: m.id.clone(),
        version: m.version.clone(),
        rows: m.rows,
        columns: m.profile.clone(),
    }))
}

/// The dataset's typed OpenAPI document, written from its current version.
pub fn dataset_document(state: &AppState, entry: &Entry) -> Result<Value> {
    let loaded = state.catalog.loaded(&entry.spec.id)?;
    let subject = crate::openapi::dataset::Subject {
        id: &entry.spec.id,
        rid: entry.spec.resource_id.as_deref().unwrap_or(&entry.spec.id),
        title: &entry.spec.title,
        manifest: &loaded.manifest,
        limits: &state.settings.limits,
    };
    Ok(crate::openapi::dataset::document(&subject))
}

/// The dataset's own OpenAPI 3.1 document: its rows typed column by column, one parameter per
/// column and operator, on the native routes and the tabular API's.
#[utoipa::path(get, path = "/api/datasets/{id}/openapi.json", tag = "datasets",
    params(("id" = String, Path, description = "Dataset id")),
    responses(
        (status = 200, description = "An OpenAPI 3.1 document", body = Object),
        (status = 404, description = "No such dataset", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The dataset has no data yet", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn openapi(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>> {
    let entry = state.catalog.entry(&id)?;
    state.catalog.opened(&entry).await?;
    Ok(Json(dataset_document(&state, &entry)?))
}
