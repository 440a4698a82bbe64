//! Reading real portals' answers (`../shared/data/portals`): envelopes and their quirks, and
//! packages into tabular resources with provenance, the rest skipped with a reason.

use qanat::harvest::{Tabular, ckan};

fn fixture(name: &str) -> Option<Vec<u8>> {
    let path = crate::support::repo_path("../shared/data/portals/ckan").join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(_) if std::env::var_os("CI").is_some() => panic!("{} is missing", path.display()),
        Err(_) => {
            crate::support::skipped("the portal fixtures need ../shared/data, which is not here");
            None
        }
    }
}

#[test]
fn ckan_answers_are_read_with_their_quirks() {
    let Some(envidat) = fixture("envidat_package_search_rows2.json") else {
        return;
    };
    let result = ckan::result(&envidat).unwrap();
    assert_eq!(result["count"], 858);
    let (mut kept, mut skipped) = (Vec::new(), Vec::new());
    for p in result["results"].as_array().unwrap() {
        let (k, s) = ckan::resources(p, "http://127.0.0.1/portal");
        kept.extend(k);
        skipped.extend(s);
    }
    assert_eq!(kept.len(), 4, "{kept:#?}");
    assert!(kept.iter().all(|r| r.kind == Tabular::Csv));
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].resource, "SNOWPACK_simulations.zip");
    assert_eq!(skipped[0].reason, "format `zip` is not a table");
    // Provenance and a dataset file that reads back.
    let r = &kept[0];
    assert!(
        r.producer.is_some() && !r.keywords.is_empty() && r.licence.is_some(),
        "{r:#?}"
    );
    let spec = r.spec();
    assert!(qanat::dataset::names::is_valid_id(&spec.id), "{}", spec.id);
    assert_eq!(spec.resource_id.as_deref(), Some(r.resource_id.as_str()));
    assert!(spec.title.contains(" — "));
    assert!(matches!(
        spec.source().unwrap(),
        qanat::dataset::spec::Source::Untrusted(_)
    ));
    // `last_modified` null: the package's date stands in.
    assert!(kept.iter().all(|r| r.modified.is_some()));

    // A proxy's envelope without `success`; an XLSX kept, map services and images skipped.
    let satu = fixture("satudata-id_package_search_rows2.json").unwrap();
    let result = ckan::result(&satu).unwrap();
    let packages = result["results"].as_array().unwrap();
    let (kept, skipped) = ckan::resources(&packages[0], "p");
    assert_eq!(
        (kept.len(), kept[0].kind, kept[0].size),
        (1, Tabular::Xlsx, Some(80508))
    );
    let (kept, skipped2) = ckan::resources(&packages[1], "p");
    assert!(kept.is_empty() && skipped.is_empty());
    assert!(
        skipped2
            .iter()
            .any(|s| s.reason == "format `wms` is not a table")
    );
    assert!(
        skipped2
            .iter()
            .any(|s| s.reason == "format `jpeg` is not a table")
    );
    assert!(
        skipped2
            .iter()
            .any(|s| s.reason == "no format, and its URL names none")
    );

    // An `XLS` whose file is `.xlsx`; a package without resources.
    let uk = fixture("data-gov-uk_package_show_datasets-list_xls.json").unwrap();
    let (kept, _) = ckan::resources(&ckan::result(&uk).unwrap(), "p");
    assert_eq!(kept[0].kind, Tabular::Xlsx);
    let empty = fixture("data-gov-uk_package_show_aggregates-levy_no-resources.json").unwrap();
    let (kept, skipped) = ckan::resources(&ckan::result(&empty).unwrap(), "p");
    assert!(kept.is_empty());
    assert_eq!(skipped[0].reason, "the package has no resources");

    // data.gov.ma's fluent fields: titles and descriptions by language, French first.
    let fluent = serde_json::json!({
        "id": "p1", "name": "data_7_5", "title_translated": {"ar": "السكان", "fr": "Population légale"},
        "notes_translated": {"ar": "", "fr": "Par commune"},
        "resources": [{"id": "r1", "url": "http://127.0.0.1/dataset/p1/resource/r1/download/-2023.xlsx",
            "format": "XLSX", "name_translated": {"ar": "2023"}}],
    });
    let (kept, _) = ckan::resources(&fluent, "p");
    assert_eq!(
        (
            kept[0].package_title.as_str(),
            kept[0].name.as_str(),
            kept[0].description.as_str()
        ),
        ("Population légale", "2023", "Par commune")
    );

    // Errors: a bare string, success: false, HTML, truncated JSON.
    let unknown = fixture("dados-sc-gov-br_datastore_search_unknown-action_error.json").unwrap();
    assert!(
        ckan::result(&unknown)
            .unwrap_err()
            .contains("Action name not known")
    );
    let ua = fixture("data-gov-ua_datastore_search_not-found_error.json").unwrap();
    assert!(ckan::result(&ua).unwrap_err().contains("success: false"));
    let html = ckan::result(b"<html><body>Request Rejected</body></html>").unwrap_err();
    assert!(html.contains("an HTML page"), "{html}");
    assert!(
        ckan::result(&envidat[..envidat.len() / 2])
            .unwrap_err()
            .contains("truncated JSON")
    );
}
