//! JSON bytes as Go's `encoding/json` writes them.
//!
//! Go escapes `<`, `>`, `&`, U+2028 and U+2029 (HTML-safe output), which serde_json does not;
//! every other escape is the same (`\n \r \t \b \f`, `\u00XX` lowercase for other control
//! characters). A serde_json formatter that escapes those five in string fragments gives Go's
//! bytes for both `json.Marshal` (compact) and `json.MarshalIndent(v, "", "  ")`. Field order
//! comes from the struct definitions (Go struct order) or from sorted maps.

use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

struct GoEscaping<F>(F);

fn write_go_fragment<W: ?Sized + io::Write>(writer: &mut W, fragment: &str) -> io::Result<()> {
    let mut start = 0;
    for (i, c) in fragment.char_indices() {
        let esc: &[u8] = match c {
            '<' => b"\\u003c",
            '>' => b"\\u003e",
            '&' => b"\\u0026",
            '\u{2028}' => b"\\u2028",
            '\u{2029}' => b"\\u2029",
            _ => continue,
        };
        writer.write_all(&fragment.as_bytes()[start..i])?;
        writer.write_all(esc)?;
        start = i + c.len_utf8();
    }
    writer.write_all(&fragment.as_bytes()[start..])
}

macro_rules! delegate_formatter {
    ($inner:ty) => {
        impl Formatter for GoEscaping<$inner> {
            fn write_string_fragment<W: ?Sized + io::Write>(
                &mut self,
                writer: &mut W,
                fragment: &str,
            ) -> io::Result<()> {
                write_go_fragment(writer, fragment)
            }
            fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
                self.0.begin_array(w)
            }
            fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
                self.0.end_array(w)
            }
            fn begin_array_value<W: ?Sized + io::Write>(
                &mut self,
                w: &mut W,
                first: bool,
            ) -> io::Result<()> {
                self.0.begin_array_value(w, first)
            }
            fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
                self.0.end_array_value(w)
            }
            fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
                self.0.begin_object(w)
            }
            fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
                self.0.end_object(w)
            }
            fn begin_object_key<W: ?Sized + io::Write>(
                &mut self,
                w: &mut W,
                first: bool,
            ) -> io::Result<()> {
                self.0.begin_object_key(w, first)
            }
            fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
                self.0.begin_object_value(w)
            }
            fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
                self.0.end_object_value(w)
            }
        }
    };
}

delegate_formatter!(CompactFormatter);
delegate_formatter!(PrettyFormatter<'static>);

/// Go's `json.Marshal(v)`: compact, HTML-escaped, no trailing newline.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoEscaping(CompactFormatter));
    // Serialising kiln's own model types into memory cannot fail: no maps with non-string
    // keys, no custom serialisers that error.
    value
        .serialize(&mut ser)
        .expect("serialising an image model value to JSON");
    out
}

/// Go's `json.MarshalIndent(v, "", "  ")`.
pub fn to_vec_indent<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        GoEscaping(PrettyFormatter::with_indent(b"  ")),
    );
    value
        .serialize(&mut ser)
        .expect("serialising an image model value to JSON");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn escapes_like_go() {
        let s = "a<b>&c\u{2028}\u{2029}\"\\\n\t\r\u{8}\u{c}\u{1}\u{7f}é";
        assert_eq!(
            String::from_utf8(to_vec(&s)).unwrap(),
            r#""a\u003cb\u003e\u0026c\u2028\u2029\"\\\n\t\r\b\f\u0001"#.to_string() + "\u{7f}é\""
        );
    }

    #[test]
    fn indent_matches_marshal_indent() {
        let mut m = BTreeMap::new();
        m.insert("b", vec![1, 2]);
        m.insert("a", vec![]);
        assert_eq!(
            String::from_utf8(to_vec_indent(&m)).unwrap(),
            "{\n  \"a\": [],\n  \"b\": [\n    1,\n    2\n  ]\n}"
        );
    }
}
