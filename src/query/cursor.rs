//! Opaque cursors for `links.next`: the dataset version a walk started on, the page a cursor
//! leads to and, for row queries, the sort key of the last row shown plus its row number. The
//! next page is then a seek past that key instead of an offset, so it costs what the first page
//! costs at any depth, and every page of a walk reads the same version even while a refresh
//! publishes a new one.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use datafusion::scalar::ScalarValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dataset::schema::{Column, ColumnType};
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

    /// Reads a cursor back for a query whose sort keys are these columns (`None` for
    /// aggregated queries); a cursor written for another shape of query is a 400.
    pub fn decode(token: &str, keys: Option<&[&Column]>) -> Result<Self> {
        let wire = decode_wire(token).ok_or_else(invalid)?;
        if wire.p < 2 {
            return Err(invalid());
        }
        let after = match (keys, wire.k, wire.r) {
            (None, None, None) => None,
            (Some(columns), Some(values), Some(row)) if values.len() == columns.len() => {
                let keys = columns
                    .iter()
                    .zip(&values)
                    .map(|(col, v)| from_json(v, col))
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
    use proptest::prelude::*;

    use crate::query::params::tests::schema;

    fn columns<'a>(schema: &'a [Column], names: &[&str]) -> Vec<&'a Column> {
        names
            .iter()
            .map(|n| schema.iter().find(|c| c.name == *n).unwrap())
            .collect()
    }

    #[test]
    fn cursors_round_trip_with_typed_keys() {
        let schema = schema();
        let keys = columns(&schema, &["lat", "city"]);
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
        let back = Cursor::decode(&c.encode(), Some(&keys)).unwrap();
        assert_eq!(back, c);
        assert_eq!(
            version_in(&format!("a=1&cursor={}", c.encode())).as_deref(),
            Some(c.version.as_str())
        );
        // A cursor of a sorted query does not fit the same query unsorted, nor an aggregation.
        assert!(Cursor::decode(&c.encode(), Some(&[])).is_err());
        assert!(Cursor::decode(&c.encode(), None).is_err());
        assert!(Cursor::decode("not-a-cursor", None).is_err());
    }

    /// A key value of a column's type, null included.
    fn key_value(kind: ColumnType) -> BoxedStrategy<ScalarValue> {
        let value = match kind {
            ColumnType::String => any::<String>()
                .prop_map(|s| ScalarValue::Utf8(Some(s)))
                .boxed(),
            ColumnType::Integer => any::<i64>()
                .prop_map(|i| ScalarValue::Int64(Some(i)))
                .boxed(),
            ColumnType::Float => any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| ScalarValue::Float64(Some(f)))
                .boxed(),
            ColumnType::Boolean => any::<bool>()
                .prop_map(|b| ScalarValue::Boolean(Some(b)))
                .boxed(),
            ColumnType::Date => any::<i32>()
                .prop_map(|d| ScalarValue::Date32(Some(d)))
                .boxed(),
            ColumnType::Datetime => any::<i64>()
                .prop_map(|t| ScalarValue::TimestampMicrosecond(Some(t), None))
                .boxed(),
        };
        let null = ScalarValue::try_from(&Column::new("x", kind).arrow_type()).unwrap();
        prop_oneof![1 => Just(null), 4 => value].boxed()
    }

    /// Sort keys drawn from the test schema, with a value of each key's type.
    fn keyed() -> impl Strategy<Value = (Vec<usize>, Vec<ScalarValue>)> {
        proptest::sample::subsequence((0..schema().len()).collect::<Vec<_>>(), 0..=4)
            .prop_shuffle()
            .prop_flat_map(|idx| {
                let s = schema();
                let values: Vec<_> = idx.iter().map(|i| key_value(s[*i].kind)).collect();
                (Just(idx), values)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// decode ∘ encode is the identity, for every key type, null keys and any version text.
        #[test]
        fn decode_of_encode_is_the_identity(
            (idx, keys) in keyed(),
            version in "[A-Za-z0-9-]{1,40}",
            page in 2u64..u64::MAX,
            row in any::<i64>(),
            aggregated in any::<bool>(),
        ) {
            let schema = schema();
            let cols: Vec<&Column> = idx.iter().map(|i| &schema[*i]).collect();
            let c = Cursor {
                version,
                page,
                after: (!aggregated).then(|| After { keys, row }),
            };
            let shape = (!aggregated).then_some(cols.as_slice());
            prop_assert_eq!(Cursor::decode(&c.encode(), shape).unwrap(), c);
        }

        /// Any text, and any base64url-encoded bytes or JSON, decode or are a 400.
        #[test]
        fn any_token_decodes_or_is_a_400(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            text in ".{0,80}",
            json in r#"\{"v":"[a-z0-9]{0,5}","p":-?[0-9]{1,3}(,"k":\[(null|"[a-z]{0,3}"|-?[0-9]{1,20}|true)?\])?(,"r":-?[0-9]{1,20})?\}"#,
        ) {
            let schema = schema();
            let keys = columns(&schema, &["pop"]);
            for token in [URL_SAFE_NO_PAD.encode(&bytes), text, URL_SAFE_NO_PAD.encode(json)] {
                for shape in [None, Some(&keys[..]), Some(&[][..])] {
                    match Cursor::decode(&token, shape) {
                        Ok(c) => prop_assert!(c.page >= 2),
                        Err(Error::BadRequest(m)) => prop_assert!(m.contains("`cursor`")),
                        Err(other) => prop_assert!(false, "not a 400: {other:?}"),
                    }
                }
            }
        }
    }
}
