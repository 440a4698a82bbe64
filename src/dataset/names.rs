//! Column names and dataset ids derived from published headers and file names, as API.md specifies.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Folds a header into an API column name: lowercase ASCII, accents removed, ligatures spelled
/// out, every run of other characters (`_` included) turned into one `_`, trimmed of `_`.
/// May return an empty string; [`column_names`] turns that into `column_N`.
pub fn normalize(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut pending_sep = false;
    let push = |out: &mut String, piece: &str, pending_sep: &mut bool| {
        if *pending_sep && !out.is_empty() {
            out.push('_');
        }
        *pending_sep = false;
        out.push_str(piece);
    };
    for ch in label.nfd() {
        if is_combining_mark(ch) {
            continue;
        }
        let spelled = match ch {
            'œ' | 'Œ' => Some("oe"),
            'æ' | 'Æ' => Some("ae"),
            'ß' | 'ẞ' => Some("ss"),
            _ => None,
        };
        if let Some(s) = spelled {
            push(&mut out, s, &mut pending_sep);
        } else if ch.is_ascii_alphanumeric() {
            let lower = ch.to_ascii_lowercase();
            push(&mut out, lower.encode_utf8(&mut [0; 4]), &mut pending_sep);
        } else {
            pending_sep = true;
        }
    }
    out
}

/// Unique API names for a header row: blanks become `column_N` (1-based position) and a repeat
/// takes the first suffix `_2`, `_3`… that no other column uses.
pub fn column_names<S: AsRef<str>>(labels: &[S]) -> Vec<String> {
    let bases: Vec<String> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let n = normalize(l.as_ref());
            if n.is_empty() {
                format!("column_{}", i + 1)
            } else {
                n
            }
        })
        .collect();
    let all: std::collections::HashSet<&str> = bases.iter().map(String::as_str).collect();
    let mut taken = std::collections::HashSet::new();
    let mut names = Vec::with_capacity(bases.len());
    for base in &bases {
        let name = if taken.contains(base.as_str()) {
            (2..)
                .map(|k| format!("{base}_{k}"))
                .find(|c| !taken.contains(c.as_str()) && !all.contains(c.as_str()))
                .expect("an unbounded range always has a free suffix")
        } else {
            base.clone()
        };
        taken.insert(name.clone());
        names.push(name);
    }
    names
}

/// A dataset id from a file stem: lowercase ASCII letters, digits and `-`.
pub fn slugify(stem: &str) -> String {
    normalize(stem).replace('_', "-")
}

/// Whether `id` is a valid dataset id (the form [`slugify`] produces).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && !id.ends_with('-')
        && !id.contains("--")
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn headers_fold_as_the_contract_says() {
        assert_eq!(
            normalize("Nombre prénoms déclarés"),
            "nombre_prenoms_declares"
        );
        assert_eq!(normalize("  Code_Postal  "), "code_postal");
        assert_eq!(normalize("Œuvre / Æther__Straße"), "oeuvre_aether_strasse");
        assert_eq!(normalize("t^e&m*pe!r(a)t?u:r%%e"), "t_e_m_pe_r_a_t_u_r_e");
        assert_eq!(normalize("stop.lat"), "stop_lat");
        assert_eq!(normalize("اسم"), "");
        assert_eq!(normalize("\"quoted\""), "quoted");
    }

    #[test]
    fn blanks_and_repeats_get_unique_names() {
        assert_eq!(
            column_names(&["col", "col", "col", "", "اسم", "col_2"]),
            ["col", "col_3", "col_4", "column_4", "column_5", "col_2"]
        );
    }

    #[test]
    fn ids_from_stems() {
        assert_eq!(slugify("stop_times"), "stop-times");
        assert_eq!(slugify("Liste des Prénoms (1)"), "liste-des-prenoms-1");
        assert!(is_valid_id("stop-times"));
        assert!(!is_valid_id("Stop_times"));
        assert!(!is_valid_id(""));
    }

    proptest! {
        #[test]
        fn names_never_hold_double_underscores(labels in proptest::collection::vec(".{0,12}", 1..8)) {
            let names = column_names(&labels);
            let unique: std::collections::HashSet<_> = names.iter().collect();
            prop_assert_eq!(unique.len(), names.len());
            for n in &names {
                prop_assert!(!n.contains("__"));
                prop_assert!(!n.is_empty() && !n.starts_with('_') && !n.ends_with('_'));
                prop_assert!(n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            }
        }
    }
}
