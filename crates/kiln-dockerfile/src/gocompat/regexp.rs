//! Go `regexp` behaviour that differs from the `regex` crate's API: template
//! expansion in `ReplaceAllString`, Go's empty-match rules, and a translator
//! from Go (RE2, Perl flags) syntax to `regex` syntax for the expressions
//! that `moby/patternmatcher` builds.

use super::unicode::{is_digit, is_letter};
use regex::Regex;
use std::fmt::Write as _;

/// Go's `Regexp.expand` for an expression without capture groups: `$$` is a
/// dollar, `$0`/`${0}` the whole match, any other well-formed reference
/// empty, and a malformed one a literal `$`. Appends to `out`; `None` once `out` would
/// exceed `limit` bytes.
fn expand_template(out: &mut String, template: &str, whole: &str, limit: usize) -> Option<()> {
    let mut t = template;
    while let Some(i) = t.find('$') {
        push_capped(out, &t[..i], limit)?;
        t = &t[i + 1..];
        if let Some(rest) = t.strip_prefix('$') {
            out.push('$');
            t = rest;
            continue;
        }
        match extract(t) {
            Some((num, rest)) => {
                if num == Some(0) {
                    push_capped(out, whole, limit)?;
                }
                t = rest;
            }
            None => out.push('$'),
        }
    }
    push_capped(out, t, limit)
}

/// Appends `s` unless `out` would then exceed `limit` bytes.
fn push_capped(out: &mut String, s: &str, limit: usize) -> Option<()> {
    if out.len().checked_add(s.len())? > limit {
        return None;
    }
    out.push_str(s);
    Some(())
}

/// Go's `extract`: the name after `$` (bare or in braces), its number if it
/// is one, and the rest. `None` when malformed.
fn extract(s: &str) -> Option<(Option<u32>, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len: usize = body
        .chars()
        .take_while(|&c| is_letter(c) || is_digit(c) || c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    let mut rest = &body[len..];
    if brace {
        rest = rest.strip_prefix('}')?;
    }
    let mut num: Option<u32> = Some(0);
    for b in name.bytes() {
        num = match num {
            Some(n) if b.is_ascii_digit() && n < 100_000_000 => Some(n * 10 + u32::from(b - b'0')),
            _ => None,
        };
        if num.is_none() {
            break;
        }
    }
    if name.len() > 1 && name.starts_with('0') {
        num = None;
    }
    Some((num, rest))
}

/// Go's `ReplaceAllString` (template-expanding) with Go's empty-match rules; `None` when
/// the result would exceed `limit` bytes (every match can copy the template again).
pub(crate) fn replace_all(re: &Regex, src: &str, repl: &str, limit: usize) -> Option<String> {
    let mut out = String::new();
    let mut last_end = 0;
    let mut search = 0;
    while search <= src.len() {
        let Some(m) = re.find_at(src, search) else {
            break;
        };
        push_capped(&mut out, &src[last_end..m.start()], limit)?;
        // No replacement for an empty match right after the previous match.
        if m.end() > last_end || m.start() == 0 {
            expand_template(&mut out, repl, m.as_str(), limit)?;
        }
        last_end = m.end();
        let width = src[search..].chars().next().map_or(1, char::len_utf8);
        if search + width > m.end() {
            search += width;
        } else if search + 1 > m.end() {
            search += 1;
        } else {
            search = m.end();
        }
    }
    push_capped(&mut out, &src[last_end..], limit)?;
    Some(out)
}

// ---------------------------------------------------------------------------
// Go regexp syntax -> regex crate syntax.

fn lit(out: &mut String, c: char) {
    let _ = write!(out, "\\x{{{:x}}}", c as u32);
}

/// One item of a Go character class, as regex-crate syntax for use inside `[...]`.
fn perl_class(c: char) -> Option<&'static str> {
    Some(match c {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        's' => "[\\t\\n\\x0C\\r ]",
        'S' => "[^\\t\\n\\x0C\\r ]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        _ => return None,
    })
}

const POSIX: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

struct Translator<'a> {
    s: &'a str,
    pos: usize,
}

type TResult<T> = Result<T, String>;

impl Translator<'_> {
    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn next(&mut self) -> Option<char> {
        let c = self.rest().chars().next()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    /// Go's `parseEscape` after the backslash: a single character.
    fn escape_char(&mut self) -> TResult<char> {
        let c = self
            .next()
            .ok_or("trailing backslash at end of expression")?;
        match c {
            '1'..='7' if !matches!(self.peek(), Some('0'..='7')) => {
                Err(format!("invalid escape sequence: `\\{c}`"))
            }
            '0'..='7' => {
                let mut r = c as u32 - '0' as u32;
                for _ in 1..3 {
                    match self.peek() {
                        Some(d @ '0'..='7') => {
                            r = r * 8 + (d as u32 - '0' as u32);
                            self.next();
                        }
                        _ => break,
                    }
                }
                char::from_u32(r).ok_or_else(|| "invalid escape".to_string())
            }
            'x' => {
                let bad = || "invalid escape sequence: `\\x`".to_string();
                let hex: String = if self.peek() == Some('{') {
                    self.next();
                    let h: String = self.rest().chars().take_while(|&c| c != '}').collect();
                    self.pos += h.len();
                    if self.next() != Some('}') {
                        return Err(bad());
                    }
                    h
                } else {
                    let h: String = self.rest().chars().take(2).collect();
                    self.pos += h.len();
                    if h.chars().count() != 2 {
                        return Err(bad());
                    }
                    h
                };
                if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad());
                }
                let v = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
                char::from_u32(v).ok_or_else(bad)
            }
            'a' => Ok('\u{7}'),
            'f' => Ok('\u{c}'),
            'n' => Ok('\n'),
            'r' => Ok('\r'),
            't' => Ok('\t'),
            'v' => Ok('\u{b}'),
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(c),
            c => Err(format!("invalid escape sequence: `\\{c}`")),
        }
    }

    /// `\p{Name}`, `\pL`, `\P...` after the backslash and the p/P.
    fn unicode_class(&mut self, negated: bool) -> TResult<String> {
        let name: String = if self.peek() == Some('{') {
            self.next();
            let n: String = self.rest().chars().take_while(|&c| c != '}').collect();
            self.pos += n.len();
            if self.next() != Some('}') {
                return Err("invalid character class range".into());
            }
            n
        } else {
            self.next()
                .ok_or("invalid character class range")?
                .to_string()
        };
        let (neg, name) = match name.strip_prefix('^') {
            Some(n) => (!negated, n.to_string()),
            None => (negated, name),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid character class range: `{name}`"));
        }
        let rust = format!(
            "\\{}{{{}}}",
            if neg { 'P' } else { 'p' },
            if name == "Any" { "Any" } else { &name }
        );
        Regex::new(&rust).map_err(|_| format!("invalid character class range: `{name}`"))?;
        Ok(rust)
    }

    /// A Go character class; the `[` is consumed.
    fn class(&mut self) -> TResult<String> {
        let mut out = String::from("[");
        if self.peek() == Some('^') {
            self.next();
            out.push('^');
        }
        let mut first = true;
        let mut items = 0;
        loop {
            match self.peek() {
                None => return Err("missing closing ]".into()),
                Some(']') if !first => {
                    self.next();
                    break;
                }
                _ => {}
            }
            first = false;
            if self.rest().starts_with("[:") {
                if let Some(end) = self.rest()[2..].find(":]") {
                    let name = &self.rest()[2..2 + end];
                    let (neg, bare) = match name.strip_prefix('^') {
                        Some(b) => (true, b),
                        None => (false, name),
                    };
                    if POSIX.contains(&bare) {
                        let _ = write!(out, "[{}[:{}:]]", if neg { "^" } else { "" }, bare);
                        self.pos += 2 + end + 2;
                        items += 1;
                        continue;
                    }
                    if bare.chars().all(|c| c.is_ascii_alphabetic()) && !bare.is_empty() {
                        return Err(format!("invalid character class range: `[:{name}:]`"));
                    }
                }
            }
            if self.rest().starts_with('\\') {
                let after = self.rest()[1..].chars().next();
                if let Some(p @ ('p' | 'P')) = after {
                    self.pos += 2;
                    out.push_str(&self.unicode_class(p == 'P')?);
                    items += 1;
                    continue;
                }
                if let Some(pc) = after.and_then(perl_class) {
                    self.pos += 2;
                    out.push_str(pc);
                    items += 1;
                    continue;
                }
            }
            let lo = self.class_char()?;
            let mut hi = lo;
            if self.rest().starts_with('-')
                && !self.rest()[1..].starts_with(']')
                && self.rest().len() > 1
            {
                self.next();
                hi = self.class_char()?;
                if hi < lo {
                    return Err(format!("invalid character class range: `{lo}-{hi}`"));
                }
            }
            lit(&mut out, lo);
            if hi != lo {
                out.push('-');
                lit(&mut out, hi);
            }
            items += 1;
        }
        if items == 0 {
            return Err("missing closing ]".into());
        }
        out.push(']');
        Ok(out)
    }

    fn class_char(&mut self) -> TResult<char> {
        match self.next() {
            None => Err("missing closing ]".into()),
            Some('\\') => self.escape_char(),
            Some(c) => Ok(c),
        }
    }

    /// A sequence up to `)` (when nested) or the end.
    fn sequence(&mut self, nested: bool) -> TResult<String> {
        let mut out = String::new();
        // Whether the last item can take a repetition operator.
        let mut repeatable = false;
        loop {
            let Some(c) = self.next() else {
                if nested {
                    return Err("missing closing )".into());
                }
                return Ok(out);
            };
            let mut atom = true;
            match c {
                ')' if nested => return Ok(out),
                ')' => return Err("unexpected )".into()),
                '(' => {
                    if self.peek() == Some('?') {
                        return Err("unsupported Perl syntax".into());
                    }
                    out.push_str("(?:");
                    out.push_str(&self.sequence(true)?);
                    out.push(')');
                }
                '*' | '+' | '?' => {
                    if !repeatable {
                        return Err(format!("missing argument to repetition operator: `{c}`"));
                    }
                    out.push(c);
                    if self.peek() == Some('?') {
                        self.next();
                        out.push('?');
                    }
                    if matches!(self.peek(), Some('*' | '+' | '?')) {
                        return Err("invalid nested repetition operator".into());
                    }
                    atom = false;
                    repeatable = false;
                }
                '|' => {
                    out.push('|');
                    atom = false;
                    repeatable = false;
                }
                '^' => {
                    out.push_str("\\A");
                }
                '$' => {
                    out.push_str("\\z");
                }
                '.' => out.push_str("[^\\n]"),
                '[' => out.push_str(&self.class()?),
                '{' => {
                    // patternmatcher escapes `{`, so a raw one never reaches here.
                    return Err("unsupported repetition".into());
                }
                '\\' => match self.peek() {
                    Some('A') => {
                        self.next();
                        out.push_str("\\A");
                    }
                    Some('z') => {
                        self.next();
                        out.push_str("\\z");
                    }
                    Some('b') => {
                        self.next();
                        out.push_str("(?-u:\\b)");
                    }
                    Some('B') => {
                        self.next();
                        out.push_str("(?-u:\\B)");
                    }
                    Some('Q') => {
                        self.next();
                        let body = match self.rest().find("\\E") {
                            Some(end) => {
                                let b = self.rest()[..end].to_string();
                                self.pos += end + 2;
                                b
                            }
                            None => {
                                let b = self.rest().to_string();
                                self.pos = self.s.len();
                                b
                            }
                        };
                        for ch in body.chars() {
                            lit(&mut out, ch);
                        }
                    }
                    Some(p @ ('p' | 'P')) => {
                        self.next();
                        out.push_str(&self.unicode_class(p == 'P')?);
                    }
                    Some(pc) if perl_class(pc).is_some() => {
                        self.next();
                        out.push_str(perl_class(pc).unwrap_or_default());
                    }
                    _ => {
                        let ch = self.escape_char()?;
                        lit(&mut out, ch);
                    }
                },
                c => lit(&mut out, c),
            }
            if atom {
                repeatable = true;
            }
        }
    }
}

/// Translates a Go regular expression (compiled by `regexp.Compile`, i.e.
/// with Perl flags) into equivalent `regex` crate syntax. Errors where Go's
/// compiler errors; constructs patternmatcher cannot produce are rejected.
pub(crate) fn translate(go: &str) -> Result<String, String> {
    let mut t = Translator { s: go, pos: 0 };
    t.sequence(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(t: &str, whole: &str) -> String {
        let mut out = String::new();
        expand_template(&mut out, t, whole, usize::MAX).expect("no limit");
        out
    }

    #[test]
    fn template_expansion() {
        assert_eq!(template("a$$b", "M"), "a$b");
        assert_eq!(template("<$0>", "M"), "<M>");
        assert_eq!(template("<${0}>", "M"), "<M>");
        assert_eq!(template("<$1>", "M"), "<>");
        assert_eq!(template("<$name.x>", "M"), "<.x>");
        assert_eq!(template("<$00>", "M"), "<>");
        assert_eq!(template("<${x>", "M"), "<${x>");
        assert_eq!(template("<$>", "M"), "<$>");
        assert_eq!(template("<${}>", "M"), "<${}>");
        assert_eq!(template("$", "M"), "$");
    }

    #[test]
    fn go_replace_all_empty_matches() {
        let all = |re: &Regex, src: &str, repl: &str| replace_all(re, src, repl, usize::MAX);
        let re = Regex::new("x*").unwrap();
        // Go: regexp.MustCompile("x*").ReplaceAllString("abxd", "-") == "-a-b-d-"
        assert_eq!(all(&re, "abxd", "-").as_deref(), Some("-a-b-d-"));
        let re = Regex::new("").unwrap();
        assert_eq!(all(&re, "ab", "-").as_deref(), Some("-a-b-"));
        let re = Regex::new("a").unwrap();
        assert_eq!(all(&re, "banana", "[$0]").as_deref(), Some("b[a]n[a]n[a]"));
    }

    #[test]
    fn replace_all_stops_at_the_limit() {
        let re = Regex::new("a").unwrap();
        // "b[a]n[a]n[a]" is 12 bytes.
        assert_eq!(
            replace_all(&re, "banana", "[$0]", 12).as_deref(),
            Some("b[a]n[a]n[a]")
        );
        assert_eq!(replace_all(&re, "banana", "[$0]", 11), None);
        assert_eq!(replace_all(&re, "banana", "$0$0$0$0", 8), None);
    }

    #[test]
    fn translate_go_syntax() {
        let ok = |go: &str, yes: &[&str], no: &[&str]| {
            let rust = translate(go).unwrap_or_else(|e| panic!("{go}: {e}"));
            let re = Regex::new(&rust).unwrap_or_else(|e| panic!("{go} -> {rust}: {e}"));
            for s in yes {
                assert!(re.is_match(s), "{go} should match {s:?} ({rust})");
            }
            for s in no {
                assert!(!re.is_match(s), "{go} should not match {s:?} ({rust})");
            }
        };
        ok("^[^/]*\\.tmp$", &["a.tmp", ".tmp"], &["a/b.tmp", "atmp"]);
        ok("^(.*/)?foo$", &["foo", "a/b/foo"], &["afoo"]);
        ok("^a[bc]d$", &["abd", "acd"], &["aed"]);
        ok("^a[^/]$", &["ab", "a\n"], &["a/"]);
        // patternmatcher turns `[*]` into `[[^/]*]`: a class of `[`, `^`, `/`.
        ok("^[[^/]*]$", &["]", "[^/]"], &["a]", "*"]);
        ok("^\\d$", &["7"], &["d"]);
        ok("^[[:alpha:]]x$", &["ax"], &["1x"]);
        ok("^a^b$", &[], &["a^b", "ab"]);
        ok("^[a-]$", &["a", "-"], &["b"]);
        ok("^[]a]$", &["]", "a"], &["b"]);
        ok("^\\101$", &["A"], &["101"]);
        ok("^.$", &["é"], &["\n"]);
        for bad in [
            "^[b-a]$",
            "^a\\",
            "^[a$",
            "^\\1$",
            "^\\é$",
            "^\\q$",
            "^[[:foo:]]$",
        ] {
            assert!(translate(bad).is_err(), "{bad} should fail");
        }
    }
}
