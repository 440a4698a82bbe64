//! The cursor decoder: any token either reads back as a cursor or is refused with a 400, for
//! row queries sorted by columns of every type and for aggregations.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qanat::dataset::schema::{Column, ColumnType};
use qanat::query::cursor::Cursor;

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let columns: Vec<Column> = ColumnType::ALL
        .iter()
        .map(|t| Column::new("k", *t))
        .collect();
    let _ = Cursor::decode(&token, None);
    for c in &columns {
        let _ = Cursor::decode(&token, Some(&[c]));
    }
    let all: Vec<&Column> = columns.iter().collect();
    if let Ok(cursor) = Cursor::decode(&token, Some(&all)) {
        // A cursor read back writes the same cursor.
        let again = Cursor::decode(&cursor.encode(), Some(&all)).expect("a cursor reads back");
        assert_eq!(again.encode(), cursor.encode());
    }
});
