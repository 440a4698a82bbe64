//! Type inference: records are read (the first 100,000, or all of them) to decide each
//! column's type; rows that will be rejected are left out of the decision.

use std::path::Path;

use super::reader::{Dialect, Notes, Progress, Records, clip, text};
use crate::dataset::manifest::ColumnDecision;
use crate::dataset::names::column_names;
use crate::dataset::schema::{Column, ColumnType};
use crate::dataset::spec::DatasetSpec;
use crate::error::{Error, Result};
use crate::values::{
    DateLayout, NotNumber, NumStyle, parse_any, parse_bool, parse_date, parse_datetime,
    parse_grouped, parse_int,
};

/// Rejected rows listed in the report; the rest are only counted.
pub const MAX_LISTED_REJECTS: usize = 100;

/// What the first pass decided.
#[derive(Debug)]
pub struct Inferred {
    pub columns: Vec<Column>,
    /// For each column, the type the dataset file sets, if it does.
    pub forced: Vec<Option<ColumnType>>,
    /// For each column, the number styles its values are read in, tried in order.
    pub styles: Vec<Vec<NumStyle>>,
    pub decisions: Vec<ColumnDecision>,
    pub header_line: u64,
    /// Whether every row was read (otherwise the types come from the first rows).
    pub complete: bool,
    /// Whether a column decided by inference had no value at all in the rows read.
    pub empty_columns: bool,
    /// The first line holds values of the columns' types rather than names: no header.
    pub header_is_data: bool,
    pub rows_read: u64,
    /// For each column, distinct values over rows read (up to [`DISTINCT_CAP`] values counted),
    /// which tells identifier-like columns that bloom filters serve.
    pub distinct_share: Vec<f64>,
}

/// Distinct values counted per column while reading types.
pub const DISTINCT_CAP: usize = 1 << 16;

/// Candidate types still open for one column.
#[derive(Debug, Clone)]
struct Candidates {
    non_null: u64,
    int: bool,
    float: bool,
    comma: bool,
    comma_frac: bool,
    english: bool,
    english_frac: bool,
    boolean: bool,
    date: bool,
    date_layout: Option<DateLayout>,
    datetime: bool,
    datetime_layout: Option<DateLayout>,
    datetime_offset: Option<bool>,
    leading_zero: Option<(u64, String)>,
    /// The value that ruled out the last typed candidate.
    text_because: Option<(u64, String)>,
}

impl Default for Candidates {
    fn default() -> Self {
        Candidates {
            non_null: 0,
            int: true,
            float: true,
            comma: true,
            comma_frac: false,
            english: true,
            english_frac: false,
            boolean: true,
            date: true,
            date_layout: None,
            datetime: true,
            datetime_layout: None,
            datetime_offset: None,
            leading_zero: None,
            text_because: None,
        }
    }
}

impl Candidates {
    fn any(&self) -> bool {
        self.numeric() || self.boolean || self.date || self.datetime
    }

    fn numeric(&self) -> bool {
        self.int || self.float || self.comma || self.english
    }

    fn observe(&mut self, cell: &str, line: u64) {
        self.non_null += 1;
        if !self.any() {
            return;
        }
        if self.numeric() {
            match parse_int(cell) {
                // A plain integer is a number in every style.
                Ok(_) => {}
                Err(NotNumber::LeadingZero | NotNumber::TooLong) => self.code(line, cell),
                Err(NotNumber::Other) => {
                    self.int = false;
                    if self.float && parse_grouped(cell, NumStyle::Plain).is_err() {
                        self.float = false;
                    }
                    for (style, alive, frac) in [
                        (NumStyle::Comma, &mut self.comma, &mut self.comma_frac),
                        (NumStyle::English, &mut self.english, &mut self.english_frac),
                    ] {
                        if *alive {
                            match parse_grouped(cell, style) {
                                Ok(n) => *frac |= n.int.is_none(),
                                Err(_) => *alive = false,
                            }
                        }
                    }
                }
            }
        }
        if self.boolean && parse_bool(cell).is_none() {
            self.boolean = false;
        }
        if self.date {
            match parse_date(cell) {
                Some((_, layout)) if self.date_layout.is_none_or(|l| l == layout) => {
                    self.date_layout = Some(layout)
                }
                _ => self.date = false,
            }
        }
        if self.datetime {
            match parse_datetime(cell) {
                Some(dt)
                    if self.datetime_layout.is_none_or(|l| l == dt.layout)
                        && self.datetime_offset.is_none_or(|o| o == dt.with_offset) =>
                {
                    self.datetime_layout = Some(dt.layout);
                    self.datetime_offset = Some(dt.with_offset);
                }
                _ => self.datetime = false,
            }
        }
        if !self.any() {
            self.text_because = Some((line, cell.to_string()));
        }
    }

    /// Codes and identifiers (leading zeros, too many digits) are neither integers nor floats.
    fn code(&mut self, line: u64, cell: &str) {
        if self.leading_zero.is_none() {
            self.leading_zero = Some((line, cell.to_string()));
        }
        self.int = false;
        self.float = false;
        self.comma = false;
        self.english = false;
    }

    /// The type, whether datetimes carry offsets, the number style, and why. `grouped` lists the
    /// grouped number styles allowed, preferred first.
    fn decide(&self, grouped: &[NumStyle]) -> (ColumnType, bool, NumStyle, String) {
        let n = self.non_null;
        if n == 0 {
            return (
                ColumnType::String,
                false,
                NumStyle::Plain,
                "no values: every cell is empty or null".into(),
            );
        }
        let plain = NumStyle::Plain;
        if self.boolean {
            let reason =
                format!("all {n} values are booleans (true/false, oui/non, vrai/faux, yes/no)");
            return (ColumnType::Boolean, false, plain, reason);
        }
        if self.int {
            return (
                ColumnType::Integer,
                false,
                plain,
                format!("all {n} values are integers"),
            );
        }
        if self.float {
            return (
                ColumnType::Float,
                false,
                plain,
                format!("all {n} values are numbers"),
            );
        }
        for &style in grouped {
            let (alive, frac) = match style {
                NumStyle::Comma => (self.comma, self.comma_frac),
                NumStyle::English => (self.english, self.english_frac),
                NumStyle::Plain => (false, false),
            };
            if alive {
                let (kind, what) = if frac {
                    (ColumnType::Float, "numbers")
                } else {
                    (ColumnType::Integer, "integers")
                };
                return (
                    kind,
                    false,
                    style,
                    format!("all {n} values are {what}{}", style.describe()),
                );
            }
        }
        if self.date {
            let layout = self.date_layout.map_or("", DateLayout::describe);
            return (
                ColumnType::Date,
                false,
                plain,
                format!("all {n} values are dates ({layout})"),
            );
        }
        if self.datetime {
            let offset = self.datetime_offset == Some(true);
            let how = if offset {
                "with a UTC offset"
            } else {
                "without offset"
            };
            let layout = self.datetime_layout.map_or("", DateLayout::describe);
            return (
                ColumnType::Datetime,
                offset,
                plain,
                format!("all {n} values are datetimes ({layout}, {how})"),
            );
        }
        let reason = match (&self.leading_zero, &self.text_because) {
            (Some((line, v)), _) => format!(
                "`{}` (line {line}) is a code with a leading zero or too many digits: kept as text",
                clip(v)
            ),
            (None, Some((line, v))) => {
                format!(
                    "`{}` (line {line}) is not a number, boolean, date or datetime",
                    clip(v)
                )
            }
            (None, None) => "text".into(),
        };
        (ColumnType::String, false, plain, reason)
    }
}

/// Why a row cannot be stored, if it cannot: more fields than the header, or a value that does
/// not parse as the type the dataset file forces on its column.
pub fn row_problem(
    record: &[&str],
    columns: &[Column],
    forced: &[Option<ColumnType>],
    dialect: &Dialect,
    lenient: &[NumStyle],
) -> Option<String> {
    // A header printed again (after a page break, or several times at the top).
    if record.len() == columns.len()
        && dialect.header
        && record.iter().zip(columns).all(|(f, c)| *f == c.label)
    {
        return Some("repeats the header".into());
    }
    if record.len() > columns.len() {
        return Some(format!(
            "{} fields where the header has {}",
            record.len(),
            columns.len()
        ));
    }
    for (i, kind) in forced.iter().enumerate() {
        let (Some(kind), Some(&cell)) = (kind, record.get(i)) else {
            continue;
        };
        if dialect.is_null_typed(cell) || *kind == ColumnType::String {
            continue;
        }
        let ok = match kind {
            ColumnType::Integer => parse_any(cell, lenient).is_ok_and(|n| n.int.is_some()),
            ColumnType::Float => parse_any(cell, lenient).is_ok(),
            ColumnType::Boolean => parse_bool(cell).is_some(),
            ColumnType::Date => parse_date(cell).is_some(),
            ColumnType::Datetime => {
                parse_datetime(cell).is_some_and(|d| d.with_offset == columns[i].with_offset)
            }
            ColumnType::String => true,
        };
        if !ok {
            return Some(format!(
                "column `{}`: `{cell}` is not a {} (the dataset file sets its type)",
                columns[i].name,
                kind.as_str()
            ));
        }
    }
    None
}

/// Whether a first line is data: every column typed by inference has a value of its type there
/// (names such as `id` or `Date` are not), and there is at least one such column.
fn header_is_data(
    labels: &[String],
    columns: &[Column],
    styles: &[Vec<NumStyle>],
    forced: &[Option<ColumnType>],
) -> bool {
    let mut typed = 0;
    for (i, col) in columns.iter().enumerate() {
        if forced[i].is_some() || col.kind == ColumnType::String {
            continue;
        }
        typed += 1;
        let cell = labels[i].as_str();
        let fits = match col.kind {
            ColumnType::Integer => parse_any(cell, &styles[i]).is_ok_and(|n| n.int.is_some()),
            ColumnType::Float => parse_any(cell, &styles[i]).is_ok(),
            ColumnType::Boolean => parse_bool(cell).is_some(),
            ColumnType::Date => parse_date(cell).is_some(),
            ColumnType::Datetime => parse_datetime(cell).is_some(),
            ColumnType::String => true,
        };
        if !fits {
            return false;
        }
    }
    typed > 0
}

/// Reads the file (its first `limit` rows, or all) and decides the schema.
pub fn infer(
    path: &Path,
    dialect: &Dialect,
    spec: &DatasetSpec,
    total: u64,
    limit: Option<u64>,
) -> Result<Inferred> {
    let progress = Progress {
        label: format!("{}: reading types (pass 1 of 2)", spec.id),
        total,
    };
    let mut records = Records::open_with_progress(path, dialect, progress)?;
    let (labels, header_line, first_row) = match records.next_record()? {
        None => {
            return Err(Error::bad_request(
                "the source is empty: no header and no rows",
            ));
        }
        Some((line, rec)) if dialect.header => (
            rec.iter().map(|f| text(f).into_owned()).collect::<Vec<_>>(),
            line,
            None,
        ),
        Some((_, rec)) => (vec![String::new(); rec.len()], 0, Some(rec.clone())),
    };
    let names = column_names(&labels);
    let forced = forced_types(spec, &names)?;
    let mut scan = Scan::new(spec, dialect, &names, &labels, forced);
    if let Some(rec) = first_row {
        scan.observe(1, &rec);
    }
    // Footnotes below the table must not decide a column's type.
    let mut notes = Notes::default();
    let mut complete = true;
    while let Some((line, rec)) = records.next_record()? {
        if notes.hold(line, rec, names.len()) {
            continue;
        }
        for (l, r) in notes.release() {
            scan.observe(l, &r);
        }
        scan.observe(line, rec);
        if limit.is_some_and(|l| scan.rows_read >= l) {
            complete = false;
            break;
        }
    }
    Ok(scan.decide(spec, &labels, header_line, complete))
}

/// The types the dataset file sets (every column text with `all_text`); a `[columns.x]` that
/// names no column is an error listing the columns.
fn forced_types(spec: &DatasetSpec, names: &[String]) -> Result<Vec<Option<ColumnType>>> {
    for key in spec.columns.keys() {
        if !names.contains(key) {
            return Err(Error::Config(format!(
                "dataset `{}`: [columns.{key}] names no column; the columns are: {}",
                spec.id,
                names.join(", ")
            )));
        }
    }
    Ok(names
        .iter()
        .map(|n| match spec.all_text {
            true => Some(ColumnType::String),
            false => spec.columns.get(n).and_then(|c| c.kind),
        })
        .collect())
}

/// What the rows read so far say about each column.
struct Scan<'a> {
    dialect: &'a Dialect,
    /// Placeholder columns for row checks; datetime offsets of forced columns are not known
    /// yet, so forced datetimes accept either form until decided.
    columns: Vec<Column>,
    forced: Vec<Option<ColumnType>>,
    forced_offset: Vec<Option<bool>>,
    cands: Vec<Candidates>,
    distinct: Vec<std::collections::HashSet<u64>>,
    lenient: Vec<NumStyle>,
    rows_read: u64,
}

impl<'a> Scan<'a> {
    fn new(
        spec: &DatasetSpec,
        dialect: &'a Dialect,
        names: &[String],
        labels: &[String],
        forced: Vec<Option<ColumnType>>,
    ) -> Self {
        let columns = names
            .iter()
            .zip(labels)
            .map(|(name, label)| Column {
                name: name.clone(),
                label: label.clone(),
                kind: ColumnType::String,
                nullable: true,
                description: spec.columns.get(name).and_then(|c| c.description.clone()),
                with_offset: false,
                geo: None,
            })
            .collect();
        let n = names.len();
        Scan {
            dialect,
            columns,
            forced,
            forced_offset: vec![None; n],
            cands: vec![Candidates::default(); n],
            distinct: vec![Default::default(); n],
            lenient: dialect.lenient_styles(),
            rows_read: 0,
        }
    }

    fn observe(&mut self, line: u64, rec: &csv::ByteRecord) {
        self.rows_read += 1;
        // Forced datetimes: the first value fixes whether the column carries offsets.
        for (i, kind) in self.forced.iter().enumerate() {
            if *kind == Some(ColumnType::Datetime)
                && self.forced_offset[i].is_none()
                && let Some(dt) = rec.get(i).and_then(|f| parse_datetime(&text(f)))
            {
                self.forced_offset[i] = Some(dt.with_offset);
                self.columns[i].with_offset = dt.with_offset;
            }
        }
        // The writing pass rejects and reports these rows; they decide nothing here.
        let fields: Vec<_> = rec.iter().map(text).collect();
        let fields: Vec<&str> = fields.iter().map(|f| f.as_ref()).collect();
        let problem = row_problem(
            &fields,
            &self.columns,
            &self.forced,
            self.dialect,
            &self.lenient,
        );
        if problem.is_some() {
            return;
        }
        for (i, field) in rec.iter().enumerate() {
            if let Some(seen) = self.distinct.get_mut(i)
                && seen.len() < DISTINCT_CAP
                && !field.is_empty()
            {
                seen.insert(xxhash_rust::xxh3::xxh3_64(field));
            }
            if self.forced[i].is_some() {
                continue;
            }
            let cell = text(field);
            if !self.dialect.is_null_typed(&cell) {
                self.cands[i].observe(&cell, line);
            }
        }
    }

    /// Each column's type, number styles and the reason, from what was seen.
    fn decide(
        mut self,
        spec: &DatasetSpec,
        labels: &[String],
        header_line: u64,
        complete: bool,
    ) -> Inferred {
        let mut styles = Vec::new();
        let mut decisions = Vec::new();
        for (i, col) in self.columns.iter_mut().enumerate() {
            let (kind, with_offset, col_styles, reason) = match self.forced[i] {
                Some(k) => (
                    k,
                    self.forced_offset[i].unwrap_or(false),
                    self.lenient.clone(),
                    "set in the dataset file".to_string(),
                ),
                None => {
                    let (kind, offset, style, reason) = self.cands[i].decide(&self.dialect.grouped);
                    (kind, offset, vec![style], reason)
                }
            };
            col.kind = kind;
            col.with_offset = with_offset;
            styles.push(col_styles);
            decisions.push(ColumnDecision {
                name: col.name.clone(),
                kind,
                reason,
            });
        }
        let empty_columns =
            (self.cands.iter().zip(&self.forced)).any(|(c, f)| f.is_none() && c.non_null == 0);
        let header_is_data = self.dialect.header
            && spec.csv.header.is_none()
            && header_is_data(labels, &self.columns, &styles, &self.forced);
        let rows = self.rows_read.max(1) as f64;
        Inferred {
            distinct_share: self
                .distinct
                .iter()
                .map(|d| d.len() as f64 / rows)
                .collect(),
            columns: self.columns,
            forced: self.forced,
            styles,
            decisions,
            header_line,
            complete,
            empty_columns,
            header_is_data,
            rows_read: self.rows_read,
        }
    }
}
