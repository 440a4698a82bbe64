//! A stored version's manifest (schema, row counts, ingest report, profile) and the pointer that
//! names a dataset's current version.

use serde::{Deserialize, Serialize};

use super::schema::{Column, ColumnType};

/// Bumped when the stored layout changes, so that old versions are re-ingested.
pub const LAYOUT_VERSION: u32 = 4;

/// Everything known about one immutable version; written after its Parquet files, before the
/// pointer switches to it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Manifest {
    pub id: String,
    pub version: String,
    /// RFC 3339 time the version was written.
    pub created_at: String,
    pub layout: u32,
    pub source: SourceInfo,
    /// Digest of the dataset file's `[csv]` and `[columns]` at ingest.
    pub options_digest: String,
    pub rows: u64,
    /// Parquet files of this version, relative to its directory.
    pub files: Vec<String>,
    pub schema: Vec<Column>,
    pub report: IngestReport,
    pub profile: Vec<ColumnProfile>,
}

/// What was read, so that an unchanged source can be recognised without re-reading it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SourceInfo {
    pub uri: String,
    pub sha256: String,
    pub bytes: u64,
    /// Modification time of a local source (nanoseconds since the epoch, so that a rewrite
    /// within the same second is seen), for a cheap staleness check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<i64>,
    /// HTTP validators of a remote source, sent back to ask whether it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// How the source was read and what came of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct IngestReport {
    pub encoding: String,
    pub delimiter: String,
    /// The delimiter itself (empty in versions written before it was recorded).
    #[serde(default)]
    pub separator: String,
    /// 1-based line of the header in the source.
    pub header_line: u64,
    pub rows_read: u64,
    pub rows_stored: u64,
    pub rows_rejected: u64,
    /// The first rejected rows, with their line numbers and reasons.
    pub rejected: Vec<RejectedRow>,
    /// Each column's type decision and why.
    pub columns: Vec<ColumnDecision>,
    pub warnings: Vec<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct RejectedRow {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ColumnDecision {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    pub reason: String,
}

/// Per-column statistics computed at ingest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct ColumnProfile {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    pub nulls: u64,
    /// Distinct non-null values: exact up to 128, a HyperLogLog estimate (±2 %) beyond.
    #[serde(default)]
    pub distinct: u64,
    /// The most frequent values, most frequent first; counts are exact when `distinct` is at
    /// most 128, lower bounds otherwise.
    #[serde(default)]
    pub top: Vec<TopValue>,
    /// Smallest value, in the column's JSON form (null when the column has no value).
    #[schema(schema_with = json_value)]
    pub min: serde_json::Value,
    /// Largest value, in the column's JSON form (null when the column has no value).
    #[schema(schema_with = json_value)]
    pub max: serde_json::Value,
}

/// The schema of a value in a column's JSON form: a string (text, dates, datetimes), a number, a
/// boolean, or null.
fn json_value() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let types = [Type::String, Type::Number, Type::Boolean, Type::Null];
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter(types))
        .description(Some(
            "A value in the column's JSON form: text, dates and datetimes as strings, numbers, booleans; null when there is none",
        ))
        .build()
}

/// A stored version as `GET /api/datasets/{id}` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct VersionInfo {
    pub version: String,
    pub created_at: String,
    pub rows: u64,
    /// SHA-256 of the source the version was read from.
    pub source_sha256: String,
}

impl From<&Manifest> for VersionInfo {
    fn from(m: &Manifest) -> Self {
        VersionInfo {
            version: m.version.clone(),
            created_at: m.created_at.clone(),
            rows: m.rows,
            source_sha256: m.source.sha256.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TopValue {
    /// The value, in the column's JSON form.
    #[schema(schema_with = json_value)]
    pub value: serde_json::Value,
    pub count: u64,
}

/// `{id}/current.json`: the one object whose replacement publishes a version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pointer {
    pub version: String,
}
