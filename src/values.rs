//! Parsers that decide whether a published cell is an integer, float, boolean, date or datetime,
//! and give its typed value. Inference and writing use the same functions, so a type decided
//! from the whole file always parses every value of that file.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// Markers read as null in a typed column (kept as text in a string column).
pub const DEFAULT_NULL_MARKERS: [&str; 5] = ["NA", "N/A", "null", "NULL", "-"];

/// Longest run of digits read as an integer; longer ones are identifiers, kept as text.
const MAX_INT_DIGITS: usize = 18;

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

/// The date of a day counted since 1970-01-01 (Arrow's `Date32`), if it is one.
pub fn date_of_days(days: i64) -> Option<NaiveDate> {
    EPOCH.checked_add_signed(chrono::Duration::days(days))
}

/// A JSON value as text: a string as it is, null as nothing, anything else as JSON writes it.
pub fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// How a text cell fails to be a number, so that the report can say why a column stayed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotNumber {
    LeadingZero,
    TooLong,
    Other,
}

fn digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// An integer as published: optional `-`, digits, no leading zero (codes such as `01400` stay
/// text), at most 18 digits.
pub fn parse_int(s: &str) -> Result<i64, NotNumber> {
    let b = s.as_bytes();
    let body = b.strip_prefix(b"-").unwrap_or(b);
    let n = digits(body);
    if n == 0 || n != body.len() {
        return Err(NotNumber::Other);
    }
    // `-0` as a number would be written back `0`: like a leading zero, it stays as published.
    if (n > 1 || body.len() < b.len()) && body[0] == b'0' {
        return Err(NotNumber::LeadingZero);
    }
    if n > MAX_INT_DIGITS {
        return Err(NotNumber::TooLong);
    }
    s.parse().map_err(|_| NotNumber::Other)
}

/// A decimal number with `decimal` as its mark (`.` or `,`) and an optional exponent. The
/// integer part follows the same leading-zero rule as [`parse_int`]; `inf` and `NaN` are text.
pub fn parse_float(s: &str, decimal: u8) -> Result<f64, NotNumber> {
    let b = s.as_bytes();
    let body = b.strip_prefix(b"-").unwrap_or(b);
    let int_len = digits(body);
    if int_len > 1 && body[0] == b'0' {
        return Err(NotNumber::LeadingZero);
    }
    let mut i = int_len;
    let mut frac_len = 0;
    if i < body.len() && body[i] == decimal {
        i += 1;
        frac_len = digits(&body[i..]);
        i += frac_len;
    }
    if int_len + frac_len == 0 {
        return Err(NotNumber::Other);
    }
    if i < body.len() && (body[i] == b'e' || body[i] == b'E') {
        i += 1;
        if i < body.len() && (body[i] == b'+' || body[i] == b'-') {
            i += 1;
        }
        let exp = digits(&body[i..]);
        if exp == 0 {
            return Err(NotNumber::Other);
        }
        i += exp;
    }
    if i != body.len() {
        return Err(NotNumber::Other);
    }
    let parsed = if decimal == b'.' {
        s.parse::<f64>()
    } else {
        s.replacen(decimal as char, ".", 1).parse::<f64>()
    };
    parsed
        .ok()
        .filter(|f| f.is_finite())
        .ok_or(NotNumber::Other)
}

/// How a column writes its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumStyle {
    /// `1234.5`, `1e3`: what programs write.
    Plain,
    /// `1 234,5`, `1.234,5`, `12,5`: a decimal comma, thousands grouped by a space, a no-break
    /// space, a narrow no-break space or a dot.
    Comma,
    /// `1,234.5`: thousands grouped by commas, a decimal point.
    English,
}

impl NumStyle {
    pub fn describe(self) -> &'static str {
        match self {
            NumStyle::Plain => "",
            NumStyle::Comma => " with a decimal comma",
            NumStyle::English => " with comma-grouped thousands",
        }
    }
}

/// A number read in some style: its value, and the integer it is when it has no fraction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num {
    pub value: f64,
    pub int: Option<i64>,
}

/// Reads a number in a grouped style (see [`NumStyle`]); the integer part follows the
/// leading-zero rule of [`parse_int`].
pub fn parse_grouped(s: &str, style: NumStyle) -> Result<Num, NotNumber> {
    if style == NumStyle::Plain {
        return match parse_int(s) {
            Ok(i) => Ok(Num {
                value: i as f64,
                int: Some(i),
            }),
            Err(NotNumber::Other) => parse_float(s, b'.').map(|value| Num { value, int: None }),
            Err(e) => Err(e),
        };
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let decimal = if style == NumStyle::Comma { ',' } else { '.' };
    let (int_part, frac) = match body.split_once(decimal) {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let mut clean = String::with_capacity(s.len());
    if neg {
        clean.push('-');
    }
    let first_sep = int_part.chars().find(|c| !c.is_ascii_digit());
    match first_sep {
        None => {
            if int_part.is_empty() {
                return Err(NotNumber::Other);
            }
            clean.push_str(int_part);
        }
        Some(sep) => {
            let allowed = match style {
                NumStyle::Comma => matches!(sep, ' ' | '\u{a0}' | '\u{202f}' | '.'),
                _ => sep == ',',
            };
            if !allowed {
                return Err(NotNumber::Other);
            }
            for (k, group) in int_part.split(sep).enumerate() {
                let ok = group.bytes().all(|b| b.is_ascii_digit())
                    && if k == 0 {
                        (1..=3).contains(&group.len())
                    } else {
                        group.len() == 3
                    };
                if !ok {
                    return Err(NotNumber::Other);
                }
                clean.push_str(group);
            }
        }
    }
    let digits = clean.trim_start_matches('-');
    if digits.len() > 1 && digits.starts_with('0') {
        return Err(NotNumber::LeadingZero);
    }
    if frac.is_none() && digits.len() > 18 {
        return Err(NotNumber::TooLong);
    }
    let int = match frac {
        None => clean.parse::<i64>().ok(),
        Some(f) => {
            if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(NotNumber::Other);
            }
            clean.push('.');
            clean.push_str(f);
            None
        }
    };
    let value = clean.parse::<f64>().map_err(|_| NotNumber::Other)?;
    Ok(Num { value, int })
}

/// The first style in `styles` that reads `s`.
pub fn parse_any(s: &str, styles: &[NumStyle]) -> Result<Num, NotNumber> {
    let mut err = NotNumber::Other;
    for &style in styles {
        match parse_grouped(s, style) {
            Ok(n) => return Ok(n),
            Err(e) => err = e,
        }
    }
    Err(err)
}

/// Booleans as published in French and English, any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    const TRUE: [&str; 4] = ["true", "oui", "vrai", "yes"];
    const FALSE: [&str; 4] = ["false", "non", "faux", "no"];
    if TRUE.iter().any(|t| s.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|f| s.eq_ignore_ascii_case(f)) {
        Some(false)
    } else {
        None
    }
}

/// Date layouts recognised in published files; a column keeps one layout for all its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateLayout {
    /// `2024-06-30`
    Iso,
    /// `30/06/2024`, the French (and British) order.
    DayFirst,
}

impl DateLayout {
    pub fn describe(self) -> &'static str {
        match self {
            DateLayout::Iso => "yyyy-mm-dd",
            DateLayout::DayFirst => "dd/mm/yyyy",
        }
    }
}

fn num(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u32, |acc, d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

fn split_date(s: &str) -> Option<(NaiveDate, DateLayout)> {
    let b = s.as_bytes();
    if b.len() != 10 {
        return None;
    }
    let (y, m, d, layout) = if b[4] == b'-' && b[7] == b'-' {
        (
            num(&b[0..4])?,
            num(&b[5..7])?,
            num(&b[8..10])?,
            DateLayout::Iso,
        )
    } else if b[2] == b'/' && b[5] == b'/' {
        (
            num(&b[6..10])?,
            num(&b[3..5])?,
            num(&b[0..2])?,
            DateLayout::DayFirst,
        )
    } else {
        return None;
    };
    NaiveDate::from_ymd_opt(y as i32, m, d).map(|date| (date, layout))
}

/// A date as days since 1970-01-01, and the layout it was written in.
pub fn parse_date(s: &str) -> Option<(i32, DateLayout)> {
    let (date, layout) = split_date(s)?;
    Some(((date - EPOCH).num_days() as i32, layout))
}

/// A parsed datetime: microseconds since the epoch (UTC when an offset was given, wall-clock
/// otherwise), whether an offset was given, and the date layout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Datetime {
    pub micros: i64,
    pub with_offset: bool,
    pub layout: DateLayout,
}

/// `yyyy-mm-ddTHH:MM[:SS[.fff]]` (or a space for `T`, or a dd/mm/yyyy date), optionally followed
/// by `Z` or an offset `±HH:MM`.
pub fn parse_datetime(s: &str) -> Option<Datetime> {
    if s.len() < 16 || !s.is_char_boundary(10) {
        return None;
    }
    let (date, layout) = split_date(&s[..10])?;
    let rest = &s[10..];
    let sep = rest.as_bytes()[0];
    if sep != b'T' && sep != b' ' {
        return None;
    }
    let rest = &rest[1..];
    // The time ends where an offset begins.
    let tz_at = rest
        .char_indices()
        .skip(5)
        .find(|(_, c)| matches!(c, 'Z' | 'z' | '+' | '-'))
        .map(|(i, _)| i);
    let (time_text, tz_text) = match tz_at {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let time = parse_time(time_text)?;
    let naive = NaiveDateTime::new(date, time);
    let offset_secs = match tz_text {
        None => None,
        Some(t) => Some(parse_offset(t)?),
    };
    let local = naive.and_utc().timestamp_micros();
    let micros = match offset_secs {
        Some(off) => local.checked_sub(i64::from(off) * 1_000_000)?,
        None => local,
    };
    Some(Datetime {
        micros,
        with_offset: offset_secs.is_some(),
        layout,
    })
}

fn parse_time(t: &str) -> Option<NaiveTime> {
    let b = t.as_bytes();
    if b.len() < 5 || b[2] != b':' {
        return None;
    }
    let h = num(&b[0..2])?;
    let m = num(&b[3..5])?;
    let (s, nanos) = if b.len() == 5 {
        (0, 0)
    } else {
        if b.len() < 8 || b[5] != b':' {
            return None;
        }
        let s = num(&b[6..8])?;
        let nanos = if b.len() == 8 {
            0
        } else {
            if b[8] != b'.' && b[8] != b',' {
                return None;
            }
            let frac = &b[9..];
            if frac.is_empty() || frac.len() > 9 {
                return None;
            }
            num(frac)? * 10u32.pow(9 - frac.len() as u32)
        };
        (s, nanos)
    };
    NaiveTime::from_hms_nano_opt(h, m, s, nanos)
}

fn parse_offset(t: &str) -> Option<i32> {
    if t == "Z" || t == "z" {
        return Some(0);
    }
    let b = t.as_bytes();
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: Vec<u8> = b[1..].iter().copied().filter(|c| *c != b':').collect();
    let (h, m) = match digits.len() {
        2 => (num(&digits)?, 0),
        4 => (num(&digits[0..2])?, num(&digits[2..4])?),
        _ => return None,
    };
    if h > 23 || m > 59 || (b.len() == 6 && b[3] != b':') {
        return None;
    }
    Some(sign * (h as i32 * 3600 + m as i32 * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_keep_codes_as_text() {
        assert_eq!(parse_int("42"), Ok(42));
        assert_eq!(parse_int("-7"), Ok(-7));
        assert_eq!(parse_int("0"), Ok(0));
        assert_eq!(parse_int("01400"), Err(NotNumber::LeadingZero));
        assert_eq!(parse_int("1234567890123456789"), Err(NotNumber::TooLong));
        assert_eq!(parse_int("+33"), Err(NotNumber::Other));
        assert_eq!(parse_int("4.2"), Err(NotNumber::Other));
        assert_eq!(parse_int(""), Err(NotNumber::Other));
        assert_eq!(parse_int("-"), Err(NotNumber::Other));
    }

    #[test]
    fn floats_with_either_decimal_mark() {
        assert_eq!(parse_float("48.8566", b'.'), Ok(48.8566));
        assert_eq!(parse_float("-0.5", b'.'), Ok(-0.5));
        assert_eq!(parse_float(".5", b'.'), Ok(0.5));
        assert_eq!(parse_float("1e3", b'.'), Ok(1000.0));
        assert_eq!(parse_float("346,50", b','), Ok(346.5));
        assert_eq!(parse_float("346,50", b'.'), Err(NotNumber::Other));
        assert_eq!(parse_float("inf", b'.'), Err(NotNumber::Other));
        assert_eq!(parse_float("NaN", b'.'), Err(NotNumber::Other));
        assert_eq!(parse_float("07.5", b'.'), Err(NotNumber::LeadingZero));
        assert_eq!(parse_float("1.", b'.'), Ok(1.0));
        assert_eq!(parse_float(".", b'.'), Err(NotNumber::Other));
    }

    #[test]
    fn grouped_numbers_in_french_and_english() {
        let n = |s, style| parse_grouped(s, style).map(|n| (n.value, n.int));
        assert_eq!(n("346,50", NumStyle::Comma), Ok((346.5, None)));
        assert_eq!(n("1 234,5", NumStyle::Comma), Ok((1234.5, None)));
        assert_eq!(
            n("1\u{a0}234\u{a0}567", NumStyle::Comma),
            Ok((1234567.0, Some(1234567)))
        );
        assert_eq!(n("1\u{202f}234,05", NumStyle::Comma), Ok((1234.05, None)));
        assert_eq!(n("-1.234,5", NumStyle::Comma), Ok((-1234.5, None)));
        assert_eq!(n("0,5", NumStyle::Comma), Ok((0.5, None)));
        assert_eq!(n("12", NumStyle::Comma), Ok((12.0, Some(12))));
        assert_eq!(n("1 23,5", NumStyle::Comma), Err(NotNumber::Other));
        assert_eq!(n("1.5", NumStyle::Comma), Err(NotNumber::Other));
        assert_eq!(n("01,5", NumStyle::Comma), Err(NotNumber::LeadingZero));
        assert_eq!(n("12,", NumStyle::Comma), Err(NotNumber::Other));
        assert_eq!(n("43,774.58", NumStyle::English), Ok((43774.58, None)));
        assert_eq!(n("1,234", NumStyle::English), Ok((1234.0, Some(1234))));
        assert_eq!(n("1,234", NumStyle::Comma), Ok((1.234, None)));
        assert_eq!(n("12,34", NumStyle::English), Err(NotNumber::Other));
        assert_eq!(n("2.5e3", NumStyle::Plain), Ok((2500.0, None)));
        assert_eq!(parse_bool("Oui"), Some(true));
        assert_eq!(parse_bool("FAUX"), Some(false));
        assert_eq!(parse_bool("o"), None);
    }

    #[test]
    fn dates_in_both_layouts() {
        assert_eq!(parse_date("1970-01-02"), Some((1, DateLayout::Iso)));
        assert_eq!(parse_date("02/01/1970"), Some((1, DateLayout::DayFirst)));
        assert_eq!(parse_date("2024-02-30"), None);
        assert_eq!(parse_date("13/13/2024"), None);
        assert_eq!(parse_date("20240101"), None);
    }

    #[test]
    fn datetimes_with_and_without_offsets() {
        let d = parse_datetime("1970-01-01T00:00:01").unwrap();
        assert_eq!((d.micros, d.with_offset), (1_000_000, false));
        let d = parse_datetime("1970-01-01 01:00:00+01:00").unwrap();
        assert_eq!((d.micros, d.with_offset), (0, true));
        let d = parse_datetime("1970-01-01T00:00:00.5Z").unwrap();
        assert_eq!((d.micros, d.with_offset), (500_000, true));
        let d = parse_datetime("01/01/1970 00:01").unwrap();
        assert_eq!((d.micros, d.layout), (60_000_000, DateLayout::DayFirst));
        assert!(parse_datetime("1970-01-01T25:00:00").is_none());
        assert!(parse_datetime("1970-01-01").is_none());
        assert!(parse_datetime("1970-01-01T00:00:00+1").is_none());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// `n` written with `sep` between groups of three digits.
        fn grouped(n: u64, sep: char) -> String {
            let digits = n.to_string();
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i).is_multiple_of(3) {
                    out.push(sep);
                }
                out.push(c);
            }
            out
        }

        /// Days from 1970-01-01 of dates with four-digit years.
        const DAYS: std::ops::Range<i32> = -354_285..2_932_897;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]

            #[test]
            fn integers_read_back_as_written(n in -999_999_999_999_999_999i64..=999_999_999_999_999_999) {
                let text = n.to_string();
                prop_assert_eq!(parse_int(&text), Ok(n));
                let plain = parse_grouped(&text, NumStyle::Plain).unwrap();
                prop_assert_eq!(plain.int, Some(n));
                // A leading zero makes a code, never a number.
                let code = format!("0{}", n.unsigned_abs());
                prop_assert_eq!(parse_int(&code), Err(NotNumber::LeadingZero));
            }

            #[test]
            fn floats_read_back_exactly_with_either_mark(x in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
                for text in [format!("{x}"), format!("{x:e}"), format!("{x:E}")] {
                    prop_assert_eq!(parse_float(&text, b'.').map(f64::to_bits), Ok(x.to_bits()), "{}", text);
                    let comma = text.replace('.', ",");
                    prop_assert_eq!(parse_float(&comma, b',').map(f64::to_bits), Ok(x.to_bits()), "{}", comma);
                }
            }

            #[test]
            fn grouped_numbers_read_as_their_plain_value(
                n in 0u64..1_000_000_000_000_000,
                frac in proptest::option::of("[0-9]{1,6}"),
                negative in any::<bool>(),
                sep in proptest::sample::select(vec![' ', '\u{a0}', '\u{202f}', '.']),
            ) {
                let sign = if negative { "-" } else { "" };
                let plain = match &frac {
                    Some(f) => format!("{sign}{n}.{f}"),
                    None => format!("{sign}{n}"),
                };
                let want: f64 = plain.parse().unwrap();
                let french = match &frac {
                    Some(f) => format!("{sign}{},{f}", grouped(n, sep)),
                    None => format!("{sign}{}", grouped(n, sep)),
                };
                let english = match &frac {
                    Some(f) => format!("{sign}{}.{f}", grouped(n, ',')),
                    None => format!("{sign}{}", grouped(n, ',')),
                };
                let int = frac.is_none().then(|| plain.parse::<i64>().unwrap());
                for (text, style) in [(french, NumStyle::Comma), (english, NumStyle::English)] {
                    let got = parse_grouped(&text, style).unwrap();
                    prop_assert_eq!(got.value.to_bits(), want.to_bits(), "{}", text);
                    prop_assert_eq!(got.int, int, "{}", text);
                }
            }

            #[test]
            fn dates_read_back_in_both_layouts(days in DAYS) {
                let date = EPOCH + chrono::Duration::days(i64::from(days));
                let iso = date.format("%Y-%m-%d").to_string();
                let french = date.format("%d/%m/%Y").to_string();
                prop_assert_eq!(parse_date(&iso), Some((days, DateLayout::Iso)));
                prop_assert_eq!(parse_date(&french), Some((days, DateLayout::DayFirst)));
            }

            #[test]
            fn datetimes_read_back_in_utc(
                days in DAYS,
                micros_of_day in 0i64..86_400_000_000,
                offset_minutes in -(23i32 * 60 + 59)..=(23 * 60 + 59),
                with_offset in any::<bool>(),
                sep in proptest::sample::select(vec!['T', ' ']),
            ) {
                let local = i64::from(days) * 86_400_000_000 + micros_of_day;
                let wall = chrono::DateTime::from_timestamp_micros(local).unwrap().naive_utc();
                let mut text = wall.format(&format!("%Y-%m-%d{sep}%H:%M:%S%.6f")).to_string();
                let mut utc = local;
                if with_offset {
                    let (sign, m) = if offset_minutes < 0 { ('-', -offset_minutes) } else { ('+', offset_minutes) };
                    text.push_str(&format!("{sign}{:02}:{:02}", m / 60, m % 60));
                    utc -= i64::from(offset_minutes) * 60_000_000;
                }
                let got = parse_datetime(&text).unwrap();
                prop_assert_eq!((got.micros, got.with_offset, got.layout), (utc, with_offset, DateLayout::Iso), "{}", text);
            }

            #[test]
            fn booleans_in_any_case(
                word in proptest::sample::select(vec![("true", true), ("oui", true), ("vrai", true), ("yes", true), ("false", false), ("non", false), ("faux", false), ("no", false)]),
                upper in proptest::collection::vec(any::<bool>(), 5),
            ) {
                let (text, value) = word;
                let mixed: String = text.chars().zip(upper).map(|(c, u)| if u { c.to_ascii_uppercase() } else { c }).collect();
                prop_assert_eq!(parse_bool(&mixed), Some(value));
                prop_assert_eq!(parse_bool(&format!("{mixed}x")), None);
            }

            /// Any text is a value or is not, without panicking; an integer read back is
            /// written exactly as it was published (nothing dropped, nothing reformatted).
            #[test]
            fn any_text_parses_or_is_refused(s in "\\PC{0,24}|[0-9 ,.:/TZ+-]{0,24}") {
                if let Ok(n) = parse_int(&s) {
                    prop_assert_eq!(n.to_string(), s.clone());
                }
                let _ = parse_any(&s, &[NumStyle::Plain, NumStyle::Comma, NumStyle::English]);
                let _ = parse_float(&s, b',');
                let _ = parse_bool(&s);
                if let Some((days, layout)) = parse_date(&s) {
                    let date = EPOCH + chrono::Duration::days(i64::from(days));
                    let back = match layout {
                        DateLayout::Iso => date.format("%Y-%m-%d"),
                        DateLayout::DayFirst => date.format("%d/%m/%Y"),
                    };
                    prop_assert_eq!(back.to_string(), s.clone());
                }
                let _ = parse_datetime(&s);
            }
        }
    }
}
