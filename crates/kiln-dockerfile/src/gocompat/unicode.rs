//! Go's `unicode.IsSpace`, `unicode.IsLetter` and `unicode.IsDigit`.

use regex::Regex;
use std::sync::LazyLock;

/// Go's `unicode.IsSpace`: the Latin-1 spaces plus the Unicode `White_Space`
/// property, which is exactly what Rust's `char::is_whitespace` implements.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

static LETTER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\p{L}$").expect("static regex"));
static DIGIT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\p{Nd}$").expect("static regex"));
static PRINT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\p{L}\p{M}\p{N}\p{P}\p{S}]$").expect("static regex"));

fn matches_char(re: &Regex, c: char) -> bool {
    let mut buf = [0u8; 4];
    re.is_match(c.encode_utf8(&mut buf))
}

/// Go's `unicode.IsLetter`: general category L (Rust's `is_alphabetic` is
/// wider: it also covers Nl and Other_Alphabetic marks).
pub(crate) fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    matches_char(&LETTER, c)
}

/// Go's `unicode.IsDigit`: general category Nd only.
pub(crate) fn is_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    matches_char(&DIGIT, c)
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and
/// the ASCII space.
pub(crate) fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    matches_char(&PRINT, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_go() {
        assert!(is_space('\u{85}') && is_space('\u{a0}') && is_space('\u{3000}'));
        assert!(!is_space('\u{200b}'));
        assert!(is_letter('é') && is_letter('한'));
        // U+2160 ROMAN NUMERAL ONE is Nl: alphabetic in Rust, not a Go letter.
        assert!('\u{2160}'.is_alphabetic() && !is_letter('\u{2160}'));
        assert!(is_digit('٣') && !is_digit('²'));
        assert!(is_print('한') && !is_print('\u{a0}') && !is_print('\u{feff}'));
    }
}
