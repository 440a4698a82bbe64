//! Points near a place and points in a box: `near=lat,lon,metres` (rows within that distance,
//! nearest first unless another order is asked, each with its distance as `distance_m`) and
//! `bbox=min_lon,min_lat,max_lon,max_lat`, on datasets whose schema marks a latitude and a
//! longitude column.
//!
//! Both become expressions like any filter, so pages, cursors, exports, facets and aggregations
//! apply them. Before planning, the executor resolves the box they cover against the version's
//! spatial index ([`GridIndex`]) into the rows that may be in it ([`RowSet`]); the exact test
//! (inside the box, within the distance) then runs on those rows only.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{Array, AsArray, Float64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
    ident, lit,
};

use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;

use super::executor::{Executor, Loaded};
use super::request::DataQuery;
use super::search::{RowSet, arrays, rows_in};
use crate::dataset::geo::{BBox, GEO_FILE, GeoRole, GridIndex, distance_m};
use crate::dataset::schema::{Column, ColumnType, file_order};
use crate::error::{Error, Result};

/// The column `near` adds to each row: its distance in metres.
pub const DISTANCE: &str = "distance_m";

/// The largest `near` radius: half the Earth's circumference.
const MAX_METRES: f64 = 20_037_508.0;

/// A point and a radius.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    pub lat: f64,
    pub lon: f64,
    pub metres: f64,
}

/// The spatial conditions of a request.
#[derive(Debug, Clone, Default)]
pub struct Geo {
    pub near: Option<Near>,
    pub bbox: Option<BBox>,
    /// The latitude and longitude columns.
    columns: Option<(String, String)>,
    /// The rows the spatial index says may match, once resolved.
    rows: Option<Arc<RowSet>>,
    /// Those rows alone, as a table, when they are few enough to read instead of the table
    /// (built once per request, for its page, total and facets).
    table: Option<Arc<dyn TableProvider>>,
}

/// Conditions are the same whether or not they were resolved yet.
impl PartialEq for Geo {
    fn eq(&self, other: &Self) -> bool {
        self.near == other.near && self.bbox == other.bbox
    }
}

/// Numbers separated by commas, as many as `n`, each finite.
fn numbers(value: &str, n: usize, key: &str, shape: &str) -> Result<Vec<f64>> {
    let parts: Vec<Option<f64>> = value
        .split(',')
        .map(|p| p.trim().parse::<f64>().ok().filter(|f| f.is_finite()))
        .collect();
    if parts.len() != n || parts.iter().any(Option::is_none) {
        return Err(Error::bad_request(format!(
            "`{key}={value}` must be {n} numbers separated by commas: {shape}"
        )));
    }
    Ok(parts.into_iter().flatten().collect())
}

fn check_lat(lat: f64, key: &str) -> Result<()> {
    if (-90.0..=90.0).contains(&lat) {
        return Ok(());
    }
    Err(Error::bad_request(format!(
        "`{key}`: latitude {lat} is out of range; latitudes go from -90 to 90 degrees"
    )))
}

fn check_lon(lon: f64, key: &str) -> Result<()> {
    if (-180.0..=180.0).contains(&lon) {
        return Ok(());
    }
    Err(Error::bad_request(format!(
        "`{key}`: longitude {lon} is out of range; longitudes go from -180 to 180 degrees"
    )))
}

impl Geo {
    pub fn is_empty(&self) -> bool {
        self.near.is_none() && self.bbox.is_none()
    }

    /// The dataset's latitude and longitude columns, or a 400 saying it has none.
    fn columns_of(schema: &[Column], key: &str) -> Result<(String, String)> {
        let find = |role| schema.iter().find(|c| c.geo == Some(role));
        match (find(GeoRole::Latitude), find(GeoRole::Longitude)) {
            (Some(lat), Some(lon)) => Ok((lat.name.clone(), lon.name.clone())),
            _ => Err(Error::bad_request(format!(
                "`{key}`: this dataset has no coordinates (no latitude and longitude columns were detected; name them in the dataset file's [geo] section)"
            ))),
        }
    }

    /// `near=lat,lon,metres`.
    pub fn set_near(&mut self, value: &str, schema: &[Column]) -> Result<()> {
        let key = "near";
        let shape = "latitude,longitude,metres, e.g. near=33.5731,-7.5898,500";
        let n = numbers(value, 3, key, shape)?;
        check_lat(n[0], key)?;
        check_lon(n[1], key)?;
        if !(n[2] > 0.0 && n[2] <= MAX_METRES) {
            return Err(Error::bad_request(format!(
                "`near`: the radius {} must be more than 0 and at most {MAX_METRES} metres",
                n[2]
            )));
        }
        if self.near.is_some() {
            return Err(Error::bad_request("`near` is given twice; give one point"));
        }
        self.columns = Some(Self::columns_of(schema, key)?);
        self.near = Some(Near {
            lat: n[0],
            lon: n[1],
            metres: n[2],
        });
        Ok(())
    }

    /// `bbox=min_lon,min_lat,max_lon,max_lat` (GeoJSON's order).
    pub fn set_bbox(&mut self, value: &str, schema: &[Column]) -> Result<()> {
        let key = "bbox";
        let shape = "min_lon,min_lat,max_lon,max_lat, e.g. bbox=-7.70,33.50,-7.50,33.65";
        let n = numbers(value, 4, key, shape)?;
        check_lon(n[0], key)?;
        check_lat(n[1], key)?;
        check_lon(n[2], key)?;
        check_lat(n[3], key)?;
        if n[0] > n[2] || n[1] > n[3] {
            return Err(Error::bad_request(format!(
                "`bbox={value}`: the minimum is above the maximum; write {shape}"
            )));
        }
        if self.bbox.is_some() {
            return Err(Error::bad_request("`bbox` is given twice; give one box"));
        }
        self.columns = Some(Self::columns_of(schema, key)?);
        self.bbox = Some(BBox {
            min_lon: n[0],
            min_lat: n[1],
            max_lon: n[2],
            max_lat: n[3],
        });
        Ok(())
    }

    /// The box every matching row is in.
    fn covering(&self) -> Option<BBox> {
        let around = self.near.map(|n| BBox::around(n.lat, n.lon, n.metres));
        match (around, self.bbox) {
            (Some(a), Some(b)) => Some(BBox {
                min_lon: a.min_lon.max(b.min_lon),
                min_lat: a.min_lat.max(b.min_lat),
                max_lon: a.max_lon.min(b.max_lon),
                max_lat: a.max_lat.min(b.max_lat),
            }),
            (a, b) => a.or(b),
        }
    }

    /// The canonical text: `bbox`, then `near`, as numbers print back.
    pub fn append_to(&self, ser: &mut url::form_urlencoded::Serializer<'static, String>) {
        if let Some(b) = self.bbox {
            let text = format!("{},{},{},{}", b.min_lon, b.min_lat, b.max_lon, b.max_lat);
            ser.append_pair("bbox", &text);
        }
        if let Some(n) = self.near {
            ser.append_pair("near", &format!("{},{},{}", n.lat, n.lon, n.metres));
        }
    }

    /// The conditions on a row: among the index's candidates (once resolved), inside the box,
    /// within the distance.
    pub fn exprs(&self) -> Vec<Expr> {
        let Some((lat, lon)) = &self.columns else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(rows) = &self.rows {
            out.push(rows_in(rows));
        }
        let (y, x) = (ident(lat), ident(lon));
        if let Some(b) = self.covering() {
            out.push(y.clone().between(lit(b.min_lat), lit(b.max_lat)));
            out.push(x.clone().between(lit(b.min_lon), lit(b.max_lon)));
        }
        if let Some(d) = self.distance() {
            let n = self.near.expect("a distance has a point");
            out.push(d.lt_eq(lit(n.metres)));
        }
        out
    }

    /// Each row's distance in metres from the `near` point, to the centimetre.
    pub fn distance(&self) -> Option<Expr> {
        let (n, (lat, lon)) = (self.near?, self.columns.as_ref()?);
        let f = ScalarUDF::new_from_impl(Distance {
            lat: n.lat.to_bits(),
            lon: n.lon.to_bits(),
        });
        Some(f.call(vec![ident(lat), ident(lon)]))
    }
}

/// Whether the schema lets a request ask for a point's distance: it has coordinates.
pub fn has_coordinates(schema: &[Column]) -> bool {
    Geo::columns_of(schema, "").is_ok()
}

/// The column `near` adds, for a cursor holding its values.
pub fn distance_column() -> Column {
    Column::new(DISTANCE, ColumnType::Float)
}

impl Executor {
    /// The query with its spatial conditions resolved against the version's spatial index into
    /// the rows that may match; unchanged without conditions or without an index.
    pub async fn resolve_geo<'q>(
        &self,
        v: &Loaded,
        q: Cow<'q, DataQuery>,
    ) -> Result<Cow<'q, DataQuery>> {
        let Some(covering) = q.geo.covering() else {
            return Ok(q);
        };
        if q.geo.rows.is_some() {
            return Ok(q);
        }
        let index = self
            .read_once(&v.geo, v, |storage, manifest| async move {
                let path = storage
                    .version_dir(&manifest.id, &manifest.version)
                    .clone()
                    .join(GEO_FILE);
                use object_store::ObjectStoreExt;
                match storage.store.get(&path).await {
                    Ok(got) => Ok(GridIndex::from_bytes(&got.bytes().await?)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e.into()),
                }
            })
            .await?;
        let Some(index) = index else {
            return Ok(q);
        };
        let mut resolved = q.into_owned();
        let mut candidates = index.candidates(&covering);
        candidates.sort_unstable();
        resolved.geo.rows = Some(Arc::new(RowSet::of(&candidates, v.manifest.rows)));
        resolved.geo.table = self.subset(v, candidates).await?;
        Ok(Cow::Owned(resolved))
    }

    /// When the spatial index leaves a small share of the rows, those rows alone as a table
    /// (taken from memory, or read from Parquet by position), so that nothing else is scanned;
    /// `None` otherwise.
    async fn subset(&self, v: &Loaded, rows: Vec<u32>) -> Result<Option<Arc<dyn TableProvider>>> {
        if rows.len() as u64 > v.manifest.rows / SUBSET_SHARE {
            return Ok(None);
        }
        let batches = match &v.resident {
            Some(r) => r.rows_numbered(&rows)?.map(|batch| vec![batch]),
            None => {
                let Some(file) = self.file_rows(v).await? else {
                    return Ok(None);
                };
                let names: Vec<String> = v.manifest.schema.iter().map(|c| c.name.clone()).collect();
                let read = async move { file.rows_at(&rows, &names).await };
                self.engine().run_async(read).await?
            }
        };
        let Some(batches) = batches else {
            return Ok(None);
        };
        let table = MemTable::try_new(v.table.schema(), vec![batches])?
            .with_sort_order(vec![vec![file_order()]]);
        Ok(Some(Arc::new(table)))
    }
}

/// The table a plan of the query reads: the spatial index's candidate rows when the query was
/// resolved to few enough of them, else the version's table.
pub(super) fn table_for(v: &Loaded, q: &DataQuery) -> Arc<dyn TableProvider> {
    Arc::clone(q.geo.table.as_ref().unwrap_or(&v.table))
}

/// A plan reads the spatial index's candidate rows alone when they are at most one row in this
/// many; beyond, scanning the table costs less than gathering them.
const SUBSET_SHARE: u64 = 4;

/// `qanat_distance(lat, lon)`: the distance in metres from a point, to the centimetre; null
/// where a row has no point.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Distance {
    /// The point's degrees, as bits (a UDF is hashed and compared).
    lat: u64,
    lon: u64,
}

static TWO_ARGS: std::sync::LazyLock<Signature> =
    std::sync::LazyLock::new(|| Signature::any(2, Volatility::Immutable));

impl ScalarUDFImpl for Distance {
    fn name(&self) -> &str {
        "qanat_distance"
    }
    fn signature(&self) -> &Signature {
        &TWO_ARGS
    }
    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let (arrays, rows) = arrays(args)?;
        let (lats, lons) = (
            cast(&arrays[0], &DataType::Float64)?,
            cast(&arrays[1], &DataType::Float64)?,
        );
        let (lats, lons) = (
            lats.as_primitive::<Float64Type>(),
            lons.as_primitive::<Float64Type>(),
        );
        let (y, x) = (f64::from_bits(self.lat), f64::from_bits(self.lon));
        let out: Float64Array = (0..rows)
            .map(|i| {
                (lats.is_valid(i) && lons.is_valid(i)).then(|| {
                    let d = distance_m(y, x, lats.value(i), lons.value(i));
                    (d * 100.0).round() / 100.0
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Vec<Column> {
        let mut lat = Column::new("stop_lat", ColumnType::Float);
        lat.geo = Some(GeoRole::Latitude);
        let mut lon = Column::new("stop_lon", ColumnType::Float);
        lon.geo = Some(GeoRole::Longitude);
        vec![Column::new("stop_id", ColumnType::String), lat, lon]
    }

    #[test]
    fn near_and_bbox_are_checked() {
        let s = schema();
        let mut g = Geo::default();
        g.set_near("33.57,-7.59,500", &s).unwrap();
        assert_eq!(g.near.unwrap().metres, 500.0);
        for (bad, says) in [
            ("200,-7.5,10", "latitude 200 is out of range"),
            ("33,-7.5,-5", "more than 0"),
            ("33,-7.5", "3 numbers"),
            ("33,x,5", "3 numbers"),
            ("33,-7.5,NaN", "3 numbers"),
        ] {
            let err = Geo::default().set_near(bad, &s).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let err = Geo::default()
            .set_bbox("-7.5,33.6,-7.7,33.5", &s)
            .unwrap_err()
            .to_string();
        assert!(err.contains("minimum is above the maximum"), "{err}");
        let none = [Column::new("a", ColumnType::Float)];
        let err = Geo::default()
            .set_near("1,2,3", &none)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no coordinates"), "{err}");
        let mut g = Geo::default();
        g.set_bbox("-7.7,33.5,-7.5,33.6", &s).unwrap();
        g.set_near("33.55,-7.6,1000", &s).unwrap();
        let c = g.covering().unwrap();
        assert!(c.min_lat >= 33.5 && c.max_lat <= 33.6 && c.min_lon >= -7.7);
    }
}
