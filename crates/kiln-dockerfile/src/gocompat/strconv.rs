//! Go's `strconv` number parsing and quoting, with Go's error texts.

use super::unicode::is_print;
use std::fmt::Write as _;

/// `strconv.Quote`: a double-quoted Go string literal, as `%q` prints it.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// `strconv.QuoteRune`: what `%q` prints for an integer (invalid runes as U+FFFD).
pub fn quote_rune(r: i64) -> String {
    let c = u32::try_from(r)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{fffd}');
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

/// One rune of Go's `appendQuotedWith`.
fn push_escaped(out: &mut String, c: char, quote: char) {
    match c {
        c if c == quote || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        c if is_print(c) => out.push(c),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// Why a Go number parse failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumErrorKind {
    Syntax,
    Range,
}

/// `*strconv.NumError`, displayed like Go does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NumError {
    pub(crate) func: &'static str,
    pub(crate) num: String,
    pub(crate) kind: NumErrorKind,
}

impl std::fmt::Display for NumError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            NumErrorKind::Syntax => "invalid syntax",
            NumErrorKind::Range => "value out of range",
        };
        write!(
            f,
            "strconv.{}: parsing {}: {}",
            self.func,
            quote(&self.num),
            what
        )
    }
}

fn digits_value(digits: &str, base: u32) -> Option<Option<u128>> {
    // Outer None: syntax error; inner None: overflow of u128 (certainly out of range).
    if digits.is_empty() {
        return None;
    }
    let mut v: Option<u128> = Some(0);
    for c in digits.chars() {
        let d = c.to_digit(base)?;
        v = v.and_then(|v| v.checked_mul(u128::from(base))?.checked_add(u128::from(d)));
    }
    Some(v)
}

/// `strconv.ParseUint(s, base, bits)` for base 8 or 10 (no prefixes, no underscores).
pub(crate) fn parse_uint(s: &str, base: u32, bits: u32) -> Result<u64, NumError> {
    let err = |kind| NumError {
        func: "ParseUint",
        num: s.to_string(),
        kind,
    };
    let max: u128 = (1u128 << bits) - 1;
    match digits_value(s, base) {
        None => Err(err(NumErrorKind::Syntax)),
        Some(Some(v)) if v <= max => Ok(v as u64),
        Some(_) => Err(err(NumErrorKind::Range)),
    }
}

/// `strconv.ParseInt(s, 10, bits)`.
pub(crate) fn parse_int(s: &str, bits: u32) -> Result<i64, NumError> {
    let err = |kind| NumError {
        func: "ParseInt",
        num: s.to_string(),
        kind,
    };
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let limit: u128 = 1u128 << (bits - 1);
    match digits_value(digits, 10) {
        None => Err(err(NumErrorKind::Syntax)),
        Some(Some(v)) if !neg && v < limit => Ok(v as i64),
        Some(Some(v)) if neg && v <= limit => Ok((-(v as i128)) as i64),
        Some(_) => Err(err(NumErrorKind::Range)),
    }
}

/// `strconv.Atoi` on a 64-bit platform.
pub(crate) fn atoi(s: &str) -> Option<i64> {
    parse_int(s, 64).ok()
}

/// `strconv.ParseBool`.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_like_go() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("tab\there\n"), r#""tab\there\n""#);
        assert_eq!(quote("\u{1}\u{7f}"), r#""\x01\x7f""#);
        assert_eq!(quote("안녕 é"), "\"안녕 é\"");
        assert_eq!(quote("\u{a0}\u{feff}"), r#""\u00a0\ufeff""#);
        assert_eq!(quote("\u{e0000}"), r#""\U000e0000""#);
    }

    #[test]
    fn numbers_like_go() {
        assert_eq!(parse_uint("755", 8, 32), Ok(0o755));
        assert_eq!(
            parse_uint("8", 8, 32).unwrap_err().to_string(),
            "strconv.ParseUint: parsing \"8\": invalid syntax"
        );
        assert_eq!(
            parse_uint("4294967296", 10, 32).unwrap_err().kind,
            NumErrorKind::Range
        );
        assert_eq!(
            parse_uint("", 10, 32).unwrap_err().kind,
            NumErrorKind::Syntax
        );
        assert_eq!(parse_int("-2147483648", 32), Ok(-2147483648));
        assert_eq!(
            parse_int("2147483648", 32).unwrap_err().to_string(),
            "strconv.ParseInt: parsing \"2147483648\": value out of range"
        );
        assert_eq!(parse_int("+7", 32), Ok(7));
        assert_eq!(parse_int("1_0", 32).unwrap_err().kind, NumErrorKind::Syntax);
        assert_eq!(atoi("-1"), Some(-1));
        assert_eq!(atoi("01"), Some(1));
        assert_eq!(atoi("99999999999999999999"), None);
        assert_eq!(atoi("build"), None);
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("yes"), None);
    }
}
