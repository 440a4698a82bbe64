//! The explorer's pages as maud templates: every value interpolated is escaped, attributes too.

use std::collections::BTreeMap;

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::query::{Params, facet_filter, next_sort};
use crate::dataset::manifest::ColumnProfile;
use crate::dataset::schema::ColumnType;
use crate::http::datasets::{DatasetDetail, DatasetList};
use crate::state::AppState;
use crate::values::json_text as text;

/// A page: the stylesheet, the script (deferred), a header back to the catalog.
fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — qanat" }
                link rel="stylesheet" href="/assets/explorer.css";
                // No icon to fetch (browsers ask for /favicon.ico otherwise).
                link rel="icon" href="data:,";
                script src="/assets/explorer.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "qanat" }
                    nav { a href="/" { "Catalogue" } " · " a href="/docs" { "API" } }
                }
                main { (body) }
            }
        }
    }
}

/// A readable error page.
pub fn error(status: axum::http::StatusCode, detail: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    layout(
        title,
        html! {
            section.error {
                h1 { (status.as_u16()) " " (title) }
                p.detail { (detail) }
                p { a href="/" { "Back to the catalogue" } }
            }
        },
    )
}

/// Producers and keywords of the whole catalog, with how many datasets each has.
pub struct CatalogFacets {
    producers: Vec<(String, usize)>,
    keywords: Vec<(String, usize)>,
}

impl CatalogFacets {
    pub fn of(state: &AppState) -> Self {
        let (mut producers, mut keywords) = (BTreeMap::new(), BTreeMap::new());
        for e in state.catalog.entries() {
            if e.spec.retired().is_some() {
                continue;
            }
            if let Some(p) = &e.spec.producer {
                *producers.entry(p.clone()).or_insert(0) += 1;
            }
            for k in &e.spec.keywords {
                *keywords.entry(k.clone()).or_insert(0) += 1;
            }
        }
        let ranked = |m: BTreeMap<String, usize>| {
            let mut v: Vec<(String, usize)> = m.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(30);
            v
        };
        CatalogFacets {
            producers: ranked(producers),
            keywords: ranked(keywords),
        }
    }
}

/// `20261127T182840398-…` as `2026-11-27 18:28 UTC`.
fn version_time(version: &str) -> String {
    let b = version.as_bytes();
    if b.len() < 13 || b[8] != b'T' {
        return version.to_string();
    }
    let s = |r: std::ops::Range<usize>| version.get(r).unwrap_or("");
    format!(
        "{}-{}-{} {}:{} UTC",
        s(0..4),
        s(4..6),
        s(6..8),
        s(9..11),
        s(11..13)
    )
}

/// The catalog page.
pub fn catalog(list: &DatasetList, params: &Params, facets: &CatalogFacets) -> Markup {
    let words = params.get("q").unwrap_or("");
    let link = |key: &str, value: &str| {
        let p = params.with(|p| p.set(key, value));
        format!("/?{}", p.to_query())
    };
    let shown = list.data.len() as u64;
    let first = (list.meta.page - 1) * list.meta.page_size;
    layout(
        "Catalogue",
        html! {
            h1 { "Catalogue" }
            form.search method="get" action="/" role="search" {
                input type="search" name="q" value=(words) placeholder="Search the datasets" aria-label="Search the datasets";
                @for (k, v) in params.pairs() {
                    @if k == "producer" || k == "keyword" { input type="hidden" name=(k) value=(v); }
                }
                button type="submit" { "Search" }
            }
            div.layout {
                aside.facets {
                    h2 { "Producers" }
                    ul { @for (p, n) in &facets.producers {
                        li { a href=(link("producer", p)) { (p) } " " span.count { (n) } }
                    } }
                    h2 { "Keywords" }
                    ul { @for (k, n) in &facets.keywords {
                        li { a href=(link("keyword", k)) { (k) } " " span.count { (n) } }
                    } }
                }
                section.datasets {
                    p.summary {
                        @if list.meta.total == 0 { "No dataset matches." }
                        @else { "Datasets " (first + 1) "–" (first + shown) " of " (list.meta.total) }
                        @for (k, v) in params.pairs() {
                            @if k == "producer" || k == "keyword" || k == "q" {
                                " " a.chip href=(format!("/?{}", params.with(|p| p.remove(|x| x == k)).to_query())) title="Remove" { (k) ": " (v) " ×" }
                            }
                        }
                    }
                    ul.cards {
                        @for d in &list.data {
                            li.card {
                                h3 { a href=(format!("/datasets/{}", d.id)) { (d.title) } }
                                p.meta {
                                    code { (d.id) }
                                    @if let Some(p) = &d.producer { " · " (p) }
                                    " · "
                                    @match d.rows { Some(r) => { span.rows { (r) " rows" } }, None => { "no data yet" } }
                                    @if let Some(v) = &d.version { " · updated " (version_time(v)) }
                                }
                                @if !d.description.is_empty() { p.description { (d.description) } }
                            }
                        }
                    }
                    nav.pager {
                        @if list.meta.page > 1 { a rel="prev" href=(link("page", &(list.meta.page - 1).to_string())) { "← Previous" } }
                        @if first + shown < list.meta.total { a rel="next" href=(link("page", &(list.meta.page + 1).to_string())) { "Next →" } }
                    }
                }
            }
        },
    )
}

/// What a dataset page is drawn from.
pub struct DatasetView<'a> {
    pub base: &'a str,
    pub detail: &'a DatasetDetail,
    pub profile: &'a [ColumnProfile],
    /// The query as the explorer's URL carries it.
    pub params: &'a Params,
    /// The query asked of the data route (with the suggested facets).
    pub query: &'a str,
}

/// The dataset page: the rows of the query (or why it was refused), and everything around.
pub fn dataset(view: &DatasetView, page: Result<&Value, &str>) -> Markup {
    let d = view.detail;
    let s = &d.summary;
    layout(
        &s.title,
        html! {
            section.about {
                h1 { (s.title) }
                @if !s.description.is_empty() { p.description { (s.description) } }
                dl {
                    @if let Some(p) = &s.producer { dt { "Producer" } dd { (p) } }
                    @if let Some(l) = &s.licence { dt { "Licence" } dd { (l) } }
                    dt { "Source" } dd { code { (d.source) } }
                    dt { "Rows" } dd { @match s.rows { Some(r) => (r), None => "no data yet" } }
                    @if let Some(v) = &s.version { dt { "Updated" } dd { (version_time(v)) } }
                    @if !s.keywords.is_empty() { dt { "Keywords" } dd { (s.keywords.join(", ")) } }
                }
                @if let Some(e) = &d.last_error { p.warning { "The last ingest failed: " (e) } }
            }
            (search_form(view))
            div.layout {
                aside.facets {
                    @if let Ok(page) = page { (facets(view, page)) }
                }
                section.rows {
                    (filter_form(view))
                    @match page {
                        Ok(page) => (rows(view, page)),
                        Err(detail) => p.problem role="alert" { (detail) },
                    }
                }
            }
            (api(view))
            (columns(view))
            (versions(view))
        },
    )
}

fn search_form(view: &DatasetView) -> Markup {
    let kept = view.params.with(|p| p.remove(|k| k == "q"));
    html! {
        form.search method="get" role="search" {
            input type="search" name="q" value=(view.params.get("q").unwrap_or("")) placeholder="Search the rows (every word)" aria-label="Search the rows";
            @for (k, v) in kept.pairs() { input type="hidden" name=(k) value=(v); }
            button type="submit" { "Search" }
        }
    }
}

/// A field per column typed by the column's type: text contains, a range of numbers, dates or
/// datetimes, a choice of booleans.
fn filter_form(view: &DatasetView) -> Markup {
    let schema = &view.detail.schema;
    let kept = view.params.with(|p| {
        p.remove(|k| {
            schema.iter().any(|c| {
                ["__contains", "__greater", "__less", "__exact"]
                    .iter()
                    .any(|op| k == format!("{}{op}", c.name))
            })
        })
    });
    let value = |key: String| view.params.get(&key).unwrap_or("").to_string();
    html! {
        details.filters open[!view.params.filters().is_empty()] {
            summary { "Filter" }
            form method="get" {
                div.fields {
                    @for c in schema {
                        @let label = if c.label.is_empty() { &c.name } else { &c.label };
                        div.field {
                            label { (label) " " small { (c.kind.as_str()) } }
                            @match c.kind {
                                ColumnType::String => {
                                    input type="text" name=(format!("{}__contains", c.name)) value=(value(format!("{}__contains", c.name))) placeholder="contains";
                                }
                                ColumnType::Boolean => {
                                    @let current = value(format!("{}__exact", c.name));
                                    select name=(format!("{}__exact", c.name)) {
                                        option value="" { "any" }
                                        option value="true" selected[current == "true"] { "true" }
                                        option value="false" selected[current == "false"] { "false" }
                                    }
                                }
                                kind => {
                                    @let input = match kind { ColumnType::Date => "date", ColumnType::Datetime => "datetime-local", _ => "number" };
                                    span.range {
                                        input type=(input) step="any" name=(format!("{}__greater", c.name)) value=(value(format!("{}__greater", c.name))) placeholder="from" aria-label=(format!("{label} from"));
                                        input type=(input) step="any" name=(format!("{}__less", c.name)) value=(value(format!("{}__less", c.name))) placeholder="to" aria-label=(format!("{label} to"));
                                    }
                                }
                            }
                        }
                    }
                }
                @for (k, v) in kept.pairs() { input type="hidden" name=(k) value=(v); }
                button type="submit" { "Apply" }
            }
        }
    }
}

/// The rows: active filters, the count, the table with sortable headers, the pager.
fn rows(view: &DatasetView, page: &Value) -> Markup {
    let id = &view.detail.summary.id;
    let data = page["data"].as_array().cloned().unwrap_or_default();
    let meta = &page["meta"];
    let total = meta["total"].as_u64().unwrap_or(0);
    let (n, size) = (
        meta["page"].as_u64().unwrap_or(1),
        meta["page_size"].as_u64().unwrap_or(20),
    );
    let first = (n - 1) * size;
    let columns: Vec<String> = match data.first().and_then(Value::as_object) {
        Some(row) => row.keys().cloned().collect(),
        None => view.detail.schema.iter().map(|c| c.name.clone()).collect(),
    };
    // The API's links, as the explorer's: the same query string.
    let explorer = |link: &Value| {
        let link = link.as_str()?;
        let query = link.split_once('?').map_or("", |(_, q)| q);
        Some(Params::parse(query).href(id))
    };
    html! {
        @let chips = view.params.filters();
        @if !chips.is_empty() {
            p.chips { @for (k, v) in &chips {
                a.chip href=(view.params.with(|p| p.remove(|x| x == k)).href(id)) title="Remove this filter" { (k) "=" (v) " ×" }
            } }
        }
        p.summary id="count" data-total=(total) {
            @if total == 0 { "No row matches." }
            @else { "Rows " (first + 1) "–" (first + data.len() as u64) " of " strong { (total) } }
        }
        div.table {
            table {
                thead { tr { @for c in &columns {
                    @let sort = view.params.sort_of(c);
                    @let next = view.params.with(|p| {
                        p.remove(|k| k.ends_with("__sort") || k == "q_sort");
                        if let Some(dir) = next_sort(sort) { p.set(&format!("{c}__sort"), dir); }
                    });
                    th aria-sort=(match sort { Some("asc") => "ascending", Some("desc") => "descending", _ => "none" }) {
                        a href=(next.href(id)) data-column=(c) { (c) @match sort { Some("asc") => " ▲", Some("desc") => " ▼", _ => "" } }
                    }
                } } }
                tbody { @for row in &data { tr { @for c in &columns {
                    @let v = &row[c.as_str()];
                    @match v {
                        Value::Null => td.null {},
                        Value::Number(_) => td.num { (text(v)) },
                        _ => td dir="auto" { (text(v)) },
                    }
                } } } }
            }
        }
        nav.pager {
            @if let Some(prev) = explorer(&page["links"]["prev"]) { a rel="prev" href=(prev) { "← Previous" } }
            @if let Some(next) = explorer(&page["links"]["next"]) { a rel="next" href=(next) { "Next →" } }
        }
    }
}

/// The facets as lists of values to click, each narrowing the rows to it.
fn facets(view: &DatasetView, page: &Value) -> Markup {
    let id = &view.detail.summary.id;
    let Some(facets) = page["meta"]["facets"].as_object() else {
        return html! {};
    };
    let datetime = |facet: &str| {
        let column = facet.split(':').next().unwrap_or(facet);
        (view.detail.schema.iter()).any(|c| c.name == column && c.kind == ColumnType::Datetime)
    };
    html! {
        @for (facet, counts) in facets {
            section.facet {
                h2 { (facet) }
                @if counts["truncated"] == true { p.note { "Too long to count." } }
                ul { @for v in counts["values"].as_array().into_iter().flatten() {
                    @let value = text(&v["value"]);
                    @let filter = facet_filter(facet, &value, datetime(facet));
                    @let chosen = !filter.is_empty() && filter.iter().all(|(k, v)| view.params.has(k, v));
                    li.chosen[chosen] {
                        @if chosen {
                            a href=(view.params.with(|p| p.remove(|k| filter.iter().any(|(f, _)| f == k))).href(id)) title="Remove this filter" { bdi { (value) } " ×" }
                        } @else {
                            a href=(view.params.with(|p| for (k, v) in &filter { p.add(k, v) }).href(id)) data-facet=(facet) data-value=(value) { bdi { (value) } }
                        }
                        " " span.count { (v["count"]) }
                    }
                } }
                @if counts["nulls"].as_u64().is_some_and(|n| n > 0) {
                    p.note { "No value: " (counts["nulls"]) }
                }
                @if counts["others"].as_u64().is_some_and(|n| n > 0) {
                    p.note { "Other values: " (counts["others"]) }
                }
            }
        }
    }
}

/// The API call behind the page, as a URL, curl and Python, and the downloads.
fn api(view: &DatasetView) -> Markup {
    let id = &view.detail.summary.id;
    let (base, query) = (view.base, view.query);
    let url = match query.is_empty() {
        true => format!("{base}/api/datasets/{id}/data"),
        false => format!("{base}/api/datasets/{id}/data?{query}"),
    };
    // Downloads are the whole filtered result: no page, cursor or facets.
    let whole = Params::parse(query)
        .with(|p| p.remove(|k| matches!(k, "page_size" | "facets" | "facet_size")));
    let download = |ext: &str| match whole.to_query() {
        q if q.is_empty() => format!("{base}/api/datasets/{id}/data.{ext}"),
        q => format!("{base}/api/datasets/{id}/data.{ext}?{q}"),
    };
    let python_params: Vec<String> = Params::parse(query)
        .pairs()
        .iter()
        .map(|(k, v)| format!("        {}: {},", json_string(k), json_string(v)))
        .collect();
    let python = format!(
        "import requests\n\nr = requests.get(\n    \"{base}/api/datasets/{id}/data\",\n    params={{\n{}\n    }},\n)\nrows = r.json()[\"data\"]",
        python_params.join("\n")
    );
    html! {
        section.api {
            h2 { "API" }
            p { "What this page shows, from the API:" }
            pre.url { code id="api-url" { (url) } }
            h3 { "curl" }
            pre { code { "curl '" (url.replace('\'', "'\\''")) "'" } }
            h3 { "Python" }
            pre { code { (python) } }
            h3 { "Download" }
            p.downloads {
                @for (ext, what) in [("csv", "CSV"), ("ndjson", "NDJSON"), ("parquet", "Parquet"), ("arrow", "Arrow")] {
                    a href=(download(ext)) download data-format=(ext) { (what) } " "
                }
                a href=(url) data-format="json" { "JSON page" }
            }
        }
    }
}

/// A string as Python (and JSON) writes it.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Each column from the profile: type, nulls, distinct values, range, and its most frequent
/// values drawn as bars.
fn columns(view: &DatasetView) -> Markup {
    html! {
        section.columns {
            h2 { "Columns" }
            div.charts {
                @for p in view.profile {
                    @let most = p.top.iter().map(|t| t.count).max().unwrap_or(1).max(1);
                    figure.column {
                        figcaption { strong { (p.name) } " " small { (p.kind.as_str()) } }
                        p.stats {
                            (p.distinct) " distinct · " (p.nulls) " empty"
                            @if !p.min.is_null() { " · " (text(&p.min)) " – " (text(&p.max)) }
                        }
                        // Values that repeat: a column of distinct values has no bars to draw.
                        @let repeats = p.top.first().is_some_and(|t| t.count > 1);
                        @if repeats { ul.bars { @for t in p.top.iter().take(6) {
                            li {
                                span.bar style=(format!("width:{}%", t.count * 100 / most)) {}
                                span.label { bdi { (text(&t.value)) } " " span.count { (t.count) } }
                            }
                        } } }
                    }
                }
            }
        }
    }
}

fn versions(view: &DatasetView) -> Markup {
    html! {
        section.versions {
            h2 { "Versions" }
            div.table { table {
                thead { tr { th { "Version" } th { "Created" } th.num { "Rows" } } }
                tbody { @for v in &view.detail.versions {
                    tr { td { code { (v.version) } } td { (v.created_at) } td.num { (v.rows) } }
                } }
            } }
        }
    }
}
