//! Column types and a dataset's stored schema, with their Arrow equivalents.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::logical_expr::{SortExpr, ident};
use serde::{Deserialize, Serialize};

/// Name of the hidden column holding each row's position in the published file. It gives file
/// order and a tie-breaker to every sort; API column names never contain `__`, so it cannot
/// collide with one.
pub const ROW_COLUMN: &str = "__row";

/// File order: the row number ascending. Every stored version is written in it (or rewritten in
/// its `sort_by` order, and renumbered), every table declares it, and every sort ends with it.
pub fn file_order() -> SortExpr {
    ident(ROW_COLUMN).sort(true, false)
}

/// The time zone written on datetime columns whose source values carried an offset.
pub const UTC: &str = "+00:00";

/// A column's type in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    String,
    Integer,
    Float,
    Boolean,
    Date,
    Datetime,
}

impl ColumnType {
    pub const ALL: [ColumnType; 6] = [
        ColumnType::String,
        ColumnType::Integer,
        ColumnType::Float,
        ColumnType::Boolean,
        ColumnType::Date,
        ColumnType::Datetime,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::Integer => "integer",
            ColumnType::Float => "float",
            ColumnType::Boolean => "boolean",
            ColumnType::Date => "date",
            ColumnType::Datetime => "datetime",
        }
    }

    /// An example literal of this type, for error messages.
    pub fn example(self) -> &'static str {
        match self {
            ColumnType::String => "any text",
            ColumnType::Integer => "42",
            ColumnType::Float => "3.14",
            ColumnType::Boolean => "true or false",
            ColumnType::Date => "2024-06-30",
            ColumnType::Datetime => "2024-06-30T14:05:00",
        }
    }
}

/// One column of a stored dataset, as `GET /api/datasets/{id}` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Column {
    /// The name used in queries and in results.
    pub name: String,
    /// The header as published.
    pub label: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    pub nullable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Datetime columns only: the source values carried a UTC offset (stored in UTC).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub with_offset: bool,
    /// The latitude or longitude of the rows' points (`near`, `bbox` and GeoJSON read them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo: Option<super::geo::GeoRole>,
}

impl Column {
    /// A nullable column whose label is its name.
    pub fn new(name: &str, kind: ColumnType) -> Self {
        Column {
            name: name.into(),
            label: name.into(),
            kind,
            nullable: true,
            description: None,
            with_offset: false,
            geo: None,
        }
    }

    pub fn arrow_type(&self) -> DataType {
        match self.kind {
            ColumnType::String => DataType::Utf8,
            ColumnType::Integer => DataType::Int64,
            ColumnType::Float => DataType::Float64,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
            ColumnType::Datetime => DataType::Timestamp(
                TimeUnit::Microsecond,
                self.with_offset.then(|| Arc::from(UTC)),
            ),
        }
    }
}

/// The Arrow schema of the stored Parquet: the columns, then the hidden row number.
pub fn arrow_schema(columns: &[Column]) -> SchemaRef {
    let mut fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(&c.name, c.arrow_type(), true))
        .collect();
    fields.push(Field::new(ROW_COLUMN, DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// The name of the row number on data.gouv.fr's tabular API: 1-based, in file order.
pub const TABULAR_ID: &str = "__id";

/// Each column's key on data.gouv.fr's tabular API: the header as published, or the API name
/// where the header is blank, repeats an earlier key or is `__id`, so that every row object has
/// one key per column.
pub fn published_keys(columns: &[Column]) -> Vec<String> {
    published_keys_beside(columns, TABULAR_ID)
}

/// The name of the row number in CKAN's DataStore: 1-based, in file order.
pub const DATASTORE_ID: &str = "_id";

/// Published keys that never take `reserved`, the name the API gives its row number.
pub fn published_keys_beside(columns: &[Column], reserved: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::with_capacity(columns.len());
    for c in columns {
        let label = c.label.trim();
        let taken = |k: &str| k == reserved || keys.iter().any(|e| e == k);
        let mut key = if label.is_empty() || taken(label) {
            c.name.clone()
        } else {
            label.to_string()
        };
        let base = key.clone();
        let mut n = 2;
        while taken(&key) {
            key = format!("{base}_{n}");
            n += 1;
        }
        keys.push(key);
    }
    keys
}
