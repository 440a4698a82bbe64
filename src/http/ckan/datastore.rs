//! `datastore_search`, `datastore_info` and `/datastore/dump/{rid}`: the rows of a dataset
//! through CKAN's DataStore API, read by the same executor as every other route.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{Args, Call, Failure, Outcome};
use crate::catalog::Entry;
use crate::dataset::manifest::Manifest;
use crate::dataset::schema::{Column, ColumnType, DATASTORE_ID, ROW_COLUMN};
use crate::encode::{self, BodyWriter, Format, Relabel};
use crate::error::{Error, Result};
use crate::http::data::Download;
use crate::http::etag;
use crate::query::Loaded;
use crate::query::datastore::{RecordsFormat, Search, field_names, search};
use crate::state::AppState;

/// PostgreSQL's name of a column type, as the DataStore reports it.
fn pg_type(kind: ColumnType, with_offset: bool) -> &'static str {
    match kind {
        ColumnType::String => "text",
        ColumnType::Integer => "int8",
        ColumnType::Float => "float8",
        ColumnType::Boolean => "bool",
        ColumnType::Date => "date",
        ColumnType::Datetime if with_offset => "timestamptz",
        ColumnType::Datetime => "timestamp",
    }
}

/// Output names on the DataStore: published headers, and `_id` for the row number.
fn relabel(m: &Manifest) -> Relabel {
    let names = m.schema.iter().map(|c| c.name.clone());
    Relabel::numbered(names.zip(field_names(&m.schema)), ROW_COLUMN, DATASTORE_ID)
}

/// `fields` of a result: `{"id", "type"}`, with the column's label and description as CKAN's
/// data dictionary `info` where there is one.
fn fields_info(m: &Manifest, fields: &[String]) -> Vec<Value> {
    let names = field_names(&m.schema);
    fields
        .iter()
        .map(|f| {
            if f == DATASTORE_ID {
                return json!({"id": DATASTORE_ID, "type": "int"});
            }
            let Some(i) = names.iter().position(|n| n == f) else {
                return json!({"id": f, "type": "text"});
            };
            let c: &Column = &m.schema[i];
            let mut field = json!({"id": f, "type": pg_type(c.kind, c.with_offset)});
            if let Some(notes) = &c.description {
                field["info"] = json!({"label": c.label, "notes": notes});
            }
            field
        })
        .collect()
}

/// The resource an argument names, and the version it reads.
async fn resource(state: &AppState, rid: &str) -> Result<(Arc<Entry>, Arc<Loaded>)> {
    let entry = state
        .catalog
        .resource(rid)
        .map_err(|_| Error::NotFound(format!("Resource \"{rid}\" was not found.")))?;
    let loaded = state.catalog.serving(&entry.spec.id).await?;
    Ok((entry, loaded))
}

impl Call<'_> {
    pub(super) async fn datastore_search(&self) -> Outcome {
        let rid = self.required(&["resource_id", "id"])?;
        let (_, loaded) = resource(self.state, &rid).await?;
        let m = &loaded.manifest;
        let s = search(self.args, &m.schema, &self.state.settings.limits, false)?;
        let page = self.state.executor.page(&loaded, &s.query).await?;
        let relabel = relabel(m);
        let batches = page
            .batches
            .iter()
            .map(|b| relabel.apply(b))
            .collect::<Result<Vec<_>>>()?;
        let shown: Vec<String> = match s.query.is_aggregate() {
            // Distinct rows have the fields asked, without `_id`.
            true => s
                .fields
                .iter()
                .filter(|f| *f != DATASTORE_ID)
                .cloned()
                .collect(),
            false => s.fields.clone(),
        };
        let mut result = Map::new();
        result.insert("include_total".into(), Value::Bool(s.include_total));
        result.insert("limit".into(), json!(s.limit));
        result.insert("records_format".into(), json!(s.records_format.name()));
        result.insert("resource_id".into(), json!(rid));
        result.insert("total_estimation_threshold".into(), Value::Null);
        result.insert("records".into(), records(&batches, s.records_format)?);
        result.insert("fields".into(), Value::Array(fields_info(m, &shown)));
        result.insert("_links".into(), self.links(&s));
        if s.include_total {
            result.insert("total".into(), json!(page.total));
            result.insert("total_was_estimated".into(), Value::Bool(false));
        }
        if self.args.contains_key("offset") {
            result.insert("offset".into(), json!(s.offset));
        }
        for (k, v) in s.echo {
            result.insert(k, v);
        }
        Ok(Value::Object(result))
    }

    /// `_links`: the request's own path and arguments with `offset` moved, as CKAN 2.9 writes
    /// them (relative, like its `CKAN_CURRENT_URL`).
    fn links(&self, s: &Search) -> Value {
        let path = format!("/api/3/action/{}", self.name);
        let args: Vec<(String, String)> = url::form_urlencoded::parse(self.raw.as_bytes())
            .filter(|(k, _)| k != "offset")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let with_offset = |offset: Option<u64>| {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &args {
                ser.append_pair(k, v);
            }
            if let Some(o) = offset {
                ser.append_pair("offset", &o.to_string());
            }
            let q = ser.finish();
            if q.is_empty() {
                path.clone()
            } else {
                format!("{path}?{q}")
            }
        };
        let limit = s.limit.unwrap_or(0);
        let mut links = json!({
            "start": with_offset(None),
            "next": with_offset(Some(s.offset + limit)),
        });
        if s.offset > limit {
            links["prev"] = json!(with_offset(Some(s.offset - limit)));
        }
        links
    }

    pub(super) async fn datastore_info(&self) -> Outcome {
        let rid = self.required(&["id", "resource_id"])?;
        let (_, loaded) = resource(self.state, &rid).await?;
        let m = &loaded.manifest;
        let names = field_names(&m.schema);
        // CKAN 2.9's coarse types, and the fields as newer versions list them.
        let schema: Map<String, Value> = names
            .iter()
            .zip(&m.schema)
            .map(|(n, c)| {
                let coarse = match c.kind {
                    ColumnType::Integer | ColumnType::Float => "number",
                    ColumnType::Date | ColumnType::Datetime => "date",
                    _ => "text",
                };
                (n.clone(), json!(coarse))
            })
            .collect();
        let fields = fields_info(m, &names);
        Ok(json!({"meta": {"count": m.rows}, "schema": schema, "fields": fields}))
    }
}

/// Records in the format asked: objects, lists of values in field order, or CSV/TSV text
/// without a header.
fn records(batches: &[arrow::record_batch::RecordBatch], format: RecordsFormat) -> Result<Value> {
    Ok(match format {
        RecordsFormat::Objects => serde_json::from_slice(&encode::json_array(batches)?)?,
        RecordsFormat::Lists => {
            let objects: Vec<Map<String, Value>> =
                serde_json::from_slice(&encode::json_array(batches)?)?;
            let lists = objects
                .into_iter()
                .map(|row| Value::Array(row.into_iter().map(|(_, v)| v).collect()));
            Value::Array(lists.collect())
        }
        RecordsFormat::Csv | RecordsFormat::Tsv => {
            let delimiter = if format == RecordsFormat::Csv {
                b','
            } else {
                b'\t'
            };
            let mut out = Vec::new();
            for b in batches {
                out.extend(encode::delimited(b, false, delimiter)?);
            }
            Value::String(String::from_utf8_lossy(&out).into_owned())
        }
    })
}

/// `GET /datastore/dump/{rid}`: the rows as CSV (default), TSV or JSON (`{"fields",
/// "records"}` with records as lists), streamed, with the filters, `q`, `sort`, `fields`,
/// `limit` and `offset` of `datastore_search`.
pub async fn dump(
    State(state): State<AppState>,
    Path(rid): Path<String>,
    RawQuery(raw): RawQuery,
) -> std::result::Result<Response, Error> {
    let raw = raw.unwrap_or_default();
    let mut args = Args::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        args.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    let (_, loaded) = resource(&state, &rid).await?;
    let m = &loaded.manifest;
    let s = search(&args, &m.schema, &state.settings.limits, true)?;
    let format = args
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("csv")
        .to_ascii_lowercase();
    let relabel = Some(Arc::new(relabel(m)));
    let (writer, content_type, ext) = match format.as_str() {
        "csv" => (
            BodyWriter::new(Format::Csv, relabel),
            "text/csv; charset=utf-8",
            "csv",
        ),
        "tsv" => (
            BodyWriter::new(Format::Tsv, relabel),
            "text/tab-separated-values; charset=utf-8",
            "tsv",
        ),
        "json" => {
            let fields = serde_json::to_string(&fields_info(m, &s.fields))?;
            let open = format!("{{\"fields\": {fields}, \"records\": [").into_bytes();
            let writer = BodyWriter::framed(Format::JsonLists, relabel, open, b"]}\n".to_vec());
            (writer, "application/json; charset=utf-8", "json")
        }
        other => {
            return Err(Error::bad_request(format!(
                "format `{other}` is not one of csv, tsv, json"
            )));
        }
    };
    let tag = etag(&[&m.id, &m.version, "ckan-dump", &raw]);
    let download = Download {
        etag: &tag,
        pinned: false,
        content_type,
        filename: format!("{rid}.{ext}"),
    };
    download.respond(&state, &loaded, &s.query, writer).await
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Action(e) => e,
            Failure::BadRequest(msg) => Error::bad_request(msg),
        }
    }
}
