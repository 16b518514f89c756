//! Heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`) as BuildKit v0.19.0
//! recognises them (`parser.ParseHeredoc`, `heredocsFromLine`).

use crate::lex::{Lexer, NoEnv};

/// One heredoc attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word with quotes removed (`EOF` for `<<'EOF'`).
    pub name: String,
    /// The file descriptor written before `<<` (0 when absent).
    pub file_descriptor: u64,
    /// False when any part of the delimiter was quoted: the body must not be expanded.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body lines (see [`Heredoc::chomped_content`]).
    pub chomp: bool,
    /// The body exactly as read, every line with its line ending.
    pub content: String,
}

impl Heredoc {
    /// The body with leading tabs removed from every line when [`Heredoc::chomp`] is set.
    pub fn chomped_content(&self) -> String {
        if self.chomp {
            chomp_content(&self.content)
        } else {
            self.content.clone()
        }
    }
}

/// BuildKit's `ChompHeredocContent`: removes leading tabs from every line.
pub fn chomp_content(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    for line in src.split_inclusive('\n') {
        out.push_str(line.trim_start_matches('\t'));
    }
    out
}

/// An error from a heredoc word, e.g. an unterminated quote in `<<'EOF`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeredocError(pub(crate) String);

/// `parser.ParseHeredoc`: `Ok(None)` when `word` is not a heredoc.
pub(crate) fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, HeredocError> {
    // ^(\d*)<<(-?)([^<]*)$
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match after.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, after),
    };
    if rest.contains('<') || rest.is_empty() {
        return Ok(None);
    }
    // Go ignores ParseUint's error: overflow gives the maximum value.
    let fd = match &word[..digits] {
        "" => 0,
        d => d.parse::<u64>().unwrap_or(u64::MAX),
    };
    let lex = Lexer::new('\\').skip_unset_env(true);
    let words = lex
        .process_words(rest, &NoEnv)
        .map_err(|e| HeredocError(e.to_string()))?;
    if words.len() != 1 {
        return Ok(None);
    }
    let raw = lex
        .raw_quotes(true)
        .process_words(rest, &NoEnv)
        .map_err(|e| HeredocError(e.to_string()))?;
    if raw.len() != words.len() {
        return Err(HeredocError(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        )));
    }
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let name = words[0].clone();
    let expand = quotes(&name) == quotes(&raw[0]);
    Ok(Some(Heredoc {
        name,
        file_descriptor: fd,
        expand,
        chomp,
        content: String::new(),
    }))
}

/// `heredocsFromLine`: the heredocs named on an instruction line, in order.
pub(crate) fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, HeredocError> {
    let lex = Lexer::new('\\')
        .raw_quotes(true)
        .raw_escapes(true)
        .skip_unset_env(true);
    // BuildKit ignores lexing errors here: such a line simply has no heredocs.
    let words = lex.process_words(line, &NoEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(h) = parse_heredoc(&w)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heredoc_words() {
        for w in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<-\"EOF\"",
            "<<EO\"F\"",
        ] {
            assert_eq!(parse_heredoc(w).unwrap().unwrap().name, "EOF", "{w}");
        }
        for w in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_heredoc(w).is_err(), "{w}");
        }
        for w in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert_eq!(parse_heredoc(w).unwrap(), None, "{w}");
        }
        let h = parse_heredoc("3<<-'E'\\'x").unwrap().unwrap();
        assert_eq!(
            (h.name.as_str(), h.file_descriptor, h.chomp, h.expand),
            ("E'x", 3, true, false)
        );
        assert!(parse_heredoc("<<eo\\'f").unwrap().unwrap().expand);
        assert_eq!(parse_heredoc("<<$EOF").unwrap().unwrap().name, "$EOF");
        assert_eq!(
            parse_heredoc("99999999999999999999999<<X")
                .unwrap()
                .unwrap()
                .file_descriptor,
            u64::MAX
        );
    }

    #[test]
    fn heredocs_on_lines() {
        let names = |l: &str| {
            heredocs_from_line(l)
                .unwrap()
                .into_iter()
                .map(|h| h.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names("RUN <<EOF"), ["EOF"]);
        assert_eq!(names("RUN 4<<EOF"), ["EOF"]);
        assert_eq!(names("RUN <<EOF <<EOF2"), ["EOF", "EOF2"]);
        assert!(names("RUN '<<EOF'").is_empty());
        assert!(names("RUN \"<<EOF\"").is_empty());
        assert!(names("RUN <<'EOF").is_empty());
    }

    #[test]
    fn chomp() {
        assert_eq!(
            chomp_content("\thello\n\t\tworld\n x\t\n"),
            "hello\nworld\n x\t\n"
        );
    }
}
