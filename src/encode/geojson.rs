//! GeoJSON (RFC 7946): each row a Feature whose geometry is its point (`[longitude, latitude]`,
//! null where the row has none) and whose properties are its other columns.

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use arrow::record_batch::RecordBatch;

use crate::error::{Error, Result};

/// What opens and closes a FeatureCollection.
pub const OPEN: &[u8] = br#"{"type":"FeatureCollection","features":["#;
pub const CLOSE: &[u8] = b"]}\n";

/// The batch's rows as Features separated by commas.
pub fn features(batch: &RecordBatch, lat: &str, lon: &str) -> Result<Vec<u8>> {
    let schema = batch.schema();
    let (Ok(y), Ok(x)) = (schema.index_of(lat), schema.index_of(lon)) else {
        return Err(Error::internal("a GeoJSON body without its coordinates"));
    };
    let (lats, lons) = (
        cast(batch.column(y), &DataType::Float64)?,
        cast(batch.column(x), &DataType::Float64)?,
    );
    let (lats, lons) = (
        lats.as_primitive::<Float64Type>(),
        lons.as_primitive::<Float64Type>(),
    );
    let others: Vec<usize> = (0..batch.num_columns())
        .filter(|i| *i != y && *i != x)
        .collect();
    let properties = batch.project(&others)?;
    // One object a line: JSON text never holds a raw newline, so the lines are the rows.
    let objects = match super::rows::json(&properties, super::rows::Json::Objects, b"", b"\n") {
        Some(o) => o,
        None => super::ndjson(&properties)?,
    };
    let mut out = Vec::with_capacity(objects.len() + batch.num_rows() * 80);
    for (i, object) in objects
        .split(|b| *b == b'\n')
        .take(batch.num_rows())
        .enumerate()
    {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"type":"Feature","geometry":"#);
        let point = (lats.is_valid(i) && lons.is_valid(i))
            .then(|| (lats.value(i), lons.value(i)))
            .filter(|(la, lo)| (-90.0..=90.0).contains(la) && (-180.0..=180.0).contains(lo));
        match point {
            Some((la, lo)) => out.extend_from_slice(
                format!(r#"{{"type":"Point","coordinates":[{lo},{la}]}}"#).as_bytes(),
            ),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(br#","properties":"#);
        out.extend_from_slice(if properties.num_columns() == 0 {
            b"{}"
        } else {
            object
        });
        out.push(b'}');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;

    #[test]
    fn rows_become_point_features() {
        let schema = Schema::new(vec![
            Field::new("nom", DataType::Utf8, true),
            Field::new("lat", DataType::Float64, true),
            Field::new("lon", DataType::Float64, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![Some("Fès\n\"médina\""), None])),
                Arc::new(Float64Array::from(vec![Some(34.0331), None])),
                Arc::new(Float64Array::from(vec![Some(-5.0003), Some(1.0)])),
            ],
        )
        .unwrap();
        let mut body = OPEN.to_vec();
        body.extend(features(&batch, "lat", "lon").unwrap());
        body.extend_from_slice(CLOSE);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let f = &v["features"];
        assert_eq!(
            f[0]["geometry"]["coordinates"],
            serde_json::json!([-5.0003, 34.0331])
        );
        assert_eq!(
            f[0]["properties"],
            serde_json::json!({"nom": "Fès\n\"médina\""})
        );
        assert_eq!(f[1]["geometry"], serde_json::Value::Null);
        assert_eq!(f[1]["properties"]["nom"], serde_json::Value::Null);
    }
}
