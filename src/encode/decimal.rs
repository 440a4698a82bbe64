//! Floats written exactly as `ryu` writes them, faster for the floats open data is made of: a
//! column's values mostly carry the same number of decimals (coordinates to 6, distances to 3),
//! and such a value is an integer and a decimal point, which `itoa` writes in a few cycles.
//!
//! Why the bytes are `ryu`'s: `ryu` writes the shortest digits that read back as the value.
//! When `n / 10^k` (exact, correctly rounded) is the value and `|n| < 2^50`, the decimals
//! `n × 10^-k` are the only ones with `k` places that read back (two neighbours at that scale
//! are more than two float steps apart), so with trailing zeros removed they are the shortest
//! there are, and they are laid out with `ryu`'s rules. Anything else goes to `ryu`.

/// Powers of ten up to the most decimals tried, each exact as an `f64`.
const POW10: [f64; 10] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// Below this magnitude every candidate is unique at its scale (see the module comment).
const LIMIT: f64 = (1u64 << 50) as f64;

/// The decimals of a column's last value written by `ryu`, tried first for the next ones.
#[derive(Clone, Copy, Default)]
pub struct Decimals(Option<u8>);

impl Decimals {
    /// Writes `v` as `ryu::Buffer::format` does.
    #[inline]
    pub fn write(&mut self, out: &mut Vec<u8>, v: f64) {
        if let Some(k) = self.0
            && fixed(out, v, k)
        {
            return;
        }
        let mut buffer = ryu::Buffer::new();
        let text = buffer.format(v);
        out.extend_from_slice(text.as_bytes());
        self.0 = decimals_of(text);
    }
}

/// The places after the point in `ryu`'s text, when it has a point and no exponent.
fn decimals_of(text: &str) -> Option<u8> {
    if text.contains(['e', 'E', 'N', 'i']) {
        return None;
    }
    let places = text.len() - text.find('.')? - 1;
    u8::try_from(places)
        .ok()
        .filter(|p| usize::from(*p) < POW10.len())
}

/// Writes `v` from its `k`-place decimal form, or returns `false` when that is not `ryu`'s text.
#[inline]
fn fixed(out: &mut Vec<u8>, v: f64, k: u8) -> bool {
    let p = POW10[usize::from(k)];
    let n = (v * p).round();
    // Zero (and its sign) and non-finite values are `ryu`'s to write.
    if n == 0.0 || n.is_nan() || n.abs() >= LIMIT || n / p != v {
        return false;
    }
    let mut n = n as i64;
    let mut k = usize::from(k);
    while k > 0 && n % 10 == 0 {
        n /= 10;
        k -= 1;
    }
    let mut digits = itoa::Buffer::new();
    let text = digits.format(n.unsigned_abs()).as_bytes();
    // How many digits stand before the point: `ryu`'s `kk`.
    let whole = text.len() as isize - k as isize;
    if whole <= -5 {
        return false;
    }
    if n < 0 {
        out.push(b'-');
    }
    if k == 0 {
        out.extend_from_slice(text);
        out.extend_from_slice(b".0");
    } else if whole > 0 {
        let (int, frac) = text.split_at(whole as usize);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', whole.unsigned_abs()));
        out.extend_from_slice(text);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ryu(v: f64) -> String {
        ryu::Buffer::new().format(v).to_string()
    }

    /// Writes `values` in turn through one column's state, as the writers do.
    fn written(values: &[f64]) -> Vec<String> {
        let mut d = Decimals::default();
        values
            .iter()
            .map(|v| {
                let mut out = Vec::new();
                d.write(&mut out, *v);
                String::from_utf8(out).unwrap()
            })
            .collect()
    }

    #[test]
    fn awkward_values_are_written_as_ryu_writes_them() {
        let values = [
            30.485947,
            -9.696349,
            0.1,
            0.3,
            0.000_123,
            0.000_001_5,
            1e-7,
            12.0,
            1200.0,
            -0.0,
            0.0,
            1.5,
            2.675,
            1e15,
            1e16,
            1e22,
            123_456_789.123,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.1 + 0.2,
            1.0 / 3.0,
            5e-324,
            f64::MAX,
            99.999_999_9,
        ];
        // Each after a value of every number of places, so every starting guess is tried.
        for lead in [
            0.0,
            1.5,
            0.000_001_5,
            1.25,
            1.125,
            30.485_947,
            1.123_456_789,
            0.000_123,
        ] {
            for v in values {
                let got = written(&[lead, v]);
                assert_eq!(got[1], ryu(v), "{v:e} after {lead}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn decimals_of_any_scale_are_written_as_ryu_writes_them(
            n in -(1i64 << 52)..(1i64 << 52),
            k in 0u32..12,
            lead in 0u32..10,
            bits in any::<u64>(),
        ) {
            let v = n as f64 / 10f64.powi(k as i32);
            let lead = 1.0 + 1.0 / 10f64.powi(lead as i32);
            let raw = f64::from_bits(bits);
            // The value after the lead's places, after its own, and after any float's.
            let got = written(&[lead, v, v, raw, v]);
            prop_assert_eq!(&got[1], &ryu(v));
            prop_assert_eq!(&got[2], &ryu(v));
            prop_assert_eq!(&got[3], &ryu(raw));
            prop_assert_eq!(&got[4], &ryu(v));
        }
    }
}
