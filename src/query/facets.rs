//! Facets: the most frequent values of columns among the rows a query keeps, counted exactly
//! alongside its page, each within a time budget of its own (a facet past it is reported
//! truncated and the page answers all the same).

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, Int64Array, StringArray};
use arrow::datatypes::{DataType, Date32Type, Field, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{ident, lit};

use super::executor::{Executor, Loaded};
use super::plan::predicate;
use super::request::DataQuery;
use crate::dataset::manifest::Manifest;
use crate::dataset::schema::{Column, ColumnType};
use crate::error::{Error, Result};

/// Values a facet lists unless `facet_size` says otherwise.
pub const DEFAULT_SIZE: u64 = 30;
/// The most values a facet may list.
pub const MAX_SIZE: u64 = 100;

/// Dates and datetimes counted by month or by year instead of by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    Month,
    Year,
}

/// One column to count the values of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Facet {
    pub column: String,
    pub bucket: Option<Bucket>,
}

impl Facet {
    /// The facet as written in `facets=` and as its key in `meta.facets`: `col`, `col:month`.
    pub fn text(&self) -> String {
        match self.bucket {
            None => self.column.clone(),
            Some(Bucket::Month) => format!("{}:month", self.column),
            Some(Bucket::Year) => format!("{}:year", self.column),
        }
    }

    /// The month (`2030-06`) or year (`2030`) of a day counted since 1970-01-01.
    fn bucket_of(bucket: Bucket, days: i32) -> String {
        let day = crate::values::date_of_days(i64::from(days)).unwrap_or_default();
        match bucket {
            Bucket::Month => day.format("%Y-%m").to_string(),
            Bucket::Year => day.format("%Y").to_string(),
        }
    }
}

/// The facets of a request and how many values each lists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Facets {
    pub list: Vec<Facet>,
    pub size: u64,
}

impl Facets {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `facets=a,b:month` and `facet_size=N` (either may be absent), checked against the
    /// schema: known columns, each once, months and years of dates and datetimes only, at most
    /// `max` facets.
    pub fn parse(
        list: Option<&str>,
        size: Option<&str>,
        schema: &[Column],
        max: usize,
    ) -> Result<Facets> {
        let size = match size {
            None => DEFAULT_SIZE,
            Some(text) => match text.parse::<u64>() {
                Ok(n) if (1..=MAX_SIZE).contains(&n) => n,
                _ => {
                    return Err(Error::bad_request(format!(
                        "`facet_size={text}`: the values a facet lists, a whole number from 1 to {MAX_SIZE}"
                    )));
                }
            },
        };
        let mut facets = Facets {
            list: Vec::new(),
            size,
        };
        let Some(list) = list else {
            return Ok(facets);
        };
        let known = || {
            let names: Vec<&str> = schema.iter().map(|c| c.name.as_str()).collect();
            names.join(", ")
        };
        for item in list.split(',') {
            let (name, bucket) = match item.rsplit_once(':') {
                Some((name, "month")) => (name, Some(Bucket::Month)),
                Some((name, "year")) => (name, Some(Bucket::Year)),
                _ => (item, None),
            };
            let Some(col) = schema.iter().find(|c| c.name == name) else {
                let why = match item {
                    "" => "an empty name".to_string(),
                    _ => format!("unknown column `{name}`"),
                };
                return Err(Error::bad_request(format!(
                    "`facets={list}`: {why}; facets are column names separated by commas, \
                     a date or datetime column followed by `:month` or `:year`, from: {}",
                    known()
                )));
            };
            if bucket.is_some() && !matches!(col.kind, ColumnType::Date | ColumnType::Datetime) {
                return Err(Error::bad_request(format!(
                    "`facets={list}`: `{item}` counts by month or year, which only date and datetime \
                     columns have; `{name}` is {}",
                    col.kind.as_str()
                )));
            }
            let facet = Facet {
                column: col.name.clone(),
                bucket,
            };
            if facets.list.contains(&facet) {
                return Err(Error::bad_request(format!(
                    "`facets={list}` lists `{item}` twice"
                )));
            }
            facets.list.push(facet);
        }
        if facets.list.len() > max {
            return Err(Error::bad_request(format!(
                "`facets={list}` asks for {} facets; at most {max} a request",
                facets.list.len()
            )));
        }
        Ok(facets)
    }

    /// The canonical text: the facets in the order asked, the size when it is not the default.
    pub fn append_to(&self, ser: &mut url::form_urlencoded::Serializer<'static, String>) {
        if self.list.is_empty() {
            return;
        }
        let texts: Vec<String> = self.list.iter().map(Facet::text).collect();
        ser.append_pair("facets", &texts.join(","));
        if self.size != DEFAULT_SIZE {
            ser.append_pair("facet_size", &self.size.to_string());
        }
    }
}

/// What a facet found among the rows a query keeps.
pub struct Counted {
    pub facet: Facet,
    /// `value` and `count` of the most frequent values (most frequent first, then by value),
    /// nulls apart; empty when truncated.
    pub values: Vec<RecordBatch>,
    /// Rows with no value.
    pub nulls: u64,
    /// Rows counted in `values`.
    pub listed: u64,
    /// Whether the count ran past its budget (nothing is then listed).
    pub truncated: bool,
}

impl Counted {
    /// Rows whose value is not listed, given the rows the query keeps.
    pub fn others(&self, total: u64) -> u64 {
        total.saturating_sub(self.nulls + self.listed)
    }
}

impl Executor {
    /// Every facet of the query, counted over the rows its filters keep, at once, each within
    /// `budget`. Its search terms are evaluated as they come: resolve them first
    /// ([`Executor::resolve`]) to count from the word index.
    pub async fn facets(&self, v: &Loaded, q: &DataQuery, budget: Duration) -> Vec<Counted> {
        let each = q.facets.list.iter().map(|facet| async move {
            let counted = tokio::time::timeout(budget, self.facet(v, q, facet)).await;
            match counted {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => {
                    tracing::warn!(facet = %facet.text(), error = %e, "facet failed");
                    truncated(facet)
                }
                Err(_) => truncated(facet),
            }
        });
        futures::future::join_all(each).await
    }

    /// One facet: the filtered rows grouped by value and counted.
    async fn facet(&self, v: &Loaded, q: &DataQuery, facet: &Facet) -> Result<Counted> {
        let df = self.engine.read(super::geo::table_for(v, q))?;
        let df = match predicate(q) {
            Some(p) => df.filter(p)?,
            None => df,
        };
        let size = q.facets.size as usize;
        let Some(bucket) = facet.bucket else {
            // The null group first, then the most frequent values, as many as asked.
            let value = ident("value");
            let df = df
                .aggregate(
                    vec![ident(&facet.column).alias("value")],
                    vec![count(lit(1)).alias("count")],
                )?
                .sort(vec![
                    value.clone().is_null().sort(false, false),
                    ident("count").sort(false, false),
                    value.sort(true, false),
                ])?
                .limit(0, Some(size + 1))?;
            let batches = self.engine.collect(df).await?;
            return top_values(facet, batches, size);
        };
        // Months and years: rows counted by day (a cheap integer grouping with few groups),
        // then the days' counts added up by month or year here.
        let day = datafusion::logical_expr::cast(ident(&facet.column), DataType::Date32);
        let df = df.aggregate(vec![day.alias("day")], vec![count(lit(1)).alias("count")])?;
        let batches = self.engine.collect(df).await?;
        let mut nulls = 0;
        let mut by_bucket: std::collections::BTreeMap<String, u64> = Default::default();
        for b in &batches {
            let days = b.column(0).as_primitive::<Date32Type>();
            let counts = b.column(1).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                let n = counts.value(i) as u64;
                match days.is_null(i) {
                    true => nulls += n,
                    false => {
                        *by_bucket
                            .entry(Facet::bucket_of(bucket, days.value(i)))
                            .or_default() += n
                    }
                }
            }
        }
        let mut ranked: Vec<(String, u64)> = by_bucket.into_iter().collect();
        // Most frequent first; the map gave them in order of value, which breaks ties.
        ranked.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        ranked.truncate(size);
        let listed = ranked.iter().map(|(_, n)| n).sum();
        let schema = Arc::new(Schema::new(vec![
            Field::new("value", DataType::Utf8, true),
            Field::new("count", DataType::Int64, false),
        ]));
        let (values, counts): (Vec<String>, Vec<i64>) =
            ranked.into_iter().map(|(v, n)| (v, n as i64)).unzip();
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(values)),
                Arc::new(Int64Array::from(counts)),
            ],
        )?;
        Ok(Counted {
            facet: facet.clone(),
            values: vec![batch],
            nulls,
            listed,
            truncated: false,
        })
    }
}

/// A facet's counts from the groups of its top-N plan: the null group apart, the values kept.
fn top_values(facet: &Facet, batches: Vec<RecordBatch>, size: usize) -> Result<Counted> {
    let (mut nulls, mut listed, mut values) = (0, 0, Vec::new());
    let mut room = size;
    for b in batches {
        let counts = b.column(1).as_primitive::<Int64Type>().clone();
        let mut keep = Vec::new();
        for i in 0..b.num_rows() {
            let n = counts.value(i) as u64;
            if b.column(0).is_null(i) {
                nulls = n;
            } else if room > 0 {
                room -= 1;
                listed += n;
                keep.push(i as u32);
            }
        }
        let indices = arrow::array::UInt32Array::from(keep);
        values.push(arrow::compute::take_record_batch(&b, &indices)?);
    }
    Ok(Counted {
        facet: facet.clone(),
        values,
        nulls,
        listed,
        truncated: false,
    })
}

/// Columns worth faceting, from the profile: text, integers and booleans with 2 to
/// [`DEFAULT_SIZE`] distinct values that repeat, and dates and datetimes spanning several months
/// (`:month`, up to five years of them) or years (`:year`).
pub fn suggested(m: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    for p in &m.profile {
        let values = m.rows.saturating_sub(p.nulls);
        match p.kind {
            ColumnType::String | ColumnType::Integer | ColumnType::Boolean => {
                if (2..=DEFAULT_SIZE).contains(&p.distinct) && p.distinct < values {
                    out.push(p.name.clone());
                }
            }
            ColumnType::Date | ColumnType::Datetime => {
                let month = |v: &serde_json::Value| {
                    let text = v.as_str()?;
                    let year: i64 = text.get(..4)?.parse().ok()?;
                    let month: i64 = text.get(5..7)?.parse().ok()?;
                    Some(year * 12 + month - 1)
                };
                let (Some(first), Some(last)) = (month(&p.min), month(&p.max)) else {
                    continue;
                };
                if (1..60).contains(&(last - first)) {
                    out.push(format!("{}:month", p.name));
                }
                if last / 12 > first / 12 {
                    out.push(format!("{}:year", p.name));
                }
            }
            ColumnType::Float => {}
        }
    }
    out
}

fn truncated(facet: &Facet) -> Counted {
    Counted {
        facet: facet.clone(),
        values: Vec::new(),
        nulls: 0,
        listed: 0,
        truncated: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Vec<Column> {
        vec![
            Column::new("city", ColumnType::String),
            Column::new("day", ColumnType::Date),
            Column::new("n", ColumnType::Integer),
        ]
    }

    #[test]
    fn facets_parse_against_the_schema() {
        let f = Facets::parse(Some("city,day:month,day"), Some("5"), &schema(), 10).unwrap();
        let texts: Vec<String> = f.list.iter().map(Facet::text).collect();
        assert_eq!(texts, ["city", "day:month", "day"]);
        assert_eq!(f.size, 5);
        assert_eq!(Facets::parse(None, None, &schema(), 10).unwrap().size, 30);
        let err = |list: &str, size: Option<&str>| {
            Facets::parse(Some(list), size, &schema(), 2)
                .unwrap_err()
                .to_string()
        };
        assert!(err("nope", None).contains("unknown column `nope`"));
        assert!(err("city,", None).contains("an empty name"));
        assert!(err("n:month", None).contains("`n` is integer"));
        assert!(err("city,city", None).contains("twice"));
        assert!(err("city,day,n", None).contains("at most 2"));
        assert!(err("city", Some("0")).contains("from 1 to 100"));
        assert!(err("city", Some("101")).contains("from 1 to 100"));
    }
}
