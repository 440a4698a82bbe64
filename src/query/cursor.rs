//! Opaque cursors for `links.next`: the dataset version a walk started on, the page a cursor
//! leads to and, for row queries, the sort key of the last row shown plus its row number. The
//! next page is then a seek past that key instead of an offset, so it costs what the first page
//! costs at any depth, and every page of a walk reads the same version even while a refresh
//! publishes a new one.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use datafusion::logical_expr::utils::{conjunction, disjunction};
use datafusion::logical_expr::{Expr, lit};
use datafusion::scalar::ScalarValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::params::Sort;
use super::plan::column;
use crate::catalog::schema::{Column, ColumnType, ROW_COLUMN};
use crate::error::{Error, Result};

/// Where a page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub version: String,
    /// The 1-based page number the cursor leads to (reported in `meta.page`).
    pub page: u64,
    /// The last row shown before; `None` for aggregated results, which are paged by offset
    /// within the pinned version.
    pub after: Option<After>,
}

/// The position of the last row shown: its sort-key values, in sort order, and its row number,
/// which breaks ties exactly as the sort does.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    pub keys: Vec<ScalarValue>,
    pub row: i64,
}

/// The serialised form, base64url-encoded JSON; short names keep links short.
#[derive(Serialize, Deserialize)]
struct Wire {
    v: String,
    p: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<i64>,
}

fn invalid() -> Error {
    Error::bad_request(
        "`cursor` is not one this query's pages carry; follow `links.next` of the page before, \
         or ask for a page with `page`",
    )
}

fn decode_wire(token: &str) -> Option<Wire> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The version a raw query string's cursor names, read before the query is parsed, since the
/// version decides the schema the query is checked against.
pub fn version_in(raw: &str) -> Option<String> {
    url::form_urlencoded::parse(raw.as_bytes())
        .find(|(k, _)| k == "cursor")
        .and_then(|(_, v)| decode_wire(&v))
        .map(|w| w.v)
}

impl Cursor {
    pub fn encode(&self) -> String {
        let wire = Wire {
            v: self.version.clone(),
            p: self.page,
            k: self
                .after
                .as_ref()
                .map(|a| a.keys.iter().map(to_json).collect()),
            r: self.after.as_ref().map(|a| a.row),
        };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).expect("a cursor serialises"))
    }

    /// Reads a cursor back for a query with these sorts (`None` for aggregated queries) over
    /// this schema; a cursor written for another shape of query is a 400.
    pub fn decode(token: &str, sorts: Option<&[Sort]>, schema: &[Column]) -> Result<Self> {
        let wire = decode_wire(token).ok_or_else(invalid)?;
        if wire.p < 2 {
            return Err(invalid());
        }
        let after = match (sorts, wire.k, wire.r) {
            (None, None, None) => None,
            (Some(sorts), Some(keys), Some(row)) if keys.len() == sorts.len() => {
                let keys = sorts
                    .iter()
                    .zip(&keys)
                    .map(|(s, v)| {
                        let col = schema.iter().find(|c| c.name == s.key)?;
                        from_json(v, col)
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(invalid)?;
                Some(After { keys, row })
            }
            _ => return Err(invalid()),
        };
        Ok(Cursor {
            version: wire.v,
            page: wire.p,
            after,
        })
    }
}

impl After {
    /// Rows strictly after this position in the order `sorts` then row number, nulls last in
    /// both directions: for the first key where a row differs, it is beyond the value (or
    /// null, which sorts after every value), all earlier keys being equal.
    pub fn predicate(&self, sorts: &[Sort]) -> Expr {
        let mut equal_so_far: Vec<Expr> = Vec::new();
        let mut branches: Vec<Expr> = Vec::new();
        for (s, v) in sorts.iter().zip(&self.keys) {
            let c = column(&s.key);
            if v.is_null() {
                // Nothing sorts after a null but other nulls, which tie.
                equal_so_far.push(c.is_null());
                continue;
            }
            let beyond = if s.descending {
                c.clone().lt(lit(v.clone()))
            } else {
                c.clone().gt(lit(v.clone()))
            };
            let mut branch = equal_so_far.clone();
            branch.push(beyond.or(c.clone().is_null()));
            branches.push(conjunction(branch).expect("non-empty"));
            equal_so_far.push(c.eq(lit(v.clone())));
        }
        equal_so_far.push(column(ROW_COLUMN).gt(lit(self.row)));
        branches.push(conjunction(equal_so_far).expect("non-empty"));
        disjunction(branches).expect("non-empty")
    }
}

/// A key value as JSON. Floats travel as text, which Rust writes and reads back exactly.
fn to_json(v: &ScalarValue) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Value::String(s.clone()),
        ScalarValue::Int64(Some(i)) => (*i).into(),
        ScalarValue::Float64(Some(f)) => Value::String(f.to_string()),
        ScalarValue::Boolean(Some(b)) => (*b).into(),
        ScalarValue::Date32(Some(d)) => (*d).into(),
        ScalarValue::TimestampMicrosecond(Some(t), _) => (*t).into(),
        other => Value::String(other.to_string()),
    }
}

/// A key value read back as the column's type.
fn from_json(v: &Value, col: &Column) -> Option<ScalarValue> {
    if v.is_null() {
        return ScalarValue::try_from(&col.arrow_type()).ok();
    }
    Some(match col.kind {
        ColumnType::String => ScalarValue::Utf8(Some(v.as_str()?.to_string())),
        ColumnType::Integer => ScalarValue::Int64(Some(v.as_i64()?)),
        ColumnType::Float => ScalarValue::Float64(Some(v.as_str()?.parse().ok()?)),
        ColumnType::Boolean => ScalarValue::Boolean(Some(v.as_bool()?)),
        ColumnType::Date => ScalarValue::Date32(Some(i32::try_from(v.as_i64()?).ok()?)),
        ColumnType::Datetime => match col.arrow_type() {
            arrow::datatypes::DataType::Timestamp(_, tz) => {
                ScalarValue::TimestampMicrosecond(Some(v.as_i64()?), tz)
            }
            _ => return None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::query::params::tests::schema;

    #[test]
    fn cursors_round_trip_with_typed_keys() {
        let sorts = vec![
            Sort {
                key: "lat".into(),
                descending: true,
            },
            Sort {
                key: "city".into(),
                descending: false,
            },
        ];
        let c = Cursor {
            version: "20261123T101010123-0000abcd".into(),
            page: 7,
            after: Some(After {
                keys: vec![
                    ScalarValue::Float64(Some(0.1 + 0.2)),
                    ScalarValue::Utf8(None),
                ],
                row: 4242,
            }),
        };
        let back = Cursor::decode(&c.encode(), Some(&sorts), &schema()).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            version_in(&format!("a=1&cursor={}", c.encode())).as_deref(),
            Some(c.version.as_str())
        );
        // A cursor of a sorted query does not fit the same query unsorted, nor an aggregation.
        assert!(Cursor::decode(&c.encode(), Some(&[]), &schema()).is_err());
        assert!(Cursor::decode(&c.encode(), None, &schema()).is_err());
        assert!(Cursor::decode("not-a-cursor", None, &schema()).is_err());
    }

    #[test]
    fn the_seek_predicate_orders_nulls_last() {
        let sorts = vec![Sort {
            key: "pop".into(),
            descending: false,
        }];
        let after = After {
            keys: vec![ScalarValue::Int64(Some(5))],
            row: 9,
        };
        let text = after.predicate(&sorts).to_string();
        assert_eq!(
            text,
            "pop > Int64(5) OR pop IS NULL OR pop = Int64(5) AND __row > Int64(9)"
        );
        let after_null = After {
            keys: vec![ScalarValue::Int64(None)],
            row: 9,
        };
        assert_eq!(
            after_null.predicate(&sorts).to_string(),
            "pop IS NULL AND __row > Int64(9)"
        );
    }
}
