//! Go `fmt` renderings that BuildKit writes into image history (`%q` of strings, slices and
//! runes, `%v` of slices and maps, `time.Duration.String`). The history strings are part of
//! the config blob, so they must match byte for byte.

pub use kiln_dockerfile::{go_quote as quote, go_quote_rune as quote_rune};

/// `%q` of a `[]string`: `["a" "b"]`.
pub fn quote_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", inner.join(" "))
}

/// `%v` of a `[]string`: `[a b]`.
pub fn list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Go's `time.Duration.String`.
pub fn duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut s = if u < 1_000_000_000 {
        // Sub-second: ns, µs or ms with a fraction.
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        format!("{}{}", frac(u, div), unit)
    } else {
        let mut out = String::new();
        let h = u / 3_600_000_000_000;
        let rem = u % 3_600_000_000_000;
        let m = rem / 60_000_000_000;
        let secs = rem % 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&format!("{}s", frac(secs, 1_000_000_000)));
        out
    };
    if neg {
        s.insert(0, '-');
    }
    s
}

/// `v / div` with the fraction's trailing zeros cut, as Go's `fmtFrac` + `fmtInt`.
fn frac(v: u64, div: u64) -> String {
    let whole = v / div;
    let rest = v % div;
    if rest == 0 {
        return whole.to_string();
    }
    let digits = div.to_string().len() - 1;
    let f = format!("{:0width$}", rest, width = digits);
    format!("{}.{}", whole, f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c\n\t"), r#""a\"b\\c\n\t""#);
        assert_eq!(quote("é→ x"), "\"é→ x\"");
        assert_eq!(quote("\u{1}\u{7f}"), r#""\x01\x7f""#);
        assert_eq!(quote_rune(3), r"'\x03'");
        assert_eq!(quote_rune(0), r"'\x00'");
        assert_eq!(quote_rune(65), "'A'");
        assert_eq!(quote_rune(39), r"'\''");
        assert_eq!(
            quote_list(&["CMD".into(), "/x".into(), "--h".into()]),
            r#"["CMD" "/x" "--h"]"#
        );
        assert_eq!(list(&["/data".into(), "/cache".into()]), "[/data /cache]");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(30_000_000_000), "30s");
        assert_eq!(duration(90_000_000_000), "1m30s");
        assert_eq!(duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(duration(1_500_000_000), "1.5s");
        assert_eq!(duration(1_500_000), "1.5ms");
        assert_eq!(duration(1_500), "1.5µs");
        assert_eq!(duration(15), "15ns");
        assert_eq!(duration(-2_000_000_000), "-2s");
        assert_eq!(duration(3_723_000_000_000), "1h2m3s");
    }
}
