//! The query-string grammar, both dialects, `or=` groups included: any bytes either parse into a
//! query whose canonical form parses again to the same query, or are refused with an error.
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
    for dialect in [Dialect::Native, Dialect::Tabular] {
        if let Ok(q) = parse_in(dialect, &raw, &schema, &limits) {
            // What a query is cached and replayed under reads back as the same query.
            let canonical = q.canonical(true);
            let again = parse_in(Dialect::Native, &canonical, &schema, &limits)
                .unwrap_or_else(|e| panic!("canonical form `{canonical}` refused: {e}"));
            assert_eq!(again.canonical(true), canonical);
        }
    }
});
