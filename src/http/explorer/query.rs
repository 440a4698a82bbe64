//! The explorer's query strings: the data route's parameters, in the order given, changed one
//! at a time by the links of a page (a sort, a facet, a filter removed, the next page).

use crate::query::params::takes_no_value;
use crate::query::request::AGGS;

/// A query string as pairs, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &str) -> Self {
        Params(
            url::form_urlencoded::parse(raw.as_bytes())
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Without the fields a form left empty (an empty filter is no filter), parameters
    /// written without a value kept.
    pub fn cleaned(self) -> Self {
        Params(
            (self.0.into_iter())
                .filter(|(k, v)| !v.is_empty() || key_only(k))
                .collect(),
        )
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, key: &str, value: &str) -> bool {
        self.0.iter().any(|(k, v)| k == key && v == value)
    }

    /// `key` set to `value`, in place of any value it had.
    pub fn set(&mut self, key: &str, value: &str) {
        self.remove(|k| k == key);
        self.0.push((key.to_string(), value.to_string()));
    }

    pub fn add(&mut self, key: &str, value: &str) {
        self.0.push((key.to_string(), value.to_string()));
    }

    pub fn remove(&mut self, mut unwanted: impl FnMut(&str) -> bool) {
        self.0.retain(|(k, _)| !unwanted(k));
    }

    /// A copy with `f` applied, back on the first page (a changed query starts over).
    pub fn with(&self, f: impl FnOnce(&mut Params)) -> Params {
        let mut p = self.clone();
        p.remove(|k| k == "cursor" || k == "page");
        f(&mut p);
        p
    }

    /// Whether the query aggregates (facets then do not apply).
    pub fn aggregates(&self) -> bool {
        self.0.iter().any(|(k, _)| {
            k.ends_with("__groupby") || AGGS.iter().any(|(a, _)| k.ends_with(&format!("__{a}")))
        })
    }

    /// The sort asked for `column`, if any: `asc` or `desc`.
    pub fn sort_of(&self, column: &str) -> Option<&str> {
        self.get(&format!("{column}__sort"))
    }

    pub fn to_query(&self) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if v.is_empty() && key_only(k) {
                ser.append_key_only(k);
            } else {
                ser.append_pair(k, v);
            }
        }
        ser.finish()
    }

    /// The explorer's URL of a dataset with these parameters.
    pub fn href(&self, id: &str) -> String {
        let query = self.to_query();
        let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        match query.is_empty() {
            true => format!("/datasets/{id}"),
            false => format!("/datasets/{id}?{query}"),
        }
    }

    /// The filters shown as removable chips: every condition but sorts, search, paging, facets.
    pub fn filters(&self) -> Vec<(String, String)> {
        let shown = |k: &str| {
            k.contains("__")
                && !k.ends_with("__sort")
                && !k.ends_with("__groupby")
                && !AGGS.iter().any(|(a, _)| k.ends_with(&format!("__{a}")))
        };
        (self.0.iter())
            .filter(|(k, _)| shown(k) || k == "or")
            .cloned()
            .collect()
    }
}

fn key_only(key: &str) -> bool {
    key.rsplit_once("__")
        .is_some_and(|(_, op)| takes_no_value(op))
}

/// The next sort of a column's header: ascending, then descending, then none.
pub fn next_sort(current: Option<&str>) -> Option<&'static str> {
    match current {
        None => Some("asc"),
        Some("asc") => Some("desc"),
        _ => None,
    }
}

/// The filter a click on a facet's value adds: the value itself, or the month's or year's
/// range of a date (`day:month` of `2024-06` → `day__greater=2024-06-01` and
/// `day__strictly_less=2024-07-01`).
pub fn facet_filter(facet: &str, value: &str, datetime: bool) -> Vec<(String, String)> {
    let Some((column, bucket)) = facet.rsplit_once(':') else {
        return vec![(format!("{facet}__exact"), value.to_string())];
    };
    let (year, month) = match (bucket, value.split_once('-')) {
        ("month", Some((y, m))) => (y.parse::<i32>().ok(), m.parse::<u32>().ok()),
        ("year", None) => (value.parse::<i32>().ok(), None),
        _ => (None, None),
    };
    let Some(year) = year else {
        return Vec::new();
    };
    let (from, to) = match month {
        Some(12) => ((year, 12), (year + 1, 1)),
        Some(m) => ((year, m), (year, m + 1)),
        None => ((year, 1), (year + 1, 1)),
    };
    let time = if datetime { "T00:00:00" } else { "" };
    let day = |(y, m): (i32, u32)| format!("{y:04}-{m:02}-01{time}");
    vec![
        (format!("{column}__greater"), day(from)),
        (format!("{column}__strictly_less"), day(to)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_fields_go_and_links_start_over() {
        let p = Params::parse("nom__contains=&region__exact=84&code__isnull&cursor=abc&q=");
        let p = p.cleaned();
        assert_eq!(p.to_query(), "region__exact=84&code__isnull&cursor=abc");
        let sorted = p.with(|p| p.set("nom__sort", "asc"));
        assert_eq!(
            sorted.href("d"),
            "/datasets/d?region__exact=84&code__isnull&nom__sort=asc"
        );
        assert_eq!(p.filters().len(), 2);
        assert_eq!(next_sort(None), Some("asc"));
        assert_eq!(next_sort(Some("asc")), Some("desc"));
        assert_eq!(next_sort(Some("desc")), None);
    }

    #[test]
    fn a_facet_click_is_a_filter_on_the_value_or_its_month() {
        assert_eq!(
            facet_filter("region", "84", false),
            [("region__exact".to_string(), "84".to_string())]
        );
        let month = facet_filter("jour:month", "2024-12", false);
        assert_eq!(month[0].1, "2024-12-01");
        assert_eq!(
            month[1],
            ("jour__strictly_less".to_string(), "2025-01-01".to_string())
        );
        let year = facet_filter("t:year", "2024", true);
        assert_eq!(year[1].1, "2025-01-01T00:00:00");
    }
}
