//! The grammar's tests: every operator, every error, canonical text, `or=` groups.

use super::*;
use proptest::prelude::*;

/// A schema with a column of each type (also used by the cursor tests).
pub(crate) fn schema() -> Vec<Column> {
    vec![
        Column::new("city", ColumnType::String),
        Column::new("pop", ColumnType::Integer),
        Column::new("lat", ColumnType::Float),
        Column::new("open", ColumnType::Boolean),
        Column::new("day", ColumnType::Date),
        Column::new("at", ColumnType::Datetime),
    ]
}

fn p(raw: &str) -> Result<DataQuery> {
    parse(raw, &schema(), &Limits::default())
}

fn err(raw: &str) -> String {
    p(raw).unwrap_err().to_string()
}

#[test]
fn parses_every_operator_into_typed_values() {
    let q = p("city__exact=O%27Brien&pop__greater=10&lat__strictly_less=1.5&open__exact=true&day__less=2024-06-30&at__greater=2024-06-30T10:00:00&city__isnull").unwrap();
    assert_eq!(q.filters.len(), 7);
    assert_eq!(
        q.filters[0].values,
        vec![ScalarValue::Utf8(Some("O'Brien".into()))]
    );
    assert_eq!(q.filters[1].values, vec![ScalarValue::Int64(Some(10))]);
    assert_eq!(q.filters[2].values, vec![ScalarValue::Float64(Some(1.5))]);
    assert_eq!(q.filters[3].values, vec![ScalarValue::Boolean(Some(true))]);
    assert_eq!(q.filters[4].values, vec![ScalarValue::Date32(Some(19904))]);
    assert_eq!(q.filters[6].op, Op::IsNull);
    let q = p(
        "city__in=Rabat,%22Fes,%20Meknes%22,Oujda&pop__sort=desc&city__sort=asc&page=2&page_size=5",
    )
    .unwrap();
    assert_eq!(q.filters[0].values.len(), 3);
    assert_eq!(
        q.filters[0].values[1],
        ScalarValue::Utf8(Some("Fes, Meknes".into()))
    );
    assert_eq!(
        q.sorts,
        vec![
            Sort {
                key: "pop".into(),
                descending: true,
                nulls_first: false
            },
            Sort {
                key: "city".into(),
                descending: false,
                nulls_first: false
            }
        ]
    );
    assert_eq!((q.page, q.page_size, q.offset().unwrap()), (2, 5, 5));
}

#[test]
fn bad_requests_name_the_problem_and_the_fix() {
    assert!(err("nope__exact=1").contains("unknown column `nope`"));
    assert!(err("nope__exact=1").contains("known columns: city, pop"));
    assert!(err("city__like=a").contains("unknown operator `like`"));
    assert!(err("city__like=a").contains("valid operators: exact"));
    assert!(err("limit=5").contains("unknown parameter `limit`"));
    assert!(
        err("pop__exact=abc")
            .contains("`abc` in `pop__exact` is not a valid integer for column `pop` (e.g. 42)")
    );
    assert!(err("lat__less=inf").contains("not a valid float"));
    assert!(err("day__exact=30/06/2024").contains("not a valid date"));
    assert!(err("pop__contains=1").contains("applies to string columns"));
    assert!(err("page=0").contains("from 1 to 4294967296"));
    assert!(err("page=4294967297").contains("from 1 to 4294967296"));
    // Values are read as written: no spaces, no `+`, booleans in lowercase.
    assert!(err("pop__exact=%205").contains("not a valid integer"));
    assert!(err("pop__exact=+5").contains("not a valid integer"));
    assert!(err("open__exact=TRUE").contains("not a valid boolean"));
    assert!(err("city__isnull=false").contains("takes no value"));
    assert!(p("city__isnull=true&pop__groupby=&pop__sum").is_ok());
    assert!(err("columns=city,,pop").contains("empty name"));
    assert!(err("city__in=a%22b").contains("a quote inside"));
    assert!(err("page_size=1001").contains("from 1 to 1000"));
    assert!(err("city__sort=up").contains("`asc` or `desc`"));
    assert!(err("city__sum").contains("needs a numeric column"));
    assert!(err("columns=city,nope").contains("unknown column `nope` in `columns`"));
    assert!(err("city__in=%22a,b").contains("not closed"));
    let many: Vec<String> = (0..51).map(|i| format!("pop__differs={i}")).collect();
    assert!(err(&many.join("&")).contains("more than 50"));
    let list: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
    assert!(err(&format!("pop__in={}", list.join(","))).contains("at most 1000"));
    // The last page allowed still has an offset that fits.
    let deep = p("page=4294967296&page_size=1000").unwrap();
    assert_eq!(deep.offset().unwrap(), 4_294_967_295_000);
}

#[test]
fn canonical_text_ignores_filter_order_but_not_sort_order() {
    let a = p("pop__greater=1&city__exact=x&page=1")
        .unwrap()
        .query_string(Some(1));
    let b = p("city__exact=x&pop__greater=01")
        .unwrap()
        .query_string(Some(1));
    assert_eq!(a, b);
    assert_eq!(a, "city__exact=x&pop__greater=1&page_size=20&page=1");
    let c = p("pop__sort=asc&city__sort=asc")
        .unwrap()
        .query_string(None);
    let d = p("city__sort=asc&pop__sort=asc")
        .unwrap()
        .query_string(None);
    assert_ne!(c, d);
    let e = p("city__in=%22a,b%22,c&day__less=2024-06-30&at__greater=2024-06-30T10:00:00.5&lat__exact=1.50")
        .unwrap()
        .query_string(None);
    assert_eq!(
        e,
        "at__greater=2024-06-30T10%3A00%3A00.500&city__in=%22a%2Cb%22%2Cc&day__less=2024-06-30&lat__exact=1.5"
    );
}

proptest! {
    #[test]
    fn canonical_text_parses_back_to_the_same_query(raw in "(city__in=[a-z,\"]{0,8}|pop__greater=-?[0-9]{1,5}|lat__less=[0-9]{1,3}\\.[0-9]{1,3}|city__sort=asc|page=[1-9])(&(city__contains=[a-z%]{1,4}|day__exact=2024-0[1-9]-1[0-9]|open__exact=true|or=\\((city__exact\\.[a-z]{0,3}|lat__less\\.[0-9]\\.[0-9]|and\\(pop__isnull,city__in\\.\\([a-z,]{1,5}\\)\\)),day__isnotnull\\))){0,3}") {
        if let Ok(q) = p(&raw) {
            let again = p(&q.query_string(Some(q.page))).unwrap();
            prop_assert_eq!(again.query_string(Some(again.page)), q.query_string(Some(q.page)));
        }
    }
}

#[test]
fn or_groups_type_their_values_and_read_back_from_their_text() {
    let q = p(r#"or=(city__exact.Rabat,city__exact."Fes, centre",and(pop__greater.10,lat__less.33.5),day__isnull)&pop__differs=3"#).unwrap();
    assert_eq!(q.filters.len(), 1);
    let Condition::Any(items) = &q.groups[0] else {
        panic!("{:?}", q.groups)
    };
    assert_eq!(items.len(), 4);
    let Condition::All(inner) = &items[2] else {
        panic!("{items:?}")
    };
    assert_eq!(
        inner[1],
        Condition::Filter(Filter {
            column: "lat".into(),
            op: Op::Less,
            values: vec![ScalarValue::Float64(Some(33.5))]
        })
    );
    let text = q.query_string(None);
    assert_eq!(
        text,
        "pop__differs=3&or=%28city__exact.Rabat%2Ccity__exact.%22Fes%2C+centre%22%2Cand%28pop__greater.10%2Clat__less.%2233.5%22%29%2Cday__isnull%29"
    );
    assert_eq!(p(&text).unwrap(), q);
    let list = p("or=(city__in.(a,%22b,c%22),open__exact.true)").unwrap();
    assert_eq!(p(&list.query_string(None)).unwrap(), list);
}

#[test]
fn malformed_or_groups_say_what_is_wrong() {
    assert!(err("or=(nope__exact.1)").contains("unknown column `nope` in `or=(nope__exact.1)`"));
    assert!(err("or=(pop__exact.abc)").contains("`abc` in `pop__exact` is not a valid integer"));
    assert!(err("or=(pop__sort.asc)").contains("`sort` is not a filter operator"));
    assert!(err("or=(pop__exact)").contains("needs a value: write `pop__exact.value`"));
    assert!(err("or=(pop__isnull.1)").contains("takes no value"));
    assert!(err("or=(pop__exact.(1,2))").contains("for `in` and `notin` only"));
    assert!(err("or=(pop__exact.1").contains("`)` expected"));
    let many: Vec<String> = (0..51).map(|i| format!("pop__exact.{i}")).collect();
    assert!(err(&format!("or=({})", many.join(","))).contains("more than 50"));
}

#[test]
fn aggregation_grammar() {
    let q = p("city__groupby&pop__sum&pop__avg&pop__avg__sort=desc").unwrap();
    assert_eq!(q.group_by, vec!["city"]);
    assert_eq!(q.aggregates[0].output_name(), "pop__sum");
    assert_eq!(q.sorts[0].key, "pop__avg");
    assert!(
        err("city__groupby&pop__sort=asc").contains("cannot sort an aggregated result by `pop`")
    );
}

proptest! {
    #[test]
    fn any_query_string_parses_or_is_a_400(raw in ".{0,80}") {
        match p(&raw) {
            Ok(_) => {}
            Err(Error::BadRequest(msg)) => prop_assert!(!msg.is_empty()),
            Err(other) => prop_assert!(false, "not a 400: {other:?}"),
        }
    }

    /// Any text after `or=` is a group or a 400, never a panic or a deep recursion.
    #[test]
    fn any_or_group_parses_or_is_a_400(raw in r#"[()a-z_.,"0-9]{0,60}"#) {
        let query = format!("or={}", raw.replace('"', "%22"));
        match p(&query) {
            Ok(q) => {
                let again = p(&q.query_string(None)).unwrap();
                prop_assert_eq!(again, q);
            }
            Err(Error::BadRequest(msg)) => prop_assert!(!msg.is_empty()),
            Err(other) => prop_assert!(false, "not a 400: {other:?}"),
        }
    }

    #[test]
    fn quoted_lists_round_trip(items in proptest::collection::vec("[a-z,\" ]{0,6}", 1..6)) {
        let text: Vec<String> = items.iter().map(|i| format!("\"{}\"", i.replace('"', "\"\""))).collect();
        prop_assert_eq!(split_list(&text.join(",")).unwrap(), items);
    }
}

#[test]
fn the_tabular_dialect_reads_headers_and_its_own_semantics() {
    let mut schema = schema();
    schema[0].label = "Nom de la ville".into();
    schema[1].label = "pop__2024".into();
    let t = |raw: &str| parse_in(Dialect::Tabular, raw, &schema, &Limits::default());
    let q = t("Nom%20de%20la%20ville__notin=a,b&pop__2024__sort=desc&__id__less=3").unwrap();
    // notin drops nulls; `__id` is the stored row number plus one.
    assert_eq!(q.filters[0].op, Op::IsNotNull);
    assert_eq!(q.filters[1].op, Op::NotIn);
    assert_eq!(q.filters[2].column, ROW_COLUMN);
    assert_eq!(q.filters[2].values, vec![ScalarValue::Int64(Some(2))]);
    assert_eq!(
        q.sorts,
        vec![Sort {
            key: "pop".into(),
            descending: true,
            nulls_first: true
        }]
    );
    assert_eq!(q.columns.as_ref().unwrap()[0], ROW_COLUMN);
    // The API name is accepted too; `*` splits a contains into pieces.
    let q = t("city__contains=a*b").unwrap();
    assert_eq!(q.filters[0].values.len(), 2);
    assert!(t("cursor=abc").is_err());
    assert!(
        t("__id__exact=x")
            .unwrap_err()
            .to_string()
            .contains("not a valid integer")
    );
    // Natively the same texts are unknown columns, and `*` is a character.
    assert!(err("Nom%20de%20la%20ville__exact=a").contains("unknown column"));
    assert_eq!(p("city__contains=a*b").unwrap().filters[0].values.len(), 1);
}
