//! Words as full-text search compares them: text folded so that case, accents and the ways
//! Arabic is written do not matter, then cut at everything that is not a letter or a digit. The
//! same folding runs on the words indexed at ingest and on the words of a query.
//!
//! Folding: compatibility decomposition (NFKD: `é` → `e` + accent, Arabic presentation forms →
//! letters, `ﬁ` → `fi`), combining marks dropped (accents, Arabic tashkeel and the hamza
//! carried by a letter), lowercase, and Arabic letters written several ways brought to one:
//! alef forms (`أ إ آ ٱ` → `ا`), ta marbuta (`ة` → `ه`), alef maqsura (`ى` → `ي`); tatweel
//! (`ـ`) is dropped. Tifinagh is kept as written: it has no case, and its joiner is kept.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Name of the word-index sidecar in a version's directory.
pub const WORDS_FILE: &str = "words.bin";

/// The longest word indexed, in bytes: longer runs (hashes, base64) are not searched for words.
pub const MAX_WORD_BYTES: usize = 64;

/// The Tifinagh consonant joiner, a combining mark that is part of how Tifinagh is written.
const TIFINAGH_JOINER: char = '\u{2D7F}';

/// `text` folded: see the module's documentation.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    fold_into(text, &mut out);
    out
}

/// Appends `text` folded to `out`. ASCII is lowercased as it is; only other characters are
/// decomposed (dropping marks makes the canonical reordering of NFKD irrelevant).
fn fold_into(text: &str, out: &mut String) {
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            decompose_compatible(c, |d| fold_char(d, out));
        }
    }
}

fn fold_char(c: char, out: &mut String) {
    if is_combining_mark(c) && c != TIFINAGH_JOINER {
        return;
    }
    match c {
        // Alef wasla does not decompose; the other alef forms lost their mark above.
        '\u{0671}' => out.push('\u{0627}'),
        '\u{0629}' => out.push('\u{0647}'),
        '\u{0649}' => out.push('\u{064A}'),
        '\u{0640}' => {}
        'œ' | 'Œ' => out.push_str("oe"),
        'æ' | 'Æ' => out.push_str("ae"),
        'ß' => out.push_str("ss"),
        c if c.is_ascii() => out.push(c.to_ascii_lowercase()),
        c => out.extend(c.to_lowercase()),
    }
}

/// The words of `text`, folded, in order (repeats kept): runs of letters and digits of at most
/// [`MAX_WORD_BYTES`].
pub fn words(text: &str) -> Vec<String> {
    let folded = fold(text);
    folded
        .split(|c: char| !(c.is_alphanumeric() || c == TIFINAGH_JOINER))
        .filter(|w| !w.is_empty() && w.len() <= MAX_WORD_BYTES)
        .map(str::to_string)
        .collect()
}

/// Calls `each` with every word of `text`, folded, without allocating a string for each.
pub fn for_each_word(text: &str, folded: &mut String, mut each: impl FnMut(&str)) {
    folded.clear();
    fold_into(text, folded);
    for w in folded.split(|c: char| !(c.is_alphanumeric() || c == TIFINAGH_JOINER)) {
        if !w.is_empty() && w.len() <= MAX_WORD_BYTES {
            each(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_accents_do_not_matter() {
        assert_eq!(words("Fès"), ["fes"]);
        assert_eq!(words("FÈS"), ["fes"]);
        assert_eq!(words("fes"), ["fes"]);
        assert_eq!(
            words("Hôpital Ibn-Rochd, l'Aéroport"),
            ["hopital", "ibn", "rochd", "l", "aeroport"]
        );
        assert_eq!(words("Cœur ÉTÉ straße"), ["coeur", "ete", "strasse"]);
        assert_eq!(words("ﬁn № 12"), ["fin", "no", "12"]);
    }

    #[test]
    fn arabic_written_several_ways_is_one_word() {
        // Alef with hamza above, below, madda, wasla: plain alef.
        for alef in ["أ", "إ", "آ", "ٱ"] {
            assert_eq!(words(&format!("{alef}كادير")), ["اكادير"], "{alef}");
        }
        // Ta marbuta and ha; alef maqsura and ya.
        assert_eq!(words("مدرسة"), words("مدرسه"));
        assert_eq!(words("مستشفى"), words("مستشفي"));
        // Tashkeel and tatweel ignored.
        assert_eq!(words("فَاس"), ["فاس"]);
        assert_eq!(words("فـــاس"), ["فاس"]);
        assert_eq!(words("الدَّارُ البَيْضَاءُ"), ["الدار", "البيضاء"]);
        // Presentation forms (as some PDFs and old files carry them) are the letters.
        assert_eq!(words("\u{FEFB}"), words("لا"));
    }

    #[test]
    fn tifinagh_is_matched_as_written() {
        assert_eq!(words("ⴰⵎⴰⵣⵉⵖ ⵜⴰⵎⴰⵣⵉⵖⵜ"), ["ⴰⵎⴰⵣⵉⵖ", "ⵜⴰⵎⴰⵣⵉⵖⵜ"]);
        assert_eq!(words("ⴽ\u{2D7F}ⵡ"), ["ⴽ\u{2D7F}ⵡ"]);
        assert_ne!(words("ⴰⵎⴰⵣⵉⵖ"), words("ⴰⵎⴰⵣⵉⵗ"));
    }

    #[test]
    fn words_without_allocation_are_the_same_words() {
        let mut folded = String::new();
        for text in [
            "Bus urbain 12",
            "Fès; Meknès",
            "فاس",
            "",
            "a--b",
            &"x".repeat(70),
        ] {
            let mut seen = Vec::new();
            for_each_word(text, &mut folded, |w| seen.push(w.to_string()));
            assert_eq!(seen, words(text), "{text}");
        }
        assert!(words(&"x".repeat(70)).is_empty());
    }
}
