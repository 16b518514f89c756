//! The part of Go's `encoding/json` that BuildKit uses to read exec-form
//! instructions: `json.Unmarshal` of a whole line into `[]interface{}`.
//!
//! Written by hand (not serde_json) because the Dockerfile's meaning depends on
//! exactly which inputs Go rejects: a rejected line silently becomes shell form.
//! Go turns lone UTF-16 surrogates into U+FFFD where serde_json errors, and
//! Go fails on numbers that overflow float64 where serde_json does not.

/// Go's `maxNestingDepth`.
const MAX_DEPTH: usize = 10_000;

/// Outcome of reading a line as a JSON array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArrayError {
    /// `json.Unmarshal` failed (syntax error, trailing data, number out of
    /// range, too deep): BuildKit falls back to the shell form.
    Invalid,
    /// A valid array holding something other than strings: a hard error.
    NotStrings,
}

struct Reader<'a> {
    s: &'a [u8],
    pos: usize,
}

#[derive(Debug)]
enum Value {
    Str(String),
    Other,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, lit: &[u8]) -> Result<(), ArrayError> {
        if self.s[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            Ok(())
        } else {
            Err(ArrayError::Invalid)
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.pos..self.pos + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
        if !h.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        self.pos += 4;
        Some(v)
    }

    fn string(&mut self) -> Result<String, ArrayError> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(ArrayError::Invalid);
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    self.pos += 1;
                    let e = self.peek().ok_or(ArrayError::Invalid)?;
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let r = self.hex4().ok_or(ArrayError::Invalid)?;
                            if (0xd800..0xe000).contains(&r) {
                                // A high surrogate followed by an escaped low
                                // surrogate is one character; anything else is U+FFFD.
                                let save = self.pos;
                                if (0xd800..0xdc00).contains(&r)
                                    && self.s[self.pos..].starts_with(b"\\u")
                                {
                                    self.pos += 2;
                                    if let Some(r2) = self.hex4() {
                                        if (0xdc00..0xe000).contains(&r2) {
                                            let c = 0x10000 + ((r - 0xd800) << 10) + (r2 - 0xdc00);
                                            out.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                                            continue;
                                        }
                                    }
                                }
                                self.pos = save;
                                out.push('\u{fffd}');
                            } else {
                                out.push(char::from_u32(r).unwrap_or('\u{fffd}'));
                            }
                        }
                        _ => return Err(ArrayError::Invalid),
                    }
                }
                c if c < 0x20 => return Err(ArrayError::Invalid),
                _ => {
                    // Copy one whole UTF-8 character.
                    let start = self.pos;
                    self.pos += 1;
                    while self.peek().is_some_and(|b| (b & 0xc0) == 0x80) {
                        self.pos += 1;
                    }
                    out.push_str(
                        std::str::from_utf8(&self.s[start..self.pos])
                            .map_err(|_| ArrayError::Invalid)?,
                    );
                }
            }
        }
    }

    fn number(&mut self) -> Result<(), ArrayError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                    self.pos += 1;
                }
            }
            _ => return Err(ArrayError::Invalid),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(ArrayError::Invalid);
            }
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(ArrayError::Invalid);
            }
            while self.peek().is_some_and(|b| b.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        // Go decodes into float64 and fails when it overflows.
        let text =
            std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| ArrayError::Invalid)?;
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(()),
            _ => Err(ArrayError::Invalid),
        }
    }

    /// Reads any value, iteratively so deep nesting cannot overflow the stack.
    fn value(&mut self) -> Result<Value, ArrayError> {
        // Each open container: true for an object (expecting keys), false for an array.
        let mut stack: Vec<bool> = Vec::new();
        loop {
            self.skip_ws();
            // Parse one scalar or open a container.
            let scalar = match self.peek().ok_or(ArrayError::Invalid)? {
                b'[' | b'{' => {
                    let is_obj = self.peek() == Some(b'{');
                    self.pos += 1;
                    stack.push(is_obj);
                    // The enclosing top-level array is one more level.
                    if stack.len() + 1 > MAX_DEPTH {
                        return Err(ArrayError::Invalid);
                    }
                    self.skip_ws();
                    let close = if is_obj { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                        stack.pop();
                        Value::Other
                    } else {
                        if is_obj {
                            self.object_key()?;
                        }
                        continue;
                    }
                }
                b'"' => Value::Str(self.string()?),
                b't' => self.eat(b"true").map(|_| Value::Other)?,
                b'f' => self.eat(b"false").map(|_| Value::Other)?,
                b'n' => self.eat(b"null").map(|_| Value::Other)?,
                b'-' | b'0'..=b'9' => self.number().map(|_| Value::Other)?,
                _ => return Err(ArrayError::Invalid),
            };
            // Close containers as far as possible.
            let mut done = scalar;
            loop {
                let Some(&is_obj) = stack.last() else {
                    return Ok(done);
                };
                self.skip_ws();
                let close = if is_obj { b'}' } else { b']' };
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if is_obj {
                            self.skip_ws();
                            self.object_key()?;
                        }
                        break;
                    }
                    Some(c) if c == close => {
                        self.pos += 1;
                        stack.pop();
                        done = Value::Other;
                    }
                    _ => return Err(ArrayError::Invalid),
                }
            }
        }
    }

    fn object_key(&mut self) -> Result<(), ArrayError> {
        if self.peek() != Some(b'"') {
            return Err(ArrayError::Invalid);
        }
        self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(ArrayError::Invalid);
        }
        self.pos += 1;
        Ok(())
    }
}

/// Reads `text` (which starts with `[`) as Go's `json.Unmarshal` into
/// `[]interface{}` would, returning the elements if all are strings.
pub(crate) fn parse_string_array(text: &str) -> Result<Vec<String>, ArrayError> {
    let mut r = Reader {
        s: text.as_bytes(),
        pos: 0,
    };
    r.skip_ws();
    if r.peek() != Some(b'[') {
        return Err(ArrayError::Invalid);
    }
    r.pos += 1;
    let mut items = Vec::new();
    r.skip_ws();
    if r.peek() == Some(b']') {
        r.pos += 1;
    } else {
        loop {
            items.push(r.value()?);
            r.skip_ws();
            match r.peek() {
                Some(b',') => r.pos += 1,
                Some(b']') => {
                    r.pos += 1;
                    break;
                }
                _ => return Err(ArrayError::Invalid),
            }
        }
    }
    r.skip_ws();
    if r.pos != r.s.len() {
        return Err(ArrayError::Invalid);
    }
    items
        .into_iter()
        .map(|v| match v {
            Value::Str(s) => Ok(s),
            Value::Other => Err(ArrayError::NotStrings),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Result<Vec<String>, ArrayError> {
        Ok(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn arrays_like_go() {
        assert_eq!(parse_string_array(r#"["a", "b c"]"#), strs(&["a", "b c"]));
        assert_eq!(parse_string_array("[]"), strs(&[]));
        assert_eq!(parse_string_array(" [ \"x\" ] \n"), strs(&["x"]));
        assert_eq!(
            parse_string_array(r#"["\u00e9\n\/\"\\"]"#),
            strs(&["é\n/\"\\"])
        );
        assert_eq!(parse_string_array(r#"["\ud83d\ude00"]"#), strs(&["😀"]));
        assert_eq!(parse_string_array(r#"["\ud800x"]"#), strs(&["\u{fffd}x"]));
        assert_eq!(
            parse_string_array(r#"["\ud800\u0041"]"#),
            strs(&["\u{fffd}A"])
        );
        assert_eq!(
            parse_string_array(r#"["a", 1]"#),
            Err(ArrayError::NotStrings)
        );
        assert_eq!(
            parse_string_array(r#"["a", null]"#),
            Err(ArrayError::NotStrings)
        );
        assert_eq!(
            parse_string_array(r#"[["a"], {"k": [1, true]}]"#),
            Err(ArrayError::NotStrings)
        );
        assert_eq!(
            parse_string_array(r#"["a", 1e400]"#),
            Err(ArrayError::Invalid)
        );
        assert_eq!(parse_string_array(r#"["a",]"#), Err(ArrayError::Invalid));
        assert_eq!(parse_string_array(r#"["a"] x"#), Err(ArrayError::Invalid));
        assert_eq!(parse_string_array(r#"['a']"#), Err(ArrayError::Invalid));
        assert_eq!(parse_string_array("[\"a\tb\"]"), Err(ArrayError::Invalid));
        assert_eq!(parse_string_array(r#"["a" "b"]"#), Err(ArrayError::Invalid));
        assert_eq!(parse_string_array(r#"[01]"#), Err(ArrayError::Invalid));
        assert_eq!(parse_string_array(r#"[{"a" 1}]"#), Err(ArrayError::Invalid));
        assert_eq!(
            parse_string_array("[\"unterminated"),
            Err(ArrayError::Invalid)
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(parse_string_array(&deep), Err(ArrayError::NotStrings));
        let too_deep = format!("{}{}", "[".repeat(10_001), "]".repeat(10_001));
        assert_eq!(parse_string_array(&too_deep), Err(ArrayError::Invalid));
    }
}
