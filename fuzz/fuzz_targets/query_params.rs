//! The query-string grammar, both dialects, `or=` groups included: any bytes either parse or are
//! refused with an error, never a panic; a query of the native routes has a canonical form (what
//! the cache and the replay key on) that parses again to itself. (The tabular API's queries name
//! published headers and the hidden row column, which its canonical form, in API names, does not:
//! their canonical form is only a key.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use qanat::config::Limits;
use qanat::dataset::schema::{Column, ColumnType};
use qanat::query::params::{Dialect, parse_in};

fn schema() -> Vec<Column> {
    let mut label = Column::new("libelle", ColumnType::String);
    label.label = "Libellé (commune)".into();
    vec![
        Column::new("code", ColumnType::String),
        label,
        Column::new("population", ColumnType::Integer),
        Column::new("surface", ColumnType::Float),
        Column::new("active", ColumnType::Boolean),
        Column::new("day", ColumnType::Date),
        Column::new("at", ColumnType::Datetime),
    ]
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let (schema, limits) = (schema(), Limits::default());
    if let Ok(q) = parse_in(Dialect::Native, &raw, &schema, &limits) {
        let canonical = q.canonical(true);
        let again = parse_in(Dialect::Native, &canonical, &schema, &limits)
            .unwrap_or_else(|e| panic!("canonical form `{canonical}` refused: {e}"));
        assert_eq!(again.canonical(true), canonical);
    }
    if let Ok(q) = parse_in(Dialect::Tabular, &raw, &schema, &limits) {
        let _ = q.canonical(true);
    }
});
