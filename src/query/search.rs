//! Full-text search: `q=words` (every word somewhere in the row's text columns) and
//! `col__search=words` (every word in that column), words compared folded
//! ([`crate::dataset::words`]), ranked by relevance on `q_sort=relevance`.
//!
//! A search becomes an expression like any filter, so every way a query runs (pages, exports,
//! aggregations, facets) applies it. Before planning, the executor resolves each term against
//! the version's word index into the set of rows that match ([`RowSet`], one bit a row), and
//! the expression tests a row's number against it; a version without an index (written before
//! there was one) is searched by folding its cells instead, with the same answers.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, ident,
};

use super::executor::{Executor, Loaded};
use super::request::DataQuery;
use super::sidecar::Postings;
use crate::dataset::schema::{Column, ColumnType, ROW_COLUMN};
use crate::dataset::words::{WORDS_FILE, for_each_word, words};
use crate::error::{Error, Result};

/// The most words one search term may hold.
pub const MAX_WORDS: usize = 16;

/// The search conditions of a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Search {
    pub terms: Vec<Term>,
    /// Rows ordered by relevance (`q_sort=relevance`).
    pub ranked: bool,
    /// Each word's weight in the relevance, by its rarity (from the index; 1 without one).
    pub weights: Vec<(String, f64)>,
}

/// Words that must all appear in a row's text columns (`q`) or in one column (`col__search`).
#[derive(Debug, Clone)]
pub struct Term {
    /// The column of `col__search`; `None` for `q`.
    pub column: Option<String>,
    /// The columns searched: the one named, or every text column.
    pub columns: Vec<String>,
    /// The words, folded, each once, in the order given.
    pub words: Vec<String>,
    /// The rows that match, once resolved against the version's word index.
    pub rows: Option<Arc<RowSet>>,
}

/// Terms are the same term whether or not they were resolved yet.
impl PartialEq for Term {
    fn eq(&self, other: &Self) -> bool {
        self.column == other.column && self.words == other.words
    }
}

impl Search {
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// A term from a request: `q` when `column` is `None`. Words that fold to nothing (only
    /// punctuation) are a 400, as is a search on a column that is not text.
    pub fn add(
        &mut self,
        column: Option<&Column>,
        text: &str,
        key: &str,
        schema: &[Column],
    ) -> Result<()> {
        let columns: Vec<String> = match column {
            Some(c) if c.kind != ColumnType::String => {
                return Err(Error::bad_request(format!(
                    "`{key}`: search looks for words in text, and `{}` is {}; filter it with `__exact`, `__in`, `__less` or `__greater`",
                    c.name,
                    c.kind.as_str()
                )));
            }
            Some(c) => vec![c.name.clone()],
            None => schema
                .iter()
                .filter(|c| c.kind == ColumnType::String)
                .map(|c| c.name.clone())
                .collect(),
        };
        let mut found: Vec<String> = Vec::new();
        for w in words(text) {
            if !found.contains(&w) {
                found.push(w);
            }
        }
        if found.is_empty() {
            return Err(Error::bad_request(format!(
                "`{key}={text}` holds no word to search for: give letters or digits (case, accents and Arabic diacritics do not matter)"
            )));
        }
        if found.len() > MAX_WORDS {
            return Err(Error::bad_request(format!(
                "`{key}` holds {} words; at most {MAX_WORDS} a search",
                found.len()
            )));
        }
        self.terms.push(Term {
            column: column.map(|c| c.name.clone()),
            columns,
            words: found,
            rows: None,
        });
        Ok(())
    }

    /// `q_sort`: `relevance` only, and only with a search.
    pub fn rank(&mut self, value: &str) -> Result<()> {
        if value != "relevance" {
            return Err(Error::bad_request(format!(
                "`q_sort={value}`: the one order of a search is `relevance`"
            )));
        }
        self.ranked = true;
        Ok(())
    }

    /// What needs the whole query: a ranking takes the place of sorts; without a search there
    /// is nothing to rank (rows then come in file order, as any search's rows would).
    pub fn check(&mut self, sorted: bool, aggregate: bool) -> Result<()> {
        if self.terms.is_empty() {
            self.ranked = false;
        }
        if self.ranked && (sorted || aggregate) {
            return Err(Error::bad_request(
                "`q_sort=relevance` is the order of the rows: drop the `__sort` parameters and aggregations, or `q_sort`",
            ));
        }
        Ok(())
    }

    /// The canonical text: `q` terms, then `col__search` terms by column, then `q_sort`.
    pub fn append_to(&self, ser: &mut url::form_urlencoded::Serializer<'static, String>) {
        let mut terms: Vec<&Term> = self.terms.iter().collect();
        terms.sort_by(|a, b| (&a.column, &a.words).cmp(&(&b.column, &b.words)));
        for t in terms {
            let key = match &t.column {
                None => "q".to_string(),
                Some(c) => format!("{c}__search"),
            };
            ser.append_pair(&key, &t.words.join(" "));
        }
        if self.ranked {
            ser.append_pair("q_sort", "relevance");
        }
    }

    /// Every term as a condition on a row.
    pub fn exprs(&self) -> impl Iterator<Item = Expr> + '_ {
        self.terms.iter().map(|t| match &t.rows {
            Some(rows) => rows_in(rows),
            None => {
                let cells = t.columns.iter().map(ident).collect();
                udf(Matches(t.words.clone())).call(cells)
            }
        })
    }

    /// The relevance of a row, when ranked: how often the words appear in its searched text,
    /// rarer words weighing more, shorter text more (BM25's shape, with k1 1.2, b 0.75 and an
    /// average of 8 words a row).
    pub fn relevance(&self) -> Option<Expr> {
        if !self.ranked {
            return None;
        }
        let mut columns: Vec<&String> = self.terms.iter().flat_map(|t| &t.columns).collect();
        columns.sort();
        columns.dedup();
        let mut weights = self.weights.clone();
        for t in &self.terms {
            for w in &t.words {
                if !weights.iter().any(|(x, _)| x == w) {
                    weights.push((w.clone(), 1.0));
                }
            }
        }
        let cells = columns.into_iter().map(ident).collect();
        Some(udf(Relevance(weights)).call(cells))
    }
}

impl Executor {
    /// The query with its search terms and spatial conditions resolved against the version's
    /// indexes ([`Executor::resolve_geo`]).
    ///
    /// Search terms resolve into the rows they match, and the words' weights for a ranking;
    /// they are unchanged when there is nothing to resolve, or no index (its terms are then
    /// searched by folding cells).
    pub async fn resolve<'q>(&self, v: &Loaded, q: &'q DataQuery) -> Result<Cow<'q, DataQuery>> {
        let searched = self.resolve_search(v, q).await?;
        self.resolve_geo(v, searched).await
    }

    async fn resolve_search<'q>(&self, v: &Loaded, q: &'q DataQuery) -> Result<Cow<'q, DataQuery>> {
        if q.search.terms.iter().all(|t| t.rows.is_some()) {
            return Ok(Cow::Borrowed(q));
        }
        let index = self
            .read_once(&v.words, v, |storage, manifest| {
                let ranges = Arc::clone(&self.ranges);
                async move { Postings::open_named(&storage, &manifest, WORDS_FILE, ranges).await }
            })
            .await?;
        let Some(index) = index else {
            return Ok(Cow::Borrowed(q));
        };
        let rows = v.manifest.rows;
        let mut resolved = q.clone();
        let mut weights = resolved.search.weights.clone();
        for term in &mut resolved.search.terms {
            if term.rows.is_some() || !term.columns.iter().all(|c| index.has(c)) {
                continue;
            }
            let mut all: Option<RowSet> = None;
            for word in &term.words {
                // The word's rows in any of the term's columns.
                let mut any = RowSet::of(&[], rows);
                for column in &term.columns {
                    let found =
                        index.matches(column, std::slice::from_ref(word), None, 0, usize::MAX);
                    if let Some(m) = found.await? {
                        any.insert(&m.rows);
                    }
                }
                // Rarer words weigh more in a ranking: log(1 + N / rows holding the word).
                let holding = any.len() as f64;
                if !weights.iter().any(|(w, _)| w == word) {
                    weights.push((word.clone(), (1.0 + rows as f64 / (holding + 0.5)).ln()));
                }
                match &mut all {
                    Some(set) => set.intersect(&any),
                    None => all = Some(any),
                }
            }
            term.rows = all.map(Arc::new);
        }
        resolved.search.weights = weights;
        Ok(Cow::Owned(resolved))
    }
}

/// Rows as bits, one per row number.
#[derive(Debug, Clone, PartialEq)]
pub struct RowSet {
    bits: Vec<u64>,
}

impl RowSet {
    /// The set of these rows, of a version of `rows` rows.
    pub fn of(numbers: &[u32], rows: u64) -> Self {
        let mut set = RowSet {
            bits: vec![0u64; rows.div_ceil(64) as usize],
        };
        set.insert(numbers);
        set
    }

    /// Adds these rows (those past the version's rows are not rows of it).
    pub fn insert(&mut self, numbers: &[u32]) {
        for n in numbers {
            if let Some(word) = self.bits.get_mut(*n as usize / 64) {
                *word |= 1 << (n % 64);
            }
        }
    }

    pub fn contains(&self, row: i64) -> bool {
        usize::try_from(row).is_ok_and(|r| {
            self.bits
                .get(r / 64)
                .is_some_and(|w| w & (1 << (r % 64)) != 0)
        })
    }

    pub fn intersect(&mut self, other: &RowSet) {
        for (a, b) in self.bits.iter_mut().zip(&other.bits) {
            *a &= b;
        }
    }

    pub fn len(&self) -> u64 {
        self.bits.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }
}

fn udf(inner: impl ScalarUDFImpl + 'static) -> ScalarUDF {
    ScalarUDF::new_from_impl(inner)
}

/// The text of a string array's cells, whatever its layout.
type Cells<'a> = Box<dyn Fn(usize) -> Option<&'a str> + 'a>;

fn cells(array: &ArrayRef) -> Result<Cells<'_>> {
    Ok(match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            Box::new(move |i| a.is_valid(i).then(|| a.value(i)))
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            Box::new(move |i| a.is_valid(i).then(|| a.value(i)))
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            Box::new(move |i| a.is_valid(i).then(|| a.value(i)))
        }
        other => return Err(Error::internal(format!("search over a {other} column"))),
    })
}

/// The arguments as arrays of `rows` rows.
pub(super) fn arrays(
    args: ScalarFunctionArgs,
) -> datafusion::error::Result<(Vec<ArrayRef>, usize)> {
    let rows = args.number_rows;
    let arrays = (args.args.into_iter())
        .map(|a| a.into_array(rows))
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    Ok((arrays, rows))
}

fn engine_error(e: Error) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::Execution(e.to_string())
}

/// For each row, what `row` makes of how often each of `words` occurs among the words of the
/// row's cells (folded), and of how many words they hold.
fn tally<T>(
    args: ScalarFunctionArgs,
    words: &[&str],
    mut row: impl FnMut(&[u32], u32) -> T,
) -> datafusion::error::Result<Vec<T>> {
    let (arrays, rows) = arrays(args)?;
    let columns = (arrays.iter())
        .map(cells)
        .collect::<Result<Vec<_>>>()
        .map_err(engine_error)?;
    let mut folded = String::new();
    let mut tf = vec![0u32; words.len()];
    let mut out = Vec::with_capacity(rows);
    for i in 0..rows {
        tf.iter_mut().for_each(|t| *t = 0);
        let mut length = 0u32;
        for text in columns.iter().filter_map(|c| c(i)) {
            for_each_word(text, &mut folded, |w| {
                length += 1;
                if let Some(k) = words.iter().position(|x| *x == w) {
                    tf[k] += 1;
                }
            });
        }
        out.push(row(&tf, length));
    }
    Ok(out)
}

static ANY_ARGS: std::sync::LazyLock<Signature> =
    std::sync::LazyLock::new(|| Signature::variadic_any(Volatility::Immutable));

/// `qanat_rows(__row)`: the condition that a row is in the set (a search's, or the rows the
/// spatial index gives).
pub(super) fn rows_in(rows: &Arc<RowSet>) -> Expr {
    udf(RowsIn(Arc::clone(rows))).call(vec![ident(ROW_COLUMN)])
}

/// `qanat_rows(__row)`: whether the row is in the set a search resolved to.
#[derive(Debug)]
struct RowsIn(Arc<RowSet>);

impl PartialEq for RowsIn {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for RowsIn {}
impl Hash for RowsIn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.0).hash(state);
    }
}

impl ScalarUDFImpl for RowsIn {
    fn name(&self) -> &str {
        "qanat_rows"
    }
    fn signature(&self) -> &Signature {
        &ANY_ARGS
    }
    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let (arrays, _) = arrays(args)?;
        let numbers = arrays[0].as_primitive::<Int64Type>();
        let out: BooleanArray = numbers
            .values()
            .iter()
            .map(|r| Some(self.0.contains(*r)))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `qanat_matches(cells…)`: whether every word is among the words of the cells, folded here.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Matches(Vec<String>);

impl ScalarUDFImpl for Matches {
    fn name(&self) -> &str {
        "qanat_matches"
    }
    fn signature(&self) -> &Signature {
        &ANY_ARGS
    }
    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let words: Vec<&str> = self.0.iter().map(String::as_str).collect();
        let found = tally(args, &words, |tf, _| tf.iter().all(|t| *t > 0))?;
        let out = BooleanArray::from(found);
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `qanat_relevance(cells…)`: a row's relevance to the words, each with its weight.
#[derive(Debug)]
struct Relevance(Vec<(String, f64)>);

impl PartialEq for Relevance {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && (self.0.iter().zip(&other.0))
                .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits())
    }
}
impl Eq for Relevance {}
impl Hash for Relevance {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for (w, weight) in &self.0 {
            w.hash(state);
            weight.to_bits().hash(state);
        }
    }
}

impl ScalarUDFImpl for Relevance {
    fn name(&self) -> &str {
        "qanat_relevance"
    }
    fn signature(&self) -> &Signature {
        &ANY_ARGS
    }
    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let words: Vec<&str> = self.0.iter().map(|(w, _)| w.as_str()).collect();
        let scores = tally(args, &words, |tf, length| {
            let norm = 1.2 * (0.25 + 0.75 * f64::from(length) / 8.0);
            (self.0.iter().zip(tf))
                .map(|((_, weight), t)| {
                    let t = f64::from(*t);
                    weight * t * 2.2 / (t + norm)
                })
                .sum::<f64>()
        })?;
        let out = Float64Array::from(scores);
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_sets_combine_as_sets() {
        let mut a = RowSet::of(&[0, 5, 64, 99], 100);
        let b = RowSet::of(&[5, 64, 70], 100);
        assert!(a.contains(99) && !a.contains(98) && !a.contains(-1) && !a.contains(1000));
        let mut u = a.clone();
        u.insert(&[5, 64, 70]);
        assert_eq!(u.len(), 5);
        a.intersect(&b);
        assert_eq!(a.len(), 2);
        assert!(a.contains(5) && a.contains(64) && !a.contains(0));
        a.intersect(&RowSet::of(&[], 100));
        assert!(a.is_empty());
    }

    #[test]
    fn terms_fold_their_words_and_refuse_empty_ones() {
        let schema = vec![
            Column::new("nom", ColumnType::String),
            Column::new("n", ColumnType::Integer),
        ];
        let mut s = Search::default();
        s.add(None, "FÈS fes, Meknès", "q", &schema).unwrap();
        assert_eq!(s.terms[0].words, ["fes", "meknes"]);
        assert_eq!(s.terms[0].columns, ["nom"]);
        let e = s.add(None, " ,;- ", "q", &schema).unwrap_err().to_string();
        assert!(e.contains("no word to search for"), "{e}");
        let e = s
            .add(Some(&schema[1]), "3", "n__search", &schema)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`n` is integer"), "{e}");
        assert!(s.rank("date").is_err());
        let mut ranked = Search::default();
        ranked.rank("relevance").unwrap();
        ranked.check(true, false).unwrap();
        assert!(!ranked.ranked, "nothing to rank without a search");
        s.ranked = true;
        assert!(s.check(true, false).is_err());
        assert!(s.check(false, false).is_ok());
    }
}
