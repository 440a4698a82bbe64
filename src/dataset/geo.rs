//! Points: which two columns of a dataset hold its latitude and longitude (detected at ingest
//! from their names and values, or named in the dataset file), distances between points, and
//! the spatial index a version keeps beside its Parquet (`geo.bin`): the rows' points bucketed
//! in a grid of cells sized to the data, sorted by cell, so that the rows in a box are found by
//! one binary search per row of cells instead of a scan.

use serde::{Deserialize, Serialize};

use super::manifest::ColumnProfile;
use super::schema::{Column, ColumnType};

/// The spatial index's file, in a version's directory.
pub const GEO_FILE: &str = "geo.bin";

/// The mean Earth radius (IUGG), in metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// What a column holds of a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GeoRole {
    Latitude,
    Longitude,
}

/// Names a latitude column goes by, each with the longitude names that pair with it.
const PAIRS: [(&str, &[&str]); 4] = [
    ("lat", &["lon", "lng", "long"]),
    ("latitude", &["longitude", "long", "lon", "lng"]),
    ("y", &["x"]),
    ("ylat", &["xlong", "xlon"]),
];

/// The columns (by position) holding a point's latitude and longitude: the dataset file's
/// `[geo]` when set, else a pair of numeric columns named alike (`lat`/`lon`, `stop_lat`/
/// `stop_lon`, `latitude`/`longitude`, `y`/`x`, …) whose values are all in range. The first
/// pair in column order wins.
pub fn detect(
    columns: &[Column],
    profile: &[ColumnProfile],
    declared: Option<(&str, &str)>,
) -> Option<(usize, usize)> {
    let index = |name: &str| columns.iter().position(|c| c.name == name);
    if let Some((lat, lon)) = declared {
        return Some((index(lat)?, index(lon)?));
    }
    let in_range = |i: usize, limit: f64| {
        let numeric = matches!(columns[i].kind, ColumnType::Float | ColumnType::Integer);
        let p = profile.iter().find(|p| p.name == columns[i].name);
        let (min, max) = p.map_or((None, None), |p| (p.min.as_f64(), p.max.as_f64()));
        numeric && matches!((min, max), (Some(a), Some(b)) if a >= -limit && b <= limit)
    };
    for (i, c) in columns.iter().enumerate() {
        let tokens: Vec<&str> = c.name.split('_').collect();
        for (t, token) in tokens.iter().enumerate() {
            let Some((_, lon_names)) = PAIRS.iter().find(|(lat, _)| lat == token) else {
                continue;
            };
            // A bare `y` or `x` only as the whole name: `y` inside a name is not a latitude.
            if matches!(*token, "y") && tokens.len() > 1 {
                continue;
            }
            for lon in *lon_names {
                let mut other = tokens.clone();
                other[t] = lon;
                if let Some(j) = index(&other.join("_"))
                    && in_range(i, 90.0)
                    && in_range(j, 180.0)
                {
                    return Some((i, j));
                }
            }
        }
    }
    None
}

/// The great-circle distance in metres between two points given in degrees (haversine).
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// A box in degrees: longitudes west to east, latitudes south to north.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl BBox {
    /// The smallest box holding every point within `metres` of a point (past a pole, or across
    /// the antimeridian, every longitude).
    pub fn around(lat: f64, lon: f64, metres: f64) -> BBox {
        let dlat = (metres / EARTH_RADIUS_M).to_degrees();
        let (min_lat, max_lat) = (lat - dlat, lat + dlat);
        if min_lat <= -90.0 || max_lat >= 90.0 {
            return BBox {
                min_lon: -180.0,
                min_lat: min_lat.max(-90.0),
                max_lon: 180.0,
                max_lat: max_lat.min(90.0),
            };
        }
        let ratio = (metres / EARTH_RADIUS_M).sin() / lat.to_radians().cos();
        let dlon = ratio.clamp(-1.0, 1.0).asin().to_degrees();
        let (min_lon, max_lon) = (lon - dlon, lon + dlon);
        if min_lon < -180.0 || max_lon > 180.0 {
            return BBox {
                min_lon: -180.0,
                min_lat,
                max_lon: 180.0,
                max_lat,
            };
        }
        BBox {
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        }
    }
}

/// The bounds of a set of points, and how many there are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Extent {
    pub min_lat: f64,
    pub max_lat: f64,
    pub min_lon: f64,
    pub max_lon: f64,
    pub points: usize,
}

impl Default for Extent {
    fn default() -> Self {
        Extent {
            min_lat: 90.0,
            max_lat: -90.0,
            min_lon: 180.0,
            max_lon: -180.0,
            points: 0,
        }
    }
}

impl Extent {
    pub fn add(&mut self, lat: f64, lon: f64) {
        self.min_lat = self.min_lat.min(lat);
        self.max_lat = self.max_lat.max(lat);
        self.min_lon = self.min_lon.min(lon);
        self.max_lon = self.max_lon.max(lon);
        self.points += 1;
    }
}

/// The spatial index: rows bucketed in a grid over the data's extent, sorted by cell.
pub struct GridIndex {
    min_lat: f64,
    min_lon: f64,
    /// Cell height and width, in degrees.
    cell_lat: f64,
    cell_lon: f64,
    nx: u32,
    ny: u32,
    /// Cell of each entry (row of cells × `nx` + column of cells), ascending.
    cells: Vec<u32>,
    /// The row number of each entry.
    rows: Vec<u32>,
}

const MAGIC: &[u8; 8] = b"QGEOIDX1";
/// The magic, the grid's four floats and its three counts.
const HEAD_BYTES: usize = 8 + 4 * 8 + 3 * 4;

impl GridIndex {
    /// The index of these points (`(lat, lon, row)`, rows without a point left out), with about
    /// eight points a cell.
    pub fn build(mut points: Vec<(f64, f64, u32)>) -> GridIndex {
        points.retain(|p| p.0.is_finite() && p.1.is_finite());
        let mut extent = Extent::default();
        points
            .iter()
            .for_each(|&(lat, lon, _)| extent.add(lat, lon));
        let mut index = GridIndex::frame(&extent);
        let mut keyed: Vec<(u32, u32)> = points
            .iter()
            .map(|&(lat, lon, row)| (index.cell(lat, lon), row))
            .collect();
        keyed.sort_unstable();
        index.cells = keyed.iter().map(|k| k.0).collect();
        index.rows = keyed.iter().map(|k| k.1).collect();
        index
    }

    /// The grid for points within `extent`, with about eight points a cell, holding none yet:
    /// an index too large to hold is written from [`GridIndex::head`] and the points' cells
    /// ([`GridIndex::cell`]) sorted.
    pub fn frame(extent: &Extent) -> GridIndex {
        let (mut min_lat, mut max_lat, mut min_lon, mut max_lon) = (
            extent.min_lat,
            extent.max_lat,
            extent.min_lon,
            extent.max_lon,
        );
        if extent.points == 0 {
            (min_lat, max_lat, min_lon, max_lon) = (0.0, 0.0, 0.0, 0.0);
        }
        let cells_wanted = (extent.points / 8).max(1) as f64;
        let (h, w) = ((max_lat - min_lat).max(1e-9), (max_lon - min_lon).max(1e-9));
        // Square-ish cells in degrees, as many as wanted, at most 65,535 a side.
        let side = (h * w / cells_wanted).sqrt().max(1e-9);
        let ny = ((h / side).ceil() as u32).clamp(1, 65_535);
        let nx = ((w / side).ceil() as u32).clamp(1, 65_535);
        GridIndex {
            min_lat,
            min_lon,
            cell_lat: h / f64::from(ny),
            cell_lon: w / f64::from(nx),
            nx,
            ny,
            cells: Vec::new(),
            rows: Vec::new(),
        }
    }

    fn cell_y(&self, lat: f64) -> u32 {
        (((lat - self.min_lat) / self.cell_lat).floor().max(0.0) as u32).min(self.ny - 1)
    }

    fn cell_x(&self, lon: f64) -> u32 {
        (((lon - self.min_lon) / self.cell_lon).floor().max(0.0) as u32).min(self.nx - 1)
    }

    /// The cell holding a point within the grid's extent.
    pub fn cell(&self, lat: f64, lon: f64) -> u32 {
        self.cell_y(lat) * self.nx + self.cell_x(lon)
    }

    /// The rows whose cell meets the box: a superset of the rows in it, in no order.
    pub fn candidates(&self, b: &BBox) -> Vec<u32> {
        let top = self.min_lat + self.cell_lat * f64::from(self.ny);
        let right = self.min_lon + self.cell_lon * f64::from(self.nx);
        if b.max_lat < self.min_lat
            || b.min_lat > top
            || b.max_lon < self.min_lon
            || b.min_lon > right
        {
            return Vec::new();
        }
        let (y0, y1) = (self.cell_y(b.min_lat), self.cell_y(b.max_lat));
        let (x0, x1) = (self.cell_x(b.min_lon), self.cell_x(b.max_lon));
        let mut out = Vec::new();
        for y in y0..=y1 {
            let (from, to) = (y * self.nx + x0, y * self.nx + x1);
            let start = self.cells.partition_point(|c| *c < from);
            let end = self.cells.partition_point(|c| *c <= to);
            out.extend_from_slice(&self.rows[start..end]);
        }
        out
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.head(self.rows.len());
        out.reserve_exact(self.rows.len() * 8);
        for c in &self.cells {
            out.extend_from_slice(&c.to_le_bytes());
        }
        for r in &self.rows {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out
    }

    /// The bytes before the entries of an index of `n` points: the cells of the entries follow,
    /// ascending, then their rows, in the same order.
    pub fn head(&self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD_BYTES);
        out.extend_from_slice(MAGIC);
        for f in [self.min_lat, self.min_lon, self.cell_lat, self.cell_lon] {
            out.extend_from_slice(&f.to_le_bytes());
        }
        for n in [self.nx, self.ny, n as u32] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out
    }

    /// Reads an index back; `None` for bytes that are not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<GridIndex> {
        let body = bytes.strip_prefix(MAGIC)?;
        let f = |i: usize| {
            Some(f64::from_le_bytes(
                body.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        let u = |at: usize| Some(u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?));
        let (nx, ny, n) = (u(32)?, u(36)?, u(40)? as usize);
        let words = |from: usize| -> Option<Vec<u32>> {
            let bytes = body.get(from..from + n * 4)?;
            Some(
                bytes
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )
        };
        if nx == 0 || ny == 0 || body.len() != 44 + n * 8 {
            return None;
        }
        Some(GridIndex {
            min_lat: f(0)?,
            min_lon: f(1)?,
            cell_lat: f(2)?,
            cell_lon: f(3)?,
            nx,
            ny,
            cells: words(44)?,
            rows: words(44 + n * 4)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::manifest::ColumnProfile;

    fn profile(name: &str, min: f64, max: f64) -> ColumnProfile {
        ColumnProfile {
            name: name.into(),
            kind: ColumnType::Float,
            nulls: 0,
            distinct: 2,
            top: Vec::new(),
            min: min.into(),
            max: max.into(),
        }
    }

    #[test]
    fn pairs_are_found_by_name_and_range() {
        let cols = |names: &[&str]| -> Vec<Column> {
            names
                .iter()
                .map(|n| Column::new(n, ColumnType::Float))
                .collect()
        };
        let c = cols(&["stop_id", "stop_lat", "stop_lon"]);
        let p = [
            profile("stop_lat", 40.5, 40.9),
            profile("stop_lon", -74.2, -73.7),
        ];
        assert_eq!(detect(&c, &p, None), Some((1, 2)));
        // Lambert 93 metres in `x`/`y` are not degrees.
        let c = cols(&["x", "y"]);
        let p = [
            profile("x", 650_000.0, 700_000.0),
            profile("y", 6.8e6, 6.9e6),
        ];
        assert_eq!(detect(&c, &p, None), None);
        let c = cols(&["latitude", "longitude"]);
        let p = [
            profile("latitude", 33.5, 35.8),
            profile("longitude", -7.6, -5.0),
        ];
        assert_eq!(detect(&c, &p, None), Some((0, 1)));
        assert_eq!(
            detect(&c, &p, Some(("longitude", "latitude"))),
            Some((1, 0))
        );
        assert_eq!(detect(&c, &p, Some(("nope", "latitude"))), None);
    }

    #[test]
    fn distances_and_boxes() {
        // Rabat-Ville to Casa-Voyageurs: 84.34 km as the crow flies (Python's math, same radius).
        let d = distance_m(34.0150, -6.8354, 33.5897, -7.5912);
        assert!((d - 84_340.52).abs() < 0.1, "{d}");
        assert!(distance_m(10.0, 20.0, 10.0, 20.0).abs() < 1e-6);
        let b = BBox::around(34.0, -6.8, 1_000.0);
        assert!((b.max_lat - 34.0 - 0.008993).abs() < 1e-5, "{b:?}");
        assert!(
            b.max_lon - -6.8 > 0.0108 && b.max_lon - -6.8 < 0.0109,
            "{b:?}"
        );
        let polar = BBox::around(89.99, 0.0, 5_000.0);
        assert_eq!(
            (polar.min_lon, polar.max_lon, polar.max_lat),
            (-180.0, 180.0, 90.0)
        );
    }

    #[test]
    fn the_grid_finds_every_row_in_a_box() {
        let mut points = Vec::new();
        let mut s = 7u64;
        for row in 0..5_000u32 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let lat = 33.0 + (s >> 40) as f64 / (1u64 << 24) as f64 * 3.0;
            let lon = -8.0 + (s >> 16 & 0xFFFFFF) as f64 / (1u64 << 24) as f64 * 4.0;
            points.push((lat, lon, row));
        }
        let index = GridIndex::from_bytes(&GridIndex::build(points.clone()).to_bytes()).unwrap();
        assert_eq!(index.len(), 5_000);
        let b = BBox {
            min_lon: -7.0,
            min_lat: 34.0,
            max_lon: -6.5,
            max_lat: 34.4,
        };
        let found: std::collections::HashSet<u32> = index.candidates(&b).into_iter().collect();
        let inside: Vec<u32> = points
            .iter()
            .filter(|p| {
                p.0 >= b.min_lat && p.0 <= b.max_lat && p.1 >= b.min_lon && p.1 <= b.max_lon
            })
            .map(|p| p.2)
            .collect();
        assert!(!inside.is_empty());
        assert!(inside.iter().all(|r| found.contains(r)));
        // Few more than needed: the cells at the edges only.
        assert!(
            found.len() < inside.len() * 2,
            "{} for {}",
            found.len(),
            inside.len()
        );
        let away = BBox {
            min_lon: 10.0,
            min_lat: 10.0,
            max_lon: 11.0,
            max_lat: 11.0,
        };
        assert!(index.candidates(&away).is_empty());
        assert!(GridIndex::from_bytes(b"nope").is_none());
    }
}
